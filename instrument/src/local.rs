//! The hot path: per-thread queues of raw events (layout in `crate::raw`).
//!
//! Each thread owns three queues (cpu, log, metrics). Only the owning thread writes events, with
//! no lock and no atomic read-modify-write: it writes the bytes past `len`, then publishes the new
//! `len` with a release store (a plain store on x86_64). Hand-off is rare (a full buffer, a flush
//! interval, thread exit, shutdown) and takes the thread's `lock`:
//! - the owner, when its buffer is full, moves the buffer to the flush thread and starts a new
//!   one (or, when too many bytes wait for the sink, drops the block and counts it);
//! - the flush thread, on its interval and at shutdown, copies the published bytes not yet sent
//!   (`sent..len`) and advances `sent`; the owner never rewrites bytes below `len`, so the copy
//!   does not race with the owner's next writes.

use crate::format::StreamKind;
use crate::raw;
use crate::session::{self, RawBlock, Session, StealMode, StreamInfo};
use std::cell::{Cell, UnsafeCell};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

pub(crate) const CPU_QUEUE_BYTES: usize = 1024 * 1024;
pub(crate) const LOG_QUEUE_BYTES: usize = 256 * 1024;
pub(crate) const METRICS_QUEUE_BYTES: usize = 128 * 1024;
/// Largest log record kept; string arguments are cut to stay within it.
pub(crate) const MAX_LOG_RECORD_BYTES: usize = 64 * 1024;

pub(crate) struct Queue {
    kind: StreamKind,
    capacity: usize,
    /// Owned by the writing thread; replaced only under the thread's lock, by that thread.
    /// Its `len` stays 0: the written length is `len` below.
    buf: UnsafeCell<Vec<u8>>,
    /// Owner only: `buf`'s data pointer and capacity, kept here so that the hot path never forms
    /// a reference to `buf` (the flush thread may hold a shared one while it steals, and a
    /// `&mut` beside it would be undefined behaviour, as Miri showed). Set with `buf`.
    base: Cell<*mut u8>,
    base_capacity: Cell<usize>,
    /// Bytes written and published by the owner.
    len: AtomicUsize,
    /// Guarded by the thread's lock.
    sent: UnsafeCell<usize>,
    /// Guarded by the thread's lock: the stream this queue feeds in the current session (a new
    /// session gets a new stream id and restarts the numbering).
    stream: UnsafeCell<StreamSlot>,
}

struct StreamSlot {
    generation: u64,
    next_seq: u64,
    info: Arc<StreamInfo>,
}

impl Queue {
    fn new(kind: StreamKind, capacity: usize, thread_name: &str, thread_index: u64) -> Self {
        let mut buf = Vec::with_capacity(capacity);
        Self {
            kind,
            capacity,
            base: Cell::new(buf.as_mut_ptr()),
            base_capacity: Cell::new(buf.capacity()),
            // Moving the `Vec` does not move its heap buffer: `base` stays valid.
            buf: UnsafeCell::new(buf),
            len: AtomicUsize::new(0),
            sent: UnsafeCell::new(0),
            stream: UnsafeCell::new(StreamSlot {
                generation: 0,
                next_seq: 0,
                info: Arc::new(StreamInfo::new(kind, thread_name, thread_index)),
            }),
        }
    }

    /// Free bytes after the published length, and where they start. Owner only.
    #[inline(always)]
    fn spare(&self) -> (*mut u8, usize, usize) {
        let len = self.len.load(Ordering::Relaxed);
        (self.base.get(), len, self.base_capacity.get())
    }

    /// Appends two words. Owner only.
    #[inline(always)]
    fn push2(&self, thread: &ThreadState, a: u64, b: u64) {
        let (ptr, len, cap) = self.spare();
        if len + 16 <= cap {
            // SAFETY: `len + 16 <= cap`, so the 16 bytes are inside the buffer's allocation, past
            // the published length, where nothing else reads (see the module comment).
            unsafe {
                std::ptr::write_unaligned(ptr.add(len).cast::<[u64; 2]>(), [a.to_le(), b.to_le()]);
            }
            self.len.store(len + 16, Ordering::Release);
        } else {
            let mut record = [0u8; 16];
            record[..8].copy_from_slice(&a.to_le_bytes());
            record[8..].copy_from_slice(&b.to_le_bytes());
            self.push_slow(thread, &record);
        }
    }

    /// Appends three words. Owner only.
    #[inline(always)]
    fn push3(&self, thread: &ThreadState, a: u64, b: u64, c: u64) {
        let (ptr, len, cap) = self.spare();
        if len + 24 <= cap {
            // SAFETY: as in `push2`, with 24 bytes.
            unsafe {
                std::ptr::write_unaligned(
                    ptr.add(len).cast::<[u64; 3]>(),
                    [a.to_le(), b.to_le(), c.to_le()],
                );
            }
            self.len.store(len + 24, Ordering::Release);
        } else {
            let mut record = [0u8; 24];
            record[..8].copy_from_slice(&a.to_le_bytes());
            record[8..16].copy_from_slice(&b.to_le_bytes());
            record[16..].copy_from_slice(&c.to_le_bytes());
            self.push_slow(thread, &record);
        }
    }

    /// Appends an arbitrary record. Owner only.
    fn push_bytes(&self, thread: &ThreadState, record: &[u8]) {
        let (ptr, len, cap) = self.spare();
        if len + record.len() <= cap {
            // SAFETY: as in `push2`, with `record.len()` bytes.
            unsafe { std::ptr::copy_nonoverlapping(record.as_ptr(), ptr.add(len), record.len()) };
            self.len.store(len + record.len(), Ordering::Release);
        } else {
            self.push_slow(thread, record);
        }
    }

    #[cold]
    #[inline(never)]
    fn push_slow(&self, thread: &ThreadState, record: &[u8]) {
        thread.ship_queue(self);
        let (ptr, len, cap) = self.spare();
        if len + record.len() <= cap {
            // SAFETY: as in `push2`, with `record.len()` bytes.
            unsafe { std::ptr::copy_nonoverlapping(record.as_ptr(), ptr.add(len), record.len()) };
            self.len.store(len + record.len(), Ordering::Release);
        }
        // A record larger than a whole buffer cannot be recorded; writers keep records far
        // below that (MAX_INLINE_STR_BYTES, MAX_LOG_RECORD_BYTES).
    }
}

/// One thread's queues. Shared (through `Arc`) with the registry so the flush thread can take
/// what a thread has published without waiting for it.
pub(crate) struct ThreadState {
    lock: Mutex<()>,
    /// Owner only: a log record that did not fit in the log queue's buffer.
    spill: UnsafeCell<Vec<u8>>,
    /// Owner only: a log record is being written (a log from inside an argument is dropped).
    in_log: Cell<bool>,
    pub(crate) cpu: Queue,
    pub(crate) log: Queue,
    pub(crate) metrics: Queue,
}

// SAFETY: the `UnsafeCell`s of the queues follow the protocol of the module comment: `buf` is
// replaced only by the owner while holding `lock`, and read by others only while holding `lock`;
// the `Cell`s (`base`, `base_capacity`, `in_log`) are touched by the owner thread only;
// `sent` and `next_seq` are only touched while holding `lock`; bytes are read by others only
// below the `len` they acquired. Exercised by the multi-threaded tests in tests/round_trip.rs,
// and under Miri by `tests::a_steal_racing_the_owner_takes_every_record_once_in_order`.
unsafe impl Sync for ThreadState {}
// SAFETY: all fields are owned data; the raw buffers are plain bytes, and `base` points into the
// queue's own buffer.
unsafe impl Send for ThreadState {}

/// The registry of threads, locked across `fork` (see `crate::fork`).
pub(crate) type RegistryGuard = MutexGuard<'static, Vec<Arc<ThreadState>>>;

/// In a forked child, with the registry locked by the fork handler: the other threads do not
/// exist here, and what the calling thread had queued belongs to the parent's session. The
/// calling thread starts over with new, empty queues (and new streams) on its next event.
pub(crate) fn forget_in_child(registry: &mut RegistryGuard) {
    registry.clear();
    LOCAL
        .try_with(|local| {
            // The old state is leaked: its lock may have been held by the parent's flush thread.
            local.state.set(std::ptr::null());
        })
        .ok();
}

pub(crate) fn registry() -> RegistryGuard {
    static THREADS: OnceLock<Mutex<Vec<Arc<ThreadState>>>> = OnceLock::new();
    THREADS
        .get_or_init(|| Mutex::new(Vec::new()))
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// Every live thread that has recorded something.
pub(crate) fn registered_threads() -> Vec<Arc<ThreadState>> {
    registry().clone()
}

impl ThreadState {
    fn new() -> Self {
        Self::with_capacities(CPU_QUEUE_BYTES, LOG_QUEUE_BYTES, METRICS_QUEUE_BYTES)
    }

    /// Queues of these sizes (tests use small ones to reach the buffer's end quickly).
    fn with_capacities(cpu_bytes: usize, log_bytes: usize, metrics_bytes: usize) -> Self {
        static NEXT_THREAD_INDEX: AtomicU64 = AtomicU64::new(0);
        let thread_index = NEXT_THREAD_INDEX.fetch_add(1, Ordering::Relaxed);
        let current = std::thread::current();
        let name = current
            .name()
            .map(str::to_owned)
            .unwrap_or_else(|| format!("thread-{thread_index}"));
        Self {
            lock: Mutex::new(()),
            spill: UnsafeCell::new(Vec::new()),
            in_log: Cell::new(false),
            cpu: Queue::new(StreamKind::Cpu, cpu_bytes, &name, thread_index),
            log: Queue::new(StreamKind::Log, log_bytes, &name, thread_index),
            metrics: Queue::new(StreamKind::Metrics, metrics_bytes, &name, thread_index),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` on the queue's stream in `session`. Call with the thread's lock held.
    fn with_stream_slot<R>(
        queue: &Queue,
        session: &Session,
        f: impl FnOnce(&mut StreamSlot) -> R,
    ) -> R {
        // SAFETY: called with the thread's lock held (see `unsafe impl Sync`), and the
        // reference does not outlive this call.
        let slot = unsafe { &mut *queue.stream.get() };
        if slot.generation != session.generation {
            let old = &slot.info;
            *slot = StreamSlot {
                generation: session.generation,
                next_seq: 0,
                info: Arc::new(StreamInfo::new(
                    queue.kind,
                    &old.thread_name(),
                    old.thread_index,
                )),
            };
        }
        f(slot)
    }

    /// The identity and next sequence number of the queue's stream in `session`. Lock held.
    fn next_block(queue: &Queue, session: &Session) -> (Arc<StreamInfo>, u64) {
        Self::with_stream_slot(queue, session, |slot| {
            let seq = slot.next_seq;
            slot.next_seq += 1;
            (slot.info.clone(), seq)
        })
    }

    /// The streams of this thread in `session` (for the final metadata).
    pub(crate) fn streams(&self, session: &Session) -> [Arc<StreamInfo>; 3] {
        let _guard = self.lock();
        [&self.cpu, &self.log, &self.metrics]
            .map(|q| Self::with_stream_slot(q, session, |slot| slot.info.clone()))
    }

    /// Owner: hands the queue's unsent bytes to the flush thread and starts an empty buffer.
    fn ship_queue(&self, queue: &Queue) {
        let _guard = self.lock();
        let len = queue.len.load(Ordering::Relaxed);
        // SAFETY: lock held; the owner is the caller.
        let sent = unsafe { &mut *queue.sent.get() };
        // SAFETY: lock held; the owner is the caller, and no other reference to the buffer is
        // alive (the flush thread takes the same lock before reading it).
        let buf = unsafe { &mut *queue.buf.get() };
        if len > *sent
            && let Some(session) = session::current()
        {
            {
                let (stream, seq) = Self::next_block(queue, &session);
                if session.reserve_inflight(queue.capacity) {
                    let mut full = std::mem::replace(buf, Vec::with_capacity(queue.capacity));
                    queue.base.set(buf.as_mut_ptr());
                    queue.base_capacity.set(buf.capacity());
                    // SAFETY: the first `len` bytes were written by `push*` before being
                    // published; capacity ≥ len.
                    unsafe { full.set_len(len) };
                    session.send(RawBlock {
                        stream,
                        bytes: full,
                        start: *sent,
                        seq,
                        reserved_bytes: queue.capacity,
                    });
                } else {
                    stream.count_dropped();
                    session.count_dropped();
                }
            }
        }
        *sent = 0;
        queue.len.store(0, Ordering::Release);
    }

    /// Flush thread: copies what each queue published since the last hand-off. The final
    /// steal at shutdown ignores the in-flight budget: nothing comes after it. `false` if the
    /// budget left some bytes with their owner.
    pub(crate) fn steal(&self, session: &Session, mode: StealMode) -> bool {
        let final_steal = mode == StealMode::Final;
        let mut complete = true;
        let _guard = self.lock();
        for queue in [&self.cpu, &self.log, &self.metrics] {
            let len = queue.len.load(Ordering::Acquire);
            // SAFETY: lock held, so `buf` is not being replaced and `sent` is ours to update.
            let sent = unsafe { &mut *queue.sent.get() };
            if len <= *sent {
                continue;
            }
            if !final_steal && !session.reserve_inflight(len - *sent) {
                // The sink is behind: leave the bytes with their owner, who drops them only if
                // its buffer fills before the sink catches up.
                complete = false;
                continue;
            }
            // SAFETY: the lock we hold is the one the owner takes to replace the buffer, so the
            // buffer stays alive; we only read it (below, bytes the owner has published).
            let buf = unsafe { &*queue.buf.get() };
            // SAFETY: bytes `sent..len` were written and published (release) by the owner
            // before we acquired `len`; the owner never writes below `len` again until it
            // replaces the buffer, which needs the lock we hold.
            let published = unsafe { std::slice::from_raw_parts(buf.as_ptr(), len) };
            let bytes = published[*sent..].to_vec();
            let (stream, seq) = Self::next_block(queue, session);
            let reserved_bytes = if final_steal { 0 } else { bytes.len() };
            session.send(RawBlock {
                stream,
                bytes,
                start: 0,
                seq,
                reserved_bytes,
            });
            *sent = len;
        }
        complete
    }

    /// Owner: hands every queue's unsent bytes to the flush thread.
    pub(crate) fn flush_own(&self) {
        self.ship_queue(&self.cpu);
        self.ship_queue(&self.log);
        self.ship_queue(&self.metrics);
    }
}

/// The thread-local handle. Its destructor (thread exit) flushes the thread's queues.
struct Local {
    state: Cell<*const ThreadState>,
}

impl Drop for Local {
    fn drop(&mut self) {
        let ptr = self.state.replace(std::ptr::null());
        if ptr.is_null() {
            return;
        }
        // SAFETY: `ptr` came from `Arc::into_raw` in `init_local` and is released only here.
        let state = unsafe { Arc::from_raw(ptr) };
        state.flush_own();
        registry().retain(|other| !Arc::ptr_eq(other, &state));
    }
}

thread_local! {
    static LOCAL: Local = const { Local { state: Cell::new(std::ptr::null()) } };
    static CURRENT_ASYNC_SPAN: Cell<u64> = const { Cell::new(0) };
}

#[cold]
#[inline(never)]
fn init_local(local: &Local) -> *const ThreadState {
    let state = Arc::new(ThreadState::new());
    registry().push(state.clone());
    let ptr = Arc::into_raw(state);
    local.state.set(ptr);
    ptr
}

/// Runs `f` with this thread's queues; does nothing while the thread is being torn down.
#[inline(always)]
fn with_thread<R>(f: impl FnOnce(&ThreadState) -> R) -> Option<R> {
    LOCAL
        .try_with(|local| {
            let mut ptr = local.state.get();
            if ptr.is_null() {
                ptr = init_local(local);
            }
            // SAFETY: `ptr` is a live `Arc<ThreadState>` owned by `local` until its destructor.
            f(unsafe { &*ptr })
        })
        .ok()
}

/// Names the calling thread's streams (instead of its `std::thread` name or `thread-N`).
pub(crate) fn set_thread_name(name: &str) {
    with_thread(|state| {
        let _guard = state.lock();
        for queue in [&state.cpu, &state.log, &state.metrics] {
            // SAFETY: the thread's lock is held (see `unsafe impl Sync for ThreadState`) and
            // the reference does not outlive this statement.
            let slot = unsafe { &*queue.stream.get() };
            slot.info.set_thread_name(name);
        }
    });
}

/// Flushes the calling thread's queues (used at shutdown by the thread that owns the guard).
pub(crate) fn flush_current_thread() {
    with_thread(|state| state.flush_own());
}

// ---------------------------------------------------------------------------------------------
// Recording entry points (called by the macros and guards in `crate::span`, `crate::log`, ...).

#[inline(always)]
pub(crate) fn record_span_begin(addr: u64) {
    let ticks = crate::time::now();
    with_thread(|t| t.cpu.push2(t, ticks, addr | raw::CPU_BEGIN));
}

#[inline(always)]
pub(crate) fn record_span_end() {
    let ticks = crate::time::now();
    with_thread(|t| t.cpu.push2(t, ticks, raw::CPU_END));
}

/// Appends a span begin whose word (descriptor address and kind) is already built.
#[inline(always)]
pub(crate) fn record_span_word(word: u64) {
    let ticks = crate::time::now();
    with_thread(|t| t.cpu.push2(t, ticks, word));
}

pub(crate) fn record_named_span_begin(addr: u64, name: &str) {
    record_named_span_word(addr | raw::CPU_BEGIN_NAMED, name);
}

/// Appends a named span begin whose word (address and a named kind) is already built.
pub(crate) fn record_named_span_word(word: u64, name: &str) {
    let ticks = crate::time::now();
    let name = raw::truncate_str(name, raw::MAX_INLINE_STR_BYTES);
    let words = raw::padded_words(name.len());
    with_thread(|t| {
        let mut record = [0u8; 24 + raw::MAX_INLINE_STR_BYTES + 8];
        record[..8].copy_from_slice(&ticks.to_le_bytes());
        record[8..16].copy_from_slice(&word.to_le_bytes());
        record[16..24].copy_from_slice(&(name.len() as u64).to_le_bytes());
        record[24..24 + name.len()].copy_from_slice(name.as_bytes());
        t.cpu.push_bytes(t, &record[..24 + words * 8]);
    });
}

pub(crate) fn record_async_begin(addr: u64, id: u64, parent: u64) {
    let ticks = crate::time::now();
    with_thread(|t| {
        let mut record = [0u8; 32];
        record[..8].copy_from_slice(&ticks.to_le_bytes());
        record[8..16].copy_from_slice(&(addr | raw::CPU_ASYNC_BEGIN).to_le_bytes());
        record[16..24].copy_from_slice(&id.to_le_bytes());
        record[24..].copy_from_slice(&parent.to_le_bytes());
        t.cpu.push_bytes(t, &record);
    });
}

pub(crate) fn record_async_end(id: u64) {
    let ticks = crate::time::now();
    with_thread(|t| t.cpu.push3(t, ticks, raw::CPU_ASYNC_END, id));
}

#[inline(always)]
pub(crate) fn record_metric(addr: u64, value: u64) {
    let ticks = crate::time::now();
    with_thread(|t| t.metrics.push3(t, ticks, addr, value));
}

/// The async span being polled on this thread (0 if none).
pub(crate) fn current_async_span() -> u64 {
    CURRENT_ASYNC_SPAN.try_with(Cell::get).unwrap_or(0)
}

/// Makes `id` the current async span; returns the previous one.
pub(crate) fn swap_current_async_span(id: u64) -> u64 {
    CURRENT_ASYNC_SPAN.try_with(|c| c.replace(id)).unwrap_or(0)
}

/// Writes one log record in place in the log queue; arguments are appended by the closure.
#[inline(always)]
pub(crate) fn record_log(addr: u64, write_args: impl FnOnce(&mut LogWriter<'_>)) {
    let ticks = crate::time::now();
    with_thread(|t| t.write_log(ticks, addr, write_args));
}

/// Clears `in_log` when the record ends, also when an argument's `Display` panics (otherwise the
/// thread's later logs would all be taken for nested ones and dropped).
struct InLogGuard<'a>(&'a Cell<bool>);

impl Drop for InLogGuard<'_> {
    fn drop(&mut self) {
        self.0.set(false);
    }
}

impl ThreadState {
    /// Owner: writes one log record in place in the log queue. A panic in `write_args` leaves
    /// nothing published (the record's bytes sit past `len`, overwritten by the next record).
    #[inline(always)]
    fn write_log(&self, ticks: u64, addr: u64, write_args: impl FnOnce(&mut LogWriter<'_>)) {
        if self.in_log.replace(true) {
            // Logging while evaluating or formatting another log's arguments: the outer record
            // owns the queue's tail.
            return;
        }
        let _in_log = InLogGuard(&self.in_log);
        let (ptr, len, cap) = self.log.spare();
        let mut writer = LogWriter {
            ptr,
            start: len,
            pos: len + raw::LOG_HEADER_BYTES,
            cap,
            thread: self,
            // SAFETY: only the owner thread writes logs, and a `LogWriter` exists only inside
            // `write_log` on that thread, one at a time (`in_log` refuses nested records), so
            // this is the only reference to the spill buffer while it lives.
            spill: unsafe { &mut *self.spill.get() },
        };
        if writer.pos <= cap {
            // SAFETY: `start + LOG_HEADER_BYTES <= cap`: inside the allocation, past `len`.
            unsafe {
                std::ptr::write_unaligned(
                    ptr.add(len).cast::<[u64; 2]>(),
                    [ticks.to_le(), addr.to_le()],
                );
            }
        } else {
            // Fewer than LOG_HEADER_BYTES left: the header goes to the spill buffer, and
            // nothing was written to this buffer (`pos > cap` tells `spill` so).
            writer.spill();
        }
        write_args(&mut writer);
        if writer.cap != 0 {
            let args_len = (writer.pos - writer.start - raw::LOG_HEADER_BYTES) as u32;
            // SAFETY: the header slot `start..start + 20` is inside what this writer wrote.
            unsafe {
                std::ptr::write_unaligned(
                    writer.ptr.add(writer.start + 16).cast::<[u8; 4]>(),
                    args_len.to_le_bytes(),
                );
            }
            self.log.len.store(writer.pos, Ordering::Release);
        } else {
            writer.finish_spilled(ticks, addr);
        }
    }
}

/// Appends log arguments in place in the log queue. When the queue's buffer is full, the record
/// moves to the thread's spill buffer (`cap` becomes 0, so every later `put` takes the slow
/// path) and is copied into the next buffer at the end.
pub struct LogWriter<'a> {
    ptr: *mut u8,
    start: usize,
    pos: usize,
    cap: usize,
    thread: &'a ThreadState,
    spill: &'a mut Vec<u8>,
}

impl LogWriter<'_> {
    /// Moves the record written so far to the spill buffer; later `put`s append there.
    #[cold]
    fn spill(&mut self) {
        // `pos` only advances past bytes written into the buffer, and only while they fit: with
        // `pos <= cap`, `start..pos` is what this writer wrote. `pos > cap` happens only when the
        // header itself did not fit (`write_log`): nothing of the record is in the buffer, and
        // the bytes `start..cap` were never written (a new buffer's are uninitialized).
        let written = if self.pos <= self.cap {
            self.pos - self.start
        } else {
            0
        };
        let spill = &mut *self.spill;
        spill.clear();
        if written > 0 {
            // SAFETY: `start + written = pos <= cap`: bytes this writer wrote into the buffer's
            // allocation (past the published length, so nobody else writes them).
            spill.extend_from_slice(unsafe {
                std::slice::from_raw_parts(self.ptr.add(self.start), written)
            });
        }
        spill.resize(spill.len().max(raw::LOG_HEADER_BYTES), 0);
        self.cap = 0;
    }

    /// Appends raw bytes to the record.
    #[inline(always)]
    pub fn put(&mut self, bytes: &[u8]) {
        if self.pos + bytes.len() <= self.cap {
            // SAFETY: `pos + len <= cap`: inside the allocation, past the published length.
            unsafe {
                std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.ptr.add(self.pos), bytes.len())
            };
            self.pos += bytes.len();
        } else {
            self.put_slow(bytes);
        }
    }

    /// Appends a tag byte and a 64-bit value: two stores, no temporary (building a 9-byte array
    /// first costs a store-forwarding stall).
    #[inline(always)]
    pub fn put_tagged_u64(&mut self, tag: u8, value: u64) {
        if self.pos + 9 <= self.cap {
            // SAFETY: `pos + 9 <= cap`: inside the allocation, past the published length.
            unsafe {
                *self.ptr.add(self.pos) = tag;
                std::ptr::write_unaligned(self.ptr.add(self.pos + 1).cast::<u64>(), value.to_le());
            }
            self.pos += 9;
        } else {
            let v = value.to_le_bytes();
            self.put_slow(&[tag, v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7]]);
        }
    }

    /// Appends a tag byte and a 32-bit value.
    #[inline(always)]
    pub fn put_tagged_u32(&mut self, tag: u8, value: u32) {
        if self.pos + 5 <= self.cap {
            // SAFETY: `pos + 5 <= cap`: inside the allocation, past the published length.
            unsafe {
                *self.ptr.add(self.pos) = tag;
                std::ptr::write_unaligned(self.ptr.add(self.pos + 1).cast::<u32>(), value.to_le());
            }
            self.pos += 5;
        } else {
            let v = value.to_le_bytes();
            self.put_slow(&[tag, v[0], v[1], v[2], v[3]]);
        }
    }

    /// Appends a fixed-size value (one unaligned store when it fits).
    #[inline(always)]
    pub fn put_array<const N: usize>(&mut self, bytes: [u8; N]) {
        if self.pos + N <= self.cap {
            // SAFETY: `pos + N <= cap`: inside the allocation, past the published length.
            unsafe { std::ptr::write_unaligned(self.ptr.add(self.pos).cast::<[u8; N]>(), bytes) };
            self.pos += N;
        } else {
            self.put_slow(&bytes);
        }
    }

    #[cold]
    #[inline(never)]
    fn put_slow(&mut self, bytes: &[u8]) {
        if self.cap != 0 {
            self.spill();
        }
        let spill = &mut *self.spill;
        if spill.len() + bytes.len() <= MAX_LOG_RECORD_BYTES {
            spill.extend_from_slice(bytes);
        }
    }

    fn record_len(&self) -> usize {
        if self.cap == 0 {
            self.spill.len()
        } else {
            self.pos - self.start
        }
    }

    /// Bytes a string argument may still take.
    pub(crate) fn str_budget(&self) -> usize {
        MAX_LOG_RECORD_BYTES
            .saturating_sub(self.record_len())
            .saturating_sub(8)
            .min(raw::MAX_INLINE_STR_BYTES)
    }

    /// Overwrites 4 bytes at `offset_in_record` from the record's start.
    pub(crate) fn patch_u32(&mut self, offset_in_record: usize, value: u32) {
        let bytes = value.to_le_bytes();
        if self.cap == 0 {
            let spill = &mut *self.spill;
            if let Some(slot) = spill.get_mut(offset_in_record..offset_in_record + 4) {
                slot.copy_from_slice(&bytes);
            }
        } else if self.start + offset_in_record + 4 <= self.pos {
            // SAFETY: inside the bytes this writer wrote.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    bytes.as_ptr(),
                    self.ptr.add(self.start + offset_in_record),
                    4,
                )
            };
        }
    }

    /// Offset of the next byte from the record's start.
    pub(crate) fn offset(&self) -> usize {
        self.record_len()
    }

    #[cold]
    fn finish_spilled(self, ticks: u64, addr: u64) {
        let mut record = std::mem::take(self.spill);
        let args_len = (record.len() - raw::LOG_HEADER_BYTES) as u32;
        record[..8].copy_from_slice(&ticks.to_le_bytes());
        record[8..16].copy_from_slice(&addr.to_le_bytes());
        record[16..20].copy_from_slice(&args_len.to_le_bytes());
        self.thread.log.push_slow(self.thread, &record);
        record.clear();
        *self.spill = record;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The published bytes of a queue (test thread = owner, no flush thread).
    fn published(queue: &Queue) -> Vec<u8> {
        let len = queue.len.load(Ordering::Acquire);
        // SAFETY: the test thread owns `state` and nothing else touches it; bytes `0..len` were
        // written and published by `write_log`.
        unsafe { std::slice::from_raw_parts((*queue.buf.get()).as_ptr(), len) }.to_vec()
    }

    fn record(ticks: u64, addr: u64, args: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&ticks.to_le_bytes());
        out.extend_from_slice(&addr.to_le_bytes());
        out.extend_from_slice(&(args.len() as u32).to_le_bytes());
        out.extend_from_slice(args);
        out
    }

    #[test]
    fn spill_with_the_header_cut_copies_nothing_from_the_buffer() {
        let state = ThreadState::with_capacities(64, 64, 64);
        // Bytes never written by the writer, made visible (a real new buffer's are uninit).
        let mut buf = vec![0xAAu8; 64];
        let mut spill = Vec::new();
        for left in 1..raw::LOG_HEADER_BYTES {
            let start = 64 - left;
            let mut writer = LogWriter {
                ptr: buf.as_mut_ptr(),
                start,
                pos: start + raw::LOG_HEADER_BYTES,
                cap: 64,
                thread: &state,
                spill: &mut spill,
            };
            writer.spill();
            assert_eq!(writer.cap, 0);
            assert_eq!(
                *writer.spill,
                vec![0u8; raw::LOG_HEADER_BYTES],
                "{left} bytes left"
            );
        }
    }

    #[test]
    fn spill_after_arguments_keeps_what_was_written() {
        let state = ThreadState::with_capacities(64, 64, 64);
        let mut buf = vec![0xAAu8; 64];
        buf[30..50].fill(7);
        buf[50..55].fill(9);
        let mut spill = Vec::new();
        let mut writer = LogWriter {
            ptr: buf.as_mut_ptr(),
            start: 30,
            pos: 55,
            cap: 64,
            thread: &state,
            spill: &mut spill,
        };
        writer.put(&[1; 16]);
        let mut expected = vec![7u8; 20];
        expected.extend_from_slice(&[9; 5]);
        expected.extend_from_slice(&[1; 16]);
        assert_eq!(*writer.spill, expected);
    }

    /// Fills the log queue to `left` free bytes, then writes a record: with 1..20 bytes left
    /// its header does not fit and the whole record moves to the next buffer, intact.
    #[test]
    fn a_record_at_the_end_of_a_small_queue_arrives_whole() {
        const CAP: usize = 96;
        for left in 0..=40 {
            let state = ThreadState::with_capacities(64, CAP, 64);
            let filler = vec![3u8; CAP - left - raw::LOG_HEADER_BYTES];
            state.write_log(1, 0x1000, |w| w.put(&filler));
            assert_eq!(published(&state.log), record(1, 0x1000, &filler));
            let args: Vec<u8> = (0..30).collect();
            state.write_log(2, 0x2000, |w| {
                w.put(&args[..10]);
                w.put_tagged_u64(0xEE, 0x0102_0304_0506_0708);
                w.put(&args[10..]);
            });
            let mut expected_args = args[..10].to_vec();
            expected_args.push(0xEE);
            expected_args.extend_from_slice(&0x0102_0304_0506_0708u64.to_le_bytes());
            expected_args.extend_from_slice(&args[10..]);
            let second = record(2, 0x2000, &expected_args);
            // No session: a full buffer is handed to nobody, so the queue restarts empty.
            let queue = published(&state.log);
            if left >= second.len() {
                let mut both = record(1, 0x1000, &filler);
                both.extend_from_slice(&second);
                assert_eq!(queue, both, "{left} bytes left");
            } else {
                assert_eq!(queue, second, "{left} bytes left");
            }
        }
    }

    #[test]
    fn a_panicking_argument_does_not_silence_later_logs() {
        let state = ThreadState::with_capacities(64, 256, 64);
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            state.write_log(1, 0x1000, |w| {
                w.put(&[5; 4]);
                panic!("a Display impl panics");
            });
        }));
        assert!(panicked.is_err());
        assert!(!state.in_log.get());
        // Nothing of the torn record was published.
        assert!(published(&state.log).is_empty());
        state.write_log(2, 0x2000, |w| w.put(&[6; 4]));
        assert_eq!(published(&state.log), record(2, 0x2000, &[6; 4]));
    }

    #[test]
    fn a_panic_in_a_spilled_record_does_not_silence_later_logs() {
        let state = ThreadState::with_capacities(64, 64, 64);
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            state.write_log(1, 0x1000, |w| {
                w.put(&[5; 60]);
                panic!("a Display impl panics after spilling");
            });
        }));
        assert!(panicked.is_err());
        state.write_log(2, 0x2000, |w| w.put(&[6; 4]));
        assert_eq!(published(&state.log), record(2, 0x2000, &[6; 4]));
    }

    /// The owner writes metrics while another thread steals: every byte arrives once, in
    /// order, with no torn record (under Miri, also no data race on the queue).
    #[test]
    fn a_steal_racing_the_owner_takes_every_record_once_in_order() {
        const RECORDS: u64 = if cfg!(miri) { 60 } else { 20_000 };
        let (session, blocks) = session::test_session(usize::MAX);
        let state = Arc::new(ThreadState::with_capacities(64, 64, 24 * RECORDS as usize));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stealer = {
            let (state, session, stop) = (state.clone(), session.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Acquire) {
                    state.steal(&session, StealMode::Interval);
                    std::thread::yield_now();
                }
                state.steal(&session, StealMode::Final);
            })
        };
        for i in 0..RECORDS {
            state.metrics.push3(&state, i, 0x1000 + i, !i);
        }
        stop.store(true, Ordering::Release);
        stealer.join().unwrap();
        let mut received = blocks.take();
        received.sort_by_key(|(_, seq, _)| *seq);
        let bytes: Vec<u8> = received
            .iter()
            .inspect(|(kind, _, _)| assert_eq!(*kind, StreamKind::Metrics))
            .flat_map(|(_, _, bytes)| bytes.iter().copied())
            .collect();
        let expected: Vec<u8> = (0..RECORDS)
            .flat_map(|i| [i, 0x1000 + i, !i].into_iter().flat_map(u64::to_le_bytes))
            .collect();
        assert_eq!(bytes.len(), expected.len());
        assert!(bytes == expected, "records torn, lost or repeated");
        let seqs: Vec<u64> = received.iter().map(|(_, seq, _)| *seq).collect();
        assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>());
    }
}
