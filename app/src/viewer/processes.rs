//! The process browser: every process of the lake, filtered by text; checking one loads it.

use super::LakeView;
use super::theme;
use super::time_format::format_duration;
use egui::RichText;

impl LakeView {
    pub(super) fn processes_ui(&mut self, ui: &mut egui::Ui, runtime: &tokio::runtime::Runtime) {
        ui.heading("Processes");
        let filter_label = ui.label("Filter");
        ui.add(
            egui::TextEdit::singleline(&mut self.process_filter).hint_text("exe, computer, user"),
        )
        .labelled_by(filter_label.id);
        let filter = self.process_filter.to_lowercase();
        let mut changed = false;
        egui::ScrollArea::vertical()
            .id_salt("processes")
            .show(ui, |ui| {
                for p in self.engine.lake().processes().iter().rev() {
                    let text = format!("{} {} {}", p.exe, p.computer, p.username).to_lowercase();
                    if !filter.is_empty() && !text.contains(&filter) {
                        continue;
                    }
                    let mut on = self.selected.contains(&p.process_id);
                    let duration = p
                        .end_unix_ns
                        .map(|e| format_duration(e - p.start_unix_ns))
                        .unwrap_or_else(|| "running or killed".into());
                    let label = format!("{} on {} ({duration})", p.exe, p.computer);
                    if ui.checkbox(&mut on, label).changed() {
                        if on {
                            self.selected.insert(p.process_id.clone());
                        } else {
                            self.selected.remove(&p.process_id);
                        }
                        changed = true;
                    }
                    let dropped = p.dropped_blocks;
                    ui.label(
                        RichText::new(format!(
                            "  {} · {}",
                            p.username,
                            &p.process_id[..8.min(p.process_id.len())]
                        ))
                        .small()
                        .weak(),
                    );
                    if dropped > 0 {
                        ui.label(
                            RichText::new(format!("  {dropped} blocks lost"))
                                .small()
                                .color(theme::WARNING_TEXT),
                        );
                    }
                }
            });
        if changed {
            self.load_selection(runtime, &ui.ctx().clone());
        }
    }
}
