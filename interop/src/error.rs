//! What can go wrong exporting or importing. Each variant names what it tried; the cause, when
//! there is one, is its `source` (so `{:#}` through `anyhow` prints the whole chain on one line).

use frameline_engine::EngineError;
use frameline_instrument::InitError;
use frameline_instrument::sink::SinkError;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum InteropError {
    /// A query of the lake failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("no process to export")]
    NoProcess,
    #[error(
        "no process {process_id} in this lake (list them with: SELECT process_id, exe, start_time FROM processes)"
    )]
    MissingProcess { process_id: String },
    #[error("reading {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("writing {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Refused: the input stops being JSON at byte `offset`.
    #[error("not JSON at byte {offset}: {detail}")]
    NotJson { offset: usize, detail: String },
    /// Refused: JSON, but not a trace (`offset`: where that was found).
    #[error("not a Chrome trace (byte {offset}): {reason}")]
    NotChromeTrace { offset: usize, reason: &'static str },
    #[error("opening {lake}")]
    OpenLake {
        lake: String,
        #[source]
        source: InitError,
    },
    #[error("writing process {pid} into {lake}")]
    WriteProcess {
        pid: String,
        lake: String,
        #[source]
        source: SinkError,
    },
    /// An import of a file failed (the cause says why).
    #[error("importing {}", path.display())]
    Import {
        path: PathBuf,
        #[source]
        source: Box<InteropError>,
    },
}
