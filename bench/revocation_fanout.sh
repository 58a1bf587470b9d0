#!/usr/bin/env bash
# Revocation fan-out: the time from a revoke call until every one of N api_service
# processes (default 20) refuses the token, over R revocations (default 1000), all on
# loopback. Then the cost of the revocation check per request (GET /resource at a service
# following the feed vs one without it) and the services' resident memory. Prints one
# JSON line per measurement.
#
#   bash bench/revocation_fanout.sh [APIS] [REVOCATIONS] [VIA] [POLL_MS]
#
# VIA is logout (default), revoke-access or revoke-refresh (RFC 7009).
# Logins use a cheap Argon2 setting: they happen before each timed window and are not
# what is measured.
set -euo pipefail
cd "$(dirname "$0")/.."
apis=${1:-20}
revocations=${2:-1000}
via=${3:-logout}
poll_ms=${4:-5}
secs=${LOAD_SECONDS:-10}
source bench/lib.sh
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }

cat >"$work/wristband.toml" <<'EOF'
[argon2]
memory_kib = 1024
iterations = 1
parallelism = 1
EOF
store=(--config "$work/wristband.toml" --data-dir "$work/data")
password="bench passphrase for fan-out"
printf '%s\n' "$password" | RUST_LOG=warn $bin/wristband user "${store[@]}" add bench --role user --password-stdin >/dev/null
creds=$(RUST_LOG=warn $bin/wristband client "${store[@]}" add fanout-rs --kind resource-server --json)
client_id=$(printf '%s' "$creds" | sed -n 's/.*"client_id":"\([^"]*\)".*/\1/p')
client_secret=$(printf '%s' "$creds" | sed -n 's/.*"client_secret":"\([^"]*\)".*/\1/p')
[ -n "$client_id" ] && [ -n "$client_secret" ] || { echo "client add failed" >&2; exit 1; }

auth=$(RUST_LOG=warn start "$work/auth" $bin/wristband serve "${store[@]}" --listen 127.0.0.1:0)
track "$work/auth"; auth_pid=${pids[-1]}
api_args=()
api_pids=()
for i in $(seq 1 "$apis"); do
  # The credentials go through the environment, not the command line.
  addr=$(WRISTBAND_CLIENT_ID=$client_id WRISTBAND_CLIENT_SECRET=$client_secret RUST_LOG=warn \
    start "$work/api$i" $bin/examples/api_service --listen 127.0.0.1:0 --issuer "http://$auth" --audience wristband)
  track "$work/api$i"; api_pids+=("${pids[-1]}")
  api_args+=(--api "http://$addr")
done
plain=$(RUST_LOG=warn start "$work/plain" $bin/examples/api_service --listen 127.0.0.1:0 --issuer "http://$auth" --audience wristband)
track "$work/plain"; plain_pid=${pids[-1]}

echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(awk '/MemTotal/ {print int($2/1024)" MiB"}' /proc/meminfo)"
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
lg=$bin/loadgen
$lg --label fanout fanout --auth "http://$auth" --user bench --password "$password" \
  "${api_args[@]}" --revocations "$revocations" --via "$via" --poll-ms "$poll_ms"
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

# The cost of the check per request: the first feed-following service (it now holds the
# records of the run above) against one without the feed, alternated.
token=$(curl -s -H 'content-type: application/json' -d "{\"username\":\"bench\",\"password\":\"$password\"}" "http://$auth/v1/login" | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
[ -n "$token" ] || { echo "login failed" >&2; exit 1; }
follower=${api_args[1]}
records=$(curl -s "$follower/metrics" | awk '/^wristband_verifier_revocation_records / {print $2}')
echo "{\"label\":\"follower-records\",\"records\":${records:-0}}"
for round in 1 2; do
  $lg -c 4 -d "$secs" --label "resource-with-feed-$round" get "$follower/resource" --bearer "$token"
  $lg -c 4 -d "$secs" --label "resource-without-feed-$round" get "http://$plain/resource" --bearer "$token"
done
echo "{\"label\":\"rss\",\"auth_kib\":$(rss_kib "$auth_pid"),\"api_with_feed_kib\":$(rss_kib "${api_pids[0]}"),\"api_without_feed_kib\":$(rss_kib "$plain_pid")}"
