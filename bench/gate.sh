#!/usr/bin/env bash
# The gate under wrk, all on loopback, in one run (bench/nginx/gate-bench.conf.in):
#
# 1. nginx serving a static file with no auth, against the same nginx asking the gate
#    first (`auth_request`), 1,000 distinct valid tokens in rotation: requests/s, p50, p99;
#    over TCP to the gate with its default threads, and over a Unix socket to a second gate
#    with one worker thread; and against the same `auth_request` answered by nginx itself
#    (`return 200`): the ceiling of any decision service behind this nginx.
# 2. The gate alone: `/authz/auth-request` for a path whose rule is `authenticated`,
#    against the same request for a path whose rule is `anonymous` and against the gate's
#    own `/health`, all with the same headers (the token and `X-Original-*`).
#    With each window, the CPU the gate (and nginx) spent per request, from
#    /proc/PID/task/*/schedstat (nanoseconds on a CPU).
# 3. The gate's CPU per decision on a cache miss and on a hit: fresh tokens sent once each
#    (every decision verifies a signature), then the same tokens again (every decision is
#    a cache hit), same client and concurrency.
# 4. Decision latency while a revocation arrives every 10 ms: the gate follows the auth
#    service's revocation feed (a resource-server client) while bench/revoke_loop.py
#    revokes other tokens through RFC 7009, against the same window without revocations;
#    then checks that the revoked tokens are refused.
#
# Windows of 1. and 2. alternate in order from round to round. Prints one JSON line per
# measurement, then a summary.
#
#   bash bench/gate.sh [SECONDS] [ROUNDS]
#
# RELEASE_DIR (default: build the current tree) holds `wristband`. RT=1 runs nginx, the
# gate and wrk with real-time priority (`chrt -f 10`), against other work on a shared
# machine. WRK_THREADS (default 1) and CONNECTIONS (default 32) set the load; NGINX_WORKERS
# (default auto, nginx's own default: one per CPU) nginx's worker processes.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-8}; rounds=${2:-3}
if [ -n "${RELEASE_DIR:-}" ]; then
  BENCH_PREBUILT=1 source bench/lib.sh
  bin=$RELEASE_DIR
else
  source bench/lib.sh
fi
threads=${WRK_THREADS:-1}; conns=${CONNECTIONS:-32}
rt=()
if [ "${RT:-0}" = 1 ]; then rt=(chrt -f 10); fi
nginx=${NGINX:-/usr/sbin/nginx}

# The auth service: a cheap Argon2 setting (logins are not measured), one user, one
# resource-server client for the gate's revocation feed.
cat >"$work/wristband.toml" <<'TOML'
[argon2]
memory_kib = 1024
iterations = 1
parallelism = 1
TOML
store=(--config "$work/wristband.toml" --data-dir "$work/data")
printf '%s\n' "$bench_password" | RUST_LOG=warn "$bin/wristband" user "${store[@]}" add bench --role admin --password-stdin >/dev/null
creds=$(RUST_LOG=warn "$bin/wristband" client "${store[@]}" add gate-bench --kind resource-server --json)
client_id=$(jq -r .client_id <<<"$creds")
client_secret=$(jq -r .client_secret <<<"$creds")
auth=$(RUST_LOG=warn start "$work/auth" "$bin/wristband" serve "${store[@]}" --listen 127.0.0.1:0)
track "$work/auth"

# Token pools, each from its own login: A in rotation, M for misses (then hits), R revoked.
python3 bench/mint_tokens.py "$auth" bench "$bench_password" 1000 "$work/tokens-a"
python3 bench/mint_tokens.py "$auth" bench "$bench_password" 4000 "$work/tokens-m"
python3 bench/mint_tokens.py "$auth" bench "$bench_password" 1500 "$work/tokens-r"
head -2000 "$work/tokens-m" >"$work/tokens-m1"
tail -2000 "$work/tokens-m" >"$work/tokens-m2"

cat >"$work/policy.toml" <<'TOML'
[[rule]]
name = "public"
path = "/public"
require = "anonymous"

[[rule]]
name = "app"
path = "/"
require = "authenticated"
TOML
gate=$(WRISTBAND_CLIENT_ID=$client_id WRISTBAND_CLIENT_SECRET=$client_secret RUST_LOG=warn \
  start "$work/gate" "${rt[@]}" "$bin/wristband" gate --listen 127.0.0.1:0 --issuer "http://$auth" \
  --audience wristband --policy "$work/policy.toml")
track "$work/gate"
gate_pid=$(cat "$work/gate.pid")
# The second gate: a Unix socket, one worker thread (the set-up docs/GATE.md recommends
# beside the proxy on a small host).
WRISTBAND_CLIENT_ID=$client_id WRISTBAND_CLIENT_SECRET=$client_secret RUST_LOG=warn \
  start "$work/gate-unix" "${rt[@]}" "$bin/wristband" gate --listen "unix:$work/gate.sock" --threads 1 \
  --issuer "http://$auth" --audience wristband --policy "$work/policy.toml" >/dev/null
track "$work/gate-unix"
gate_unix_pid=$(cat "$work/gate-unix.pid")

# nginx: two servers on free ports, the same static file behind each.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
plain_port=$(free_port); auth_port=$(free_port); unix_port=$(free_port); ceiling_port=$(free_port)
mkdir -p "$work/www/app" "$work/www/public" "$work/nginx-tmp"
echo ok >"$work/www/app/data.txt"; echo ok >"$work/www/public/data.txt"
# nginx's workers may run as another user: they need to reach the files (only those).
chmod o+x "$work"; chmod -R a+rX "$work/www"
sed -e "s|@WORK@|$work|g" -e "s|@GATE@|$gate|g" -e "s|@PLAIN_PORT@|$plain_port|g" \
  -e "s|@AUTH_PORT@|$auth_port|g" -e "s|@UNIX_PORT@|$unix_port|g" -e "s|@GATE_SOCKET@|$work/gate.sock|g" \
  -e "s|@CEILING_PORT@|$ceiling_port|g" -e "s|@WORKERS@|${NGINX_WORKERS:-auto}|g" \
  bench/nginx/gate-bench.conf.in >"$work/nginx.conf"
"${rt[@]}" "$nginx" -c "$work/nginx.conf" -e "$work/nginx-error.log" >"$work/nginx.out" 2>&1 &
for _ in $(seq 1 50); do [ -s "$work/nginx.pid" ] && break; sleep 0.1; done
nginx_master=$(cat "$work/nginx.pid"); pids+=("$nginx_master")
for _ in $(seq 1 50); do curl -fs -o /dev/null "http://127.0.0.1:$plain_port/app/data.txt" && break; sleep 0.1; done
for port in "$auth_port" "$unix_port"; do
  check=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $(head -1 "$work/tokens-a")" "http://127.0.0.1:$port/app/data.txt")
  denied=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$port/app/data.txt")
  [ "$check" = 200 ] && [ "$denied" = 401 ] || { echo "nginx + gate on $port: $check with a token, $denied without" >&2; cat "$work/gate.err" "$work/gate-unix.err" "$work/nginx-error.log" >&2; exit 1; }
done

# CPU nanoseconds of every thread of a process (and of nginx's workers).
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {print s + 0}'; }
nginx_pids() { echo "$nginx_master" $(pgrep -P "$nginx_master"); }
nginx_cpu_ns() { local s=0 p; for p in $(nginx_pids); do s=$((s + $(cpu_ns "$p"))); done; echo "$s"; }

# wrk_run LABEL URL TOKENS [HEADERS] [extra env]: one window, one JSON line with CPU.
app_headers="X-Original-URL: http://app.example/app/data.txt|X-Original-Method: GET"
anon_headers="X-Original-URL: http://app.example/public/data.txt|X-Original-Method: GET"
wrk_run() {
  local label=$1 url=$2 tokens=$3 headers=${4:-} g0 g1 n0 n1 line pid=${GATE_PID:-$gate_pid}
  g0=$(cpu_ns "$pid"); n0=$(nginx_cpu_ns)
  line=$(LABEL="$label" TOKENS="$tokens" HEADERS="$headers" ONCE="${ONCE:-0}" "${rt[@]}" \
    wrk -t "${T:-$threads}" -c "${C:-$conns}" -d "${D:-$secs}s" -s bench/wrk/tokens.lua "$url" | grep '^{')
  g1=$(cpu_ns "$pid"); n1=$(nginx_cpu_ns)
  if [ "$(jq '.non_2xx + .socket_errors' <<<"$line")" != 0 ]; then
    echo "$label: failed requests: $line" >&2; exit 1
  fi
  jq -c --argjson g "$((g1 - g0))" --argjson n "$((n1 - n0))" --argjson load "$(cut -d' ' -f1 /proc/loadavg)" \
    '. + {load1: $load, gate_cpu_us_per_req: (if .requests > 0 then $g / 1000 / .requests else null end),
          nginx_cpu_us_per_req: (if .requests > 0 then $n / 1000 / .requests else null end)}' <<<"$line"
}

echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); nginx $("$nginx" -v 2>&1 | sed 's/.*nginx\///'); wrk -t$threads -c$conns, ${secs}s windows${rt:+, real-time priority}"
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
# Warm-up: pool A verified once, so that the windows below are cache hits.
D=3 C=4 wrk_run warmup "http://$gate/authz/auth-request" "$work/tokens-a" "$app_headers" >/dev/null
D=3 C=4 wrk_run warmup "http://127.0.0.1:$unix_port/app/data.txt" "$work/tokens-a" >/dev/null

windows=(nginx-plain nginx-gate nginx-gate-unix nginx-authreq-ceiling gate-health gate-anonymous gate-authenticated)
window() {
  case $1 in
    nginx-plain) wrk_run "$1" "http://127.0.0.1:$plain_port/app/data.txt" "$work/tokens-a" ;;
    nginx-gate) wrk_run "$1" "http://127.0.0.1:$auth_port/app/data.txt" "$work/tokens-a" ;;
    nginx-gate-unix) GATE_PID=$gate_unix_pid wrk_run "$1" "http://127.0.0.1:$unix_port/app/data.txt" "$work/tokens-a" ;;
    nginx-authreq-ceiling) wrk_run "$1" "http://127.0.0.1:$ceiling_port/app/data.txt" "$work/tokens-a" ;;
    gate-health) wrk_run "$1" "http://$gate/health" "$work/tokens-a" "$app_headers" ;;
    gate-anonymous) wrk_run "$1" "http://$gate/authz/auth-request" "$work/tokens-a" "$anon_headers" ;;
    gate-authenticated) wrk_run "$1" "http://$gate/authz/auth-request" "$work/tokens-a" "$app_headers" ;;
  esac
}
for round in $(seq 1 "$rounds"); do
  order=("${windows[@]}")
  if [ $((round % 2)) -eq 0 ]; then mapfile -t order < <(printf '%s\n' "${windows[@]}" | tac); fi
  for w in "${order[@]}"; do window "$w" | jq -c --argjson r "$round" '. + {round: $r}'; done
done | tee "$work/throughput.jsonl"

# Misses, then hits: each fresh token once (ONCE=1 stops after as many responses as
# tokens), then the same tokens again. 8 connections, one wrk thread.
for m in m1 m2; do
  ONCE=1 D=5 T=1 C=8 wrk_run "miss-$m" "http://$gate/authz/auth-request" "$work/tokens-$m" "$app_headers"
  ONCE=1 D=5 T=1 C=8 wrk_run "hit-$m" "http://$gate/authz/auth-request" "$work/tokens-$m" "$app_headers"
done | tee "$work/misses.jsonl"

# Decision latency with a revocation every 10 ms, against the same window without.
rsecs=$((secs * 2))
wrk_run quiet "http://$gate/authz/auth-request" "$work/tokens-a" "$app_headers" | tee "$work/revocation.jsonl"
python3 bench/revoke_loop.py "$auth" "$work/tokens-r" 10 $((rsecs - 1)) "$work/revoked" >"$work/revoke-loop.json" &
loop=$!
D=$rsecs wrk_run revocation-every-10ms "http://$gate/authz/auth-request" "$work/tokens-a" "$app_headers" | tee -a "$work/revocation.jsonl"
wait "$loop"; cat "$work/revoke-loop.json"
sleep 1
refused=0; total=0
while read -r t; do
  [ -n "$t" ] || continue
  total=$((total + 1))
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $t" -H "X-Original-URL: http://app.example/app/data.txt" -H "X-Original-Method: GET" "http://$gate/authz/auth-request")
  [ "$code" = 401 ] && refused=$((refused + 1))
done <"$work/revoked"
echo "{\"label\":\"revoked-tokens-refused-after-1s\",\"refused\":$refused,\"revoked\":$total}"
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

echo "# summary: medians over $rounds rounds; ratios are medians of the per-round ratios"
jq -rs '
  def median: sort | if length % 2 == 1 then .[length/2|floor] else (.[length/2-1] + .[length/2]) / 2 end;
  def r2: . * 100 | round / 100;
  . as $all |
  def w($l): [$all[] | select(.label == $l)];
  def ratio($a; $b): [range(0; w($a)|length) | (w($a)[.].rps / w($b)[.].rps)] | (median | r2), map(r2);
  (["nginx-plain", "nginx-gate", "nginx-gate-unix", "nginx-authreq-ceiling", "gate-health", "gate-anonymous", "gate-authenticated"][] | w(.) as $w |
    "\($w[0].label): \($w|map(.rps)|median|round) req/s, p50 \($w|map(.p50_ms)|median) ms, p99 \($w|map(.p99_ms)|median) ms, gate CPU \($w|map(.gate_cpu_us_per_req)|median|r2) µs/req, nginx CPU \($w|map(.nginx_cpu_us_per_req)|median|r2) µs/req"),
  "nginx + gate / nginx alone: \([ratio("nginx-gate"; "nginx-plain")]) (target ≥ 0.5)",
  "nginx + gate on a Unix socket, 1 thread / nginx alone: \([ratio("nginx-gate-unix"; "nginx-plain")]) (target ≥ 0.5)",
  "nginx + auth_request answered by nginx itself / nginx alone (the ceiling): \([ratio("nginx-authreq-ceiling"; "nginx-plain")])",
  "nginx + gate / the ceiling: \([ratio("nginx-gate"; "nginx-authreq-ceiling")]); on a Unix socket, 1 thread: \([ratio("nginx-gate-unix"; "nginx-authreq-ceiling")])",
  "gate authenticated / anonymous rule: \([ratio("gate-authenticated"; "gate-anonymous")]) (target ≥ 0.85)",
  "gate authenticated / gate /health: \([ratio("gate-authenticated"; "gate-health")])"
' "$work/throughput.jsonl"
