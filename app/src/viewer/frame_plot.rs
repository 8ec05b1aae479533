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

/// Frames drawn one bar each when at most this many per pixel column are in view.
const BARS_PER_COLUMN: usize = 2;

/// The bars of the frames in `seconds` (from `origin_ns`; the whole list when that range holds
/// none, as on the first frame), at most about `columns` × [`BARS_PER_COLUMN`]: one per frame
/// when they fit, else per column of the plot two stacked bars, up to the column's shortest
/// frame and from it up to its longest (colored by it), so a spike stays as tall as it is
/// whatever the zoom (min/max decimation: an hour at 60 fps is 216 000 frames).
pub fn frame_bars(
    frames: &[FrameRow],
    origin_ns: i64,
    seconds: (f64, f64),
    columns: usize,
    target_ms: f64,
) -> Vec<egui_plot::Bar> {
    let to_ns = |s: f64| origin_ns.saturating_add((s * 1e9) as i64);
    let (mut t0, mut t1) = (to_ns(seconds.0), to_ns(seconds.1));
    let first = frames.partition_point(|f| f.end_ns < t0);
    let last = frames.partition_point(|f| f.begin_ns <= t1);
    let (first, last) = if first < last {
        (first, last)
    } else {
        t0 = frames.first().map_or(0, |f| f.begin_ns);
        t1 = frames.last().map_or(0, |f| f.end_ns);
        (0, frames.len())
    };
    let visible = &frames[first..last];
    let x_of = |ns: i64| (ns - origin_ns) as f64 / 1e9;
    let bar = |f: &FrameRow| {
        let (ms, x, w) = (f.ms(), x_of(f.begin_ns), f.duration_ns() as f64 / 1e9);
        egui_plot::Bar::new(x + w / 2.0, ms)
            .width(w)
            .fill(theme::frame_color(ms, target_ms))
    };
    let columns = columns.max(1);
    if visible.len() <= columns * BARS_PER_COLUMN {
        return visible.iter().map(bar).collect();
    }
    let column_ns = (t1.saturating_sub(t0) / columns as i64).max(1);
    let mut bars = Vec::with_capacity(columns * 2);
    let mut i = 0;
    while i < visible.len() {
        let column = (visible[i].begin_ns.saturating_sub(t0)) / column_ns;
        let end = t0.saturating_add((column + 1).saturating_mul(column_ns));
        let j = i + visible[i..].partition_point(|f| f.begin_ns < end);
        let j = j.max(i + 1);
        let (mut min_ms, mut max_ms) = (f64::MAX, 0.0f64);
        for f in &visible[i..j] {
            min_ms = min_ms.min(f.ms());
            max_ms = max_ms.max(f.ms());
        }
        let (b, e) = (visible[i].begin_ns, visible[j - 1].end_ns);
        let (x, w) = (x_of(b), (e - b) as f64 / 1e9);
        bars.push(
            egui_plot::Bar::new(x + w / 2.0, min_ms)
                .width(w)
                .fill(theme::frame_color(min_ms, target_ms)),
        );
        if max_ms > min_ms {
            bars.push(
                egui_plot::Bar::new(x + w / 2.0, max_ms - min_ms)
                    .base_offset(min_ms)
                    .width(w)
                    .fill(theme::frame_color(max_ms, target_ms)),
            );
        }
        i = j;
    }
    bars
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
    let columns = ui.available_width().max(1.0) as usize;
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
            // What the plot showed last frame (the first frame: every frame).
            let bounds = plot.plot_bounds();
            let seconds = (bounds.min()[0], bounds.max()[0]);
            let bars = frame_bars(frames, origin, seconds, columns, target_ms);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(count: usize, spike_at: usize) -> Vec<FrameRow> {
        let mut t = 0i64;
        (0..count)
            .map(|i| {
                let d = if i == spike_at {
                    80_000_000
                } else {
                    16_000_000
                };
                let f = FrameRow {
                    begin_ns: t,
                    end_ns: t + d,
                };
                t += d;
                f
            })
            .collect()
    }

    #[test]
    fn an_hour_of_frames_decimates_to_the_plot_s_columns_and_keeps_the_spike() {
        let all = frames(216_000, 123_456);
        let seconds = (0.0, all.last().unwrap().end_ns as f64 / 1e9);
        let bars = frame_bars(&all, 0, seconds, 1000, 16.7);
        assert!(bars.len() <= 2 * 1000 + 2, "{} bars", bars.len());
        let top = bars
            .iter()
            .map(|b| b.value + b.base_offset.unwrap_or(0.0))
            .fold(0.0, f64::max);
        assert!((top - 80.0).abs() < 1e-9, "{top}");
        // Zoomed in on a few frames: one bar each, exactly.
        let few = (100.0 * 0.016, 110.0 * 0.016);
        let bars = frame_bars(&all, 0, few, 1000, 16.7);
        assert!(bars.len() <= 12 && bars.len() >= 10, "{}", bars.len());
        assert!(bars.iter().all(|b| (b.value - 16.0).abs() < 1e-9));
        // Bounds with no frame (the first frame): every frame, decimated.
        let bars = frame_bars(&all, 0, (-1.0, -0.5), 1000, 16.7);
        assert!(!bars.is_empty() && bars.len() <= 2002);
    }
}
