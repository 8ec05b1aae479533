//! Log argument capture. Integers, floats, bools, chars and strings are stored as values (no
//! formatting on the game thread); anything else that implements `Display` is formatted into the
//! record. The decoder renders the message (`format::format_message`).
//!
//! The log macros call `(&Arg(&value)).write_arg(w)`: method resolution picks [`CaptureFast`]
//! (by reference) when the type implements [`Capture`], and falls back to [`CaptureDisplay`]
//! (one more auto-reference away) otherwise.

use crate::desc::LogDesc;
use crate::local::{self, LogWriter};
use crate::raw;
use std::fmt;

/// A value the log macros store without formatting it.
pub trait Capture {
    fn capture(&self, w: &mut LogWriter<'_>);
}

macro_rules! capture_as {
    ($tag:expr, $as:ty, $($t:ty),*) => {$(
        impl Capture for $t {
            #[inline(always)]
            fn capture(&self, w: &mut LogWriter<'_>) {
                w.put_tagged_u64($tag, u64::from_le_bytes((*self as $as).to_le_bytes()));
            }
        }
    )*};
}

capture_as!(raw::ARG_U64, u64, u8, u16, u32, u64, usize);
capture_as!(raw::ARG_I64, i64, i8, i16, i32, i64, isize);
capture_as!(raw::ARG_F64, f64, f64);

impl Capture for f32 {
    #[inline(always)]
    fn capture(&self, w: &mut LogWriter<'_>) {
        w.put_tagged_u32(raw::ARG_F32, self.to_bits());
    }
}

impl Capture for bool {
    #[inline(always)]
    fn capture(&self, w: &mut LogWriter<'_>) {
        w.put_array([raw::ARG_BOOL, *self as u8]);
    }
}

impl Capture for char {
    #[inline(always)]
    fn capture(&self, w: &mut LogWriter<'_>) {
        w.put_tagged_u32(raw::ARG_CHAR, *self as u32);
    }
}

impl Capture for str {
    #[inline(always)]
    fn capture(&self, w: &mut LogWriter<'_>) {
        let s = raw::truncate_str(self, w.str_budget());
        w.put_tagged_u32(raw::ARG_STR, s.len() as u32);
        w.put(s.as_bytes());
    }
}

impl Capture for String {
    #[inline(always)]
    fn capture(&self, w: &mut LogWriter<'_>) {
        self.as_str().capture(w);
    }
}

impl<T: Capture + ?Sized> Capture for &T {
    #[inline(always)]
    fn capture(&self, w: &mut LogWriter<'_>) {
        (**self).capture(w);
    }
}

/// Wraps a log argument for the macros' method resolution.
pub struct Arg<'a, T: ?Sized>(pub &'a T);

/// Stores a [`Capture`] value as is.
pub trait CaptureFast {
    fn write_arg(&self, w: &mut LogWriter<'_>);
}

impl<T: Capture + ?Sized> CaptureFast for Arg<'_, T> {
    #[inline(always)]
    fn write_arg(&self, w: &mut LogWriter<'_>) {
        self.0.capture(w);
    }
}

/// Formats any other `Display` value into the record.
pub trait CaptureDisplay {
    fn write_arg(&self, w: &mut LogWriter<'_>);
}

impl<T: fmt::Display + ?Sized> CaptureDisplay for &Arg<'_, T> {
    fn write_arg(&self, w: &mut LogWriter<'_>) {
        write_display(w, self.0);
    }
}

/// Formats `value` into the record as a string argument (cut at the record's size limit).
pub fn write_display(w: &mut LogWriter<'_>, value: &(impl fmt::Display + ?Sized)) {
    struct Adapter<'w, 'a> {
        w: &'w mut LogWriter<'a>,
        budget: usize,
        written: usize,
    }
    impl fmt::Write for Adapter<'_, '_> {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            let s = raw::truncate_str(s, self.budget - self.written);
            self.w.put(s.as_bytes());
            self.written += s.len();
            Ok(())
        }
    }
    let len_at = w.offset() + 1;
    let mut head = [0u8; 5];
    head[0] = raw::ARG_STR;
    w.put(&head);
    let budget = w.str_budget();
    let mut adapter = Adapter {
        w,
        budget,
        written: 0,
    };
    // A Display impl that fails leaves what it wrote so far.
    fmt::write(&mut adapter, format_args!("{value}")).ok();
    let written = adapter.written as u32;
    w.patch_u32(len_at, written);
}

/// Records one log entry of the call site `desc`; `write_args` appends its arguments.
#[inline(always)]
pub fn record_log(desc: &'static LogDesc, write_args: impl FnOnce(&mut LogWriter<'_>)) {
    local::record_log(desc as *const LogDesc as u64, write_args);
}
