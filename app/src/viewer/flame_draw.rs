//! Drawing a flame graph (top-down, widths proportional to total time, children widest first):
//! what the flame-graph panel and the Compare view's flame diff share. Colours come from the
//! caller; hover and clicks are the caller's to interpret.

use super::theme;
use egui::{Align2, Color32, FontId, Pos2, Rect, Sense, Stroke, Vec2};
use frameline_engine::analysis::{FlameGraph, FlameNode};

const ROW_HEIGHT: f32 = 18.0;

/// What was drawn.
pub struct FlameDrawn {
    pub hovered: Option<u32>,
    pub response: egui::Response,
    pub rect: Rect,
}

/// Draws `graph` from node `zoom` (full width) into the rest of `ui`. `color(node)` colours a
/// node; names not containing `search` (lower case) are dimmed.
pub fn flame_graph_ui(
    ui: &mut egui::Ui,
    graph: &FlameGraph,
    zoom: u32,
    search: &str,
    color: &dyn Fn(u32, &FlameNode) -> Color32,
) -> FlameDrawn {
    let (rect, response) = ui.allocate_exact_size(ui.available_size(), Sense::click());
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 0.0, theme::CANVAS);
    let zoom = if (zoom as usize) < graph.nodes.len() {
        zoom
    } else {
        0
    };
    let Some(zoom_node) = graph.nodes.get(zoom as usize) else {
        return FlameDrawn {
            hovered: None,
            response,
            rect,
        };
    };
    let total = zoom_node.total_ns.max(1) as f64;
    let px_per_ns = rect.width() as f64 / total;
    let pointer = response.hover_pos();
    let mut hovered = None;
    // Depth-first from the zoomed node: (node, left x, depth below it).
    let mut stack = vec![(zoom, rect.left(), 0u32)];
    while let Some((node, x, level)) = stack.pop() {
        let n = &graph.nodes[node as usize];
        let w = (n.total_ns as f64 * px_per_ns) as f32;
        let y = rect.top() + level as f32 * ROW_HEIGHT;
        if w < 1.0 || y > rect.bottom() {
            continue;
        }
        let r = Rect::from_min_size(Pos2::new(x, y), Vec2::new(w, ROW_HEIGHT - 1.0));
        let name = graph.name(node);
        let mut fill = color(node, n);
        if !search.is_empty() && !name.to_lowercase().contains(search) {
            fill = fill.gamma_multiply(0.25);
        }
        painter.rect_filled(r, 1.0, fill);
        if pointer.is_some_and(|p| r.contains(p)) {
            hovered = Some(node);
            painter.rect_stroke(
                r,
                1.0,
                Stroke::new(1.0, theme::HOVER_OUTLINE),
                egui::StrokeKind::Inside,
            );
        }
        if w > 30.0 {
            let mut job = egui::text::LayoutJob::simple_singleline(
                name.to_owned(),
                FontId::proportional(11.0),
                theme::LABEL_ON_SPAN,
            );
            job.wrap = egui::text::TextWrapping::truncate_at_width(w - 4.0);
            let galley = painter.layout_job(job);
            painter.galley(
                Pos2::new(r.left() + 2.0, r.center().y - galley.size().y / 2.0),
                galley,
                theme::LABEL_ON_SPAN,
            );
        }
        let mut cx = x;
        for &c in &n.children {
            stack.push((c, cx, level + 1));
            cx += (graph.nodes[c as usize].total_ns as f64 * px_per_ns) as f32;
        }
    }
    if graph.nodes.len() <= 1 {
        painter.text(
            rect.center(),
            Align2::CENTER_CENTER,
            "no spans in this selection",
            FontId::proportional(14.0),
            theme::EMPTY_TEXT,
        );
    }
    FlameDrawn {
        hovered,
        response,
        rect,
    }
}
