//! Ticks: the raw clock read on the hot path, and its conversion to wall-clock time.
//!
//! On x86_64 a tick is one `rdtsc` count, on aarch64 one `cntvct_el0` count; elsewhere it is a
//! nanosecond since a process-wide anchor `Instant`. The engine converts ticks to UTC nanoseconds
//! with the process's `tsc_frequency` and its `(start_ticks, start_unix_ns)` pair.

use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Reads the tick counter. This is the whole cost of timing an event.
#[inline(always)]
pub fn now() -> u64 {
    #[cfg(target_arch = "x86_64")]
    {
        // SAFETY: `rdtsc` has no preconditions; every x86_64 CPU implements it. It only reads
        // the time-stamp counter (tested by `time::tests::ticks_advance`).
        #[allow(unused_unsafe)]
        unsafe {
            core::arch::x86_64::_rdtsc()
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        let ticks: u64;
        // SAFETY: reading the virtual counter register is allowed at EL0 on every aarch64 OS we
        // target (Linux, macOS, Windows); it has no side effects (tested by `ticks_advance`).
        unsafe {
            core::arch::asm!("mrs {}, cntvct_el0", out(reg) ticks, options(nomem, nostack, preserves_flags));
        }
        ticks
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        fallback_anchor().elapsed().as_nanos() as u64
    }
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
fn fallback_anchor() -> &'static Instant {
    static ANCHOR: OnceLock<Instant> = OnceLock::new();
    ANCHOR.get_or_init(Instant::now)
}

/// The system clock as nanoseconds since the Unix epoch (0 if the clock is before 1970).
pub fn unix_now_ns() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Ticks per second, known without measuring where the counter has an architected frequency.
fn architected_frequency() -> Option<u64> {
    #[cfg(target_arch = "aarch64")]
    {
        let freq: u64;
        // SAFETY: `cntfrq_el0` is readable at EL0 and has no side effects.
        unsafe {
            core::arch::asm!("mrs {}, cntfrq_el0", out(reg) freq, options(nomem, nostack, preserves_flags));
        }
        return Some(freq);
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        return Some(1_000_000_000);
    }
    #[allow(unreachable_code)]
    None
}

/// Whether the tick frequency is measured (x86_64) rather than stated by the CPU.
pub fn frequency_is_measured() -> bool {
    architected_frequency().is_none()
}

/// A simultaneous reading of the tick counter, a monotonic clock and the wall clock.
#[derive(Clone, Copy, Debug)]
pub struct ClockPair {
    pub ticks: u64,
    pub instant: Instant,
    pub unix_ns: i64,
}

impl ClockPair {
    pub fn now() -> Self {
        // Read the tick counter between two monotonic reads and keep the midpoint, so the pair
        // is consistent to within the cost of one `Instant::now()`.
        let before = Instant::now();
        let ticks = now();
        let after = Instant::now();
        let instant = before + (after - before) / 2;
        Self {
            ticks,
            instant,
            unix_ns: unix_now_ns(),
        }
    }
}

/// Ticks per second measured between two pairs (`None` if they are too close to tell).
pub fn frequency_between(a: &ClockPair, b: &ClockPair) -> Option<u64> {
    let elapsed = b.instant.checked_duration_since(a.instant)?;
    if elapsed < Duration::from_micros(500) || b.ticks <= a.ticks {
        return None;
    }
    let ticks = (b.ticks - a.ticks) as u128;
    u64::try_from(ticks * 1_000_000_000 / elapsed.as_nanos()).ok()
}

/// Ticks per second: architected where the CPU states it, otherwise measured once over a short
/// interval (the instrument refines it over the process's lifetime at shutdown).
pub fn calibrated_frequency(start: &ClockPair) -> u64 {
    static MEASURED: OnceLock<u64> = OnceLock::new();
    if let Some(freq) = architected_frequency() {
        return freq;
    }
    *MEASURED.get_or_init(|| {
        let deadline = start.instant + Duration::from_millis(10);
        let now_instant = Instant::now();
        if now_instant < deadline {
            std::thread::sleep(deadline - now_instant);
        }
        frequency_between(start, &ClockPair::now()).unwrap_or(1_000_000_000)
    })
}

/// Converts ticks to Unix nanoseconds with a process's frequency and start pair.
#[inline]
pub fn ticks_to_unix_ns(ticks: u64, start_ticks: u64, start_unix_ns: i64, frequency: u64) -> i64 {
    let delta = ticks as i128 - start_ticks as i128;
    let ns = delta * 1_000_000_000 / frequency.max(1) as i128;
    (start_unix_ns as i128 + ns).clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

/// `ticks_to_unix_ns` for one process, without a division per call: nanoseconds per tick as an
/// integer part plus a 0.64 fixed-point fraction (one 64×64→128 multiply per conversion; exact
/// to within a nanosecond).
#[derive(Clone, Copy, Debug)]
pub struct TickConverter {
    start_ticks: u64,
    start_unix_ns: i64,
    frequency: u64,
    ns_per_tick: u64,
    fraction_q64: u64,
}

impl TickConverter {
    pub fn new(start_ticks: u64, start_unix_ns: i64, frequency: u64) -> Self {
        let frequency = frequency.max(1);
        let ns_per_tick = 1_000_000_000 / frequency;
        let remainder = 1_000_000_000 % frequency;
        Self {
            start_ticks,
            start_unix_ns,
            frequency,
            ns_per_tick,
            fraction_q64: (((remainder as u128) << 64) / frequency as u128) as u64,
        }
    }

    #[inline]
    pub fn to_unix_ns(&self, ticks: u64) -> i64 {
        let (delta, negative) = if ticks >= self.start_ticks {
            (ticks - self.start_ticks, false)
        } else {
            (self.start_ticks - ticks, true)
        };
        let fraction = ((delta as u128 * self.fraction_q64 as u128) >> 64) as u64;
        let ns = match delta.checked_mul(self.ns_per_tick) {
            Some(whole) => whole as i128 + fraction as i128,
            None => (delta as i128 * 1_000_000_000) / self.frequency as i128,
        };
        let ns = if negative { -ns } else { ns };
        (self.start_unix_ns as i128 + ns).clamp(i64::MIN as i128, i64::MAX as i128) as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_converter_matches_the_exact_division() {
        for freq in [
            1_000_000u64,
            24_000_000,
            1_000_000_000,
            2_995_000_123,
            3_700_000_000,
        ] {
            let converter = TickConverter::new(1_000, 1_700_000_000_000_000_000, freq);
            for ticks in [
                0u64,
                999,
                1_000,
                1_001,
                123_456_789,
                3_600 * freq,
                86_400 * 30 * freq,
            ] {
                let exact = ticks_to_unix_ns(ticks, 1_000, 1_700_000_000_000_000_000, freq);
                let fast = converter.to_unix_ns(ticks);
                assert!(
                    (exact - fast).abs() <= 1,
                    "freq {freq} ticks {ticks}: {exact} vs {fast}"
                );
            }
        }
    }

    #[test]
    fn ticks_advance() {
        let a = now();
        std::thread::sleep(Duration::from_millis(2));
        let b = now();
        assert!(b > a, "tick counter did not advance: {a} -> {b}");
    }

    #[test]
    fn frequency_is_plausible() {
        let start = ClockPair::now();
        let freq = calibrated_frequency(&start);
        // Every counter we know runs between 1 MHz (some aarch64 boards) and 10 GHz.
        assert!((1_000_000..10_000_000_000).contains(&freq), "{freq}");
    }

    #[test]
    fn ticks_convert_to_wall_clock() {
        assert_eq!(ticks_to_unix_ns(3_000, 1_000, 5_000, 1_000_000_000), 7_000);
        assert_eq!(ticks_to_unix_ns(1_000, 3_000, 5_000, 2_000_000_000), 4_000);
    }
}
