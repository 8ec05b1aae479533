//! Decoded blocks, kept so a second query (memory) or a second run (disk) is warm. Blocks are
//! immutable, but their rows also depend on what the catalog says about them (the process's
//! clock, the thread's name, whether the block is its stream's last): a [`CacheKey`] holds every
//! one of those inputs, with the cache format version and the table's schema, so an entry can
//! only ever answer for the exact rows it was decoded as. Deleting the cache loses nothing.
//!
//! Memory: record batches, bounded by their Arrow size, least recently used evicted first.
//! Disk: one file per decoded block under the user's cache folder (`$FRAMELINE_CACHE_DIR`, else
//! `$XDG_CACHE_HOME/frameline/decoded`, else `~/.cache/frameline/decoded`), in a folder per lake,
//! written atomically (a temp file unique to its writer, then a rename). A file is a small
//! header (magic, version, the key's full identity, lengths, CRC-32) and an Arrow IPC file: a
//! truncated, garbled, misplaced or foreign file is a miss, never rows, and its schema is checked
//! on read. The disk cache (all lakes together) is bounded (`FRAMELINE_CACHE_MAX_BYTES`, default
//! [`DEFAULT_DISK_BYTES`]): past it, the least recently used files go first.

use crate::decode::BlockContext;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::ipc::reader::FileReader;
use datafusion::arrow::ipc::writer::FileWriter;
use datafusion::arrow::record_batch::RecordBatch;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

/// Default memory budget for decoded blocks.
pub const DEFAULT_MEMORY_BYTES: usize = 1024 * 1024 * 1024;
/// Default budget of the disk cache, all lakes together.
pub const DEFAULT_DISK_BYTES: u64 = 4 * 1024 * 1024 * 1024;
/// Version of the cache's file layout and of what a key covers: bumped when either changes, or
/// when decoding changes the rows a block gives, so older files are never read.
pub const CACHE_FORMAT_VERSION: u32 = 2;
/// First bytes of a cache file.
const MAGIC: [u8; 4] = *b"FLDC";
/// Temp files older than this were left by a writer that died: removed when the cache is trimmed.
/// Background disk writes waiting at most (each holds its decoded block).
const MAX_PENDING_DISK_WRITES: usize = 64;
const STALE_TEMP: Duration = Duration::from_secs(3600);

/// FNV-1a: short, stable names for folders and files (not a checksum: see the CRC).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash = (hash ^ byte as u64).wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// What a decoded block is: its table, its schema, the block, and every catalog input that
/// shapes its rows. Two keys are equal only if all of them are.
#[derive(Clone, Debug)]
pub struct CacheKey {
    /// Which table the block was decoded for.
    table: &'static str,
    schema: SchemaRef,
    /// Every input, one per line, the format version first (compared on read).
    identity: Arc<str>,
    /// FNV-1a of the block key and of `identity`: the file name.
    block_hash: u64,
    identity_hash: u64,
}

impl PartialEq for CacheKey {
    fn eq(&self, other: &Self) -> bool {
        self.identity == other.identity
    }
}

impl Eq for CacheKey {}

impl Hash for CacheKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.identity.hash(state);
    }
}

/// A stable fingerprint of a schema (names, types, nullability, metadata).
pub fn schema_fingerprint(schema: &SchemaRef) -> u64 {
    fnv1a(format!("{schema:?}").as_bytes())
}

impl CacheKey {
    /// The key of the block of `ctx` decoded for `table` with `schema`.
    pub fn new(table: &'static str, schema: &SchemaRef, ctx: &BlockContext<'_>) -> CacheKey {
        let process = &ctx.process;
        let identity = format!(
            "frameline decoded block v{CACHE_FORMAT_VERSION}\ntable {table}\nschema {:016x}\n\
             block {}\nlast_of_stream {}\nprocess {}\nstart_ticks {}\nstart_unix_ns {}\n\
             tsc_frequency {}\nstream {}\nthread_name {:?}",
            schema_fingerprint(schema),
            ctx.entry.key,
            ctx.last_of_stream,
            ctx.entry.info.process_id,
            process.start_ticks,
            process.start_unix_ns,
            process.tsc_frequency,
            ctx.entry.info.stream_id,
            ctx.thread_name,
        );
        CacheKey {
            table,
            schema: schema.clone(),
            block_hash: fnv1a(ctx.entry.key.as_bytes()),
            identity_hash: fnv1a(identity.as_bytes()),
            identity: identity.into(),
        }
    }

    pub fn table(&self) -> &'static str {
        self.table
    }

    /// Every input the key covers, as written in its file.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The file name: fixed length whatever the block key, the inputs' hash in it so a block
    /// whose process was re-timed gets a new file.
    pub fn file_name(&self) -> String {
        format!(
            "{:016x}-{:016x}.{}.arrow",
            self.block_hash, self.identity_hash, self.table
        )
    }
}

struct Entry {
    batch: RecordBatch,
    bytes: usize,
    last_used: u64,
}

#[derive(Default)]
struct Memory {
    entries: HashMap<CacheKey, Entry>,
    bytes: usize,
    clock: u64,
}

/// Counters, for tests and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub memory_hits: u64,
    pub disk_hits: u64,
    pub misses: u64,
    /// Disk files that were there but could not answer (damaged, foreign, another schema).
    pub disk_rejected: u64,
    /// Disk files removed to stay within the disk budget.
    pub disk_evicted: u64,
    /// Blocks not written to disk because the writes already waiting held too much.
    pub writes_skipped: u64,
}

pub struct BlockCache {
    memory: Mutex<Memory>,
    max_memory_bytes: usize,
    disk_dir: Option<PathBuf>,
    max_disk_bytes: u64,
    /// Bytes of the whole disk cache (every lake's folder), once counted.
    disk_bytes: Mutex<Option<u64>>,
    memory_hits: AtomicU64,
    disk_hits: AtomicU64,
    misses: AtomicU64,
    disk_rejected: AtomicU64,
    disk_evicted: AtomicU64,
    writes_skipped: AtomicU64,
    pending: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Bumped by [`BlockCache::clear`]: a background write begun before a clear does not land
    /// after it.
    generation: AtomicU64,
}

impl std::fmt::Debug for BlockCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockCache")
            .field("max_memory_bytes", &self.max_memory_bytes)
            .field("disk_dir", &self.disk_dir)
            .field("max_disk_bytes", &self.max_disk_bytes)
            .finish()
    }
}

/// The cache folder for a lake (`None` if no cache folder can be found, or
/// `FRAMELINE_CACHE_DIR=off`).
pub fn disk_dir_for(lake: &str) -> Option<PathBuf> {
    let base = match std::env::var_os("FRAMELINE_CACHE_DIR") {
        Some(dir) if dir == "off" => return None,
        Some(dir) => PathBuf::from(dir),
        None => crate::dirs::cache_dir()?.join("decoded"),
    };
    // A short, stable folder name for the lake's location.
    Some(base.join(format!("{:016x}", fnv1a(lake.as_bytes()))))
}

/// The disk budget: `FRAMELINE_CACHE_MAX_BYTES` if set to a number, else [`DEFAULT_DISK_BYTES`].
pub fn default_max_disk_bytes() -> u64 {
    std::env::var("FRAMELINE_CACHE_MAX_BYTES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(DEFAULT_DISK_BYTES)
}

/// Unique per writer: the process, and a counter within it.
fn temp_name(file_name: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(
        "{file_name}.tmp-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A cache file: header, then the Arrow IPC file of the batch.
///
/// ```text
/// magic "FLDC" | version u32 | identity_len u32 | identity | ipc_len u64 | crc32 u32 | ipc
/// ```
/// (little-endian; the CRC-32 covers identity and ipc).
fn encode_file(key: &CacheKey, batch: &RecordBatch) -> Option<Vec<u8>> {
    let mut ipc = Vec::new();
    let mut writer = FileWriter::try_new(&mut ipc, &batch.schema()).ok()?;
    writer.write(batch).ok()?;
    writer.finish().ok()?;
    drop(writer);
    let identity = key.identity.as_bytes();
    let mut crc = crc32fast::Hasher::new();
    crc.update(identity);
    crc.update(&ipc);
    let mut out = Vec::with_capacity(28 + identity.len() + ipc.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&CACHE_FORMAT_VERSION.to_le_bytes());
    out.extend_from_slice(&u32::try_from(identity.len()).ok()?.to_le_bytes());
    out.extend_from_slice(identity);
    out.extend_from_slice(&(ipc.len() as u64).to_le_bytes());
    out.extend_from_slice(&crc.finalize().to_le_bytes());
    out.extend_from_slice(&ipc);
    Some(out)
}

/// The batch of a cache file, if the file is whole, of this version, of this exact key and of
/// its schema.
fn decode_file(key: &CacheKey, bytes: &[u8]) -> Option<RecordBatch> {
    let take = |at: &mut usize, n: usize| -> Option<&[u8]> {
        let slice = bytes.get(*at..at.checked_add(n)?)?;
        *at += n;
        Some(slice)
    };
    let mut at = 0;
    if take(&mut at, 4)? != MAGIC {
        return None;
    }
    let version = u32::from_le_bytes(take(&mut at, 4)?.try_into().ok()?);
    if version != CACHE_FORMAT_VERSION {
        return None;
    }
    let identity_len = u32::from_le_bytes(take(&mut at, 4)?.try_into().ok()?) as usize;
    let identity = take(&mut at, identity_len)?;
    if identity != key.identity.as_bytes() {
        return None;
    }
    let ipc_len = usize::try_from(u64::from_le_bytes(take(&mut at, 8)?.try_into().ok()?)).ok()?;
    let stored_crc = u32::from_le_bytes(take(&mut at, 4)?.try_into().ok()?);
    let ipc = take(&mut at, ipc_len)?;
    if at != bytes.len() {
        return None;
    }
    let mut crc = crc32fast::Hasher::new();
    crc.update(identity);
    crc.update(ipc);
    if crc.finalize() != stored_crc {
        return None;
    }
    let reader = FileReader::try_new(std::io::Cursor::new(ipc), None).ok()?;
    if reader.schema().fields() != key.schema.fields() {
        return None;
    }
    let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>().ok()?;
    let batch = match batches.len() {
        0 => return None,
        1 => batches.into_iter().next()?,
        _ => datafusion::arrow::compute::concat_batches(&key.schema, &batches).ok()?,
    };
    (batch.schema().fields() == key.schema.fields()).then_some(batch)
}

fn is_hash(name: &str) -> bool {
    name.len() == 16 && name.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Whether `name` is a file this cache writes, `<hash>-<hash>.<table>.arrow`, or one written
/// before keys covered every input (`blocks.….arrow`, never read again): nothing else in the
/// cache folder (which `FRAMELINE_CACHE_DIR` may point anywhere) is ever removed.
fn is_cache_file(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(".arrow") else {
        return false;
    };
    if stem.starts_with("blocks.") {
        return true;
    }
    let Some((hashes, table)) = stem.split_once('.') else {
        return false;
    };
    let Some((block, identity)) = hashes.split_once('-') else {
        return false;
    };
    is_hash(block)
        && is_hash(identity)
        && !table.is_empty()
        && table.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
}

/// Every finished cache file under `base` (in the lakes' folders, named by their hash): path,
/// size and last use. Stale temp files of writers that died are removed on the way.
fn disk_files(base: &Path) -> Vec<(PathBuf, u64, SystemTime)> {
    let mut files = Vec::new();
    let Ok(lakes) = std::fs::read_dir(base) else {
        return files;
    };
    let now = SystemTime::now();
    for lake in lakes.flatten() {
        if !is_hash(&lake.file_name().to_string_lossy()) {
            continue;
        }
        let Ok(entries) = std::fs::read_dir(lake.path()) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if let Some((target, _)) = name.split_once(".tmp-") {
                if is_cache_file(target)
                    && now.duration_since(modified).unwrap_or_default() > STALE_TEMP
                {
                    std::fs::remove_file(&path).ok();
                }
                continue;
            }
            if is_cache_file(&name) {
                files.push((path, meta.len(), modified));
            }
        }
    }
    files
}

impl BlockCache {
    pub fn new(max_memory_bytes: usize, disk_dir: Option<PathBuf>) -> Self {
        Self {
            memory: Mutex::new(Memory::default()),
            max_memory_bytes,
            disk_dir,
            max_disk_bytes: default_max_disk_bytes(),
            disk_bytes: Mutex::new(None),
            memory_hits: AtomicU64::new(0),
            disk_hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            disk_rejected: AtomicU64::new(0),
            disk_evicted: AtomicU64::new(0),
            writes_skipped: AtomicU64::new(0),
            pending: Mutex::new(Vec::new()),
            generation: AtomicU64::new(0),
        }
    }

    /// The same cache with another disk budget (all lakes' folders together).
    pub fn with_max_disk_bytes(mut self, max_disk_bytes: u64) -> Self {
        self.max_disk_bytes = max_disk_bytes;
        self
    }

    fn memory(&self) -> std::sync::MutexGuard<'_, Memory> {
        self.memory.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A decoded block from memory (no I/O: callable on an async task).
    pub fn get_memory(&self, key: &CacheKey) -> Option<RecordBatch> {
        let mut memory = self.memory();
        memory.clock += 1;
        let clock = memory.clock;
        let entry = memory.entries.get_mut(key)?;
        entry.last_used = clock;
        self.memory_hits.fetch_add(1, Ordering::Relaxed);
        Some(entry.batch.clone())
    }

    /// Whether a disk cache is in use (a miss in memory is worth a look on disk).
    pub fn has_disk(&self) -> bool {
        self.disk_dir.is_some()
    }

    /// Where this lake's decoded blocks are written, if anywhere.
    pub fn disk_dir(&self) -> Option<&Path> {
        self.disk_dir.as_deref()
    }

    /// A decoded block, from memory or disk.
    pub fn get(&self, key: &CacheKey) -> Option<RecordBatch> {
        if let Some(batch) = self.get_memory(key) {
            return Some(batch);
        }
        if let Some(batch) = self.read_disk(key) {
            self.disk_hits.fetch_add(1, Ordering::Relaxed);
            self.insert_memory(key.clone(), batch.clone());
            return Some(batch);
        }
        self.misses.fetch_add(1, Ordering::Relaxed);
        None
    }

    /// Keeps a decoded block (memory and disk). Disk errors only cost the next run its warmth.
    pub fn put(&self, key: CacheKey, batch: &RecordBatch) {
        self.write_disk(&key, batch, self.generation.load(Ordering::SeqCst));
        self.insert_memory(key, batch.clone());
    }

    /// Keeps a decoded block in memory now and writes it to disk in the background (off the
    /// query's path); [`BlockCache::flush`] waits for those writes.
    pub fn put_later(self: &std::sync::Arc<Self>, key: CacheKey, batch: &RecordBatch) {
        self.insert_memory(key.clone(), batch.clone());
        self.write_later(key, batch);
    }

    /// Writes a decoded block to disk in the background, without keeping it in memory: for
    /// readers that hold the rows themselves (the timeline's model).
    pub fn write_later(self: &std::sync::Arc<Self>, key: CacheKey, batch: &RecordBatch) {
        if self.disk_dir.is_none() {
            return;
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.write_disk(&key, batch, generation);
            return;
        };
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        pending.retain(|h| !h.is_finished());
        // Each pending write holds its batch: when the disk falls behind the decoders, blocks
        // are not written (they decode again next time) rather than pile up in memory.
        if pending.len() >= MAX_PENDING_DISK_WRITES {
            self.writes_skipped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let cache = self.clone();
        let batch = batch.clone();
        pending.push(runtime.spawn_blocking(move || cache.write_disk(&key, &batch, generation)));
    }

    /// Waits for the background disk writes.
    pub async fn flush(&self) {
        let pending: Vec<tokio::task::JoinHandle<()>> =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        for handle in pending {
            // A write that failed (or panicked) is a cache miss next time, nothing more.
            handle.await.ok();
        }
    }

    fn insert_memory(&self, key: CacheKey, batch: RecordBatch) {
        let bytes = batch.get_array_memory_size();
        if bytes > self.max_memory_bytes {
            return;
        }
        let mut memory = self.memory();
        memory.clock += 1;
        let clock = memory.clock;
        if let Some(old) = memory.entries.insert(
            key,
            Entry {
                batch,
                bytes,
                last_used: clock,
            },
        ) {
            memory.bytes -= old.bytes;
        }
        memory.bytes += bytes;
        while memory.bytes > self.max_memory_bytes {
            let Some(oldest) = memory
                .entries
                .iter()
                .min_by_key(|(_, e)| e.last_used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(evicted) = memory.entries.remove(&oldest) {
                memory.bytes -= evicted.bytes;
            }
        }
    }

    fn read_disk(&self, key: &CacheKey) -> Option<RecordBatch> {
        let path = self.disk_dir.as_ref()?.join(key.file_name());
        let mut file = std::fs::File::open(&path).ok()?;
        let size = file.metadata().ok()?.len();
        let batch = if size <= self.max_disk_bytes {
            let mut bytes = Vec::with_capacity(size as usize);
            file.read_to_end(&mut bytes)
                .ok()
                .and_then(|_| decode_file(key, &bytes))
        } else {
            None
        };
        match batch {
            Some(batch) => {
                // Its last use, for the oldest-first eviction (a failure only ages it).
                file.set_modified(SystemTime::now()).ok();
                Some(batch)
            }
            None => {
                // A file that cannot answer is removed: the block is decoded and written again.
                self.disk_rejected.fetch_add(1, Ordering::Relaxed);
                drop(file);
                if std::fs::remove_file(&path).is_ok() {
                    self.account_disk(-(size as i64));
                }
                None
            }
        }
    }

    /// Writes a file for `key`, unless the cache was cleared since `generation`.
    fn write_disk(&self, key: &CacheKey, batch: &RecordBatch, generation: u64) {
        let cleared = || self.generation.load(Ordering::SeqCst) != generation;
        let Some(dir) = &self.disk_dir else { return };
        let path = dir.join(key.file_name());
        if path.exists() {
            return;
        }
        let Some(bytes) = encode_file(key, batch) else {
            return;
        };
        let size = bytes.len() as u64;
        if size > self.max_disk_bytes / 2 || std::fs::create_dir_all(dir).is_err() {
            return;
        }
        let tmp = dir.join(temp_name(&key.file_name()));
        let written = (|| -> Option<()> {
            let mut file = std::fs::File::create(&tmp).ok()?;
            file.write_all(&bytes).ok()?;
            drop(file);
            if cleared() {
                return None;
            }
            std::fs::rename(&tmp, &path).ok()
        })();
        if written.is_none() {
            std::fs::remove_file(&tmp).ok();
            return;
        }
        if cleared() {
            // Cleared while it was renamed: the clear may have removed the folder before.
            std::fs::remove_file(&path).ok();
            return;
        }
        self.account_disk(size as i64);
    }

    /// Counts `delta` bytes into the disk total (counting the folder first if needed), then
    /// trims the disk cache if it is over its budget.
    fn account_disk(&self, delta: i64) {
        let Some(base) = self.disk_dir.as_ref().and_then(|d| d.parent()) else {
            return;
        };
        let mut total = self
            .disk_bytes
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let bytes = match *total {
            Some(bytes) => bytes.saturating_add_signed(delta),
            // The first write of this run: count what every lake left (this file included).
            None => disk_files(base).iter().map(|(_, size, _)| size).sum(),
        };
        *total = Some(if bytes > self.max_disk_bytes {
            self.trim_disk(base)
        } else {
            bytes
        });
    }

    /// Removes the least recently used files until the cache is within 90 % of its budget;
    /// returns the bytes left.
    fn trim_disk(&self, base: &Path) -> u64 {
        let mut files = disk_files(base);
        let mut bytes: u64 = files.iter().map(|(_, size, _)| size).sum();
        let target = self.max_disk_bytes / 10 * 9;
        files.sort_by_key(|(_, _, used)| *used);
        for (path, size, _) in files {
            if bytes <= target {
                break;
            }
            // Another process may have removed it already: either way it is gone.
            std::fs::remove_file(&path).ok();
            bytes = bytes.saturating_sub(size);
            self.disk_evicted.fetch_add(1, Ordering::Relaxed);
        }
        bytes
    }

    /// Empties memory and this lake's disk folder.
    pub fn clear(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        *self.memory() = Memory::default();
        if let Some(dir) = &self.disk_dir {
            // A folder that cannot be removed is only a cache left behind.
            std::fs::remove_dir_all(dir).ok();
        }
        *self
            .disk_bytes
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            memory_hits: self.memory_hits.load(Ordering::Relaxed),
            disk_hits: self.disk_hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            disk_rejected: self.disk_rejected.load(Ordering::Relaxed),
            disk_evicted: self.disk_evicted.load(Ordering::Relaxed),
            writes_skipped: self.writes_skipped.load(Ordering::Relaxed),
        }
    }

    pub fn memory_bytes(&self) -> usize {
        self.memory().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_cache_s_own_files_are_candidates_for_eviction() {
        assert!(is_cache_file(
            "0123456789abcdef-fedcba9876543210.thread_spans.arrow"
        ));
        assert!(is_cache_file(
            "blocks.2026-01-01.00.p.cpu-s.1_2_3_4_5.blk.log_entries.arrow"
        ));
        for other in [
            "notes.arrow",
            "0123456789abcdef-fedcba9876543210.thread_spans.parquet",
            "0123456789abcdef.thread_spans.arrow",
            "0123456789abcdeg-fedcba9876543210.thread_spans.arrow",
            "0123456789abcdef-fedcba9876543210..arrow",
            "0123456789abcdef-fedcba9876543210.Data.arrow",
        ] {
            assert!(!is_cache_file(other), "{other}");
        }
        // A folder beside the lakes' folders, and files that are not the cache's, are left alone.
        let base = tempfile::tempdir().expect("temp dir");
        let lake = base.path().join("0123456789abcdef");
        let other = base.path().join("photos");
        std::fs::create_dir_all(&lake).expect("lake folder");
        std::fs::create_dir_all(&other).expect("other folder");
        let ours = lake.join("0123456789abcdef-fedcba9876543210.thread_spans.arrow");
        std::fs::write(&ours, b"x").expect("write");
        std::fs::write(lake.join("keep.arrow"), b"x").expect("write");
        std::fs::write(
            other.join("0123456789abcdef-fedcba9876543210.t.arrow"),
            b"x",
        )
        .expect("write");
        let found: Vec<PathBuf> = disk_files(base.path()).into_iter().map(|f| f.0).collect();
        assert_eq!(found, [ours]);
    }
}
