#!/usr/bin/env python3
"""Checks that DuckDB reads a Parquet file written by `frameline query "COPY (SELECT ...) TO
'x.parquet'"` with the same rows as the SELECT itself printed (`frameline query --format json`).

    check_parquet.py FILE.parquet EXPECTED.json [TIME_COLUMN NS_COLUMN]

Every column of EXPECTED.json's rows must be in the file with equal values (rows compared as
sorted multisets). With TIME_COLUMN and NS_COLUMN, DuckDB's epoch_ns(TIME_COLUMN) must equal
NS_COLUMN on every row (the timestamp survives to the nanosecond, with its time zone).
"""
import json
import math
import sys


def fail(message):
    print(f"check_parquet: {message}", file=sys.stderr)
    sys.exit(1)


def main():
    if len(sys.argv) not in (3, 5):
        fail(__doc__)
    try:
        import duckdb
    except ImportError as e:
        fail(f"the PyPI package duckdb is needed ({e}); scripts/test.sh installs it")
    path, expected_path = sys.argv[1], sys.argv[2]
    with open(expected_path) as f:
        expected = json.load(f)
    if not expected:
        fail("the expected result has no rows: nothing would be compared")
    columns = list(expected[0].keys())
    con = duckdb.connect()
    selected = ", ".join(f'"{c}"' for c in columns)
    got = con.execute(f"SELECT {selected} FROM read_parquet(?)", [path]).fetchall()
    if len(got) != len(expected):
        fail(f"{len(got)} rows in {path}, expected {len(expected)}")

    def norm(value):
        if isinstance(value, float) and math.isfinite(value):
            return round(value, 9)
        return value

    want = sorted((tuple(norm(row[c]) for c in columns) for row in expected), key=repr)
    have = sorted((tuple(norm(v) for v in row) for row in got), key=repr)
    for i, (a, b) in enumerate(zip(have, want)):
        if a != b:
            fail(f"row {i} differs: duckdb {a}, frameline {b} (columns {columns})")
    if len(sys.argv) == 5:
        time_column, ns_column = sys.argv[3], sys.argv[4]
        kind = con.execute(f'SELECT typeof("{time_column}") FROM read_parquet(?) LIMIT 1', [path]).fetchone()[0]
        if "TIME ZONE" not in kind and "TZ" not in kind.upper():
            fail(f"{time_column} is {kind} in DuckDB, not a timestamp with time zone")
        bad = con.execute(
            f'SELECT count(*) FROM read_parquet(?) WHERE epoch_ns("{time_column}") <> "{ns_column}"', [path]
        ).fetchone()[0]
        if bad:
            fail(f"{bad} rows where epoch_ns({time_column}) differs from {ns_column}")
    print(f"check_parquet: ok: {len(got)} rows, columns {columns}")


if __name__ == "__main__":
    main()
