"""The users' briefs' Dapr calls, extracted as runnable modules (one per brief).

Each `brief_NNN.py` holds a brief's code as written, with only the sidecar's host and port
changed (read from `DAPR_HTTP_PORT` / `DAPR_GRPC_PORT`, as Dapr apps and the `dapr` SDK
do), plus a `main()` that calls it and prints one JSON line of outcomes (`_glue.py`).
`tests/e2e/test_seeds_e2e.py` runs them against real daprd 1.16.5 and against duetime.
"""
