//! Blocks → Arrow record batches, through the instrument's `format` module (the one owner of
//! the block format). Each block decodes on its own: CPU blocks carry the spans open at their
//! start, so spans that began in an earlier block get their true begin and depth here.

use crate::error::EngineError;
use crate::lake::BlockEntry;
use datafusion::arrow::array::{
    Array, ArrayBuilder, ArrayRef, BooleanArray, DictionaryArray, Float64Builder, Int32Array,
    Int64Array, StringArray, TimestampNanosecondArray, TimestampNanosecondBuilder, UInt32Array,
    UInt32Builder, UInt64Array,
};
use datafusion::arrow::buffer::{BooleanBuffer, Buffer, OffsetBuffer, ScalarBuffer};
use datafusion::arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use frameline_instrument::format::{
    Block, BlockView, CpuEvent, Dep, HEADER_BYTES, LogArg, MAX_BODY_BYTES, MetricValue,
    format_message,
};
use frameline_instrument::lake::ProcessMeta;
use frameline_instrument::time::TickConverter;
use std::sync::{Arc, OnceLock};

/// Fewest bytes one encoded log entry takes: dependency, time delta and argument count, one
/// varint byte each (FORMAT.md §3.5).
pub const MIN_LOG_EVENT_BYTES: usize = 3;
/// Fewest bytes one encoded metric event takes: dependency and time delta (a frame marker has no
/// value; FORMAT.md §3.6).
pub const MIN_METRIC_EVENT_BYTES: usize = 2;
/// Fewest bytes one encoded cpu event takes: a tag and a time delta, in two columns (§3.4).
pub const MIN_CPU_EVENT_BYTES: usize = 2;

/// A block's decoded Arrow arrays take at most this many bytes per byte of its (decompressed)
/// body, plus [`DECODED_BYTES_ALLOWANCE`] (and its process, stream and thread names once per
/// column): see [`max_decoded_bytes`]. A block that would decode to more is refused as corrupt.
pub const MAX_DECODED_BYTES_PER_BODY_BYTE: usize = 128;
/// Fixed part of the decoded-size bound: Arrow's per-array overhead for a block of a few bytes.
pub const DECODED_BYTES_ALLOWANCE: usize = 64 * 1024;
/// Rendered log messages take at most this many bytes per body byte (plus the allowance): a
/// template is rendered once per row that has arguments, so a long template and many small
/// entries could otherwise multiply a block by the template's length.
pub const MAX_MESSAGE_BYTES_PER_BODY_BYTE: usize = 64;

/// The most bytes the decoded arrays of a block with `body_bytes` of body may take.
pub fn max_decoded_bytes(body_bytes: usize) -> usize {
    body_bytes
        .saturating_mul(MAX_DECODED_BYTES_PER_BODY_BYTE)
        .saturating_add(DECODED_BYTES_ALLOWANCE)
}

/// Largest object a valid block can be: the header and a payload no larger than the biggest
/// body a decoder accepts (a writer keeps LZ4 only when it is shorter than the body).
pub const MAX_BLOCK_OBJECT_BYTES: u64 = (HEADER_BYTES + MAX_BODY_BYTES) as u64;

/// Whether an object of `size_bytes` can be a valid block: anything else is refused before it
/// is fetched (the catalog knows every object's size from the listing).
pub fn block_size_ok(size_bytes: u64) -> bool {
    (HEADER_BYTES as u64..=MAX_BLOCK_OBJECT_BYTES).contains(&size_bytes)
}

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
                Field::new("message", dict(), false),
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

    /// Bytes of the process, stream and thread names (each column holds its name once).
    fn id_bytes(&self) -> usize {
        self.entry.info.process_id.len() + self.entry.info.stream_id.len() + self.thread_name.len()
    }

    /// The event count of `view`'s header, refused if its events could not hold that many
    /// events of at least `min_event_bytes` each: checked before anything is sized from it.
    fn event_count(
        &self,
        view: &BlockView<'_>,
        min_event_bytes: usize,
    ) -> Result<usize, EngineError> {
        let count = view.header.event_count as usize;
        let events_bytes = view.events_bytes();
        if count > events_bytes / min_event_bytes {
            return Err(self.corrupt(format!(
                "its header counts {count} events, but its {events_bytes} bytes of events hold at \
                 most {} (at least {min_event_bytes} bytes each)",
                events_bytes / min_event_bytes
            )));
        }
        Ok(count)
    }

    /// `batch` if its arrays are within [`max_decoded_bytes`] of the block's body.
    fn bounded(&self, batch: RecordBatch, body_bytes: usize) -> Result<RecordBatch, EngineError> {
        let decoded_bytes = decoded_bytes(&batch);
        let limit = max_decoded_bytes(body_bytes).saturating_add(self.id_bytes());
        if decoded_bytes > limit {
            return Err(self.corrupt(format!(
                "it decodes to {decoded_bytes} bytes, more than the {limit} its {body_bytes} \
                 bytes of body allow"
            )));
        }
        Ok(batch)
    }

    fn corrupt(&self, detail: impl std::fmt::Display) -> EngineError {
        EngineError::Corrupt {
            key: self.entry.key.clone(),
            detail: detail.to_string(),
        }
    }
}

/// Memory held by a batch's arrays (a buffer shared by several columns counts once per column:
/// an upper bound).
pub fn decoded_bytes(batch: &RecordBatch) -> usize {
    batch
        .columns()
        .iter()
        .map(|column| column.get_array_memory_size())
        .sum()
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
    let rows = ctx.event_count(&view, MIN_LOG_EVENT_BYTES)?;
    let mut time = TimestampNanosecondBuilder::with_capacity(rows).with_timezone("UTC");
    let mut keys = Vec::with_capacity(rows);
    let mut level_num = UInt32Builder::with_capacity(rows);
    let mut messages = Messages::new(view.deps.len(), rows, block.body_bytes());
    let mut line = UInt32Builder::with_capacity(rows);
    for event in view.log_events().map_err(|e| ctx.corrupt(e))? {
        let event = event.map_err(|e| ctx.corrupt(e))?;
        let dep = view
            .log_dep(event.dep)
            .ok_or_else(|| ctx.corrupt("log entry without descriptor"))?;
        time.append_value(ctx.to_ns(event.ticks));
        keys.push(event.dep as i32);
        level_num.append_value(dep.level as u32);
        messages
            .push(event.dep, dep.template, &event.args)
            .map_err(|e| ctx.corrupt(e))?;
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
        messages.finish().map_err(|e| ctx.corrupt(e))?,
        dep_dictionary(keys, file),
        Arc::new(line.finish()),
    ]);
    ctx.bounded(
        batch(log_entries_schema(), columns, ctx)?,
        block.body_bytes(),
    )
}

/// A log block's messages as a dictionary column. An entry without arguments shares its
/// descriptor's template, rendered once; an entry with arguments gets its own rendered value.
/// The rendered bytes are bounded by [`MAX_MESSAGE_BYTES_PER_BODY_BYTE`] × the body (checked
/// before each template is rendered, so a hostile block costs no more than the bound).
struct Messages {
    keys: Vec<i32>,
    /// End offset of each value in `text` (after a leading 0).
    offsets: Vec<i32>,
    text: String,
    /// The value holding each descriptor's template rendered without arguments, once rendered.
    plain_by_dep: Vec<Option<i32>>,
    budget_bytes: usize,
}

impl Messages {
    fn new(deps: usize, rows: usize, body_bytes: usize) -> Messages {
        let budget_bytes = body_bytes
            .saturating_mul(MAX_MESSAGE_BYTES_PER_BODY_BYTE)
            .saturating_add(DECODED_BYTES_ALLOWANCE)
            .min(i32::MAX as usize);
        let mut offsets = Vec::with_capacity(deps.min(rows) + 1);
        offsets.push(0);
        Messages {
            keys: Vec::with_capacity(rows),
            offsets,
            text: String::new(),
            plain_by_dep: vec![None; deps],
            budget_bytes,
        }
    }

    fn push(&mut self, dep: u32, template: &str, args: &[LogArg<'_>]) -> Result<(), String> {
        let plain = args.is_empty();
        if plain && let Some(Some(key)) = self.plain_by_dep.get(dep as usize) {
            self.keys.push(*key);
            return Ok(());
        }
        if self.text.len().saturating_add(template.len()) > self.budget_bytes {
            return Err(self.over_budget());
        }
        self.text.push_str(&format_message(template, args));
        if self.text.len() > self.budget_bytes {
            return Err(self.over_budget());
        }
        let key = i32::try_from(self.offsets.len() - 1).map_err(|_| self.over_budget())?;
        // Within the budget, itself at most `i32::MAX`.
        self.offsets.push(self.text.len() as i32);
        if plain && let Some(slot) = self.plain_by_dep.get_mut(dep as usize) {
            *slot = Some(key);
        }
        self.keys.push(key);
        Ok(())
    }

    fn over_budget(&self) -> String {
        format!(
            "its log messages render to more than {} bytes ({MAX_MESSAGE_BYTES_PER_BODY_BYTE} \
             per byte of body)",
            self.budget_bytes
        )
    }

    fn finish(self) -> Result<ArrayRef, String> {
        let mut text = self.text;
        text.shrink_to_fit();
        let mut offsets = self.offsets;
        offsets.shrink_to_fit();
        let values = StringArray::try_new(
            OffsetBuffer::new(ScalarBuffer::from(offsets)),
            Buffer::from(text.into_bytes()),
            None,
        )
        .map_err(|e| e.to_string())?;
        let keys = Int32Array::new(self.keys.into(), None);
        let array = DictionaryArray::<Int32Type>::try_new(keys, Arc::new(values))
            .map_err(|e| e.to_string())?;
        Ok(Arc::new(array))
    }
}

pub fn decode_measures_block(
    bytes: &[u8],
    ctx: &BlockContext<'_>,
) -> Result<RecordBatch, EngineError> {
    let block = Block::parse(bytes).map_err(|e| ctx.corrupt(e))?;
    let view = block.view().map_err(|e| ctx.corrupt(e))?;
    let rows = ctx.event_count(&view, MIN_METRIC_EVENT_BYTES)?;
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
    ctx.bounded(batch(measures_schema(), columns, ctx)?, block.body_bytes())
}

/// The frame markers of one metrics block: each frame set's name once, and every marker as
/// `(index into names, unix_ns)` in order (a name is never copied per marker).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FrameMarkers {
    /// The block's sequence number in its stream: markers pair across blocks only when no
    /// block is missing between them (see [`frames_batch`]).
    pub block_seq: u64,
    pub names: Vec<Arc<str>>,
    pub markers: Vec<(u32, i64)>,
}

/// Frame markers of a metrics block.
pub fn frame_markers(bytes: &[u8], ctx: &BlockContext<'_>) -> Result<FrameMarkers, EngineError> {
    let block = Block::parse(bytes).map_err(|e| ctx.corrupt(e))?;
    let view = block.view().map_err(|e| ctx.corrupt(e))?;
    ctx.event_count(&view, MIN_METRIC_EVENT_BYTES)?;
    let mut found = FrameMarkers {
        block_seq: ctx.entry.info.block_seq,
        ..FrameMarkers::default()
    };
    // Each descriptor's index in `names`, once a marker of it is met.
    let mut name_of_dep: Vec<Option<u32>> = vec![None; view.deps.len()];
    for event in view.metric_events().map_err(|e| ctx.corrupt(e))? {
        let event = event.map_err(|e| ctx.corrupt(e))?;
        if event.value == MetricValue::Frame {
            let dep = view
                .metric_dep(event.dep)
                .ok_or_else(|| ctx.corrupt("frame marker without descriptor"))?;
            let slot = name_of_dep
                .get_mut(event.dep as usize)
                .ok_or_else(|| ctx.corrupt("frame marker without descriptor"))?;
            let name = match *slot {
                Some(name) => name,
                None => {
                    // At most one name per descriptor: fewer than 2^17.
                    let name = found.names.len() as u32;
                    found.names.push(Arc::from(dep.name));
                    *slot = Some(name);
                    name
                }
            };
            found.markers.push((name, ctx.to_ns(event.ticks)));
        }
    }
    Ok(found)
}

/// Frames from consecutive markers of the same name: `blocks` are all the marker sets of one
/// stream, in block order. Each distinct name is hashed once per block, never per marker.
///
/// Where a block is missing (skipped as damaged, dropped by the recorder, vanished: its
/// sequence number is not the previous block's plus one), no frame spans the hole: the markers
/// after it pair among themselves, as if the stream began there. The frame that the hole cut is
/// lost, not made into one frame as long as everything the hole held.
pub fn frames_batch(
    blocks: &[FrameMarkers],
    ctx: &BlockContext<'_>,
) -> Result<RecordBatch, EngineError> {
    let mut names: Vec<&str> = Vec::new();
    let mut index: std::collections::HashMap<&str, i32> = std::collections::HashMap::new();
    // The last marker of each name.
    let mut last: Vec<Option<i64>> = Vec::new();
    let mut keys = Vec::new();
    let mut begin = Vec::new();
    let mut end = Vec::new();
    let mut duration = Vec::new();
    let mut previous_seq: Option<u64> = None;
    for block in blocks {
        if previous_seq.is_some_and(|seq| seq.checked_add(1) != Some(block.block_seq)) {
            last.iter_mut().for_each(|marker| *marker = None);
        }
        previous_seq = Some(block.block_seq);
        let mut global = Vec::with_capacity(block.names.len());
        for name in &block.names {
            let next = i32::try_from(names.len())
                .map_err(|_| ctx.corrupt("more than 2^31 frame set names"))?;
            let id = *index.entry(name.as_ref()).or_insert_with(|| {
                names.push(name.as_ref());
                last.push(None);
                next
            });
            global.push(id);
        }
        for &(name, ns) in &block.markers {
            let id = *global
                .get(name as usize)
                .ok_or_else(|| ctx.corrupt("frame marker without a name"))?;
            let slot = &mut last[id as usize];
            if let Some(previous) = slot.replace(ns) {
                keys.push(id);
                begin.push(previous);
                end.push(ns);
                duration.push(ns.saturating_sub(previous));
            }
        }
    }
    let n = duration.len();
    let mut columns = ctx.id_columns(n);
    columns.extend([
        dep_dictionary(keys, names),
        Arc::new(TimestampNanosecondArray::new(begin.into(), None).with_timezone("UTC"))
            as ArrayRef,
        Arc::new(TimestampNanosecondArray::new(end.into(), None).with_timezone("UTC")),
        Arc::new(Int64Array::new(duration.into(), None)),
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
    let events = ctx.event_count(&view, MIN_CPU_EVENT_BYTES)?;
    let open = view.open_spans().map_err(|e| ctx.corrupt(e))?;
    // A span ends in an End event (a Begin and an End, or an End closing an open span) or, in a
    // stream's last block, is never closed: the rows of a usual block, without trusting more.
    let rows = events / 2 + if ctx.last_of_stream { open.len() } else { 0 };

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
    let batch = ctx.bounded(spans.finish(&view, closed, ctx)?, block.body_bytes())?;
    Ok((batch, orphan_ends))
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
            .map(|(&begin, &end)| end.saturating_sub(begin))
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
