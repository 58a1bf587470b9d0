#!/usr/bin/env bash
# The verified caller, measured on two builds of the auth service in one run: GET /v1/me
# with a bearer token and GET /account (the hosted account page) with the access-token
# cookie, at 4 connections, for BASE then NEW, twice (A B A B), so that drift of the shared
# machine hits both alike. Prints one JSON line per measurement, labelled with the build.
#
#   bash bench/principal.sh BASE_RELEASE_DIR NEW_RELEASE_DIR [SECONDS_PER_RUN]
#
# Each directory holds `wristband` from `cargo build --release`; the load generator comes
# from NEW_RELEASE_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
base_dir=$1; new_dir=$2; secs=${3:-8}
BENCH_PREBUILT=1 source bench/lib.sh
lg=$new_dir/loadgen

measure() {
  local name=$1 dir=$2 round=$3 w="$work/$1-$3"
  mkdir -p "$w"
  serve_and_login "$name" "$dir" "$w"
  $lg -c 4 -d "$secs" --label "$name-$round-me" get "http://$auth/v1/me" --bearer "$token"
  $lg -c 4 -d "$secs" --label "$name-$round-account" get "http://$auth/account" --cookie "__Host-wb_at=$token"
  kill "$(cat "$w/auth.pid")" 2>/dev/null || true
  sleep 1
}

echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
for round in 1 2; do
  measure base "$base_dir" "$round"
  measure new "$new_dir" "$round"
done
