//! How `frameline compare` prints a comparison: an aligned table for people, CSV for
//! spreadsheets, JSON (with the tripped conditions) for scripts.

use anyhow::Result;
use frameline_engine::compare::{Comparison, Percentiles, SpanComparison, Violation};
use std::fmt::Write;

/// `12.3 µs`, `1.234 ms`: a duration that reads at a glance.
pub fn short_ns(ns: f64) -> String {
    let a = ns.abs();
    if a >= 1e9 {
        format!("{:.3} s", ns / 1e9)
    } else if a >= 1e6 {
        format!("{:.3} ms", ns / 1e6)
    } else if a >= 1e3 {
        format!("{:.1} us", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// Three significant digits: `826 us`, `2.66 ms`, `38.6 ms` (for cells holding two values).
pub fn compact_ns(ns: f64) -> String {
    let (value, unit) = match ns.abs() {
        a if a >= 1e9 => (ns / 1e9, "s"),
        a if a >= 1e6 => (ns / 1e6, "ms"),
        a if a >= 1e3 => (ns / 1e3, "us"),
        _ => (ns, "ns"),
    };
    let decimals = match value.abs() {
        a if a >= 100.0 => 0,
        a if a >= 10.0 => 1,
        _ => 2,
    };
    if unit == "ns" {
        format!("{value:.0} ns")
    } else {
        format!("{value:.decimals$} {unit}")
    }
}

/// `+12.3 %`, or `new` when the baseline had none.
pub fn change(pct: Option<f64>) -> String {
    pct.map_or_else(|| "new".to_owned(), |c| format!("{c:+.1} %"))
}

fn pct(base: f64, candidate: f64) -> Option<f64> {
    frameline_engine::compare::change_pct(base, candidate)
}

/// A statistic of a set of durations.
pub type Stat = fn(&Percentiles) -> f64;

/// The frame-time rows every view prints.
pub const FRAME_STATS: [(&str, Stat); 5] = [
    ("mean", |p| p.mean_ns),
    ("p50", |p| p.p50_ns as f64),
    ("p90", |p| p.p90_ns as f64),
    ("p99", |p| p.p99_ns as f64),
    ("max", |p| p.max_ns as f64),
];

/// The aligned table.
pub fn table(c: &Comparison) -> String {
    let mut out = String::new();
    let f = &c.frames;
    // Writing to a String cannot fail: `.ok()` drops an `Ok(())`.
    writeln!(
        out,
        "baseline:  {} — {} frames",
        c.baseline, c.baseline_frames
    )
    .ok();
    writeln!(
        out,
        "candidate: {} — {} frames",
        c.candidate, c.candidate_frames
    )
    .ok();
    writeln!(out).ok();
    writeln!(
        out,
        "{:<16} {:>12} {:>12} {:>10}",
        "frame time", "baseline", "candidate", "change"
    )
    .ok();
    for (name, stat) in FRAME_STATS {
        let (b, v) = (stat(&f.baseline), stat(&f.candidate));
        writeln!(
            out,
            "{name:<16} {:>12} {:>12} {:>10}",
            short_ns(b),
            short_ns(v),
            change(pct(b, v))
        )
        .ok();
    }
    writeln!(
        out,
        "{:<16} {:>11.1}% {:>11.1}%",
        format!("over {}", short_ns(f.target_ns as f64)),
        f.baseline_over_target_pct,
        f.candidate_over_target_pct
    )
    .ok();
    writeln!(
        out,
        "frame times: p = {:.3}{}",
        f.p_value,
        if f.flagged {
            ", FLAGGED"
        } else {
            ", within noise"
        }
    )
    .ok();
    writeln!(
        out,
        "overall: the candidate's spans took {:.2} x the baseline's self time per frame (time-weighted median)",
        c.overall_ratio
    )
    .ok();
    writeln!(out).ok();
    writeln!(
        out,
        "spans: regressions first, by the change of self time per frame\n{}",
        c.method
    )
    .ok();
    writeln!(
        out,
        "{:<32} {:>13} {:>11} {:>11} {:>9} {:>11} {:>11} {:>11} {:>11} {:>11} {:>9} flag",
        "name",
        "calls/frame",
        "time/frame",
        "  ->",
        "change",
        "d self/fr",
        "p50",
        "  ->",
        "p99",
        "  ->",
        "p",
    )
    .ok();
    for s in &c.spans {
        let (b, v) = (&s.baseline, &s.candidate);
        writeln!(
            out,
            "{:<32} {:>13} {:>11} {:>11} {:>9} {:>11} {:>11} {:>11} {:>11} {:>11} {:>9} {}",
            truncate(&s.name, 32),
            format!("{:.2}->{:.2}", b.calls_per_frame, v.calls_per_frame),
            short_ns(b.total_per_frame_ns),
            short_ns(v.total_per_frame_ns),
            change(s.change_pct),
            short_ns(s.delta_self_per_frame_ns),
            short_ns(b.durations.p50_ns as f64),
            short_ns(v.durations.p50_ns as f64),
            short_ns(b.durations.p99_ns as f64),
            short_ns(v.durations.p99_ns as f64),
            s.p_value
                .map_or_else(|| "-".to_owned(), |p| format!("{p:.2e}")),
            flag(s)
        )
        .ok();
    }
    out
}

/// `SLOWER` (its own code), `slower` (inside a child), `faster`, or nothing (within noise).
pub fn flag(s: &SpanComparison) -> &'static str {
    match s.rank() {
        0 => "SLOWER",
        1 => "slower",
        3 => "faster",
        _ => "",
    }
}

fn truncate(name: &str, chars: usize) -> String {
    if name.chars().count() <= chars {
        return name.to_owned();
    }
    let mut short: String = name.chars().take(chars - 1).collect();
    short.push('~');
    short
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// One header and one row per span, after a first row for the frames (one "call" per frame).
pub fn csv(c: &Comparison) -> String {
    let mut out = String::from(
        "kind,name,baseline_calls_per_frame,candidate_calls_per_frame,baseline_time_per_frame_ns,candidate_time_per_frame_ns,change_pct,baseline_self_per_frame_ns,candidate_self_per_frame_ns,baseline_mean_ns,candidate_mean_ns,baseline_p50_ns,candidate_p50_ns,baseline_p90_ns,candidate_p90_ns,baseline_p99_ns,candidate_p99_ns,baseline_max_ns,candidate_max_ns,p_value,flagged,self_p_value,self_flagged\n",
    );
    let f = &c.frames;
    let percentiles = |b: &Percentiles, v: &Percentiles| {
        format!(
            "{},{},{},{},{},{},{},{},{},{}",
            b.mean_ns,
            v.mean_ns,
            b.p50_ns,
            v.p50_ns,
            b.p90_ns,
            v.p90_ns,
            b.p99_ns,
            v.p99_ns,
            b.max_ns,
            v.max_ns
        )
    };
    writeln!(
        out,
        "frames,frame,1,1,{},{},{},,,{},{},{},,",
        f.baseline.mean_ns,
        f.candidate.mean_ns,
        pct(f.baseline.mean_ns, f.candidate.mean_ns).map_or(String::new(), |p| p.to_string()),
        percentiles(&f.baseline, &f.candidate),
        f.p_value,
        f.flagged
    )
    .ok();
    for s in &c.spans {
        let (b, v) = (&s.baseline, &s.candidate);
        writeln!(
            out,
            "span,{},{},{},{},{},{},{},{},{},{},{},{},{}",
            csv_field(&s.name),
            b.calls_per_frame,
            v.calls_per_frame,
            b.total_per_frame_ns,
            v.total_per_frame_ns,
            s.change_pct.map_or(String::new(), |p| p.to_string()),
            b.self_per_frame_ns,
            v.self_per_frame_ns,
            percentiles(&b.durations, &v.durations),
            s.p_value.map_or(String::new(), |p| p.to_string()),
            s.flagged,
            s.self_p_value.map_or(String::new(), |p| p.to_string()),
            s.self_flagged
        )
        .ok();
    }
    out
}

/// `{"comparison": …, "violations": […]}`.
pub fn json(c: &Comparison, violations: &[Violation]) -> Result<String> {
    let mut text = serde_json::to_string_pretty(&serde_json::json!({
        "comparison": c,
        "violations": violations,
    }))?;
    text.push('\n');
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(short_ns(1_234_567.0), "1.235 ms");
        assert_eq!(short_ns(12_345.0), "12.3 us");
        assert_eq!(short_ns(-500.0), "-500 ns");
        assert_eq!(compact_ns(826_123.0), "826 us");
        assert_eq!(compact_ns(2_661_000.0), "2.66 ms");
        assert_eq!(compact_ns(38_625_000.0), "38.6 ms");
        assert_eq!(compact_ns(12.4), "12 ns");
        assert_eq!(change(Some(12.34)), "+12.3 %");
        assert_eq!(change(None), "new");
        assert_eq!(csv_field("a,b\"c"), "\"a,b\"\"c\"");
        assert_eq!(truncate("abcdef", 4), "abc~");
    }
}
