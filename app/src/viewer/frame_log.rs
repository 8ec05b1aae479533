//! `FRAMELINE_FRAME_LOG=1`: the slowest UI frame while a query runs (BENCHMARKS.md).

use super::ViewerApp;

impl ViewerApp {
    /// With `FRAMELINE_FRAME_LOG` set: track the slowest frame while a query runs, and log it
    /// when the query ends (BENCHMARKS.md: the UI keeps drawing while a long query runs).
    pub(super) fn log_frame_time(&mut self, ctx: &egui::Context, frame: &eframe::Frame) {
        let Some(slowest) = &mut self.frame_log else {
            return;
        };
        let running = self.lake.as_ref().is_some_and(|v| v.sql.running());
        if running {
            // Draw continuously meanwhile: every frame is measured, not one per 100 ms.
            ctx.request_repaint();
        }
        let cpu_ms = frame.info().cpu_usage.map(|s| s * 1e3);
        match (running, *slowest) {
            (true, current) => {
                *slowest = Some(current.unwrap_or(0.0).max(cpu_ms.unwrap_or(0.0)));
            }
            (false, Some(ms)) => {
                eprintln!("[frameline] slowest frame {ms:.1} ms while a job ran");
                *slowest = None;
            }
            (false, None) => {}
        }
    }
}
