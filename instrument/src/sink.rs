//! Where the flush thread puts objects: a capture folder, an S3 prefix, or nowhere.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Why a sink could not store or read an object.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("writing {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}")]
    Store(String),
    #[error("sink misconfigured: {0}")]
    Config(String),
}

/// Stores objects of a lake by key. Called only from the flush thread (and once from `init`),
/// so an implementation may block; it must not panic.
pub trait Sink: Send + Sync + 'static {
    /// Writes `bytes` at `key`, atomically: readers see the whole object or none of it.
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), SinkError>;
    /// Reads the object at `key`, `None` if there is none.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, SinkError>;
    /// Where the objects go, for messages.
    fn describe(&self) -> String;
}

/// A capture folder on the local disk. Writes go to a temporary file in the same folder, then
/// are renamed over the key, so a killed process never leaves half an object.
pub struct LocalSink {
    root: PathBuf,
}

impl LocalSink {
    pub fn new(root: impl Into<PathBuf>) -> Result<Self, SinkError> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(|source| SinkError::Io {
            path: root.clone(),
            source,
        })?;
        Ok(Self { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &str) -> Result<PathBuf, SinkError> {
        if key
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..")
        {
            return Err(SinkError::Config(format!("invalid object key {key:?}")));
        }
        Ok(self.root.join(key))
    }
}

impl Sink for LocalSink {
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), SinkError> {
        static NEXT_TMP: AtomicU64 = AtomicU64::new(0);
        let path = self.path(key)?;
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| SinkError::Io { path, source }
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        let tmp = std::path::PathBuf::from(crate::lake::partial_write_name(
            &path.to_string_lossy(),
            std::process::id(),
            NEXT_TMP.fetch_add(1, Ordering::Relaxed),
        ));
        std::fs::write(&tmp, bytes).map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(|source| {
            // Best effort: the rename's error is the one to report.
            std::fs::remove_file(&tmp).ok();
            SinkError::Io {
                path: path.clone(),
                source,
            }
        })
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, SinkError> {
        let path = self.path(key)?;
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(SinkError::Io { path, source }),
        }
    }

    fn describe(&self) -> String {
        self.root.display().to_string()
    }
}

/// Discards everything (benchmarks measure the recording and encoding cost alone). Counts what
/// it was given.
#[derive(Default)]
pub struct NullSink {
    pub objects: AtomicU64,
    pub bytes: AtomicU64,
}

impl Sink for NullSink {
    fn put(&self, _key: &str, bytes: &[u8]) -> Result<(), SinkError> {
        self.objects.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn get(&self, _key: &str) -> Result<Option<Vec<u8>>, SinkError> {
        Ok(None)
    }

    fn describe(&self) -> String {
        "null sink".to_owned()
    }
}

/// Forwards to a shared sink (so a caller can keep a handle on it, e.g. to read counters).
impl<S: Sink> Sink for std::sync::Arc<S> {
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), SinkError> {
        (**self).put(key, bytes)
    }
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, SinkError> {
        (**self).get(key)
    }
    fn describe(&self) -> String {
        (**self).describe()
    }
}

#[cfg(feature = "s3")]
pub use s3::S3Sink;

#[cfg(feature = "s3")]
mod s3 {
    use super::{Sink, SinkError};
    use object_store::aws::AmazonS3Builder;
    use object_store::path::Path as ObjectPath;
    use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

    /// An S3 prefix (`s3://bucket/prefix`), configured by the AWS conventions
    /// (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_ENDPOINT_URL`,
    /// `AWS_ALLOW_HTTP`, ...). Each put is one S3 PUT, atomic by S3's semantics.
    pub struct S3Sink {
        url: String,
        prefix: String,
        store: Box<dyn ObjectStore>,
        runtime: tokio::runtime::Runtime,
    }

    impl S3Sink {
        /// Opens `s3://bucket/prefix` with credentials and endpoint from the environment.
        pub fn from_url(url: &str) -> Result<Self, SinkError> {
            let rest = url
                .strip_prefix("s3://")
                .ok_or_else(|| SinkError::Config(format!("not an s3:// URL: {url}")))?;
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(SinkError::Config(format!("no bucket in {url}")));
            }
            // A game must not stall for minutes at start-up on an unreachable endpoint: few,
            // short retries (blocks that still fail are dropped and counted).
            let retry = object_store::RetryConfig {
                max_retries: 3,
                retry_timeout: std::time::Duration::from_secs(10),
                ..Default::default()
            };
            // Timeouts through config keys: `with_client_options` would replace the client
            // settings `from_env` read (AWS_ALLOW_HTTP, proxies, CA bundle).
            let client_key = |key: object_store::ClientConfigKey| {
                object_store::aws::AmazonS3ConfigKey::Client(key)
            };
            let store = AmazonS3Builder::from_env()
                .with_retry(retry)
                .with_config(
                    client_key(object_store::ClientConfigKey::ConnectTimeout),
                    "5s",
                )
                .with_config(client_key(object_store::ClientConfigKey::Timeout), "30s")
                .with_bucket_name(bucket)
                .build()
                .map_err(|e| SinkError::Config(format!("{url}: {e}")))?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| SinkError::Config(format!("starting the S3 client: {e}")))?;
            Ok(Self {
                url: url.to_owned(),
                prefix: prefix.trim_matches('/').to_owned(),
                store: Box::new(store),
                runtime,
            })
        }

        fn path(&self, key: &str) -> ObjectPath {
            if self.prefix.is_empty() {
                ObjectPath::from(key)
            } else {
                ObjectPath::from(format!("{}/{key}", self.prefix))
            }
        }
    }

    impl S3Sink {
        /// Runs `future` on the sink's runtime. On a thread already inside a Tokio runtime (a
        /// game whose async `main` calls `init`, or drops the guard), `block_on` would panic
        /// ("Cannot start a runtime from within a runtime"): the call then runs on a short-lived
        /// helper thread, and this thread waits for it.
        fn run<T: Send>(&self, future: impl std::future::Future<Output = T> + Send) -> T {
            if tokio::runtime::Handle::try_current().is_err() {
                return self.runtime.block_on(future);
            }
            std::thread::scope(
                |scope| match scope.spawn(|| self.runtime.block_on(future)).join() {
                    Ok(value) => value,
                    Err(panic) => std::panic::resume_unwind(panic),
                },
            )
        }
    }

    impl Sink for S3Sink {
        fn put(&self, key: &str, bytes: &[u8]) -> Result<(), SinkError> {
            let path = self.path(key);
            let payload = PutPayload::from(bytes.to_vec());
            self.run(self.store.put(&path, payload))
                .map(|_| ())
                .map_err(|e| SinkError::Store(format!("{}/{key}: {e}", self.url)))
        }

        fn get(&self, key: &str) -> Result<Option<Vec<u8>>, SinkError> {
            let path = self.path(key);
            self.run(async {
                match self.store.get(&path).await {
                    Ok(result) => result
                        .bytes()
                        .await
                        .map(|b| Some(b.to_vec()))
                        .map_err(|e| SinkError::Store(format!("{}/{key}: {e}", self.url))),
                    Err(object_store::Error::NotFound { .. }) => Ok(None),
                    Err(e) => Err(SinkError::Store(format!("{}/{key}: {e}", self.url))),
                }
            })
        }

        fn describe(&self) -> String {
            self.url.clone()
        }
    }
}
