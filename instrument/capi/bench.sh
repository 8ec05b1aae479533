#!/usr/bin/env bash
# C++ span (frameline.hpp, g++ -O2, linking the release static library) vs Rust span vs floor,
# in one run, then the Rust span with the flight recorder on. Results go to BENCHMARKS.md.
#   instrument/capi/bench.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
target="${CARGO_TARGET_DIR:-target}"
cargo build --release -p frameline-capi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
g++ -std=c++17 -O2 -Iinstrument/capi/include instrument/capi/examples/bench.cpp \
    "$target/release/libframeline_capi.a" -lpthread -ldl -lm -o "$work/bench"
"$work/bench" "$work/lake"
cargo bench -p frameline-instrument --bench span
