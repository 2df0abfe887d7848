"""Dapr's gRPC API (`dapr.proto.runtime.v1.Dapr`, from the stubs the `dapr` package ships),
served by duetime: the Jobs calls (`duetime.sidecar.grpc_jobs`), pub/sub publishing and
`GetMetadata`. Every other method of the service answers UNIMPLEMENTED, naming the method.

Callers are told apart as on HTTP (`duetime.sidecar.apps`): the `dapr-api-token` metadata
is the HTTP header, `dapr-app-id` names the app. A bad token is UNAUTHENTICATED as daprd
sends it (message `Unauthorized`, an `ErrorInfo` whose `http.error_message` says why), a
token of another app PERMISSION_DENIED, an unknown app id NOT_FOUND. Messages over 4 MiB
(daprd's default `--max-body-size`) are RESOURCE_EXHAUSTED, refused by grpc itself.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import dapr.proto.runtime.v1 as pb
import grpc
from dapr.proto.runtime.v1 import dapr_pb2_grpc
from google.protobuf import empty_pb2
from google.rpc import error_details_pb2, status_pb2

from duetime.settings import Settings
from duetime.sidecar.apps import APP_ID_HEADER, App, AppAccessError, AppDirectory
from duetime.sidecar.grpc_jobs import GrpcJobs, RpcError
from duetime.sidecar.grpc_pubsub import GrpcPubSub, metadata_source
from duetime.sidecar.jobs import SidecarJobs
from duetime.sidecar.pubsub import EmbeddedPubSub

log = logging.getLogger(__name__)

API_TOKEN_METADATA = "dapr-api-token"
MAX_MESSAGE = 4 * 1024 * 1024
ERROR_DOMAIN = "dapr.io"
_STATUS_DETAILS = "grpc-status-details-bin"
_SERVICE = "dapr.proto.runtime.v1.Dapr"


Metadata = Mapping[str, str]
"""A call's metadata: the first value of each key."""


class GrpcPublisher(Protocol):
    """What `PublishEvent` and `BulkPublishEvent*` need (the embedded broker's gRPC face).
    Each raises `RpcError` for a request it refuses."""

    async def publish(
        self, app: App, request: pb.PublishEventRequest, metadata: Metadata
    ) -> None: ...

    async def bulk_publish(
        self, app: App, request: pb.BulkPublishRequest, metadata: Metadata
    ) -> pb.BulkPublishResponse: ...


MetadataSource = Callable[[App], Awaitable[pb.GetMetadataResponse]]
"""Builds `GetMetadata`'s answer for the calling app."""


def _metadata(context: grpc.aio.ServicerContext) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in context.invocation_metadata() or ():
        if isinstance(value, str) and key not in out:
            out[key] = value
    return out


async def _abort(context: grpc.aio.ServicerContext, error: RpcError) -> None:
    """Abort the call with `error`, its `ErrorInfo` in the rich status as daprd sends it."""
    details = status_pb2.Status(code=error.code.value[0], message=error.message)
    if error.reason is not None:
        info = error_details_pb2.ErrorInfo(
            reason=error.reason, domain=ERROR_DOMAIN, metadata=error.metadata
        )
        details.details.add().Pack(info)
    trailer = ((_STATUS_DETAILS, details.SerializeToString()),)
    await context.abort(error.code, error.message, trailing_metadata=trailer)


def _unauthenticated(why: str) -> RpcError:
    # daprd: invokev1.ErrorFromHTTPResponseCode(401, why)
    return RpcError(
        grpc.StatusCode.UNAUTHENTICATED,
        "Unauthorized",
        "Unauthorized",
        {"http.code": "401", "http.error_message": why},
    )


class DaprServicer(dapr_pb2_grpc.DaprServicer):
    """The `Dapr` service. `jobs` is None where this process does not run the jobs API;
    `publisher` and `metadata` are None until wired (their calls answer UNIMPLEMENTED)."""

    def __init__(
        self,
        apps: AppDirectory,
        jobs: SidecarJobs | None,
        *,
        namespace: str,
        operator_token: str | None = None,
        publisher: GrpcPublisher | None = None,
        metadata: MetadataSource | None = None,
    ) -> None:
        self._apps = apps
        self._operator_token = operator_token
        self._jobs = None if jobs is None else GrpcJobs(jobs, namespace)
        self._publisher = publisher
        self._metadata = metadata

    def _caller(self, md: Metadata) -> App:
        token = md.get(API_TOKEN_METADATA)
        try:
            return self._apps.identify(
                token, md.get(APP_ID_HEADER), operator_token=self._operator_token
            )
        except AppAccessError as exc:
            if exc.status == 401:
                if token is None:
                    raise _unauthenticated("missing api token in request metadata") from None
                # daprd's words for a token that is not the one; duetime's for the rest
                why = "api token mismatch" if str(exc) == "invalid api token" else str(exc)
                raise _unauthenticated(f"authentication error: {why}") from None
            code = (
                grpc.StatusCode.PERMISSION_DENIED
                if exc.status == 403
                else grpc.StatusCode.NOT_FOUND
            )
            reason = "DUETIME_APP_FORBIDDEN" if exc.status == 403 else "DUETIME_APP_NOT_FOUND"
            raise RpcError(code, str(exc), reason) from None

    def _jobs_api(self, method: str) -> GrpcJobs:
        if self._jobs is None:
            raise _unimplemented(method, "this duetime process does not run the jobs API")
        return self._jobs

    # -- jobs ----------------------------------------------------------------------------

    async def ScheduleJobAlpha1(self, request: Any, context: Any) -> Any:
        return await self._call(context, self._schedule, request, "ScheduleJobAlpha1")

    async def ScheduleJob(self, request: Any, context: Any) -> Any:
        return await self._call(context, self._schedule, request, "ScheduleJob")

    async def GetJobAlpha1(self, request: Any, context: Any) -> Any:
        return await self._call(context, self._get, request, "GetJobAlpha1")

    async def GetJob(self, request: Any, context: Any) -> Any:
        return await self._call(context, self._get, request, "GetJob")

    async def DeleteJobAlpha1(self, request: Any, context: Any) -> Any:
        return await self._call(context, self._delete, request, "DeleteJobAlpha1")

    async def DeleteJob(self, request: Any, context: Any) -> Any:
        return await self._call(context, self._delete, request, "DeleteJob")

    async def ListJobsAlpha1(self, request: Any, context: Any) -> Any:
        return await self._call(context, self._list_alpha1, request, "ListJobsAlpha1")

    async def ListJobs(self, request: Any, context: Any) -> Any:
        return await self._call(context, self._list, request, "ListJobs")

    async def DeleteJobsByPrefixAlpha1(self, request: Any, context: Any) -> Any:
        return await self._call(
            context, self._delete_prefix_alpha1, request, "DeleteJobsByPrefixAlpha1"
        )

    async def DeleteJobsByPrefix(self, request: Any, context: Any) -> Any:
        return await self._call(context, self._delete_prefix, request, "DeleteJobsByPrefix")

    async def _schedule(self, app: App, request: Any, method: str, md: Metadata) -> Any:
        await self._jobs_api(method).schedule(app, request)
        return pb.ScheduleJobResponse()

    async def _get(self, app: App, request: Any, method: str, md: Metadata) -> Any:
        return await self._jobs_api(method).get(app, request)

    async def _delete(self, app: App, request: Any, method: str, md: Metadata) -> Any:
        await self._jobs_api(method).delete(app, request)
        return pb.DeleteJobResponse()

    async def _list_alpha1(self, app: App, request: Any, method: str, md: Metadata) -> Any:
        return pb.ListJobsResponseAlpha1(jobs=await self._jobs_api(method).list_all(app))

    async def _list(self, app: App, request: Any, method: str, md: Metadata) -> Any:
        return pb.ListJobsResponse(jobs=await self._jobs_api(method).list_all(app))

    async def _delete_prefix_alpha1(self, app: App, request: Any, method: str, md: Metadata) -> Any:
        await self._jobs_api(method).delete_prefix(app, request.name_prefix)
        return pb.DeleteJobsByPrefixResponseAlpha1()

    async def _delete_prefix(self, app: App, request: Any, method: str, md: Metadata) -> Any:
        await self._jobs_api(method).delete_prefix(app, request.name_prefix)
        return pb.DeleteJobsByPrefixResponse()

    # -- pub/sub and metadata --------------------------------------------------------------

    async def PublishEvent(self, request: Any, context: Any) -> Any:
        return await self._call(context, self._publish, request, "PublishEvent")

    async def BulkPublishEventAlpha1(self, request: Any, context: Any) -> Any:
        return await self._call(context, self._bulk_publish, request, "BulkPublishEventAlpha1")

    async def BulkPublishEvent(self, request: Any, context: Any) -> Any:
        return await self._call(context, self._bulk_publish, request, "BulkPublishEvent")

    async def GetMetadata(self, request: Any, context: Any) -> Any:
        return await self._call(context, self._get_metadata, request, "GetMetadata")

    async def _publish(self, app: App, request: Any, method: str, md: Metadata) -> Any:
        if self._publisher is None:
            raise _unimplemented(method, "pub/sub is not served by this duetime process")
        await self._publisher.publish(app, request, md)
        return empty_pb2.Empty()

    async def _bulk_publish(self, app: App, request: Any, method: str, md: Metadata) -> Any:
        if self._publisher is None:
            raise _unimplemented(method, "pub/sub is not served by this duetime process")
        return await self._publisher.bulk_publish(app, request, md)

    async def _get_metadata(self, app: App, request: Any, method: str, md: Metadata) -> Any:
        if self._metadata is None:
            return pb.GetMetadataResponse(id=app.app_id)
        return await self._metadata(app)

    # -- plumbing ---------------------------------------------------------------------------

    async def _call(
        self,
        context: grpc.aio.ServicerContext,
        handler: Callable[[App, Any, str, Metadata], Awaitable[Any]],
        request: Any,
        method: str,
    ) -> Any:
        try:
            md = _metadata(context)
            app = self._caller(md)
            return await handler(app, request, method, md)
        except RpcError as error:
            await _abort(context, error)
        except Exception:
            log.exception("gRPC %s failed", method)
            await _abort(context, RpcError(grpc.StatusCode.INTERNAL, f"{method}: internal error"))
        raise AssertionError("unreachable: abort raises")  # pragma: no cover


def _unimplemented(method: str, why: str | None = None) -> RpcError:
    message = (
        f"{_SERVICE}/{method} is not implemented by duetime: it serves the Jobs and pub/sub "
        "building blocks (and GetMetadata) of the Dapr API only"
    )
    if why:
        message = f"{message}; {why}"
    return RpcError(grpc.StatusCode.UNIMPLEMENTED, message)


async def _refuse(app: App, request: Any, method: str, md: Metadata) -> Any:
    raise _unimplemented(method)


def _fill_unimplemented(cls: type[DaprServicer]) -> None:
    """Give every method of the generated servicer that `cls` does not serve an answer
    that names it (the generated one says only "Method not implemented!")."""
    for name, _ in inspect.getmembers(dapr_pb2_grpc.DaprServicer, inspect.isfunction):
        if name.startswith("_") or name in cls.__dict__:
            continue

        def make(method: str) -> Callable[..., Awaitable[Any]]:
            async def unimplemented(self: DaprServicer, request: Any, context: Any) -> Any:
                # the token is checked first, as daprd's interceptor does for every method
                return await self._call(context, _refuse, request, method)

            unimplemented.__name__ = method
            return unimplemented

        setattr(cls, name, make(name))


_fill_unimplemented(DaprServicer)


class DaprGrpcServer:
    """The gRPC server on `host:port` (grpc.aio), serving `servicer`."""

    def __init__(self, servicer: DaprServicer, host: str, port: int) -> None:
        self._servicer = servicer
        self.host = host
        self.port = port
        self._server: grpc.aio.Server | None = None

    async def start(self) -> None:
        """Bind and serve; raises `OSError` naming `DUETIME_GRPC_PORT` when the address
        cannot be bound."""
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", MAX_MESSAGE),
                ("grpc.max_send_message_length", MAX_MESSAGE),
                ("grpc.so_reuseport", 0),
            ]
        )
        dapr_pb2_grpc.add_DaprServicer_to_server(self._servicer, server)
        address = f"{_bracket(self.host)}:{self.port}"
        try:
            bound = server.add_insecure_port(address)
        except RuntimeError as exc:
            raise OSError(
                f"cannot serve the Dapr gRPC API on {address} (DUETIME_GRPC_PORT={self.port}): "
                f"{exc}; set DUETIME_GRPC_PORT to a free port, or 0 to turn it off"
            ) from None
        if self.port == 0:
            self.port = bound
        await server.start()
        self._server = server
        log.info("Dapr gRPC API on %s", f"{_bracket(self.host)}:{self.port}")

    async def stop(self, grace: float = 5.0) -> None:
        """Refuse new calls, let running ones finish for up to `grace` seconds."""
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def grpc_server(
    settings: Settings,
    apps: AppDirectory,
    jobs: SidecarJobs | None,
    *,
    pubsub: EmbeddedPubSub | None = None,
    version: str = "",
) -> DaprGrpcServer | None:
    """The server `settings` ask for: on `host:grpc_port` in API roles (Jobs on `jobs`,
    publishing on `pubsub`), None when `grpc_port` is 0 or this process runs no API."""
    if not settings.grpc_port or not settings.runs_api:
        return None
    servicer = DaprServicer(
        apps,
        jobs,
        namespace=settings.namespace,
        operator_token=settings.api_token,
        publisher=None if pubsub is None else GrpcPubSub(pubsub),
        metadata=metadata_source(pubsub, version),
    )
    return DaprGrpcServer(servicer, settings.host, settings.grpc_port)
