//! What a reader knows of a lake's catalog, loaded as queries need it.
//!
//! Opening a lake lists three prefixes — `catalog/processes/`, `catalog/streams/` (compacted
//! parts, one per start date after compaction) and `processes/` (process objects written since
//! the last compaction) — and reads the processes of the dates asked for (all by default; the
//! viewer asks for the last days first). A process's streams and block keys are read only when a
//! query needs that process: its streams from its date's compacted part or its own `streams/`
//! objects, its blocks by listing the hour prefixes `blocks/{date}/{hour}/{process_id}/` between
//! its start and its end. So what opening costs grows with the dates asked for and the objects
//! written since the last compaction, not with the lake.
//!
//! Anything read may be damaged: an object or part that does not parse is skipped and reported
//! (`Lake::problems`, the `lake_problems` table); the rest answers.

use super::rows::{self, CatalogProcess};
use crate::error::EngineError;
use crate::lake::{BlockEntry, Lake, classify};
use frameline_instrument::lake::{self as layout, BlockKey, ProcessMeta, StreamMeta};
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as ObjectPath;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// A process without an end time (killed, or still running) has its blocks looked for up to
/// this long after its start, unless a compactor recorded where they end.
pub const UNFINISHED_HORIZON_NS: i64 = 72 * 3600 * 1_000_000_000;

const HOUR_NS: i64 = 3600 * 1_000_000_000;
/// Requests in flight while reading the catalog.
const CONCURRENT_REQUESTS: usize = 16;

/// An object read: its bytes, `None` if it vanished since the listing.
type Fetched = Result<Option<bytes::Bytes>, EngineError>;
/// A prefix listed.
type Listed = Result<Vec<object_store::ObjectMeta>, EngineError>;

/// Something in the lake that could not be read; skipped, the rest answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LakeProblem {
    pub key: String,
    pub detail: String,
}

/// The catalog objects of one start date.
#[derive(Clone, Debug, Default)]
struct DateIndex {
    process_parts: Vec<String>,
    stream_parts: Vec<String>,
    process_objects: Vec<String>,
    loaded: bool,
    stream_parts_loaded: bool,
}

#[derive(Clone, Debug)]
struct LoadedProcess {
    meta: Arc<ProcessMeta>,
    date: String,
    /// Read from a compacted part (its streams are in the date's stream parts).
    compacted: bool,
    last_block_end_unix_ns: Option<i64>,
}

/// What the reader has learnt so far.
#[derive(Debug, Default)]
pub(crate) struct CatalogState {
    dates: BTreeMap<String, DateIndex>,
    processes: HashMap<String, LoadedProcess>,
    /// The loaded processes by start time (what `Lake::processes` returns).
    snapshot: Arc<Vec<ProcessMeta>>,
    streams: HashMap<String, StreamMeta>,
    streams_loaded: HashSet<String>,
    blocks: HashMap<String, Arc<Vec<BlockEntry>>>,
    problems: Vec<LakeProblem>,
}

impl CatalogState {
    fn rebuild_snapshot(&mut self) {
        let mut all: Vec<ProcessMeta> = self
            .processes
            .values()
            .map(|p| p.meta.as_ref().clone())
            .collect();
        all.sort_by(|a, b| (a.start_unix_ns, &a.process_id).cmp(&(b.start_unix_ns, &b.process_id)));
        self.snapshot = Arc::new(all);
    }

    pub(crate) fn loaded_dates(&self) -> Vec<String> {
        self.dates
            .iter()
            .filter(|(_, d)| d.loaded)
            .map(|(date, _)| date.clone())
            .collect()
    }

    fn problem(&mut self, key: &str, detail: impl Into<String>) {
        let problem = LakeProblem {
            key: key.to_owned(),
            detail: detail.into(),
        };
        if !self.problems.contains(&problem) {
            self.problems.push(problem);
        }
    }
}

/// Which of two descriptions of one process to keep: a finished one over an unfinished one,
/// then the process object (written after any part that folded an earlier version of it).
fn better(candidate: &CatalogProcess, from_object: bool, current: &(CatalogProcess, bool)) -> bool {
    let finished = |p: &CatalogProcess| p.meta.end_unix_ns.is_some();
    match (finished(candidate), finished(&current.0)) {
        (true, false) => true,
        (false, true) => false,
        _ => from_object && !current.1,
    }
}

impl Lake {
    pub(crate) fn catalog(&self) -> std::sync::MutexGuard<'_, CatalogState> {
        // Nothing panics while holding it; take it as it is if something did.
        self.catalog_state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lists the catalog's prefixes (three LISTs, plus one per 1000 keys) and forgets what
    /// was loaded: the next reads see what was written since.
    pub(crate) async fn read_index(&self) -> Result<(), EngineError> {
        let process_parts = self.list(layout::CATALOG_PROCESSES_PREFIX).await?;
        let stream_parts = self.list(layout::CATALOG_STREAMS_PREFIX).await?;
        let process_objects = self.list(layout::PROCESSES_PREFIX).await?;
        let mut dates: BTreeMap<String, DateIndex> = BTreeMap::new();
        let mut ignored = Vec::new();
        for key in process_parts {
            match layout::date_of_catalog_part(layout::CATALOG_PROCESSES_PREFIX, &key) {
                Some(date) => dates
                    .entry(date.to_owned())
                    .or_default()
                    .process_parts
                    .push(key),
                None => ignored.push(key),
            }
        }
        for key in stream_parts {
            match layout::date_of_catalog_part(layout::CATALOG_STREAMS_PREFIX, &key) {
                Some(date) => dates
                    .entry(date.to_owned())
                    .or_default()
                    .stream_parts
                    .push(key),
                None => ignored.push(key),
            }
        }
        for key in process_objects {
            match layout::date_of_process_key(&key) {
                Some(date) => dates
                    .entry(date.to_owned())
                    .or_default()
                    .process_objects
                    .push(key),
                None => ignored.push(key),
            }
        }
        let mut state = self.catalog();
        *state = CatalogState {
            dates,
            ..CatalogState::default()
        };
        for key in ignored {
            state.problem(&key, "not a catalog key; ignored");
        }
        if let Some(detail) = &self.marker_problem {
            state.problem(layout::VERSION_KEY, detail.clone());
        }
        Ok(())
    }

    /// The start dates the lake holds processes for (from the index: no object read).
    pub fn dates(&self) -> Vec<String> {
        self.catalog().dates.keys().cloned().collect()
    }

    /// Reads the processes of the start dates in `[from, to]` (`YYYY-MM-DD`, inclusive; `None`
    /// for no bound) that are not loaded yet.
    pub async fn load_dates(
        &self,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<(), EngineError> {
        let _one_loader = self.catalog_loading.lock().await;
        let wanted: Vec<(String, DateIndex)> = self
            .catalog()
            .dates
            .iter()
            .filter(|(date, index)| {
                !index.loaded
                    && from.is_none_or(|f| date.as_str() >= f)
                    && to.is_none_or(|t| date.as_str() <= t)
            })
            .map(|(date, index)| (date.clone(), index.clone()))
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        // Every part and object of every wanted date, fetched together.
        let mut keys: Vec<(String, String, bool)> = Vec::new();
        for (date, index) in &wanted {
            keys.extend(
                index
                    .process_parts
                    .iter()
                    .map(|k| (date.clone(), k.clone(), false)),
            );
            keys.extend(
                index
                    .process_objects
                    .iter()
                    .map(|k| (date.clone(), k.clone(), true)),
            );
        }
        let fetched: Vec<(String, String, bool, Fetched)> = futures::stream::iter(keys)
            .map(|(date, key, from_object)| async move {
                let bytes = self.get(&key).await;
                (date, key, from_object, bytes)
            })
            .buffer_unordered(CONCURRENT_REQUESTS)
            .collect()
            .await;
        let mut chosen: HashMap<String, (CatalogProcess, bool, String)> = HashMap::new();
        let mut problems: Vec<(String, String)> = Vec::new();
        for (date, key, from_object, bytes) in fetched {
            let bytes = match bytes {
                Ok(Some(bytes)) => bytes,
                // Folded by a compactor since the listing: its rows are in a newer part, which
                // the next refresh lists.
                Ok(None) => {
                    problems.push((key, "vanished between listing and reading".to_owned()));
                    continue;
                }
                Err(
                    e @ (EngineError::Credentials { .. }
                    | EngineError::Unreachable { .. }
                    | EngineError::MissingBucket { .. }),
                ) => return Err(e),
                Err(e) => {
                    problems.push((key, e.to_string()));
                    continue;
                }
            };
            let parsed: Result<Vec<CatalogProcess>, String> = if from_object {
                rows::object_json::<ProcessMeta>(&bytes)
                    .map(|meta| {
                        vec![CatalogProcess {
                            meta,
                            last_block_end_unix_ns: None,
                        }]
                    })
                    .map_err(|e| format!("not a process description: {e}"))
            } else {
                rows::processes_of_part(bytes)
            };
            match parsed {
                Ok(processes) => {
                    for process in processes {
                        let id = process.meta.process_id.clone();
                        let replace = chosen.get(&id).is_none_or(|(p, o, _)| {
                            better(&process, from_object, &(p.clone(), *o))
                        });
                        if replace {
                            chosen.insert(id, (process, from_object, date.clone()));
                        }
                    }
                }
                Err(detail) => problems.push((key, detail)),
            }
        }
        let mut state = self.catalog();
        for (date, _) in &wanted {
            if let Some(index) = state.dates.get_mut(date) {
                index.loaded = true;
            }
        }
        for (key, detail) in problems {
            state.problem(&key, detail);
        }
        for (id, (process, from_object, date)) in chosen {
            state.processes.insert(
                id,
                LoadedProcess {
                    meta: Arc::new(process.meta),
                    date,
                    compacted: !from_object,
                    last_block_end_unix_ns: process.last_block_end_unix_ns,
                },
            );
        }
        state.rebuild_snapshot();
        Ok(())
    }

    /// Reads a running process again (a live session grows): its description (one GET: it
    /// gains an end when the game shuts down) and, at the next read of its blocks or streams,
    /// their listings (one LIST per hour of its life, plus its streams' folder). Returns the
    /// description read. A compacted (finished) process has nothing new and is left alone.
    pub async fn refresh_process(&self, process_id: &str) -> Result<Arc<ProcessMeta>, EngineError> {
        let (meta, compacted) = {
            let state = self.catalog();
            let process = state.processes.get(process_id).ok_or_else(|| {
                EngineError::Query(format!("no process {process_id} in the lake"))
            })?;
            (process.meta.clone(), process.compacted)
        };
        if compacted || meta.end_unix_ns.is_some() {
            return Ok(meta);
        }
        let key = layout::process_key(process_id, meta.start_unix_ns);
        let fresh = match self.get(&key).await? {
            Some(bytes) => rows::object_json::<ProcessMeta>(&bytes)
                .ok()
                .filter(|m| m.process_id == process_id),
            // Folded by a compactor meanwhile: what was read stays.
            None => None,
        };
        let meta = match fresh {
            Some(fresh) => {
                let fresh = Arc::new(fresh);
                let mut state = self.catalog();
                if let Some(process) = state.processes.get_mut(process_id) {
                    process.meta = fresh.clone();
                }
                state.rebuild_snapshot();
                if fresh.end_unix_ns.is_some() || fresh.tsc_frequency != meta.tsc_frequency {
                    // It ended (with its frequency measured over the whole run): key times
                    // are rescaled to it, so its blocks are listed again at the next read.
                    state.blocks.remove(process_id);
                    state.streams_loaded.remove(process_id);
                    return Ok(fresh);
                }
                fresh
            }
            None => meta,
        };
        // New blocks: the hours from the newest block known to now (blocks of earlier hours
        // are all there already), usually one LIST.
        let Some(known) = self.catalog().blocks.get(process_id).cloned() else {
            // Not listed yet: the next read lists every hour.
            return Ok(meta);
        };
        let newest = known
            .iter()
            .map(|b| b.info.begin_unix_ns)
            .max()
            .unwrap_or(meta.start_unix_ns);
        // Prefixes sort by time: from the newest block's hour on, and always the current one.
        let from = layout::process_hour_prefix(newest.div_euclid(HOUR_NS) * HOUR_NS, process_id);
        let mut hours = Self::block_hours(&meta, None);
        let current = hours.pop();
        hours.retain(|prefix| *prefix >= from);
        hours.extend(current);
        let (mut found, bad_keys) = self
            .list_blocks(
                hours
                    .iter()
                    .map(|h| (meta.clone(), h.clone()))
                    .collect::<Vec<_>>()
                    .into_iter(),
            )
            .await?;
        let mut state = self.catalog();
        for key in bad_keys {
            state.problem(&key, "not a block key of its folder; ignored");
        }
        // Blocks are only added: the listed keys not known already (in the folders listed).
        let recent: HashSet<&str> = known
            .iter()
            .filter(|b| hours.iter().any(|h| b.key.starts_with(h.as_str())))
            .map(|b| b.key.as_str())
            .collect();
        let fresh_entries: Vec<BlockEntry> = found
            .remove(process_id)
            .unwrap_or_default()
            .into_iter()
            .filter(|b| !recent.contains(b.key.as_str()))
            .collect();
        if fresh_entries.is_empty() {
            return Ok(meta);
        }
        let mut entries: Vec<BlockEntry> = known.as_ref().clone();
        // A new thread: its stream's description is read at the next need.
        if fresh_entries
            .iter()
            .any(|b| !state.streams.contains_key(&b.info.stream_id))
        {
            state.streams_loaded.remove(process_id);
        }
        entries.extend(fresh_entries);
        entries.sort_by(|a, b| {
            (&a.info.stream_id, a.info.block_seq).cmp(&(&b.info.stream_id, b.info.block_seq))
        });
        state
            .blocks
            .insert(process_id.to_owned(), Arc::new(entries));
        Ok(meta)
    }

    /// Whether every date of the index has been read.
    pub fn all_dates_loaded(&self) -> bool {
        self.catalog().dates.values().all(|d| d.loaded)
    }

    /// The processes read so far, by start time.
    pub fn processes(&self) -> Arc<Vec<ProcessMeta>> {
        self.catalog().snapshot.clone()
    }

    pub fn process(&self, process_id: &str) -> Option<Arc<ProcessMeta>> {
        self.catalog()
            .processes
            .get(process_id)
            .map(|p| p.meta.clone())
    }

    /// Streams read so far (those of the processes queries needed).
    pub fn streams(&self) -> HashMap<String, StreamMeta> {
        self.catalog().streams.clone()
    }

    pub fn thread_name(&self, stream_id: &str) -> Option<String> {
        self.catalog()
            .streams
            .get(stream_id)
            .map(|s| s.thread_name.clone())
    }

    /// What could not be read, skipped.
    pub fn problems(&self) -> Vec<LakeProblem> {
        self.catalog().problems.clone()
    }

    /// Records something that could not be read (a damaged summary part…), for `lake_problems`.
    pub(crate) fn catalog_problem(&self, key: &str, detail: impl Into<String>) {
        self.catalog().problem(key, detail);
    }

    /// The processes `process_ids` names (every process of every date if `None`), loading the
    /// dates needed: all of them when a process is not known yet.
    pub async fn processes_for(
        &self,
        process_ids: Option<&HashSet<String>>,
    ) -> Result<Vec<Arc<ProcessMeta>>, EngineError> {
        let known = |lake: &Lake| match process_ids {
            None => lake.all_dates_loaded(),
            Some(ids) => {
                let state = lake.catalog();
                ids.iter().all(|id| state.processes.contains_key(id))
            }
        };
        if !known(self) {
            self.load_dates(None, None).await?;
        }
        let state = self.catalog();
        Ok(match process_ids {
            None => state.processes.values().map(|p| p.meta.clone()).collect(),
            Some(ids) => ids
                .iter()
                .filter_map(|id| state.processes.get(id).map(|p| p.meta.clone()))
                .collect(),
        })
    }

    /// Reads the streams of these processes if not read yet.
    pub async fn load_streams(&self, process_ids: &[String]) -> Result<(), EngineError> {
        let _one_loader = self.catalog_loading.lock().await;
        let (part_keys, object_prefixes, dates_done, processes_done) = {
            let state = self.catalog();
            let mut part_keys = Vec::new();
            let mut dates_done = Vec::new();
            let mut object_prefixes = Vec::new();
            let mut processes_done = Vec::new();
            for id in process_ids {
                if state.streams_loaded.contains(id) {
                    continue;
                }
                let Some(process) = state.processes.get(id) else {
                    continue;
                };
                processes_done.push(id.clone());
                // A compacted process's streams are in its date's parts; one also listed as an
                // object (a compactor stopped before deleting it) may still have objects.
                if process.compacted
                    && let Some(index) = state.dates.get(&process.date)
                {
                    if !index.stream_parts_loaded && !dates_done.contains(&process.date) {
                        part_keys.extend(index.stream_parts.iter().cloned());
                        dates_done.push(process.date.clone());
                    }
                } else {
                    object_prefixes.push(format!("{}{id}/", layout::STREAMS_PREFIX));
                }
            }
            (part_keys, object_prefixes, dates_done, processes_done)
        };
        let listed: Vec<Result<Vec<String>, EngineError>> = futures::stream::iter(object_prefixes)
            .map(|prefix| async move { self.list(&prefix).await })
            .buffer_unordered(CONCURRENT_REQUESTS)
            .collect()
            .await;
        let mut object_keys = Vec::new();
        for keys in listed {
            object_keys.extend(keys?.into_iter().filter(|k| k.ends_with(".json")));
        }
        let keys = part_keys
            .into_iter()
            .map(|k| (k, false))
            .chain(object_keys.into_iter().map(|k| (k, true)));
        let fetched: Vec<(String, bool, Result<Option<bytes::Bytes>, EngineError>)> =
            futures::stream::iter(keys)
                .map(|(key, from_object)| async move {
                    let bytes = self.get(&key).await;
                    (key, from_object, bytes)
                })
                .buffer_unordered(CONCURRENT_REQUESTS)
                .collect()
                .await;
        let mut state = self.catalog();
        for (key, from_object, bytes) in fetched {
            let parsed: Result<Vec<StreamMeta>, String> = match bytes {
                Ok(Some(bytes)) if from_object => rows::object_json::<StreamMeta>(&bytes)
                    .map(|s| vec![s])
                    .map_err(|e| format!("not a stream description: {e}")),
                Ok(Some(bytes)) => rows::streams_of_part(bytes),
                Ok(None) => Err("vanished between listing and reading".to_owned()),
                Err(e) => Err(e.to_string()),
            };
            match parsed {
                Ok(streams) => {
                    for stream in streams {
                        state.streams_loaded.insert(stream.process_id.clone());
                        state.streams.insert(stream.stream_id.clone(), stream);
                    }
                }
                Err(detail) => state.problem(&key, detail),
            }
        }
        for date in dates_done {
            if let Some(index) = state.dates.get_mut(&date) {
                index.stream_parts_loaded = true;
            }
        }
        for id in processes_done {
            state.streams_loaded.insert(id);
        }
        Ok(())
    }

    /// Every block of every process (loading every date): for tools and tests; queries list
    /// only the processes they need.
    pub async fn all_blocks(&self) -> Result<Vec<BlockEntry>, EngineError> {
        let mut ids: Vec<String> = self
            .processes_for(None)
            .await?
            .iter()
            .map(|p| p.process_id.clone())
            .collect();
        ids.sort();
        let mut all: Vec<BlockEntry> = self
            .blocks_of(&ids)
            .await?
            .iter()
            .flat_map(|b| b.iter().cloned())
            .collect();
        all.sort_by(|a, b| {
            (&a.info.stream_id, a.info.block_seq).cmp(&(&b.info.stream_id, b.info.block_seq))
        });
        Ok(all)
    }

    /// The hour prefixes that can hold blocks of `process`.
    fn block_hours(process: &ProcessMeta, last_block_end_unix_ns: Option<i64>) -> Vec<String> {
        let start = process.start_unix_ns;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(i64::MAX, |d| {
                i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
            });
        let end = process
            .end_unix_ns
            .or(last_block_end_unix_ns)
            .unwrap_or_else(|| now.min(start.saturating_add(UNFINISHED_HORIZON_NS)))
            .clamp(start, start.saturating_add(UNFINISHED_HORIZON_NS));
        let first_hour = start.div_euclid(HOUR_NS);
        let last_hour = end.div_euclid(HOUR_NS);
        (first_hour..=last_hour)
            .map(|hour| layout::process_hour_prefix(hour * HOUR_NS, &process.process_id))
            .collect()
    }

    /// The block entries under each `(process, hour prefix)`, by process, and the keys that are
    /// not block keys of their folder.
    async fn list_blocks(
        &self,
        prefixes: impl Iterator<Item = (Arc<ProcessMeta>, String)>,
    ) -> Result<(HashMap<String, Vec<BlockEntry>>, Vec<String>), EngineError> {
        let listings: Vec<(Arc<ProcessMeta>, Listed)> = futures::stream::iter(prefixes)
            .map(|(process, prefix)| async move {
                let listed = self
                    .store()
                    .list(Some(&ObjectPath::from(prefix.as_str())))
                    .try_collect::<Vec<_>>()
                    .await
                    .map_err(|e| classify(self.location(), &prefix, e));
                (process, listed)
            })
            .buffer_unordered(CONCURRENT_REQUESTS)
            .collect()
            .await;
        let mut found: HashMap<String, Vec<BlockEntry>> = HashMap::new();
        let mut bad_keys = Vec::new();
        for (process, listed) in listings {
            let entries = found.entry(process.process_id.clone()).or_default();
            for meta in listed? {
                let key = meta.location.to_string();
                // A block being written by a local game (or left by one killed mid-write).
                if layout::is_partial_write(&key) {
                    continue;
                }
                let Some(mut info) = BlockKey::parse(&key) else {
                    bad_keys.push(key);
                    continue;
                };
                if info.process_id != process.process_id {
                    bad_keys.push(key);
                    continue;
                }
                // Key times were computed with the frequency measured at start; rescale them
                // to the process's final frequency so they agree with decoded times.
                info.begin_unix_ns = process.rescale_key_ns(info.begin_unix_ns);
                info.end_unix_ns = process.rescale_key_ns(info.end_unix_ns);
                info.earliest_unix_ns = process.rescale_key_ns(info.earliest_unix_ns);
                entries.push(BlockEntry {
                    key,
                    info,
                    size_bytes: meta.size,
                });
            }
        }
        Ok((found, bad_keys))
    }

    /// The blocks of these processes (listed on first need, one LIST per hour of each process's
    /// life), sorted by stream and sequence.
    pub async fn blocks_of(
        &self,
        process_ids: &[String],
    ) -> Result<Vec<Arc<Vec<BlockEntry>>>, EngineError> {
        self.load_streams(process_ids).await?;
        let missing: Vec<(Arc<ProcessMeta>, Vec<String>)> = {
            let state = self.catalog();
            process_ids
                .iter()
                .filter(|id| !state.blocks.contains_key(*id))
                .filter_map(|id| state.processes.get(id))
                .map(|p| {
                    (
                        p.meta.clone(),
                        Self::block_hours(&p.meta, p.last_block_end_unix_ns),
                    )
                })
                .collect()
        };
        let (found, bad_keys) = self
            .list_blocks(
                missing.into_iter().flat_map(|(process, hours)| {
                    hours.into_iter().map(move |h| (process.clone(), h))
                }),
            )
            .await?;
        let mut state = self.catalog();
        for key in bad_keys {
            state.problem(&key, "not a block key of its folder; ignored");
        }
        for (id, mut entries) in found {
            entries.sort_by(|a, b| {
                (&a.info.stream_id, a.info.block_seq).cmp(&(&b.info.stream_id, b.info.block_seq))
            });
            state.blocks.insert(id, Arc::new(entries));
        }
        Ok(process_ids
            .iter()
            .filter_map(|id| state.blocks.get(id).cloned())
            .collect())
    }
}
