#!/usr/bin/env bash
# HTTP load benchmarks against the real processes, all on loopback, in one run:
#   api_service GET /health (unauthenticated baseline) vs GET /resource (verified token),
#   auth POST /v1/refresh and POST /v1/login throughput, Argon2 cost, and protected-request
#   latency during a login flood. Prints one JSON line per measurement.
#
#   bash bench/run.sh [SECONDS_PER_RUN]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}
source bench/lib.sh

password="bench passphrase for load tests"
printf '%s\n' "$password" | RUST_LOG=warn $bin/wristband user --data-dir "$work/data" add bench --role admin --password-stdin >/dev/null
auth=$(RUST_LOG=warn start "$work/auth" $bin/wristband serve --data-dir "$work/data" --listen 127.0.0.1:0)
track "$work/auth"
api=$(RUST_LOG=warn start "$work/api" $bin/examples/api_service --listen 127.0.0.1:0 --issuer "http://$auth" --audience wristband)
track "$work/api"
token=$(curl -s -H 'content-type: application/json' -d "{\"username\":\"bench\",\"password\":\"$password\"}" "http://$auth/v1/login" | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
[ -n "$token" ] || { echo "login failed" >&2; exit 1; }

lg=$bin/loadgen
echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
$lg -c 32 -d "$secs" --label health get "http://$api/health"
$lg -c 32 -d "$secs" --label resource get "http://$api/resource" --bearer "$token"
$lg -c 32 -d "$secs" --label health-again get "http://$api/health"
$lg -c 32 -d "$secs" --label resource-again get "http://$api/resource" --bearer "$token"
$lg -c 16 -d "$secs" --label refresh refresh --auth "http://$auth" --user bench --password "$password"
$lg -c 1 -d "$secs" --label login-c1 login --auth "http://$auth" --user bench --password "$password"
# CPU seconds the auth service spends per login at c8, from /proc (utime + stime, in ticks):
# compared with the Argon2 time, it shows what the service adds to the KDF, whatever the
# load generator takes from the shared cores.
auth_pid=$(cat "$work/auth.pid")
cpu_ticks() { awk '{print $14 + $15}' "/proc/$auth_pid/stat"; }
before=$(cpu_ticks)
$lg -c 8 -d "$secs" --label login-c8 login --auth "http://$auth" --user bench --password "$password" | tee "$work/login8.json"
after=$(cpu_ticks)
logins=$(sed -n 's/.*"requests":\([0-9]*\).*/\1/p' "$work/login8.json")
echo "{\"label\":\"auth-cpu-per-login-c8\",\"cpu_ms_per_login\":$(awk -v a="$after" -v b="$before" -v n="$logins" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.2f", (a-b)*1000/hz/n}')}"
$lg -c 4 -d "$secs" --label resource-quiet get "http://$api/resource" --bearer "$token"
$lg -c 4 -d "$secs" --label me-quiet get "http://$auth/v1/me" --bearer "$token"
$lg -c 16 -d "$((secs + 2))" --label login-flood login --auth "http://$auth" --user bench --password "$password" >"$work/flood.json" &
flood=$!
sleep 1
$lg -c 4 -d "$((secs / 2))" --label resource-during-login-flood get "http://$api/resource" --bearer "$token"
$lg -c 4 -d "$((secs / 2))" --label me-during-login-flood get "http://$auth/v1/me" --bearer "$token"
wait "$flood"; cat "$work/flood.json"
