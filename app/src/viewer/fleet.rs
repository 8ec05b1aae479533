//! The fleet page: a lake's sessions in a sortable, filterable, virtualized table (start,
//! duration, exe, computer, user, properties, frames, P50/P95/P99, spikes, blocks lost), and,
//! grouped by a property, each group's frame-time distribution side by side and its P99 over
//! days. Clicking a session opens it (its frame-time plot, then Worst frame puts that frame on
//! the timeline). Figures come from the lake's summaries (`Engine::fleet`); grouping merges the
//! sessions' histograms (`frameline_engine::fleet::distribution_by`).

use super::jobs::{Job, take_finished};
use super::theme;
use super::time_format::format_duration;
use egui_extras::{Column, TableBuilder};
use frameline_engine::Engine;
use frameline_engine::fleet::{Fleet, GroupDistribution, SessionRow, distribution_by};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

/// A lake with more sessions than this opens on the fleet page.
pub const FLEET_THRESHOLD: usize = 8;
const ROW_HEIGHT: f32 = 20.0;
const DAY_NS: i64 = 86_400 * 1_000_000_000;

/// What the table is sorted by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SortBy {
    Start,
    Duration,
    Exe,
    Computer,
    User,
    Property(String),
    Frames,
    P50,
    P95,
    P99,
    Spikes,
    Lost,
}

/// The time range of sessions shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Range {
    Day,
    Week,
    Month,
    All,
}

impl Range {
    fn days(self) -> Option<i64> {
        match self {
            Range::Day => Some(1),
            Range::Week => Some(7),
            Range::Month => Some(30),
            Range::All => None,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Range::Day => "Last 24 h",
            Range::Week => "Last 7 days",
            Range::Month => "Last 30 days",
            Range::All => "All",
        }
    }
}

pub struct FleetPage {
    job: Option<Job<Fleet>>,
    fleet: Option<Arc<Fleet>>,
    pub range: Range,
    loaded_range: Option<Range>,
    pub text_filter: String,
    /// Property → the value sessions must have (absent: any).
    pub property_filters: BTreeMap<String, String>,
    /// Group sessions by this property (empty: no grouping).
    pub group_by: String,
    pub sort: SortBy,
    pub ascending: bool,
    /// Sessions shown, filtered and sorted (indices into the fleet's sessions).
    pub visible: Vec<usize>,
    pub groups: Vec<GroupDistribution>,
    /// The filters, sort and grouping `visible` and `groups` were computed for.
    computed_for: Option<String>,
    pub error: Option<String>,
    /// Sessions are those started after this (the range's start, fixed when loading).
    now_ns: i64,
}

impl Default for FleetPage {
    fn default() -> Self {
        Self {
            job: None,
            fleet: None,
            range: Range::Week,
            loaded_range: None,
            text_filter: String::new(),
            property_filters: BTreeMap::new(),
            group_by: String::new(),
            sort: SortBy::Start,
            ascending: false,
            visible: Vec::new(),
            groups: Vec::new(),
            computed_for: None,
            error: None,
            now_ns: 0,
        }
    }
}

fn format_start(ns: i64) -> String {
    let (y, m, d, h) = frameline_instrument::lake::civil_from_unix_ns(ns);
    let minute = ns.div_euclid(60_000_000_000).rem_euclid(60);
    format!("{y:04}-{m:02}-{d:02} {h:02}:{minute:02}")
}

fn ms(ns: Option<i64>) -> String {
    ns.map_or_else(String::new, |ns| format!("{:.1}", ns as f64 / 1e6))
}

impl FleetPage {
    pub fn busy(&self) -> bool {
        self.job.is_some()
    }

    pub fn sessions(&self) -> &[SessionRow] {
        self.fleet.as_ref().map_or(&[], |f| f.sessions.as_slice())
    }

    /// Loads the sessions again (the lake's summaries changed).
    pub fn reload(&mut self) {
        self.loaded_range = None;
    }

    /// Takes the sessions once loaded (every frame).
    pub fn poll(&mut self) {
        if let Some(result) = take_finished(&mut self.job) {
            match result {
                Ok(fleet) => {
                    self.fleet = Some(Arc::new(fleet));
                    self.computed_for = None;
                    self.error = None;
                }
                Err(e) => self.error = Some(e),
            }
        }
    }

    /// Starts loading the range's sessions if they are not loaded.
    pub fn ensure_loaded(
        &mut self,
        runtime: &tokio::runtime::Runtime,
        ctx: &egui::Context,
        engine: &Arc<Engine>,
    ) {
        if self.loaded_range == Some(self.range) || self.job.is_some() {
            return;
        }
        self.loaded_range = Some(self.range);
        self.now_ns = frameline_engine::generate::now_unix_ns();
        let since = self.range.days().map(|d| self.now_ns - d * DAY_NS);
        let engine = engine.clone();
        self.job = Some(Job::spawn(runtime, ctx, "Loading sessions", async move {
            Ok(engine.fleet(since).await?)
        }));
    }

    /// Recomputes the visible rows and the groups when filters, sort or grouping changed.
    fn refresh(&mut self) {
        let key = format!(
            "{:?}|{:?}|{}|{:?}|{}|{}",
            self.sort,
            self.ascending,
            self.text_filter,
            self.property_filters,
            self.group_by,
            self.fleet.as_ref().map_or(0, |f| Arc::as_ptr(f) as usize)
        );
        if self.computed_for.as_ref() == Some(&key) {
            return;
        }
        self.computed_for = Some(key);
        let Some(fleet) = self.fleet.clone() else {
            self.visible.clear();
            self.groups.clear();
            return;
        };
        let text = self.text_filter.to_lowercase();
        let mut visible: Vec<usize> = fleet
            .sessions
            .iter()
            .enumerate()
            .filter(|(_, s)| {
                self.property_filters
                    .iter()
                    .all(|(k, v)| s.properties.get(k) == Some(v))
            })
            .filter(|(_, s)| {
                text.is_empty() || {
                    let mut hay =
                        format!("{} {} {} {}", s.exe, s.computer, s.username, s.process_id);
                    for v in s.properties.values() {
                        hay.push(' ');
                        hay.push_str(v);
                    }
                    hay.to_lowercase().contains(&text)
                }
            })
            .map(|(i, _)| i)
            .collect();
        let sessions = &fleet.sessions;
        let duration = |s: &SessionRow| s.end_ns.map(|e| e - s.start_ns);
        match &self.sort {
            SortBy::Start => visible.sort_by_key(|&i| sessions[i].start_ns),
            SortBy::Duration => visible.sort_by_key(|&i| duration(&sessions[i])),
            SortBy::Exe => visible.sort_by(|&a, &b| sessions[a].exe.cmp(&sessions[b].exe)),
            SortBy::Computer => {
                visible.sort_by(|&a, &b| sessions[a].computer.cmp(&sessions[b].computer))
            }
            SortBy::User => {
                visible.sort_by(|&a, &b| sessions[a].username.cmp(&sessions[b].username))
            }
            SortBy::Property(key) => visible.sort_by(|&a, &b| {
                sessions[a]
                    .properties
                    .get(key)
                    .cmp(&sessions[b].properties.get(key))
            }),
            SortBy::Frames => visible.sort_by_key(|&i| sessions[i].frames),
            SortBy::P50 => visible.sort_by_key(|&i| sessions[i].p50_ns),
            SortBy::P95 => visible.sort_by_key(|&i| sessions[i].p95_ns),
            SortBy::P99 => visible.sort_by_key(|&i| sessions[i].p99_ns),
            SortBy::Spikes => visible.sort_by_key(|&i| sessions[i].spikes),
            SortBy::Lost => visible.sort_by_key(|&i| sessions[i].dropped_blocks),
        }
        if !self.ascending {
            visible.reverse();
        }
        self.groups = if self.group_by.is_empty() {
            Vec::new()
        } else {
            let chosen: HashSet<usize> = visible.iter().copied().collect();
            distribution_by(sessions, &fleet.histograms, &chosen, &self.group_by)
        };
        self.visible = visible;
    }

    fn property_keys(&self) -> Vec<String> {
        let keys: BTreeSet<&String> = self
            .sessions()
            .iter()
            .flat_map(|s| s.properties.keys())
            .collect();
        keys.into_iter().cloned().collect()
    }

    fn property_values(&self, key: &str) -> Vec<String> {
        let values: BTreeSet<&String> = self
            .sessions()
            .iter()
            .filter_map(|s| s.properties.get(key))
            .collect();
        values.into_iter().cloned().collect()
    }

    /// The page; returns the session clicked.
    pub fn fleet_ui(
        &mut self,
        ui: &mut egui::Ui,
        runtime: &tokio::runtime::Runtime,
        engine: &Arc<Engine>,
    ) -> Option<String> {
        self.ensure_loaded(runtime, ui.ctx(), engine);
        self.refresh();
        let keys = self.property_keys();
        ui.horizontal_wrapped(|ui| {
            ui.heading("Sessions");
            ui.label(format!(
                "{} of {}",
                self.visible.len(),
                self.sessions().len()
            ));
            if self.job.is_some() {
                ui.spinner();
            }
            ui.separator();
            for range in [Range::Day, Range::Week, Range::Month, Range::All] {
                ui.selectable_value(&mut self.range, range, range.label());
            }
            ui.separator();
            let filter_label = ui.label("Filter");
            ui.add(
                egui::TextEdit::singleline(&mut self.text_filter)
                    .hint_text("exe, computer, user, property")
                    .desired_width(180.0),
            )
            .labelled_by(filter_label.id);
            for key in &keys {
                let values = self.property_values(key);
                let current = self.property_filters.get(key).cloned();
                egui::ComboBox::from_label(key.as_str())
                    .selected_text(current.clone().unwrap_or_else(|| "any".to_owned()))
                    .show_ui(ui, |ui| {
                        if ui.selectable_label(current.is_none(), "any").clicked() {
                            self.property_filters.remove(key);
                        }
                        for value in values {
                            let on = current.as_deref() == Some(value.as_str());
                            if ui.selectable_label(on, &value).clicked() {
                                self.property_filters.insert(key.clone(), value);
                            }
                        }
                    });
            }
            ui.separator();
            egui::ComboBox::from_label("Group by")
                .selected_text(if self.group_by.is_empty() {
                    "nothing".to_owned()
                } else {
                    self.group_by.clone()
                })
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut self.group_by, String::new(), "nothing");
                    for key in &keys {
                        ui.selectable_value(&mut self.group_by, key.clone(), key.as_str());
                    }
                });
        });
        if let Some(error) = &self.error {
            ui.colored_label(theme::ERROR_TEXT, error);
        }
        self.refresh();
        if !self.groups.is_empty() {
            self.groups_ui(ui);
        }
        ui.separator();
        self.table_ui(ui, &keys)
    }

    /// Each group's P50/P95/P99 side by side, and its P99 per day.
    fn groups_ui(&self, ui: &mut egui::Ui) {
        use egui_plot::{Bar, BarChart, Legend, Line, Plot, PlotPoints};
        let height = 170.0;
        ui.columns(2, |columns| {
            let bars: Vec<BarChart> = [("P50", 0usize), ("P95", 1), ("P99", 2)]
                .into_iter()
                .map(|(name, k)| {
                    let bars = self
                        .groups
                        .iter()
                        .enumerate()
                        .map(|(g, group)| {
                            let value = [group.p50_ns, group.p95_ns, group.p99_ns][k] as f64 / 1e6;
                            Bar::new(g as f64 * 4.0 + k as f64, value)
                                .name(format!("{} {name}", group.value))
                                .width(0.9)
                        })
                        .collect();
                    BarChart::new(name, bars).color(theme::percentile_color(k))
                })
                .collect();
            Plot::new("fleet_groups")
                .height(height)
                .legend(Legend::default())
                .show_x(false)
                .y_axis_label("frame time (ms)")
                .allow_scroll(false)
                .show(&mut columns[0], |plot| {
                    for chart in bars {
                        plot.bar_chart(chart);
                    }
                    // Each group's name under its three bars (at 4g, 4g + 1, 4g + 2).
                    for (g, group) in self.groups.iter().enumerate() {
                        let at = egui_plot::PlotPoint::new(g as f64 * 4.0 + 1.0, -1.5);
                        // No name: not a legend entry.
                        plot.text(egui_plot::Text::new(
                            "",
                            at,
                            format!("{} = {}", self.group_by, group.value),
                        ));
                    }
                });
            Plot::new("fleet_days")
                .height(height)
                .legend(Legend::default())
                .y_axis_label("P99 (ms)")
                .x_axis_label("days ago")
                .allow_scroll(false)
                .show(&mut columns[1], |plot| {
                    for group in &self.groups {
                        let points: PlotPoints = group
                            .daily_p99
                            .iter()
                            .map(|(day, p99)| {
                                [
                                    (*day - self.now_ns) as f64 / DAY_NS as f64,
                                    *p99 as f64 / 1e6,
                                ]
                            })
                            .collect();
                        plot.line(Line::new(group.value.clone(), points));
                    }
                });
        });
        ui.horizontal_wrapped(|ui| {
            for group in &self.groups {
                ui.label(format!(
                    "{} = {}: {} sessions, {} frames, P50 {} ms, P95 {} ms, P99 {} ms",
                    self.group_by,
                    group.value,
                    group.sessions,
                    group.frames,
                    ms(Some(group.p50_ns)),
                    ms(Some(group.p95_ns)),
                    ms(Some(group.p99_ns))
                ));
            }
        });
    }

    fn sort_header_ui(&mut self, ui: &mut egui::Ui, label: &str, by: SortBy) {
        let arrow = if self.sort == by {
            if self.ascending { " ^" } else { " v" }
        } else {
            ""
        };
        if ui.button(format!("{label}{arrow}")).clicked() {
            if self.sort == by {
                self.ascending = !self.ascending;
            } else {
                self.sort = by;
                self.ascending = true;
            }
        }
    }

    fn table_ui(&mut self, ui: &mut egui::Ui, keys: &[String]) -> Option<String> {
        let Some(fleet) = self.fleet.clone() else {
            if self.job.is_none() {
                ui.label("No sessions.");
            }
            return None;
        };
        let mut clicked = None;
        let mut table = TableBuilder::new(ui)
            .id_salt("fleet_table")
            .striped(true)
            .resizable(true)
            .sense(egui::Sense::click())
            .column(Column::auto().at_least(124.0))
            .column(Column::auto().at_least(120.0))
            .columns(Column::auto().at_least(60.0), 4 + keys.len());
        table = table.columns(Column::auto().at_least(54.0), 6);
        let headers: Vec<(String, SortBy)> = [
            ("Start", SortBy::Start),
            ("Duration", SortBy::Duration),
            ("Exe", SortBy::Exe),
            ("Computer", SortBy::Computer),
            ("User", SortBy::User),
        ]
        .into_iter()
        .map(|(l, s)| (l.to_owned(), s))
        .chain(
            keys.iter()
                .map(|k| (k.clone(), SortBy::Property(k.clone()))),
        )
        .chain(
            [
                ("Frames", SortBy::Frames),
                ("P50 ms", SortBy::P50),
                ("P95 ms", SortBy::P95),
                ("P99 ms", SortBy::P99),
                ("Spikes", SortBy::Spikes),
                ("Lost", SortBy::Lost),
            ]
            .into_iter()
            .map(|(l, s)| (l.to_owned(), s)),
        )
        .collect();
        table
            .header(ROW_HEIGHT + 4.0, |mut header| {
                header.col(|ui| {
                    ui.strong("Session");
                });
                for (label, by) in &headers {
                    header.col(|ui| self.sort_header_ui(ui, label, by.clone()));
                }
            })
            .body(|body| {
                body.rows(ROW_HEIGHT, self.visible.len(), |mut row| {
                    let Some(s) = self.visible.get(row.index()).map(|&i| &fleet.sessions[i]) else {
                        return;
                    };
                    let short = &s.process_id[..8.min(s.process_id.len())];
                    row.col(|ui| {
                        if ui.button(format!("Open {short}")).clicked() {
                            clicked = Some(s.process_id.clone());
                        }
                    });
                    let text = |row: &mut egui_extras::TableRow<'_, '_>, value: String| {
                        row.col(|ui| {
                            ui.label(value);
                        });
                    };
                    text(&mut row, format_start(s.start_ns));
                    text(
                        &mut row,
                        s.end_ns.map_or_else(
                            || "killed?".to_owned(),
                            |e| format_duration(e - s.start_ns),
                        ),
                    );
                    text(&mut row, s.exe.clone());
                    text(&mut row, s.computer.clone());
                    text(&mut row, s.username.clone());
                    for key in keys {
                        text(&mut row, s.properties.get(key).cloned().unwrap_or_default());
                    }
                    text(
                        &mut row,
                        s.frames.map_or_else(String::new, |f| f.to_string()),
                    );
                    text(&mut row, ms(s.p50_ns));
                    text(&mut row, ms(s.p95_ns));
                    text(&mut row, ms(s.p99_ns));
                    text(
                        &mut row,
                        s.spikes.map_or_else(String::new, |f| f.to_string()),
                    );
                    text(
                        &mut row,
                        if s.dropped_blocks > 0 {
                            s.dropped_blocks.to_string()
                        } else {
                            String::new()
                        },
                    );
                    if row.response().double_clicked() {
                        clicked = Some(s.process_id.clone());
                    }
                });
            });
        clicked
    }
}
