//! Span guards (sync scopes) and instrumented futures (async spans).

use crate::desc::SpanDesc;
use crate::local;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

/// Ends its span when dropped. Created by `span_scope!` and `#[span_fn]`.
#[must_use = "the span ends when this guard is dropped"]
pub struct SpanGuard {
    // Spans nest per thread: the guard must be dropped on the thread that created it.
    _not_send: std::marker::PhantomData<*const ()>,
}

impl SpanGuard {
    /// Begins a span of the static call site `desc`.
    #[inline(always)]
    pub fn new(desc: &'static SpanDesc) -> Self {
        local::record_span_begin(desc as *const SpanDesc as u64);
        Self {
            _not_send: std::marker::PhantomData,
        }
    }

    /// Begins a span whose name is only known at run time (`desc` gives its location).
    pub fn named(desc: &'static SpanDesc, name: &str) -> Self {
        local::record_named_span_begin(desc as *const SpanDesc as u64, name);
        Self {
            _not_send: std::marker::PhantomData,
        }
    }
}

impl Drop for SpanGuard {
    #[inline(always)]
    fn drop(&mut self) {
        local::record_span_end();
    }
}

fn next_async_span_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

pin_project_lite::pin_project! {
    /// A future whose whole life, from its first poll to its completion (or its drop), is one
    /// async span, wherever the executor polls it. Created by `#[span_fn]` on `async fn`, or by
    /// [`InstrumentFuture::instrument`].
    pub struct InstrumentedFuture<F> {
        desc: &'static SpanDesc,
        id: u64,
        done: bool,
        #[pin]
        inner: F,
    }

    impl<F> PinnedDrop for InstrumentedFuture<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if *this.id != 0 && !*this.done {
                // Dropped before completion (cancelled): the span ends now.
                local::record_async_end(*this.id);
            }
        }
    }
}

impl<F> InstrumentedFuture<F> {
    pub fn new(desc: &'static SpanDesc, inner: F) -> Self {
        Self {
            desc,
            id: 0,
            done: false,
            inner,
        }
    }
}

impl<F: Future> Future for InstrumentedFuture<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        if *this.id == 0 {
            *this.id = next_async_span_id();
            let parent = local::current_async_span();
            local::record_async_begin(*this.desc as *const SpanDesc as u64, *this.id, parent);
        }
        let previous = local::swap_current_async_span(*this.id);
        let result = this.inner.poll(cx);
        local::swap_current_async_span(previous);
        if result.is_ready() && !*this.done {
            *this.done = true;
            local::record_async_end(*this.id);
        }
        result
    }
}

/// Wraps any future in an async span.
pub trait InstrumentFuture: Future + Sized {
    fn instrument(self, desc: &'static SpanDesc) -> InstrumentedFuture<Self> {
        InstrumentedFuture::new(desc, self)
    }
}

impl<F: Future> InstrumentFuture for F {}
