#!/usr/bin/env bash
# Key rotation under load, and emergency key revocation, against the real processes on
# loopback: `wristband serve` (SQLite), a resource-server client and 3 `api_service`
# processes following the revocation feed. In one run:
#   1. baseline: `loadgen rotating` for WINDOW seconds with no rotation;
#   2. scheduled: the same window with two `wristband keys rotate` (at ~3 s and ~11 s);
#   3. immediate: the same window with two `wristband keys rotate --immediate`;
#   4. baseline again (the noise of this shared machine between windows);
#   5. kid revocation: REVOCATIONS times `wristband keys revoke KID` of the current key,
#      and the time until each API service refuses a token of that key (`loadgen kid-revoke`).
# Prints one JSON line per measurement.
#
#   bash bench/key_rotation.sh [WINDOW_SECONDS] [CONNECTIONS] [REVOCATIONS]
#
# The key settings are in the configuration file, which the `keys` commands read too: a
# JWKS max-age of 1 s, a 2 s pre-publication, no automatic rotation, 5 min access tokens.
# Logins use a cheap Argon2 setting (they are not what is measured).
set -euo pipefail
cd "$(dirname "$0")/.."
window=${1:-20}
conns=${2:-8}
revocations=${3:-5}
source bench/lib.sh

cat >"$work/wristband.toml" <<'EOF'
jwks_max_age = "1s"
key_prepublish = "2s"
key_rotation = "0s"
access_ttl = "5m"

[argon2]
memory_kib = 1024
iterations = 1
parallelism = 1
EOF
store=(--config "$work/wristband.toml" --data-dir "$work/data")
password="bench passphrase for key rotation"
printf '%s\n' "$password" | RUST_LOG=warn $bin/wristband user "${store[@]}" add bench --role user --password-stdin >/dev/null
creds=$(RUST_LOG=warn $bin/wristband client "${store[@]}" add rotation-rs --kind resource-server --json)
client_id=$(printf '%s' "$creds" | sed -n 's/.*"client_id":"\([^"]*\)".*/\1/p')
client_secret=$(printf '%s' "$creds" | sed -n 's/.*"client_secret":"\([^"]*\)".*/\1/p')
[ -n "$client_id" ] && [ -n "$client_secret" ] || { echo "client add failed" >&2; exit 1; }

auth=$(RUST_LOG=warn start "$work/auth" $bin/wristband serve "${store[@]}" --listen 127.0.0.1:0)
track "$work/auth"
api_args=()
for i in 1 2 3; do
  # The credentials go through the environment, not the command line.
  addr=$(WRISTBAND_CLIENT_ID=$client_id WRISTBAND_CLIENT_SECRET=$client_secret RUST_LOG=warn \
    start "$work/api$i" $bin/examples/api_service --listen 127.0.0.1:0 --issuer "http://$auth" \
      --audience wristband --refetch-cooldown 1)
  track "$work/api$i"
  api_args+=(--api "http://$addr")
done

echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(awk '/MemTotal/ {print int($2/1024)" MiB"}' /proc/meminfo)"
lg=$bin/loadgen
load=(rotating --auth "http://$auth" --user bench --password "$password" "${api_args[@]}")
loadavg() { echo "# load average before $1: $(cut -d' ' -f1-3 /proc/loadavg)"; }
# Runs a window with two rotations (extra arguments go to `keys rotate`) at ~3 s and ~11 s.
rotating_window() {
  local label=$1; shift
  loadavg "$label"
  $lg -c "$conns" -d "$window" --label "$label" "${load[@]}" &
  local lg_pid=$!
  local t0=$SECONDS
  sleep 3
  RUST_LOG=warn $bin/wristband keys rotate "${store[@]}" "$@" >"$work/rotate1.out"
  echo "# $label: keys rotate $* at $((SECONDS - t0)) s: $(sed -n 's/^\(published\|activated\|retired\): \([^ ]*\).*/\1 \2/p' "$work/rotate1.out" | xargs)"
  sleep 8
  RUST_LOG=warn $bin/wristband keys rotate "${store[@]}" "$@" >"$work/rotate2.out"
  echo "# $label: keys rotate $* at $((SECONDS - t0)) s: $(sed -n 's/^\(published\|activated\|retired\): \([^ ]*\).*/\1 \2/p' "$work/rotate2.out" | xargs)"
  wait "$lg_pid"
}

loadavg baseline
$lg -c "$conns" -d "$window" --label baseline "${load[@]}"
rotating_window rotating-scheduled
rotating_window rotating-immediate --immediate
loadavg baseline-again
$lg -c "$conns" -d "$window" --label baseline-again "${load[@]}"

loadavg kid-revoke
$lg --label kid-revoke kid-revoke --auth "http://$auth" --user bench --password "$password" \
  "${api_args[@]}" --revocations "$revocations" --poll-ms 5 \
  -- $bin/wristband keys revoke "${store[@]}"
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# keys at the end:"
RUST_LOG=warn $bin/wristband keys list "${store[@]}" | sed 's/^/#   /'
# Each verifier's view of the revocation feed (records held, staleness).
for i in 1 2 3; do
  addr=$(sed -n 's/^listening on //p' "$work/api$i.out" | head -1)
  echo "# api$i: $(curl -s "http://$addr/metrics" | grep '^wristband_verifier_revocation' | xargs)"
done
