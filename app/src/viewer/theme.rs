//! Every colour the viewer draws with, in one place (the dark theme). Frame colours follow
//! Tracy's: blue well under the target, green under it, yellow up to twice it, red above.

use egui::Color32;

/// Background of drawing areas (timeline, flame graph).
pub const CANVAS: Color32 = Color32::from_gray(24);
/// The time ruler.
pub const RULER: Color32 = Color32::from_gray(40);
pub const RULER_TICK: Color32 = Color32::GRAY;
pub const RULER_TEXT: Color32 = Color32::from_gray(200);
/// Header rows of the timeline.
pub const PROCESS_HEADER: Color32 = Color32::from_rgb(40, 48, 66);
pub const PROCESS_HEADER_TEXT: Color32 = Color32::WHITE;
pub const TRACK_HEADER: Color32 = Color32::from_gray(36);
pub const TRACK_HEADER_PICKED: Color32 = Color32::from_rgb(50, 70, 100);
pub const TRACK_HEADER_TEXT: Color32 = Color32::from_gray(210);
pub const LOG_LANE: Color32 = Color32::from_gray(30);
/// A session still being written.
pub const LIVE: Color32 = Color32::from_rgb(230, 60, 60);
/// A run of spans too narrow to draw one by one.
pub const FOLD: Color32 = Color32::from_gray(110);
/// The selected span.
pub const SELECTED_SPAN: Color32 = Color32::WHITE;
/// Text drawn on a span or a flame-graph node.
pub const LABEL_ON_SPAN: Color32 = Color32::BLACK;
/// The range selection (Ctrl+drag) and its duration.
pub const RANGE_FILL: Color32 = Color32::from_rgba_premultiplied(13, 19, 28, 28);
pub const RANGE_TEXT: Color32 = Color32::from_rgb(170, 200, 255);
/// The time of the hovered log line.
pub const TIME_MARKER: Color32 = Color32::from_rgb(255, 200, 0);
pub const HOVER_OUTLINE: Color32 = Color32::WHITE;
pub const EMPTY_TEXT: Color32 = Color32::GRAY;
/// Flame graph: the root node, and the diff scale (same, grew, shrank).
pub const FLAME_ROOT: Color32 = Color32::from_gray(90);
pub const DIFF_SAME: Color32 = Color32::from_gray(120);
pub const DIFF_GREW: Color32 = Color32::from_rgb(230, 50, 40);
pub const DIFF_SHRANK: Color32 = Color32::from_rgb(60, 120, 240);
/// Frame times against the target.
pub const FRAME_FAST: Color32 = Color32::from_rgb(70, 130, 230);
pub const FRAME_OK: Color32 = Color32::from_rgb(80, 190, 90);
pub const FRAME_SLOW: Color32 = Color32::from_rgb(230, 200, 60);
pub const FRAME_SPIKE: Color32 = Color32::from_rgb(230, 70, 60);
pub const TARGET_LINE: Color32 = Color32::from_gray(140);
/// What the timeline shows, on the frame plot.
pub const VISIBLE_SPAN: Color32 = Color32::from_rgba_premultiplied(20, 20, 20, 20);
/// Vertical marks on plots (percentiles).
pub const PLOT_MARK: Color32 = Color32::from_gray(170);
/// Errors: text in panels, and the banner of the top bar.
pub const ERROR_TEXT: Color32 = Color32::from_rgb(240, 120, 100);
pub const ERROR_BANNER: Color32 = Color32::from_rgb(70, 20, 20);
pub const ERROR_TITLE: Color32 = Color32::YELLOW;
pub const ERROR_BODY: Color32 = Color32::WHITE;
/// Warnings (blocks lost).
pub const WARNING_TEXT: Color32 = Color32::YELLOW;
/// SQL highlighting.
pub const SQL_PLAIN: Color32 = Color32::from_gray(220);
pub const SQL_KEYWORD: Color32 = Color32::from_rgb(120, 170, 255);
pub const SQL_STRING: Color32 = Color32::from_rgb(210, 170, 110);
pub const SQL_NUMBER: Color32 = Color32::from_rgb(170, 220, 140);
pub const SQL_COMMENT: Color32 = Color32::from_gray(120);

/// The colour of a frame of `ms` against a target of `target_ms`.
pub fn frame_color(ms: f64, target_ms: f64) -> Color32 {
    if ms <= target_ms / 2.0 {
        FRAME_FAST
    } else if ms <= target_ms {
        FRAME_OK
    } else if ms <= 2.0 * target_ms {
        FRAME_SLOW
    } else {
        FRAME_SPIKE
    }
}

/// The colour of a log level (1 error … 5 trace).
pub fn level_color(level: u8) -> Color32 {
    match level {
        1 => Color32::from_rgb(230, 70, 70),
        2 => Color32::from_rgb(235, 190, 60),
        3 => Color32::from_rgb(110, 170, 240),
        _ => Color32::from_gray(150),
    }
}

/// A colour per span name, stable across runs (like Tracy's name-hashed palette).
pub fn name_color(name: &str) -> Color32 {
    let mut hash: u32 = 0x811c_9dc5;
    for b in name.bytes() {
        hash = (hash ^ b as u32).wrapping_mul(0x0100_0193);
    }
    let hue = (hash % 360) as f32 / 360.0;
    egui::ecolor::Hsva::new(hue, 0.45, 0.75, 1.0).into()
}

/// Colours of the P50, P95 and P99 bars of the fleet page (`k` = 0, 1, 2).
pub fn percentile_color(k: usize) -> egui::Color32 {
    match k {
        0 => egui::Color32::from_rgb(90, 140, 220),
        1 => egui::Color32::from_rgb(230, 180, 60),
        _ => egui::Color32::from_rgb(220, 80, 70),
    }
}

/// The Compare view's two sides (curves, labels).
pub const COMPARE_BASELINE: Color32 = Color32::from_rgb(120, 170, 255);
pub const COMPARE_CANDIDATE: Color32 = Color32::from_rgb(255, 150, 70);
/// A flagged regression / improvement in the Compare view's table.
pub const COMPARE_SLOWER: Color32 = Color32::from_rgb(240, 90, 80);
pub const COMPARE_FASTER: Color32 = Color32::from_rgb(90, 150, 245);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_coloured_against_the_target() {
        let target = 16.0;
        assert_eq!(frame_color(5.0, target), FRAME_FAST);
        assert_eq!(frame_color(12.0, target), FRAME_OK);
        assert_eq!(frame_color(30.0, target), FRAME_SLOW);
        assert_eq!(frame_color(40.0, target), FRAME_SPIKE);
    }

    #[test]
    fn name_colours_are_stable_and_differ() {
        assert_eq!(name_color("physics.solve"), name_color("physics.solve"));
        assert_ne!(name_color("physics.solve"), name_color("render.submit"));
    }
}
