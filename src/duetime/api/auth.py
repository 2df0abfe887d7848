"""API token checks: the jobs API's token, and the app token on the trigger endpoint."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from duetime.api.deps import SettingsDep
from duetime.api.errors import APP_FORBIDDEN, APP_NOT_FOUND, UNAUTHORIZED, ApiError
from duetime.sidecar.apps import APP_ID_HEADER, App, AppAccessError, AppDirectory

API_TOKEN_HEADER = "dapr-api-token"

_dapr_token = APIKeyHeader(
    name=API_TOKEN_HEADER,
    auto_error=False,
    scheme_name="daprApiToken",
    description="The API token, as a Dapr client sends it (`DAPR_API_TOKEN`).",
)
_bearer = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description="The same API token as `Authorization: Bearer <token>`.",
)


def token_matches(expected: str, given: str | None) -> bool:
    """Constant-time comparison; works for any Unicode token."""
    return given is not None and hmac.compare_digest(
        expected.encode("utf-8"), given.encode("utf-8")
    )


def unauthorized() -> ApiError:
    # daprd answers a plain-text "invalid api token" 401; duetime sends its error body
    return ApiError(401, UNAUTHORIZED, "invalid api token", {"www-authenticate": "Bearer"})


async def require_api_token(
    settings: SettingsDep,
    dapr_token: Annotated[str | None, Security(_dapr_token)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
) -> None:
    """When `api_token` is set, require it in `dapr-api-token` (as daprd does with
    `DAPR_API_TOKEN`) or as `Authorization: Bearer <token>`; otherwise 401."""
    expected = settings.api_token
    if not expected:
        return
    if token_matches(expected, dapr_token):
        return
    if bearer is not None and token_matches(expected, bearer.credentials):
        return
    raise unauthorized()


_app_token = APIKeyHeader(
    name=API_TOKEN_HEADER,
    auto_error=False,
    scheme_name="appApiToken",
    description="The app token a Dapr sidecar sends to its app (`APP_API_TOKEN`).",
)


async def require_app_token(
    settings: SettingsDep,
    given: Annotated[str | None, Security(_app_token)],
) -> None:
    """When `app_api_token` is set, require it in `dapr-api-token`, the header a Dapr
    sidecar sends its app when it runs with `APP_API_TOKEN`; otherwise 401."""
    expected = settings.app_api_token
    if expected and not token_matches(expected, given):
        raise unauthorized()


_app_id = APIKeyHeader(
    name=APP_ID_HEADER,
    auto_error=False,
    scheme_name="daprAppId",
    description="The app this call acts for (default: `DUETIME_APP_ID`, or the token's app).",
)


async def caller_app(
    request: Request,
    settings: SettingsDep,
    dapr_token: Annotated[str | None, Security(_dapr_token)],
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    app_id: Annotated[str | None, Security(_app_id)],
) -> App:
    """The app a Jobs or pub/sub call acts for (rules in `duetime.sidecar.apps`): 401 for a
    token that is not the API token or an app's, 403 for an app token naming another app,
    404 for an unknown `dapr-app-id`."""
    apps: AppDirectory = request.app.state.apps
    token = dapr_token or (bearer.credentials if bearer is not None else None)
    try:
        return apps.identify(token, app_id, operator_token=settings.api_token)
    except AppAccessError as exc:
        if exc.status == 401:
            raise unauthorized() from None
        code = APP_FORBIDDEN if exc.status == 403 else APP_NOT_FOUND
        raise ApiError(exc.status, code, str(exc)) from None


CallerApp = Annotated[App, Depends(caller_app)]
