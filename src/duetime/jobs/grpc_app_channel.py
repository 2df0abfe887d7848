"""Delivery to an external gRPC app, as a Dapr sidecar does it (daprd 1.16.5
`pkg/channel/grpc/grpc_channel.go` `sendJob`)."""

from __future__ import annotations

import dapr.proto.runtime.v1 as pb
import grpc
import grpc.aio
from dapr.proto.common.v1 import common_pb2
from dapr.proto.runtime.v1 import appcallback_pb2_grpc
from google.protobuf import any_pb2, struct_pb2

from duetime.jobs.app_channel import AppDeliveryError, NotFoundRule, not_found_answer
from duetime.jobs.model import JSON, Answer, Trigger
from duetime.timefmt import format_rfc3339

MAX_MESSAGE = 4 * 1024 * 1024  # daprd's default --max-body-size, both ways


def _json_to_value(data: JSON) -> struct_pb2.Value:
    value = struct_pb2.Value()
    if data is None:
        value.null_value = struct_pb2.NULL_VALUE
    elif isinstance(data, bool):
        value.bool_value = data
    elif isinstance(data, int | float):
        value.number_value = float(data)
    elif isinstance(data, str):
        value.string_value = data
    elif isinstance(data, dict):
        value.struct_value.SetInParent()  # {} is a Struct too
        for k, v in data.items():
            value.struct_value.fields[k].CopyFrom(_json_to_value(v))
    else:
        value.list_value.SetInParent()  # as is []
        value.list_value.values.extend(_json_to_value(v) for v in data)
    return value


def job_data_any(data: JSON) -> any_pb2.Any:
    """A job's data as daprd stores it: a `google.protobuf.Value` Any; an empty Any when
    the job has none (what the Python SDK sends for a job without data)."""
    packed = any_pb2.Any()
    if data is not None:
        packed.Pack(_json_to_value(data))
    return packed


class GrpcAppChannel:
    """A trigger handler that calls `AppCallbackAlpha.OnJobEventAlpha1` on the app at
    `address` (`host:port`, plaintext, as daprd's app channel without mTLS) with
    `JobEventRequest{name, data, method: "job/<name>", content_type: <data's type URL>,
    http_extension: {verb: POST}}`, and `dapr-api-token` metadata when a token is set.

    OK is success, and so is NOT_FOUND with `not_found="success"` (daprd's rule; logged and
    answered `Answer.APP_NOT_FOUND`, as for HTTP's 404); NOT_FOUND with
    `not_found="failure"`, any other status, a timeout or an app that cannot be reached
    raises `AppDeliveryError`, which the engine counts against the job's failure policy.
    Besides daprd's request, duetime adds the `duetime-scheduled-time`, `duetime-attempt`
    and `duetime-late` metadata, as the HTTP channel adds them as headers.
    """

    def __init__(
        self,
        address: str,
        *,
        token: str | None = None,
        timeout: float = 30.0,
        not_found: NotFoundRule = "success",
    ) -> None:
        self._not_found = not_found
        self._address = address.removeprefix("grpc://").rstrip("/")
        self._token = token
        self._timeout = timeout
        self._channel: grpc.aio.Channel | None = None
        self._stub: appcallback_pb2_grpc.AppCallbackAlphaStub | None = None

    def _ensure_stub(self) -> appcallback_pb2_grpc.AppCallbackAlphaStub:
        # created on first use, inside the event loop that delivers
        if self._stub is None:
            self._channel = grpc.aio.insecure_channel(
                self._address,
                options=[
                    ("grpc.max_send_message_length", MAX_MESSAGE),
                    ("grpc.max_receive_message_length", MAX_MESSAGE),
                ],
            )
            self._stub = appcallback_pb2_grpc.AppCallbackAlphaStub(self._channel)
        return self._stub

    async def __call__(self, trigger: Trigger) -> Answer | None:
        data = job_data_any(trigger.data)
        request = pb.JobEventRequest(
            name=trigger.name,
            data=data,
            method=f"job/{trigger.name}",
            content_type=data.type_url,
            http_extension=common_pb2.HTTPExtension(verb=common_pb2.HTTPExtension.POST),
        )
        metadata: list[tuple[str, str]] = [
            ("duetime-scheduled-time", format_rfc3339(trigger.scheduled_at)),
            ("duetime-attempt", str(trigger.attempt)),
            ("duetime-late", "true" if trigger.late else "false"),
        ]
        if self._token:
            metadata.append(("dapr-api-token", self._token))
        try:
            await self._ensure_stub().OnJobEventAlpha1(
                request, metadata=metadata, timeout=self._timeout
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() == grpc.StatusCode.OK:
                return None
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return not_found_answer(trigger, "NOT_FOUND", self._not_found)
            raise AppDeliveryError(
                f"app answered {exc.code().name}: {(exc.details() or '')[:200]}"
            ) from exc
        return None

    async def aclose(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
            self._stub = None
