"""The Helm chart (deploy/helm/duetime) as the tests see it: `helm template` run on it for real.

The pub/sub end-to-end tests feed `dapr_resources()` to a real daprd's resources directory, so
the Component and Resiliency they exercise are the ones the chart deploys.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "deploy" / "helm" / "duetime"
RELEASE = "duetime"
"""Release name used by `render`: object names are `duetime-api`, `duetime-worker`, ..."""


def helm_bin() -> str:
    """The `helm` binary: `$DUETIME_HELM_BIN`, else `helm` on PATH; raises if there is none."""
    found = os.environ.get("DUETIME_HELM_BIN") or shutil.which("helm")
    if not found:
        raise RuntimeError(
            "helm not found: run ./scripts/build-helm.sh (it prints the binary's path; "
            "export it as DUETIME_HELM_BIN) or ./scripts/test.sh, which does both"
        )
    return found


def run_helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Runs `helm ARGS...` in the repository root (lint and template need no network)."""
    done = subprocess.run(
        [helm_bin(), *args], capture_output=True, text=True, timeout=120, check=False, cwd=ROOT
    )
    if check and done.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return done


def template_text(
    *sets: str, show_only: Sequence[str] = (), values: Sequence[Path | str] = ()
) -> str:
    """`helm template duetime CHART` with `--set` for each of `sets`, as text."""
    args = ["template", RELEASE, str(CHART)]
    for f in values:
        args += ["-f", str(f)]
    for s in sets:
        args += ["--set", s]
    for t in show_only:
        args += ["--show-only", t]
    return run_helm(*args).stdout


def render(
    *sets: str, show_only: Sequence[str] = (), values: Sequence[Path | str] = ()
) -> list[dict[str, Any]]:
    """The non-empty YAML documents `helm template` renders with `--set` for each of `sets`,
    e.g. `render("postgresql.url=postgresql://u:p@db/duetime", "pubsub.type=kafka")`.
    `show_only` names templates such as `templates/dapr-pubsub.yaml`."""
    text = template_text(*sets, show_only=show_only, values=values)
    return [doc for doc in yaml.safe_load_all(text) if doc]


def dapr_resources(
    pubsub: Literal["redis", "kafka"],
    address: str,
    *,
    retries: int = 3,
    interval: str = "200ms",
    app_ids: tuple[str, str] = ("duetime-api", "duetime-worker"),
    extra: Sequence[str] = (),
) -> dict[str, str]:
    """The chart's Dapr pub/sub Component and Resiliency as YAML file texts,
    `{"pubsub.yaml": ..., "resiliency.yaml": ...}`, for a daprd `--resources-path`.

    `address` is the Redis `host:port` or the Kafka broker list; the Resiliency retries a
    failed delivery `retries` times, `interval` apart (constant policy), before the event
    goes to the dead-letter topic. Both objects are scoped to `app_ids` (the API's and the
    worker's): a daprd whose `--app-id` is not one of them loads neither. No password, so no
    `secretKeyRef` (a standalone daprd has no secret store). `extra`: more `--set` values."""
    address_key = "pubsub.redis.host" if pubsub == "redis" else "pubsub.kafka.brokers"
    sets = (
        "postgresql.url=postgresql://unused@127.0.0.1/unused",
        f"pubsub.type={pubsub}",
        f"{address_key}={_escape(address)}",
        "resiliency.policy=constant",
        f"resiliency.maxRetries={retries}",
        f"resiliency.duration={interval}",
        f"api.appId={app_ids[0]}",
        f"worker.appId={app_ids[1]}",
        *extra,
    )
    return {
        "pubsub.yaml": template_text(*sets, show_only=["templates/dapr-pubsub.yaml"]),
        "resiliency.yaml": template_text(*sets, show_only=["templates/dapr-resiliency.yaml"]),
    }


def _escape(value: str) -> str:
    """A value for `--set`, where a comma separates assignments (Kafka broker lists have them)."""
    return value.replace("\\", "\\\\").replace(",", "\\,")
