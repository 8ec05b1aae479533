//! When the process ends without dropping the guard: `process::exit` ends the session (an
//! `atexit` handler), and, optionally, a panic flushes (a panic hook).

use crate::session;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};

/// Installs (once per process) a panic hook that, while a session runs, records the panic as an
/// error log (target `frameline::panic`) and flushes what every thread published, waiting at
/// most the session's shutdown timeout; then the previous hook runs. A panic on the flush
/// thread itself does not wait. [`crate::Config::flush_on_panic`] installs it at `init`.
pub fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            flush_for_panic(info);
            previous(info);
        }));
    });
}

fn flush_for_panic(info: &std::panic::PanicHookInfo<'_>) {
    // A panic inside the hook's own flush (a second panic) must not loop.
    static IN_HOOK: AtomicBool = AtomicBool::new(false);
    let Some(timeout) = session::shutdown_timeout() else {
        return;
    };
    if IN_HOOK.swap(true, Ordering::Acquire) {
        return;
    }
    crate::error!(target: "frameline::panic", "panic: {info}");
    session::flush_within(timeout);
    IN_HOOK.store(false, Ordering::Release);
}

/// `process::exit` (and `exit` from C) skips the guard's destructor: an `atexit` handler ends the
/// session as dropping the guard would (flush, final metadata), within the shutdown timeout.
/// After a normal end of `main` the guard is gone and this does nothing.
pub(crate) fn install_exit_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        #[cfg(unix)]
        // SAFETY: `end_at_exit` is an `extern "C"` function with static lifetime; it does not
        // unwind (a panic in it aborts).
        unsafe {
            libc::atexit(end_at_exit);
        }
    });
}

#[cfg(unix)]
extern "C" fn end_at_exit() {
    session::end_running();
}
