"""A small app that receives duetime's reminder webhooks, checks their signature and prints
each reminder, one line each.

    python3 examples/webhook_receiver.py 4000 whsec_...

The secret is the `webhook.secret` of `GET /api/me/channels`. A request whose signature or
timestamp is wrong gets a 401 and prints `REJECTED`.
"""

import hashlib
import hmac
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_print_lock = threading.Lock()


def verify_webhook(secret: str, headers: dict[str, str], body: bytes, tolerance: int = 300) -> bool:
    """True when `body` was signed by duetime with `secret` less than `tolerance` s ago."""
    timestamp = headers.get("duetime-timestamp", "")
    signature = headers.get("duetime-signature", "")
    if not timestamp.isdigit() or abs(time.time() - int(timestamp)) > tolerance:
        return False
    signed = timestamp.encode() + b"." + body
    expected = "v1=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return any(hmac.compare_digest(expected, part.strip()) for part in signature.split(","))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    secret = ""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        if verify_webhook(self.secret, headers, body):
            data = json.loads(body)["data"]
            line = f"verified {data['title']!r}: {data['message']} (late={data['late']})"
            status = 200
        else:
            line, status = f"REJECTED {self.path}", 401
        with _print_lock:
            print(line, flush=True)
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


class Server(ThreadingHTTPServer):
    request_queue_size = 1024
    daemon_threads = True


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: webhook_receiver.py PORT SECRET")
    Handler.secret = sys.argv[2]
    try:
        Server(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
    except KeyboardInterrupt:
        pass
