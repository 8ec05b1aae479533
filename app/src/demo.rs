//! `frameline demo`: a synthetic game instrumented with frameline-instrument (the real macros,
//! not forged events). A main loop aiming at 60 fps, a job system on worker threads, nested work
//! (update / physics / animation / ai / render / submit …), logs at every level, metrics, and a
//! frame-time spike every few seconds caused by `streaming.load_chunk`.

use anyhow::{Context, Result};
use frameline_instrument::prelude::*;
use frameline_instrument::{Config, FlightRecorder, Level};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `span_scope!`, and the `--slow` stretch of that span (dropped first: the extra time is inside
/// the span).
macro_rules! demo_scope {
    ($name:literal) => {
        span_scope!($name);
        let _slowdown = crate::demo_slowdown::Slowdown::begin($name);
    };
}

/// Parses `--slow SPAN=FACTOR`.
pub fn parse_slowdown(text: &str) -> Result<(String, f64), String> {
    crate::demo_slowdown::parse(text)
}

/// What to generate.
#[derive(Clone, Debug)]
pub struct DemoOptions {
    /// A capture folder or `s3://bucket/prefix`.
    pub lake: String,
    pub seconds: f64,
    pub worker_threads: usize,
    /// No sleeping and minimal work per span: as many spans as the machine can record.
    pub fast: bool,
    /// `--slow NAME=FACTOR`: spans whose own code runs FACTOR times as long.
    pub slowdowns: Vec<(String, f64)>,
    /// `--property KEY=VALUE`: process properties added to (or replacing) the demo's own.
    pub properties: Vec<(String, String)>,
}

/// `frameline demo --flight-recorder …`: keep CPU blocks only around long frames, error logs
/// and explicit captures.
#[derive(Clone, Debug, clap::Args)]
pub struct FlightRecorderArgs {
    /// Keep CPU blocks in a bounded in-memory ring; write only the window around a trigger (a
    /// frame longer than --frame-threshold-ms, an error log).
    #[arg(long)]
    pub flight_recorder: bool,
    /// Flight recorder: a frame longer than this triggers.
    #[arg(long, default_value_t = 33.4)]
    pub frame_threshold_ms: f64,
    /// Flight recorder: kept before a trigger.
    #[arg(long, default_value_t = 2000)]
    pub before_ms: u64,
    /// Flight recorder: kept after a trigger.
    #[arg(long, default_value_t = 500)]
    pub after_ms: u64,
    /// Flight recorder: most encoded CPU bytes held in memory.
    #[arg(long, default_value_t = 16)]
    pub ring_mib: usize,
}

impl FlightRecorderArgs {
    /// The recorder's settings, if it is on.
    pub fn recorder(&self) -> Option<FlightRecorder> {
        self.flight_recorder.then(|| {
            FlightRecorder::default()
                .frame_threshold(Duration::from_secs_f64(
                    self.frame_threshold_ms.max(0.0) / 1000.0,
                ))
                .window(
                    Duration::from_millis(self.before_ms),
                    Duration::from_millis(self.after_ms),
                )
                .ring_bytes(self.ring_mib.saturating_mul(1024 * 1024))
        })
    }
}

/// With a flight recorder, blocks are cut this often, so a window ships little more than itself.
const FLIGHT_RECORDER_FLUSH_INTERVAL: Duration = Duration::from_millis(100);

/// What was generated.
#[derive(Clone, Debug)]
pub struct DemoSummary {
    pub process_id: String,
    pub frames: u64,
    pub spikes: u64,
    pub events_written: u64,
    pub blocks_written: u64,
    pub bytes_written: u64,
    pub blocks_dropped: u64,
    /// CPU blocks the flight recorder never wrote.
    pub blocks_sampled_out: u64,
    pub elapsed: Duration,
}

/// Frames between two streaming spikes (≈ every 3 s at 60 fps).
const SPIKE_EVERY_FRAMES: u64 = 180;
const TARGET_FRAME: Duration = Duration::from_micros(16_667);
const ENTITIES: u64 = 256;

/// Burns CPU for `duration` (the streaming spike is a real stall of the main thread).
fn stall(duration: Duration) {
    let until = Instant::now() + duration;
    while Instant::now() < until {
        std::hint::spin_loop();
    }
}

/// Burns CPU for about `units` small steps, so spans have a realistic, non-zero duration.
#[inline(never)]
fn work(units: u64, fast: bool) -> u64 {
    let units = if fast { units.min(1) } else { units * 200 };
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..units {
        x = x.rotate_left(5) ^ i.wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    std::hint::black_box(x)
}

struct Job {
    frame: u64,
    entity: u64,
    done: mpsc::Sender<()>,
}

fn worker_loop(jobs: Arc<Mutex<mpsc::Receiver<Job>>>, fast: bool) {
    loop {
        let job = {
            let Ok(receiver) = jobs.lock() else { return };
            receiver.recv()
        };
        let Ok(job) = job else { return };
        ai_think(job.entity, job.frame, fast);
        // The main loop stopped waiting (the demo is ending): nothing to report to.
        job.done.send(()).ok();
    }
}

#[span_fn("ai.think")]
fn ai_think(entity: u64, frame: u64, fast: bool) {
    let _slowdown = crate::demo_slowdown::Slowdown::begin("ai.think");
    {
        demo_scope!("ai.perception");
        work(20 + entity % 7, fast);
        {
            demo_scope!("ai.perception.raycast");
            work(10, fast);
        }
    }
    if (entity + frame).is_multiple_of(4) {
        demo_scope!("ai.pathfind");
        for step in 0..3 {
            demo_scope!("ai.pathfind.expand");
            work(8 + step, fast);
            {
                demo_scope!("ai.pathfind.heuristic");
                work(3, fast);
            }
        }
    }
    {
        demo_scope!("ai.decide");
        work(15, fast);
    }
    if entity == 13 && frame.is_multiple_of(600) {
        debug!(target: "ai", "entity {entity} replanned at frame {frame}");
    }
}

#[span_fn("physics.step")]
fn physics(frame: u64, fast: bool) {
    let _slowdown = crate::demo_slowdown::Slowdown::begin("physics.step");
    {
        demo_scope!("physics.broadphase");
        for cell in 0..16u64 {
            demo_scope!("physics.broadphase.cell");
            work(5 + cell % 3, fast);
        }
    }
    {
        demo_scope!("physics.narrowphase");
        for pair in 0..48u64 {
            demo_scope!("physics.narrowphase.pair");
            work(4, fast);
            if pair % 6 == 0 {
                demo_scope!("physics.narrowphase.gjk");
                work(6, fast);
                {
                    demo_scope!("physics.narrowphase.epa");
                    work(3, fast);
                }
            }
        }
    }
    {
        demo_scope!("physics.solve");
        for iteration in 0..8u64 {
            demo_scope!("physics.solve.iteration");
            for island in 0..4u64 {
                demo_scope!("physics.solve.island");
                work(6 + island + iteration % 2, fast);
            }
        }
    }
    if frame.is_multiple_of(300) {
        trace!(target: "physics", "frame {frame}: 48 pairs, 8 iterations");
    }
}

#[span_fn("animation.update")]
fn animation(fast: bool) {
    let _slowdown = crate::demo_slowdown::Slowdown::begin("animation.update");
    for entity in 0..ENTITIES {
        demo_scope!("animation.entity");
        {
            demo_scope!("animation.sample");
            work(4 + entity % 5, fast);
        }
        {
            demo_scope!("animation.blend");
            work(3, fast);
            {
                demo_scope!("animation.blend.ik");
                work(2, fast);
            }
        }
    }
}

#[span_fn("render.frame")]
fn render(frame: u64, fast: bool) {
    let _slowdown = crate::demo_slowdown::Slowdown::begin("render.frame");
    {
        demo_scope!("render.culling");
        for chunk in 0..24u64 {
            demo_scope!("render.culling.chunk");
            work(3 + chunk % 4, fast);
        }
    }
    {
        demo_scope!("render.build_commands");
        for pass in ["shadow", "gbuffer", "lighting", "transparent", "post"] {
            span_scope_named!(pass);
            for draw in 0..20u64 {
                demo_scope!("render.draw");
                work(2 + draw % 3, fast);
            }
        }
    }
    {
        demo_scope!("render.submit");
        work(30, fast);
        {
            demo_scope!("render.submit.wait_gpu");
            work(20 + frame % 10, fast);
        }
    }
}

#[span_fn("streaming.load_chunk")]
fn load_chunk(chunk: u64, fast: bool) {
    let _slowdown = crate::demo_slowdown::Slowdown::begin("streaming.load_chunk");
    {
        demo_scope!("streaming.read_file");
        if fast {
            work(400, fast);
        } else {
            stall(Duration::from_millis(22));
        }
    }
    {
        demo_scope!("streaming.decompress");
        for _block in 0..20 {
            demo_scope!("streaming.decompress.block");
            if fast {
                work(8, fast);
            } else {
                stall(Duration::from_micros(600));
            }
        }
    }
    {
        demo_scope!("streaming.instantiate");
        if fast {
            work(100, fast);
        } else {
            stall(Duration::from_millis(9));
        }
    }
    warn!(target: "streaming", "chunk {chunk} loaded on the main thread");
}

#[span_fn("frame.update")]
fn update(frame: u64, jobs: &mpsc::Sender<Job>, fast: bool) {
    let _slowdown = crate::demo_slowdown::Slowdown::begin("frame.update");
    {
        demo_scope!("input.poll");
        work(10, fast);
    }
    // Fan AI out to the job system, simulate while it runs, then wait for it.
    let (done_tx, done_rx) = mpsc::channel();
    {
        demo_scope!("jobs.dispatch_ai");
        for entity in 0..ENTITIES / 2 {
            // Workers only stop once the main loop drops the sender: a send cannot fail here.
            jobs.send(Job {
                frame,
                entity,
                done: done_tx.clone(),
            })
            .ok();
        }
    }
    drop(done_tx);
    physics(frame, fast);
    animation(fast);
    {
        demo_scope!("gameplay.scripts");
        for script in 0..12u64 {
            demo_scope!("gameplay.script");
            work(6 + script % 4, fast);
        }
    }
    {
        demo_scope!("jobs.wait_ai");
        for _ in done_rx.iter() {}
    }
    // The first spike comes 1.5 s in, so even a short or slowed-down capture has one.
    if frame % SPIKE_EVERY_FRAMES == SPIKE_EVERY_FRAMES / 2 {
        load_chunk(frame / SPIKE_EVERY_FRAMES, fast);
    }
}

/// Runs the demo game and records it into `options.lake`.
pub fn run(options: &DemoOptions) -> Result<DemoSummary> {
    run_with(options, None)
}

/// [`run`], with a flight recorder if `recorder` is set.
pub fn run_with(options: &DemoOptions, recorder: Option<FlightRecorder>) -> Result<DemoSummary> {
    let mut config = Config::lake(&options.lake)
        .with_context(|| format!("opening {}", options.lake))?
        .exe("frameline-demo")
        .max_level(Level::Debug)
        .property("map", "harbor_district")
        .property("build", env!("CARGO_PKG_VERSION"))
        .property("mode", if options.fast { "fast" } else { "realtime" });
    if !options.slowdowns.is_empty() {
        let slow: Vec<String> = options
            .slowdowns
            .iter()
            .map(|(name, factor)| format!("{name}={factor}"))
            .collect();
        config = config.property("slow", slow.join(","));
    }
    for (key, value) in &options.properties {
        config = config.property(key, value);
    }
    crate::demo_slowdown::set(&options.slowdowns);
    if let Some(recorder) = recorder {
        config = config
            .flight_recorder(recorder)
            .flush_interval(FLIGHT_RECORDER_FLUSH_INTERVAL)
            .property("flight_recorder", "on");
    }
    let telemetry = frameline_instrument::init(config).context("starting telemetry")?;
    let process_id = telemetry.process_id();
    info!(
        target: "demo",
        "demo starting: {} s, {} workers, fast = {}",
        options.seconds,
        options.worker_threads,
        options.fast
    );

    let (job_tx, job_rx) = mpsc::channel::<Job>();
    let job_rx = Arc::new(Mutex::new(job_rx));
    let workers: Vec<_> = (0..options.worker_threads.max(1))
        .map(|i| {
            let rx = job_rx.clone();
            let fast = options.fast;
            std::thread::Builder::new()
                .name(format!("worker-{i}"))
                .spawn(move || worker_loop(rx, fast))
        })
        .collect::<std::io::Result<_>>()
        .context("starting worker threads")?;

    // A streaming thread that logs what it prefetches, like a real asset system.
    let stop = Arc::new(AtomicBool::new(false));
    let prefetched = Arc::new(AtomicU64::new(0));
    let streamer = {
        let stop = stop.clone();
        let prefetched = prefetched.clone();
        let fast = options.fast;
        std::thread::Builder::new()
            .name("streaming".into())
            .spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    {
                        demo_scope!("streaming.prefetch");
                        work(200, fast);
                    }
                    n += 1;
                    prefetched.store(n, Ordering::Relaxed);
                    if n.is_multiple_of(50) {
                        info!(target: "streaming", "prefetched {n} tiles");
                    }
                    std::thread::sleep(Duration::from_millis(if fast { 1 } else { 20 }));
                }
            })
            .context("starting the streaming thread")?
    };

    let started = Instant::now();
    let run_for = Duration::from_secs_f64(options.seconds.max(0.0));
    let mut frame = 0u64;
    let mut spikes = 0u64;
    let mut last_frame = Instant::now();
    let mut next_deadline = Instant::now() + TARGET_FRAME;
    let mut memory_bytes: u64 = 512 * 1024 * 1024;
    while started.elapsed() < run_for {
        frame!();
        {
            demo_scope!("frame");
            update(frame, &job_tx, options.fast);
            render(frame, options.fast);
        }
        // The first spike comes 1.5 s in, so even a short or slowed-down capture has one.
        if frame % SPIKE_EVERY_FRAMES == SPIKE_EVERY_FRAMES / 2 {
            spikes += 1;
        }
        let frame_ms = last_frame.elapsed().as_secs_f64() * 1000.0;
        last_frame = Instant::now();
        fmetric!("frame_time", "ms", frame_ms);
        memory_bytes = memory_bytes.wrapping_add(frame % 7 * 4096).min(2 << 30);
        imetric!("memory.used", "bytes", memory_bytes);
        imetric!("entities", "count", ENTITIES + frame % 5);
        if frame_ms > 33.3 {
            warn!(target: "demo", "frame {frame} took {frame_ms:.1} ms");
        }
        if frame.is_multiple_of(60) {
            info!(target: "demo", "frame {frame}: {} entities, {:.2} MiB", ENTITIES, memory_bytes as f64 / 1048576.0);
        }
        if frame.is_multiple_of(97) {
            debug!(target: "demo", "camera at ({}, {})", frame as f64 * 0.5, 12.25);
        }
        if frame % 1000 == 999 {
            error!(target: "assets", "missing texture {} (using fallback)", "rock_03.dds");
        }
        frame += 1;
        if !options.fast {
            let now = Instant::now();
            if next_deadline > now {
                std::thread::sleep(next_deadline - now);
            }
            next_deadline = next_deadline.max(now) + TARGET_FRAME;
            if next_deadline < Instant::now() {
                next_deadline = Instant::now() + TARGET_FRAME;
            }
        }
    }
    info!(target: "demo", "demo done: {frame} frames, {spikes} spikes");
    drop(job_tx);
    // A worker that panicked has already printed why; the demo still closes its capture.
    for worker in workers {
        worker.join().ok();
    }
    stop.store(true, Ordering::Relaxed);
    streamer.join().ok();
    let elapsed = started.elapsed();
    let stats = telemetry.shutdown();
    Ok(DemoSummary {
        process_id,
        frames: frame,
        spikes,
        events_written: stats.events_written,
        blocks_written: stats.blocks_written,
        bytes_written: stats.bytes_written,
        blocks_dropped: stats.blocks_dropped,
        blocks_sampled_out: stats.blocks_sampled_out,
        elapsed,
    })
}
