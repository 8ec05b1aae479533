//! A query's result made ready to show: every cell as text (first [`MAX_ROWS`] rows), numeric and
//! timestamp columns also as numbers for sorting and plotting, and begin/end columns as spans for
//! "Add to timeline".

use frameline_engine::datafusion::arrow::array::{Array, AsArray, RecordBatch};
use frameline_engine::datafusion::arrow::compute::cast;
use frameline_engine::datafusion::arrow::datatypes::{DataType, Float64Type, TimeUnit};
use frameline_engine::datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};

/// Rows kept from one result (the rest are counted, not shown).
pub const MAX_ROWS: usize = 200_000;

/// A query result, ready to show: every cell as text, numeric columns also as numbers.
#[derive(Clone, Debug, Default)]
pub struct QueryResult {
    pub sql: String,
    pub columns: Vec<String>,
    /// `cells[column][row]`.
    pub cells: Vec<Vec<String>>,
    /// Numbers of numeric and timestamp columns (timestamps in ns since the epoch).
    pub numbers: Vec<Option<Vec<f64>>>,
    pub is_timestamp: Vec<bool>,
    pub rows: usize,
    pub total_rows: usize,
    pub elapsed_ms: f64,
}

fn numbers_of(array: &dyn Array) -> Option<Vec<f64>> {
    let dt = array.data_type();
    let as_f64 = match dt {
        DataType::Timestamp(_, tz) => {
            let ns = cast(
                array,
                &DataType::Timestamp(TimeUnit::Nanosecond, tz.clone()),
            )
            .ok()?;
            let ints = cast(&ns, &DataType::Int64).ok()?;
            cast(&ints, &DataType::Float64).ok()?
        }
        d if d.is_numeric() => cast(array, &DataType::Float64).ok()?,
        _ => return None,
    };
    let f = as_f64.as_primitive::<Float64Type>();
    Some(
        (0..f.len())
            .map(|i| if f.is_null(i) { f64::NAN } else { f.value(i) })
            .collect(),
    )
}

impl QueryResult {
    pub fn from_batches(sql: &str, batches: &[RecordBatch], elapsed_ms: f64) -> QueryResult {
        let Some(first) = batches.first() else {
            return QueryResult {
                sql: sql.to_owned(),
                elapsed_ms,
                ..Default::default()
            };
        };
        let schema = first.schema();
        let n = schema.fields().len();
        let mut out = QueryResult {
            sql: sql.to_owned(),
            columns: schema.fields().iter().map(|f| f.name().clone()).collect(),
            cells: vec![Vec::new(); n],
            numbers: schema
                .fields()
                .iter()
                .map(|f| {
                    (f.data_type().is_numeric() || matches!(f.data_type(), DataType::Timestamp(..)))
                        .then(Vec::new)
                })
                .collect(),
            is_timestamp: schema
                .fields()
                .iter()
                .map(|f| matches!(f.data_type(), DataType::Timestamp(..)))
                .collect(),
            elapsed_ms,
            ..Default::default()
        };
        let options = FormatOptions::default().with_null("NULL");
        for batch in batches {
            out.total_rows += batch.num_rows();
            let take = batch.num_rows().min(MAX_ROWS - out.rows);
            if take == 0 {
                continue;
            }
            for (c, column) in batch.columns().iter().enumerate().take(n) {
                let column = column.slice(0, take);
                match ArrayFormatter::try_new(column.as_ref(), &options) {
                    Ok(f) => out.cells[c].extend((0..take).map(|i| f.value(i).to_string())),
                    Err(e) => out.cells[c].extend((0..take).map(|_| format!("({e})"))),
                }
                if let Some(numbers) = &mut out.numbers[c] {
                    match numbers_of(column.as_ref()) {
                        Some(v) => numbers.extend(v),
                        None => numbers.extend(std::iter::repeat_n(f64::NAN, take)),
                    }
                }
            }
            out.rows += take;
        }
        out
    }

    fn column(&self, names: &[&str]) -> Option<usize> {
        names
            .iter()
            .find_map(|n| self.columns.iter().position(|c| c.eq_ignore_ascii_case(n)))
            .filter(|&i| self.numbers[i].is_some())
    }

    /// The time column for plotting: a timestamp, or a column named like one.
    pub fn time_column(&self) -> Option<usize> {
        self.is_timestamp
            .iter()
            .position(|&t| t)
            .or_else(|| self.column(&["time_ns", "time", "begin_ns", "t"]))
    }

    /// Numeric columns other than the time column.
    pub fn value_columns(&self) -> Vec<usize> {
        let time = self.time_column();
        (0..self.columns.len())
            .filter(|&c| Some(c) != time && self.numbers[c].is_some() && !self.is_timestamp[c])
            .collect()
    }

    /// Spans in the result: begin/end columns, or time + duration (all in ns), with a name.
    pub fn spans(&self) -> Option<Vec<(i64, i64, String)>> {
        let begin = self.column(&["begin_time", "begin_ns", "begin"]);
        let end = self.column(&["end_time", "end_ns", "end"]);
        let (begin, end, from_duration) = match (begin, end) {
            (Some(b), Some(e)) => (b, e, false),
            _ => {
                let time = self.column(&["time", "time_ns", "begin_time", "begin_ns"])?;
                let duration = self.column(&["duration_ns", "duration"])?;
                (time, duration, true)
            }
        };
        let name = self
            .columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case("name"));
        let (b, e) = (self.numbers[begin].as_ref()?, self.numbers[end].as_ref()?);
        Some(
            (0..self.rows)
                .filter(|&r| b[r].is_finite() && e[r].is_finite())
                .map(|r| {
                    let begin_ns = b[r] as i64;
                    let end_ns = if from_duration {
                        begin_ns + e[r] as i64
                    } else {
                        e[r] as i64
                    };
                    let label = name.map_or_else(|| "row".to_owned(), |c| self.cells[c][r].clone());
                    (begin_ns, end_ns.max(begin_ns), label)
                })
                .collect(),
        )
    }
}

/// Spans a query result adds to the timeline, as their own track.
#[derive(Clone, Debug)]
pub struct QueryTrack {
    pub label: String,
    pub spans: Vec<(i64, i64, String)>,
}
