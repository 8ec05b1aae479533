//! Background work for the viewer: everything slow (opening a lake, decoding, queries) runs on a
//! tokio runtime; the UI polls for the result each frame and can cancel.

use std::future::Future;
use std::sync::mpsc;
use std::time::Instant;

/// A task running in the background, producing a `T` or an error message.
pub struct Job<T> {
    rx: mpsc::Receiver<Result<T, String>>,
    handle: tokio::task::AbortHandle,
    pub label: String,
    pub started: Instant,
}

impl<T: Send + 'static> Job<T> {
    /// Starts `work`; the UI is woken up when it ends.
    pub fn spawn(
        runtime: &tokio::runtime::Runtime,
        ctx: &egui::Context,
        label: impl Into<String>,
        work: impl Future<Output = anyhow::Result<T>> + Send + 'static,
    ) -> Job<T> {
        let (tx, rx) = mpsc::channel();
        let ctx = ctx.clone();
        let handle = runtime.spawn(async move {
            let result = work.await.map_err(|e| {
                let message = format!("{e:#}");
                message.split_whitespace().collect::<Vec<_>>().join(" ")
            });
            // The job's owner dropped it (cancelled, view closed): nobody waits for the result.
            tx.send(result).ok();
            ctx.request_repaint();
        });
        Job {
            rx,
            handle: handle.abort_handle(),
            label: label.into(),
            started: Instant::now(),
        }
    }

    /// The result, once (then `None` forever).
    pub fn poll(&mut self) -> Option<Result<T, String>> {
        match self.rx.try_recv() {
            Ok(result) => Some(result),
            Err(mpsc::TryRecvError::Empty) => None,
            Err(mpsc::TryRecvError::Disconnected) => {
                Some(Err(format!("{} was cancelled", self.label)))
            }
        }
    }

    pub fn cancel(&self) {
        self.handle.abort();
    }
}

/// Polls `slot`: when its job ends, clears it and returns the result.
pub fn take_finished<T: Send + 'static>(slot: &mut Option<Job<T>>) -> Option<Result<T, String>> {
    let result = slot.as_mut()?.poll()?;
    *slot = None;
    Some(result)
}
