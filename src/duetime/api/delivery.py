"""Channel settings, deliveries and delivery dead letters: `/api/me/channels`,
`/api/deliveries`, `/api/dead-letters` (not the jobs engine's `/v1.0/...` dead letters)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from duetime.api.cursors import decode_cursor, encode_cursor
from duetime.api.delivery_wire import ChannelsIn, ChannelsOut, DeliveryOut, DeliveryPage
from duetime.api.users import CurrentUser
from duetime.delivery.model import DeliveryState
from duetime.delivery.service import (
    ChannelSettingsError,
    DeliveryNotFound,
    DeliveryService,
    ReplayConflict,
)


async def get_delivery(request: Request) -> DeliveryService:
    service: DeliveryService = request.app.state.delivery
    return service


Deliveries = Annotated[DeliveryService, Depends(get_delivery)]
Limit = Annotated[int, Query(ge=1, le=500)]


def _email_available(request: Request) -> bool:
    return request.app.state.settings.smtp_host is not None


def delivery_router() -> APIRouter:
    router = APIRouter(prefix="/api", tags=["delivery"])

    @router.get("/me/channels")
    async def get_channels(
        request: Request, user: CurrentUser, delivery: Deliveries
    ) -> ChannelsOut:
        """Your channels: in-app (always on), webhook, email and Web Push, and your webhook signing
        secret (created on first use)."""
        found = await delivery.channels(user)
        return ChannelsOut.of(found, email_available=_email_available(request))

    @router.put("/me/channels")
    async def put_channels(
        body: ChannelsIn, request: Request, user: CurrentUser, delivery: Deliveries
    ) -> ChannelsOut:
        """Replace your channel settings. A malformed or non-http(s) webhook URL, one whose
        host resolves to a private, loopback or link-local address, or an invalid email
        address is a 422 and nothing is saved."""
        try:
            saved = await delivery.set_channels(user, body.to_input())
        except ChannelSettingsError as exc:
            raise HTTPException(422, detail=str(exc)) from None
        return ChannelsOut.of(saved, email_available=_email_available(request))

    @router.post("/me/channels/webhook/secret")
    async def rotate_secret(
        request: Request, user: CurrentUser, delivery: Deliveries
    ) -> ChannelsOut:
        """Replace your webhook signing secret; webhooks sent from now on use the new one."""
        saved = await delivery.rotate_secret(user)
        return ChannelsOut.of(saved, email_available=_email_available(request))

    async def _page(
        delivery: DeliveryService,
        user: str,
        state: DeliveryState | None,
        limit: int,
        cursor: str | None,
    ) -> DeliveryPage:
        found = await delivery.deliveries(
            user, state=state, after=decode_cursor("d", cursor), limit=limit + 1
        )
        page, more = found[:limit], len(found) > limit
        next_cursor = None
        if more:
            last = page[-1][0]
            next_cursor = encode_cursor("d", last.created_us, last.id)
        return DeliveryPage(
            deliveries=[DeliveryOut.of(d, a) for d, a in page], next_cursor=next_cursor
        )

    @router.get("/deliveries")
    async def list_deliveries(
        user: CurrentUser,
        delivery: Deliveries,
        state: Literal["pending", "delivered", "dead"] | None = None,
        limit: Limit = 50,
        cursor: str | None = None,
    ) -> DeliveryPage:
        """Your webhook, email and push deliveries, newest first, each with every attempt
        (`history`). Pass `next_cursor` back as `cursor` for the next page."""
        return await _page(delivery, user, state, limit, cursor)

    @router.get("/dead-letters")
    async def list_dead_letters(
        user: CurrentUser, delivery: Deliveries, limit: Limit = 50, cursor: str | None = None
    ) -> DeliveryPage:
        """Your deliveries that exhausted their attempts (or failed permanently)."""
        return await _page(delivery, user, "dead", limit, cursor)

    @router.post("/dead-letters/{delivery_id}/replay", status_code=202)
    async def replay(delivery_id: str, user: CurrentUser, delivery: Deliveries) -> DeliveryOut:
        """Send a dead letter once more, now (one attempt, same idempotency key). 409 when
        it is not a dead letter, e.g. while a replay is under way."""
        try:
            found, attempts = await delivery.replay(user, delivery_id)
        except DeliveryNotFound:
            raise HTTPException(404, detail="dead letter not found") from None
        except ReplayConflict as exc:
            raise HTTPException(409, detail=str(exc)) from None
        return DeliveryOut.of(found, attempts)

    return router
