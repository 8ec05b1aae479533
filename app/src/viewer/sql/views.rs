//! The saved views list: open, run, rename and delete, through the engine's typed view calls
//! (names are checked by the engine; the lake keeps the views).

use super::{SqlPanel, ViewChange};
use frameline_engine::Engine;
use frameline_engine::views::{is_valid_view_name, view_body};
use std::sync::Arc;

impl SqlPanel {
    pub(super) fn views_ui(
        &mut self,
        ui: &mut egui::Ui,
        runtime: &tokio::runtime::Runtime,
        engine: &Arc<Engine>,
    ) {
        let ctx = ui.ctx().clone();
        ui.strong("Saved views");
        if self.view_job.is_some() {
            ui.spinner();
        }
        if let Some(message) = &self.view_message {
            ui.label(message);
        }
        let views = engine.views();
        if views.is_empty() {
            ui.label("none yet: write a query, name it, Save as view");
        }
        egui::ScrollArea::vertical()
            .id_salt("views")
            .show(ui, |ui| {
                for view in views {
                    ui.horizontal_wrapped(|ui| {
                        ui.label(egui::RichText::new(&view.name).strong())
                            .on_hover_text(&view.sql);
                        if view.stored_in != "lake" {
                            ui.weak(view.stored_in);
                        }
                    });
                    ui.horizontal(|ui| {
                        if ui.small_button("Open").clicked() {
                            self.text = view_body(&view.sql).unwrap_or(&view.sql).to_owned();
                            self.view_name = view.name.clone();
                        }
                        if ui.small_button("Run").clicked() {
                            let sql = format!("SELECT * FROM {} LIMIT 10000", view.name);
                            self.text = sql.clone();
                            self.run(runtime, &ctx, engine, sql);
                        }
                        if ui.small_button("Rename").clicked() {
                            self.renaming = Some((view.name.clone(), view.name.clone()));
                        }
                        if ui.small_button("Delete").clicked() {
                            let name = view.name.clone();
                            self.change_view(runtime, &ctx, engine, ViewChange::Delete { name });
                        }
                    });
                    let mut commit = None;
                    if let Some((old, new)) = &mut self.renaming
                        && *old == view.name
                    {
                        ui.horizontal(|ui| {
                            let label = ui.label("New name");
                            ui.add(egui::TextEdit::singleline(new).desired_width(120.0))
                                .labelled_by(label.id);
                            if ui.small_button("OK").clicked() {
                                commit = Some((old.clone(), new.trim().to_owned()));
                            }
                        });
                    }
                    if let Some((old, new)) = commit {
                        self.renaming = None;
                        if is_valid_view_name(&new) && new != old {
                            self.change_view(
                                runtime,
                                &ctx,
                                engine,
                                ViewChange::Rename { old, new },
                            );
                        } else {
                            self.view_message = Some(format!("cannot rename {old} to {new:?}"));
                        }
                    }
                    ui.separator();
                }
            });
    }
}
