"""A small app that receives duetime (or Dapr) job triggers and prints them, one line each.

    python3 examples/receiver.py 3000

Answers 200 to `POST /job/{name}`; set RECEIVER_FAIL=1 to answer 500 and watch retries.
Sound under a burst: a thread per connection, a listen backlog for a thousand triggers
arriving at once, and one lock around the output so lines never interleave.
"""

import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_print_lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: duetime reuses its connections

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        line = (
            f"POST {self.path} late={self.headers.get('duetime-late')} "
            f"attempt={self.headers.get('duetime-attempt')} "
            f"scheduled={self.headers.get('duetime-scheduled-time')} "
            f"body={body.decode(errors='replace')}"
        )
        with _print_lock:
            print(line, flush=True)
        self.send_response(500 if os.environ.get("RECEIVER_FAIL") else 200)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


class Server(ThreadingHTTPServer):
    request_queue_size = 1024  # the default, 5, drops connections under a burst
    daemon_threads = True


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    try:
        Server(("127.0.0.1", port), Handler).serve_forever()
    except KeyboardInterrupt:
        pass
