#!/usr/bin/env bash
# Engine benchmarks on a `frameline demo --fast` capture (see BENCHMARKS.md):
#  - first query of one process's spans over the whole capture, cold (no cache) and warm;
#  - aggregates over log_entries and measures, frameline on the lake vs DuckDB on the same rows
#    exported to Parquet (`COPY ... TO`), each timed in-process, best of 5.
#
#   scripts/bench-engine.sh [SECONDS_OF_FAST_DEMO]     (default 1.5: about 2.5e7 spans here)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/frameline-target}"
seconds="${1:-1.5}"
work="$(mktemp -d -t frameline-bench.XXXXXX)"
trap 'rm -rf "$work"' EXIT
cargo build --release -p frameline >&2
bin="$CARGO_TARGET_DIR/release/frameline"

"$bin" demo --fast --seconds "$seconds" --out "$work/lake" >&2
export FRAMELINE_CACHE_DIR="$work/cache"
process="$("$bin" query --lake "$work/lake" --format csv "SELECT process_id FROM processes" | tail -1)"
spans="$("$bin" query --lake "$work/lake" --format csv "SELECT sum(event_count) / 2 FROM blocks WHERE kind = 'cpu'" | tail -1)"
echo "capture: $spans spans"

span_sql="SELECT name, count(*) AS n, sum(duration_ns) AS total_ns, max(duration_ns) AS max_ns FROM thread_spans WHERE process_id = '$process' GROUP BY name"
echo "== one process's spans, whole capture: cold (first run, empty cache), then warm (same session)"
rm -rf "$FRAMELINE_CACHE_DIR"
"$bin" query --lake "$work/lake" --timing --repeat 3 "$span_sql" > /dev/null
echo "== second run (another process: the disk cache is warm)"
"$bin" query --lake "$work/lake" --timing "$span_sql" > /dev/null

logs_sql="SELECT level, target, count(*) AS n FROM log_entries GROUP BY level, target ORDER BY n DESC"
measures_sql="SELECT name, date_trunc('second', time) AS second, avg(value) AS avg_value, max(value) AS max_value FROM measures GROUP BY name, second ORDER BY name, second"
"$bin" query --lake "$work/lake" "COPY (SELECT * FROM log_entries) TO '$work/log_entries.parquet'" > /dev/null
"$bin" query --lake "$work/lake" "COPY (SELECT * FROM measures) TO '$work/measures.parquet'" > /dev/null
echo "== frameline: aggregates over the lake (run 1 decodes; runs 2-5 from the cache)"
"$bin" query --lake "$work/lake" --repeat 5 "$logs_sql" > /dev/null
"$bin" query --lake "$work/lake" --repeat 5 "$measures_sql" > /dev/null

venv="${DUCKDB_VENV:-$HOME/.cache/frameline/duckdb-venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q duckdb >&2
fi
echo "== DuckDB $("$venv/bin/python" -c 'import duckdb; print(duckdb.__version__)'): same aggregates over the Parquet export"
"$venv/bin/python" - "$work" "$logs_sql" "$measures_sql" <<'PY'
import sys, time, duckdb
work, logs_sql, measures_sql = sys.argv[1], sys.argv[2], sys.argv[3]
con = duckdb.connect()
con.execute("SET threads TO 2")
con.execute(f"CREATE VIEW log_entries AS SELECT * FROM read_parquet('{work}/log_entries.parquet')")
con.execute(f"CREATE VIEW measures AS SELECT * FROM read_parquet('{work}/measures.parquet')")
for name, sql in [("log_entries", logs_sql), ("measures", measures_sql)]:
    times = []
    for _ in range(5):
        t = time.perf_counter(); rows = con.execute(sql).fetchall(); times.append((time.perf_counter() - t) * 1e3)
    print(f"duckdb {name}: " + ", ".join(f"{x:.1f}" for x in times) + f" ms ({len(rows)} rows)")
PY
