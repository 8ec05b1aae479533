//! The call trees of two sides, matched by call path: widths from the candidate, each node's time
//! per frame on both sides, and the change. Per frame, so sides of different lengths compare.

use super::side::Side;
use crate::analysis::{FlameGraph, Selection};

/// Both sides' flame graphs and how their nodes match.
#[derive(Clone, Debug, Default)]
pub struct FlameComparison {
    pub baseline: FlameGraph,
    pub candidate: FlameGraph,
    /// Per candidate node: the baseline node with the same call path.
    pub matched: Vec<Option<u32>>,
    pub baseline_frames: usize,
    pub candidate_frames: usize,
}

fn selection(side: &Side) -> Selection {
    let all = Selection::all(&side.model);
    match side.range_ns {
        Some((begin_ns, end_ns)) => Selection {
            begin_ns,
            end_ns,
            tracks: Vec::new(),
        },
        None => all,
    }
}

impl FlameComparison {
    pub fn build(baseline: &Side, candidate: &Side) -> FlameComparison {
        let (base, cand) = std::thread::scope(|s| {
            let base = s.spawn(|| FlameGraph::build(&baseline.model, &selection(baseline)));
            let cand = FlameGraph::build(&candidate.model, &selection(candidate));
            (base.join(), cand)
        });
        let base = base.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        FlameComparison {
            matched: cand.matched_in(&base),
            baseline: base,
            candidate: cand,
            baseline_frames: baseline.frame_count(),
            candidate_frames: candidate.frame_count(),
        }
    }

    /// A candidate node's time per frame.
    pub fn candidate_per_frame_ns(&self, node: u32) -> f64 {
        let total = self
            .candidate
            .nodes
            .get(node as usize)
            .map_or(0, |n| n.total_ns);
        total as f64 / self.candidate_frames.max(1) as f64
    }

    /// The time per frame of the baseline node at the same call path (0 if none).
    pub fn baseline_per_frame_ns(&self, node: u32) -> f64 {
        let total = self
            .matched
            .get(node as usize)
            .copied()
            .flatten()
            .and_then(|b| self.baseline.nodes.get(b as usize))
            .map_or(0, |n| n.total_ns);
        total as f64 / self.baseline_frames.max(1) as f64
    }

    /// Candidate minus baseline, per frame.
    pub fn delta_per_frame_ns(&self, node: u32) -> f64 {
        self.candidate_per_frame_ns(node) - self.baseline_per_frame_ns(node)
    }
}
