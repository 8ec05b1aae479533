//! Aggregating by a dictionary string column in two steps: first each batch by its dictionary's
//! keys (an array indexed by key, no hashing), then the few rows that leaves by string.
//!
//! The event tables' strings are `Dictionary(Int32, Utf8)`: one block's few distinct names, and a
//! key per row. `SELECT name, count(*), avg(duration_ns) FROM thread_spans GROUP BY name` over
//! 6.8 × 10^6 spans still hashed every row in DataFusion's hash aggregate after the rows had been
//! given integer ids (`string_ids.rs`): 48 ms warm against DuckDB's 45 ms on the same rows
//! (BENCHMARKS.md). Here, the logical rule ([`rule`]) rewrites
//!
//! ```text
//! Aggregate(group by d; count(*), count(x), sum(x), avg(x), min(x), max(x))   d: a string dictionary column
//! ```
//!
//! into
//!
//! ```text
//! Projection(the aggregate's own names and types)
//!   Aggregate(group by g; sum/min/max of the partial columns)
//!     PreAggregate(d → g, partial columns)   one row per distinct key of each batch
//! ```
//!
//! [`PreAggregate`](node::PreAggregate) is a logical extension node; its physical plan
//! ([`exec::PreAggregateExec`]) runs one pass per batch over the keys (and each argument column),
//! accumulating into vectors indexed by key ([`partial`]). DataFusion then groups a few rows per
//! batch by string. Output names, types and values are those of the plain plan: `avg` sums
//! `f64`s as DataFusion does (only the order differs, and sums of integers below 2^53 are exact
//! in any order), `sum` of integers wraps as DataFusion's does.
//!
//! What is not rewritten (DataFusion's plan, with `string_ids.rs` for the grouping) : several
//! group columns, grouping sets, a group expression that is not a column, `DISTINCT`, `FILTER`,
//! `ORDER BY` inside an aggregate, other aggregate functions, arguments that are not columns of
//! a numeric type, and `min`/`max` of floats (DataFusion's NaN ordering stays its own).

pub mod exec;
pub mod node;
pub mod partial;
pub mod planner;
pub mod rule;

pub use planner::FramelineQueryPlanner;
pub use rule::PreAggregateByKeys;
