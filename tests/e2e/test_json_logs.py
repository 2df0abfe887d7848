"""`DUETIME_LOG_FORMAT=json` on a real server doing real work: every line is one JSON object
with its context, and no secret appears anywhere in the output."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx

from duetime.auth import issue_token, load_or_create_secret
from duetime.settings import Settings
from tests.e2e.conftest import Receiver, Server

API_TOKEN = "api-token-7d1c0e9f3b"
APP_TOKEN = "app-token-52a8c3e1d0"
METRICS_TOKEN = "metrics-token-9e2b7f41"


def test_a_full_run_logs_json_lines_with_context_and_no_secret(
    make_server: Callable[..., Server], receiver: Receiver, tmp_path: Path
) -> None:
    receiver.respond = lambda name: 503

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["content-length"]))
            self.send_response(500)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    hook = ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    server = make_server(
        DUETIME_LOG_FORMAT="json",
        DUETIME_API_TOKEN=API_TOKEN,
        DUETIME_APP_API_TOKEN=APP_TOKEN,
        DUETIME_METRICS_TOKEN=METRICS_TOKEN,
        DUETIME_APP_URL=receiver.url,
        DUETIME_WEBHOOK_ALLOW_PRIVATE="true",
        DUETIME_DELIVERY_MAX_ATTEMPTS="2",
        DUETIME_DELIVERY_BACKOFF_BASE="0.1",
    ).start()
    secret = load_or_create_secret(Settings(data_dir=tmp_path / "data"))
    jwt = issue_token(secret, "alice", ttl=timedelta(hours=1), now=datetime.now(UTC))
    try:
        with httpx.Client(base_url=server.url, timeout=30) as http:
            jobs = {"dapr-api-token": API_TOKEN}
            failing = {"dueTime": "0s", "failurePolicy": {"drop": {}}}
            assert http.post("/v1.0/jobs/fails", json=failing, headers=jobs).status_code == 204
            # refused callers, with their (wrong) secrets in the request
            assert http.get("/v1.0/jobs/fails", headers={"dapr-api-token": "x" * 20}).is_error
            assert http.get("/api/tasks", headers={"authorization": f"Bearer {jwt}x"}).is_error
            assert http.get(
                "/metrics", headers={"authorization": f"Bearer {METRICS_TOKEN}"}
            ).is_success

            auth = {"authorization": f"Bearer {jwt}"}
            url = f"http://127.0.0.1:{hook.server_address[1]}/hook"
            channels = http.put(
                "/api/me/channels", json={"webhook": {"url": url, "enabled": True}}, headers=auth
            ).json()
            webhook_secret = channels["webhook"]["secret"]
            due = (datetime.now(UTC) + timedelta(seconds=1)).isoformat()
            made = http.post("/api/tasks", json={"title": "Pay rent", "due_at": due}, headers=auth)
            assert made.status_code == 201, made.text

            deadline = time.monotonic() + 30
            while not http.get("/api/dead-letters", headers=auth).json()["deliveries"]:
                assert time.monotonic() < deadline, "the webhook never became a dead letter"
                time.sleep(0.2)
            while not http.get("/v1.0/deadletters", headers=jobs).json()["deadLetters"]:
                assert time.monotonic() < deadline, "the job never became a dead letter"
                time.sleep(0.2)
    finally:
        hook.shutdown()
        hook.server_close()
    server.stop()

    output = (tmp_path / "server.log").read_text()
    lines = [json.loads(text) for text in output.splitlines() if text.strip()]
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    assert any(line["message"].startswith("duetime ready on ") for line in lines)
    assert any(line.get("job") == "app||default||app||fails" or line.get("job") == "fails"
               for line in lines if line["level"] == "warning"), output[-3000:]  # fmt: skip
    assert any("delivery_id" in line for line in lines if line["level"] == "warning")
    assert any(line["logger"] == "uvicorn.access" for line in lines)
    for value in (API_TOKEN, APP_TOKEN, METRICS_TOKEN, jwt, secret, webhook_secret, "x" * 20):
        assert value not in output, f"a secret is in the log: {value[:6]}…"
