//! A lake's `views/*.sql` are data: only a plain `CREATE [OR REPLACE] VIEW <its name> AS <query>`
//! is loaded at open; anything else (external tables, DDL, DML, COPY, several statements, another
//! name, a link out of the lake) is refused with a notice and has no effect. View names typed by
//! a user go through the same check before anything is saved.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use frameline_engine::Engine;
use frameline_engine::views::{check_view_statement, confined_local_path};
use frameline_instrument::prelude::*;
use frameline_instrument::{Config, Level};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A small lake recorded once per test binary.
fn recorded() -> &'static Path {
    static LAKE: OnceLock<PathBuf> = OnceLock::new();
    LAKE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        let guard = frameline_instrument::init(
            Config::lake(dir.to_str().unwrap())
                .unwrap()
                .exe("views-test")
                .max_level(Level::Info),
        )
        .unwrap();
        std::thread::Builder::new()
            .name("main".into())
            .spawn(|| {
                for i in 0..200u32 {
                    span_scope!("work");
                    if i % 50 == 0 {
                        info!(target: "test", "step {i}");
                    }
                }
            })
            .unwrap()
            .join()
            .unwrap();
        drop(guard);
        dir
    })
}

/// A fresh copy of the recorded lake with these view files.
fn lake_with_views(views: &[(&str, &str)]) -> tempfile::TempDir {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap().flatten() {
            let path = entry.path();
            let target = to.join(entry.file_name());
            if path.is_dir() {
                copy(&path, &target);
            } else {
                std::fs::copy(&path, &target).unwrap();
            }
        }
    }
    let dir = tempfile::tempdir().unwrap();
    copy(recorded(), dir.path());
    std::fs::create_dir_all(dir.path().join("views")).unwrap();
    for (name, sql) in views {
        std::fs::write(dir.path().join("views").join(format!("{name}.sql")), sql).unwrap();
    }
    dir
}

async fn open(dir: &Path) -> Engine {
    let engine = Engine::open(dir.to_str().unwrap()).await.unwrap();
    engine.lake().cache().clear();
    engine
}

fn view_names(engine: &Engine) -> Vec<String> {
    engine.views().into_iter().map(|v| v.name).collect()
}

fn notice_about(engine: &Engine, name: &str) -> String {
    engine
        .notices()
        .into_iter()
        .find(|n| n.contains(&format!("view {name} ")))
        .unwrap_or_else(|| panic!("no notice about {name}: {:?}", engine.notices()))
}

#[tokio::test]
async fn only_plain_views_are_loaded_and_everything_else_is_refused_with_a_notice() {
    let secret_dir = tempfile::tempdir().unwrap();
    let secret = secret_dir.path().join("secret.csv");
    std::fs::write(&secret, "password\nhunter2\n").unwrap();
    let copied = secret_dir.path().join("copied.csv");
    let external = format!(
        "CREATE EXTERNAL TABLE external STORED AS CSV LOCATION '{}'",
        secret.display()
    );
    let copy = format!("COPY (SELECT 1 AS x) TO '{}'", copied.display());
    let dir = lake_with_views(&[
        (
            "good",
            "CREATE VIEW good AS SELECT count(*) AS n FROM processes",
        ),
        (
            "replaced",
            "create or replace view replaced as\n(select 2 as two)",
        ),
        ("external", &external),
        ("dropper", "DROP TABLE processes"),
        ("ctas", "CREATE TABLE ctas AS SELECT * FROM thread_spans"),
        ("copier", &copy),
        ("two", "CREATE VIEW two AS SELECT 1; DROP TABLE processes"),
        (
            "misnamed",
            "CREATE VIEW processes_copy AS SELECT * FROM processes",
        ),
        ("insert", "INSERT INTO processes SELECT * FROM processes"),
        ("garbage", "this is not sql"),
    ]);
    let engine = open(dir.path()).await;
    assert_eq!(view_names(&engine), ["good", "replaced"]);
    for refused in [
        "external", "dropper", "ctas", "copier", "two", "misnamed", "insert", "garbage",
    ] {
        let notice = notice_about(&engine, refused);
        assert!(notice.contains("was not loaded"), "{notice}");
    }
    assert!(notice_about(&engine, "two").contains("2 statements"));
    assert!(notice_about(&engine, "misnamed").contains("processes_copy"));

    // The plain views work; nothing the refused ones asked for happened.
    let n = engine.query("SELECT n FROM good").await.unwrap();
    assert_eq!(n[0].num_rows(), 1);
    engine.query("SELECT two FROM replaced").await.unwrap();
    assert!(engine.query("SELECT * FROM external").await.is_err());
    assert!(engine.query("SELECT * FROM ctas").await.is_err());
    assert!(engine.query("SELECT * FROM processes_copy").await.is_err());
    let processes = engine.query("SELECT * FROM processes").await.unwrap();
    assert_eq!(processes.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
    assert!(!copied.exists(), "a lake's COPY wrote a local file");
    assert_eq!(
        engine.lake().blocks_fetched(),
        0,
        "a lake's view decoded blocks at open"
    );

    // A user typing SQL keeps COPY and external tables.
    let typed = secret_dir.path().join("typed.csv");
    engine
        .execute(&format!("COPY (SELECT 1 AS x) TO '{}'", typed.display()))
        .await
        .unwrap();
    assert!(typed.exists());
}

/// Found by the `view_sql` fuzz target: `CREATE OR REPLACE VIEW processes …` passed every check
/// and replaced the engine's `processes` table with rows of the lake's choosing.
#[tokio::test]
async fn a_lake_view_cannot_replace_one_of_the_engine_s_tables() {
    let dir = lake_with_views(&[
        (
            "processes",
            "CREATE OR REPLACE VIEW processes AS SELECT 'fake' AS process_id",
        ),
        (
            "thread_spans",
            "create or replace view thread_spans as select 1 as span_id",
        ),
        ("good", "CREATE OR REPLACE VIEW good AS SELECT 1 AS one"),
    ]);
    let engine = open(dir.path()).await;
    assert_eq!(view_names(&engine), ["good"]);
    for refused in ["processes", "thread_spans"] {
        let notice = notice_about(&engine, refused);
        assert!(notice.contains("is a table, not a view"), "{notice}");
    }
    let processes = engine
        .query("SELECT process_id FROM processes")
        .await
        .unwrap();
    assert_eq!(processes.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
    assert!(!format!("{processes:?}").contains("fake"));
    engine
        .query("SELECT span_id, name FROM thread_spans LIMIT 1")
        .await
        .unwrap();
}

#[tokio::test]
async fn a_view_file_linking_out_of_the_lake_is_not_read() {
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.sql");
    std::fs::write(&secret, "CREATE VIEW leak AS SELECT 'top-secret' AS s").unwrap();
    let dir = lake_with_views(&[("good", "CREATE VIEW good AS SELECT 1 AS one")]);
    let views = dir.path().join("views");
    std::os::unix::fs::symlink(&secret, views.join("leak.sql")).unwrap();
    // A link that stays inside the lake is read.
    std::fs::write(
        dir.path().join("inside.txt"),
        "CREATE VIEW inside AS SELECT 2 AS two",
    )
    .unwrap();
    std::os::unix::fs::symlink(dir.path().join("inside.txt"), views.join("inside.sql")).unwrap();

    let engine = open(dir.path()).await;
    assert_eq!(view_names(&engine), ["good", "inside"]);
    let notice = notice_about(&engine, "leak");
    assert!(notice.contains("link leading out of the lake"), "{notice}");
    let listed = engine.query("SELECT sql FROM views").await.unwrap();
    let text = format!("{listed:?}");
    assert!(!text.contains("top-secret"), "{text}");
    assert!(engine.query("SELECT * FROM leak").await.is_err());

    // The whole views folder as a link out of the lake.
    let dir = lake_with_views(&[]);
    std::fs::remove_dir(dir.path().join("views")).unwrap();
    std::fs::create_dir(outside.path().join("views")).unwrap();
    std::fs::write(
        outside.path().join("views").join("leak.sql"),
        "CREATE VIEW leak AS SELECT 'top-secret' AS s",
    )
    .unwrap();
    std::os::unix::fs::symlink(outside.path().join("views"), dir.path().join("views")).unwrap();
    let engine = open(dir.path()).await;
    assert!(view_names(&engine).is_empty(), "{:?}", view_names(&engine));
    assert!(notice_about(&engine, "leak").contains("link leading out"));
}

#[test]
fn local_paths_stay_inside_the_lake() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), "x").unwrap();
    let lake = tempfile::tempdir().unwrap();
    std::fs::create_dir(lake.path().join("views")).unwrap();
    std::fs::write(lake.path().join("views/a.sql"), "x").unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("secret"),
        lake.path().join("views/b.sql"),
    )
    .unwrap();
    assert!(confined_local_path(lake.path(), "views/a.sql").is_some());
    assert!(confined_local_path(lake.path(), "views/b.sql").is_none());
    assert!(confined_local_path(lake.path(), "views/../../secret").is_none());
    assert!(confined_local_path(lake.path(), "views/missing.sql").is_none());
}

#[test]
fn view_statements_are_checked_by_kind_and_name() {
    assert!(check_view_statement("slow", "CREATE VIEW slow AS SELECT * FROM frames").is_ok());
    assert!(check_view_statement("slow", "CREATE OR REPLACE VIEW Slow AS SELECT 1").is_ok());
    assert!(check_view_statement("Slow", "CREATE VIEW \"Slow\" AS SELECT 1").is_ok());
    for (name, sql) in [
        ("slow", "CREATE VIEW \"Slow\" AS SELECT 1"),
        ("slow", "CREATE VIEW other.slow AS SELECT 1"),
        ("slow", "CREATE MATERIALIZED VIEW slow AS SELECT 1"),
        ("slow", "CREATE TEMPORARY VIEW slow AS SELECT 1"),
        ("slow", "CREATE TABLE slow AS SELECT 1"),
        (
            "slow",
            "CREATE EXTERNAL TABLE slow STORED AS CSV LOCATION '/etc/passwd'",
        ),
        ("slow", "COPY (SELECT 1) TO '/tmp/x.csv'"),
        (
            "slow",
            "CREATE VIEW slow AS SELECT 1; CREATE VIEW slow AS SELECT 2",
        ),
        ("slow", ""),
        ("../slow", "CREATE VIEW \"../slow\" AS SELECT 1"),
    ] {
        assert!(check_view_statement(name, sql).is_err(), "{sql}");
    }
}

#[tokio::test]
async fn a_typed_view_name_that_is_a_path_is_refused_before_anything_is_saved() {
    let dir = lake_with_views(&[]);
    let mut engine = open(dir.path()).await;
    for sql in [
        "CREATE VIEW \"../../../../escaped\" AS SELECT 1",
        "CREATE OR REPLACE VIEW \"a/b\" AS SELECT 1",
        "DROP VIEW \"../../../../escaped\"",
    ] {
        let error = engine.sql(sql).await.unwrap_err().to_string();
        assert!(error.contains("is not a view name"), "{sql}: {error}");
    }
    assert!(!dir.path().join("escaped.sql").exists());
    assert!(!dir.path().parent().unwrap().join("escaped.sql").exists());
    assert!(
        std::fs::read_dir(dir.path().join("views"))
            .unwrap()
            .next()
            .is_none()
    );
    assert!(view_names(&engine).is_empty());
    // A valid name is saved as before.
    engine
        .sql("CREATE VIEW fine AS SELECT 1 AS one")
        .await
        .unwrap();
    assert!(dir.path().join("views/fine.sql").exists());
    let reopened = open(dir.path()).await;
    assert_eq!(view_names(&reopened), ["fine"]);
}

#[tokio::test]
async fn an_s3_lake_s_views_are_checked_the_same_way() {
    let Ok(bucket) = std::env::var("FRAMELINE_TEST_S3_BUCKET") else {
        assert!(
            std::env::var("FRAMELINE_SKIP_S3").is_ok(),
            "FRAMELINE_TEST_S3_BUCKET is not set: run through scripts/test.sh (it starts moto), or set FRAMELINE_SKIP_S3=1"
        );
        return;
    };
    use object_store::{ObjectStoreExt, PutPayload, aws::AmazonS3Builder, path::Path as Key};
    let dir = lake_with_views(&[
        (
            "good",
            "CREATE VIEW good AS SELECT count(*) AS n FROM processes",
        ),
        ("dropper", "DROP TABLE processes"),
        (
            "external",
            "CREATE EXTERNAL TABLE external STORED AS CSV LOCATION '/etc/hostname'",
        ),
    ]);
    std::fs::write(
        dir.path().join("views/huge.sql"),
        format!(
            "CREATE VIEW huge AS SELECT 1 /* {} */",
            "x".repeat(300 * 1024)
        ),
    )
    .unwrap();
    let store = AmazonS3Builder::from_env()
        .with_bucket_name(&bucket)
        .build()
        .unwrap();
    let prefix = format!("lake-views-{}", std::process::id());
    let mut stack = vec![dir.path().to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(&folder).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let key = path
                .strip_prefix(dir.path())
                .unwrap()
                .to_string_lossy()
                .into_owned();
            store
                .put(
                    &Key::from(format!("{prefix}/{key}")),
                    PutPayload::from(std::fs::read(&path).unwrap()),
                )
                .await
                .unwrap();
        }
    }
    let engine = Engine::open(&format!("s3://{bucket}/{prefix}"))
        .await
        .unwrap();
    assert_eq!(view_names(&engine), ["good"]);
    for refused in ["dropper", "external", "huge"] {
        assert!(notice_about(&engine, refused).contains("was not loaded"));
    }
    assert!(notice_about(&engine, "huge").contains("more than a view's"));
    engine.query("SELECT * FROM processes").await.unwrap();
    engine.lake().cache().clear();
}

#[tokio::test]
async fn deep_views_open_or_are_refused_without_overflowing() {
    use frameline_engine::views::{MAX_VIEW_OPERATORS, MAX_VIEW_TOKENS};
    // `SELECT 1 + 1 + … + 1 AS n`: a tree as deep as it has operators.
    let chain = |operators: usize| vec!["1"; operators + 1].join(" + ");
    let deep = format!(
        "CREATE VIEW deep AS SELECT {} AS n",
        chain(MAX_VIEW_OPERATORS)
    );
    let deeper = format!(
        "CREATE VIEW deeper AS SELECT {} AS n",
        chain(MAX_VIEW_OPERATORS + 1)
    );
    let long = format!(
        "CREATE VIEW long AS SELECT {} 1 AS n",
        "1, ".repeat(MAX_VIEW_TOKENS / 2)
    );
    // The parser's time doubles with each part of this chain; stopped by its step budget.
    let backtracks = "CREATE VIEW backtracks AS SELECT a.b.c.d.e.f.g.h[[i.j.k.l.m.n.o.p[[q.r.s.t.u.v.w.x[[a.b.c.d[[[";
    let dir = lake_with_views(&[
        ("deep", &deep),
        ("deeper", &deeper),
        ("long", &long),
        ("backtracks", backtracks),
    ]);
    // The test's thread has a 2 MiB stack, as a runtime's worker does.
    let mut engine = open(dir.path()).await;
    assert_eq!(view_names(&engine), vec!["deep".to_owned()]);
    for (name, why) in [
        ("deeper", "operators"),
        ("long", "tokens"),
        ("backtracks", "steps"),
    ] {
        let notice = notice_about(&engine, name);
        assert!(notice.contains(why), "{notice}");
    }
    // A view typed by the user is held to the same bounds when it is saved, not at the next open.
    let typed = format!("SELECT {} AS n", chain(MAX_VIEW_OPERATORS + 1));
    let refused = engine.create_view("typed", &typed).await.unwrap_err();
    assert!(refused.to_string().contains("operators"), "{refused}");
    assert!(!view_names(&engine).contains(&"typed".to_owned()));
    let batches = engine.sql("SELECT n FROM deep").await.unwrap();
    let text = frameline_engine::datafusion::arrow::util::pretty::pretty_format_batches(&batches)
        .unwrap()
        .to_string();
    assert!(
        text.contains(&format!("| {} ", MAX_VIEW_OPERATORS + 1)),
        "{text}"
    );
}
