//! The block decoding pipeline behind the event tables: select blocks, fetch them (or take them
//! from the decoded-block cache), decode them in parallel, and pair frame markers across blocks.

use super::pushdown::{BlockBounds, Pruning};
use super::{BlockTable, EventTable, Progress};
use crate::cache::CacheKey;
use crate::decode;
use crate::error::EngineError;
use crate::lake::{BlockEntry, Lake};
use datafusion::arrow::record_batch::RecordBatch;
use futures::StreamExt;
use std::collections::BTreeMap;

impl BlockTable {
    /// Like [`BlockTable::decode`], counting blocks done out of blocks selected in `progress`.
    pub async fn decode_with_progress(
        &self,
        pruning: &Pruning,
        progress: &Progress,
    ) -> Result<Vec<RecordBatch>, EngineError> {
        Ok(self
            .decode_blocks(pruning, progress)
            .await?
            .into_iter()
            .map(|(batch, _)| batch)
            .collect())
    }

    /// The decoded batches, each with the time bounds of the block it came from (from the
    /// block's key; `None` for frames, which pair markers across blocks).
    pub(super) async fn decode_blocks(
        &self,
        pruning: &Pruning,
        progress: &Progress,
    ) -> Result<Vec<(RecordBatch, Option<BlockBounds>)>, EngineError> {
        let lake = &self.lake;
        let kind = self.table.stream_kind();
        let mut last_seq: BTreeMap<&str, u64> = BTreeMap::new();
        for block in lake.blocks.iter().filter(|b| b.info.kind == kind) {
            let slot = last_seq.entry(block.info.stream_id.as_str()).or_default();
            *slot = (*slot).max(block.info.block_seq);
        }
        let selected: Vec<(BlockEntry, bool)> = lake
            .blocks
            .iter()
            .filter(|b| b.info.kind == kind && pruning.keeps(b))
            .map(|b| {
                let last = last_seq.get(b.info.stream_id.as_str()) == Some(&b.info.block_seq);
                (b.clone(), last)
            })
            .collect();
        progress
            .total
            .fetch_add(selected.len() as u64, std::sync::atomic::Ordering::Relaxed);
        let table = self.table;
        let lake_arc = self.lake.clone();
        let tasks = selected.into_iter().map(move |(entry, last)| {
            let lake = lake_arc.clone();
            async move {
                let stream_id = entry.info.stream_id.clone();
                let seq = entry.info.block_seq;
                let bounds = BlockBounds {
                    begin_ns: entry.info.begin_unix_ns,
                    end_ns: entry.info.end_unix_ns,
                    earliest_ns: entry.info.earliest_unix_ns,
                };
                let cache_key = (table != EventTable::Frames).then(|| CacheKey {
                    table: table.name(),
                    block_key: entry.key.clone(),
                    last_of_stream: last,
                });
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
                        return Ok((stream_id, seq, bounds, Decoded::Batch(batch)));
                    }
                }
                let bytes = lake.fetch_block(&entry.key).await?;
                tokio::task::spawn_blocking(move || {
                    let decoded = decode_one(table, &lake, &entry, last, &bytes)?;
                    if let (Some(key), Decoded::Batch(batch)) = (cache_key, &decoded) {
                        lake.cache().put_later(key, batch);
                    }
                    Ok::<_, EngineError>(decoded)
                })
                .await
                .map_err(|e| EngineError::Query(format!("decoding task failed: {e}")))?
                .map(|decoded| (stream_id, seq, bounds, decoded))
            }
        });
        let parallelism = std::thread::available_parallelism().map_or(2, |n| n.get()) * 4;
        let results: Vec<Result<(String, u64, BlockBounds, Decoded), EngineError>> =
            futures::stream::iter(tasks)
                .buffered(parallelism)
                .collect()
                .await;
        progress
            .done
            .fetch_add(results.len() as u64, std::sync::atomic::Ordering::Relaxed);
        let mut batches = Vec::with_capacity(results.len());
        // Frames pair consecutive markers of one stream, across its blocks.
        let mut markers: BTreeMap<String, Vec<(u64, FrameMarkers)>> = BTreeMap::new();
        for result in results {
            match result? {
                (_, _, bounds, Decoded::Batch(batch)) => {
                    if batch.num_rows() > 0 {
                        batches.push((batch, Some(bounds)));
                    }
                }
                (stream, seq, _, Decoded::Markers(m)) => {
                    markers.entry(stream).or_default().push((seq, m))
                }
            }
        }
        for (stream_id, mut blocks) in markers {
            blocks.sort_by_key(|(seq, _)| *seq);
            let all: Vec<(String, i64)> = blocks.into_iter().flat_map(|(_, m)| m).collect();
            let Some(entry) = lake.blocks.iter().find(|b| b.info.stream_id == stream_id) else {
                continue;
            };
            let batch = decode::frames_batch(&all, &decode::context_for(lake, entry, false)?)?;
            if batch.num_rows() > 0 {
                batches.push((batch, None));
            }
        }
        Ok(batches)
    }
}

/// Frame markers of one block: `(frame set name, unix_ns)`.
type FrameMarkers = Vec<(String, i64)>;

enum Decoded {
    Batch(RecordBatch),
    Markers(FrameMarkers),
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

/// The decoded batches as one partition. Decoding already ran on every core; handing DataFusion
/// one partition lets a plain scan stream its batches without a task and a channel per
/// partition (measured: most of a warm 10^7-span scan was threads waking each other), and
/// DataFusion still spreads the rows over its partitions (round robin) where an operator can use
/// them, such as an aggregate.
pub(super) fn spread(batches: Vec<RecordBatch>) -> Vec<Vec<RecordBatch>> {
    vec![batches]
}
