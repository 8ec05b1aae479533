//! Compaction: folds the process and stream objects games wrote into one Parquet part per start
//! date and table (`catalog/{processes|streams}/date=D/part-{hash}.parquet`), then deletes what
//! it folded, so readers list only what is newer.
//!
//! No coordination between writers, readers or compactors, and no read-modify-write of a shared
//! object:
//! - a part is named by the hash of its rows: two compactors folding the same objects write the
//!   same key with the same bytes;
//! - the order is: write the streams part, write the processes part, delete the parts that were
//!   read (never the one just written), delete each folded process object, then its stream
//!   objects. Stopped anywhere, every process and stream is still in a part or an object, and
//!   readers take the union (a process in several places: a finished description over an
//!   unfinished one, then an object over a part);
//! - a compactor deletes only parts it read and folded into the part it wrote first, so with two
//!   compactors at once every row stays in at least one part (the next compaction merges them).
//!
//! Only objects that will not change are folded: finished processes (a clean shutdown wrote
//! their last description) and processes whose description has not changed for `stale_after`
//! (killed games; the compactor finds where their blocks end and records it).

use super::index::UNFINISHED_HORIZON_NS;
use super::rows::{self, CatalogProcess};
use crate::error::EngineError;
use crate::lake::Lake;
use crate::requests::RequestCounts;
use frameline_instrument::lake::{self as layout, BlockKey, ProcessMeta, StreamMeta};
use futures::StreamExt;
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

const CONCURRENT_REQUESTS: usize = 16;

/// How compaction chooses what to fold.
#[derive(Clone, Debug)]
pub struct CompactOptions {
    /// An unfinished process whose description is older than this is folded too.
    pub stale_after: Duration,
}

impl Default for CompactOptions {
    fn default() -> Self {
        Self {
            stale_after: Duration::from_secs(24 * 3600),
        }
    }
}

/// What one compaction did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompactReport {
    /// Start dates whose parts were rewritten.
    pub dates: usize,
    pub processes_folded: usize,
    pub streams_folded: usize,
    pub parts_written: usize,
    pub parts_deleted: usize,
    pub objects_deleted: usize,
    /// Objects that could not be read (left in place, reported).
    pub problems: Vec<String>,
    pub requests: RequestCounts,
}

/// One date's work.
#[derive(Default)]
struct DatePlan {
    process_parts: Vec<String>,
    stream_parts: Vec<String>,
    /// Process objects with their last-modified time.
    objects: Vec<(String, chrono_free::UnixNs)>,
}

/// Times without a date-time crate: nanoseconds since the Unix epoch.
mod chrono_free {
    pub type UnixNs = i64;

    pub fn now() -> UnixNs {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
    }
}

impl Lake {
    /// Folds finished (and stale) processes' objects into the catalog's Parquet parts. Safe to
    /// run at any time, concurrently with games, readers and other compactors; idempotent (a
    /// second run with nothing new writes nothing).
    pub async fn compact(&self, options: &CompactOptions) -> Result<CompactReport, EngineError> {
        let before = self.requests();
        let mut report = CompactReport::default();
        let mut plans: BTreeMap<String, DatePlan> = BTreeMap::new();
        for key in self.list(layout::CATALOG_PROCESSES_PREFIX).await? {
            if let Some(date) = layout::date_of_catalog_part(layout::CATALOG_PROCESSES_PREFIX, &key)
            {
                plans
                    .entry(date.to_owned())
                    .or_default()
                    .process_parts
                    .push(key);
            }
        }
        for key in self.list(layout::CATALOG_STREAMS_PREFIX).await? {
            if let Some(date) = layout::date_of_catalog_part(layout::CATALOG_STREAMS_PREFIX, &key) {
                plans
                    .entry(date.to_owned())
                    .or_default()
                    .stream_parts
                    .push(key);
            }
        }
        for meta in self.list_metas(layout::PROCESSES_PREFIX).await? {
            let key = meta.location.to_string();
            if let Some(date) = layout::date_of_process_key(&key) {
                plans.entry(date.to_owned()).or_default().objects.push((
                    key,
                    meta.last_modified.timestamp_nanos_opt().unwrap_or(i64::MAX),
                ));
            }
        }
        // Stream objects by process: those of folded processes are folded with them.
        let mut stream_objects: HashMap<String, Vec<String>> = HashMap::new();
        for key in self.list(layout::STREAMS_PREFIX).await? {
            let Some((process_id, file)) = key
                .strip_prefix(layout::STREAMS_PREFIX)
                .and_then(|rest| rest.split_once('/'))
            else {
                continue;
            };
            if file.ends_with(".json") && !file.contains('/') {
                stream_objects
                    .entry(process_id.to_owned())
                    .or_default()
                    .push(key);
            }
        }
        // Stream objects whose process object is gone: a compactor stopped after folding the
        // process; they are folded into the part that holds their process.
        let process_ids_with_objects: std::collections::HashSet<String> = plans
            .values()
            .flat_map(|p| p.objects.iter())
            .filter_map(|(key, _)| {
                key.rsplit('/')
                    .next()
                    .and_then(|f| f.strip_suffix(".json"))
                    .map(str::to_owned)
            })
            .collect();
        let orphans: HashMap<String, Vec<String>> = stream_objects
            .iter()
            .filter(|(id, _)| !process_ids_with_objects.contains(*id))
            .map(|(id, keys)| (id.clone(), keys.clone()))
            .collect();
        let stale_before = chrono_free::now()
            .saturating_sub(i64::try_from(options.stale_after.as_nanos()).unwrap_or(i64::MAX));
        for (date, plan) in plans {
            self.compact_date(
                &date,
                plan,
                &stream_objects,
                &orphans,
                stale_before,
                &mut report,
            )
            .await?;
        }
        report.requests = self.requests().since(&before);
        Ok(report)
    }

    async fn list_metas(&self, prefix: &str) -> Result<Vec<object_store::ObjectMeta>, EngineError> {
        use futures::TryStreamExt;
        self.store()
            .list(Some(&object_store::path::Path::from(prefix)))
            .try_collect()
            .await
            .map_err(|e| crate::lake::classify(self.location(), prefix, e))
    }

    async fn get_all(
        &self,
        keys: Vec<String>,
    ) -> Vec<(String, Result<Option<bytes::Bytes>, EngineError>)> {
        futures::stream::iter(keys)
            .map(|key| async move {
                let bytes = self.get(&key).await;
                (key, bytes)
            })
            .buffer_unordered(CONCURRENT_REQUESTS)
            .collect()
            .await
    }

    async fn compact_date(
        &self,
        date: &str,
        plan: DatePlan,
        stream_objects: &HashMap<String, Vec<String>>,
        orphans: &HashMap<String, Vec<String>>,
        stale_before: i64,
        report: &mut CompactReport,
    ) -> Result<(), EngineError> {
        // Process objects: fold the finished ones and the stale ones.
        let fetched = self
            .get_all(plan.objects.iter().map(|(k, _)| k.clone()).collect())
            .await;
        let modified: HashMap<&str, i64> =
            plan.objects.iter().map(|(k, t)| (k.as_str(), *t)).collect();
        let mut new_processes: Vec<(String, ProcessMeta)> = Vec::new();
        for (key, bytes) in fetched {
            match bytes {
                Ok(Some(bytes)) => match rows::object_json::<ProcessMeta>(&bytes) {
                    Ok(meta) => {
                        let stale = modified
                            .get(key.as_str())
                            .is_some_and(|t| *t < stale_before);
                        if meta.end_unix_ns.is_some() || stale {
                            new_processes.push((key, meta));
                        }
                    }
                    Err(e) => report.problems.push(format!("{key}: {e}")),
                },
                Ok(None) => {}
                Err(e) => report.problems.push(e.to_string()),
            }
        }
        let rewrite_parts = plan.process_parts.len() > 1 || plan.stream_parts.len() > 1;
        if new_processes.is_empty() && !rewrite_parts && orphans.is_empty() {
            return Ok(());
        }
        // What the existing parts hold.
        let mut processes: BTreeMap<String, CatalogProcess> = BTreeMap::new();
        let mut streams: BTreeMap<String, StreamMeta> = BTreeMap::new();
        let mut parts_read = Vec::new();
        for (key, bytes) in self.get_all(plan.process_parts.clone()).await {
            let parsed = match bytes {
                Ok(Some(bytes)) => rows::processes_of_part(bytes),
                // Folded by another compactor: its rows are in that compactor's part.
                Ok(None) => continue,
                Err(e) => Err(e.to_string()),
            };
            match parsed {
                Ok(rows) => {
                    for row in rows {
                        merge_process(&mut processes, row);
                    }
                    parts_read.push(key);
                }
                // A damaged part is left where it is (and reported), never deleted.
                Err(detail) => report.problems.push(format!("{key}: {detail}")),
            }
        }
        for (key, bytes) in self.get_all(plan.stream_parts.clone()).await {
            let parsed = match bytes {
                Ok(Some(bytes)) => rows::streams_of_part(bytes),
                Ok(None) => continue,
                Err(e) => Err(e.to_string()),
            };
            match parsed {
                Ok(rows) => {
                    for row in rows {
                        streams.insert(row.stream_id.clone(), row);
                    }
                    parts_read.push(key);
                }
                Err(detail) => report.problems.push(format!("{key}: {detail}")),
            }
        }
        // Orphaned stream objects of processes this date's parts hold.
        let mut orphan_keys: Vec<String> = Vec::new();
        for (process_id, keys) in orphans {
            if processes.contains_key(process_id) {
                orphan_keys.extend(keys.iter().cloned());
            }
        }
        if new_processes.is_empty() && !rewrite_parts && orphan_keys.is_empty() {
            return Ok(());
        }
        let mut folded_orphans = Vec::new();
        for (key, bytes) in self.get_all(orphan_keys).await {
            match bytes {
                Ok(Some(bytes)) => match rows::object_json::<StreamMeta>(&bytes) {
                    Ok(stream) => {
                        streams.insert(stream.stream_id.clone(), stream);
                        folded_orphans.push(key);
                    }
                    Err(e) => report.problems.push(format!("{key}: {e}")),
                },
                Ok(None) => {}
                Err(e) => report.problems.push(e.to_string()),
            }
        }
        report.streams_folded += folded_orphans.len();
        // The new processes and their streams.
        let mut folded_objects: Vec<(String, Vec<String>)> = Vec::new();
        for (key, meta) in new_processes {
            let process_streams = stream_objects
                .get(&meta.process_id)
                .cloned()
                .unwrap_or_default();
            let mut complete = true;
            for (stream_key, bytes) in self.get_all(process_streams.clone()).await {
                match bytes {
                    Ok(Some(bytes)) => match rows::object_json::<StreamMeta>(&bytes) {
                        Ok(stream) => {
                            streams.insert(stream.stream_id.clone(), stream);
                        }
                        Err(e) => {
                            report.problems.push(format!("{stream_key}: {e}"));
                            complete = false;
                        }
                    },
                    Ok(None) => {}
                    Err(e) => {
                        report.problems.push(e.to_string());
                        complete = false;
                    }
                }
            }
            let last_block_end_unix_ns = match meta.end_unix_ns {
                Some(_) => None,
                None => self.last_block_end(&meta).await?,
            };
            report.processes_folded += 1;
            report.streams_folded += process_streams.len();
            merge_process(
                &mut processes,
                CatalogProcess {
                    meta,
                    last_block_end_unix_ns,
                },
            );
            // Objects that did not read are kept (and reported), with their process's.
            if complete {
                folded_objects.push((key, process_streams));
            }
        }
        // Write streams first, then processes: the processes part is what makes readers look
        // for the streams part.
        let stream_rows: Vec<StreamMeta> = streams.into_values().collect();
        let process_rows: Vec<CatalogProcess> = processes.into_values().collect();
        let streams_key = layout::catalog_part_key(
            layout::CATALOG_STREAMS_PREFIX,
            date,
            rows::content_hash(
                stream_rows
                    .iter()
                    .map(|s| serde_json::to_vec(s).unwrap_or_default()),
            ),
        );
        let processes_key = layout::catalog_part_key(
            layout::CATALOG_PROCESSES_PREFIX,
            date,
            rows::content_hash(process_rows.iter().map(|p| {
                let mut bytes = serde_json::to_vec(&p.meta).unwrap_or_default();
                bytes.extend(format!("{:?}", p.last_block_end_unix_ns).bytes());
                bytes
            })),
        );
        let corrupt = |key: &str, detail: String| EngineError::Corrupt {
            key: key.to_owned(),
            detail,
        };
        let streams_bytes = rows::streams_batch(&stream_rows)
            .and_then(|b| rows::to_parquet(&b))
            .map_err(|e| corrupt(&streams_key, e))?;
        let processes_bytes = rows::processes_batch(&process_rows)
            .and_then(|b| rows::to_parquet(&b))
            .map_err(|e| corrupt(&processes_key, e))?;
        self.put(&streams_key, streams_bytes).await?;
        self.put(&processes_key, processes_bytes).await?;
        report.parts_written += 2;
        report.dates += 1;
        for key in parts_read {
            if key != streams_key && key != processes_key {
                self.delete(&key).await?;
                report.parts_deleted += 1;
            }
        }
        for key in folded_orphans {
            self.delete(&key).await?;
            report.objects_deleted += 1;
        }
        for (process_key, stream_keys) in folded_objects {
            self.delete(&process_key).await?;
            report.objects_deleted += 1;
            for key in stream_keys {
                self.delete(&key).await?;
                report.objects_deleted += 1;
            }
        }
        Ok(())
    }

    /// Where the blocks of a process that never shut down end (listing its hours).
    async fn last_block_end(&self, process: &ProcessMeta) -> Result<Option<i64>, EngineError> {
        const HOUR_NS: i64 = 3600 * 1_000_000_000;
        let first = process.start_unix_ns.div_euclid(HOUR_NS);
        let last = process
            .start_unix_ns
            .saturating_add(UNFINISHED_HORIZON_NS)
            .min(chrono_free::now())
            .div_euclid(HOUR_NS);
        let mut end: Option<i64> = None;
        for hour in first..=last.max(first) {
            let prefix = layout::process_hour_prefix(hour * HOUR_NS, &process.process_id);
            for key in self.list(&prefix).await? {
                if let Some(info) = BlockKey::parse(&key) {
                    let block_end = process.rescale_key_ns(info.end_unix_ns);
                    end = Some(end.map_or(block_end, |e| e.max(block_end)));
                }
            }
        }
        Ok(end.or(Some(process.start_unix_ns)))
    }
}

/// Keeps the better of two descriptions of one process (a finished one over an unfinished one,
/// else the newer: the one merged last).
fn merge_process(processes: &mut BTreeMap<String, CatalogProcess>, row: CatalogProcess) {
    let keep_old = processes
        .get(&row.meta.process_id)
        .is_some_and(|old| old.meta.end_unix_ns.is_some() && row.meta.end_unix_ns.is_none());
    if !keep_old {
        processes.insert(row.meta.process_id.clone(), row);
    }
}
