//! The rows of the timeline, top to bottom: per process (with a header when there are several)
//! its threads, each a header, a log lane if the thread logged, then one lane per depth.

use super::{LANE_HEIGHT, LOG_LANE, PROCESS_HEADER, Row, RowKind, TRACK_HEADER};
use frameline_engine::timeline::TimelineModel;
use std::collections::{BTreeMap, BTreeSet};

/// Space between tracks and between processes.
const GAP: f32 = 6.0;

pub struct Layout {
    /// Top of each track's first lane (before scrolling).
    pub lane_tops: Vec<f32>,
    pub rows: Vec<Row>,
    pub total_height: f32,
}

pub fn layout(
    model: &TimelineModel,
    logs_by_track: &[Vec<usize>],
    process_labels: &BTreeMap<String, String>,
) -> Layout {
    let processes: BTreeSet<&str> = model.tracks.iter().map(|t| t.process_id.as_str()).collect();
    let grouped = processes.len() > 1;
    let mut y = 0.0;
    let mut rows = Vec::new();
    let mut lane_tops = Vec::with_capacity(model.tracks.len());
    let push = |rows: &mut Vec<Row>, y: &mut f32, kind: RowKind, height: f32| {
        rows.push(Row {
            kind,
            top: *y,
            height,
        });
        *y += height;
    };
    for (t, track) in model.tracks.iter().enumerate() {
        let first_of_process = t == 0 || model.tracks[t - 1].process_id != track.process_id;
        if grouped && first_of_process {
            if t > 0 {
                y += GAP;
            }
            let short: String = track.process_id.chars().take(8).collect();
            let label = match process_labels.get(&track.process_id) {
                Some(label) => format!("{label}  ({short})"),
                None => track.process_id.clone(),
            };
            push(&mut rows, &mut y, RowKind::Process(label), PROCESS_HEADER);
        }
        push(&mut rows, &mut y, RowKind::Track(t), TRACK_HEADER);
        if logs_by_track.get(t).is_some_and(|l| !l.is_empty()) {
            push(&mut rows, &mut y, RowKind::Logs(t), LOG_LANE);
        }
        lane_tops.push(y);
        for d in 0..track.lanes.len() {
            push(&mut rows, &mut y, RowKind::Lane(t, d), LANE_HEIGHT);
        }
        y += GAP;
    }
    Layout {
        lane_tops,
        rows,
        total_height: y,
    }
}
