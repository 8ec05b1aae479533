//! The tab strip under the timeline: logs, statistics, flame graph, SQL, metrics.

use super::LakeView;
use super::scope::AnalysisContext;

/// The tabs under the timeline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Tab {
    #[default]
    Logs,
    Statistics,
    FlameGraph,
    Sql,
    Metrics,
}

impl LakeView {
    /// The analysis tabs (logs, statistics, flame graph, SQL, metrics).
    pub(super) fn tabs_ui(&mut self, ui: &mut egui::Ui, runtime: &tokio::runtime::Runtime) {
        ui.horizontal(|ui| {
            for (tab, label) in [
                (Tab::Logs, "Logs"),
                (Tab::Statistics, "Statistics"),
                (Tab::FlameGraph, "Flame graph"),
                (Tab::Sql, "SQL"),
                (Tab::Metrics, "Metrics"),
            ] {
                ui.selectable_value(&mut self.tab, tab, label);
            }
        });
        ui.separator();
        let origin = self.origin_ns();
        match self.tab {
            Tab::Logs => self.logs_ui(ui),
            Tab::Sql => {
                if let Some(track) = self.sql.sql_ui(ui, runtime, &self.engine, origin) {
                    self.add_query_track(track);
                }
            }
            Tab::Metrics => {
                self.metrics
                    .metrics_ui(ui, runtime, &self.engine, &mut self.timeline, origin)
            }
            Tab::Statistics | Tab::FlameGraph => {
                let streamed = self.streamed();
                // A streamed session with no detail loaded yet still has statistics (from its
                // blocks); the flame graph works on detail.
                let model = self.analysis_model();
                match model {
                    None => {
                        ui.label("Waiting for the spans…");
                    }
                    Some(model) => {
                        let cx = AnalysisContext {
                            runtime,
                            model: &model,
                            timeline: &mut self.timeline,
                            streamed,
                        };
                        if self.tab == Tab::Statistics {
                            self.stats.stats_ui(ui, cx);
                        } else {
                            self.flame.flame_ui(ui, cx, &self.frames);
                        }
                    }
                }
            }
        }
    }
}
