//! Frame times of both sides: count, mean, P50/P90/P99/max and the change, the share over the
//! target, and both distributions overlaid with the target marked.

use super::cdf::cdf_ui;
use crate::compare_render::{FRAME_STATS, change, short_ns};
use crate::viewer::theme;
use frameline_engine::compare::{Comparison, change_pct};

pub fn frame_times_ui(ui: &mut egui::Ui, c: &Comparison) {
    let f = &c.frames;
    ui.horizontal_top(|ui| {
        ui.vertical(|ui| {
            egui::Grid::new("compare_frame_stats")
                .striped(true)
                .num_columns(4)
                .show(ui, |ui| {
                    ui.strong("frame time");
                    ui.colored_label(theme::COMPARE_BASELINE, "baseline");
                    ui.colored_label(theme::COMPARE_CANDIDATE, "candidate");
                    ui.strong("change");
                    ui.end_row();
                    ui.label("frames");
                    ui.monospace(f.baseline.count.to_string());
                    ui.monospace(f.candidate.count.to_string());
                    ui.label("");
                    ui.end_row();
                    for (name, stat) in FRAME_STATS {
                        let (b, v) = (stat(&f.baseline), stat(&f.candidate));
                        ui.label(name);
                        ui.monospace(short_ns(b));
                        ui.monospace(short_ns(v));
                        ui.monospace(change(change_pct(b, v)));
                        ui.end_row();
                    }
                    ui.label(format!("over {}", short_ns(f.target_ns as f64)));
                    ui.monospace(format!("{:.1} %", f.baseline_over_target_pct));
                    ui.monospace(format!("{:.1} %", f.candidate_over_target_pct));
                    ui.label("");
                    ui.end_row();
                });
            let verdict = if f.flagged {
                "the frame times changed beyond the noise"
            } else {
                "within noise"
            };
            ui.label(format!("Mann-Whitney p = {:.3}: {verdict}", f.p_value));
        });
        ui.vertical(|ui| {
            let target_ms = f.target_ns as f64 / 1e6;
            cdf_ui(
                ui,
                "compare_frame_cdf",
                &f.baseline_ns,
                &f.candidate_ns,
                &[("target", target_ms)],
                ui.available_height().max(160.0),
            );
        });
    });
}
