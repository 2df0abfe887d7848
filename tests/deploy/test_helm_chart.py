"""The Helm chart deploy/helm/duetime, checked with the real helm (lint, template) and every
rendered Kubernetes object validated against the Kubernetes OpenAPI schemas (PyPI
kubernetes-validate, offline). No helm is a failure, not a skip: ./scripts/build-helm.sh.

The Dapr objects (Component, Resiliency, Configuration) are not in those schemas; they are
checked here for their structure, and loaded by a real daprd in the pub/sub end-to-end tests,
which take them from the chart through tests/helm.py (`dapr_resources`).
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path
from typing import Any, Literal

import kubernetes_validate
import pytest
import yaml

from tests.helm import CHART, ROOT, dapr_resources, helm_bin, render, run_helm

DB = "postgresql.url=postgresql://duetime:secret@postgres:5432/duetime"
EXAMPLE_VALUES = ROOT / "deploy" / "kubernetes" / "values-example.yaml"
HOWTO = ROOT / "docs" / "howto" / "kubernetes.md"
K8S_VERSIONS = ("1.30", kubernetes_validate.latest_version())
DAPR_KINDS = {"Component", "Resiliency", "Configuration"}


def _by_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def _one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [d for d in _by_kind(docs, kind) if name is None or d["metadata"]["name"] == name]
    assert len(found) == 1, f"{len(found)} {kind} {name or ''} in {[_ref(d) for d in docs]}"
    return found[0]


def _ref(doc: dict[str, Any]) -> str:
    return f"{doc['kind']}/{doc['metadata']['name']}"


def _deployment(docs: list[dict[str, Any]], role: str) -> dict[str, Any]:
    return _one(docs, "Deployment", f"duetime-{role}")


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    (container,) = containers
    return container


def _env(deployment: dict[str, Any]) -> dict[str, Any]:
    """name → value, or the (secret name, key) it is read from."""
    out: dict[str, Any] = {}
    for e in _container(deployment)["env"]:
        ref = e.get("valueFrom", {}).get("secretKeyRef")
        out[e["name"]] = (ref["name"], ref["key"]) if ref else e["value"]
    return out


def _metadata(component: dict[str, Any]) -> dict[str, Any]:
    return {m["name"]: m.get("value", m.get("secretKeyRef")) for m in component["spec"]["metadata"]}


def _helm_fails(*args: str) -> str:
    done = run_helm(*args, check=False)
    assert done.returncode != 0, f"helm {' '.join(args)} succeeded:\n{done.stdout[:2000]}"
    return done.stderr


# -- the tool ------------------------------------------------------------------------------


def test_missing_helm_is_an_error_not_a_skip(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DUETIME_HELM_BIN", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(RuntimeError, match=r"scripts/build-helm\.sh"):
        helm_bin()


def test_helm_is_v3_22() -> None:
    assert "v3.22" in run_helm("version", "--short").stdout


# -- lint and schema -----------------------------------------------------------------------


@pytest.mark.parametrize("pubsub", ["redis", "kafka"])
def test_lint_strict_passes(pubsub: str) -> None:
    run_helm("lint", "--strict", str(CHART), "--set", DB, "--set", f"pubsub.type={pubsub}")


def test_lint_strict_passes_with_the_example_values() -> None:
    run_helm("lint", "--strict", str(CHART), "-f", str(EXAMPLE_VALUES))


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("pubsub.type=rabbitmq", "pubsub/type"),
        ("api.replicas=-1", "api/replicas"),
        ("resiliency.policy=linear", "resiliency/policy"),
        ("resiliency.maxRetries=-2", "resiliency/maxRetries"),
        ("resiliency.duration=soon", "resiliency/duration"),
        ("smtp.security=ssl", "smtp/security"),
        ("unknownValue=1", "unknownValue"),
    ],
)
def test_the_values_schema_refuses_bad_values(bad: str, message: str) -> None:
    err = _helm_fails("template", "duetime", str(CHART), "--set", DB, "--set", bad)
    assert "schema" in err and message in err, err


def test_rendering_without_a_database_fails_clearly() -> None:
    err = _helm_fails("template", "duetime", str(CHART))
    assert "duetime needs PostgreSQL: set postgresql.url" in err, err
    # helm lint renders in "lint mode", where `fail` and `required` only log: it passes, and
    # says why the chart would not install.
    done = run_helm("lint", "--strict", str(CHART))
    assert "Fail: duetime needs PostgreSQL" in done.stderr, done.stderr


def test_rendering_with_two_database_sources_fails() -> None:
    err = _helm_fails(
        "template", "duetime", str(CHART), "--set", DB, "--set", "postgresql.existingSecret=db"
    )
    assert "set only one of postgresql.url and postgresql.existingSecret" in err, err


def test_an_existing_database_secret_is_used_and_none_is_created() -> None:
    docs = render("postgresql.existingSecret=pg", "postgresql.existingSecretKey=uri")
    assert "duetime-database" not in {d["metadata"]["name"] for d in _by_kind(docs, "Secret")}
    for role in ("api", "worker"):
        assert _env(_deployment(docs, role))["DUETIME_DATABASE_URL"] == ("pg", "uri")


# -- every object valid --------------------------------------------------------------------

_RENDERINGS = [
    pytest.param((DB, f"pubsub.type={p}", f"api.replicas={a}", f"worker.replicas={w}"), id=i)
    for p in ("redis", "kafka")
    for a, w in ((0, 0), (1, 1), (2, 1), (3, 2), (10, 5))
    for i in [f"{p}-api{a}-worker{w}"]
] + [
    pytest.param(
        (
            DB,
            "serviceAccount.create=true",
            "smtp.host=smtp.example.com",
            "smtp.username=duetime",
            "smtp.passwordSecret.name=smtp",
            "pubsub.redis.passwordSecret.name=redis",
            "resiliency.policy=exponential",
            "extraEnv[0].name=DUETIME_RETENTION_DAYS",
            "extraEnv[0].value=90",
            "dapr.configuration.tracing.otel.endpointAddress=otel:4317",
            "dapr.configuration.tracing.otel.isSecure=false",
            "dapr.configuration.tracing.otel.protocol=grpc",
        ),
        id="everything-optional",
    ),
    pytest.param(
        (
            DB,
            "pubsub.type=kafka",
            "pubsub.kafka.authType=password",
            "pubsub.kafka.sasl.username=duetime",
            "pubsub.kafka.sasl.passwordSecret.name=kafka-user",
        ),
        id="kafka-sasl",
    ),
]


@pytest.mark.parametrize("sets", _RENDERINGS)
def test_every_rendered_object_is_valid(sets: tuple[str, ...]) -> None:
    docs = render(*sets)
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "Service", "Secret", *DAPR_KINDS} <= kinds, kinds
    for doc in docs:
        if doc["kind"] in DAPR_KINDS:
            _check_dapr_object(doc)
            continue
        for version in K8S_VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)


def test_the_plain_manifests_are_valid() -> None:
    for path in sorted((ROOT / "deploy" / "kubernetes").glob("duetime-*.yaml")):
        docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
        assert docs, path
        for doc in docs:
            if doc["kind"] in DAPR_KINDS:
                _check_dapr_object(doc)
            else:
                for version in K8S_VERSIONS:
                    kubernetes_validate.validate(doc, version, strict=True)


def _check_dapr_object(doc: dict[str, Any]) -> None:
    """What daprd needs of each Dapr kind; loading them in a real daprd is done by the pub/sub
    end-to-end tests, which render them through tests/helm.py."""
    assert doc["apiVersion"] == "dapr.io/v1alpha1", _ref(doc)
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", doc["metadata"]["name"]), _ref(doc)
    assert "namespace" not in doc["metadata"], "a standalone daprd must load it as it is"
    assert set(doc) <= {"apiVersion", "kind", "metadata", "spec", "scopes"}, sorted(doc)
    spec = doc["spec"]
    if doc["kind"] == "Component":
        assert spec["type"] in {"pubsub.redis", "pubsub.kafka"}
        assert spec["version"] == "v1"
        for item in spec["metadata"]:
            assert set(item) in ({"name", "value"}, {"name", "secretKeyRef"}), item
            if "value" in item:
                assert isinstance(item["value"], str), item  # daprd wants strings
            else:
                assert set(item["secretKeyRef"]) == {"name", "key"}, item
        assert doc["scopes"] == ["duetime-api", "duetime-worker"]
    elif doc["kind"] == "Resiliency":
        retry = spec["policies"]["retries"]["pubsubRetry"]
        assert retry["policy"] in {"constant", "exponential"}
        assert isinstance(retry["maxRetries"], int)
        assert set(spec["targets"]) == {"components"}
        for target in spec["targets"]["components"].values():
            assert target == {"inbound": {"retry": "pubsubRetry"}}
        assert doc["scopes"] == ["duetime-api", "duetime-worker"]
    else:
        assert doc["kind"] == "Configuration"
        assert isinstance(spec["tracing"]["samplingRate"], str)
        assert spec["features"] == []


# -- Dapr ----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["api", "worker"])
def test_dapr_annotations(role: str) -> None:
    docs = render(DB)
    pod = _deployment(docs, role)["spec"]["template"]
    annotations = pod["metadata"]["annotations"]
    assert annotations["dapr.io/enabled"] == "true"
    assert annotations["dapr.io/app-id"] == f"duetime-{role}"
    assert annotations["dapr.io/app-port"] == "8000"
    assert annotations["dapr.io/enable-app-health-check"] == "true"
    assert annotations["dapr.io/app-health-check-path"] == "/healthz"
    assert annotations["dapr.io/config"] == _one(docs, "Configuration")["metadata"]["name"]
    assert "dapr.io/sidecar-listen-addresses" not in annotations
    secrets = {d["metadata"]["name"]: d for d in _by_kind(docs, "Secret")}
    env = _env(_deployment(docs, role))
    # Dapr reads the key `token` of the Secret its annotation names; the app gets the same.
    api_secret = annotations["dapr.io/api-token-secret"]
    app_secret = annotations["dapr.io/app-token-secret"]
    assert (api_secret, app_secret) == ("duetime-dapr-api-token", "duetime-app-api-token")
    assert env["DAPR_API_TOKEN"] == (api_secret, "token")
    assert env["DUETIME_APP_API_TOKEN"] == (app_secret, "token")
    assert set(secrets[api_secret]["data"]) == {"token"}
    assert set(secrets[app_secret]["data"]) == {"token"}
    assert all(a.isascii() and isinstance(v, str) for a, v in annotations.items())


def test_app_ids_are_configurable_and_scope_the_dapr_objects() -> None:
    docs = render(DB, "api.appId=front", "worker.appId=back", "pubsub.name=events")
    assert (
        _deployment(docs, "api")["spec"]["template"]["metadata"]["annotations"]["dapr.io/app-id"]
        == "front"
    )
    component = _one(docs, "Component", "events")
    resiliency = _one(docs, "Resiliency")
    assert component["scopes"] == resiliency["scopes"] == ["front", "back"]
    assert list(resiliency["spec"]["targets"]["components"]) == ["events"]
    for role in ("api", "worker"):
        assert _env(_deployment(docs, role))["DUETIME_PUBSUB_NAME"] == "events"


@pytest.mark.parametrize(
    ("pubsub", "address_set", "address_key"),
    [
        ("redis", "pubsub.redis.host=127.0.0.1:6380", "redisHost"),
        ("kafka", "pubsub.kafka.brokers=127.0.0.1:9092", "brokers"),
    ],
)
def test_show_only_pubsub_prints_only_the_component(
    pubsub: str, address_set: str, address_key: str
) -> None:
    """The contract the pub/sub end-to-end tests rely on (exactly their command line)."""
    text = run_helm(
        "template",
        "t",
        str(CHART),
        "--set",
        "postgresql.url=x",
        "--set",
        f"pubsub.type={pubsub}",
        "--set",
        address_set,
        "--show-only",
        "templates/dapr-pubsub.yaml",
    ).stdout
    docs = [d for d in yaml.safe_load_all(text) if d]
    assert [d["kind"] for d in docs] == ["Component"]
    assert "secretKeyRef" not in text
    (component,) = docs
    assert component["metadata"]["name"] == "pubsub"
    assert component["scopes"] == ["t-duetime-api", "t-duetime-worker"]
    meta = _metadata(component)
    assert meta[address_key] == address_set.split("=", 1)[1]
    if pubsub == "redis":
        assert component["spec"]["type"] == "pubsub.redis"
        assert meta["consumerID"] == "{appID}"
        assert meta["enableTLS"] == "false"
        assert {"processingTimeout", "redeliverInterval"} <= set(meta)
    else:
        assert component["spec"]["type"] == "pubsub.kafka"
        assert meta["consumerGroup"] == "{appID}"
        assert meta["authType"] == "none"
        assert meta["initialOffset"] == "oldest"
        assert "clientID" in meta


def test_passwords_come_from_secret_refs_only_when_named() -> None:
    redis = _one(render(DB, "pubsub.redis.passwordSecret.name=redis"), "Component")
    assert _metadata(redis)["redisPassword"] == {"name": "redis", "key": "redis-password"}
    kafka = _one(
        render(
            DB,
            "pubsub.type=kafka",
            "pubsub.kafka.authType=password",
            "pubsub.kafka.sasl.username=u",
            "pubsub.kafka.sasl.passwordSecret.name=k",
        ),
        "Component",
    )
    meta = _metadata(kafka)
    assert meta["saslPassword"] == {"name": "k", "key": "password"}
    assert (meta["authType"], meta["saslUsername"], meta["saslMechanism"]) == (
        "password",
        "u",
        "SHA-512",
    )
    err = _helm_fails(
        "template",
        "duetime",
        str(CHART),
        "--set",
        DB,
        "--set",
        "pubsub.type=kafka",
        "--set",
        "pubsub.kafka.authType=password",
        "--set",
        "pubsub.kafka.sasl.username=u",
    )
    assert "pubsub.kafka.sasl.passwordSecret.name is required" in err, err


def test_resiliency_retries_inbound_deliveries_on_the_component() -> None:
    docs = render(DB)
    resiliency = _one(docs, "Resiliency")
    assert resiliency["spec"]["policies"]["retries"] == {
        "pubsubRetry": {"policy": "constant", "duration": "1s", "maxRetries": 10}
    }
    component = _one(docs, "Component")
    assert resiliency["spec"]["targets"] == {
        "components": {component["metadata"]["name"]: {"inbound": {"retry": "pubsubRetry"}}}
    }


def test_resiliency_values_are_settable_with_set() -> None:
    sets = (DB, "resiliency.duration=250ms", "resiliency.maxRetries=3")
    (constant,) = render(*sets, show_only=["templates/dapr-resiliency.yaml"])
    assert constant["spec"]["policies"]["retries"]["pubsubRetry"] == {
        "policy": "constant",
        "duration": "250ms",
        "maxRetries": 3,
    }
    (exponential,) = render(
        *sets,
        "resiliency.policy=exponential",
        "resiliency.maxInterval=5s",
        show_only=["templates/dapr-resiliency.yaml"],
    )
    assert exponential["spec"]["policies"]["retries"]["pubsubRetry"] == {
        "policy": "exponential",
        "maxInterval": "5s",
        "maxRetries": 3,
    }
    assert render(DB, "resiliency.enabled=false", show_only=["templates/dapr-pubsub.yaml"])
    assert not _by_kind(render(DB, "resiliency.enabled=false"), "Resiliency")


@pytest.mark.parametrize("pubsub", ["redis", "kafka"])
def test_dapr_resources_helper(pubsub: Literal["redis", "kafka"]) -> None:
    address = "127.0.0.1:6380" if pubsub == "redis" else "127.0.0.1:9092,127.0.0.1:9093"
    files = dapr_resources(pubsub, address, retries=2, interval="100ms")
    assert set(files) == {"pubsub.yaml", "resiliency.yaml"}
    (component,) = (d for d in yaml.safe_load_all(files["pubsub.yaml"]) if d)
    (resiliency,) = (d for d in yaml.safe_load_all(files["resiliency.yaml"]) if d)
    _check_dapr_object(component)
    _check_dapr_object(resiliency)
    assert "secretKeyRef" not in files["pubsub.yaml"]
    assert _metadata(component)["redisHost" if pubsub == "redis" else "brokers"] == address
    assert resiliency["spec"]["policies"]["retries"]["pubsubRetry"] == {
        "policy": "constant",
        "duration": "100ms",
        "maxRetries": 2,
    }
    assert list(resiliency["spec"]["targets"]["components"]) == [component["metadata"]["name"]]
    other = dapr_resources(pubsub, address, app_ids=("a", "b"))
    assert yaml.safe_load(other["pubsub.yaml"])["scopes"] == ["a", "b"]


def test_configuration_tracing() -> None:
    configuration = _one(render(DB, "dapr.configuration.tracing.samplingRate=1"), "Configuration")
    assert configuration["spec"] == {"tracing": {"samplingRate": "1"}, "features": []}
    docs = render(DB, "dapr.configuration.create=false", "dapr.configuration.name=shared")
    assert not _by_kind(docs, "Configuration")
    annotations = _deployment(docs, "api")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["dapr.io/config"] == "shared"


# -- workloads -----------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["api", "worker"])
def test_containers_run_duetime_with_probes_and_the_environment(role: str) -> None:
    docs = render(DB, "api.replicas=3", "worker.replicas=2")
    deployment = _deployment(docs, role)
    assert deployment["spec"]["replicas"] == {"api": 3, "worker": 2}[role]
    container = _container(deployment)
    assert container["command"] == ["duetime", {"api": "serve", "worker": "worker"}[role]]
    assert container["image"] == "ghcr.io/duetime/duetime:0.1.0"
    assert container["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["resources"]["requests"]
    env = _env(deployment)
    assert env == {
        "DUETIME_ROLE": role,
        "DUETIME_HOST": "0.0.0.0",
        "DUETIME_PORT": "8000",
        "DUETIME_DATA_DIR": "/data",
        "DUETIME_LOG_LEVEL": "info",
        "DUETIME_SCHEDULER": "dapr",
        "DUETIME_EVENT_PUBLISHER": "dapr",
        "DUETIME_PUBSUB_NAME": "pubsub",
        "DUETIME_DATABASE_URL": ("duetime-database", "database-url"),
        "DUETIME_JWT_SECRET": ("duetime", "jwt-secret"),
        "DUETIME_API_TOKEN": ("duetime", "api-token"),
        "DAPR_API_TOKEN": ("duetime-dapr-api-token", "token"),
        "DUETIME_APP_API_TOKEN": ("duetime-app-api-token", "token"),
        "DUETIME_WEBHOOK_ALLOW_PRIVATE": "false",
    }
    secrets = {d["metadata"]["name"]: d for d in _by_kind(docs, "Secret")}
    for value in env.values():
        if isinstance(value, tuple):
            name, key = value
            assert key in {**secrets[name].get("data", {}), **secrets[name].get("stringData", {})}


def test_optional_environment() -> None:
    docs = render(
        DB,
        "smtp.host=smtp.example.com",
        "smtp.port=465",
        "smtp.security=tls",
        "smtp.username=me",
        "smtp.passwordSecret.name=smtp",
        "smtp.from=reminders@example.com",
        "env.webhookAllowPrivate=true",
        "extraEnv[0].name=DUETIME_RETENTION_DAYS",
        "extraEnv[0].value=90",
        "image.tag=1.2.3",
    )
    for role in ("api", "worker"):
        deployment = _deployment(docs, role)
        env = _env(deployment)
        assert {k: v for k, v in env.items() if k.startswith("DUETIME_SMTP_")} == {
            "DUETIME_SMTP_HOST": "smtp.example.com",
            "DUETIME_SMTP_PORT": "465",
            "DUETIME_SMTP_SECURITY": "tls",
            "DUETIME_SMTP_USERNAME": "me",
            "DUETIME_SMTP_PASSWORD": ("smtp", "password"),
            "DUETIME_SMTP_FROM": "reminders@example.com",
        }
        assert env["DUETIME_WEBHOOK_ALLOW_PRIVATE"] == "true"
        assert env["DUETIME_RETENTION_DAYS"] == "90"
        assert _container(deployment)["image"] == "ghcr.io/duetime/duetime:1.2.3"
    assert not any(k.startswith("DUETIME_SMTP_") for k in _env(_deployment(render(DB), "api")))


@pytest.mark.parametrize("sets", _RENDERINGS[:4])
def test_no_container_runs_as_root(sets: tuple[str, ...]) -> None:
    """The chart's containers. daprd is added at admission by Dapr's sidecar injector, with
    its own non-root security context (Dapr's `sidecarRunAsNonRoot`, true by default)."""
    for deployment in _by_kind(render(*sets), "Deployment"):
        pod = deployment["spec"]["template"]["spec"]
        for container in pod["containers"] + pod.get("initContainers", []):
            merged = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
            assert merged.get("runAsNonRoot") is True, _ref(deployment)
            assert merged.get("runAsUser", 0) != 0, _ref(deployment)
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}
        mounts = {m["mountPath"]: m["name"] for m in _container(deployment)["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes[mounts["/data"]] == {"name": mounts["/data"], "emptyDir": {}}
        assert "/tmp" in mounts


def test_the_service_selects_only_api_pods() -> None:
    docs = render(DB)
    service = _one(docs, "Service", "duetime")
    assert service["spec"]["ports"] == [
        {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}
    ]
    selector = service["spec"]["selector"].items()
    api = _deployment(docs, "api")["spec"]["template"]["metadata"]["labels"].items()
    worker = _deployment(docs, "worker")["spec"]["template"]["metadata"]["labels"].items()
    assert selector <= api
    assert not selector <= worker
    for role in ("api", "worker"):
        deployment = _deployment(docs, role)
        match = deployment["spec"]["selector"]["matchLabels"].items()
        assert match <= deployment["spec"]["template"]["metadata"]["labels"].items()


@pytest.mark.parametrize(("api", "worker"), [(1, 1), (2, 1), (1, 3), (4, 2), (0, 0)])
def test_a_disruption_budget_for_each_deployment_with_more_than_one_replica(
    api: int, worker: int
) -> None:
    docs = render(DB, f"api.replicas={api}", f"worker.replicas={worker}")
    budgets = {d["metadata"]["name"]: d for d in _by_kind(docs, "PodDisruptionBudget")}
    expected = {f"duetime-{r}" for r, n in (("api", api), ("worker", worker)) if n > 1}
    assert set(budgets) == expected
    for name, budget in budgets.items():
        assert budget["spec"]["maxUnavailable"] == 1
        labels = _one(docs, "Deployment", name)["spec"]["template"]["metadata"]["labels"]
        assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_service_account_is_optional() -> None:
    assert not _by_kind(render(DB), "ServiceAccount")
    docs = render(DB, "serviceAccount.create=true")
    account = _one(docs, "ServiceAccount", "duetime")
    for role in ("api", "worker"):
        pod = _deployment(docs, role)["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == account["metadata"]["name"]


# -- secrets -------------------------------------------------------------------------------


def _secret_values(docs: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    return {
        d["metadata"]["name"]: {**d.get("data", {}), **d.get("stringData", {})}
        for d in _by_kind(docs, "Secret")
    }


def test_secrets_given_in_values_render_the_same_every_time() -> None:
    """`helm upgrade` with the same values does not rotate them (same rendered value)."""
    sets = (
        DB,
        "secrets.jwtSecret=jwt-1",
        "secrets.apiToken=api-1",
        "dapr.apiToken.value=dapr-1",
        "dapr.appToken.value=app-1",
    )
    first, again = _secret_values(render(*sets)), _secret_values(render(*sets))
    assert first == again
    assert first == {
        "duetime-database": {"database-url": DB.split("=", 1)[1]},
        "duetime": {"jwt-secret": "jwt-1", "api-token": "api-1"},
        "duetime-dapr-api-token": {"token": "dapr-1"},
        "duetime-app-api-token": {"token": "app-1"},
    }
    assert _secret_values(render(*sets, "api.replicas=5", "pubsub.type=kafka")) == first


def test_secrets_not_given_are_random_per_render_without_a_cluster() -> None:
    """`helm template` cannot `lookup` the Secret already installed (on a cluster, `helm
    upgrade` keeps it), so it makes up new values each time: rendered manifests give them."""
    first, again = _secret_values(render(DB)), _secret_values(render(DB))
    for name in ("duetime", "duetime-dapr-api-token", "duetime-app-api-token"):
        for key, value in first[name].items():
            assert re.fullmatch(r"[A-Za-z0-9+/]{64}", value), (name, key)  # 48 chars, base64
            assert value != again[name][key]


def test_existing_secrets_are_used_and_not_created() -> None:
    docs = render(
        DB,
        "secrets.existingSecret=mine",
        "dapr.apiToken.existingSecret=my-dapr",
        "dapr.appToken.existingSecret=my-app",
    )
    assert set(_secret_values(docs)) == {"duetime-database"}
    for role in ("api", "worker"):
        deployment = _deployment(docs, role)
        env = _env(deployment)
        assert env["DUETIME_JWT_SECRET"] == ("mine", "jwt-secret")
        assert env["DUETIME_API_TOKEN"] == ("mine", "api-token")
        assert env["DAPR_API_TOKEN"] == ("my-dapr", "token")
        assert env["DUETIME_APP_API_TOKEN"] == ("my-app", "token")
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["dapr.io/api-token-secret"] == "my-dapr"
        assert annotations["dapr.io/app-token-secret"] == "my-app"


# -- generated files and docs --------------------------------------------------------------


def test_plain_manifests_are_what_render_manifests_makes_now(tmp_path: Path) -> None:
    subprocess.run(
        [str(ROOT / "scripts" / "render-manifests.sh"), str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "DUETIME_HELM_BIN": helm_bin()},
    )
    for name in ("duetime-redis.yaml", "duetime-kafka.yaml"):
        fresh = (tmp_path / name).read_text()
        committed = ROOT / "deploy" / "kubernetes" / name
        assert committed.read_text() == fresh, (
            f"{committed} is stale: run ./scripts/render-manifests.sh"
        )
        assert fresh.startswith("# Generated by scripts/render-manifests.sh")
        docs = [d for d in yaml.safe_load_all(fresh) if d]
        component = _one(docs, "Component", "pubsub")
        assert component["spec"]["type"] == f"pubsub.{name.split('-')[1].split('.')[0]}"


def _howto_helm_commands() -> list[str]:
    """The how-to's helm commands on this chart (continuation lines joined); those on other
    charts (Dapr's, Redis's) need the network and a cluster."""
    text = HOWTO.read_text()
    commands = []
    for block in re.findall(r"```(?:sh|bash|console)\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.strip()
            if line.startswith("helm ") and "deploy/helm/duetime" in line:
                commands.append(line)
    return commands


def test_the_howto_helm_commands_run() -> None:
    """Every helm command in docs/howto/kubernetes.md: lint and template as written; install
    and upgrade (no cluster here) as the `helm template` of the same chart and flags, with
    the example values standing in for the reader's my-values.yaml."""
    commands = _howto_helm_commands()
    verbs = {shlex.split(c)[1] for c in commands}
    assert {"lint", "template", "install", "upgrade"} <= verbs, commands
    for command in commands:
        args = shlex.split(re.split(r" [|>] ", command)[0])[1:]
        args = [str(EXAMPLE_VALUES) if a == "my-values.yaml" else a for a in args]
        if args[0] in {"install", "upgrade"}:
            install_only = {"--install", "--wait", "--atomic", "--create-namespace"}
            args = ["template", *[a for a in args[1:] if a not in install_only]]
        if args[0] in {"lint", "template"}:
            done = run_helm(*args, check=False)
            assert done.returncode == 0, f"{command}\n{done.stderr}"
            if args[0] == "template":
                assert [d for d in yaml.safe_load_all(done.stdout) if d], command


def test_the_howto_names_what_the_chart_creates() -> None:
    docs = render(values=[EXAMPLE_VALUES])
    named = {
        ("Service", "duetime"),
        ("Deployment", "duetime-api"),
        ("Deployment", "duetime-worker"),
        ("Secret", "duetime"),
        ("Secret", "duetime-dapr-api-token"),
        ("Secret", "duetime-app-api-token"),
        ("Secret", "duetime-database"),
        ("Component", "pubsub"),
        ("Resiliency", "duetime-pubsub"),
        ("Configuration", "duetime"),
    }
    assert named <= {(d["kind"], d["metadata"]["name"]) for d in docs}
    text = HOWTO.read_text()
    for kind, name in named:
        if kind != "Deployment":
            assert f"`{name}`" in text, name
    for role in ("api", "worker"):
        assert f"deployment/duetime-{role}" in text
    startup = _container(_deployment(docs, "api"))["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] == 120  # "up to 2 minutes"
