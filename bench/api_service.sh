#!/usr/bin/env bash
# api_service under wrk: GET /resource (a verified bearer token) against GET /health (no
# check) sent with the same `Authorization` headers, with 1,000 distinct valid tokens in
# rotation and with one static token. The tokens are minted by a real `wristband serve`
# (one login, then a chain of refreshes: bench/mint_tokens.py). Each build's api_service
# runs at once; every round measures each build in turn (the order alternating from round
# to round) so that drift of the shared machine hits both alike. Before each build's
# measurements a warm-up pass sends every token once, so /resource measures cache hits.
#
#   bash bench/api_service.sh [SECONDS] [ROUNDS] [RELEASE_DIR...]
#
# Without RELEASE_DIRs the current tree is built and measured. Each RELEASE_DIR holds
# `examples/api_service` (and the first one `wristband`) from `cargo build --release`.
# Prints one JSON line per measurement (wrk's requests/s and latency percentiles, plus the
# api_service's CPU time per request from /proc), then the medians and ratios.
# WRK_THREADS (default 1) and CONNECTIONS (default 32) set the load. With RT=1 the
# api_services and wrk run with real-time priority (`chrt -f 10`), so that other work on a
# shared machine cannot preempt them (the kernel still keeps 5 % of each second for it).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-8}; rounds=${2:-3}
shift $(( $# < 2 ? $# : 2 ))
if [ $# -eq 0 ]; then
  source bench/lib.sh
  dirs=("$bin")
else
  BENCH_PREBUILT=1 source bench/lib.sh
  dirs=("$@")
fi
threads=${WRK_THREADS:-1}; conns=${CONNECTIONS:-32}
rt=()
if [ "${RT:-0}" = 1 ]; then rt=(chrt -f 10); fi
hz=$(getconf CLK_TCK)

printf '%s\n' "$bench_password" | RUST_LOG=warn "${dirs[0]}/wristband" user --data-dir "$work/data" add bench --role admin --password-stdin >/dev/null
auth=$(RUST_LOG=warn start "$work/auth" "${dirs[0]}/wristband" serve --data-dir "$work/data" --listen 127.0.0.1:0)
track "$work/auth"
python3 bench/mint_tokens.py "$auth" bench "$bench_password" 1000 "$work/tokens"
head -1 "$work/tokens" >"$work/token1"

apis=()
for i in "${!dirs[@]}"; do
  apis[i]=$(RUST_LOG=warn start "$work/api$i" "${rt[@]}" "${dirs[$i]}/examples/api_service" --listen 127.0.0.1:0 --issuer "http://$auth" --audience wristband)
  track "$work/api$i"
done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
sys_ticks() { awk '{print $15}' "/proc/$1/stat"; }

# run BUILD_INDEX LABEL PATH TOKEN_FILE: one wrk window, one JSON line.
run() {
  local i=$1 label=$2 path=$3 tokens=$4 pid before after sys0 sys1 line
  pid=$(cat "$work/api$i.pid")
  before=$(cpu_ticks "$pid"); sys0=$(sys_ticks "$pid")
  line=$(LABEL="$label" TOKENS="$tokens" PATHS="$path" "${rt[@]}" wrk -t "$threads" -c "$conns" -d "${secs}s" -s bench/wrk/tokens.lua "http://${apis[$i]}" | grep '^{')
  after=$(cpu_ticks "$pid"); sys1=$(sys_ticks "$pid")
  if [ "$(jq '.non_2xx + .socket_errors' <<<"$line")" != 0 ]; then
    echo "$label: failed requests: $line" >&2; exit 1
  fi
  jq -c --argjson sys "$(awk -v a="$sys1" -v b="$sys0" -v hz="$hz" 'BEGIN{print (a-b)/hz}')" --arg build "$i" --arg dir "${dirs[$i]}" \
    --argjson cpu "$(awk -v a="$after" -v b="$before" -v hz="$hz" 'BEGIN{print (a-b)/hz}')" \
    '. + {build: ($build|tonumber), dir: $dir, load1: '"$(cut -d' ' -f1 /proc/loadavg)"',
         server_cpu_s: $cpu, server_sys_s: $sys, server_cpu_us_per_req: (if .requests > 0 then $cpu * 1e6 / .requests else null end)}' <<<"$line"
}

echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); wrk -t$threads -c$conns, ${secs}s windows${rt:+, real-time priority}"
for round in $(seq 1 "$rounds"); do
  order=("${!dirs[@]}")
  if [ $((round % 2)) -eq 0 ]; then
    mapfile -t order < <(printf '%s\n' "${!dirs[@]}" | tac)
  fi
  for i in "${order[@]}"; do
    # Warm-up: every token verified once, so that the windows below are cache hits.
    LABEL=warmup TOKENS="$work/tokens" PATHS=/resource wrk -t1 -c4 -d2s -s bench/wrk/tokens.lua "http://${apis[$i]}" >/dev/null
    run "$i" health-1000 /health "$work/tokens"
    run "$i" resource-1000 /resource "$work/tokens"
    run "$i" health-static /health "$work/token1"
    run "$i" resource-static /resource "$work/token1"
  done
done | tee "$work/results.jsonl"

echo "# medians over $rounds rounds; ratio = median over rounds of resource/health in the same round"
jq -rs '
  def median: sort | if length % 2 == 1 then .[length/2|floor] else (.[length/2-1] + .[length/2]) / 2 end;
  group_by(.build)[] | . as $b |
  ($b[0].dir) as $dir |
  ["1000", "static"][] as $set |
  [$b[] | select(.label == "health-\($set)")] as $h |
  [$b[] | select(.label == "resource-\($set)")] as $r |
  [range(0; $h|length) | ($r[.].rps / $h[.].rps)] as $ratios |
  "build \($b[0].build) (\($dir)), tokens \($set): health \($h|map(.rps)|median|round) req/s (\($h|map(.server_cpu_us_per_req)|median*100|round/100) µs CPU/req, p99 \($h|map(.p99_ms)|median) ms), resource \($r|map(.rps)|median|round) req/s (\($r|map(.server_cpu_us_per_req)|median*100|round/100) µs CPU/req, p99 \($r|map(.p99_ms)|median) ms), ratio median \($ratios|median*1000|round/1000) (rounds: \($ratios|map(.*100|round/100)|join(" ")))"
' "$work/results.jsonl"
