//! The status line of the top bar (what runs, for how long, how far, Cancel) and the error
//! banner (with Retry).

use super::ViewerApp;
use super::theme;
use egui::RichText;

impl ViewerApp {
    pub(super) fn status_ui(&mut self, ui: &mut egui::Ui) {
        let mut cancel = false;
        let mut describe = |ui: &mut egui::Ui, label: &str, started: std::time::Instant| {
            ui.spinner();
            ui.label(format!(
                "{label} ({:.1} s)",
                started.elapsed().as_secs_f64()
            ));
            if ui.button("Cancel").clicked() {
                cancel = true;
            }
        };
        if let Some(job) = &self.open_job {
            describe(ui, &job.label, job.started);
        } else if let Some(job) = &self.demo_job {
            describe(ui, &job.label, job.started);
        } else if let Some(view) = &self.lake {
            let stream = &view.stream;
            let blocks = |p: &frameline_engine::Progress| {
                format!(
                    "{}/{} blocks",
                    p.done.load(std::sync::atomic::Ordering::Relaxed),
                    p.total.load(std::sync::atomic::Ordering::Relaxed)
                )
            };
            if let Some((job, _)) = &stream.detail_job {
                let label = format!("{}: {}", job.label, blocks(&stream.detail_progress));
                describe(ui, &label, job.started);
            } else if let Some(job) = &stream.overview_job {
                let label = format!("{}: {}", job.label, blocks(&stream.overview_progress));
                describe(ui, &label, job.started);
            }
        }
        if let Some(view) = &self.lake {
            let problems = view.engine.lake().problems();
            if !problems.is_empty() {
                ui.label(
                    RichText::new(format!("{} damaged objects skipped", problems.len()))
                        .color(theme::WARNING_TEXT),
                )
                .on_hover_text(
                    problems
                        .iter()
                        .take(20)
                        .map(|p| format!("{}: {}", p.key, p.detail))
                        .collect::<Vec<_>>()
                        .join("\n"),
                );
            }
            if let Some(job) = &view.maintenance_job {
                ui.spinner();
                ui.label(format!(
                    "{} ({:.1} s)",
                    job.label,
                    job.started.elapsed().as_secs_f64()
                ));
            } else if let Some(message) = &view.maintenance {
                ui.label(RichText::new(message).small().weak());
            }
        }
        if cancel {
            for job in [
                self.open_job.take().map(|j| j.cancel()),
                self.demo_job.take().map(|j| j.cancel()),
            ] {
                let _ = job;
            }
            if let Some(view) = &mut self.lake {
                view.cancel();
            }
        }
    }

    pub(super) fn error_ui(&mut self, ui: &mut egui::Ui) {
        let Some(error) = self.error.clone() else {
            return;
        };
        egui::Frame::group(ui.style())
            .fill(theme::ERROR_BANNER)
            .show(ui, |ui| {
                ui.horizontal_wrapped(|ui| {
                    ui.label(RichText::new("Error:").color(theme::ERROR_TITLE).strong());
                    ui.label(RichText::new(&error).color(theme::ERROR_BODY));
                });
                ui.horizontal(|ui| {
                    if let Some((lake, s3)) = self.last_open.clone()
                        && ui.button("Retry").clicked()
                    {
                        self.open(&ui.ctx().clone(), lake, s3);
                    }
                    if ui.button("Dismiss").clicked() {
                        self.error = None;
                    }
                });
            });
    }
}
