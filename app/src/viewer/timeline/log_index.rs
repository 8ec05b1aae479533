//! The log markers of each track, in time order: rebuilt when the model or the logs change,
//! not every frame (a capture can hold 10^6 log lines); a frame binary-searches each track's
//! visible markers.

use super::LogMarker;
use frameline_engine::timeline::TimelineModel;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default)]
pub struct LogIndex {
    /// Model address and track count, log slice address and length.
    built_for: (usize, usize, usize, usize),
    pub by_track: Vec<Vec<usize>>,
}

impl LogIndex {
    pub fn update(&mut self, model: &TimelineModel, logs: &[LogMarker]) {
        let key = (
            model as *const TimelineModel as usize,
            model.tracks.len(),
            logs.as_ptr() as usize,
            logs.len(),
        );
        if key == self.built_for && self.by_track.len() == model.tracks.len() {
            return;
        }
        let track_of: BTreeMap<(&str, &str), usize> = model
            .tracks
            .iter()
            .enumerate()
            .map(|(t, track)| ((track.process_id.as_str(), track.thread_name.as_str()), t))
            .collect();
        let mut by_track: Vec<Vec<usize>> = vec![Vec::new(); model.tracks.len()];
        for (i, log) in logs.iter().enumerate() {
            if let Some(&t) = track_of.get(&(log.process_id.as_str(), log.thread_name.as_str())) {
                by_track[t].push(i);
            }
        }
        for ids in &mut by_track {
            ids.sort_by_key(|&i| logs[i].time_ns);
        }
        *self = LogIndex {
            built_for: key,
            by_track,
        };
    }

    /// The markers of track `t` whose time is in `[t0, t1]`.
    pub fn visible(&self, t: usize, logs: &[LogMarker], t0: f64, t1: f64) -> &[usize] {
        let ids = self.by_track.get(t).map_or(&[][..], Vec::as_slice);
        let lo = ids.partition_point(|&i| (logs[i].time_ns as f64) < t0);
        let hi = ids.partition_point(|&i| (logs[i].time_ns as f64) <= t1);
        &ids[lo..hi.max(lo)]
    }
}
