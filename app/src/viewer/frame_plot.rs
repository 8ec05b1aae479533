//! The frame-time plot: one bar per frame, colored against the target; click a bar (or Worst
//! frame) to put that frame on the timeline, Shift+drag for a range.

use super::LakeView;
use super::theme;

/// One frame of the frame-time plot.
pub type FrameRow = frameline_engine::FrameTime;

impl LakeView {
    /// Shows one frame (with a small margin) on the timeline.
    pub fn show_frame(&mut self, frame: FrameRow) {
        let margin = ((frame.end_ns - frame.begin_ns) / 50).max(1000);
        let range = (frame.begin_ns - margin, frame.end_ns + margin);
        if self.stream.index.is_some() {
            self.timeline.show_range(range.0, range.1);
        } else {
            self.pending_range = Some(range);
        }
    }

    /// The slowest frame.
    pub fn worst_frame(&self) -> Option<FrameRow> {
        worst_of(&self.frames)
    }

    pub(super) fn frame_plot_ui(&mut self, ui: &mut egui::Ui) {
        let visible = self
            .stream
            .index
            .is_some()
            .then_some((self.timeline.t0, self.timeline.t1));
        let origin_ns = self.origin_ns();
        match frame_plot_ui(ui, &self.frames, self.target_frame_ms, visible, origin_ns) {
            Some(FramePick::Frame(frame)) => self.show_frame(frame),
            Some(FramePick::Range(a, b)) => self.timeline.show_range(a, b),
            None => {}
        }
    }
}

/// What the user picked on the frame plot.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FramePick {
    /// A bar clicked, or Worst frame.
    Frame(FrameRow),
    /// Shift+drag: a time range.
    Range(i64, i64),
}

/// The slowest of `frames`.
pub fn worst_of(frames: &[FrameRow]) -> Option<FrameRow> {
    frames.iter().copied().max_by_key(FrameRow::duration_ns)
}

/// The frame-time plot of `frames` against `target_ms`; `visible` (the timeline's range) is
/// shaded; times are in seconds from `origin_ns`.
pub fn frame_plot_ui(
    ui: &mut egui::Ui,
    frames: &[FrameRow],
    target_ms: f64,
    visible: Option<(f64, f64)>,
    origin_ns: i64,
) -> Option<FramePick> {
    let mut pick = None;
    ui.horizontal(|ui| {
        ui.strong("Frame times");
        ui.label(format!("{} frames, target {target_ms:.1} ms", frames.len()));
        if ui.button("Worst frame").clicked() {
            pick = worst_of(frames).map(FramePick::Frame);
        }
    });
    let origin = origin_ns;
    let bars: Vec<egui_plot::Bar> = frames
        .iter()
        .map(|f| {
            let ms = f.ms();
            let x = (f.begin_ns - origin) as f64 / 1e9;
            let w = f.duration_ns() as f64 / 1e9;
            egui_plot::Bar::new(x + w / 2.0, ms)
                .width(w)
                .fill(theme::frame_color(ms, target_ms))
        })
        .collect();
    let visible = visible.map(|(t0, t1)| ((t0 - origin as f64) / 1e9, (t1 - origin as f64) / 1e9));
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
            plot.hline(egui_plot::HLine::new("target", target_ms).color(theme::TARGET_LINE));
            if let Some((a, b)) = visible {
                plot.span(egui_plot::Span::new("timeline", a..=b).fill(theme::VISIBLE_SPAN));
            }
        });
    let r = &response.response;
    let to_ns = |p: egui::Pos2| origin + (response.transform.value_from_position(p).x * 1e9) as i64;
    if r.clicked()
        && let Some(p) = r.interact_pointer_pos()
    {
        let t = to_ns(p);
        if let Some(frame) = frames.iter().find(|f| f.begin_ns <= t && t <= f.end_ns) {
            pick = Some(FramePick::Frame(*frame));
        }
    }
    if shift && r.drag_stopped() {
        let start = r.interact_pointer_pos().map(|p| p - r.drag_delta());
        if let (Some(a), Some(b)) = (start, r.interact_pointer_pos()) {
            pick = Some(FramePick::Range(to_ns(a), to_ns(b)));
        }
    }
    pick
}
