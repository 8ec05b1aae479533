//! Screenshot scripting for the README: `FRAMELINE_SCREENSHOT=file.png` with
//! `FRAMELINE_SCREENSHOT_VIEW=start|drilldown|logs|stats|flame|sql|metrics|fleet|compare|compare-flame`
//! (the compare views: `#build=a` against `#build=b` of the lake opened).

use super::{Tab, ViewerApp, flame};
use frameline_engine::analysis::Selection;
use std::path::PathBuf;
use std::sync::Arc;

/// Once the view is ready, save the window's pixels and quit. Used by scripts/screenshots.sh.
pub(super) struct ScreenshotPlan {
    path: PathBuf,
    view: String,
    requested: bool,
    ready_frames: u32,
    done: Arc<std::sync::atomic::AtomicBool>,
}

impl ScreenshotPlan {
    /// The plan `FRAMELINE_SCREENSHOT` asks for, if any.
    pub(super) fn from_env() -> Option<ScreenshotPlan> {
        std::env::var_os("FRAMELINE_SCREENSHOT").map(|path| ScreenshotPlan {
            path: PathBuf::from(path),
            view: std::env::var("FRAMELINE_SCREENSHOT_VIEW").unwrap_or_else(|_| "drilldown".into()),
            requested: false,
            ready_frames: 0,
            done: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        })
    }
}

impl ViewerApp {
    pub(super) fn screenshot_step(&mut self, ctx: &egui::Context) {
        let Some(plan) = &mut self.screenshot else {
            return;
        };
        if plan.done.load(std::sync::atomic::Ordering::Relaxed) {
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            return;
        }
        let ready = match plan.view.as_str() {
            "start" => true,
            "compare" | "compare-flame" if plan.ready_frames > 0 => self
                .lake
                .as_ref()
                .is_some_and(|v| v.compare.result.is_some() && !v.busy()),
            "fleet" => {
                self.lake.as_ref().is_some_and(|v| {
                    v.page == super::Page::Fleet && !v.fleet.sessions().is_empty() && !v.busy()
                }) && self.open_job.is_none()
            }
            _ => {
                // A session loaded whole: its model; a longer one: its overview and frames (the
                // first ready frame asks for the worst frame's detail, the next wait for it).
                self.lake.as_ref().is_some_and(|v| {
                    !v.busy()
                        && (v.model.is_some()
                            || (v.stream.index.is_some()
                                && !v.stream.whole_in_detail()
                                && !v.frames.is_empty()))
                }) && self.open_job.is_none()
            }
        };
        if !ready || plan.requested {
            ctx.request_repaint_after(std::time::Duration::from_millis(50));
            return;
        }
        plan.ready_frames += 1;
        if plan.ready_frames == 1
            && let Some(view) = &mut self.lake
        {
            if plan.view == "fleet" {
                // The sessions grouped by build, the worst P99 first.
                view.fleet.group_by = "build".into();
                view.fleet.sort = super::fleet::SortBy::P99;
                view.fleet.ascending = false;
            }
            // The drill-down: the worst frame on the timeline; the log pane: its warnings; the
            // panels: the worst frame selected, analysed, compared with the median frame.
            let worst = view.worst_frame();
            if let Some(frame) = worst {
                view.show_frame(frame);
                if plan.view != "drilldown" && plan.view != "logs" {
                    view.timeline.range = Some((frame.begin_ns, frame.end_ns));
                }
            }
            match plan.view.as_str() {
                "compare" | "compare-flame" => {
                    view.page = super::Page::Compare;
                    view.compare.baseline = "#build=a".into();
                    view.compare.candidate = "#build=b".into();
                    view.compare.spans.selected = Some("physics.solve".into());
                    if plan.view == "compare-flame" {
                        view.compare.tab = super::compare::CompareTab::FlameGraph;
                    }
                    let engine = view.engine.clone();
                    view.compare.start(&self.runtime, ctx, &engine);
                }
                "logs" => view.log_pane.min_level = 2,
                "stats" => {
                    view.tab = Tab::Statistics;
                    view.stats.selected_name = Some("streaming.load_chunk".into());
                    view.timeline.highlight_name = Some("streaming.load_chunk".into());
                }
                "flame" => {
                    view.tab = Tab::FlameGraph;
                    view.flame.diff = true;
                    if let Some(f) = flame::median_frame(&view.frames) {
                        view.flame.baseline = Some(Selection {
                            begin_ns: f.begin_ns,
                            end_ns: f.end_ns,
                            tracks: Vec::new(),
                        });
                    }
                }
                "sql" => {
                    view.tab = Tab::Sql;
                    // FRAMELINE_SQL: the query to run (BENCHMARKS.md times the UI meanwhile).
                    if let Ok(sql) = std::env::var("FRAMELINE_SQL") {
                        view.sql.text = sql;
                    }
                    let sql = view.sql.text.clone();
                    view.sql.run(&self.runtime, ctx, &view.engine, sql);
                }
                "metrics" => {
                    view.tab = Tab::Metrics;
                    for name in ["frame_time", "memory.used"] {
                        view.metrics.plot(&self.runtime, ctx, &view.engine, name);
                    }
                }
                _ => {}
            }
        }
        if plan.ready_frames < 5 {
            ctx.request_repaint();
            return;
        }
        plan.requested = true;
        let path = plan.path.clone();
        let done = plan.done.clone();
        let waker = ctx.clone();
        ctx.request_screenshot(move |image| {
            let size = image.size;
            let pixels: Vec<u8> = image.pixels.iter().flat_map(|c| c.to_array()).collect();
            match image::RgbaImage::from_raw(size[0] as u32, size[1] as u32, pixels) {
                Some(buffer) => {
                    if let Err(e) = buffer.save(&path) {
                        eprintln!("error: saving {}: {e}", path.display());
                    }
                }
                None => eprintln!("error: the screenshot has an unexpected size"),
            }
            done.store(true, std::sync::atomic::Ordering::Relaxed);
            waker.request_repaint();
        });
        ctx.request_repaint();
    }
}
