#!/usr/bin/env bash
# Runs the whole test suite on a fresh machine: installs what the tests need, starts a real S3
# server (moto) for the S3 tests, runs `cargo test --workspace`, stops the server.
#
#   scripts/test.sh            # everything
#   scripts/test.sh round_trip # extra arguments go to `cargo test` (e.g. a test-name filter)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"

# A target directory that survives between runs (and between CI clones) turns a cold build of
# several minutes into seconds. Override with CARGO_TARGET_DIR.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/frameline-target}"

need_apt=()
command -v python3 >/dev/null || need_apt+=(python3)
python3 -c 'import venv' 2>/dev/null || need_apt+=(python3-venv)
command -v curl >/dev/null || need_apt+=(curl)
command -v cc >/dev/null || need_apt+=(gcc)
# frameline-capi's tests compile the C++ example game and check the header (g++, gcc, nm).
command -v g++ >/dev/null || need_apt+=(g++)
command -v nm >/dev/null || need_apt+=(binutils)
# The viewer's tests render through wgpu on Mesa's software Vulkan (lavapipe).
[ -e /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ] || [ -e /usr/share/vulkan/icd.d/lvp_icd.aarch64.json ] || need_apt+=(mesa-vulkan-drivers libvulkan1)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing ${need_apt[*]}" >&2
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >&2
  else
    sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >&2
  fi
fi

# The moto S3 server: ../shared/s3/start-moto.sh when this checkout sits next to it, otherwise
# our own copy of the same steps.
moto_script="$here/../shared/s3/start-moto.sh"
[ -x "$moto_script" ] || [ -f "$moto_script" ] || moto_script="$here/scripts/start-moto.sh"
# A loaded machine can make a server miss its start-up window: try again, then stop with a clear
# line rather than let every S3 test fail on a missing variable.
start_server() {
  local script="$1" out attempt
  for attempt in 1 2 3; do
    if out="$(bash "$script")"; then
      eval "$out"
      return 0
    fi
    echo "$(basename "$script"): no server on attempt $attempt" >&2
  done
  echo "error: $script could not start a server" >&2
  return 1
}
start_server "$moto_script"
start_server "$here/scripts/start-moto-auth.sh"
trap 'kill "$FRAMELINE_TEST_S3_PID" "$FRAMELINE_TEST_S3_AUTH_PID" 2>/dev/null || true' EXIT

# The interop tests check exported traces with the official Perfetto protobuf definitions and
# Parquet files with DuckDB (PyPI perfetto, protobuf, duckdb), in a venv cached like moto's.
interop_venv="${FRAMELINE_INTEROP_VENV:-$HOME/.cache/frameline/interop-venv}"
if ! "$interop_venv/bin/python" -c 'import duckdb, google.protobuf; from perfetto.protos.perfetto.trace import perfetto_trace_pb2' 2>/dev/null; then
  echo "installing perfetto, protobuf and duckdb into $interop_venv" >&2
  python3 -m venv "$interop_venv" >&2
  "$interop_venv/bin/pip" install -q 'perfetto==0.59.1' 'protobuf==7.36.2' 'duckdb==2.0.1' >&2
fi
export FRAMELINE_TEST_PYTHON="$interop_venv/bin/python"

log="$(mktemp -t frameline-test.XXXXXX.log)"
set +e
cargo test --workspace --exclude frameline-peers --all-features "$@" 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line for the whole suite (cargo prints one per test binary).
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;?/) p += $i; if ($(i+1) ~ /^failed;?/) f += $i; if ($(i+1) ~ /^ignored;?/) g += $i } }
     END { printf "%d passed, %d failed, %d skipped\n", p, f, g }' "$log"
rm -f "$log"
exit "$status"
