"""Subscriptions as daprd reads them, and pub/sub components from a resources directory.

Programmatic: the app's answer to `GET /dapr/subscribe`, a JSON array of
`{"pubsubname", "topic", "route"}` (v1) or `{"pubsubname", "topic", "routes": {"rules":
[{"match", "path"}], "default"}}` (v2), each with optional `deadLetterTopic` and `metadata`
(`rawPayload: "true"`). Rules are tried in order, then `routes.default` (or `route`); an
event no rule matches and with no default is not delivered (daprd: acknowledged, sent to
the dead-letter topic when there is one). An entry without a route is ignored, as daprd
does; an entry with a rule duetime cannot evaluate is ignored with a log line.

Declarative: `kind: Subscription` YAML (`dapr.io/v1alpha1` with `spec.route`,
`dapr.io/v2alpha1` with `spec.routes`) with optional `scopes` (app ids; none = every app).
Components: `kind: Component` with a `spec.type` starting `pubsub.`: its name becomes a
pub/sub of the embedded broker (whatever the type: the messages stay in duetime's database),
with optional `scopes` too.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from duetime.sidecar.pubsub.rules import Predicate, RuleError, compile_rule

log = logging.getLogger(__name__)

Kind = Literal["PROGRAMMATIC", "DECLARATIVE"]


@dataclass(frozen=True)
class Rule:
    """`match` None: always (the default route)."""

    path: str
    match: str | None = None
    predicate: Predicate | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Subscription:
    app_id: str
    pubsub: str
    topic: str
    rules: tuple[Rule, ...]
    dead_letter_topic: str = ""
    metadata: Mapping[str, str] = field(default_factory=dict)
    kind: Kind = "PROGRAMMATIC"

    @property
    def raw_payload(self) -> bool:
        return str(self.metadata.get("rawPayload", "")).lower() in ("true", "1", "t")

    def route(self, event: Mapping[str, Any]) -> str | None:
        """The path for `event`, None when no rule matches."""
        for rule in self.rules:
            if rule.predicate is None or rule.predicate(event):
                return rule.path
        return None

    def metadata_entry(self) -> dict[str, Any]:
        """As daprd's `GET /v1.0/metadata` lists it."""
        entry: dict[str, Any] = {"pubsubname": self.pubsub, "topic": self.topic}
        if self.metadata:
            entry["metadata"] = dict(self.metadata)
        entry["rules"] = [
            {"match": r.match, "path": r.path} if r.match else {"path": r.path} for r in self.rules
        ]
        entry["deadLetterTopic"] = self.dead_letter_topic
        entry["type"] = self.kind
        return entry


class SubscriptionError(ValueError):
    """An entry that cannot be a subscription."""


def _path(value: object) -> str:
    text = str(value)
    return text if text.startswith("/") else "/" + text


def _str_map(value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): "" if v is None else str(v) for k, v in value.items()}


def _subscription(app_id: str, spec: Mapping[str, Any], kind: Kind) -> Subscription:
    pubsub, topic = spec.get("pubsubname"), spec.get("topic")
    if not isinstance(pubsub, str) or not pubsub or not isinstance(topic, str) or not topic:
        raise SubscriptionError("needs a pubsubname and a topic")
    rules: list[Rule] = []
    routes = spec.get("routes")
    if isinstance(routes, Mapping):
        for item in routes.get("rules") or []:
            if not isinstance(item, Mapping) or not item.get("path"):
                raise SubscriptionError(f"a rule needs a path: {item!r}")
            match = str(item.get("match") or "")
            if not match:
                rules.append(Rule(_path(item["path"])))
                continue
            try:
                predicate = compile_rule(match)
            except RuleError as exc:
                raise SubscriptionError(str(exc)) from None
            rules.append(Rule(_path(item["path"]), match, predicate))
        if routes.get("default"):
            rules.append(Rule(_path(routes["default"])))
        elif spec.get("route"):
            rules.append(Rule(_path(spec["route"])))
    elif spec.get("route"):
        rules.append(Rule(_path(spec["route"])))
    if not rules:
        raise SubscriptionError(f"topic {topic!r} has no route")
    return Subscription(
        app_id,
        pubsub,
        topic,
        tuple(rules),
        str(spec.get("deadLetterTopic") or ""),
        _str_map(spec.get("metadata")),
        kind,
    )


def parse_programmatic(app_id: str, body: Any) -> list[Subscription]:
    """The subscriptions in an app's `GET /dapr/subscribe` answer (decoded JSON); entries
    that are not valid are logged and skipped."""
    if body is None:
        return []
    if not isinstance(body, list):
        log.error("app %r: /dapr/subscribe did not answer a JSON array; no subscriptions", app_id)
        return []
    found = []
    for item in body:
        if not isinstance(item, Mapping):
            log.error("app %r: subscription %r is not an object; ignored", app_id, item)
            continue
        try:
            found.append(_subscription(app_id, item, "PROGRAMMATIC"))
        except SubscriptionError as exc:
            log.warning("app %r: subscription %r ignored: %s", app_id, item, exc)
    return found


@dataclass(frozen=True)
class Component:
    name: str
    type: str
    version: str
    scopes: tuple[str, ...] = ()

    def visible_to(self, app_id: str) -> bool:
        return not self.scopes or app_id in self.scopes


@dataclass
class Resources:
    components: list[Component] = field(default_factory=list)
    subscriptions: list[tuple[tuple[str, ...], Mapping[str, Any]]] = field(default_factory=list)
    """(scopes, spec) of each declarative Subscription."""

    def subscriptions_for(self, app_id: str) -> list[Subscription]:
        found = []
        for scopes, spec in self.subscriptions:
            if scopes and app_id not in scopes:
                continue
            try:
                found.append(_subscription(app_id, spec, "DECLARATIVE"))
            except SubscriptionError as exc:
                log.warning("declarative subscription %r ignored: %s", dict(spec), exc)
        return found


def load_resources(directory: Path | None) -> Resources:
    """Pub/sub components and Subscriptions in the `*.yaml`/`*.yml` files of `directory`
    (other kinds are skipped; a file that does not parse is logged and skipped)."""
    resources = Resources()
    if directory is None or not directory.is_dir():
        return resources
    for path in sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")]):
        try:
            documents = list(yaml.safe_load_all(path.read_text()))
        except (OSError, yaml.YAMLError) as exc:
            log.error("resources file %s ignored: %s", path, exc)
            continue
        for doc in documents:
            if not isinstance(doc, Mapping):
                continue
            kind, spec = doc.get("kind"), doc.get("spec")
            meta = doc.get("metadata") if isinstance(doc.get("metadata"), Mapping) else {}
            scopes = tuple(str(s) for s in doc.get("scopes") or ())
            if not isinstance(spec, Mapping):
                continue
            if kind == "Subscription":
                resources.subscriptions.append((scopes, spec))
            elif kind == "Component" and str(spec.get("type", "")).startswith("pubsub."):
                name = str(meta.get("name") or "")  # type: ignore[union-attr]
                if name:
                    resources.components.append(
                        Component(name, str(spec["type"]), str(spec.get("version") or "v1"), scopes)
                    )
    return resources
