#!/usr/bin/env bash
# Builds the real `daprd` and `scheduler` from the Go module github.com/dapr/dapr and caches
# them outside the work tree, keyed by version; a warm cache is reused. Prints the directory.
#   DAPR_VERSION (default v1.18.3), DUETIME_CACHE_DIR (default ~/.cache/duetime)
set -euo pipefail
version=${DAPR_VERSION:-v1.18.3}
out="${DUETIME_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/duetime}/dapr/$version"
if [ -x "$out/daprd" ] && [ -x "$out/scheduler" ]; then
  echo "$out"
  exit 0
fi
# `go install` refuses dapr (its go.mod has replace directives): build inside the module,
# where its own go.mod and go.sum apply.
src=$(cd "$(mktemp -d)" && go mod download -json "github.com/dapr/dapr@$version" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
mkdir -p "$(dirname "$out")"
staging=$(mktemp -d "$out.partial.XXXXXX")
trap 'rm -rf "$staging"' EXIT
(cd "$src" && CGO_ENABLED=0 GOTOOLCHAIN=local go build -trimpath -tags=stablecomponents \
  -o "$staging/" ./cmd/daprd ./cmd/scheduler) >&2
rm -rf "$out"
mv "$staging" "$out"
trap - EXIT
echo "$out"
