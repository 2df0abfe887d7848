"""DueWindow: the engine's in-memory view of the earliest-due jobs."""

from __future__ import annotations

from duetime.jobs.model import Job
from duetime.jobs.store import StoredJob
from duetime.jobs.window import DueWindow


def row(name: str, fire_us: int, generation: int = 1) -> StoredJob:
    return StoredJob(
        job=Job(name, due_time="0s"),
        created_us=0,
        anchor_us=fire_us,
        next_fire_us=fire_us,
        tick_us=fire_us,
        attempt=0,
        fired=0,
        expires_us=None,
        generation=generation,
    )


def loaded(capacity: int, rows: list[StoredJob]) -> DueWindow:
    window = DueWindow(capacity)
    after, limit = window.begin_load()
    assert after is None
    ordered = sorted(rows, key=lambda r: r.key)
    window.finish_load(ordered[:limit], limit, {})
    return window


def test_holds_nothing_before_the_first_load() -> None:
    window = DueWindow(4)
    assert window.note("x", row("x", 10)) is False
    assert window.next_due_us() is None


def test_pops_due_jobs_in_order_and_never_early() -> None:
    window = loaded(10, [row("b", 20), row("a", 10), row("c", 30)])
    assert window.bound is None
    assert window.next_due_us() == 10
    assert [r.job.name for r in window.pop_due(19)] == ["a"]
    assert [r.job.name for r in window.pop_due(30)] == ["b", "c"]
    assert window.pop_due(10**9) == []


def test_replaced_and_deleted_jobs_do_not_fire() -> None:
    window = loaded(10, [row("a", 10), row("b", 20)])
    window.note("a", row("a", 50, generation=2))
    window.note("b", None)
    assert window.pop_due(40) == []
    [a] = window.pop_due(50)
    assert a.generation == 2


def test_bounded_window_ignores_later_jobs_and_asks_for_more() -> None:
    window = loaded(4, [row(f"j{i}", 10 + i * 10) for i in range(10)])
    assert window.bound == (40, "j3") and len(window) == 4
    assert window.note("late", row("late", 45)) is False and "late" not in window
    assert window.note("early", row("early", 5)) is True
    assert not window.wants_more
    window.pop_due(35)
    assert window.wants_more
    after, _limit = window.begin_load()
    assert after == (40, "j3")
    assert not window.wants_more


def test_changes_during_a_load_win_over_what_it_read() -> None:
    window = loaded(2, [row("a", 10), row("b", 20)])
    window.pop_due(20)
    after, limit = window.begin_load()
    stale = [row("c", 30), row("d", 40), row("e", 50)][:limit]
    window.note("c", None)  # deleted after the load read it
    window.note("d", row("d", 45, generation=2))  # moved after the load read it
    window.forget_prefix("e")
    window.finish_load(stale, limit, {})
    assert window.pop_due(100) == []  # d moved past the new bound: the next load brings it
    after, limit = window.begin_load()
    assert after == (40, "d")
    window.finish_load([row("d", 45, generation=2)], limit, {})
    due = window.pop_due(100)
    assert [(r.job.name, r.generation) for r in due] == [("d", 2)]


def test_running_jobs_are_not_loaded_again() -> None:
    window = DueWindow(10)
    _, limit = window.begin_load()
    window.finish_load([row("busy", 10), row("idle", 20)], limit, {"busy": 1})
    assert [r.job.name for r in window.pop_due(100)] == ["idle"]


def test_overfull_window_trims_to_capacity_and_lowers_its_bound() -> None:
    window = loaded(2, [])
    for i in range(4):
        window.note(f"j{i}", row(f"j{i}", i * 10))
    assert len(window) == 4  # up to 2 × capacity is kept
    window.note("j4", row("j4", 40))
    assert len(window) == 2 and window.bound == (10, "j1")
    assert [r.job.name for r in window.pop_due(100)] == ["j0", "j1"]


def test_a_job_noted_during_a_load_and_then_started_is_not_put_back() -> None:
    window = loaded(2, [row("a", 10), row("b", 20), row("c", 30)])
    window.pop_due(10)
    _, limit = window.begin_load()
    window.note("x", row("x", 15))  # scheduled while the load runs, within the bound: held
    [running] = window.pop_due(15)
    window.finish_load([row("c", 30)], limit, {"x": running.generation})
    assert [r.job.name for r in window.pop_due(100)] == ["b", "c"]


def test_delete_prefix_during_a_load_wins_over_earlier_changes() -> None:
    window = loaded(1, [row("a", 1), row("b", 2)])
    window.pop_due(1)
    _, limit = window.begin_load()
    window.note("p-1", row("p-1", 50))  # past the bound: turned away, remembered
    window.forget_prefix("p-")
    window.finish_load([row("b", 2)], limit, {})
    assert [r.job.name for r in window.pop_due(100)] == ["b"]


def test_a_window_of_one_still_refills() -> None:
    window = loaded(1, [row("a", 1), row("b", 2)])
    assert window.pop_due(1) and window.wants_more
