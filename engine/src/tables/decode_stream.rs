//! The block decoding pipeline behind the event tables: select blocks, then stream them — fetch
//! (or take from the decoded-block cache), decode on blocking threads, a bounded number at a time,
//! in the lake's block order — applying exact time filters, projection and limit per block.
//! Frames pair markers across a stream's blocks, so they come out once every block is read.

use super::pushdown::{BlockBounds, ExactTimeFilter, Pruning, apply_exact_time_filters};
use super::{EventTable, Progress};
use crate::cache::CacheKey;
use crate::decode;
use crate::error::EngineError;
use crate::lake::{BlockEntry, Lake};
use datafusion::arrow::record_batch::RecordBatch;
use futures::future::BoxFuture;
use futures::stream::{FuturesOrdered, Stream, StreamExt};
use std::borrow::Borrow;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use decode::FrameMarkers;

enum Decoded {
    /// A damaged or vanished block: skipped, reported in `lake_problems`, the rest answers.
    Damaged(EngineError),
    Batch(RecordBatch),
    Markers(FrameMarkers),
}

/// One block read: what it decoded to, with where it came from.
struct ReadBlock {
    stream_id: String,
    seq: u64,
    bounds: BlockBounds,
    /// Upper bound of its rows (its event count), for the limit's look-ahead.
    max_rows: u64,
    decoded: Decoded,
}

/// The blocks one scan reads (chosen from the catalog when the query is planned) and what it
/// does with their rows.
#[derive(Clone, Debug)]
pub struct BlockScan {
    table: EventTable,
    lake: Arc<Lake>,
    /// Selected blocks in the lake's order, each with whether it is its stream's last block.
    blocks: Arc<[(BlockEntry, bool)]>,
    exact: Arc<[ExactTimeFilter]>,
    projection: Option<Arc<[usize]>>,
    limit: Option<usize>,
    /// Where decoded blocks are kept.
    caching: Caching,
}

/// Where a scan keeps the blocks it decodes (it reads both caches whatever this says).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caching {
    /// Memory and disk: queries, whose blocks are likely asked again.
    MemoryAndDisk,
    /// Disk only: readers that hold the rows themselves (the timeline's model).
    DiskOnly,
    /// Neither: one pass over a whole session (summaries), whose blocks would push out of both
    /// caches what the user looks at, and would be written for nothing.
    None,
}

impl BlockScan {
    /// The blocks of `table` that `pruning` keeps: the processes it names (all otherwise)
    /// whose lives overlap its time range, their block keys listed on first need.
    pub async fn select(
        table: EventTable,
        lake: Arc<Lake>,
        pruning: &Pruning,
    ) -> Result<BlockScan, EngineError> {
        let kind = table.stream_kind();
        let processes = lake.processes_for(pruning.process_ids.as_ref()).await?;
        let mut process_ids: Vec<String> = processes
            .iter()
            .filter(|p| {
                // A process started after the range, or ended before it, has no row in it.
                pruning.max_begin_ns.is_none_or(|t| p.start_unix_ns <= t)
                    && pruning
                        .min_end_ns
                        .is_none_or(|t| p.end_unix_ns.is_none_or(|end| end >= t))
            })
            .map(|p| p.process_id.clone())
            .collect();
        process_ids.sort();
        let mut selected = Vec::new();
        for blocks in lake.blocks_of(&process_ids).await? {
            let mut last_seq: BTreeMap<&str, u64> = BTreeMap::new();
            for block in blocks.iter().filter(|b| b.info.kind == kind) {
                let slot = last_seq.entry(block.info.stream_id.as_str()).or_default();
                *slot = (*slot).max(block.info.block_seq);
            }
            selected.extend(
                blocks
                    .iter()
                    .filter(|b| b.info.kind == kind && pruning.keeps(b))
                    .map(|b| {
                        let last =
                            last_seq.get(b.info.stream_id.as_str()) == Some(&b.info.block_seq);
                        (b.clone(), last)
                    }),
            );
        }
        selected.sort_by(|(a, _), (b, _)| {
            (&a.info.stream_id, a.info.block_seq).cmp(&(&b.info.stream_id, b.info.block_seq))
        });
        Ok(BlockScan {
            table,
            lake,
            blocks: selected.into(),
            exact: Arc::new([]),
            projection: None,
            limit: None,
            caching: Caching::MemoryAndDisk,
        })
    }

    /// Keeps only the rows these filters hold for.
    pub fn with_exact_filters(mut self, exact: Vec<ExactTimeFilter>) -> BlockScan {
        self.exact = exact.into();
        self
    }

    /// Only the columns named, in this order (an unknown name is a query error).
    pub fn with_columns(self, names: &[&str]) -> Result<BlockScan, EngineError> {
        let schema = self.table.schema();
        let projection = names
            .iter()
            .map(|name| schema.index_of(name))
            .collect::<Result<Vec<usize>, _>>()
            .map_err(|e| EngineError::Query(e.to_string()))?;
        Ok(self.with_projection(Some(projection)))
    }

    /// Only these columns (indices into the table's schema), in this order.
    pub fn with_projection(mut self, projection: Option<Vec<usize>>) -> BlockScan {
        self.projection = projection.map(Into::into);
        self
    }

    /// At most this many rows: no block is fetched once they are produced.
    pub fn with_limit(mut self, limit: Option<usize>) -> BlockScan {
        self.limit = limit;
        self
    }

    /// Where the blocks this scan decodes are kept.
    pub fn caching(mut self, caching: Caching) -> BlockScan {
        self.caching = caching;
        self
    }

    /// The selected blocks, in the lake's order.
    pub fn entries(&self) -> impl Iterator<Item = &BlockEntry> {
        self.blocks.iter().map(|(entry, _)| entry)
    }

    pub fn block_count(&self) -> usize {
        self.blocks.len()
    }

    pub fn table(&self) -> EventTable {
        self.table
    }

    pub fn limit(&self) -> Option<usize> {
        self.limit
    }

    pub fn projection(&self) -> Option<&[usize]> {
        self.projection.as_deref()
    }

    /// The rows, batch by batch (one per block, in the lake's block order; frames at the end).
    /// Blocks selected are added to `progress.total` when the stream starts, and each block read
    /// to `progress.done`. The first error ends the stream.
    pub fn batches<'a, P>(
        self,
        progress: P,
    ) -> impl Stream<Item = Result<RecordBatch, EngineError>> + Send + 'a
    where
        P: Borrow<Progress> + Send + 'a,
    {
        progress
            .borrow()
            .total
            .fetch_add(self.blocks.len() as u64, Ordering::Relaxed);
        let state = State {
            parallelism: parallelism(),
            remaining: self.limit,
            scan: self,
            next: 0,
            pending: FuturesOrdered::new(),
            pending_rows: 0,
            markers: BTreeMap::new(),
            frames: None,
            progress,
            finished: false,
        };
        futures::stream::unfold(state, |mut state| async move {
            let item = state.next_batch().await?;
            Some((item, state))
        })
    }

    /// Fetches (or takes from the cache) and decodes block `index`.
    fn read(&self, index: usize) -> BoxFuture<'static, Result<ReadBlock, EngineError>> {
        let (entry, last) = self.blocks[index].clone();
        let lake = self.lake.clone();
        let table = self.table;
        let caching = self.caching;
        Box::pin(async move {
            let stream_id = entry.info.stream_id.clone();
            let seq = entry.info.block_seq;
            let max_rows = u64::from(entry.info.event_count);
            let bounds = BlockBounds {
                begin_ns: entry.info.begin_unix_ns,
                end_ns: entry.info.end_unix_ns,
                earliest_ns: entry.info.earliest_unix_ns,
            };
            let read = |decoded| ReadBlock {
                stream_id,
                seq,
                bounds,
                max_rows,
                decoded,
            };
            let decoded = async move {
                // Frames pair markers across blocks: not cached per block. A block whose context
                // cannot be found is not cached either (decoding says why).
                let cache_key = (table != EventTable::Frames)
                    .then(|| decode::context_for(&lake, &entry, last).ok())
                    .flatten()
                    .map(|ctx| CacheKey::new(table.name(), &table.schema(), &ctx));
                if let Some(key) = cache_key.clone() {
                    // Memory first, on this task; the disk (file I/O) on a blocking thread.
                    let mut cached = lake.cache().get_memory(&key);
                    if cached.is_none() && lake.cache().has_disk() {
                        let cached_lake = lake.clone();
                        cached = tokio::task::spawn_blocking(move || cached_lake.cache().get(&key))
                            .await
                            .map_err(|e| EngineError::Query(format!("cache task failed: {e}")))?;
                    }
                    if let Some(batch) = cached {
                        return Ok(Decoded::Batch(batch));
                    }
                }
                // An object no valid block can be is refused from the listing's size, unfetched.
                if !decode::block_size_ok(entry.size_bytes) {
                    return Err(EngineError::Corrupt {
                        key: entry.key.clone(),
                        detail: format!(
                            "it is {} bytes, and a block is {} to {} bytes",
                            entry.size_bytes,
                            frameline_instrument::format::HEADER_BYTES,
                            decode::MAX_BLOCK_OBJECT_BYTES
                        ),
                    });
                }
                let bytes = lake.fetch_block(&entry.key).await?;
                tokio::task::spawn_blocking(move || {
                    let decoded = decode_one(table, &lake, &entry, last, &bytes)?;
                    if let (Some(key), Decoded::Batch(batch)) = (cache_key, &decoded) {
                        match caching {
                            Caching::MemoryAndDisk => lake.cache().put_later(key, batch),
                            Caching::DiskOnly => lake.cache().write_later(key, batch),
                            Caching::None => {}
                        }
                    }
                    Ok::<_, EngineError>(decoded)
                })
                .await
                .map_err(|e| EngineError::Query(format!("decoding task failed: {e}")))?
            }
            .await;
            match decoded {
                Ok(decoded) => Ok(read(decoded)),
                Err(e) if is_damage(&e) => Ok(read(Decoded::Damaged(e))),
                Err(e) => Err(e),
            }
        })
    }
}

/// Whether a block's error is damage to that block (skipped and reported) rather than a failure
/// of the store or the query (which ends the query): a corrupt block, or one that vanished
/// between the listing and the read.
fn is_damage(error: &EngineError) -> bool {
    match error {
        EngineError::Corrupt { .. } => true,
        EngineError::Store { detail, .. } => detail.to_ascii_lowercase().contains("not found"),
        _ => false,
    }
}

/// Blocks read at once: decoding runs on blocking threads, fetches wait on the network.
fn parallelism() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()) * 4
}

struct State<P> {
    scan: BlockScan,
    /// [`parallelism`], read once: `available_parallelism` reads cgroup files on every call
    /// (measured: once per block made a warm scan of 207 blocks 3.5 × slower).
    parallelism: usize,
    /// The next block to start reading.
    next: usize,
    pending: FuturesOrdered<BoxFuture<'static, Result<ReadBlock, EngineError>>>,
    /// Upper bound of the rows of the blocks being read.
    pending_rows: u64,
    /// Rows still wanted (`None`: all).
    remaining: Option<usize>,
    markers: BTreeMap<String, Vec<(u64, FrameMarkers)>>,
    /// Frame batches ready to hand out, once every block is read.
    frames: Option<VecDeque<RecordBatch>>,
    progress: P,
    finished: bool,
}

impl<P: Borrow<Progress>> State<P> {
    async fn next_batch(&mut self) -> Option<Result<RecordBatch, EngineError>> {
        loop {
            if self.finished {
                return None;
            }
            if let Some(frames) = &mut self.frames {
                let Some(batch) = frames.pop_front() else {
                    self.finished = true;
                    continue;
                };
                return Some(self.finish_batch(batch));
            }
            self.start_reads();
            let Some(read) = self.pending.next().await else {
                if self.scan.table == EventTable::Frames {
                    match self.pair_frames() {
                        Ok(frames) => self.frames = Some(frames),
                        Err(e) => return Some(self.fail(e)),
                    }
                    continue;
                }
                self.finished = true;
                return None;
            };
            self.progress.borrow().done.fetch_add(1, Ordering::Relaxed);
            let read = match read {
                Ok(read) => read,
                Err(e) => return Some(self.fail(e)),
            };
            self.pending_rows = self.pending_rows.saturating_sub(read.max_rows);
            let batch = match read.decoded {
                Decoded::Damaged(error) => {
                    let (key, detail) = match &error {
                        EngineError::Corrupt { key, detail }
                        | EngineError::Store { key, detail } => (key.clone(), detail.clone()),
                        other => (String::new(), other.to_string()),
                    };
                    self.scan.lake.block_skipped(&key, detail);
                    continue;
                }
                Decoded::Markers(m) => {
                    self.markers
                        .entry(read.stream_id)
                        .or_default()
                        .push((read.seq, m));
                    continue;
                }
                Decoded::Batch(batch) => batch,
            };
            let batch = match apply_exact_time_filters(
                vec![(batch, Some(read.bounds))],
                &self.scan.exact,
            ) {
                Ok(mut kept) => match kept.pop() {
                    Some(batch) => batch,
                    None => continue,
                },
                Err(e) => return Some(self.fail(e)),
            };
            if batch.num_rows() == 0 {
                continue;
            }
            return Some(self.finish_batch(batch));
        }
    }

    /// Starts reading blocks until `parallelism` are in flight — or, under a limit, until the
    /// blocks in flight may hold the rows still wanted (a block has at most its event count of
    /// rows), so a `LIMIT` reads no block it does not need.
    fn start_reads(&mut self) {
        let limit_rows = match (self.scan.table, self.remaining) {
            // Frames pair markers across blocks: every block is read.
            (EventTable::Frames, _) | (_, None) => None,
            (_, Some(rows)) => Some(rows as u64),
        };
        while self.next < self.scan.blocks.len()
            && self.pending.len() < self.parallelism
            && limit_rows.is_none_or(|rows| self.pending_rows < rows)
        {
            self.pending_rows += u64::from(self.scan.blocks[self.next].0.info.event_count);
            self.pending.push_back(self.scan.read(self.next));
            self.next += 1;
        }
    }

    /// Applies the limit and the projection to a batch of rows about to be handed out.
    fn finish_batch(&mut self, batch: RecordBatch) -> Result<RecordBatch, EngineError> {
        let batch = match &mut self.remaining {
            Some(remaining) => {
                let rows = batch.num_rows().min(*remaining);
                *remaining -= rows;
                if *remaining == 0 {
                    self.finished = true;
                }
                batch.slice(0, rows)
            }
            None => batch,
        };
        match &self.scan.projection {
            Some(columns) => batch
                .project(columns)
                .map_err(|e| EngineError::Query(e.to_string())),
            None => Ok(batch),
        }
    }

    fn fail(&mut self, error: EngineError) -> Result<RecordBatch, EngineError> {
        self.finished = true;
        Err(error)
    }

    /// Frames of every stream, from the markers of all its blocks in sequence order.
    fn pair_frames(&mut self) -> Result<VecDeque<RecordBatch>, EngineError> {
        let lake = &self.scan.lake;
        let mut batches = VecDeque::new();
        for (stream_id, mut blocks) in std::mem::take(&mut self.markers) {
            blocks.sort_by_key(|(seq, _)| *seq);
            let all: Vec<FrameMarkers> = blocks.into_iter().map(|(_, m)| m).collect();
            let Some((entry, _)) = self
                .scan
                .blocks
                .iter()
                .find(|(b, _)| b.info.stream_id == stream_id)
            else {
                continue;
            };
            let batch = decode::frames_batch(&all, &decode::context_for(lake, entry, false)?)?;
            if batch.num_rows() > 0 {
                batches.push_back(batch);
            }
        }
        Ok(batches)
    }
}

fn decode_one(
    table: EventTable,
    lake: &Lake,
    entry: &BlockEntry,
    last_of_stream: bool,
    bytes: &[u8],
) -> Result<Decoded, EngineError> {
    let ctx = decode::context_for(lake, entry, last_of_stream)?;
    Ok(match table {
        EventTable::LogEntries => Decoded::Batch(decode::decode_log_block(bytes, &ctx)?),
        EventTable::Measures => Decoded::Batch(decode::decode_measures_block(bytes, &ctx)?),
        EventTable::ThreadSpans => Decoded::Batch(decode::decode_spans_block(bytes, &ctx)?.0),
        EventTable::Frames => Decoded::Markers(decode::frame_markers(bytes, &ctx)?),
    })
}
