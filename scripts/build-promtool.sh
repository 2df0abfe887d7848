#!/usr/bin/env bash
# Builds promtool (Prometheus 3.16.0: the Go module github.com/prometheus/prometheus v0.316.0)
# from the Go module proxy with the local Go toolchain and caches it outside the work tree; a
# warm cache is reused at once. Prints the path of the `promtool` binary on stdout, progress
# on stderr. `promtool check rules` and `promtool test rules` need no network once built.
#   PROMTOOL_VERSION (default v0.316.0, the module's version: v0.3MM.P is Prometheus 3.MM.P),
#   DUETIME_CACHE_DIR (default ~/.cache/duetime)
# Cold: ~19 min on 2 cores that other test runs shared (load 6-9; ~200 modules, ~280 MB of
# module downloads, mostly service-discovery SDKs promtool links in), an 88 MB binary.
# `promtool --version` says the Prometheus version (set by ldflags, as upstream's build does).
set -euo pipefail
version=${PROMTOOL_VERSION:-v0.316.0}
out="${DUETIME_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/duetime}/promtool/$version"
if [ -x "$out/promtool" ]; then
  echo "$out/promtool"
  exit 0
fi
say() { echo "build-promtool: $*" >&2; }
minor=${version#v0.}
release="3.$((10#${minor%%.*} - 300)).${minor#*.}"
say "building promtool $version (Prometheus $release) into $out, once (15-20 min cold on 2 cores)"
started=$SECONDS
(
  trap 'kill $! 2>/dev/null; exit 0' TERM # and its sleep, which holds our stderr open
  while sleep 30 & wait $!; do say "... still building ($((SECONDS - started)) s)"; done
) &
ticker=$!
mkdir -p "$(dirname "$out")"
staging=$(mktemp -d "$out.partial.XXXXXX")
trap 'kill "$ticker" 2>/dev/null; rm -rf "$staging"' EXIT
# netgo as upstream's release build; builtinassets only matters to the prometheus binary.
(cd "$staging" && CGO_ENABLED=0 GOTOOLCHAIN=local GOBIN="$staging/bin" \
  go install -trimpath -tags netgo \
  -ldflags "-s -w -X github.com/prometheus/common/version.Version=$release" \
  "github.com/prometheus/prometheus/cmd/promtool@$version") >&2
# Publish the finished directory by one rename; if another run published first, keep theirs.
mv -T "$staging/bin" "$out" 2>/dev/null || [ -x "$out/promtool" ]
rm -rf "$staging"
kill "$ticker" 2>/dev/null || true
trap - EXIT
say "built in $((SECONDS - started)) s"
echo "$out/promtool"
