//! The SQL editor: a multi-line editor with keyword highlighting, Ctrl+Enter runs the query in
//! the background (Cancel stops it), results in a virtualized sortable table, a plot for results
//! with a time column and numeric columns, "Add to timeline" for results with begin/end (or
//! time and duration) columns, errors inline, a query history, and saved views (save, open, run, rename,
//! delete) through the engine, which keeps them in the lake.

mod highlight;
mod plot;
mod result;
mod table;
mod views;

pub use highlight::highlight_sql;
pub use result::{MAX_ROWS, QueryResult, QueryTrack};

use super::jobs::{Job, take_finished};
use super::theme;
use egui::FontId;
use frameline_engine::Engine;
use frameline_engine::views::is_valid_view_name;
use std::sync::Arc;

/// A change to the saved views.
pub(super) enum ViewChange {
    Save { name: String, query: String },
    Delete { name: String },
    Rename { old: String, new: String },
}

/// The SQL panel.
pub struct SqlPanel {
    pub text: String,
    pub history: Vec<String>,
    job: Option<Job<QueryResult>>,
    pub result: Option<Arc<QueryResult>>,
    pub error: Option<String>,
    sort: Option<(usize, bool)>,
    order: Vec<usize>,
    pub show_plot: bool,
    pub view_name: String,
    view_job: Option<Job<String>>,
    pub view_message: Option<String>,
    renaming: Option<(String, String)>,
}

impl Default for SqlPanel {
    fn default() -> Self {
        SqlPanel {
            text: "SELECT name, count(*) AS calls, sum(duration_ns) / 1e6 AS total_ms\nFROM thread_spans\nGROUP BY name\nORDER BY total_ms DESC\nLIMIT 20".into(),
            history: Vec::new(),
            job: None,
            result: None,
            error: None,
            sort: None,
            order: Vec::new(),
            show_plot: false,
            view_name: String::new(),
            view_job: None,
            view_message: None,
            renaming: None,
        }
    }
}

impl SqlPanel {
    pub fn busy(&self) -> bool {
        self.job.is_some() || self.view_job.is_some()
    }

    /// Whether the query job is running (for the frame-time log).
    pub fn running(&self) -> bool {
        self.job.is_some()
    }

    /// Runs `sql` in the background.
    pub fn run(
        &mut self,
        runtime: &tokio::runtime::Runtime,
        ctx: &egui::Context,
        engine: &Arc<Engine>,
        sql: String,
    ) {
        if let Some(job) = self.job.take() {
            job.cancel();
        }
        self.history.retain(|h| h != &sql);
        self.history.insert(0, sql.clone());
        self.history.truncate(50);
        self.error = None;
        let engine = engine.clone();
        self.job = Some(Job::spawn(runtime, ctx, "Query", async move {
            let started = std::time::Instant::now();
            let batches = engine.execute(&sql).await?;
            let elapsed_ms = started.elapsed().as_secs_f64() * 1e3;
            Ok(tokio::task::spawn_blocking(move || {
                QueryResult::from_batches(&sql, &batches, elapsed_ms)
            })
            .await?)
        }));
    }

    /// Saves, deletes or renames a view in the background, through the engine.
    pub(super) fn change_view(
        &mut self,
        runtime: &tokio::runtime::Runtime,
        ctx: &egui::Context,
        engine: &Arc<Engine>,
        change: ViewChange,
    ) {
        let engine = engine.clone();
        self.view_message = None;
        let label = match &change {
            ViewChange::Save { .. } => "Saving the view",
            ViewChange::Delete { .. } => "Deleting the view",
            ViewChange::Rename { .. } => "Renaming the view",
        };
        self.view_job = Some(Job::spawn(runtime, ctx, label, async move {
            Ok(match change {
                ViewChange::Save { name, query } => {
                    engine.create_view(&name, &query).await?;
                    format!("saved view {name}")
                }
                ViewChange::Delete { name } => {
                    engine.drop_view(&name).await?;
                    format!("deleted view {name}")
                }
                ViewChange::Rename { old, new } => {
                    engine.rename_view(&old, &new).await?;
                    format!("renamed {old} to {new}")
                }
            })
        }));
    }

    /// Shows `result` (unsorted).
    pub fn show_result(&mut self, result: QueryResult) {
        self.order = (0..result.rows).collect();
        self.sort = None;
        self.result = Some(Arc::new(result));
    }

    /// Takes finished jobs (every frame, whichever tab is shown).
    pub fn poll(&mut self) {
        if let Some(result) = take_finished(&mut self.job) {
            match result {
                Ok(result) => self.show_result(result),
                Err(e) => self.error = Some(e),
            }
        }
        if let Some(result) = take_finished(&mut self.view_job) {
            self.view_message = Some(match result {
                Ok(done) => done,
                Err(e) => format!("error: {e}"),
            });
        }
    }

    /// Draws the panel; returns a track to add to the timeline when asked.
    pub fn sql_ui(
        &mut self,
        ui: &mut egui::Ui,
        runtime: &tokio::runtime::Runtime,
        engine: &Arc<Engine>,
        origin_ns: i64,
    ) -> Option<QueryTrack> {
        self.poll();
        let ctx = ui.ctx().clone();
        let mut add_track = None;
        egui::Panel::right("sql_views")
            .resizable(true)
            .default_size(260.0)
            .show(ui, |ui| self.views_ui(ui, runtime, engine));
        let run_key = ui.input_mut(|i| i.consume_key(egui::Modifiers::COMMAND, egui::Key::Enter));
        ui.horizontal(|ui| {
            ui.strong("SQL");
            let run = ui.button("Run (Ctrl+Enter)").clicked();
            if (run || run_key) && !self.text.trim().is_empty() {
                self.run(runtime, &ctx, engine, self.text.clone());
            }
            if let Some(job) = &self.job {
                ui.spinner();
                ui.label(format!(
                    "running {:.1} s",
                    job.started.elapsed().as_secs_f64()
                ));
                if ui.button("Cancel").clicked()
                    && let Some(job) = self.job.take()
                {
                    job.cancel();
                    self.error = Some("cancelled".into());
                }
            }
            if !self.history.is_empty() {
                let mut picked = None;
                egui::ComboBox::from_id_salt("sql_history")
                    .selected_text("History")
                    .width(90.0)
                    .show_ui(ui, |ui| {
                        for h in &self.history {
                            let line: String = h.split_whitespace().collect::<Vec<_>>().join(" ");
                            if ui.selectable_label(false, line).clicked() {
                                picked = Some(h.clone());
                            }
                        }
                    });
                if let Some(h) = picked {
                    self.text = h;
                }
            }
            let name_label = ui.label("View name");
            ui.add(egui::TextEdit::singleline(&mut self.view_name).desired_width(110.0))
                .labelled_by(name_label.id);
            if ui.button("Save as view").clicked() {
                let name = self.view_name.trim().to_owned();
                if is_valid_view_name(&name) {
                    let query = self.text.trim().to_owned();
                    self.change_view(runtime, &ctx, engine, ViewChange::Save { name, query });
                } else {
                    self.view_message = Some(
                        "a view name is letters, digits and _, not starting with a digit".into(),
                    );
                }
            }
        });
        let font = FontId::monospace(13.0);
        let mut layouter = |ui: &egui::Ui, text: &dyn egui::TextBuffer, wrap_width: f32| {
            let mut job = highlight_sql(text.as_str(), font.clone());
            job.wrap.max_width = wrap_width;
            ui.painter().layout_job(job)
        };
        let editor = ui.add(
            egui::TextEdit::multiline(&mut self.text)
                .id_salt("sql_editor")
                .code_editor()
                .desired_rows(5)
                .desired_width(f32::INFINITY)
                .layouter(&mut layouter),
        );
        let _ = editor;
        if let Some(error) = &self.error {
            ui.colored_label(theme::ERROR_TEXT, error);
        }
        let result = self.result.clone()?;
        ui.horizontal(|ui| {
            ui.label(format!(
                "{} rows in {:.1} ms{}",
                result.total_rows,
                result.elapsed_ms,
                if result.rows < result.total_rows {
                    format!(", showing the first {}", result.rows)
                } else {
                    String::new()
                }
            ));
            let plottable = result.time_column().is_some() && !result.value_columns().is_empty();
            if plottable {
                ui.toggle_value(&mut self.show_plot, "Plot");
            }
            if let Some(spans) = result.spans()
                && ui.button("Add to timeline").clicked()
            {
                let line: String = result.sql.split_whitespace().collect::<Vec<_>>().join(" ");
                add_track = Some(QueryTrack {
                    label: format!("query: {}", line.chars().take(60).collect::<String>()),
                    spans,
                });
            }
        });
        if self.show_plot
            && let Some(time) = result.time_column()
        {
            plot::plot_result_ui(ui, &result, time, origin_ns);
        }
        self.result_table_ui(ui, &result);
        add_track
    }
}
