//! When the sink fails or falls behind, recording threads never wait: whole blocks are dropped,
//! and every drop is counted — in the session's stats, in the stream and process metadata, in
//! the headers of later blocks and as gaps in the block sequence.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::serial;
use frameline_instrument::format::{Block, CpuEvent, StreamKind};
use frameline_instrument::lake::{self, BlockKey, ProcessMeta, StreamMeta};
use frameline_instrument::prelude::*;
use frameline_instrument::sink::{Sink, SinkError};
use frameline_instrument::{Config, Stats, TelemetryGuard};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Keeps what it accepts in memory. Optionally refuses every block (metadata still accepted) and
/// takes `put_delay` for every put.
#[derive(Default)]
struct MemorySink {
    refuse_blocks: bool,
    put_delay: Duration,
    objects: Mutex<BTreeMap<String, Vec<u8>>>,
    refused: Mutex<Vec<String>>,
}

impl Sink for MemorySink {
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), SinkError> {
        std::thread::sleep(self.put_delay);
        if self.refuse_blocks && key.starts_with(lake::BLOCKS_PREFIX) {
            self.refused.lock().unwrap().push(key.to_owned());
            return Err(SinkError::Store(format!("{key}: refused by the test sink")));
        }
        self.objects
            .lock()
            .unwrap()
            .insert(key.to_owned(), bytes.to_vec());
        Ok(())
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, SinkError> {
        Ok(self.objects.lock().unwrap().get(key).cloned())
    }

    fn describe(&self) -> String {
        "memory sink (test)".to_owned()
    }
}

impl MemorySink {
    fn keys(&self) -> Vec<String> {
        self.objects.lock().unwrap().keys().cloned().collect()
    }

    fn process(&self) -> ProcessMeta {
        let objects = self.objects.lock().unwrap();
        let mut processes = objects
            .iter()
            .filter(|(k, _)| k.starts_with(lake::PROCESSES_PREFIX));
        let (_, bytes) = processes.next().expect("no process metadata");
        assert!(processes.next().is_none(), "more than one process");
        serde_json::from_slice(bytes).unwrap()
    }

    /// Stream metadata of `thread_name`, by kind.
    fn streams(&self, thread_name: &str) -> BTreeMap<String, StreamMeta> {
        let objects = self.objects.lock().unwrap();
        objects
            .iter()
            .filter(|(k, _)| k.starts_with(lake::STREAMS_PREFIX))
            .map(|(_, bytes)| serde_json::from_slice::<StreamMeta>(bytes).unwrap())
            .filter(|meta| meta.thread_name == thread_name)
            .map(|meta| (meta.kind.clone(), meta))
            .collect()
    }

    /// Blocks of one stream: (key, parsed block), in sequence order.
    fn blocks(&self, stream_id: &str) -> Vec<(BlockKey, Block)> {
        let objects = self.objects.lock().unwrap();
        let mut blocks: Vec<(BlockKey, Block)> = objects
            .iter()
            .filter_map(|(key, bytes)| {
                let parsed = BlockKey::parse(key)?;
                (parsed.stream_id == stream_id).then(|| (parsed, Block::parse(bytes).unwrap()))
            })
            .collect();
        blocks.sort_by_key(|(key, _)| key.block_seq);
        blocks
    }
}

/// Joins a recording thread, failing the test if it has not finished within `limit` (it would
/// hang if recording ever waited for the sink).
fn join_within<T>(handle: JoinHandle<T>, limit: Duration, what: &str) -> T {
    let deadline = Instant::now() + limit;
    while !handle.is_finished() {
        assert!(
            Instant::now() < deadline,
            "{what} still running after {limit:?}: recording blocked on the sink"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    handle.join().unwrap()
}

/// Polls the guard's stats until `done` holds (the flush thread works asynchronously).
fn wait_for_stats(guard: &TelemetryGuard, what: &str, done: impl Fn(&Stats) -> bool) -> Stats {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let stats = guard.stats();
        if done(&stats) {
            return stats;
        }
        assert!(Instant::now() < deadline, "never saw {what}: {stats:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_failing_sink_drops_blocks_and_counts_them() {
    const SPANS: u64 = 2_000_000;
    const THREAD: &str = "failing-sink-game";
    let _serial = serial();
    let sink = Arc::new(MemorySink {
        refuse_blocks: true,
        ..MemorySink::default()
    });
    // A budget the flush thread never exhausts: every loss here is the sink's.
    let guard =
        frameline_instrument::init(Config::with_sink(sink.clone()).max_inflight_bytes(1 << 30))
            .unwrap();
    let recorder = std::thread::Builder::new()
        .name(THREAD.into())
        .spawn(|| {
            for i in 0..SPANS {
                span_scope!("refused.work");
                if i % 1000 == 0 {
                    info!("refused log {}", i);
                    imetric!("refused.metric", "count", i);
                }
            }
        })
        .unwrap();
    join_within(recorder, Duration::from_secs(60), THREAD);

    let stats = wait_for_stats(&guard, "a refused block", |s| {
        s.sink_errors > 0 && s.blocks_dropped > 0
    });
    assert_eq!(stats.blocks_written, 0, "{stats:?}");
    assert_eq!(stats.events_written, 0, "{stats:?}");
    drop(guard);

    // The sink kept the metadata and nothing else.
    let keys = sink.keys();
    assert!(keys.iter().any(|k| k == lake::VERSION_KEY), "{keys:?}");
    assert!(
        keys.iter().all(|k| !k.starts_with(lake::BLOCKS_PREFIX)),
        "{keys:?}"
    );
    let refused: Vec<BlockKey> = sink
        .refused
        .lock()
        .unwrap()
        .iter()
        .map(|k| BlockKey::parse(k).unwrap_or_else(|| panic!("bad block key {k}")))
        .collect();
    let process = sink.process();
    assert!(
        process.end_unix_ns.is_some(),
        "final process metadata written"
    );
    assert_eq!(process.dropped_blocks, refused.len() as u64);

    let streams = sink.streams(THREAD);
    let expected_events = [
        ("cpu", 2 * SPANS),
        ("log", SPANS / 1000),
        ("metrics", SPANS / 1000),
    ];
    for (kind, events) in expected_events {
        let meta = streams
            .get(kind)
            .unwrap_or_else(|| panic!("no {kind} stream metadata: {streams:?}"));
        let of_stream: Vec<&BlockKey> = refused
            .iter()
            .filter(|k| k.stream_id == meta.stream_id)
            .collect();
        assert!(!of_stream.is_empty(), "{kind}: no refused block");
        assert!(of_stream.iter().all(|k| k.kind.as_str() == kind));
        assert_eq!(
            meta.dropped_blocks,
            of_stream.len() as u64,
            "{kind}: {meta:?}"
        );
        assert_eq!(meta.written_blocks, 0, "{kind}: {meta:?}");
        // Every block was offered to the sink (none lost on the game side), in order.
        let seqs: Vec<u64> = of_stream.iter().map(|k| k.block_seq).collect();
        assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>(), "{kind}");
        let offered: u64 = of_stream.iter().map(|k| k.event_count as u64).sum();
        assert_eq!(offered, events, "{kind}: events in refused blocks");
    }
    // 2 M spans fill the 1 MiB CPU buffer (65 536 events) many times over.
    assert!(refused.iter().filter(|k| k.kind == StreamKind::Cpu).count() >= 61);
}

/// Records from a thread into a sink taking 50 ms per put, with room for only two CPU buffers in
/// flight, until blocks are dropped and then until a later block gets through. With `park`, the
/// thread stays alive until the session has shut down.
struct SlowRun {
    sink: Arc<MemorySink>,
    /// Stats once the thread stopped recording.
    stats: Stats,
}

const SLOW_THREAD: &str = "slow-sink-game";
const CHUNK_SPANS: u64 = 40_000; // 1.28 MB of CPU events: at least one full 1 MiB buffer

fn record_into_a_slow_sink(park: bool) -> SlowRun {
    let sink = Arc::new(MemorySink {
        put_delay: Duration::from_millis(50),
        ..MemorySink::default()
    });
    let guard = frameline_instrument::init(
        Config::with_sink(sink.clone()).max_inflight_bytes(2 * 1024 * 1024),
    )
    .unwrap();
    let (done_tx, done_rx) = mpsc::channel::<Result<(), String>>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let chunk = || {
        for _ in 0..CHUNK_SPANS {
            span_scope!("slow.work");
        }
    };
    let recorder = std::thread::Builder::new()
        .name(SLOW_THREAD.into())
        .spawn(move || {
            let dropped = || frameline_instrument::stats().blocks_dropped;
            let outcome = (|| {
                // Until the sink falls behind far enough that a buffer is dropped ...
                let mut chunks = 0;
                while dropped() == 0 {
                    chunk();
                    chunks += 1;
                    if chunks == 500 {
                        return Err(format!("no drop after {chunks} chunks"));
                    }
                }
                // ... then until a later buffer is accepted (one with a gap before it).
                for _ in 0..500 {
                    std::thread::sleep(Duration::from_millis(30));
                    let before = dropped();
                    chunk();
                    if dropped() == before {
                        span_scope!("slow.last");
                        return Ok(());
                    }
                }
                Err("no buffer accepted after the first drop".to_owned())
            })();
            done_tx.send(outcome).unwrap();
            if park {
                release_rx.recv().ok();
            }
        })
        .unwrap();
    let outcome = done_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the recording thread blocked on the sink");
    outcome.unwrap();
    let mut recorder = Some(recorder);
    if !park {
        join_within(
            recorder.take().unwrap(),
            Duration::from_secs(60),
            SLOW_THREAD,
        );
    }
    // The thread records nothing more: its drops are all counted by now.
    let stats = guard.stats();
    drop(guard);
    if let Some(recorder) = recorder {
        release_tx.send(()).unwrap();
        join_within(recorder, Duration::from_secs(60), SLOW_THREAD);
    }
    SlowRun { sink, stats }
}

#[test]
fn a_slow_sink_makes_recording_drop_blocks_not_wait() {
    let _serial = serial();
    let SlowRun { sink, stats } = record_into_a_slow_sink(true);
    let dropped = stats.blocks_dropped;
    assert!(dropped > 0, "{stats:?}");
    assert_eq!(stats.sink_errors, 0, "{stats:?}");

    let streams = sink.streams(SLOW_THREAD);
    let meta = &streams["cpu"];
    let blocks = sink.blocks(&meta.stream_id);
    let seqs: Vec<u64> = blocks.iter().map(|(k, _)| k.block_seq).collect();
    let arrived: BTreeSet<u64> = seqs.iter().copied().collect();
    let last_seq = *seqs.last().unwrap();
    // Each sequence number was either written or dropped: the gaps are the drops, all of them
    // (the last block, stolen at shutdown, comes after every drop).
    let missing: Vec<u64> = (0..=last_seq).filter(|s| !arrived.contains(s)).collect();
    assert!(!missing.is_empty(), "no gap in {seqs:?}");
    assert_eq!(
        missing.len() as u64,
        dropped,
        "missing {missing:?} of {seqs:?}"
    );
    // Headers carry the cumulative count of drops before them.
    let mut previous = 0;
    for (key, block) in &blocks {
        let header = &block.header;
        assert_eq!(header.block_seq, key.block_seq);
        let missing_before = missing.iter().filter(|s| **s < key.block_seq).count() as u32;
        assert!(
            header.dropped_blocks >= missing_before && header.dropped_blocks >= previous,
            "block {}: header says {} dropped, {missing_before} missing before it, {previous} before",
            key.block_seq,
            header.dropped_blocks
        );
        previous = header.dropped_blocks;
    }
    let (_, last) = blocks.last().unwrap();
    assert_eq!(last.header.dropped_blocks as u64, dropped);
    // The last block holds the span recorded after the drops: stolen at shutdown, not lost.
    let view = last.view().unwrap();
    let names: Vec<&str> = view
        .cpu_events()
        .unwrap()
        .filter_map(|e| match e.unwrap() {
            CpuEvent::Begin { dep, .. } => Some(view.span_dep(dep).unwrap().name),
            _ => None,
        })
        .collect();
    assert_eq!(
        names.last(),
        Some(&"slow.last"),
        "{:?}",
        &names[names.len().saturating_sub(3)..]
    );

    assert_eq!(meta.dropped_blocks, dropped, "{meta:?}");
    assert_eq!(meta.written_blocks, blocks.len() as u64, "{meta:?}");
    assert_eq!(sink.process().dropped_blocks, dropped);
}

/// Same as above, but the recording thread exits before the session shuts down (a worker that
/// finished its job, no longer in the thread registry): its stream's final metadata must still
/// count the blocks it dropped, and the headers agree.
#[test]
fn stream_metadata_counts_the_drops_of_exited_threads() {
    let _serial = serial();
    let SlowRun { sink, stats } = record_into_a_slow_sink(false);
    let dropped = stats.blocks_dropped;
    assert!(dropped > 0, "{stats:?}");
    let streams = sink.streams(SLOW_THREAD);
    let meta = &streams["cpu"];
    assert_eq!(meta.dropped_blocks, dropped, "{meta:?}");
    assert_eq!(sink.process().dropped_blocks, dropped);
    let blocks = sink.blocks(&meta.stream_id);
    assert_eq!(meta.written_blocks, blocks.len() as u64, "{meta:?}");
    // The thread's exit may drop one last buffer after every block that arrived: the gaps
    // account for all drops but that one.
    let last_seq = blocks.last().unwrap().0.block_seq;
    let missing = last_seq + 1 - blocks.len() as u64;
    assert!(
        missing == dropped || missing + 1 == dropped,
        "{missing} gaps for {dropped} drops"
    );
    assert!(
        blocks
            .iter()
            .all(|(_, b)| b.header.dropped_blocks as u64 <= dropped)
    );
}
