//! The engine: a DataFusion session over one lake, with saved views.

use crate::error::EngineError;
use crate::lake::Lake;
use crate::tables::{BlockTable, CatalogTable, CatalogTableKind, EventTable};
use datafusion::arrow::array::StringArray;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::MemTable;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::logical_expr::{CreateView, DdlStatement, DropView, LogicalPlan};
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

/// What the operators of one session's summary query may hold (hash tables, sorts, aggregate
/// state; decoded blocks in flight are not counted here: the scan bounds them).
pub const SUMMARY_MEMORY_BYTES: usize = 512 * 1024 * 1024;

/// Where saved views live in a lake.
pub const VIEWS_PREFIX: &str = "views/";

/// A saved view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedView {
    pub name: String,
    /// The full `CREATE VIEW … AS …` statement.
    pub sql: String,
    /// `lake` (shared with everyone who opens it) or `local` (this user's settings).
    pub stored_in: &'static str,
}

/// SQL over one lake.
pub struct Engine {
    ctx: SessionContext,
    lake: Arc<Lake>,
    summaries: Arc<crate::summaries::SummaryIndex>,
    summary_views: Mutex<Vec<crate::summaries::SummaryView>>,
    summary_schemas:
        Mutex<std::collections::HashMap<String, datafusion::arrow::datatypes::SchemaRef>>,
    /// Behind locks so panels sharing one engine (`Arc<Engine>`) can save views.
    views: Mutex<Vec<SavedView>>,
    notices: Mutex<Vec<String>>,
    /// What a summary query's operators may hold ([`SUMMARY_MEMORY_BYTES`] by default).
    summary_memory_bytes: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("lake", &self.lake)
            .field("views", &self.views_lock().len())
            .finish()
    }
}

fn local_views_dir(lake: &Lake) -> Option<PathBuf> {
    let base = crate::dirs::config_dir()?;
    let name: String = lake
        .location()
        .to_string()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    Some(base.join("views").join(name))
}

fn view_key(name: &str) -> String {
    format!("{VIEWS_PREFIX}{name}.sql")
}

impl Engine {
    /// Opens a lake (a capture folder or `s3://bucket/prefix`) for SQL.
    pub async fn open(lake: &str) -> Result<Engine, EngineError> {
        let lake = Lake::open(lake).await?;
        Self::with_lake(lake).await
    }

    /// Like [`Engine::open`], with S3 settings that override the environment.
    /// Like [`Engine::open_with`], reading only the sessions started on or after `since_unix_ns`
    /// (older dates are read when a query asks for them).
    pub async fn open_since(
        lake: &str,
        s3: &crate::S3Options,
        since_unix_ns: Option<i64>,
    ) -> Result<Engine, EngineError> {
        let lake = Lake::open_since(lake, s3, since_unix_ns).await?;
        Self::with_lake(lake).await
    }

    pub async fn open_with(lake: &str, s3: &crate::S3Options) -> Result<Engine, EngineError> {
        let lake = Lake::open_with(lake, s3).await?;
        Self::with_lake(lake).await
    }

    pub async fn with_lake(lake: Lake) -> Result<Engine, EngineError> {
        let lake = Arc::new(lake);
        // Decoded blocks reach DataFusion as one in-memory partition (decoding already used
        // every core): splitting it again for a plain scan only adds a task and a channel per
        // partition. Operators that can use more partitions (aggregates, joins, sorts) still get
        // DataFusion's round-robin repartitioning.
        let ctx = Self::new_context();
        for (name, kind) in [
            ("processes", CatalogTableKind::Processes),
            ("streams", CatalogTableKind::Streams),
            ("blocks", CatalogTableKind::Blocks),
            ("lake_problems", CatalogTableKind::Problems),
            ("process_properties", CatalogTableKind::Properties),
        ] {
            ctx.register_table(name, Arc::new(CatalogTable::new(kind, lake.clone())?))?;
        }
        for (name, table) in [
            ("log_entries", EventTable::LogEntries),
            ("measures", EventTable::Measures),
            ("frames", EventTable::Frames),
            ("thread_spans", EventTable::ThreadSpans),
        ] {
            ctx.register_table(name, Arc::new(BlockTable::new(table, lake.clone())))?;
        }
        // Summaries: their parts are listed now (one LIST), read when a query needs them.
        let summaries = Arc::new(crate::summaries::SummaryIndex::default());
        summaries.read(&lake).await?;
        let summary_views = crate::summaries::built_in();
        let mut summary_schemas = std::collections::HashMap::new();
        for view in &summary_views {
            let schema = crate::summaries::summary_schema_of(&ctx, &view.sql).await?;
            ctx.register_table(
                view.name.as_str(),
                Arc::new(crate::summaries::SummaryTable::new(
                    &view.name,
                    schema.clone(),
                    summaries.clone(),
                    lake.clone(),
                )),
            )?;
            summary_schemas.insert(view.name.clone(), schema);
        }
        let mut engine = Engine {
            ctx,
            lake,
            summaries,
            summary_views: Mutex::new(summary_views),
            summary_schemas: Mutex::new(summary_schemas),
            views: Mutex::new(Vec::new()),
            notices: Mutex::new(Vec::new()),
            summary_memory_bytes: std::sync::atomic::AtomicUsize::new(SUMMARY_MEMORY_BYTES),
        };
        engine.load_views().await?;
        engine.load_materialized_views().await?;
        Ok(engine)
    }

    fn new_context() -> SessionContext {
        Self::context_with(SessionStateBuilder::new())
    }

    /// A context whose operators may hold at most `bytes` (hash tables, sorts, aggregates'
    /// state): past it a query fails with DataFusion's "resources exhausted" instead of growing
    /// until the system kills the process.
    fn new_context_limited(bytes: usize) -> Result<SessionContext, EngineError> {
        let runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
            .with_memory_limit(bytes, 1.0)
            .build_arc()?;
        Ok(Self::context_with(
            SessionStateBuilder::new().with_runtime_env(runtime),
        ))
    }

    fn context_with(builder: SessionStateBuilder) -> SessionContext {
        // Decoded blocks reach DataFusion as one in-memory partition (decoding already used
        // every core): splitting it again for a plain scan only adds a task and a channel per
        // partition. Operators that can use more partitions (aggregates, joins, sorts) still get
        // DataFusion's round-robin repartitioning.
        let config = SessionConfig::new()
            .with_information_schema(true)
            .with_repartition_file_scans(false);
        let state = builder
            .with_config(config)
            .with_default_features()
            .with_query_planner(Arc::new(crate::pre_aggregate::FramelineQueryPlanner))
            .build();
        let ctx = SessionContext::new_with_state(state);
        // In this order: an aggregate the first rewrites is no longer grouped by a dictionary.
        ctx.add_optimizer_rule(Arc::new(crate::pre_aggregate::PreAggregateByKeys));
        ctx.add_optimizer_rule(Arc::new(crate::group_by::GroupStringsByIds));
        ctx
    }

    /// A session where every table holds one process's rows only (summaries are evaluated in
    /// one per session). Its queries' operators may hold at most [`SUMMARY_MEMORY_BYTES`]: a
    /// summary's SQL (a user's materialized view too) over a long session fails with a notice
    /// rather than take the viewer down in the background.
    pub(crate) fn session_context(&self, process_id: &str) -> Result<SessionContext, EngineError> {
        let limit = self
            .summary_memory_bytes
            .load(std::sync::atomic::Ordering::Relaxed);
        let ctx = Self::new_context_limited(limit)?;
        for (name, kind) in [
            ("processes", CatalogTableKind::Processes),
            ("streams", CatalogTableKind::Streams),
            ("blocks", CatalogTableKind::Blocks),
            ("process_properties", CatalogTableKind::Properties),
        ] {
            ctx.register_table(
                name,
                Arc::new(CatalogTable::for_process(
                    kind,
                    self.lake.clone(),
                    process_id,
                )?),
            )?;
        }
        for (name, table) in [
            ("log_entries", EventTable::LogEntries),
            ("measures", EventTable::Measures),
            ("frames", EventTable::Frames),
            ("thread_spans", EventTable::ThreadSpans),
        ] {
            ctx.register_table(
                name,
                Arc::new(BlockTable::for_process(
                    table,
                    self.lake.clone(),
                    process_id,
                )),
            )?;
        }
        Ok(ctx)
    }

    /// Sets what a summary query's operators may hold from now on.
    pub fn set_summary_memory_limit(&self, bytes: usize) {
        self.summary_memory_bytes
            .store(bytes, std::sync::atomic::Ordering::Relaxed);
    }

    pub(crate) fn lake_arc(&self) -> Arc<Lake> {
        self.lake.clone()
    }

    pub(crate) fn summary_index(&self) -> Arc<crate::summaries::SummaryIndex> {
        self.summaries.clone()
    }

    /// The summaries kept for every session.
    pub fn summary_views(&self) -> Vec<crate::summaries::SummaryView> {
        self.summary_views
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Adds a summary (a materialized view) and its table.
    pub(crate) fn add_summary(
        &self,
        view: crate::summaries::SummaryView,
        schema: datafusion::arrow::datatypes::SchemaRef,
    ) -> Result<(), EngineError> {
        let _ = self.ctx.deregister_table(view.name.as_str())?;
        self.ctx.register_table(
            view.name.as_str(),
            Arc::new(crate::summaries::SummaryTable::new(
                &view.name,
                schema.clone(),
                self.summaries.clone(),
                self.lake.clone(),
            )),
        )?;
        self.summary_schemas
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(view.name.clone(), schema);
        let mut views = self.summary_views.lock().unwrap_or_else(|e| e.into_inner());
        views.retain(|v| v.name != view.name);
        views.push(view);
        Ok(())
    }

    pub(crate) fn summary_schema(
        &self,
        view: &str,
    ) -> Result<datafusion::arrow::datatypes::SchemaRef, EngineError> {
        self.summary_schemas
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(view)
            .cloned()
            .ok_or_else(|| EngineError::Query(format!("no summary named {view}")))
    }

    async fn load_views(&mut self) -> Result<(), EngineError> {
        let mut views = Vec::new();
        for key in self.lake.list(VIEWS_PREFIX).await? {
            let Some(name) = key
                .strip_prefix(VIEWS_PREFIX)
                .and_then(|k| k.strip_suffix(".sql"))
            else {
                continue;
            };
            match crate::views::read_lake_view(&self.lake, &key).await {
                Ok(Some(sql)) => views.push(SavedView {
                    name: name.to_owned(),
                    sql,
                    stored_in: "lake",
                }),
                Ok(None) => {}
                Err(why) => self
                    .notices_lock()
                    .push(format!("view {name} was not loaded: {why}")),
            }
        }
        if let Some(dir) = local_views_dir(&self.lake)
            && let Ok(entries) = std::fs::read_dir(&dir)
        {
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_none_or(|e| e != "sql") {
                    continue;
                }
                let Some(name) = path.file_stem().map(|s| s.to_string_lossy().into_owned()) else {
                    continue;
                };
                if views.iter().any(|v| v.name == name) {
                    continue;
                }
                if let Ok(sql) = std::fs::read_to_string(&path) {
                    views.push(SavedView {
                        name,
                        sql,
                        stored_in: "local",
                    });
                }
            }
        }
        views.sort_by(|a, b| a.name.cmp(&b.name));
        let mut loaded = Vec::with_capacity(views.len());
        for view in views {
            // Only a plain view is loaded; anything else, or a view that no longer plans (e.g.
            // written by a newer build), is reported, not fatal.
            match self.load_lake_view(&view.name, &view.sql).await {
                Ok(()) => loaded.push(view),
                Err(notice) => self.notices_lock().push(notice),
            }
        }
        *self.views_lock() = loaded;
        self.register_views_table()
    }

    fn views_lock(&self) -> MutexGuard<'_, Vec<SavedView>> {
        // A panic while holding it cannot leave the list half-written: take it as it is.
        self.views.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a message for the user (`Engine::notices`).
    pub(crate) fn notice(&self, message: String) {
        self.notices_lock().push(message);
    }

    fn notices_lock(&self) -> MutexGuard<'_, Vec<String>> {
        self.notices.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn register_views_table(&self) -> Result<(), EngineError> {
        let views = self.views_lock().clone();
        let schema = Arc::new(Schema::new(vec![
            Field::new("name", DataType::Utf8, false),
            Field::new("sql", DataType::Utf8, false),
            Field::new("stored_in", DataType::Utf8, false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(
                    views.iter().map(|v| v.name.as_str()).collect::<Vec<_>>(),
                )),
                Arc::new(StringArray::from(
                    views.iter().map(|v| v.sql.as_str()).collect::<Vec<_>>(),
                )),
                Arc::new(StringArray::from(
                    views.iter().map(|v| v.stored_in).collect::<Vec<_>>(),
                )),
            ],
        )
        .map_err(|e| EngineError::Query(e.to_string()))?;
        let _ = self.ctx.deregister_table("views")?;
        self.ctx.register_table(
            "views",
            Arc::new(MemTable::try_new(schema, vec![vec![batch]])?),
        )?;
        Ok(())
    }

    /// Runs one SQL statement. `CREATE VIEW` and `DROP VIEW` are saved in the lake (or, if it
    /// is read-only, in the user's settings, with a notice).
    pub async fn sql(&mut self, sql: &str) -> Result<Vec<RecordBatch>, EngineError> {
        self.execute(sql).await
    }

    /// Like [`Engine::sql`], through a shared reference (the viewer's panels share one engine).
    pub async fn execute(&self, sql: &str) -> Result<Vec<RecordBatch>, EngineError> {
        if let Some((name, query)) = crate::summaries::parse_create_materialized(sql) {
            self.create_materialized_view(&name, &query).await?;
            return Ok(Vec::new());
        }
        let plan = self.ctx.state().create_logical_plan(sql).await?;
        let change = match &plan {
            LogicalPlan::Ddl(DdlStatement::CreateView(CreateView {
                name, definition, ..
            })) => Some((name.table().to_owned(), definition.clone())),
            LogicalPlan::Ddl(DdlStatement::DropView(DropView { name, .. })) => {
                Some((name.table().to_owned(), None))
            }
            _ => None,
        };
        if let Some((name, _)) = &change {
            // The name becomes a file name in the lake or the user's settings.
            crate::views::check_name(name)?;
        }
        let frame = self.ctx.execute_logical_plan(plan).await?;
        let batches = frame.collect().await?;
        if let Some((name, definition)) = change {
            self.save_view(&name, definition).await?;
        }
        Ok(batches)
    }

    async fn save_view(&self, name: &str, definition: Option<String>) -> Result<(), EngineError> {
        let key = view_key(name);
        let local = local_views_dir(&self.lake).map(|d| d.join(format!("{name}.sql")));
        let was_local = {
            let mut views = self.views_lock();
            let was_local = views
                .iter()
                .any(|v| v.name == name && v.stored_in == "local");
            views.retain(|v| v.name != name);
            was_local
        };
        match definition {
            Some(sql) => {
                let stored_in = match self.lake.put(&key, sql.clone().into_bytes()).await {
                    Ok(()) => "lake",
                    Err(e) => {
                        let path = local.ok_or_else(|| {
                            EngineError::Query(format!("cannot save view {name}: {e}"))
                        })?;
                        if let Some(dir) = path.parent() {
                            std::fs::create_dir_all(dir).map_err(|io| {
                                EngineError::Query(format!(
                                    "saving view {name} in {}: {io}",
                                    dir.display()
                                ))
                            })?;
                        }
                        std::fs::write(&path, &sql).map_err(|io| {
                            EngineError::Query(format!(
                                "saving view {name} in {}: {io}",
                                path.display()
                            ))
                        })?;
                        self.notices_lock().push(format!(
                            "the lake is read-only ({e}); view {name} was saved in your settings ({}) and only you will see it",
                            path.display()
                        ));
                        "local"
                    }
                };
                let mut views = self.views_lock();
                views.push(SavedView {
                    name: name.to_owned(),
                    sql,
                    stored_in,
                });
                views.sort_by(|a, b| a.name.cmp(&b.name));
            }
            None if was_local => {
                // Only in this user's settings: the (maybe read-only) lake is not touched.
                if let Some(path) = local {
                    // Already gone is what was asked.
                    std::fs::remove_file(path).ok();
                }
            }
            None => self.lake.delete(&key).await?,
        }
        self.register_views_table()
    }

    /// Runs a read-only query (no view is saved): for panels that only read.
    pub async fn query(&self, sql: &str) -> Result<Vec<RecordBatch>, EngineError> {
        Ok(self.ctx.sql(sql).await?.collect().await?)
    }

    /// Loads the spans of `process_ids` (all processes if empty) overlapping `range_ns` (all time
    /// if `None`) into the timeline's model, decoding blocks in parallel.
    pub async fn load_timeline(
        &self,
        process_ids: &[String],
        range_ns: Option<(i64, i64)>,
        progress: &crate::tables::Progress,
    ) -> Result<crate::timeline::TimelineModel, EngineError> {
        let mut pruning = crate::tables::Pruning::of_processes(process_ids);
        if let Some(range) = range_ns {
            pruning = pruning.overlapping(range);
        }
        // The model holds the spans: decoded blocks go to the disk cache only.
        let scan = self
            .span_blocks(&pruning)
            .await?
            .caching(crate::tables::Caching::DiskOnly);
        let builder = fold_scan(
            scan,
            progress,
            crate::timeline::TimelineBuilder::new(),
            |builder, batch| builder.push(batch),
        )
        .await?;
        Ok(builder.finish())
    }

    /// The CPU blocks `pruning` keeps, to stream their spans.
    pub(crate) async fn span_blocks(
        &self,
        pruning: &crate::tables::Pruning,
    ) -> Result<crate::tables::BlockScan, EngineError> {
        BlockTable::new(EventTable::ThreadSpans, self.lake.clone())
            .blocks(pruning)
            .await
    }

    /// Waits until decoded blocks are written to the disk cache (they are written in the
    /// background so queries do not wait): call before exiting for a warm next run.
    pub async fn flush_cache(&self) {
        self.lake.cache().flush().await;
    }

    /// Forgets every decoded block (memory and this lake's disk cache): the next query is cold.
    pub fn clear_caches(&self) {
        self.lake.cache().clear();
    }

    /// The lake this engine reads.
    pub fn lake(&self) -> &Lake {
        &self.lake
    }

    /// Saved views.
    pub fn views(&self) -> Vec<SavedView> {
        self.views_lock().clone()
    }

    /// Messages for the user (views saved locally, views that could not load).
    pub fn notices(&self) -> Vec<String> {
        self.notices_lock().clone()
    }

    /// The DataFusion session (for registering more tables or functions).
    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }
}

/// Folds every batch of `scan` into `state` on a blocking thread as the batches are decoded, so
/// the fold holds its state plus a few batches in flight, never every decoded batch. (The
/// caller says where decoded blocks go: [`crate::tables::Caching`].)
pub(crate) async fn fold_scan<S, F>(
    scan: crate::tables::BlockScan,
    progress: &crate::tables::Progress,
    state: S,
    mut fold: F,
) -> Result<S, EngineError>
where
    S: Send + 'static,
    F: FnMut(&mut S, &RecordBatch) -> Result<(), EngineError> + Send + 'static,
{
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<RecordBatch>(2);
    let folder = tokio::task::spawn_blocking(move || {
        let mut state = state;
        while let Some(batch) = receiver.blocking_recv() {
            fold(&mut state, &batch)?;
        }
        Ok::<_, EngineError>(state)
    });
    let mut batches = std::pin::pin!(scan.batches(progress));
    let mut decoded = Ok(());
    while let Some(batch) = batches.next().await {
        match batch {
            // A closed channel: the fold failed, and says why below.
            Ok(batch) => {
                if sender.send(batch).await.is_err() {
                    break;
                }
            }
            Err(e) => {
                decoded = Err(e);
                break;
            }
        }
    }
    drop(sender);
    let state = folder
        .await
        .map_err(|e| EngineError::Query(format!("folding decoded blocks failed: {e}")))?;
    decoded?;
    state
}
