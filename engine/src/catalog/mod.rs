//! The lake's catalog for readers: an index read as queries need it (`index.rs`), the rows of its
//! compacted Parquet parts (`rows.rs`), and compaction, which folds the small objects games
//! write into those parts (`compact.rs`).

pub mod compact;
mod index;
pub mod rows;

pub(crate) use index::CatalogState;
pub use index::{LakeProblem, UNFINISHED_HORIZON_NS};
