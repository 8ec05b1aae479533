//! Overlays on top of the lanes: the time ruler (labels as precise as the zoom needs), the
//! selected time range with its duration, and the time of the hovered log line.

use super::geometry::Geometry;
use super::{RULER_HEIGHT, TimelineState};
use crate::viewer::theme;
use crate::viewer::time_format::{format_duration, format_tick, ruler_step};
use egui::{Align2, FontId, Pos2, Rect, Stroke, Vec2};

/// About this many pixels between ruler ticks.
const TICK_SPACING_PX: f64 = 100.0;

/// The ruler's tick times (absolute ns) and labels (from `origin_ns`) for this frame.
pub fn ruler_ticks(state: &TimelineState, ns_per_px: f64, origin_ns: i64) -> Vec<(f64, String)> {
    let step = ruler_step(ns_per_px, TICK_SPACING_PX);
    let origin = origin_ns as f64;
    let mut tick = ((state.t0 - origin) / step).floor() * step + origin;
    let mut ticks = Vec::new();
    while tick <= state.t1 {
        ticks.push((tick, format_tick((tick - origin).round() as i64, step)));
        tick += step;
    }
    ticks
}

pub fn draw_overlays(ui: &egui::Ui, state: &TimelineState, geometry: &Geometry, origin_ns: i64) {
    let rect = geometry.rect;
    let painter = ui.painter_at(rect);
    let ruler = Rect::from_min_size(rect.left_top(), Vec2::new(rect.width(), RULER_HEIGHT));
    painter.rect_filled(ruler, 0.0, theme::RULER);
    for (tick, label) in ruler_ticks(state, geometry.ns_per_px, origin_ns) {
        let x = geometry.x_of(tick);
        painter.line_segment(
            [
                Pos2::new(x, ruler.bottom() - 6.0),
                Pos2::new(x, ruler.bottom()),
            ],
            Stroke::new(1.0, theme::RULER_TICK),
        );
        painter.text(
            Pos2::new(x + 3.0, ruler.center().y),
            Align2::LEFT_CENTER,
            label,
            FontId::monospace(10.0),
            theme::RULER_TEXT,
        );
    }
    if let Some((a, b)) = state.range {
        let (xa, xb) = (geometry.x_of(a as f64), geometry.x_of(b as f64));
        let sel = Rect::from_min_max(Pos2::new(xa, rect.top()), Pos2::new(xb, rect.bottom()))
            .intersect(rect);
        if sel.width() > 0.0 {
            painter.rect_filled(sel, 0.0, theme::RANGE_FILL);
            painter.text(
                Pos2::new(sel.left() + 3.0, rect.bottom() - 3.0),
                Align2::LEFT_BOTTOM,
                format_duration(b - a),
                FontId::monospace(11.0),
                theme::RANGE_TEXT,
            );
        }
    }
    if let Some(marker) = state.marker_ns {
        let x = geometry.x_of(marker as f64);
        painter.line_segment(
            [Pos2::new(x, rect.top()), Pos2::new(x, rect.bottom())],
            Stroke::new(1.5, theme::TIME_MARKER),
        );
    }
}
