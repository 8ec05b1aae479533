//! Metric plots: every metric of the selected processes in a checklist; the checked ones are
//! plotted one under the other on one time axis, linked with the timeline (zooming or panning a
//! plot moves the timeline and the other plots; moving the timeline moves the plots); units on
//! the axes. Points come from `measures` through the engine.

use super::jobs::{Job, take_finished};
use super::timeline::TimelineState;
use super::{i64_column, sql_quote, string_column};
use frameline_engine::Engine;
use frameline_engine::datafusion::arrow::array::AsArray;
use frameline_engine::datafusion::arrow::datatypes::Float64Type;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// One metric's samples.
#[derive(Clone, Debug, Default)]
pub struct Series {
    pub unit: String,
    pub time_ns: Vec<i64>,
    pub values: Vec<f64>,
}

/// The metrics panel.
#[derive(Default)]
pub struct MetricsPanel {
    /// (name, unit) of every metric of the selected processes.
    pub available: Vec<(String, String)>,
    list_job: Option<Job<Vec<(String, String)>>>,
    pub checked: BTreeSet<String>,
    pub series: BTreeMap<String, Arc<Series>>,
    jobs: BTreeMap<String, Job<Series>>,
    /// Process ids, as a SQL list.
    processes: String,
    /// The x range (s from the origin) set on the plots last frame.
    pub x_range_s: Option<(f64, f64)>,
    pub errors: Vec<String>,
    /// Where each plot was drawn last frame.
    pub plot_rects: Vec<egui::Rect>,
}

impl MetricsPanel {
    pub fn busy(&self) -> bool {
        self.list_job.is_some() || !self.jobs.is_empty()
    }

    /// Lists the metrics of `processes` (a SQL list of ids); forgets what was plotted.
    pub fn reset(
        &mut self,
        runtime: &tokio::runtime::Runtime,
        ctx: &egui::Context,
        engine: &Arc<Engine>,
        processes: String,
    ) {
        *self = MetricsPanel {
            processes: processes.clone(),
            ..Default::default()
        };
        let engine = engine.clone();
        let sql = format!(
            "SELECT DISTINCT CAST(name AS VARCHAR) AS name, CAST(unit AS VARCHAR) AS unit \
             FROM measures WHERE process_id IN ({processes}) ORDER BY name, unit"
        );
        self.list_job = Some(Job::spawn(runtime, ctx, "Listing metrics", async move {
            let batches = engine.query(&sql).await?;
            Ok(batches
                .iter()
                .flat_map(|b| string_column(b, 0).into_iter().zip(string_column(b, 1)))
                .collect())
        }));
    }

    /// Checks `name` and loads its samples (as clicking it in the list does).
    pub fn plot(
        &mut self,
        runtime: &tokio::runtime::Runtime,
        ctx: &egui::Context,
        engine: &Arc<Engine>,
        name: &str,
    ) {
        let Some((name, unit)) = self.available.iter().find(|(n, _)| n == name).cloned() else {
            return;
        };
        self.checked.insert(name.clone());
        if !self.series.contains_key(&name) {
            self.load(runtime, ctx, engine, &name, &unit);
        }
    }

    fn load(
        &mut self,
        runtime: &tokio::runtime::Runtime,
        ctx: &egui::Context,
        engine: &Arc<Engine>,
        name: &str,
        unit: &str,
    ) {
        let engine = engine.clone();
        let sql = format!(
            "SELECT CAST(time AS BIGINT) AS time_ns, value FROM measures \
             WHERE process_id IN ({}) AND name = {} ORDER BY time_ns",
            self.processes,
            sql_quote(name)
        );
        let unit = unit.to_owned();
        self.jobs.insert(
            name.to_owned(),
            Job::spawn(runtime, ctx, format!("Loading {name}"), async move {
                let batches = engine.query(&sql).await?;
                let mut series = Series {
                    unit,
                    ..Default::default()
                };
                for b in &batches {
                    series.time_ns.extend(i64_column(b, 0));
                    let values = b.column(1).as_primitive::<Float64Type>();
                    series.values.extend(values.values().iter().copied());
                }
                Ok(series)
            }),
        );
    }

    /// Takes finished loads (every frame, whichever tab is shown).
    pub fn poll(&mut self) {
        if let Some(result) = take_finished(&mut self.list_job) {
            match result {
                Ok(list) => self.available = list,
                Err(e) => self.errors.push(format!("metrics: {e}")),
            }
        }
        let names: Vec<String> = self.jobs.keys().cloned().collect();
        for name in names {
            let mut slot = self.jobs.remove(&name);
            match take_finished(&mut slot) {
                Some(Ok(series)) => {
                    self.series.insert(name, Arc::new(series));
                }
                Some(Err(e)) => self.errors.push(format!("{name}: {e}")),
                None => {
                    if let Some(job) = slot {
                        self.jobs.insert(name, job);
                    }
                }
            }
        }
    }

    pub fn metrics_ui(
        &mut self,
        ui: &mut egui::Ui,
        runtime: &tokio::runtime::Runtime,
        engine: &Arc<Engine>,
        timeline: &mut TimelineState,
        origin_ns: i64,
    ) {
        self.poll();
        let ctx = ui.ctx().clone();
        egui::Panel::left("metric_list")
            .resizable(true)
            .default_size(200.0)
            .show(ui, |ui| {
                ui.strong("Metrics");
                if self.list_job.is_some() {
                    ui.spinner();
                }
                for error in &self.errors {
                    ui.colored_label(egui::Color32::from_rgb(240, 120, 100), error);
                }
                let mut load = Vec::new();
                egui::ScrollArea::vertical()
                    .id_salt("metric_list")
                    .show(ui, |ui| {
                        for (name, unit) in &self.available {
                            let mut on = self.checked.contains(name);
                            if ui.checkbox(&mut on, format!("{name} ({unit})")).changed() {
                                if on {
                                    self.checked.insert(name.clone());
                                    if !self.series.contains_key(name) {
                                        load.push((name.clone(), unit.clone()));
                                    }
                                } else {
                                    self.checked.remove(name);
                                }
                            }
                        }
                    });
                for (name, unit) in load {
                    self.load(runtime, &ctx, engine, &name, &unit);
                }
            });
        let plotted: Vec<(String, Arc<Series>)> = self
            .checked
            .iter()
            .filter_map(|n| self.series.get(n).map(|s| (n.clone(), s.clone())))
            .collect();
        if plotted.is_empty() {
            ui.label(if self.jobs.is_empty() {
                "Check a metric to plot it."
            } else {
                "Loading…"
            });
            return;
        }
        let origin = origin_ns as f64;
        let wanted = ((timeline.t0 - origin) / 1e9, (timeline.t1 - origin) / 1e9);
        let height = (ui.available_height() / plotted.len() as f32 - 4.0).max(60.0);
        let mut moved_by_user: Option<(f64, f64)> = None;
        let last = self.x_range_s;
        let mut rects = Vec::new();
        egui::ScrollArea::vertical()
            .id_salt("metric_plots")
            .show(ui, |ui| {
                for (name, series) in &plotted {
                    let points: Vec<[f64; 2]> = series
                        .time_ns
                        .iter()
                        .zip(&series.values)
                        .map(|(&t, &v)| [(t as f64 - origin) / 1e9, v])
                        .collect();
                    let unit = series.unit.clone();
                    let response = egui_plot::Plot::new(("metric", name.as_str()))
                        .height(height)
                        .link_axis(egui::Id::unique("metric_plots"), [true, false])
                        .link_cursor(egui::Id::unique("metric_plots"), [true, false])
                        .x_axis_label("s")
                        .y_axis_label(unit)
                        .y_axis_min_width(100.0)
                        .show(ui, |plot| {
                            let b = plot.plot_bounds();
                            let now = (b.min()[0], b.max()[0]);
                            let tolerance = (wanted.1 - wanted.0).abs() * 1e-6;
                            let user_moved = last.is_some_and(|l| {
                                (now.0 - l.0).abs() > tolerance || (now.1 - l.1).abs() > tolerance
                            });
                            if user_moved && moved_by_user.is_none() {
                                moved_by_user = Some(now);
                            } else if moved_by_user.is_none() {
                                plot.set_plot_bounds_x(wanted.0..=wanted.1);
                            }
                            plot.line(egui_plot::Line::new(
                                name.clone(),
                                egui_plot::PlotPoints::from(points),
                            ));
                        });
                    rects.push(response.response.rect);
                }
            });
        self.plot_rects = rects;
        match moved_by_user {
            Some((a, b)) if b > a => {
                timeline.t0 = origin + a * 1e9;
                timeline.t1 = origin + b * 1e9;
                self.x_range_s = Some((a, b));
            }
            _ => self.x_range_s = Some(wanted),
        }
    }
}
