//! The execution plan of an event table's scan: one partition whose stream reads the blocks
//! selected at planning ([`BlockScan`]) as DataFusion pulls batches — nothing is fetched or
//! decoded before execution, and a limit stops the reads.
//!
//! One partition: decoding already runs on every core (blocking threads), and a plain scan
//! streams its batches without a task and a channel per partition (measured: most of a warm
//! 10^7-span scan was threads waking each other); DataFusion still spreads rows over its
//! partitions (round robin) where an operator can use them, such as an aggregate.

use super::Progress;
use super::decode_stream::BlockScan;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::Result as DfResult;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::DataFusionError;
use datafusion::execution::TaskContext;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
    SendableRecordBatchStream,
};
use futures::StreamExt;
use std::sync::Arc;

/// Scans the blocks of one event table.
#[derive(Debug)]
pub struct BlockScanExec {
    scan: BlockScan,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl BlockScanExec {
    /// `schema`: the table's schema with `scan`'s projection applied.
    pub fn new(scan: BlockScan, schema: SchemaRef) -> BlockScanExec {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        BlockScanExec {
            scan,
            schema,
            properties: Arc::new(properties),
        }
    }
}

impl DisplayAs for BlockScanExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match t {
            DisplayFormatType::Default | DisplayFormatType::Verbose => {
                write!(
                    f,
                    "BlockScanExec: table={}, blocks={}",
                    self.scan.table().name(),
                    self.scan.block_count()
                )?;
                if let Some(columns) = self.scan.projection() {
                    write!(f, ", projection={columns:?}")?;
                }
                if let Some(limit) = self.scan.limit() {
                    write!(f, ", limit={limit}")?;
                }
                Ok(())
            }
            DisplayFormatType::TreeRender => write!(f, "blocks={}", self.scan.block_count()),
        }
    }
}

impl ExecutionPlan for BlockScanExec {
    fn name(&self) -> &'static str {
        "BlockScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(
        &self,
        partition: usize,
        _context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!(
                "BlockScanExec has one partition, not {partition}"
            )));
        }
        let batches = self
            .scan
            .clone()
            .batches(Progress::default())
            .map(|batch| batch.map_err(DataFusionError::from));
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            batches,
        )))
    }
}
