//! Per span name: calls, total time and self time, folded block by block in bounded memory.
//!
//! Self time is a span's duration minus its direct children's. The SQL way
//! (`session_spans`' definition) joins every span with its children grouped by parent, so it holds
//! a hash table of every parent: 21.7 GB for one session of 1.24 × 10^8 spans. Here the decoder's
//! order does the join: within a stream, rows come in the order spans *close*, and a child closes
//! before its parent, in the same block or an earlier one. So a stream needs, per depth, only the
//! one parent that is open there and the time its children have taken so far: memory is a few
//! words per depth per stream, whatever the session's length. A span whose parent is never seen
//! (after a lost block) keeps its time, exactly as the SQL's `LEFT JOIN` does.

use crate::columns;
use crate::error::EngineError;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use std::collections::HashMap;
use std::sync::Arc;

/// One span name's figures.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SpanTotal {
    pub name: String,
    pub calls: i64,
    pub total_ns: i64,
    pub self_ns: i64,
}

/// The parent open at one depth of a stream and its children's time so far.
#[derive(Clone, Copy, Debug, Default)]
struct OpenParent {
    span_id: u64,
    child_ns: i64,
}

/// Each span's direct children's time, from `thread_spans` rows in the decoder's order (within
/// a stream, in the order spans close, each stream's blocks in order; streams may interleave):
/// per stream and depth, the one parent open there and its children's time so far.
#[derive(Debug, Default)]
pub(crate) struct ChildTimes {
    /// Streams not being read now.
    parked: HashMap<String, Vec<OpenParent>>,
    /// The stream being read, and its parents by depth.
    current: Option<(String, Vec<OpenParent>)>,
}

impl ChildTimes {
    /// The rows that follow are of `stream`.
    pub(crate) fn enter(&mut self, stream: &str) {
        if self.current.as_ref().is_some_and(|(s, _)| s == stream) {
            return;
        }
        if let Some((s, stack)) = self.current.take() {
            self.parked.insert(s, stack);
        }
        let stack = self.parked.remove(stream).unwrap_or_default();
        self.current = Some((stream.to_owned(), stack));
    }

    /// A span of the current stream closes: returns its children's time, and counts its
    /// duration toward its parent's. A parent that is never seen (after a lost block) leaves
    /// its children's time uncounted, as SQL's `LEFT JOIN` on `parent_id` does.
    pub(crate) fn close(
        &mut self,
        span_id: u64,
        depth: usize,
        parent_id: u64,
        duration_ns: i64,
    ) -> i64 {
        let Some((_, stack)) = self.current.as_mut() else {
            return 0;
        };
        let child_ns = match stack.get_mut(depth) {
            Some(open) if open.span_id == span_id => std::mem::take(&mut open.child_ns),
            _ => 0,
        };
        if depth > 0 {
            if stack.len() < depth {
                stack.resize(depth, OpenParent::default());
            }
            let parent = &mut stack[depth - 1];
            if parent.span_id != parent_id {
                // Another parent: the one before was counted, or never came.
                *parent = OpenParent {
                    span_id: parent_id,
                    child_ns: 0,
                };
            }
            parent.child_ns = parent.child_ns.wrapping_add(duration_ns);
        }
        child_ns
    }
}

/// Folds `thread_spans` batches (with at least `stream_id`, `span_id`, `parent_id`, `depth`,
/// `name` and `duration_ns`) into per-name totals. Each stream's batches must come in block
/// order, as every scan of the engine gives them; streams may interleave.
#[derive(Debug, Default)]
pub struct SpanTotalsFolder {
    totals: Vec<SpanTotal>,
    by_name: HashMap<String, usize>,
    children: ChildTimes,
}

impl SpanTotalsFolder {
    pub fn new() -> SpanTotalsFolder {
        SpanTotalsFolder::default()
    }

    fn slot(&mut self, name: &str) -> usize {
        if let Some(&slot) = self.by_name.get(name) {
            return slot;
        }
        self.totals.push(SpanTotal {
            name: name.to_owned(),
            ..Default::default()
        });
        self.by_name.insert(name.to_owned(), self.totals.len() - 1);
        self.totals.len() - 1
    }

    /// Adds one batch's spans.
    pub fn push(&mut self, batch: &RecordBatch) -> Result<(), EngineError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let stream = columns::string_dictionary(batch, "stream_id")?;
        let name = columns::string_dictionary(batch, "name")?;
        let span_ids = columns::u64_values(batch, "span_id")?;
        let parent_ids = columns::u64_values(batch, "parent_id")?;
        let depths = columns::u32_values(batch, "depth")?;
        let durations = columns::i64_values(batch, "duration_ns")?;
        let stream_values = stream.values().as_string::<i32>();
        let name_values = name.values().as_string::<i32>();
        // Each name key's slot, found once per batch.
        let mut slots: Vec<Option<usize>> = vec![None; name_values.len()];
        let (stream_keys, name_keys) = (stream.keys().values(), name.keys().values());
        let mut entered = None;
        for row in 0..batch.num_rows() {
            if entered != Some(stream_keys[row]) {
                entered = Some(stream_keys[row]);
                self.children
                    .enter(stream_values.value(stream_keys[row] as usize));
            }
            let name_key = name_keys[row] as usize;
            let slot = match slots.get(name_key).copied().flatten() {
                Some(slot) => slot,
                None => {
                    let slot = self.slot(name_values.value(name_key));
                    if let Some(s) = slots.get_mut(name_key) {
                        *s = Some(slot);
                    }
                    slot
                }
            };
            let duration = durations[row];
            let child_ns = self.children.close(
                span_ids[row],
                depths[row] as usize,
                parent_ids[row],
                duration,
            );
            let total = &mut self.totals[slot];
            total.calls += 1;
            total.total_ns = total.total_ns.wrapping_add(duration);
            total.self_ns = total.self_ns.wrapping_add(duration.wrapping_sub(child_ns));
        }
        Ok(())
    }

    /// The totals, by name.
    pub fn finish(self) -> Vec<SpanTotal> {
        let mut totals = self.totals;
        totals.sort_by(|a, b| a.name.cmp(&b.name));
        totals
    }
}

/// The schema of `session_spans`' own columns.
pub fn span_totals_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("name", DataType::Utf8, true),
        Field::new("calls", DataType::Int64, false),
        Field::new("total_ns", DataType::Int64, true),
        Field::new("self_ns", DataType::Int64, true),
    ]))
}

/// `totals` as one batch of `schema`: name, calls, total_ns and self_ns, each cast to the type
/// `schema` gives it (a summary's schema comes from its SQL's plan: DataFusion's `VARCHAR` is
/// `Utf8View`).
pub fn span_totals_batch(
    totals: &[SpanTotal],
    schema: &SchemaRef,
) -> Result<RecordBatch, EngineError> {
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            totals.iter().map(|t| t.name.as_str()),
        )),
        Arc::new(Int64Array::from_iter_values(totals.iter().map(|t| t.calls))),
        Arc::new(Int64Array::from_iter_values(
            totals.iter().map(|t| t.total_ns),
        )),
        Arc::new(Int64Array::from_iter_values(
            totals.iter().map(|t| t.self_ns),
        )),
    ];
    let columns = columns
        .into_iter()
        .zip(schema.fields())
        .map(|(column, field)| {
            datafusion::arrow::compute::cast(&column, field.data_type())
                .map_err(|e| EngineError::Query(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(schema.clone(), columns).map_err(|e| EngineError::Query(e.to_string()))
}

impl crate::Engine {
    /// Calls, total and self time per span name of `process_ids` (all if empty), folded block
    /// by block: memory holds the names and, per stream, one open parent per depth (plus the
    /// batches in flight), whatever the sessions' length. Equals `session_spans`' SQL.
    pub async fn span_totals(
        &self,
        process_ids: &[String],
        progress: &crate::tables::Progress,
    ) -> Result<Vec<SpanTotal>, EngineError> {
        let scan = self
            .span_blocks(&crate::tables::Pruning::of_processes(process_ids))
            .await?
            .with_columns(&[
                "stream_id",
                "span_id",
                "parent_id",
                "depth",
                "name",
                "duration_ns",
            ])?
            .caching(crate::tables::Caching::None);
        let folder =
            crate::engine::fold_scan(scan, progress, SpanTotalsFolder::new(), |folder, batch| {
                folder.push(batch)
            })
            .await?;
        Ok(folder.finish())
    }
}
