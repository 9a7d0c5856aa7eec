#!/usr/bin/env bash
# Builds the fuzz targets and runs each for a bounded time; any crash fails the script and
# leaves its input in fuzz/artifacts/<target>/ (reproduce: cargo fuzz run --sanitizer none
# <target> <file>).
#
#   fuzz/run.sh [SECONDS_PER_TARGET] [TARGET...]    (default: 60 s, every target)
#
# On stable Rust: cargo-fuzz's coverage instrumentation (-Cpasses=sancov-module,
# -Cllvm-args=...) is stable; only its sanitizers need nightly, so the targets are built with
# `--sanitizer none`. The code under test forbids `unsafe`, so ASan has little to add; panics
# (failed properties, overflow checks: debug assertions are on), aborts, timeouts and
# runaway memory are what is caught. libFuzzer itself is compiled with the C++ compiler.
#
# Each target runs on a scratch corpus (fuzz/target/corpus/<target>, kept between runs, not
# committed) seeded from the committed fuzz/corpus/<target>/seed-*.
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
seconds="${1:-60}"
shift || true

if ! command -v cargo-fuzz >/dev/null; then
  echo "installing cargo-fuzz"
  cargo install --locked --quiet cargo-fuzz@0.13.2
fi

targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo fuzz list)

cargo fuzz build --sanitizer none

failed=()
for target in "${targets[@]}"; do
  echo "==> fuzz target $target: ${seconds} s"
  mkdir -p "target/corpus/$target" "artifacts/$target"
  # -timeout: one input may take at most 10 s; -rss_limit_mb: memory; -max_len: inputs up to
  # 8 KiB (tokens are refused beyond 4 KiB, cursors beyond 512 B).
  if ! cargo fuzz run --sanitizer none "$target" "target/corpus/$target" "corpus/$target" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
      -print_final_stats=1; then
    failed+=("$target")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing found crashes in: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
  exit 1
fi
echo "fuzzing: no crash in ${targets[*]} (${seconds} s each)"
