"""VAPID (RFC 8292): the server's P-256 key that identifies duetime to push services, and the
`Authorization: vapid t=<JWT>, k=<public key>` header of each push request.

The key is `DUETIME_VAPID_PRIVATE_KEY` when set, else the one kept in
`data_dir/vapid-private-key.pem`, created on first start. Browsers bind each subscription to
the public key they were given (`applicationServerKey`), so a new key orphans every
subscription: the file is written once, privately (mode 0600) and atomically, and never
replaced. The JWTs are signed with py_vapid.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

from duetime.settings import Settings

KEY_FILE = "vapid-private-key.pem"
"""The key's file name in `data_dir` when `DUETIME_VAPID_PRIVATE_KEY` is not set."""
TOKEN_SECONDS = 12 * 3600
"""A JWT's lifetime (RFC 8292 §2: at most 24 h); one is reused per push service origin until
it has less than an hour left."""
_RENEW_SECONDS = 3600


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Raises ValueError for anything but (optionally padded) base64url."""
    text = text.strip()
    if not text or any(c not in _B64URL for c in text.rstrip("=")):
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(text.rstrip("=") + "=" * (-len(text.rstrip("=")) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not base64url") from None


_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def audience(endpoint: str) -> str:
    """The JWT `aud` for a push endpoint: its origin (scheme, host, port if not default)."""
    parts = urlsplit(endpoint)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    default = 443 if scheme == "https" else 80
    return f"{scheme}://{host}" if port in (None, default) else f"{scheme}://{host}:{port}"


@dataclass
class VapidKeys:
    """The server key and the contact (`sub`) sent with it."""

    private_key: ec.EllipticCurvePrivateKey
    subject: str
    _tokens: dict[str, tuple[int, str]] = field(default_factory=dict, repr=False)

    @property
    def public_key(self) -> str:
        """The public key, base64url of the 65-byte uncompressed point: the browser's
        `applicationServerKey` and the header's `k`."""
        raw = self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return b64url(raw)

    def authorization(self, endpoint: str, now: float) -> str:
        """The `Authorization` header for a push to `endpoint` at unix time `now`: an ES256
        JWT with `aud` (the endpoint's origin), `exp` (`now` + 12 h) and `sub`."""
        aud = audience(endpoint)
        cached = self._tokens.get(aud)
        if cached is not None and cached[0] - now > _RENEW_SECONDS:
            return cached[1]
        exp = int(now) + TOKEN_SECONDS
        signer = Vapid02(self.private_key, conf={"no-strict": True})  # sub: checked by Settings
        header: str = signer.sign({"aud": aud, "exp": exp, "sub": self.subject})["Authorization"]
        # py_vapid writes `t=…,k=…`; RFC 8292 §3 shows `t=…, k=…` (either parses)
        header = header.replace(",k=", ", k=")
        if len(self._tokens) > 1000:
            self._tokens.clear()
        self._tokens[aud] = (exp, header)
        return header


def load_or_create_vapid_keys(settings: Settings) -> VapidKeys:
    """`settings.vapid_private_key` when set, else the key in `data_dir/vapid-private-key.pem`,
    created (mode 0600, published atomically, never overwritten) on first use: processes
    racing to create it all end up with the same key. Raises ValueError for a key that is
    not a P-256 private key and OSError when the file cannot be read or written."""
    if settings.vapid_private_key:
        return VapidKeys(
            _parse_key(settings.vapid_private_key, "DUETIME_VAPID_PRIVATE_KEY"),
            settings.vapid_subject,
        )
    path = settings.data_dir / KEY_FILE
    with contextlib.suppress(FileNotFoundError):
        return VapidKeys(_read_key(path), settings.vapid_subject)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd, tmp = tempfile.mkstemp(dir=settings.data_dir, prefix=f".{KEY_FILE}-")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
            f.flush()
            os.fsync(f.fileno())
        _publish(Path(tmp), path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
    return VapidKeys(_read_key(path), settings.vapid_subject)


def _publish(tmp: Path, path: Path) -> None:
    """The first process to publish wins (a hard link never replaces a file)."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        pass
    except OSError:  # no hard links on this file system
        if not path.exists():
            os.replace(tmp, path)


def _read_key(path: Path) -> ec.EllipticCurvePrivateKey:
    return _parse_key(path.read_bytes().decode("utf-8", "replace"), str(path))


def _parse_key(text: str, source: str) -> ec.EllipticCurvePrivateKey:
    """A P-256 private key from PEM or from base64url of its raw 32 bytes."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_private_key(text.encode(), password=None)
        else:
            raw = b64url_decode(text)
            if len(raw) != 32:
                raise ValueError("not 32 bytes")
            key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
    except (ValueError, TypeError) as exc:
        raise ValueError(
            f"the VAPID key in {source} is not a P-256 private key (PEM, or base64url of "
            f"its 32 raw bytes): {exc}"
        ) from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError(f"the VAPID key in {source} is not a P-256 (secp256r1) key")
    return key
