#!/usr/bin/env bash
# Task creation over HTTP, measured with wrk (Debian package `wrk`):
#   bench/wrk_tasks.sh [PORT]
# Starts `duetime serve` from this checkout on a fresh SQLite database, warms up for 2 s,
# then runs POST /api/tasks with 16 and with 64 connections and POST /api/tasks/batch
# (1,000 tasks per request) with one, 10 s each. Prints requests/s and the server's CPU time
# (user + system, all threads) per request, which varies less than throughput on a shared
# machine.
set -euo pipefail
cd "$(dirname "$0")/.."
port=${1:-18802}
export DUETIME_JWT_SECRET=${DUETIME_JWT_SECRET:-bench-secret-0123456789abcdef0123456789}
data=$(mktemp -d)
DUETIME_DATA_DIR=$data DUETIME_PORT=$port .venv/bin/duetime serve >"$data/server.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$port/readyz" && break; sleep 0.2; done
TOKEN=$(DUETIME_DATA_DIR=$data .venv/bin/duetime token bench)
export TOKEN
url="http://127.0.0.1:$port"
cpu() { awk '{print $14 + $15}' "/proc/$server/stat"; }  # clock ticks (1/100 s)

measure() {  # label, connections, script, tasks per request
  local before after out requests
  before=$(cpu)
  out=$(wrk -t1 -c"$2" -d10s -s "$3" "$url")
  after=$(cpu)
  requests=$(echo "$out" | awk '/requests in/ {print $1}')
  echo "$out" | awk -v label="$1" -v per="$4" -v ticks=$((after - before)) -v n="$requests" \
    '/Requests\/sec/ {printf "%s: %.0f tasks/s, %.3f ms of server CPU per request\n", label, $2 * per, ticks * 10 / n}'
  echo "$out" | grep -E "Non-2xx|Socket errors" || true
}

wrk -t1 -c16 -d2s -s bench/wrk_create_task.lua "$url" >/dev/null
measure "POST /api/tasks, 16 connections" 16 bench/wrk_create_task.lua 1
measure "POST /api/tasks, 64 connections" 64 bench/wrk_create_task.lua 1
measure "POST /api/tasks/batch, 1 connection" 1 bench/wrk_batch.lua 1000
