//! What the pointer is on: a log marker's tooltip, or a span's (name, duration, self time,
//! file:line, thread); a click selects the span, a double-click zooms to it.

use super::geometry::Geometry;
use super::layout::Layout;
use super::{LANE_HEIGHT, LogMarker, SpanRef, TimelineState, child_time};
use crate::viewer::theme;
use crate::viewer::time_format::format_duration;
use egui::Response;
use frameline_engine::timeline::TimelineModel;

/// The span under `pointer`, if any.
fn span_at(
    model: &TimelineModel,
    geometry: &Geometry,
    layout: &Layout,
    scroll_y: f32,
    pointer: egui::Pos2,
) -> Option<SpanRef> {
    let t = geometry.t_of(pointer.x) as i64;
    model.tracks.iter().enumerate().find_map(|(ti, track)| {
        let lane_top = geometry.body_top + layout.lane_tops[ti] - scroll_y;
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
    })
}

#[allow(clippy::too_many_arguments)]
pub fn hover(
    ui: &egui::Ui,
    response: Response,
    model: &TimelineModel,
    state: &mut TimelineState,
    geometry: &Geometry,
    layout: &Layout,
    logs: &[LogMarker],
    hovered_log: Option<usize>,
    origin_ns: i64,
) {
    state.hovered = None;
    if let Some(log) = hovered_log.and_then(|i| logs.get(i)) {
        let time_s = (log.time_ns - origin_ns) as f64 / 1e9;
        response.clone().on_hover_ui_at_pointer(|ui| {
            ui.colored_label(theme::level_color(log.level), &log.message);
            ui.label(format!("at {time_s:.6} s on {}", log.thread_name));
        });
    }
    let Some(pointer) = response.hover_pos().filter(|p| p.y > geometry.body_top) else {
        return;
    };
    let Some(span) = span_at(model, geometry, layout, state.scroll_y, pointer) else {
        return;
    };
    state.hovered = Some(span);
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
    let site = model.site(lane.name[span.index]);
    let thread = &model.tracks[span.track].thread_name;
    response.on_hover_ui_at_pointer(|ui| {
        ui.strong(site.map_or("?", |s| s.name.as_str()));
        ui.label(format!("duration {}", format_duration(duration)));
        ui.label(format!("self {}", format_duration(duration - children)));
        if let Some(site) = site {
            ui.label(format!("{}:{}", site.file, site.line));
        }
        ui.label(format!("thread {thread}"));
    });
}
