//! The flame-graph diff of the two sides: the candidate's call tree (widths from the candidate),
//! each node red where it takes more time per frame than the same call path in the baseline,
//! blue where less; hover gives both values. A click zooms into a node.

use crate::compare_render::short_ns;
use crate::viewer::flame::diff_color;
use crate::viewer::flame_draw::{FlameDrawn, flame_graph_ui};
use frameline_engine::compare::FlameComparison;

#[derive(Default)]
pub struct FlameDiff {
    /// The candidate node drawn full width (0: the root).
    pub zoom: u32,
    pub search: String,
    pub hovered: Option<u32>,
}

impl FlameDiff {
    pub fn flame_diff_ui(&mut self, ui: &mut egui::Ui, flame: &FlameComparison) {
        ui.horizontal(|ui| {
            ui.add(
                egui::TextEdit::singleline(&mut self.search)
                    .hint_text("Search")
                    .desired_width(160.0),
            );
            if self.zoom != 0 && ui.button("Reset zoom").clicked() {
                self.zoom = 0;
            }
            ui.label(
                "red: more time per frame in the candidate, blue: less; widths: the candidate",
            );
        });
        let path = flame.candidate.path(self.zoom);
        if !path.is_empty() {
            ui.label(format!("zoomed into {}", path.join(" > ")));
        }
        let search = self.search.to_lowercase();
        let color = |node: u32, _: &frameline_engine::analysis::FlameNode| {
            let base = flame.baseline_per_frame_ns(node);
            let delta = flame.delta_per_frame_ns(node);
            diff_color(delta as i64, base as i64)
        };
        let FlameDrawn {
            hovered, response, ..
        } = flame_graph_ui(ui, &flame.candidate, self.zoom, &search, &color);
        self.hovered = hovered;
        if let Some(node) = hovered {
            if response.clicked() {
                self.zoom = node;
            }
            let name = flame.candidate.name(node).to_owned();
            let (b, c) = (
                flame.baseline_per_frame_ns(node),
                flame.candidate_per_frame_ns(node),
            );
            response.on_hover_ui_at_pointer(|ui| {
                ui.strong(name);
                ui.label(format!("candidate {} per frame", short_ns(c)));
                ui.label(format!("baseline {} per frame", short_ns(b)));
                ui.label(format!(
                    "change {} ({})",
                    short_ns(c - b),
                    crate::compare_render::change(frameline_engine::compare::change_pct(b, c))
                ));
            });
        }
    }
}
