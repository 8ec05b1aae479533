//! The start screen: open a capture folder (a file dialog on its own thread), connect to S3,
//! generate a demo capture, or reopen a recent lake.

use super::ViewerApp;
use super::s3_dialog::S3Dialog;
use egui::RichText;
use frameline_engine::S3Options;
use std::path::PathBuf;

fn recent_file() -> Option<PathBuf> {
    frameline_engine::dirs::config_dir().map(|d| d.join("recent.json"))
}

pub(super) fn load_recent() -> Vec<String> {
    recent_file()
        .and_then(|f| std::fs::read(f).ok())
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn save_recent(recent: &[String]) {
    if let Some(file) = recent_file() {
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir).ok();
        }
        // The list of recent lakes is a convenience: a settings folder we cannot write only
        // means it is not remembered.
        if let Err(e) = std::fs::write(&file, serde_json::to_vec_pretty(recent).unwrap_or_default())
        {
            eprintln!(
                "[frameline] cannot remember recent lakes in {}: {e}",
                file.display()
            );
        }
    }
}

impl ViewerApp {
    pub(super) fn remember(&mut self, lake: &str) {
        self.recent.retain(|l| l != lake);
        self.recent.insert(0, lake.to_owned());
        self.recent.truncate(10);
        if self.remember_lakes {
            save_recent(&self.recent);
        }
    }

    pub(super) fn start_screen_ui(&mut self, ui: &mut egui::Ui) {
        ui.vertical_centered(|ui| {
            ui.add_space(40.0);
            ui.heading(RichText::new("Frameline").size(32.0));
            ui.label("Telemetry for video games: find why a frame was slow.");
            ui.add_space(24.0);
            if ui.button("Open capture folder…").clicked() {
                let (tx, rx) = std::sync::mpsc::channel();
                self.folder_pick = Some(rx);
                let ctx = ui.ctx().clone();
                // Dialogs block: never on the UI thread.
                std::thread::spawn(move || {
                    let picked = rfd::FileDialog::new()
                        .set_title("Open a Frameline capture")
                        .pick_folder();
                    // The app closed meanwhile: nobody waits for the answer.
                    tx.send(picked).ok();
                    ctx.request_repaint();
                });
            }
            if ui.button("Connect to an S3 lake…").clicked() {
                self.s3_dialog = Some(S3Dialog::from_env());
            }
            if ui.button("Generate a demo capture").clicked() {
                let dir = frameline_engine::dirs::cache_dir()
                    .unwrap_or_else(std::env::temp_dir)
                    .join(format!("demo-{}", std::process::id()));
                self.generate_demo(&ui.ctx().clone(), dir);
            }
            if !self.recent.is_empty() {
                ui.add_space(24.0);
                ui.label(RichText::new("Recent lakes").strong());
                for lake in self.recent.clone() {
                    if ui.link(&lake).clicked() {
                        self.open(&ui.ctx().clone(), lake, S3Options::default());
                    }
                }
            }
        });
    }
}
