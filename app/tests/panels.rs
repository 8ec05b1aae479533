//! Each panel drawn alone from a deterministic model (`analysis::synthetic_model`, fixed frames
//! and log lines) at a small fixed size, through wgpu on lavapipe, and compared with its
//! snapshot at egui_kittest's default (tight) threshold: a change in what a panel draws fails
//! here, where the whole-app snapshots (recorded timings differ per run) must stay loose.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use egui_kittest::Harness;
use egui_kittest::kittest::Queryable as _;
use frameline::viewer::flame::FlamePanel;
use frameline::viewer::frame_plot::{FrameRow, frame_plot_ui};
use frameline::viewer::logs::{LogPane, LogRow, log_pane_ui};
use frameline::viewer::metrics::{Series, metric_plots_ui};
use frameline::viewer::sql::{QueryResult, SqlPanel};
use frameline::viewer::stats::StatsPanel;
use frameline::viewer::timeline::{TimelineState, timeline_ui};
use frameline::viewer::{AnalysisContext, LoadedModel, install_renderer};
use frameline_engine::MetricSamples;
use frameline_engine::analysis::synthetic_model;
use frameline_engine::datafusion::arrow::array::{
    ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

const FRAME_NS: i64 = 16_000_000;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Panel {
    Timeline,
    Statistics,
    FlameGraph,
    Logs,
    FramePlot,
    SqlResult,
    Metrics,
}

/// A window showing one panel over fixed data.
struct PanelApp {
    panel: Panel,
    runtime: tokio::runtime::Runtime,
    model: LoadedModel,
    timeline: TimelineState,
    stats: StatsPanel,
    flame: FlamePanel,
    log_pane: LogPane,
    logs: Vec<LogRow>,
    frames: Vec<FrameRow>,
    sql: SqlPanel,
    result: QueryResult,
    series: Vec<(String, Arc<Series>)>,
    x_range_s: Option<(f64, f64)>,
}

impl PanelApp {
    fn new(panel: Panel) -> Self {
        let model = Arc::new(synthetic_model(2, 3, 6, FRAME_NS));
        let mut timeline = TimelineState::default();
        timeline.show_range(model.begin_ns, model.end_ns);
        let logs = (0..12)
            .map(|i| LogRow {
                time_ns: i * 4_000_000 + 1_000_000,
                level: (i % 5 + 1) as u8,
                level_name: ["error", "warn", "info", "debug", "trace"][(i % 5) as usize].into(),
                target: "game::ai".into(),
                thread_name: format!("thread-{}", i % 2),
                process_id: "synthetic".into(),
                message: format!("line {i}: {} entities", i * 10),
            })
            .collect();
        // Frame times from 8 to 40 ms: every colour of the plot.
        let mut begin_ns = 0;
        let frames = [8, 12, 16, 20, 40, 14, 9, 17]
            .iter()
            .map(|ms| {
                let frame = FrameRow {
                    begin_ns,
                    end_ns: begin_ns + ms * 1_000_000,
                };
                begin_ns = frame.end_ns;
                frame
            })
            .collect();
        let batch = RecordBatch::try_from_iter([
            (
                "name",
                Arc::new(StringArray::from(vec![
                    "physics.step",
                    "render.draw",
                    "ai.think",
                ])) as ArrayRef,
            ),
            (
                "calls",
                Arc::new(Int64Array::from(vec![180, 360, 540])) as ArrayRef,
            ),
            (
                "total_ms",
                Arc::new(Float64Array::from(vec![412.5, 96.25, 1250.0])) as ArrayRef,
            ),
        ])
        .unwrap();
        let result =
            QueryResult::from_batches("SELECT name, calls, total_ms FROM t", &[batch], 1.5);
        let sample = |f: fn(f64) -> f64| MetricSamples {
            time_ns: (0..48).map(|i| i * 1_000_000).collect(),
            values: (0..48).map(|i| f(i as f64)).collect(),
        };
        let series = vec![
            (
                "frame_time".to_owned(),
                Arc::new(Series {
                    unit: "ms".into(),
                    samples: sample(|i| 16.0 + (i * 0.7).sin() * 4.0),
                }),
            ),
            (
                "memory.used".to_owned(),
                Arc::new(Series {
                    unit: "bytes".into(),
                    samples: sample(|i| 1e9 + i * 1e6),
                }),
            ),
        ];
        PanelApp {
            panel,
            runtime: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .unwrap(),
            model: LoadedModel {
                model,
                generation: 1,
            },
            timeline,
            stats: StatsPanel::default(),
            flame: FlamePanel::default(),
            log_pane: LogPane::default(),
            logs,
            frames,
            sql: SqlPanel::default(),
            result,
            series,
            x_range_s: None,
        }
    }

    fn busy(&self) -> bool {
        self.stats.busy() || self.flame.busy()
    }
}

impl eframe::App for PanelApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        egui::CentralPanel::default().show(ui, |ui| match self.panel {
            Panel::Timeline => timeline_ui(
                ui,
                &self.model.model,
                &mut self.timeline,
                &self.logs,
                &BTreeMap::new(),
                0,
            ),
            Panel::Statistics | Panel::FlameGraph => {
                let cx = AnalysisContext {
                    runtime: &self.runtime,
                    model: &self.model,
                    timeline: &mut self.timeline,
                    streamed: None,
                };
                if self.panel == Panel::Statistics {
                    self.stats.stats_ui(ui, cx);
                } else {
                    self.flame.flame_ui(ui, cx, &self.frames);
                }
            }
            Panel::Logs => log_pane_ui(ui, &mut self.log_pane, &self.logs, &mut self.timeline, 0),
            Panel::SqlResult => {
                let result = self.result.clone();
                self.sql.result_table_ui(ui, &result);
            }
            Panel::Metrics => {
                metric_plots_ui(ui, &self.series, &mut self.x_range_s, &mut self.timeline, 0);
            }
            Panel::FramePlot => {
                let visible = Some((self.timeline.t0, self.timeline.t1));
                frame_plot_ui(ui, &self.frames, 16.0, visible, 0);
            }
        });
    }
}

fn harness(panel: Panel) -> Harness<'static, PanelApp> {
    let mut h = Harness::builder()
        .with_size(egui::vec2(640.0, 320.0))
        .wgpu()
        .build_eframe(move |cc| {
            install_renderer(cc);
            PanelApp::new(panel)
        });
    let deadline = Instant::now() + Duration::from_secs(60);
    h.step();
    while h.state().busy() && Instant::now() < deadline {
        h.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    for _ in 0..3 {
        h.step();
    }
    assert!(!h.state().busy(), "the panel's background work did not end");
    h
}

#[test]
fn timeline_panel() {
    let mut h = harness(Panel::Timeline);
    // Both threads, their log lanes and three depths each; spans named where they fit.
    let names = h
        .state()
        .timeline
        .visible_span_names(&h.state().model.model);
    assert!(names.iter().any(|n| n == "frame"), "{names:?}");
    assert_eq!(h.state().timeline.last_log_marks, 12);
    h.snapshot("panel_timeline");
    // Zoomed to 4 ms, the ruler's labels still differ tick to tick.
    h.state_mut().timeline.show_range(20_000_000, 24_000_000);
    h.step();
    h.step();
    h.snapshot("panel_timeline_zoomed");
}

#[test]
fn statistics_panel() {
    let mut h = harness(Panel::Statistics);
    let stats = h.state().stats.stats().cloned().unwrap();
    // 2 threads × 3 frames: 6 `frame` spans.
    assert_eq!(stats.iter().find(|s| s.name == "frame").unwrap().count, 6);
    h.snapshot("panel_statistics");
}

#[test]
fn flame_graph_panel() {
    let mut h = harness(Panel::FlameGraph);
    let graph = h.state().flame.graph().cloned().unwrap();
    assert!(graph.nodes.len() > 8);
    h.snapshot("panel_flame_graph");
}

#[test]
fn log_panel() {
    let mut h = harness(Panel::Logs);
    h.snapshot("panel_logs");
}

#[test]
fn frame_plot_panel() {
    let mut h = harness(Panel::FramePlot);
    h.snapshot("panel_frame_plot");
}

#[test]
fn sql_result_panel() {
    let mut h = harness(Panel::SqlResult);
    h.snapshot("panel_sql_result");
    // A click on a column's header sorts by it, numbers as numbers.
    h.get_by_label("total_ms").click();
    h.step();
    h.step();
    h.snapshot("panel_sql_result_sorted");
}

#[test]
fn metrics_panel() {
    let mut h = harness(Panel::Metrics);
    // The plots show the timeline's range (seconds from the origin).
    let (a, b) = h.state().x_range_s.unwrap();
    assert!(a.abs() < 1e-9 && (b - 0.048).abs() < 1e-9, "{a} {b}");
    h.snapshot("panel_metrics");
}

#[test]
fn a_new_model_generation_recomputes_the_statistics() {
    let mut h = harness(Panel::Statistics);
    let before = h.state().stats.stats().cloned().unwrap();
    // Same address space reused is no excuse: the generation decides.
    let app = h.state_mut();
    app.model = LoadedModel {
        model: Arc::new(synthetic_model(3, 3, 6, FRAME_NS)),
        generation: 2,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    h.step();
    while h.state().busy() && Instant::now() < deadline {
        h.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    h.step();
    let after = h.state().stats.stats().cloned().unwrap();
    let frames = |s: &[frameline_engine::analysis::NameStats]| {
        s.iter().find(|s| s.name == "frame").unwrap().count
    };
    assert_eq!(frames(&before), 6);
    assert_eq!(frames(&after), 9);
}
