"""A minimal app that receives duetime (or Dapr) job triggers and prints them.

    python3 examples/receiver.py 3000

Answers 200 to `POST /job/{name}`; set RECEIVER_FAIL=1 to answer 500 and watch retries.
"""

import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        print(
            f"POST {self.path} late={self.headers.get('duetime-late')} "
            f"attempt={self.headers.get('duetime-attempt')} "
            f"scheduled={self.headers.get('duetime-scheduled-time')} body={body.decode()}",
            flush=True,
        )
        self.send_response(500 if os.environ.get("RECEIVER_FAIL") else 200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
