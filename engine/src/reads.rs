//! Typed reads: what the viewer and the tools ask the lake, as Rust values. They are built with
//! DataFusion's DataFrame API (no SQL text, so nothing to quote) on the same tables as SQL, so
//! the same pruning and caches apply, and read back through [`crate::columns`], which returns an
//! error, never a panic, when a column has an unexpected type.

use crate::columns::{f64s, i64s, strings, u32s};
use crate::{Engine, EngineError};
use datafusion::arrow::array::RecordBatch;
use datafusion::dataframe::DataFrame;
use datafusion::prelude::{Expr, col, lit};

/// One frame of a frame set (`frame!` markers): from one marker to the next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameTime {
    pub begin_ns: i64,
    pub end_ns: i64,
}

impl FrameTime {
    pub fn duration_ns(&self) -> i64 {
        self.end_ns.saturating_sub(self.begin_ns)
    }

    pub fn ms(&self) -> f64 {
        self.duration_ns() as f64 / 1e6
    }
}

/// One log line.
#[derive(Clone, Debug, PartialEq)]
pub struct LogLine {
    pub time_ns: i64,
    /// 1 error … 5 trace.
    pub level: u8,
    pub level_name: String,
    pub target: String,
    pub thread_name: String,
    pub process_id: String,
    pub message: String,
}

/// A metric recorded by the processes, with its unit.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct MetricName {
    pub name: String,
    pub unit: String,
}

/// The samples of one metric, in time order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricSamples {
    pub time_ns: Vec<i64>,
    pub values: Vec<f64>,
}

/// `process_id IN (...)`, or nothing for all processes.
fn of_processes(process_ids: &[String]) -> Option<Expr> {
    (!process_ids.is_empty()).then(|| {
        col("process_id").in_list(
            process_ids.iter().map(|id| lit(id.as_str())).collect(),
            false,
        )
    })
}

fn filtered(
    frame: DataFrame,
    filters: impl IntoIterator<Item = Option<Expr>>,
) -> Result<DataFrame, EngineError> {
    let mut frame = frame;
    for filter in filters.into_iter().flatten() {
        frame = frame.filter(filter)?;
    }
    Ok(frame)
}

impl Engine {
    async fn read(&self, frame: DataFrame) -> Result<Vec<RecordBatch>, EngineError> {
        Ok(frame.collect().await?)
    }

    /// The frames of `frame_set` (`"frame"` for `frame!()`) of `process_ids` (all if empty), in
    /// time order.
    pub async fn frame_times(
        &self,
        process_ids: &[String],
        frame_set: &str,
    ) -> Result<Vec<FrameTime>, EngineError> {
        let frame = filtered(
            self.context().table("frames").await?,
            [
                Some(col("name").eq(lit(frame_set))),
                of_processes(process_ids),
            ],
        )?
        .select(vec![col("begin_time"), col("end_time")])?
        .sort(vec![col("begin_time").sort(true, false)])?;
        let mut frames = Vec::new();
        for batch in self.read(frame).await? {
            let (begins, ends) = (i64s(&batch, "begin_time")?, i64s(&batch, "end_time")?);
            frames.extend(
                begins
                    .into_iter()
                    .zip(ends)
                    .map(|(begin_ns, end_ns)| FrameTime { begin_ns, end_ns }),
            );
        }
        Ok(frames)
    }

    /// [`Engine::frame_times`] with the process of each frame (what a comparison of several
    /// processes needs: spans belong to the frames of their own process).
    pub async fn frame_times_by_process(
        &self,
        process_ids: &[String],
        frame_set: &str,
    ) -> Result<Vec<(String, FrameTime)>, EngineError> {
        let frame = filtered(
            self.context().table("frames").await?,
            [
                Some(col("name").eq(lit(frame_set))),
                of_processes(process_ids),
            ],
        )?
        .select(vec![col("process_id"), col("begin_time"), col("end_time")])?
        .sort(vec![col("begin_time").sort(true, false)])?;
        let mut frames = Vec::new();
        for batch in self.read(frame).await? {
            let processes = strings(&batch, "process_id")?;
            let (begins, ends) = (i64s(&batch, "begin_time")?, i64s(&batch, "end_time")?);
            frames.extend(
                processes
                    .into_iter()
                    .zip(begins.into_iter().zip(ends))
                    .map(|(p, (begin_ns, end_ns))| (p, FrameTime { begin_ns, end_ns })),
            );
        }
        Ok(frames)
    }

    /// The first `limit` log lines of `process_ids` (all if empty), in time order.
    pub async fn log_lines(
        &self,
        process_ids: &[String],
        limit: usize,
    ) -> Result<Vec<LogLine>, EngineError> {
        let frame = filtered(
            self.context().table("log_entries").await?,
            [of_processes(process_ids)],
        )?
        .select(vec![
            col("time"),
            col("level_num"),
            col("level"),
            col("target"),
            col("thread_name"),
            col("process_id"),
            col("message"),
        ])?
        .sort(vec![col("time").sort(true, false)])?;
        // DataFusion's limits are signed: a larger one is no limit.
        let frame = match i64::try_from(limit) {
            Ok(_) => frame.limit(0, Some(limit))?,
            Err(_) => frame,
        };
        let mut lines = Vec::new();
        for batch in self.read(frame).await? {
            let times = i64s(&batch, "time")?;
            let levels = u32s(&batch, "level_num")?;
            let level_names = strings(&batch, "level")?;
            let targets = strings(&batch, "target")?;
            let threads = strings(&batch, "thread_name")?;
            let processes = strings(&batch, "process_id")?;
            let messages = strings(&batch, "message")?;
            let rows = times
                .into_iter()
                .zip(levels)
                .zip(level_names)
                .zip(targets)
                .zip(threads)
                .zip(processes)
                .zip(messages);
            lines.extend(rows.map(
                |(
                    (((((time_ns, level), level_name), target), thread_name), process_id),
                    message,
                )| {
                    LogLine {
                        time_ns,
                        level: level.min(u8::MAX as u32) as u8,
                        level_name,
                        target,
                        thread_name,
                        process_id,
                        message,
                    }
                },
            ));
        }
        Ok(lines)
    }

    /// Every metric (name and unit) recorded by `process_ids` (all if empty), sorted.
    pub async fn metric_names(
        &self,
        process_ids: &[String],
    ) -> Result<Vec<MetricName>, EngineError> {
        let frame = filtered(
            self.context().table("measures").await?,
            [of_processes(process_ids)],
        )?
        .select(vec![col("name"), col("unit")])?
        .distinct()?;
        let mut names = Vec::new();
        for batch in self.read(frame).await? {
            let units = strings(&batch, "unit")?;
            names.extend(
                strings(&batch, "name")?
                    .into_iter()
                    .zip(units)
                    .map(|(name, unit)| MetricName { name, unit }),
            );
        }
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// The samples of metric `name` of `process_ids` (all if empty), in time order.
    pub async fn metric_samples(
        &self,
        process_ids: &[String],
        name: &str,
    ) -> Result<MetricSamples, EngineError> {
        let frame = filtered(
            self.context().table("measures").await?,
            [Some(col("name").eq(lit(name))), of_processes(process_ids)],
        )?
        .select(vec![col("time"), col("value")])?
        .sort(vec![col("time").sort(true, false)])?;
        let mut samples = MetricSamples::default();
        for batch in self.read(frame).await? {
            samples.time_ns.extend(i64s(&batch, "time")?);
            samples.values.extend(f64s(&batch, "value")?);
        }
        Ok(samples)
    }
}
