"""The apps one duetime serves, and which app a caller acts for.

How an app is identified (docs/reference/dapr-compatibility.md, "Apps"):

* An app in `DUETIME_APPS` with an `api_token` is the caller whose `dapr-api-token` (or
  bearer token) is that token; such a token acts only for its app (naming another in
  `dapr-app-id` is a 403).
* Otherwise the caller acts for the app named by the `dapr-app-id` header, or for the
  default app (`DUETIME_APP_ID`) when it names none. When `DUETIME_API_TOKEN` is set the
  caller must present it; an app that has a token of its own can then be named only with
  that operator token or its own.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Literal

from duetime.jobs.scope import app_scope
from duetime.settings import Settings

APP_ID_HEADER = "dapr-app-id"


class AppAccessError(Exception):
    """A caller may not act for the app it asked for. `status` is the HTTP status (401
    unknown token, 403 a token of another app, 404 unknown app id)."""

    def __init__(self, status: Literal[401, 403, 404], message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class App:
    """An app that schedules jobs and subscribes to topics. `url` is where its triggers and
    events go (`http://…` for `http`, `host:port` for `grpc`); `app_token` is sent to it."""

    app_id: str
    scope: str
    url: str | None = None
    protocol: Literal["http", "grpc"] = "http"
    api_token: str | None = None
    app_token: str | None = None


def _same(expected: str, given: str) -> bool:
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


class AppDirectory:
    """The default app and those of `DUETIME_APPS`, by id."""

    def __init__(self, apps: list[App], *, default: str) -> None:
        self._apps = {a.app_id: a for a in apps}
        self.default = self._apps[default]

    @classmethod
    def from_settings(cls, settings: Settings) -> AppDirectory:
        ns = settings.namespace
        apps = [
            App(
                settings.app_id,
                app_scope(ns, settings.app_id),
                settings.app_url,
                settings.app_protocol,
                None,
                settings.app_api_token,
            )
        ]
        for app_id, spec in settings.apps.items():
            apps.append(
                App(
                    app_id,
                    app_scope(ns, app_id),
                    spec.url,
                    spec.protocol,
                    spec.api_token,
                    spec.app_api_token,
                )
            )
        return cls(apps, default=settings.app_id)

    @classmethod
    def single(cls, app_id: str = "app", namespace: str = "default") -> AppDirectory:
        """One app and no URL: for a Jobs API without triggers to send (tests, tools)."""
        return cls([App(app_id, app_scope(namespace, app_id))], default=app_id)

    def get(self, app_id: str) -> App | None:
        return self._apps.get(app_id)

    def all(self) -> list[App]:
        return list(self._apps.values())

    def identify(self, token: str | None, app_id: str | None, *, operator_token: str | None) -> App:
        """The app a caller with `token` (None: none sent) and `dapr-app-id` header `app_id`
        (None or empty: none) acts for, when the operator's token (`DUETIME_API_TOKEN`) is
        `operator_token`. Raises `AppAccessError`."""
        app_id = app_id.strip() if app_id else None
        if token:
            for app in self._apps.values():
                if app.api_token and _same(app.api_token, token):
                    if app_id and app_id != app.app_id:
                        raise AppAccessError(
                            403, f"this token acts only for app {app.app_id!r}, not {app_id!r}"
                        )
                    return app
        operator = bool(operator_token and token and _same(operator_token, token))
        if operator_token and not operator:
            raise AppAccessError(401, "invalid api token")
        if not app_id:
            return self.default
        named = self._apps.get(app_id)
        if named is None:
            raise AppAccessError(404, f"no app {app_id!r} on this duetime (DUETIME_APPS)")
        if named.api_token and not operator:
            raise AppAccessError(401, f"app {app_id!r} needs its api token")
        return named
