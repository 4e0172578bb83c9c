#!/usr/bin/env bash
# Load test on loopback, release builds: third-party-api alone (the baseline: one key check and a
# random number) against main-app's getcode (Key Vault key from cache, the third-party call, a
# queue message through the storage gate to Azurite), side by side on one devstack.
# Usage: bench/run.sh [seconds=15] [connections=16]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-15}
connections=${2:-16}
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk; }

cargo build --release -q -p devstack -p third-party-api -p main-app -p queue-worker
state=$(mktemp -d)
log="$state/devstack.log"
target/release/devstack --ephemeral-ports --no-build --state-dir "$state" >"$log" 2>&1 &
stack=$!
trap 'kill -TERM $stack 2>/dev/null; wait $stack 2>/dev/null; rm -rf "$state"' EXIT
for _ in $(seq 1 120); do grep -q '"devstack ready"' "$log" && break; sleep 0.5; done
ready=$(grep '"devstack ready"' "$log")
api=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["third_party_api"])' "$ready")
app=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["main_app"])' "$ready")
key=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["functionKeys"]["main-app"])' "$state/third-party-api/keys.json")

run() { # name, url, extra wrk args...
  local name=$1 url=$2; shift 2
  local out
  out=$(wrk -t2 -c"$connections" -d"${seconds}s" --latency "$@" "$url")
  local rps p50 p99
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  local errors
  errors=$(awk '/Non-2xx/ {print $5}' <<<"$out")
  printf '%-28s %10s req/s   p50 %8s   p99 %8s   non-2xx %s\n' "$name" "$rps" "$p50" "$p99" "${errors:-0}"
  echo "$rps"
}

echo "wrk: 2 threads, $connections connections, ${seconds}s each, $(nproc) cores, release build"
base=$(run "third-party-api (baseline)" "$api" -H "x-functions-key: $key" | tee /dev/stderr | tail -1)
full=$(run "main-app getcode" "$app/api/v1/getcode" | tee /dev/stderr | tail -1)
python3 -c 'import sys; b,f=map(float,sys.argv[1:]); print(f"getcode / baseline throughput: {f/b:.3f}")' "$base" "$full"
