//! The log pane: a virtualized table of the selected processes' log lines with a level filter,
//! a search and "visible range only"; hovering a line marks its time on the timeline, clicking
//! centres it.

use super::LakeView;
use super::theme;
use super::timeline::TimelineState;
use egui_extras::{Column, TableBuilder};

/// One log line of the log pane.
pub type LogRow = frameline_engine::LogLine;

/// The log pane's filters.
pub struct LogPane {
    /// Lines up to this level are shown (1 error … 5 trace).
    pub min_level: u8,
    pub search: String,
    pub in_view_only: bool,
}

impl Default for LogPane {
    fn default() -> Self {
        LogPane {
            min_level: 5,
            search: String::new(),
            in_view_only: false,
        }
    }
}

impl LakeView {
    pub(super) fn logs_ui(&mut self, ui: &mut egui::Ui) {
        let origin_ns = self.origin_ns();
        log_pane_ui(
            ui,
            &mut self.log_pane,
            &self.logs,
            &mut self.timeline,
            origin_ns,
        );
    }
}

/// The log pane over `logs`; hovering a line marks its time on `timeline`, a click centres it.
pub fn log_pane_ui(
    ui: &mut egui::Ui,
    pane: &mut LogPane,
    logs: &[LogRow],
    timeline: &mut TimelineState,
    origin_ns: i64,
) {
    {
        ui.horizontal(|ui| {
            ui.strong("Logs");
            let level_label = ui.label("Level");
            egui::ComboBox::from_id_salt("log_level")
                .selected_text(match pane.min_level {
                    1 => "error",
                    2 => "warn",
                    3 => "info",
                    4 => "debug",
                    _ => "trace",
                })
                .show_ui(ui, |ui| {
                    for (level, name) in [
                        (1, "error"),
                        (2, "warn"),
                        (3, "info"),
                        (4, "debug"),
                        (5, "trace"),
                    ] {
                        ui.selectable_value(&mut pane.min_level, level, name);
                    }
                })
                .response
                .labelled_by(level_label.id);
            let search_label = ui.label("Search");
            ui.add(egui::TextEdit::singleline(&mut pane.search).desired_width(160.0))
                .labelled_by(search_label.id);
            ui.checkbox(&mut pane.in_view_only, "Visible range only");
        });
        let search = pane.search.to_lowercase();
        let (t0, t1) = (timeline.t0 as i64, timeline.t1 as i64);
        let rows: Vec<usize> = logs
            .iter()
            .enumerate()
            .filter(|(_, l)| l.level <= pane.min_level)
            .filter(|(_, l)| !pane.in_view_only || (l.time_ns >= t0 && l.time_ns <= t1))
            .filter(|(_, l)| {
                search.is_empty()
                    || l.message.to_lowercase().contains(&search)
                    || l.target.to_lowercase().contains(&search)
            })
            .map(|(i, _)| i)
            .collect();
        let origin = origin_ns;
        let mut hovered = None;
        let mut clicked = None;
        ui.style_mut().interaction.selectable_labels = false;
        TableBuilder::new(ui)
            .id_salt("logs")
            .striped(true)
            .sense(egui::Sense::click())
            .column(Column::exact(90.0))
            .column(Column::exact(50.0))
            .column(Column::exact(90.0))
            .column(Column::exact(90.0))
            .column(Column::remainder().clip(true))
            .header(18.0, |mut header| {
                for title in ["time", "level", "target", "thread", "message"] {
                    header.col(|ui| {
                        ui.strong(title);
                    });
                }
            })
            .body(|body| {
                body.rows(18.0, rows.len(), |mut row| {
                    let log = &logs[rows[row.index()]];
                    row.col(|ui| {
                        ui.monospace(format!("{:.6}", (log.time_ns - origin) as f64 / 1e9));
                    });
                    row.col(|ui| {
                        ui.colored_label(theme::level_color(log.level), &log.level_name);
                    });
                    row.col(|ui| {
                        ui.label(&log.target);
                    });
                    row.col(|ui| {
                        ui.label(&log.thread_name);
                    });
                    row.col(|ui| {
                        ui.label(&log.message);
                    });
                    let response = row.response();
                    if response.hovered() {
                        hovered = Some(log.time_ns);
                    }
                    if response.clicked() {
                        clicked = Some(log.time_ns);
                    }
                });
            });
        timeline.marker_ns = hovered;
        if let Some(t) = clicked {
            timeline.center_on(t);
        }
    }
}
