//! Span statistics of a selection: one row per span name (count, total, self, mean, P50, P90,
//! P99, max), sortable; a histogram of the selected name's durations; clicking a row highlights
//! every instance of it on the timeline (Tracy's find-zone). Computed by
//! `frameline_engine::analysis::span_stats` in the background.

use super::derived::Derived;
use super::scope::{AnalysisContext, Scope, panel_header_ui};
use super::theme;
use super::timeline::format_duration;
use egui::RichText;
use egui_extras::{Column, TableBuilder};
use frameline_engine::analysis::{NameStats, Selection, span_stats};
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SortBy {
    Name,
    Count,
    Total,
    SelfTime,
    Mean,
    P50,
    P90,
    P99,
    Max,
}

const COLUMNS: [(&str, SortBy); 9] = [
    ("name", SortBy::Name),
    ("count", SortBy::Count),
    ("total", SortBy::Total),
    ("self", SortBy::SelfTime),
    ("mean", SortBy::Mean),
    ("P50", SortBy::P50),
    ("P90", SortBy::P90),
    ("P99", SortBy::P99),
    ("max", SortBy::Max),
];

/// Where statistics come from: the loaded model (its generation), or the blocks of a streamed
/// selection (its index, by address) when the model does not hold the range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Model(u64),
    Blocks(usize),
}

/// What a result was computed for: its source and the selection.
type StatsKey = (Source, Selection);

/// The statistics panel.
pub struct StatsPanel {
    pub scope: Scope,
    stats: Derived<StatsKey, Vec<NameStats>>,
    /// The row clicked: its histogram is shown and its instances highlighted.
    pub selected_name: Option<String>,
    sort: SortBy,
    descending: bool,
    /// Only names containing this.
    pub filter: String,
}

impl Default for StatsPanel {
    fn default() -> Self {
        StatsPanel {
            scope: Scope::Selection,
            stats: Derived::default(),
            selected_name: None,
            sort: SortBy::Total,
            descending: true,
            filter: String::new(),
        }
    }
}

impl StatsPanel {
    pub fn busy(&self) -> bool {
        self.stats.busy()
    }

    /// The last statistics computed.
    pub fn stats(&self) -> Option<&Arc<Vec<NameStats>>> {
        self.stats.value()
    }

    /// Takes a finished result (every frame, whichever tab is shown).
    pub fn poll(&mut self) {
        self.stats.poll();
    }

    /// Starts computing if the selection changed since the last result: on the loaded model,
    /// or from the blocks when the session is streamed and the model does not hold the range.
    fn refresh(&mut self, ctx: &egui::Context, cx: &AnalysisContext<'_>) {
        let selection = cx.selection(self.scope);
        if let Some(streamed) = cx
            .streamed
            .clone()
            .filter(|s| !s.covers(selection.begin_ns, selection.end_ns))
        {
            let key = (
                Source::Blocks(Arc::as_ptr(&streamed.index) as usize),
                selection,
            );
            self.stats.request_async(
                cx.runtime,
                ctx,
                "Span statistics (from blocks)",
                &key,
                move |(_, selection)| async move {
                    let streams = streamed.streams_of(&selection.tracks);
                    Ok(streamed
                        .engine
                        .range_span_stats(
                            &streamed.index,
                            (selection.begin_ns, selection.end_ns),
                            streams,
                            &frameline_engine::Progress::default(),
                        )
                        .await?)
                },
            );
            return;
        }
        let key = (Source::Model(cx.model.generation), selection);
        let spans = cx.model.model.clone();
        self.stats.request(
            cx.runtime,
            ctx,
            "Span statistics",
            &key,
            move |(_, selection)| span_stats(&spans, &selection),
        );
    }

    pub fn stats_ui(&mut self, ui: &mut egui::Ui, cx: AnalysisContext<'_>) {
        ui.horizontal(|ui| {
            let filter = ("Filter names", &mut self.filter);
            panel_header_ui(ui, "Span statistics", &mut self.scope, cx.timeline, filter);
            if self.stats.busy() {
                ui.spinner();
            }
            if let Some(stats) = self.stats.value() {
                ui.label(format!(
                    "{} names, {} spans",
                    stats.len(),
                    stats.iter().map(|s| s.count).sum::<u64>()
                ));
                if matches!(self.stats.computed_for(), Some((Source::Blocks(_), _))) {
                    ui.label(RichText::new("from blocks").weak())
                        .on_hover_text("The range is not loaded as detail: folded from its blocks");
                }
                if stats.iter().any(|s| s.approximate) {
                    ui.label(RichText::new("percentiles ±1.1 %").weak()).on_hover_text(
                        "More spans than are kept exactly: percentiles from a sketch, the histogram from a sample",
                    );
                }
            }
            if self.selected_name.is_some() && ui.button("Clear highlight").clicked() {
                self.selected_name = None;
                cx.timeline.highlight_name = None;
            }
        });
        self.refresh(&ui.ctx().clone(), &cx);
        let Some(stats) = self.stats.value().cloned() else {
            ui.label("Computing…");
            return;
        };
        let filter = self.filter.to_lowercase();
        let mut order: Vec<usize> = (0..stats.len())
            .filter(|&i| filter.is_empty() || stats[i].name.to_lowercase().contains(&filter))
            .collect();
        let key = |s: &NameStats| -> f64 {
            match self.sort {
                SortBy::Name | SortBy::Total => s.total_ns as f64,
                SortBy::Count => s.count as f64,
                SortBy::SelfTime => s.self_ns as f64,
                SortBy::Mean => s.mean_ns,
                SortBy::P50 => s.p50_ns as f64,
                SortBy::P90 => s.p90_ns as f64,
                SortBy::P99 => s.p99_ns as f64,
                SortBy::Max => s.max_ns as f64,
            }
        };
        if self.sort == SortBy::Name {
            order.sort_by(|&a, &b| stats[a].name.cmp(&stats[b].name));
        } else {
            order.sort_by(|&a, &b| key(&stats[a]).total_cmp(&key(&stats[b])));
        }
        if self.descending {
            order.reverse();
        }
        let selected = self
            .selected_name
            .as_ref()
            .and_then(|n| stats.iter().find(|s| &s.name == n));
        let mut clicked = None;
        if let Some(s) = selected {
            egui::Panel::right("stats_histogram")
                .resizable(true)
                .default_size(ui.available_width() * 0.28)
                .show(ui, |ui| histogram_ui(ui, s));
        }
        ui.style_mut().interaction.selectable_labels = false;
        TableBuilder::new(ui)
            .id_salt("span_stats")
            .striped(true)
            .sense(egui::Sense::click())
            .column(Column::remainder().at_least(120.0).clip(true))
            .columns(Column::exact(70.0).clip(true), 8)
            .header(20.0, |mut header| {
                for (title, sort) in COLUMNS {
                    header.col(|ui| {
                        let arrow = if self.sort == sort {
                            if self.descending { " v" } else { " ^" }
                        } else {
                            ""
                        };
                        if ui.button(format!("{title}{arrow}")).clicked() {
                            if self.sort == sort {
                                self.descending = !self.descending;
                            } else {
                                self.sort = sort;
                                self.descending = sort != SortBy::Name;
                            }
                        }
                    });
                }
            })
            .body(|body| {
                body.rows(18.0, order.len(), |mut row| {
                    let s = &stats[order[row.index()]];
                    let is_selected = self.selected_name.as_ref() == Some(&s.name);
                    row.set_selected(is_selected);
                    row.col(|ui| {
                        if ui.selectable_label(is_selected, &s.name).clicked() {
                            clicked = Some(s.name.clone());
                        }
                    });
                    row.col(|ui| {
                        ui.monospace(s.count.to_string());
                    });
                    for ns in [s.total_ns, s.self_ns, s.mean_ns as i64, s.p50_ns] {
                        row.col(|ui| {
                            ui.monospace(format_duration(ns));
                        });
                    }
                    for ns in [s.p90_ns, s.p99_ns, s.max_ns] {
                        row.col(|ui| {
                            ui.monospace(format_duration(ns));
                        });
                    }
                    if row.response().clicked() {
                        clicked = Some(s.name.clone());
                    }
                });
            });
        if let Some(name) = clicked {
            if self.selected_name.as_ref() == Some(&name) {
                self.selected_name = None;
                cx.timeline.highlight_name = None;
            } else {
                cx.timeline.highlight_name = Some(name.clone());
                self.selected_name = Some(name);
            }
        }
    }
}

/// Durations of one name in 40 equal bins between its minimum and maximum.
pub fn histogram_bins(durations_ns: &[i64], bins: usize) -> (f64, f64, Vec<u64>) {
    let min = durations_ns.iter().copied().min().unwrap_or(0) as f64;
    let max = durations_ns.iter().copied().max().unwrap_or(0) as f64;
    let width = ((max - min) / bins as f64).max(1.0);
    let mut counts = vec![0u64; bins.max(1)];
    for &d in durations_ns {
        let i = (((d as f64 - min) / width) as usize).min(counts.len() - 1);
        counts[i] += 1;
    }
    (min, width, counts)
}

fn histogram_ui(ui: &mut egui::Ui, s: &NameStats) {
    ui.strong(format!("{}: {} spans", s.name, s.count));
    let (min, width, counts) = histogram_bins(&s.durations_ns, 40);
    let bars: Vec<egui_plot::Bar> = counts
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let x_ms = (min + (i as f64 + 0.5) * width) / 1e6;
            egui_plot::Bar::new(x_ms, c as f64)
                .width(width / 1e6)
                .fill(theme::name_color(&s.name))
        })
        .collect();
    let marks = [
        ("P50", s.p50_ns),
        ("P90", s.p90_ns),
        ("P99", s.p99_ns),
        ("mean", s.mean_ns as i64),
    ];
    egui_plot::Plot::new("span_histogram")
        .height(ui.available_height().max(80.0))
        .x_axis_label("duration (ms)")
        .y_axis_label("spans")
        .allow_scroll(false)
        .show(ui, |plot| {
            plot.bar_chart(egui_plot::BarChart::new("durations", bars));
            for (label, ns) in marks {
                plot.vline(egui_plot::VLine::new(label, ns as f64 / 1e6).color(theme::PLOT_MARK));
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_counts_every_duration_once() {
        let d: Vec<i64> = (0..1000).collect();
        let (min, width, counts) = histogram_bins(&d, 40);
        assert_eq!(min, 0.0);
        assert!((width - 999.0 / 40.0).abs() < 1e-9);
        assert_eq!(counts.iter().sum::<u64>(), 1000);
        assert_eq!(counts.len(), 40);
        let (_, _, one) = histogram_bins(&[5, 5, 5], 10);
        assert_eq!(one[0], 3);
    }
}
