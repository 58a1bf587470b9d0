#!/usr/bin/env bash
# Login throughput against the Argon2 ceiling, in one run: the Argon2id benchmark (one hash,
# a pair on both cores, a pair into reused memory), then POST /v1/login at each connection
# count, with the CPU the auth service and the load generator spend per login (utime +
# stime from /proc). Prints one line per measurement.
#
#   bash bench/login.sh [SECONDS_PER_RUN] [CONNECTIONS...]     # default: 8 s at 4 8 16
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-8}
if [ $# -gt 0 ]; then shift; fi
if [ $# -eq 0 ]; then set -- 4 8 16; fi
source bench/lib.sh

echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1-3 /proc/loadavg)"
cargo bench -q -p wristband-server --bench password -- --warm-up-time 1 --measurement-time 4 2>/dev/null \
  | grep -A1 '^argon2id/' | grep -E '^argon2id/|time:' | paste - - | awk '{print "# " $1 " " $5 " " $6}'

password="bench passphrase for load tests"
printf '%s\n' "$password" | RUST_LOG=warn $bin/wristband user --data-dir "$work/data" add bench --role admin --password-stdin >/dev/null
auth=$(RUST_LOG=warn start "$work/auth" $bin/wristband serve --data-dir "$work/data" --listen 127.0.0.1:0)
track "$work/auth"
auth_pid=$(cat "$work/auth.pid")
hz=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$auth_pid/stat"; }
$bin/loadgen -c 2 -d 1 login --auth "http://$auth" --user bench --password "$password" >/dev/null
TIMEFORMAT='%3U %3S'
for c in "$@"; do
  before=$(ticks)
  { time $bin/loadgen -c "$c" -d "$secs" --label "login-c$c" login --auth "http://$auth" \
      --user bench --password "$password" >"$work/lg.json" 2>"$work/lg.err"; } 2>"$work/lg.time"
  after=$(ticks)
  read -r lu ls <"$work/lg.time"
  n=$(sed -n 's/.*"requests":\([0-9]*\).*/\1/p' "$work/lg.json")
  awk -v line="$(cat "$work/lg.json")" -v a="$after" -v b="$before" -v n="$n" -v hz="$hz" -v lu="$lu" -v ls="$ls" \
    'BEGIN{sub(/}$/, "", line); printf "%s,\"auth_cpu_ms_per_login\":%.2f,\"loadgen_cpu_ms_per_login\":%.3f}\n", line, (a-b)*1000/hz/n, (lu+ls)*1000/n}'
done
