//! An open lake: the selected processes and what was loaded for them (frames, logs, spans), the
//! timeline's state and the panels.

use super::compare::{CompareJump, ComparePage};
use super::export_bar::ExportBar;
use super::fleet::{FLEET_THRESHOLD, FleetPage};
use super::frame_plot::FrameRow;
use super::jobs::{Job, take_finished};
use super::logs::{LogPane, LogRow};
use super::span_stream::SpanStream;
use super::tabs::Tab;
use super::timeline::TimelineState;
use super::{find, flame, metrics, sql, stats};
use frameline_engine::Engine;
use frameline_engine::timeline::TimelineModel;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// The log pane keeps at most this many lines of the selected processes.
pub(super) const MAX_LOG_LINES: usize = 1_000_000;

/// The loaded model with its generation, which changes whenever the model does (a new load, a
/// query track added): what the analysis panels key their results on.
#[derive(Clone)]
pub struct LoadedModel {
    pub model: Arc<TimelineModel>,
    pub generation: u64,
}

/// What the central area shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Page {
    /// Every session of the lake (a studio lake opens here).
    Fleet,
    /// The selected sessions: frame plot, timeline, panels.
    Session,
    /// Two sides compared (frame times, span statistics, flame-graph diff).
    Compare,
}

/// A lake that is open.
pub struct LakeView {
    pub page: Page,
    pub(super) maintenance_job: Option<Job<super::maintenance::MaintenanceDone>>,
    /// What background maintenance did (or why it could not).
    pub maintenance: Option<String>,
    pub fleet: FleetPage,
    pub compare: ComparePage,
    pub engine: Arc<Engine>,
    pub name: String,
    pub(super) process_filter: String,
    pub selected: BTreeSet<String>,
    pub frames: Vec<FrameRow>,
    frames_job: Option<Job<Vec<FrameRow>>>,
    pub logs: Vec<LogRow>,
    logs_job: Option<Job<Vec<LogRow>>>,
    pub(super) log_pane: LogPane,
    /// Detail: every span of the loaded range (the whole session when it fits the budget),
    /// with the query tracks; what the panels analyse.
    pub model: Option<Arc<TimelineModel>>,
    /// Bumped whenever `model` changes.
    pub(super) model_generation: u64,
    /// The detail `model` was made from (as the stream holds it).
    model_source: Option<Arc<TimelineModel>>,
    /// The overview as drawn (lanes padded like detail's, with the query tracks).
    overview: Option<Arc<TimelineModel>>,
    /// What the overview was made from.
    overview_source: Option<Arc<TimelineModel>>,
    /// The spans of the selection, streamed by range.
    pub stream: SpanStream,
    /// Spans a detail load may hold (`span_stream::DETAIL_SPAN_BUDGET`, or the app's setting).
    pub detail_span_budget: u64,
    /// Whether the timeline drew detail (rather than the overview) in the last frame.
    pub drew_detail: bool,
    /// Query results added to the timeline (kept across detail loads).
    query_tracks: Vec<sql::QueryTrack>,
    /// A selection still being written, read again as it grows.
    pub live: super::live::Live,
    pub timeline: TimelineState,
    /// "exe on computer" per process id, for the timeline's process headers.
    pub process_labels: BTreeMap<String, String>,
    pub tab: Tab,
    pub stats: stats::StatsPanel,
    pub flame: flame::FlamePanel,
    pub sql: sql::SqlPanel,
    pub metrics: metrics::MetricsPanel,
    pub find: find::FindBar,
    /// The top bar's Export… control.
    pub export: ExportBar,
    pub(super) target_frame_ms: f64,
    /// Frame to show once the timeline is loaded (chosen before it finished loading).
    pub(super) pending_range: Option<(i64, i64)>,
    /// What failed while loading the selection (shown above the timeline).
    pub errors: Vec<String>,
}

impl LakeView {
    /// The view of a lake just opened, with its latest process selected and loading.
    pub fn new(
        engine: Engine,
        detail_span_budget: u64,
        runtime: &tokio::runtime::Runtime,
        ctx: &egui::Context,
    ) -> Self {
        let processes = engine.lake().processes();
        // A studio lake opens on its sessions; a capture on its latest process, as before.
        let studio = processes.len() > FLEET_THRESHOLD;
        let latest = processes
            .last()
            .filter(|_| !studio)
            .map(|p| p.process_id.clone());
        let process_labels = processes
            .iter()
            .map(|p| (p.process_id.clone(), format!("{} on {}", p.exe, p.computer)))
            .collect();
        let mut view = LakeView {
            page: if studio { Page::Fleet } else { Page::Session },
            maintenance_job: None,
            maintenance: None,
            fleet: FleetPage::default(),
            compare: ComparePage::default(),
            name: engine.lake().location().to_string(),
            engine: Arc::new(engine),
            process_filter: String::new(),
            selected: BTreeSet::new(),
            frames: Vec::new(),
            frames_job: None,
            logs: Vec::new(),
            logs_job: None,
            log_pane: LogPane::default(),
            model: None,
            model_generation: 0,
            model_source: None,
            overview: None,
            overview_source: None,
            stream: SpanStream::default(),
            detail_span_budget,
            drew_detail: false,
            query_tracks: Vec::new(),
            live: Default::default(),
            timeline: TimelineState::default(),
            process_labels,
            tab: Tab::default(),
            stats: Default::default(),
            flame: Default::default(),
            sql: Default::default(),
            metrics: Default::default(),
            find: Default::default(),
            export: ExportBar::default(),
            target_frame_ms: 1000.0 / 60.0,
            pending_range: None,
            errors: Vec::new(),
        };
        if let Some(id) = latest {
            view.selected.insert(id);
            view.load_selection(runtime, ctx);
        }
        view
    }

    pub(super) fn busy(&self) -> bool {
        self.frames_job.is_some()
            || self.maintenance_job.is_some()
            || self.fleet.busy()
            || self.compare.busy()
            || self.logs_job.is_some()
            || self.stream.busy()
            || self.stats.busy()
            || self.flame.busy()
            || self.find.busy()
            || self.sql.busy()
            || self.metrics.busy()
            || self.export.busy()
    }

    pub(super) fn cancel(&mut self) {
        if let Some(job) = self.frames_job.take() {
            job.cancel();
        }
        if let Some(job) = self.logs_job.take() {
            job.cancel();
        }
        self.stream.cancel();
    }

    /// The model and its generation, once loaded.
    pub fn loaded_model(&self) -> Option<LoadedModel> {
        self.model.clone().map(|model| LoadedModel {
            model,
            generation: self.model_generation,
        })
    }

    /// What the analysis panels and find work on: the loaded detail, or, for a streamed session
    /// with none loaded yet, an empty model (those panels then read blocks: statistics, find).
    pub(super) fn analysis_model(&self) -> Option<LoadedModel> {
        self.loaded_model().or_else(|| {
            self.stream.index.as_ref().map(|_| LoadedModel {
                model: Default::default(),
                generation: 0,
            })
        })
    }

    /// Replaces the model (a new generation: panels recompute).
    pub(super) fn set_model(&mut self, model: Arc<TimelineModel>) {
        self.model = Some(model);
        self.model_generation += 1;
    }

    /// Adds a query's spans to the timeline as their own track; kept across detail loads.
    pub fn add_query_track(&mut self, track: sql::QueryTrack) {
        if self.model.is_none() {
            return;
        }
        self.query_tracks.push(track);
        if let Some(source) = self.model_source.clone() {
            let model = self.decorated(&source);
            self.set_model(model);
        }
        self.overview_source = None;
        self.process_labels
            .insert("query results".into(), "Query results".into());
    }

    /// `model` with lanes padded like the other model drawn (so rows keep their places when
    /// the timeline switches between overview and detail) and the query tracks. Copies the
    /// model only when something is to change.
    fn decorated(&self, model: &Arc<TimelineModel>) -> Arc<TimelineModel> {
        let other = if self
            .model_source
            .as_ref()
            .is_some_and(|m| Arc::ptr_eq(m, model))
        {
            self.stream.overview.clone()
        } else {
            self.model_source.clone()
        };
        let pads = other.as_ref().is_some_and(|o| lanes_short_of(model, o));
        if !pads && self.query_tracks.is_empty() {
            return model.clone();
        }
        let mut copy = TimelineModel::clone(model);
        if let Some(other) = &other {
            copy.pad_lanes_like(other);
        }
        for track in &self.query_tracks {
            super::query_track::add_track(&mut copy, track);
        }
        Arc::new(copy)
    }

    /// The streamed spans, for panels that read blocks when the detail does not hold their range.
    pub(super) fn streamed(&self) -> Option<super::scope::Streamed> {
        let index = self.stream.index.clone()?;
        let detail_range = self
            .model_source
            .as_ref()
            .and_then(|m| self.stream.range_of(m));
        Some(super::scope::Streamed {
            engine: self.engine.clone(),
            index,
            detail_range,
            whole_in_detail: self.stream.whole_in_detail() && self.model.is_some(),
        })
    }

    /// The model to draw for what is on screen: detail when loaded for it, else the overview.
    /// A switch between the two clears the hovered and selected span (they index the other).
    pub(super) fn drawn_model(&mut self) -> Option<Arc<TimelineModel>> {
        let (t0, t1) = (self.timeline.t0 as i64, self.timeline.t1.ceil() as i64);
        let detail = self
            .model
            .clone()
            .filter(|_| self.stream.detail_covering(t0, t1).is_some());
        let drew_detail = detail.is_some();
        if drew_detail != self.drew_detail {
            self.timeline.hovered = None;
            self.timeline.selected = None;
            self.drew_detail = drew_detail;
        }
        if let Some(model) = &detail {
            // A span find asked for, now that its detail is drawn.
            if let Some((track, depth, begin)) = self.timeline.pending_select
                && let Some(span) = span_at(model, track, depth, begin)
            {
                self.timeline.selected = Some(span);
                self.timeline.pending_select = None;
            }
            return detail;
        }
        let source = self.stream.overview.clone()?;
        if !self
            .overview_source
            .as_ref()
            .is_some_and(|o| Arc::ptr_eq(o, &source))
        {
            self.overview = Some(self.decorated(&source));
            self.overview_source = Some(source);
        }
        self.overview.clone()
    }

    /// Follows the timeline: asks the stream for detail of the visible range, and shows the
    /// detail that covers it once loaded.
    fn follow_stream(&mut self, runtime: &tokio::runtime::Runtime, ctx: &egui::Context) {
        let Some(index) = self.stream.index.clone() else {
            return;
        };
        if self.timeline.t1 <= self.timeline.t0 {
            self.timeline.show_range(index.begin_ns, index.end_ns);
        }
        let (t0, t1) = (self.timeline.t0 as i64, self.timeline.t1.ceil() as i64);
        self.stream.want(t0, t1, &self.engine, runtime, ctx);
        if let Some(detail) = self.stream.detail_covering(t0, t1)
            && !self
                .model_source
                .as_ref()
                .is_some_and(|m| Arc::ptr_eq(m, &detail))
        {
            let first = self.model_source.is_none();
            self.model_source = Some(detail.clone());
            let model = self.decorated(&detail);
            if first && self.stream.whole_in_detail() {
                // As before streaming: the whole session on screen, or the frame asked for.
                self.timeline.show_range(model.begin_ns, model.end_ns);
                if let Some((b, e)) = self.pending_range.take() {
                    self.timeline.show_range(b, e);
                }
            }
            let previous = self.model.clone();
            self.set_model(model);
            // The selected span, found again in the new detail (same thread, depth and begin).
            if self.drew_detail
                && let (Some(previous), Some(model)) = (previous, self.model.clone())
            {
                self.timeline.selected = self
                    .timeline
                    .selected
                    .and_then(|span| same_span(&previous, &model, span));
                self.timeline.hovered = None;
            }
        }
    }

    /// Starts loading frames, logs and spans of the selected processes.
    pub fn load_selection(&mut self, runtime: &tokio::runtime::Runtime, ctx: &egui::Context) {
        self.cancel();
        self.frames.clear();
        self.logs.clear();
        self.model = None;
        self.model_source = None;
        self.overview = None;
        self.overview_source = None;
        self.query_tracks.clear();
        self.live = Default::default();
        self.model_generation += 1;
        self.errors.clear();
        self.timeline = TimelineState::default();
        if self.selected.is_empty() {
            return;
        }
        let ids: Vec<String> = self.selected.iter().cloned().collect();
        self.metrics.reset(runtime, ctx, &self.engine, ids.clone());
        let (engine, process_ids) = (self.engine.clone(), ids.clone());
        self.frames_job = Some(Job::spawn(runtime, ctx, "Loading frames", async move {
            Ok(engine.frame_times(&process_ids, "frame").await?)
        }));
        let (engine, process_ids) = (self.engine.clone(), ids.clone());
        self.logs_job = Some(Job::spawn(runtime, ctx, "Loading logs", async move {
            Ok(engine.log_lines(&process_ids, MAX_LOG_LINES).await?)
        }));
        self.stream = SpanStream::start(&self.engine, ids, self.detail_span_budget, runtime, ctx);
    }

    /// Takes what finished loading, and asks for what the timeline needs (every frame).
    pub(super) fn poll(&mut self, runtime: &tokio::runtime::Runtime, ctx: &egui::Context) {
        self.poll_maintenance();
        self.fleet.poll();
        self.compare.poll();
        self.stats.poll();
        self.flame.poll();
        self.sql.poll();
        self.metrics.poll();
        self.export.poll();
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
        }
        let events = self.stream.poll(&self.engine, runtime, ctx);
        self.errors.extend(events.errors);
        if events.index_ready
            && !self.stream.whole_in_detail()
            && let Some(index) = self.stream.index.clone()
        {
            // A long session opens on its whole life (or the frame asked for), as the overview.
            self.timeline.show_range(index.begin_ns, index.end_ns);
            if let Some((b, e)) = self.pending_range.take() {
                self.timeline.show_range(b, e);
            }
        }
        self.poll_live(runtime, ctx);
        self.follow_stream(runtime, ctx);
    }

    /// Opens one session from the fleet page: its frame-time plot, timeline and panels.
    pub fn open_session(
        &mut self,
        process_id: String,
        runtime: &tokio::runtime::Runtime,
        ctx: &egui::Context,
    ) {
        if let Some(p) = self.engine.lake().process(&process_id) {
            self.process_labels
                .insert(process_id.clone(), format!("{} on {}", p.exe, p.computer));
        }
        self.selected = std::iter::once(process_id).collect();
        self.page = Page::Session;
        self.load_selection(runtime, ctx);
    }

    /// The fleet page.
    pub(super) fn fleet_page_ui(&mut self, ui: &mut egui::Ui, runtime: &tokio::runtime::Runtime) {
        let engine = self.engine.clone();
        if let Some(process_id) = self.fleet.fleet_ui(ui, runtime, &engine) {
            self.open_session(process_id, runtime, &ui.ctx().clone());
        }
    }

    /// The Compare page; a jump it asks for in this lake is taken here (one in another lake is
    /// returned, for the app to open that lake).
    pub(super) fn compare_page_ui(
        &mut self,
        ui: &mut egui::Ui,
        runtime: &tokio::runtime::Runtime,
    ) -> Option<CompareJump> {
        let timeline_side = self.timeline_side();
        let engine = self.engine.clone();
        let jump = self
            .compare
            .compare_ui(ui, runtime, &engine, timeline_side)?;
        if jump.lake.is_some() {
            return Some(jump);
        }
        self.show_span(&jump, runtime, &ui.ctx().clone());
        None
    }

    /// What the timeline shows, as a Compare side: its processes and visible range.
    fn timeline_side(&self) -> Option<String> {
        if self.selected.is_empty() || self.stream.index.is_none() {
            return None;
        }
        let origin = self.origin_ns();
        let ids: Vec<&str> = self.selected.iter().map(String::as_str).collect();
        let from = ((self.timeline.t0 - origin as f64) / 1e9).max(0.0);
        let to = ((self.timeline.t1 - origin as f64) / 1e9).max(from + 1e-6);
        Some(format!("#{}@{from:.6}s..{to:.6}s", ids.join(",")))
    }

    /// Opens `jump`'s process on the timeline, zoomed on the span (with a margin).
    pub fn show_span(
        &mut self,
        jump: &CompareJump,
        runtime: &tokio::runtime::Runtime,
        ctx: &egui::Context,
    ) {
        let margin = (jump.end_ns.saturating_sub(jump.begin_ns) / 10).max(1000);
        let range = (
            jump.begin_ns.saturating_sub(margin),
            jump.end_ns.saturating_add(margin),
        );
        self.page = Page::Session;
        if self.selected.len() == 1
            && self.selected.contains(&jump.process_id)
            && self.stream.index.is_some()
        {
            self.timeline.show_range(range.0, range.1);
            return;
        }
        if let Some(p) = self.engine.lake().process(&jump.process_id) {
            self.process_labels.insert(
                jump.process_id.clone(),
                format!("{} on {}", p.exe, p.computer),
            );
        }
        self.selected = std::iter::once(jump.process_id.clone()).collect();
        self.load_selection(runtime, ctx);
        self.pending_range = Some(range);
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
        self.logs
            .iter()
            .filter(|l| tracks.contains(&(l.process_id.as_str(), l.thread_name.as_str())))
            .filter(|l| {
                (l.time_ns as f64) >= self.timeline.t0 && (l.time_ns as f64) <= self.timeline.t1
            })
            .count()
    }

    /// The zero of the ruler and of the plots' time axes: the earliest start of the selected
    /// processes.
    pub(super) fn origin_ns(&self) -> i64 {
        self.engine
            .lake()
            .processes()
            .iter()
            .filter(|p| self.selected.contains(&p.process_id))
            .map(|p| p.start_unix_ns)
            .min()
            .unwrap_or(0)
    }
}

/// Whether some track of `model` has fewer lanes than the same track of `other`.
fn lanes_short_of(model: &TimelineModel, other: &TimelineModel) -> bool {
    let depths: std::collections::HashMap<&str, usize> = other
        .tracks
        .iter()
        .map(|t| (t.stream_id.as_str(), t.lanes.len()))
        .collect();
    model.tracks.iter().any(|t| {
        depths
            .get(t.stream_id.as_str())
            .is_some_and(|&n| t.lanes.len() < n)
    })
}

/// `span` of `from`, found in `to` by thread, depth and begin (tracks are in the same order).
fn same_span(
    from: &TimelineModel,
    to: &TimelineModel,
    span: super::timeline::SpanRef,
) -> Option<super::timeline::SpanRef> {
    let begin = *from
        .tracks
        .get(span.track)?
        .lanes
        .get(span.depth)?
        .begin_ns
        .get(span.index)?;
    span_at(to, span.track, span.depth, begin)
}

/// The span of `model` on `track` at `depth` that begins at `begin_ns`.
fn span_at(
    model: &TimelineModel,
    track: usize,
    depth: usize,
    begin_ns: i64,
) -> Option<super::timeline::SpanRef> {
    let lane = model.tracks.get(track)?.lanes.get(depth)?;
    let index = lane.begin_ns.partition_point(|&b| b < begin_ns);
    (lane.begin_ns.get(index) == Some(&begin_ns)).then_some(super::timeline::SpanRef {
        track,
        depth,
        index,
    })
}
