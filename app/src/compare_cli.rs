//! `frameline compare`: two sides' frame times and span statistics, as a table, CSV or JSON, and
//! `--fail-if` conditions for a nightly pipeline. Exit status: 0 nothing tripped, 1 a flagged
//! regression passed a threshold, 2 bad input (one line on standard error).

use anyhow::{Context, Result, anyhow};
use frameline_engine::compare::{
    self, CompareError, CompareOptions, Condition, SideSpec, Violation,
};
use frameline_engine::{Engine, Progress};
use std::collections::BTreeMap;
use std::io::Write;

#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum CompareFormat {
    Table,
    Csv,
    Json,
}

#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// The reference: LAKE, LAKE#process_id[,…], LAKE#key=value[,…] (process properties, exe,
    /// computer, user, os), each optionally @FROM..TO (e.g. @2s..5s from the first start).
    #[arg(long)]
    pub baseline: String,
    /// What is judged against the baseline (same forms).
    #[arg(long)]
    pub candidate: String,
    /// The lake of a side written without one (`--lake caps --baseline '#build=a'`).
    #[arg(long)]
    pub lake: Option<String>,
    /// Only these span names (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub spans: Option<Vec<String>>,
    /// The frame markers spans are counted per.
    #[arg(long, default_value = "frame")]
    pub frames: String,
    /// Exit 1 when a flagged change passes this, e.g. 'p99 > +10%', 'spans.self > +10%',
    /// 'physics.solve.p99 > +2ms' (repeatable).
    #[arg(long = "fail-if")]
    pub fail_if: Vec<String>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: CompareFormat,
    /// The frame-time target marked in the table.
    #[arg(long, default_value_t = 1000.0 / 60.0)]
    pub target_ms: f64,
    /// Print load and compare times and S3 request counts to standard error.
    #[arg(long)]
    pub timing: bool,
}

/// Runs the comparison; the process's exit status.
pub fn run(args: CompareArgs) -> i32 {
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the compare runtime")
        .and_then(|runtime| runtime.block_on(compare_and_print(&args)));
    match outcome {
        Ok(violations) if violations.is_empty() => 0,
        Ok(violations) => {
            for v in &violations {
                eprintln!("FAIL {}: {}", v.condition, v.what);
            }
            eprintln!("regression: {} condition(s) tripped", violations.len());
            1
        }
        Err(e) => {
            let message = format!("{e:#}");
            let one_line: Vec<&str> = message.split_whitespace().collect();
            eprintln!("error: {}", one_line.join(" "));
            2
        }
    }
}

fn side_spec(text: &str, default_lake: Option<&str>) -> Result<SideSpec> {
    let mut spec: SideSpec = text.parse()?;
    if spec.lake.is_none() {
        let lake = default_lake
            .ok_or_else(|| anyhow!("`{text}` names no lake: write LAKE#… or pass --lake"))?;
        spec.lake = Some(lake.to_owned());
    }
    Ok(spec)
}

async fn compare_and_print(args: &CompareArgs) -> Result<Vec<Violation>> {
    let baseline = side_spec(&args.baseline, args.lake.as_deref())?;
    let candidate = side_spec(&args.candidate, args.lake.as_deref())?;
    let conditions: Vec<Condition> = args
        .fail_if
        .iter()
        .map(|c| c.parse())
        .collect::<Result<_, CompareError>>()?;
    if !args.target_ms.is_finite() || args.target_ms <= 0.0 {
        return Err(anyhow!("--target-ms must be a positive number"));
    }
    let started = std::time::Instant::now();
    // Each lake is opened once, even when both sides are in it.
    let mut engines: BTreeMap<String, Engine> = BTreeMap::new();
    for spec in [&baseline, &candidate] {
        let lake = spec.lake.clone().unwrap_or_default();
        if let std::collections::btree_map::Entry::Vacant(slot) = engines.entry(lake) {
            let engine = Engine::open(slot.key())
                .await
                .with_context(|| format!("opening {}", slot.key()))?;
            slot.insert(engine);
        }
    }
    let engine_of = |spec: &SideSpec| {
        engines
            .get(spec.lake.as_deref().unwrap_or_default())
            .ok_or_else(|| anyhow!("no engine for {spec}"))
    };
    let (base_engine, cand_engine) = (engine_of(&baseline)?, engine_of(&candidate)?);
    let opened = started.elapsed();
    let (progress_b, progress_c) = (Progress::default(), Progress::default());
    let (base, cand) = tokio::join!(
        compare::load_side(base_engine, &baseline, &args.frames, &progress_b),
        compare::load_side(cand_engine, &candidate, &args.frames, &progress_c),
    );
    let (base, cand) = (base?, cand?);
    for (side, spec) in [(&base, &baseline), (&cand, &candidate)] {
        if side.frame_count() == 0 {
            return Err(CompareError::NoFrames {
                spec: spec.to_string(),
                frame_set: args.frames.clone(),
            }
            .into());
        }
    }
    let loaded = started.elapsed();
    let options = CompareOptions {
        spans: args.spans.clone(),
        target_frame_ns: (args.target_ms * 1e6) as i64,
        ..Default::default()
    };
    let comparison = compare::compare(&base, &cand, &options);
    let compared = started.elapsed();
    if args.timing {
        // What the viewer also computes: the flame-graph diff (the CLI prints no flame graph).
        let flame_started = std::time::Instant::now();
        let flame = compare::FlameComparison::build(&base, &cand);
        let flame_ms = flame_started.elapsed().as_secs_f64() * 1e3;
        let spans = base.model.span_count() + cand.model.span_count();
        eprintln!(
            "open {:.1} ms, load {:.1} ms ({spans} spans), compare {:.1} ms, flame diff {flame_ms:.1} ms ({} nodes)",
            opened.as_secs_f64() * 1e3,
            (loaded - opened).as_secs_f64() * 1e3,
            (compared - loaded).as_secs_f64() * 1e3,
            flame.candidate.nodes.len()
        );
        for (lake, engine) in &engines {
            eprintln!("{lake}: {}", engine.lake().requests());
        }
    }
    for engine in engines.values() {
        for notice in engine.notices() {
            eprintln!("note: {notice}");
        }
        if engine.lake().blocks_skipped() > 0 {
            eprintln!(
                "skipped: {} damaged blocks in {} (see lake_problems)",
                engine.lake().blocks_skipped(),
                engine.lake().location()
            );
        }
    }
    let violations: Vec<Violation> = conditions
        .iter()
        .flat_map(|c| c.check(&comparison))
        .collect();
    let text = match args.format {
        CompareFormat::Table => crate::compare_render::table(&comparison),
        CompareFormat::Csv => crate::compare_render::csv(&comparison),
        CompareFormat::Json => crate::compare_render::json(&comparison, &violations)?,
    };
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    for engine in engines.values() {
        engine.flush_cache().await;
    }
    Ok(violations)
}
