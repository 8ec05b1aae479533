//! Metric plots: every metric of the selected processes in a checklist; the checked ones are
//! plotted one under the other on one time axis, linked with the timeline (zooming or panning a
//! plot moves the timeline and the other plots; moving the timeline moves the plots); units on
//! the axes. Points come from `measures` through the engine.

use super::derived::Derived;
use super::theme;
use super::timeline::TimelineState;
use frameline_engine::{Engine, MetricName, MetricSamples};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// One metric's samples, with its unit.
#[derive(Clone, Debug, Default)]
pub struct Series {
    pub unit: String,
    pub samples: MetricSamples,
}

/// A metric's samples are loaded for these processes and this name.
type SeriesKey = (Vec<String>, String);

/// The metrics panel.
#[derive(Default)]
pub struct MetricsPanel {
    /// The processes whose metrics are listed and plotted.
    processes: Vec<String>,
    /// Every metric of the processes.
    list: Derived<Vec<String>, Vec<MetricName>>,
    pub checked: BTreeSet<String>,
    loads: BTreeMap<String, Derived<SeriesKey, Series>>,
    /// The x range (s from the origin) set on the plots last frame.
    pub x_range_s: Option<(f64, f64)>,
    /// Where each plot was drawn last frame.
    pub plot_rects: Vec<egui::Rect>,
}

impl MetricsPanel {
    pub fn busy(&self) -> bool {
        self.list.busy() || self.loads.values().any(Derived::busy)
    }

    /// Every metric of the processes (empty until listed).
    pub fn available(&self) -> &[MetricName] {
        self.list.value().map_or(&[], |l| l.as_slice())
    }

    /// The loaded samples of each metric.
    pub fn series(&self) -> BTreeMap<&str, Arc<Series>> {
        self.loads
            .iter()
            .filter_map(|(name, load)| load.value().map(|s| (name.as_str(), s.clone())))
            .collect()
    }

    /// What failed to load.
    pub fn errors(&self) -> Vec<String> {
        let list = self.list.error().map(|e| format!("metrics: {e}"));
        let loads = self
            .loads
            .iter()
            .filter_map(|(name, l)| l.error().map(|e| format!("{name}: {e}")));
        list.into_iter().chain(loads).collect()
    }

    /// Lists the metrics of `processes`; forgets what was plotted.
    pub fn reset(
        &mut self,
        runtime: &tokio::runtime::Runtime,
        ctx: &egui::Context,
        engine: &Arc<Engine>,
        processes: Vec<String>,
    ) {
        self.list.cancel();
        for load in self.loads.values_mut() {
            load.cancel();
        }
        *self = MetricsPanel {
            processes: processes.clone(),
            ..Default::default()
        };
        let engine = engine.clone();
        self.list.request_async(
            runtime,
            ctx,
            "Listing metrics",
            &processes,
            |ids| async move { Ok(engine.metric_names(&ids).await?) },
        );
    }

    /// Checks `name` and loads its samples (as clicking it in the list does).
    pub fn plot(
        &mut self,
        runtime: &tokio::runtime::Runtime,
        ctx: &egui::Context,
        engine: &Arc<Engine>,
        name: &str,
    ) {
        if !self.available().iter().any(|m| m.name == name) {
            return;
        }
        self.checked.insert(name.to_owned());
        self.load(runtime, ctx, engine, name);
    }

    fn load(
        &mut self,
        runtime: &tokio::runtime::Runtime,
        ctx: &egui::Context,
        engine: &Arc<Engine>,
        name: &str,
    ) {
        let unit = self
            .available()
            .iter()
            .find(|m| m.name == name)
            .map(|m| m.unit.clone())
            .unwrap_or_default();
        let engine = engine.clone();
        let key = (self.processes.clone(), name.to_owned());
        self.loads
            .entry(name.to_owned())
            .or_default()
            .request_async(
                runtime,
                ctx,
                &format!("Loading {name}"),
                &key,
                |(ids, name)| async move {
                    let samples = engine.metric_samples(&ids, &name).await?;
                    Ok(Series { unit, samples })
                },
            );
    }

    /// Takes finished loads (every frame, whichever tab is shown).
    pub fn poll(&mut self) {
        self.list.poll();
        for load in self.loads.values_mut() {
            load.poll();
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
                // The spinner sits beside the title: the list below never moves.
                ui.horizontal(|ui| {
                    ui.strong("Metrics");
                    if self.busy() {
                        ui.spinner();
                    }
                });
                for error in self.errors() {
                    ui.colored_label(theme::ERROR_TEXT, error);
                }
                let mut load = Vec::new();
                egui::ScrollArea::vertical()
                    .id_salt("metric_list")
                    .show(ui, |ui| {
                        for MetricName { name, unit } in self.available() {
                            let mut on = self.checked.contains(name);
                            if ui.checkbox(&mut on, format!("{name} ({unit})")).changed() {
                                load.push((name.clone(), on));
                            }
                        }
                    });
                for (name, on) in load {
                    if on {
                        self.checked.insert(name.clone());
                        self.load(runtime, &ctx, engine, &name);
                    } else {
                        self.checked.remove(&name);
                    }
                }
            });
        let series = self.series();
        let plotted: Vec<(String, Arc<Series>)> = self
            .checked
            .iter()
            .filter_map(|n| series.get(n.as_str()).map(|s| (n.clone(), s.clone())))
            .collect();
        if plotted.is_empty() {
            ui.label(if !self.busy() {
                "Check a metric to plot it."
            } else {
                "Loading…"
            });
            return;
        }
        self.plot_rects = metric_plots_ui(ui, &plotted, &mut self.x_range_s, timeline, origin_ns);
    }
}

/// The points of samples `(time_ns, values)` (in time order) to draw over `seconds` (from
/// `origin_ns`) on a plot `columns` pixels wide: every sample in range (and one on each side)
/// when they fit two per column, else per column the smallest and the largest, in time order
/// (min/max decimation: a spike stays as tall as it is, an hour at 60 Hz is 216 000 samples).
pub fn decimated_points(
    time_ns: &[i64],
    values: &[f64],
    origin_ns: i64,
    seconds: (f64, f64),
    columns: usize,
) -> Vec<[f64; 2]> {
    let n = time_ns.len().min(values.len());
    let to_ns = |s: f64| origin_ns.saturating_add((s * 1e9) as i64);
    let (t0, t1) = (to_ns(seconds.0), to_ns(seconds.1));
    let first = time_ns[..n].partition_point(|&t| t < t0).saturating_sub(1);
    let last = (time_ns[..n].partition_point(|&t| t <= t1) + 1).min(n);
    let point = |i: usize| [(time_ns[i] - origin_ns) as f64 / 1e9, values[i]];
    let columns = columns.max(1);
    if last <= first || last - first <= 2 * columns {
        return (first..last).map(point).collect();
    }
    let column_ns = (t1.saturating_sub(t0) / columns as i64).max(1);
    let mut points = Vec::with_capacity(2 * columns + 2);
    let mut i = first;
    while i < last {
        let column = time_ns[i].saturating_sub(t0).div_euclid(column_ns);
        let end = t0.saturating_add(column.saturating_add(1).saturating_mul(column_ns));
        let j = (i + 1).max(i + time_ns[i..last].partition_point(|&t| t < end));
        let (mut lo, mut hi) = (i, i);
        for k in i..j {
            if values[k] < values[lo] {
                lo = k;
            }
            if values[k] > values[hi] {
                hi = k;
            }
        }
        points.push(point(lo.min(hi)));
        if lo != hi {
            points.push(point(lo.max(hi)));
        }
        i = j;
    }
    points
}

/// `plotted` one under the other on one time axis (seconds from `origin_ns`), linked: each
/// frame they show the timeline's range, unless the user zoomed or panned one, and then that
/// range goes to the timeline. `x_range_s` is the range set last frame. Returns where each plot
/// was drawn.
pub fn metric_plots_ui(
    ui: &mut egui::Ui,
    plotted: &[(String, Arc<Series>)],
    x_range_s: &mut Option<(f64, f64)>,
    timeline: &mut TimelineState,
    origin_ns: i64,
) -> Vec<egui::Rect> {
    let origin = origin_ns as f64;
    let wanted = ((timeline.t0 - origin) / 1e9, (timeline.t1 - origin) / 1e9);
    let height = (ui.available_height() / plotted.len() as f32 - 4.0).max(60.0);
    let mut moved_by_user: Option<(f64, f64)> = None;
    let last = *x_range_s;
    let mut rects = Vec::new();
    egui::ScrollArea::vertical()
        .id_salt("metric_plots")
        .show(ui, |ui| {
            for (name, series) in plotted {
                let columns = ui.available_width().max(1.0) as usize;
                let points = decimated_points(
                    &series.samples.time_ns,
                    &series.samples.values,
                    origin_ns,
                    wanted,
                    columns,
                );
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
    match moved_by_user {
        Some((a, b)) if b > a => {
            timeline.t0 = origin + a * 1e9;
            timeline.t1 = origin + b * 1e9;
            *x_range_s = Some((a, b));
        }
        _ => *x_range_s = Some(wanted),
    }
    rects
}

#[cfg(test)]
mod decimation_tests {
    use super::decimated_points;

    #[test]
    fn an_hour_of_samples_decimates_to_the_columns_and_keeps_its_extremes() {
        let n = 216_000usize;
        let time_ns: Vec<i64> = (0..n as i64).map(|i| i * 16_666_667).collect();
        let values: Vec<f64> = (0..n)
            .map(|i| match i {
                100_000 => 500.0,
                150_000 => -20.0,
                _ => (i % 7) as f64,
            })
            .collect();
        let span_s = time_ns[n - 1] as f64 / 1e9;
        let points = decimated_points(&time_ns, &values, 0, (0.0, span_s), 1000);
        assert!(points.len() <= 2 * 1000 + 4, "{}", points.len());
        let max = points.iter().map(|p| p[1]).fold(f64::MIN, f64::max);
        let min = points.iter().map(|p| p[1]).fold(f64::MAX, f64::min);
        assert_eq!((min, max), (-20.0, 500.0));
        assert!(
            points.windows(2).all(|w| w[0][0] <= w[1][0]),
            "in time order"
        );
        // Zoomed in: every sample of the range, and one on each side.
        let few = decimated_points(&time_ns, &values, 0, (1.0, 1.1), 1000);
        assert_eq!(few.len(), 6 + 2);
        assert!(
            few.iter()
                .all(|p| p[1] == (((p[0] * 1e9 / 16_666_667.0).round() as usize) % 7) as f64)
        );
    }
}
