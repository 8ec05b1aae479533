//! Lake maintenance from the viewer: a reader that may write compacts the catalog and computes
//! missing summaries in the background after opening (opt out with `--no-compact` or
//! `FRAMELINE_NO_COMPACT=1`); a read-only lake just says so.

use super::LakeView;
use super::jobs::{Job, take_finished};
use frameline_engine::CompactOptions;

/// What maintenance did, for the status line.
pub struct MaintenanceDone {
    pub message: String,
    /// Whether anything changed (the fleet page reloads).
    pub changed: bool,
}

impl LakeView {
    /// Starts compaction and the summaries' refresh in the background.
    pub fn start_maintenance(&mut self, runtime: &tokio::runtime::Runtime, ctx: &egui::Context) {
        let engine = self.engine.clone();
        self.maintenance_job = Some(Job::spawn(
            runtime,
            ctx,
            "Compacting the lake",
            async move {
                let catalog = engine.lake().compact(&CompactOptions::default()).await?;
                if catalog.parts_written > 0 {
                    engine.lake().refresh().await?;
                }
                let summaries = engine.refresh_summaries().await?;
                let mut message = format!(
                    "lake maintenance: {} sessions folded into the catalog, {} summarized",
                    catalog.processes_folded, summaries.sessions_summarized
                );
                if let Some(first) = summaries.failed.first() {
                    // Over the memory budget (or failed otherwise): stopped, said, retried later.
                    message.push_str(&format!(
                        "; {} summaries not computed ({first})",
                        summaries.failed.len()
                    ));
                }
                Ok(MaintenanceDone {
                    message,
                    changed: catalog.parts_written + summaries.parts_written > 0,
                })
            },
        ));
    }

    /// Takes maintenance's result (every frame).
    pub(super) fn poll_maintenance(&mut self) {
        if let Some(result) = take_finished(&mut self.maintenance_job) {
            match result {
                Ok(done) => {
                    if done.changed {
                        self.fleet.reload();
                    }
                    self.maintenance = Some(done.message);
                }
                // A lake we may not write to still reads: say why, once, without failing.
                Err(e) => self.maintenance = Some(format!("lake maintenance skipped: {e}")),
            }
        }
    }
}
