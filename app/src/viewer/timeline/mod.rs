//! The timeline: a track per thread, under a header per process when several are shown, nested
//! spans drawn by the wgpu instanced pipeline, folded marks for spans too narrow to see, names
//! where they fit, a time ruler, log markers on their own lane per thread, hover tooltips,
//! selection, a time-range selection (Ctrl+drag or drag on the ruler, like Tracy), instances of
//! one name highlighted (find-zone), and Tracy's navigation (wheel zoom around the cursor, drag
//! to pan, WASD).

//!
//! One frame, cut the way Tracy cuts it: input (`input.rs`) → layout of the rows (`layout.rs`)
//! → drawing per row kind (`spans.rs` for span lanes on the GPU, `rows.rs` for headers and log
//! lanes) → overlays (`ruler.rs`) → hover and clicks (`hover.rs`).

mod geometry;
mod hover;
mod input;
mod layout;
mod log_index;
mod rows;
mod ruler;
mod spans;

use crate::viewer::theme;
use egui::{Rect, Sense};
use frameline_engine::timeline::{Mark, PlacedMark, TimelineModel, prepare_frame};
use geometry::Geometry;
use log_index::LogIndex;
use std::collections::{BTreeMap, BTreeSet};

pub use crate::viewer::theme::{level_color, name_color};
pub use crate::viewer::time_format::format_duration;
pub use ruler::ruler_ticks;

pub const RULER_HEIGHT: f32 = 22.0;
pub const PROCESS_HEADER: f32 = 22.0;
pub const TRACK_HEADER: f32 = 18.0;
pub const LOG_LANE: f32 = 12.0;
pub const LANE_HEIGHT: f32 = 18.0;
/// Spans narrower than this fold into one mark (Tracy folds under a few pixels).
pub const MIN_SPAN_PX: f64 = 3.0;

/// A log line shown as a marker on its thread.
pub type LogMarker = frameline_engine::LogLine;

/// What one row of the timeline shows (the last frame's rows are kept for tests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RowKind {
    /// The header of a process, when several are shown: its label.
    Process(String),
    /// A thread's header.
    Track(usize),
    /// A thread's log markers.
    Logs(usize),
    /// Spans of one depth of a thread.
    Lane(usize, usize),
}

/// A row and where it is (top, before scrolling, and height).
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub kind: RowKind,
    pub top: f32,
    pub height: f32,
}

/// A span the user pointed at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpanRef {
    pub track: usize,
    pub depth: usize,
    pub index: usize,
}

/// Where the timeline looks and what is selected.
#[derive(Clone, Debug, Default)]
pub struct TimelineState {
    pub t0: f64,
    pub t1: f64,
    pub scroll_y: f32,
    pub selected: Option<SpanRef>,
    pub hovered: Option<SpanRef>,
    /// A time to mark with a vertical line (the hovered log line).
    pub marker_ns: Option<i64>,
    /// The selected time range (Ctrl+drag, or drag on the ruler), for the analysis panels.
    pub range: Option<(i64, i64)>,
    pub(super) range_drag: Option<f64>,
    /// Threads picked by clicking their header (indices into the model's tracks); none = all.
    pub picked_tracks: BTreeSet<usize>,
    /// Spans of this name are highlighted, the others dimmed (statistics row, find box).
    pub highlight_name: Option<String>,
    /// What the last frame drew (tests and benchmarks read it).
    pub last_marks: Vec<PlacedMark>,
    /// The rows of the last frame, in order.
    pub last_rows: Vec<Row>,
    /// Where the timeline was drawn last frame (its ruler on top).
    pub last_rect: Option<Rect>,
    /// Log markers placed in log lanes in the last frame (in the visible time range).
    pub last_log_marks: usize,
    pub(super) log_index: LogIndex,
    /// A span to select once the detail that holds it is drawn: track, depth, begin (find over
    /// a streamed session).
    pub pending_select: Option<(usize, usize, i64)>,
    /// Where find over a streamed session last stopped (the next search starts there).
    pub found_begin_ns: Option<i64>,
}

impl TimelineState {
    pub fn show_range(&mut self, t0: i64, t1: i64) {
        let (t0, t1) = (t0.min(t1), t0.max(t1));
        self.t0 = t0 as f64;
        self.t1 = (t1.max(t0 + 1000)) as f64;
    }

    pub fn center_on(&mut self, t: i64) {
        let half = (self.t1 - self.t0) / 2.0;
        self.t0 = t as f64 - half;
        self.t1 = t as f64 + half;
    }

    pub(super) fn zoom(&mut self, factor: f64, around: f64) {
        let factor = factor.clamp(0.01, 100.0);
        let new_width = ((self.t1 - self.t0) * factor).max(100.0);
        let fraction = (around - self.t0) / (self.t1 - self.t0).max(1.0);
        self.t0 = around - fraction * new_width;
        self.t1 = self.t0 + new_width;
    }

    pub(super) fn pan(&mut self, ns: f64) {
        self.t0 += ns;
        self.t1 += ns;
    }

    /// Names of the spans drawn one by one in the last frame.
    pub fn visible_span_names(&self, model: &TimelineModel) -> Vec<String> {
        self.last_marks
            .iter()
            .filter_map(|m| match m.mark {
                Mark::Span { index } => {
                    let lane = &model.tracks[m.track as usize].lanes[m.depth as usize];
                    Some(model.name(lane.name[index]).to_owned())
                }
                Mark::Fold { .. } => None,
            })
            .collect()
    }
}

/// Draws the timeline in `ui`'s remaining space. `origin_ns` is the zero of the ruler;
/// `process_labels` names processes (exe on computer) for their headers.
pub fn timeline_ui(
    ui: &mut egui::Ui,
    model: &TimelineModel,
    state: &mut TimelineState,
    logs: &[LogMarker],
    process_labels: &BTreeMap<String, String>,
    origin_ns: i64,
) {
    let (rect, response) = ui.allocate_exact_size(ui.available_size(), Sense::click_and_drag());
    ui.painter_at(rect).rect_filled(rect, 0.0, theme::CANVAS);
    if state.t1 <= state.t0 {
        state.show_range(model.begin_ns, model.end_ns);
    }
    state.log_index.update(model, logs);
    let layout = layout::layout(model, &state.log_index.by_track, process_labels);
    let max_scroll = (layout.total_height - (rect.height() - RULER_HEIGHT)).max(0.0);
    input::handle_input(ui, &response, state, max_scroll);

    // What is visible: the only per-frame work that depends on the data.
    let geometry = Geometry::new(rect, state);
    let (t0, t1) = (state.t0.floor() as i64, state.t1.ceil() as i64);
    let mut marks = std::mem::take(&mut state.last_marks);
    prepare_frame(
        model,
        t0,
        t1,
        rect.width().max(1.0) as f64,
        MIN_SPAN_PX,
        &mut marks,
    );
    spans::draw_spans(ui, model, state, &geometry, &layout, &marks);
    let rows = rows::draw_rows(ui, &response, model, state, &geometry, &layout, logs);
    state.last_log_marks = rows.log_marks;
    ruler::draw_overlays(ui, state, &geometry, origin_ns);
    hover::hover(
        ui,
        response,
        model,
        state,
        &geometry,
        &layout,
        logs,
        rows.hovered_log,
        origin_ns,
    );
    state.last_marks = marks;
    state.last_rows = layout.rows;
    state.last_rect = Some(rect);
}

/// Total duration of a span's direct children (for its self time).
pub fn child_time(model: &TimelineModel, span: SpanRef) -> i64 {
    let track = &model.tracks[span.track];
    let lane = &track.lanes[span.depth];
    let (b, e) = (lane.begin_ns[span.index], lane.end_ns[span.index]);
    let Some(children) = track.lanes.get(span.depth + 1) else {
        return 0;
    };
    let start = children.begin_ns.partition_point(|&x| x < b);
    let end = children.begin_ns.partition_point(|&x| x <= e);
    (start..end)
        .map(|i| children.end_ns[i].min(e) - children.begin_ns[i])
        .sum()
}
