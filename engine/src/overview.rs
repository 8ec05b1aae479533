//! A session's timeline at any length: an **overview** of its whole life in bounded memory, and
//! **detail** (every span) loaded only for a time range.
//!
//! - [`TimelineIndex`]: from the block keys alone (no block read), each thread of the selected
//!   processes and each CPU block's time span and span count. It gives the *coarse* overview (a
//!   fold per block on each thread's first lane: where a thread was busy, and how much) at open,
//!   the number of spans a range holds (what the viewer decides to load detail by), and the
//!   tracks every model of the selection shares, so a track keeps its index whichever model is
//!   drawn.
//! - [`OverviewBuilder`]: the *refined* overview, folded from decoded spans in one pass. Per
//!   thread and depth, the session is cut into [`OVERVIEW_BUCKETS`] buckets; a span at least a
//!   bucket long is kept as itself (name and all: spikes stay visible and named), shorter ones
//!   fold into one entry per bucket that counts them. Spans of one depth never overlap, so a lane
//!   holds at most one long span per bucket and one fold per bucket: at most
//!   2 × [`OVERVIEW_BUCKETS`] entries, whatever the session's length.
//!
//! Both are [`TimelineModel`]s (a fold is a lane entry whose `count` is over 1), drawn by the
//! same code as detail.

use crate::error::EngineError;
use crate::lake::BlockEntry;
use crate::timeline::{Lane, SpanSite, TimelineBuilder, TimelineModel, Track};
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::UInt32Type;
use std::collections::HashMap;

/// Buckets a session is cut into per thread and depth in the refined overview.
pub const OVERVIEW_BUCKETS: i64 = 16_384;

/// Entries one lane of the refined overview holds at most. A lane of well-formed spans (one
/// depth of one thread never overlaps itself) needs 2 × [`OVERVIEW_BUCKETS`]; a hostile lake's
/// overlapping or disordered spans past this are added to the lane's last entry instead, so the
/// overview stays bounded whatever the lake holds.
pub const MAX_LANE_ENTRIES: usize = 4 * OVERVIEW_BUCKETS as usize;

/// The name shown for an overview's folds.
pub const FOLDED_SITE: &str = "(folded spans)";

/// A thread of the selection, as every model of it lists its tracks.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TrackId {
    pub process_id: String,
    pub thread_name: String,
    pub stream_id: String,
}

/// One CPU block, from its key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockCover {
    /// Index into [`TimelineIndex::tracks`].
    pub track: usize,
    /// First and last event of the block.
    pub begin_ns: i64,
    pub end_ns: i64,
    /// Spans that end in the block, at most (half its events).
    pub spans: u64,
}

/// What the block keys tell of the selected processes' timeline.
#[derive(Clone, Debug, Default)]
pub struct TimelineIndex {
    pub process_ids: Vec<String>,
    /// Sorted as models sort their tracks.
    pub tracks: Vec<TrackId>,
    /// Sorted by begin (searches rely on it).
    pub blocks: Vec<BlockCover>,
    pub begin_ns: i64,
    pub end_ns: i64,
}

impl TimelineIndex {
    /// The index of `entries` (CPU blocks), naming threads with `thread_name`.
    pub fn from_blocks<'a>(
        process_ids: Vec<String>,
        entries: impl IntoIterator<Item = &'a BlockEntry>,
        thread_name: impl Fn(&str) -> Option<String>,
    ) -> TimelineIndex {
        let entries: Vec<&BlockEntry> = entries.into_iter().collect();
        let mut tracks: Vec<TrackId> = entries
            .iter()
            .map(|e| TrackId {
                process_id: e.info.process_id.clone(),
                thread_name: thread_name(&e.info.stream_id).unwrap_or_else(|| "?".to_owned()),
                stream_id: e.info.stream_id.clone(),
            })
            .collect();
        tracks.sort();
        tracks.dedup();
        let track_of: HashMap<&str, usize> = tracks
            .iter()
            .enumerate()
            .map(|(i, t)| (t.stream_id.as_str(), i))
            .collect();
        let mut blocks: Vec<BlockCover> = entries
            .iter()
            .filter_map(|e| {
                Some(BlockCover {
                    track: *track_of.get(e.info.stream_id.as_str())?,
                    begin_ns: e.info.begin_unix_ns,
                    end_ns: e.info.end_unix_ns.max(e.info.begin_unix_ns),
                    spans: u64::from(e.info.event_count) / 2,
                })
            })
            .collect();
        blocks.sort_by_key(|b| (b.begin_ns, b.track));
        let begin_ns = blocks.iter().map(|b| b.begin_ns).min().unwrap_or(0);
        let end_ns = blocks.iter().map(|b| b.end_ns).max().unwrap_or(0);
        TimelineIndex {
            process_ids,
            tracks,
            blocks,
            begin_ns,
            end_ns,
        }
    }

    /// Spans of every block that overlaps `[t0, t1]` (an upper bound of what detail of that
    /// range holds: blocks are read whole).
    pub fn spans_between(&self, t0: i64, t1: i64) -> u64 {
        self.blocks
            .iter()
            .take_while(|b| b.begin_ns <= t1)
            .filter(|b| b.end_ns >= t0)
            .map(|b| b.spans)
            .sum()
    }

    /// Spans of the whole selection, at most.
    pub fn span_count(&self) -> u64 {
        self.blocks.iter().map(|b| b.spans).sum()
    }

    /// An empty model with this index's tracks (and a lane each).
    fn empty_model(&self) -> TimelineModel {
        TimelineModel {
            tracks: self
                .tracks
                .iter()
                .map(|t| Track {
                    process_id: t.process_id.clone(),
                    stream_id: t.stream_id.clone(),
                    thread_name: t.thread_name.clone(),
                    lanes: vec![Lane::default()],
                })
                .collect(),
            sites: vec![SpanSite {
                name: FOLDED_SITE.to_owned(),
                ..Default::default()
            }],
            begin_ns: self.begin_ns,
            end_ns: self.end_ns,
        }
    }

    /// The coarse overview: one fold per block on its thread's first lane.
    pub fn coarse_overview(&self) -> TimelineModel {
        let mut model = self.empty_model();
        for block in &self.blocks {
            let Some(lane) = model.tracks.get_mut(block.track).map(|t| &mut t.lanes[0]) else {
                continue;
            };
            // Blocks of a thread follow one another; one that overlaps the last (a hostile or
            // odd lake) is clipped, so the lane stays sorted and without overlaps.
            let begin = lane
                .end_ns
                .last()
                .map_or(block.begin_ns, |&e| block.begin_ns.max(e));
            if block.end_ns < begin {
                continue;
            }
            lane.begin_ns.push(begin);
            lane.end_ns.push(block.end_ns);
            lane.name.push(0);
            lane.count
                .push(u32::try_from(block.spans.max(1)).unwrap_or(u32::MAX));
        }
        model
    }

    /// A builder of detail whose model lists this index's tracks (in this order), so track
    /// indices agree between the overview and any detail.
    pub fn detail_builder(&self) -> TimelineBuilder {
        let mut builder = TimelineBuilder::new();
        for t in &self.tracks {
            builder.add_track(&t.process_id, &t.stream_id, &t.thread_name);
        }
        builder
    }

    /// A builder of the refined overview of this selection.
    pub fn overview_builder(&self) -> OverviewBuilder {
        OverviewBuilder::new(self)
    }
}

/// The fold being built in one lane: the bucket it covers, its extent and its spans.
#[derive(Clone, Copy, Debug)]
struct OpenFold {
    bucket: i64,
    begin_ns: i64,
    end_ns: i64,
    count: u32,
}

/// Folds decoded `thread_spans` batches into the refined overview (see the module's docs).
#[derive(Debug)]
pub struct OverviewBuilder {
    model: TimelineModel,
    track_of: HashMap<String, usize>,
    site_ids: HashMap<SpanSite, u32>,
    origin_ns: i64,
    bucket_ns: i64,
    /// Per track, per depth.
    open: Vec<Vec<Option<OpenFold>>>,
}

impl OverviewBuilder {
    fn new(index: &TimelineIndex) -> OverviewBuilder {
        let mut model = index.empty_model();
        for track in &mut model.tracks {
            track.lanes.clear();
        }
        let site_ids = std::iter::once((model.sites[0].clone(), 0)).collect();
        let length_ns = index.end_ns.saturating_sub(index.begin_ns).max(1);
        OverviewBuilder {
            track_of: index
                .tracks
                .iter()
                .enumerate()
                .map(|(i, t)| (t.stream_id.clone(), i))
                .collect(),
            open: vec![Vec::new(); model.tracks.len()],
            model,
            site_ids,
            origin_ns: index.begin_ns,
            bucket_ns: (length_ns / OVERVIEW_BUCKETS).max(1),
        }
    }

    /// Adds one batch of `thread_spans` rows (each stream's in block order).
    pub fn push(&mut self, batch: &RecordBatch) -> Result<(), EngineError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let stream = crate::columns::string_dictionary(batch, "stream_id")?;
        let name = crate::columns::string_dictionary(batch, "name")?;
        let file = crate::columns::string_dictionary(batch, "file")?;
        let line = crate::columns::values::<UInt32Type>(batch, "line")?;
        let depth = crate::columns::u32_values(batch, "depth")?;
        let begin = crate::columns::values::<datafusion::arrow::datatypes::TimestampNanosecondType>(
            batch,
            "begin_time",
        )?;
        let end = crate::columns::values::<datafusion::arrow::datatypes::TimestampNanosecondType>(
            batch, "end_time",
        )?;
        let stream_values = stream.values().as_string::<i32>();
        let (name_values, file_values) = (
            name.values().as_string::<i32>(),
            file.values().as_string::<i32>(),
        );
        // Each stream key's track, found once per batch (a decoder's batch holds one stream).
        let tracks: Vec<Option<usize>> = (0..stream_values.len())
            .map(|k| self.track_of.get(stream_values.value(k)).copied())
            .collect();
        let (stream_keys, name_keys, file_keys) = (
            stream.keys().values(),
            name.keys().values(),
            file.keys().values(),
        );
        for row in 0..batch.num_rows() {
            let Some(track) = tracks.get(stream_keys[row] as usize).copied().flatten() else {
                continue;
            };
            let d = depth[row] as usize;
            let (b, e) = (begin[row], end[row]);
            let lanes = &mut self.model.tracks[track].lanes;
            if lanes.len() <= d {
                lanes.resize_with(d + 1, Lane::default);
                self.open[track].resize(d + 1, None);
            }
            if lanes[d].len() >= MAX_LANE_ENTRIES {
                fold_into_last(&mut lanes[d], b, e, 1);
                continue;
            }
            if e.saturating_sub(b) >= self.bucket_ns {
                // Long enough to see on the whole session: kept as itself.
                let site = SpanSite {
                    name: name_values.value(name_keys[row] as usize).to_owned(),
                    file: file_values.value(file_keys[row] as usize).to_owned(),
                    line: line[row],
                };
                let next = self.site_ids.len() as u32;
                let site = *self.site_ids.entry(site).or_insert_with_key(|site| {
                    self.model.sites.push(site.clone());
                    next
                });
                let lane = &mut lanes[d];
                lane.begin_ns.push(b);
                lane.end_ns.push(e);
                lane.name.push(site);
                lane.count.push(1);
                continue;
            }
            let bucket = b.saturating_sub(self.origin_ns) / self.bucket_ns;
            let slot = &mut self.open[track][d];
            match slot {
                Some(fold) if fold.bucket == bucket => {
                    fold.end_ns = fold.end_ns.max(e);
                    fold.count = fold.count.saturating_add(1);
                }
                _ => {
                    if let Some(done) = slot.take() {
                        push_fold(&mut lanes[d], done);
                    }
                    *slot = Some(OpenFold {
                        bucket,
                        begin_ns: b,
                        end_ns: e,
                        count: 1,
                    });
                }
            }
        }
        Ok(())
    }

    /// The overview: lanes sorted by begin.
    pub fn finish(mut self) -> TimelineModel {
        for (track, open) in self.model.tracks.iter_mut().zip(self.open) {
            for (lane, fold) in track.lanes.iter_mut().zip(open) {
                if let Some(fold) = fold {
                    push_fold(lane, fold);
                }
            }
            for lane in &mut track.lanes {
                lane.sort_by_begin();
            }
            if track.lanes.is_empty() {
                track.lanes.push(Lane::default());
            }
        }
        self.model
    }
}

fn push_fold(lane: &mut Lane, fold: OpenFold) {
    if lane.len() >= MAX_LANE_ENTRIES {
        fold_into_last(lane, fold.begin_ns, fold.end_ns, fold.count);
        return;
    }
    lane.begin_ns.push(fold.begin_ns);
    lane.end_ns.push(fold.end_ns);
    lane.name.push(0);
    lane.count.push(fold.count);
}

/// Adds `count` spans ending by `end_ns` to the lane's last entry (a full lane).
fn fold_into_last(lane: &mut Lane, begin_ns: i64, end_ns: i64, count: u32) {
    let (Some(last_end), Some(last_count), Some(last_name)) = (
        lane.end_ns.last_mut(),
        lane.count.last_mut(),
        lane.name.last_mut(),
    ) else {
        lane.begin_ns.push(begin_ns);
        lane.end_ns.push(end_ns);
        lane.name.push(0);
        lane.count.push(count);
        return;
    };
    *last_end = (*last_end).max(end_ns);
    *last_count = last_count.saturating_add(count);
    *last_name = 0;
}

impl crate::Engine {
    /// The [`TimelineIndex`] of `process_ids` (all processes if empty): block keys only, no block
    /// is read.
    pub async fn timeline_index(
        &self,
        process_ids: &[String],
    ) -> Result<TimelineIndex, EngineError> {
        let lake = self.lake_arc();
        let scan = self
            .span_blocks(&crate::tables::Pruning::of_processes(process_ids))
            .await?;
        Ok(TimelineIndex::from_blocks(
            process_ids.to_vec(),
            scan.entries(),
            |stream| lake.thread_name(stream),
        ))
    }

    /// The refined overview of `index`'s selection: one pass over its blocks, holding the
    /// overview and the blocks in flight (decoded blocks are not cached: a long session's
    /// would push out of the caches what the user looks at).
    pub async fn timeline_overview(
        &self,
        index: &TimelineIndex,
        progress: &crate::tables::Progress,
    ) -> Result<TimelineModel, EngineError> {
        let scan = self
            .span_blocks(&crate::tables::Pruning::of_processes(&index.process_ids))
            .await?
            .with_columns(&[
                "stream_id",
                "depth",
                "name",
                "file",
                "line",
                "begin_time",
                "end_time",
            ])?
            .caching(crate::tables::Caching::None);
        let builder = crate::engine::fold_scan(
            scan,
            progress,
            index.overview_builder(),
            |builder, batch| builder.push(batch),
        )
        .await?;
        Ok(builder.finish())
    }

    /// Every span of `index`'s selection in the blocks that overlap `range_ns`, as a model
    /// whose tracks are the index's (decoded blocks go to the disk cache: detail is asked again
    /// as the user pans back).
    pub async fn timeline_detail(
        &self,
        index: &TimelineIndex,
        range_ns: (i64, i64),
        progress: &crate::tables::Progress,
    ) -> Result<TimelineModel, EngineError> {
        let scan = self
            .span_blocks(
                &crate::tables::Pruning::of_processes(&index.process_ids).overlapping(range_ns),
            )
            .await?
            .caching(crate::tables::Caching::DiskOnly);
        let builder =
            crate::engine::fold_scan(scan, progress, index.detail_builder(), |builder, batch| {
                builder.push(batch)
            })
            .await?;
        Ok(builder.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{
        ArrayRef, DictionaryArray, Int32Array, StringArray, TimestampNanosecondArray, UInt32Array,
    };
    use std::sync::Arc;

    /// `spans` (begin, end) of one stream at depth 0, as the decoder's columns.
    fn batch(spans: &[(i64, i64)]) -> RecordBatch {
        let n = spans.len();
        let dict = |value: &str| -> ArrayRef {
            Arc::new(
                DictionaryArray::<datafusion::arrow::datatypes::Int32Type>::try_new(
                    Int32Array::from(vec![0; n]),
                    Arc::new(StringArray::from(vec![value])),
                )
                .unwrap_or_else(|e| panic!("{e}")),
            )
        };
        RecordBatch::try_from_iter([
            ("stream_id", dict("s")),
            ("name", dict("n")),
            ("file", dict("f")),
            ("line", Arc::new(UInt32Array::from(vec![1; n])) as ArrayRef),
            ("depth", Arc::new(UInt32Array::from(vec![0; n])) as ArrayRef),
            (
                "begin_time",
                Arc::new(TimestampNanosecondArray::from_iter_values(
                    spans.iter().map(|s| s.0),
                )) as ArrayRef,
            ),
            (
                "end_time",
                Arc::new(TimestampNanosecondArray::from_iter_values(
                    spans.iter().map(|s| s.1),
                )) as ArrayRef,
            ),
        ])
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn index(end_ns: i64) -> TimelineIndex {
        TimelineIndex {
            tracks: vec![TrackId {
                process_id: "p".into(),
                thread_name: "t".into(),
                stream_id: "s".into(),
            }],
            begin_ns: 0,
            end_ns,
            ..Default::default()
        }
    }

    #[test]
    fn a_hostile_lane_stays_bounded_and_counts_every_span() {
        // 16 384 buckets of 1 000 ns; spans that jump between far buckets (a fold per span) and
        // long spans that overlap: far more entries than a lane of real spans could need.
        let index = index(OVERVIEW_BUCKETS * 1_000);
        let mut spans = Vec::new();
        for i in 0..100_000i64 {
            let bucket = if i % 2 == 0 {
                i % 16_000
            } else {
                16_000 - i % 16_000
            };
            spans.push((bucket * 1_000, bucket * 1_000 + 10));
            spans.push((i % 1_000, i % 1_000 + 5_000));
        }
        let mut builder = index.overview_builder();
        builder
            .push(&batch(&spans))
            .unwrap_or_else(|e| panic!("{e}"));
        let overview = builder.finish();
        let lane = &overview.tracks[0].lanes[0];
        assert!(lane.len() <= MAX_LANE_ENTRIES + 1, "{}", lane.len());
        assert_eq!(lane.span_count(), spans.len());
    }

    #[test]
    fn well_formed_spans_keep_long_ones_and_fold_short_ones() {
        let index = index(OVERVIEW_BUCKETS * 1_000);
        // Per bucket: three short spans, then every 10th bucket one 5-bucket span after them.
        let mut spans = Vec::new();
        let mut t = 0;
        while t < OVERVIEW_BUCKETS * 1_000 - 6_000 {
            for k in 0..3 {
                spans.push((t + k * 100, t + k * 100 + 50));
            }
            t += 1_000;
            if (t / 1_000) % 10 == 0 {
                spans.push((t, t + 5_000));
                t += 5_000;
            }
        }
        let mut builder = index.overview_builder();
        builder
            .push(&batch(&spans))
            .unwrap_or_else(|e| panic!("{e}"));
        let overview = builder.finish();
        let lane = &overview.tracks[0].lanes[0];
        assert_eq!(lane.span_count(), spans.len());
        let long = (0..lane.len()).filter(|&i| lane.weight(i) == 1).count();
        assert_eq!(long, spans.iter().filter(|s| s.1 - s.0 >= 1_000).count());
        assert!(lane.begin_ns.windows(2).all(|w| w[0] <= w[1]));
        assert!((1..lane.len()).all(|i| lane.end_ns[i - 1] <= lane.begin_ns[i]));
    }
}
