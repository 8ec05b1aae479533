//! `frameline demo --slow NAME=FACTOR`: make one span of the demo game slower, the way a
//! regression would — it lasts `FACTOR` times as long. The extra time is spent inside the span,
//! after its children (so the span's self time grows and nothing else does), **waiting**: a
//! stall that burned CPU would also slow the rest of the game wherever it shares cores with
//! other processes, which is not the regression asked for. What the compare tests and a
//! developer trying `frameline compare` use as a known regression.

use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Largest factor accepted (a typo such as `=150` would otherwise stall the demo).
const MAX_FACTOR: f64 = 100.0;

/// Whether any slowdown is set (the common case costs one relaxed load per span).
static ANY: AtomicBool = AtomicBool::new(false);
static SLOWDOWNS: RwLock<Vec<(String, f64)>> = RwLock::new(Vec::new());

/// Parses `NAME=FACTOR` (factor from 1 to 100).
pub fn parse(text: &str) -> Result<(String, f64), String> {
    let (name, factor) = text
        .rsplit_once('=')
        .ok_or_else(|| format!("`{text}`: expected SPAN=FACTOR, e.g. physics.solve=1.5"))?;
    let factor: f64 = factor
        .trim()
        .parse()
        .map_err(|_| format!("`{text}`: the factor is a number, e.g. 1.5"))?;
    if !(1.0..=MAX_FACTOR).contains(&factor) {
        return Err(format!(
            "`{text}`: the factor is between 1 and {MAX_FACTOR}"
        ));
    }
    let name = name.trim();
    if name.is_empty() {
        return Err(format!("`{text}`: no span name"));
    }
    Ok((name.to_owned(), factor))
}

/// Sets the slowdowns for the spans that follow (empty: none).
pub fn set(slowdowns: &[(String, f64)]) {
    if let Ok(mut all) = SLOWDOWNS.write() {
        *all = slowdowns.to_vec();
    }
    ANY.store(!slowdowns.is_empty(), Ordering::Release);
}

/// Held inside a span: on drop, stretches the time since it was made by the span's factor.
pub struct Slowdown {
    extra: Option<(Instant, f64)>,
}

impl Slowdown {
    pub fn begin(name: &str) -> Slowdown {
        let extra = if ANY.load(Ordering::Relaxed) {
            SLOWDOWNS
                .read()
                .ok()
                .and_then(|all| all.iter().find(|(n, _)| n == name).map(|(_, f)| *f))
                .map(|factor| (Instant::now(), factor - 1.0))
        } else {
            None
        };
        Slowdown { extra }
    }
}

impl Drop for Slowdown {
    fn drop(&mut self) {
        if let Some((began, extra)) = self.extra {
            let until =
                Instant::now() + Duration::from_secs_f64(began.elapsed().as_secs_f64() * extra);
            while Instant::now() < until {
                std::hint::spin_loop();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_stretches() {
        assert_eq!(
            parse("physics.solve=1.5"),
            Ok(("physics.solve".into(), 1.5))
        );
        for wrong in ["physics.solve", "x=0.5", "x=abc", "=2", "x=1000"] {
            assert!(parse(wrong).is_err(), "{wrong}");
        }
        set(&[("slow.one".into(), 3.0)]);
        let began = Instant::now();
        {
            let _slow = Slowdown::begin("slow.one");
            std::thread::sleep(Duration::from_millis(20));
        }
        // 20 ms of work stretched 3 times: at least 60 ms in all.
        assert!(began.elapsed() >= Duration::from_millis(60));
        assert!(Slowdown::begin("other").extra.is_none());
        set(&[]);
        assert!(Slowdown::begin("slow.one").extra.is_none());
    }
}
