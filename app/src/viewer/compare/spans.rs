//! Span statistics side by side: one row per name, regressions first (the engine's order), every
//! column sortable; a click shows both sides' duration distributions and the jumps to the
//! longest instance of each side.

use super::cdf::cdf_ui;
use super::{CompareJump, CompareResult};
use crate::compare_render::{change, compact_ns, flag, short_ns};
use crate::viewer::theme;
use egui_extras::{Column, TableBuilder};
use frameline_engine::compare::{SpanComparison, SpanSide};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
enum SortBy {
    /// Regressions first (the comparison's own order).
    #[default]
    Regression,
    Name,
    DeltaSelf,
    DeltaTotal,
    Change,
    TimePerFrame,
    Calls,
    Mean,
    P50,
    P90,
    P99,
    PValue,
}

const COLUMNS: [(&str, SortBy, f32); 12] = [
    ("name", SortBy::Name, 0.0),
    ("flag", SortBy::Regression, 56.0),
    ("d self/frame", SortBy::DeltaSelf, 92.0),
    ("d time/frame", SortBy::DeltaTotal, 92.0),
    ("change", SortBy::Change, 72.0),
    ("time/frame", SortBy::TimePerFrame, 140.0),
    ("calls/frame", SortBy::Calls, 100.0),
    ("mean", SortBy::Mean, 140.0),
    ("P50", SortBy::P50, 140.0),
    ("P90", SortBy::P90, 140.0),
    ("P99", SortBy::P99, 140.0),
    ("p", SortBy::PValue, 64.0),
];

/// The table's state.
#[derive(Default)]
pub struct SpanTable {
    sort: SortBy,
    /// Reversed from each column's natural order (largest change first, names A–Z).
    reversed: bool,
    /// The row clicked (a span name).
    pub selected: Option<String>,
    pub filter: String,
}

fn pair(b: f64, c: f64) -> String {
    format!("{} > {}", compact_ns(b), compact_ns(c))
}

/// A column's sort value: the change of its statistic (larger = worse).
fn key(s: &SpanComparison, sort: SortBy) -> f64 {
    let d = |f: fn(&SpanSide) -> f64| f(&s.candidate) - f(&s.baseline);
    match sort {
        SortBy::Regression | SortBy::Name => 0.0,
        SortBy::DeltaSelf => s.delta_self_per_frame_ns,
        SortBy::DeltaTotal => s.delta_total_per_frame_ns,
        SortBy::Change => s.change_pct.unwrap_or(f64::INFINITY),
        SortBy::TimePerFrame => s.candidate.total_per_frame_ns,
        SortBy::Calls => d(|x| x.calls_per_frame),
        SortBy::Mean => d(|x| x.durations.mean_ns),
        SortBy::P50 => d(|x| x.durations.p50_ns as f64),
        SortBy::P90 => d(|x| x.durations.p90_ns as f64),
        SortBy::P99 => d(|x| x.durations.p99_ns as f64),
        // Smallest p first.
        SortBy::PValue => -s.p_value.unwrap_or(1.0),
    }
}

impl SpanTable {
    /// Row indices in display order.
    pub fn order(&self, spans: &[SpanComparison]) -> Vec<usize> {
        let filter = self.filter.to_lowercase();
        let mut order: Vec<usize> = (0..spans.len())
            .filter(|&i| filter.is_empty() || spans[i].name.to_lowercase().contains(&filter))
            .collect();
        match self.sort {
            SortBy::Regression => {}
            SortBy::Name => order.sort_by(|&a, &b| spans[a].name.cmp(&spans[b].name)),
            sort => order.sort_by(|&a, &b| key(&spans[b], sort).total_cmp(&key(&spans[a], sort))),
        }
        if self.reversed {
            order.reverse();
        }
        order
    }

    pub fn spans_ui(&mut self, ui: &mut egui::Ui, result: &CompareResult) -> Option<CompareJump> {
        let spans = &result.comparison.spans;
        let mut jump = None;
        ui.horizontal(|ui| {
            ui.add(
                egui::TextEdit::singleline(&mut self.filter)
                    .hint_text("Filter names")
                    .desired_width(180.0),
            );
            let flagged = spans.iter().filter(|s| s.rank() != 2).count();
            ui.label(format!(
                "{} names, {flagged} changed beyond the noise",
                spans.len()
            ));
        });
        let selected = self
            .selected
            .as_ref()
            .and_then(|n| spans.iter().find(|s| &s.name == n));
        if let Some(s) = selected {
            egui::Panel::bottom("compare_span_detail")
                .resizable(true)
                .default_size(220.0)
                .show(ui, |ui| jump = detail_ui(ui, s, result));
        }
        let order = self.order(spans);
        let mut clicked = None;
        ui.style_mut().interaction.selectable_labels = false;
        let mut table = TableBuilder::new(ui)
            .id_salt("compare_spans")
            .striped(true)
            .sense(egui::Sense::click())
            .column(Column::remainder().at_least(140.0).clip(true));
        for (_, _, width) in &COLUMNS[1..] {
            table = table.column(Column::exact(*width).clip(true));
        }
        table
            .header(20.0, |mut header| {
                for (title, sort, _) in COLUMNS {
                    header.col(|ui| {
                        let arrow = match (self.sort == sort, self.reversed) {
                            (true, false) => " v",
                            (true, true) => " ^",
                            _ => "",
                        };
                        if ui.button(format!("{title}{arrow}")).clicked() {
                            if self.sort == sort {
                                self.reversed = !self.reversed;
                            } else {
                                self.sort = sort;
                                self.reversed = false;
                            }
                        }
                    });
                }
            })
            .body(|body| {
                body.rows(18.0, order.len(), |mut row| {
                    let s = &spans[order[row.index()]];
                    let is_selected = self.selected.as_ref() == Some(&s.name);
                    row.set_selected(is_selected);
                    row.col(|ui| {
                        if ui.selectable_label(is_selected, &s.name).clicked() {
                            clicked = Some(s.name.clone());
                        }
                    });
                    row.col(|ui| {
                        let color = match s.rank() {
                            0 | 1 => theme::COMPARE_SLOWER,
                            _ => theme::COMPARE_FASTER,
                        };
                        ui.colored_label(color, flag(s));
                    });
                    let (b, c) = (&s.baseline, &s.candidate);
                    let cells = [
                        short_ns(s.delta_self_per_frame_ns),
                        short_ns(s.delta_total_per_frame_ns),
                        change(s.change_pct),
                        pair(b.total_per_frame_ns, c.total_per_frame_ns),
                        format!("{:.1} > {:.1}", b.calls_per_frame, c.calls_per_frame),
                        pair(b.durations.mean_ns, c.durations.mean_ns),
                        pair(b.durations.p50_ns as f64, c.durations.p50_ns as f64),
                        pair(b.durations.p90_ns as f64, c.durations.p90_ns as f64),
                        pair(b.durations.p99_ns as f64, c.durations.p99_ns as f64),
                        s.p_value
                            .map_or_else(|| "-".to_owned(), |p| format!("{p:.1e}")),
                    ];
                    for text in cells {
                        row.col(|ui| {
                            ui.monospace(text);
                        });
                    }
                    if row.response().clicked() {
                        clicked = Some(s.name.clone());
                    }
                });
            });
        if let Some(name) = clicked {
            self.selected = (self.selected.as_ref() != Some(&name)).then_some(name);
        }
        jump
    }
}

/// The selected name: both distributions of its calls, and where its longest calls are.
fn detail_ui(ui: &mut egui::Ui, s: &SpanComparison, result: &CompareResult) -> Option<CompareJump> {
    let mut jump = None;
    ui.horizontal(|ui| {
        ui.strong(&s.name);
        ui.label(format!(
            "{} calls -> {} calls",
            s.baseline.durations.count, s.candidate.durations.count
        ));
        for (label, side, info) in [
            ("Worst in baseline", &s.baseline, &result.baseline),
            ("Worst in candidate", &s.candidate, &result.candidate),
        ] {
            if let Some(worst) = side.worst
                && ui
                    .button(format!(
                        "{label} ({})",
                        short_ns(worst.end_ns.saturating_sub(worst.begin_ns) as f64)
                    ))
                    .on_hover_text("Show this call on its side's timeline")
                    .clicked()
            {
                jump = info.jump(&worst);
            }
        }
    });
    let marks = [
        ("baseline P99", s.baseline.durations.p99_ns as f64 / 1e6),
        ("candidate P99", s.candidate.durations.p99_ns as f64 / 1e6),
    ];
    cdf_ui(
        ui,
        ("compare_span_cdf", &s.name),
        &s.baseline.durations_ns,
        &s.candidate.durations_ns,
        &marks,
        ui.available_height().max(120.0),
    );
    jump
}
