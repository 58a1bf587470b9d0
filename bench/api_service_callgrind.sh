#!/usr/bin/env bash
# Instructions per request of api_service, under callgrind: independent of the load of a
# shared machine, unlike requests/s. For each RELEASE_DIR: starts `wristband serve`, mints
# 1,000 tokens, runs api_service under `valgrind --tool=callgrind`, warms its cache with
# every token, then for GET /health and GET /resource (1,000 tokens in rotation, then one
# static token), zeroes the counters, runs wrk for SECONDS and dumps. Prints, per case,
# the instructions (Ir) per request; the dumps stay in OUT_DIR/<build index>/ for
# `callgrind_annotate --inclusive=yes`.
#
#   bash bench/api_service_callgrind.sh OUT_DIR [SECONDS] RELEASE_DIR...
set -euo pipefail
cd "$(dirname "$0")/.."
out=$1; secs=$2; shift 2
BENCH_PREBUILT=1 source bench/lib.sh
printf '%s\n' "$bench_password" | RUST_LOG=warn "$1/wristband" user --data-dir "$work/data" add bench --role admin --password-stdin >/dev/null
auth=$(RUST_LOG=warn start "$work/auth" "$1/wristband" serve --data-dir "$work/data" --listen 127.0.0.1:0)
track "$work/auth"
python3 bench/mint_tokens.py "$auth" bench "$bench_password" 1000 "$work/tokens"
head -1 "$work/tokens" >"$work/token1"

i=0
for dir in "$@"; do
  o="$out/$i"; mkdir -p "$o"
  api=$(RUST_LOG=warn start "$work/api$i" valgrind --tool=callgrind --callgrind-out-file="$o/callgrind.out" "$dir/examples/api_service" --listen 127.0.0.1:0 --issuer "http://$auth" --audience wristband)
  track "$work/api$i"
  pid=$(cat "$work/api$i.pid")
  for _ in 1 2; do
    LABEL=warmup TOKENS="$work/tokens" PATHS=/resource wrk -t1 -c2 -d10s -s bench/wrk/tokens.lua "http://$api" >/dev/null
  done
  for case in health-1000:/health:tokens resource-1000:/resource:tokens health-static:/health:token1 resource-static:/resource:token1; do
    IFS=: read -r name path file <<<"$case"
    callgrind_control -z "$pid" >/dev/null 2>&1
    n=$(LABEL=$name TOKENS="$work/$file" PATHS=$path wrk -t1 -c4 -d"${secs}s" -s bench/wrk/tokens.lua "http://$api" | grep '^{' | jq .requests)
    callgrind_control -d "$name" "$pid" >/dev/null 2>&1
    dump=$(grep -l "^desc: Trigger: dump $name$" "$o"/callgrind.out.* | head -1)
    ir=$(sed -n 's/^summary: //p' "$dump")
    echo "{\"build\":$i,\"dir\":\"$dir\",\"label\":\"$name\",\"requests\":$n,\"ir\":$ir,\"ir_per_request\":$((ir / n)),\"dump\":\"$dump\"}"
  done
  kill "$pid" 2>/dev/null || true
  i=$((i + 1))
done
