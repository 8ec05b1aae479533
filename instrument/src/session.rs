//! A recording session (one process's telemetry): the flush thread, its sink, and the bounded
//! hand-off between the game's threads and it.

use crate::Level;
use crate::flight_recorder::{FlightRecorder, HeldBlock, Ring};
use crate::format::{self, BlockEncoder, BlockMeta, OpenSpans, StreamKind};
use crate::lake::{self, BlockKey, ProcessMeta, StreamMeta};
use crate::local;
use crate::sink::{NullSink, Sink, SinkError};
use crate::time::{self, ClockPair};
use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Why telemetry could not start.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("telemetry is already initialized in this process")]
    AlreadyInitialized,
    #[error("FRAMELINE_LAKE is not set")]
    NoLake,
    #[error("{0}: s3:// lakes need frameline-instrument's `s3` feature")]
    S3Disabled(String),
    #[error("the lake at {lake} has layout version {found}; this build writes version {supported}")]
    NewerLake {
        lake: String,
        found: u32,
        supported: u32,
    },
    #[error("the lake at {lake} has an unreadable version marker: {reason}")]
    BadLake { lake: String, reason: String },
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error("starting the flush thread: {0}")]
    Thread(#[from] std::io::Error),
}

/// How to record: where to, and the limits that keep the game safe.
pub struct Config {
    sink: Box<dyn Sink>,
    lake: String,
    exe: Option<String>,
    properties: BTreeMap<String, String>,
    parent_process_id: Option<String>,
    flush_interval: Duration,
    max_level: Level,
    max_inflight_bytes: usize,
    flight_recorder: Option<FlightRecorder>,
    shutdown_timeout: Duration,
    flush_on_panic: bool,
}

/// Default of [`Config::shutdown_timeout`].
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(3);

impl Config {
    /// Records into `sink`.
    pub fn with_sink(sink: impl Sink) -> Self {
        let lake = sink.describe();
        Self {
            sink: Box::new(sink),
            lake,
            exe: None,
            properties: BTreeMap::new(),
            parent_process_id: None,
            flush_interval: Duration::from_secs(1),
            max_level: Level::Info,
            max_inflight_bytes: 64 * 1024 * 1024,
            flight_recorder: None,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            flush_on_panic: false,
        }
    }

    /// Records into a capture folder or, with the `s3` feature, an `s3://bucket/prefix`.
    pub fn lake(lake: &str) -> Result<Self, InitError> {
        if lake.starts_with("s3://") {
            #[cfg(feature = "s3")]
            {
                return Ok(Self::with_sink(crate::sink::S3Sink::from_url(lake)?));
            }
            #[cfg(not(feature = "s3"))]
            {
                return Err(InitError::S3Disabled(lake.to_owned()));
            }
        }
        Ok(Self::with_sink(crate::sink::LocalSink::new(lake)?))
    }

    /// Records into the lake named by `FRAMELINE_LAKE` (a folder or `s3://bucket/prefix`);
    /// `FRAMELINE_LEVEL` (error|warn|info|debug|trace) sets the maximum log level.
    pub fn from_env() -> Result<Self, InitError> {
        let lake = std::env::var("FRAMELINE_LAKE").map_err(|_| InitError::NoLake)?;
        let mut config = Self::lake(&lake)?;
        if let Some(level) = std::env::var("FRAMELINE_LEVEL")
            .ok()
            .and_then(|l| Level::parse(&l))
        {
            config.max_level = level;
        }
        Ok(config)
    }

    /// The sink and the lake's name (for the offline writer).
    pub(crate) fn into_sink(self) -> (Box<dyn Sink>, String) {
        (self.sink, self.lake)
    }

    /// Encodes everything and throws it away: for measuring the cost of recording.
    pub fn null() -> Self {
        Self::with_sink(NullSink::default())
    }

    /// Name of the program (default: the executable's file name).
    pub fn exe(mut self, exe: impl Into<String>) -> Self {
        self.exe = Some(exe.into());
        self
    }

    /// A free-form property of the process (build, map, GPU, ...).
    pub fn property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.properties.insert(key.into(), value.into());
        self
    }

    /// The process that started this one, if it is recorded too.
    pub fn parent_process(mut self, process_id: impl Into<String>) -> Self {
        self.parent_process_id = Some(process_id.into());
        self
    }

    /// How often the flush thread collects what threads recorded (default 1 s).
    pub fn flush_interval(mut self, interval: Duration) -> Self {
        self.flush_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// The most verbose log level recorded (default `Info`).
    pub fn max_level(mut self, level: Level) -> Self {
        self.max_level = level;
        self
    }

    /// Keeps CPU blocks in a bounded ring and writes only those around a trigger (a long
    /// frame, an error log, [`crate::capture_now`]); see [`FlightRecorder`].
    pub fn flight_recorder(mut self, recorder: FlightRecorder) -> Self {
        self.flight_recorder = Some(recorder);
        self
    }

    /// Raw bytes allowed to wait for the sink before whole blocks are dropped (default 64 MiB).
    pub fn max_inflight_bytes(mut self, bytes: usize) -> Self {
        self.max_inflight_bytes = bytes;
        self
    }

    /// The longest shutdown (dropping the guard) and [`crate::flush`] wait (default 3 s).
    /// Shutdown writes queued blocks for the first three quarters of it, then drops what is
    /// left and counts it (`dropped_blocks`), writes the final metadata, and if the sink is
    /// still busy when it ends, returns anyway, leaving the flush thread behind.
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// Installs a panic hook that records the panic as an error log and flushes (bounded by
    /// the shutdown timeout) before the previous hook runs; see [`crate::install_panic_hook`].
    pub fn flush_on_panic(mut self, on: bool) -> Self {
        self.flush_on_panic = on;
        self
    }
}

/// One stream's identity and counters, shared by its queue and the flush thread.
pub(crate) struct StreamInfo {
    pub(crate) kind: StreamKind,
    pub(crate) stream_id: [u8; 16],
    /// Renamed by `set_thread_name`; read when the stream's metadata is written.
    thread_name: Mutex<String>,
    pub(crate) thread_index: u64,
    /// Blocks dropped by the game thread because the sink was behind.
    dropped_blocks: AtomicU32,
}

impl StreamInfo {
    pub(crate) fn new(kind: StreamKind, thread_name: &str, thread_index: u64) -> Self {
        Self {
            kind,
            stream_id: *uuid::Uuid::new_v4().as_bytes(),
            thread_name: Mutex::new(thread_name.to_owned()),
            thread_index,
            dropped_blocks: AtomicU32::new(0),
        }
    }

    pub(crate) fn thread_name(&self) -> String {
        self.thread_name
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub(crate) fn set_thread_name(&self, name: &str) {
        *self
            .thread_name
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = name.to_owned();
    }

    pub(crate) fn count_dropped(&self) {
        self.dropped_blocks.fetch_add(1, Ordering::Relaxed);
    }
}

/// Raw bytes of one stream on their way to the flush thread.
pub(crate) struct RawBlock {
    pub(crate) stream: Arc<StreamInfo>,
    pub(crate) bytes: Vec<u8>,
    /// Events start at this offset (bytes before it were sent earlier).
    pub(crate) start: usize,
    pub(crate) seq: u64,
    /// Bytes counted against the in-flight budget for this block.
    pub(crate) reserved_bytes: usize,
}

enum Msg {
    Block(RawBlock),
    /// `capture_now` at these ticks.
    Capture(u64),
    /// `flush()`: steal, write what is queued, then answer whether every published byte was
    /// taken (the in-flight budget may refuse some).
    Flush(mpsc::Sender<bool>),
    Shutdown,
}

/// Counters of a session, readable while it runs ([`stats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Blocks written to the sink.
    pub blocks_written: u64,
    /// Bytes written to the sink (blocks and metadata).
    pub bytes_written: u64,
    /// Events in the blocks written.
    pub events_written: u64,
    /// Blocks lost: dropped by a game thread because the sink was behind, refused by the sink,
    /// or still queued when the shutdown deadline passed (or the flush thread was given up on).
    pub blocks_dropped: u64,
    /// Sink errors (each also drops its block, or a metadata object).
    pub sink_errors: u64,
    /// CPU blocks the flight recorder left out (never written, not lost).
    pub blocks_sampled_out: u64,
    /// Encoded CPU bytes the flight recorder holds in memory now.
    pub flight_recorder_bytes: u64,
}

pub(crate) struct Session {
    pub(crate) generation: u64,
    /// The recorded process (a forked child has another id and no flush thread).
    pid: u32,
    tx: mpsc::Sender<Msg>,
    inflight_bytes: AtomicUsize,
    max_inflight_bytes: usize,
    blocks_dropped: AtomicU64,
    shared_stats: Arc<SharedStats>,
    shutdown_timeout: Duration,
    /// Blocks sent to the flush thread and not yet written, dropped or held.
    pending_blocks: AtomicU64,
    /// Set when shutdown starts: blocks not written by then are dropped and counted.
    write_deadline: OnceLock<Instant>,
    /// Set when shutdown gave up waiting for the flush thread: it must not touch the threads'
    /// queues (a later session owns them) nor the sink any more.
    abandoned: AtomicBool,
    /// Held by the flush thread while it takes bytes from the threads' queues, and by the
    /// guard to abandon it, so that no steal runs after `abandoned` is set.
    steal_lock: Mutex<()>,
    /// Blocks the guard gave up on (queued, or in the sink's hands) when it abandoned.
    abandoned_blocks: AtomicU64,
    /// Taken by whoever ends the session.
    flush_thread: Mutex<Option<FlushThread>>,
}

#[derive(Default)]
pub(crate) struct SharedStats {
    blocks_written: AtomicU64,
    bytes_written: AtomicU64,
    events_written: AtomicU64,
    sink_errors: AtomicU64,
    sink_dropped: AtomicU64,
    sampled_out: AtomicU64,
    held_bytes: AtomicU64,
}

impl Session {
    /// Counts `bytes` against the budget; `false` (nothing counted) if that would exceed it.
    pub(crate) fn reserve_inflight(&self, bytes: usize) -> bool {
        let mut current = self.inflight_bytes.load(Ordering::Relaxed);
        loop {
            if current + bytes > self.max_inflight_bytes {
                return false;
            }
            match self.inflight_bytes.compare_exchange_weak(
                current,
                current + bytes,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(actual) => current = actual,
            }
        }
    }

    pub(crate) fn send(&self, block: RawBlock) {
        let reserved = block.reserved_bytes;
        self.pending_blocks.fetch_add(1, Ordering::Relaxed);
        if self.tx.send(Msg::Block(block)).is_err() {
            // The flush thread is gone (shutdown raced with this thread): the block is lost.
            self.pending_blocks.fetch_sub(1, Ordering::Relaxed);
            self.inflight_bytes.fetch_sub(reserved, Ordering::Relaxed);
            self.count_dropped();
        }
    }

    /// Whether this process is the one that started the session (not a forked child).
    pub(crate) fn is_own_process(&self) -> bool {
        self.pid == std::process::id()
    }

    /// Shutdown's time for writing blocks is over.
    fn past_write_deadline(&self) -> bool {
        self.write_deadline
            .get()
            .is_some_and(|deadline| Instant::now() >= *deadline)
    }

    /// Hands everything published so far to the flush thread and waits (at most `timeout`)
    /// until it is written: `true` if all of it was taken and written (or refused by the sink
    /// and counted) in time.
    pub(crate) fn flush(&self, timeout: Duration) -> bool {
        if !self.is_own_process() || IS_FLUSH_THREAD.try_with(Cell::get).unwrap_or(false) {
            return false;
        }
        let (reply_tx, reply_rx) = mpsc::channel();
        if self.tx.send(Msg::Flush(reply_tx)).is_err() {
            return false;
        }
        reply_rx.recv_timeout(timeout).unwrap_or(false)
    }

    pub(crate) fn count_dropped(&self) {
        self.blocks_dropped.fetch_add(1, Ordering::Relaxed);
    }

    fn stats(&self) -> Stats {
        let s = &self.shared_stats;
        Stats {
            blocks_written: s.blocks_written.load(Ordering::Relaxed),
            bytes_written: s.bytes_written.load(Ordering::Relaxed),
            events_written: s.events_written.load(Ordering::Relaxed),
            blocks_dropped: self.blocks_dropped.load(Ordering::Relaxed)
                + s.sink_dropped.load(Ordering::Relaxed)
                + self.abandoned_blocks.load(Ordering::Relaxed),
            sink_errors: s.sink_errors.load(Ordering::Relaxed),
            blocks_sampled_out: s.sampled_out.load(Ordering::Relaxed),
            flight_recorder_bytes: s.held_bytes.load(Ordering::Relaxed),
        }
    }
}

static SESSION: RwLock<Option<Arc<Session>>> = RwLock::new(None);
/// An `init` is under way (a flag, not a lock: `init` does sink I/O, and a second `init` or a
/// forked child must not wait for it).
static INITIALIZING: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// This thread is a flush thread (a panic hook on it must not wait for itself).
    static IS_FLUSH_THREAD: Cell<bool> = const { Cell::new(false) };
}
static MAX_LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);
static GENERATION: AtomicU64 = AtomicU64::new(1);

/// The running session, if any.
pub(crate) fn current() -> Option<Arc<Session>> {
    SESSION
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// Whether entries at `level` are recorded.
#[inline(always)]
pub fn level_enabled(level: Level) -> bool {
    level as u8 <= MAX_LEVEL.load(Ordering::Relaxed)
}

/// Changes the most verbose level recorded, at run time.
pub fn set_max_level(level: Level) {
    MAX_LEVEL.store(level as u8, Ordering::Relaxed);
}

/// Counters of the running session (all zero if none runs).
pub fn stats() -> Stats {
    current().map(|s| s.stats()).unwrap_or_default()
}

/// Hands a `capture_now` to the flush thread.
pub(crate) fn request_capture(ticks: u64) {
    if let Some(session) = current() {
        // The flush thread is gone only while shutting down: nothing left to capture.
        session.tx.send(Msg::Capture(ticks)).ok();
    }
}

/// Ships what every thread has published so far to the sink and waits for it, at most the
/// session's shutdown timeout. `true` if everything was written (or refused by the sink and
/// counted) in time; `false` if no session runs, the sink is too slow, or the in-flight budget
/// refused bytes. With the flight recorder, CPU blocks go to its ring (written on a trigger).
pub fn flush() -> bool {
    current().is_some_and(|session| session.flush(session.shutdown_timeout))
}

/// As [`flush`], waiting at most `timeout`.
pub fn flush_within(timeout: Duration) -> bool {
    current().is_some_and(|session| session.flush(timeout))
}

/// The running session's shutdown timeout (for the exit and panic hooks).
pub(crate) fn shutdown_timeout() -> Option<Duration> {
    current().map(|session| session.shutdown_timeout)
}

/// A forked child: forgets the parent's session without touching it (its flush thread does not
/// exist here, and its channel's locks may have been held by threads that do not exist either).
/// Called by the fork child handler with `SESSION` and `PROCESS_ID` locked by `hold`.
pub(crate) fn forget_in_child(hold: &mut ForkHold) {
    if let Some(session) = hold.session.take() {
        std::mem::forget(session);
    }
    *hold.process_id = None;
    INITIALIZING.store(false, Ordering::Relaxed);
}

/// The session's locks, held across `fork` (see `crate::fork`).
pub(crate) struct ForkHold {
    session: std::sync::RwLockWriteGuard<'static, Option<Arc<Session>>>,
    process_id: std::sync::RwLockWriteGuard<'static, Option<String>>,
}

/// Takes the session's locks before a fork, so no other thread holds them in the child.
pub(crate) fn hold_for_fork() -> ForkHold {
    ForkHold {
        session: SESSION.write().unwrap_or_else(PoisonError::into_inner),
        process_id: PROCESS_ID.write().unwrap_or_else(PoisonError::into_inner),
    }
}

/// The id of the process being recorded, if a session runs.
pub fn process_id() -> Option<String> {
    PROCESS_ID
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

static PROCESS_ID: RwLock<Option<String>> = RwLock::new(None);

/// Ends the session when dropped: every thread's recorded events are flushed to the sink, then
/// the process's metadata is written with its end time. Keep it alive in `main`.
#[must_use = "telemetry stops when the guard is dropped"]
pub struct TelemetryGuard {
    session: Arc<Session>,
}

/// The flush thread of a session, and its end signal (disconnected when it returns).
struct FlushThread {
    handle: JoinHandle<()>,
    done: mpsc::Receiver<()>,
}

impl TelemetryGuard {
    /// Counters of this session.
    pub fn stats(&self) -> Stats {
        self.session.stats()
    }

    /// The id of the recorded process.
    pub fn process_id(&self) -> String {
        process_id().unwrap_or_default()
    }
}

impl TelemetryGuard {
    /// Flushes everything, stops the flush thread, and returns the session's final counters.
    pub fn shutdown(mut self) -> Stats {
        self.finish();
        self.session.stats()
    }

    fn finish(&mut self) {
        end(&self.session);
    }
}

/// Ends the running session, if any (the exit hook: `process::exit` skips the guard).
pub(crate) fn end_running() {
    if let Some(session) = current() {
        end(&session);
    }
}

/// Ends `session`: flushes, stops the flush thread (waiting at most the shutdown timeout), and
/// clears the running session. Whoever comes first (the guard, the exit hook) does it.
fn end(session: &Arc<Session>) {
    if !session.is_own_process() {
        // A forked child's copy of the guard: the flush thread is the parent's (joining or
        // detaching a thread that does not exist here is undefined), and the session was
        // already forgotten by the fork handler.
        return;
    }
    let Some(FlushThread { handle, done }) = session
        .flush_thread
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
    else {
        return;
    };
    let started = Instant::now();
    let timeout = session.shutdown_timeout;
    session.write_deadline.set(started + timeout * 3 / 4).ok();
    local::flush_current_thread();
    // The flush thread gone (it panicked) has nothing left to flush: carry on shutting down.
    session.tx.send(Msg::Shutdown).ok();
    let finished = !matches!(
        done.recv_timeout(timeout.saturating_sub(started.elapsed())),
        Err(mpsc::RecvTimeoutError::Timeout)
    );
    if finished {
        // Finished, or gone (panicked): either way, joining does not wait.
        handle.join().ok();
        // A flush thread that died left its blocks unwritten.
        let lost = session.pending_blocks.swap(0, Ordering::Relaxed);
        session.abandoned_blocks.fetch_add(lost, Ordering::Relaxed);
    } else {
        // The sink is stuck: leave the flush thread behind, counting what it still holds.
        let _steal = session
            .steal_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        session.abandoned.store(true, Ordering::Relaxed);
        let lost = session.pending_blocks.swap(0, Ordering::Relaxed);
        session.abandoned_blocks.fetch_add(lost, Ordering::Relaxed);
        drop(handle);
    }
    let mut slot = SESSION.write().unwrap_or_else(PoisonError::into_inner);
    if slot
        .as_ref()
        .is_some_and(|running| Arc::ptr_eq(running, session))
    {
        *slot = None;
        *PROCESS_ID.write().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        self.finish();
    }
}

pub(crate) fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|s| s.trim().to_owned())
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

fn cpu_brand() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_owned())
}

/// Starts recording. Returns a guard that flushes everything when dropped.
pub fn init(config: Config) -> Result<TelemetryGuard, InitError> {
    // No lock is held across the sink I/O below: recording threads read `SESSION` when they hand
    // a full buffer over, and must not wait for a slow lake.
    if INITIALIZING.swap(true, Ordering::Acquire) {
        return Err(InitError::AlreadyInitialized);
    }
    let result = if current().is_some() {
        Err(InitError::AlreadyInitialized)
    } else {
        start(config)
    };
    INITIALIZING.store(false, Ordering::Release);
    result
}

fn start(config: Config) -> Result<TelemetryGuard, InitError> {
    check_or_write_version(&*config.sink, &config.lake)?;

    let start = ClockPair::now();
    let frequency = time::calibrated_frequency(&start);
    let process_id = uuid::Uuid::new_v4().to_string();
    let exe = config.exe.unwrap_or_else(|| {
        std::env::current_exe()
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "unknown".to_owned())
    });
    let process = ProcessMeta {
        process_id: process_id.clone(),
        exe,
        username: std::env::var("USER")
            .or_else(|_| std::env::var("USERNAME"))
            .unwrap_or_default(),
        computer: host_name(),
        os: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        cpu_brand: cpu_brand(),
        tsc_frequency: frequency,
        key_tsc_frequency: Some(frequency),
        start_ticks: start.ticks,
        start_unix_ns: start.unix_ns,
        end_ticks: None,
        end_unix_ns: None,
        parent_process_id: config.parent_process_id,
        properties: config.properties,
        dropped_blocks: 0,
        sampled_out_blocks: 0,
    };
    let process_key = lake::process_key(&process_id, start.unix_ns);
    let process_json = serde_json::to_vec_pretty(&process).unwrap_or_default();
    config.sink.put(&process_key, &process_json)?;

    set_max_level(config.max_level);
    let (tx, rx) = mpsc::channel();
    let shared_stats = Arc::new(SharedStats::default());
    let session = Arc::new(Session {
        generation: GENERATION.fetch_add(1, Ordering::Relaxed),
        pid: std::process::id(),
        tx,
        inflight_bytes: AtomicUsize::new(0),
        max_inflight_bytes: config.max_inflight_bytes,
        blocks_dropped: AtomicU64::new(0),
        shared_stats: shared_stats.clone(),
        shutdown_timeout: config.shutdown_timeout,
        pending_blocks: AtomicU64::new(0),
        write_deadline: OnceLock::new(),
        abandoned: AtomicBool::new(false),
        steal_lock: Mutex::new(()),
        abandoned_blocks: AtomicU64::new(0),
        flush_thread: Mutex::new(None),
    });
    let ring = config
        .flight_recorder
        .as_ref()
        .map(|recorder| Ring::new(recorder, frequency, config.flush_interval));
    let flusher = Flusher {
        sink: config.sink,
        session: session.clone(),
        process,
        process_key,
        start,
        process_id_bytes: *uuid::Uuid::parse_str(&process_id)
            .unwrap_or_default()
            .as_bytes(),
        encoder: BlockEncoder::new(),
        streams: HashMap::new(),
        stats: shared_stats,
        interval: config.flush_interval,
        ring,
        flush_replies: Vec::new(),
        shutting_down: false,
    };
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let handle = std::thread::Builder::new()
        .name("frameline-flush".to_owned())
        .spawn(move || {
            IS_FLUSH_THREAD.with(|is| is.set(true));
            flusher.run(rx);
            drop(done_tx);
        })?;
    crate::fork::install();
    crate::hooks::install_exit_hook();
    if config.flush_on_panic {
        crate::hooks::install_panic_hook();
    }
    *session
        .flush_thread
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = Some(FlushThread {
        handle,
        done: done_rx,
    });
    {
        let mut slot = SESSION.write().unwrap_or_else(PoisonError::into_inner);
        let mut id = PROCESS_ID.write().unwrap_or_else(PoisonError::into_inner);
        *slot = Some(session.clone());
        *id = Some(process_id);
    }
    Ok(TelemetryGuard { session })
}

/// Starts recording into the lake named by `FRAMELINE_LAKE`.
pub fn init_from_env() -> Result<TelemetryGuard, InitError> {
    init(Config::from_env()?)
}

pub(crate) fn check_or_write_version(sink: &dyn Sink, lake_name: &str) -> Result<(), InitError> {
    match sink.get(lake::VERSION_KEY)? {
        Some(bytes) => {
            let version: lake::LakeVersion =
                serde_json::from_slice(&bytes).map_err(|e| InitError::BadLake {
                    lake: lake_name.to_owned(),
                    reason: e.to_string(),
                })?;
            if version.major > lake::LAKE_MAJOR_VERSION {
                return Err(InitError::NewerLake {
                    lake: lake_name.to_owned(),
                    found: version.major,
                    supported: lake::LAKE_MAJOR_VERSION,
                });
            }
            Ok(())
        }
        None => {
            let json = serde_json::to_vec_pretty(&lake::LakeVersion::current()).unwrap_or_default();
            sink.put(lake::VERSION_KEY, &json)?;
            Ok(())
        }
    }
}

struct StreamState {
    info: Arc<StreamInfo>,
    /// CPU streams: the spans open after the last block encoded.
    open: OpenSpans,
    /// Sequence number of the last block encoded.
    last_seq: Option<u64>,
    meta: StreamMeta,
    key: String,
    /// Blocks the sink refused.
    sink_dropped: u32,
}

/// An encoded block ready to be written (now, or when the flight recorder ships it).
struct Encoded {
    stream_id: [u8; 16],
    key: String,
    bytes: Vec<u8>,
    event_count: u32,
}

struct Flusher {
    sink: Box<dyn Sink>,
    session: Arc<Session>,
    process: ProcessMeta,
    process_key: String,
    start: ClockPair,
    process_id_bytes: [u8; 16],
    encoder: BlockEncoder,
    streams: HashMap<[u8; 16], StreamState>,
    stats: Arc<SharedStats>,
    interval: Duration,
    /// The flight recorder's ring of CPU blocks, if it is on.
    ring: Option<Ring<Encoded>>,
    /// `flush()` calls to answer once what is queued is written.
    flush_replies: Vec<(mpsc::Sender<bool>, bool)>,
    /// `Msg::Shutdown` was received.
    shutting_down: bool,
}

/// How a steal treats the in-flight budget.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum StealMode {
    /// The flush interval: bytes the budget refuses stay with their thread.
    Interval,
    /// `flush()`: the budget is respected too; the caller learns whether some bytes stayed.
    Flush,
    /// Shutdown: everything, outside the budget (nothing comes after it).
    Final,
}

impl Flusher {
    fn run(mut self, rx: mpsc::Receiver<Msg>) {
        let mut next_steal = Instant::now() + self.interval;
        loop {
            let timeout = next_steal.saturating_duration_since(Instant::now());
            match rx.recv_timeout(timeout) {
                Ok(msg) => self.handle(msg, &rx),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            self.answer_flushes();
            if self.shutting_down {
                break;
            }
            if self.session.abandoned.load(Ordering::Relaxed) {
                return;
            }
            if Instant::now() >= next_steal {
                self.steal_all(StealMode::Interval);
                next_steal = Instant::now() + self.interval;
            }
        }
        // Shutdown: what is queued (oldest first, so streams stay in order), then what threads
        // still alive have published since, then anything sent meanwhile. Past the write
        // deadline, blocks are dropped and counted instead of written.
        self.drain(&rx);
        self.steal_all(StealMode::Final);
        self.drain(&rx);
        self.answer_flushes();
        if let Some(ring) = &mut self.ring {
            let held = ring.drain();
            self.count_sampled_out(held);
        }
        if !self.session.abandoned.load(Ordering::Relaxed) {
            self.write_final_metadata();
        }
    }

    fn handle(&mut self, msg: Msg, rx: &mpsc::Receiver<Msg>) {
        match msg {
            Msg::Block(block) => {
                self.write_block(block);
                self.session.pending_blocks.fetch_sub(1, Ordering::Relaxed);
            }
            Msg::Capture(ticks) => self.capture(ticks),
            Msg::Flush(reply) => {
                let complete = self.steal_all(StealMode::Flush);
                self.flush_replies.push((reply, complete));
                // Everything queued before the steal, and the stolen blocks behind it.
                self.drain(rx);
            }
            // Seen here or inside a flush's drain: the loop ends after this message.
            Msg::Shutdown => self.shutting_down = true,
        }
    }

    fn answer_flushes(&mut self) {
        for (reply, complete) in self.flush_replies.drain(..) {
            reply.send(complete).ok();
        }
    }

    /// Takes what threads published; `false` if the budget left some bytes with their thread.
    fn steal_all(&mut self, mode: StealMode) -> bool {
        let _steal = self
            .session
            .steal_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if self.session.abandoned.load(Ordering::Relaxed) {
            return false;
        }
        let mut complete = true;
        for thread in local::registered_threads() {
            complete &= thread.steal(&self.session, mode);
        }
        complete
    }

    fn drain(&mut self, rx: &mpsc::Receiver<Msg>) {
        while let Ok(msg) = rx.try_recv() {
            self.handle(msg, rx);
        }
    }

    fn write_block(&mut self, block: RawBlock) {
        self.session
            .inflight_bytes
            .fetch_sub(block.reserved_bytes, Ordering::Relaxed);
        let stream = block.stream.clone();
        self.ensure_stream(&stream);
        let Some(state) = self.streams.get_mut(&stream.stream_id) else {
            return;
        };
        // A block of this stream was lost: which spans are open is unknown from here.
        if block.seq != state.last_seq.map_or(0, |last| last + 1) {
            state.open.clear();
        }
        state.last_seq = Some(block.seq);
        if self.session.past_write_deadline() {
            // Shutdown's time for blocks is over: not even encoded, counted.
            self.stats.sink_dropped.fetch_add(1, Ordering::Relaxed);
            state.sink_dropped += 1;
            return;
        }
        let meta = BlockMeta {
            process_id: self.process_id_bytes,
            stream_id: stream.stream_id,
            block_seq: block.seq,
            dropped_blocks: stream.dropped_blocks.load(Ordering::Relaxed) + state.sink_dropped,
        };
        let raw = block.bytes.get(block.start..).unwrap_or_default();
        let open_begin_ticks = state.open.outermost_begin_ticks();
        let encoded = match stream.kind {
            StreamKind::Cpu => self.encoder.encode_cpu(raw, &meta, &mut state.open),
            StreamKind::Log => self.encoder.encode_log(raw, &meta),
            StreamKind::Metrics => self.encoder.encode_metrics(raw, &meta),
        };
        let Some((bytes, info)) = encoded else {
            return;
        };
        let to_ns = |ticks| {
            time::ticks_to_unix_ns(
                ticks,
                self.process.start_ticks,
                self.process.start_unix_ns,
                self.process.tsc_frequency,
            )
        };
        let key = BlockKey::of_encoded(
            self.process.process_id.clone(),
            stream.kind,
            uuid::Uuid::from_bytes(stream.stream_id).to_string(),
            block.seq,
            &info,
            open_begin_ticks,
            to_ns,
        )
        .to_key();
        let encoded = Encoded {
            stream_id: stream.stream_id,
            key,
            bytes,
            event_count: info.event_count,
        };
        let Some(ring) = self.ring.as_mut() else {
            self.put_block(encoded);
            return;
        };
        // The flight recorder: CPU blocks wait in the ring; logs and metrics are written, and
        // may fire triggers that ship held blocks.
        let (ship, sampled_out) = match stream.kind {
            StreamKind::Cpu => {
                let outcome = ring.offer(HeldBlock {
                    begin_ticks: info.begin_ticks,
                    end_ticks: info.end_ticks,
                    size_bytes: encoded.bytes.len(),
                    payload: encoded,
                });
                (outcome.ship, outcome.sampled_out)
            }
            StreamKind::Log => {
                let mut ship = vec![encoded];
                ship.extend(ring.error_logs(&format::raw_error_log_ticks(raw)));
                (ship, Vec::new())
            }
            StreamKind::Metrics => {
                let mut ship = vec![encoded];
                ship.extend(ring.frame_markers(stream.stream_id, &format::raw_frame_markers(raw)));
                (ship, Vec::new())
            }
        };
        self.ship(ship);
        self.count_sampled_out(sampled_out);
    }

    /// `capture_now` at `ticks`: ships the held blocks around it.
    fn capture(&mut self, ticks: u64) {
        if let Some(ring) = &mut self.ring {
            let ship = ring.trigger_at(ticks);
            self.ship(ship);
        }
    }

    fn ship(&mut self, blocks: Vec<Encoded>) {
        for block in blocks {
            self.put_block(block);
        }
        self.publish_held_bytes();
    }

    fn publish_held_bytes(&self) {
        let held = self.ring.as_ref().map_or(0, |ring| ring.held_bytes());
        self.stats.held_bytes.store(held as u64, Ordering::Relaxed);
    }

    fn count_sampled_out(&mut self, blocks: Vec<Encoded>) {
        for block in blocks {
            self.stats.sampled_out.fetch_add(1, Ordering::Relaxed);
            if let Some(state) = self.streams.get_mut(&block.stream_id) {
                state.meta.sampled_out_blocks += 1;
            }
        }
        self.publish_held_bytes();
    }

    fn put_block(&mut self, block: Encoded) {
        if self.session.abandoned.load(Ordering::Relaxed) {
            // Shutdown gave up on this thread and counted its blocks.
            return;
        }
        let past_deadline = self.session.past_write_deadline();
        let result = if past_deadline {
            Err(SinkError::Store("shutdown deadline passed".to_owned()))
        } else {
            self.sink_put(&block.key, &block.bytes)
        };
        if self.session.abandoned.load(Ordering::Relaxed) {
            // The sink returned after shutdown gave up on it: the block was counted then.
            return;
        }
        match result {
            Ok(()) => {
                self.stats.blocks_written.fetch_add(1, Ordering::Relaxed);
                self.stats
                    .bytes_written
                    .fetch_add(block.bytes.len() as u64, Ordering::Relaxed);
                self.stats
                    .events_written
                    .fetch_add(block.event_count as u64, Ordering::Relaxed);
                if let Some(state) = self.streams.get_mut(&block.stream_id) {
                    state.meta.written_blocks += 1;
                }
            }
            Err(_) => {
                if !past_deadline {
                    self.stats.sink_errors.fetch_add(1, Ordering::Relaxed);
                }
                self.stats.sink_dropped.fetch_add(1, Ordering::Relaxed);
                if let Some(state) = self.streams.get_mut(&block.stream_id) {
                    state.sink_dropped += 1;
                }
            }
        }
    }

    fn ensure_stream(&mut self, stream: &Arc<StreamInfo>) {
        if self.streams.contains_key(&stream.stream_id) {
            return;
        }
        let stream_id = uuid::Uuid::from_bytes(stream.stream_id).to_string();
        let meta = StreamMeta {
            stream_id: stream_id.clone(),
            process_id: self.process.process_id.clone(),
            kind: stream.kind.as_str().to_owned(),
            thread_name: stream.thread_name(),
            thread_index: stream.thread_index,
            dropped_blocks: 0,
            written_blocks: 0,
            sampled_out_blocks: 0,
        };
        let key = lake::stream_key(&self.process.process_id, &stream_id);
        self.put_json(&key, &meta);
        self.streams.insert(
            stream.stream_id,
            StreamState {
                info: stream.clone(),
                open: OpenSpans::default(),
                last_seq: None,
                meta,
                key,
                sink_dropped: 0,
            },
        );
    }

    /// Writes through the sink; a sink that panics (the trait says it must not) is an error,
    /// not the end of the flush thread.
    fn sink_put(&self, key: &str, bytes: &[u8]) -> Result<(), SinkError> {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.sink.put(key, bytes)))
            .unwrap_or_else(|_| Err(SinkError::Store(format!("the sink panicked writing {key}"))))
    }

    fn put_json<T: serde::Serialize>(&self, key: &str, value: &T) {
        if self.session.abandoned.load(Ordering::Relaxed) {
            return;
        }
        let Ok(json) = serde_json::to_vec_pretty(value) else {
            return;
        };
        match self.sink_put(key, &json) {
            Ok(()) => {
                self.stats
                    .bytes_written
                    .fetch_add(json.len() as u64, Ordering::Relaxed);
            }
            Err(_) => {
                self.stats.sink_errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// At shutdown: streams with their final counts, the process with its end time and a
    /// frequency measured over its whole life.
    fn write_final_metadata(&mut self) {
        let mut total_dropped = 0u64;
        let mut total_sampled_out = 0u64;
        let mut updates = Vec::new();
        // Streams of live threads that lost blocks but never reached the sink get described too.
        for thread in local::registered_threads() {
            for info in thread.streams(&self.session) {
                if info.dropped_blocks.load(Ordering::Relaxed) > 0 {
                    self.ensure_stream(&info);
                }
            }
        }
        for state in self.streams.values_mut() {
            let game_dropped = state.info.dropped_blocks.load(Ordering::Relaxed) as u64;
            state.meta.dropped_blocks = game_dropped + state.sink_dropped as u64;
            state.meta.thread_name = state.info.thread_name();
            total_dropped += state.meta.dropped_blocks;
            total_sampled_out += state.meta.sampled_out_blocks;
            updates.push((state.key.clone(), state.meta.clone()));
        }
        for (key, meta) in updates {
            self.put_json(&key, &meta);
        }
        let end = ClockPair::now();
        // Over seconds, a measured frequency beats the 10 ms calibration done at start.
        let lifetime = end.instant.duration_since(self.start.instant);
        if time::frequency_is_measured()
            && lifetime > Duration::from_secs(1)
            && let Some(freq) = time::frequency_between(&self.start, &end)
        {
            self.process.tsc_frequency = freq;
        }
        self.process.end_ticks = Some(end.ticks);
        self.process.end_unix_ns = Some(end.unix_ns);
        self.process.dropped_blocks = total_dropped.max(self.session.stats().blocks_dropped);
        self.process.sampled_out_blocks = total_sampled_out;
        let key = self.process_key.clone();
        let process = self.process.clone();
        self.put_json(&key, &process);
    }
}

/// A session with no flush thread, for the queue tests: its blocks are read from the receiver.
#[cfg(test)]
pub(crate) fn test_session(max_inflight_bytes: usize) -> (Arc<Session>, TestBlocks) {
    let (tx, rx) = mpsc::channel();
    let session = Arc::new(Session {
        generation: GENERATION.fetch_add(1, Ordering::Relaxed),
        pid: std::process::id(),
        tx,
        inflight_bytes: AtomicUsize::new(0),
        max_inflight_bytes,
        blocks_dropped: AtomicU64::new(0),
        shared_stats: Arc::new(SharedStats::default()),
        shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
        pending_blocks: AtomicU64::new(0),
        write_deadline: OnceLock::new(),
        abandoned: AtomicBool::new(false),
        steal_lock: Mutex::new(()),
        abandoned_blocks: AtomicU64::new(0),
        flush_thread: Mutex::new(None),
    });
    (session, TestBlocks(rx))
}

/// The blocks a test session was sent.
#[cfg(test)]
pub(crate) struct TestBlocks(mpsc::Receiver<Msg>);

#[cfg(test)]
impl TestBlocks {
    /// Every block sent so far: (stream kind, sequence number, event bytes).
    pub(crate) fn take(&self) -> Vec<(StreamKind, u64, Vec<u8>)> {
        let mut out = Vec::new();
        while let Ok(msg) = self.0.try_recv() {
            if let Msg::Block(block) = msg {
                let bytes = block.bytes.get(block.start..).unwrap_or_default().to_vec();
                out.push((block.stream.kind, block.seq, bytes));
            }
        }
        out
    }
}
