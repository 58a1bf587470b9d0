#!/usr/bin/env bash
# Revocation fan-out at scale (issue 14), two builds of the auth service in one run, all on
# loopback: for each store (SQLite, PostgreSQL) and each subscriber count (default 100,
# 1,000 and 2,000), a fresh store and a fresh `wristband serve` per build, then
# `loadgen subscribers`: that many revocation-stream subscribers on one resource-server
# client's token, an idle window, then revocations at each rate (default 10 and 100 per
# second) for WINDOW seconds. The two builds alternate (OLD NEW, then NEW OLD, ...), so
# that drift of the shared machine hits both alike.
#
# Per (build, store, subscribers, rate): delivery p50 / p99 / max over every (subscriber,
# record) pair, records missing, duplicated or out of order, the auth service's CPU per
# revocation and idle CPU (from /proc/PID/stat), and store reads per revocation:
#   - PostgreSQL, both builds: scans of the revocations table (idx_scan + seq_scan in
#     pg_stat_user_tables) of the run's own database;
#   - both stores, a build with `wristband_feed_*store_reads*` counters in /metrics: their
#     sum (a build without them reports null).
# Prints one JSON line per window, then a summary table. Then, as the baseline, the floor
# under any fan-out at each subscriber count (`loadgen socket-floor`: one thread writing
# each record to that many loopback sockets, no HTTP, no async runtime).
#
#   bash bench/fanout_scale.sh OLD_RELEASE_DIR NEW_RELEASE_DIR [WINDOW_SECONDS]
#
# Each directory holds `wristband` from `cargo build --release`; `loadgen` comes from
# NEW_RELEASE_DIR. Environment: SUBSCRIBERS (default "100 1000 2000"), RATES (default
# "10,100"), STORES (default "sqlite postgres"), IDLE_SECONDS (default 10), RT=1 to run
# the auth service and the simulator with real-time priority (`chrt -f 10`; PostgreSQL
# keeps its own),
# WRISTBAND_BENCH_PG (default postgres://postgres@127.0.0.1:5432/postgres; each session
# creates a database of its own there and drops it).
set -euo pipefail
cd "$(dirname "$0")/.."
old_dir=$1; new_dir=$2; window=${3:-10}
subscriber_counts=${SUBSCRIBERS:-100 1000 2000}
rates=${RATES:-10,100}
stores=${STORES:-sqlite postgres}
idle=${IDLE_SECONDS:-10}
pg=${WRISTBAND_BENCH_PG:-postgres://postgres@127.0.0.1:5432/postgres}
BENCH_PREBUILT=1 source bench/lib.sh
lg=$new_dir/loadgen
rt=()
if [ "${RT:-0}" = 1 ]; then rt=(chrt -f 10); fi
results="$work/results.jsonl"
databases=()
drop_databases() {
  local d
  for d in "${databases[@]}"; do
    PGOPTIONS="-c client_min_messages=warning" psql -qX "$pg" -c "DROP DATABASE IF EXISTS $d WITH (FORCE)" >/dev/null 2>&1 || true
  done
}
trap 'cleanup; drop_databases' EXIT

# A cheap Argon2 setting: the logins that mint the tokens to revoke are not measured.
cat >"$work/wristband.toml" <<'TOML'
[argon2]
memory_kib = 1024
iterations = 1
parallelism = 1
TOML
password="bench passphrase for fan-out at scale"
# Sum of the store-read counters in an auth service's /metrics; fails (null in the JSON)
# when it has none. (A histogram's _sum counts; its buckets and _count do not.)
metrics_reads='curl -sf http://%s/metrics | awk '"'"'/^wristband_feed_[a-z_]*store_reads/ && !/_bucket|_count|_created/ {s += $NF; n++} END {if (n) print s; else exit 1}'"'"
# Scans of the revocations table in one database.
pg_scans='psql -qXtA "%s" -c "SELECT COALESCE(SUM(idx_scan), 0) + COALESCE(SUM(seq_scan), 0) FROM pg_stat_user_tables WHERE relname = '"'"'revocations'"'"'"'

# session BUILD DIR STORE SUBSCRIBERS: one fresh store and server, one simulator run.
session=0
run_session() {
  local build=$1 dir=$2 store=$3 n=$4 w store_args=() counters=() db_url=""
  session=$((session + 1))
  w="$work/s$session-$build-$store-$n"
  mkdir -p "$w"
  if [ "$store" = postgres ]; then
    local db="wristband_fanbench_$$_$session"
    psql -qX "$pg" -c "CREATE DATABASE $db" >/dev/null
    databases+=("$db")
    db_url="${pg%/*}/$db"
    store_args=(--config "$work/wristband.toml" --data-dir "$w/data" --database "$db_url")
    # shellcheck disable=SC2059
    counters+=(--counter "$(printf 'table_scans=%s' "$(printf "$pg_scans" "$db_url")")")
  else
    store_args=(--config "$work/wristband.toml" --data-dir "$w/data")
  fi
  printf '%s\n' "$password" | RUST_LOG=warn "$dir/wristband" user "${store_args[@]}" add bench --role user --password-stdin >/dev/null
  local creds client_id client_secret auth auth_pid
  creds=$(RUST_LOG=warn "$dir/wristband" client "${store_args[@]}" add fanbench --kind resource-server --json)
  client_id=$(jq -r .client_id <<<"$creds")
  client_secret=$(jq -r .client_secret <<<"$creds")
  auth=$(RUST_LOG=warn start "$w/auth" "${rt[@]}" "$dir/wristband" serve "${store_args[@]}" --listen 127.0.0.1:0)
  track "$w/auth"; auth_pid=${pids[-1]}
  # shellcheck disable=SC2059
  counters+=(--counter "$(printf 'store_reads=%s' "$(printf "$metrics_reads" "$auth")")")
  WRISTBAND_CLIENT_ID=$client_id WRISTBAND_CLIENT_SECRET=$client_secret WRISTBAND_BENCH_PASSWORD=$password \
    "${rt[@]}" "$lg" --label "$build" subscribers --auth "http://$auth" --user bench \
    --subscribers "$n" --rates "$rates" --window "$window" --idle-seconds "$idle" \
    --auth-pid "$auth_pid" --clk-tck "$(getconf CLK_TCK)" "${counters[@]}" 2>"$w/loadgen.err" \
    | jq -c --arg store "$store" '. + {store: $store}' | tee -a "$results" || {
      echo "# $build $store $n: the simulator reported a failure:" >&2
      grep -v '^ *[0-9]*: \|^ *at ' "$w/loadgen.err" | tail -5 >&2
    }
  kill "$auth_pid" 2>/dev/null || true
  wait "$auth_pid" 2>/dev/null || true
  sleep 1
}

echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(awk '/MemTotal/ {print int($2/1024)" MiB"}' /proc/meminfo), PostgreSQL $(psql -qXtA "$pg" -c 'SHOW server_version')"
echo "# old: $old_dir/wristband, new: $new_dir/wristband; window ${window} s, idle ${idle} s, rates $rates"
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
started=$(date +%s)
turn=0
for store in $stores; do
  for n in $subscriber_counts; do
    if [ $((turn % 2)) -eq 0 ]; then order="old new"; else order="new old"; fi
    turn=$((turn + 1))
    for build in $order; do
      if [ "$build" = old ]; then run_session old "$old_dir" "$store" "$n"; else run_session new "$new_dir" "$store" "$n"; fi
    done
  done
done
# The floor under any fan-out, in the same run: one thread writing each record (112 bytes,
# the size of an event) to that many loopback sockets with blocking writes, at the first
# rate, with no HTTP and no task to wake.
floor_rate=${rates%%,*}
for n in $subscriber_counts; do
  "$lg" --label floor socket-floor --subscribers "$n" --rate "$floor_rate" --window "$window" --clk-tck "$(getconf CLK_TCK)" | tee "$work/floor-$n.json"
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg); $(( $(date +%s) - started )) s"

# The summary: old and new side by side (old / new in each cell).
echo
echo "| store | subscribers | rate/s | delivery p50 ms | delivery p99 ms | auth CPU ms per revocation | feed store reads per revocation (/metrics) | revocations-table scans per revocation (PostgreSQL) | idle auth CPU, % of a core | records missing, duplicated or out of order |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"
jq -rs '
  def v(x): if x == null then "–" elif (x | type) == "number" then (x * 10 | round / 10 | tostring) else (x | tostring) end;
  def pair(f): "\(v(.old | f)) / \(v(.new | f))";
  group_by([.store, .subscribers, .rate])[]
  | {store: .[0].store, n: .[0].subscribers, rate: .[0].rate,
     old: (map(select(.label == "old")) | .[0]), new: (map(select(.label == "new")) | .[0])}
  | "| \(.store) | \(.n) | \(.rate) | \(pair(.delivery_p50_ms)) | \(pair(.delivery_p99_ms)) | \(pair(.auth_cpu_ms_per_revocation)) | \(pair(.store_reads_per_revocation)) | \(pair(.table_scans_per_revocation)) | \(pair(.idle_auth_cpu_pct)) | \(pair(.missing + .duplicates + .out_of_order)) |"
' "$results"
echo
echo "| subscribers | floor: CPU ms per record, one thread writing to every socket | of which system | µs per subscriber |"
echo "|---:|---:|---:|---:|"
for n in $subscriber_counts; do
  jq -r '"| \(.subscribers) | \(.cpu_ms_per_record) | \(.sys_cpu_ms_per_record) | \(.cpu_us_per_subscriber) |"' "$work/floor-$n.json"
done
echo "# every line: $results (deleted on exit; the JSON lines above hold the same)"
