//! Process and stream descriptions as Arrow rows, in and out of the compacted catalog's Parquet
//! parts. Plain columns (strings, integers, nanoseconds since the Unix epoch), so DuckDB, polars
//! or Spark read a part as it is. A part is untrusted input: a missing column or a column of
//! another type is an error naming it, never a panic.

use datafusion::arrow::array::{
    Array, ArrayRef, Int64Array, RecordBatch, StringArray, UInt64Array,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use frameline_instrument::lake::{ProcessMeta, StreamMeta};
use std::collections::BTreeMap;
use std::sync::Arc;

/// A process as the catalog keeps it.
#[derive(Clone, Debug, PartialEq)]
pub struct CatalogProcess {
    pub meta: ProcessMeta,
    /// For a process that never shut down cleanly, the end of its last block, found by the
    /// compactor (readers list its blocks up to that hour, not up to the horizon).
    pub last_block_end_unix_ns: Option<i64>,
}

pub fn processes_schema() -> SchemaRef {
    let u64_field = |name: &str, nullable| Field::new(name, DataType::UInt64, nullable);
    let i64_field = |name: &str, nullable| Field::new(name, DataType::Int64, nullable);
    let text = |name: &str, nullable| Field::new(name, DataType::Utf8, nullable);
    Arc::new(Schema::new(vec![
        text("process_id", false),
        text("exe", false),
        text("username", false),
        text("computer", false),
        text("os", false),
        text("cpu_brand", false),
        u64_field("tsc_frequency", false),
        u64_field("key_tsc_frequency", true),
        u64_field("start_ticks", false),
        i64_field("start_unix_ns", false),
        u64_field("end_ticks", true),
        i64_field("end_unix_ns", true),
        text("parent_process_id", true),
        text("properties", false),
        u64_field("dropped_blocks", false),
        u64_field("sampled_out_blocks", false),
        i64_field("last_block_end_unix_ns", true),
    ]))
}

pub fn streams_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("stream_id", DataType::Utf8, false),
        Field::new("process_id", DataType::Utf8, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("thread_name", DataType::Utf8, false),
        Field::new("thread_index", DataType::UInt64, false),
        Field::new("dropped_blocks", DataType::UInt64, false),
        Field::new("written_blocks", DataType::UInt64, false),
        Field::new("sampled_out_blocks", DataType::UInt64, false),
    ]))
}

fn strings<'a>(values: impl Iterator<Item = &'a str>) -> ArrayRef {
    Arc::new(values.map(Some).collect::<StringArray>())
}

fn u64s(values: impl Iterator<Item = u64>) -> ArrayRef {
    Arc::new(values.collect::<UInt64Array>())
}

fn opt_u64s(values: impl Iterator<Item = Option<u64>>) -> ArrayRef {
    Arc::new(values.collect::<UInt64Array>())
}

fn opt_i64s(values: impl Iterator<Item = Option<i64>>) -> ArrayRef {
    Arc::new(values.collect::<Int64Array>())
}

pub fn processes_batch(rows: &[CatalogProcess]) -> Result<RecordBatch, String> {
    let m = || rows.iter().map(|r| &r.meta);
    let properties: Vec<String> = m()
        .map(|p| serde_json::to_string(&p.properties).unwrap_or_else(|_| "{}".to_owned()))
        .collect();
    RecordBatch::try_new(
        processes_schema(),
        vec![
            strings(m().map(|p| p.process_id.as_str())),
            strings(m().map(|p| p.exe.as_str())),
            strings(m().map(|p| p.username.as_str())),
            strings(m().map(|p| p.computer.as_str())),
            strings(m().map(|p| p.os.as_str())),
            strings(m().map(|p| p.cpu_brand.as_str())),
            u64s(m().map(|p| p.tsc_frequency)),
            opt_u64s(m().map(|p| p.key_tsc_frequency)),
            u64s(m().map(|p| p.start_ticks)),
            Arc::new(m().map(|p| Some(p.start_unix_ns)).collect::<Int64Array>()),
            opt_u64s(m().map(|p| p.end_ticks)),
            opt_i64s(m().map(|p| p.end_unix_ns)),
            Arc::new(
                m().map(|p| p.parent_process_id.as_deref())
                    .collect::<StringArray>(),
            ),
            strings(properties.iter().map(String::as_str)),
            u64s(m().map(|p| p.dropped_blocks)),
            u64s(m().map(|p| p.sampled_out_blocks)),
            opt_i64s(rows.iter().map(|r| r.last_block_end_unix_ns)),
        ],
    )
    .map_err(|e| e.to_string())
}

pub fn streams_batch(rows: &[StreamMeta]) -> Result<RecordBatch, String> {
    RecordBatch::try_new(
        streams_schema(),
        vec![
            strings(rows.iter().map(|s| s.stream_id.as_str())),
            strings(rows.iter().map(|s| s.process_id.as_str())),
            strings(rows.iter().map(|s| s.kind.as_str())),
            strings(rows.iter().map(|s| s.thread_name.as_str())),
            u64s(rows.iter().map(|s| s.thread_index)),
            u64s(rows.iter().map(|s| s.dropped_blocks)),
            u64s(rows.iter().map(|s| s.written_blocks)),
            u64s(rows.iter().map(|s| s.sampled_out_blocks)),
        ],
    )
    .map_err(|e| e.to_string())
}

fn typed<'a, T: Array + 'static>(batch: &'a RecordBatch, name: &str) -> Result<&'a T, String> {
    batch
        .column_by_name(name)
        .ok_or_else(|| format!("no column {name}"))?
        .as_any()
        .downcast_ref::<T>()
        .ok_or_else(|| {
            format!(
                "column {name} has type {:?}",
                batch
                    .schema()
                    .field_with_name(name)
                    .map(|f| f.data_type().clone())
                    .ok()
            )
        })
}

/// Row `i` of a non-null column (a null where none may be is corrupt).
fn required<T>(value: Option<T>, name: &str) -> Result<T, String> {
    value.ok_or_else(|| format!("null in column {name}"))
}

fn text_at(array: &StringArray, i: usize) -> Option<String> {
    array.is_valid(i).then(|| array.value(i).to_owned())
}

fn u64_at(array: &UInt64Array, i: usize) -> Option<u64> {
    array.is_valid(i).then(|| array.value(i))
}

fn i64_at(array: &Int64Array, i: usize) -> Option<i64> {
    array.is_valid(i).then(|| array.value(i))
}

pub fn processes_from_batch(batch: &RecordBatch) -> Result<Vec<CatalogProcess>, String> {
    let text = |name| typed::<StringArray>(batch, name);
    let unsigned = |name| typed::<UInt64Array>(batch, name);
    let signed = |name| typed::<Int64Array>(batch, name);
    let (process_id, exe, username, computer, os, cpu_brand) = (
        text("process_id")?,
        text("exe")?,
        text("username")?,
        text("computer")?,
        text("os")?,
        text("cpu_brand")?,
    );
    let (parent, properties) = (text("parent_process_id")?, text("properties")?);
    let (tsc_frequency, key_tsc_frequency, start_ticks, end_ticks) = (
        unsigned("tsc_frequency")?,
        unsigned("key_tsc_frequency")?,
        unsigned("start_ticks")?,
        unsigned("end_ticks")?,
    );
    let (dropped, sampled_out) = (unsigned("dropped_blocks")?, unsigned("sampled_out_blocks")?);
    let (start_unix_ns, end_unix_ns, last_block_end) = (
        signed("start_unix_ns")?,
        signed("end_unix_ns")?,
        signed("last_block_end_unix_ns")?,
    );
    (0..batch.num_rows())
        .map(|i| {
            let properties: BTreeMap<String, String> =
                serde_json::from_str(&required(text_at(properties, i), "properties")?)
                    .map_err(|e| format!("properties of row {i}: {e}"))?;
            Ok(CatalogProcess {
                meta: ProcessMeta {
                    process_id: required(text_at(process_id, i), "process_id")?,
                    exe: required(text_at(exe, i), "exe")?,
                    username: required(text_at(username, i), "username")?,
                    computer: required(text_at(computer, i), "computer")?,
                    os: required(text_at(os, i), "os")?,
                    cpu_brand: required(text_at(cpu_brand, i), "cpu_brand")?,
                    tsc_frequency: required(u64_at(tsc_frequency, i), "tsc_frequency")?,
                    key_tsc_frequency: u64_at(key_tsc_frequency, i),
                    start_ticks: required(u64_at(start_ticks, i), "start_ticks")?,
                    start_unix_ns: required(i64_at(start_unix_ns, i), "start_unix_ns")?,
                    end_ticks: u64_at(end_ticks, i),
                    end_unix_ns: i64_at(end_unix_ns, i),
                    parent_process_id: text_at(parent, i),
                    properties,
                    dropped_blocks: required(u64_at(dropped, i), "dropped_blocks")?,
                    sampled_out_blocks: required(u64_at(sampled_out, i), "sampled_out_blocks")?,
                },
                last_block_end_unix_ns: i64_at(last_block_end, i),
            })
        })
        .collect()
}

pub fn streams_from_batch(batch: &RecordBatch) -> Result<Vec<StreamMeta>, String> {
    let text = |name| typed::<StringArray>(batch, name);
    let unsigned = |name| typed::<UInt64Array>(batch, name);
    let (stream_id, process_id, kind, thread_name) = (
        text("stream_id")?,
        text("process_id")?,
        text("kind")?,
        text("thread_name")?,
    );
    let (thread_index, dropped, written, sampled_out) = (
        unsigned("thread_index")?,
        unsigned("dropped_blocks")?,
        unsigned("written_blocks")?,
        unsigned("sampled_out_blocks")?,
    );
    (0..batch.num_rows())
        .map(|i| {
            Ok(StreamMeta {
                stream_id: required(text_at(stream_id, i), "stream_id")?,
                process_id: required(text_at(process_id, i), "process_id")?,
                kind: required(text_at(kind, i), "kind")?,
                thread_name: required(text_at(thread_name, i), "thread_name")?,
                thread_index: required(u64_at(thread_index, i), "thread_index")?,
                dropped_blocks: required(u64_at(dropped, i), "dropped_blocks")?,
                written_blocks: required(u64_at(written, i), "written_blocks")?,
                sampled_out_blocks: required(u64_at(sampled_out, i), "sampled_out_blocks")?,
            })
        })
        .collect()
}

/// One batch as a Parquet file (zstd-free: the default codec of the `parquet` crate here).
pub fn to_parquet(batch: &RecordBatch) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    let mut writer = parquet::arrow::ArrowWriter::try_new(&mut bytes, batch.schema(), None)
        .map_err(|e| e.to_string())?;
    writer.write(batch).map_err(|e| e.to_string())?;
    writer.close().map_err(|e| e.to_string())?;
    Ok(bytes)
}

/// Process and stream objects larger than this are refused (a real one is under 4 KiB).
pub const MAX_OBJECT_JSON_BYTES: usize = 1 << 20;

/// A process or stream object read from a lake: refused past [`MAX_OBJECT_JSON_BYTES`].
pub fn object_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, String> {
    if bytes.len() > MAX_OBJECT_JSON_BYTES {
        return Err(format!(
            "{} bytes, more than an object's {MAX_OBJECT_JSON_BYTES}",
            bytes.len()
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}

/// Parts larger than this are refused (a day's catalog of 10^4 sessions is a few MB).
pub const MAX_PART_BYTES: usize = 256 << 20;

/// Every batch of a Parquet file held in memory. The file comes from a lake: one larger than
/// [`MAX_PART_BYTES`] is refused, and a panic of the Parquet decoder on crafted bytes is an
/// error, not a crash.
pub fn from_parquet(bytes: bytes::Bytes) -> Result<Vec<RecordBatch>, String> {
    if bytes.len() > MAX_PART_BYTES {
        return Err(format!(
            "{} bytes, more than a part's {MAX_PART_BYTES}",
            bytes.len()
        ));
    }
    guard_decoder(|| {
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes)
            .map_err(|e| e.to_string())?
            .build()
            .map_err(|e| e.to_string())?;
        reader
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())
    })
}

/// Runs a third-party decoder over bytes from a lake: its panic becomes an error.
pub fn guard_decoder<T>(decode: impl FnOnce() -> Result<T, String>) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(decode))
        .unwrap_or_else(|_| Err("the Parquet decoder failed on these bytes".to_owned()))
}

/// The process rows of a catalog part.
pub fn processes_of_part(bytes: bytes::Bytes) -> Result<Vec<CatalogProcess>, String> {
    rows_of_part(bytes, processes_from_batch)
}

/// The stream rows of a catalog part.
pub fn streams_of_part(bytes: bytes::Bytes) -> Result<Vec<StreamMeta>, String> {
    rows_of_part(bytes, streams_from_batch)
}

fn rows_of_part<T>(
    bytes: bytes::Bytes,
    rows_of_batch: fn(&RecordBatch) -> Result<Vec<T>, String>,
) -> Result<Vec<T>, String> {
    let mut all = Vec::new();
    for batch in from_parquet(bytes)? {
        all.extend(rows_of_batch(&batch)?);
    }
    Ok(all)
}

/// A stable 128-bit FNV-1a hash: names a catalog part by what it holds.
pub fn content_hash(parts: impl IntoIterator<Item = impl AsRef<[u8]>>) -> u128 {
    const OFFSET: u128 = 0x6c62272e07bb014262b821756295c58d;
    const PRIME: u128 = 0x0000000001000000000000000000013b;
    let mut hash = OFFSET;
    for part in parts {
        for &byte in part.as_ref().iter().chain(std::iter::once(&0xff)) {
            hash ^= u128::from(byte);
            hash = hash.wrapping_mul(PRIME);
        }
    }
    hash
}

#[cfg(test)]
mod tests {
    use super::*;

    fn process(id: &str, end: Option<i64>) -> CatalogProcess {
        CatalogProcess {
            meta: ProcessMeta {
                process_id: id.to_owned(),
                exe: "game".to_owned(),
                username: "u".to_owned(),
                computer: "c".to_owned(),
                os: "linux".to_owned(),
                cpu_brand: "cpu".to_owned(),
                tsc_frequency: 3_000_000_000,
                key_tsc_frequency: Some(2_999_000_000),
                start_ticks: 10,
                start_unix_ns: 1_795_627_179_000_000_000,
                end_ticks: end.map(|_| 20),
                end_unix_ns: end,
                parent_process_id: None,
                properties: [("build".to_owned(), "42".to_owned())].into(),
                dropped_blocks: 1,
                sampled_out_blocks: 2,
            },
            last_block_end_unix_ns: end.is_none().then_some(5),
        }
    }

    #[test]
    fn processes_round_trip_through_parquet() {
        let rows = vec![
            process("a", Some(1_795_627_189_000_000_000)),
            process("b", None),
        ];
        let bytes = to_parquet(&processes_batch(&rows).unwrap()).unwrap();
        let batches = from_parquet(bytes.into()).unwrap();
        let back: Vec<_> = batches
            .iter()
            .flat_map(|b| processes_from_batch(b).unwrap())
            .collect();
        assert_eq!(back, rows);
    }

    #[test]
    fn a_part_of_another_shape_is_an_error() {
        let streams = streams_batch(&[]).unwrap();
        assert!(processes_from_batch(&streams).is_err());
        assert!(from_parquet(bytes::Bytes::from_static(b"PAR1 not parquet")).is_err());
    }

    #[test]
    fn content_hash_depends_on_order_and_boundaries() {
        assert_ne!(content_hash(["ab", "c"]), content_hash(["a", "bc"]));
        assert_eq!(content_hash(["a", "b"]), content_hash(["a", "b"]));
    }
}
