//! DataFusion tables over a lake. Metadata tables (`processes`, `streams`, `blocks`) are built
//! from the catalog; event tables (`log_entries`, `measures`, `frames`, `thread_spans`) decode
//! blocks just in time, only those that the query's filters on process, stream and time leave.

mod catalog;
mod decode_stream;
mod exec;
mod pushdown;

pub use catalog::{CatalogTable, CatalogTableKind};
pub use decode_stream::{BlockScan, Caching};
pub use exec::BlockScanExec;
pub(crate) use pushdown::time_bounds;
pub use pushdown::{ExactTimeFilter, Pruning};

use crate::decode;
use crate::error::EngineError;
use crate::lake::Lake;
use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::Result as DfResult;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::ExecutionPlan;
use frameline_instrument::format::StreamKind;
use std::sync::Arc;

/// Blocks selected and decoded so far, for progress bars.
#[derive(Debug, Default)]
pub struct Progress {
    pub total: std::sync::atomic::AtomicU64,
    pub done: std::sync::atomic::AtomicU64,
}

/// The event tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventTable {
    LogEntries,
    Measures,
    Frames,
    ThreadSpans,
}

impl EventTable {
    pub fn name(self) -> &'static str {
        match self {
            EventTable::LogEntries => "log_entries",
            EventTable::Measures => "measures",
            EventTable::Frames => "frames",
            EventTable::ThreadSpans => "thread_spans",
        }
    }

    fn schema(self) -> SchemaRef {
        match self {
            EventTable::LogEntries => decode::log_entries_schema(),
            EventTable::Measures => decode::measures_schema(),
            EventTable::Frames => decode::frames_schema(),
            EventTable::ThreadSpans => decode::thread_spans_schema(),
        }
    }

    fn stream_kind(self) -> StreamKind {
        match self {
            EventTable::LogEntries => StreamKind::Log,
            EventTable::Measures | EventTable::Frames => StreamKind::Metrics,
            EventTable::ThreadSpans => StreamKind::Cpu,
        }
    }
}

/// The plan of a table whose rows were just computed in memory (catalog tables, summaries):
/// projection and limit applied by a `MemTable`.
pub(crate) async fn scan_batches(
    state: &dyn Session,
    schema: SchemaRef,
    batches: Vec<datafusion::arrow::record_batch::RecordBatch>,
    projection: Option<&Vec<usize>>,
    limit: Option<usize>,
) -> DfResult<Arc<dyn ExecutionPlan>> {
    let table = datafusion::datasource::MemTable::try_new(schema, vec![batches])?;
    table.scan(state, projection, &[], limit).await
}

/// A table whose rows are decoded from blocks when a query scans it.
#[derive(Debug)]
pub struct BlockTable {
    table: EventTable,
    lake: Arc<Lake>,
    /// Rows of this process only (a materialized view evaluated for one session).
    only_process: Option<String>,
}

impl BlockTable {
    pub fn new(table: EventTable, lake: Arc<Lake>) -> Self {
        Self {
            table,
            lake,
            only_process: None,
        }
    }

    /// The table as seen by one session.
    pub fn for_process(table: EventTable, lake: Arc<Lake>, process_id: &str) -> Self {
        Self {
            table,
            lake,
            only_process: Some(process_id.to_owned()),
        }
    }

    /// The blocks `pruning` keeps, to stream their rows ([`BlockScan::batches`]).
    pub async fn blocks(&self, pruning: &Pruning) -> Result<BlockScan, EngineError> {
        let mut pruning = pruning.clone();
        if let Some(only) = &self.only_process {
            let ids = pruning
                .process_ids
                .get_or_insert_with(|| std::iter::once(only.clone()).collect());
            ids.retain(|id| id == only);
        }
        BlockScan::select(self.table, self.lake.clone(), &pruning).await
    }
}

#[async_trait]
impl TableProvider for BlockTable {
    fn schema(&self) -> SchemaRef {
        self.table.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        let spans = self.table == EventTable::ThreadSpans;
        Ok(filters
            .iter()
            .map(|f| {
                let mut pruning = Pruning::default();
                if ExactTimeFilter::from_expr(f, self.table).is_some() {
                    // `scan` keeps exactly the rows it holds for (apply_exact_time_filters).
                    TableProviderFilterPushDown::Exact
                } else if !pruning.absorb(f, spans) {
                    TableProviderFilterPushDown::Unsupported
                } else if pruning.is_by_identity() {
                    // Every row of a block has its block's process and stream: keeping exactly
                    // the blocks of those processes or streams keeps exactly the rows.
                    TableProviderFilterPushDown::Exact
                } else {
                    // Time: blocks are skipped, rows are not; DataFusion still applies it.
                    TableProviderFilterPushDown::Inexact
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let pruning = Pruning::from_filters(filters, self.table == EventTable::ThreadSpans);
        let exact: Vec<ExactTimeFilter> = filters
            .iter()
            .filter_map(|f| ExactTimeFilter::from_expr(f, self.table))
            .collect();
        let schema = match projection {
            Some(columns) => Arc::new(self.schema().project(columns)?),
            None => self.schema(),
        };
        // Only the catalog is read here: blocks are fetched and decoded as the plan runs.
        let scan = self
            .blocks(&pruning)
            .await?
            .with_exact_filters(exact)
            .with_projection(projection.cloned())
            .with_limit(limit);
        Ok(Arc::new(BlockScanExec::new(scan, schema)))
    }
}
