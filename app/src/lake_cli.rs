//! `frameline lake …` (maintenance of a studio lake) and `frameline demo --sessions N` (a
//! synthetic studio lake): compaction of the catalog and the per-session summaries, with what
//! they cost in requests.

use anyhow::{Context, Result};
use frameline_engine::generate::{FleetOptions, write_fleet};
use frameline_engine::{CompactOptions, Engine, Lake};
use std::time::{Duration, Instant};

#[derive(clap::Subcommand)]
pub enum LakeCommand {
    /// Fold finished sessions' small objects into the catalog's Parquet parts and compute the
    /// summaries of sessions that have none (idempotent; safe beside games and other readers).
    Compact {
        /// Capture folder or s3://bucket/prefix.
        lake: String,
        /// Only compact the catalog.
        #[arg(long)]
        no_summaries: bool,
        /// Unfinished sessions (killed games) are folded once their description is this old.
        #[arg(long, default_value_t = 24.0)]
        stale_hours: f64,
    },
    /// Print the sessions of the last days grouped by a property, with each group's frame-time
    /// percentiles merged from the summaries (what the viewer's fleet page plots).
    Fleet {
        /// Capture folder or s3://bucket/prefix.
        lake: String,
        /// Sessions started in the last this many days (0: all).
        #[arg(long, default_value_t = 7)]
        days: u32,
        /// The property to group by.
        #[arg(long, default_value = "build")]
        group_by: String,
    },
}

#[derive(clap::Args)]
pub struct FleetArgs {
    /// Write this many short synthetic sessions (varied build, map, platform) instead of
    /// running the game once.
    #[arg(long)]
    pub sessions: Option<usize>,
    /// Sessions start spread over this many days before now.
    #[arg(long, default_value_t = 7)]
    pub days: u32,
    /// Frames per synthetic session.
    #[arg(long, default_value_t = 300)]
    pub frames: u32,
    /// Blocks per stream of each synthetic session.
    #[arg(long, default_value_t = 1)]
    pub blocks_per_stream: u32,
    /// Leave the written sessions uncompacted (no catalog parts, no summaries).
    #[arg(long)]
    pub no_compact: bool,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")
}

/// Compacts `lake` and refreshes its summaries, printing what it did.
pub async fn compact(lake: &str, summaries: bool, stale_after: Duration) -> Result<()> {
    let started = Instant::now();
    let reader = Lake::open(lake).await?;
    let opened = reader.requests();
    let report = reader
        .compact(&CompactOptions { stale_after })
        .await
        .with_context(|| format!("compacting {lake}"))?;
    println!(
        "catalog: {} sessions and {} streams folded into {} parts over {} dates ({} parts and {} objects removed) in {:.2} s; open {opened}, compaction {}",
        report.processes_folded,
        report.streams_folded,
        report.parts_written,
        report.dates,
        report.parts_deleted,
        report.objects_deleted,
        started.elapsed().as_secs_f64(),
        report.requests
    );
    for problem in &report.problems {
        eprintln!("skipped: {problem}");
    }
    if summaries {
        let started = Instant::now();
        let engine = Engine::open(lake).await?;
        let report = engine
            .refresh_summaries()
            .await
            .with_context(|| format!("computing the summaries of {lake}"))?;
        let secs = started.elapsed().as_secs_f64();
        println!(
            "summaries: {} sessions in {:.2} s ({:.0} sessions/min), {} parts written, {} merged; {} ({:.1} per session)",
            report.sessions_summarized,
            secs,
            report.sessions_summarized as f64 / secs.max(1e-9) * 60.0,
            report.parts_written,
            report.parts_merged,
            report.requests,
            report.requests.total() as f64 / report.sessions_summarized.max(1) as f64
        );
        for why in &report.failed {
            eprintln!("summary not computed (tried again next time): {why}");
        }
    }
    Ok(())
}

/// `frameline lake fleet`: groups and their percentiles, with what it cost.
pub async fn fleet(lake: &str, days: u32, group_by: &str) -> Result<()> {
    let started = Instant::now();
    let engine = Engine::open_since(
        lake,
        &frameline_engine::S3Options::default(),
        (days > 0).then(|| {
            frameline_engine::generate::now_unix_ns() - i64::from(days) * 86_400 * 1_000_000_000
        }),
    )
    .await?;
    let opened = started.elapsed();
    let since = (days > 0).then(|| {
        frameline_engine::generate::now_unix_ns() - i64::from(days) * 86_400 * 1_000_000_000
    });
    let fleet = engine.fleet(since).await?;
    let all: std::collections::HashSet<usize> = (0..fleet.sessions.len()).collect();
    let groups = frameline_engine::fleet::distribution_by(
        &fleet.sessions,
        &fleet.histograms,
        &all,
        group_by,
    );
    let elapsed = started.elapsed();
    println!(
        "{group_by:<12} {:>9} {:>10} {:>9} {:>9} {:>9}",
        "sessions", "frames", "P50 ms", "P95 ms", "P99 ms"
    );
    for g in &groups {
        println!(
            "{:<12} {:>9} {:>10} {:>9.1} {:>9.1} {:>9.1}",
            g.value,
            g.sessions,
            g.frames,
            g.p50_ns as f64 / 1e6,
            g.p95_ns as f64 / 1e6,
            g.p99_ns as f64 / 1e6
        );
    }
    eprintln!(
        "{} sessions ({} summarized) in {:.0} ms (open {:.0} ms), {}",
        fleet.sessions.len(),
        fleet.sessions.iter().filter(|s| s.frames.is_some()).count(),
        elapsed.as_secs_f64() * 1e3,
        opened.as_secs_f64() * 1e3,
        engine.lake().requests()
    );
    Ok(())
}

pub fn run(command: LakeCommand) -> Result<()> {
    match command {
        LakeCommand::Fleet {
            lake,
            days,
            group_by,
        } => runtime()?.block_on(fleet(&lake, days, &group_by)),
        LakeCommand::Compact {
            lake,
            no_summaries,
            stale_hours,
        } => runtime()?.block_on(compact(
            &lake,
            !no_summaries,
            Duration::from_secs_f64(stale_hours.max(0.0) * 3600.0),
        )),
    }
}

/// `frameline demo --sessions N`: writes the sessions, then compacts (unless told not to).
/// `frameline demo --long`: one long session written straight into `lake`.
pub fn write_long(lake: &str, seconds: f64, worker_threads: usize) -> Result<()> {
    let started = Instant::now();
    let options = frameline_engine::generate::LongSessionOptions {
        seconds,
        threads: u32::try_from(worker_threads.saturating_add(2)).unwrap_or(u32::MAX),
        ..Default::default()
    };
    let shown = std::sync::atomic::AtomicU64::new(u64::MAX);
    let report = frameline_engine::generate::write_long_session(lake, &options, &|done| {
        // Once per whole percent: the line is redrawn, not repeated in a log.
        let percent = (done * 100.0) as u64;
        if shown.swap(percent, std::sync::atomic::Ordering::Relaxed) != percent {
            eprint!("\rwriting a {seconds} s session: {percent} %");
        }
    })?;
    eprintln!();
    let secs = started.elapsed().as_secs_f64();
    println!("capture:  {lake}");
    println!("process:  {}", report.process_id);
    println!(
        "frames:   {} ({} stalls), {} spans, written in {secs:.1} s ({:.1} M spans/s)",
        report.frames,
        report.spike_frames_ns.len(),
        report.spans,
        report.spans as f64 / secs.max(1e-9) / 1e6
    );
    Ok(())
}

pub fn write_sessions(lake: &str, sessions: usize, args: &FleetArgs) -> Result<()> {
    let started = Instant::now();
    let options = FleetOptions {
        sessions,
        days: args.days,
        frames_per_session: args.frames,
        blocks_per_stream: args.blocks_per_stream,
        ..FleetOptions::default()
    };
    let step = (sessions / 20).max(1);
    write_fleet(lake, &options, &|done| {
        if done % step == 0 || done == sessions {
            eprint!("\rwriting sessions: {done}/{sessions}");
        }
    })?;
    eprintln!();
    println!(
        "{sessions} sessions written into {lake} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if !args.no_compact {
        runtime()?.block_on(compact(lake, true, Duration::from_secs(24 * 3600)))?;
    }
    Ok(())
}
