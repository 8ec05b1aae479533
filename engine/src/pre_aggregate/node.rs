//! The logical node of a pre-aggregation: its input, the dictionary column it groups by, and the
//! partial columns it computes. Its output: the group's string (`GROUP_COLUMN`), then one column
//! per partial (`partial_column_name(i)`).

use super::partial::PartialKind;
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::{DFSchema, DFSchemaRef, Result as DfResult, plan_err};
use datafusion::logical_expr::{Expr, ExprSchemable, LogicalPlan, UserDefinedLogicalNodeCore};
use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

/// The output column holding each row's group (the dictionary's value type).
pub const GROUP_COLUMN: &str = "__frameline_group";

/// The output column of the `index`-th partial.
pub fn partial_column_name(index: usize) -> String {
    format!("__frameline_partial_{index}")
}

/// One partial column: what it accumulates, over which column of the input (none for
/// [`PartialKind::Rows`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd)]
pub struct Partial {
    pub kind: PartialKind,
    pub argument: Option<Expr>,
}

/// See the module's documentation.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PreAggregate {
    pub input: Arc<LogicalPlan>,
    /// A column of `input` of type `Dictionary(Int32, _)`.
    pub group: Expr,
    pub partials: Vec<Partial>,
    schema: DFSchemaRef,
}

impl PreAggregate {
    /// Checks the types: the group a dictionary with `Int32` keys, each partial's argument one it
    /// takes.
    pub fn try_new(
        input: Arc<LogicalPlan>,
        group: Expr,
        partials: Vec<Partial>,
    ) -> DfResult<PreAggregate> {
        let input_schema = input.schema();
        let group_type = group.get_type(input_schema.as_ref())?;
        let DataType::Dictionary(key, value) = &group_type else {
            return plan_err!("pre-aggregation by a {group_type} column");
        };
        if key.as_ref() != &DataType::Int32 {
            return plan_err!("pre-aggregation by a dictionary with {key} keys");
        }
        let mut fields = vec![Field::new(GROUP_COLUMN, value.as_ref().clone(), true)];
        for (index, partial) in partials.iter().enumerate() {
            let argument_type = match &partial.argument {
                Some(argument) => Some(argument.get_type(input_schema.as_ref())?),
                None => None,
            };
            let Some(data_type) = partial.kind.output_type(argument_type.as_ref()) else {
                return plan_err!(
                    "no partial {:?} of a {argument_type:?} argument",
                    partial.kind
                );
            };
            fields.push(Field::new(partial_column_name(index), data_type, true));
        }
        let schema = DFSchema::from_unqualified_fields(fields.into(), HashMap::new())?;
        Ok(PreAggregate {
            input,
            group,
            partials,
            schema: Arc::new(schema),
        })
    }
}

impl PartialOrd for PreAggregate {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        match self.input.partial_cmp(&other.input) {
            Some(Ordering::Equal) => {}
            order => return order,
        }
        match self.group.partial_cmp(&other.group) {
            Some(Ordering::Equal) => self.partials.partial_cmp(&other.partials),
            order => order,
        }
    }
}

impl UserDefinedLogicalNodeCore for PreAggregate {
    fn name(&self) -> &str {
        "PreAggregate"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![self.input.as_ref()]
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }

    /// The group, then each partial's argument in order.
    fn expressions(&self) -> Vec<Expr> {
        std::iter::once(self.group.clone())
            .chain(self.partials.iter().filter_map(|p| p.argument.clone()))
            .collect()
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "PreAggregate: group by keys of {}, partials=[",
            self.group
        )?;
        for (index, partial) in self.partials.iter().enumerate() {
            if index > 0 {
                write!(f, ", ")?;
            }
            match &partial.argument {
                Some(argument) => write!(f, "{:?}({argument})", partial.kind)?,
                None => write!(f, "{:?}", partial.kind)?,
            }
        }
        write!(f, "]")
    }

    fn with_exprs_and_inputs(
        &self,
        exprs: Vec<Expr>,
        mut inputs: Vec<LogicalPlan>,
    ) -> DfResult<Self> {
        let (Some(input), true) = (inputs.pop(), inputs.is_empty()) else {
            return plan_err!("PreAggregate has one input");
        };
        let mut exprs = exprs.into_iter();
        let Some(group) = exprs.next() else {
            return plan_err!("PreAggregate needs its group expression");
        };
        let mut partials = Vec::with_capacity(self.partials.len());
        for partial in &self.partials {
            let argument = match partial.argument {
                Some(_) => match exprs.next() {
                    Some(argument) => Some(argument),
                    None => return plan_err!("PreAggregate lost an argument"),
                },
                None => None,
            };
            partials.push(Partial {
                kind: partial.kind,
                argument,
            });
        }
        PreAggregate::try_new(Arc::new(input), group, partials)
    }

    /// The input columns its expressions use (DataFusion adds them to any list given here).
    fn necessary_children_exprs(&self, _output_columns: &[usize]) -> Option<Vec<Vec<usize>>> {
        let schema = self.input.schema();
        let mut indices: Vec<usize> = self
            .expressions()
            .iter()
            .flat_map(|expr| expr.column_refs())
            .filter_map(|column| schema.index_of_column(column).ok())
            .collect();
        indices.sort_unstable();
        indices.dedup();
        Some(vec![indices])
    }
}
