//! Span statistics of a time range, folded block by block: what the statistics panel shows when
//! the range is not loaded as detail (a long session's whole life, a minute of it), with the
//! same rows as [`crate::analysis::span_stats`] on a model of every span.
//!
//! Same selection: the spans that **begin** in `[begin_ns, end_ns)` on the picked threads, with
//! their whole durations. Self time needs each span's direct children, which the decoder's order
//! gives as in [`crate::span_totals`]: per stream and depth, the parent open there and its
//! children's time so far (children are folded whether or not they begin in the range, so a
//! parent's self time is whole). Percentiles are exact (nearest rank, as the panel's) while the
//! range holds at most [`EXACT_DURATIONS`] spans; past that every name switches to a log-bucket
//! sketch (buckets 2^(1/64) ≈ 1.1 % apart, the percentile read as its bucket's upper bound, never
//! above the max) and keeps a sample of [`SAMPLE_DURATIONS`] durations for its histogram: memory
//! stays bounded by the names, not by the spans.

use crate::analysis::NameStats;
use crate::columns;
use crate::error::EngineError;
use crate::overview::TimelineIndex;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::TimestampNanosecondType;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Spans whose durations are kept exactly (8 bytes each: 128 MiB).
pub const EXACT_DURATIONS: usize = 16 * 1024 * 1024;
/// Durations sampled per name for its histogram once the sketch is used.
pub const SAMPLE_DURATIONS: usize = 65_536;
/// Sketch buckets per doubling of the duration.
const BUCKETS_PER_OCTAVE: f64 = 64.0;

/// The durations of one name: every one, or a sketch and a sample.
#[derive(Clone, Debug)]
enum Durations {
    Exact(Vec<i64>),
    Sketch {
        /// Bucket index → spans.
        buckets: BTreeMap<i32, u64>,
        sample: Vec<i64>,
        /// Spans seen, for the sample's replacement (reservoir sampling).
        seen: u64,
    },
}

fn bucket_of(duration_ns: i64) -> i32 {
    ((duration_ns.max(1) as f64).log2() * BUCKETS_PER_OCTAVE).ceil() as i32
}

fn bucket_upper_ns(bucket: i32) -> i64 {
    2f64.powf(f64::from(bucket) / BUCKETS_PER_OCTAVE).round() as i64
}

#[derive(Clone, Debug)]
struct NameAcc {
    name: String,
    count: u64,
    total_ns: i64,
    self_ns: i64,
    max_ns: i64,
    durations: Durations,
}

/// Folds `thread_spans` batches (each stream's in block order) into the statistics of the spans
/// that begin in a range.
#[derive(Debug)]
pub struct RangeStatsFolder {
    begin_ns: i64,
    end_ns: i64,
    /// Only these streams (all if `None`).
    streams: Option<HashSet<String>>,
    names: Vec<NameAcc>,
    by_name: HashMap<String, usize>,
    children: crate::span_totals::ChildTimes,
    exact_kept: usize,
    exact_limit: usize,
    /// A small deterministic generator for the reservoir.
    rng: u64,
}

impl RangeStatsFolder {
    /// Statistics of the spans beginning in `[begin_ns, end_ns)` on `streams` (all if `None`).
    pub fn new(begin_ns: i64, end_ns: i64, streams: Option<HashSet<String>>) -> Self {
        RangeStatsFolder {
            begin_ns,
            end_ns,
            streams,
            names: Vec::new(),
            by_name: HashMap::new(),
            children: Default::default(),
            exact_kept: 0,
            exact_limit: EXACT_DURATIONS,
            rng: 0x9e37_79b9_7f4a_7c15,
        }
    }

    /// Keeps at most `limit` durations exactly (tests lower it to exercise the sketch).
    pub fn with_exact_limit(mut self, limit: usize) -> Self {
        self.exact_limit = limit;
        self
    }

    fn slot(&mut self, name: &str) -> usize {
        if let Some(&slot) = self.by_name.get(name) {
            return slot;
        }
        let durations = if self.exact_kept <= self.exact_limit {
            Durations::Exact(Vec::new())
        } else {
            Durations::Sketch {
                buckets: BTreeMap::new(),
                sample: Vec::new(),
                seen: 0,
            }
        };
        self.names.push(NameAcc {
            name: name.to_owned(),
            count: 0,
            total_ns: 0,
            self_ns: 0,
            max_ns: 0,
            durations,
        });
        self.by_name.insert(name.to_owned(), self.names.len() - 1);
        self.names.len() - 1
    }

    /// Every name's exact durations become a sketch (and a sample).
    fn switch_to_sketches(&mut self) {
        let mut rng = self.rng;
        for acc in &mut self.names {
            if let Durations::Exact(all) = &mut acc.durations {
                let mut buckets = BTreeMap::new();
                let mut sample = Vec::new();
                let mut seen = 0u64;
                for &d in all.iter() {
                    *buckets.entry(bucket_of(d)).or_insert(0) += 1;
                    reservoir(&mut sample, &mut seen, &mut rng, d);
                }
                acc.durations = Durations::Sketch {
                    buckets,
                    sample,
                    seen,
                };
            }
        }
        self.rng = rng;
        self.exact_kept = usize::MAX;
    }

    /// Adds one batch of `thread_spans` rows (needs stream_id, span_id, parent_id, depth, name,
    /// begin_time, duration_ns).
    pub fn push(&mut self, batch: &RecordBatch) -> Result<(), EngineError> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let stream = columns::string_dictionary(batch, "stream_id")?;
        let name = columns::string_dictionary(batch, "name")?;
        let span_ids = columns::u64_values(batch, "span_id")?;
        let parent_ids = columns::u64_values(batch, "parent_id")?;
        let depths = columns::u32_values(batch, "depth")?;
        let begins = columns::values::<TimestampNanosecondType>(batch, "begin_time")?;
        let durations = columns::i64_values(batch, "duration_ns")?;
        let stream_values = stream.values().as_string::<i32>();
        let name_values = name.values().as_string::<i32>();
        let picked: Vec<bool> = (0..stream_values.len())
            .map(|k| {
                self.streams
                    .as_ref()
                    .is_none_or(|s| s.contains(stream_values.value(k)))
            })
            .collect();
        let mut slots: Vec<Option<usize>> = vec![None; name_values.len()];
        let (stream_keys, name_keys) = (stream.keys().values(), name.keys().values());
        let mut entered = None;
        for row in 0..batch.num_rows() {
            let stream_key = stream_keys[row];
            if !picked.get(stream_key as usize).copied().unwrap_or(false) {
                continue;
            }
            if entered != Some(stream_key) {
                entered = Some(stream_key);
                self.children
                    .enter(stream_values.value(stream_key as usize));
            }
            let duration = durations[row];
            let child_ns = self.children.close(
                span_ids[row],
                depths[row] as usize,
                parent_ids[row],
                duration,
            );
            let begin = begins[row];
            if begin < self.begin_ns || begin >= self.end_ns {
                continue;
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
            let acc = &mut self.names[slot];
            acc.count += 1;
            acc.total_ns = acc.total_ns.saturating_add(duration);
            acc.self_ns = acc
                .self_ns
                .saturating_add(duration.saturating_sub(child_ns));
            acc.max_ns = acc.max_ns.max(duration);
            match &mut acc.durations {
                Durations::Exact(all) => {
                    all.push(duration);
                    self.exact_kept += 1;
                }
                Durations::Sketch {
                    buckets,
                    sample,
                    seen,
                } => {
                    *buckets.entry(bucket_of(duration)).or_insert(0) += 1;
                    reservoir(sample, seen, &mut self.rng, duration);
                }
            }
            if self.exact_kept > self.exact_limit && self.exact_kept != usize::MAX {
                self.switch_to_sketches();
            }
        }
        Ok(())
    }

    /// The statistics, sorted by total time (largest first), as the panel's.
    pub fn finish(self) -> Vec<NameStats> {
        let mut out: Vec<NameStats> = self
            .names
            .into_iter()
            .filter(|acc| acc.count > 0)
            .map(|acc| {
                let n = acc.count;
                let mut stats = NameStats {
                    name: acc.name,
                    count: n,
                    total_ns: acc.total_ns,
                    self_ns: acc.self_ns,
                    mean_ns: acc.total_ns as f64 / n as f64,
                    max_ns: acc.max_ns,
                    ..Default::default()
                };
                match acc.durations {
                    Durations::Exact(mut all) => {
                        let (p50, p90, p99) = crate::analysis::percentiles(&mut all);
                        (stats.p50_ns, stats.p90_ns, stats.p99_ns) = (p50, p90, p99);
                        stats.durations_ns = all;
                    }
                    Durations::Sketch {
                        buckets, sample, ..
                    } => {
                        let at = |p: f64| -> i64 {
                            let rank = crate::analysis::rank(n as usize, p) as u64 + 1;
                            let mut seen = 0u64;
                            for (&bucket, &count) in &buckets {
                                seen += count;
                                if seen >= rank {
                                    return bucket_upper_ns(bucket).min(acc.max_ns);
                                }
                            }
                            acc.max_ns
                        };
                        (stats.p50_ns, stats.p90_ns, stats.p99_ns) = (at(0.5), at(0.9), at(0.99));
                        stats.durations_ns = sample;
                        stats.approximate = true;
                    }
                }
                stats
            })
            .collect();
        out.sort_by(|a, b| b.total_ns.cmp(&a.total_ns).then(a.name.cmp(&b.name)));
        out
    }
}

/// Reservoir sampling (Algorithm R) of `value` into `sample`, `seen` values so far.
fn reservoir(sample: &mut Vec<i64>, seen: &mut u64, rng: &mut u64, value: i64) {
    *seen += 1;
    if sample.len() < SAMPLE_DURATIONS {
        sample.push(value);
        return;
    }
    // SplitMix64 step.
    *rng = rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *rng;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    let slot = ((z ^ (z >> 31)) % *seen) as usize;
    if let Some(s) = sample.get_mut(slot) {
        *s = value;
    }
}

impl crate::Engine {
    /// Span statistics of the spans of `index`'s selection that begin in `[begin_ns, end_ns)`
    /// on `streams` (all if `None`), folded block by block (module docs): for a range that is
    /// not loaded as detail, in memory bounded by the names.
    pub async fn range_span_stats(
        &self,
        index: &TimelineIndex,
        (begin_ns, end_ns): (i64, i64),
        streams: Option<HashSet<String>>,
        progress: &crate::tables::Progress,
    ) -> Result<Vec<NameStats>, EngineError> {
        self.range_span_stats_with(
            index,
            RangeStatsFolder::new(begin_ns, end_ns, streams),
            progress,
        )
        .await
    }

    /// [`crate::Engine::range_span_stats`] with a folder set up by the caller (its exact limit).
    pub async fn range_span_stats_with(
        &self,
        index: &TimelineIndex,
        folder: RangeStatsFolder,
        progress: &crate::tables::Progress,
    ) -> Result<Vec<NameStats>, EngineError> {
        let pruning = crate::tables::Pruning {
            stream_ids: folder.streams.clone(),
            ..crate::tables::Pruning::of_processes(&index.process_ids)
        }
        .overlapping((folder.begin_ns, folder.end_ns));
        let scan = self
            .span_blocks(&pruning)
            .await?
            .with_columns(&[
                "stream_id",
                "span_id",
                "parent_id",
                "depth",
                "name",
                "begin_time",
                "duration_ns",
            ])?
            .caching(crate::tables::Caching::DiskOnly);
        let folder =
            crate::engine::fold_scan(scan, progress, folder, |folder, batch| folder.push(batch))
                .await?;
        Ok(folder.finish())
    }
}

/// A span found by name ([`crate::Engine::find_span`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundSpan {
    pub stream_id: String,
    pub depth: u32,
    pub begin_ns: i64,
    pub end_ns: i64,
    pub name: String,
}

/// Blocks read per step of a search (it widens the window until a match or the session's end).
const FIND_BLOCKS_PER_STEP: usize = 32;

impl crate::Engine {
    /// The first span of `index`'s selection whose name contains `text` (or equals it, without
    /// `substring`) that begins after `after_ns` (`forward`) or the last that begins before it,
    /// read from the blocks a window at a time (memory: the window's blocks), the window moving
    /// until a match or the session's end: find across a session of any length.
    pub async fn find_span(
        &self,
        index: &TimelineIndex,
        text: &str,
        substring: bool,
        after_ns: i64,
        forward: bool,
        progress: &crate::tables::Progress,
    ) -> Result<Option<FoundSpan>, EngineError> {
        if text.is_empty() {
            return Ok(None);
        }
        // The index's blocks are sorted by begin: windows of a few blocks each.
        let edges = &index.blocks;
        let mut cursor = after_ns;
        loop {
            let window = if forward {
                let from = edges.partition_point(|b| b.begin_ns <= cursor);
                if cursor > index.end_ns {
                    return Ok(None);
                }
                let to = edges
                    .get(from + FIND_BLOCKS_PER_STEP)
                    .map(|b| b.begin_ns)
                    .unwrap_or(index.end_ns.saturating_add(1));
                (cursor, to)
            } else {
                if cursor < index.begin_ns {
                    return Ok(None);
                }
                let to = edges.partition_point(|b| b.begin_ns < cursor);
                let from = to
                    .checked_sub(FIND_BLOCKS_PER_STEP)
                    .and_then(|i| edges.get(i))
                    .map(|b| b.begin_ns)
                    .unwrap_or(index.begin_ns.saturating_sub(1));
                (from, cursor)
            };
            let scan = self
                .span_blocks(
                    &crate::tables::Pruning::of_processes(&index.process_ids).overlapping(window),
                )
                .await?
                .with_columns(&["stream_id", "depth", "name", "begin_time", "end_time"])?
                .caching(crate::tables::Caching::DiskOnly);
            let text = text.to_owned();
            let best = crate::engine::fold_scan(scan, progress, None, move |best, batch| {
                find_in(batch, &text, substring, window, forward, best)
            })
            .await?;
            if best.is_some() {
                return Ok(best);
            }
            cursor = if forward { window.1 } else { window.0 };
        }
    }
}

/// Keeps in `best` the match of `batch` nearest the window's start (forward: the earliest
/// begin after `window.0`; backward: the latest before `window.1`).
fn find_in(
    batch: &RecordBatch,
    text: &str,
    substring: bool,
    (from, to): (i64, i64),
    forward: bool,
    best: &mut Option<FoundSpan>,
) -> Result<(), EngineError> {
    let stream = columns::string_dictionary(batch, "stream_id")?;
    let name = columns::string_dictionary(batch, "name")?;
    let depths = columns::u32_values(batch, "depth")?;
    let begins = columns::values::<TimestampNanosecondType>(batch, "begin_time")?;
    let ends = columns::values::<TimestampNanosecondType>(batch, "end_time")?;
    let name_values = name.values().as_string::<i32>();
    let matching: Vec<bool> = (0..name_values.len())
        .map(|k| {
            let n = name_values.value(k);
            if substring {
                n.contains(text)
            } else {
                n == text
            }
        })
        .collect();
    let (stream_keys, name_keys) = (stream.keys().values(), name.keys().values());
    for row in 0..batch.num_rows() {
        if !matching
            .get(name_keys[row] as usize)
            .copied()
            .unwrap_or(false)
        {
            continue;
        }
        let begin = begins[row];
        let inside = if forward {
            begin > from && begin <= to
        } else {
            begin >= from && begin < to
        };
        let better = best.as_ref().is_none_or(|b| {
            if forward {
                begin < b.begin_ns
            } else {
                begin > b.begin_ns
            }
        });
        if inside && better {
            *best = Some(FoundSpan {
                stream_id: stream
                    .values()
                    .as_string::<i32>()
                    .value(stream_keys[row] as usize)
                    .to_owned(),
                depth: depths[row],
                begin_ns: begin,
                end_ns: ends[row],
                name: name_values.value(name_keys[row] as usize).to_owned(),
            });
        }
    }
    Ok(())
}
