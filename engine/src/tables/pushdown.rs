//! What a query's filters let a table skip: blocks whose process, stream or time range the
//! filters exclude ([`Pruning`]), and rows outside a time comparison that the table applies itself
//! ([`ExactTimeFilter`], exact pushdown).

use super::EventTable;
use crate::error::EngineError;
use crate::lake::BlockEntry;
use datafusion::arrow::array::{AsArray, BooleanArray};
use datafusion::arrow::buffer::BooleanBuffer;
use datafusion::arrow::datatypes::{DataType, TimeUnit, TimestampNanosecondType};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;
use datafusion::logical_expr::expr::InList;
use datafusion::logical_expr::{BinaryExpr, Cast, Expr, Operator};
use std::collections::HashSet;

/// Key times are rescaled to the process's frequency at catalog load (`Lake::refresh`); this
/// margin only covers integer rounding.
const TIME_SLACK_NS: i64 = 1_000;

/// What the filters of a query allow us to skip.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Pruning {
    pub process_ids: Option<HashSet<String>>,
    pub stream_ids: Option<HashSet<String>>,
    /// Rows have `time` (or span `end_time`) ≥ this.
    pub min_end_ns: Option<i64>,
    /// Rows have `time` (or span `begin_time`) ≤ this.
    pub max_begin_ns: Option<i64>,
    /// Spans have `end_time` ≤ this.
    pub max_end_ns: Option<i64>,
}

impl Pruning {
    /// The rows of `process_ids` (all processes if empty).
    pub fn of_processes(process_ids: &[String]) -> Pruning {
        Pruning {
            process_ids: (!process_ids.is_empty()).then(|| process_ids.iter().cloned().collect()),
            ..Default::default()
        }
    }

    /// Only blocks that may hold rows overlapping `[begin_ns, end_ns]`.
    pub fn overlapping(mut self, (begin_ns, end_ns): (i64, i64)) -> Pruning {
        self.min_end_ns = Some(begin_ns);
        self.max_begin_ns = Some(end_ns);
        self
    }
}

fn literal(expr: &Expr) -> Option<ScalarValue> {
    match expr {
        Expr::Literal(value, _) => Some(value.clone()),
        Expr::Cast(Cast { expr, field }) => match expr.as_ref() {
            Expr::Literal(value, _) => value.cast_to(field.data_type()).ok(),
            _ => None,
        },
        _ => None,
    }
}

fn column(expr: &Expr) -> Option<&str> {
    match expr {
        Expr::Column(c) => Some(c.name.as_str()),
        // `time >= to_timestamp(...)` compares against a timestamp without a time zone: the
        // column is cast to drop its zone, which keeps its instants (and our pruning).
        Expr::Cast(Cast { expr, field })
            if matches!(
                field.data_type(),
                DataType::Timestamp(TimeUnit::Nanosecond, _)
            ) =>
        {
            match expr.as_ref() {
                Expr::Column(c) => Some(c.name.as_str()),
                _ => None,
            }
        }
        _ => None,
    }
}

fn timestamp_ns(value: &ScalarValue) -> Option<i64> {
    match value
        .cast_to(&DataType::Timestamp(
            TimeUnit::Nanosecond,
            Some("UTC".into()),
        ))
        .ok()?
    {
        ScalarValue::TimestampNanosecond(Some(ns), _) => Some(ns),
        _ => None,
    }
}

/// `column op literal`, with the column moved to the left.
fn column_op_literal(expr: &Expr) -> Option<(&str, Operator, ScalarValue)> {
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = expr else {
        return None;
    };
    if let (Some(c), Some(v)) = (column(left), literal(right)) {
        return Some((c, *op, v));
    }
    if let (Some(c), Some(v)) = (column(right), literal(left)) {
        return Some((c, op.swap()?, v));
    }
    None
}

/// Values of `name = 'x'`, `name = 'x' OR name = 'y'`, `name IN (...)`.
fn string_set(expr: &Expr, name: &str) -> Option<HashSet<String>> {
    match expr {
        Expr::InList(InList {
            expr,
            list,
            negated: false,
        }) if column(expr) == Some(name) => list
            .iter()
            .map(|item| literal(item)?.try_as_str()?.map(str::to_owned))
            .collect(),
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Or,
            right,
        }) => {
            let mut set = string_set(left, name)?;
            set.extend(string_set(right, name)?);
            Some(set)
        }
        _ => match column_op_literal(expr)? {
            (c, Operator::Eq, value) if c == name => {
                Some(std::iter::once(value.try_as_str()??.to_owned()).collect())
            }
            _ => None,
        },
    }
}

/// The bounds `column ≥ / > / = / < / ≤ timestamp` filters put on `column` (nanoseconds,
/// inclusive; looser by at most a nanosecond, which only decides which partitions are read).
pub(crate) fn time_bounds(filters: &[&Expr], name: &str) -> (Option<i64>, Option<i64>) {
    let (mut low, mut high) = (None::<i64>, None::<i64>);
    for filter in filters {
        let Some((c, op, value)) = column_op_literal(filter) else {
            continue;
        };
        let Some(ns) = timestamp_ns(&value) else {
            continue;
        };
        if c != name {
            continue;
        }
        if matches!(op, Operator::Gt | Operator::GtEq | Operator::Eq) {
            low = Some(low.map_or(ns, |v| v.max(ns)));
        }
        if matches!(op, Operator::Lt | Operator::LtEq | Operator::Eq) {
            high = Some(high.map_or(ns, |v| v.min(ns)));
        }
    }
    (low, high)
}

/// The process ids `process_id = … / IN (…)` filters name (`None`: no such filter).
pub(crate) fn process_id_set(filters: &[&Expr]) -> Option<HashSet<String>> {
    let mut ids: Option<HashSet<String>> = None;
    for filter in filters {
        if let Some(set) = string_set(filter, "process_id") {
            ids = Some(match ids.take() {
                Some(old) => old.intersection(&set).cloned().collect(),
                None => set,
            });
        }
    }
    ids
}

impl Pruning {
    /// Reads the filters a table can use; returns which filters it used.
    pub(super) fn absorb(&mut self, expr: &Expr, spans: bool) -> bool {
        if let Some(set) = string_set(expr, "process_id") {
            self.process_ids = Some(match self.process_ids.take() {
                Some(old) => old.intersection(&set).cloned().collect(),
                None => set,
            });
            return true;
        }
        if let Some(set) = string_set(expr, "stream_id") {
            self.stream_ids = Some(match self.stream_ids.take() {
                Some(old) => old.intersection(&set).cloned().collect(),
                None => set,
            });
            return true;
        }
        let Some((name, op, value)) = column_op_literal(expr) else {
            return false;
        };
        let Some(ns) = timestamp_ns(&value) else {
            return false;
        };
        let lower = |slot: &mut Option<i64>| *slot = Some(slot.map_or(ns, |v: i64| v.max(ns)));
        let upper = |slot: &mut Option<i64>| *slot = Some(slot.map_or(ns, |v: i64| v.min(ns)));
        let (lower_col, upper_col) = if spans {
            ("end_time", "begin_time")
        } else {
            ("time", "time")
        };
        match op {
            Operator::Gt | Operator::GtEq if name == lower_col => lower(&mut self.min_end_ns),
            Operator::Lt | Operator::LtEq if name == upper_col => upper(&mut self.max_begin_ns),
            Operator::Lt | Operator::LtEq if spans && name == "end_time" => {
                upper(&mut self.max_end_ns)
            }
            // A span begins before it ends: begin ≥ t means end ≥ t.
            Operator::Gt | Operator::GtEq if spans && name == "begin_time" => {
                lower(&mut self.min_end_ns)
            }
            Operator::Eq if name == lower_col || name == upper_col => {
                lower(&mut self.min_end_ns);
                upper(&mut self.max_begin_ns);
            }
            _ => return false,
        }
        true
    }

    /// Only process or stream sets (no time bound): what block selection applies exactly.
    pub(super) fn is_by_identity(&self) -> bool {
        (self.process_ids.is_some() || self.stream_ids.is_some())
            && self.min_end_ns.is_none()
            && self.max_begin_ns.is_none()
            && self.max_end_ns.is_none()
    }

    pub(super) fn from_filters(filters: &[Expr], spans: bool) -> Pruning {
        let mut pruning = Pruning::default();
        for filter in filters {
            pruning.absorb(filter, spans);
        }
        pruning
    }

    /// Whether a block can hold rows these filters keep.
    pub fn keeps(&self, block: &BlockEntry) -> bool {
        let info = &block.info;
        if let Some(ids) = &self.process_ids
            && !ids.contains(&info.process_id)
        {
            return false;
        }
        if let Some(ids) = &self.stream_ids
            && !ids.contains(&info.stream_id)
        {
            return false;
        }
        if let Some(min) = self.min_end_ns
            && info.end_unix_ns < min.saturating_sub(TIME_SLACK_NS)
        {
            return false;
        }
        if let Some(max) = self.max_begin_ns
            && info.earliest_unix_ns.min(info.begin_unix_ns) > max.saturating_add(TIME_SLACK_NS)
        {
            return false;
        }
        if let Some(max) = self.max_end_ns
            && info.begin_unix_ns > max.saturating_add(TIME_SLACK_NS)
        {
            return false;
        }
        true
    }
}

/// A comparison of a time column with a timestamp that the table applies to rows itself, so
/// DataFusion needs no row filter for it (`Exact` pushdown).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExactTimeFilter {
    pub column: &'static str,
    pub op: Operator,
    pub ns: i64,
}

/// `Timestamp(Nanosecond, None | "UTC")`: a type whose values are our columns' values.
fn is_utc_nanos(data_type: &DataType) -> bool {
    matches!(data_type, DataType::Timestamp(TimeUnit::Nanosecond, tz)
        if tz.as_deref().is_none_or(|tz| tz == "UTC"))
}

impl ExactTimeFilter {
    /// `column op timestamp` (either side) on one of `table`'s time columns, with the column
    /// as is or cast to UTC or zone-less nanoseconds (the same values), and a nanosecond
    /// timestamp literal. Anything else is left to DataFusion.
    pub fn from_expr(expr: &Expr, table: EventTable) -> Option<ExactTimeFilter> {
        let columns: &[&'static str] = match table {
            EventTable::LogEntries | EventTable::Measures => &["time"],
            EventTable::ThreadSpans => &["begin_time", "end_time"],
            // Frames are not block rows: their times come from pairs of markers.
            EventTable::Frames => &[],
        };
        let Expr::BinaryExpr(BinaryExpr { left, op, right }) = expr else {
            return None;
        };
        let as_column = |e: &Expr| -> Option<&'static str> {
            let name = match e {
                Expr::Column(c) => c.name.as_str(),
                Expr::Cast(Cast { expr, field }) if is_utc_nanos(field.data_type()) => {
                    match expr.as_ref() {
                        Expr::Column(c) => c.name.as_str(),
                        _ => return None,
                    }
                }
                _ => return None,
            };
            columns.iter().copied().find(|c| *c == name)
        };
        let as_ns = |e: &Expr| -> Option<i64> {
            match e {
                Expr::Literal(ScalarValue::TimestampNanosecond(Some(ns), tz), _)
                    if tz.as_deref().is_none_or(|tz| tz == "UTC") =>
                {
                    Some(*ns)
                }
                _ => None,
            }
        };
        let (column, op, ns) = match (as_column(left), as_ns(right)) {
            (Some(c), Some(ns)) => (c, *op, ns),
            _ => (as_column(right)?, op.swap()?, as_ns(left)?),
        };
        matches!(
            op,
            Operator::Eq | Operator::Gt | Operator::GtEq | Operator::Lt | Operator::LtEq
        )
        .then_some(ExactTimeFilter { column, op, ns })
    }

    fn holds(&self, value: i64) -> bool {
        match self.op {
            Operator::Eq => value == self.ns,
            Operator::Gt => value > self.ns,
            Operator::GtEq => value >= self.ns,
            Operator::Lt => value < self.ns,
            _ => value <= self.ns,
        }
    }
}

/// Where a block's rows lie in time, from its key: every `time` and span `end_time` in
/// `[begin_ns, end_ns]`, every span `begin_time` in `[min(earliest_ns, begin_ns), end_ns]` (up to
/// the key's rounding, [`TIME_SLACK_NS`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockBounds {
    pub begin_ns: i64,
    pub end_ns: i64,
    pub earliest_ns: i64,
}

impl BlockBounds {
    /// The range the values of `column` lie in, widened by the key's rounding.
    fn range(&self, column: &str) -> (i64, i64) {
        let low = if column == "begin_time" {
            self.earliest_ns.min(self.begin_ns)
        } else {
            self.begin_ns
        };
        (
            low.saturating_sub(TIME_SLACK_NS),
            self.end_ns.saturating_add(TIME_SLACK_NS),
        )
    }
}

/// Whether `filter` holds for every value in `[low, high]` (`Some(true)`), for none
/// (`Some(false)`), or for some (`None`). Every comparison is monotonic, so the ends decide;
/// an equality holds for every value only if `low = high`.
fn settle(filter: &ExactTimeFilter, low: i64, high: i64) -> Option<bool> {
    match (filter.holds(low), filter.holds(high)) {
        (true, true) => Some(true),
        (false, false) if filter.op != Operator::Eq || filter.ns < low || filter.ns > high => {
            Some(false)
        }
        _ => None,
    }
}

/// Keeps the rows of `batches` that every filter holds for. Most blocks lie wholly inside or
/// outside a query's time range, and their keys say so: they are kept whole or dropped without
/// reading a row. Only blocks at the range's edges are filtered row by row.
pub fn apply_exact_time_filters(
    batches: Vec<(RecordBatch, Option<BlockBounds>)>,
    filters: &[ExactTimeFilter],
) -> Result<Vec<RecordBatch>, EngineError> {
    if filters.is_empty() {
        return Ok(batches.into_iter().map(|(batch, _)| batch).collect());
    }
    let mut kept = Vec::with_capacity(batches.len());
    'batches: for (batch, bounds) in batches {
        let mut mask: Option<BooleanBuffer> = None;
        for filter in filters {
            if let Some(bounds) = bounds {
                let (low, high) = bounds.range(filter.column);
                match settle(filter, low, high) {
                    Some(true) => continue,
                    Some(false) => continue 'batches,
                    None => {}
                }
            }
            let Some(column) = batch
                .column_by_name(filter.column)
                .and_then(|c| c.as_primitive_opt::<TimestampNanosecondType>())
            else {
                return Err(EngineError::Query(format!(
                    "no time column {} to filter on",
                    filter.column
                )));
            };
            let values = column.values();
            if values.is_empty() {
                continue 'batches;
            }
            let (low, high) = values.iter().fold((i64::MAX, i64::MIN), |(low, high), &v| {
                (low.min(v), high.max(v))
            });
            match settle(filter, low, high) {
                Some(true) => continue,
                Some(false) => continue 'batches,
                None => {}
            }
            let rows = BooleanBuffer::collect_bool(values.len(), |i| filter.holds(values[i]));
            mask = Some(match mask {
                Some(mask) => &mask & &rows,
                None => rows,
            });
        }
        match mask {
            None => kept.push(batch),
            Some(mask) => {
                let filtered = datafusion::arrow::compute::filter_record_batch(
                    &batch,
                    &BooleanArray::new(mask, None),
                )
                .map_err(|e| EngineError::Query(e.to_string()))?;
                if filtered.num_rows() > 0 {
                    kept.push(filtered);
                }
            }
        }
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::TimestampNanosecondArray;
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::logical_expr::{col, lit};
    use std::sync::Arc;

    fn ts(ns: i64) -> Expr {
        lit(ScalarValue::TimestampNanosecond(
            Some(ns),
            Some("UTC".into()),
        ))
    }

    #[test]
    fn span_time_filters_prune() {
        let mut pruning = Pruning::default();
        assert!(pruning.absorb(&col("end_time").gt_eq(ts(100)), true));
        assert!(pruning.absorb(&col("begin_time").lt_eq(ts(200)), true));
        assert!(pruning.absorb(&ts(300).gt_eq(col("end_time")), true));
        assert_eq!(pruning.min_end_ns, Some(100));
        assert_eq!(pruning.max_begin_ns, Some(200));
        assert_eq!(pruning.max_end_ns, Some(300));
        assert!(!Pruning::default().absorb(&col("name").eq(lit("x")), true));
    }

    fn utc(ns: i64) -> Expr {
        ts(ns)
    }

    #[test]
    fn exact_time_filters_are_time_columns_against_nanosecond_timestamps() {
        let spans = EventTable::ThreadSpans;
        let f = ExactTimeFilter::from_expr(&col("begin_time").gt_eq(utc(5)), spans);
        assert_eq!(
            f,
            Some(ExactTimeFilter {
                column: "begin_time",
                op: Operator::GtEq,
                ns: 5
            })
        );
        // The literal on the left: the operator turns round.
        let f = ExactTimeFilter::from_expr(&utc(7).gt(col("end_time")), spans);
        assert_eq!(
            f.map(|f| (f.column, f.op, f.ns)),
            Some(("end_time", Operator::Lt, 7))
        );
        // The cast DataFusion adds for zone-less timestamps keeps the values.
        let naive = lit(ScalarValue::TimestampNanosecond(Some(9), None));
        let cast = Expr::Cast(Cast::new(
            Box::new(col("time")),
            DataType::Timestamp(TimeUnit::Nanosecond, None),
        ));
        assert!(
            ExactTimeFilter::from_expr(&cast.lt_eq(naive.clone()), EventTable::LogEntries)
                .is_some()
        );
        // Not ours to apply: other columns, other units, frames, other operators.
        assert!(ExactTimeFilter::from_expr(&col("name").eq(lit("x")), spans).is_none());
        assert!(ExactTimeFilter::from_expr(&col("time").gt_eq(utc(1)), spans).is_none());
        let micros = lit(ScalarValue::TimestampMicrosecond(
            Some(1),
            Some("UTC".into()),
        ));
        assert!(ExactTimeFilter::from_expr(&col("begin_time").gt_eq(micros), spans).is_none());
        assert!(
            ExactTimeFilter::from_expr(&col("begin_time").gt_eq(utc(1)), EventTable::Frames)
                .is_none()
        );
        assert!(ExactTimeFilter::from_expr(&col("begin_time").not_eq(utc(1)), spans).is_none());
        let other_zone = lit(ScalarValue::TimestampNanosecond(
            Some(1),
            Some("+01:00".into()),
        ));
        assert!(ExactTimeFilter::from_expr(&col("begin_time").gt_eq(other_zone), spans).is_none());
    }

    #[test]
    fn exact_time_filters_keep_whole_blocks_drop_whole_blocks_and_cut_the_edges() {
        let schema = Arc::new(Schema::new(vec![Field::new(
            "time",
            DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into())),
            false,
        )]));
        let batch = |times: Vec<i64>| {
            RecordBatch::try_new(
                schema.clone(),
                vec![Arc::new(
                    TimestampNanosecondArray::from(times).with_timezone("UTC"),
                )],
            )
            .unwrap()
        };
        let times = |batches: &[RecordBatch]| -> Vec<Vec<i64>> {
            batches
                .iter()
                .map(|b| {
                    b.column(0)
                        .as_primitive::<TimestampNanosecondType>()
                        .values()
                        .to_vec()
                })
                .collect()
        };
        let filter = |op, ns| ExactTimeFilter {
            column: "time",
            op,
            ns,
        };
        let input = vec![
            batch(vec![10, 30, 20]),
            batch(vec![40, 50]),
            batch(vec![20, 20]),
        ];
        let unbounded = |input: &[RecordBatch]| input.iter().map(|b| (b.clone(), None)).collect();
        let run = |filters: &[ExactTimeFilter]| {
            times(&apply_exact_time_filters(unbounded(&input), filters).unwrap())
        };
        assert_eq!(
            run(&[filter(Operator::GtEq, 20)]),
            vec![vec![30, 20], vec![40, 50], vec![20, 20]]
        );
        assert_eq!(
            run(&[filter(Operator::Gt, 20)]),
            vec![vec![30], vec![40, 50]]
        );
        assert_eq!(
            run(&[filter(Operator::Lt, 40)]),
            vec![vec![10, 30, 20], vec![20, 20]]
        );
        assert_eq!(
            run(&[filter(Operator::LtEq, 40)]),
            vec![vec![10, 30, 20], vec![40], vec![20, 20]]
        );
        assert_eq!(
            run(&[filter(Operator::Eq, 20)]),
            vec![vec![20], vec![20, 20]]
        );
        assert_eq!(run(&[filter(Operator::Eq, 25)]), Vec::<Vec<i64>>::new());
        assert_eq!(
            run(&[filter(Operator::Gt, 15), filter(Operator::Lt, 45)]),
            vec![vec![30, 20], vec![40], vec![20, 20]]
        );
        // A batch inside the range is passed on as it is, not copied.
        let kept = apply_exact_time_filters(unbounded(&input), &[filter(Operator::Gt, 0)]).unwrap();
        assert!(
            kept[1]
                .column(0)
                .to_data()
                .ptr_eq(&input[1].column(0).to_data())
        );

        // With the block's bounds from its key, far from the filter: decided without the rows
        // (these bounds lie about the rows on purpose, to show the rows were not read).
        let far = BlockBounds {
            begin_ns: 1_000_000,
            end_ns: 2_000_000,
            earliest_ns: 1_000_000,
        };
        let with = |bounds: BlockBounds| vec![(input[0].clone(), Some(bounds))];
        assert_eq!(
            times(&apply_exact_time_filters(with(far), &[filter(Operator::Gt, 15)]).unwrap()),
            vec![vec![10, 30, 20]]
        );
        assert!(
            apply_exact_time_filters(with(far), &[filter(Operator::Lt, 15)])
                .unwrap()
                .is_empty()
        );
        // Within the key's rounding of a bound, the rows decide.
        let near = BlockBounds {
            begin_ns: 10,
            end_ns: 30,
            earliest_ns: 10,
        };
        assert_eq!(
            times(&apply_exact_time_filters(with(near), &[filter(Operator::Gt, 15)]).unwrap()),
            vec![vec![30, 20]]
        );
        // A span's begin can precede its block's begin: `earliest_ns` widens its range.
        assert_eq!(
            near.range("begin_time"),
            (10 - TIME_SLACK_NS, 30 + TIME_SLACK_NS)
        );
        let early = BlockBounds {
            earliest_ns: -5_000,
            ..near
        };
        assert_eq!(early.range("begin_time").0, -5_000 - TIME_SLACK_NS);
        assert_eq!(early.range("end_time").0, 10 - TIME_SLACK_NS);
    }

    #[test]
    fn process_sets_from_eq_or_and_in() {
        let mut pruning = Pruning::default();
        let filter = col("process_id")
            .eq(lit("a"))
            .or(col("process_id").eq(lit("b")));
        assert!(pruning.absorb(&filter, false));
        assert_eq!(
            pruning.process_ids,
            Some(["a".to_owned(), "b".to_owned()].into_iter().collect())
        );
        assert!(pruning.absorb(
            &col("process_id").in_list(vec![lit("b"), lit("c")], false),
            false
        ));
        assert_eq!(
            pruning.process_ids,
            Some(["b".to_owned()].into_iter().collect())
        );
    }
}
