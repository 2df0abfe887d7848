"""Opaque page cursors of the `/api` listings: `(kind, sort value, last id)`, base64url."""

from __future__ import annotations

import base64
import binascii
import json

from fastapi import HTTPException


def encode_cursor(kind: str, value: int, last_id: str) -> str:
    raw = json.dumps([kind, value, last_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(kind: str, cursor: str | None) -> tuple[int, str] | None:
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        got_kind, value, last_id = json.loads(raw)
        if got_kind != kind or type(value) is not int or not isinstance(last_id, str):
            raise ValueError
        if not -(2**63) <= value < 2**63:
            raise ValueError
    except (ValueError, binascii.Error, TypeError):
        raise HTTPException(422, detail="cursor is not one this listing returned") from None
    return value, last_id
