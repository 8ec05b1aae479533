//! The timeline's Export… control: writes the selected processes over the timeline's current
//! range to a Perfetto or Chrome JSON file, in a background job (`frameline_interop::export_range`).
//! Its state lives in egui's memory, so the viewer's panels need no field for it.

use super::jobs::{Job, take_finished};
use frameline_engine::Engine;
use frameline_interop::export::{self, ExportSummary, Format};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

struct ExportState {
    open: bool,
    path: String,
    format: Format,
    job: Option<Job<ExportSummary>>,
    /// The last result, shown next to the button.
    message: Option<String>,
}

impl Default for ExportState {
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

type Shared = Arc<Mutex<ExportState>>;

/// The Export… button (and, once clicked, path, format and Write). Exports `selected` over
/// `[begin_ns, end_ns]`.
pub fn export_bar_ui(
    ui: &mut egui::Ui,
    runtime: &tokio::runtime::Runtime,
    engine: &Arc<Engine>,
    selected: &BTreeSet<String>,
    (begin_ns, end_ns): (i64, i64),
) {
    let id = egui::Id::unique("frameline_export_bar");
    let shared: Shared = ui.data_mut(|d| d.get_temp_mut_or_default::<Shared>(id).clone());
    let mut state = shared.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(result) = take_finished(&mut state.job) {
        state.message = Some(match result {
            Ok(summary) => format!("wrote {} ({summary})", state.path),
            Err(e) => format!("export failed: {e}"),
        });
    }
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
