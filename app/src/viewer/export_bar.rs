//! The timeline's Export… control: writes the selected processes over the timeline's current
//! range to a Perfetto or Chrome JSON file, in a background job (`frameline_interop::export_range`).
//! Its state is the open lake's (`LakeView::export`), so a running export counts as busy.

use super::jobs::{Job, take_finished};
use frameline_engine::Engine;
use frameline_interop::export::{self, ExportSummary, Format};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

/// The export control's state.
pub struct ExportBar {
    open: bool,
    path: String,
    format: Format,
    job: Option<Job<ExportSummary>>,
    /// The last result, shown next to the button.
    message: Option<String>,
}

impl Default for ExportBar {
    fn default() -> Self {
        let dir = std::env::current_dir().unwrap_or_default();
        Self {
            open: false,
            path: dir
                .join("frameline-export.json")
                .to_string_lossy()
                .into_owned(),
            format: Format::Chrome,
            job: None,
            message: None,
        }
    }
}

impl ExportBar {
    /// Whether an export runs.
    pub fn busy(&self) -> bool {
        self.job.is_some()
    }

    /// Takes a finished export's result.
    pub fn poll(&mut self) {
        if let Some(result) = take_finished(&mut self.job) {
            self.message = Some(match result {
                Ok(summary) => format!("wrote {} ({summary})", self.path),
                Err(e) => format!("export failed: {e}"),
            });
        }
    }
}

/// The Export… button (and, once clicked, path, format and Write). Exports `selected` over
/// `[begin_ns, end_ns]`.
pub fn export_bar_ui(
    ui: &mut egui::Ui,
    state: &mut ExportBar,
    runtime: &tokio::runtime::Runtime,
    engine: &Arc<Engine>,
    selected: &BTreeSet<String>,
    (begin_ns, end_ns): (i64, i64),
) {
    state.poll();
    ui.horizontal(|ui| {
        if ui.button("Export…").clicked() {
            state.open = !state.open;
        }
        if state.open {
            ui.label("to");
            ui.add(egui::TextEdit::singleline(&mut state.path).desired_width(320.0));
            let before = state.format;
            egui::ComboBox::from_id_salt("frameline_export_format")
                .selected_text(match state.format {
                    Format::Chrome => "Chrome JSON",
                    Format::Perfetto => "Perfetto",
                })
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut state.format, Format::Chrome, "Chrome JSON");
                    ui.selectable_value(&mut state.format, Format::Perfetto, "Perfetto");
                });
            if state.format != before {
                let path = PathBuf::from(&state.path).with_extension(state.format.extension());
                state.path = path.to_string_lossy().into_owned();
            }
            let busy = state.job.is_some();
            if ui
                .add_enabled(!busy && !selected.is_empty(), egui::Button::new("Write"))
                .clicked()
            {
                let engine = engine.clone();
                let ids: Vec<String> = selected.iter().cloned().collect();
                let path = PathBuf::from(&state.path);
                let format = state.format;
                state.message = None;
                state.job = Some(Job::spawn(runtime, ui.ctx(), "Exporting", async move {
                    export::export_range(&engine, &ids, Some((begin_ns, end_ns)), format, &path)
                        .await
                        .map_err(anyhow::Error::from)
                }));
            }
            if busy {
                ui.spinner();
            }
        }
        if let Some(message) = &state.message {
            ui.label(message);
        }
    });
}
