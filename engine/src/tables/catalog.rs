//! The metadata tables `processes`, `streams` and `blocks`, built from the lake's catalog.

use crate::error::EngineError;
use crate::lake::Lake;
use datafusion::arrow::array::{
    ArrayRef, StringArray, TimestampNanosecondArray, UInt32Array, UInt64Array,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use std::sync::Arc;

/// `processes`, `streams` and `blocks` as in-memory batches from the catalog.
pub fn catalog_batches(lake: &Lake) -> Result<Vec<(&'static str, RecordBatch)>, EngineError> {
    let ts = || DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()));
    let ts_array = |values: Vec<Option<i64>>| {
        Arc::new(TimestampNanosecondArray::from(values).with_timezone("UTC")) as ArrayRef
    };
    let strings = |values: Vec<&str>| Arc::new(StringArray::from(values)) as ArrayRef;
    let to_err = |e: datafusion::arrow::error::ArrowError| EngineError::Query(e.to_string());

    let p = &lake.processes;
    let processes_schema = Arc::new(Schema::new(vec![
        Field::new("process_id", DataType::Utf8, false),
        Field::new("exe", DataType::Utf8, false),
        Field::new("username", DataType::Utf8, false),
        Field::new("computer", DataType::Utf8, false),
        Field::new("os", DataType::Utf8, false),
        Field::new("cpu_brand", DataType::Utf8, false),
        Field::new("tsc_frequency", DataType::UInt64, false),
        Field::new("start_time", ts(), false),
        Field::new("end_time", ts(), true),
        Field::new("parent_process_id", DataType::Utf8, true),
        Field::new("properties", DataType::Utf8, false),
        Field::new("dropped_blocks", DataType::UInt64, false),
        Field::new("sampled_out_blocks", DataType::UInt64, false),
    ]));
    let processes = RecordBatch::try_new(
        processes_schema,
        vec![
            strings(p.iter().map(|x| x.process_id.as_str()).collect()),
            strings(p.iter().map(|x| x.exe.as_str()).collect()),
            strings(p.iter().map(|x| x.username.as_str()).collect()),
            strings(p.iter().map(|x| x.computer.as_str()).collect()),
            strings(p.iter().map(|x| x.os.as_str()).collect()),
            strings(p.iter().map(|x| x.cpu_brand.as_str()).collect()),
            Arc::new(UInt64Array::from(
                p.iter().map(|x| x.tsc_frequency).collect::<Vec<_>>(),
            )),
            ts_array(p.iter().map(|x| Some(x.start_unix_ns)).collect()),
            ts_array(p.iter().map(|x| x.end_unix_ns).collect()),
            Arc::new(StringArray::from(
                p.iter()
                    .map(|x| x.parent_process_id.as_deref())
                    .collect::<Vec<_>>(),
            )),
            Arc::new(StringArray::from(
                p.iter()
                    .map(|x| serde_json::to_string(&x.properties).unwrap_or_default())
                    .collect::<Vec<_>>(),
            )),
            Arc::new(UInt64Array::from(
                p.iter().map(|x| x.dropped_blocks).collect::<Vec<_>>(),
            )),
            Arc::new(UInt64Array::from(
                p.iter().map(|x| x.sampled_out_blocks).collect::<Vec<_>>(),
            )),
        ],
    )
    .map_err(to_err)?;

    let mut s: Vec<_> = lake.streams.values().collect();
    s.sort_by(|a, b| {
        (&a.process_id, a.thread_index, &a.kind).cmp(&(&b.process_id, b.thread_index, &b.kind))
    });
    let streams_schema = Arc::new(Schema::new(vec![
        Field::new("stream_id", DataType::Utf8, false),
        Field::new("process_id", DataType::Utf8, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("thread_name", DataType::Utf8, false),
        Field::new("thread_index", DataType::UInt64, false),
        Field::new("written_blocks", DataType::UInt64, false),
        Field::new("dropped_blocks", DataType::UInt64, false),
        Field::new("sampled_out_blocks", DataType::UInt64, false),
    ]));
    let streams = RecordBatch::try_new(
        streams_schema,
        vec![
            strings(s.iter().map(|x| x.stream_id.as_str()).collect()),
            strings(s.iter().map(|x| x.process_id.as_str()).collect()),
            strings(s.iter().map(|x| x.kind.as_str()).collect()),
            strings(s.iter().map(|x| x.thread_name.as_str()).collect()),
            Arc::new(UInt64Array::from(
                s.iter().map(|x| x.thread_index).collect::<Vec<_>>(),
            )),
            Arc::new(UInt64Array::from(
                s.iter().map(|x| x.written_blocks).collect::<Vec<_>>(),
            )),
            Arc::new(UInt64Array::from(
                s.iter().map(|x| x.dropped_blocks).collect::<Vec<_>>(),
            )),
            Arc::new(UInt64Array::from(
                s.iter().map(|x| x.sampled_out_blocks).collect::<Vec<_>>(),
            )),
        ],
    )
    .map_err(to_err)?;

    let b = &lake.blocks;
    let blocks_schema = Arc::new(Schema::new(vec![
        Field::new("key", DataType::Utf8, false),
        Field::new("process_id", DataType::Utf8, false),
        Field::new("stream_id", DataType::Utf8, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("block_seq", DataType::UInt64, false),
        Field::new("begin_time", ts(), false),
        Field::new("end_time", ts(), false),
        Field::new("event_count", DataType::UInt32, false),
        Field::new("size_bytes", DataType::UInt64, false),
        Field::new("earliest_time", ts(), false),
    ]));
    let blocks = RecordBatch::try_new(
        blocks_schema,
        vec![
            strings(b.iter().map(|x| x.key.as_str()).collect()),
            strings(b.iter().map(|x| x.info.process_id.as_str()).collect()),
            strings(b.iter().map(|x| x.info.stream_id.as_str()).collect()),
            strings(b.iter().map(|x| x.info.kind.as_str()).collect()),
            Arc::new(UInt64Array::from(
                b.iter().map(|x| x.info.block_seq).collect::<Vec<_>>(),
            )),
            ts_array(b.iter().map(|x| Some(x.info.begin_unix_ns)).collect()),
            ts_array(b.iter().map(|x| Some(x.info.end_unix_ns)).collect()),
            Arc::new(UInt32Array::from(
                b.iter().map(|x| x.info.event_count).collect::<Vec<_>>(),
            )),
            Arc::new(UInt64Array::from(
                b.iter().map(|x| x.size_bytes).collect::<Vec<_>>(),
            )),
            ts_array(b.iter().map(|x| Some(x.info.earliest_unix_ns)).collect()),
        ],
    )
    .map_err(to_err)?;
    Ok(vec![
        ("processes", processes),
        ("streams", streams),
        ("blocks", blocks),
    ])
}
