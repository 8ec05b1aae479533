#!/usr/bin/env bash
# Fuzzing of what reads an untrusted lake (issue 13): the cargo-fuzz targets in fuzz/.
#
#   scripts/fuzz.sh build                      build every target (once; later runs reuse it)
#   scripts/fuzz.sh short                      build, then run each target for FUZZ_SHORT_SECONDS
#                                              (default 25) from the checked-in corpus; fails on
#                                              any crash, leak of the bounds, timeout or abort
#   scripts/fuzz.sh long SECONDS [TARGET...]   run each target (default: all) for SECONDS, growing
#                                              a corpus kept in $FUZZ_WORK_DIR/corpus (BENCHMARKS.md);
#                                              with FUZZ_RUNS=N, stop a target after N inputs too
#   scripts/fuzz.sh seed LAKE                  add seeds to fuzz/corpus from a recorded lake
#
# Built with cargo-fuzz (`cargo install --locked cargo-fuzz`), without a sanitizer (the engine
# and interop have no unsafe code; the harness's own allocator stands in for -malloc_limit_mb,
# see fuzz/src/lib.rs), release with debug assertions and overflow checks. Crashes are written
# to $FUZZ_WORK_DIR/artifacts/TARGET/; reproduce one with
#   $CARGO_TARGET_DIR/x86_64-unknown-linux-gnu/release/TARGET ARTIFACT
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# Its own target dir: the fuzz build's flags differ from the workspace's (a shared dir would
# rebuild everything each time one or the other builds).
export CARGO_TARGET_DIR="${FUZZ_TARGET_DIR:-/var/tmp/frameline-fuzz-target}"
# cargo-fuzz passes a few unstable flags; stable rustc accepts them with this.
export RUSTC_BOOTSTRAP=1
export CARGO_TERM_COLOR=never
WORK="${FUZZ_WORK_DIR:-/var/tmp/frameline-fuzz-work}"
TRIPLE="$(rustc -vV | sed -n 's/^host: //p')"
BIN_DIR="$CARGO_TARGET_DIR/$TRIPLE/release"
TARGETS=(decode_log decode_measures decode_spans timeline block_key lake_json view_sql import_chrome)
# -rss_limit_mb: the process as a whole; -malloc_limit_mb is enforced by the harness's allocator
# (2 GiB, fuzz/src/lib.rs) since there is no sanitizer to hook allocations. An input taking more
# than -timeout seconds is a failure too.
LIBFUZZER_FLAGS=(-rss_limit_mb=4096 -malloc_limit_mb=2048 -timeout=20 -print_final_stats=1)

build() {
  command -v cargo-fuzz > /dev/null || {
    echo "cargo-fuzz is missing: cargo install --locked cargo-fuzz" >&2
    exit 1
  }
  cargo fuzz build -s none --codegen-units 16 --target-dir "$CARGO_TARGET_DIR" --target "$TRIPLE"
}

# run TARGET SECONDS CORPUS_DIR: fuzz TARGET, new inputs into CORPUS_DIR, seeds from fuzz/corpus.
# Paths are absolute: view_sql runs in an empty folder of its own (to see any file it writes).
run() {
  local target="$1" seconds="$2" corpus="$3"
  local artifacts="$WORK/artifacts/$target/"
  mkdir -p "$corpus" "$artifacts"
  local log="$WORK/logs/$target.log"
  mkdir -p "$WORK/logs"
  local status=0
  local runs=()
  [ -z "${FUZZ_RUNS:-}" ] || runs=(-runs="$FUZZ_RUNS")
  "$BIN_DIR/$target" "${LIBFUZZER_FLAGS[@]}" "${runs[@]}" -max_total_time="$seconds" \
    -artifact_prefix="$artifacts" "$corpus" "$PWD/fuzz/corpus/$target" > "$log" 2>&1 || status=$?
  local execs rate peak added
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  peak=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
  added=$(sed -n 's/^stat::new_units_added: *//p' "$log" | tail -1)
  # With FUZZ_RUNS, a target may stop before SECONDS: libFuzzer says when.
  local took
  took=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
  seconds="${took:-$seconds}"
  printf '%-16s %6ss  execs %-11s %7s/s  new %-6s peak RSS %5s MB  corpus %s files\n' \
    "$target" "$seconds" "${execs:-?}" "${rate:-?}" "${added:-?}" "${peak:-?}" \
    "$(find "$corpus" "fuzz/corpus/$target" -type f | wc -l)"
  if [ "$status" -ne 0 ]; then
    echo "FAILED: $target (exit $status), log $log, artifacts in $artifacts" >&2
    grep -E 'panicked|ERROR|SUMMARY|==frameline-fuzz==|Test unit written' "$log" | head -20 >&2 || true
    return 1
  fi
}

case "${1:-}" in
  build)
    build
    ;;
  short)
    build
    seconds="${FUZZ_SHORT_SECONDS:-25}"
    scratch="$(mktemp -d)"
    trap 'rm -rf "$scratch"' EXIT
    failed=()
    for target in "${TARGETS[@]}"; do
      run "$target" "$seconds" "$scratch/$target" || failed+=("$target")
    done
    if [ ${#failed[@]} -gt 0 ]; then
      echo "fuzzing found crashes in: ${failed[*]}" >&2
      exit 1
    fi
    ;;
  long)
    seconds="${2:?usage: scripts/fuzz.sh long SECONDS [TARGET...]}"
    shift 2
    [ $# -gt 0 ] || set -- "${TARGETS[@]}"
    build
    failed=()
    for target in "$@"; do
      run "$target" "$seconds" "$WORK/corpus/$target" || failed+=("$target")
    done
    if [ ${#failed[@]} -gt 0 ]; then
      echo "fuzzing found crashes in: ${failed[*]}" >&2
      exit 1
    fi
    ;;
  seed)
    python3 fuzz/seed_corpus.py "${2:?usage: scripts/fuzz.sh seed LAKE}" fuzz/corpus
    ;;
  *)
    sed -n '2,16p' "${BASH_SOURCE[0]}" >&2
    exit 2
    ;;
esac
