//! The timeline's in-memory model: every loaded span of the selected processes, by thread and
//! depth, and the one question a frame asks it — what is visible between two times at a given
//! zoom. Spans narrower than a few pixels fold into one mark that counts them (Tracy's idea),
//! found by binary search, so a frame costs what is on screen, not what is loaded.
//!
//! Memory: 20 bytes per span (begin, end, name index) plus the per-lane vectors' slack.
//!
//! The same model holds a session's **overview** (`crate::overview`): there a lane entry may
//! stand for several spans (`Lane::count`), drawn as a fold that counts them.

use crate::error::EngineError;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, DictionaryArray, PrimitiveArray, RecordBatch,
};
use datafusion::arrow::datatypes::{
    ArrowPrimitiveType, Int32Type, TimestampNanosecondType, UInt32Type,
};
use std::collections::HashMap;

/// Spans of one depth of one thread: they never overlap, so sorted by begin they are also
/// sorted by end.
#[derive(Clone, Debug, Default)]
pub struct Lane {
    pub begin_ns: Vec<i64>,
    pub end_ns: Vec<i64>,
    pub name: Vec<u32>,
    /// Spans each entry stands for, in an overview (an entry over 1 is an aggregate of that
    /// many spans, drawn as a fold); empty in a model of spans, where each entry is one.
    pub count: Vec<u32>,
}

impl Lane {
    pub fn len(&self) -> usize {
        self.begin_ns.len()
    }

    /// Spans entry `index` stands for (1 in a model of spans).
    pub fn weight(&self, index: usize) -> usize {
        self.count.get(index).map_or(1, |&c| c as usize)
    }

    /// Spans this lane stands for.
    pub fn span_count(&self) -> usize {
        if self.count.is_empty() {
            self.len()
        } else {
            self.count.iter().map(|&c| c as usize).sum()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.begin_ns.is_empty()
    }

    /// Sorts by begin. Decoded blocks come in order, so this is rarely needed; when it is, the
    /// columns are permuted one at a time (peak: one column and the order, not three columns).
    pub fn sort_by_begin(&mut self) {
        if self.begin_ns.windows(2).all(|w| w[0] <= w[1]) {
            return;
        }
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.sort_by_key(|&i| self.begin_ns[i]);
        fn permute<T: Copy>(column: &mut Vec<T>, order: &[usize]) {
            let sorted: Vec<T> = order.iter().map(|&i| column[i]).collect();
            *column = sorted;
        }
        permute(&mut self.begin_ns, &order);
        permute(&mut self.end_ns, &order);
        permute(&mut self.name, &order);
        if !self.count.is_empty() {
            permute(&mut self.count, &order);
        }
    }
}

/// One thread of one process.
#[derive(Clone, Debug, Default)]
pub struct Track {
    pub process_id: String,
    pub stream_id: String,
    pub thread_name: String,
    /// `lanes[d]` holds the spans at depth `d`.
    pub lanes: Vec<Lane>,
}

impl Track {
    pub fn span_count(&self) -> usize {
        self.lanes.iter().map(Lane::span_count).sum()
    }
}

/// What to draw for one lane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    /// One span wide enough to see: its index in the lane.
    Span { index: usize },
    /// `count` spans too narrow to draw one by one, between `begin_ns` and `end_ns`.
    Fold {
        begin_ns: i64,
        end_ns: i64,
        count: usize,
    },
}

/// Where a span was recorded: what a lane's `name` index refers to.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct SpanSite {
    pub name: String,
    pub file: String,
    pub line: u32,
}

/// Every loaded span, by track.
#[derive(Clone, Debug, Default)]
pub struct TimelineModel {
    pub tracks: Vec<Track>,
    /// Call sites; lanes refer to them by index.
    pub sites: Vec<SpanSite>,
    pub begin_ns: i64,
    pub end_ns: i64,
}

type IdColumns<'a> = (
    &'a DictionaryArray<Int32Type>,
    &'a DictionaryArray<Int32Type>,
    &'a DictionaryArray<Int32Type>,
);

/// The track of a row's stream (`ids`: stream, process and thread columns), created on first
/// sight.
fn track_for_row(
    tracks: &mut Vec<Track>,
    track_ids: &mut HashMap<String, usize>,
    (stream, process, thread): IdColumns<'_>,
    row: usize,
) -> usize {
    let value = |column: &DictionaryArray<Int32Type>| -> String {
        let values = column.values().as_string::<i32>();
        values.value(column.keys().value(row) as usize).to_owned()
    };
    let stream_id = value(stream);
    if let Some(&t) = track_ids.get(&stream_id) {
        return t;
    }
    tracks.push(Track {
        process_id: value(process),
        stream_id: stream_id.clone(),
        thread_name: value(thread),
        lanes: Vec::new(),
    });
    track_ids.insert(stream_id, tracks.len() - 1);
    tracks.len() - 1
}

/// Builds a [`TimelineModel`] one `thread_spans` batch at a time, so a load holds the model and
/// the batches in flight, never every decoded batch.
#[derive(Debug, Default)]
pub struct TimelineBuilder {
    sites: Vec<SpanSite>,
    site_ids: HashMap<SpanSite, u32>,
    tracks: Vec<Track>,
    track_ids: HashMap<String, usize>,
    begin_ns: Option<i64>,
    end_ns: Option<i64>,
}

fn column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef, EngineError> {
    batch
        .column_by_name(name)
        .ok_or_else(|| EngineError::Query(format!("thread_spans has no {name} column")))
}

fn dictionary<'a>(
    batch: &'a RecordBatch,
    name: &str,
) -> Result<&'a DictionaryArray<Int32Type>, EngineError> {
    column(batch, name)?
        .as_dictionary_opt::<Int32Type>()
        .filter(|d| d.values().as_string_opt::<i32>().is_some())
        .ok_or_else(|| {
            EngineError::Query(format!("thread_spans.{name} is not a string dictionary"))
        })
}

fn primitive<'a, T: ArrowPrimitiveType>(
    batch: &'a RecordBatch,
    name: &str,
) -> Result<&'a PrimitiveArray<T>, EngineError> {
    column(batch, name)?
        .as_primitive_opt::<T>()
        .ok_or_else(|| EngineError::Query(format!("thread_spans.{name} has an unexpected type")))
}

impl TimelineBuilder {
    pub fn new() -> TimelineBuilder {
        TimelineBuilder::default()
    }

    /// Lists a thread before any of its spans is seen, so the model has its track even when the
    /// rows loaded hold none of its spans (a model of a time range where the thread was idle).
    pub fn add_track(&mut self, process_id: &str, stream_id: &str, thread_name: &str) {
        if self.track_ids.contains_key(stream_id) {
            return;
        }
        self.tracks.push(Track {
            process_id: process_id.to_owned(),
            stream_id: stream_id.to_owned(),
            thread_name: thread_name.to_owned(),
            lanes: Vec::new(),
        });
        self.track_ids
            .insert(stream_id.to_owned(), self.tracks.len() - 1);
    }

    /// Adds the spans of one `thread_spans` batch (batches may come in any order).
    pub fn push(&mut self, batch: &RecordBatch) -> Result<(), EngineError> {
        let TimelineBuilder {
            sites,
            site_ids,
            tracks,
            track_ids,
            begin_ns,
            end_ns,
        } = self;
        let stream = dictionary(batch, "stream_id")?;
        let stream_values = stream.values().as_string::<i32>();
        let process = dictionary(batch, "process_id")?;
        let thread = dictionary(batch, "thread_name")?;
        let name = dictionary(batch, "name")?;
        let name_values = name.values().as_string::<i32>();
        let file = dictionary(batch, "file")?;
        let file_values = file.values().as_string::<i32>();
        let line = primitive::<UInt32Type>(batch, "line")?;
        let depth = primitive::<UInt32Type>(batch, "depth")?;
        let begin = primitive::<TimestampNanosecondType>(batch, "begin_time")?;
        let end = primitive::<TimestampNanosecondType>(batch, "end_time")?;
        // (name key, file key, line) of this batch → site id, looked up once per site: the
        // decoder gives name and file the same key per call site, so a slot per name key
        // answers almost every row without hashing.
        let mut local_sites: HashMap<(i32, i32, u32), u32> = HashMap::new();
        let mut by_name_key: Vec<Option<(i32, u32, u32)>> = vec![None; name_values.len()];
        let mut site_of = |name_key: i32, file_key: i32, line: u32| -> u32 {
            let slot = by_name_key.get_mut(name_key as usize);
            if let Some(Some((f, l, site))) = slot.as_deref()
                && *f == file_key
                && *l == line
            {
                return *site;
            }
            let site = *local_sites
                .entry((name_key, file_key, line))
                .or_insert_with(|| {
                    let site = SpanSite {
                        name: name_values.value(name_key as usize).to_owned(),
                        file: file_values.value(file_key as usize).to_owned(),
                        line,
                    };
                    *site_ids.entry(site.clone()).or_insert_with(|| {
                        sites.push(site);
                        (sites.len() - 1) as u32
                    })
                });
            if let Some(slot) = slot {
                *slot = Some((file_key, line, site));
            }
            site
        };
        // A batch of the decoder holds one stream: its track is found once, not per row.
        let ids = (stream, process, thread);
        let batch_track = (stream_values.len() == 1 && batch.num_rows() > 0)
            .then(|| track_for_row(tracks, track_ids, ids, 0));
        let (depths, begins, ends) = (depth.values(), begin.values(), end.values());
        let (name_keys, file_keys, lines) =
            (name.keys().values(), file.keys().values(), line.values());
        let (mut begin_all, mut end_all) = (i64::MAX, i64::MIN);
        for row in 0..batch.num_rows() {
            let track = match batch_track {
                Some(t) => t,
                None => track_for_row(tracks, track_ids, ids, row),
            };
            let d = depths[row] as usize;
            let lanes = &mut tracks[track].lanes;
            if lanes.len() <= d {
                lanes.resize_with(d + 1, Lane::default);
            }
            let (b, e) = (begins[row], ends[row]);
            begin_all = begin_all.min(b);
            end_all = end_all.max(e);
            let lane = &mut lanes[d];
            lane.begin_ns.push(b);
            lane.end_ns.push(e);
            lane.name
                .push(site_of(name_keys[row], file_keys[row], lines[row]));
        }
        if batch.num_rows() > 0 {
            *begin_ns = Some(begin_ns.map_or(begin_all, |b| b.min(begin_all)));
            *end_ns = Some(end_ns.map_or(end_all, |e| e.max(end_all)));
        }
        Ok(())
    }

    /// The model: lanes sorted by begin, without spare capacity.
    pub fn finish(self) -> TimelineModel {
        let mut tracks = self.tracks;
        for track in &mut tracks {
            for lane in &mut track.lanes {
                lane.sort_by_begin();
                lane.begin_ns.shrink_to_fit();
                lane.end_ns.shrink_to_fit();
                lane.name.shrink_to_fit();
            }
        }
        tracks.sort_by(|a, b| {
            (&a.process_id, &a.thread_name, &a.stream_id).cmp(&(
                &b.process_id,
                &b.thread_name,
                &b.stream_id,
            ))
        });
        TimelineModel {
            tracks,
            sites: self.sites,
            begin_ns: self.begin_ns.unwrap_or(0),
            end_ns: self.end_ns.unwrap_or(0),
        }
    }
}

impl TimelineModel {
    /// Builds the model from `thread_spans` batches (any order).
    pub fn from_batches(batches: &[RecordBatch]) -> Result<TimelineModel, EngineError> {
        let mut builder = TimelineBuilder::new();
        for batch in batches {
            builder.push(batch)?;
        }
        Ok(builder.finish())
    }

    pub fn span_count(&self) -> usize {
        self.tracks.iter().map(Track::span_count).sum()
    }

    /// Bytes held for spans (the vectors' capacities).
    pub fn span_bytes(&self) -> usize {
        self.tracks
            .iter()
            .flat_map(|t| &t.lanes)
            .map(|l| l.begin_ns.capacity() * 8 + l.end_ns.capacity() * 8 + l.name.capacity() * 4)
            .sum()
    }

    /// Gives each track at least as many lanes as the same track of `other` has (tracks are
    /// matched by stream), so rows keep their places when the viewer switches between the two.
    pub fn pad_lanes_like(&mut self, other: &TimelineModel) {
        let depths: HashMap<&str, usize> = other
            .tracks
            .iter()
            .map(|t| (t.stream_id.as_str(), t.lanes.len()))
            .collect();
        for track in &mut self.tracks {
            if let Some(&n) = depths.get(track.stream_id.as_str())
                && track.lanes.len() < n
            {
                track.lanes.resize_with(n, Lane::default);
            }
        }
    }

    pub fn name(&self, site: u32) -> &str {
        self.sites
            .get(site as usize)
            .map_or("?", |s| s.name.as_str())
    }

    pub fn site(&self, site: u32) -> Option<&SpanSite> {
        self.sites.get(site as usize)
    }
}

/// The marks of `lane` visible in `[t0, t1]` at `ns_per_px`, in time order: spans at least
/// `min_px` wide one by one, runs of narrower ones folded. O(marks × log n).
pub fn visible_marks(
    lane: &Lane,
    t0: i64,
    t1: i64,
    ns_per_px: f64,
    min_px: f64,
    out: &mut Vec<Mark>,
) {
    let n = lane.len();
    let min_ns = (min_px * ns_per_px).max(1.0) as i64;
    let weighted = !lane.count.is_empty();
    // Ends are sorted too: the first span that ends at or after t0.
    let mut i = lane.end_ns.partition_point(|&e| e < t0);
    while i < n && lane.begin_ns[i] <= t1 {
        let (b, e) = (lane.begin_ns[i], lane.end_ns[i]);
        if e.saturating_sub(b) >= min_ns {
            out.push(match lane.weight(i) {
                1 => Mark::Span { index: i },
                // An overview's aggregate wide enough to see: a fold of its spans.
                count => Mark::Fold {
                    begin_ns: b,
                    end_ns: e,
                    count,
                },
            });
            i += 1;
            continue;
        }
        // A run of narrow spans: every span that begins within `min_ns` of this one.
        let limit = b.saturating_add(min_ns);
        let mut j = i + 1 + lane.begin_ns[i + 1..].partition_point(|&x| x < limit);
        // Only the run's last span can be wide (spans do not overlap): draw it by itself.
        if j - 1 > i && lane.end_ns[j - 1].saturating_sub(lane.begin_ns[j - 1]) >= min_ns {
            j -= 1;
        }
        if j - i == 1 && lane.weight(i) == 1 {
            out.push(Mark::Span { index: i });
        } else {
            let count = if weighted {
                lane.count[i..j].iter().map(|&c| c as usize).sum()
            } else {
                j - i
            };
            out.push(Mark::Fold {
                begin_ns: b,
                end_ns: lane.end_ns[j - 1],
                count,
            });
        }
        i = j;
    }
}

/// One mark to draw, with where it goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlacedMark {
    pub track: u32,
    pub depth: u32,
    pub mark: Mark,
}

/// Everything visible in `[t0, t1]` on a timeline `width_px` wide: the work of one frame.
///
/// Depth by depth, like Tracy: a span nests inside its parent, so the spans of depth `d + 1`
/// are looked for only under the spans of depth `d` drawn wide enough to be seen. Under a fold
/// (too narrow to see one by one) nothing deeper is drawn — its children are narrower still — so
/// a frame's cost follows the marks on screen even zoomed out over 10^8 spans.
pub fn prepare_frame(
    model: &TimelineModel,
    t0: i64,
    t1: i64,
    width_px: f64,
    min_px: f64,
    out: &mut Vec<PlacedMark>,
) {
    out.clear();
    let ns_per_px = (t1.saturating_sub(t0).max(1) as f64) / width_px.max(1.0);
    let min_ns = (min_px * ns_per_px).max(1.0) as i64;
    let mut marks = Vec::new();
    // The time ranges of the previous depth's wide spans, merged where they touch.
    let mut parents: Vec<(i64, i64)> = Vec::new();
    let mut next: Vec<(i64, i64)> = Vec::new();
    for (track_index, track) in model.tracks.iter().enumerate() {
        parents.clear();
        parents.push((t0, t1));
        for (depth, lane) in track.lanes.iter().enumerate() {
            if parents.is_empty() {
                break;
            }
            next.clear();
            for &(p0, p1) in &parents {
                marks.clear();
                visible_marks(lane, p0.max(t0), p1.min(t1), ns_per_px, min_px, &mut marks);
                for &mark in &marks {
                    // A narrow span drawn alone (its neighbours are far) has no visible children.
                    if let Mark::Span { index } = mark
                        && lane.end_ns[index].saturating_sub(lane.begin_ns[index]) >= min_ns
                    {
                        let range = (lane.begin_ns[index], lane.end_ns[index]);
                        match next.last_mut() {
                            Some(last) if last.1 >= range.0 => last.1 = last.1.max(range.1),
                            _ => next.push(range),
                        }
                    }
                    out.push(PlacedMark {
                        track: track_index as u32,
                        depth: depth as u32,
                        mark,
                    });
                }
            }
            std::mem::swap(&mut parents, &mut next);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lane(spans: &[(i64, i64)]) -> Lane {
        Lane {
            begin_ns: spans.iter().map(|s| s.0).collect(),
            end_ns: spans.iter().map(|s| s.1).collect(),
            name: vec![0; spans.len()],
            count: Vec::new(),
        }
    }

    #[test]
    fn nothing_is_drawn_under_a_fold_and_children_under_wide_spans_are() {
        // Depth 0: one wide span [0, 1000) and, later, many narrow ones; depth 1: children of
        // both (the narrow parents' children are narrower still).
        let mut depth0: Vec<(i64, i64)> = vec![(0, 1000)];
        let mut depth1: Vec<(i64, i64)> = vec![(100, 400), (500, 501), (502, 503)];
        for k in 0..100 {
            let b = 2000 + k * 2;
            depth0.push((b, b + 1));
            depth1.push((b, b + 1));
        }
        let model = TimelineModel {
            tracks: vec![Track {
                lanes: vec![lane(&depth0), lane(&depth1)],
                ..Default::default()
            }],
            ..Default::default()
        };
        let mut out = Vec::new();
        // 1 ns per px, 3 px minimum: the narrow parents fold, the wide one does not.
        prepare_frame(&model, 0, 3000, 3000.0, 3.0, &mut out);
        let at = |d: u32| -> Vec<Mark> {
            out.iter()
                .filter(|m| m.depth == d)
                .map(|m| m.mark)
                .collect()
        };
        assert_eq!(at(0)[0], Mark::Span { index: 0 });
        assert!(at(0)[1..].iter().all(|m| matches!(m, Mark::Fold { .. })));
        assert_eq!(
            at(0)[1..]
                .iter()
                .map(|m| match m {
                    Mark::Fold { count, .. } => *count,
                    Mark::Span { .. } => 1,
                })
                .sum::<usize>(),
            100
        );
        // Under the wide span: its children (one wide, two narrow folded together); under the
        // folds: nothing.
        assert_eq!(
            at(1),
            vec![
                Mark::Span { index: 0 },
                Mark::Fold {
                    begin_ns: 500,
                    end_ns: 503,
                    count: 2
                }
            ]
        );
        // Zoomed in on the narrow parents (0.01 ns per px), they and their children are drawn.
        prepare_frame(&model, 2000, 2030, 3000.0, 3.0, &mut out);
        assert!(
            out.iter()
                .any(|m| m.depth == 1 && m.mark == Mark::Span { index: 3 })
        );
    }

    #[test]
    fn wide_spans_are_drawn_one_by_one() {
        let l = lane(&[(0, 100), (100, 200), (300, 400)]);
        let mut out = Vec::new();
        visible_marks(&l, 0, 1000, 1.0, 3.0, &mut out);
        assert_eq!(
            out,
            vec![
                Mark::Span { index: 0 },
                Mark::Span { index: 1 },
                Mark::Span { index: 2 }
            ]
        );
        out.clear();
        visible_marks(&l, 150, 350, 1.0, 3.0, &mut out);
        assert_eq!(out, vec![Mark::Span { index: 1 }, Mark::Span { index: 2 }]);
    }

    #[test]
    fn narrow_spans_fold_and_count() {
        // 1000 spans of 1 ns every 2 ns, then a wide one.
        let mut spans: Vec<(i64, i64)> = (0..1000).map(|i| (i * 2, i * 2 + 1)).collect();
        spans.push((5000, 9000));
        let l = lane(&spans);
        let mut out = Vec::new();
        // 10 ns per pixel, 3 px minimum: runs of 30 ns = 15 spans each.
        visible_marks(&l, 0, 10_000, 10.0, 3.0, &mut out);
        let folded: usize = out
            .iter()
            .map(|m| match m {
                Mark::Fold { count, .. } => *count,
                Mark::Span { .. } => 1,
            })
            .sum();
        assert_eq!(folded, 1001, "every span is drawn or counted once");
        assert_eq!(out.last(), Some(&Mark::Span { index: 1000 }));
        assert!(out.len() <= 1000 / 15 + 2, "{} marks", out.len());
        // Fully zoomed out: one fold for all the small ones.
        out.clear();
        visible_marks(&l, 0, 10_000, 1_000.0, 3.0, &mut out);
        assert_eq!(
            out[0],
            Mark::Fold {
                begin_ns: 0,
                end_ns: 1999,
                count: 1000
            }
        );
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn a_wide_span_after_narrow_ones_is_not_hidden() {
        let l = lane(&[(0, 1), (2, 3), (4, 500)]);
        let mut out = Vec::new();
        visible_marks(&l, 0, 1000, 1.0, 10.0, &mut out);
        assert_eq!(
            out,
            vec![
                Mark::Fold {
                    begin_ns: 0,
                    end_ns: 3,
                    count: 2
                },
                Mark::Span { index: 2 }
            ]
        );
    }
}
