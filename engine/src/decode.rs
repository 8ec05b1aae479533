//! Blocks → Arrow record batches, through the instrument's `format` module (the one owner of
//! the block format). Each block decodes on its own: CPU blocks carry the spans open at their
//! start, so spans that began in an earlier block get their true begin and depth here.

use crate::error::EngineError;
use crate::lake::BlockEntry;
use datafusion::arrow::array::{
    ArrayBuilder, ArrayRef, BooleanArray, DictionaryArray, Float64Builder, Int32Array, Int64Array,
    Int64Builder, StringArray, StringBuilder, StringDictionaryBuilder, TimestampNanosecondArray,
    TimestampNanosecondBuilder, UInt32Array, UInt32Builder, UInt64Array,
};
use datafusion::arrow::buffer::{BooleanBuffer, ScalarBuffer};
use datafusion::arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use frameline_instrument::format::{Block, BlockView, CpuEvent, Dep, MetricValue, format_message};
use frameline_instrument::lake::ProcessMeta;
use frameline_instrument::time::TickConverter;
use std::sync::{Arc, OnceLock};

fn dict() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

pub fn time_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
}

/// A table schema: the process/stream/thread columns, then `rest`.
fn event_schema(rest: impl IntoIterator<Item = Field>) -> SchemaRef {
    let mut fields = vec![
        Field::new("process_id", dict(), false),
        Field::new("stream_id", dict(), false),
        Field::new("thread_name", dict(), false),
    ];
    fields.extend(rest);
    Arc::new(Schema::new(fields))
}

pub fn log_entries_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            event_schema([
                Field::new("time", time_type(), false),
                Field::new("level", dict(), false),
                Field::new("level_num", DataType::UInt32, false),
                Field::new("target", dict(), false),
                Field::new("message", DataType::Utf8, false),
                Field::new("file", dict(), false),
                Field::new("line", DataType::UInt32, false),
            ])
        })
        .clone()
}

pub fn measures_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            event_schema([
                Field::new("time", time_type(), false),
                Field::new("name", dict(), false),
                Field::new("unit", dict(), false),
                Field::new("value", DataType::Float64, false),
                Field::new("target", dict(), false),
            ])
        })
        .clone()
}

pub fn frames_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            event_schema([
                Field::new("name", dict(), false),
                Field::new("begin_time", time_type(), false),
                Field::new("end_time", time_type(), false),
                Field::new("duration_ns", DataType::Int64, false),
            ])
        })
        .clone()
}

pub fn thread_spans_schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            event_schema([
                Field::new("span_id", DataType::UInt64, false),
                Field::new("parent_id", DataType::UInt64, false),
                Field::new("depth", DataType::UInt32, false),
                Field::new("name", dict(), false),
                Field::new("target", dict(), false),
                Field::new("file", dict(), false),
                Field::new("line", DataType::UInt32, false),
                Field::new("begin_time", time_type(), false),
                Field::new("end_time", time_type(), false),
                Field::new("duration_ns", DataType::Int64, false),
                Field::new("unclosed", DataType::Boolean, false),
            ])
        })
        .clone()
}

/// What a block needs to become rows: its process (for time) and thread.
pub struct BlockContext<'a> {
    pub entry: &'a BlockEntry,
    pub process: Arc<ProcessMeta>,
    pub thread_name: String,
    /// The stream's last block: spans still open at its end were never closed.
    pub last_of_stream: bool,
    pub ticks: TickConverter,
}

impl BlockContext<'_> {
    fn to_ns(&self, ticks: u64) -> i64 {
        self.ticks.to_unix_ns(ticks)
    }

    fn constant(&self, value: &str, keys: &ScalarBuffer<i32>) -> ArrayRef {
        let keys = Int32Array::new(keys.clone(), None);
        let values = Arc::new(StringArray::from(vec![value]));
        // Keys are all 0 and there is one value: always valid.
        Arc::new(
            DictionaryArray::<Int32Type>::try_new(keys, values).unwrap_or_else(|_| {
                DictionaryArray::<Int32Type>::from_iter(std::iter::empty::<&str>())
            }),
        )
    }

    /// The process, stream and thread columns: one value each, sharing one buffer of zero keys.
    fn id_columns(&self, rows: usize) -> Vec<ArrayRef> {
        let zeros = ScalarBuffer::from(vec![0i32; rows]);
        vec![
            self.constant(&self.entry.info.process_id, &zeros),
            self.constant(&self.entry.info.stream_id, &zeros),
            self.constant(&self.thread_name, &zeros),
        ]
    }

    fn corrupt(&self, detail: impl std::fmt::Display) -> EngineError {
        EngineError::Corrupt {
            key: self.entry.key.clone(),
            detail: detail.to_string(),
        }
    }
}

fn batch(
    schema: SchemaRef,
    columns: Vec<ArrayRef>,
    ctx: &BlockContext<'_>,
) -> Result<RecordBatch, EngineError> {
    RecordBatch::try_new(schema, columns).map_err(|e| ctx.corrupt(e))
}

/// A dictionary column whose keys are dependency indices of the block and whose values are one
/// string per dependency: no hashing per row.
fn dep_dictionary(keys: impl Into<ScalarBuffer<i32>>, values: Vec<&str>) -> ArrayRef {
    let keys = Int32Array::new(keys.into(), None);
    let values = Arc::new(StringArray::from(values));
    match DictionaryArray::<Int32Type>::try_new(keys, values) {
        Ok(array) => Arc::new(array),
        // Keys come from validated dependency indices: always in range.
        Err(_) => Arc::new(DictionaryArray::<Int32Type>::from_iter(std::iter::empty::<
            &str,
        >())),
    }
}

/// One string per dependency (empty for dependencies of another kind).
fn dep_strings<'a>(
    view: &BlockView<'a>,
    pick: impl Fn(&Dep<'a>) -> Option<&'a str>,
) -> Vec<&'a str> {
    view.deps.iter().map(|d| pick(d).unwrap_or("")).collect()
}

pub fn decode_log_block(bytes: &[u8], ctx: &BlockContext<'_>) -> Result<RecordBatch, EngineError> {
    let block = Block::parse(bytes).map_err(|e| ctx.corrupt(e))?;
    let view = block.view().map_err(|e| ctx.corrupt(e))?;
    let rows = block.header.event_count as usize;
    let mut time = TimestampNanosecondBuilder::with_capacity(rows).with_timezone("UTC");
    let mut keys = Vec::with_capacity(rows);
    let mut level_num = UInt32Builder::with_capacity(rows);
    let mut message = StringBuilder::with_capacity(rows, rows * 48);
    let mut line = UInt32Builder::with_capacity(rows);
    for event in view.log_events().map_err(|e| ctx.corrupt(e))? {
        let event = event.map_err(|e| ctx.corrupt(e))?;
        let dep = view
            .log_dep(event.dep)
            .ok_or_else(|| ctx.corrupt("log entry without descriptor"))?;
        time.append_value(ctx.to_ns(event.ticks));
        keys.push(event.dep as i32);
        level_num.append_value(dep.level as u32);
        message.append_value(format_message(dep.template, &event.args));
        line.append_value(dep.line);
    }
    let n = time.len();
    let keys = ScalarBuffer::<i32>::from(keys);
    let level = dep_strings(&view, |d| match d {
        Dep::Log(l) => Some(l.level.as_str()),
        _ => None,
    });
    let target = dep_strings(&view, |d| match d {
        Dep::Log(l) => Some(l.target),
        _ => None,
    });
    let file = dep_strings(&view, |d| match d {
        Dep::Log(l) => Some(l.file),
        _ => None,
    });
    let mut columns = ctx.id_columns(n);
    columns.extend([
        Arc::new(time.finish()) as ArrayRef,
        dep_dictionary(keys.clone(), level),
        Arc::new(level_num.finish()),
        dep_dictionary(keys.clone(), target),
        Arc::new(message.finish()),
        dep_dictionary(keys, file),
        Arc::new(line.finish()),
    ]);
    batch(log_entries_schema(), columns, ctx)
}

pub fn decode_measures_block(
    bytes: &[u8],
    ctx: &BlockContext<'_>,
) -> Result<RecordBatch, EngineError> {
    let block = Block::parse(bytes).map_err(|e| ctx.corrupt(e))?;
    let view = block.view().map_err(|e| ctx.corrupt(e))?;
    let rows = block.header.event_count as usize;
    let mut time = TimestampNanosecondBuilder::with_capacity(rows).with_timezone("UTC");
    let mut keys = Vec::with_capacity(rows);
    let mut value = Float64Builder::with_capacity(rows);
    for event in view.metric_events().map_err(|e| ctx.corrupt(e))? {
        let event = event.map_err(|e| ctx.corrupt(e))?;
        let v = match event.value {
            MetricValue::Integer(v) => v as f64,
            MetricValue::Float(v) => v,
            MetricValue::Frame => continue,
        };
        time.append_value(ctx.to_ns(event.ticks));
        keys.push(event.dep as i32);
        value.append_value(v);
    }
    let n = time.len();
    let keys = ScalarBuffer::<i32>::from(keys);
    let mut columns = ctx.id_columns(n);
    columns.extend([
        Arc::new(time.finish()) as ArrayRef,
        dep_dictionary(
            keys.clone(),
            dep_strings(&view, |d| match d {
                Dep::Metric(m) => Some(m.name),
                _ => None,
            }),
        ),
        dep_dictionary(
            keys.clone(),
            dep_strings(&view, |d| match d {
                Dep::Metric(m) => Some(m.unit),
                _ => None,
            }),
        ),
        Arc::new(value.finish()),
        dep_dictionary(
            keys,
            dep_strings(&view, |d| match d {
                Dep::Metric(m) => Some(m.target),
                _ => None,
            }),
        ),
    ]);
    batch(measures_schema(), columns, ctx)
}

/// Frame markers of a metrics block: `(name, unix_ns)` in order.
pub fn frame_markers(
    bytes: &[u8],
    ctx: &BlockContext<'_>,
) -> Result<Vec<(String, i64)>, EngineError> {
    let block = Block::parse(bytes).map_err(|e| ctx.corrupt(e))?;
    let view = block.view().map_err(|e| ctx.corrupt(e))?;
    let mut markers = Vec::new();
    for event in view.metric_events().map_err(|e| ctx.corrupt(e))? {
        let event = event.map_err(|e| ctx.corrupt(e))?;
        if event.value == MetricValue::Frame {
            let dep = view
                .metric_dep(event.dep)
                .ok_or_else(|| ctx.corrupt("frame marker without descriptor"))?;
            markers.push((dep.name.to_owned(), ctx.to_ns(event.ticks)));
        }
    }
    Ok(markers)
}

/// Frames from consecutive markers of the same name (all markers of one stream, in order).
pub fn frames_batch(
    markers: &[(String, i64)],
    ctx: &BlockContext<'_>,
) -> Result<RecordBatch, EngineError> {
    let mut name = StringDictionaryBuilder::<Int32Type>::new();
    let mut begin = TimestampNanosecondBuilder::new().with_timezone("UTC");
    let mut end = TimestampNanosecondBuilder::new().with_timezone("UTC");
    let mut duration = Int64Builder::new();
    let mut last: std::collections::HashMap<&str, i64> = std::collections::HashMap::new();
    for (marker_name, ns) in markers {
        if let Some(previous) = last.insert(marker_name.as_str(), *ns) {
            name.append_value(marker_name);
            begin.append_value(previous);
            end.append_value(*ns);
            duration.append_value(ns - previous);
        }
    }
    let n = duration.len();
    let mut columns = ctx.id_columns(n);
    columns.extend([
        Arc::new(name.finish()) as ArrayRef,
        Arc::new(begin.finish()),
        Arc::new(end.finish()),
        Arc::new(duration.finish()),
    ]);
    batch(frames_schema(), columns, ctx)
}

/// Span id: unique within a thread (two spans at one depth cannot begin at the same tick).
fn span_id(begin_ticks: u64, depth: u32) -> u64 {
    (begin_ticks << 6) | u64::from(depth.min(63))
}

/// The synchronous spans that end in this block (and, in a stream's last block, those never
/// closed). Returns the batch and the number of ends that had no begin (after lost blocks).
///
/// The hot loop only pushes to plain vectors (one span = a handful of stores); the columns are
/// derived from them afterwards in tight loops and handed to Arrow without copies.
pub fn decode_spans_block(
    bytes: &[u8],
    ctx: &BlockContext<'_>,
) -> Result<(RecordBatch, u64), EngineError> {
    let block = Block::parse(bytes).map_err(|e| ctx.corrupt(e))?;
    let view = block.view().map_err(|e| ctx.corrupt(e))?;
    let open = view.open_spans().map_err(|e| ctx.corrupt(e))?;
    let rows = block.header.event_count as usize / 2 + open.len();

    let mut spans = SpanColumns::with_capacity(rows);
    // The open stack: (dependency, begin ticks) of each open span, outermost first.
    let mut stack: Vec<(u32, u64)> = open;
    let mut orphan_ends = 0u64;
    view.cpu_events()
        .and_then(|events| {
            events.for_each_event(|event| match event {
                CpuEvent::Begin { ticks, dep } => stack.push((dep, ticks)),
                CpuEvent::End { ticks } => match stack.pop() {
                    Some((dep, begin)) => spans.push(&stack, dep, begin, ticks),
                    None => orphan_ends += 1,
                },
                CpuEvent::AsyncBegin { .. } | CpuEvent::AsyncEnd { .. } => {}
            })
        })
        .map_err(|e| ctx.corrupt(e))?;
    let closed = spans.len();
    if ctx.last_of_stream {
        let end_ticks = block.header.end_ticks;
        while let Some((dep, begin)) = stack.pop() {
            spans.push(&stack, dep, begin, end_ticks);
        }
    }
    Ok((spans.finish(&view, closed, ctx)?, orphan_ends))
}

/// The raw columns of decoded spans, before conversion to Arrow.
struct SpanColumns {
    begin_ticks: Vec<u64>,
    end_ticks: Vec<u64>,
    /// Begin ticks of the parent (unused at depth 0).
    parent_begin_ticks: Vec<u64>,
    depths: Vec<u32>,
    deps: Vec<i32>,
}

impl SpanColumns {
    fn with_capacity(rows: usize) -> Self {
        Self {
            begin_ticks: Vec::with_capacity(rows),
            end_ticks: Vec::with_capacity(rows),
            parent_begin_ticks: Vec::with_capacity(rows),
            depths: Vec::with_capacity(rows),
            deps: Vec::with_capacity(rows),
        }
    }

    fn len(&self) -> usize {
        self.deps.len()
    }

    /// A span that just closed, `stack` holding its open ancestors.
    #[inline(always)]
    fn push(&mut self, stack: &[(u32, u64)], dep: u32, begin_ticks: u64, end_ticks: u64) {
        self.begin_ticks.push(begin_ticks);
        self.end_ticks.push(end_ticks);
        self.parent_begin_ticks
            .push(stack.last().map_or(0, |&(_, parent_begin)| parent_begin));
        self.depths.push(stack.len() as u32);
        self.deps.push(dep as i32);
    }

    /// Rows `closed..` were never closed.
    fn finish(
        self,
        view: &BlockView<'_>,
        closed: usize,
        ctx: &BlockContext<'_>,
    ) -> Result<RecordBatch, EngineError> {
        let n = self.len();
        let span_ids: Vec<u64> = self
            .begin_ticks
            .iter()
            .zip(&self.depths)
            .map(|(&begin, &depth)| span_id(begin, depth))
            .collect();
        let parent_ids: Vec<u64> = self
            .parent_begin_ticks
            .iter()
            .zip(&self.depths)
            .map(|(&parent_begin, &depth)| {
                if depth == 0 {
                    0
                } else {
                    span_id(parent_begin, depth - 1)
                }
            })
            .collect();
        let begin_ns: Vec<i64> = self.begin_ticks.iter().map(|&t| ctx.to_ns(t)).collect();
        let end_ns: Vec<i64> = self.end_ticks.iter().map(|&t| ctx.to_ns(t)).collect();
        let duration_ns: Vec<i64> = begin_ns
            .iter()
            .zip(&end_ns)
            .map(|(&begin, &end)| end - begin)
            .collect();
        let dep_lines: Vec<u32> = view
            .deps
            .iter()
            .map(|d| match d {
                Dep::Span(s) => s.line,
                _ => 0,
            })
            .collect();
        let lines: Vec<u32> = self
            .deps
            .iter()
            .map(|&dep| dep_lines.get(dep as usize).copied().unwrap_or(0))
            .collect();
        let unclosed = if closed == n {
            BooleanBuffer::new_unset(n)
        } else {
            BooleanBuffer::collect_bool(n, |i| i >= closed)
        };
        // One key buffer shared by the name, target and file dictionaries.
        let keys = ScalarBuffer::from(self.deps);
        let mut columns = ctx.id_columns(n);
        columns.extend([
            Arc::new(UInt64Array::new(span_ids.into(), None)) as ArrayRef,
            Arc::new(UInt64Array::new(parent_ids.into(), None)),
            Arc::new(UInt32Array::new(self.depths.into(), None)),
            dep_dictionary(
                keys.clone(),
                dep_strings(view, |d| match d {
                    Dep::Span(s) => Some(s.name),
                    _ => None,
                }),
            ),
            dep_dictionary(
                keys.clone(),
                dep_strings(view, |d| match d {
                    Dep::Span(s) => Some(s.target),
                    _ => None,
                }),
            ),
            dep_dictionary(
                keys,
                dep_strings(view, |d| match d {
                    Dep::Span(s) => Some(s.file),
                    _ => None,
                }),
            ),
            Arc::new(UInt32Array::new(lines.into(), None)),
            Arc::new(TimestampNanosecondArray::new(begin_ns.into(), None).with_timezone("UTC")),
            Arc::new(TimestampNanosecondArray::new(end_ns.into(), None).with_timezone("UTC")),
            Arc::new(Int64Array::new(duration_ns.into(), None)),
            Arc::new(BooleanArray::new(unclosed, None)),
        ]);
        batch(thread_spans_schema(), columns, ctx)
    }
}

/// The context of a block of `lake`: its process and thread, from the catalog.
pub fn context_for<'a>(
    lake: &'a crate::lake::Lake,
    entry: &'a BlockEntry,
    last_of_stream: bool,
) -> Result<BlockContext<'a>, EngineError> {
    let process = lake
        .process(&entry.info.process_id)
        .ok_or_else(|| EngineError::Corrupt {
            key: entry.key.clone(),
            detail: format!(
                "its process {} has no metadata object",
                entry.info.process_id
            ),
        })?;
    let thread_name = lake
        .thread_name(&entry.info.stream_id)
        .unwrap_or_else(|| "?".to_owned());
    let ticks = TickConverter::new(
        process.start_ticks,
        process.start_unix_ns,
        process.tsc_frequency,
    );
    Ok(BlockContext {
        entry,
        process,
        thread_name,
        last_of_stream,
        ticks,
    })
}

/// Decodes one CPU block of `lake` into span rows (the `thread_spans` work for one block).
pub fn decode_cpu_entry(
    lake: &crate::lake::Lake,
    entry: &BlockEntry,
    last_of_stream: bool,
    bytes: &[u8],
) -> Result<RecordBatch, EngineError> {
    Ok(decode_spans_block(bytes, &context_for(lake, entry, last_of_stream)?)?.0)
}
