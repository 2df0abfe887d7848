#!/usr/bin/env bash
# Installs duetime into .venv (the first time, and again only when pyproject.toml or the
# Python changes) and runs it: embedded jobs engine, SQLite in DUETIME_DATA_DIR (default
# ~/.local/share/duetime), HTTP on 127.0.0.1:8000. It prints where it listens once ready.
set -euo pipefail
cd "$(dirname "$0")/.."

stamp=.venv/.duetime-installed
wanted="$(python3 --version 2>&1) $(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$wanted" ]; then
  echo "duetime: installing into .venv (the first time takes about 15 s)..." >&2
  started=$SECONDS
  mkdir -p .venv
  log=.venv/install.log
  # What the installer says as it goes (not its list of packages); the whole log if it fails.
  if ! ./scripts/install-venv.sh </dev/null 2>&1 | tee "$log" \
       | { grep --line-buffered -vE '^ [+-] ' || true; } | sed -u 's/^/  /' >&2; then
    cat "$log" >&2
    echo "duetime: the install failed (log: $log)" >&2
    exit 1
  fi
  echo "duetime: installed in $((SECONDS - started)) s" >&2
fi
exec .venv/bin/duetime serve "$@"
