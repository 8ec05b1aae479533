//! Counting the requests a lake's store receives: every GET, PUT, DELETE and LIST page, so tests
//! and benchmarks can show what opening a lake or running a query costs on S3 (where each
//! request is tens of milliseconds) even against a local folder or moto, which have no latency.

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, Result,
};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Keys per LIST page on S3 (`max-keys` default): a listing of `n` keys costs `⌈n / 1000⌉`
/// requests (at least one).
pub const KEYS_PER_LIST_PAGE: u64 = 1000;

/// Requests by kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestCounts {
    pub get: u64,
    pub put: u64,
    pub delete: u64,
    /// LIST requests: one per page of up to [`KEYS_PER_LIST_PAGE`] keys.
    pub list: u64,
}

impl RequestCounts {
    pub fn total(&self) -> u64 {
        self.get + self.put + self.delete + self.list
    }

    /// What was sent since `earlier`.
    pub fn since(&self, earlier: &RequestCounts) -> RequestCounts {
        RequestCounts {
            get: self.get - earlier.get,
            put: self.put - earlier.put,
            delete: self.delete - earlier.delete,
            list: self.list - earlier.list,
        }
    }
}

impl std::fmt::Display for RequestCounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} requests ({} GET, {} LIST, {} PUT, {} DELETE)",
            self.total(),
            self.get,
            self.list,
            self.put,
            self.delete
        )
    }
}

#[derive(Debug, Default)]
pub struct RequestCounters {
    get: AtomicU64,
    put: AtomicU64,
    delete: AtomicU64,
    list: AtomicU64,
    /// Waited before each GET: what an S3 round trip costs, which a local folder and moto do
    /// not have. A fault-injecting layer for tests of a slow store and for benchmarks (real
    /// latency cannot be had here): `FRAMELINE_STORE_LATENCY_MS`, or
    /// [`RequestCounters::set_get_latency`]. Zero by default.
    get_latency_ms: AtomicU64,
}

impl RequestCounters {
    /// Waits this long before each GET from now on (see `get_latency_ms`).
    pub fn set_get_latency(&self, latency: std::time::Duration) {
        self.get_latency_ms.store(
            u64::try_from(latency.as_millis()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    pub fn snapshot(&self) -> RequestCounts {
        RequestCounts {
            get: self.get.load(Ordering::Relaxed),
            put: self.put.load(Ordering::Relaxed),
            delete: self.delete.load(Ordering::Relaxed),
            list: self.list.load(Ordering::Relaxed),
        }
    }
}

/// A store that counts what it forwards to `inner`.
#[derive(Debug)]
pub struct CountingStore {
    inner: Arc<dyn ObjectStore>,
    counters: Arc<RequestCounters>,
}

/// The latency `FRAMELINE_STORE_LATENCY_MS` asks for, in ms (0 when unset or not a number).
fn latency_ms_from_env() -> u64 {
    std::env::var("FRAMELINE_STORE_LATENCY_MS")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(0, |ms| ms.min(60_000))
}

impl CountingStore {
    pub fn new(inner: Arc<dyn ObjectStore>) -> (CountingStore, Arc<RequestCounters>) {
        let counters = Arc::new(RequestCounters::default());
        counters
            .get_latency_ms
            .store(latency_ms_from_env(), Ordering::Relaxed);
        (
            CountingStore {
                inner,
                counters: counters.clone(),
            },
            counters,
        )
    }

    async fn wait_latency(&self) {
        let ms = self.counters.get_latency_ms.load(Ordering::Relaxed);
        if ms > 0 {
            tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
        }
    }
}

impl std::fmt::Display for CountingStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Counting({})", self.inner)
    }
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Counts the pages of a listing as its keys go by: one at the start (an empty listing is a
/// request too), one more per full page.
fn count_pages(
    stream: BoxStream<'static, Result<ObjectMeta>>,
    counters: Arc<RequestCounters>,
) -> BoxStream<'static, Result<ObjectMeta>> {
    bump(&counters.list);
    let mut seen = 0u64;
    stream
        .inspect(move |_| {
            seen += 1;
            if seen.is_multiple_of(KEYS_PER_LIST_PAGE) {
                bump(&counters.list);
            }
        })
        .boxed()
}

#[async_trait]
impl ObjectStore for CountingStore {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        bump(&self.counters.put);
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        bump(&self.counters.put);
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        bump(&self.counters.get);
        self.wait_latency().await;
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[Range<u64>],
    ) -> Result<Vec<bytes::Bytes>> {
        self.counters
            .get
            .fetch_add(ranges.len() as u64, Ordering::Relaxed);
        self.wait_latency().await;
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        let counters = self.counters.clone();
        let locations = locations.inspect(move |_| bump(&counters.delete)).boxed();
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        count_pages(self.inner.list(prefix), self.counters.clone())
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        count_pages(
            self.inner.list_with_offset(prefix, offset),
            self.counters.clone(),
        )
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let result = self.inner.list_with_delimiter(prefix).await?;
        let keys = (result.objects.len() + result.common_prefixes.len()) as u64;
        self.counters
            .list
            .fetch_add(keys.div_ceil(KEYS_PER_LIST_PAGE).max(1), Ordering::Relaxed);
        Ok(result)
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        bump(&self.counters.put);
        self.inner.copy_opts(from, to, options).await
    }
}
