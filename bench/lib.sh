# Shared set-up of the benchmark scripts; source it after `cd` to the repository root.
# Builds the release binaries and provides `start` and `track` for background services,
# which are all killed (and the work directory removed) on exit.
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
track() { pids+=("$(cat "$1.pid")"); }
trap cleanup EXIT

# A script that compares binaries built elsewhere sets BENCH_PREBUILT=1 and its own paths.
if [ -z "${BENCH_PREBUILT:-}" ]; then
  cargo build --release -q -p wristband -p wristband-loadgen
  cargo build --release -q -p wristband-verify --example api_service
fi
bin=${CARGO_TARGET_DIR:-target}/release

# Starts a process whose stdout announces "listening on ADDR"; prints ADDR. It runs in a
# command substitution (a subshell), so the pid goes to LOG.pid for the caller to track.
start() {
  local log=$1; shift
  "$@" >"$log.out" 2>"$log.err" &
  echo $! >"$log.pid"
  for _ in $(seq 1 200); do
    if grep -q '^listening on ' "$log.out" 2>/dev/null; then
      sed -n 's/^listening on //p' "$log.out" | head -1
      return
    fi
    sleep 0.1
  done
  echo "failed to start: $*" >&2; cat "$log.err" >&2; kill "$(cat "$log.pid")" 2>/dev/null; exit 1
}

# For the two-build comparisons: adds the user `bench` to a new data directory in W, starts
# `DIR/wristband serve` on it, logs in, and sets `auth` (the address) and `token` (an
# access token). NAME labels a failure.
bench_password="bench passphrase for load tests"
serve_and_login() {
  local name=$1 dir=$2 w=$3
  printf '%s\n' "$bench_password" | RUST_LOG=warn "$dir/wristband" user --data-dir "$w/data" add bench --role admin --password-stdin >/dev/null
  auth=$(RUST_LOG=warn start "$w/auth" "$dir/wristband" serve --data-dir "$w/data" --listen 127.0.0.1:0)
  track "$w/auth"
  token=$(curl -s -H 'content-type: application/json' -d "{\"username\":\"bench\",\"password\":\"$bench_password\"}" "http://$auth/v1/login" | sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p')
  [ -n "$token" ] || { echo "login failed ($name)" >&2; exit 1; }
}
