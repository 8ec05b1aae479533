//! The physical plan of a pre-aggregation: each input batch becomes its partial aggregates by
//! dictionary key ([`pre_aggregate_batch`]), partition by partition, as batches arrive.

use super::partial::{PartialInput, PartialKind, pre_aggregate_batch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::Result as DfResult;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::EmissionType;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, SendableRecordBatchStream,
};
use futures::StreamExt;
use std::sync::Arc;

/// One partial column: its kind and the index of its argument in the input (none for rows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartialColumn {
    pub kind: PartialKind,
    pub argument: Option<usize>,
}

/// See the module's documentation.
#[derive(Debug)]
pub struct PreAggregateExec {
    input: Arc<dyn ExecutionPlan>,
    /// The index of the group column (a `Dictionary(Int32, _)`) in the input.
    group: usize,
    partials: Arc<[PartialColumn]>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl PreAggregateExec {
    /// `schema`: the group's values, then one column per partial.
    pub fn new(
        input: Arc<dyn ExecutionPlan>,
        group: usize,
        partials: Vec<PartialColumn>,
        schema: SchemaRef,
    ) -> PreAggregateExec {
        let input_properties = input.properties();
        let properties = PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            input_properties.output_partitioning().clone(),
            EmissionType::Incremental,
            input_properties.boundedness,
        );
        PreAggregateExec {
            input,
            group,
            partials: partials.into(),
            schema,
            properties: Arc::new(properties),
        }
    }
}

/// The partial aggregates of one input batch.
fn pre_aggregate(
    batch: &RecordBatch,
    group: usize,
    partials: &[PartialColumn],
    schema: SchemaRef,
) -> DfResult<RecordBatch> {
    let column = |index: usize| {
        batch.columns().get(index).ok_or_else(|| {
            DataFusionError::Internal(format!(
                "PreAggregateExec: no column {index} in a batch of {}",
                batch.num_columns()
            ))
        })
    };
    let mut inputs = Vec::with_capacity(partials.len());
    for partial in partials {
        inputs.push(PartialInput {
            kind: partial.kind,
            argument: partial.argument.map(column).transpose()?,
        });
    }
    pre_aggregate_batch(column(group)?, &inputs, schema)
}

impl DisplayAs for PreAggregateExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match t {
            DisplayFormatType::Default | DisplayFormatType::Verbose => write!(
                f,
                "PreAggregateExec: group by keys of column {}, partials={:?}",
                self.group, self.partials
            ),
            DisplayFormatType::TreeRender => write!(f, "partials={}", self.partials.len()),
        }
    }
}

impl ExecutionPlan for PreAggregateExec {
    fn name(&self) -> &'static str {
        "PreAggregateExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let (Some(input), true) = (children.pop(), children.is_empty()) else {
            return Err(DataFusionError::Internal(
                "PreAggregateExec has one child".into(),
            ));
        };
        Ok(Arc::new(PreAggregateExec::new(
            input,
            self.group,
            self.partials.to_vec(),
            self.schema.clone(),
        )))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context)?;
        let (group, partials, schema) = (self.group, self.partials.clone(), self.schema.clone());
        let batches = input.map(move |batch| {
            batch.and_then(|batch| pre_aggregate(&batch, group, &partials, schema.clone()))
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            batches,
        )))
    }
}
