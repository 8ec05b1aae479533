//! Mouse and keyboard, as in Tracy: the wheel zooms around the cursor (Shift+wheel scrolls the
//! tracks), a drag pans, Ctrl+drag or a drag from the ruler selects a time range, W/S zoom and
//! A/D pan.

use super::{RULER_HEIGHT, TimelineState};
use egui::Response;

/// Applies this frame's input to `state`. `max_scroll` bounds the vertical scroll.
pub fn handle_input(
    ui: &egui::Ui,
    response: &Response,
    state: &mut TimelineState,
    max_scroll: f32,
) {
    let rect = response.rect;
    let ns_per_px = (state.t1 - state.t0) / rect.width().max(1.0) as f64;
    let t0 = state.t0;
    let time_at = |x: f32| t0 + (x - rect.left()) as f64 * ns_per_px;
    if let Some(pointer) = response.hover_pos() {
        let (scroll, zoom, shift) =
            ui.input(|i| (i.smooth_scroll_delta, i.zoom_delta(), i.modifiers.shift));
        let around = time_at(pointer.x);
        if zoom != 1.0 {
            state.zoom(1.0 / zoom as f64, around);
        } else if scroll.y != 0.0 && !shift {
            state.zoom((-scroll.y as f64 / 200.0).exp(), around);
        } else if scroll.y != 0.0 {
            state.scroll_y = (state.scroll_y - scroll.y).clamp(0.0, max_scroll);
        }
    }
    // Ctrl+drag, or a drag that starts on the ruler, selects a time range; other drags pan.
    if response.drag_started()
        && let Some(start) = ui.input(|i| i.pointer.press_origin())
        && (ui.input(|i| i.modifiers.command) || start.y < rect.top() + RULER_HEIGHT)
    {
        state.range_drag = Some(time_at(start.x));
    }
    if let Some(start) = state.range_drag {
        if let Some(p) = response.interact_pointer_pos() {
            let t = time_at(p.x);
            let (a, b) = (start.min(t) as i64, start.max(t) as i64);
            if b > a {
                state.range = Some((a, b));
            }
        }
        if !response.dragged() {
            state.range_drag = None;
        }
    } else if response.dragged() {
        let delta = response.drag_delta();
        state.pan(-delta.x as f64 * ns_per_px);
        state.scroll_y = (state.scroll_y - delta.y).clamp(0.0, max_scroll);
    }
    keys(ui, state);
}

/// W/S zoom and A/D pan while held, unless a text field has the keyboard.
fn keys(ui: &egui::Ui, state: &mut TimelineState) {
    if ui.ctx().text_edit_focused() {
        return;
    }
    let (pan, zoom, dt) = ui.input(|i| {
        let pan = i.key_down(egui::Key::D) as i32 - i.key_down(egui::Key::A) as i32;
        let zoom = i.key_down(egui::Key::S) as i32 - i.key_down(egui::Key::W) as i32;
        (pan as f64, zoom as f64, i.stable_dt.min(0.1) as f64)
    });
    if pan == 0.0 && zoom == 0.0 {
        return;
    }
    let center = (state.t0 + state.t1) / 2.0;
    state.pan(pan * dt * 1.5 * (state.t1 - state.t0));
    if zoom != 0.0 {
        state.zoom((zoom * dt * 3.0).exp(), center);
    }
    ui.ctx().request_repaint();
}
