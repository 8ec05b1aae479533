//! The rows that are not span lanes: process headers, thread headers (a click picks the thread
//! for the analysis panels) and log lanes (a diamond per log line, coloured by level).

use super::geometry::Geometry;
use super::layout::Layout;
use super::{LogMarker, RowKind, TimelineState};
use crate::viewer::theme;
use egui::{Align2, FontId, Pos2, Rect, Response, Stroke, Vec2};
use frameline_engine::timeline::TimelineModel;

/// What the rows pass on to the hover step.
pub struct RowsDrawn {
    /// Log markers placed in log lanes (in the visible time range).
    pub log_marks: usize,
    /// The log marker under the pointer.
    pub hovered_log: Option<usize>,
}

pub fn draw_rows(
    ui: &egui::Ui,
    response: &Response,
    model: &TimelineModel,
    state: &mut TimelineState,
    geometry: &Geometry,
    layout: &Layout,
    logs: &[LogMarker],
) -> RowsDrawn {
    let rect = geometry.rect;
    let painter = ui.painter_at(geometry.body());
    let pointer = response.hover_pos();
    let (t0, t1) = (state.t0, state.t1);
    let mut drawn = RowsDrawn {
        log_marks: 0,
        hovered_log: None,
    };
    for row in &layout.rows {
        if let RowKind::Logs(t) = row.kind {
            // Placed in the lane (drawn when the lane is scrolled into view).
            drawn.log_marks += state.log_index.visible(t, logs, t0, t1).len();
        }
        let top = geometry.body_top + row.top - state.scroll_y;
        if top > rect.bottom() || top + row.height < geometry.body_top {
            continue;
        }
        let r = Rect::from_min_size(
            Pos2::new(rect.left(), top),
            Vec2::new(rect.width(), row.height),
        );
        match &row.kind {
            RowKind::Process(label) => {
                painter.rect_filled(r, 0.0, theme::PROCESS_HEADER);
                painter.text(
                    r.left_center() + Vec2::new(4.0, 0.0),
                    Align2::LEFT_CENTER,
                    label,
                    FontId::proportional(13.0),
                    theme::PROCESS_HEADER_TEXT,
                );
            }
            RowKind::Track(t) => {
                let track = &model.tracks[*t];
                let picked = state.picked_tracks.contains(t);
                let fill = if picked {
                    theme::TRACK_HEADER_PICKED
                } else {
                    theme::TRACK_HEADER
                };
                painter.rect_filled(r, 0.0, fill);
                let process_short: String = track.process_id.chars().take(8).collect();
                painter.text(
                    r.left_center() + Vec2::new(4.0, 0.0),
                    Align2::LEFT_CENTER,
                    format!(
                        "{}  ({process_short}, {} spans){}",
                        track.thread_name,
                        track.span_count(),
                        if picked { "  · picked" } else { "" }
                    ),
                    FontId::proportional(12.0),
                    theme::TRACK_HEADER_TEXT,
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
                painter.rect_filled(r, 0.0, theme::LOG_LANE);
                for &i in state.log_index.visible(*t, logs, t0, t1) {
                    let x = geometry.x_of(logs[i].time_ns as f64);
                    let c = r.center().y;
                    painter.add(egui::Shape::convex_polygon(
                        vec![
                            Pos2::new(x, c - 5.0),
                            Pos2::new(x + 4.0, c),
                            Pos2::new(x, c + 5.0),
                            Pos2::new(x - 4.0, c),
                        ],
                        theme::level_color(logs[i].level),
                        Stroke::NONE,
                    ));
                    if let Some(p) = pointer
                        && r.contains(p)
                        && (p.x - x).abs() <= 5.0
                    {
                        drawn.hovered_log = Some(i);
                    }
                }
            }
            RowKind::Lane(..) => {}
        }
    }
    drawn
}
