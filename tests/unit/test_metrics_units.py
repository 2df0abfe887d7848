"""How triggers are counted and timed (duetime.metrics), with prometheus-client's own
registry read back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY

from duetime import metrics
from duetime.jobs.model import Answer, DeadLetter, Trigger
from duetime.jobs.store import Outcome

DUE = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def count(outcome: str) -> float:
    labels = {"backend": "test", "outcome": outcome}
    return REGISTRY.get_sample_value("duetime_triggers_total", labels) or 0.0


def letter() -> DeadLetter:
    return DeadLetter("id", "job", None, DUE, DUE, 2, "boom")


@pytest.mark.parametrize(
    ("outcome", "answer", "error", "kind"),
    [
        (Outcome("job", 1, None), Answer.DELIVERED, None, "success"),
        (Outcome("job", 1, None), None, None, "success"),
        (Outcome("job", 1, None), Answer.APP_NOT_FOUND, None, "app_not_found"),
        (Outcome("job", 1, None), Answer.NO_HANDLER, None, "dropped"),
        (Outcome("job", 1, None), None, "503", "retry"),
        (Outcome("job", 1, None, letter()), None, "503", "dead_lettered"),
    ],
)
def test_each_attempt_counts_once_under_its_outcome(
    outcome: Outcome, answer: Answer | None, error: str | None, kind: str
) -> None:
    before = {
        k: count(k) for k in ("success", "retry", "dead_lettered", "app_not_found", "dropped")
    }
    metrics.trigger_settled("test", outcome, answer, error)
    after = {k: count(k) for k in before}
    assert {k: after[k] - before[k] for k in before} == {k: float(k == kind) for k in before}


def test_lateness_is_observed_for_first_attempts_only_and_never_negative() -> None:
    def observed() -> tuple[float, float]:
        labels = {"backend": "unit"}
        n = REGISTRY.get_sample_value("duetime_trigger_lateness_seconds_count", labels) or 0.0
        s = REGISTRY.get_sample_value("duetime_trigger_lateness_seconds_sum", labels) or 0.0
        return n, s

    n0, s0 = observed()
    late = Trigger("a", None, scheduled_at=DUE, fired_at=DUE + timedelta(seconds=3))
    metrics.trigger_started("unit", late)
    retry = Trigger("a", None, scheduled_at=DUE, fired_at=DUE + timedelta(seconds=60), attempt=2)
    metrics.trigger_started("unit", retry)
    clock_skew = Trigger("b", None, scheduled_at=DUE, fired_at=DUE - timedelta(milliseconds=1))
    metrics.trigger_started("unit", clock_skew)
    n1, s1 = observed()
    assert (n1 - n0, s1 - s0) == (2, pytest.approx(3.0))
    buckets = {
        le: REGISTRY.get_sample_value(
            "duetime_trigger_lateness_seconds_bucket", {"backend": "unit", "le": le}
        )
        for le in ("0.001", "2.5", "5.0")
    }
    assert buckets == {"0.001": 1.0, "2.5": 1.0, "5.0": 2.0}
