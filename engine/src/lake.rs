//! Opening a lake (a capture folder or an S3 prefix) through `object_store`, and reading its
//! catalog: processes, streams and blocks. Keys and metadata come from
//! `frameline_instrument::lake`, the one owner of the layout.

use crate::aws::S3Options;
use crate::cache::{self, BlockCache};
use crate::catalog::CatalogState;
use crate::error::EngineError;
use crate::requests::{CountingStore, RequestCounters, RequestCounts};
use frameline_instrument::lake::{self as layout, BlockKey, LakeVersion};
use futures::TryStreamExt;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Where a lake is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LakeLocation {
    Local(std::path::PathBuf),
    S3 { bucket: String, prefix: String },
}

impl LakeLocation {
    pub fn parse(lake: &str) -> LakeLocation {
        match lake.strip_prefix("s3://") {
            Some(rest) => {
                let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
                LakeLocation::S3 {
                    bucket: bucket.to_owned(),
                    prefix: prefix.trim_matches('/').to_owned(),
                }
            }
            None => LakeLocation::Local(std::path::PathBuf::from(lake)),
        }
    }
}

impl std::fmt::Display for LakeLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LakeLocation::Local(path) => write!(f, "{}", path.display()),
            LakeLocation::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            LakeLocation::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

/// One block as the catalog knows it (from its key alone).
#[derive(Clone, Debug)]
pub struct BlockEntry {
    pub key: String,
    pub info: BlockKey,
    pub size_bytes: u64,
}

/// An open lake: its store, its catalog (`catalog/`, loaded as queries need it), and counters of
/// what was fetched.
pub struct Lake {
    location: LakeLocation,
    store: Arc<dyn ObjectStore>,
    requests: Arc<RequestCounters>,
    pub(crate) catalog_state: std::sync::Mutex<CatalogState>,
    /// One catalog load at a time (two panels asking for the same process fetch it once).
    pub(crate) catalog_loading: tokio::sync::Mutex<()>,
    blocks_fetched: AtomicU64,
    bytes_fetched: AtomicU64,
    /// Blocks skipped as damaged (corrupt, vanished) since the lake was opened.
    blocks_skipped: AtomicU64,
    /// Why the version marker was read as the current version (it was torn), for
    /// `lake_problems`.
    pub(crate) marker_problem: Option<String>,
    cache: Arc<BlockCache>,
}

impl std::fmt::Debug for Lake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lake")
            .field("location", &self.location)
            .field("processes", &self.processes().len())
            .finish()
    }
}

/// Walks an error's sources into one line.
pub(crate) fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Maps a store error met while reading `key` of `lake` to the engine's distinct cases.
pub(crate) fn classify(lake: &LakeLocation, key: &str, error: object_store::Error) -> EngineError {
    let detail = error_chain(&error);
    let lower = detail.to_ascii_lowercase();
    let mentions = |needles: &[&str]| needles.iter().any(|n| lower.contains(n));
    let lake = lake.to_string();
    if mentions(&["nosuchbucket", "bucket does not exist"]) {
        EngineError::MissingBucket { lake, detail }
    } else if matches!(
        error,
        object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }
    ) || mentions(&[
        "invalidaccesskeyid",
        "signaturedoesnotmatch",
        "403 forbidden",
        "accessdenied",
    ]) {
        EngineError::Credentials { lake, detail }
    } else if mentions(&[
        "error sending request",
        "connection refused",
        "dns error",
        "timed out",
        "connect",
    ]) {
        EngineError::Unreachable { lake, detail }
    } else {
        EngineError::Store {
            key: key.to_owned(),
            detail,
        }
    }
}

fn s3_store(
    bucket: &str,
    prefix: &str,
    options: &S3Options,
) -> Result<Arc<dyn ObjectStore>, EngineError> {
    use object_store::ClientConfigKey;
    use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
    let options = options.clone().with_profile_files();
    let retry = object_store::RetryConfig {
        max_retries: 2,
        retry_timeout: std::time::Duration::from_secs(10),
        ..Default::default()
    };
    let mut builder = AmazonS3Builder::from_env();
    if let Some(region) = &options.region {
        builder = builder.with_region(region);
    }
    if let Some(endpoint) = &options.endpoint {
        builder = builder.with_endpoint(endpoint);
        if endpoint.starts_with("http://") && options.allow_http.is_none() {
            builder = builder.with_allow_http(true);
        }
    }
    if let Some(allow) = options.allow_http {
        builder = builder.with_allow_http(allow);
    }
    if let Some(key) = &options.access_key_id {
        builder = builder.with_access_key_id(key);
    }
    if let Some(secret) = &options.secret_access_key {
        builder = builder.with_secret_access_key(secret);
    }
    if let Some(token) = &options.session_token {
        builder = builder.with_token(token);
    }
    let store = builder
        .with_bucket_name(bucket)
        .with_retry(retry)
        .with_config(
            AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout),
            "5s",
        )
        .with_config(AmazonS3ConfigKey::Client(ClientConfigKey::Timeout), "60s")
        .build()
        .map_err(|e| EngineError::Config {
            lake: format!("s3://{bucket}/{prefix}"),
            detail: error_chain(&e),
        })?;
    if prefix.is_empty() {
        Ok(Arc::new(store))
    } else {
        Ok(Arc::new(object_store::prefix::PrefixStore::new(
            store, prefix,
        )))
    }
}

/// The lake's version marker. One that is not JSON at all (torn: cut short, zeroed, empty —
/// the one object written once when a lake is created) is read as the current version and
/// reported (the second value), since everything else in the lake is checked as it is read;
/// JSON that is not a marker, another format or a newer major version is refused.
fn read_marker(
    location: &LakeLocation,
    bytes: &[u8],
) -> Result<(LakeVersion, Option<String>), EngineError> {
    match serde_json::from_slice::<LakeVersion>(bytes) {
        Ok(version) => Ok((version, None)),
        Err(e) if serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_err() => Ok((
            LakeVersion::current(),
            Some(format!(
                "the version marker is damaged ({} bytes, not JSON: {e}); read as version {}.{}",
                bytes.len(),
                layout::LAKE_MAJOR_VERSION,
                layout::LAKE_MINOR_VERSION
            )),
        )),
        Err(e) => Err(EngineError::NotALake {
            lake: location.to_string(),
            reason: format!("{} is not a lake version marker: {e}", layout::VERSION_KEY),
        }),
    }
}

impl Lake {
    /// Opens a capture folder or `s3://bucket/prefix` and reads its catalog.
    pub async fn open(lake: &str) -> Result<Lake, EngineError> {
        Self::open_with(lake, &S3Options::default()).await
    }

    /// Like [`Lake::open`], with S3 settings that override the environment.
    pub async fn open_with(lake: &str, s3: &S3Options) -> Result<Lake, EngineError> {
        Self::open_since(lake, s3, None).await
    }

    /// Like [`Lake::open_with`], reading only the processes started on or after
    /// `since_unix_ns` (`None`: all); [`Lake::load_dates`] reads more later.
    pub async fn open_since(
        lake: &str,
        s3: &S3Options,
        since_unix_ns: Option<i64>,
    ) -> Result<Lake, EngineError> {
        let location = LakeLocation::parse(lake);
        let store: Arc<dyn ObjectStore> = match &location {
            LakeLocation::Local(_) => return Self::open_local_since(location, since_unix_ns).await,
            LakeLocation::S3 { bucket, prefix } => s3_store(bucket, prefix, s3)?,
        };
        Self::open_store_since(location, store, since_unix_ns).await
    }

    async fn open_local_since(
        location: LakeLocation,
        since_unix_ns: Option<i64>,
    ) -> Result<Lake, EngineError> {
        let LakeLocation::Local(path) = &location else {
            return Err(EngineError::Query("not a local lake".to_owned()));
        };
        if !path.exists() {
            return Err(EngineError::PathNotFound { path: path.clone() });
        }
        if !path.is_dir() {
            return Err(EngineError::NotALake {
                lake: location.to_string(),
                reason: "it is a file, not a folder".to_owned(),
            });
        }
        let store = Arc::new(
            object_store::local::LocalFileSystem::new_with_prefix(path).map_err(|e| {
                EngineError::Store {
                    key: path.display().to_string(),
                    detail: error_chain(&e),
                }
            })?,
        );
        Self::open_store_since(location, store, since_unix_ns).await
    }

    /// Opens a lake over any store (tests, embedding).
    pub async fn open_store(
        location: LakeLocation,
        store: Arc<dyn ObjectStore>,
    ) -> Result<Lake, EngineError> {
        Self::open_store_since(location, store, None).await
    }

    /// Like [`Lake::open_store`], reading only the processes started on or after `since_unix_ns`.
    pub async fn open_store_since(
        location: LakeLocation,
        store: Arc<dyn ObjectStore>,
        since_unix_ns: Option<i64>,
    ) -> Result<Lake, EngineError> {
        let (store, requests) = CountingStore::new(store);
        let store: Arc<dyn ObjectStore> = Arc::new(store);
        let version_bytes = match store.get(&ObjectPath::from(layout::VERSION_KEY)).await {
            Ok(result) => result
                .bytes()
                .await
                .map_err(|e| classify(&location, layout::VERSION_KEY, e))?,
            Err(e @ object_store::Error::NotFound { .. })
                if error_chain(&e)
                    .to_ascii_lowercase()
                    .contains("nosuchbucket") =>
            {
                return Err(EngineError::MissingBucket {
                    lake: location.to_string(),
                    detail: error_chain(&e),
                });
            }
            Err(object_store::Error::NotFound { .. }) => {
                return Err(EngineError::NotALake {
                    lake: location.to_string(),
                    reason: format!("it has no {}", layout::VERSION_KEY),
                });
            }
            Err(e) => return Err(classify(&location, layout::VERSION_KEY, e)),
        };
        let (version, marker_problem) = read_marker(&location, &version_bytes)?;
        if version.format != "frameline-lake" {
            return Err(EngineError::NotALake {
                lake: location.to_string(),
                reason: format!("its marker names the format {:?}", version.format),
            });
        }
        if version.major > layout::LAKE_MAJOR_VERSION {
            return Err(EngineError::NewerVersion {
                lake: location.to_string(),
                found: version.major,
                supported: layout::LAKE_MAJOR_VERSION,
            });
        }
        let cache = Arc::new(BlockCache::new(
            cache::DEFAULT_MEMORY_BYTES,
            cache::disk_dir_for(&location.to_string()),
        ));
        let lake = Lake {
            cache,
            location,
            store,
            requests,
            catalog_state: std::sync::Mutex::new(CatalogState::default()),
            catalog_loading: tokio::sync::Mutex::new(()),
            blocks_fetched: AtomicU64::new(0),
            bytes_fetched: AtomicU64::new(0),
            blocks_skipped: AtomicU64::new(0),
            marker_problem,
        };
        lake.read_index().await?;
        let since_date = since_unix_ns.map(layout::date_of_unix_ns);
        lake.load_dates(since_date.as_deref(), None).await?;
        Ok(lake)
    }

    /// Re-reads the catalog (processes, streams and blocks written since the lake was opened),
    /// for the dates that were loaded.
    pub async fn refresh(&self) -> Result<(), EngineError> {
        let loaded = self.catalog().loaded_dates();
        self.read_index().await?;
        if let Some(first) = loaded.first() {
            self.load_dates(Some(first), None).await?;
        }
        Ok(())
    }

    /// Every object under `prefix`.
    async fn list_objects(
        &self,
        prefix: &str,
    ) -> Result<Vec<object_store::ObjectMeta>, EngineError> {
        self.store
            .list(Some(&ObjectPath::from(prefix)))
            .try_collect()
            .await
            .map_err(|e| classify(&self.location, prefix, e))
    }

    pub(crate) fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// Requests sent to the store since the lake was opened.
    /// Waits `latency` before each GET from now on: a slow store for tests and benchmarks (see
    /// [`RequestCounters`]; `FRAMELINE_STORE_LATENCY_MS` sets it at open).
    pub fn set_store_latency(&self, latency: std::time::Duration) {
        self.requests.set_get_latency(latency);
    }

    pub fn requests(&self) -> RequestCounts {
        self.requests.snapshot()
    }

    /// Fetches one block object (counted: tests prove pruning by these counts).
    pub async fn fetch_block(&self, key: &str) -> Result<bytes::Bytes, EngineError> {
        let bytes = self
            .store
            .get(&ObjectPath::from(key))
            .await
            .map_err(|e| classify(&self.location, key, e))?
            .bytes()
            .await
            .map_err(|e| classify(&self.location, key, e))?;
        self.blocks_fetched.fetch_add(1, Ordering::Relaxed);
        self.bytes_fetched
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(bytes)
    }

    /// Writes a small object (saved views). Errors are returned to the caller to decide.
    pub async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), EngineError> {
        self.store
            .put(&ObjectPath::from(key), PutPayload::from(bytes))
            .await
            .map(|_| ())
            .map_err(|e| classify(&self.location, key, e))
    }

    /// Reads a small object, `None` if it does not exist.
    pub async fn get(&self, key: &str) -> Result<Option<bytes::Bytes>, EngineError> {
        match self.store.get(&ObjectPath::from(key)).await {
            Ok(result) => Ok(Some(
                result
                    .bytes()
                    .await
                    .map_err(|e| classify(&self.location, key, e))?,
            )),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(classify(&self.location, key, e)),
        }
    }

    /// Deletes a small object (a dropped view).
    pub async fn delete(&self, key: &str) -> Result<(), EngineError> {
        match self.store.delete(&ObjectPath::from(key)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(classify(&self.location, key, e)),
        }
    }

    /// Keys under `prefix`.
    pub async fn list(&self, prefix: &str) -> Result<Vec<String>, EngineError> {
        Ok(self
            .list_objects(prefix)
            .await?
            .into_iter()
            .map(|m| m.location.to_string())
            .collect())
    }

    pub fn location(&self) -> &LakeLocation {
        &self.location
    }

    /// This lake with a memory-only cache of decoded blocks (nothing read from or written to
    /// the disk cache): for measuring cold queries, and for callers that must not write there.
    pub fn without_disk_cache(mut self) -> Lake {
        self.cache = Arc::new(BlockCache::new(cache::DEFAULT_MEMORY_BYTES, None));
        self
    }

    /// Decoded blocks kept for the next query and the next run.
    pub fn cache(&self) -> &Arc<BlockCache> {
        &self.cache
    }

    /// Block objects fetched since the lake was opened.
    pub fn blocks_fetched(&self) -> u64 {
        self.blocks_fetched.load(Ordering::Relaxed)
    }

    /// A damaged block a query skipped: counted and listed in `lake_problems`.
    pub(crate) fn block_skipped(&self, key: &str, detail: String) {
        self.blocks_skipped.fetch_add(1, Ordering::Relaxed);
        self.catalog_problem(key, detail);
    }

    /// Damaged blocks skipped by queries since the lake was opened.
    pub fn blocks_skipped(&self) -> u64 {
        self.blocks_skipped.load(Ordering::Relaxed)
    }

    /// Bytes of block objects fetched since the lake was opened.
    pub fn bytes_fetched(&self) -> u64 {
        self.bytes_fetched.load(Ordering::Relaxed)
    }
}
