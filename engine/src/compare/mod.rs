//! Comparing two sides — two captures, two builds, two time ranges — by frame times, span
//! statistics and call tree. A side is a set of processes of some lake ([`side`]); both are
//! loaded into timeline models, tallied in one pass each ([`tally`]), and compared per span name
//! on what a frame costs: time per frame, self time per frame, calls per frame, and the
//! distribution of each call's duration.
//!
//! **Noise**: a change is flagged only when the Mann–Whitney U test on the per-frame values
//! (every frame of each side, 0 where the name did not run; its variance inflated by the
//! series' lag-1 autocorrelation, as consecutive frames share a machine's slow stretches) gives
//! p < α / m (α = 0.01, m the
//! number of names tested: Bonferroni), its effect is large (Vargha–Delaney A ≥ 0.71 or ≤ 0.29:
//! in at least 71 % of pairs of frames, one side's value is the larger), **and** the mean time
//! per frame moved by at least `min_change` (5 %) of the baseline's — all three **beyond the
//! overall ratio** (the time-weighted median, over names, of the candidate's self time per frame
//! over the baseline's), in the direction measured. A busier machine makes every span a few
//! percent slower, consistently: without the ratio, two runs of one build on a loaded CI runner
//! flag dozens of names. A build that is slower everywhere shows in the frame times (compared as
//! measured) and in the ratio, printed with the table; its spans are flagged only where they
//! changed more than the rest. Last, the **typical call** must have moved the same way (its
//! median duration by `min_change` beyond the ratio, or its calls per frame): preemption
//! stretches a few calls by a lot, moving a name's time per frame and tail but not its median,
//! where a slower function is slower on every call.
//! The same test on the per-frame **self** time (minimum change: 5 % of the baseline's time per
//! frame, since self time is often near 0) flags the span whose own code got slower.
//!
//! **Order**: flagged regressions of self time first, then flagged regressions of time per frame
//! (ancestors of a slower span: a span that got slower makes every ancestor's time per frame grow
//! by as much, so a sort by total time alone would put `frame` first for any regression), then
//! what is within noise, then flagged improvements; within each, by the change of self time per
//! frame beyond the overall ratio (the time-weighted median of every name's candidate/baseline
//! self time: on a busier machine everything takes a few percent longer, which adds up to more
//! on a big span than a real regression on a small one), largest first. Both measures are
//! reported as measured.

pub mod flame;
pub mod side;
pub mod stats;
pub mod tally;
pub mod threshold;

pub use flame::FlameComparison;
pub use side::{ProcessFrames, Selector, Side, SideSpec, load_side};
pub use stats::Percentiles;
pub use tally::Instance;
pub use threshold::{Condition, Violation};

use serde::Serialize;

/// What went wrong setting up a comparison.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error("`{spec}`: {reason}")]
    BadSpec { spec: String, reason: String },
    #[error("`{spec}` selects no process")]
    NoProcesses { spec: String },
    #[error(
        "`{spec}` has no frames named `{frame_set}` (frame markers are what spans are compared per)"
    )]
    NoFrames { spec: String, frame_set: String },
    #[error("`{condition}`: {reason}")]
    BadCondition { condition: String, reason: String },
    #[error(transparent)]
    Engine(#[from] crate::EngineError),
}

impl CompareError {
    /// Whether the developer's input was wrong (the CLI exits 2), rather than the lake.
    pub fn is_bad_input(&self) -> bool {
        !matches!(self, CompareError::Engine(_))
    }
}

/// How to compare.
#[derive(Clone, Debug)]
pub struct CompareOptions {
    /// Only these span names (all if `None`).
    pub spans: Option<Vec<String>>,
    /// Family-wise significance level (divided by the names tested).
    pub alpha: f64,
    /// Smallest effect flagged: |A − 0.5| (0.21: Vargha and Delaney's "large").
    pub min_effect: f64,
    /// Smallest change of the mean that is flagged, as a fraction of the baseline.
    pub min_change: f64,
    /// Marked on the frame-time distributions.
    pub target_frame_ns: i64,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            spans: None,
            alpha: 0.01,
            min_effect: 0.21,
            min_change: 0.05,
            target_frame_ns: 16_666_667,
        }
    }
}

/// Frame times of both sides.
#[derive(Clone, Debug, Serialize)]
pub struct FrameComparison {
    pub baseline: Percentiles,
    pub candidate: Percentiles,
    /// Mann–Whitney on the frame durations.
    pub p_value: f64,
    pub flagged: bool,
    pub target_ns: i64,
    /// Share of frames longer than the target, in percent.
    pub baseline_over_target_pct: f64,
    pub candidate_over_target_pct: f64,
    /// Every frame's duration, sorted (for the overlaid histograms).
    #[serde(skip)]
    pub baseline_ns: Vec<i64>,
    #[serde(skip)]
    pub candidate_ns: Vec<i64>,
}

/// One side of one span name.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SpanSide {
    /// Each call's duration.
    pub durations: Percentiles,
    pub calls_per_frame: f64,
    pub total_per_frame_ns: f64,
    pub self_per_frame_ns: f64,
    /// The longest call (to jump to it).
    #[serde(skip)]
    pub worst: Option<Instance>,
    /// Every call's duration, sorted (for the overlaid histograms).
    #[serde(skip)]
    pub durations_ns: Vec<i64>,
}

/// One span name on both sides.
#[derive(Clone, Debug, Serialize)]
pub struct SpanComparison {
    pub name: String,
    pub baseline: SpanSide,
    pub candidate: SpanSide,
    pub delta_total_per_frame_ns: f64,
    pub delta_self_per_frame_ns: f64,
    /// Change of the time per frame, in percent of the baseline (`None`: absent there).
    pub change_pct: Option<f64>,
    /// Mann–Whitney on the per-frame times (`None`: not tested, see `tally::MAX_PER_FRAME_CELLS`).
    pub p_value: Option<f64>,
    /// The time per frame changed beyond the noise.
    pub flagged: bool,
    /// The same on the per-frame self time.
    pub self_p_value: Option<f64>,
    pub self_flagged: bool,
}

impl SpanComparison {
    /// Where the row sorts: 0 its own code got slower, 1 it got slower (inside a child),
    /// 2 within noise, 3 faster.
    pub fn rank(&self) -> u8 {
        if self.self_flagged && self.delta_self_per_frame_ns > 0.0 {
            0
        } else if self.flagged && self.delta_total_per_frame_ns > 0.0 {
            1
        } else if self.flagged || self.self_flagged {
            3
        } else {
            2
        }
    }
}

/// Everything a comparison shows.
#[derive(Clone, Debug, Serialize)]
pub struct Comparison {
    pub baseline: String,
    pub candidate: String,
    pub baseline_frames: usize,
    pub candidate_frames: usize,
    /// How changes were judged, in words.
    pub method: String,
    pub frames: FrameComparison,
    /// The candidate's self time per frame over the baseline's, for the typical span: the
    /// time-weighted median of the names' ratios (1.1: everything took 10 % longer, as on a
    /// busier machine).
    pub overall_ratio: f64,
    /// Sorted regressions first (see the module), then by the change of self time per frame
    /// beyond `overall_ratio`.
    pub spans: Vec<SpanComparison>,
}

/// Sorts `spans` (see the module). Within a group: what
/// changed beyond the overall ratio first, so a span that really got slower outranks the many
/// that a busier machine made a few percent slower.
fn order(spans: &mut [SpanComparison], ratio: f64) {
    let beyond =
        |s: &SpanComparison| s.candidate.self_per_frame_ns - ratio * s.baseline.self_per_frame_ns;
    spans.sort_by(|a, b| {
        a.rank()
            .cmp(&b.rank())
            .then(beyond(b).total_cmp(&beyond(a)))
            .then(
                b.delta_total_per_frame_ns
                    .total_cmp(&a.delta_total_per_frame_ns),
            )
            .then(a.name.cmp(&b.name))
    });
}

/// The time-weighted median of `candidate / baseline` self time per frame over the names that
/// ran on both sides (1.0 if none did).
fn overall_ratio<'a>(sides: impl Iterator<Item = (&'a SpanSide, &'a SpanSide)>) -> f64 {
    let mut ratios: Vec<(f64, f64)> = sides
        .filter(|(b, c)| b.self_per_frame_ns > 0.0 && c.self_per_frame_ns > 0.0)
        .map(|(b, c)| {
            (
                c.self_per_frame_ns / b.self_per_frame_ns,
                b.self_per_frame_ns + c.self_per_frame_ns,
            )
        })
        .collect();
    ratios.sort_by(|a, b| a.0.total_cmp(&b.0));
    let half = ratios.iter().map(|r| r.1).sum::<f64>() / 2.0;
    let mut seen = 0.0;
    for (ratio, weight) in ratios {
        seen += weight;
        if seen >= half {
            return ratio;
        }
    }
    1.0
}

/// Percent change from `base` to `candidate` (`None` when the base is 0).
pub fn change_pct(base: f64, candidate: f64) -> Option<f64> {
    (base != 0.0).then(|| (candidate - base) / base * 100.0)
}

/// Whether a change of the means is larger than `min_change` of the baseline's.
fn large_enough(base: f64, candidate: f64, min_change: f64) -> bool {
    if base == 0.0 {
        return candidate != 0.0;
    }
    ((candidate - base) / base).abs() >= min_change
}

fn frame_durations(side: &Side) -> Vec<i64> {
    let mut out: Vec<i64> = side
        .frames
        .iter()
        .flat_map(|p| p.frames.iter().map(|f| f.duration_ns()))
        .collect();
    out.sort_unstable();
    out
}

fn over_target_pct(sorted: &[i64], target_ns: i64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let over = sorted.len() - sorted.partition_point(|&d| d <= target_ns);
    over as f64 * 100.0 / sorted.len() as f64
}

fn span_side(t: &mut tally::NameTally, frames: usize) -> SpanSide {
    let per_frame = |v: f64| v / frames.max(1) as f64;
    let mut durations_ns = std::mem::take(&mut t.durations_ns);
    let durations = Percentiles::of(&mut durations_ns);
    SpanSide {
        durations,
        calls_per_frame: per_frame(t.in_frames as f64),
        total_per_frame_ns: per_frame(t.total_ns as f64),
        self_per_frame_ns: per_frame(t.self_ns as f64),
        worst: t.worst,
        durations_ns,
    }
}

/// Compares `candidate` against `baseline`.
pub fn compare(baseline: &Side, candidate: &Side, options: &CompareOptions) -> Comparison {
    let mut names = tally::Names::default();
    let base_sites = names.of_sites(baseline);
    let cand_sites = names.of_sites(candidate);
    let count = names.names.len();
    let combined: Vec<i64> = tally::totals(baseline, &base_sites, count)
        .iter()
        .zip(tally::totals(candidate, &cand_sites, count))
        .map(|(a, b)| a.saturating_add(b))
        .collect();
    let (base_frames, cand_frames) = (baseline.frame_count(), candidate.frame_count());
    let slots = tally::slots(&combined, base_frames.max(cand_frames));
    let (base, cand) = std::thread::scope(|s| {
        let base = s.spawn(|| tally::tally(baseline, &base_sites, &slots));
        let cand = tally::tally(candidate, &cand_sites, &slots);
        (base.join(), cand)
    });
    // A panic on the other thread is this call's panic (computing again would only repeat it).
    let mut base = base.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    let mut cand = cand;

    let wanted = |name: &str| {
        options
            .spans
            .as_ref()
            .is_none_or(|list| list.iter().any(|n| n == name))
    };
    let shown: Vec<usize> = (0..count).filter(|&i| wanted(&names.names[i])).collect();
    let tested = shown.iter().filter(|&&i| slots[i].is_some()).count().max(1);
    let threshold = options.alpha / tested as f64;
    let sides: Vec<(usize, SpanSide, SpanSide)> = shown
        .into_iter()
        .map(|i| {
            let b = span_side(&mut base.names[i], base_frames);
            let c = span_side(&mut cand.names[i], cand_frames);
            (i, b, c)
        })
        .collect();
    let ratio = overall_ratio(sides.iter().map(|(_, b, c)| (b, c)));
    let mut spans: Vec<SpanComparison> = sides
        .into_iter()
        .map(|(i, b, c)| {
            // The candidate's per-frame values as if it ran at the baseline's overall speed.
            let test = |base: &[Vec<i64>], cand: &[Vec<i64>]| {
                slots[i].map(|slot| {
                    let scaled: Vec<i64> = cand[slot]
                        .iter()
                        .map(|&v| (v as f64 / ratio) as i64)
                        .collect();
                    stats::mann_whitney(&base[slot], &scaled)
                })
            };
            let beyond_noise = |t: &Option<stats::RankTest>| {
                t.is_some_and(|t| {
                    t.p_value < threshold && (t.effect - 0.5).abs() >= options.min_effect
                })
            };
            let total_test = test(&base.per_frame_total_ns, &cand.per_frame_total_ns);
            let self_test = test(&base.per_frame_self_ns, &cand.per_frame_self_ns);
            let delta_total = c.total_per_frame_ns - b.total_per_frame_ns;
            let delta_self = c.self_per_frame_ns - b.self_per_frame_ns;
            // A typical call changed (its median, beyond the overall ratio), or how often it
            // is called: preemption on a busy machine stretches a few calls by a lot, which moves
            // the time per frame and its tail but not the median call.
            let typical = |delta: f64| {
                let raw = (c.durations.p50_ns - b.durations.p50_ns) as f64;
                let (bp, cp) = (b.durations.p50_ns as f64 * ratio, c.durations.p50_ns as f64);
                // The raw median must move too: medians of spans near the clock's resolution
                // are quantized, and the ratio alone would move them.
                let median = raw * delta > 0.0
                    && (cp - bp) * delta > 0.0
                    && (cp - bp).abs() >= options.min_change * bp.max(1.0);
                let (bc, cc) = (b.calls_per_frame, c.calls_per_frame);
                let calls = (cc - bc) * delta > 0.0 && (cc - bc).abs() >= options.min_change * bc;
                median || calls
            };
            // Beyond the overall ratio, by enough, the same way as measured, in typical calls.
            let moved = |delta: f64, beyond: f64| {
                beyond.abs() >= options.min_change * ratio * b.total_per_frame_ns
                    && beyond != 0.0
                    && delta * beyond > 0.0
                    && typical(delta)
            };
            let flagged = beyond_noise(&total_test)
                && moved(
                    delta_total,
                    c.total_per_frame_ns - ratio * b.total_per_frame_ns,
                );
            let self_flagged = beyond_noise(&self_test)
                && moved(
                    delta_self,
                    c.self_per_frame_ns - ratio * b.self_per_frame_ns,
                );
            SpanComparison {
                name: names.names[i].clone(),
                delta_total_per_frame_ns: delta_total,
                delta_self_per_frame_ns: delta_self,
                change_pct: change_pct(b.total_per_frame_ns, c.total_per_frame_ns),
                p_value: total_test.map(|t| t.p_value),
                flagged,
                self_p_value: self_test.map(|t| t.p_value),
                self_flagged,
                baseline: b,
                candidate: c,
            }
        })
        .collect();
    order(&mut spans, ratio);

    let (mut bf, mut cf) = (frame_durations(baseline), frame_durations(candidate));
    let (bp, cp) = (Percentiles::of(&mut bf), Percentiles::of(&mut cf));
    let frame_test = stats::mann_whitney(&bf, &cf);
    let frame_p = frame_test.p_value;
    let frames = FrameComparison {
        baseline: bp,
        candidate: cp,
        p_value: frame_p,
        flagged: frame_p < options.alpha
            && (frame_test.effect - 0.5).abs() >= options.min_effect
            && large_enough(bp.mean_ns, cp.mean_ns, options.min_change),
        target_ns: options.target_frame_ns,
        baseline_over_target_pct: over_target_pct(&bf, options.target_frame_ns),
        candidate_over_target_pct: over_target_pct(&cf, options.target_frame_ns),
        baseline_ns: bf,
        candidate_ns: cf,
    };
    Comparison {
        baseline: baseline.label.clone(),
        candidate: candidate.label.clone(),
        baseline_frames: base_frames,
        candidate_frames: cand_frames,
        method: format!(
            "flagged: Mann-Whitney U on per-frame time (and self time) beyond the overall ratio, p < {} / {tested} names (Bonferroni), effect A >= {:.2}, and a change >= {:.0} % of the baseline's time per frame",
            options.alpha,
            0.5 + options.min_effect,
            options.min_change * 100.0
        ),
        frames,
        overall_ratio: ratio,
        spans,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::synthetic_model;
    use crate::reads::FrameTime;
    use std::sync::Arc;

    const FRAME_NS: i64 = 1_000_000;

    /// A synthetic side of 200 frames; spans named `shrunk` last 2/3 of their length.
    fn side(shrunk: Option<&str>) -> Side {
        let mut model = synthetic_model(2, 200, 8, FRAME_NS);
        if let Some(name) = shrunk {
            let site = model.sites.iter().position(|s| s.name == name).unwrap() as u32;
            for track in &mut model.tracks {
                for lane in &mut track.lanes {
                    for i in 0..lane.len() {
                        if lane.name[i] == site {
                            let d = lane.end_ns[i] - lane.begin_ns[i];
                            lane.end_ns[i] = lane.begin_ns[i] + d * 2 / 3;
                        }
                    }
                }
            }
        }
        let frames = (0..200)
            .map(|f| FrameTime {
                begin_ns: f * FRAME_NS,
                end_ns: (f + 1) * FRAME_NS,
            })
            .collect();
        Side {
            spec: "synthetic".parse().unwrap(),
            label: "synthetic".into(),
            process_ids: vec!["synthetic".into()],
            range_ns: None,
            frames: vec![ProcessFrames {
                process_id: "synthetic".into(),
                frames,
            }],
            model: Arc::new(model),
        }
    }

    #[test]
    fn a_side_against_itself_flags_nothing() {
        let s = side(None);
        let c = compare(&s, &s, &CompareOptions::default());
        assert!(!c.frames.flagged);
        assert!(
            c.spans
                .iter()
                .all(|r| !r.flagged && r.delta_total_per_frame_ns == 0.0)
        );
        // Per frame: two threads × one `frame` span; each `work.i` once per thread and frame.
        let frame = c.spans.iter().find(|r| r.name == "frame").unwrap();
        assert_eq!(frame.baseline.calls_per_frame, 2.0);
        assert_eq!(
            frame.baseline.total_per_frame_ns,
            2.0 * (FRAME_NS - 1) as f64
        );
        let work = c.spans.iter().find(|r| r.name == "work.3").unwrap();
        assert_eq!(work.baseline.calls_per_frame, 2.0);
        assert_eq!(work.baseline.durations.count, 400);
        // Self time adds up: every span's self time per frame sums to the roots' time per frame.
        let self_sum: f64 = c.spans.iter().map(|r| r.baseline.self_per_frame_ns).sum();
        assert!((self_sum - frame.baseline.total_per_frame_ns).abs() < 1e-6);
    }

    #[test]
    fn the_slower_span_comes_first_and_is_flagged() {
        let (base, cand) = (side(Some("work.3")), side(None));
        let c = compare(&base, &cand, &CompareOptions::default());
        assert_eq!(c.spans[0].name, "work.3");
        assert!(c.spans[0].flagged && c.spans[0].change_pct.unwrap() > 40.0);
        assert!(c.spans[0].delta_self_per_frame_ns > 0.0);
        // The parent's length is fixed here: its own code lost what the child gained.
        let frame = c.spans.iter().find(|r| r.name == "frame").unwrap();
        assert_eq!(frame.delta_total_per_frame_ns, 0.0);
        assert!((frame.delta_self_per_frame_ns + c.spans[0].delta_total_per_frame_ns).abs() < 1e-6);
        for r in c
            .spans
            .iter()
            .filter(|r| r.name != "work.3" && r.name != "frame")
        {
            assert!(!r.flagged, "{} flagged", r.name);
        }
        // Swapped: the same span, now an improvement, at the bottom.
        let swapped = compare(&cand, &base, &CompareOptions::default());
        assert_eq!(swapped.spans.last().unwrap().name, "work.3");
        // The longest call of each side is found, on a track of that side.
        let worst = c.spans[0].candidate.worst.unwrap();
        assert_eq!(
            worst.end_ns - worst.begin_ns,
            c.spans[0].candidate.durations.max_ns
        );
        // Only the names asked for.
        let only = CompareOptions {
            spans: Some(vec!["work.3".into(), "inner".into()]),
            ..Default::default()
        };
        let c = compare(&base, &cand, &only);
        assert_eq!(c.spans.len(), 2);
        // The flame diff: the same paths, the changed one grew per frame.
        let flame = FlameComparison::build(&base, &cand);
        let node = flame.candidate.find_path(&["frame", "work.3"]).unwrap();
        assert!(flame.delta_per_frame_ns(node) > 0.0);
        let other = flame.candidate.find_path(&["frame", "work.4"]).unwrap();
        assert_eq!(flame.delta_per_frame_ns(other), 0.0);
    }

    fn row(name: &str, base_self: f64, cand_self: f64) -> SpanComparison {
        let side = |self_ns| SpanSide {
            self_per_frame_ns: self_ns,
            ..Default::default()
        };
        SpanComparison {
            name: name.into(),
            baseline: side(base_self),
            candidate: side(cand_self),
            delta_total_per_frame_ns: cand_self - base_self,
            delta_self_per_frame_ns: cand_self - base_self,
            change_pct: None,
            p_value: None,
            flagged: false,
            self_p_value: None,
            self_flagged: false,
        }
    }

    #[test]
    fn the_overall_ratio_is_the_typical_span_s() {
        // Two big spans 10 % slower (a busier machine), a small one 3 times slower.
        let rows = [
            row("big", 10_000.0, 11_000.0),
            row("bigger", 20_000.0, 22_000.0),
            row("small", 500.0, 1_500.0),
            row("new", 0.0, 700.0),
        ];
        let ratio_of = |rows: &[SpanComparison]| {
            overall_ratio(rows.iter().map(|r| (&r.baseline, &r.candidate)))
        };
        assert!((ratio_of(&rows) - 1.1).abs() < 1e-9);
        assert_eq!(ratio_of(&[]), 1.0);
        // Beyond that ratio, the small span changed most: 1 500 − 1.1 × 500 = 950 against
        // 22 000 − 1.1 × 20 000 = 0, though its raw change (1 000) is half the bigger one's.
        let beyond =
            |r: &SpanComparison| r.candidate.self_per_frame_ns - 1.1 * r.baseline.self_per_frame_ns;
        assert!(beyond(&rows[2]) > beyond(&rows[1]));
    }

    #[test]
    fn times_from_a_hostile_lake_do_not_panic() {
        let mut s = side(None);
        let model = Arc::make_mut(&mut s.model);
        let lane = &mut model.tracks[0].lanes[1];
        lane.begin_ns[0] = i64::MIN;
        lane.end_ns[0] = i64::MAX;
        lane.begin_ns[1] = 5;
        lane.end_ns[1] = -5;
        s.frames[0].frames.push(FrameTime {
            begin_ns: i64::MAX - 1,
            end_ns: i64::MIN,
        });
        let c = compare(&s, &side(None), &CompareOptions::default());
        assert!(!c.spans.is_empty());
        assert!(!FlameComparison::build(&s, &s).candidate.nodes.is_empty());
    }

    #[test]
    fn a_condition_trips_only_on_a_flagged_change() {
        let (base, cand) = (side(Some("work.3")), side(None));
        let c = compare(&base, &cand, &CompareOptions::default());
        let total: Condition = "work.3.total > +20%".parse().unwrap();
        assert_eq!(total.check(&c).len(), 1);
        let lenient: Condition = "work.3.total > +80%".parse().unwrap();
        assert!(lenient.check(&c).is_empty());
        // Frame times did not move: no frame condition trips however tight.
        let p99: Condition = "p99 > +0%".parse().unwrap();
        assert!(p99.check(&c).is_empty());
        let any: Condition = "spans.self > +10%".parse().unwrap();
        assert_eq!(any.check(&c)[0].condition, "spans.self > +10%");
        let same = compare(&cand, &cand, &CompareOptions::default());
        assert!(any.check(&same).is_empty());
    }
}
