//! The spans of the selected processes, streamed by range: a session of any length opens at
//! once on its overview, and detail (every span) is loaded only for the range on screen.
//!
//! - At selection, the **index** (block keys only, no block read) gives the tracks, the session's
//!   extent and the *coarse* overview (a fold per block): the first paint.
//! - A session whose spans fit [`DETAIL_SPAN_BUDGET`] loads whole as detail, as before: every
//!   panel then sees every span. A longer one gets its *refined* overview in the background (one
//!   pass over its blocks, bounded: `frameline_engine::overview`), and detail for the visible
//!   range plus a screen's width each side, whenever that range holds at most the budget's spans.
//! - Detail models are kept in a small cache, bounded by bytes ([`DETAIL_CACHE_BYTES`]), most
//!   recently used kept: going back to a range is immediate.
//!
//! The UI thread never waits: the index, the overview and each detail load are background jobs;
//! while detail streams in, the overview is drawn.

use super::jobs::{Job, take_finished};
use frameline_engine::overview::TimelineIndex;
use frameline_engine::timeline::TimelineModel;
use frameline_engine::{Engine, Progress};
use std::sync::Arc;

/// Spans a detail load may hold (20 bytes each in the model: 240 MB).
pub const DETAIL_SPAN_BUDGET: u64 = 12_000_000;
/// Bytes of detail models kept for ranges seen recently.
pub const DETAIL_CACHE_BYTES: usize = 768 * 1024 * 1024;

/// A detail model and the range it covers.
#[derive(Clone)]
pub struct Detail {
    pub range: (i64, i64),
    pub model: Arc<TimelineModel>,
    last_used: u64,
    /// Loaded before the session grew (live): drawn until a fresh one arrives.
    stale: bool,
}

/// What changed in a poll.
#[derive(Default)]
pub struct StreamEvents {
    /// The index arrived: the session's extent is known.
    pub index_ready: bool,
    /// What failed.
    pub errors: Vec<String>,
}

/// The streamed spans of one selection.
pub struct SpanStream {
    pub index: Option<Arc<TimelineIndex>>,
    /// Whether the index's spans fit the detail budget (the whole selection loads as detail).
    whole: bool,
    index_job: Option<Job<TimelineIndex>>,
    /// Coarse at first, refined once its job ends.
    pub overview: Option<Arc<TimelineModel>>,
    pub overview_refined: bool,
    pub(super) overview_job: Option<Job<TimelineModel>>,
    pub overview_progress: Arc<Progress>,
    pub(super) detail_job: Option<(Job<TimelineModel>, (i64, i64))>,
    pub detail_progress: Arc<Progress>,
    cache: Vec<Detail>,
    clock: u64,
    /// Spans a detail load may hold (tests lower it to stream a small capture).
    pub detail_span_budget: u64,
    pub cache_bytes: usize,
}

impl Default for SpanStream {
    fn default() -> Self {
        SpanStream {
            index: None,
            whole: false,
            index_job: None,
            overview: None,
            overview_refined: false,
            overview_job: None,
            overview_progress: Arc::new(Progress::default()),
            detail_job: None,
            detail_progress: Arc::new(Progress::default()),
            cache: Vec::new(),
            clock: 0,
            detail_span_budget: DETAIL_SPAN_BUDGET,
            cache_bytes: DETAIL_CACHE_BYTES,
        }
    }
}

impl SpanStream {
    /// Starts streaming `process_ids` (reading the index first).
    pub fn start(
        engine: &Arc<Engine>,
        process_ids: Vec<String>,
        detail_span_budget: u64,
        runtime: &tokio::runtime::Runtime,
        ctx: &egui::Context,
    ) -> SpanStream {
        let (engine, ids) = (engine.clone(), process_ids);
        SpanStream {
            index_job: Some(Job::spawn(runtime, ctx, "Listing blocks", async move {
                Ok(engine.timeline_index(&ids).await?)
            })),
            detail_span_budget,
            ..SpanStream::default()
        }
    }

    pub fn cancel(&mut self) {
        if let Some(job) = self.index_job.take() {
            job.cancel();
        }
        if let Some(job) = self.overview_job.take() {
            job.cancel();
        }
        if let Some((job, _)) = self.detail_job.take() {
            job.cancel();
        }
    }

    pub fn busy(&self) -> bool {
        self.index_job.is_some() || self.overview_job.is_some() || self.detail_job.is_some()
    }

    /// Whether the whole selection loads as detail (it fits the budget).
    pub fn whole_in_detail(&self) -> bool {
        self.whole
    }

    /// A new index, and whether it fits the budget whole (derived once, asked every frame).
    fn set_index(&mut self, index: Arc<TimelineIndex>) {
        self.whole = index.span_count() <= self.detail_span_budget;
        self.index = Some(index);
    }

    /// Takes what finished. A long selection's refined overview starts once the index is in.
    pub fn poll(
        &mut self,
        engine: &Arc<Engine>,
        runtime: &tokio::runtime::Runtime,
        ctx: &egui::Context,
    ) -> StreamEvents {
        let mut events = StreamEvents::default();
        if let Some(result) = take_finished(&mut self.index_job) {
            match result {
                Ok(index) => {
                    let index = Arc::new(index);
                    self.overview = Some(Arc::new(index.coarse_overview()));
                    self.set_index(index.clone());
                    if !self.whole_in_detail() {
                        let (engine, for_job) = (engine.clone(), index.clone());
                        let progress = self.overview_progress.clone();
                        self.overview_job =
                            Some(Job::spawn(runtime, ctx, "Building overview", async move {
                                Ok(engine.timeline_overview(&for_job, &progress).await?)
                            }));
                    }
                    events.index_ready = true;
                }
                Err(e) => events.errors.push(format!("spans: {e}")),
            }
        }
        let overview_started = self.overview_job.as_ref().map(|j| j.started);
        if let Some(result) = take_finished(&mut self.overview_job) {
            match result {
                Ok(overview) => {
                    eprintln!(
                        "[frameline] overview of {} spans in {:.0} ms",
                        overview.span_count(),
                        overview_started.map_or(0.0, |t| t.elapsed().as_secs_f64() * 1e3)
                    );
                    self.overview = Some(Arc::new(overview));
                    self.overview_refined = true;
                }
                Err(e) => events.errors.push(format!("overview: {e}")),
            }
        }
        if let Some((job, range)) = self.detail_job.as_mut()
            && let Some(result) = job.poll()
        {
            let range = *range;
            let Some((job, _)) = self.detail_job.take() else {
                return events;
            };
            match result {
                Ok(model) => {
                    // What BENCHMARKS.md measures: from asking for a range to its detail.
                    eprintln!(
                        "[frameline] detail of {:.3} s in {:.0} ms: {} spans from {} blocks",
                        (range.1 - range.0) as f64 / 1e9,
                        job.started.elapsed().as_secs_f64() * 1e3,
                        model.span_count(),
                        self.detail_progress
                            .total
                            .load(std::sync::atomic::Ordering::Relaxed)
                    );
                    self.clock += 1;
                    self.cache.push(Detail {
                        range,
                        model: Arc::new(model),
                        last_used: self.clock,
                        stale: false,
                    });
                    self.trim_cache();
                }
                Err(e) => events.errors.push(format!("spans: {e}")),
            }
        }
        events
    }

    /// Keeps the cache under its bytes, dropping the least recently used (the newest stays).
    fn trim_cache(&mut self) {
        self.cache.sort_by_key(|d| std::cmp::Reverse(d.last_used));
        let mut bytes = 0usize;
        let mut keep = 0;
        for (i, detail) in self.cache.iter().enumerate() {
            bytes = bytes.saturating_add(detail.model.span_bytes());
            if i > 0 && bytes > self.cache_bytes {
                break;
            }
            keep = i + 1;
        }
        self.cache.truncate(keep);
    }

    /// Bytes of the detail models held.
    pub fn cached_bytes(&self) -> usize {
        self.cache.iter().map(|d| d.model.span_bytes()).sum()
    }

    /// The range `model` (one of the cache's) holds every span of.
    pub fn range_of(&self, model: &Arc<TimelineModel>) -> Option<(i64, i64)> {
        self.cache
            .iter()
            .find(|d| Arc::ptr_eq(&d.model, model))
            .map(|d| d.range)
    }

    /// Ranges held in the cache.
    pub fn cached_ranges(&self) -> Vec<(i64, i64)> {
        self.cache.iter().map(|d| d.range).collect()
    }

    /// The session grew (a live session read again): a new index, its coarse overview, and
    /// the detail loaded so far kept but stale (drawn until fresh detail arrives, so the screen
    /// does not flicker to the overview every second).
    pub fn replace_index(&mut self, index: TimelineIndex) {
        if let Some(job) = self.overview_job.take() {
            job.cancel();
        }
        self.overview = Some(Arc::new(index.coarse_overview()));
        self.overview_refined = false;
        self.set_index(Arc::new(index));
        for detail in &mut self.cache {
            detail.stale = true;
        }
    }

    /// The detail that covers `[t0, t1]`, if one was loaded (marked as used; a fresh one before
    /// a stale one).
    pub fn detail_covering(&mut self, t0: i64, t1: i64) -> Option<Arc<TimelineModel>> {
        let whole = self.whole_in_detail();
        self.clock += 1;
        let clock = self.clock;
        let detail = self
            .cache
            .iter_mut()
            .filter(|d| whole || (d.range.0 <= t0 && d.range.1 >= t1))
            .max_by_key(|d| (!d.stale, d.last_used))?;
        detail.last_used = clock;
        Some(detail.model.clone())
    }

    /// Asks for detail of what is on screen, `[t0, t1]`: starts loading it (with a screen's
    /// width each side) unless it is cached, loading, or holds more spans than the budget.
    /// Returns whether detail of that range can be had (now or once loaded).
    pub fn want(
        &mut self,
        t0: i64,
        t1: i64,
        engine: &Arc<Engine>,
        runtime: &tokio::runtime::Runtime,
        ctx: &egui::Context,
    ) -> bool {
        let Some(index) = self.index.clone() else {
            return false;
        };
        let whole = self.whole_in_detail();
        let range = if whole {
            (index.begin_ns, index.end_ns)
        } else {
            let width = t1.saturating_sub(t0).max(1);
            (t0.saturating_sub(width), t1.saturating_add(width))
        };
        let covered = |r: (i64, i64)| {
            if whole {
                r == range
            } else {
                r.0 <= t0 && r.1 >= t1
            }
        };
        if self.cache.iter().any(|d| !d.stale && covered(d.range)) {
            return true;
        }
        if let Some((_, loading)) = &self.detail_job {
            if covered(*loading) {
                return true;
            }
            // The user moved on: what was loading is no longer on screen.
            if let Some((job, _)) = self.detail_job.take() {
                job.cancel();
            }
        }
        if !whole && index.spans_between(range.0, range.1) > self.detail_span_budget {
            return false;
        }
        let engine = engine.clone();
        self.detail_progress = Arc::new(Progress::default());
        let progress = self.detail_progress.clone();
        let job = Job::spawn(runtime, ctx, "Decoding spans", async move {
            Ok(engine.timeline_detail(&index, range, &progress).await?)
        });
        self.detail_job = Some((job, range));
        true
    }
}
