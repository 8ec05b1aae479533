//! One long play session, written as real blocks through the offline writer: what the tests and
//! benchmarks of sessions of any length open (`frameline demo --long SECONDS`). Much faster than
//! recording one (no pacing, no game): 10^8 spans in well under a minute in a release build.
//!
//! Per frame (60 fps, ±10 % jitter) each thread writes one tree: a root span (`frame` on the
//! main thread, `render` on the render thread, `job_batch` on the workers), `fanout` children and
//! `fanout` grandchildren under each, so `threads × (1 + fanout + fanout²)` spans a frame. Every
//! `spike_every_frames` frames the main thread's update stalls in `streaming.load_chunk` for
//! 40 ms, so the session has known spikes to find. Blocks are cut as a recording cuts them (1 MiB
//! of raw events per stream), so spans cross block boundaries. Deterministic for a seed (the
//! process id aside).

use super::fleet::Rng;
use crate::error::EngineError;
use frameline_instrument::Level;
use frameline_instrument::offline::LakeWriter;

/// Frame time of the 60 fps target.
const FRAME_NS: f64 = 1e9 / 60.0;
/// How long a planted stall lasts.
pub const STALL_NS: i64 = 40_000_000;

/// What to generate.
#[derive(Clone, Debug)]
pub struct LongSessionOptions {
    /// Game time to write.
    pub seconds: f64,
    /// Threads (at least 2: main and render; the rest are workers).
    pub threads: u32,
    /// Children per root and grandchildren per child.
    pub fanout: u32,
    /// A stall every this many frames (0: none).
    pub spike_every_frames: u64,
    pub seed: u64,
    pub start_unix_ns: i64,
}

impl Default for LongSessionOptions {
    fn default() -> Self {
        Self {
            seconds: 60.0,
            threads: 8,
            fanout: 15,
            spike_every_frames: 600,
            seed: 1,
            start_unix_ns: super::now_unix_ns() - 3_600_000_000_000,
        }
    }
}

/// What was written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LongSessionReport {
    pub process_id: String,
    pub frames: u64,
    pub spans: u64,
    /// Begin of each frame that holds a planted stall.
    pub spike_frames_ns: Vec<i64>,
    pub end_unix_ns: i64,
}

const MAIN_CHILDREN: [&str; 6] = [
    "input",
    "update",
    "physics",
    "animation",
    "scripts",
    "render_submit",
];
const RENDER_CHILDREN: [&str; 4] = ["culling", "shadow_pass", "opaque_pass", "post_process"];
const JOB_CHILDREN: [&str; 5] = [
    "job.ai",
    "job.navmesh",
    "job.skinning",
    "job.particles",
    "job.audio",
];

/// The names each thread's spans take, built once (the writer interns them per span).
struct Names {
    root: String,
    children: Vec<String>,
    /// `grandchildren[i]`: names under child `i`.
    grandchildren: Vec<Vec<String>>,
}

impl Names {
    fn of_thread(index: u32, fanout: u32) -> Names {
        let (root, pool): (&str, &[&str]) = match index {
            0 => ("frame", &MAIN_CHILDREN),
            1 => ("render", &RENDER_CHILDREN),
            _ => ("job_batch", &JOB_CHILDREN),
        };
        let children: Vec<String> = (0..fanout as usize)
            .map(|i| pool[i % pool.len()].to_owned())
            .collect();
        let grandchildren = children
            .iter()
            .map(|c| {
                (0..fanout as usize)
                    .map(|j| format!("{c}.step{}", j % 4))
                    .collect()
            })
            .collect();
        Names {
            root: root.to_owned(),
            children,
            grandchildren,
        }
    }
}

/// Writes one long session into `lake` (a folder or `s3://…`); `progress` gets the fraction
/// written (0 to 1) now and then.
pub fn write_long_session(
    lake: &str,
    options: &LongSessionOptions,
    progress: &dyn Fn(f64),
) -> Result<LongSessionReport, EngineError> {
    let writer = LakeWriter::open(lake)
        .map_err(|e| EngineError::Query(format!("opening {lake} for writing: {e}")))?;
    let start = options.start_unix_ns;
    let mut process = writer.process("frameline-long-demo", start);
    process.property("generator", "long-session");
    process.property("build", "1043");
    process.property("map", "harbor");
    let thread_count = options.threads.max(2);
    let threads: Vec<_> = (0..thread_count)
        .map(|i| match i {
            0 => process.thread("main"),
            1 => process.thread("render"),
            n => process.thread(&format!("worker-{}", n - 2)),
        })
        .collect();
    let names: Vec<Names> = (0..thread_count)
        .map(|i| Names::of_thread(i, options.fanout))
        .collect();
    let mut rng = Rng(options.seed);
    let end_target = start + (options.seconds.max(0.0) * 1e9) as i64;
    let mut report = LongSessionReport::default();
    let mut t = start + 1_000_000;
    process.log(threads[0], t, Level::Info, "game", "level loaded");
    let fanout = i64::from(options.fanout);
    while t < end_target {
        let frame = report.frames;
        let spike = options.spike_every_frames > 0
            && frame % options.spike_every_frames == options.spike_every_frames / 2;
        let base_ns = (FRAME_NS * (0.9 + 0.2 * rng.unit())) as i64;
        let frame_ns = base_ns + if spike { STALL_NS } else { 0 };
        process.frame(threads[0], t, "frame");
        if spike {
            report.spike_frames_ns.push(t);
        }
        for (i, (&thread, names)) in threads.iter().zip(&names).enumerate() {
            // Each thread's tree fills most of the frame, staggered a little.
            let root_begin = t + 2_000 + i as i64 * 1_000;
            let root_end = t + frame_ns - 5_000;
            process.span_begin(thread, root_begin, &names.root, "game");
            let mut cursor = root_begin + 1_000;
            if spike && i == 0 {
                process.span_begin(thread, cursor, "streaming.load_chunk", "streaming");
                process.span_end(thread, cursor + STALL_NS);
                cursor += STALL_NS + 1_000;
                report.spans += 1;
            }
            let child_ns = ((root_end - cursor) / fanout.max(1)).max(3);
            for (c, child) in names.children.iter().enumerate() {
                let child_begin = cursor + c as i64 * child_ns;
                let child_end = child_begin + child_ns * 9 / 10;
                process.span_begin(thread, child_begin, child, "game");
                let step_ns = ((child_end - child_begin) / fanout.max(1)).max(2);
                for (g, grandchild) in names.grandchildren[c].iter().enumerate() {
                    let begin = child_begin + 1 + g as i64 * step_ns;
                    // Some work is longer than its neighbours: statistics have a spread.
                    let len = (step_ns * (5 + (rng.next() % 4) as i64) / 10).max(1);
                    process.span_begin(thread, begin, grandchild, "game");
                    process.span_end(thread, begin + len);
                }
                process.span_end(thread, child_end);
            }
            process.span_end(thread, root_end);
            report.spans += 1 + (fanout + fanout * fanout) as u64;
        }
        process.metric(threads[0], t, "frame_ms", "ms", frame_ns as f64 / 1e6);
        if frame % 60 == 0 {
            process.log(
                threads[0],
                t,
                Level::Info,
                "game",
                &format!("second {}", frame / 60),
            );
            progress(((t - start) as f64 / (end_target - start).max(1) as f64).min(1.0));
        }
        if spike {
            process.log(
                threads[0],
                t + STALL_NS / 2,
                Level::Warn,
                "streaming",
                "chunk load stalled the frame",
            );
        }
        t += frame_ns;
        report.frames += 1;
    }
    process.frame(threads[0], t, "frame");
    report.end_unix_ns = t;
    report.process_id = process
        .finish(t + 1_000_000)
        .map_err(|e| EngineError::Query(format!("writing the long session: {e}")))?;
    progress(1.0);
    Ok(report)
}
