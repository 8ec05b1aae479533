//! The metadata tables `processes`, `streams`, `blocks` and `lake_problems`, read from the lake's
//! catalog when a query scans them: `processes` reads only the start dates its `start_time`
//! filters allow, `streams` and `blocks` only the processes its `process_id` filters name.

use super::pushdown::{process_id_set, time_bounds};
use crate::catalog::LakeProblem;
use crate::error::EngineError;
use crate::lake::{BlockEntry, Lake};
use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, StringArray, TimestampNanosecondArray, UInt32Array, UInt64Array,
};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::Result as DfResult;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::ExecutionPlan;
use frameline_instrument::lake::{ProcessMeta, StreamMeta};
use std::sync::Arc;

fn ts() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

fn ts_array(values: Vec<Option<i64>>) -> ArrayRef {
    Arc::new(TimestampNanosecondArray::from(values).with_timezone("UTC")) as ArrayRef
}

fn strings(values: Vec<&str>) -> ArrayRef {
    Arc::new(StringArray::from(values)) as ArrayRef
}

fn to_err(e: datafusion::arrow::error::ArrowError) -> EngineError {
    EngineError::Query(e.to_string())
}

/// The `processes` table's rows.
pub fn processes_batch(p: &[ProcessMeta]) -> Result<RecordBatch, EngineError> {
    let processes_schema = Arc::new(Schema::new(vec![
        Field::new("process_id", DataType::Utf8, false),
        Field::new("exe", DataType::Utf8, false),
        Field::new("username", DataType::Utf8, false),
        Field::new("computer", DataType::Utf8, false),
        Field::new("os", DataType::Utf8, false),
        Field::new("cpu_brand", DataType::Utf8, false),
        Field::new("tsc_frequency", DataType::UInt64, false),
        Field::new("start_time", ts(), false),
        Field::new("end_time", ts(), true),
        Field::new("parent_process_id", DataType::Utf8, true),
        Field::new("properties", DataType::Utf8, false),
        Field::new("dropped_blocks", DataType::UInt64, false),
        Field::new("sampled_out_blocks", DataType::UInt64, false),
    ]));
    RecordBatch::try_new(
        processes_schema,
        vec![
            strings(p.iter().map(|x| x.process_id.as_str()).collect()),
            strings(p.iter().map(|x| x.exe.as_str()).collect()),
            strings(p.iter().map(|x| x.username.as_str()).collect()),
            strings(p.iter().map(|x| x.computer.as_str()).collect()),
            strings(p.iter().map(|x| x.os.as_str()).collect()),
            strings(p.iter().map(|x| x.cpu_brand.as_str()).collect()),
            Arc::new(UInt64Array::from(
                p.iter().map(|x| x.tsc_frequency).collect::<Vec<_>>(),
            )),
            ts_array(p.iter().map(|x| Some(x.start_unix_ns)).collect()),
            ts_array(p.iter().map(|x| x.end_unix_ns).collect()),
            Arc::new(StringArray::from(
                p.iter()
                    .map(|x| x.parent_process_id.as_deref())
                    .collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                p.iter()
                    .map(|x| serde_json::to_string(&x.properties).unwrap_or_default())
                    .collect::<Vec<_>>(),
            )),
            Arc::new(UInt64Array::from(
                p.iter().map(|x| x.dropped_blocks).collect::<Vec<_>>(),
            )),
            Arc::new(UInt64Array::from(
                p.iter().map(|x| x.sampled_out_blocks).collect::<Vec<_>>(),
            )),
        ],
    )
    .map_err(to_err)
}

/// The `streams` table's rows.
pub fn streams_batch(s: &[StreamMeta]) -> Result<RecordBatch, EngineError> {
    let mut s: Vec<&StreamMeta> = s.iter().collect();
    s.sort_by(|a, b| {
        (&a.process_id, a.thread_index, &a.kind).cmp(&(&b.process_id, b.thread_index, &b.kind))
    });
    let streams_schema = Arc::new(Schema::new(vec![
        Field::new("stream_id", DataType::Utf8, false),
        Field::new("process_id", DataType::Utf8, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("thread_name", DataType::Utf8, false),
        Field::new("thread_index", DataType::UInt64, false),
        Field::new("written_blocks", DataType::UInt64, false),
        Field::new("dropped_blocks", DataType::UInt64, false),
        Field::new("sampled_out_blocks", DataType::UInt64, false),
    ]));
    RecordBatch::try_new(
        streams_schema,
        vec![
            strings(s.iter().map(|x| x.stream_id.as_str()).collect()),
            strings(s.iter().map(|x| x.process_id.as_str()).collect()),
            strings(s.iter().map(|x| x.kind.as_str()).collect()),
            strings(s.iter().map(|x| x.thread_name.as_str()).collect()),
            Arc::new(UInt64Array::from(
                s.iter().map(|x| x.thread_index).collect::<Vec<_>>(),
            )),
            Arc::new(UInt64Array::from(
                s.iter().map(|x| x.written_blocks).collect::<Vec<_>>(),
            )),
            Arc::new(UInt64Array::from(
                s.iter().map(|x| x.dropped_blocks).collect::<Vec<_>>(),
            )),
            Arc::new(UInt64Array::from(
                s.iter().map(|x| x.sampled_out_blocks).collect::<Vec<_>>(),
            )),
        ],
    )
    .map_err(to_err)
}

/// The `blocks` table's rows.
pub fn blocks_batch(b: &[BlockEntry]) -> Result<RecordBatch, EngineError> {
    let blocks_schema = Arc::new(Schema::new(vec![
        Field::new("key", DataType::Utf8, false),
        Field::new("process_id", DataType::Utf8, false),
        Field::new("stream_id", DataType::Utf8, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("block_seq", DataType::UInt64, false),
        Field::new("begin_time", ts(), false),
        Field::new("end_time", ts(), false),
        Field::new("event_count", DataType::UInt32, false),
        Field::new("size_bytes", DataType::UInt64, false),
        Field::new("earliest_time", ts(), false),
    ]));
    RecordBatch::try_new(
        blocks_schema,
        vec![
            strings(b.iter().map(|x| x.key.as_str()).collect()),
            strings(b.iter().map(|x| x.info.process_id.as_str()).collect()),
            strings(b.iter().map(|x| x.info.stream_id.as_str()).collect()),
            strings(b.iter().map(|x| x.info.kind.as_str()).collect()),
            Arc::new(UInt64Array::from(
                b.iter().map(|x| x.info.block_seq).collect::<Vec<_>>(),
            )),
            ts_array(b.iter().map(|x| Some(x.info.begin_unix_ns)).collect()),
            ts_array(b.iter().map(|x| Some(x.info.end_unix_ns)).collect()),
            Arc::new(UInt32Array::from(
                b.iter().map(|x| x.info.event_count).collect::<Vec<_>>(),
            )),
            Arc::new(UInt64Array::from(
                b.iter().map(|x| x.size_bytes).collect::<Vec<_>>(),
            )),
            ts_array(b.iter().map(|x| Some(x.info.earliest_unix_ns)).collect()),
        ],
    )
    .map_err(to_err)
}

/// The `lake_problems` table's rows: what could not be read and was skipped.
pub fn problems_batch(problems: &[LakeProblem]) -> Result<RecordBatch, EngineError> {
    RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("key", DataType::Utf8, false),
            Field::new("problem", DataType::Utf8, false),
        ])),
        vec![
            strings(problems.iter().map(|p| p.key.as_str()).collect()),
            strings(problems.iter().map(|p| p.detail.as_str()).collect()),
        ],
    )
    .map_err(to_err)
}

/// The `process_properties` table's rows.
pub fn properties_batch(processes: &[ProcessMeta]) -> Result<RecordBatch, EngineError> {
    let rows: Vec<(&str, &str, &str)> = processes
        .iter()
        .flat_map(|p| {
            p.properties
                .iter()
                .map(|(k, v)| (p.process_id.as_str(), k.as_str(), v.as_str()))
        })
        .collect();
    RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("process_id", DataType::Utf8, false),
            Field::new("key", DataType::Utf8, false),
            Field::new("value", DataType::Utf8, false),
        ])),
        vec![
            strings(rows.iter().map(|r| r.0).collect()),
            strings(rows.iter().map(|r| r.1).collect()),
            strings(rows.iter().map(|r| r.2).collect()),
        ],
    )
    .map_err(to_err)
}

/// Which metadata table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CatalogTableKind {
    Processes,
    Streams,
    Blocks,
    Problems,
    /// `process_properties`: one row per process and property (`build`, `map`…).
    Properties,
}

/// A metadata table, read from the catalog when scanned.
#[derive(Debug)]
pub struct CatalogTable {
    kind: CatalogTableKind,
    lake: Arc<Lake>,
    schema: SchemaRef,
    /// Rows of this process only (a materialized view evaluated for one session).
    only_process: Option<String>,
}

impl CatalogTable {
    pub fn new(kind: CatalogTableKind, lake: Arc<Lake>) -> Result<CatalogTable, EngineError> {
        let schema = match kind {
            CatalogTableKind::Processes => processes_batch(&[])?.schema(),
            CatalogTableKind::Streams => streams_batch(&[])?.schema(),
            CatalogTableKind::Blocks => blocks_batch(&[])?.schema(),
            CatalogTableKind::Problems => problems_batch(&[])?.schema(),
            CatalogTableKind::Properties => properties_batch(&[])?.schema(),
        };
        Ok(CatalogTable {
            kind,
            lake,
            schema,
            only_process: None,
        })
    }

    /// The table as seen by one session.
    pub fn for_process(
        kind: CatalogTableKind,
        lake: Arc<Lake>,
        process_id: &str,
    ) -> Result<CatalogTable, EngineError> {
        let mut table = Self::new(kind, lake)?;
        table.only_process = Some(process_id.to_owned());
        Ok(table)
    }

    async fn rows(&self, filters: &[&Expr]) -> Result<RecordBatch, EngineError> {
        let mut ids = process_id_set(filters);
        if let Some(only) = &self.only_process {
            let ids = ids.get_or_insert_with(|| std::iter::once(only.clone()).collect());
            ids.retain(|id| id == only);
        }
        match self.kind {
            CatalogTableKind::Processes => {
                let (low, high) = time_bounds(filters, "start_time");
                let from = low.map(frameline_instrument::lake::date_of_unix_ns);
                let to = high.map(frameline_instrument::lake::date_of_unix_ns);
                self.lake.load_dates(from.as_deref(), to.as_deref()).await?;
                let all = self.lake.processes();
                let kept: Vec<ProcessMeta> = all
                    .iter()
                    .filter(|p| {
                        low.is_none_or(|t| p.start_unix_ns >= t)
                            && high.is_none_or(|t| p.start_unix_ns <= t)
                            && ids.as_ref().is_none_or(|ids| ids.contains(&p.process_id))
                    })
                    .cloned()
                    .collect();
                processes_batch(&kept)
            }
            CatalogTableKind::Streams => {
                let processes = self.lake.processes_for(ids.as_ref()).await?;
                let process_ids: Vec<String> =
                    processes.iter().map(|p| p.process_id.clone()).collect();
                self.lake.load_streams(&process_ids).await?;
                let wanted: std::collections::HashSet<&str> =
                    process_ids.iter().map(String::as_str).collect();
                let streams: Vec<StreamMeta> = self
                    .lake
                    .streams()
                    .into_values()
                    .filter(|s| wanted.contains(s.process_id.as_str()))
                    .collect();
                streams_batch(&streams)
            }
            CatalogTableKind::Blocks => {
                let processes = self.lake.processes_for(ids.as_ref()).await?;
                let mut process_ids: Vec<String> =
                    processes.iter().map(|p| p.process_id.clone()).collect();
                process_ids.sort();
                let blocks: Vec<BlockEntry> = self
                    .lake
                    .blocks_of(&process_ids)
                    .await?
                    .iter()
                    .flat_map(|b| b.iter().cloned())
                    .collect();
                blocks_batch(&blocks)
            }
            CatalogTableKind::Problems => problems_batch(&self.lake.problems()),
            CatalogTableKind::Properties => {
                let processes = self.lake.processes_for(ids.as_ref()).await?;
                let metas: Vec<ProcessMeta> =
                    processes.iter().map(|p| p.as_ref().clone()).collect();
                properties_batch(&metas)
            }
        }
    }
}

#[async_trait]
impl TableProvider for CatalogTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        // Filters only decide what is read; DataFusion still applies them to the rows.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let filters: Vec<&Expr> = filters.iter().collect();
        let batch = self.rows(&filters).await?;
        super::scan_batches(state, self.schema.clone(), vec![batch], projection, limit).await
    }
}
