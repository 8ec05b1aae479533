//! The `export` and `import` subcommands' arguments and glue: a thin command line over the
//! `frameline-interop` crate.

use anyhow::{Context, Result, bail};
use frameline_engine::Engine;
use frameline_interop::{Format, export, import_chrome};
use std::path::PathBuf;

/// The `--format` of `frameline export` (the interop crate's [`Format`], which knows no clap).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum FormatArg {
    /// Perfetto's protobuf trace (ui.perfetto.dev, trace_processor).
    Perfetto,
    /// Chrome's JSON Trace Event Format (chrome://tracing, Perfetto, Speedscope).
    Chrome,
}

impl From<FormatArg> for Format {
    fn from(format: FormatArg) -> Format {
        match format {
            FormatArg::Perfetto => Format::Perfetto,
            FormatArg::Chrome => Format::Chrome,
        }
    }
}

#[derive(clap::Args)]
pub struct ExportArgs {
    /// Capture folder or s3://bucket/prefix.
    #[arg(long)]
    pub lake: String,
    /// The process to export: its id, or the start of it if only one process matches.
    #[arg(long)]
    pub process: String,
    /// Start of the range: Unix nanoseconds, an offset from the process's start (`+1.5s`,
    /// `+200ms`, `+30us`, `+10ns`), or a timestamp (`2026-11-25T17:19:39.5Z`).
    #[arg(long, allow_hyphen_values = true)]
    pub begin: Option<String>,
    /// End of the range (same forms as --begin).
    #[arg(long, allow_hyphen_values = true)]
    pub end: Option<String>,
    #[arg(long, value_enum)]
    pub format: FormatArg,
    /// The file to write.
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(clap::Subcommand)]
pub enum ImportCommand {
    /// A Chrome JSON trace (array or {"traceEvents": [...]}) into a new or existing lake.
    ChromeTrace {
        /// The trace file.
        file: PathBuf,
        /// Capture folder (or s3://bucket/prefix) to write into.
        #[arg(long)]
        out: String,
    },
}

fn parse_offset_ns(text: &str) -> Option<i64> {
    let (number, scale) = [("ns", 1.0), ("us", 1e3), ("ms", 1e6), ("s", 1e9)]
        .into_iter()
        .find_map(|(suffix, scale)| text.strip_suffix(suffix).map(|n| (n, scale)))?;
    let value: f64 = number.trim().parse().ok()?;
    let ns = (value * scale).round();
    ns.is_finite().then_some(ns as i64)
}

/// A time argument to Unix nanoseconds.
async fn parse_time(engine: &Engine, text: &str, process_start_ns: i64) -> Result<i64> {
    let text = text.trim();
    if let Ok(ns) = text.parse::<i64>() {
        return Ok(ns);
    }
    if let Some(offset) = text.strip_prefix('+') {
        let Some(ns) = parse_offset_ns(offset) else {
            bail!("{text}: an offset is a number with a unit, e.g. +1.5s, +200ms, +30us");
        };
        return Ok(process_start_ns.saturating_add(ns));
    }
    let sql = format!(
        "SELECT CAST(to_timestamp('{}') AS BIGINT) AS t",
        text.replace('\'', "''")
    );
    let batches = engine.query(&sql).await.with_context(|| {
        format!("{text}: not Unix nanoseconds, an offset (+1.5s) or a timestamp")
    })?;
    let mut times = Vec::new();
    for batch in &batches {
        times.extend(frameline_engine::columns::i64s(batch, "t")?);
    }
    times
        .first()
        .copied()
        .filter(|&t| t != 0)
        .with_context(|| format!("{text}: not a timestamp"))
}

pub async fn export(args: ExportArgs) -> Result<()> {
    let engine = Engine::open(&args.lake).await?;
    let processes = engine.lake().processes();
    let matching: Vec<_> = processes
        .iter()
        .filter(|p| p.process_id.starts_with(&args.process))
        .collect();
    let process = match matching.as_slice() {
        [one] => *one,
        [] => bail!(
            "no process {} in {} (list them with: frameline query --lake {} \"SELECT process_id, exe, start_time FROM processes\")",
            args.process,
            args.lake,
            args.lake
        ),
        many => bail!(
            "{} processes start with {}: give more of the id",
            many.len(),
            args.process
        ),
    };
    let start_ns = process.start_unix_ns;
    let range = match (&args.begin, &args.end) {
        (None, None) => None,
        (begin, end) => {
            let begin = match begin {
                Some(t) => parse_time(&engine, t, start_ns).await?,
                // Far enough to cover any capture, and still a valid SQL literal.
                None => i64::MIN / 2,
            };
            let end = match end {
                Some(t) => parse_time(&engine, t, start_ns).await?,
                None => i64::MAX / 2,
            };
            if begin > end {
                bail!("--begin is after --end");
            }
            Some((begin, end))
        }
    };
    let ids = [process.process_id.clone()];
    let summary = export::export_range(&engine, &ids, range, args.format.into(), &args.out).await?;
    println!("{}: {summary}", args.out.display());
    Ok(())
}

pub fn import(command: ImportCommand) -> Result<()> {
    match command {
        ImportCommand::ChromeTrace { file, out } => {
            let report = import_chrome::import_file(&file, &out)?;
            for line in report.warnings() {
                eprintln!("{line}");
            }
            println!(
                "{out}: {} processes, {} slices, {} log entries, {} counter samples",
                report.process_ids.len(),
                report.slices,
                report.logs,
                report.samples
            );
            for id in &report.process_ids {
                println!("process:  {id}");
            }
            Ok(())
        }
    }
}
