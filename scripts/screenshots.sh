#!/usr/bin/env bash
# Runs the real viewer window under Xvfb (Vulkan on Mesa's llvmpipe) and writes the README's
# screenshots: the start screen, the drill-down to the worst frame, the log pane, and the analysis
# panels on the worst frame (statistics, flame graph against the median frame, SQL, metric plots),
# and the fleet page of a synthetic studio lake.
#
#   scripts/screenshots.sh [OUT_DIR]     (default docs/screenshots)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
out="${1:-docs/screenshots}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/frameline-target}"
need=()
command -v xvfb-run >/dev/null || need+=(xvfb xauth)
[ -e /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ] || [ -e /usr/share/vulkan/icd.d/lvp_icd.aarch64.json ] || need+=(mesa-vulkan-drivers libvulkan1)
if [ ${#need[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >&2
fi
if [ -z "${FRAMELINE_BIN:-}" ]; then
  cargo build --release -p frameline >&2
fi
bin="${FRAMELINE_BIN:-$CARGO_TARGET_DIR/release/frameline}"
work="$(mktemp -d -t frameline-shots.XXXXXX)"
trap 'rm -rf "$work"' EXIT
"$bin" demo --out "$work/capture" --seconds 6 >&2
mkdir -p "$out"
for view in start drilldown logs stats flame sql metrics; do
  args=(open "$work/capture")
  [ "$view" = start ] && args=()
  FRAMELINE_SCREENSHOT="$out/$view.png" FRAMELINE_SCREENSHOT_VIEW="$view" XDG_CONFIG_HOME="$work/config" \
    timeout 120 xvfb-run -a -s "-screen 0 1400x900x24" "$bin" "${args[@]}" >&2
  echo "$out/$view.png"
done
# The Compare view: a normal run against one with physics.solve slowed 1.5 times.
"$bin" demo --out "$work/compare" --seconds 6 --property build=a >&2
"$bin" demo --out "$work/compare" --seconds 6 --property build=b --slow physics.solve=1.5 >&2
FRAMELINE_SCREENSHOT="$out/compare.png" FRAMELINE_SCREENSHOT_VIEW=compare XDG_CONFIG_HOME="$work/config" \
  timeout 120 xvfb-run -a -s "-screen 0 1400x900x24" "$bin" open "$work/compare" --no-compact >&2
echo "$out/compare.png"
# The fleet page of a studio lake (synthetic sessions, compacted and summarized).
"$bin" demo --sessions 2000 --days 7 --out "$work/studio" >&2
FRAMELINE_SCREENSHOT="$out/fleet.png" FRAMELINE_SCREENSHOT_VIEW=fleet XDG_CONFIG_HOME="$work/config" \
  timeout 300 xvfb-run -a -s "-screen 0 1400x900x24" "$bin" open "$work/studio" --no-compact >&2
echo "$out/fleet.png"
