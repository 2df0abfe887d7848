"""The composition root: the one place that chooses and wires adapters."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

from opentelemetry.trace import TracerProvider
from sqlalchemy.ext.asyncio import AsyncEngine

from duetime.accounts.passwords import Argon2PasswordHasher
from duetime.accounts.service import AccountPolicy, AccountService
from duetime.accounts.store import SqlAccountStore
from duetime.api.deps import TriggerSink
from duetime.auth import load_or_create_secret
from duetime.clock import Clock, SystemClock
from duetime.db.engine import create_engine
from duetime.db.storage import StorageHealth
from duetime.delivery.hub import NotificationHub
from duetime.delivery.model import ChannelName, RetryPolicy
from duetime.delivery.outbox import DeliveryOutbox
from duetime.delivery.port import Channel
from duetime.delivery.push import WebPushChannel
from duetime.delivery.push_service import PushService
from duetime.delivery.push_store import SqlPushSubscriptionStore
from duetime.delivery.service import DeliveryService
from duetime.delivery.smtp import SmtpConfig, SmtpEmailChannel
from duetime.delivery.store import SqlDeliveryStore
from duetime.delivery.subscriber import FanOut
from duetime.delivery.vapid import load_or_create_vapid_keys
from duetime.delivery.webhook import WebhookChannel
from duetime.delivery.worker import DeliveryWorker
from duetime.events.dapr import DaprEventPublisher
from duetime.events.dead_letters import SqlEventDeadLetters
from duetime.events.embedded import EmbeddedEventPublisher
from duetime.events.embedded_broker import EmbeddedBrokerPublisher
from duetime.events.port import EventPublisher
from duetime.events.relay import EventRelay
from duetime.events.store import SqlEventStore
from duetime.events.tee import TeePublisher
from duetime.jobs import JobScheduler, Trigger
from duetime.jobs.app_channel import HttpAppChannel
from duetime.jobs.dapr import DaprJobScheduler, DaprSidecar
from duetime.jobs.embedded import EmbeddedJobScheduler
from duetime.jobs.grpc_app_channel import GrpcAppChannel
from duetime.jobs.handlers import DirectTriggers, describe_error
from duetime.jobs.port import TriggerHandler
from duetime.jobs.scope import APP_SCOPES
from duetime.jobs.sql_store import SqlJobStore
from duetime.metrics import Sampler
from duetime.settings import Settings
from duetime.sidecar.apps import App, AppDirectory
from duetime.sidecar.jobs import SidecarJobs
from duetime.sidecar.pubsub import EmbeddedPubSub, load_resources
from duetime.sidecar.pubsub import RetryPolicy as PubSubRetryPolicy
from duetime.sidecar.triggers import AppTriggers
from duetime.tasks.model import REMINDER_JOB_PREFIX
from duetime.tasks.relay import SchedulingRelay
from duetime.tasks.scheduling import InlineScheduling, Scheduling
from duetime.tasks.service import MAINTENANCE_JOB, TaskService
from duetime.tasks.store import SqlTaskStore
from duetime.tracing import Tracing
from duetime.tracing import configure as configure_tracing

log = logging.getLogger(__name__)


class _Closer(Protocol):
    async def aclose(self) -> None: ...


@dataclass
class Runtime:
    """What a running duetime is made of; `close` releases it."""

    settings: Settings
    scheduler: JobScheduler
    trigger_sink: TriggerSink
    tasks: TaskService
    task_store: SqlTaskStore
    relay: SchedulingRelay
    jwt_secret: str
    delivery: DeliveryService
    delivery_store: SqlDeliveryStore
    worker: DeliveryWorker
    events: SqlEventStore
    event_relay: EventRelay
    hub: NotificationHub
    clock: Clock
    broker: EventPublisher
    """Where events go beyond this process (the embedded bus when there is no broker)."""
    event_dead_letters: SqlEventDeadLetters
    subscriber: FanOut | None
    """The notifier's pub/sub handler, when this process receives `reminder.due` through
    Dapr; None when it fans out as reminders fire, or does not run the notifier."""
    apps: AppDirectory
    """The apps this duetime serves as their Dapr sidecar stand-in."""
    jobs: SidecarJobs
    """The Jobs building block, scoped per app (the HTTP and gRPC Jobs APIs)."""
    storage: StorageHealth = field(default_factory=StorageHealth)
    closers: list[_Closer] = field(default_factory=list)
    pubsub: EmbeddedPubSub | None = None
    """The embedded Dapr pub/sub broker (API roles; `duetime.sidecar.pubsub`)."""
    sampler: Sampler | None = None
    """Sets the metrics gauges of what is stored."""
    tracing: Tracing | None = None
    """The spans' tracer (`duetime.tracing`); None when tracing is off."""
    accounts: AccountService | None = None
    """Browser accounts and sessions (`duetime.accounts`)."""
    push: PushService | None = None
    """The user's Web Push devices and this server's VAPID key (`duetime.delivery.push`)."""
    _maintenance: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.sampler is not None:
            await self.sampler.start()
        if self.settings.event_relay and self.settings.runs_api:
            # Publishing is the API's: its relay hands each event to its own live streams
            # first. The worker's events (delivered, failed) are in the shared outbox, which
            # the API's relay sweeps.
            await self.event_relay.start()
        if self.settings.runs_notifier:
            await self.worker.start()
        if not self.settings.runs_api:
            return
        await self.scheduler.start()
        if isinstance(self.scheduler, EmbeddedJobScheduler):
            # Intents an earlier version left in the outbox are older than anything written
            # from now on: carry them over before serving, so none overwrites a newer job.
            await self.relay.drain()
        await self.relay.start()
        if self.pubsub is not None:
            await self.pubsub.start()
        self._maintenance = asyncio.create_task(self._schedule_maintenance())

    async def ready(self) -> bool:
        return await self.unready() is None

    async def unready(self) -> str | None:
        """Why this process cannot do its work, or None: the jobs engine runs (API roles),
        the database answers, and its last write did not fail for want of room."""
        if self.settings.runs_api and not self.scheduler.ready:
            return "the jobs engine is not running"
        try:
            if self.settings.runs_api:
                await self.scheduler.get("__duetime_readyz__")
            else:
                await self.events.last_seq()
        except Exception as exc:
            return f"the database does not answer: {describe_error(exc, 300).splitlines()[0]}"
        return self.storage.problem()

    async def _schedule_maintenance(self) -> None:
        """Until it takes: a Dapr sidecar may come up after duetime."""
        delay = 0.5
        while True:
            try:
                await self.tasks.schedule_maintenance(self.scheduler)
                return
            except Exception as exc:
                log.warning("maintenance job not scheduled (%s); retrying in %.0f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def close(self) -> None:
        if self.sampler is not None:
            await self.sampler.stop()
        if self._maintenance is not None:
            self._maintenance.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._maintenance
        await self.relay.stop()
        if self.settings.runs_api:
            await self.scheduler.stop()
        await self.worker.stop()
        if self.subscriber is not None:
            await self.subscriber.aclose()
        await self.event_relay.stop()
        if self.pubsub is not None:
            await self.pubsub.stop()
        await self.task_store.close()
        await self.delivery_store.close()
        for closer in self.closers:
            await closer.aclose()


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(
        max_attempts=settings.delivery_max_attempts,
        base_delay=settings.delivery_backoff_base,
        max_delay=settings.delivery_backoff_max,
        attempt_timeout=max(settings.webhook_timeout, settings.smtp_timeout, settings.push_timeout)
        + 1,
    )


def event_broker(settings: Settings) -> EventPublisher | None:
    if settings.event_publisher == "dapr":
        return DaprEventPublisher(
            settings.dapr_http_endpoint,
            pubsub=settings.pubsub_name,
            token=settings.dapr_api_token,
            timeout=settings.dapr_timeout,
        )
    if settings.event_publisher == "kafka":
        from duetime.events.kafka import KafkaEventPublisher  # aiokafka: ≈ 40 ms to import

        assert settings.kafka_bootstrap_servers is not None
        return KafkaEventPublisher(
            settings.kafka_bootstrap_servers, topic_prefix=settings.kafka_topic_prefix
        )
    return None


def embedded_pubsub(
    settings: Settings, engine: AsyncEngine, apps: AppDirectory, clock: Clock
) -> EmbeddedPubSub:
    """The embedded Dapr pub/sub: `pubsubs` plus the resources' components."""
    names = list(settings.pubsubs)
    if settings.event_publisher == "embedded" and settings.pubsub_name not in names:
        names.append(settings.pubsub_name)
    return EmbeddedPubSub(
        engine,
        apps,
        clock,
        pubsubs=names,
        resources=load_resources(settings.resources_path),
        policy=PubSubRetryPolicy(
            max_attempts=settings.pubsub_max_attempts,
            base_delay=settings.pubsub_backoff_base,
            max_delay=settings.pubsub_backoff_max,
        ),
        concurrency=settings.pubsub_concurrency,
        timeout=settings.app_timeout,
        retention=timedelta(hours=settings.pubsub_retention_hours),
    )


def account_service(settings: Settings, engine: AsyncEngine, clock: Clock) -> AccountService:
    """Accounts on `engine` under the settings' sign-up mode, session and sign-in limits
    (the server and `duetime users` alike)."""
    policy = AccountPolicy(
        signup=settings.signup_mode,
        session_idle=settings.session_ttl,
        session_max_age=settings.session_max_age,
        max_failures_per_email=settings.signin_max_failures,
        max_failures_per_ip=settings.signin_max_failures_per_ip,
        failure_window=settings.signin_window,
    )
    return AccountService(SqlAccountStore(engine), Argon2PasswordHasher(), clock, policy)


def app_channel(settings: Settings, app: App) -> HttpAppChannel | GrpcAppChannel:
    """How triggers reach `app` (which has a URL): over HTTP, or over gRPC
    (`AppCallbackAlpha.OnJobEventAlpha1` at `host:port`) when its protocol is `grpc`."""
    assert app.url is not None
    if app.protocol == "grpc":
        return GrpcAppChannel(
            app.url,
            token=app.app_token,
            timeout=settings.app_timeout,
            not_found=settings.app_404,
        )
    return HttpAppChannel(
        app.url,
        token=app.app_token,
        timeout=settings.app_timeout,
        max_connections=settings.max_concurrency,
        not_found=settings.app_404,
    )


def bootstrap(settings: Settings, *, tracer_provider: TracerProvider | None = None) -> Runtime:
    """`tracer_provider`: where the spans go (tests bring an SDK provider with an in-memory
    exporter); by default the one the `OTEL_*` variables set up, once per process, if any."""
    tracing = Tracing(tracer_provider) if tracer_provider is not None else configure_tracing()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    apps = AppDirectory.from_settings(settings)
    clock = SystemClock()
    engine = create_engine(settings.resolved_database_url())
    storage = StorageHealth()
    storage.watch(engine)
    job_store = SqlJobStore(engine=engine)
    scheduler: JobScheduler
    if settings.scheduler == "dapr":
        sidecar = DaprSidecar(
            settings.dapr_http_endpoint,
            token=settings.dapr_api_token,
            timeout=settings.dapr_timeout,
        )
        scheduler = dapr = DaprJobScheduler(
            job_store, sidecar, clock=clock, namespace=settings.namespace, tracing=tracing
        )
        trigger_sink: TriggerSink = dapr
    else:
        scheduler = embedded = EmbeddedJobScheduler(
            job_store,
            clock=clock,
            max_concurrency=settings.max_concurrency,
            window_size=settings.window_size,
            tracing=tracing,
        )
        trigger_sink = DirectTriggers(embedded.handlers, clock, settings.namespace)
    policy = retry_policy(settings)
    email_available = settings.smtp_host is not None

    # events: outbox → relay → the broker, if any, and the embedded bus → in-app streams
    events = SqlEventStore(engine)
    local = EmbeddedEventPublisher()
    hub = NotificationHub()
    local.subscribe(hub)
    pubsub = embedded_pubsub(settings, engine, apps, clock) if settings.runs_api else None
    broker = event_broker(settings) or local
    if broker is local and pubsub is not None:
        # duetime's own events through the embedded Dapr pub/sub, as through daprd
        broker = EmbeddedBrokerPublisher(pubsub, pubsub=settings.pubsub_name)
    publisher: EventPublisher = local if broker is local else TeePublisher(broker, local)
    event_relay = EventRelay(
        events,
        publisher,
        clock,
        engine=engine,
        # another process may share the outbox: sweep it for what one that died committed
        sweep=None if settings.event_publisher == "embedded" and settings.role == "all" else 5.0,
        to_broker=broker is not local,
    )

    # delivery: rows written with the notification → worker → channels
    delivery_store = SqlDeliveryStore(engine)
    webhook = WebhookChannel(
        timeout=settings.webhook_timeout,
        max_connections=settings.webhook_max_connections,
        allow_private=settings.webhook_allow_private,
    )
    vapid = load_or_create_vapid_keys(settings)
    subscriptions = SqlPushSubscriptionStore(engine)
    channels: dict[ChannelName, Channel] = {
        "webhook": webhook,
        "push": WebPushChannel(
            subscriptions,
            vapid,
            ttl=settings.push_ttl,
            timeout=settings.push_timeout,
            max_connections=settings.webhook_max_connections,
            allow_private=settings.webhook_allow_private,
            clock=clock,
        ),
    }
    if settings.smtp_host is not None:
        channels["email"] = SmtpEmailChannel(
            SmtpConfig(
                host=settings.smtp_host,
                port=settings.smtp_port,
                security=settings.smtp_security,
                username=settings.smtp_username,
                password=settings.smtp_password,
                sender=settings.smtp_from,
                timeout=settings.smtp_timeout,
            )
        )
    worker = DeliveryWorker(
        delivery_store,
        channels,
        clock,
        policy,
        concurrency=settings.delivery_concurrency,
        on_recorded=event_relay.kick,
        tracing=tracing,
    )
    delivery = DeliveryService(
        delivery_store,
        clock,
        allow_private=settings.webhook_allow_private,
        email_available=email_available,
        kick=worker.kick,
    )

    def fired() -> None:
        event_relay.kick()
        worker.kick()

    # reminder jobs, embedded: written with their task (the engine shares its database); the
    # outbox relay only drains intents an earlier version left behind. Dapr: through the
    # outbox, so a task write succeeds while the sidecar is down.
    relay = SchedulingRelay(engine, scheduler, clock=clock)
    scheduling: Scheduling = (
        InlineScheduling(scheduler, job_store)
        if isinstance(scheduler, EmbeddedJobScheduler)
        else relay
    )
    store = SqlTaskStore(
        engine,
        scheduling=scheduling,
        on_fire=DeliveryOutbox(
            policy, email_available=email_available, fan_out=settings.fans_out_inline
        ),
        misfire_grace_us=settings.misfire_grace // timedelta(microseconds=1),
        skip_missed=settings.misfire_policy == "missed",
    )
    tasks = TaskService(store, clock, on_events=event_relay.kick, on_fire=fired, tracing=tracing)
    retention = timedelta(days=settings.retention_days)

    async def maintenance(_: Trigger) -> None:
        await tasks.purge(retention)

    subscriber = None
    if settings.runs_notifier and not settings.fans_out_inline:
        subscriber = FanOut(engine, policy, email_available=email_available, kick=worker.kick)
    runtime = Runtime(
        settings,
        scheduler,
        trigger_sink,
        tasks,
        store,
        relay,
        load_or_create_secret(settings),
        delivery,
        delivery_store,
        worker,
        events,
        event_relay,
        hub,
        clock,
        broker,
        SqlEventDeadLetters(engine),
        subscriber,
        apps=apps,
        jobs=SidecarJobs(scheduler),
        pubsub=pubsub,
        storage=storage,
        sampler=Sampler(
            engine,
            backend=settings.scheduler if settings.runs_api else None,
            streams=lambda: hub.clients,
        ),
        tracing=tracing,
        accounts=account_service(settings, engine, clock),
        push=PushService(subscriptions, clock, vapid, allow_private=settings.webhook_allow_private),
    )
    runtime.closers += [*channels.values(), publisher]
    app_channels: dict[str, TriggerHandler] = {}
    for app in apps.all():
        if app.url is None:
            continue
        channel = app_channel(settings, app)
        app_channels[app.app_id] = channel
        runtime.closers.append(channel)
    scheduler.add_handler(APP_SCOPES, AppTriggers(app_channels))
    scheduler.add_handler(REMINDER_JOB_PREFIX, tasks.reminder_handler)
    scheduler.add_handler(MAINTENANCE_JOB, maintenance)
    runtime.closers.append(_Disposer(engine))  # last: a worker has no job store to do it
    return runtime


class _Disposer:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def aclose(self) -> None:
        await self._engine.dispose()
