//! The statistics a comparison reports: nearest-rank percentiles (the rule of the statistics
//! panel, and of `row_number() OVER (ORDER BY …)` in SQL) and the Mann–Whitney U test, with
//! its effect size (Vargha–Delaney A), that decide whether a change is larger than the noise.
//!
//! Why Mann–Whitney: per-frame times are skewed (a few long frames) and far from normal, so a
//! t-test would be misled by the tail; a rank test is not, costs one sort (a bootstrap would cost
//! a thousand resamples of every span name), and its normal approximation is accurate for the
//! hundreds of frames a capture has.

use serde::Serialize;

/// The value at quantile `q` (0–1] of `sorted`: the smallest value with at least `q × n` values at
/// or below it (nearest rank).
pub fn nearest_rank(sorted: &[i64], q: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len();
    let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
    sorted.get(rank - 1).copied()
}

/// Count, mean, P50/P90/P99 and maximum of a set of durations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub mean_ns: f64,
    pub p50_ns: i64,
    pub p90_ns: i64,
    pub p99_ns: i64,
    pub max_ns: i64,
}

impl Percentiles {
    /// Of `values` (sorted in place). All zero when empty.
    pub fn of(values: &mut [i64]) -> Percentiles {
        values.sort_unstable();
        let count = values.len() as u64;
        if count == 0 {
            return Percentiles::default();
        }
        let sum: i128 = values.iter().map(|&v| v as i128).sum();
        let at = |q| nearest_rank(values, q).unwrap_or(0);
        Percentiles {
            count,
            mean_ns: sum as f64 / count as f64,
            p50_ns: at(0.50),
            p90_ns: at(0.90),
            p99_ns: at(0.99),
            max_ns: values.last().copied().unwrap_or(0),
        }
    }
}

/// The complementary error function (Numerical Recipes' Chebyshev fit, relative error < 1.2e-7
/// everywhere): enough for p-values compared with 0.01 / m.
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// What the Mann–Whitney U test says about two samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RankTest {
    /// Two-sided p-value that both come from one distribution (normal approximation with the
    /// tie and continuity corrections; 1.0 when a side is empty or every value is the same).
    pub p_value: f64,
    /// Vargha–Delaney A: the probability that a value of `b` exceeds one of `a` (ties count
    /// half). 0.5: no effect; ≥ 0.71 or ≤ 0.29 is a large effect.
    pub effect: f64,
}

/// The Mann–Whitney U test of `a` against `b`.
pub fn mann_whitney(a: &[i64], b: &[i64]) -> RankTest {
    let (n1, n2) = (a.len(), b.len());
    if n1 == 0 || n2 == 0 {
        return RankTest {
            p_value: 1.0,
            effect: 0.5,
        };
    }
    let mut all: Vec<(i64, bool)> = Vec::with_capacity(n1 + n2);
    all.extend(a.iter().map(|&v| (v, true)));
    all.extend(b.iter().map(|&v| (v, false)));
    all.sort_unstable_by_key(|&(v, _)| v);
    let n = all.len();
    // Ranks (1-based), ties sharing their average rank; Σ(t³ − t) for the variance.
    let (mut rank_sum_a, mut ties) = (0.0f64, 0.0f64);
    let mut i = 0;
    while i < n {
        let mut j = i + 1;
        while j < n && all[j].0 == all[i].0 {
            j += 1;
        }
        let average_rank = (i + 1 + j) as f64 / 2.0;
        let in_a = all[i..j].iter().filter(|(_, from_a)| *from_a).count();
        rank_sum_a += average_rank * in_a as f64;
        let t = (j - i) as f64;
        ties += t * t * t - t;
        i = j;
    }
    let (n1f, n2f, nf) = (n1 as f64, n2 as f64, n as f64);
    // U of `a`: pairs where a's value exceeds b's (ties half); b exceeds a in the others.
    let u = rank_sum_a - n1f * (n1f + 1.0) / 2.0;
    let effect = 1.0 - u / (n1f * n2f);
    let mean = n1f * n2f / 2.0;
    let variance = n1f * n2f / 12.0 * ((nf + 1.0) - ties / (nf * (nf - 1.0)).max(1.0));
    if variance <= 0.0 {
        return RankTest {
            p_value: 1.0,
            effect: 0.5,
        };
    }
    let distance = ((u - mean).abs() - 0.5).max(0.0);
    // Consecutive frames are not independent (a loaded machine has slow stretches lasting
    // seconds): the variance grows by (1 + ρ) / (1 − ρ), ρ the lag-1 autocorrelation, the
    // larger of the two sides'.
    let inflation = variance_inflation(a).max(variance_inflation(b));
    let z = distance / (variance * inflation).sqrt();
    RankTest {
        p_value: erfc(z / std::f64::consts::SQRT_2).clamp(0.0, 1.0),
        effect,
    }
}

/// (1 + ρ) / (1 − ρ) for the lag-1 autocorrelation ρ of `series` (ρ clamped to [0, 0.9]; 1.0
/// for fewer than 3 values or a constant series).
pub fn variance_inflation(series: &[i64]) -> f64 {
    let n = series.len();
    if n < 3 {
        return 1.0;
    }
    let mean = series.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
    let centered: Vec<f64> = series.iter().map(|&v| v as f64 - mean).collect();
    let variance: f64 = centered.iter().map(|d| d * d).sum();
    if variance <= 0.0 {
        return 1.0;
    }
    let lag1: f64 = centered.windows(2).map(|w| w[0] * w[1]).sum();
    let rho = (lag1 / variance).clamp(0.0, 0.9);
    (1.0 + rho) / (1.0 - rho)
}

/// The p-value of [`mann_whitney`].
pub fn mann_whitney_p(a: &[i64], b: &[i64]) -> f64 {
    mann_whitney(a, b).p_value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut values: Vec<i64> = (1..=100).rev().collect();
        let p = Percentiles::of(&mut values);
        assert_eq!(
            (p.count, p.p50_ns, p.p90_ns, p.p99_ns, p.max_ns),
            (100, 50, 90, 99, 100)
        );
        assert_eq!(p.mean_ns, 50.5);
        assert_eq!(nearest_rank(&[7], 0.99), Some(7));
        assert_eq!(nearest_rank(&[], 0.5), None);
        assert_eq!(Percentiles::of(&mut []), Percentiles::default());
    }

    #[test]
    fn erfc_matches_known_values() {
        for (x, expected) in [
            (0.0, 1.0),
            (0.5, 0.479_500_122),
            (1.0, 0.157_299_207),
            (2.0, 0.004_677_735),
            (-1.0, 1.842_700_793),
        ] {
            assert!((erfc(x) - expected).abs() < 1e-6, "erfc({x}) = {}", erfc(x));
        }
    }

    #[test]
    fn mann_whitney_separates_shifted_samples_and_not_equal_ones() {
        // A deterministic pseudo-random sequence (an LCG), so both are one distribution and
        // consecutive values are unrelated.
        let mut x = 1u64;
        let mut noise = || {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            ((x >> 33) % 1000) as i64 + 1000
        };
        let a: Vec<i64> = (0..400).map(|_| noise()).collect();
        let b: Vec<i64> = (0..400).map(|_| noise()).collect();
        assert!(mann_whitney_p(&a, &b) > 0.05);
        assert_eq!(mann_whitney_p(&a, &a), 1.0);
        let shifted: Vec<i64> = b.iter().map(|v| v + 150).collect();
        assert!(mann_whitney_p(&a, &shifted) < 1e-6);
        // Every shifted value exceeds every original one but a few: a large effect.
        assert!(mann_whitney(&a, &shifted).effect > 0.6);
        assert_eq!(mann_whitney(&[1, 2], &[3, 4]).effect, 1.0);
        assert_eq!(mann_whitney(&[3, 4], &[1, 2]).effect, 0.0);
        assert_eq!(mann_whitney(&a, &a).effect, 0.5);
        // A slow stretch (correlated frames) weighs as fewer independent frames.
        let phases: Vec<i64> = (0..400)
            .map(|i| if i < 200 { 1000 } else { 1100 } + i % 7)
            .collect();
        assert!(variance_inflation(&phases) > 10.0);
        assert!(variance_inflation(&a) < 1.5);
        assert_eq!(variance_inflation(&[5, 5, 5, 5]), 1.0);
        // All ties, or one side empty: nothing to tell apart.
        assert_eq!(mann_whitney_p(&[5; 10], &[5; 20]), 1.0);
        assert_eq!(mann_whitney_p(&[], &b), 1.0);
        // n1 = n2 = 5, U = 3, in an order with no autocorrelation: z = (|3 − 12.5| − 0.5) / √22.9
        // = 1.88, p ≈ 0.06 (exact: 0.056).
        let p = mann_whitney_p(&[3, 1, 7, 2, 5], &[9, 4, 10, 6, 8]);
        assert!(p > 0.03 && p < 0.08, "p = {p}");
    }
}
