#!/usr/bin/env bash
# Installs everything the tests need on a fresh machine (PostgreSQL and Chromium from Debian,
# daprd and scheduler built from the Go module proxy, the Python test tools), then runs every
# test tier.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# Debian packages: PostgreSQL (the tests start their own server on 127.0.0.1) and Chromium
# (renders the API docs page in a real browser).
packages=()
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || packages+=(postgresql)
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

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]'

.venv/bin/ruff check src tests bench
.venv/bin/ruff format --check src tests bench
.venv/bin/mypy
.venv/bin/pytest "$@"
