//! Evaluating summaries for the sessions no part covers yet, and writing their parts.
//!
//! Crash-safe and safe with two refreshers at once for the same reasons as compaction: a part is
//! named by the hash of what it covers and written whole; readers take each session's rows from
//! the first part that covers it; merging writes the merged part before deleting what it merged.

use super::SummaryView;
use super::table::{SESSIONS_METADATA_KEY, SummaryPart};
use crate::catalog::UNFINISHED_HORIZON_NS;
use crate::catalog::rows;
use crate::engine::Engine;
use crate::error::EngineError;
use crate::requests::RequestCounts;
use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray, TimestampNanosecondArray};
use datafusion::arrow::datatypes::SchemaRef;
use frameline_instrument::lake::{self as layout, ProcessMeta};
use futures::StreamExt;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

/// Parts of one summary and start date beyond this are merged into one: a reader of a date
/// then makes one GET per summary.
const MAX_PARTS_PER_DATE: usize = 1;
/// Sessions per written chunk.
const SESSIONS_PER_PART: usize = 512;
/// Sessions evaluated at once.
const CONCURRENT_SESSIONS: usize = 4;

/// One summary's rows for one start date, and the sessions they cover.
type DateRows = (Vec<RecordBatch>, Vec<String>);
/// A session and, per summary, its rows (`None`: already covered; an error: not computed).
type SessionResults = (
    Arc<ProcessMeta>,
    Vec<Option<Result<Vec<RecordBatch>, String>>>,
);

/// What one refresh did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SummaryReport {
    pub sessions_summarized: usize,
    pub parts_written: usize,
    pub parts_merged: usize,
    /// Summaries of a session that could not be computed ("summary for session: why"), such
    /// as a query over its memory limit: not written, so the next refresh tries them again;
    /// the session's other summaries are written.
    pub failed: Vec<String>,
    pub requests: RequestCounts,
}

/// A part's bytes: the rows, and the sessions covered in the Parquet metadata.
fn part_bytes(batch: &RecordBatch, sessions: &[String]) -> Result<Vec<u8>, String> {
    let sessions_json = serde_json::to_string(sessions).map_err(|e| e.to_string())?;
    let props = parquet::file::properties::WriterProperties::builder()
        .set_key_value_metadata(Some(vec![parquet::file::metadata::KeyValue::new(
            SESSIONS_METADATA_KEY.to_owned(),
            sessions_json,
        )]))
        .build();
    let mut bytes = Vec::new();
    let mut writer = parquet::arrow::ArrowWriter::try_new(&mut bytes, batch.schema(), Some(props))
        .map_err(|e| e.to_string())?;
    writer.write(batch).map_err(|e| e.to_string())?;
    writer.close().map_err(|e| e.to_string())?;
    Ok(bytes)
}

/// `batch`'s rows with the session's `process_id` and `start_time` in front, as `schema`.
fn with_session(
    schema: &SchemaRef,
    batch: &RecordBatch,
    process: &ProcessMeta,
) -> Result<RecordBatch, EngineError> {
    let rows = batch.num_rows();
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![process.process_id.as_str(); rows])),
        Arc::new(
            TimestampNanosecondArray::from(vec![process.start_unix_ns; rows]).with_timezone("UTC"),
        ),
    ];
    // A query that returns the session's columns itself: ours replace them.
    let batch_schema = batch.schema();
    columns.extend(
        batch
            .columns()
            .iter()
            .zip(batch_schema.fields())
            .filter(|(_, f)| !super::materialized::SESSION_COLUMNS.contains(&f.name().as_str()))
            .map(|(c, _)| c.clone()),
    );
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| EngineError::Query(e.to_string()))
}

fn concat(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<RecordBatch, EngineError> {
    datafusion::arrow::compute::concat_batches(schema, batches)
        .map_err(|e| EngineError::Query(e.to_string()))
}

impl Engine {
    /// Evaluates every summary for the finished sessions (and those unfinished for longer than
    /// the unfinished horizon) that no part covers yet, and writes their parts; merges a
    /// summary's parts of one start date once there are more than a few. Idempotent: with
    /// nothing new it reads the parts and writes nothing.
    pub async fn refresh_summaries(&self) -> Result<SummaryReport, EngineError> {
        let lake = self.lake_arc();
        let before = lake.requests();
        let index = self.summary_index();
        index.read(&lake).await?;
        let now = crate::generate::now_unix_ns();
        let sessions: Vec<Arc<ProcessMeta>> = lake
            .processes_for(None)
            .await?
            .into_iter()
            .filter(|p| {
                p.end_unix_ns.is_some()
                    || p.start_unix_ns.saturating_add(UNFINISHED_HORIZON_NS) < now
            })
            .collect();
        let views = self.summary_views();
        // Which sessions each summary covers.
        let mut covered: Vec<HashSet<String>> = Vec::new();
        for view in &views {
            let keys: Vec<String> = index
                .keys(&view.name, None, None)
                .into_iter()
                .map(|(k, _)| k)
                .collect();
            let parts = index.load(&lake, &keys).await;
            covered.push(
                parts
                    .iter()
                    .flat_map(|(_, p)| p.sessions.iter().cloned())
                    .collect(),
            );
        }
        let mut todo: Vec<Arc<ProcessMeta>> = sessions
            .into_iter()
            .filter(|p| covered.iter().any(|c| !c.contains(&p.process_id)))
            .collect();
        // By start: a chunk's sessions share few start dates, so few parts.
        todo.sort_by(|a, b| {
            (a.start_unix_ns, &a.process_id).cmp(&(b.start_unix_ns, &b.process_id))
        });
        let mut report = SummaryReport::default();
        // A chunk's parts are written before the next chunk starts: a refresh stopped midway
        // keeps what it finished, and memory holds one chunk's rows.
        for chunk in todo.chunks(SESSIONS_PER_PART) {
            self.summarize_chunk(chunk, &views, &covered, &mut report)
                .await?;
        }
        // Dates left with several parts (several refreshes, or one stopped before merging).
        for view in &views {
            let schema = self.summary_schema(&view.name)?;
            let dates: std::collections::BTreeSet<String> = index
                .keys(&view.name, None, None)
                .into_iter()
                .map(|(_, date)| date)
                .collect();
            for date in dates {
                report.parts_merged += self.merge_parts(view, &date, &schema).await?;
            }
        }
        report.requests = lake.requests().since(&before);
        Ok(report)
    }

    /// Evaluates the summaries of `chunk` and writes one part per summary and start date.
    async fn summarize_chunk(
        &self,
        chunk: &[Arc<ProcessMeta>],
        views: &[SummaryView],
        covered: &[HashSet<String>],
        report: &mut SummaryReport,
    ) -> Result<(), EngineError> {
        let lake = self.lake_arc();
        let index = self.summary_index();
        // Rows per summary and start date.
        let mut rows_by: Vec<BTreeMap<String, DateRows>> = vec![BTreeMap::new(); views.len()];
        let results: Vec<Result<SessionResults, EngineError>> =
            futures::stream::iter(chunk.iter().cloned())
                .map(|process| async move {
                    let ctx = self.session_context(&process.process_id)?;
                    let mut out = Vec::new();
                    for (view, covered) in views.iter().zip(covered) {
                        if covered.contains(&process.process_id) {
                            out.push(None);
                            continue;
                        }
                        let batches = async {
                            if super::is_folded_span_totals(view) {
                                let totals = self
                                    .span_totals(
                                        std::slice::from_ref(&process.process_id),
                                        &crate::tables::Progress::default(),
                                    )
                                    .await?;
                                // The summary's own columns: its schema past the session's two.
                                let schema = self.summary_schema(&view.name)?;
                                let own = Arc::new(datafusion::arrow::datatypes::Schema::new(
                                    schema.fields().iter().skip(2).cloned().collect::<Vec<_>>(),
                                ));
                                Ok(vec![crate::span_totals::span_totals_batch(&totals, &own)?])
                            } else {
                                Ok::<_, EngineError>(ctx.sql(&view.sql).await?.collect().await?)
                            }
                        }
                        .await;
                        match batches {
                            Ok(batches) => out.push(Some(Ok(batches))),
                            // The query's own failure (e.g. over its memory limit) is this
                            // summary's of this session; a store's ends the refresh.
                            Err(
                                e @ (EngineError::Query(_)
                                | EngineError::Column { .. }
                                | EngineError::Corrupt { .. }),
                            ) => out.push(Some(Err(format!(
                                "{} for session {}: {e}",
                                view.name, process.process_id
                            )))),
                            Err(e) => return Err(e),
                        }
                    }
                    Ok((process, out))
                })
                .buffer_unordered(CONCURRENT_SESSIONS)
                .collect()
                .await;
        for result in results {
            let (process, per_view) = result?;
            report.sessions_summarized += 1;
            let date = layout::date_of_unix_ns(process.start_unix_ns);
            for (i, batches) in per_view.into_iter().enumerate() {
                let batches = match batches {
                    None => continue,
                    Some(Ok(batches)) => batches,
                    Some(Err(why)) => {
                        report.failed.push(why);
                        continue;
                    }
                };
                let schema = self.summary_schema(&views[i].name)?;
                let slot = rows_by[i].entry(date.clone()).or_default();
                for batch in &batches {
                    slot.0.push(with_session(&schema, batch, &process)?);
                }
                slot.1.push(process.process_id.clone());
            }
        }
        for (view, by_date) in views.iter().zip(rows_by) {
            let schema = self.summary_schema(&view.name)?;
            for (date, (batches, mut sessions)) in by_date {
                sessions.sort();
                let batch = concat(&schema, &batches)?;
                let key = layout::summary_part_key(
                    &view.name,
                    &date,
                    rows::content_hash(sessions.iter().chain(std::iter::once(&view.sql))),
                );
                let bytes =
                    part_bytes(&batch, &sessions).map_err(|detail| EngineError::Corrupt {
                        key: key.clone(),
                        detail,
                    })?;
                lake.put(&key, bytes).await?;
                index.add(&view.name, key, date.clone());
                report.parts_written += 1;
            }
        }
        Ok(())
    }

    /// Merges the parts of one summary and date into one when there are too many.
    async fn merge_parts(
        &self,
        view: &SummaryView,
        date: &str,
        schema: &SchemaRef,
    ) -> Result<usize, EngineError> {
        let lake = self.lake_arc();
        let index = self.summary_index();
        let keys: Vec<String> = index
            .keys(&view.name, Some(date), Some(date))
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        if keys.len() <= MAX_PARTS_PER_DATE {
            return Ok(0);
        }
        let parts: Vec<(String, Arc<SummaryPart>)> = index.load(&lake, &keys).await;
        let mut sessions: Vec<String> = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        let mut batches = Vec::new();
        for (_, part) in &parts {
            let fresh: HashSet<&str> = part
                .sessions
                .iter()
                .filter(|s| !seen.contains(*s))
                .map(String::as_str)
                .collect();
            for batch in &part.batches {
                let batch = RecordBatch::try_new(schema.clone(), batch.columns().to_vec())
                    .map_err(|e| EngineError::Query(e.to_string()))?;
                let ids = crate::columns::strings(&batch, "process_id")?;
                let mask: datafusion::arrow::array::BooleanArray = ids
                    .iter()
                    .map(|id| Some(fresh.contains(id.as_str())))
                    .collect();
                batches.push(
                    datafusion::arrow::compute::filter_record_batch(&batch, &mask)
                        .map_err(|e| EngineError::Query(e.to_string()))?,
                );
            }
            for s in &part.sessions {
                if seen.insert(s.clone()) {
                    sessions.push(s.clone());
                }
            }
        }
        sessions.sort();
        let batch = concat(schema, &batches)?;
        let key = layout::summary_part_key(
            &view.name,
            date,
            rows::content_hash(sessions.iter().chain(std::iter::once(&view.sql))),
        );
        let bytes = part_bytes(&batch, &sessions).map_err(|detail| EngineError::Corrupt {
            key: key.clone(),
            detail,
        })?;
        lake.put(&key, bytes).await?;
        index.add(&view.name, key.clone(), date.to_owned());
        for (old, _) in &parts {
            if *old != key {
                lake.delete(old).await?;
                index.remove(&view.name, old);
            }
        }
        Ok(parts.len())
    }
}
