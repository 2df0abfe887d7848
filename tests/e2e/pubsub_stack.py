"""duetime split the way the briefs draw it, on real parts: the API (`DUETIME_ROLE=api`) and
the notifier (`duetime worker`), each with its own daprd, one Dapr Scheduler, Dapr pub/sub
over a real Redis or Kafka broker, one database.

The pub/sub Component and the Resiliency policy come from the Helm chart (`tests/helm.py`):
what runs here is what the chart deploys.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import httpx

from duetime.localdapr import Daprd, DaprdPorts, Scheduler
from tests.brokers import KafkaBroker, RedisServer
from tests.e2e.conftest import Receiver, Server
from tests.e2e.test_dapr_e2e import _read
from tests.e2e.test_tasks_e2e import SECRET, User
from tests.helm import dapr_resources

BrokerKind = Literal["redis", "kafka"]
Broker = RedisServer | KafkaBroker
API_APP, WORKER_APP = "duetime-api", "duetime-worker"  # the chart's app-ids
APP_TOKEN = "app-token-for-the-pubsub-tests"


class Side:
    """One duetime process and its daprd."""

    def __init__(
        self,
        root: Path,
        *,
        app_id: str,
        role: str,
        env: dict[str, str],
        scheduler: Scheduler,
        resources: dict[str, str],
        health_check: bool = True,
    ) -> None:
        ports = DaprdPorts()
        root.mkdir(parents=True, exist_ok=True)
        # the API as `duetime serve` with DUETIME_ROLE=api; the worker as `duetime worker`
        self.server = Server(
            {
                **env,
                **({"DUETIME_ROLE": role} if role == "api" else {}),
                "DUETIME_DAPR_HTTP_ENDPOINT": f"http://127.0.0.1:{ports.http}",
            },
            root / f"{role}.log",
            command="serve" if role == "api" else "worker",
        )
        self.daprd = Daprd(
            root / f"daprd-{role}",
            app_id=app_id,
            app_port=self.server.port,
            scheduler_address=scheduler,
            ports=ports,
            app_api_token=APP_TOKEN,
            resources=resources,
            app_health_path="/healthz" if health_check else None,
        )
        self.log = root / f"{role}.log"

    def start(self) -> Side:
        for attempt in range(3):
            self.server.start()
            self.daprd.app_port = self.server.port  # picked again if it was taken
            try:
                self.daprd.start(wait_for_app=True)
                return self
            except RuntimeError as exc:
                # the sidecar's ports were picked before the server started: another
                # process (a parallel test) can take one meanwhile; pick them again
                if "address already in use" not in str(exc) or attempt == 2:
                    raise
                self.server.stop()
                self.daprd.ports = DaprdPorts()
                endpoint = f"http://127.0.0.1:{self.daprd.ports.http}"
                self.server._env["DUETIME_DAPR_HTTP_ENDPOINT"] = endpoint
        raise AssertionError("unreachable")

    def stop(self) -> None:
        self.server.stop()
        self.daprd.stop()


class PubSubStack:
    def __init__(
        self,
        root: Path,
        kind: BrokerKind,
        broker: Broker,
        *,
        workers: int = 1,
        database_url: str | None = None,
        retries: int = 20,
        interval: str = "500ms",
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.root = root
        self.kind = kind
        self.broker = broker
        address = broker.address if isinstance(broker, RedisServer) else broker.bootstrap
        # Redis: a message a crashed worker's sidecar had taken is claimed again after
        # processingTimeout (the chart's default is 60 s, longer than the retries); 5 s here,
        # so a test does not wait a minute. A message claimed while its first delivery is
        # still retried is handled twice, which the fan-out absorbs (tested with it).
        extra = ("pubsub.redis.processingTimeout=5s", "pubsub.redis.redeliverInterval=1s")
        resources = dapr_resources(
            kind,
            address,
            retries=retries,
            interval=interval,
            extra=() if kind == "kafka" else extra,
        )
        root.mkdir(parents=True, exist_ok=True)
        self.scheduler = Scheduler(root / "scheduler")
        env = {
            "DUETIME_DATA_DIR": str(root / "data"),
            "DUETIME_LOG_LEVEL": "info",
            "DUETIME_JWT_SECRET": SECRET,
            "DUETIME_SCHEDULER": "dapr",
            "DUETIME_EVENT_PUBLISHER": "dapr",
            "DUETIME_APP_API_TOKEN": APP_TOKEN,
            "DUETIME_WEBHOOK_ALLOW_PRIVATE": "true",
            # a webhook attempt's lease: how soon a crashed worker's sends are taken over
            "DUETIME_WEBHOOK_TIMEOUT": "2",
            "DUETIME_SMTP_TIMEOUT": "2",
            **(extra_env or {}),
        }
        if database_url:
            env["DUETIME_DATABASE_URL"] = database_url
        self.api = Side(
            root,
            app_id=API_APP,
            role="api",
            env=env,
            scheduler=self.scheduler,
            resources=resources,
        )
        self.workers = [
            Side(
                root / f"w{i}",
                app_id=WORKER_APP,
                role="worker",
                env=env,
                scheduler=self.scheduler,
                resources=resources,
                # as the chart does it: no app health check on a Kafka subscriber (its
                # subscription can stay closed after the app was unhealthy,
                # dapr/components-contrib#4349); the retries carry a restart
                health_check=kind == "redis",
            )
            for i in range(workers)
        ]
        self.users: list[User] = []

    def start(self) -> PubSubStack:
        self.scheduler.start()
        self.api.start()
        for worker in self.workers:
            worker.start()
        return self

    @property
    def worker(self) -> Side:
        return self.workers[0]

    def user(self, name: str, receiver: Receiver) -> User:
        """A user whose reminders go to `receiver` at `/hooks/<name>`."""
        user = User(self.api.server, name)
        r = user.http.put(
            "/api/me/channels",
            json={"webhook": {"url": f"{receiver.url}/hooks/{name}", "enabled": True}},
        )
        assert r.status_code == 200, r.text
        self.users.append(user)
        return user

    def publish(self, topic: str, event: dict[str, Any]) -> httpx.Response:
        """Publish through the API's sidecar, as any Dapr app could."""
        return httpx.post(
            f"{self.api.daprd.http_url}/v1.0/publish/pubsub/{topic}",
            content=json.dumps(event),
            headers={"content-type": "application/cloudevents+json"},
            timeout=10,
        )

    def events(self, topic: str) -> list[dict[str, Any]]:
        """Every event on `topic`, read from the broker itself."""
        if isinstance(self.broker, RedisServer):
            with self.broker.client() as client:
                entries = client.xrange(topic)
            return [json.loads(fields[b"data"]) for _, fields in entries]
        return [r["value"] for r in self.broker.read(topic, timeout=30)]

    def logs(self) -> str:
        parts = [("api", _read(self.api.log)), ("daprd-api", self.api.daprd.tail())]
        for i, w in enumerate(self.workers):
            parts += [(f"worker{i}", _read(w.log)), (f"daprd-worker{i}", w.daprd.tail())]
        return "\n".join(f"--- {name}\n{text[-2500:]}" for name, text in parts)

    def close(self) -> None:
        for user in self.users:
            user.http.close()
        for worker in self.workers:
            worker.stop()
        self.api.stop()
        self.scheduler.stop()
