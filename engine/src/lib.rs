//! Frameline's query engine over a lake.
pub use datafusion;
