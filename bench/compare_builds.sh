#!/usr/bin/env bash
# Two builds of the auth service and api_service, measured in turn in one run: the
# unauthenticated baseline (GET /health) against a protected route (GET /resource with a
# verified bearer token) at 32 connections, and login throughput at 8 connections, for
# BASE then NEW, twice (A B A B), so that drift of the shared machine hits both alike.
# Prints one JSON line per measurement, labelled with the build.
#
#   bash bench/compare_builds.sh BASE_RELEASE_DIR NEW_RELEASE_DIR [SECONDS_PER_RUN]
#
# Each directory holds `wristband` and `examples/api_service` from `cargo build --release`;
# the load generator comes from NEW_RELEASE_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
base_dir=$1; new_dir=$2; secs=${3:-8}
BENCH_PREBUILT=1 source bench/lib.sh
lg=$new_dir/loadgen

measure() {
  local name=$1 dir=$2 round=$3 w="$work/$1-$3"
  mkdir -p "$w"
  serve_and_login "$name" "$dir" "$w"
  local api
  api=$(RUST_LOG=warn start "$w/api" "$dir/examples/api_service" --listen 127.0.0.1:0 --issuer "http://$auth" --audience wristband)
  track "$w/api"
  $lg -c 32 -d "$secs" --label "$name-$round-health" get "http://$api/health"
  $lg -c 32 -d "$secs" --label "$name-$round-resource" get "http://$api/resource" --bearer "$token"
  $lg -c 8 -d "$secs" --label "$name-$round-login-c8" login --auth "http://$auth" --user bench --password "$bench_password"
  kill "$(cat "$w/auth.pid")" "$(cat "$w/api.pid")" 2>/dev/null || true
  sleep 1
}

echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
for round in 1 2; do
  measure base "$base_dir" "$round"
  measure new "$new_dir" "$round"
done
