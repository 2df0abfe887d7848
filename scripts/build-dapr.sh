#!/usr/bin/env bash
# Builds the real `daprd` and `scheduler` from the Go module github.com/dapr/dapr (v1.16.5, the
# newest release whose dependencies the Go module proxy serves here) and caches them outside the
# work tree, keyed by version and by a hash of this recipe; a warm cache is reused. Prints the
# directory holding both binaries.
#
# Two changes to the downloaded module, both ours and both small:
# - go-etcd-cron v0.9.2 (what v1.16.5 requires) is refused by the proxy; v0.9.1 differs by one
#   4-line commit and is pinned with a replace directive plus dapr v1.16.1's own go.sum lines.
# - scripts/dapr/scheduler-listen-address.patch makes the scheduler honour
#   --healthz-listen-address and --metrics-listen-address (upstream binds both on every
#   interface), so the local stack listens on 127.0.0.1 only. The binary is "v1.16.5 +
#   listen-address patch".
#   DAPR_VERSION (default v1.16.5), DUETIME_CACHE_DIR (default ~/.cache/duetime)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
version=${DAPR_VERSION:-v1.16.5}
recipe=$(cat "$0" "$here/dapr/scheduler-listen-address.patch" | sha256sum | cut -c1-12)
out="${DUETIME_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/duetime}/dapr/$version-$recipe"
if [ -x "$out/daprd" ] && [ -x "$out/scheduler" ]; then
  echo "$out"
  exit 0
fi
say() { echo "build-dapr: $*" >&2; }
say "building daprd and scheduler $version from the Go module proxy, once (several minutes;"
say "cached in $out)"
started=$SECONDS
(
  trap 'kill $! 2>/dev/null; exit 0' TERM # and its sleep, which holds our stderr open
  while sleep 30 & wait $!; do say "... still building ($((SECONDS - started)) s)"; done
) &
ticker=$!
mkdir -p "$(dirname "$out")"
staging=$(mktemp -d "$out.partial.XXXXXX")
trap 'kill "$ticker" 2>/dev/null; rm -rf "$staging"' EXIT
module=$(cd "$staging" && go mod download -json "github.com/dapr/dapr@$version" |
  python3 -c 'import json, sys; d = json.load(sys.stdin); print(d.get("Dir") or sys.exit("build-dapr: go mod download: %s" % d.get("Error")))')
# `go install` refuses dapr (its go.mod has replace directives): build inside a writable copy
# of the module, where its own go.mod and go.sum apply.
cp -r "$module" "$staging/src"
chmod -R u+w "$staging/src"
cd "$staging/src"
cat >>go.mod <<'MOD'

replace github.com/diagridio/go-etcd-cron => github.com/diagridio/go-etcd-cron v0.9.1
MOD
cat >>go.sum <<'SUM'
github.com/diagridio/go-etcd-cron v0.9.1 h1:KUfcceDtypL8s3hL0jD2ZoiIzjjXY6xDQ4kT1DJF4Ws=
github.com/diagridio/go-etcd-cron v0.9.1/go.mod h1:CSzuxoCDFu+Gbds0RO73GE8CnmL5t85axiPLptsej3I=
SUM
patch -p1 --quiet <"$here/dapr/scheduler-listen-address.patch"
gofmt -w pkg/healthz/server/server.go cmd/scheduler/app/app.go
CGO_ENABLED=0 GOTOOLCHAIN=local go build -trimpath -tags=stablecomponents \
  -ldflags "-s -w -X github.com/dapr/dapr/pkg/buildinfo.version=${version#v}" \
  -o "$staging/bin/" ./cmd/daprd ./cmd/scheduler >&2
cd /
rm -rf "$out"
mv "$staging/bin" "$out"
rm -rf "$staging"
kill "$ticker" 2>/dev/null || true
trap - EXIT
say "built in $((SECONDS - started)) s"
echo "$out"
