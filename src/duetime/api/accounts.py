"""`/api/auth`: sign-up, sign-in and sign-out with an email and a password, the password
change, and who is signed in, for browsers (a session cookie) on top of duetime.accounts.

The session cookie is `duetime_session`: HttpOnly, SameSite=Lax, Path=/, Secure when the
request came over HTTPS or `DUETIME_SESSION_COOKIE_SECURE=true`. Every sign-in and sign-up
sets a new session (the one the browser had is ended: no session fixation). Sign-in and
sign-up refuse cross-site requests (`Origin`, `Sec-Fetch-Site`), so another site cannot sign
a browser into an account of its choosing; changes made with the cookie need the session's
CSRF token (duetime.api.users).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field

from duetime.accounts.model import Account, AccountRuleError, Session
from duetime.accounts.service import (
    AccountDisabled,
    AccountExists,
    AccountNotFound,
    AccountService,
    RateLimited,
    SignedIn,
    SignInFailed,
    SignupRefused,
)
from duetime.api.users import (
    SESSION_COOKIE,
    CurrentCaller,
    check_csrf,
    clear_cookie_header,
    cross_site,
)
from duetime.timefmt import format_rfc3339, from_micros

_NO_STORE = {"cache-control": "no-store"}


class SignUpIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=1000, examples=["alice@example.com"])
    password: str = Field(max_length=1024, description="10 to 1024 characters")
    invite: str | None = Field(
        default=None, max_length=200, description="An invite code (`DUETIME_SIGNUP=invite`)"
    )


class SignInIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=1000, examples=["alice@example.com"])
    password: str = Field(max_length=1024)


class PasswordIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str = Field(max_length=1024)
    new_password: str = Field(max_length=1024, description="10 to 1024 characters")


class SessionOut(BaseModel):
    """The signed-in account, and the CSRF token its changes must carry."""

    user_id: str
    email: str
    is_admin: bool
    csrf_token: str
    expires_at: str

    @classmethod
    def of(cls, account: Account, session: Session) -> SessionOut:
        return cls(
            user_id=account.user_id,
            email=account.email,
            is_admin=account.is_admin,
            csrf_token=session.csrf_secret,
            expires_at=format_rfc3339(from_micros(session.expires_us)),
        )


class PasswordOut(BaseModel):
    ended_sessions: int
    """Other sessions of the account that were signed out."""


async def get_accounts(request: Request) -> AccountService:
    service: AccountService = request.app.state.accounts
    return service


Accounts = Annotated[AccountService, Depends(get_accounts)]


def _field_error(exc: AccountRuleError) -> RequestValidationError:
    """A rule failure as the 422 of a bad body field: `{"detail": "email: …", "errors"}`."""
    return RequestValidationError(
        [{"type": "value_error", "loc": ("body", exc.field), "msg": exc.message, "input": None}]
    )


def _refuse_cross_site(request: Request) -> None:
    reason = cross_site(request)
    if reason is not None:
        raise HTTPException(403, detail=reason)


def _secure(request: Request) -> bool:
    forced: bool | None = getattr(request.app.state.settings, "session_cookie_secure", None)
    return forced if forced is not None else request.url.scheme == "https"


def _signed_in(
    request: Request, response: Response, accounts: AccountService, new: SignedIn
) -> SessionOut:
    response.set_cookie(
        SESSION_COOKIE,
        new.token,
        max_age=int(accounts.policy.session_max_age.total_seconds()),
        path="/",
        secure=_secure(request),
        httponly=True,
        samesite="lax",
    )
    response.headers.update(_NO_STORE)
    return SessionOut.of(new.account, new.session)


def _client_ip(request: Request) -> str | None:
    return request.client.host if request.client is not None else None


def accounts_router() -> APIRouter:
    router = APIRouter(prefix="/api/auth", tags=["accounts"])
    errors: dict[int | str, dict[str, Any]] = {
        403: {"description": "cross-site, or sign-up closed, or the account is disabled"},
    }

    @router.post(
        "/signup", status_code=201, responses={**errors, 409: {"description": "email taken"}}
    )
    async def sign_up(
        body: SignUpIn, request: Request, response: Response, accounts: Accounts
    ) -> SessionOut:
        """Create an account (as `DUETIME_SIGNUP` allows) and sign in: sets the session
        cookie. 409 when the email has an account."""
        _refuse_cross_site(request)
        try:
            new = await accounts.sign_up(
                body.email,
                body.password,
                invite=body.invite,
                user_agent=request.headers.get("user-agent"),
                replacing=request.cookies.get(SESSION_COOKIE),
            )
        except AccountRuleError as exc:
            raise _field_error(exc) from None
        except SignupRefused as exc:
            raise HTTPException(403, detail=str(exc)) from None
        except AccountExists as exc:
            raise HTTPException(409, detail=str(exc)) from None
        return _signed_in(request, response, accounts, new)

    @router.post(
        "/signin",
        responses={
            **errors,
            401: {"description": "wrong email or password"},
            429: {"description": "too many failed sign-ins; see Retry-After"},
        },
    )
    async def sign_in(
        body: SignInIn, request: Request, response: Response, accounts: Accounts
    ) -> SessionOut:
        """Sign in: a new session cookie (the browser's old session, if any, ends). A wrong
        password and an unknown email get the same 401."""
        _refuse_cross_site(request)
        try:
            new = await accounts.sign_in(
                body.email,
                body.password,
                client_ip=_client_ip(request),
                user_agent=request.headers.get("user-agent"),
                replacing=request.cookies.get(SESSION_COOKIE),
            )
        except AccountRuleError as exc:
            raise _field_error(exc) from None
        except RateLimited as exc:
            raise HTTPException(
                429, detail=str(exc), headers={"retry-after": str(exc.retry_after)}
            ) from None
        except SignInFailed as exc:
            raise HTTPException(401, detail=str(exc)) from None
        except AccountDisabled as exc:
            raise HTTPException(403, detail=str(exc)) from None
        return _signed_in(request, response, accounts, new)

    @router.post("/signout", status_code=204, responses=errors)
    async def sign_out(request: Request, accounts: Accounts) -> Response:
        """End this browser's session and remove its cookie (204 also when there was
        none). With a live session it needs the CSRF token, as every change does."""
        token = request.cookies.get(SESSION_COOKIE)
        if token is not None:
            found = await accounts.authenticate(token)
            if found is not None:
                await check_csrf(request, found[0].csrf_secret)
                await accounts.sign_out(token)
        return Response(status_code=204, headers={"set-cookie": clear_cookie_header()})

    @router.post("/password", responses={**errors, 404: {"description": "no account"}})
    async def change_password(
        body: PasswordIn, caller: CurrentCaller, accounts: Accounts
    ) -> PasswordOut:
        """Change your password: the current one is checked, and every other session of
        the account ends (all of them when called with a bearer token)."""
        keep = caller.session.id if caller.session is not None else None
        try:
            ended = await accounts.change_password(
                caller.user_id, body.current_password, body.new_password, keep_session=keep
            )
        except AccountRuleError as exc:
            raise _field_error(exc) from None
        except RateLimited as exc:
            raise HTTPException(
                429, detail=str(exc), headers={"retry-after": str(exc.retry_after)}
            ) from None
        except AccountNotFound:
            raise HTTPException(
                404, detail="this user has no account (a bearer token user without a password)"
            ) from None
        return PasswordOut(ended_sessions=ended)

    @router.get("/session", responses={401: {"description": "not signed in"}})
    async def get_session(request: Request, response: Response, accounts: Accounts) -> SessionOut:
        """Who is signed in with this browser's cookie, and the CSRF token its changes
        must send as `X-CSRF-Token`. 401 without a live session."""
        token = request.cookies.get(SESSION_COOKIE)
        found = await accounts.authenticate(token) if token is not None else None
        if found is None:
            headers = {"set-cookie": clear_cookie_header()} if token is not None else None
            raise HTTPException(401, detail="not signed in", headers=headers)
        session, account = found
        response.headers.update(_NO_STORE)
        return SessionOut.of(account, session)

    return router
