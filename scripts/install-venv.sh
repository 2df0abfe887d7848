#!/usr/bin/env bash
# Installs duetime into .venv, with the extras given ("test" for the test tools), and writes
# the stamp scripts/run.sh checks. It installs with uv (PyPI's `uv`, put into .venv by pip):
# ≈ 5 s with its cache warm and ≈ 15 s cold, where pip takes ≈ 60 s. pip does it when uv
# cannot be installed.
set -euo pipefail
cd "$(dirname "$0")/.."

spec=.
[ -n "${1:-}" ] && spec=".[$1]"
[ -x .venv/bin/python ] || python3 -m venv .venv
stamp=.venv/.duetime-installed
rm -f "$stamp"

# uv reads its own settings: hand it pip's, where this machine sets them.
[ -n "${PIP_FIND_LINKS:-}" ] && [ -z "${UV_FIND_LINKS:-}" ] && export UV_FIND_LINKS=$PIP_FIND_LINKS
[ -n "${PIP_CERT:-}" ] && [ -z "${SSL_CERT_FILE:-}" ] && export SSL_CERT_FILE=$PIP_CERT
export UV_LINK_MODE=${UV_LINK_MODE:-copy}  # its cache may be on another file system

if [ -x .venv/bin/uv ] || .venv/bin/pip install -q --disable-pip-version-check 'uv>=0.9'; then
  # --compile-bytecode: as pip does; without it, where PYTHONDONTWRITEBYTECODE is set every
  # start compiles every module again (seconds of CPU per process)
  .venv/bin/uv pip install --compile-bytecode --python .venv/bin/python -e "$spec"
else
  echo "install-venv: uv cannot be installed; installing with pip (slower)" >&2
  .venv/bin/pip install --disable-pip-version-check -e "$spec"
fi
# duetime's own modules too (an editable install leaves them as source): ≈ 0.6 s less CPU at
# every start where PYTHONDONTWRITEBYTECODE is set; a module edited later is compiled as usual
.venv/bin/python -m compileall -q src >/dev/null
echo "$(python3 --version 2>&1) $(sha256sum pyproject.toml | cut -d' ' -f1)" > "$stamp"
