#!/usr/bin/env bash
# Runs the `parse_verify` fuzz target (fuzz/) for a fixed time and fails if it finds a crash.
#
# Usage: bash .ci/fuzz.sh [SECONDS]        (default 60)
#
# cargo-fuzz passes nightly-only flags to rustc (-Z sanitizer, sanitizer coverage); on a
# stable toolchain RUSTC_BOOTSTRAP=1 lets rustc accept them. The AddressSanitizer build is
# used when it works, otherwise the run falls back to `--sanitizer none` (coverage guidance
# and Rust's own checks still apply).
#
# Environment:
#   FUZZ_TARGET_DIR       cargo target directory (default: fuzz/target)
#   FUZZ_SKIP_SEED_TEST   set to skip checking that fuzz/seeds are current and valid
set -euo pipefail

duration="${1:-60}"
case "$duration" in
  '' | *[!0-9]*) echo "usage: $0 [SECONDS]" >&2; exit 2 ;;
esac

cd "$(dirname "$0")/.."
target=parse_verify
target_dir="${FUZZ_TARGET_DIR:-fuzz/target}"
corpus="fuzz/corpus/$target"

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "== installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1

if [ -z "${FUZZ_SKIP_SEED_TEST:-}" ]; then
  echo "== fuzz seeds are current and verify"
  CARGO_TARGET_DIR="$target_dir/seed-test" cargo test --manifest-path fuzz/Cargo.toml --quiet
fi

sanitizer=address
echo "== building $target (sanitizer: $sanitizer)"
if ! cargo fuzz build "$target" --sanitizer "$sanitizer" --target-dir "$target_dir"; then
  sanitizer=none
  echo "== AddressSanitizer build failed; building $target with --sanitizer none" >&2
  cargo fuzz build "$target" --sanitizer "$sanitizer" --target-dir "$target_dir"
fi

mkdir -p "$corpus"
echo "== fuzzing $target for ${duration}s (sanitizer: $sanitizer)"
# The first corpus directory collects new inputs; fuzz/seeds is read only. A slow input
# (over 10 s) counts as a finding, like a crash. Inputs up to 16 KiB cover the 8 KiB token
# cap and JWKS documents.
status=0
cargo fuzz run "$target" --sanitizer "$sanitizer" --target-dir "$target_dir" \
  "$corpus" fuzz/seeds -- \
  -max_total_time="$duration" -timeout=10 -max_len=16384 -print_final_stats=1 || status=$?

if [ "$status" -ne 0 ]; then
  echo "== fuzzing found a failure (exit $status); reproducer in fuzz/artifacts/$target/" >&2
  ls -l "fuzz/artifacts/$target/" >&2 || true
  exit "$status"
fi
echo "== fuzzing finished without findings"
