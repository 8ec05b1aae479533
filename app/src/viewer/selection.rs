//! Details of the span selected on the timeline: name, time, duration, self time, depth,
//! thread, file:line, with Zoom to span and Clear.

use super::LakeView;
use super::time_format::format_duration;
use super::timeline::child_time;
use frameline_engine::timeline::TimelineModel;

impl LakeView {
    /// Details of the span selected on the timeline (click a span), with zoom and clear.
    pub(super) fn selection_ui(&mut self, ui: &mut egui::Ui, model: &TimelineModel) {
        let Some(span) = self.timeline.selected else {
            return;
        };
        // The span indexes the model drawn; one it does not hold (the other model was drawn
        // since) is no longer selected.
        let Some((lane, b, e)) = model
            .tracks
            .get(span.track)
            .and_then(|t| t.lanes.get(span.depth))
            .and_then(|lane| {
                Some((
                    lane,
                    *lane.begin_ns.get(span.index)?,
                    *lane.end_ns.get(span.index)?,
                ))
            })
        else {
            self.timeline.selected = None;
            return;
        };
        let site = lane.name.get(span.index).and_then(|&n| model.site(n));
        let origin = self.origin_ns();
        let mut zoom = false;
        let mut clear = false;
        ui.horizontal_wrapped(|ui| {
            ui.strong(format!(
                "Selected: {}",
                site.map_or("?", |s| s.name.as_str())
            ));
            ui.label(format!(
                "at {:.6} s, {} (self {}), depth {}, thread {}",
                (b - origin) as f64 / 1e9,
                format_duration(e - b),
                format_duration(e - b - child_time(model, span)),
                span.depth,
                model.tracks[span.track].thread_name
            ));
            if let Some(site) = site {
                ui.monospace(format!("{}:{}", site.file, site.line));
            }
            zoom = ui.button("Zoom to span").clicked();
            clear = ui.button("Clear selection").clicked();
        });
        if zoom {
            let margin = ((e - b) / 20).max(1000);
            self.timeline.show_range(b - margin, e + margin);
        }
        if clear {
            self.timeline.selected = None;
        }
    }
}
