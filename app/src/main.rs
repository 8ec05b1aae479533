//! `frameline`: the viewer (coming with the viewer issue) and its headless subcommands.

mod demo;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "frameline", version, about = "Telemetry for video games")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run a synthetic game instrumented with frameline and record it into a capture.
    Demo {
        /// Capture folder or s3://bucket/prefix (default: a new folder in the user's cache).
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
    },
}

fn default_demo_dir() -> Result<PathBuf> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .or_else(|| std::env::var_os("LOCALAPPDATA").map(PathBuf::from))
        .context("no cache folder: set --out")?;
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Ok(cache.join("frameline").join(format!("demo-{stamp}")))
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

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Demo {
            out,
            seconds,
            threads,
            fast,
        }) => {
            let lake = match out {
                Some(out) => out,
                None => default_demo_dir()?.to_string_lossy().into_owned(),
            };
            eprintln!(
                "recording a {seconds} s demo ({}) into {lake}",
                if fast { "fast" } else { "60 fps" }
            );
            let summary = demo::run(&demo::DemoOptions {
                lake: lake.clone(),
                seconds,
                worker_threads: threads,
                fast,
            })?;
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
            Ok(())
        }
        None => {
            anyhow::bail!(
                "the viewer is not built yet; record a capture with `frameline demo --out DIR`"
            )
        }
    }
}
