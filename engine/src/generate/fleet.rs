//! Synthetic play sessions for a studio-sized lake: `frameline demo --sessions N`, the fleet
//! tests and the catalog benchmarks. Each session is a short run of a game with four threads
//! (main, render, two workers: twelve streams), frames with spans, logs and metrics, and
//! properties (build, map, platform, GPU) that shape its frame times: build `1043` is slow on
//! the `desert` map, so the fleet page has something to find. Deterministic for a seed.

use crate::error::EngineError;
use frameline_instrument::Level;
use frameline_instrument::offline::{LakeWriter, ProcessWriter, ThreadHandle};

/// What to generate.
#[derive(Clone, Debug)]
pub struct FleetOptions {
    pub sessions: usize,
    /// Sessions start spread evenly over this many days before `end_unix_ns`.
    pub days: u32,
    /// Frames per session; 0 writes the sessions' descriptions only (no block), for tests of
    /// what a lake's catalog alone shows.
    pub frames_per_session: u32,
    /// Blocks written per stream (at least 1).
    pub blocks_per_stream: u32,
    pub seed: u64,
    pub end_unix_ns: i64,
}

impl Default for FleetOptions {
    fn default() -> Self {
        Self {
            sessions: 100,
            days: 7,
            frames_per_session: 300,
            blocks_per_stream: 1,
            seed: 1,
            end_unix_ns: now_unix_ns(),
        }
    }
}

pub fn now_unix_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

pub const BUILDS: [&str; 3] = ["1041", "1042", "1043"];
pub const MAPS: [&str; 3] = ["harbor", "desert", "forest"];
pub const PLATFORMS: [&str; 3] = ["win64", "linux", "ps5"];
const GPUS: [&str; 3] = ["RTX 4070", "RX 7800", "PS5 GPU"];

/// SplitMix64: small, deterministic, good enough for synthetic data.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub(super) fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

/// The properties of session `index` (also what the tests expect).
pub fn session_properties(seed: u64, index: usize) -> [(&'static str, &'static str); 4] {
    let mut rng = Rng(seed ^ (index as u64).wrapping_mul(0x2545_f491_4f6c_dd1d));
    let build = rng.pick(&BUILDS);
    let map = rng.pick(&MAPS);
    let platform_index = (rng.next() % 3) as usize;
    [
        ("build", build),
        ("map", map),
        ("platform", PLATFORMS[platform_index]),
        ("gpu", GPUS[platform_index]),
    ]
}

fn write_session(
    lake: &LakeWriter,
    options: &FleetOptions,
    index: usize,
) -> Result<String, EngineError> {
    let properties = session_properties(options.seed, index);
    let mut rng = Rng(options.seed.wrapping_mul(31).wrapping_add(index as u64));
    let span_ns = i64::from(options.days.max(1)) * 86_400 * 1_000_000_000;
    let offset = span_ns / options.sessions.max(1) as i64 * (options.sessions - 1 - index) as i64;
    let start = options.end_unix_ns - offset - 3_600_000_000_000 - (rng.unit() * 1e9) as i64;
    let mut process = lake.process("frameline-demo", start);
    for (key, value) in properties {
        process.property(key, value);
    }
    if options.frames_per_session == 0 {
        return process
            .finish(start + 1_000_000_000)
            .map_err(|e| EngineError::Query(format!("writing session {index}: {e}")));
    }
    let slow = properties[0].1 == "1043" && properties[1].1 == "desert";
    let base_ms = match properties[2].1 {
        "win64" => 12.0,
        "linux" => 13.0,
        _ => 15.0,
    } + if slow { 7.0 } else { 0.0 };
    let threads = [
        process.thread("main"),
        process.thread("render"),
        process.thread("worker-0"),
        process.thread("worker-1"),
    ];
    let mut t = start + 1_000_000;
    process.log(threads[0], t, Level::Info, "game", "level loaded");
    let frames = options.frames_per_session.max(2);
    let cut_every = (frames / options.blocks_per_stream.max(1)).max(1);
    for frame in 0..frames {
        let spike = rng.unit() < 0.01;
        let frame_ms = base_ms * (0.85 + 0.3 * rng.unit()) * if spike { 3.5 } else { 1.0 };
        let frame_ns = (frame_ms * 1e6) as i64;
        write_frame(&mut process, &threads, t, frame_ns, spike);
        if spike {
            process.log(
                threads[0],
                t + frame_ns / 2,
                Level::Warn,
                "game",
                "slow frame",
            );
        }
        if frame % 60 == 0 {
            process.metric(threads[0], t, "memory_mb", "MB", 900.0 + 100.0 * rng.unit());
            process.metric(threads[1], t, "gpu_ms", "ms", frame_ms * 0.7);
            for worker in &threads[2..] {
                process.metric(*worker, t, "jobs_done", "count", 40.0 + 10.0 * rng.unit());
                process.log(*worker, t, Level::Debug, "jobs", "batch done");
            }
            process.log(threads[1], t, Level::Trace, "render", "present");
        }
        t += frame_ns;
        if (frame + 1) % cut_every == 0 {
            process.cut_blocks();
        }
    }
    process.frame(threads[0], t, "frame");
    process
        .finish(t + 1_000_000)
        .map_err(|e| EngineError::Query(format!("writing session {index}: {e}")))
}

fn write_frame(
    process: &mut ProcessWriter<'_>,
    threads: &[ThreadHandle; 4],
    t: i64,
    frame_ns: i64,
    spike: bool,
) {
    let [main, render, w0, w1] = *threads;
    process.frame(main, t, "frame");
    process.span_begin(main, t, "frame", "game");
    let update_ns = frame_ns * 3 / 10;
    process.span_begin(main, t + 10_000, "update", "game");
    if spike {
        process.span_begin(main, t + 20_000, "streaming.load_chunk", "streaming");
        process.span_end(main, t + update_ns - 20_000);
    }
    process.span_end(main, t + update_ns);
    process.span_begin(main, t + update_ns + 10_000, "render_submit", "render");
    process.span_end(main, t + frame_ns - 20_000);
    process.span_end(main, t + frame_ns - 10_000);
    process.span_begin(render, t + update_ns, "render", "render");
    process.span_end(render, t + frame_ns - 5_000);
    for (i, worker) in [w0, w1].into_iter().enumerate() {
        let begin = t + 50_000 + i as i64 * 30_000;
        process.span_begin(worker, begin, "job", "jobs");
        process.span_end(worker, begin + frame_ns / 4);
    }
}

/// Writes `options.sessions` sessions into `lake` (a folder or `s3://…`), two at a time;
/// `progress` gets the number written so far. Returns the process ids in session order.
pub fn write_fleet(
    lake: &str,
    options: &FleetOptions,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<Vec<String>, EngineError> {
    let writer = LakeWriter::open(lake)
        .map_err(|e| EngineError::Query(format!("opening {lake} for writing: {e}")))?;
    let done = std::sync::atomic::AtomicUsize::new(0);
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get().min(4));
    let mut ids: Vec<Option<String>> = vec![None; options.sessions];
    let chunks: Vec<Result<Vec<(usize, String)>, EngineError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|worker| {
                let (writer, done) = (&writer, &done);
                scope.spawn(move || {
                    let mut written = Vec::new();
                    for index in (worker..options.sessions).step_by(workers) {
                        written.push((index, write_session(writer, options, index)?));
                        let count = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                        progress(count);
                    }
                    Ok(written)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(EngineError::Query("a writer panicked".to_owned())))
            })
            .collect()
    });
    for chunk in chunks {
        for (index, id) in chunk? {
            ids[index] = Some(id);
        }
    }
    Ok(ids.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_are_deterministic_and_varied() {
        assert_eq!(session_properties(7, 3), session_properties(7, 3));
        let builds: std::collections::HashSet<&str> =
            (0..50).map(|i| session_properties(7, i)[0].1).collect();
        assert_eq!(builds.len(), BUILDS.len());
    }
}
