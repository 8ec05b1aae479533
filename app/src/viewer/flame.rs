//! The flame graph of a selection: the aggregated call tree (merged by call path), top-down,
//! widths proportional to total time, coloured by name; hover shows total/self/calls; a click
//! zooms into a node; the search box highlights matching names. Diff mode compares the selection
//! against a baseline (another selection, or the median frame) and colours each node by how much
//! slower it is. Built by `frameline_engine::analysis::FlameGraph` in the background.

use super::derived::Derived;
use super::flame_draw::{FlameDrawn, flame_graph_ui};
use super::frame_plot::FrameRow;
use super::scope::{AnalysisContext, Scope, panel_header_ui};
use super::theme::{self, name_color};
use super::timeline::format_duration;
use egui::{Color32, Rect};
use frameline_engine::analysis::{FlameGraph, Selection};
use std::sync::Arc;

/// What a graph was built for: the model's generation and the selection.
type GraphKey = (u64, Selection);

/// The flame-graph panel.
pub struct FlamePanel {
    pub scope: Scope,
    graph: Derived<GraphKey, FlameGraph>,
    /// The node drawn full width (0: the root).
    pub zoom: u32,
    pub search: String,
    /// Colour by the difference against `baseline`.
    pub diff: bool,
    pub baseline: Option<Selection>,
    baseline_graph: Derived<GraphKey, FlameGraph>,
    pub hovered: Option<u32>,
    /// Where the graph was drawn last frame.
    pub last_rect: Option<Rect>,
}

impl Default for FlamePanel {
    fn default() -> Self {
        FlamePanel {
            scope: Scope::Selection,
            graph: Derived::default(),
            zoom: 0,
            search: String::new(),
            diff: false,
            baseline: None,
            baseline_graph: Derived::default(),
            hovered: None,
            last_rect: None,
        }
    }
}

fn build(
    derived: &mut Derived<GraphKey, FlameGraph>,
    ctx: &egui::Context,
    cx: &AnalysisContext<'_>,
    selection: Selection,
) {
    let (spans, generation) = (cx.model.model.clone(), cx.model.generation);
    derived.request(
        cx.runtime,
        ctx,
        "Flame graph",
        &(generation, selection),
        move |(_, selection)| FlameGraph::build(&spans, &selection),
    );
}

/// The frame whose duration is the median.
pub fn median_frame(frames: &[FrameRow]) -> Option<FrameRow> {
    let mut sorted: Vec<FrameRow> = frames.to_vec();
    sorted.sort_by_key(|f| f.end_ns - f.begin_ns);
    sorted.get(sorted.len() / 2).copied()
}

/// The colour of a node `delta_ns` slower (or faster, if negative) than its `baseline_ns`.
pub fn diff_color(delta_ns: i64, baseline_ns: i64) -> Color32 {
    let ratio = if baseline_ns > 0 {
        delta_ns as f64 / baseline_ns as f64
    } else if delta_ns > 0 {
        1.0
    } else {
        0.0
    };
    let t = ratio.clamp(-1.0, 1.0).abs() as f32;
    let target = if ratio > 0.0 {
        theme::DIFF_GREW
    } else {
        theme::DIFF_SHRANK
    };
    theme::DIFF_SAME.lerp_to_gamma(target, t)
}

impl FlamePanel {
    pub fn busy(&self) -> bool {
        self.graph.busy() || self.baseline_graph.busy()
    }

    /// The graph of the last selection built.
    pub fn graph(&self) -> Option<&Arc<FlameGraph>> {
        self.graph.value()
    }

    /// The graph of the baseline, once built.
    pub fn baseline_graph(&self) -> Option<&Arc<FlameGraph>> {
        self.baseline_graph.value()
    }

    /// Starts building if the selection (or the baseline) changed since the last graph.
    fn refresh(&mut self, ctx: &egui::Context, cx: &AnalysisContext<'_>) {
        self.poll();
        build(&mut self.graph, ctx, cx, cx.selection(self.scope));
        if let Some(baseline) = self.baseline.clone() {
            build(&mut self.baseline_graph, ctx, cx, baseline);
        }
    }

    /// Takes finished graphs (every frame, whichever tab is shown); a graph of another
    /// selection resets the zoom.
    pub fn poll(&mut self) {
        let before = self.graph.computed_for().map(|(_, s)| s.clone());
        if self.graph.poll() && self.graph.computed_for().map(|(_, s)| s) != before.as_ref() {
            self.zoom = 0;
        }
        self.baseline_graph.poll();
    }

    pub fn flame_ui(&mut self, ui: &mut egui::Ui, cx: AnalysisContext<'_>, frames: &[FrameRow]) {
        ui.horizontal(|ui| {
            let search = ("Search", &mut self.search);
            panel_header_ui(ui, "Flame graph", &mut self.scope, cx.timeline, search);
            if self.zoom != 0 && ui.button("Reset zoom").clicked() {
                self.zoom = 0;
            }
            ui.checkbox(&mut self.diff, "Diff");
            if self.diff {
                if ui.button("Baseline: this selection").clicked() {
                    self.baseline = Some(cx.selection(self.scope));
                }
                if ui.button("Baseline: median frame").clicked()
                    && let Some(f) = median_frame(frames)
                {
                    self.baseline = Some(Selection {
                        begin_ns: f.begin_ns,
                        end_ns: f.end_ns,
                        tracks: cx.timeline.picked_tracks.iter().copied().collect(),
                    });
                }
                match &self.baseline {
                    Some(b) => {
                        ui.label(format!(
                            "baseline {}",
                            format_duration(b.end_ns - b.begin_ns)
                        ));
                    }
                    None => {
                        ui.label("pick a baseline");
                    }
                }
            }
            if self.busy() {
                ui.spinner();
            }
        });
        self.refresh(&ui.ctx().clone(), &cx);
        let Some(graph) = self.graph.value().cloned() else {
            ui.label("Building…");
            return;
        };
        let zoom = if (self.zoom as usize) < graph.nodes.len() {
            self.zoom
        } else {
            0
        };
        let path = graph.path(zoom);
        if !path.is_empty() {
            ui.label(format!("zoomed into {}", path.join(" > ")));
        }
        let diff = match (self.baseline_graph.value(), self.diff) {
            (Some(b), true) => Some((graph.diff_ns(b), b.clone())),
            _ => None,
        };
        let search = self.search.to_lowercase();
        let color = |node: u32, n: &frameline_engine::analysis::FlameNode| match &diff {
            Some((deltas, _)) => {
                let delta = deltas[node as usize];
                diff_color(delta, n.total_ns - delta)
            }
            None if node == 0 => theme::FLAME_ROOT,
            None => name_color(graph.name(node)),
        };
        let FlameDrawn {
            hovered,
            response,
            rect,
        } = flame_graph_ui(ui, &graph, zoom, &search, &color);
        self.last_rect = Some(rect);
        self.hovered = hovered;
        if let Some(node) = hovered {
            let n = graph.nodes[node as usize].clone();
            let name = graph.name(node).to_owned();
            let share = n.total_ns as f64 / graph.root().total_ns.max(1) as f64 * 100.0;
            let delta = diff.as_ref().map(|(d, _)| d[node as usize]);
            if response.clicked() {
                self.zoom = node;
            }
            response.on_hover_ui_at_pointer(|ui| {
                ui.strong(&name);
                ui.label(format!(
                    "total {} ({share:.1} %)",
                    format_duration(n.total_ns)
                ));
                ui.label(format!("self {}", format_duration(n.self_ns)));
                ui.label(format!("calls {}", n.calls));
                if let Some(delta) = delta {
                    let sign = if delta >= 0 { "+" } else { "-" };
                    ui.label(format!(
                        "{sign}{} against the baseline",
                        format_duration(delta.abs())
                    ));
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_frame_and_diff_colours() {
        let frames: Vec<FrameRow> = [10, 50, 20]
            .iter()
            .enumerate()
            .map(|(i, &ms)| FrameRow {
                begin_ns: i as i64 * 100_000_000,
                end_ns: i as i64 * 100_000_000 + ms * 1_000_000,
            })
            .collect();
        assert_eq!(median_frame(&frames).unwrap().ms(), 20.0);
        assert!(median_frame(&[]).is_none());
        let slower = diff_color(100, 100);
        let faster = diff_color(-100, 100);
        assert!(slower.r() > slower.b() && faster.b() > faster.r());
        assert_eq!(diff_color(0, 100), theme::DIFF_SAME);
    }
}
