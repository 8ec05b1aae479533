//! The timeline: a track per thread, under a header per process when several are shown, nested
//! spans drawn by the wgpu instanced pipeline, folded marks for spans too narrow to see, names
//! where they fit, a time ruler, log markers on their own lane per thread, hover tooltips,
//! selection, a time-range selection (Ctrl+drag or drag on the ruler, like Tracy), instances of
//! one name highlighted (find-zone), and Tracy's navigation (wheel zoom around the cursor, drag
//! to pan, WASD).

use super::gpu::{QuadInstance, QuadsCallback};
use egui::{Align2, Color32, FontId, Pos2, Rect, Sense, Stroke, Vec2};
use frameline_engine::timeline::{Mark, PlacedMark, TimelineModel, prepare_frame};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

pub const RULER_HEIGHT: f32 = 22.0;
pub const PROCESS_HEADER: f32 = 22.0;
pub const TRACK_HEADER: f32 = 18.0;
pub const LOG_LANE: f32 = 12.0;
pub const LANE_HEIGHT: f32 = 18.0;
/// Spans narrower than this fold into one mark (Tracy folds under a few pixels).
pub const MIN_SPAN_PX: f64 = 3.0;

/// A log entry shown as a marker on its thread.
#[derive(Clone, Debug)]
pub struct LogMarker {
    pub time_ns: i64,
    pub level: u8,
    pub process_id: String,
    pub thread_name: String,
    pub message: String,
}

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
    range_drag: Option<f64>,
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
    log_index: LogIndex,
}

/// The log markers of each track, in time order: rebuilt when the model or the logs change,
/// not every frame (a capture can hold 10^6 log lines).
#[derive(Clone, Debug, Default)]
struct LogIndex {
    /// Model address and track count, log slice address and length.
    built_for: (usize, usize, usize, usize),
    by_track: Vec<Vec<usize>>,
}

impl LogIndex {
    fn update(&mut self, model: &TimelineModel, logs: &[LogMarker]) {
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
    fn visible(&self, t: usize, logs: &[LogMarker], t0: f64, t1: f64) -> &[usize] {
        let ids = self.by_track.get(t).map_or(&[][..], Vec::as_slice);
        let lo = ids.partition_point(|&i| (logs[i].time_ns as f64) < t0);
        let hi = ids.partition_point(|&i| (logs[i].time_ns as f64) <= t1);
        &ids[lo..hi.max(lo)]
    }
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

    fn zoom(&mut self, factor: f64, around: f64) {
        let factor = factor.clamp(0.01, 100.0);
        let new_width = ((self.t1 - self.t0) * factor).max(100.0);
        let fraction = (around - self.t0) / (self.t1 - self.t0).max(1.0);
        self.t0 = around - fraction * new_width;
        self.t1 = self.t0 + new_width;
    }

    fn pan(&mut self, ns: f64) {
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

/// A color per span name, stable across runs (like Tracy's name-hashed palette).
pub fn name_color(name: &str) -> Color32 {
    let mut hash: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        hash = (hash ^ b as u32).wrapping_mul(0x0100_0193);
    }
    let hue = (hash % 360) as f32 / 360.0;
    let color: Color32 = egui::ecolor::Hsva::new(hue, 0.45, 0.75, 1.0).into();
    color
}

pub fn level_color(level: u8) -> Color32 {
    match level {
        1 => Color32::from_rgb(230, 70, 70),
        2 => Color32::from_rgb(235, 190, 60),
        3 => Color32::from_rgb(110, 170, 240),
        _ => Color32::from_gray(150),
    }
}

/// Human time for a duration.
pub fn format_duration(ns: i64) -> String {
    let ns = ns as f64;
    if ns >= 1e9 {
        format!("{:.3} s", ns / 1e9)
    } else if ns >= 1e6 {
        format!("{:.3} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// A ruler step (1, 2, 5 × 10^k ns) giving about `px` pixels between ticks.
fn ruler_step(ns_per_px: f64, px: f64) -> f64 {
    let target = ns_per_px * px;
    let mut step = 1.0;
    while step * 10.0 <= target {
        step *= 10.0;
    }
    for m in [1.0, 2.0, 5.0, 10.0] {
        if step * m >= target {
            return step * m;
        }
    }
    step * 10.0
}

struct Layout {
    /// Top of each track's first lane (before scrolling).
    lane_tops: Vec<f32>,
    rows: Vec<Row>,
    total_height: f32,
}

/// Rows top to bottom: per process (with a header when there are several) its threads, each a
/// header, a log lane if the thread logged, then its depths.
fn layout(
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
                y += 6.0;
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
        y += 6.0;
    }
    Layout {
        lane_tops,
        rows,
        total_height: y,
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
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 0.0, Color32::from_gray(24));
    if state.t1 <= state.t0 {
        state.show_range(model.begin_ns, model.end_ns);
    }
    let width = rect.width().max(1.0) as f64;
    let ns_per_px = (state.t1 - state.t0) / width;
    state.log_index.update(model, logs);
    let lay = layout(model, &state.log_index.by_track, process_labels);
    let body_top = rect.top() + RULER_HEIGHT;
    let max_scroll = (lay.total_height - (rect.height() - RULER_HEIGHT)).max(0.0);

    // Navigation.
    if let Some(pointer) = response.hover_pos() {
        let (scroll, zoom) = ui.input(|i| (i.smooth_scroll_delta, i.zoom_delta()));
        let around = state.t0 + (pointer.x - rect.left()) as f64 * ns_per_px;
        if zoom != 1.0 {
            state.zoom(1.0 / zoom as f64, around);
        } else if scroll.y != 0.0 && !ui.input(|i| i.modifiers.shift) {
            state.zoom((-scroll.y as f64 / 200.0).exp(), around);
        } else if scroll.y != 0.0 {
            state.scroll_y = (state.scroll_y - scroll.y).clamp(0.0, max_scroll);
        }
    }
    // Ctrl+drag, or a drag that starts on the ruler, selects a time range; other drags pan.
    if response.drag_started()
        && let Some(start) = ui.input(|i| i.pointer.press_origin())
        && (ui.input(|i| i.modifiers.command) || start.y < body_top)
    {
        state.range_drag = Some(state.t0 + (start.x - rect.left()) as f64 * ns_per_px);
    }
    if let Some(start) = state.range_drag {
        if let Some(p) = response.interact_pointer_pos() {
            let t = state.t0 + (p.x - rect.left()) as f64 * ns_per_px;
            let (a, b) = (start.min(t) as i64, start.max(t) as i64);
            if b > a {
                state.range = Some((a, b));
            }
        }
        if !response.dragged() {
            state.range_drag = None;
        }
    } else if response.dragged() {
        let delta = response.drag_delta();
        state.pan(-delta.x as f64 * ns_per_px);
        state.scroll_y = (state.scroll_y - delta.y).clamp(0.0, max_scroll);
    }
    let typing = ui.ctx().text_edit_focused();
    let (pan_keys, zoom_keys, dt) = ui.input(|i| {
        if typing {
            return (0.0, 0.0, 0.0);
        }
        let pan = i.key_down(egui::Key::D) as i32 - i.key_down(egui::Key::A) as i32;
        let zoom = i.key_down(egui::Key::S) as i32 - i.key_down(egui::Key::W) as i32;
        (pan as f64, zoom as f64, i.stable_dt.min(0.1) as f64)
    });
    if pan_keys != 0.0 || zoom_keys != 0.0 {
        let center = (state.t0 + state.t1) / 2.0;
        state.pan(pan_keys * dt * 1.5 * (state.t1 - state.t0));
        if zoom_keys != 0.0 {
            state.zoom((zoom_keys * dt * 3.0).exp(), center);
        }
        ui.ctx().request_repaint();
    }
    let ns_per_px = (state.t1 - state.t0) / width;
    let view_t0 = state.t0;
    let x_of = |t: f64| rect.left() + ((t - view_t0) / ns_per_px) as f32;
    let t_of = |x: f32| view_t0 + (x - rect.left()) as f64 * ns_per_px;

    // What is visible: the only per-frame work that depends on the data.
    let (t0, t1) = (state.t0.floor() as i64, state.t1.ceil() as i64);
    let mut marks = std::mem::take(&mut state.last_marks);
    prepare_frame(model, t0, t1, width, MIN_SPAN_PX, &mut marks);

    let lane_rect = |track: usize, depth: usize| -> Option<Rect> {
        let top = body_top + lay.lane_tops[track] - state.scroll_y + depth as f32 * LANE_HEIGHT;
        let r = Rect::from_min_max(
            Pos2::new(rect.left(), top),
            Pos2::new(rect.right(), top + LANE_HEIGHT - 1.0),
        );
        (r.bottom() >= body_top && r.top() <= rect.bottom()).then_some(r)
    };

    let mut instances: Vec<QuadInstance> = Vec::with_capacity(marks.len() + 16);
    let mut labels: Vec<(Rect, String, Color32)> = Vec::new();
    let fold_color = Color32::from_gray(110);
    let highlighted: Option<Vec<bool>> = state
        .highlight_name
        .as_ref()
        .map(|name| model.sites.iter().map(|s| &s.name == name).collect());
    for placed in &marks {
        let (track, depth) = (placed.track as usize, placed.depth as usize);
        let Some(lr) = lane_rect(track, depth) else {
            continue;
        };
        let lane = &model.tracks[track].lanes[depth];
        let (b, e, color, label) = match placed.mark {
            Mark::Span { index } => {
                let name = model.name(lane.name[index]);
                let selected = state.selected
                    == Some(SpanRef {
                        track,
                        depth,
                        index,
                    });
                let lit = highlighted
                    .as_ref()
                    .is_none_or(|h| h.get(lane.name[index] as usize) == Some(&true));
                let color = if selected {
                    Color32::from_rgb(255, 255, 255)
                } else if lit {
                    name_color(name)
                } else {
                    name_color(name).gamma_multiply(0.25)
                };
                (
                    lane.begin_ns[index],
                    lane.end_ns[index],
                    color,
                    name.to_owned(),
                )
            }
            Mark::Fold {
                begin_ns,
                end_ns,
                count,
            } => (
                begin_ns,
                end_ns,
                if highlighted.is_some() {
                    fold_color.gamma_multiply(0.4)
                } else {
                    fold_color
                },
                format!("{count}"),
            ),
        };
        let x0 = x_of(b as f64).max(rect.left() - 1.0);
        let x1 = x_of(e as f64).min(rect.right() + 1.0).max(x0 + 1.0);
        let r = Rect::from_min_max(Pos2::new(x0, lr.top()), Pos2::new(x1, lr.bottom()));
        instances.push(QuadInstance {
            rect: [r.left(), r.top(), r.right(), r.bottom()],
            color: color.to_array(),
        });
        if r.width() > 24.0 {
            labels.push((r, label, Color32::BLACK));
        }
    }
    let instances: Arc<[QuadInstance]> = instances.into();
    let body = Rect::from_min_max(Pos2::new(rect.left(), body_top), rect.right_bottom());
    ui.painter_at(body)
        .add(eframe::egui_wgpu::Callback::new_paint_callback(
            body,
            QuadsCallback { instances },
        ));
    let text_painter = ui.painter_at(body);
    let font = FontId::proportional(11.0);
    for (r, label, color) in labels {
        let mut job = egui::text::LayoutJob::simple_singleline(label, font.clone(), color);
        job.wrap = egui::text::TextWrapping::truncate_at_width(r.width() - 4.0);
        let galley = text_painter.layout_job(job);
        text_painter.galley(
            Pos2::new(r.left() + 2.0, r.center().y - galley.size().y / 2.0),
            galley,
            color,
        );
    }

    // Process and track headers, log lanes.
    let mut log_marks = 0;
    let mut hovered_log: Option<usize> = None;
    let pointer = response.hover_pos();
    for row in &lay.rows {
        if let RowKind::Logs(t) = row.kind {
            // Placed in the lane (drawn when the lane is scrolled into view).
            log_marks += state.log_index.visible(t, logs, view_t0, state.t1).len();
        }
        let top = body_top + row.top - state.scroll_y;
        if top > rect.bottom() || top + row.height < body_top {
            continue;
        }
        let r = Rect::from_min_size(
            Pos2::new(rect.left(), top),
            Vec2::new(rect.width(), row.height),
        );
        match &row.kind {
            RowKind::Process(label) => {
                text_painter.rect_filled(r, 0.0, Color32::from_rgb(40, 48, 66));
                text_painter.text(
                    r.left_center() + Vec2::new(4.0, 0.0),
                    Align2::LEFT_CENTER,
                    label,
                    FontId::proportional(13.0),
                    Color32::WHITE,
                );
            }
            RowKind::Track(t) => {
                let track = &model.tracks[*t];
                let picked = state.picked_tracks.contains(t);
                let fill = if picked {
                    Color32::from_rgb(50, 70, 100)
                } else {
                    Color32::from_gray(36)
                };
                text_painter.rect_filled(r, 0.0, fill);
                let process_short: String = track.process_id.chars().take(8).collect();
                text_painter.text(
                    r.left_center() + Vec2::new(4.0, 0.0),
                    Align2::LEFT_CENTER,
                    format!(
                        "{}  ({process_short}, {} spans){}",
                        track.thread_name,
                        track.span_count(),
                        if picked { "  · picked" } else { "" }
                    ),
                    FontId::proportional(12.0),
                    Color32::from_gray(210),
                );
                // Clicking a thread's header picks it for the analysis panels.
                if response.clicked()
                    && let Some(p) = response.interact_pointer_pos()
                    && r.contains(p)
                    && !state.picked_tracks.remove(t)
                {
                    state.picked_tracks.insert(*t);
                }
            }
            RowKind::Logs(t) => {
                text_painter.rect_filled(r, 0.0, Color32::from_gray(30));
                for &i in state.log_index.visible(*t, logs, view_t0, state.t1) {
                    let log = &logs[i];
                    let x = x_of(log.time_ns as f64);
                    let c = r.center().y;
                    let color = level_color(log.level);
                    text_painter.add(egui::Shape::convex_polygon(
                        vec![
                            Pos2::new(x, c - 5.0),
                            Pos2::new(x + 4.0, c),
                            Pos2::new(x, c + 5.0),
                            Pos2::new(x - 4.0, c),
                        ],
                        color,
                        Stroke::NONE,
                    ));
                    if let Some(p) = pointer
                        && r.contains(p)
                        && (p.x - x).abs() <= 5.0
                    {
                        hovered_log = Some(i);
                    }
                }
            }
            RowKind::Lane(..) => {}
        }
    }
    state.last_log_marks = log_marks;

    // Ruler.
    let ruler = Rect::from_min_size(rect.left_top(), Vec2::new(rect.width(), RULER_HEIGHT));
    painter.rect_filled(ruler, 0.0, Color32::from_gray(40));
    let step = ruler_step(ns_per_px, 100.0);
    let first = ((state.t0 - origin_ns as f64) / step).floor() * step + origin_ns as f64;
    let mut tick = first;
    while tick <= state.t1 {
        let x = x_of(tick);
        painter.line_segment(
            [
                Pos2::new(x, ruler.bottom() - 6.0),
                Pos2::new(x, ruler.bottom()),
            ],
            Stroke::new(1.0, Color32::GRAY),
        );
        painter.text(
            Pos2::new(x + 3.0, ruler.center().y),
            Align2::LEFT_CENTER,
            format_duration((tick - origin_ns as f64) as i64),
            FontId::monospace(10.0),
            Color32::from_gray(200),
        );
        tick += step;
    }
    if let Some((a, b)) = state.range {
        let (xa, xb) = (x_of(a as f64), x_of(b as f64));
        let sel = Rect::from_min_max(Pos2::new(xa, rect.top()), Pos2::new(xb, rect.bottom()))
            .intersect(rect);
        if sel.width() > 0.0 {
            painter.rect_filled(sel, 0.0, Color32::from_rgba_unmultiplied(120, 170, 255, 28));
            painter.text(
                Pos2::new(sel.left() + 3.0, rect.bottom() - 3.0),
                Align2::LEFT_BOTTOM,
                format_duration(b - a),
                FontId::monospace(11.0),
                Color32::from_rgb(170, 200, 255),
            );
        }
    }
    if let Some(marker) = state.marker_ns {
        let x = x_of(marker as f64);
        painter.line_segment(
            [Pos2::new(x, rect.top()), Pos2::new(x, rect.bottom())],
            Stroke::new(1.5, Color32::from_rgb(255, 200, 0)),
        );
    }

    // Hover, click, double-click.
    state.hovered = None;
    if let Some(i) = hovered_log {
        let log = &logs[i];
        let (time, thread) = (
            (log.time_ns - origin_ns) as f64 / 1e9,
            log.thread_name.clone(),
        );
        let (level, message) = (log.level, log.message.clone());
        response.clone().on_hover_ui_at_pointer(|ui| {
            ui.colored_label(level_color(level), &message);
            ui.label(format!("at {time:.6} s on {thread}"));
        });
    }
    if let Some(pointer) = response.hover_pos().filter(|p| p.y > body_top) {
        let t = t_of(pointer.x) as i64;
        let hit = model.tracks.iter().enumerate().find_map(|(ti, track)| {
            let lane_top = body_top + lay.lane_tops[ti] - state.scroll_y;
            let depth = ((pointer.y - lane_top) / LANE_HEIGHT).floor();
            if depth < 0.0 || depth as usize >= track.lanes.len() {
                return None;
            }
            let lane = &track.lanes[depth as usize];
            let i = lane.begin_ns.partition_point(|&b| b <= t);
            (i > 0 && lane.end_ns[i - 1] >= t).then_some(SpanRef {
                track: ti,
                depth: depth as usize,
                index: i - 1,
            })
        });
        state.hovered = hit;
        if let Some(span) = hit {
            let lane = &model.tracks[span.track].lanes[span.depth];
            let (b, e) = (lane.begin_ns[span.index], lane.end_ns[span.index]);
            let duration = e - b;
            if response.double_clicked() {
                let margin = (duration / 20).max(1000);
                state.show_range(b - margin, e + margin);
            } else if response.clicked() && !ui.input(|i| i.modifiers.command) {
                state.selected = Some(span);
            }
            let children = child_time(model, span);
            let site = model.site(lane.name[span.index]).cloned();
            let thread = model.tracks[span.track].thread_name.clone();
            response.on_hover_ui_at_pointer(|ui| {
                ui.strong(site.as_ref().map_or("?", |s| s.name.as_str()));
                ui.label(format!("duration {}", format_duration(duration)));
                ui.label(format!("self {}", format_duration(duration - children)));
                if let Some(site) = &site {
                    ui.label(format!("{}:{}", site.file, site.line));
                }
                ui.label(format!("thread {thread}"));
            });
        }
    }
    state.last_marks = marks;
    state.last_rows = lay.rows;
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
