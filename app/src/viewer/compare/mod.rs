//! The Compare view: a baseline and a candidate (a process, several, a property filter, a time
//! range, or another lake — the same `LAKE#selector@range` forms as `frameline compare`), named
//! at the top with a Swap; then their frame times overlaid, span statistics side by side with
//! the regressions first, and the flame-graph diff. From any span row, a jump to its longest
//! instance on either side's timeline. Computed by `frameline_engine::compare` in the background.

mod cdf;
mod flame;
mod frames;
mod spans;

use super::jobs::{Job, take_finished};
use super::theme;
use frameline_engine::compare::{
    self, CompareOptions, Comparison, FlameComparison, Instance, SideSpec,
};
use frameline_engine::{Engine, Progress};
use std::sync::Arc;

/// Where the developer asked to go: a span of one side, on its lake's timeline.
#[derive(Clone, Debug, PartialEq)]
pub struct CompareJump {
    /// `None`: the lake open now.
    pub lake: Option<String>,
    pub process_id: String,
    pub begin_ns: i64,
    pub end_ns: i64,
}

/// One side, as far as the view needs it after the comparison.
#[derive(Clone, Debug)]
pub struct SideInfo {
    /// `None`: the lake open now.
    pub lake: Option<String>,
    /// Per track of the side's model: its process.
    pub track_processes: Vec<String>,
}

impl SideInfo {
    /// The jump to `instance` of this side.
    pub fn jump(&self, instance: &Instance) -> Option<CompareJump> {
        Some(CompareJump {
            lake: self.lake.clone(),
            process_id: self.track_processes.get(instance.track)?.clone(),
            begin_ns: instance.begin_ns,
            end_ns: instance.end_ns,
        })
    }
}

/// A finished comparison.
pub struct CompareResult {
    pub comparison: Comparison,
    pub flame: FlameComparison,
    pub baseline: SideInfo,
    pub candidate: SideInfo,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CompareTab {
    FrameTimes,
    #[default]
    Spans,
    FlameGraph,
}

/// The Compare page's state.
#[derive(Default)]
pub struct ComparePage {
    /// The sides as typed (`#selector@range`, or `LAKE#…` for another lake).
    pub baseline: String,
    pub candidate: String,
    job: Option<Job<CompareResult>>,
    progress: [Arc<Progress>; 2],
    pub result: Option<Arc<CompareResult>>,
    pub error: Option<String>,
    pub tab: CompareTab,
    pub spans: spans::SpanTable,
    pub flame: flame::FlameDiff,
}

/// Loads one side: from `engine` when it names no lake (or this one), otherwise from the lake it
/// names, opened for the occasion.
async fn load(
    engine: Arc<Engine>,
    spec: SideSpec,
    progress: Arc<Progress>,
) -> anyhow::Result<(compare::Side, SideInfo)> {
    let here = engine.lake().location().to_string();
    let other = spec.lake.clone().filter(|l| *l != here);
    let engine = match &other {
        None => engine,
        Some(lake) => Arc::new(Engine::open(lake).await?),
    };
    let side = compare::load_side(&engine, &spec, "frame", &progress).await?;
    if side.frame_count() == 0 {
        anyhow::bail!("`{spec}` has no frames (frame! markers): nothing to compare per frame");
    }
    let info = SideInfo {
        lake: other,
        track_processes: side
            .model
            .tracks
            .iter()
            .map(|t| t.process_id.clone())
            .collect(),
    };
    Ok((side, info))
}

impl ComparePage {
    pub fn busy(&self) -> bool {
        self.job.is_some()
    }

    pub fn poll(&mut self) {
        if let Some(result) = take_finished(&mut self.job) {
            match result {
                Ok(result) => {
                    // A name selected before keeps its row if the new result has it.
                    if let Some(name) = &self.spans.selected
                        && !result.comparison.spans.iter().any(|s| &s.name == name)
                    {
                        self.spans.selected = None;
                    }
                    self.result = Some(Arc::new(result));
                    self.flame.zoom = 0;
                }
                Err(e) => self.error = Some(e),
            }
        }
    }

    /// Fills both sides the first time the page is shown: the two latest processes, or the two
    /// halves of the only one.
    fn suggest_sides(&mut self, engine: &Engine) {
        if !self.baseline.is_empty() || !self.candidate.is_empty() {
            return;
        }
        let processes = engine.lake().processes();
        match processes.as_slice() {
            [] => {}
            [only] => {
                let seconds = only
                    .end_unix_ns
                    .map_or(10.0, |end| (end - only.start_unix_ns) as f64 / 1e9)
                    .max(0.002);
                let half = (seconds / 2.0 * 1000.0).round() / 1000.0;
                self.baseline = format!("#{}@0s..{half}s", only.process_id);
                self.candidate = format!("#{}@{half}s..{:.3}s", only.process_id, seconds);
            }
            [.., before, last] => {
                self.baseline = format!("#{}", before.process_id);
                self.candidate = format!("#{}", last.process_id);
            }
        }
    }

    /// Starts comparing the two sides as typed.
    pub fn start(
        &mut self,
        runtime: &tokio::runtime::Runtime,
        ctx: &egui::Context,
        engine: &Arc<Engine>,
    ) {
        self.error = None;
        let parse = |text: &str, which: &str| -> Result<SideSpec, String> {
            text.parse::<SideSpec>()
                .map_err(|e| format!("{which}: {e}"))
        };
        let (baseline, candidate) = match (
            parse(&self.baseline, "baseline"),
            parse(&self.candidate, "candidate"),
        ) {
            (Ok(b), Ok(c)) => (b, c),
            (Err(e), _) | (_, Err(e)) => {
                self.error = Some(e);
                return;
            }
        };
        self.progress = Default::default();
        let [pb, pc] = self.progress.clone();
        let engine = engine.clone();
        self.job = Some(Job::spawn(runtime, ctx, "Comparing", async move {
            let (base, cand) = tokio::join!(
                load(engine.clone(), baseline, pb),
                load(engine, candidate, pc)
            );
            let ((base, base_info), (cand, cand_info)) = (base?, cand?);
            let work = move || {
                let comparison = compare::compare(&base, &cand, &CompareOptions::default());
                let flame = FlameComparison::build(&base, &cand);
                CompareResult {
                    comparison,
                    flame,
                    baseline: base_info,
                    candidate: cand_info,
                }
            };
            Ok(tokio::task::spawn_blocking(work).await?)
        }));
    }

    /// The page. `timeline_side`: the spec of what the timeline shows now (its processes and
    /// visible range), for the "Timeline" buttons.
    pub fn compare_ui(
        &mut self,
        ui: &mut egui::Ui,
        runtime: &tokio::runtime::Runtime,
        engine: &Arc<Engine>,
        timeline_side: Option<String>,
    ) -> Option<CompareJump> {
        self.poll();
        self.suggest_sides(engine);
        let ctx = ui.ctx().clone();
        let mut go = false;
        for (label, text, color) in [
            ("Baseline ", &mut self.baseline, theme::COMPARE_BASELINE),
            ("Candidate", &mut self.candidate, theme::COMPARE_CANDIDATE),
        ] {
            ui.horizontal(|ui| {
                ui.colored_label(color, egui::RichText::new(label).monospace());
                let edit = ui.add_sized(
                    [460.0, 20.0],
                    egui::TextEdit::singleline(text)
                        .hint_text("#process_id, #build=a, #id@2s..5s, or LAKE#…")
                        .id_salt(label),
                );
                if edit.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
                    go = true;
                }
                if let Some(spec) = &timeline_side
                    && ui
                        .button("Timeline")
                        .on_hover_text("The processes and range the timeline shows")
                        .clicked()
                {
                    *text = spec.clone();
                }
                ui.menu_button("Process", |ui| {
                    egui::ScrollArea::vertical()
                        .max_height(300.0)
                        .show(ui, |ui| {
                            for p in engine.lake().processes().iter().rev() {
                                let properties: Vec<String> = p
                                    .properties
                                    .iter()
                                    .map(|(k, v)| format!("{k}={v}"))
                                    .collect();
                                let entry = format!(
                                    "{} on {} — {}",
                                    p.exe,
                                    p.computer,
                                    properties.join(" ")
                                );
                                if ui.button(entry).clicked() {
                                    *text = format!("#{}", p.process_id);
                                    ui.close();
                                }
                            }
                        });
                });
            });
        }
        ui.horizontal(|ui| {
            if ui.button("Swap").clicked() {
                std::mem::swap(&mut self.baseline, &mut self.candidate);
                go = self.result.is_some();
            }
            if ui
                .button("Compare sides")
                .on_hover_text("Load both sides and compare them (Enter in a side's field)")
                .clicked()
            {
                go = true;
            }
            if let Some(job) = &self.job {
                ui.spinner();
                use std::sync::atomic::Ordering::Relaxed;
                let done: u64 = self.progress.iter().map(|p| p.done.load(Relaxed)).sum();
                let total: u64 = self.progress.iter().map(|p| p.total.load(Relaxed)).sum();
                ui.label(format!("{}: {done} of {total} blocks decoded", job.label));
                if ui.button("Cancel").clicked() {
                    job.cancel();
                }
            }
        });
        if go && self.job.is_none() {
            self.start(runtime, &ctx, engine);
        }
        if let Some(error) = &self.error {
            ui.colored_label(theme::ERROR_TEXT, error);
        }
        ui.separator();
        let Some(result) = self.result.clone() else {
            if self.job.is_none() {
                ui.label("Name two sides and press Compare sides.");
            }
            return None;
        };
        let c = &result.comparison;
        ui.horizontal(|ui| {
            ui.colored_label(
                theme::COMPARE_BASELINE,
                format!("{} — {} frames", c.baseline, c.baseline_frames),
            );
            ui.label("vs");
            ui.colored_label(
                theme::COMPARE_CANDIDATE,
                format!("{} — {} frames", c.candidate, c.candidate_frames),
            );
            ui.label(format!(
                "— the candidate's spans took {:.2} x the baseline's time overall",
                c.overall_ratio
            ))
            .on_hover_text(
                "Time-weighted median of every span's self time per frame, candidate over baseline: \
                 a busier machine makes everything a few percent slower. Rows are ordered by what \
                 changed beyond it.",
            );
        });
        ui.horizontal(|ui| {
            for (tab, label) in [
                (CompareTab::FrameTimes, "Frame times"),
                (CompareTab::Spans, "Spans"),
                (CompareTab::FlameGraph, "Flame graph diff"),
            ] {
                ui.selectable_value(&mut self.tab, tab, label);
            }
            ui.weak(&c.method);
        });
        ui.separator();
        match self.tab {
            CompareTab::FrameTimes => {
                frames::frame_times_ui(ui, c);
                None
            }
            CompareTab::Spans => self.spans.spans_ui(ui, &result),
            CompareTab::FlameGraph => {
                self.flame.flame_diff_ui(ui, &result.flame);
                None
            }
        }
    }
}
