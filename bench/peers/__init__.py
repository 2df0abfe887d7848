"""duetime's embedded engine against the schedulers users would pick instead.

    .venv/bin/python -m bench.peers --quick      # one round, smaller counts, under 10 minutes
    .venv/bin/python -m bench.peers              # the full run: three rounds, full counts
    .venv/bin/python -m bench.peers --smoke      # 50 jobs per system: the test suite's check

Every system runs in its own process(es) with a real server this package starts (PostgreSQL,
Redis) and records each job's (id, due, started) to a shared sink (`sink.py`), so lateness,
duplicates and misses are computed the same way for all. The measures run one after the
other; within each, the systems take turns in a rotated order, round after round.
"""
