//! Reading summaries: which parts the lake holds (one LIST of `summaries/` at open), parts read
//! on first need and kept, and a table per summary whose `start_time` filters choose the dates.

use crate::catalog::rows;
use crate::error::EngineError;
use crate::lake::Lake;
use crate::tables::time_bounds;
use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::Result as DfResult;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown, TableType};
use datafusion::physical_plan::ExecutionPlan;
use frameline_instrument::lake as layout;
use futures::StreamExt;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

/// Parquet metadata key listing the sessions a part covers (a JSON array of process ids).
pub const SESSIONS_METADATA_KEY: &str = "frameline.sessions";

/// One part, read.
#[derive(Debug)]
pub struct SummaryPart {
    pub sessions: Vec<String>,
    pub batches: Vec<RecordBatch>,
}

/// The summary parts a lake holds, by view and key (with their start date).
#[derive(Debug, Default)]
pub struct SummaryIndex {
    parts: Mutex<BTreeMap<String, BTreeMap<String, String>>>,
    loaded: Mutex<HashMap<String, Arc<SummaryPart>>>,
}

impl SummaryIndex {
    fn parts(&self) -> MutexGuard<'_, BTreeMap<String, BTreeMap<String, String>>> {
        self.parts.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn loaded(&self) -> MutexGuard<'_, HashMap<String, Arc<SummaryPart>>> {
        self.loaded.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lists `summaries/` (one LIST per 1000 parts).
    pub async fn read(&self, lake: &Lake) -> Result<(), EngineError> {
        let mut parts: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        for key in lake.list(layout::SUMMARIES_PREFIX).await? {
            if let Some((view, date)) = layout::parse_summary_part_key(&key) {
                let (view, date) = (view.to_owned(), date.to_owned());
                parts.entry(view).or_default().insert(key, date);
            }
        }
        *self.parts() = parts;
        Ok(())
    }

    pub fn add(&self, view: &str, key: String, date: String) {
        self.parts()
            .entry(view.to_owned())
            .or_default()
            .insert(key, date);
    }

    pub fn remove(&self, view: &str, key: &str) {
        if let Some(parts) = self.parts().get_mut(view) {
            parts.remove(key);
        }
        self.loaded().remove(key);
    }

    /// The parts of `view` for start dates in `[from, to]`.
    pub fn keys(&self, view: &str, from: Option<&str>, to: Option<&str>) -> Vec<(String, String)> {
        self.parts()
            .get(view)
            .map(|parts| {
                parts
                    .iter()
                    .filter(|(_, date)| {
                        from.is_none_or(|f| date.as_str() >= f)
                            && to.is_none_or(|t| date.as_str() <= t)
                    })
                    .map(|(k, d)| (k.clone(), d.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Reads these parts (those not read yet), skipping and reporting damaged ones.
    pub async fn load(&self, lake: &Lake, keys: &[String]) -> Vec<(String, Arc<SummaryPart>)> {
        let missing: Vec<String> = {
            let loaded = self.loaded();
            keys.iter()
                .filter(|k| !loaded.contains_key(*k))
                .cloned()
                .collect()
        };
        let fetched: Vec<(String, Result<Option<bytes::Bytes>, EngineError>)> =
            futures::stream::iter(missing)
                .map(|key| async move {
                    let bytes = lake.get(&key).await;
                    (key, bytes)
                })
                .buffer_unordered(16)
                .collect()
                .await;
        for (key, bytes) in fetched {
            let part = match bytes {
                Ok(Some(bytes)) => read_part(bytes),
                // Merged away since the listing: the merged part covers its sessions.
                Ok(None) => continue,
                Err(e) => Err(e.to_string()),
            };
            match part {
                Ok(part) => {
                    self.loaded().insert(key, Arc::new(part));
                }
                Err(detail) => lake.catalog_problem(&key, detail),
            }
        }
        let loaded = self.loaded();
        keys.iter()
            .filter_map(|k| loaded.get(k).map(|p| (k.clone(), p.clone())))
            .collect()
    }
}

fn read_part(bytes: bytes::Bytes) -> Result<SummaryPart, String> {
    if bytes.len() > rows::MAX_PART_BYTES {
        return Err(format!("{} bytes, more than a part's", bytes.len()));
    }
    let sessions = rows::guard_decoder(|| sessions_of_part(bytes.clone()))?;
    Ok(SummaryPart {
        sessions,
        batches: rows::from_parquet(bytes)?,
    })
}

/// The sessions a part covers, from its Parquet metadata.
fn sessions_of_part(bytes: bytes::Bytes) -> Result<Vec<String>, String> {
    let builder = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(|e| e.to_string())?;
    let sessions_json = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|kv| kv.key == SESSIONS_METADATA_KEY))
        .and_then(|kv| kv.value.clone())
        .ok_or_else(|| format!("no {SESSIONS_METADATA_KEY} metadata"))?;
    serde_json::from_str(&sessions_json).map_err(|e| format!("{SESSIONS_METADATA_KEY}: {e}"))
}

/// A summary as a table.
#[derive(Debug)]
pub struct SummaryTable {
    view: String,
    schema: SchemaRef,
    index: Arc<SummaryIndex>,
    lake: Arc<Lake>,
}

impl SummaryTable {
    pub fn new(view: &str, schema: SchemaRef, index: Arc<SummaryIndex>, lake: Arc<Lake>) -> Self {
        Self {
            view: view.to_owned(),
            schema,
            index,
            lake,
        }
    }

    async fn rows(&self, filters: &[&Expr]) -> Result<Vec<RecordBatch>, EngineError> {
        let (low, high) = time_bounds(filters, "start_time");
        let from = low.map(layout::date_of_unix_ns);
        let to = high.map(layout::date_of_unix_ns);
        let keys: Vec<String> = self
            .index
            .keys(&self.view, from.as_deref(), to.as_deref())
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        let mut seen: HashSet<String> = HashSet::new();
        let mut batches = Vec::new();
        for (key, part) in self.index.load(&self.lake, &keys).await {
            // A session in two parts (two refreshes at once, or a merge stopped midway): the
            // first part's rows only.
            let fresh: HashSet<&str> = part
                .sessions
                .iter()
                .filter(|s| !seen.contains(*s))
                .map(String::as_str)
                .collect();
            for batch in &part.batches {
                let batch =
                    match RecordBatch::try_new(self.schema.clone(), batch.columns().to_vec()) {
                        Ok(batch) => batch,
                        Err(e) => {
                            self.lake.catalog_problem(
                                &key,
                                format!("columns differ from the summary's: {e}"),
                            );
                            break;
                        }
                    };
                let kept = keep_sessions(&batch, &fresh)?;
                if kept.num_rows() > 0 {
                    batches.push(kept);
                }
            }
            seen.extend(part.sessions.iter().cloned());
        }
        Ok(batches)
    }
}

/// The rows of `batch` whose `process_id` is in `sessions`.
fn keep_sessions(
    batch: &RecordBatch,
    sessions: &HashSet<&str>,
) -> Result<RecordBatch, EngineError> {
    use datafusion::arrow::array::{BooleanArray, StringArray};
    let ids = crate::columns::column(batch, "process_id")?
        .as_any()
        .downcast_ref::<StringArray>()
        .ok_or_else(|| EngineError::Column {
            column: "process_id".to_owned(),
            detail: "not text".to_owned(),
        })?;
    let mask: BooleanArray = ids
        .iter()
        .map(|id| Some(id.is_some_and(|id| sessions.contains(id))))
        .collect();
    datafusion::arrow::compute::filter_record_batch(batch, &mask)
        .map_err(|e| EngineError::Query(e.to_string()))
}

#[async_trait]
impl TableProvider for SummaryTable {
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
        let batches = self.rows(&filters).await?;
        crate::tables::scan_batches(state, self.schema.clone(), batches, projection, limit).await
    }
}
