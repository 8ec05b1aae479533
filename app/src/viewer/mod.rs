//! The native viewer: start screen, process browser, frame-time plot, GPU timeline, and a tab
//! strip of panels (logs, span statistics, flame graph, SQL, metric plots). Panels ask the
//! engine; slow work runs in background jobs with a progress line and Cancel.

mod export_bar;
pub mod find;
pub mod flame;
mod gpu;
pub mod jobs;
pub mod metrics;
pub mod sql;
pub mod stats;
pub mod timeline;

use egui::{Color32, RichText};
use egui_extras::{Column, TableBuilder};
use frameline_engine::analysis::Selection;
use frameline_engine::datafusion::arrow::array::{Array, AsArray, RecordBatch};
use frameline_engine::datafusion::arrow::datatypes::{Int64Type, UInt32Type};
use frameline_engine::timeline::{Lane, SpanSite, TimelineModel, Track};
use frameline_engine::{Engine, Progress, S3Options};
use jobs::{Job, take_finished};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use timeline::{LogMarker, TimelineState};

/// How the viewer starts.
#[derive(Clone, Debug, Default)]
pub enum Startup {
    #[default]
    StartScreen,
    Open(String),
    /// Record a demo capture into this folder, then open it.
    Demo(PathBuf),
}

/// One frame of the frame-time plot.
#[derive(Clone, Copy, Debug)]
pub struct FrameRow {
    pub begin_ns: i64,
    pub end_ns: i64,
}

impl FrameRow {
    pub fn ms(&self) -> f64 {
        (self.end_ns - self.begin_ns) as f64 / 1e6
    }
}

/// One log line of the log pane.
#[derive(Clone, Debug)]
pub struct LogRow {
    pub time_ns: i64,
    pub level: u8,
    pub level_name: String,
    pub target: String,
    pub thread_name: String,
    pub process_id: String,
    pub message: String,
}

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

/// What an analysis panel looks at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Scope {
    /// The timeline's selected range (Ctrl+drag), or what it shows if nothing is selected.
    #[default]
    Selection,
    /// What the timeline shows.
    Visible,
    /// Everything loaded.
    Whole,
}

/// The selection a panel analyses: the scope's time range on the picked threads (all if none).
pub fn selection_of(
    scope: Scope,
    model: &TimelineModel,
    timeline: &timeline::TimelineState,
) -> Selection {
    let tracks = timeline.picked_tracks.iter().copied().collect();
    let visible = (timeline.t0.floor() as i64, timeline.t1.ceil() as i64);
    let (begin_ns, end_ns) = match scope {
        Scope::Selection => timeline.range.unwrap_or(visible),
        Scope::Visible => visible,
        Scope::Whole => {
            let all = Selection::all(model);
            (all.begin_ns, all.end_ns)
        }
    };
    Selection {
        begin_ns,
        end_ns,
        tracks,
    }
}

/// The scope picker of the analysis panels.
pub fn scope_ui(ui: &mut egui::Ui, scope: &mut Scope, timeline: &timeline::TimelineState) {
    let selection = match timeline.range {
        Some((a, b)) => format!("Selection ({})", timeline::format_duration(b - a)),
        None => "Selection (none: Ctrl+drag)".to_owned(),
    };
    ui.selectable_value(scope, Scope::Selection, selection);
    ui.selectable_value(scope, Scope::Visible, "Visible");
    ui.selectable_value(scope, Scope::Whole, "Whole process");
    if !timeline.picked_tracks.is_empty() {
        ui.label(format!("{} threads picked", timeline.picked_tracks.len()));
    }
}

/// The S3 connection dialog. Credentials typed here live only in memory for this session.
#[derive(Clone, Debug, Default)]
struct S3Dialog {
    url: String,
    region: String,
    endpoint: String,
    access_key_id: String,
    secret_access_key: String,
}

/// A lake that is open.
pub struct LakeView {
    pub engine: Arc<Engine>,
    pub name: String,
    process_filter: String,
    pub selected: BTreeSet<String>,
    pub frames: Vec<FrameRow>,
    frames_job: Option<Job<Vec<FrameRow>>>,
    pub logs: Vec<LogRow>,
    log_markers: Vec<LogMarker>,
    logs_job: Option<Job<Vec<LogRow>>>,
    log_min_level: u8,
    log_search: String,
    logs_in_view_only: bool,
    pub model: Option<Arc<TimelineModel>>,
    model_job: Option<Job<TimelineModel>>,
    model_progress: Arc<Progress>,
    pub timeline: TimelineState,
    /// "exe on computer" per process id, for the timeline's process headers.
    pub process_labels: BTreeMap<String, String>,
    pub tab: Tab,
    pub stats: stats::StatsPanel,
    pub flame: flame::FlamePanel,
    pub sql: sql::SqlPanel,
    pub metrics: metrics::MetricsPanel,
    pub find: find::FindBar,
    target_frame_ms: f64,
    /// Frame to show once the timeline is loaded (chosen before it finished loading).
    pending_range: Option<(i64, i64)>,
    /// What failed while loading the selection (shown above the timeline).
    pub errors: Vec<String>,
}

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
    screenshot: Option<ScreenshotPlan>,
    opened_at: std::time::Instant,
    first_paint_reported: bool,
    /// `FRAMELINE_FRAME_LOG=1`: the slowest frame (ms) while a query ran, logged when it ends.
    frame_log: Option<Option<f32>>,
}

/// `FRAMELINE_SCREENSHOT=file.png` (with `FRAMELINE_SCREENSHOT_VIEW=start|drilldown|logs|stats|
/// flame|sql|metrics`): once
/// the view is ready, save the window's pixels and quit. Used by scripts/screenshots.sh.
struct ScreenshotPlan {
    path: PathBuf,
    view: String,
    requested: bool,
    ready_frames: u32,
    done: Arc<std::sync::atomic::AtomicBool>,
}

fn recent_file() -> Option<PathBuf> {
    frameline_engine::dirs::config_dir().map(|d| d.join("recent.json"))
}

fn load_recent() -> Vec<String> {
    recent_file()
        .and_then(|f| std::fs::read(f).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn save_recent(recent: &[String]) {
    if let Some(file) = recent_file() {
        if let Some(dir) = file.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        let _ = std::fs::write(file, serde_json::to_vec_pretty(recent).unwrap_or_default());
    }
}

fn sql_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn in_list(ids: &BTreeSet<String>) -> String {
    ids.iter()
        .map(|id| sql_quote(id))
        .collect::<Vec<_>>()
        .join(", ")
}

fn i64_column(batch: &RecordBatch, i: usize) -> Vec<i64> {
    let column = batch.column(i).as_primitive::<Int64Type>();
    (0..column.len()).map(|r| column.value(r)).collect()
}

fn string_column(batch: &RecordBatch, i: usize) -> Vec<String> {
    let column = batch.column(i);
    let cast = frameline_engine::datafusion::arrow::compute::cast(
        column,
        &frameline_engine::datafusion::arrow::datatypes::DataType::Utf8,
    );
    match cast {
        Ok(strings) => {
            let strings = strings.as_string::<i32>();
            (0..strings.len())
                .map(|r| strings.value(r).to_owned())
                .collect()
        }
        Err(_) => vec![String::new(); column.len()],
    }
}

impl ViewerApp {
    pub fn new(cc: &eframe::CreationContext<'_>, startup: Startup) -> Self {
        Self::new_with(cc, startup, true)
    }

    /// `remember_lakes`: keep the list of recent lakes in the user's settings (tests don't).
    pub fn new_with(
        cc: &eframe::CreationContext<'_>,
        startup: Startup,
        remember_lakes: bool,
    ) -> Self {
        if let Some(render_state) = cc.wgpu_render_state.as_ref() {
            gpu::QuadResources::install(render_state);
        }
        cc.egui_ctx.set_visuals(egui::Visuals::dark());
        let runtime = Arc::new(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap_or_else(|e| panic!("cannot start the background runtime: {e}")),
        );
        let screenshot = std::env::var_os("FRAMELINE_SCREENSHOT").map(|path| ScreenshotPlan {
            path: PathBuf::from(path),
            view: std::env::var("FRAMELINE_SCREENSHOT_VIEW").unwrap_or_else(|_| "drilldown".into()),
            requested: false,
            ready_frames: 0,
            done: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        });
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
                load_recent()
            } else {
                Vec::new()
            },
            remember_lakes,
            screenshot,
            opened_at: std::time::Instant::now(),
            first_paint_reported: false,
            frame_log: std::env::var_os("FRAMELINE_FRAME_LOG").map(|_| None),
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
        let label = format!("Opening {lake}");
        self.open_job = Some(Job::spawn(&self.runtime, ctx, label, async move {
            Ok(Engine::open_with(&lake, &s3).await?)
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
                };
                tokio::task::spawn_blocking(move || crate::demo::run(&options)).await??;
                Ok(lake)
            },
        ));
    }

    fn remember(&mut self, lake: &str) {
        self.recent.retain(|l| l != lake);
        self.recent.insert(0, lake.to_owned());
        self.recent.truncate(10);
        if self.remember_lakes {
            save_recent(&self.recent);
        }
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
                        "[frameline] opened {name} in {:.0} ms: {} processes, {} blocks",
                        self.opened_at.elapsed().as_secs_f64() * 1e3,
                        engine.lake().processes().len(),
                        engine.lake().blocks().len()
                    );
                    self.remember(&name);
                    let latest = engine
                        .lake()
                        .processes()
                        .last()
                        .map(|p| p.process_id.clone());
                    let process_labels = engine
                        .lake()
                        .processes()
                        .iter()
                        .map(|p| (p.process_id.clone(), format!("{} on {}", p.exe, p.computer)))
                        .collect();
                    let mut view = LakeView {
                        engine: Arc::new(engine),
                        name,
                        process_filter: String::new(),
                        selected: BTreeSet::new(),
                        frames: Vec::new(),
                        frames_job: None,
                        logs: Vec::new(),
                        log_markers: Vec::new(),
                        logs_job: None,
                        log_min_level: 5,
                        log_search: String::new(),
                        logs_in_view_only: false,
                        model: None,
                        model_job: None,
                        model_progress: Arc::new(Progress::default()),
                        timeline: TimelineState::default(),
                        process_labels,
                        tab: Tab::default(),
                        stats: Default::default(),
                        flame: Default::default(),
                        sql: Default::default(),
                        metrics: Default::default(),
                        find: Default::default(),
                        target_frame_ms: 1000.0 / 60.0,
                        pending_range: None,
                        errors: Vec::new(),
                    };
                    if let Some(id) = latest {
                        view.selected.insert(id);
                        view.load_selection(&self.runtime, ctx);
                    }
                    self.lake = Some(view);
                }
                Err(e) => self.error = Some(e),
            }
        }
        if let Some(view) = &mut self.lake {
            view.poll(ctx);
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

    fn start_screen_ui(&mut self, ui: &mut egui::Ui) {
        ui.vertical_centered(|ui| {
            ui.add_space(40.0);
            ui.heading(RichText::new("Frameline").size(32.0));
            ui.label("Telemetry for video games: find why a frame was slow.");
            ui.add_space(24.0);
            if ui.button("Open capture folder…").clicked() {
                let (tx, rx) = std::sync::mpsc::channel();
                self.folder_pick = Some(rx);
                let ctx = ui.ctx().clone();
                // Dialogs block: never on the UI thread.
                std::thread::spawn(move || {
                    let picked = rfd::FileDialog::new()
                        .set_title("Open a Frameline capture")
                        .pick_folder();
                    let _ = tx.send(picked);
                    ctx.request_repaint();
                });
            }
            if ui.button("Connect to an S3 lake…").clicked() {
                self.s3_dialog = Some(S3Dialog {
                    region: std::env::var("AWS_REGION").unwrap_or_default(),
                    endpoint: std::env::var("AWS_ENDPOINT_URL").unwrap_or_default(),
                    ..Default::default()
                });
            }
            if ui.button("Generate a demo capture").clicked() {
                let dir = frameline_engine::dirs::cache_dir()
                    .unwrap_or_else(std::env::temp_dir)
                    .join(format!("demo-{}", std::process::id()));
                self.generate_demo(&ui.ctx().clone(), dir);
            }
            if !self.recent.is_empty() {
                ui.add_space(24.0);
                ui.label(RichText::new("Recent lakes").strong());
                for lake in self.recent.clone() {
                    if ui.link(&lake).clicked() {
                        self.open(&ui.ctx().clone(), lake, S3Options::default());
                    }
                }
            }
        });
    }

    fn s3_dialog_ui(&mut self, ctx: &egui::Context) {
        let Some(dialog) = &mut self.s3_dialog else {
            return;
        };
        let mut open = None;
        let mut close = false;
        egui::Window::new("Connect to an S3 lake")
            .collapsible(false)
            .show(ctx, |ui| {
                egui::Grid::new("s3_grid").num_columns(2).show(ui, |ui| {
                    for (label, value, hint, password) in [
                        ("Lake", &mut dialog.url, "s3://bucket/prefix", false),
                        ("Region", &mut dialog.region, "us-east-1", false),
                        (
                            "Endpoint",
                            &mut dialog.endpoint,
                            "optional, e.g. http://localhost:9000",
                            false,
                        ),
                        (
                            "Access key",
                            &mut dialog.access_key_id,
                            "from the environment/profile if empty",
                            false,
                        ),
                        (
                            "Secret key",
                            &mut dialog.secret_access_key,
                            "kept in memory for this session only",
                            true,
                        ),
                    ] {
                        let l = ui.label(label);
                        ui.add(
                            egui::TextEdit::singleline(value)
                                .hint_text(hint)
                                .password(password),
                        )
                        .labelled_by(l.id);
                        ui.end_row();
                    }
                });
                ui.horizontal(|ui| {
                    if ui.button("Connect").clicked() {
                        let some = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_owned());
                        open = Some((
                            dialog.url.trim().to_owned(),
                            S3Options {
                                region: some(&dialog.region),
                                endpoint: some(&dialog.endpoint),
                                access_key_id: some(&dialog.access_key_id),
                                secret_access_key: some(&dialog.secret_access_key),
                                ..Default::default()
                            },
                        ));
                    }
                    if ui.button("Cancel").clicked() {
                        close = true;
                    }
                });
            });
        if let Some((url, options)) = open {
            self.s3_dialog = None;
            self.open(ctx, url, options);
        } else if close {
            self.s3_dialog = None;
        }
    }

    fn status_ui(&mut self, ui: &mut egui::Ui) {
        let mut cancel = false;
        let mut describe = |ui: &mut egui::Ui, label: &str, started: std::time::Instant| {
            ui.spinner();
            ui.label(format!(
                "{label} ({:.1} s)",
                started.elapsed().as_secs_f64()
            ));
            if ui.button("Cancel").clicked() {
                cancel = true;
            }
        };
        if let Some(job) = &self.open_job {
            describe(ui, &job.label, job.started);
        } else if let Some(job) = &self.demo_job {
            describe(ui, &job.label, job.started);
        } else if let Some(view) = &self.lake
            && let Some(job) = &view.model_job
        {
            let p = &view.model_progress;
            let label = format!(
                "{}: {}/{} blocks",
                job.label,
                p.done.load(std::sync::atomic::Ordering::Relaxed),
                p.total.load(std::sync::atomic::Ordering::Relaxed)
            );
            describe(ui, &label, job.started);
        }
        if cancel {
            for job in [
                self.open_job.take().map(|j| j.cancel()),
                self.demo_job.take().map(|j| j.cancel()),
            ] {
                let _ = job;
            }
            if let Some(view) = &mut self.lake {
                view.cancel();
            }
        }
    }

    fn error_ui(&mut self, ui: &mut egui::Ui) {
        let Some(error) = self.error.clone() else {
            return;
        };
        egui::Frame::group(ui.style())
            .fill(Color32::from_rgb(70, 20, 20))
            .show(ui, |ui| {
                ui.horizontal_wrapped(|ui| {
                    ui.label(RichText::new("Error:").color(Color32::YELLOW).strong());
                    ui.label(RichText::new(&error).color(Color32::WHITE));
                });
                ui.horizontal(|ui| {
                    if let Some((lake, s3)) = self.last_open.clone()
                        && ui.button("Retry").clicked()
                    {
                        self.open(&ui.ctx().clone(), lake, s3);
                    }
                    if ui.button("Dismiss").clicked() {
                        self.error = None;
                    }
                });
            });
    }

    fn screenshot_step(&mut self, ctx: &egui::Context) {
        let Some(plan) = &mut self.screenshot else {
            return;
        };
        if plan.done.load(std::sync::atomic::Ordering::Relaxed) {
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            return;
        }
        let ready = match plan.view.as_str() {
            "start" => true,
            _ => {
                self.lake
                    .as_ref()
                    .is_some_and(|v| v.model.is_some() && !v.busy())
                    && self.open_job.is_none()
            }
        };
        if !ready || plan.requested {
            ctx.request_repaint_after(std::time::Duration::from_millis(50));
            return;
        }
        plan.ready_frames += 1;
        if plan.ready_frames == 1
            && let Some(view) = &mut self.lake
        {
            // The drill-down: the worst frame on the timeline; the log pane: its warnings; the
            // panels: the worst frame selected, analysed, compared with the median frame.
            let worst = view.worst_frame();
            if let Some(frame) = worst {
                view.show_frame(frame);
                if plan.view != "drilldown" && plan.view != "logs" {
                    view.timeline.range = Some((frame.begin_ns, frame.end_ns));
                }
            }
            match plan.view.as_str() {
                "logs" => view.log_min_level = 2,
                "stats" => {
                    view.tab = Tab::Statistics;
                    view.stats.selected_name = Some("streaming.load_chunk".into());
                    view.timeline.highlight_name = Some("streaming.load_chunk".into());
                }
                "flame" => {
                    view.tab = Tab::FlameGraph;
                    view.flame.diff = true;
                    if let Some(f) = flame::median_frame(&view.frames) {
                        view.flame.baseline = Some(Selection {
                            begin_ns: f.begin_ns,
                            end_ns: f.end_ns,
                            tracks: Vec::new(),
                        });
                    }
                }
                "sql" => {
                    view.tab = Tab::Sql;
                    // FRAMELINE_SQL: the query to run (BENCHMARKS.md times the UI meanwhile).
                    if let Ok(sql) = std::env::var("FRAMELINE_SQL") {
                        view.sql.text = sql;
                    }
                    let sql = view.sql.text.clone();
                    view.sql.run(&self.runtime, ctx, &view.engine, sql);
                }
                "metrics" => {
                    view.tab = Tab::Metrics;
                    for name in ["frame_time", "memory.used"] {
                        view.metrics.plot(&self.runtime, ctx, &view.engine, name);
                    }
                }
                _ => {}
            }
        }
        if plan.ready_frames < 5 {
            ctx.request_repaint();
            return;
        }
        plan.requested = true;
        let path = plan.path.clone();
        let done = plan.done.clone();
        let waker = ctx.clone();
        ctx.request_screenshot(move |image| {
            let size = image.size;
            let pixels: Vec<u8> = image.pixels.iter().flat_map(|c| c.to_array()).collect();
            match image::RgbaImage::from_raw(size[0] as u32, size[1] as u32, pixels) {
                Some(buffer) => {
                    if let Err(e) = buffer.save(&path) {
                        eprintln!("error: saving {}: {e}", path.display());
                    }
                }
                None => eprintln!("error: the screenshot has an unexpected size"),
            }
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            waker.request_repaint();
        });
        ctx.request_repaint();
    }
}

impl LakeView {
    fn busy(&self) -> bool {
        self.frames_job.is_some()
            || self.logs_job.is_some()
            || self.model_job.is_some()
            || self.stats.busy()
            || self.flame.busy()
            || self.sql.busy()
            || self.metrics.busy()
    }

    fn cancel(&mut self) {
        for job in [
            self.frames_job.take().map(|j| j.cancel()),
            self.logs_job.take().map(|j| j.cancel()),
        ] {
            let _ = job;
        }
        if let Some(job) = self.model_job.take() {
            job.cancel();
        }
    }

    /// Starts loading frames, logs and spans of the selected processes.
    pub fn load_selection(&mut self, runtime: &tokio::runtime::Runtime, ctx: &egui::Context) {
        self.cancel();
        self.frames.clear();
        self.logs.clear();
        self.log_markers.clear();
        self.model = None;
        self.errors.clear();
        self.timeline = TimelineState::default();
        if self.selected.is_empty() {
            return;
        }
        let ids = in_list(&self.selected);
        self.metrics.reset(runtime, ctx, &self.engine, ids.clone());
        let engine = self.engine.clone();
        let sql = format!(
            "SELECT CAST(begin_time AS BIGINT) AS begin_ns, CAST(end_time AS BIGINT) AS end_ns FROM frames \
             WHERE name = 'frame' AND process_id IN ({ids}) ORDER BY begin_ns"
        );
        self.frames_job = Some(Job::spawn(runtime, ctx, "Loading frames", async move {
            let batches = engine.query(&sql).await?;
            Ok(batches
                .iter()
                .flat_map(|b| {
                    i64_column(b, 0)
                        .into_iter()
                        .zip(i64_column(b, 1))
                        .map(|(begin_ns, end_ns)| FrameRow { begin_ns, end_ns })
                })
                .collect())
        }));
        let engine = self.engine.clone();
        let sql = format!(
            "SELECT CAST(time AS BIGINT) AS time_ns, level_num, level, target, thread_name, process_id, message \
             FROM log_entries WHERE process_id IN ({ids}) ORDER BY time_ns LIMIT 1000000"
        );
        self.logs_job = Some(Job::spawn(runtime, ctx, "Loading logs", async move {
            let batches = engine.query(&sql).await?;
            let mut rows = Vec::new();
            for b in &batches {
                let times = i64_column(b, 0);
                let levels = b.column(1).as_primitive::<UInt32Type>();
                let (names, targets, threads, processes, messages) = (
                    string_column(b, 2),
                    string_column(b, 3),
                    string_column(b, 4),
                    string_column(b, 5),
                    string_column(b, 6),
                );
                for i in 0..b.num_rows() {
                    rows.push(LogRow {
                        time_ns: times[i],
                        level: levels.value(i) as u8,
                        level_name: names[i].clone(),
                        target: targets[i].clone(),
                        thread_name: threads[i].clone(),
                        process_id: processes[i].clone(),
                        message: messages[i].clone(),
                    });
                }
            }
            Ok(rows)
        }));
        let engine = self.engine.clone();
        let ids: Vec<String> = self.selected.iter().cloned().collect();
        self.model_progress = Arc::new(Progress::default());
        let progress = self.model_progress.clone();
        self.model_job = Some(Job::spawn(runtime, ctx, "Decoding spans", async move {
            Ok(engine.load_timeline(&ids, None, &progress).await?)
        }));
    }

    fn poll(&mut self, _ctx: &egui::Context) {
        self.stats.poll();
        self.flame.poll();
        self.sql.poll();
        self.metrics.poll();
        if let Some(result) = take_finished(&mut self.frames_job) {
            match result {
                Ok(frames) => self.frames = frames,
                Err(e) => self.errors.push(format!("frames: {e}")),
            }
        }
        if let Some(result) = take_finished(&mut self.logs_job) {
            match result {
                Ok(logs) => self.logs = logs,
                Err(e) => self.errors.push(format!("logs: {e}")),
            }
            self.log_markers = self
                .logs
                .iter()
                .map(|l| LogMarker {
                    time_ns: l.time_ns,
                    level: l.level,
                    process_id: l.process_id.clone(),
                    thread_name: l.thread_name.clone(),
                    message: l.message.clone(),
                })
                .collect();
        }
        if let Some(result) = take_finished(&mut self.model_job) {
            let model = match result {
                Ok(model) => Arc::new(model),
                Err(e) => {
                    self.errors.push(format!("spans: {e}"));
                    return;
                }
            };
            self.timeline.show_range(model.begin_ns, model.end_ns);
            if let Some((b, e)) = self.pending_range.take() {
                self.timeline.show_range(b, e);
            }
            self.model = Some(model);
        }
    }

    /// Log markers on a thread of the timeline within its visible range (what its log lanes
    /// should draw).
    pub fn log_markers_on_tracks(&self) -> usize {
        let Some(model) = &self.model else {
            return 0;
        };
        let tracks: BTreeSet<(&str, &str)> = model
            .tracks
            .iter()
            .map(|t| (t.process_id.as_str(), t.thread_name.as_str()))
            .collect();
        self.log_markers
            .iter()
            .filter(|l| tracks.contains(&(l.process_id.as_str(), l.thread_name.as_str())))
            .filter(|l| {
                (l.time_ns as f64) >= self.timeline.t0 && (l.time_ns as f64) <= self.timeline.t1
            })
            .count()
    }

    /// Adds a query's spans to the timeline as their own track (under a "query results"
    /// process), in as many lanes as they need to not overlap.
    pub fn add_query_track(&mut self, track: sql::QueryTrack) {
        let Some(model) = &mut self.model else {
            return;
        };
        let model = Arc::make_mut(model);
        let mut spans = track.spans;
        spans.sort_by_key(|s| (s.0, s.1));
        let mut lanes: Vec<Lane> = Vec::new();
        let mut site_ids: BTreeMap<String, u32> = BTreeMap::new();
        for (b, e, name) in spans {
            let site = *site_ids.entry(name.clone()).or_insert_with(|| {
                model.sites.push(SpanSite {
                    name,
                    file: "query".into(),
                    line: 0,
                });
                (model.sites.len() - 1) as u32
            });
            let lane = match lanes
                .iter()
                .position(|l| l.end_ns.last().is_none_or(|&x| x <= b))
            {
                Some(i) => i,
                None => {
                    lanes.push(Lane::default());
                    lanes.len() - 1
                }
            };
            lanes[lane].begin_ns.push(b);
            lanes[lane].end_ns.push(e);
            lanes[lane].name.push(site);
        }
        model.tracks.push(Track {
            process_id: "query results".into(),
            stream_id: format!("query-{}", model.tracks.len()),
            thread_name: track.label,
            lanes,
        });
        self.process_labels
            .insert("query results".into(), "Query results".into());
    }

    /// The analysis tabs (logs, statistics, flame graph, SQL, metrics).
    fn tabs_ui(&mut self, ui: &mut egui::Ui, runtime: &tokio::runtime::Runtime) {
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
            Tab::Statistics | Tab::FlameGraph => match self.model.clone() {
                None => {
                    ui.label("Waiting for the spans…");
                }
                Some(model) if self.tab == Tab::Statistics => {
                    self.stats.stats_ui(ui, runtime, &model, &mut self.timeline)
                }
                Some(model) => {
                    self.flame
                        .flame_ui(ui, runtime, &model, &mut self.timeline, &self.frames)
                }
            },
        }
    }

    /// Shows one frame (with a small margin) on the timeline.
    pub fn show_frame(&mut self, frame: FrameRow) {
        let margin = ((frame.end_ns - frame.begin_ns) / 50).max(1000);
        let range = (frame.begin_ns - margin, frame.end_ns + margin);
        if self.model.is_some() {
            self.timeline.show_range(range.0, range.1);
        } else {
            self.pending_range = Some(range);
        }
    }

    /// The slowest frame.
    pub fn worst_frame(&self) -> Option<FrameRow> {
        self.frames
            .iter()
            .copied()
            .max_by_key(|f| f.end_ns - f.begin_ns)
    }

    fn origin_ns(&self) -> i64 {
        self.engine
            .lake()
            .processes()
            .iter()
            .filter(|p| self.selected.contains(&p.process_id))
            .map(|p| p.start_unix_ns)
            .min()
            .unwrap_or(0)
    }

    /// Details of the span selected on the timeline (click a span), with zoom and clear.
    fn selection_ui(&mut self, ui: &mut egui::Ui, model: &TimelineModel) {
        let Some(span) = self.timeline.selected else {
            return;
        };
        let Some(lane) = model
            .tracks
            .get(span.track)
            .and_then(|t| t.lanes.get(span.depth))
        else {
            self.timeline.selected = None;
            return;
        };
        let (b, e) = (lane.begin_ns[span.index], lane.end_ns[span.index]);
        let site = model.site(lane.name[span.index]);
        let origin = self.origin_ns();
        let mut zoom = false;
        let mut clear = false;
        ui.horizontal_wrapped(|ui| {
            ui.strong(format!(
                "Selected: {}",
                site.map_or("?", |s| s.name.as_str())
            ));
            ui.label(format!(
                "at {:.6} s, {} (self {}), depth {}, thread {}",
                (b - origin) as f64 / 1e9,
                timeline::format_duration(e - b),
                timeline::format_duration(e - b - timeline::child_time(model, span)),
                span.depth,
                model.tracks[span.track].thread_name
            ));
            if let Some(site) = site {
                ui.monospace(format!("{}:{}", site.file, site.line));
            }
            zoom = ui.button("Zoom to span").clicked();
            clear = ui.button("Clear selection").clicked();
        });
        if zoom {
            let margin = ((e - b) / 20).max(1000);
            self.timeline.show_range(b - margin, e + margin);
        }
        if clear {
            self.timeline.selected = None;
        }
    }

    fn processes_ui(&mut self, ui: &mut egui::Ui, runtime: &tokio::runtime::Runtime) {
        ui.heading("Processes");
        let filter_label = ui.label("Filter");
        ui.add(
            egui::TextEdit::singleline(&mut self.process_filter).hint_text("exe, computer, user"),
        )
        .labelled_by(filter_label.id);
        let filter = self.process_filter.to_lowercase();
        let mut changed = false;
        egui::ScrollArea::vertical()
            .id_salt("processes")
            .show(ui, |ui| {
                for p in self.engine.lake().processes().iter().rev() {
                    let text = format!("{} {} {}", p.exe, p.computer, p.username).to_lowercase();
                    if !filter.is_empty() && !text.contains(&filter) {
                        continue;
                    }
                    let mut on = self.selected.contains(&p.process_id);
                    let duration = p
                        .end_unix_ns
                        .map(|e| timeline::format_duration(e - p.start_unix_ns))
                        .unwrap_or_else(|| "running or killed".into());
                    let label = format!("{} on {} ({duration})", p.exe, p.computer);
                    if ui.checkbox(&mut on, label).changed() {
                        if on {
                            self.selected.insert(p.process_id.clone());
                        } else {
                            self.selected.remove(&p.process_id);
                        }
                        changed = true;
                    }
                    let dropped = p.dropped_blocks;
                    ui.label(
                        RichText::new(format!(
                            "  {} · {}",
                            p.username,
                            &p.process_id[..8.min(p.process_id.len())]
                        ))
                        .small()
                        .weak(),
                    );
                    if dropped > 0 {
                        ui.label(
                            RichText::new(format!("  {dropped} blocks lost"))
                                .small()
                                .color(Color32::YELLOW),
                        );
                    }
                }
            });
        if changed {
            self.load_selection(runtime, &ui.ctx().clone());
        }
    }

    fn frame_plot_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.strong("Frame times");
            ui.label(format!(
                "{} frames, target {:.1} ms",
                self.frames.len(),
                self.target_frame_ms
            ));
            if ui.button("Worst frame").clicked()
                && let Some(frame) = self.worst_frame()
            {
                self.show_frame(frame);
            }
        });
        let origin = self.origin_ns();
        let target = self.target_frame_ms;
        let bars: Vec<egui_plot::Bar> = self
            .frames
            .iter()
            .map(|f| {
                let ms = f.ms();
                let color = if ms <= target / 2.0 {
                    Color32::from_rgb(70, 130, 230)
                } else if ms <= target {
                    Color32::from_rgb(80, 190, 90)
                } else if ms <= 2.0 * target {
                    Color32::from_rgb(230, 200, 60)
                } else {
                    Color32::from_rgb(230, 70, 60)
                };
                let x = (f.begin_ns - origin) as f64 / 1e9;
                let w = (f.end_ns - f.begin_ns) as f64 / 1e9;
                egui_plot::Bar::new(x + w / 2.0, ms).width(w).fill(color)
            })
            .collect();
        let visible = self.model.is_some().then(|| {
            (
                (self.timeline.t0 - origin as f64) / 1e9,
                (self.timeline.t1 - origin as f64) / 1e9,
            )
        });
        let shift = ui.input(|i| i.modifiers.shift);
        let response = egui_plot::Plot::new("frame_times")
            .height(ui.available_height().max(80.0))
            .allow_boxed_zoom(false)
            .allow_drag(!shift)
            .allow_scroll([true, false])
            .y_axis_label("ms")
            .x_axis_formatter(|mark, _| format!("{:.1} s", mark.value))
            .show(ui, |plot| {
                plot.bar_chart(egui_plot::BarChart::new("frames", bars));
                plot.hline(egui_plot::HLine::new("target", target).color(Color32::from_gray(140)));
                if let Some((a, b)) = visible {
                    plot.span(
                        egui_plot::Span::new("timeline", a..=b)
                            .fill(Color32::from_rgba_unmultiplied(255, 255, 255, 20)),
                    );
                }
            });
        let r = &response.response;
        let to_ns =
            |p: egui::Pos2| origin + (response.transform.value_from_position(p).x * 1e9) as i64;
        if r.clicked()
            && let Some(p) = r.interact_pointer_pos()
        {
            let t = to_ns(p);
            if let Some(frame) = self
                .frames
                .iter()
                .find(|f| f.begin_ns <= t && t <= f.end_ns)
                .copied()
            {
                self.show_frame(frame);
            }
        }
        if shift && r.drag_stopped() {
            let start = r.interact_pointer_pos().map(|p| p - r.drag_delta());
            if let (Some(a), Some(b)) = (start, r.interact_pointer_pos()) {
                self.timeline.show_range(to_ns(a), to_ns(b));
            }
        }
    }

    fn logs_ui(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            ui.strong("Logs");
            let level_label = ui.label("Level");
            egui::ComboBox::from_id_salt("log_level")
                .selected_text(match self.log_min_level {
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
                        ui.selectable_value(&mut self.log_min_level, level, name);
                    }
                })
                .response
                .labelled_by(level_label.id);
            let search_label = ui.label("Search");
            ui.add(egui::TextEdit::singleline(&mut self.log_search).desired_width(160.0))
                .labelled_by(search_label.id);
            ui.checkbox(&mut self.logs_in_view_only, "Visible range only");
        });
        let search = self.log_search.to_lowercase();
        let (t0, t1) = (self.timeline.t0 as i64, self.timeline.t1 as i64);
        let rows: Vec<usize> = self
            .logs
            .iter()
            .enumerate()
            .filter(|(_, l)| l.level <= self.log_min_level)
            .filter(|(_, l)| !self.logs_in_view_only || (l.time_ns >= t0 && l.time_ns <= t1))
            .filter(|(_, l)| {
                search.is_empty()
                    || l.message.to_lowercase().contains(&search)
                    || l.target.to_lowercase().contains(&search)
            })
            .map(|(i, _)| i)
            .collect();
        let origin = self.origin_ns();
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
                    let log = &self.logs[rows[row.index()]];
                    row.col(|ui| {
                        ui.monospace(format!("{:.6}", (log.time_ns - origin) as f64 / 1e9));
                    });
                    row.col(|ui| {
                        ui.colored_label(timeline::level_color(log.level), &log.level_name);
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
        self.timeline.marker_ns = hovered;
        if let Some(t) = clicked {
            self.timeline.center_on(t);
        }
    }
}

impl LakeView {
    /// Tracy-like keys: Ctrl+F finds spans (pre-filled with the statistics' selected name),
    /// Escape clears the range selection and the highlight.
    fn shortcuts(&mut self, ui: &mut egui::Ui, model: &Arc<TimelineModel>) {
        let _ = model;
        let (find, escape) = ui.input_mut(|i| {
            (
                i.consume_key(egui::Modifiers::COMMAND, egui::Key::F),
                i.consume_key(egui::Modifiers::NONE, egui::Key::Escape),
            )
        });
        if find {
            let name = self.timeline.highlight_name.clone();
            self.find.open_with(name.as_deref());
        }
        if escape {
            self.timeline.range = None;
            self.timeline.highlight_name = None;
            self.stats.selected_name = None;
            self.find.open = false;
        }
    }
}

impl ViewerApp {
    /// With `FRAMELINE_FRAME_LOG` set: track the slowest frame while a query runs, and log it
    /// when the query ends (BENCHMARKS.md: the UI keeps drawing while a long query runs).
    fn log_frame_time(&mut self, ctx: &egui::Context, frame: &eframe::Frame) {
        let Some(slowest) = &mut self.frame_log else {
            return;
        };
        let running = self.lake.as_ref().is_some_and(|v| v.sql.running());
        if running {
            // Draw continuously meanwhile: every frame is measured, not one per 100 ms.
            ctx.request_repaint();
        }
        let cpu_ms = frame.info().cpu_usage.map(|s| s * 1e3);
        match (running, *slowest) {
            (true, current) => {
                *slowest = Some(current.unwrap_or(0.0).max(cpu_ms.unwrap_or(0.0)));
            }
            (false, Some(ms)) => {
                eprintln!("[frameline] slowest frame {ms:.1} ms while a job ran");
                *slowest = None;
            }
            (false, None) => {}
        }
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
                if let Some(view) = self.lake.as_ref().filter(|v| v.model.is_some()) {
                    let range = (view.timeline.t0 as i64, view.timeline.t1 as i64);
                    export_bar::export_bar_ui(
                        ui,
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
        match &mut self.lake {
            None => {
                egui::CentralPanel::default().show(ui, |ui| self.start_screen_ui(ui));
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
                        ui.colored_label(Color32::from_rgb(240, 120, 100), error);
                    }
                    let origin = view.origin_ns();
                    match view.model.clone() {
                        Some(model) => {
                            view.shortcuts(ui, &model);
                            view.find.find_ui(ui, &model, &mut view.timeline);
                            view.selection_ui(ui, &model);
                            timeline::timeline_ui(
                                ui,
                                &model,
                                &mut view.timeline,
                                &view.log_markers,
                                &view.process_labels,
                                origin,
                            );
                            if !first_paint_reported {
                                first_paint_reported = true;
                                // The moment BENCHMARKS.md measures: from opening to spans on screen.
                                eprintln!(
                                    "[frameline] first timeline paint {:.0} ms after opening: {} spans loaded, {} marks drawn",
                                    opened_at.elapsed().as_secs_f64() * 1e3,
                                    model.span_count(),
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
        self.screenshot_step(&ctx);
    }
}
