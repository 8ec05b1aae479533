//! Where the timeline is on screen this frame, and the mapping between time and x.

use super::{LANE_HEIGHT, RULER_HEIGHT, TimelineState};
use egui::{Pos2, Rect};

/// The timeline's rectangle, its body (below the ruler) and the time ↔ x mapping.
pub struct Geometry {
    pub rect: Rect,
    pub body_top: f32,
    pub t0: f64,
    pub ns_per_px: f64,
}

impl Geometry {
    pub fn new(rect: Rect, state: &TimelineState) -> Geometry {
        Geometry {
            rect,
            body_top: rect.top() + RULER_HEIGHT,
            t0: state.t0,
            ns_per_px: (state.t1 - state.t0) / rect.width().max(1.0) as f64,
        }
    }

    pub fn x_of(&self, t: f64) -> f32 {
        self.rect.left() + ((t - self.t0) / self.ns_per_px) as f32
    }

    pub fn t_of(&self, x: f32) -> f64 {
        self.t0 + (x - self.rect.left()) as f64 * self.ns_per_px
    }

    pub fn body(&self) -> Rect {
        Rect::from_min_max(
            Pos2::new(self.rect.left(), self.body_top),
            self.rect.right_bottom(),
        )
    }

    /// The rectangle of one lane whose first lane's top is `lanes_top` (before scrolling), if
    /// it is on screen.
    pub fn lane_rect(&self, lanes_top: f32, scroll_y: f32, depth: usize) -> Option<Rect> {
        let top = self.body_top + lanes_top - scroll_y + depth as f32 * LANE_HEIGHT;
        let r = Rect::from_min_max(
            Pos2::new(self.rect.left(), top),
            Pos2::new(self.rect.right(), top + LANE_HEIGHT - 1.0),
        );
        (r.bottom() >= self.body_top && r.top() <= self.rect.bottom()).then_some(r)
    }
}
