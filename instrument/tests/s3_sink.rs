//! The S3 sink against a real S3 server (moto): macros → flush thread → `S3Sink` → S3, read back
//! with `object_store` directly and decoded with the block format's decoder.
//!
//! Needs `FRAMELINE_TEST_S3_ENDPOINT` and `FRAMELINE_TEST_S3_BUCKET` (and the `AWS_*` variables
//! the sink reads), as exported by `eval "$(../shared/s3/start-moto.sh)"` or `scripts/test.sh`.
//! Without them the S3 tests fail, unless `FRAMELINE_SKIP_S3=1`.
#![cfg(feature = "s3")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Ev, read_capture, serial};
use frameline_instrument::format::MetricValue;
use frameline_instrument::lake::{self, BlockKey, LakeVersion};
use frameline_instrument::prelude::*;
use frameline_instrument::sink::SinkError;
use frameline_instrument::{Config, InitError, Stats};
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct S3Env {
    endpoint: String,
    bucket: String,
}

/// The moto server to test against; `None` (test skipped) only with `FRAMELINE_SKIP_S3=1`.
fn s3_env() -> Option<S3Env> {
    let endpoint = std::env::var("FRAMELINE_TEST_S3_ENDPOINT").ok();
    let bucket = std::env::var("FRAMELINE_TEST_S3_BUCKET").ok();
    match (endpoint, bucket) {
        (Some(endpoint), Some(bucket)) => {
            // The sink under test is configured by the AWS conventions: same server, please.
            assert_eq!(
                std::env::var("AWS_ENDPOINT_URL").ok().as_deref(),
                Some(endpoint.as_str()),
                "AWS_ENDPOINT_URL must name the FRAMELINE_TEST_S3_ENDPOINT server \
                 (start-moto.sh exports both)"
            );
            Some(S3Env { endpoint, bucket })
        }
        _ if std::env::var("FRAMELINE_SKIP_S3").as_deref() == Ok("1") => {
            eprintln!("FRAMELINE_SKIP_S3=1: skipped (no S3 server to test against)");
            None
        }
        _ => panic!(
            "FRAMELINE_TEST_S3_ENDPOINT and FRAMELINE_TEST_S3_BUCKET are not set: start a moto S3 \
             server with `eval \"$(../shared/s3/start-moto.sh)\"` (or scripts/start-moto.sh), or \
             run scripts/test.sh; set FRAMELINE_SKIP_S3=1 to skip the S3 tests"
        ),
    }
}

/// Every object under `prefix/`, by key relative to it.
fn download(env: &S3Env, prefix: &str) -> Vec<(String, Vec<u8>)> {
    let store = AmazonS3Builder::from_env()
        .with_bucket_name(&env.bucket)
        .with_endpoint(&env.endpoint)
        .with_allow_http(true)
        .build()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let listed: Vec<_> = store
            .list(Some(&ObjectPath::from(prefix)))
            .try_collect()
            .await
            .unwrap();
        let mut objects = Vec::new();
        for meta in listed {
            let key = meta.location.as_ref();
            let relative = key
                .strip_prefix(prefix)
                .and_then(|k| k.strip_prefix('/'))
                .unwrap_or_else(|| panic!("{key} is not under {prefix}/"))
                .to_owned();
            let bytes = store
                .get(&meta.location)
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap();
            assert_eq!(bytes.len() as u64, meta.size, "{key}");
            objects.push((relative, bytes.to_vec()));
        }
        objects.sort();
        objects
    })
}

fn begin(name: &str) -> Ev {
    Ev::Begin(name.to_owned())
}

const LOOP_SPANS: usize = 70_000; // 140 000 events: more than two 1 MiB CPU buffers

#[test]
fn spans_logs_and_metrics_round_trip_through_s3() {
    let Some(env) = s3_env() else { return };
    let _serial = serial();
    let prefix = format!("test-{}", uuid::Uuid::new_v4());
    let lake_url = format!("s3://{}/{prefix}", env.bucket);
    let guard = frameline_instrument::init(Config::lake(&lake_url).unwrap()).unwrap();
    let process_id = guard.process_id();
    std::thread::Builder::new()
        .name("s3-game".into())
        .spawn(|| {
            {
                span_scope!("s3.frame");
                span_scope_named!(&format!("s3.entity.{}", 42));
            }
            info!("uploaded {} objects to {}", 3u32, "s3");
            warn!(target: "net", "slow link: {} ms", 250.5f64);
            imetric!("s3.objects", "count", 3u64);
            fmetric!("s3.latency", "ms", 12.5);
            frame!();
            for _ in 0..LOOP_SPANS {
                span_scope!("s3.loop");
            }
        })
        .unwrap()
        .join()
        .unwrap();
    let stats = guard.stats();
    drop(guard);
    assert_eq!(stats.sink_errors, 0, "{stats:?}");

    let objects = download(&env, &prefix);
    let keys: Vec<&str> = objects.iter().map(|(k, _)| k.as_str()).collect();
    // The layout of lake.rs, under the prefix.
    let version = objects
        .iter()
        .find(|(k, _)| k == lake::VERSION_KEY)
        .unwrap_or_else(|| panic!("no {} in {keys:?}", lake::VERSION_KEY));
    assert_eq!(
        serde_json::from_slice::<LakeVersion>(&version.1).unwrap(),
        LakeVersion::current()
    );
    let processes: Vec<&str> = keys
        .iter()
        .copied()
        .filter(|k| k.starts_with(lake::PROCESSES_PREFIX))
        .collect();
    assert_eq!(processes.len(), 1, "{keys:?}");
    assert!(
        processes[0].ends_with(&format!("/{process_id}.json")),
        "{keys:?}"
    );
    let streams = keys
        .iter()
        .filter(|k| k.starts_with(&format!("{}{process_id}/", lake::STREAMS_PREFIX)))
        .count();
    assert!(
        streams >= 3,
        "cpu, log and metrics stream metadata: {keys:?}"
    );
    for key in keys.iter().filter(|k| k.starts_with(lake::BLOCKS_PREFIX)) {
        let parsed = BlockKey::parse(key).unwrap_or_else(|| panic!("bad block key {key}"));
        assert_eq!(parsed.process_id, process_id);
    }

    // Decode through the block format, as for a local capture.
    let dir = tempfile::tempdir().unwrap();
    for (key, bytes) in &objects {
        let path = dir.path().join(key);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
    let capture = read_capture(dir.path());
    assert_eq!(capture.processes.len(), 1);
    assert_eq!(capture.processes[0].process_id, process_id);
    assert!(
        capture.processes[0].end_unix_ns.is_some(),
        "final metadata written"
    );
    assert_eq!(capture.processes[0].dropped_blocks, 0);

    let mut expected_cpu = vec![begin("s3.frame"), begin("s3.entity.42"), Ev::End, Ev::End];
    for _ in 0..LOOP_SPANS {
        expected_cpu.extend([begin("s3.loop"), Ev::End]);
    }
    assert!(
        capture.events("s3-game", "cpu") == expected_cpu,
        "cpu events differ"
    );
    for stream in capture.thread_streams("s3-game", "cpu") {
        assert!(stream.seqs.len() >= 3, "{:?}", stream.seqs);
        assert_eq!(
            stream.seqs,
            (0..stream.seqs.len() as u64).collect::<Vec<_>>()
        );
    }
    let log = |level: &str, target: &str, message: &str| Ev::Log {
        level: level.into(),
        target: target.into(),
        message: message.into(),
    };
    assert_eq!(
        capture.events("s3-game", "log"),
        vec![
            log("info", module_path!(), "uploaded 3 objects to s3"),
            log("warn", "net", "slow link: 250.5 ms"),
        ]
    );
    let metric = |name: &str, unit: &str, value| Ev::Metric {
        name: name.into(),
        unit: unit.into(),
        value,
    };
    assert_eq!(
        capture.events("s3-game", "metrics"),
        vec![
            metric("s3.objects", "count", MetricValue::Integer(3)),
            metric("s3.latency", "ms", MetricValue::Float(12.5)),
            metric("frame", "ticks", MetricValue::Frame),
        ]
    );
}

/// Set in the child process that runs the check of `an_unreachable_endpoint_fails_init_without_panicking`.
const CHILD_ENV: &str = "FRAMELINE_TEST_S3_UNREACHABLE_CHILD";
const CHILD_OK: &str = "unreachable-endpoint-child: ok";
const UNREACHABLE_LAKE: &str = "s3://frameline-unreachable/prefix";

/// `init` on an S3 lake whose endpoint refuses connections returns an error, in bounded time,
/// without panicking. The endpoint comes from `AWS_ENDPOINT_URL`, process-wide state that other
/// tests read: the check runs in a child process (this test binary, this same test, with
/// `FRAMELINE_TEST_S3_UNREACHABLE_CHILD` set) with its own environment, so nothing here mutates
/// ours, and a hang can be killed.
#[test]
fn an_unreachable_endpoint_fails_init_without_panicking() {
    if std::env::var_os(CHILD_ENV).is_some() {
        unreachable_endpoint_check();
        return;
    }
    let closed = "127.0.0.1:1".parse().unwrap();
    assert!(
        std::net::TcpStream::connect_timeout(&closed, Duration::from_secs(2)).is_err(),
        "something listens on 127.0.0.1:1; this test needs a closed port there"
    );
    let mut command = Command::new(std::env::current_exe().unwrap());
    command.args([
        "an_unreachable_endpoint_fails_init_without_panicking",
        "--exact",
        "--nocapture",
        "--test-threads=1",
    ]);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("AWS_") {
            command.env_remove(&key);
        }
    }
    command
        .env(CHILD_ENV, "1")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().unwrap();
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            pipe.read_to_string(&mut text).ok();
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    // object_store retries refused connections with backoff, within a 3-minute retry timeout:
    // a child still running after 4 minutes is hung.
    let deadline = Instant::now() + Duration::from_secs(240);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            child.wait().ok();
            panic!(
                "init against an unreachable endpoint hung; child output:\n{}\n{}",
                stdout.join().unwrap(),
                stderr.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    assert!(
        status.success() && stdout.contains(CHILD_OK) && stdout.contains("1 passed"),
        "child {status}:\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    eprintln!("{}", stdout.lines().find(|l| l.contains(CHILD_OK)).unwrap());
}

/// The child's side: runs with `AWS_ENDPOINT_URL` pointing at a closed port.
fn unreachable_endpoint_check() {
    let started = Instant::now();
    let config = Config::lake(UNREACHABLE_LAKE).expect("configuring an S3 sink does no I/O");
    let error = frameline_instrument::init(config)
        .err()
        .expect("init must fail when the lake is unreachable");
    let elapsed = started.elapsed();
    match &error {
        InitError::Sink(SinkError::Store(message)) => assert!(
            message.starts_with(&format!("{UNREACHABLE_LAKE}/{}", lake::VERSION_KEY)),
            "{message}"
        ),
        other => panic!("expected a store error reading the version marker, got {other:?}"),
    }
    // The failed init left no session behind: nothing runs, and a new session can start.
    assert_eq!(frameline_instrument::stats(), Stats::default());
    assert_eq!(frameline_instrument::process_id(), None);
    let guard = frameline_instrument::init(Config::null())
        .expect("a failed init must not leave a session behind");
    drop(guard);
    println!("{CHILD_OK} in {elapsed:?}: {error}");
}

/// A game with an async `main` (inside a Tokio runtime) starts and ends a session on S3: the
/// sink's blocking calls must not start a runtime inside the caller's (that panicked).
#[test]
fn init_and_shutdown_from_inside_a_tokio_runtime() {
    let Some(env) = s3_env() else { return };
    let _serial = serial();
    let prefix = format!("test-{}", uuid::Uuid::new_v4());
    let lake_url = format!("s3://{}/{prefix}", env.bucket);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stats = runtime.block_on(async {
        let guard = frameline_instrument::init(Config::lake(&lake_url).unwrap()).unwrap();
        for _ in 0..1000 {
            span_scope!("async.main");
        }
        guard.shutdown()
    });
    assert_eq!(stats.sink_errors, 0, "{stats:?}");
    assert!(stats.blocks_written > 0, "{stats:?}");
    let keys: Vec<String> = download(&env, &prefix)
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert!(keys.iter().any(|k| k == lake::VERSION_KEY), "{keys:?}");
    assert!(keys.iter().any(|k| k.ends_with(".blk")), "{keys:?}");
}
