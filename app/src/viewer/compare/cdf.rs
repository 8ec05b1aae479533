//! Two distributions on one axis: each side's cumulative share (CDF) of its values, which
//! overlays cleanly where two histograms would hide each other, and reads percentiles directly
//! (P99 is where a curve crosses 99 %).

use crate::viewer::theme;

/// At most this many points per curve (evenly spaced by rank).
const MAX_POINTS: usize = 512;

/// `[x_ms, percent]` points of the CDF of `sorted_ns` (sorted ascending).
pub fn cdf_points(sorted_ns: &[i64]) -> Vec<[f64; 2]> {
    let n = sorted_ns.len();
    if n == 0 {
        return Vec::new();
    }
    let step = n.div_ceil(MAX_POINTS).max(1);
    let mut points: Vec<[f64; 2]> = (0..n)
        .step_by(step)
        .map(|i| [sorted_ns[i] as f64 / 1e6, (i + 1) as f64 * 100.0 / n as f64])
        .collect();
    if let Some(&last) = sorted_ns.last() {
        points.push([last as f64 / 1e6, 100.0]);
    }
    points
}

/// The right end of the axis: a little past both P99s (and past the marks), so a few outliers
/// do not squeeze the curves against the left edge. Beyond it: drag or zoom.
fn x_max_ms(baseline_ns: &[i64], candidate_ns: &[i64], marks: &[(&str, f64)]) -> f64 {
    let p99 = |v: &[i64]| frameline_engine::compare::stats::nearest_rank(v, 0.99).unwrap_or(0);
    let ms = p99(baseline_ns).max(p99(candidate_ns)) as f64 / 1e6;
    let marks = marks.iter().map(|(_, x)| *x).fold(0.0, f64::max);
    let x = ms.max(marks) * 1.3;
    if x.is_finite() && x > 0.0 { x } else { 1.0 }
}

/// Both sides' CDFs, with vertical marks (label, ms).
pub fn cdf_ui(
    ui: &mut egui::Ui,
    id: impl std::hash::Hash + std::fmt::Debug,
    baseline_ns: &[i64],
    candidate_ns: &[i64],
    marks: &[(&str, f64)],
    height: f32,
) {
    use egui_plot::{Legend, Line, Plot, PlotPoints, VLine};
    Plot::new(id)
        .height(height)
        .legend(Legend::default())
        .x_axis_label("duration (ms)")
        .y_axis_label("% at or below")
        .default_x_bounds(0.0, x_max_ms(baseline_ns, candidate_ns, marks))
        .default_y_bounds(0.0, 101.0)
        .allow_scroll(false)
        .show(ui, |plot| {
            plot.line(
                Line::new("baseline", PlotPoints::from(cdf_points(baseline_ns)))
                    .color(theme::COMPARE_BASELINE),
            );
            plot.line(
                Line::new("candidate", PlotPoints::from(cdf_points(candidate_ns)))
                    .color(theme::COMPARE_CANDIDATE),
            );
            for (label, ms) in marks {
                plot.vline(VLine::new(*label, *ms).color(theme::TARGET_LINE));
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdf_reaches_100_and_is_bounded() {
        let values: Vec<i64> = (1..=10_000).map(|v| v * 1000).collect();
        let points = cdf_points(&values);
        assert!(points.len() <= MAX_POINTS + 1);
        assert_eq!(points.last().unwrap(), &[10.0, 100.0]);
        assert!(
            points
                .windows(2)
                .all(|w| w[0][0] <= w[1][0] && w[0][1] <= w[1][1])
        );
        assert_eq!(cdf_points(&[2_000_000]), vec![[2.0, 100.0], [2.0, 100.0]]);
        assert!(cdf_points(&[]).is_empty());
    }
}
