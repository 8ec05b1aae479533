//! The find box (Ctrl+F, as in Tracy's find-zone): spans whose name contains the text, in time
//! order; Next/Previous (Enter, Shift+Enter) put each on the timeline, selected, with every
//! instance of its name highlighted.

use super::timeline::{SpanRef, TimelineState};
use frameline_engine::analysis::{SpanAt, find_instances};
use frameline_engine::timeline::TimelineModel;
use std::sync::Arc;

#[derive(Default)]
pub struct FindBar {
    pub open: bool,
    pub text: String,
    pub matches: Vec<SpanAt>,
    /// The index in `matches` shown last.
    pub current: Option<usize>,
    computed_for: Option<(usize, String)>,
    focus: bool,
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

    fn refresh(&mut self, model: &Arc<TimelineModel>) {
        let key = (Arc::as_ptr(model) as usize, self.text.clone());
        if self.computed_for.as_ref() != Some(&key) {
            self.matches = if self.text.is_empty() {
                Vec::new()
            } else {
                find_instances(model, &self.text, true)
            };
            self.current = None;
            self.computed_for = Some(key);
        }
    }

    /// Moves to the next (`step` 1) or previous (-1) match and shows it.
    pub fn step(&mut self, model: &Arc<TimelineModel>, timeline: &mut TimelineState, step: i64) {
        self.refresh(model);
        if self.matches.is_empty() {
            return;
        }
        let n = self.matches.len() as i64;
        let next = match self.current {
            None if step >= 0 => 0,
            None => n - 1,
            Some(c) => (c as i64 + step).rem_euclid(n),
        } as usize;
        self.current = Some(next);
        let m = self.matches[next];
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

    pub fn find_ui(
        &mut self,
        ui: &mut egui::Ui,
        model: &Arc<TimelineModel>,
        timeline: &mut TimelineState,
    ) {
        if !self.open {
            return;
        }
        self.refresh(model);
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
            match self.current {
                Some(c) => ui.label(format!("{} of {}", c + 1, self.matches.len())),
                None => ui.label(format!("{} matches", self.matches.len())),
            };
            if ui.button("Previous").clicked() {
                step = -1;
            }
            if ui.button("Next").clicked() {
                step = 1;
            }
            if ui.button("Close").clicked() {
                self.open = false;
                timeline.highlight_name = None;
            }
        });
        if step != 0 {
            self.step(model, timeline, step);
        }
    }
}
