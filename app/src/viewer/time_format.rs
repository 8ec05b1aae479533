//! Times as people read them: durations with a unit that fits, and ruler labels whose
//! precision follows the zoom down to nanoseconds (as in Tracy), so neighbouring ticks never
//! read the same.

/// Human time for a duration.
pub fn format_duration(ns: i64) -> String {
    let ns = ns as f64;
    if ns.abs() >= 1e9 {
        format!("{:.3} s", ns / 1e9)
    } else if ns.abs() >= 1e6 {
        format!("{:.3} ms", ns / 1e6)
    } else if ns.abs() >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// A ruler step (1, 2, 5 × 10^k ns) giving about `px` pixels between ticks.
pub fn ruler_step(ns_per_px: f64, px: f64) -> f64 {
    let target = (ns_per_px * px).max(1.0);
    let mut step = 1.0;
    while step * 10.0 <= target {
        step *= 10.0;
    }
    for m in [1.0, 2.0, 5.0, 10.0] {
        if step * m >= target {
            return step * m;
        }
    }
    step * 10.0
}

/// The label of a ruler tick at `t_ns` from the origin, ticks being `step_ns` apart: in the
/// unit of the tick's magnitude, with as many decimals as the step needs (a 0.5 ms step on a
/// 9 s capture reads 1.0115 s, 1.0120 s; a 2 ns step 1.011000002 s).
pub fn format_tick(t_ns: i64, step_ns: f64) -> String {
    let magnitude = t_ns.unsigned_abs() as f64;
    let (unit_ns, unit) = if magnitude >= 1e9 {
        (1e9, "s")
    } else if magnitude >= 1e6 {
        (1e6, "ms")
    } else if magnitude >= 1e3 {
        (1e3, "µs")
    } else {
        (1.0, "ns")
    };
    // Decimals so that one step moves the last digit: ceil(log10(unit / step)).
    let decimals = ((unit_ns / step_ns.max(1.0)).log10() - 1e-9)
        .ceil()
        .clamp(0.0, 9.0) as usize;
    format!("{:.*} {unit}", decimals, t_ns as f64 / unit_ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_pick_their_unit() {
        assert_eq!(format_duration(1_500_000_000), "1.500 s");
        assert_eq!(format_duration(2_500_000), "2.500 ms");
        assert_eq!(format_duration(1_500), "1.50 µs");
        assert_eq!(format_duration(15), "15 ns");
    }

    /// The labels of the ticks a ruler `width_px` wide draws over `[t0, t0 + window)`.
    fn labels(t0_ns: i64, window_ns: f64, width_px: f64) -> Vec<String> {
        let step = ruler_step(window_ns / width_px, 100.0);
        let first = (t0_ns as f64 / step).ceil() * step;
        let mut t = first;
        let mut out = Vec::new();
        while t <= t0_ns as f64 + window_ns {
            out.push(format_tick(t.round() as i64, step));
            t += step;
        }
        out
    }

    #[test]
    fn neighbouring_ticks_never_read_the_same_at_any_zoom() {
        // From a whole 9 s capture down to a few nanoseconds, 1 s into it.
        let mut window = 9e9;
        while window >= 20.0 {
            let ticks = labels(1_011_234_567, window, 1000.0);
            assert!(ticks.len() >= 2, "{window}: {ticks:?}");
            for pair in ticks.windows(2) {
                assert_ne!(pair[0], pair[1], "window {window} ns: {ticks:?}");
            }
            window /= 3.0;
        }
    }

    #[test]
    fn the_reported_four_ms_window_has_distinct_labels() {
        // A 4 ms window on a 9 s capture used to read "1.011 s, 1.012 s, 1.012 s, …".
        let ticks = labels(1_011_000_000, 4e6, 1000.0);
        assert_eq!(ticks[0], "1.0110 s");
        assert_eq!(ticks[1], "1.0115 s");
        let ns = labels(1_011_000_000, 40.0, 1000.0);
        assert_eq!(ns[0], "1.011000000 s");
        assert_eq!(ns[1], "1.011000005 s");
    }
}
