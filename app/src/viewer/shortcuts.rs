//! Keyboard shortcuts of the open lake, after Tracy's: Ctrl+F finds spans, Escape clears.

use super::LakeView;

impl LakeView {
    /// Tracy-like keys: Ctrl+F finds spans (pre-filled with the statistics' selected name),
    /// Escape clears the range selection and the highlight.
    pub(super) fn shortcuts(&mut self, ui: &mut egui::Ui) {
        let (find, escape) = ui.input_mut(|i| {
            (
                i.consume_key(egui::Modifiers::COMMAND, egui::Key::F),
                i.consume_key(egui::Modifiers::NONE, egui::Key::Escape),
            )
        });
        if find {
            let name = self.timeline.highlight_name.clone();
            self.find.open_with(name.as_deref());
        }
        if escape {
            self.timeline.range = None;
            self.timeline.highlight_name = None;
            self.stats.selected_name = None;
            self.find.open = false;
        }
    }
}
