#!/usr/bin/env bash
# The store and the instances, in one run, all on loopback:
#   1. POST /v1/refresh and POST /v1/login against one instance on SQLite, one instance on
#      PostgreSQL (instance A) and three instances on the same PostgreSQL schema (A, B, C;
#      the load generator spreads its connections round-robin over them), alternated,
#      ROUNDS rounds (default Argon2id, as in production);
#   2. revocation fan-out to APIS api_service processes (default 20) following instance A's
#      feed: revoked on instance B (B -> PostgreSQL NOTIFY -> A's feed -> the services)
#      against revoked on A itself (in-process wake-up), alternated, ROUNDS rounds.
# Prints one JSON line per measurement, then the medians per configuration.
#
#   bash bench/scale_out.sh [SECONDS_PER_RUN] [ROUNDS] [REVOCATIONS] [APIS]
#
# PostgreSQL: WRISTBAND_BENCH_PG (default postgres://postgres@127.0.0.1:5432/postgres).
# Each run makes a schema of its own there and drops it at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-8}
rounds=${2:-2}
revocations=${3:-250}
apis=${4:-20}
pg=${WRISTBAND_BENCH_PG:-postgres://postgres@127.0.0.1:5432/postgres}
source bench/lib.sh

schema="wristband_bench_$(date +%s)_$$"
psql -qX "$pg" -c "CREATE SCHEMA $schema" >/dev/null
trap 'cleanup; PGOPTIONS="-c client_min_messages=warning" psql -qX "$pg" -c "DROP SCHEMA IF EXISTS $schema CASCADE" >/dev/null' EXIT
case $pg in *\?*) sep='&' ;; *) sep='?' ;; esac
db="$pg${sep}options=-c%20search_path%3D$schema"

# Every instance on the database needs the same master key.
head -c 32 /dev/urandom | basenc --base64url | tr -d = >"$work/master.key"
chmod 600 "$work/master.key"
sqlite=(--data-dir "$work/sqlite")
postgres=(--database "$db" --master-key-file "$work/master.key" --data-dir "$work/pg")

password="bench passphrase for load tests"
printf '%s\n' "$password" | RUST_LOG=warn $bin/wristband user "${sqlite[@]}" add bench --role user --password-stdin >/dev/null
printf '%s\n' "$password" | RUST_LOG=warn $bin/wristband user "${postgres[@]}" add bench --role user --password-stdin >/dev/null
creds=$(RUST_LOG=warn $bin/wristband client "${postgres[@]}" add fanout-rs --kind resource-server --json)
client_id=$(printf '%s' "$creds" | sed -n 's/.*"client_id":"\([^"]*\)".*/\1/p')
client_secret=$(printf '%s' "$creds" | sed -n 's/.*"client_secret":"\([^"]*\)".*/\1/p')
[ -n "$client_id" ] && [ -n "$client_secret" ] || { echo "client add failed" >&2; exit 1; }

s=$(RUST_LOG=warn start "$work/s" $bin/wristband serve "${sqlite[@]}" --listen 127.0.0.1:0)
track "$work/s"; s_pid=${pids[-1]}
a=$(RUST_LOG=warn start "$work/a" $bin/wristband serve "${postgres[@]}" --listen 127.0.0.1:0)
track "$work/a"; a_pid=${pids[-1]}
# One issuer for all instances (in production: the load balancer's URL).
b=$(RUST_LOG=warn start "$work/b" $bin/wristband serve "${postgres[@]}" --listen 127.0.0.1:0 --issuer "http://$a")
track "$work/b"; b_pid=${pids[-1]}
c=$(RUST_LOG=warn start "$work/c" $bin/wristband serve "${postgres[@]}" --listen 127.0.0.1:0 --issuer "http://$a")
track "$work/c"; c_pid=${pids[-1]}

lg=$bin/loadgen
hz=$(getconf CLK_TCK)
ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }
results="$work/results.jsonl"
# CPU ticks of every PostgreSQL process on the host, by pid (other users of the server count
# too: the SQLite runs, where the auth service does not touch PostgreSQL, show how much).
pg_ticks() { local p; for p in $(pgrep -x postgres); do awk -v p="$p" '{print p, $14 + $15}' "/proc/$p/stat" 2>/dev/null || true; done; }
# Ticks between two pg_ticks snapshots, over the processes alive at the second one.
pg_delta() { awk 'NR == FNR {b[$1] = $2; next} {t += $2 - ($1 in b ? b[$1] : 0)} END {print t + 0}' "$1" "$2"; }
# measure LABEL CONNECTIONS SCENARIO AUTH_PIDS... -- LOADGEN_ARGS...: one loadgen run, with the
# CPU the auth instances spent per request appended.
measure() {
  local label=$1 conns=$2 scenario=$3; shift 3
  local procs=()
  while [ "$1" != -- ]; do procs+=("$1"); shift; done; shift
  local before after n line
  pg_ticks >"$work/pg.before"
  before=$(ticks "${procs[@]}")
  line=$($lg -c "$conns" -d "$secs" --label "$label" "$scenario" "$@" --user bench --password "$password")
  after=$(ticks "${procs[@]}")
  pg_ticks >"$work/pg.after"
  n=$(sed -n 's/.*"requests":\([0-9]*\).*/\1/p' <<<"$line")
  awk -v line="$line" -v a="$after" -v b="$before" -v n="$n" -v hz="$hz" -v pg="$(pg_delta "$work/pg.before" "$work/pg.after")" \
    -v load1="$(cut -d' ' -f1 /proc/loadavg)" \
    'BEGIN{sub(/}$/, "", line); printf "%s,\"auth_cpu_ms_per_request\":%.3f,\"postgres_cpu_ms_per_request\":%.3f,\"load1\":%s}\n", line, (a-b)*1000/hz/n, pg*1000/hz/n, load1}' | tee -a "$results"
}
run_config() {
  local op=$1 conns=$2 config=$3
  case $config in
    sqlite) measure "$op-sqlite" "$conns" "$op" "$s_pid" -- --auth "http://$s" ;;
    pg1) measure "$op-pg-1-instance" "$conns" "$op" "$a_pid" -- --auth "http://$a" ;;
    pg3) measure "$op-pg-3-instances" "$conns" "$op" "$a_pid" "$b_pid" "$c_pid" -- \
      --auth "http://$a" --auth "http://$b" --auth "http://$c" ;;
  esac
}

echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(awk '/MemTotal/ {print int($2/1024)" MiB"}' /proc/meminfo), PostgreSQL $(psql -qXtA "$pg" -c 'SHOW server_version')"
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
# Warm-up: every instance hashes and signs once, and the connection pools fill.
for u in "$s" "$a" "$b" "$c"; do
  $lg -c 2 -d 1 login --auth "http://$u" --user bench --password "$password" >/dev/null
  $lg -c 4 -d 1 refresh --auth "http://$u" --user bench --password "$password" >/dev/null
done
for round in $(seq 1 "$rounds"); do
  if [ $((round % 2)) -eq 1 ]; then order="sqlite pg1 pg3"; else order="pg3 pg1 sqlite"; fi
  for config in $order; do run_config refresh 16 "$config"; done
  for config in $order; do run_config login 8 "$config"; done
done
echo "# load average after the throughput runs: $(cut -d' ' -f1-3 /proc/loadavg)"

api_args=()
for i in $(seq 1 "$apis"); do
  # The credentials go through the environment, not the command line.
  addr=$(WRISTBAND_CLIENT_ID=$client_id WRISTBAND_CLIENT_SECRET=$client_secret RUST_LOG=warn \
    start "$work/api$i" $bin/examples/api_service --listen 127.0.0.1:0 --issuer "http://$a" --audience wristband)
  track "$work/api$i"
  api_args+=(--api "http://$addr")
done
sleep 1
fanout=(--user bench --password "$password" "${api_args[@]}" --revocations "$revocations" --via logout --poll-ms 2)
for round in $(seq 1 "$rounds"); do
  if [ $((round % 2)) -eq 1 ]; then order="b a"; else order="a b"; fi
  for on in $order; do
    if [ "$on" = b ]; then
      $lg --label fanout-revoked-on-b fanout --auth "http://$a" --revoke-auth "http://$b" "${fanout[@]}"
    else
      $lg --label fanout-revoked-on-a fanout --auth "http://$a" "${fanout[@]}"
    fi | grep -v per_process_p50 | sed "s/}\$/,\"load1\":$(cut -d' ' -f1 /proc/loadavg)}/" | tee -a "$results"
  done
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

# Medians over the rounds.
median() { sort -n | awk '{v[NR] = $1} END {if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }
pick() { grep "\"label\":\"$1\"" "$results" | grep "$2" | sed -n "s/.*\"$3\":\([0-9.]*\).*/\1/p" | median; }
for op in refresh login; do
  for config in sqlite pg-1-instance pg-3-instances; do
    echo "{\"median\":\"$op-$config\",\"rps\":$(pick "$op-$config" . rps),\"p50_ms\":$(pick "$op-$config" . p50_ms),\"p99_ms\":$(pick "$op-$config" . p99_ms),\"auth_cpu_ms_per_request\":$(pick "$op-$config" . auth_cpu_ms_per_request),\"postgres_cpu_ms_per_request\":$(pick "$op-$config" . postgres_cpu_ms_per_request)}"
  done
done
for on in a b; do
  for metric in revoke_to_rejected_everywhere revoke_to_rejected_everywhere_lower_bound revoke_to_rejected_per_process revoke_call; do
    echo "{\"median\":\"fanout-revoked-on-$on\",\"metric\":\"$metric\",\"p50_ms\":$(pick "fanout-revoked-on-$on" "\"$metric\"" p50_ms),\"p99_ms\":$(pick "fanout-revoked-on-$on" "\"$metric\"" p99_ms),\"max_ms\":$(pick "fanout-revoked-on-$on" "\"$metric\"" max_ms)}"
  done
done
