//! Frameline's interop with other tools' trace formats, as headless lake operations: export a
//! capture (or a time range of it) to Perfetto's protobuf trace or Chrome's JSON
//! ([`export`]), and import a Chrome JSON trace into a lake ([`import_chrome`]).
//!
//! No GUI and no command line here: the `frameline` app's `export` / `import` subcommands and
//! the viewer's Export… button are thin layers over these functions.

#![deny(unsafe_code)]

mod chrome_json;
mod error;
pub mod export;
pub mod import_chrome;

pub use error::InteropError;
pub use export::{ExportSummary, Format, export_range};
