//! The native viewer: start screen, process browser, frame-time plot, GPU timeline, and a tab
//! strip of panels (logs, span statistics, flame graph, SQL, metric plots). Panels ask the
//! engine; slow work runs in background jobs with a progress line and Cancel.

pub mod compare;
mod derived;
mod export_bar;
pub mod find;
pub mod flame;
pub mod flame_draw;
pub mod fleet;
mod frame_log;
pub mod frame_plot;
mod gpu;
pub mod jobs;
mod lake_view;
pub mod live;
pub mod logs;
mod maintenance;
pub mod metrics;
mod processes;
mod query_track;
mod s3_dialog;
pub mod scope;
mod screenshot;
mod selection;
mod shortcuts;
pub mod span_stream;
pub mod sql;
mod start_screen;
pub mod stats;
mod status;
mod tabs;
pub mod theme;
pub mod time_format;
pub mod timeline;

pub use frame_plot::FrameRow;
pub use lake_view::{LakeView, LoadedModel, Page};
pub use logs::LogRow;
pub use scope::{AnalysisContext, Scope, scope_ui, selection_of};
pub use tabs::Tab;

use frameline_engine::{Engine, S3Options};
use jobs::{Job, take_finished};
use s3_dialog::S3Dialog;
use screenshot::ScreenshotPlan;
use std::path::PathBuf;
use std::sync::Arc;

/// Prepares `cc`'s renderer for the viewer: the timeline's GPU pipeline and the dark theme.
/// (Tests that draw one panel in their own app call it too.)
pub fn install_renderer(cc: &eframe::CreationContext<'_>) {
    if let Some(render_state) = cc.wgpu_render_state.as_ref() {
        gpu::QuadResources::install(render_state);
    }
    cc.egui_ctx.set_visuals(egui::Visuals::dark());
}

/// How the viewer starts.
#[derive(Clone, Debug, Default)]
pub enum Startup {
    #[default]
    StartScreen,
    Open(String),
    /// Record a demo capture into this folder, then open it.
    Demo(PathBuf),
}

/// The application: the start screen, or an open lake.
pub struct ViewerApp {
    runtime: Arc<tokio::runtime::Runtime>,
    pub lake: Option<LakeView>,
    open_job: Option<Job<Engine>>,
    demo_job: Option<Job<String>>,
    folder_pick: Option<std::sync::mpsc::Receiver<Option<PathBuf>>>,
    s3_dialog: Option<S3Dialog>,
    last_open: Option<(String, S3Options)>,
    pub error: Option<String>,
    pub recent: Vec<String>,
    remember_lakes: bool,
    /// Compact the catalog and compute missing summaries after opening (the binary does,
    /// unless `--no-compact` or `FRAMELINE_NO_COMPACT=1`; tests opt in).
    pub auto_compact: bool,
    screenshot: Option<ScreenshotPlan>,
    opened_at: std::time::Instant,
    first_paint_reported: bool,
    first_fleet_reported: bool,
    /// `FRAMELINE_FRAME_LOG=1`: the slowest frame (ms) while a query ran, logged when it ends.
    frame_log: Option<Option<f32>>,
    /// A Compare jump into another lake, taken once that lake is open.
    pending_jump: Option<compare::CompareJump>,
    /// Spans a detail load of the timeline may hold (`FRAMELINE_DETAIL_SPANS`; tests lower it
    /// to stream a small capture by range).
    pub detail_span_budget: u64,
}

/// The viewer opens a lake on the sessions of the last this many days.
const RECENT_DAYS: i64 = 7;

impl ViewerApp {
    pub fn new(cc: &eframe::CreationContext<'_>, startup: Startup) -> Self {
        let auto_compact = std::env::var_os("FRAMELINE_NO_COMPACT").is_none();
        Self::new_configured(cc, startup, true, auto_compact)
    }

    /// `remember_lakes`: keep the list of recent lakes in the user's settings (tests don't).
    pub fn new_with(
        cc: &eframe::CreationContext<'_>,
        startup: Startup,
        remember_lakes: bool,
    ) -> Self {
        Self::new_configured(cc, startup, remember_lakes, false)
    }

    /// `auto_compact`: maintain the lakes it opens (see `maintenance.rs`).
    pub fn new_configured(
        cc: &eframe::CreationContext<'_>,
        startup: Startup,
        remember_lakes: bool,
        auto_compact: bool,
    ) -> Self {
        install_renderer(cc);
        let runtime = Arc::new(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap_or_else(|e| panic!("cannot start the background runtime: {e}")),
        );
        let screenshot = ScreenshotPlan::from_env();
        let mut app = ViewerApp {
            runtime,
            lake: None,
            open_job: None,
            demo_job: None,
            folder_pick: None,
            s3_dialog: None,
            last_open: None,
            error: None,
            recent: if remember_lakes {
                start_screen::load_recent()
            } else {
                Vec::new()
            },
            remember_lakes,
            auto_compact,
            screenshot,
            opened_at: std::time::Instant::now(),
            first_paint_reported: false,
            first_fleet_reported: false,
            frame_log: std::env::var_os("FRAMELINE_FRAME_LOG").map(|_| None),
            pending_jump: None,
            detail_span_budget: std::env::var("FRAMELINE_DETAIL_SPANS")
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(span_stream::DETAIL_SPAN_BUDGET),
        };
        match startup {
            Startup::StartScreen => {}
            Startup::Open(lake) => app.open(&cc.egui_ctx, lake, S3Options::default()),
            Startup::Demo(dir) => app.generate_demo(&cc.egui_ctx, dir),
        }
        app
    }

    /// Opens a lake in the background.
    pub fn open(&mut self, ctx: &egui::Context, lake: String, s3: S3Options) {
        self.error = None;
        self.lake = None;
        self.last_open = Some((lake.clone(), s3.clone()));
        self.opened_at = std::time::Instant::now();
        self.first_paint_reported = false;
        self.first_fleet_reported = false;
        let label = format!("Opening {lake}");
        self.open_job = Some(Job::spawn(&self.runtime, ctx, label, async move {
            // Recent sessions first; a lake with none (an old capture) is read whole.
            let since =
                frameline_engine::generate::now_unix_ns() - RECENT_DAYS * 86_400 * 1_000_000_000;
            let engine = Engine::open_since(&lake, &s3, Some(since)).await?;
            if engine.lake().processes().is_empty() {
                engine.lake().load_dates(None, None).await?;
            }
            Ok(engine)
        }));
    }

    fn generate_demo(&mut self, ctx: &egui::Context, dir: PathBuf) {
        let lake = dir.to_string_lossy().into_owned();
        self.demo_job = Some(Job::spawn(
            &self.runtime,
            ctx,
            "Recording a demo capture (10 s)",
            async move {
                let options = crate::demo::DemoOptions {
                    lake: lake.clone(),
                    seconds: 10.0,
                    worker_threads: 3,
                    fast: false,
                    slowdowns: Vec::new(),
                    properties: Vec::new(),
                };
                tokio::task::spawn_blocking(move || crate::demo::run(&options)).await??;
                Ok(lake)
            },
        ));
    }

    fn poll_jobs(&mut self, ctx: &egui::Context) {
        if let Some(result) = take_finished(&mut self.demo_job) {
            match result {
                Ok(lake) => self.open(ctx, lake, S3Options::default()),
                Err(e) => self.error = Some(e),
            }
        }
        if let Some(rx) = &self.folder_pick
            && let Ok(picked) = rx.try_recv()
        {
            self.folder_pick = None;
            if let Some(dir) = picked {
                self.open(
                    ctx,
                    dir.to_string_lossy().into_owned(),
                    S3Options::default(),
                );
            }
        }
        if let Some(result) = take_finished(&mut self.open_job) {
            match result {
                Ok(engine) => {
                    let name = engine.lake().location().to_string();
                    eprintln!(
                        "[frameline] opened {name} in {:.0} ms: {} processes, {}",
                        self.opened_at.elapsed().as_secs_f64() * 1e3,
                        engine.lake().processes().len(),
                        engine.lake().requests()
                    );
                    self.remember(&name);
                    let mut view =
                        LakeView::new(engine, self.detail_span_budget, &self.runtime, ctx);
                    if self.auto_compact {
                        view.start_maintenance(&self.runtime, ctx);
                    }
                    if let Some(jump) = self.pending_jump.take() {
                        view.show_span(&jump, &self.runtime, ctx);
                    }
                    self.lake = Some(view);
                }
                Err(e) => self.error = Some(e),
            }
        }
        if let Some(view) = &mut self.lake {
            view.poll(&self.runtime, ctx);
        }
        let busy = self.open_job.is_some()
            || self.demo_job.is_some()
            || self.folder_pick.is_some()
            || self.lake.as_ref().is_some_and(LakeView::busy);
        if busy {
            // Poll without spinning: the job wakes us when it ends, this keeps the progress live.
            ctx.request_repaint_after(std::time::Duration::from_millis(100));
        }
    }

    /// Whether everything requested so far has arrived.
    pub fn idle(&self) -> bool {
        self.open_job.is_none()
            && self.demo_job.is_none()
            && self.lake.as_ref().is_none_or(|v| !v.busy())
    }
}

impl eframe::App for ViewerApp {
    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        let ctx = ui.ctx().clone();
        self.log_frame_time(&ctx, frame);
        self.poll_jobs(&ctx);
        egui::Panel::top("top_bar").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.strong("Frameline");
                if let Some(view) = &self.lake {
                    ui.label(&view.name);
                }
                if self.lake.is_some() && ui.button("Close lake").clicked() {
                    self.lake = None;
                }
                if let Some(view) = self.lake.as_mut() {
                    ui.separator();
                    if view.engine.lake().processes().len() > 1 {
                        ui.selectable_value(&mut view.page, lake_view::Page::Fleet, "Sessions");
                    }
                    ui.selectable_value(&mut view.page, lake_view::Page::Session, "Session");
                    ui.selectable_value(&mut view.page, lake_view::Page::Compare, "Compare");
                }
                if let Some(view) = self.lake.as_mut().filter(|v| v.model.is_some()) {
                    let range = (view.timeline.t0 as i64, view.timeline.t1 as i64);
                    export_bar::export_bar_ui(
                        ui,
                        &mut view.export,
                        &self.runtime,
                        &view.engine,
                        &view.selected,
                        range,
                    );
                }
                self.status_ui(ui);
            });
            self.error_ui(ui);
        });
        self.s3_dialog_ui(&ctx);
        let runtime = self.runtime.clone();
        let opened_at = self.opened_at;
        let mut first_paint_reported = self.first_paint_reported;
        let mut jump_elsewhere = None;
        match &mut self.lake {
            None => {
                egui::CentralPanel::default().show(ui, |ui| self.start_screen_ui(ui));
            }
            Some(view) if view.page == lake_view::Page::Compare => {
                egui::CentralPanel::default().show(ui, |ui| {
                    jump_elsewhere = view.compare_page_ui(ui, &runtime);
                });
            }
            Some(view) if view.page == lake_view::Page::Fleet => {
                egui::CentralPanel::default().show(ui, |ui| view.fleet_page_ui(ui, &runtime));
                if !self.first_fleet_reported && !view.fleet.sessions().is_empty() {
                    self.first_fleet_reported = true;
                    // What BENCHMARKS.md measures: from opening to the sessions on screen.
                    eprintln!(
                        "[frameline] fleet page {:.0} ms after opening: {} sessions, {}",
                        opened_at.elapsed().as_secs_f64() * 1e3,
                        view.fleet.sessions().len(),
                        view.engine.lake().requests()
                    );
                }
            }
            Some(view) => {
                egui::Panel::left("processes")
                    .resizable(true)
                    .default_size(260.0)
                    .show(ui, |ui| {
                        view.processes_ui(ui, &runtime);
                    });
                egui::Panel::bottom("tabs")
                    .resizable(true)
                    .default_size(300.0)
                    .min_size(240.0)
                    .show(ui, |ui| {
                        view.tabs_ui(ui, &runtime);
                    });
                egui::Panel::top("frames")
                    .resizable(true)
                    .default_size(150.0)
                    .show(ui, |ui| {
                        view.frame_plot_ui(ui);
                    });
                egui::CentralPanel::default().show(ui, |ui| {
                    for error in &view.errors {
                        ui.colored_label(theme::ERROR_TEXT, error);
                    }
                    view.live_ui(ui);
                    let origin = view.origin_ns();
                    match view.drawn_model() {
                        Some(drawn) => {
                            view.shortcuts(ui);
                            let streamed = view.streamed();
                            if let Some(loaded) = view.analysis_model() {
                                let cx = AnalysisContext {
                                    runtime: &runtime,
                                    model: &loaded,
                                    timeline: &mut view.timeline,
                                    streamed,
                                };
                                view.find.find_ui(ui, cx);
                            }
                            view.selection_ui(ui, &drawn);
                            timeline::timeline_ui(
                                ui,
                                &drawn,
                                &mut view.timeline,
                                &view.logs,
                                &view.process_labels,
                                origin,
                            );
                            if !first_paint_reported {
                                first_paint_reported = true;
                                // The moment BENCHMARKS.md measures: from opening to spans on screen.
                                eprintln!(
                                    "[frameline] first timeline paint {:.0} ms after opening: {} spans shown ({}), {} marks drawn",
                                    opened_at.elapsed().as_secs_f64() * 1e3,
                                    drawn.span_count(),
                                    if view.drew_detail { "detail" } else { "overview" },
                                    view.timeline.last_marks.len()
                                );
                            }
                        }
                        None if view.selected.is_empty() => {
                            ui.label("Select a process on the left.");
                        }
                        None => {
                            ui.spinner();
                        }
                    }
                });
            }
        }
        self.first_paint_reported = first_paint_reported;
        if let Some(jump) = jump_elsewhere
            && let Some(lake) = jump.lake.clone()
        {
            self.open(&ctx, lake, S3Options::default());
            self.pending_jump = Some(jump);
        }
        self.screenshot_step(&ctx);
    }
}
