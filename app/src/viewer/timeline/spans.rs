//! The span lanes: every visible mark (a span, or a fold of spans too narrow to see) becomes
//! one instance of the GPU quad, drawn in one call; names go on top where they fit.

use super::geometry::Geometry;
use super::layout::Layout;
use super::{SpanRef, TimelineState};
use crate::viewer::gpu::{QuadInstance, QuadsCallback};
use crate::viewer::theme;
use egui::{Color32, FontId, Pos2, Rect};
use frameline_engine::timeline::{Mark, PlacedMark, TimelineModel};
use std::sync::Arc;

/// Spans wider than this many pixels get their name drawn.
const LABEL_MIN_PX: f32 = 24.0;

/// Draws `marks` (from `prepare_frame`) in their lanes.
pub fn draw_spans(
    ui: &egui::Ui,
    model: &TimelineModel,
    state: &TimelineState,
    geometry: &Geometry,
    layout: &Layout,
    marks: &[PlacedMark],
) {
    let rect = geometry.rect;
    let mut instances: Vec<QuadInstance> = Vec::with_capacity(marks.len() + 16);
    let mut labels: Vec<(Rect, String)> = Vec::new();
    let highlighted: Option<Vec<bool>> = state
        .highlight_name
        .as_ref()
        .map(|name| model.sites.iter().map(|s| &s.name == name).collect());
    for placed in marks {
        let (track, depth) = (placed.track as usize, placed.depth as usize);
        let Some(lr) = geometry.lane_rect(layout.lane_tops[track], state.scroll_y, depth) else {
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
                    theme::SELECTED_SPAN
                } else if lit {
                    theme::name_color(name)
                } else {
                    theme::name_color(name).gamma_multiply(0.25)
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
                    theme::FOLD.gamma_multiply(0.4)
                } else {
                    theme::FOLD
                },
                format!("{count}"),
            ),
        };
        let x0 = geometry.x_of(b as f64).max(rect.left() - 1.0);
        let x1 = geometry
            .x_of(e as f64)
            .min(rect.right() + 1.0)
            .max(x0 + 1.0);
        let r = Rect::from_min_max(Pos2::new(x0, lr.top()), Pos2::new(x1, lr.bottom()));
        instances.push(QuadInstance {
            rect: [r.left(), r.top(), r.right(), r.bottom()],
            color: color.to_array(),
        });
        if r.width() > LABEL_MIN_PX {
            labels.push((r, label));
        }
    }
    let instances: Arc<[QuadInstance]> = instances.into();
    let body = geometry.body();
    ui.painter_at(body)
        .add(eframe::egui_wgpu::Callback::new_paint_callback(
            body,
            QuadsCallback { instances },
        ));
    let painter = ui.painter_at(body);
    let font = FontId::proportional(11.0);
    for (r, label) in labels {
        draw_label(&painter, r, label, font.clone(), theme::LABEL_ON_SPAN);
    }
}

/// `label` in `r`, truncated to its width.
fn draw_label(painter: &egui::Painter, r: Rect, label: String, font: FontId, color: Color32) {
    let mut job = egui::text::LayoutJob::simple_singleline(label, font, color);
    job.wrap = egui::text::TextWrapping::truncate_at_width(r.width() - 4.0);
    let galley = painter.layout_job(job);
    painter.galley(
        Pos2::new(r.left() + 2.0, r.center().y - galley.size().y / 2.0),
        galley,
        color,
    );
}
