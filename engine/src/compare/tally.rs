//! One pass over a side's spans: per span name, every duration (for percentiles), the time spent
//! in it and in its own code (self) within frames, the same per frame for the names that are
//! tested, and its longest instance.
//!
//! A span belongs to the frame of its process in which it **begins** (worker threads too: the
//! frames are the main thread's markers). Self time is the duration minus the direct children's,
//! found with one cursor into the lane below, as in `analysis::span_stats`.

use super::side::Side;
use crate::timeline::Lane;
use std::collections::HashMap;

/// At most this many per-frame cells (names × frames) per side and per measure: the names with
/// the most time are tested first; the others keep their statistics but get no p-value.
pub const MAX_PER_FRAME_CELLS: usize = 1 << 22;

/// Span names of both sides, by id.
#[derive(Clone, Debug, Default)]
pub struct Names {
    pub names: Vec<String>,
    ids: HashMap<String, u32>,
}

impl Names {
    fn id(&mut self, name: &str) -> u32 {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        self.names.push(name.to_owned());
        let id = (self.names.len() - 1) as u32;
        self.ids.insert(name.to_owned(), id);
        id
    }

    /// Per call site of `side`'s model: its name id.
    pub fn of_sites(&mut self, side: &Side) -> Vec<u32> {
        side.model.sites.iter().map(|s| self.id(&s.name)).collect()
    }
}

/// Where a span is, to jump to it: its track in the side's model, and its times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Instance {
    pub track: usize,
    pub begin_ns: i64,
    pub end_ns: i64,
}

/// What one side holds of one name.
#[derive(Clone, Debug, Default)]
pub struct NameTally {
    /// Every span of the name that begins in the side's range.
    pub durations_ns: Vec<i64>,
    /// Spans that begin in a frame, and their total and self time.
    pub in_frames: u64,
    pub total_ns: i64,
    pub self_ns: i64,
    pub worst: Option<Instance>,
}

/// One side's tally.
#[derive(Clone, Debug, Default)]
pub struct SideTally {
    pub frames: usize,
    /// By name id.
    pub names: Vec<NameTally>,
    /// By slot (see [`slots`]): per frame, the time in the name and in its own code.
    pub per_frame_total_ns: Vec<Vec<i64>>,
    pub per_frame_self_ns: Vec<Vec<i64>>,
}

/// Spans of `lane` that begin in the side's range.
fn in_range(lane: &Lane, range_ns: Option<(i64, i64)>) -> std::ops::Range<usize> {
    match range_ns {
        None => 0..lane.len(),
        Some((from, to)) => {
            let first = lane.begin_ns.partition_point(|&b| b < from);
            let last = lane.begin_ns.partition_point(|&b| b < to);
            first..last.max(first)
        }
    }
}

/// Total duration per name id of `side` (what decides which names are tested).
pub fn totals(side: &Side, site_names: &[u32], name_count: usize) -> Vec<i64> {
    let mut totals = vec![0i64; name_count];
    for track in &side.model.tracks {
        for lane in &track.lanes {
            for i in in_range(lane, side.range_ns) {
                let name = site_names.get(lane.name[i] as usize).copied().unwrap_or(0);
                if let Some(t) = totals.get_mut(name as usize) {
                    *t = t.saturating_add(lane.end_ns[i].saturating_sub(lane.begin_ns[i]).max(0));
                }
            }
        }
    }
    totals
}

/// Per name id, its per-frame slot: the names with the most time on both sides, as many as
/// [`MAX_PER_FRAME_CELLS`] allows for `frames` frames.
pub fn slots(combined_totals: &[i64], frames: usize) -> Vec<Option<usize>> {
    let capacity = MAX_PER_FRAME_CELLS / frames.max(1);
    let mut order: Vec<usize> = (0..combined_totals.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(combined_totals[i]));
    let mut slots = vec![None; combined_totals.len()];
    for (slot, &name) in order.iter().take(capacity).enumerate() {
        slots[name] = Some(slot);
    }
    slots
}

/// The tally of `side`. `site_names`: name id per call site; `slots`: per-frame slot per name id.
pub fn tally(side: &Side, site_names: &[u32], slots: &[Option<usize>]) -> SideTally {
    let frames = side.frame_count();
    let slot_count = slots.iter().flatten().count();
    let mut out = SideTally {
        frames,
        names: vec![NameTally::default(); slots.len()],
        per_frame_total_ns: vec![vec![0; frames]; slot_count],
        per_frame_self_ns: vec![vec![0; frames]; slot_count],
    };
    // Each process's frames, and where they start in the side's frame numbering.
    let mut offset = 0;
    let mut frames_of: HashMap<&str, (usize, &[crate::reads::FrameTime])> = HashMap::new();
    for p in &side.frames {
        frames_of.insert(p.process_id.as_str(), (offset, p.frames.as_slice()));
        offset += p.frames.len();
    }
    for (track_index, track) in side.model.tracks.iter().enumerate() {
        let (offset, frames) = frames_of
            .get(track.process_id.as_str())
            .copied()
            .unwrap_or((0, &[]));
        for (depth, lane) in track.lanes.iter().enumerate() {
            let range = in_range(lane, side.range_ns);
            let Some(&first_begin) = lane.begin_ns.get(range.start) else {
                continue;
            };
            let children = track.lanes.get(depth + 1);
            let mut c = children.map_or(0, |ch| ch.begin_ns.partition_point(|&b| b < first_begin));
            let mut f = frames.partition_point(|fr| fr.end_ns <= first_begin);
            for i in range {
                let (b, e) = (lane.begin_ns[i], lane.end_ns[i]);
                // Times come from a lake: never trust them to be ordered or small.
                let duration = e.saturating_sub(b).max(0);
                let mut inner: i64 = 0;
                if let Some(ch) = children {
                    while c < ch.len() && ch.begin_ns[c] < b {
                        c += 1;
                    }
                    while c < ch.len() && ch.begin_ns[c] <= e {
                        inner = inner.saturating_add(
                            ch.end_ns[c].min(e).saturating_sub(ch.begin_ns[c]).max(0),
                        );
                        c += 1;
                    }
                }
                let self_ns = duration.saturating_sub(inner);
                let name = site_names.get(lane.name[i] as usize).copied().unwrap_or(0) as usize;
                let Some(t) = out.names.get_mut(name) else {
                    continue;
                };
                t.durations_ns.push(duration);
                if t.worst
                    .as_ref()
                    .is_none_or(|w| w.end_ns.saturating_sub(w.begin_ns) < duration)
                {
                    t.worst = Some(Instance {
                        track: track_index,
                        begin_ns: b,
                        end_ns: e,
                    });
                }
                while f < frames.len() && frames[f].end_ns <= b {
                    f += 1;
                }
                if f < frames.len() && frames[f].begin_ns <= b {
                    t.in_frames += 1;
                    t.total_ns = t.total_ns.saturating_add(duration);
                    t.self_ns = t.self_ns.saturating_add(self_ns);
                    if let Some(slot) = slots.get(name).copied().flatten() {
                        let cell = &mut out.per_frame_total_ns[slot][offset + f];
                        *cell = cell.saturating_add(duration);
                        let cell = &mut out.per_frame_self_ns[slot][offset + f];
                        *cell = cell.saturating_add(self_ns);
                    }
                }
            }
        }
    }
    out
}
