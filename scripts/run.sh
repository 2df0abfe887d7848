#!/usr/bin/env bash
# Installs duetime into .venv (once) and runs it: embedded jobs engine, SQLite in
# DUETIME_DATA_DIR (default ~/.local/share/duetime), HTTP on 127.0.0.1:8000.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e .
exec .venv/bin/duetime serve "$@"
