//! The S3 connection dialog. Credentials typed here live only in memory for this session.

use super::ViewerApp;
use frameline_engine::S3Options;

#[derive(Clone, Debug, Default)]
pub(super) struct S3Dialog {
    url: String,
    region: String,
    endpoint: String,
    access_key_id: String,
    secret_access_key: String,
}

impl S3Dialog {
    /// Region and endpoint from the environment, the rest empty.
    pub(super) fn from_env() -> S3Dialog {
        S3Dialog {
            region: std::env::var("AWS_REGION").unwrap_or_default(),
            endpoint: std::env::var("AWS_ENDPOINT_URL").unwrap_or_default(),
            ..Default::default()
        }
    }
}

impl ViewerApp {
    pub(super) fn s3_dialog_ui(&mut self, ctx: &egui::Context) {
        let Some(dialog) = &mut self.s3_dialog else {
            return;
        };
        let mut open = None;
        let mut close = false;
        egui::Window::new("Connect to an S3 lake")
            .collapsible(false)
            .show(ctx, |ui| {
                egui::Grid::new("s3_grid").num_columns(2).show(ui, |ui| {
                    for (label, value, hint, password) in [
                        ("Lake", &mut dialog.url, "s3://bucket/prefix", false),
                        ("Region", &mut dialog.region, "us-east-1", false),
                        (
                            "Endpoint",
                            &mut dialog.endpoint,
                            "optional, e.g. http://localhost:9000",
                            false,
                        ),
                        (
                            "Access key",
                            &mut dialog.access_key_id,
                            "from the environment/profile if empty",
                            false,
                        ),
                        (
                            "Secret key",
                            &mut dialog.secret_access_key,
                            "kept in memory for this session only",
                            true,
                        ),
                    ] {
                        let l = ui.label(label);
                        ui.add(
                            egui::TextEdit::singleline(value)
                                .hint_text(hint)
                                .password(password),
                        )
                        .labelled_by(l.id);
                        ui.end_row();
                    }
                });
                ui.horizontal(|ui| {
                    if ui.button("Connect").clicked() {
                        let some = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_owned());
                        open = Some((
                            dialog.url.trim().to_owned(),
                            S3Options {
                                region: some(&dialog.region),
                                endpoint: some(&dialog.endpoint),
                                access_key_id: some(&dialog.access_key_id),
                                secret_access_key: some(&dialog.secret_access_key),
                                ..Default::default()
                            },
                        ));
                    }
                    if ui.button("Cancel").clicked() {
                        close = true;
                    }
                });
            });
        if let Some((url, options)) = open {
            self.s3_dialog = None;
            self.open(ctx, url, options);
        } else if close {
            self.s3_dialog = None;
        }
    }
}
