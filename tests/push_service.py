"""A push service stand-in on 127.0.0.1 (FCM and Mozilla autopush cannot be reached from
here) that checks what a real one would, and more.

For every `POST /push/<device>` it checks the VAPID header (RFC 8292: `Authorization: vapid
t=<JWT>, k=<key>`, the JWT ES256-signed by `k`, `aud` the endpoint's origin, `exp` in the
future and at most 24 h away, `sub` the expected contact, `k` the key the device subscribed
with), `Content-Encoding: aes128gcm` and `TTL`, then decrypts the body (RFC 8291) with the
device's private key and auth secret using http_ece, as a browser does. What it got and
found is recorded in `pushes`; a request that fails a check is answered 400/401/403 and its
`problems` say why. `answer[device]` makes it answer other statuses (410, 429, 500...).

`Device` is the browser side: a P-256 ECDH key pair and 16 random auth bytes, and the
`PushSubscription.toJSON()` a browser would post.
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import http_ece
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Device:
    """A browser's push subscription: the private half stays here."""

    name: str
    endpoint: str
    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth: bytes = field(default_factory=lambda: os.urandom(16))
    application_server_key: str | None = None

    @property
    def p256dh(self) -> str:
        raw = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return b64url(raw)

    def to_json(self) -> dict[str, Any]:
        """What `PushSubscription.toJSON()` gives."""
        return {
            "endpoint": self.endpoint,
            "expirationTime": None,
            "keys": {"p256dh": self.p256dh, "auth": b64url(self.auth)},
        }


@dataclass
class Push:
    device: str
    headers: dict[str, str]
    body: bytes
    status: int
    problems: list[str]
    claims: dict[str, Any] | None = None
    plaintext: bytes | None = None
    at: float = field(default_factory=time.time)

    @property
    def data(self) -> Any:
        assert self.plaintext is not None, self.problems
        return json.loads(self.plaintext)


class PushServiceStandIn:
    def __init__(self, *, subject: str = "mailto:admin@localhost") -> None:
        self.subject = subject
        self.devices: dict[str, Device] = {}
        self.pushes: list[Push] = []
        self.answer: dict[str, int | Callable[[int], int]] = {}
        """Per device: a status, or a function of the push's number (1, 2...) for it."""
        self._cond = threading.Condition()
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                push = stand_in._receive(self.path, headers, body)
                self.send_response(push.status)
                self.send_header("content-length", "0")
                if push.status == 201:
                    self.send_header("location", f"/message/{len(stand_in.pushes)}")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.origin = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def device(self, name: str, application_server_key: str | None = None) -> Device:
        """A new browser subscription at this push service; pushes to it are checked
        against `application_server_key` (the VAPID key it subscribed with) when given."""
        found = Device(name, f"{self.origin}/push/{name}")
        found.application_server_key = application_server_key
        self.devices[name] = found
        return found

    def of(self, name: str) -> list[Push]:
        with self._cond:
            return [p for p in self.pushes if p.device == name]

    def wait_for(self, check: Callable[[], bool], timeout: float = 15.0) -> None:
        with self._cond:
            if not self._cond.wait_for(check, timeout):
                raise AssertionError(f"push service: condition not met in {timeout}s")

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- checking a push -------------------------------------------------------------------
    def _receive(self, path: str, headers: dict[str, str], body: bytes) -> Push:
        name = path.removeprefix("/push/")
        device = self.devices.get(name)
        problems: list[str] = []
        claims = plaintext = None
        status = 201
        if device is None:
            problems.append(f"no such device {name!r}")
            status = 404
        else:
            claims = self._check_vapid(headers, device, problems)
            if headers.get("content-encoding") != "aes128gcm":
                problems.append(f"Content-Encoding is {headers.get('content-encoding')!r}")
            if not headers.get("ttl", "").isdigit():
                problems.append(f"TTL is {headers.get('ttl')!r}, not a number of seconds")
            try:
                plaintext = http_ece.decrypt(
                    body,
                    private_key=device.private_key,
                    auth_secret=device.auth,
                    version="aes128gcm",
                )
            except Exception as exc:
                problems.append(f"cannot decrypt: {type(exc).__name__}: {exc}")
            if problems:
                status = 401 if any("VAPID" in p for p in problems) else 400
        with self._cond:
            number = len([p for p in self.pushes if p.device == name]) + 1
            wanted = self.answer.get(name)
            if not problems and wanted is not None:
                status = wanted(number) if callable(wanted) else wanted
            push = Push(name, headers, body, status, problems, claims, plaintext)
            self.pushes.append(push)
            self._cond.notify_all()
        return push

    def _check_vapid(
        self, headers: dict[str, str], device: Device, problems: list[str]
    ) -> dict[str, Any] | None:
        value = headers.get("authorization", "")
        scheme, _, rest = value.partition(" ")
        if scheme.lower() != "vapid":
            problems.append(f"VAPID: Authorization scheme is {scheme!r}, not vapid")
            return None
        params = {}
        for part in rest.split(","):
            key, _, val = part.strip().partition("=")
            params[key] = val
        token, key = params.get("t"), params.get("k")
        if not token or not key:
            problems.append("VAPID: Authorization lacks t= or k=")
            return None
        if device.application_server_key is not None and key != device.application_server_key:
            problems.append("VAPID: k is not the key the device subscribed with")
        try:
            public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(key))
            claims: dict[str, Any] = jwt.decode(
                token,
                public,
                algorithms=["ES256"],
                audience=self.origin,
                options={"require": ["aud", "exp", "sub"]},
            )
        except Exception as exc:
            problems.append(f"VAPID: JWT does not verify: {type(exc).__name__}: {exc}")
            return None
        if jwt.get_unverified_header(token).get("alg") != "ES256":
            problems.append("VAPID: alg is not ES256")
        if claims["exp"] > time.time() + 24 * 3600:
            problems.append("VAPID: exp is more than 24 h away")
        if claims["sub"] != self.subject:
            problems.append(f"VAPID: sub is {claims['sub']!r}, not {self.subject!r}")
        return claims
