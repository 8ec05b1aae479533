//! `fork` after `init`: the child records nothing of the parent's session, and can record and
//! exit without deadlock.
//!
//! Only the forking thread exists in the child; a lock another thread held at the fork stays
//! locked there forever. So the `pthread_atfork` handlers take, before the fork, every lock the
//! child could need (the session, the process id, the registry of threads, the call-site table),
//! and release them on both sides. In the child they first forget the parent's session (its
//! flush thread is not there) and every thread's queues (the forking thread starts over with new
//! ones), so the child records nothing until it calls `init` itself, which starts a new session
//! (a new process in the lake, with a new flush thread).

use crate::{local, session};
use std::cell::RefCell;
use std::sync::Once;

/// The locks held from `prepare` to `parent` / `child`, in the order they are taken
/// (the order the rest of the crate nests them in: session, process id, registry).
struct Held {
    session: session::ForkHold,
    registry: local::RegistryGuard,
    #[cfg(any(feature = "tracing", feature = "log"))]
    _callsites: crate::callsites::ForkHold,
}

thread_local! {
    static HELD: RefCell<Option<Held>> = const { RefCell::new(None) };
}

extern "C" fn prepare() {
    let held = Held {
        session: session::hold_for_fork(),
        registry: local::registry(),
        #[cfg(any(feature = "tracing", feature = "log"))]
        _callsites: crate::callsites::hold_for_fork(),
    };
    // A thread being torn down has no thread-locals left: the locks are released at once
    // (`held` is dropped) and the child is on its own.
    HELD.try_with(|slot| {
        if let Ok(mut slot) = slot.try_borrow_mut() {
            *slot = Some(held);
        }
    })
    .ok();
}

extern "C" fn parent() {
    HELD.try_with(|slot| slot.try_borrow_mut().ok().and_then(|mut s| s.take()))
        .ok();
}

extern "C" fn child() {
    HELD.try_with(|slot| {
        let held = slot.try_borrow_mut().ok().and_then(|mut s| s.take());
        if let Some(mut held) = held {
            session::forget_in_child(&mut held.session);
            local::forget_in_child(&mut held.registry);
        }
    })
    .ok();
}

/// Registers the fork handlers (once per process; `init` calls it).
pub(crate) fn install() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        #[cfg(unix)]
        // SAFETY: the three handlers are `extern "C"` functions with static lifetime that do
        // not unwind (a panic in them aborts); they only lock and unlock this crate's locks and
        // edit the data those locks guard.
        unsafe {
            libc::pthread_atfork(Some(prepare), Some(parent), Some(child));
        }
    });
}
