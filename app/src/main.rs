//! `frameline`: the viewer and its headless subcommands (demo, query).

#![deny(unsafe_code)]
use frameline::{demo, viewer};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "frameline", version, about = "Telemetry for video games")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum OutputFormat {
    Table,
    Csv,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Open the viewer on a capture folder or s3://bucket/prefix.
    Open {
        /// Capture folder or s3://bucket/prefix.
        lake: String,
        /// Don't compact the lake or compute missing summaries in the background
        /// (also `FRAMELINE_NO_COMPACT=1`).
        #[arg(long)]
        no_compact: bool,
    },
    /// Run SQL on a lake and print the result.
    Query(QueryArgs),
    /// Export a process (or a time range of it) to Perfetto's protobuf trace or Chrome JSON.
    Export(frameline::interop_cli::ExportArgs),
    /// Convert another tool's trace into a lake.
    #[command(subcommand)]
    Import(frameline::interop_cli::ImportCommand),
    /// Run a synthetic game instrumented with frameline and record it into a capture.
    Demo {
        /// Capture folder or s3://bucket/prefix; without it, the capture goes to a new folder in
        /// the user's cache and the viewer opens on it.
        #[arg(long)]
        out: Option<String>,
        /// How long the game runs.
        #[arg(long, default_value_t = 10.0)]
        seconds: f64,
        /// Worker threads of the job system.
        #[arg(long, default_value_t = 3)]
        threads: usize,
        /// Don't sleep and do minimal work per span: record as many spans as possible.
        #[arg(long)]
        fast: bool,
        /// Write one long session of `--seconds` of game time at 60 fps straight into the lake
        /// (real blocks, no game run: 10^8 spans in well under a minute), with 2 + `--threads`
        /// threads of about 240 spans a frame each and a 40 ms stall every 10 s.
        #[arg(long, conflicts_with_all = ["fast", "sessions"])]
        long: bool,
        /// Make a span's own code FACTOR times slower, like a regression (repeatable),
        /// e.g. `--slow physics.solve=1.5`.
        #[arg(long = "slow", value_name = "SPAN=FACTOR", value_parser = frameline::demo::parse_slowdown)]
        slow: Vec<(String, f64)>,
        /// A process property to record (repeatable), e.g. `--property build=b`.
        #[arg(long = "property", value_name = "KEY=VALUE", value_parser = parse_property)]
        properties: Vec<(String, String)>,
        #[command(flatten)]
        recorder: demo::FlightRecorderArgs,
        #[command(flatten)]
        fleet: frameline::lake_cli::FleetArgs,
    },
    /// Compare two captures, builds or time ranges: frame times and span statistics; exit 1 on
    /// a flagged regression past `--fail-if`, 2 on bad input.
    Compare(frameline::compare_cli::CompareArgs),
    /// Maintain a studio lake (compaction, summaries).
    #[command(subcommand)]
    Lake(frameline::lake_cli::LakeCommand),
}

fn parse_property(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => {
            Ok((key.trim().to_owned(), value.trim().to_owned()))
        }
        _ => Err(format!("`{text}`: expected KEY=VALUE, e.g. build=b")),
    }
}

fn default_demo_dir() -> Result<PathBuf> {
    let cache = frameline_engine::dirs::cache_dir().context("no cache folder: set --out")?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Ok(cache.join(format!("demo-{stamp}")))
}

/// Blocks, events and bytes on disk per stream kind of a local capture (from block keys).
fn capture_sizes(root: &std::path::Path) -> std::collections::BTreeMap<String, (u64, u64, u64)> {
    let mut sizes = std::collections::BTreeMap::new();
    let mut stack = vec![root.join(frameline_instrument::lake::BLOCKS_PREFIX)];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let Some(key) = path
                .strip_prefix(root)
                .ok()
                .map(|k| k.to_string_lossy().replace('\\', "/"))
            else {
                continue;
            };
            if let Some(block) = frameline_instrument::lake::BlockKey::parse(&key) {
                let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
                let slot: &mut (u64, u64, u64) =
                    sizes.entry(block.kind.as_str().to_owned()).or_default();
                slot.0 += 1;
                slot.1 += block.event_count as u64;
                slot.2 += size;
            }
        }
    }
    sizes
}

fn render(
    batches: &[frameline_engine::datafusion::arrow::record_batch::RecordBatch],
    format: OutputFormat,
) -> Result<Vec<u8>> {
    use frameline_engine::datafusion::arrow;
    Ok(match format {
        OutputFormat::Table => {
            let mut text = arrow::util::pretty::pretty_format_batches(batches)?.to_string();
            text.push('\n');
            text.into_bytes()
        }
        OutputFormat::Csv => {
            let mut writer = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(Vec::new());
            for batch in batches {
                writer.write(batch)?;
            }
            writer.into_inner()
        }
        OutputFormat::Json => {
            let mut writer = arrow::json::ArrayWriter::new(Vec::new());
            writer.write_batches(&batches.iter().collect::<Vec<_>>())?;
            writer.finish()?;
            let mut bytes = writer.into_inner();
            bytes.push(b'\n');
            bytes
        }
    })
}

#[derive(clap::Args)]
struct QueryArgs {
    /// Capture folder or s3://bucket/prefix.
    #[arg(long)]
    lake: String,
    /// One SQL statement (tables: processes, streams, blocks, log_entries, measures, frames,
    /// thread_spans, views).
    sql: String,
    #[arg(long, value_enum, default_value = "table")]
    format: OutputFormat,
    /// Write the result to this file instead of standard output.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Run the query this many times in one session and print each run's time to standard
    /// error (the first run decodes, later ones hit the cache).
    #[arg(long, default_value_t = 1)]
    repeat: u32,
    /// Print how long opening the lake and each run took, to standard error.
    #[arg(long)]
    timing: bool,
}

async fn query(args: QueryArgs) -> Result<()> {
    let QueryArgs {
        lake,
        sql,
        format,
        out,
        repeat,
        timing,
    } = args;
    let (lake, sql) = (lake.as_str(), sql.as_str());
    let started = std::time::Instant::now();
    let mut engine = frameline_engine::Engine::open(lake).await?;
    if timing {
        eprintln!(
            "open: {:.1} ms ({} processes, {})",
            started.elapsed().as_secs_f64() * 1e3,
            engine.lake().processes().len(),
            engine.lake().requests()
        );
    }
    let mut batches = Vec::new();
    for run in 1..=repeat.max(1) {
        let run_started = std::time::Instant::now();
        let fetched_before = engine.lake().blocks_fetched();
        let requests_before = engine.lake().requests();
        batches = engine.sql(sql).await?;
        if timing || repeat > 1 {
            eprintln!(
                "run {run}: {:.1} ms, {} rows, {} blocks fetched, {}",
                run_started.elapsed().as_secs_f64() * 1e3,
                batches.iter().map(|b| b.num_rows()).sum::<usize>(),
                engine.lake().blocks_fetched() - fetched_before,
                engine.lake().requests().since(&requests_before)
            );
        }
    }
    for notice in engine.notices() {
        eprintln!("note: {notice}");
    }
    for problem in engine.lake().problems() {
        eprintln!("skipped: {}: {}", problem.key, problem.detail);
    }
    engine.flush_cache().await;
    let bytes = render(&batches, format)?;
    match out {
        Some(path) => {
            std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?
        }
        None => {
            use std::io::Write;
            std::io::stdout().write_all(&bytes)?;
        }
    }
    Ok(())
}

fn run_viewer(startup: viewer::Startup) -> Result<()> {
    run_viewer_with(startup, true)
}

/// `auto_compact`: maintain the lake in the background unless `FRAMELINE_NO_COMPACT` is set.
fn run_viewer_with(startup: viewer::Startup, auto_compact: bool) -> Result<()> {
    let auto_compact = auto_compact && std::env::var_os("FRAMELINE_NO_COMPACT").is_none();
    let mut viewport = egui::ViewportBuilder::default()
        .with_title("Frameline")
        .with_app_id("frameline")
        .with_inner_size([1400.0, 900.0])
        .with_min_inner_size([640.0, 400.0]);
    if let Ok(icon) =
        eframe::icon_data::from_png_bytes(include_bytes!("../../assets/frameline.png"))
    {
        viewport = viewport.with_icon(icon);
    }
    let options = eframe::NativeOptions {
        viewport,
        renderer: eframe::Renderer::Wgpu,
        ..Default::default()
    };
    eframe::run_native(
        "frameline",
        options,
        Box::new(move |cc| {
            Ok(Box::new(viewer::ViewerApp::new_configured(
                cc,
                startup,
                true,
                auto_compact,
            )))
        }),
    )
    .map_err(|e| anyhow::anyhow!("the viewer could not start: {e}"))
}

fn main() {
    if let Err(e) = run() {
        // One line: what failed and why (the chain of causes, without a backtrace; servers'
        // multi-line answers are folded).
        let message = format!("{e:#}");
        let one_line: Vec<&str> = message.split_whitespace().collect();
        eprintln!("error: {}", one_line.join(" "));
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Query(args)) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the query runtime")?;
            runtime.block_on(query(args))
        }
        Some(Command::Export(args)) => {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the export runtime")?;
            runtime.block_on(frameline::interop_cli::export(args))
        }
        Some(Command::Import(command)) => frameline::interop_cli::import(command),
        Some(Command::Demo {
            out,
            seconds,
            threads,
            fast,
            long,
            slow,
            properties,
            recorder,
            fleet,
        }) => {
            let open_after = out.is_none();
            let lake = match out {
                Some(out) => out,
                None => default_demo_dir()?.to_string_lossy().into_owned(),
            };
            if long {
                frameline::lake_cli::write_long(&lake, seconds, threads)?;
                if open_after {
                    run_viewer(viewer::Startup::Open(lake))?;
                }
                return Ok(());
            }
            if let Some(sessions) = fleet.sessions {
                frameline::lake_cli::write_sessions(&lake, sessions, &fleet)?;
                if open_after {
                    run_viewer(viewer::Startup::Open(lake))?;
                }
                return Ok(());
            }
            eprintln!(
                "recording a {seconds} s demo ({}) into {lake}",
                if fast { "fast" } else { "60 fps" }
            );
            let summary = demo::run_with(
                &demo::DemoOptions {
                    lake: lake.clone(),
                    seconds,
                    worker_threads: threads,
                    fast,
                    slowdowns: slow,
                    properties,
                },
                recorder.recorder(),
            )?;
            let secs = summary.elapsed.as_secs_f64();
            println!("capture:  {lake}");
            println!("process:  {}", summary.process_id);
            println!(
                "frames:   {} ({} streaming spikes) in {:.1} s",
                summary.frames, summary.spikes, secs
            );
            println!(
                "events:   {} ({:.1} M/s) in {} blocks, {} bytes ({:.2} bytes/event)",
                summary.events_written,
                summary.events_written as f64 / secs.max(1e-9) / 1e6,
                summary.blocks_written,
                summary.bytes_written,
                summary.bytes_written as f64 / (summary.events_written.max(1)) as f64
            );
            if !lake.starts_with("s3://") {
                for (kind, (blocks, events, bytes)) in capture_sizes(std::path::Path::new(&lake)) {
                    println!(
                        "  {kind:<8} {events:>11} events {blocks:>6} blocks {bytes:>12} bytes  {:.3} bytes/event",
                        bytes as f64 / events.max(1) as f64
                    );
                }
            }
            if summary.blocks_dropped > 0 {
                println!(
                    "lost:     {} blocks (sink too slow)",
                    summary.blocks_dropped
                );
            }
            if recorder.flight_recorder {
                println!(
                    "sampled out: {} CPU blocks (flight recorder)",
                    summary.blocks_sampled_out
                );
            }
            if open_after {
                run_viewer(viewer::Startup::Open(lake))?;
            }
            Ok(())
        }
        Some(Command::Lake(command)) => frameline::lake_cli::run(command),
        Some(Command::Compare(args)) => std::process::exit(frameline::compare_cli::run(args)),
        Some(Command::Open { lake, no_compact }) => {
            run_viewer_with(viewer::Startup::Open(lake), !no_compact)
        }
        None => run_viewer(viewer::Startup::StartScreen),
    }
}
