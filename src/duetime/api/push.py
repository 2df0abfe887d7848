"""Web Push devices: `/api/push/key` and `/api/push/subscriptions`.

A browser subscribes with `pushManager.subscribe({userVisibleOnly: true,
applicationServerKey})` (the key from `GET /api/push/key`) and posts the result of
`subscription.toJSON()` here; each reminder then reaches that device as an encrypted push
while the push channel is on (`PUT /api/me/channels` with `{"push": {"enabled": true}}`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from duetime.api.users import CurrentUser
from duetime.delivery.push_model import PushSubscription
from duetime.delivery.push_service import (
    PushService,
    PushSubscriptionNotFound,
    SubscriptionError,
)
from duetime.timefmt import format_rfc3339, from_micros

Endpoint = Annotated[str, StringConstraints(min_length=1, max_length=2048)]
Key = Annotated[str, StringConstraints(min_length=1, max_length=200)]


async def get_push(request: Request) -> PushService:
    service: PushService = request.app.state.push
    return service


Push = Annotated[PushService, Depends(get_push)]


class KeysIn(BaseModel):
    model_config = ConfigDict(extra="ignore")  # toJSON() may grow keys

    p256dh: Key
    auth: Key


class SubscriptionIn(BaseModel):
    """`PushSubscription.toJSON()` as the browser gives it, and optionally a name for the
    device (default: the request's `User-Agent`)."""

    # No request example: one a "Try it out" could send would have to be a real push
    # service's endpoint (tests/e2e/test_openapi_examples.py sends every example).
    model_config = ConfigDict(extra="ignore")  # expirationTime and whatever a browser adds

    endpoint: Endpoint
    keys: KeysIn
    label: Annotated[str, StringConstraints(max_length=200)] | None = None


class SubscriptionOut(BaseModel):
    id: str
    endpoint: str
    label: str | None
    created_at: str
    updated_at: str
    last_success_at: str | None
    last_failure_at: str | None
    last_error: str | None

    @classmethod
    def of(cls, s: PushSubscription) -> SubscriptionOut:
        return cls(
            id=s.id,
            endpoint=s.endpoint,
            label=s.label,
            created_at=_at(s.created_us) or "",
            updated_at=_at(s.updated_us) or "",
            last_success_at=_at(s.last_success_us),
            last_failure_at=_at(s.last_failure_us),
            last_error=s.last_error,
        )


class SubscriptionList(BaseModel):
    subscriptions: list[SubscriptionOut]


class KeyOut(BaseModel):
    public_key: str = Field(
        description="The VAPID public key, base64url (65-byte uncompressed P-256 point): "
        "pass it as `applicationServerKey` to `pushManager.subscribe`."
    )


def _at(us: int | None) -> str | None:
    return None if us is None else format_rfc3339(from_micros(us))


def push_router() -> APIRouter:
    router = APIRouter(prefix="/api/push", tags=["push"])

    @router.get("/key")
    async def get_key(_user: CurrentUser, push: Push) -> KeyOut:
        """This server's VAPID public key, for `pushManager.subscribe({applicationServerKey})`."""
        return KeyOut(public_key=push.public_key)

    @router.post("/subscriptions", status_code=201)
    async def subscribe(
        body: SubscriptionIn, request: Request, response: Response, user: CurrentUser, push: Push
    ) -> SubscriptionOut:
        """Register this device (201), or refresh it (200: the same endpoint again keeps its
        id). The endpoint must be an https URL of a push service on a public address; the
        keys must be a 65-byte uncompressed P-256 point (`p256dh`) and 16 bytes (`auth`),
        base64url. Anything else is a 422 naming the field; nothing is saved."""
        label = body.label if body.label is not None else request.headers.get("user-agent")
        try:
            found, new = await push.subscribe(
                user, body.endpoint, body.keys.p256dh, body.keys.auth, label
            )
        except SubscriptionError as exc:
            raise HTTPException(422, detail=str(exc)) from None
        if not new:
            response.status_code = 200
        return SubscriptionOut.of(found)

    @router.get("/subscriptions")
    async def list_subscriptions(user: CurrentUser, push: Push) -> SubscriptionList:
        """Your devices, oldest first."""
        found = await push.subscriptions(user)
        return SubscriptionList(subscriptions=[SubscriptionOut.of(s) for s in found])

    @router.delete("/subscriptions/{subscription_id}", status_code=204)
    async def unsubscribe(subscription_id: str, user: CurrentUser, push: Push) -> Response:
        """Stop pushing to this device (call it when the browser unsubscribes)."""
        try:
            await push.unsubscribe(user, subscription_id)
        except PushSubscriptionNotFound:
            raise HTTPException(404, detail="push subscription not found") from None
        return Response(status_code=204)

    return router
