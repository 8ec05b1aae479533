//! The SQL editor: a multi-line editor with keyword highlighting, Ctrl+Enter runs the query in
//! the background (Cancel stops it), results in a virtualized sortable table, a plot for results
//! with a time column and numeric columns, "Add to timeline" for results with begin/end (or
//! time and duration) columns, errors inline, a query history, and saved views (save, open, run, rename,
//! delete) through the engine, which keeps them in the lake.

use super::jobs::{Job, take_finished};
use egui::text::LayoutJob;
use egui::{Color32, FontId, TextFormat};
use egui_extras::{Column, TableBuilder};
use frameline_engine::Engine;
use frameline_engine::datafusion::arrow::array::{Array, AsArray, RecordBatch};
use frameline_engine::datafusion::arrow::compute::cast;
use frameline_engine::datafusion::arrow::datatypes::{DataType, Float64Type, TimeUnit};
use frameline_engine::datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use std::sync::Arc;

/// Rows kept from one result (the rest are counted, not shown).
pub const MAX_ROWS: usize = 200_000;

/// A query result, ready to show: every cell as text, numeric columns also as numbers.
#[derive(Clone, Debug, Default)]
pub struct QueryResult {
    pub sql: String,
    pub columns: Vec<String>,
    /// `cells[column][row]`.
    pub cells: Vec<Vec<String>>,
    /// Numbers of numeric and timestamp columns (timestamps in ns since the epoch).
    pub numbers: Vec<Option<Vec<f64>>>,
    pub is_timestamp: Vec<bool>,
    pub rows: usize,
    pub total_rows: usize,
    pub elapsed_ms: f64,
}

fn numbers_of(array: &dyn Array) -> Option<Vec<f64>> {
    let dt = array.data_type();
    let as_f64 = match dt {
        DataType::Timestamp(_, tz) => {
            let ns = cast(
                array,
                &DataType::Timestamp(TimeUnit::Nanosecond, tz.clone()),
            )
            .ok()?;
            let ints = cast(&ns, &DataType::Int64).ok()?;
            cast(&ints, &DataType::Float64).ok()?
        }
        d if d.is_numeric() => cast(array, &DataType::Float64).ok()?,
        _ => return None,
    };
    let f = as_f64.as_primitive::<Float64Type>();
    Some(
        (0..f.len())
            .map(|i| if f.is_null(i) { f64::NAN } else { f.value(i) })
            .collect(),
    )
}

impl QueryResult {
    pub fn from_batches(sql: &str, batches: &[RecordBatch], elapsed_ms: f64) -> QueryResult {
        let Some(first) = batches.first() else {
            return QueryResult {
                sql: sql.to_owned(),
                elapsed_ms,
                ..Default::default()
            };
        };
        let schema = first.schema();
        let n = schema.fields().len();
        let mut out = QueryResult {
            sql: sql.to_owned(),
            columns: schema.fields().iter().map(|f| f.name().clone()).collect(),
            cells: vec![Vec::new(); n],
            numbers: schema
                .fields()
                .iter()
                .map(|f| {
                    (f.data_type().is_numeric() || matches!(f.data_type(), DataType::Timestamp(..)))
                        .then(Vec::new)
                })
                .collect(),
            is_timestamp: schema
                .fields()
                .iter()
                .map(|f| matches!(f.data_type(), DataType::Timestamp(..)))
                .collect(),
            elapsed_ms,
            ..Default::default()
        };
        let options = FormatOptions::default().with_null("NULL");
        for batch in batches {
            out.total_rows += batch.num_rows();
            let take = batch.num_rows().min(MAX_ROWS - out.rows);
            if take == 0 {
                continue;
            }
            for (c, column) in batch.columns().iter().enumerate().take(n) {
                let column = column.slice(0, take);
                match ArrayFormatter::try_new(column.as_ref(), &options) {
                    Ok(f) => out.cells[c].extend((0..take).map(|i| f.value(i).to_string())),
                    Err(e) => out.cells[c].extend((0..take).map(|_| format!("({e})"))),
                }
                if let Some(numbers) = &mut out.numbers[c] {
                    match numbers_of(column.as_ref()) {
                        Some(v) => numbers.extend(v),
                        None => numbers.extend(std::iter::repeat_n(f64::NAN, take)),
                    }
                }
            }
            out.rows += take;
        }
        out
    }

    fn column(&self, names: &[&str]) -> Option<usize> {
        names
            .iter()
            .find_map(|n| self.columns.iter().position(|c| c.eq_ignore_ascii_case(n)))
            .filter(|&i| self.numbers[i].is_some())
    }

    /// The time column for plotting: a timestamp, or a column named like one.
    pub fn time_column(&self) -> Option<usize> {
        self.is_timestamp
            .iter()
            .position(|&t| t)
            .or_else(|| self.column(&["time_ns", "time", "begin_ns", "t"]))
    }

    /// Numeric columns other than the time column.
    pub fn value_columns(&self) -> Vec<usize> {
        let time = self.time_column();
        (0..self.columns.len())
            .filter(|&c| Some(c) != time && self.numbers[c].is_some() && !self.is_timestamp[c])
            .collect()
    }

    /// Spans in the result: begin/end columns, or time + duration (all in ns), with a name.
    pub fn spans(&self) -> Option<Vec<(i64, i64, String)>> {
        let begin = self.column(&["begin_time", "begin_ns", "begin"]);
        let end = self.column(&["end_time", "end_ns", "end"]);
        let (begin, end, from_duration) = match (begin, end) {
            (Some(b), Some(e)) => (b, e, false),
            _ => {
                let time = self.column(&["time", "time_ns", "begin_time", "begin_ns"])?;
                let duration = self.column(&["duration_ns", "duration"])?;
                (time, duration, true)
            }
        };
        let name = self
            .columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case("name"));
        let (b, e) = (self.numbers[begin].as_ref()?, self.numbers[end].as_ref()?);
        Some(
            (0..self.rows)
                .filter(|&r| b[r].is_finite() && e[r].is_finite())
                .map(|r| {
                    let begin_ns = b[r] as i64;
                    let end_ns = if from_duration {
                        begin_ns + e[r] as i64
                    } else {
                        e[r] as i64
                    };
                    let label = name.map_or_else(|| "row".to_owned(), |c| self.cells[c][r].clone());
                    (begin_ns, end_ns.max(begin_ns), label)
                })
                .collect(),
        )
    }
}

/// Spans a query result adds to the timeline, as their own track.
#[derive(Clone, Debug)]
pub struct QueryTrack {
    pub label: String,
    pub spans: Vec<(i64, i64, String)>,
}

const KEYWORDS: &[&str] = &[
    "select",
    "from",
    "where",
    "and",
    "or",
    "not",
    "group",
    "by",
    "order",
    "limit",
    "as",
    "on",
    "join",
    "left",
    "right",
    "inner",
    "outer",
    "full",
    "having",
    "distinct",
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "case",
    "when",
    "then",
    "else",
    "end",
    "in",
    "is",
    "null",
    "like",
    "between",
    "create",
    "view",
    "drop",
    "with",
    "union",
    "all",
    "desc",
    "asc",
    "cast",
    "over",
    "partition",
    "interval",
    "exists",
    "true",
    "false",
    "approx_percentile_cont",
    "date_trunc",
];

/// SQL keywords, strings, numbers and comments coloured, for the editor's layouter.
pub fn highlight_sql(text: &str, font: FontId) -> LayoutJob {
    let mut job = LayoutJob::default();
    let plain = Color32::from_gray(220);
    let keyword = Color32::from_rgb(120, 170, 255);
    let string = Color32::from_rgb(210, 170, 110);
    let number = Color32::from_rgb(170, 220, 140);
    let comment = Color32::from_gray(120);
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < text.len() {
        let c = bytes[i];
        let start = i;
        let color = if c == b'-' && bytes.get(i + 1) == Some(&b'-') {
            while i < text.len() && bytes[i] != b'\n' {
                i += 1;
            }
            comment
        } else if c == b'\'' || c == b'"' {
            i += 1;
            while i < text.len() && bytes[i] != c {
                i += 1;
            }
            i = (i + 1).min(text.len());
            string
        } else if c.is_ascii_digit() {
            while i < text.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'.') {
                i += 1;
            }
            number
        } else if c.is_ascii_alphabetic() || c == b'_' {
            while i < text.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            if KEYWORDS.contains(&text[start..i].to_ascii_lowercase().as_str()) {
                keyword
            } else {
                plain
            }
        } else {
            // One character (maybe multi-byte) of punctuation or space.
            i += text[i..].chars().next().map_or(1, char::len_utf8);
            plain
        };
        job.append(
            &text[start..i],
            0.0,
            TextFormat {
                font_id: font.clone(),
                color,
                ..Default::default()
            },
        );
    }
    job
}

/// The query of a `CREATE VIEW name AS query` statement.
pub fn view_body(sql: &str) -> Option<&str> {
    let lower = sql.to_ascii_lowercase();
    let after_view = lower.find("view")? + 4;
    let bytes = lower.as_bytes();
    (after_view..lower.len().saturating_sub(2)).find_map(|i| {
        let before = bytes[i - 1];
        let after = bytes[i + 2];
        (lower[i..].starts_with("as")
            && before.is_ascii_whitespace()
            && (after.is_ascii_whitespace() || after == b'('))
            .then(|| sql[i + 2..].trim())
    })
}

/// Whether `name` can be a view's name without quoting.
pub fn valid_view_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
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

    fn view_op(
        &mut self,
        runtime: &tokio::runtime::Runtime,
        ctx: &egui::Context,
        engine: &Arc<Engine>,
        label: &str,
        statements: Vec<String>,
        done: String,
    ) {
        let engine = engine.clone();
        self.view_message = None;
        self.view_job = Some(Job::spawn(runtime, ctx, label, async move {
            for sql in &statements {
                engine.execute(sql).await?;
            }
            Ok(done)
        }));
    }

    /// Takes finished jobs (every frame, whichever tab is shown).
    pub fn poll(&mut self) {
        if let Some(result) = take_finished(&mut self.job) {
            match result {
                Ok(result) => {
                    self.order = (0..result.rows).collect();
                    self.sort = None;
                    self.result = Some(Arc::new(result));
                }
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
                if valid_view_name(&name) {
                    let sql = format!("CREATE OR REPLACE VIEW {name} AS {}", self.text.trim());
                    self.view_op(
                        runtime,
                        &ctx,
                        engine,
                        "Saving the view",
                        vec![sql],
                        format!("saved view {name}"),
                    );
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
            ui.colored_label(Color32::from_rgb(240, 120, 100), error);
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
            plot_result_ui(ui, &result, time, origin_ns);
        }
        self.table_ui(ui, &result);
        add_track
    }

    fn table_ui(&mut self, ui: &mut egui::Ui, result: &QueryResult) {
        if result.columns.is_empty() {
            ui.label("(no columns)");
            return;
        }
        let mut sort_clicked = None;
        ui.style_mut().interaction.selectable_labels = false;
        egui::ScrollArea::horizontal()
            .id_salt("sql_result_scroll")
            .show(ui, |ui| {
                TableBuilder::new(ui)
                    .id_salt("sql_result")
                    .striped(true)
                    .columns(
                        Column::auto().at_least(60.0).at_most(400.0).clip(true),
                        result.columns.len(),
                    )
                    .header(20.0, |mut header| {
                        for (c, name) in result.columns.iter().enumerate() {
                            header.col(|ui| {
                                let arrow = match self.sort {
                                    Some((s, true)) if s == c => " ^",
                                    Some((s, false)) if s == c => " v",
                                    _ => "",
                                };
                                if ui.button(format!("{name}{arrow}")).clicked() {
                                    sort_clicked = Some(c);
                                }
                            });
                        }
                    })
                    .body(|body| {
                        body.rows(18.0, self.order.len(), |mut row| {
                            let r = self.order[row.index()];
                            for column in &result.cells {
                                row.col(|ui| {
                                    ui.label(column.get(r).map_or("", String::as_str));
                                });
                            }
                        });
                    });
            });
        if let Some(c) = sort_clicked {
            let ascending = !matches!(self.sort, Some((s, true)) if s == c);
            self.sort = Some((c, ascending));
            let mut order: Vec<usize> = (0..result.rows).collect();
            match &result.numbers[c] {
                Some(n) => order.sort_by(|&a, &b| n[a].total_cmp(&n[b])),
                None => order.sort_by(|&a, &b| result.cells[c][a].cmp(&result.cells[c][b])),
            }
            if !ascending {
                order.reverse();
            }
            self.order = order;
        }
    }

    fn views_ui(
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
                            self.view_op(
                                runtime,
                                &ctx,
                                engine,
                                "Deleting the view",
                                vec![format!("DROP VIEW {}", view.name)],
                                format!("deleted view {}", view.name),
                            );
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
                        match view_body(&view.sql) {
                            Some(body) if valid_view_name(&new) && new != old => {
                                // A rename is a new view with the same query, then the old one dropped.
                                self.view_op(
                                    runtime,
                                    &ctx,
                                    engine,
                                    "Renaming the view",
                                    vec![
                                        format!("CREATE VIEW {new} AS {body}"),
                                        format!("DROP VIEW {old}"),
                                    ],
                                    format!("renamed {old} to {new}"),
                                );
                            }
                            _ => {
                                self.view_message = Some(format!("cannot rename {old} to {new:?}"))
                            }
                        }
                    }
                    ui.separator();
                }
            });
    }
}

fn plot_result_ui(ui: &mut egui::Ui, result: &QueryResult, time: usize, origin_ns: i64) {
    let Some(t) = result.numbers[time].as_ref() else {
        return;
    };
    // Timestamps (ns since the epoch) are shown in seconds from the ruler's origin.
    let is_ns = result.is_timestamp[time] || result.columns[time].ends_with("_ns");
    let x = |v: f64| {
        if is_ns {
            (v - origin_ns as f64) / 1e9
        } else {
            v
        }
    };
    egui_plot::Plot::new("sql_plot")
        .height(180.0)
        .legend(egui_plot::Legend::default())
        .x_axis_label(if is_ns {
            "s".to_owned()
        } else {
            result.columns[time].clone()
        })
        .show(ui, |plot| {
            for c in result.value_columns() {
                let Some(values) = result.numbers[c].as_ref() else {
                    continue;
                };
                let points: Vec<[f64; 2]> = t
                    .iter()
                    .zip(values)
                    .filter(|(a, b)| a.is_finite() && b.is_finite())
                    .map(|(&a, &b)| [x(a), b])
                    .collect();
                plot.line(egui_plot::Line::new(
                    result.columns[c].clone(),
                    egui_plot::PlotPoints::from(points),
                ));
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_bodies_and_names() {
        assert_eq!(
            view_body("CREATE VIEW slow AS SELECT * FROM frames"),
            Some("SELECT * FROM frames")
        );
        assert_eq!(
            view_body("create or replace view x as\n(select 1)"),
            Some("(select 1)")
        );
        assert_eq!(view_body("CREATE VIEW vast AS SELECT 1"), Some("SELECT 1"));
        assert_eq!(view_body("SELECT 1"), None);
        assert!(valid_view_name("slow_frames2"));
        assert!(!valid_view_name("2x") && !valid_view_name("a b") && !valid_view_name(""));
    }

    #[test]
    fn highlighting_keeps_every_character() {
        let sql = "SELECT name, 'it''s' -- note\nFROM t WHERE x > 1.5 AND é";
        let job = highlight_sql(sql, FontId::monospace(12.0));
        assert_eq!(job.text, sql);
        let keyword_color = Color32::from_rgb(120, 170, 255);
        assert_eq!(job.sections[0].format.color, keyword_color, "SELECT");
        assert_ne!(job.sections[1].format.color, keyword_color, "the space");
        assert_ne!(job.sections[2].format.color, keyword_color, "name");
    }
}
