//! What an analysis panel looks at: the selected range, the visible range or everything, on
//! the picked threads.

use super::time_format::format_duration;
use super::timeline;
use frameline_engine::analysis::Selection;
use frameline_engine::timeline::TimelineModel;

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
