#!/usr/bin/env bash
# Sessions of any length (BENCHMARKS.md, "Sessions of any length"): writes one long session with
# `frameline demo --long` (8 threads, 1.16 × 10^5 spans a second of game), then measures, each
# with its time and peak RSS (/usr/bin/time -v):
#   - `frameline lake compact` of it (catalog + summaries: the span totals folded block by block);
#   - the viewer under Xvfb on a fresh copy, background compaction on (the default), cold (empty
#     decoded-block cache) and warm: first paint, refined overview, the worst frame's detail
#     (it prints each; FRAMELINE_SCREENSHOT_VIEW=drilldown clicks Worst frame and waits for it);
#   - the statistics query of the whole session and of 10 s, through `frameline query`.
#
#   scripts/bench-long.sh GAME_SECONDS [WORK_DIR]    (864 s ≈ 10^8 spans, 6048 s ≈ 7 × 10^8)
#
# FRAMELINE_BIN picks the binary (default: the release build in CARGO_TARGET_DIR).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/frameline-target}"
bin="${FRAMELINE_BIN:-$CARGO_TARGET_DIR/release/frameline}"
seconds="${1:-864}"
work="${2:-/var/tmp/frameline-long-$seconds}"
command -v xvfb-run >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq xvfb xauth >&2; }
[ -x /usr/bin/time ] || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >&2; }
mkdir -p "$work"
pristine="$work/pristine"
if [ ! -d "$pristine" ]; then
  echo "== writing a $seconds s session into $pristine"
  /usr/bin/time -f "written in %e s, peak RSS %M KiB" "$bin" demo --long --seconds "$seconds" --threads 6 --out "$pristine"
fi
du -sh "$pristine"
measure() { # label, command...
  local label="$1"; shift
  /usr/bin/time -f "$label: %e s, peak RSS %M KiB" "$@"
}
fresh_copy() { rm -rf "$work/lake"; cp -r "$pristine" "$work/lake"; }

echo "== lake compact"
fresh_copy
FRAMELINE_CACHE_DIR=off measure "lake compact" "$bin" lake compact "$work/lake"

for run in cold warm; do
  echo "== viewer ($run cache), background compaction on"
  fresh_copy
  [ "$run" = cold ] && rm -rf "$work/cache"
  FRAMELINE_CACHE_DIR="$work/cache" FRAMELINE_SCREENSHOT="$work/drilldown-$run.png" \
    FRAMELINE_SCREENSHOT_VIEW=drilldown XDG_CONFIG_HOME="$work/config" \
    measure "viewer ($run)" xvfb-run -a -s "-screen 0 1600x1000x24" "$bin" open "$work/lake" 2>&1 \
    | grep -E "^\[frameline\]|viewer|error" || true
done

echo "== statistics (frameline query, cold then warm cache)"
fresh_copy
start_ns="$("$bin" query --lake "$work/lake" --format csv "SELECT CAST(min(begin_time) AS BIGINT) AS t FROM thread_spans WHERE depth = 0 AND begin_time < (SELECT min(start_time) FROM processes) + INTERVAL '2 seconds'" | tail -1)"
for scope in whole 10s; do
  where=""
  [ "$scope" = 10s ] && where="WHERE begin_time >= to_timestamp_nanos($start_ns + 60000000000) AND begin_time < to_timestamp_nanos($start_ns + 70000000000)"
  sql="SELECT name, count(*) AS calls, sum(duration_ns) AS total_ns, max(duration_ns) AS max_ns FROM thread_spans $where GROUP BY name"
  for run in cold warm; do
    [ "$run" = cold ] && rm -rf "$work/qcache"
    FRAMELINE_CACHE_DIR="$work/qcache" measure "statistics of $scope ($run)" "$bin" query --lake "$work/lake" --timing "$sql" > /dev/null
  done
done
