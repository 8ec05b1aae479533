//! A result with a time column and numeric columns, plotted (timestamps in seconds from the
//! ruler's origin).

use super::result::QueryResult;

pub(super) fn plot_result_ui(ui: &mut egui::Ui, result: &QueryResult, time: usize, origin_ns: i64) {
    let Some(t) = result.numbers[time].as_ref() else {
        return;
    };
    // Timestamps (ns since the epoch) are shown in seconds from the ruler's origin.
    let is_ns = result.is_timestamp[time] || result.columns[time].ends_with("_ns");
    let x = |v: f64| {
        if is_ns {
            (v - origin_ns as f64) / 1e9
        } else {
            v
        }
    };
    egui_plot::Plot::new("sql_plot")
        .height(180.0)
        .legend(egui_plot::Legend::default())
        .x_axis_label(if is_ns {
            "s".to_owned()
        } else {
            result.columns[time].clone()
        })
        .show(ui, |plot| {
            for c in result.value_columns() {
                let Some(values) = result.numbers[c].as_ref() else {
                    continue;
                };
                let points: Vec<[f64; 2]> = t
                    .iter()
                    .zip(values)
                    .filter(|(a, b)| a.is_finite() && b.is_finite())
                    .map(|(&a, &b)| [x(a), b])
                    .collect();
                plot.line(egui_plot::Line::new(
                    result.columns[c].clone(),
                    egui_plot::PlotPoints::from(points),
                ));
            }
        });
}
