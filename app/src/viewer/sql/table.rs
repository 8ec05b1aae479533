//! The result table: virtualized, every column sortable (numbers as numbers).

use super::SqlPanel;
use super::result::QueryResult;
use egui_extras::{Column, TableBuilder};

impl SqlPanel {
    /// The table of `result`, sortable by a click on a column's header.
    pub fn result_table_ui(&mut self, ui: &mut egui::Ui, result: &QueryResult) {
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
}
