//! A lake's JSON objects (process, stream, version marker) from any bytes: read through the
//! engine's one reader (`rows::object_json`, size-bounded) without panicking; a process or stream
//! that parses survives the compacted catalog's round trip (Arrow rows → Parquet part → rows)
//! unchanged, and its times convert without panicking (tick conversion, key rescaling, keys).
#![no_main]

use frameline_engine::catalog::rows::{
    self, CatalogProcess, processes_batch, processes_of_part, streams_batch, streams_of_part,
    to_parquet,
};
use frameline_instrument::lake::{self, LakeVersion, ProcessMeta, StreamMeta};
use frameline_instrument::time::TickConverter;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(meta) = rows::object_json::<ProcessMeta>(data) {
        let ticks = TickConverter::new(meta.start_ticks, meta.start_unix_ns, meta.tsc_frequency);
        for t in [
            0,
            meta.start_ticks,
            meta.end_ticks.unwrap_or(u64::MAX),
            u64::MAX,
        ] {
            ticks.to_unix_ns(t);
        }
        for ns in [
            meta.start_unix_ns,
            meta.end_unix_ns.unwrap_or(i64::MIN),
            i64::MAX,
        ] {
            meta.rescale_key_ns(ns);
            lake::process_hour_prefix(ns, &meta.process_id);
        }
        lake::process_key(&meta.process_id, meta.start_unix_ns);
        let process = CatalogProcess {
            meta,
            last_block_end_unix_ns: None,
        };
        let part = processes_batch(std::slice::from_ref(&process))
            .and_then(|batch| to_parquet(&batch))
            .expect("a process becomes a catalog part");
        let back = processes_of_part(part.into()).expect("a catalog part of a process reads back");
        assert_eq!(back, vec![process]);
    }
    if let Ok(meta) = rows::object_json::<StreamMeta>(data) {
        lake::stream_key(&meta.process_id, &meta.stream_id);
        let part = streams_batch(std::slice::from_ref(&meta))
            .and_then(|batch| to_parquet(&batch))
            .expect("a stream becomes a catalog part");
        let back = streams_of_part(part.into()).expect("a catalog part of a stream reads back");
        assert_eq!(back, vec![meta]);
    }
    let _version: Result<LakeVersion, String> = rows::object_json(data);
});
