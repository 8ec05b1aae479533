//! A value computed in the background from a key — the panels' "selection → background job →
//! result". A panel asks for the value of a key every frame; the work starts when the key
//! differs from the one the current value was computed for and nothing runs yet, so typing or
//! dragging never queues a job per frame: the newest key wins when the running job ends.

use super::jobs::Job;
use std::future::Future;
use std::sync::Arc;

/// A value of type `T` derived from a key `K` in a background job.
pub struct Derived<K, T> {
    value: Option<Arc<T>>,
    computed_for: Option<K>,
    running: Option<(K, Job<T>)>,
    error: Option<String>,
}

impl<K, T> Default for Derived<K, T> {
    fn default() -> Self {
        Derived {
            value: None,
            computed_for: None,
            running: None,
            error: None,
        }
    }
}

impl<K: Clone + PartialEq + Send + 'static, T: Send + Sync + 'static> Derived<K, T> {
    /// Whether a job runs.
    pub fn busy(&self) -> bool {
        self.running.is_some()
    }

    /// The last value computed (maybe for an older key while a newer one is computed).
    pub fn value(&self) -> Option<&Arc<T>> {
        self.value.as_ref()
    }

    /// The key of the last value (or failure).
    pub fn computed_for(&self) -> Option<&K> {
        self.computed_for.as_ref()
    }

    /// The value, if it was computed for `key`.
    pub fn value_for(&self, key: &K) -> Option<&Arc<T>> {
        (self.computed_for.as_ref() == Some(key))
            .then_some(self.value.as_ref())
            .flatten()
    }

    /// Why the last job failed, if it did.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Takes a finished job's result; true if a new value (or failure) arrived.
    pub fn poll(&mut self) -> bool {
        let Some((_, job)) = &mut self.running else {
            return false;
        };
        let Some(result) = job.poll() else {
            return false;
        };
        let Some((key, _)) = self.running.take() else {
            return false;
        };
        match result {
            Ok(value) => {
                self.value = Some(Arc::new(value));
                self.error = None;
            }
            Err(e) => {
                self.value = None;
                self.error = Some(e);
            }
        }
        self.computed_for = Some(key);
        true
    }

    /// Whether `key` needs a job: it is not what the value was computed for, and none runs.
    fn wants(&self, key: &K) -> bool {
        self.running.is_none() && self.computed_for.as_ref() != Some(key)
    }

    /// Computes `compute(key)` on a blocking thread unless the value is for `key` already or a
    /// job runs (the newest key is asked for again next frame).
    pub fn request(
        &mut self,
        runtime: &tokio::runtime::Runtime,
        ctx: &egui::Context,
        label: &str,
        key: &K,
        compute: impl FnOnce(K) -> T + Send + 'static,
    ) {
        self.poll();
        if !self.wants(key) {
            return;
        }
        let input = key.clone();
        let job = Job::spawn(runtime, ctx, label, async move {
            Ok(tokio::task::spawn_blocking(move || compute(input)).await?)
        });
        self.running = Some((key.clone(), job));
    }

    /// Like [`Derived::request`] for async work (engine reads).
    pub fn request_async<F>(
        &mut self,
        runtime: &tokio::runtime::Runtime,
        ctx: &egui::Context,
        label: &str,
        key: &K,
        work: impl FnOnce(K) -> F,
    ) where
        F: Future<Output = anyhow::Result<T>> + Send + 'static,
    {
        self.poll();
        if !self.wants(key) {
            return;
        }
        let job = Job::spawn(runtime, ctx, label, work(key.clone()));
        self.running = Some((key.clone(), job));
    }

    /// Stops the running job; its key is asked for again on the next request.
    pub fn cancel(&mut self) {
        if let Some((_, job)) = self.running.take() {
            job.cancel();
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn wait<K: Clone + PartialEq + Send + 'static, T: Send + Sync + 'static>(
        derived: &mut Derived<K, T>,
    ) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while derived.busy() && std::time::Instant::now() < deadline {
            derived.poll();
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
    }

    #[test]
    fn computes_once_per_key_and_again_when_the_key_changes() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let ctx = egui::Context::default();
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut derived: Derived<u32, u32> = Derived::default();
        for key in [2, 2, 2, 3, 3] {
            let counter = calls.clone();
            derived.request(&runtime, &ctx, "square", &key, move |k| {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                k * k
            });
            wait(&mut derived);
            assert_eq!(derived.value_for(&key).map(|v| **v), Some(key * key));
        }
        assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[test]
    fn a_running_job_is_not_replaced_and_the_newest_key_follows() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let ctx = egui::Context::default();
        let (release, gate) = std::sync::mpsc::channel::<()>();
        let mut derived: Derived<u32, u32> = Derived::default();
        derived.request(&runtime, &ctx, "slow", &1, move |k| {
            gate.recv().ok();
            k
        });
        // Asked for 2 while 1 runs: nothing new starts.
        derived.request(&runtime, &ctx, "fast", &2, |k| k * 10);
        assert!(derived.busy());
        release.send(()).unwrap();
        wait(&mut derived);
        assert_eq!(derived.computed_for(), Some(&1));
        assert!(derived.value_for(&2).is_none());
        derived.request(&runtime, &ctx, "fast", &2, |k| k * 10);
        wait(&mut derived);
        assert_eq!(derived.value_for(&2).map(|v| **v), Some(20));
    }

    #[test]
    fn a_failure_is_kept_with_its_key_and_not_retried_every_frame() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let ctx = egui::Context::default();
        let mut derived: Derived<u32, u32> = Derived::default();
        derived.request_async(&runtime, &ctx, "fails", &7, |_| async {
            Err::<u32, _>(anyhow::anyhow!("no such table"))
        });
        wait(&mut derived);
        assert_eq!(derived.error(), Some("no such table"));
        assert_eq!(derived.computed_for(), Some(&7));
        derived.request_async(&runtime, &ctx, "fails", &7, |_| async { Ok(1) });
        assert!(!derived.busy(), "the same key is not retried");
    }
}
