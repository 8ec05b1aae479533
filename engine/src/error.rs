//! What can go wrong opening or querying a lake. Each variant names what it tried.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("{} does not exist", path.display())]
    PathNotFound { path: PathBuf },
    #[error("{lake} is not a frameline lake: {reason}")]
    NotALake { lake: String, reason: String },
    #[error(
        "{lake} was written by a newer frameline (lake version {found}; this build reads up to {supported}): update frameline"
    )]
    NewerVersion {
        lake: String,
        found: u32,
        supported: u32,
    },
    #[error(
        "{lake}: access denied — check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or AWS_PROFILE ({detail})"
    )]
    Credentials { lake: String, detail: String },
    #[error(
        "{lake}: the endpoint cannot be reached — check AWS_ENDPOINT_URL and the network ({detail})"
    )]
    Unreachable { lake: String, detail: String },
    #[error("{lake}: the bucket does not exist ({detail})")]
    MissingBucket { lake: String, detail: String },
    #[error("{lake}: cannot configure the store: {detail}")]
    Config { lake: String, detail: String },
    #[error("reading {key}: {detail}")]
    Store { key: String, detail: String },
    #[error("{key} is corrupt: {detail}")]
    Corrupt { key: String, detail: String },
    #[error("column {column}: {detail}")]
    Column { column: String, detail: String },
    #[error("{0}")]
    Query(String),
}

impl From<datafusion::error::DataFusionError> for EngineError {
    fn from(error: datafusion::error::DataFusionError) -> Self {
        // DataFusion wraps our errors as External: surface the original message.
        let root = error.find_root();
        EngineError::Query(root.to_string())
    }
}

impl From<EngineError> for datafusion::error::DataFusionError {
    fn from(error: EngineError) -> Self {
        datafusion::error::DataFusionError::External(Box::new(error))
    }
}
