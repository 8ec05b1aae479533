//! What an analysis panel looks at: the selected range, the visible range or everything, on
//! the picked threads.

use super::lake_view::LoadedModel;
use super::time_format::format_duration;
use super::timeline::{self, TimelineState};
use frameline_engine::Engine;
use frameline_engine::analysis::Selection;
use frameline_engine::overview::TimelineIndex;
use frameline_engine::timeline::TimelineModel;
use std::collections::HashSet;
use std::sync::Arc;

/// What an analysis panel looks at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Scope {
    /// The timeline's selected range (Ctrl+drag), or what it shows if nothing is selected.
    #[default]
    Selection,
    /// What the timeline shows.
    Visible,
    /// Everything loaded.
    Whole,
}

/// What an analysis panel works on: the loaded model, the timeline (range, picked threads,
/// highlight) and the runtime its background work runs on.
pub struct AnalysisContext<'a> {
    pub runtime: &'a tokio::runtime::Runtime,
    pub model: &'a LoadedModel,
    pub timeline: &'a mut TimelineState,
    /// A session streamed by range: what panels that can ask the engine use for a selection the
    /// loaded detail does not cover.
    pub streamed: Option<Streamed>,
}

/// The streamed spans of the selection, for panels that read blocks themselves.
#[derive(Clone)]
pub struct Streamed {
    pub engine: Arc<Engine>,
    pub index: Arc<TimelineIndex>,
    /// The range `model` holds every span of (`None`: the whole selection, or nothing loaded).
    pub detail_range: Option<(i64, i64)>,
    /// Whether `model` holds every span of the selection.
    pub whole_in_detail: bool,
}

impl Streamed {
    /// Whether the loaded detail holds every span that begins in `[begin_ns, end_ns)`.
    pub fn covers(&self, begin_ns: i64, end_ns: i64) -> bool {
        self.whole_in_detail
            || self
                .detail_range
                .is_some_and(|(b, e)| b <= begin_ns && end_ns <= e)
    }

    /// The streams of the picked tracks (`None`: every thread).
    pub fn streams_of(&self, tracks: &[usize]) -> Option<HashSet<String>> {
        (!tracks.is_empty()).then(|| {
            tracks
                .iter()
                .filter_map(|&t| self.index.tracks.get(t))
                .map(|t| t.stream_id.clone())
                .collect()
        })
    }
}

impl AnalysisContext<'_> {
    /// The selection of `scope` in this context (the whole selection's extent from the index
    /// when the session is streamed).
    pub fn selection(&self, scope: Scope) -> Selection {
        let mut selection = selection_of(scope, &self.model.model, self.timeline);
        if scope == Scope::Whole
            && let Some(streamed) = self.streamed.as_ref().filter(|s| !s.whole_in_detail)
        {
            selection.begin_ns = streamed.index.begin_ns;
            selection.end_ns = streamed.index.end_ns.saturating_add(1);
        }
        selection
    }
}

/// The selection a panel analyses: the scope's time range on the picked threads (all if none).
pub fn selection_of(
    scope: Scope,
    model: &TimelineModel,
    timeline: &timeline::TimelineState,
) -> Selection {
    let tracks = timeline.picked_tracks.iter().copied().collect();
    let visible = (timeline.t0.floor() as i64, timeline.t1.ceil() as i64);
    let (begin_ns, end_ns) = match scope {
        Scope::Selection => timeline.range.unwrap_or(visible),
        Scope::Visible => visible,
        Scope::Whole => {
            let all = Selection::all(model);
            (all.begin_ns, all.end_ns)
        }
    };
    Selection {
        begin_ns,
        end_ns,
        tracks,
    }
}

/// The start of an analysis panel's header: its title, the scope picker and a text filter
/// labelled `filter_label`.
pub fn panel_header_ui(
    ui: &mut egui::Ui,
    title: &str,
    scope: &mut Scope,
    timeline: &timeline::TimelineState,
    (filter_label, filter): (&str, &mut String),
) {
    ui.strong(title);
    scope_ui(ui, scope, timeline);
    let label = ui.label(filter_label);
    ui.add(egui::TextEdit::singleline(filter).desired_width(120.0))
        .labelled_by(label.id);
}

/// The scope picker of the analysis panels.
pub fn scope_ui(ui: &mut egui::Ui, scope: &mut Scope, timeline: &timeline::TimelineState) {
    let selection = match timeline.range {
        Some((a, b)) => format!("Selection ({})", format_duration(b - a)),
        None => "Selection (none: Ctrl+drag)".to_owned(),
    };
    ui.selectable_value(scope, Scope::Selection, selection);
    ui.selectable_value(scope, Scope::Visible, "Visible");
    ui.selectable_value(scope, Scope::Whole, "Whole process");
    if !timeline.picked_tracks.is_empty() {
        ui.label(format!("{} threads picked", timeline.picked_tracks.len()));
    }
}
