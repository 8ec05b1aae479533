//! The find box (Ctrl+F, as in Tracy's find-zone): spans whose name contains the text, in time
//! order; Next/Previous (Enter, Shift+Enter) put each on the timeline, selected, with every
//! instance of its name highlighted.

use super::derived::Derived;
use super::jobs::{Job, take_finished};
use super::scope::{AnalysisContext, Streamed};
use super::timeline::{SpanRef, TimelineState};
use frameline_engine::analysis::{SpanAt, find_instances};
use frameline_engine::range_stats::FoundSpan;
use frameline_engine::timeline::TimelineModel;

/// What matches were found for: the model's generation and the text.
type FindKey = (u64, String);

#[derive(Default)]
pub struct FindBar {
    pub open: bool,
    pub text: String,
    matches: Derived<FindKey, Vec<SpanAt>>,
    /// The index in the matches shown last.
    pub current: Option<usize>,
    /// A Next/Previous asked for before the matches of the current text were found.
    pending_step: Option<i64>,
    focus: bool,
    /// A session streamed by range: Next/Previous read its blocks from the current position.
    remote: Option<Job<Option<FoundSpan>>>,
    /// What the last search of the blocks found (`Some(None)`: nothing more that way).
    pub remote_found: Option<Option<FoundSpan>>,
}

impl FindBar {
    /// Opens the box (with `text` if given) and focuses it.
    pub fn open_with(&mut self, text: Option<&str>) {
        self.open = true;
        self.focus = true;
        if let Some(t) = text {
            self.text = t.to_owned();
        }
    }

    pub fn busy(&self) -> bool {
        self.matches.busy() || self.remote.is_some()
    }

    /// Next/Previous over a session streamed by range: the first match after (or the last
    /// before) the selected span, or the middle of the screen, read from the blocks; it is then
    /// put on the timeline, and selected once its detail is loaded.
    fn step_in_blocks(
        &mut self,
        ctx: &egui::Context,
        cx: &mut AnalysisContext<'_>,
        streamed: Streamed,
        step: i64,
    ) {
        if let Some(result) = take_finished(&mut self.remote) {
            match result {
                Ok(found) => {
                    if let Some(span) = &found {
                        let track = streamed
                            .index
                            .tracks
                            .iter()
                            .position(|t| t.stream_id == span.stream_id);
                        let timeline = &mut *cx.timeline;
                        let width = (timeline.t1 - timeline.t0)
                            .max(((span.end_ns - span.begin_ns) as f64) * 1.2);
                        let center = (span.begin_ns + span.end_ns) as f64 / 2.0;
                        timeline.t0 = center - width / 2.0;
                        timeline.t1 = center + width / 2.0;
                        timeline.highlight_name = Some(span.name.clone());
                        timeline.selected = None;
                        timeline.pending_select =
                            track.map(|t| (t, span.depth as usize, span.begin_ns));
                        timeline.found_begin_ns = Some(span.begin_ns);
                    }
                    self.remote_found = Some(found);
                }
                Err(e) => {
                    self.remote_found = Some(None);
                    eprintln!("find: {e}");
                }
            }
        }
        if step == 0 || self.remote.is_some() || self.text.is_empty() {
            return;
        }
        let after = cx
            .timeline
            .found_begin_ns
            .unwrap_or(((cx.timeline.t0 + cx.timeline.t1) / 2.0) as i64);
        let (text, forward) = (self.text.clone(), step > 0);
        self.remote = Some(Job::spawn(cx.runtime, ctx, "Find", async move {
            Ok(streamed
                .engine
                .find_span(
                    &streamed.index,
                    &text,
                    true,
                    after,
                    forward,
                    &frameline_engine::Progress::default(),
                )
                .await?)
        }));
    }

    /// The spans found for the current text (empty until found).
    pub fn matches(&self) -> &[SpanAt] {
        self.matches.value().map_or(&[], |m| m.as_slice())
    }

    /// Searches in the background when the text or the model changed; applies a Next/Previous
    /// that waited for the result.
    fn refresh(&mut self, ctx: &egui::Context, cx: &mut AnalysisContext<'_>) {
        let key = (cx.model.generation, self.text.clone());
        let spans = cx.model.model.clone();
        if self.matches.poll() {
            self.current = None;
        }
        self.matches
            .request(cx.runtime, ctx, "Find", &key, move |(_, text)| {
                if text.is_empty() {
                    Vec::new()
                } else {
                    find_instances(&spans, &text, true)
                }
            });
        if self.matches.value_for(&key).is_some()
            && let Some(step) = self.pending_step.take()
        {
            self.step(&cx.model.model, cx.timeline, step);
        }
    }

    /// Moves to the next (`step` 1) or previous (-1) match and shows it.
    fn step(&mut self, model: &TimelineModel, timeline: &mut TimelineState, step: i64) {
        let Some(matches) = self.matches.value().cloned() else {
            return;
        };
        if matches.is_empty() {
            return;
        }
        let n = matches.len() as i64;
        let next = match self.current {
            None if step >= 0 => 0,
            None => n - 1,
            Some(c) => (c as i64 + step).rem_euclid(n),
        } as usize;
        self.current = Some(next);
        let m = matches[next];
        let lane = &model.tracks[m.track].lanes[m.depth];
        let (b, e) = (lane.begin_ns[m.index], lane.end_ns[m.index]);
        // Keep the zoom if the span fits, else zoom out to it.
        let width = (timeline.t1 - timeline.t0).max(((e - b) as f64) * 1.2);
        let center = (b + e) as f64 / 2.0;
        timeline.t0 = center - width / 2.0;
        timeline.t1 = center + width / 2.0;
        timeline.selected = Some(SpanRef {
            track: m.track,
            depth: m.depth,
            index: m.index,
        });
        timeline.highlight_name = Some(model.name(lane.name[m.index]).to_owned());
    }

    pub fn find_ui(&mut self, ui: &mut egui::Ui, mut cx: AnalysisContext<'_>) {
        if !self.open {
            return;
        }
        if cx.streamed.as_ref().is_none_or(|s| s.whole_in_detail) {
            self.refresh(&ui.ctx().clone(), &mut cx);
        }
        let mut step = 0;
        ui.horizontal(|ui| {
            let label = ui.label("Find span");
            let edit = ui
                .add(egui::TextEdit::singleline(&mut self.text).desired_width(200.0))
                .labelled_by(label.id);
            if self.focus {
                edit.request_focus();
                self.focus = false;
            }
            if edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
                step = if ui.input(|i| i.modifiers.shift) {
                    -1
                } else {
                    1
                };
                edit.request_focus();
            }
            // The buttons come before what changes width (the count, the spinner), so they stay
            // under the pointer while a search runs.
            if ui.button("Previous").clicked() {
                step = -1;
            }
            if ui.button("Next").clicked() {
                step = 1;
            }
            if ui.button("Close").clicked() {
                self.open = false;
                cx.timeline.highlight_name = None;
            }
            let streamed = cx.streamed.as_ref().is_some_and(|s| !s.whole_in_detail);
            match (streamed, &self.remote_found, self.current) {
                (true, Some(Some(span)), _) => ui.label(format!("found: {}", span.name)),
                (true, Some(None), _) => ui.label("no more matches that way"),
                (true, None, _) => ui.label("searches the whole session"),
                (false, _, Some(c)) => ui.label(format!("{} of {}", c + 1, self.matches().len())),
                (false, _, None) => ui.label(format!("{} matches", self.matches().len())),
            };
            if self.busy() {
                ui.spinner();
            }
        });
        if let Some(streamed) = cx.streamed.clone().filter(|s| !s.whole_in_detail) {
            self.step_in_blocks(&ui.ctx().clone(), &mut cx, streamed, step);
            return;
        }
        if step != 0 {
            // Applied once the matches of the current text are known (maybe this frame).
            self.pending_step = Some(step);
            self.refresh(&ui.ctx().clone(), &mut cx);
        }
    }
}
