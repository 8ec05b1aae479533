"""Times DuckDB on the same aggregates frameline runs, over the rows exported to Parquet.

    python scripts/duckdb_compare.py DIR   # DIR holds log_entries, measures and thread_spans .parquet

Prints the best of 5 runs for each query, with 2 threads (the machine's cores).
"""
import sys
import time

import duckdb

LOGS_SQL = "SELECT level, target, count(*) AS n FROM log_entries GROUP BY level, target ORDER BY n DESC"
MEASURES_SQL = (
    "SELECT name, date_trunc('second', time) AS second, avg(value) AS avg_value, max(value) AS max_value "
    "FROM measures GROUP BY name, second ORDER BY name, second"
)
SPANS_SQL = "SELECT name, count(*), avg(duration_ns) FROM thread_spans GROUP BY name"


def main() -> None:
    work = sys.argv[1]
    con = duckdb.connect()
    con.execute("SET threads TO 2")
    con.execute(f"CREATE VIEW log_entries AS SELECT * FROM read_parquet('{work}/log_entries.parquet')")
    con.execute(f"CREATE VIEW measures AS SELECT * FROM read_parquet('{work}/measures.parquet')")
    con.execute(f"CREATE VIEW thread_spans AS SELECT * FROM read_parquet('{work}/thread_spans.parquet')")
    print(f"duckdb {duckdb.__version__}")
    for name, sql in [("log_entries", LOGS_SQL), ("measures", MEASURES_SQL), ("thread_spans", SPANS_SQL)]:
        times = []
        rows = []
        for _ in range(5):
            start = time.perf_counter()
            rows = con.execute(sql).fetchall()
            times.append((time.perf_counter() - start) * 1e3)
        print(f"{name}: best {min(times):.2f} ms, runs " + ", ".join(f"{t:.2f}" for t in times) + f" ({len(rows)} rows)")


if __name__ == "__main__":
    main()
