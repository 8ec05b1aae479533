//! Decoded blocks, kept so a second query (memory) or a second run (disk) is warm. Blocks are
//! immutable, so an entry never goes stale; deleting the cache loses nothing.
//!
//! Memory: record batches, bounded by their Arrow size, least recently used evicted first.
//! Disk: one Arrow IPC file per decoded block under the user's cache folder
//! (`$FRAMELINE_CACHE_DIR`, else `$XDG_CACHE_HOME/frameline/decoded`, else
//! `~/.cache/frameline/decoded`), in a folder per lake, written atomically (temp + rename).

use datafusion::arrow::ipc::reader::FileReader;
use datafusion::arrow::ipc::writer::FileWriter;
use datafusion::arrow::record_batch::RecordBatch;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

/// Default memory budget for decoded blocks.
pub const DEFAULT_MEMORY_BYTES: usize = 1024 * 1024 * 1024;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CacheKey {
    /// Which table the block was decoded for.
    pub table: &'static str,
    pub block_key: String,
    /// Decoded as its stream's last block (unclosed spans included).
    pub last_of_stream: bool,
}

impl CacheKey {
    fn file_name(&self) -> String {
        let mut name: String = self
            .block_key
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                    c
                } else {
                    '.'
                }
            })
            .collect();
        name.push('.');
        name.push_str(self.table);
        if self.last_of_stream {
            name.push_str(".last");
        }
        name.push_str(".arrow");
        name
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
}

pub struct BlockCache {
    memory: Mutex<Memory>,
    max_memory_bytes: usize,
    disk_dir: Option<PathBuf>,
    memory_hits: AtomicU64,
    disk_hits: AtomicU64,
    misses: AtomicU64,
    pending: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl std::fmt::Debug for BlockCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlockCache")
            .field("max_memory_bytes", &self.max_memory_bytes)
            .field("disk_dir", &self.disk_dir)
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
    // FNV-1a of the lake's location: a short, stable folder name.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in lake.bytes() {
        hash = (hash ^ byte as u64).wrapping_mul(0x0100_0000_01b3);
    }
    Some(base.join(format!("{hash:016x}")))
}

impl BlockCache {
    pub fn new(max_memory_bytes: usize, disk_dir: Option<PathBuf>) -> Self {
        Self {
            memory: Mutex::new(Memory::default()),
            max_memory_bytes,
            disk_dir,
            memory_hits: AtomicU64::new(0),
            disk_hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            pending: Mutex::new(Vec::new()),
        }
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
        self.write_disk(&key, batch);
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
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.write_disk(&key, batch);
            return;
        };
        let cache = self.clone();
        let batch = batch.clone();
        let handle = runtime.spawn_blocking(move || cache.write_disk(&key, &batch));
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        pending.retain(|h| !h.is_finished());
        pending.push(handle);
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
        let file = std::fs::File::open(&path).ok()?;
        let reader = FileReader::try_new(std::io::BufReader::new(file), None).ok()?;
        let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>().ok()?;
        match batches.len() {
            0 => None,
            1 => batches.into_iter().next(),
            _ => {
                let schema = batches[0].schema();
                datafusion::arrow::compute::concat_batches(&schema, &batches).ok()
            }
        }
    }

    fn write_disk(&self, key: &CacheKey, batch: &RecordBatch) {
        let Some(dir) = &self.disk_dir else { return };
        if std::fs::create_dir_all(dir).is_err() {
            return;
        }
        let path = dir.join(key.file_name());
        if path.exists() {
            return;
        }
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        let written = (|| -> Option<()> {
            let file = std::io::BufWriter::new(std::fs::File::create(&tmp).ok()?);
            let mut writer = FileWriter::try_new(file, &batch.schema()).ok()?;
            writer.write(batch).ok()?;
            writer.finish().ok()?;
            drop(writer);
            std::fs::rename(&tmp, &path).ok()
        })();
        if written.is_none() {
            std::fs::remove_file(&tmp).ok();
        }
    }

    /// Empties memory and this lake's disk folder.
    pub fn clear(&self) {
        *self.memory() = Memory::default();
        if let Some(dir) = &self.disk_dir {
            // A folder that cannot be removed is only a cache left behind.
            std::fs::remove_dir_all(dir).ok();
        }
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            memory_hits: self.memory_hits.load(Ordering::Relaxed),
            disk_hits: self.disk_hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
        }
    }

    pub fn memory_bytes(&self) -> usize {
        self.memory().bytes
    }
}
