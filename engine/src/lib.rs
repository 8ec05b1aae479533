//! # frameline-engine
//!
//! SQL over a Frameline lake (a capture folder or an S3 prefix), with DataFusion. Metadata tables
//! come from the lake's catalog; event tables (`log_entries`, `measures`, `frames`,
//! `thread_spans`) decode only the blocks a query's filters on process, stream and time keep, just
//! in time, in parallel, through `frameline_instrument::format`.

#![deny(unsafe_code)]
pub mod analysis;
mod aws;
pub mod cache;
pub mod catalog;
pub mod columns;
pub mod compare;
pub mod decode;
pub mod dirs;
mod engine;
mod error;
pub mod fleet;
pub mod generate;
mod group_by;
mod lake;
pub mod overview;
mod pre_aggregate;
pub mod range_stats;
mod reads;
pub mod requests;
pub mod span_totals;
pub mod sql_budget;
mod string_ids;
pub mod summaries;
mod tables;
pub mod timeline;
pub mod views;

pub use aws::{S3Options, profile_settings};
pub use catalog::LakeProblem;
pub use catalog::compact::{CompactOptions, CompactReport};
pub use datafusion;
pub use decode::{frames_schema, log_entries_schema, measures_schema, thread_spans_schema};
pub use engine::{Engine, SavedView, VIEWS_PREFIX};
pub use error::EngineError;
pub use lake::{BlockEntry, Lake, LakeLocation};
pub use reads::{FrameTime, LogLine, MetricName, MetricSamples};
pub use requests::RequestCounts;
pub use summaries::SummaryReport;
pub use tables::{EventTable, Progress, Pruning};
