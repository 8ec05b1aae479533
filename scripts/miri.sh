#!/usr/bin/env bash
# Miri on the instrument's thread-local queue code (instrument/src/local.rs: publish/steal,
# records cut at a buffer's end, panicking arguments, a steal racing the owner), with the small
# queues those tests use under Miri. Needs a nightly toolchain with the miri component; installs
# it through rustup if missing. ~40 s warm, ~2 min cold on the 2-core CI machine.
#
#   scripts/miri.sh            # the queue tests
#   scripts/miri.sh local::    # extra arguments go to `cargo miri test` (e.g. a test-name filter)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/frameline-target}"
if ! rustup +nightly component list --installed 2>/dev/null | grep -q '^miri'; then
  echo "installing the nightly toolchain's miri component" >&2
  if ! rustup toolchain install nightly --profile minimal --component miri --component rust-src >&2; then
    # A machine that cannot fetch a toolchain: say so loudly, and let the rest of CI stand.
    echo "miri: SKIPPED — no nightly toolchain with miri here and none can be installed" >&2
    exit 0
  fi
fi
filter=("$@")
[ ${#filter[@]} -gt 0 ] || filter=(local::tests)
cargo +nightly miri test -p frameline-instrument --lib "${filter[@]}"
