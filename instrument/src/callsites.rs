//! Descriptors for call sites that other crates describe at run time (`tracing`'s `Metadata`,
//! `log`'s `Record`): created once per call site, leaked on purpose (the CPU and log queues refer
//! to descriptors by `&'static` address, like the macros' `static`s), and bounded.
//!
//! Lookups go through a per-thread cache keyed by an address or a hash, so the recording path
//! takes no lock once a thread has seen a call site; the first sight on each thread takes the
//! global table's mutex.

use crate::desc::{LogDesc, SpanDesc};
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};

/// Set once [`MAX_CALLSITES`] descriptors exist: until then every lookup finds or makes one.
static FULL: AtomicBool = AtomicBool::new(false);

/// Whether a new call site may be refused a descriptor (the table is full).
#[inline(always)]
pub(crate) fn is_full() -> bool {
    FULL.load(Ordering::Relaxed)
}

/// Most descriptors leaked by one process. Call sites of `tracing` are `static`s, so their count
/// is bounded by the program; `log`'s targets may be computed at run time, so past this many the
/// bridges fall back to one shared descriptor per level.
pub(crate) const MAX_CALLSITES: usize = 16 * 1024;

/// Keys are already addresses or hashes: the format module's one-multiply hasher spreads them.
type KeyMap<V> = crate::format::AddrMap<V>;

/// A leaked descriptor, by kind.
#[derive(Clone, Copy)]
pub(crate) enum Leaked {
    Span(&'static SpanDesc),
    Log(&'static LogDesc),
}

struct Global {
    by_key: KeyMap<Vec<Leaked>>,
    leaked: usize,
}

fn global() -> MutexGuard<'static, Global> {
    static GLOBAL: OnceLock<Mutex<Global>> = OnceLock::new();
    GLOBAL
        .get_or_init(|| {
            Mutex::new(Global {
                by_key: KeyMap::default(),
                leaked: 0,
            })
        })
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
}

/// The call-site table, locked across `fork` (see `crate::fork`).
pub(crate) struct ForkHold {
    _global: MutexGuard<'static, Global>,
}

/// Takes the table's lock before a fork, so no other thread holds it in the child.
pub(crate) fn hold_for_fork() -> ForkHold {
    ForkHold { _global: global() }
}

thread_local! {
    static CACHE: RefCell<KeyMap<Vec<Leaked>>> = RefCell::new(KeyMap::default());
}

/// The descriptor for `key` that `matches`, creating it with `make` (and leaking it) on first
/// sight. `None` once [`MAX_CALLSITES`] descriptors exist and this one is new, or while the thread
/// is being torn down.
pub(crate) fn lookup(
    key: u64,
    matches: impl Fn(Leaked) -> bool,
    make: impl FnOnce() -> Leaked,
) -> Option<Leaked> {
    let cached = CACHE
        .try_with(|cache| {
            let cache = cache.try_borrow().ok()?;
            cache
                .get(&key)
                .and_then(|list| list.iter().copied().find(|d| matches(*d)))
        })
        .ok()
        .flatten();
    if cached.is_some() {
        return cached;
    }
    let found = {
        let mut global = global();
        let existing = global
            .by_key
            .get(&key)
            .and_then(|list| list.iter().copied().find(|d| matches(*d)));
        match existing {
            Some(found) => found,
            None => {
                if global.leaked >= MAX_CALLSITES {
                    return None;
                }
                let made = make();
                global.leaked += 1;
                if global.leaked >= MAX_CALLSITES {
                    FULL.store(true, Ordering::Relaxed);
                }
                global.by_key.entry(key).or_default().push(made);
                made
            }
        }
    };
    // During thread teardown the cache is gone: the call site is simply looked up again.
    CACHE
        .try_with(|cache| {
            if let Ok(mut cache) = cache.try_borrow_mut() {
                cache.entry(key).or_default().push(found);
            }
        })
        .ok();
    Some(found)
}

/// Leaks a span descriptor.
pub(crate) fn leak_span(desc: SpanDesc) -> Leaked {
    Leaked::Span(Box::leak(Box::new(desc)))
}

/// Leaks a log descriptor.
pub(crate) fn leak_log(desc: LogDesc) -> Leaked {
    Leaked::Log(Box::leak(Box::new(desc)))
}

/// Leaks a string (a template or target built at run time), for a descriptor.
pub(crate) fn leak_str(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

/// Number of descriptors leaked so far (for tests).
#[cfg(test)]
pub(crate) fn leaked_count() -> usize {
    global().leaked
}
