//! Live sessions: a selected process still being written grows on screen. Every
//! [`LIVE_PERIOD`] the viewer reads the process again (`Lake::refresh_process`: one GET of its
//! description, one LIST of its current hour's blocks, more pages as that hour fills), then the
//! timeline's index, and when blocks were added its frames and logs; **Follow** keeps the newest
//! seconds on screen, as Tracy does while connected, until the user pans or zooms.

use super::LakeView;
use super::jobs::{Job, take_finished};
use frameline_engine::overview::TimelineIndex;
use std::time::{Duration, Instant};

/// How often a live session is read again.
pub const LIVE_PERIOD: Duration = Duration::from_secs(1);

/// What one live refresh read.
pub struct LiveUpdate {
    index: TimelineIndex,
    /// Read again only when blocks were added (or the session ended).
    frames: Option<Vec<super::frame_plot::FrameRow>>,
    logs: Option<Vec<super::logs::LogRow>>,
    /// Whether every selected process has ended now.
    ended: bool,
}

/// The live state of the selection.
#[derive(Default)]
pub struct Live {
    job: Option<Job<LiveUpdate>>,
    last: Option<Instant>,
    /// Keep the newest seconds on screen.
    pub follow: bool,
    /// The range follow mode set last: a different one means the user moved.
    followed: Option<(f64, f64)>,
    /// Refreshes that brought something new.
    pub updates: u64,
}

impl LakeView {
    /// Whether a selected process is still running (no end in its description).
    pub fn is_live(&self) -> bool {
        let lake = self.engine.lake();
        self.selected
            .iter()
            .any(|id| lake.process(id).is_some_and(|p| p.end_unix_ns.is_none()))
    }

    /// Whether a live refresh is reading.
    pub fn live_busy(&self) -> bool {
        self.live.job.is_some()
    }

    /// Reads a live selection again every [`LIVE_PERIOD`] and takes what arrived (every frame).
    pub(super) fn poll_live(&mut self, runtime: &tokio::runtime::Runtime, ctx: &egui::Context) {
        if let Some(result) = take_finished(&mut self.live.job) {
            match result {
                Ok(update) => self.apply_live(update),
                Err(e) => self.errors.push(format!("live: {e}")),
            }
        }
        if self.live.follow
            && let Some(set) = self.live.followed
            && (self.timeline.t0, self.timeline.t1) != set
        {
            // The user panned or zoomed: stop following, as Tracy does.
            self.live.follow = false;
        }
        if self.live.job.is_some()
            || self.stream.index.is_none()
            || !self.is_live()
            || self.live.last.is_some_and(|t| t.elapsed() < LIVE_PERIOD)
        {
            return;
        }
        self.live.last = Some(Instant::now());
        let engine = self.engine.clone();
        let ids: Vec<String> = self.selected.iter().cloned().collect();
        let before = self
            .stream
            .index
            .as_ref()
            .map(|i| (i.blocks.len(), i.end_ns));
        self.live.job = Some(Job::spawn(
            runtime,
            ctx,
            "Reading the live session",
            async move {
                let mut ended = true;
                for id in &ids {
                    let meta = engine.lake().refresh_process(id).await?;
                    ended &= meta.end_unix_ns.is_some();
                }
                let index = engine.timeline_index(&ids).await?;
                let grew = ended || before != Some((index.blocks.len(), index.end_ns));
                let (frames, logs) = if grew {
                    (
                        Some(engine.frame_times(&ids, "frame").await?),
                        Some(
                            engine
                                .log_lines(&ids, super::lake_view::MAX_LOG_LINES)
                                .await?,
                        ),
                    )
                } else {
                    (None, None)
                };
                Ok(LiveUpdate {
                    index,
                    frames,
                    logs,
                    ended,
                })
            },
        ));
        // Wake up for the next refresh even when nothing moves on screen.
        ctx.request_repaint_after(LIVE_PERIOD);
    }

    fn apply_live(&mut self, update: LiveUpdate) {
        let grew = self.stream.index.as_ref().is_none_or(|old| {
            old.blocks.len() != update.index.blocks.len() || old.end_ns != update.index.end_ns
        });
        if let Some(frames) = update.frames {
            self.frames = frames;
        }
        if let Some(logs) = update.logs {
            self.logs = logs;
        }
        if grew || update.ended {
            self.live.updates += 1;
            self.stream.replace_index(update.index);
        }
        if self.live.follow
            && let Some(index) = self.stream.index.clone()
        {
            let width = (self.timeline.t1 - self.timeline.t0).max(1e6);
            self.timeline.t1 = index.end_ns as f64;
            self.timeline.t0 = self.timeline.t1 - width;
            self.live.followed = Some((self.timeline.t0, self.timeline.t1));
        }
    }

    /// The live line above the timeline: what is read, and Follow.
    pub(super) fn live_ui(&mut self, ui: &mut egui::Ui) {
        if !self.is_live() {
            return;
        }
        ui.horizontal(|ui| {
            ui.colored_label(super::theme::LIVE, "LIVE");
            if let Some(index) = &self.stream.index {
                ui.label(format!(
                    "{} blocks, up to {}",
                    index.blocks.len(),
                    super::time_format::format_duration(index.end_ns - self.origin_ns())
                ));
            }
            let before = self.live.follow;
            ui.checkbox(&mut self.live.follow, "Follow")
                .on_hover_text("Keep the newest seconds on screen (a pan or zoom stops it)");
            if self.live.follow && !before {
                self.live.followed = None;
                if let Some(index) = self.stream.index.clone() {
                    let width = (self.timeline.t1 - self.timeline.t0).clamp(1e6, 10e9);
                    self.timeline.t1 = index.end_ns as f64;
                    self.timeline.t0 = self.timeline.t1 - width;
                    self.live.followed = Some((self.timeline.t0, self.timeline.t1));
                }
            }
        });
    }
}
