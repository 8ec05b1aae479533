//! Per-session summaries: the seed's materialized views, kept in the lake with no server.
//!
//! A summary is a query evaluated **once per finished session, over that session's data only**
//! (its tables are scoped to the session: `frames`, `thread_spans`… see only its rows), whose
//! rows are stored with the session's `process_id` and `start_time` as Parquet under
//! `summaries/{view}/date={start date}/part-{hash}.parquet`. Each part lists the sessions it
//! covers in its Parquet metadata (`frameline.sessions`), so a session whose query returns no
//! row is not evaluated again. Readers (the `session_*` tables, DuckDB, polars) read the parts;
//! [`Engine::refresh_summaries`](crate::Engine::refresh_summaries) evaluates the sessions no part
//! covers yet — the same step as compaction. Any query qualifies: evaluated per session it
//! cannot compare sessions, and merging across sessions is left to the reader (counts and sums
//! add; frame-time percentiles across sessions come from `session_frame_histogram`'s buckets).

mod materialized;
mod refresh;
mod table;

pub use materialized::{MATERIALIZED_PREFIX, parse_create_materialized, summary_schema_of};
pub use refresh::SummaryReport;
pub use table::{SummaryIndex, SummaryTable};

/// Frame times above this are over the 60 fps target.
pub const TARGET_FRAME_NS: i64 = 16_666_667;
/// Frame times above this (two targets) are spikes.
pub const SPIKE_FRAME_NS: i64 = 2 * TARGET_FRAME_NS;
/// Histogram buckets per doubling of the frame time: bucket bounds grow by 2^(1/8) ≈ 9 %.
pub const BUCKETS_PER_OCTAVE: u32 = 8;

/// A summary's name and the query evaluated for each session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SummaryView {
    pub name: String,
    pub sql: String,
}

/// Whether `name` is one of the summaries every lake gets.
pub fn is_built_in(name: &str) -> bool {
    built_in().iter().any(|v| v.name == name)
}

/// Whether `view` is the built-in `session_spans`, which refresh evaluates by folding spans block
/// by block ([`crate::span_totals`]) rather than by its SQL: the SQL joins every span with its
/// children, a hash table of every parent of the session (21.7 GB for 1.24 × 10^8 spans). Its
/// SQL stays its definition (the part's name hashes it, and the schema comes from it); the fold
/// gives the same rows (`engine/tests/summaries.rs` compares them).
pub fn is_folded_span_totals(view: &SummaryView) -> bool {
    view.name == SESSION_SPANS && view.sql == session_spans_sql()
}

/// The built-in summary of span names.
pub const SESSION_SPANS: &str = "session_spans";

fn session_spans_sql() -> String {
    "SELECT CAST(s.name AS VARCHAR) AS name, count(*) AS calls, \
     sum(s.duration_ns) AS total_ns, \
     sum(s.duration_ns - coalesce(c.child_ns, 0)) AS self_ns \
     FROM thread_spans s LEFT JOIN \
     (SELECT stream_id, parent_id, sum(duration_ns) AS child_ns FROM thread_spans \
      WHERE depth > 0 GROUP BY stream_id, parent_id) c \
     ON s.stream_id = c.stream_id AND s.span_id = c.parent_id GROUP BY s.name"
        .to_owned()
}

/// The summaries every lake gets.
pub fn built_in() -> Vec<SummaryView> {
    let view = |name: &str, sql: String| SummaryView {
        name: name.to_owned(),
        sql,
    };
    vec![
        view(
            "session_frames",
            format!(
                "SELECT CAST(name AS VARCHAR) AS frame_set, count(*) AS frames, \
                 CAST(approx_percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ns) AS BIGINT) AS p50_ns, \
                 CAST(approx_percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ns) AS BIGINT) AS p95_ns, \
                 CAST(approx_percentile_cont(0.99) WITHIN GROUP (ORDER BY duration_ns) AS BIGINT) AS p99_ns, \
                 max(duration_ns) AS max_ns, CAST(avg(duration_ns) AS BIGINT) AS mean_ns, \
                 sum(CASE WHEN duration_ns > {TARGET_FRAME_NS} THEN 1 ELSE 0 END) AS over_target, \
                 sum(CASE WHEN duration_ns > {SPIKE_FRAME_NS} THEN 1 ELSE 0 END) AS spikes \
                 FROM frames GROUP BY name"
            ),
        ),
        view(
            "session_frame_histogram",
            format!(
                "SELECT CAST(name AS VARCHAR) AS frame_set, \
                 CAST(power(2.0, ceil(log2(CAST(greatest(duration_ns, 1) AS DOUBLE)) * {BUCKETS_PER_OCTAVE}.0) / {BUCKETS_PER_OCTAVE}.0) AS BIGINT) AS bucket_ns, \
                 count(*) AS frames FROM frames GROUP BY 1, 2"
            ),
        ),
        view(SESSION_SPANS, session_spans_sql()),
        view(
            "session_logs",
            "SELECT CAST(level AS VARCHAR) AS level, count(*) AS entries FROM log_entries GROUP BY level"
                .to_owned(),
        ),
        view(
            "session_metrics",
            "SELECT CAST(name AS VARCHAR) AS name, CAST(unit AS VARCHAR) AS unit, \
             count(*) AS samples, min(value) AS min_value, max(value) AS max_value, \
             avg(value) AS mean_value FROM measures GROUP BY name, unit"
                .to_owned(),
        ),
    ]
}
