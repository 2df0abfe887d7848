#!/usr/bin/env bash
# Installs everything the tests need on a fresh machine (PostgreSQL, Redis and Chromium from
# Debian; daprd, scheduler, helm and promtool built from the Go module proxy; Kafka's jars from
# Maven Central; the Python test and benchmark tools), then runs every test tier.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# Debian packages: PostgreSQL and Redis (the tests start their own servers on 127.0.0.1) and
# Chromium (renders the API docs page in a real browser).
packages=()
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || packages+=(postgresql)
[ -x /usr/bin/redis-server ] || packages+=(redis-server)
command -v chromium >/dev/null 2>&1 || packages+=(chromium)
if [ ${#packages[@]} -gt 0 ]; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

# The real Dapr engine: daprd and scheduler v1.16.5 built from the Go module proxy (cached
# outside the work tree; ~7 min cold, instant warm). The Dapr tests use these binaries.
DUETIME_DAPR_BIN_DIR=$(./scripts/build-dapr.sh)
export DUETIME_DAPR_BIN_DIR

# A real Kafka broker (KRaft, one node): kafka_2.13 4.1.1 and its runtime jars from Maven
# Central (cached outside the work tree; ~12 s cold, instant warm). tests/brokers.py runs it.
DUETIME_KAFKA_LIBS=$(./scripts/fetch-kafka.sh)
export DUETIME_KAFKA_LIBS

# helm v3.22.0 built from the Go module proxy (cached outside the work tree; ~2 min cold,
# instant warm). The chart tests (tests/deploy) and the pub/sub tests render the chart with it.
DUETIME_HELM_BIN=$(./scripts/build-helm.sh)
export DUETIME_HELM_BIN

# promtool (Prometheus 3.16.0) built from the Go module proxy (cached outside the work tree;
# ~19 min cold, instant warm). tests/deploy/test_monitoring.py checks the alerts with it.
DUETIME_PROMTOOL_BIN=$(./scripts/build-promtool.sh)
export DUETIME_PROMTOOL_BIN

# duetime and the Python test tools into .venv (it holds all scripts/run.sh would install).
./scripts/install-venv.sh test,bench

.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
.venv/bin/mypy
.venv/bin/pytest "$@"
