//! `--fail-if` conditions: what a nightly pipeline checks on a comparison.
//!
//! ```text
//! p99 > +10%                  frame time P99 (also p50, p90, max, mean)
//! frames.max > +5ms           the same, spelled out; limits in %, ms, us or ns
//! spans.self > +10%           any span whose self time per frame grew that much
//! physics.solve.p99 > +5%     one span: p50/p90/p99/max/mean of a call, or per frame:
//!                             total, self, count
//! ```
//! A condition trips only on a **flagged** change (see the module above): a P99 that moved 12 %
//! on noise does not fail a build.

use super::{CompareError, Comparison, Percentiles, SpanComparison, SpanSide, change_pct};

/// What a condition looks at.
#[derive(Clone, Debug, PartialEq)]
pub enum Subject {
    Frames,
    AnySpan,
    Span(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stat {
    Mean,
    P50,
    P90,
    P99,
    Max,
    /// Per frame (spans only).
    Total,
    SelfTime,
    Count,
}

/// How much worse is too much.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Limit {
    Percent(f64),
    Nanos(f64),
}

/// One `--fail-if` condition.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    pub text: String,
    pub subject: Subject,
    pub stat: Stat,
    pub limit: Limit,
}

/// A condition that tripped.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Violation {
    pub condition: String,
    /// What moved, e.g. `frames p99 16.9 ms -> 19.2 ms (+13.6 %)`.
    pub what: String,
}

fn stat_of(text: &str) -> Option<Stat> {
    Some(match text {
        "mean" | "avg" => Stat::Mean,
        "p50" | "median" => Stat::P50,
        "p90" => Stat::P90,
        "p99" => Stat::P99,
        "max" => Stat::Max,
        "total" => Stat::Total,
        "self" => Stat::SelfTime,
        "count" | "calls" => Stat::Count,
        _ => return None,
    })
}

fn parse_limit(text: &str) -> Option<Limit> {
    let t = text.trim();
    let t = t.strip_prefix('+').unwrap_or(t).trim();
    let (number, limit): (&str, fn(f64) -> Limit) = if let Some(n) = t.strip_suffix('%') {
        (n, Limit::Percent)
    } else if let Some(n) = t.strip_suffix("ms") {
        (n, |v| Limit::Nanos(v * 1e6))
    } else if let Some(n) = t.strip_suffix("us") {
        (n, |v| Limit::Nanos(v * 1e3))
    } else if let Some(n) = t.strip_suffix("ns") {
        (n, Limit::Nanos)
    } else {
        return None;
    };
    let v: f64 = number.trim().parse().ok()?;
    (v.is_finite() && v >= 0.0).then(|| limit(v))
}

impl std::str::FromStr for Condition {
    type Err = CompareError;

    fn from_str(text: &str) -> Result<Condition, CompareError> {
        let bad = |reason: &str| CompareError::BadCondition {
            condition: text.to_owned(),
            reason: reason.to_owned(),
        };
        let (left, right) = text
            .split_once('>')
            .ok_or_else(|| bad("expected `STAT > +N%` (e.g. `p99 > +10%`)"))?;
        let left = left.trim();
        let limit = parse_limit(right).ok_or_else(|| bad("the limit is +N% or +N ms/us/ns"))?;
        let (prefix, stat_text) = match left.rsplit_once('.') {
            Some((p, s)) if stat_of(s).is_some() => (p, s),
            _ => ("", left),
        };
        let stat = stat_of(stat_text).ok_or_else(|| {
            bad("unknown statistic (p50, p90, p99, max, mean; for spans also total, self, count)")
        })?;
        let subject = match prefix {
            "" | "frames" => Subject::Frames,
            "spans" => Subject::AnySpan,
            name => Subject::Span(name.to_owned()),
        };
        if subject == Subject::Frames && matches!(stat, Stat::Total | Stat::SelfTime | Stat::Count)
        {
            return Err(bad("frame times have p50, p90, p99, max and mean"));
        }
        Ok(Condition {
            text: text.trim().to_owned(),
            subject,
            stat,
            limit,
        })
    }
}

fn of_percentiles(p: &Percentiles, stat: Stat) -> Option<f64> {
    Some(match stat {
        Stat::Mean => p.mean_ns,
        Stat::P50 => p.p50_ns as f64,
        Stat::P90 => p.p90_ns as f64,
        Stat::P99 => p.p99_ns as f64,
        Stat::Max => p.max_ns as f64,
        Stat::Total | Stat::SelfTime | Stat::Count => return None,
    })
}

fn of_span(s: &SpanSide, stat: Stat) -> f64 {
    match stat {
        Stat::Total => s.total_per_frame_ns,
        Stat::SelfTime => s.self_per_frame_ns,
        Stat::Count => s.calls_per_frame,
        other => of_percentiles(&s.durations, other).unwrap_or(0.0),
    }
}

fn stat_name(stat: Stat) -> &'static str {
    match stat {
        Stat::Mean => "mean",
        Stat::P50 => "p50",
        Stat::P90 => "p90",
        Stat::P99 => "p99",
        Stat::Max => "max",
        Stat::Total => "time per frame",
        Stat::SelfTime => "self time per frame",
        Stat::Count => "calls per frame",
    }
}

/// How a value reads: counts as they are, times in ms.
fn show(stat: Stat, v: f64) -> String {
    match stat {
        Stat::Count => format!("{v:.2}"),
        _ => format!("{:.3} ms", v / 1e6),
    }
}

impl Condition {
    fn exceeded(&self, base: f64, candidate: f64) -> bool {
        match self.limit {
            Limit::Percent(pct) => match change_pct(base, candidate) {
                Some(change) => change > pct,
                None => candidate > 0.0,
            },
            Limit::Nanos(ns) => candidate - base > ns,
        }
    }

    fn violation(&self, subject: &str, base: f64, candidate: f64) -> Violation {
        let change =
            change_pct(base, candidate).map_or_else(|| "new".to_owned(), |c| format!("{c:+.1} %"));
        Violation {
            condition: self.text.clone(),
            what: format!(
                "{subject} {}: {} -> {} ({change})",
                stat_name(self.stat),
                show(self.stat, base),
                show(self.stat, candidate)
            ),
        }
    }

    fn check_span(&self, span: &SpanComparison) -> Option<Violation> {
        let (b, c) = (
            of_span(&span.baseline, self.stat),
            of_span(&span.candidate, self.stat),
        );
        let flagged = match self.stat {
            Stat::SelfTime => span.self_flagged,
            _ => span.flagged,
        };
        (flagged && self.exceeded(b, c)).then(|| self.violation(&span.name, b, c))
    }

    /// What trips this condition in `comparison` (empty: it holds).
    pub fn check(&self, comparison: &Comparison) -> Vec<Violation> {
        match &self.subject {
            Subject::Frames => {
                let f = &comparison.frames;
                let (b, c) = (
                    of_percentiles(&f.baseline, self.stat).unwrap_or(0.0),
                    of_percentiles(&f.candidate, self.stat).unwrap_or(0.0),
                );
                if f.flagged && self.exceeded(b, c) {
                    vec![self.violation("frames", b, c)]
                } else {
                    Vec::new()
                }
            }
            Subject::AnySpan => comparison
                .spans
                .iter()
                .filter_map(|s| self.check_span(s))
                .collect(),
            Subject::Span(name) => comparison
                .spans
                .iter()
                .filter(|s| &s.name == name)
                .filter_map(|s| self.check_span(s))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_parse() {
        let c: Condition = "p99 > +10%".parse().unwrap();
        assert_eq!(
            (c.subject, c.stat, c.limit),
            (Subject::Frames, Stat::P99, Limit::Percent(10.0))
        );
        let c: Condition = "physics.solve.p99 > 2ms".parse().unwrap();
        assert_eq!(c.subject, Subject::Span("physics.solve".into()));
        assert_eq!(c.limit, Limit::Nanos(2e6));
        let c: Condition = "spans.self > +5%".parse().unwrap();
        assert_eq!((c.subject, c.stat), (Subject::AnySpan, Stat::SelfTime));
        for wrong in [
            "p99 < 10%",
            "p98 > 10%",
            "p99 > 10",
            "frames.self > 1%",
            "p99 > -x%",
        ] {
            assert!(wrong.parse::<Condition>().is_err(), "{wrong}");
        }
    }

    #[test]
    fn limits() {
        let pct: Condition = "p99 > +10%".parse().unwrap();
        assert!(pct.exceeded(100.0, 111.0) && !pct.exceeded(100.0, 109.0));
        assert!(pct.exceeded(0.0, 1.0) && !pct.exceeded(0.0, 0.0));
        let abs: Condition = "p99 > +1us".parse().unwrap();
        assert!(abs.exceeded(5000.0, 6001.0) && !abs.exceeded(5000.0, 5900.0));
    }
}
