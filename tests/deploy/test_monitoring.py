"""The Prometheus alerts (deploy/prometheus/alerts.yaml) and the Grafana dashboard
(deploy/grafana/duetime.json), checked with the real promtool: `check rules`, the unit tests in
alerts.test.yaml (`test rules`), and every dashboard query parsed as PromQL. No promtool is a
failure, not a skip: ./scripts/build-promtool.sh.

Every metric either file reads must be one of the metrics duetime exports (CONTRACT, the names
and labels of docs/reference/metrics.md), read as its type allows: counters and histogram
buckets only through rate()/increase(), histograms through histogram_quantile().
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yaml"
ALERT_TESTS = ROOT / "deploy" / "prometheus" / "alerts.test.yaml"
DASHBOARD = ROOT / "deploy" / "grafana" / "duetime.json"
HOWTO = ROOT / "docs" / "howto" / "monitoring.md"

BACKEND = {"embedded", "dapr"}
CHANNEL = {"inbox", "webhook", "email", "pubsub"}
ANY: None = None
"""A label whose values are open (method, route, status)."""

# The metrics contract: name -> (type, {label: allowed values or ANY}). Prometheus adds
# `instance` and `job` to every series; histograms also have `le` on their _bucket series.
CONTRACT: dict[str, tuple[str, dict[str, set[str] | None]]] = {
    "duetime_trigger_lateness_seconds": ("histogram", {"backend": BACKEND}),
    "duetime_triggers_total": (
        "counter",
        {
            "backend": BACKEND,
            "outcome": {"success", "retry", "dead_lettered", "app_not_found", "dropped"},
        },
    ),
    "duetime_jobs_pending": ("gauge", {"backend": BACKEND}),
    "duetime_jobs_next_due_timestamp_seconds": ("gauge", {"backend": BACKEND}),
    "duetime_dead_letters": ("gauge", {}),
    "duetime_outbox_depth": ("gauge", {"outbox": {"scheduling", "events"}}),
    "duetime_outbox_oldest_age_seconds": ("gauge", {"outbox": {"scheduling", "events"}}),
    "duetime_deliveries_total": (
        "counter",
        {"channel": CHANNEL, "outcome": {"success", "retry", "failed", "dead_lettered"}},
    ),
    "duetime_delivery_duration_seconds": ("histogram", {"channel": CHANNEL}),
    "duetime_sse_clients": ("gauge", {}),
    "duetime_http_requests_total": ("counter", {"method": ANY, "route": ANY, "status": ANY}),
    "duetime_http_request_duration_seconds": ("histogram", {"method": ANY, "route": ANY}),
}
TARGET_LABELS = {"instance", "job"}
HISTOGRAM_SERIES = {"_bucket", "_sum", "_count"}

# What the dashboard's PromQL needs in place of Grafana's variables to parse.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$instance": ".*"}


def promtool_bin() -> str:
    """The `promtool` binary: `$DUETIME_PROMTOOL_BIN`, else `promtool` on PATH; raises if none."""
    found = os.environ.get("DUETIME_PROMTOOL_BIN") or shutil.which("promtool")
    if not found:
        raise RuntimeError(
            "promtool not found: run ./scripts/build-promtool.sh (it prints the binary's path; "
            "export it as DUETIME_PROMTOOL_BIN) or ./scripts/test.sh, which does both"
        )
    return found


def run_promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [promtool_bin(), *args], capture_output=True, text=True, timeout=120, check=False, cwd=cwd
    )
    assert done.returncode == 0, (
        f"promtool {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    )
    return done


def _alert_rules() -> list[dict[str, Any]]:
    return [r for g in yaml.safe_load(ALERTS.read_text())["groups"] for r in g["rules"]]


def _alert_tests() -> list[dict[str, Any]]:
    tests: list[dict[str, Any]] = yaml.safe_load(ALERT_TESTS.read_text())["tests"]
    return tests


def _dashboard() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return dashboard


def _panels() -> list[dict[str, Any]]:
    """Every panel but rows, including those inside collapsed rows."""
    out = []
    for panel in _dashboard()["panels"]:
        if panel["type"] == "row":
            out.extend(panel.get("panels", []))
        else:
            out.append(panel)
    return out


def _dashboard_exprs() -> list[str]:
    return [t["expr"] for p in _panels() for t in p["targets"]]


# -- PromQL, read just enough -----------------------------------------------------------------

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_SELECTOR = re.compile(r"(?<![\w:])(duetime_[a-zA-Z0-9_]*)\s*(\{[^}]*\})?")
_MATCHER = re.compile(r'([a-zA-Z_]\w*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')


def _selectors(expr: str) -> list[tuple[str, dict[str, tuple[str, str]], int]]:
    """(metric name, {label: (op, value)}, offset) of each duetime selector in `expr`."""
    assert "__name__" not in expr, f"select metrics by name, not by __name__: {expr}"
    # Blank out strings (same length) so a name inside one is not taken for a selector.
    bare = _STRING.sub(lambda m: '"' + " " * (len(m.group()) - 2) + '"', expr)
    out = []
    for m in _SELECTOR.finditer(bare):
        braces = expr[m.start(2) : m.end(2)] if m.group(2) else ""
        matchers = {name: (op, value) for name, op, value in _MATCHER.findall(braces)}
        out.append((m.group(1), matchers, m.start()))
    return out


def _enclosing_functions(expr: str, at: int) -> list[str]:
    """The functions and aggregations whose parentheses hold position `at`, innermost first
    ("" for a bare pair of parentheses)."""
    out, depth = [], 0
    for i in range(at - 1, -1, -1):
        if expr[i] == ")":
            depth += 1
        elif expr[i] == "(" and depth:
            depth -= 1
        elif expr[i] == "(":
            before = expr[:i]
            grouped = re.search(r"(\w+)\s+(?:by|without)\s*\([^)]*\)\s*$", before)
            head = re.search(r"(\w+)\s*$", before)
            out.append(grouped.group(1) if grouped else head.group(1) if head else "")
    return out


def _base_metric(name: str) -> tuple[str, str]:
    """(contract name, series suffix) of a series name; fails on an unknown name."""
    if name in CONTRACT:
        return name, ""
    for suffix in HISTOGRAM_SERIES:
        base = name.removesuffix(suffix)
        if name.endswith(suffix) and CONTRACT.get(base, ("", {}))[0] == "histogram":
            return base, suffix
    raise AssertionError(f"{name} is not a metric duetime exports (CONTRACT)")


def _check_expr(expr: str) -> set[str]:
    """Checks every duetime selector of `expr` against CONTRACT; returns the names used."""
    problems, names = [], set()
    selectors = _selectors(expr)
    assert selectors, f"no duetime metric in {expr!r}"
    for name, matchers, at in selectors:
        try:
            base, suffix = _base_metric(name)
        except AssertionError as e:
            problems.append(str(e))
            continue
        names.add(base)
        kind, labels = CONTRACT[base]
        if kind == "histogram" and not suffix:
            problems.append(f"{name}: a histogram is read through {name}_bucket/_sum/_count")
        for label, (op, value) in matchers.items():
            if label in TARGET_LABELS or (label == "le" and suffix == "_bucket"):
                continue
            if label not in labels:
                problems.append(f"{name} has no label {label!r}")
            elif op == "=" and labels[label] is not None and value not in (labels[label] or ()):
                problems.append(f"{name}{{{label}}} is never {value!r}")
        functions = _enclosing_functions(expr, at)
        if kind == "counter" or suffix:
            if not functions or functions[0] not in ("rate", "increase", "irate"):
                problems.append(f"{name} is cumulative: read it through rate() or increase()")
        if suffix == "_bucket" and "histogram_quantile" not in functions:
            problems.append(f"{name}: buckets are read through histogram_quantile()")
    assert not problems, f"{expr}:\n  " + "\n  ".join(problems)
    return names


def test_the_checker_catches_what_it_should() -> None:
    ok = 'histogram_quantile(0.99, sum by (backend, le) (rate(duetime_trigger_lateness_seconds_bucket{instance=~"a"}[5m])))'  # noqa: E501
    assert _check_expr(ok) == {"duetime_trigger_lateness_seconds"}
    assert _check_expr('sum(increase(duetime_deliveries_total{outcome="failed"}[1h]))')
    for bad, why in [
        ("duetime_triggers_total", "cumulative"),
        ("sum(duetime_triggers_total)", "cumulative"),
        ("rate(duetime_trigger_lateness_seconds_bucket[5m])", "histogram_quantile"),
        ("duetime_trigger_lateness_seconds", "histogram is read through"),
        ("duetime_trigger_lateness", "not a metric"),
        ("duetime_outbox_depth_bucket", "not a metric"),
        ('duetime_outbox_depth{queue="events"}', "no label 'queue'"),
        ('rate(duetime_triggers_total{outcome="failed"}[5m])', "never 'failed'"),
        ('{__name__="duetime_sse_clients"}', "__name__"),
    ]:
        with pytest.raises(AssertionError, match=why):
            _check_expr(bad)


# -- the tool -------------------------------------------------------------------------------


def test_missing_promtool_is_an_error_not_a_skip(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DUETIME_PROMTOOL_BIN", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(RuntimeError, match=r"scripts/build-promtool\.sh"):
        promtool_bin()


def test_promtool_is_prometheus_3() -> None:
    done = run_promtool("--version")
    assert re.search(r"promtool, version 3\.\d+\.\d+", done.stdout + done.stderr), done.stdout


# -- the alerts -----------------------------------------------------------------------------


def test_the_rules_pass_promtool_check_rules_with_every_lint() -> None:
    done = run_promtool("check", "rules", "--lint=all", "--lint-fatal", str(ALERTS))
    assert f"SUCCESS: {len(_alert_rules())} rules found" in done.stdout, done.stdout


def test_the_rules_pass_their_promtool_unit_tests() -> None:
    done = run_promtool("test", "rules", str(ALERT_TESTS))
    assert "SUCCESS" in done.stdout, done.stdout


def test_the_four_alerts_of_the_issue_are_there() -> None:
    names = [r["alert"] for r in _alert_rules()]
    assert names == [
        "DuetimeTriggerLatenessHigh",
        "DuetimeJobDeadLettersGrowing",
        "DuetimeDeliveryDeadLettersGrowing",
        "DuetimeOutboxStuck",
        "DuetimeNoTriggersWhileJobsDue",
    ]


@pytest.mark.parametrize("rule", _alert_rules(), ids=lambda r: r["alert"])
def test_each_alert_waits_has_a_severity_and_says_what_to_look_at(rule: dict[str, Any]) -> None:
    assert re.fullmatch(r"\d+m", rule["for"]), "an alert waits before it fires"
    assert rule["labels"]["severity"] in ("warning", "critical")
    assert set(rule["annotations"]) == {"summary", "description"}
    assert re.search(r"\b(Look at|Check)\b", rule["annotations"]["description"])
    heading = f"### {rule['alert']}"
    assert heading in HOWTO.read_text(), f"{HOWTO.name} explains {rule['alert']}"


@pytest.mark.parametrize("rule", _alert_rules(), ids=lambda r: r["alert"])
def test_each_alert_reads_the_metrics_contract(rule: dict[str, Any]) -> None:
    _check_expr(rule["expr"])


@pytest.mark.parametrize("rule", _alert_rules(), ids=lambda r: r["alert"])
def test_each_alert_is_tested_firing_and_not_firing(rule: dict[str, Any]) -> None:
    cases = [c for t in _alert_tests() for c in t["alert_rule_test"]]
    mine = [c for c in cases if c["alertname"] == rule["alert"]]
    assert any(c["exp_alerts"] for c in mine), f"no test where {rule['alert']} fires"
    assert any(not c["exp_alerts"] for c in mine), f"no test where {rule['alert']} does not"


def test_the_unit_tests_feed_series_of_the_contract() -> None:
    problems = []
    for test in _alert_tests():
        for series in test["input_series"]:
            name, _, labels = series["series"].partition("{")
            base, suffix = _base_metric(name)
            allowed = CONTRACT[base][1]
            for label, value in re.findall(r'(\w+)="([^"]*)"', labels):
                if label in TARGET_LABELS or (label == "le" and suffix == "_bucket"):
                    continue
                values = allowed.get(label, set())
                if label not in allowed or (values is not None and value not in values):
                    problems.append(f"{series['series']}: {label}={value!r}")
            missing = set(allowed) - set(re.findall(r"(\w+)=", labels))
            if missing:
                problems.append(f"{series['series']}: without {sorted(missing)}")
    assert not problems, "\n".join(problems)


# -- the dashboard --------------------------------------------------------------------------


def test_the_dashboard_is_a_grafana_dashboard_with_its_variables() -> None:
    dashboard = _dashboard()
    assert dashboard["uid"] == "duetime"
    assert 36 <= dashboard["schemaVersion"] <= 41
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    instance = variables["instance"]
    assert instance["type"] == "query"
    assert instance["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    assert instance["multi"] and instance["includeAll"] and instance["allValue"] == ".*"
    query = re.fullmatch(r"label_values\((\w+), instance\)", instance["query"])
    assert query and query.group(1) in CONTRACT, instance["query"]
    nested = [p for row in dashboard["panels"] for p in row.get("panels", [])]
    ids = [p["id"] for p in dashboard["panels"] + nested]
    assert len(ids) == len(set(ids)), "panel ids are unique"


def test_every_panel_has_the_datasource_and_queries() -> None:
    datasource = {"type": "prometheus", "uid": "${datasource}"}
    for panel in _panels():
        assert panel["datasource"] == datasource, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == datasource, panel["title"]
            assert target["expr"].strip(), panel["title"]
            assert target["refId"], panel["title"]
        refs = [t["refId"] for t in panel["targets"]]
        assert len(refs) == len(set(refs)), panel["title"]


def test_the_dashboard_shows_what_the_issue_asks_for() -> None:
    used = set().union(*(_check_expr(e) for e in _dashboard_exprs()))
    assert used >= {
        "duetime_trigger_lateness_seconds",
        "duetime_triggers_total",
        "duetime_outbox_depth",
        "duetime_outbox_oldest_age_seconds",
        "duetime_dead_letters",
        "duetime_deliveries_total",
        "duetime_delivery_duration_seconds",
        "duetime_sse_clients",
        "duetime_http_requests_total",
        "duetime_http_request_duration_seconds",
    }
    exprs = "\n".join(_dashboard_exprs())
    assert "histogram_quantile(0.5, sum by (backend, le)" in exprs
    assert "histogram_quantile(0.99, sum by (backend, le)" in exprs
    assert "histogram_quantile(0.99, sum by (route, le)" in exprs
    assert "sum by (channel, outcome)" in exprs


@pytest.mark.parametrize("expr", _dashboard_exprs())
def test_each_dashboard_query_reads_the_contract_of_the_chosen_instances(expr: str) -> None:
    _check_expr(expr)
    for _, matchers, _ in _selectors(expr):
        assert matchers.get("instance") == ("=~", "$instance"), f"not filtered by $instance: {expr}"


def test_every_dashboard_query_is_promql(tmp_path: Path) -> None:
    """promtool parses each query, with Grafana's variables given values, as a recording rule."""
    rules = []
    for i, expr in enumerate(_dashboard_exprs()):
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr.replace("${1}", ""), f"a Grafana variable left in {expr}"
        rules.append({"record": f"dashboard:query_{i}", "expr": expr})
    file = tmp_path / "dashboard-queries.yaml"
    file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    done = run_promtool("check", "rules", "--lint=none", str(file))
    assert f"SUCCESS: {len(rules)} rules found" in done.stdout, done.stdout
