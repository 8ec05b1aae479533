//! The lake layout: which key holds what. The one owner of key names, shared by the sinks that
//! write a lake and the engine that reads it. A local capture folder and an S3 prefix use the
//! same keys.
//!
//! ```text
//! frameline-lake.json                                   version marker
//! processes/{YYYY-MM-DD}/{process_id}.json              one per process (date of its start)
//! streams/{process_id}/{stream_id}.json                 one per stream (thread × kind)
//! blocks/{YYYY-MM-DD}/{HH}/{process_id}/{kind}-{stream_id}/{seq}_{begin_ns}_{end_ns}_{events}_{earliest_ns}.blk
//! catalog/{processes|streams}/date={YYYY-MM-DD}/part-{hash}.parquet   compacted metadata (readers)
//! ```
//! Games write only the first four. `catalog/` is written by compaction (a reader that may
//! write): it folds the process and stream objects of finished processes into one Parquet part
//! per start date and table, then deletes the objects it folded, so a reader lists only what is
//! newer than the last compaction.
//! Block keys are partitioned by the UTC hour of their first event, so a time range lists only
//! its own prefixes, and the key alone gives process, stream kind, sequence, time span and event
//! count (the `blocks` table needs no object read). `earliest_ns` is the begin of the outermost
//! span still open when a CPU block starts (the block's own begin otherwise): no span that ends
//! in the block began before it, so a query on span begin times can skip blocks by key.

use crate::format::{EncodedInfo, StreamKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Key of the version marker at the root of every lake.
pub const VERSION_KEY: &str = "frameline-lake.json";
/// Major version of the layout written by this build; readers refuse newer majors.
pub const LAKE_MAJOR_VERSION: u32 = 1;
pub const LAKE_MINOR_VERSION: u32 = 0;

pub const PROCESSES_PREFIX: &str = "processes/";
pub const STREAMS_PREFIX: &str = "streams/";
pub const BLOCKS_PREFIX: &str = "blocks/";
pub const CATALOG_PROCESSES_PREFIX: &str = "catalog/processes/";
pub const CATALOG_STREAMS_PREFIX: &str = "catalog/streams/";
/// Per-session summaries (materialized views): `summaries/{view}/date={D}/part-{hash}.parquet`.
pub const SUMMARIES_PREFIX: &str = "summaries/";

/// The local sink writes an object to `<key>.tmp-<pid>-<n>`, then renames it to `<key>`: a
/// reader listing at that moment (or after a crash between the two) sees the temporary name.
const PARTIAL_WRITE_MARK: &str = ".tmp-";

/// The temporary name a local write of `key` goes through (see [`is_partial_write`]).
pub fn partial_write_name(key: &str, pid: u32, n: u64) -> String {
    format!("{key}{PARTIAL_WRITE_MARK}{pid}-{n}")
}

/// Whether `key` is an object being written (not yet renamed to its key): not data, and not a
/// problem either.
pub fn is_partial_write(key: &str) -> bool {
    let Some((_, suffix)) = key.rsplit_once(PARTIAL_WRITE_MARK) else {
        return false;
    };
    let Some((pid, n)) = suffix.split_once('-') else {
        return false;
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    digits(pid) && digits(n)
}

/// Contents of the version marker.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct LakeVersion {
    pub format: String,
    pub major: u32,
    pub minor: u32,
}

impl LakeVersion {
    pub fn current() -> Self {
        Self {
            format: "frameline-lake".to_owned(),
            major: LAKE_MAJOR_VERSION,
            minor: LAKE_MINOR_VERSION,
        }
    }
}

/// Description of one process (one run of an instrumented program).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ProcessMeta {
    pub process_id: String,
    pub exe: String,
    pub username: String,
    pub computer: String,
    pub os: String,
    pub cpu_brand: String,
    /// Ticks per second of the counter the events were timed with (refined at a clean
    /// shutdown).
    pub tsc_frequency: u64,
    /// The frequency block keys' times were computed with (measured at start, never changed):
    /// readers rescale key times by `key_tsc_frequency / tsc_frequency` around the start.
    #[serde(default)]
    pub key_tsc_frequency: Option<u64>,
    pub start_ticks: u64,
    pub start_unix_ns: i64,
    /// Set when the process shut down cleanly (the frequency is then refined over its lifetime).
    #[serde(default)]
    pub end_ticks: Option<u64>,
    #[serde(default)]
    pub end_unix_ns: Option<i64>,
    #[serde(default)]
    pub parent_process_id: Option<String>,
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// Blocks of this process dropped before reaching the lake (known at shutdown).
    #[serde(default)]
    pub dropped_blocks: u64,
    /// CPU blocks the flight recorder kept in memory and never wrote (known at shutdown; 0
    /// without a flight recorder). Not lost: left out on purpose, away from any trigger.
    #[serde(default)]
    pub sampled_out_blocks: u64,
}

/// Description of one stream (one kind of data of one thread).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct StreamMeta {
    pub stream_id: String,
    pub process_id: String,
    pub kind: String,
    pub thread_name: String,
    pub thread_index: u64,
    /// Blocks of this stream dropped (sink too slow or failing), as of the last update.
    #[serde(default)]
    pub dropped_blocks: u64,
    /// Blocks written, as of the last update.
    #[serde(default)]
    pub written_blocks: u64,
    /// Blocks the flight recorder never wrote (sampled out, not lost), as of the last update.
    #[serde(default)]
    pub sampled_out_blocks: u64,
}

pub fn process_key(process_id: &str, start_unix_ns: i64) -> String {
    let (y, m, d, _) = civil_from_unix_ns(start_unix_ns);
    format!("{PROCESSES_PREFIX}{y:04}-{m:02}-{d:02}/{process_id}.json")
}

/// `YYYY-MM-DD` (UTC) of a Unix time in nanoseconds: the partition of a process started then.
pub fn date_of_unix_ns(unix_ns: i64) -> String {
    let (y, m, d, _) = civil_from_unix_ns(unix_ns);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The start date partition of a process object key (`processes/{date}/{id}.json`).
pub fn date_of_process_key(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(PROCESSES_PREFIX)?;
    let (date, file) = rest.split_once('/')?;
    (is_date(date) && file.ends_with(".json") && !file.contains('/')).then_some(date)
}

/// Whether `text` looks like `YYYY-MM-DD`.
pub fn is_date(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// Key of a compacted catalog part of `table_prefix` (`CATALOG_PROCESSES_PREFIX` or
/// `CATALOG_STREAMS_PREFIX`) for one start date; `content_hash` names its contents, so two
/// compactors folding the same objects write the same key with the same bytes.
pub fn catalog_part_key(table_prefix: &str, date: &str, content_hash: u128) -> String {
    format!("{table_prefix}date={date}/part-{content_hash:032x}.parquet")
}

/// The date of a catalog part key under `table_prefix`.
pub fn date_of_catalog_part<'a>(table_prefix: &str, key: &'a str) -> Option<&'a str> {
    let rest = key.strip_prefix(table_prefix)?.strip_prefix("date=")?;
    let (date, file) = rest.split_once('/')?;
    (is_date(date)
        && file.starts_with("part-")
        && file.ends_with(".parquet")
        && !file.contains('/'))
    .then_some(date)
}

/// Key of a summary part of `view` for sessions started on `date`.
pub fn summary_part_key(view: &str, date: &str, content_hash: u128) -> String {
    format!("{SUMMARIES_PREFIX}{view}/date={date}/part-{content_hash:032x}.parquet")
}

/// `(view, date)` of a summary part key.
pub fn parse_summary_part_key(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix(SUMMARIES_PREFIX)?;
    let (view, rest) = rest.split_once('/')?;
    let valid_view =
        !view.is_empty() && view.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    let prefix = format!("{SUMMARIES_PREFIX}{view}/");
    let date = date_of_catalog_part(&prefix, key)?;
    let _ = rest;
    valid_view.then_some((view, date))
}

/// Prefix of one process's blocks in one UTC hour (`unix_ns` anywhere in that hour).
pub fn process_hour_prefix(unix_ns: i64, process_id: &str) -> String {
    format!("{}{process_id}/", hour_prefix(unix_ns))
}

pub fn stream_key(process_id: &str, stream_id: &str) -> String {
    format!("{STREAMS_PREFIX}{process_id}/{stream_id}.json")
}

/// Prefix holding every block of one UTC hour (`unix_ns` anywhere in that hour).
pub fn hour_prefix(unix_ns: i64) -> String {
    let (y, m, d, h) = civil_from_unix_ns(unix_ns);
    format!("{BLOCKS_PREFIX}{y:04}-{m:02}-{d:02}/{h:02}/")
}

/// What a block key says about its block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockKey {
    pub process_id: String,
    pub kind: StreamKind,
    pub stream_id: String,
    pub block_seq: u64,
    pub begin_unix_ns: i64,
    pub end_unix_ns: i64,
    pub event_count: u32,
    /// No span ending in this block began before this time (see the module comment).
    pub earliest_unix_ns: i64,
}

impl BlockKey {
    /// The key of an encoded block of a stream: its times converted by `to_ns`, and its
    /// `earliest_unix_ns` from the begin of the outermost span open at the block's start
    /// (`open_begin_ticks`, taken before encoding), if that is earlier than the block.
    pub fn of_encoded(
        process_id: String,
        kind: StreamKind,
        stream_id: String,
        block_seq: u64,
        info: &EncodedInfo,
        open_begin_ticks: Option<u64>,
        to_ns: impl Fn(u64) -> i64,
    ) -> BlockKey {
        BlockKey {
            process_id,
            kind,
            stream_id,
            block_seq,
            begin_unix_ns: to_ns(info.begin_ticks),
            end_unix_ns: to_ns(info.end_ticks),
            event_count: info.event_count,
            earliest_unix_ns: to_ns(
                open_begin_ticks
                    .unwrap_or(info.begin_ticks)
                    .min(info.begin_ticks),
            ),
        }
    }
}

impl ProcessMeta {
    /// A time computed with `key_tsc_frequency` (a block key's), rescaled to `tsc_frequency`.
    pub fn rescale_key_ns(&self, key_ns: i64) -> i64 {
        match self.key_tsc_frequency {
            Some(key_freq) if key_freq != self.tsc_frequency && self.tsc_frequency > 0 => {
                let since_start = key_ns as i128 - self.start_unix_ns as i128;
                let rescaled = since_start * key_freq as i128 / self.tsc_frequency as i128;
                (self.start_unix_ns as i128 + rescaled).clamp(i64::MIN as i128, i64::MAX as i128)
                    as i64
            }
            _ => key_ns,
        }
    }
}

impl BlockKey {
    pub fn to_key(&self) -> String {
        format!(
            "{}{}/{}-{}/{:010}_{}_{}_{}_{}.blk",
            hour_prefix(self.begin_unix_ns),
            self.process_id,
            self.kind.as_str(),
            self.stream_id,
            self.block_seq,
            self.begin_unix_ns,
            self.end_unix_ns,
            self.event_count,
            self.earliest_unix_ns
        )
    }

    /// Parses a block key (`None` if the key is not one).
    pub fn parse(key: &str) -> Option<BlockKey> {
        let rest = key.strip_prefix(BLOCKS_PREFIX)?;
        let mut parts = rest.split('/');
        let _date = parts.next()?;
        let _hour = parts.next()?;
        let process_id = parts.next()?;
        let stream = parts.next()?;
        let file = parts.next()?.strip_suffix(".blk")?;
        if parts.next().is_some() {
            return None;
        }
        let (kind, stream_id) = stream.split_once('-')?;
        let mut fields = file.split('_');
        let block_seq = fields.next()?.parse().ok()?;
        let begin_unix_ns = fields.next()?.parse().ok()?;
        let end_unix_ns = fields.next()?.parse().ok()?;
        let event_count = fields.next()?.parse().ok()?;
        let earliest_unix_ns = fields.next()?.parse().ok()?;
        if fields.next().is_some() {
            return None;
        }
        Some(BlockKey {
            process_id: process_id.to_owned(),
            kind: StreamKind::parse(kind)?,
            stream_id: stream_id.to_owned(),
            block_seq,
            begin_unix_ns,
            end_unix_ns,
            event_count,
            earliest_unix_ns,
        })
    }
}

/// `(year, month, day, hour)` in UTC of a Unix time in nanoseconds.
pub fn civil_from_unix_ns(unix_ns: i64) -> (i64, u32, u32, u32) {
    let secs = unix_ns.div_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let hour = (secs.rem_euclid(86_400) / 3600) as u32;
    // Days since 1970-01-01 to a civil date (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day, hour)
}

#[cfg(test)]
mod tests {

    #[test]
    fn partial_writes_are_recognised() {
        let key = "blocks/2026-12-02/08/p/cpu-s/0000000002_1_2_3_1";
        let tmp = partial_write_name(key, 22155, 23);
        assert!(is_partial_write(&tmp));
        assert!(!is_partial_write(key));
        assert!(is_partial_write("processes/x.json.tmp-1-2"));
        for not_partial in ["a.tmp-", "a.tmp-1", "a.tmp-x-2", "a.tmp-1-", "a.tmp-1-2x"] {
            assert!(!is_partial_write(not_partial), "{not_partial}");
        }
    }

    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_unix_ns(0), (1970, 1, 1, 0));
        // 2026-11-25T17:19:39Z
        assert_eq!(
            civil_from_unix_ns(1_795_627_179_000_000_000),
            (2026, 11, 25, 17)
        );
        // 2000-02-29T23:59:59Z
        assert_eq!(
            civil_from_unix_ns(951_868_799_000_000_000),
            (2000, 2, 29, 23)
        );
    }

    #[test]
    fn block_keys_round_trip() {
        let key = BlockKey {
            process_id: "p1".into(),
            kind: StreamKind::Log,
            stream_id: "s1".into(),
            block_seq: 7,
            begin_unix_ns: 1_795_627_179_000_000_000,
            end_unix_ns: 1_795_627_180_000_000_000,
            event_count: 12,
            earliest_unix_ns: 1_795_627_178_000_000_000,
        };
        let text = key.to_key();
        assert_eq!(
            text,
            "blocks/2026-11-25/17/p1/log-s1/0000000007_1795627179000000000_1795627180000000000_12_1795627178000000000.blk"
        );
        assert_eq!(BlockKey::parse(&text), Some(key));
        assert_eq!(BlockKey::parse("blocks/x/y/p/cpu-s/bad.blk"), None);
    }

    #[test]
    fn catalog_keys_round_trip() {
        let key = catalog_part_key(CATALOG_PROCESSES_PREFIX, "2026-11-25", 0xabc);
        assert_eq!(
            key,
            "catalog/processes/date=2026-11-25/part-00000000000000000000000000000abc.parquet"
        );
        assert_eq!(
            date_of_catalog_part(CATALOG_PROCESSES_PREFIX, &key),
            Some("2026-11-25")
        );
        assert_eq!(date_of_catalog_part(CATALOG_STREAMS_PREFIX, &key), None);
        assert_eq!(
            date_of_catalog_part(
                CATALOG_PROCESSES_PREFIX,
                "catalog/processes/date=x/part-1.parquet"
            ),
            None
        );
        assert_eq!(
            date_of_process_key(&process_key("p", 1_795_627_179_000_000_000)),
            Some("2026-11-25")
        );
        assert_eq!(date_of_process_key("processes/2026-11-25/a/b.json"), None);
        assert_eq!(date_of_unix_ns(1_795_627_179_000_000_000), "2026-11-25");
        let summary = summary_part_key("session_frames", "2026-11-25", 7);
        assert_eq!(
            parse_summary_part_key(&summary),
            Some(("session_frames", "2026-11-25"))
        );
        assert_eq!(
            parse_summary_part_key("summaries/../date=2026-11-25/part-1.parquet"),
            None
        );
        assert_eq!(
            process_hour_prefix(1_795_627_179_000_000_000, "p"),
            "blocks/2026-11-25/17/p/"
        );
    }
}
