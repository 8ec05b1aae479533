//! The logical rewrite of an aggregate by one dictionary string column into a pre-aggregation by
//! key and a final aggregate by string (the module's documentation has the shape).

use super::node::{GROUP_COLUMN, Partial, PreAggregate, partial_column_name};
use super::partial::{NumberClass, PartialKind};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::Transformed;
use datafusion::common::{DFSchema, ExprSchema, Result as DfResult};
use datafusion::functions::expr_fn::nullif;
use datafusion::functions_aggregate::expr_fn::{max, min, sum};
use datafusion::logical_expr::expr::{AggregateFunction, Cast};
use datafusion::logical_expr::{
    Aggregate, Expr, ExprSchemable, Extension, LogicalPlan, Projection, cast, col, lit,
};
use datafusion::optimizer::{ApplyOrder, OptimizerConfig, OptimizerRule};
use std::sync::Arc;

/// See the module's documentation.
#[derive(Debug, Default)]
pub struct PreAggregateByKeys;

/// How one of the aggregate's outputs is computed from the final aggregate's columns.
enum Output {
    /// The final column of this partial, as it is.
    Column(usize),
    /// `avg`: the sum's partial divided by the count's.
    Average { sum: usize, count: usize },
}

/// An aggregate's argument that is a column, or a column cast (DataFusion's type coercion casts
/// `avg`'s argument to `Float64` and `sum`'s to the widest type): the column, its number class,
/// and the type it is cast to.
fn column_argument(
    argument: &Expr,
    schema: &DFSchema,
) -> DfResult<(Option<Expr>, Option<NumberClass>, Option<DataType>)> {
    let (column, cast_to) = match argument {
        Expr::Column(_) => (argument, None),
        Expr::Cast(Cast { expr, field }) if matches!(expr.as_ref(), Expr::Column(_)) => {
            (expr.as_ref(), Some(field.data_type().clone()))
        }
        _ => return Ok((None, None, None)),
    };
    let class = NumberClass::of(&column.get_type(schema as &dyn ExprSchema)?);
    Ok((Some(column.clone()), class, cast_to))
}

/// The partials of one aggregate, and where they go; adds to `partials` (without duplicates).
fn plan_partials(
    aggregate: &Aggregate,
    partials: &mut Vec<Partial>,
) -> DfResult<Option<Vec<Output>>> {
    let schema = aggregate.input.schema();
    let mut partial_index = |kind: PartialKind, argument: Option<Expr>| {
        let partial = Partial { kind, argument };
        match partials.iter().position(|p| p == &partial) {
            Some(index) => index,
            None => {
                partials.push(partial);
                partials.len() - 1
            }
        }
    };
    let mut outputs = Vec::with_capacity(aggregate.aggr_expr.len());
    for expr in &aggregate.aggr_expr {
        let expr = match expr {
            Expr::Alias(alias) => alias.expr.as_ref(),
            expr => expr,
        };
        let Expr::AggregateFunction(AggregateFunction { func, params }) = expr else {
            return Ok(None);
        };
        if params.distinct
            || params.filter.is_some()
            || !params.order_by.is_empty()
            || params.null_treatment.is_some()
        {
            return Ok(None);
        }
        let [argument] = params.args.as_slice() else {
            return Ok(None);
        };
        let (column, class, cast_to) = column_argument(argument, schema.as_ref())?;
        // A cast to the class's widest type is what accumulating does anyway; `avg` sums
        // `f64`s whatever it is given.
        let widened = match (class, &cast_to) {
            (Some(class), Some(to)) => class.wide_type() == *to,
            (_, None) => true,
            (None, Some(_)) => false,
        };
        let output = match (func.name(), argument, class) {
            ("count", Expr::Literal(value, _), _) if !value.is_null() => {
                Output::Column(partial_index(PartialKind::Rows, None))
            }
            ("count", _, _) if column.is_some() && widened => {
                Output::Column(partial_index(PartialKind::Count, column))
            }
            ("sum", _, Some(_)) if widened => {
                Output::Column(partial_index(PartialKind::Sum, column))
            }
            ("avg", _, Some(_)) if matches!(cast_to, None | Some(DataType::Float64)) => {
                Output::Average {
                    sum: partial_index(PartialKind::SumF64, column.clone()),
                    count: partial_index(PartialKind::Count, column),
                }
            }
            ("min", _, Some(NumberClass::Signed | NumberClass::Unsigned)) if cast_to.is_none() => {
                Output::Column(partial_index(PartialKind::Min, column))
            }
            ("max", _, Some(NumberClass::Signed | NumberClass::Unsigned)) if cast_to.is_none() => {
                Output::Column(partial_index(PartialKind::Max, column))
            }
            _ => return Ok(None),
        };
        outputs.push(output);
    }
    Ok(Some(outputs))
}

/// The aggregate over the partials: `min` of minimums, `max` of maximums, `sum` of the rest.
fn final_aggregate(partial: &Partial, index: usize) -> Expr {
    let column = col(partial_column_name(index));
    match partial.kind {
        PartialKind::Min => min(column),
        PartialKind::Max => max(column),
        PartialKind::Rows | PartialKind::Count | PartialKind::Sum | PartialKind::SumF64 => {
            sum(column)
        }
    }
    .alias(partial_column_name(index))
}

fn rewrite_aggregate(aggregate: &Aggregate) -> DfResult<Option<LogicalPlan>> {
    let [group @ Expr::Column(_)] = aggregate.group_expr.as_slice() else {
        return Ok(None);
    };
    let group_type = group.get_type(aggregate.input.schema().as_ref() as &dyn ExprSchema)?;
    if !matches!(&group_type, DataType::Dictionary(key, value)
        if key.as_ref() == &DataType::Int32
            && matches!(value.as_ref(), DataType::Utf8 | DataType::LargeUtf8))
    {
        return Ok(None);
    }
    let mut partials = Vec::new();
    let Some(outputs) = plan_partials(aggregate, &mut partials)? else {
        return Ok(None);
    };
    let final_exprs: Vec<Expr> = partials
        .iter()
        .enumerate()
        .map(|(index, partial)| final_aggregate(partial, index))
        .collect();
    let pre = PreAggregate::try_new(aggregate.input.clone(), group.clone(), partials)?;
    let pre = LogicalPlan::Extension(Extension {
        node: Arc::new(pre),
    });
    let grouped = Aggregate::try_new(Arc::new(pre), vec![col(GROUP_COLUMN)], final_exprs)?;

    let schema = aggregate.schema.clone();
    let mut columns = Vec::with_capacity(schema.fields().len());
    for (index, (qualifier, field)) in schema.iter().enumerate() {
        let value = match index.checked_sub(1).map(|output| outputs.get(output)) {
            None => col(GROUP_COLUMN),
            Some(Some(Output::Column(partial))) => col(partial_column_name(*partial)),
            Some(Some(Output::Average { sum, count })) => {
                let count = cast(
                    nullif(col(partial_column_name(*count)), lit(0_i64)),
                    DataType::Float64,
                );
                col(partial_column_name(*sum)) / count
            }
            // An aggregate's schema has a field per group and per aggregate expression.
            Some(None) => return Ok(None),
        };
        columns.push(
            cast(value, field.data_type().clone())
                .alias_qualified(qualifier.cloned(), field.name()),
        );
    }
    let projection = Projection::try_new_with_schema(
        columns,
        Arc::new(LogicalPlan::Aggregate(grouped)),
        schema,
    )?;
    Ok(Some(LogicalPlan::Projection(projection)))
}

impl OptimizerRule for PreAggregateByKeys {
    fn name(&self) -> &str {
        "frameline_pre_aggregate_by_keys"
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::BottomUp)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> DfResult<Transformed<LogicalPlan>> {
        let LogicalPlan::Aggregate(aggregate) = &plan else {
            return Ok(Transformed::no(plan));
        };
        // A plan this rule cannot build (it checks every type first) keeps DataFusion's.
        match rewrite_aggregate(aggregate) {
            Ok(Some(rewritten)) => Ok(Transformed::yes(rewritten)),
            Ok(None) | Err(_) => Ok(Transformed::no(plan)),
        }
    }
}
