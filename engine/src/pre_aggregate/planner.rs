//! The session's query planner: DataFusion's, with the physical plan of [`PreAggregate`] nodes.

use super::exec::{PartialColumn, PreAggregateExec};
use super::node::PreAggregate;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::{Result as DfResult, plan_err};
use datafusion::execution::context::QueryPlanner;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{Expr, LogicalPlan, UserDefinedLogicalNode};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_planner::{DefaultPhysicalPlanner, ExtensionPlanner, PhysicalPlanner};
use std::sync::Arc;

/// DataFusion's physical planner, which also plans [`PreAggregate`].
#[derive(Debug, Default)]
pub struct FramelineQueryPlanner;

#[async_trait]
impl QueryPlanner for FramelineQueryPlanner {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session: &dyn Session,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        DefaultPhysicalPlanner::with_extension_planners(vec![Arc::new(PreAggregatePlanner)])
            .create_physical_plan(logical_plan, session)
            .await
    }
}

/// Plans [`PreAggregate`] nodes as [`PreAggregateExec`].
#[derive(Debug)]
struct PreAggregatePlanner;

/// The index of `expr` (a column) in `input`'s schema.
fn column_index(expr: &Expr, input: &LogicalPlan) -> DfResult<usize> {
    match expr {
        Expr::Column(column) => Ok(input.schema().index_of_column(column)?),
        other => plan_err!("PreAggregate over {other}, not a column"),
    }
}

#[async_trait]
impl ExtensionPlanner for PreAggregatePlanner {
    async fn plan_extension(
        &self,
        _planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        _session: &dyn Session,
        _planning_ctx: &PhysicalPlanningContext,
    ) -> DfResult<Option<Arc<dyn ExecutionPlan>>> {
        let Some(node) = node.as_any().downcast_ref::<PreAggregate>() else {
            return Ok(None);
        };
        let ([logical_input], [physical_input]) = (logical_inputs, physical_inputs) else {
            return plan_err!("PreAggregate has one input");
        };
        let group = column_index(&node.group, logical_input)?;
        let mut partials = Vec::with_capacity(node.partials.len());
        for partial in &node.partials {
            partials.push(PartialColumn {
                kind: partial.kind,
                argument: partial
                    .argument
                    .as_ref()
                    .map(|argument| column_index(argument, logical_input))
                    .transpose()?,
            });
        }
        let schema = Arc::new(node.schema().as_arrow().clone());
        Ok(Some(Arc::new(PreAggregateExec::new(
            physical_input.clone(),
            group,
            partials,
            schema,
        ))))
    }
}
