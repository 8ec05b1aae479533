//! View SQL at open: the first line of the input is the view file's name, the rest its text, as
//! `Engine::load_lake_view` gets them from a lake's `views/{name}.sql`. Whatever it holds:
//! no panic; if refused, the session is exactly as before (tables, catalogs, settings); if
//! loaded, the only change is a view of that name; and no file is ever written (the process runs
//! in an empty folder, so a `COPY … TO 'relative'` would show).
#![no_main]

use frameline_engine::Engine;
use frameline_engine::datafusion::datasource::TableType;
use frameline_instrument::lake::{LakeVersion, VERSION_KEY};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

struct Harness {
    runtime: tokio::runtime::Runtime,
    engine: Engine,
    /// The empty working directory.
    cwd: tempfile::TempDir,
    _lake: tempfile::TempDir,
    before: String,
}

/// Tables of every schema of every catalog, and the session's settings.
fn snapshot(engine: &Engine) -> String {
    let ctx = engine.context();
    let mut out = String::new();
    let mut catalogs = ctx.catalog_names();
    catalogs.sort();
    for catalog_name in catalogs {
        let Some(catalog) = ctx.catalog(&catalog_name) else {
            continue;
        };
        let mut schemas = catalog.schema_names();
        schemas.sort();
        for schema_name in schemas {
            let Some(schema) = catalog.schema(&schema_name) else {
                continue;
            };
            let mut tables = schema.table_names();
            tables.sort();
            out.push_str(&format!("{catalog_name}.{schema_name}: {tables:?}\n"));
        }
    }
    out.push_str(&format!("{:?}", ctx.state().config_options()));
    out
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let lake = tempfile::tempdir().expect("a temp lake");
        let marker = serde_json::to_vec(&LakeVersion::current()).expect("a marker");
        std::fs::write(lake.path().join(VERSION_KEY), marker).expect("the marker written");
        let cwd = tempfile::tempdir().expect("a temp working directory");
        std::env::set_current_dir(cwd.path()).expect("cd");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let path = lake.path().to_str().expect("a UTF-8 temp path").to_owned();
        let engine = runtime
            .block_on(Engine::open(&path))
            .expect("an empty lake opens");
        let before = snapshot(&engine);
        Harness {
            runtime,
            engine,
            cwd,
            _lake: lake,
            before,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (name, sql) = text.split_once('\n').unwrap_or((text, ""));
    let h = harness();
    let loaded = h.runtime.block_on(h.engine.load_lake_view(name, sql));
    let ctx = h.engine.context();
    if loaded.is_ok() {
        let table = h
            .runtime
            .block_on(ctx.table_provider(name))
            .expect("a loaded view is a table");
        assert_eq!(table.table_type(), TableType::View, "{name} is not a view");
        ctx.deregister_table(name).expect("the view dropped");
    }
    let after = snapshot(&h.engine);
    if after != h.before {
        let changed: Vec<_> = after.lines().filter(|l| !h.before.contains(l)).collect();
        panic!(
            "view {name:?} ({}) changed the session: {changed:?}\n{sql}",
            if loaded.is_ok() { "loaded" } else { "refused" }
        );
    }
    let written = std::fs::read_dir(h.cwd.path()).map_or(0, |d| d.count());
    assert_eq!(written, 0, "view {name:?} wrote a file:\n{sql}");
});
