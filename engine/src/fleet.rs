//! The fleet: every session of a time range with its frame-time figures (from the
//! `session_frames` summary), and frame-time distributions of groups of sessions merged from
//! their histograms (`session_frame_histogram`). Typed reads for the viewer's fleet page and
//! pure functions over them (grouping, percentiles), so the page builds no SQL and the figures
//! are tested without a UI.

use crate::columns::{i64s, strings};
use crate::engine::Engine;
use crate::error::EngineError;
use datafusion::prelude::{col, lit};
use std::collections::{BTreeMap, HashMap, HashSet};

/// One session as the fleet page lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct SessionRow {
    pub process_id: String,
    pub exe: String,
    pub computer: String,
    pub username: String,
    pub start_ns: i64,
    pub end_ns: Option<i64>,
    pub properties: BTreeMap<String, String>,
    /// From the summary (`None` until the session is summarized).
    pub frames: Option<i64>,
    pub p50_ns: Option<i64>,
    pub p95_ns: Option<i64>,
    pub p99_ns: Option<i64>,
    pub max_ns: Option<i64>,
    pub spikes: Option<i64>,
    pub dropped_blocks: u64,
}

/// One histogram bucket of one session's frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistogramRow {
    /// Index into the session rows.
    pub session: usize,
    /// Upper bound of the bucket.
    pub bucket_ns: i64,
    pub frames: i64,
}

/// Frame times of a group of sessions (one value of a property).
#[derive(Clone, Debug, PartialEq)]
pub struct GroupDistribution {
    pub value: String,
    pub sessions: usize,
    pub frames: i64,
    pub p50_ns: i64,
    pub p95_ns: i64,
    pub p99_ns: i64,
    /// `(UTC day start, P99)` for each day with frames.
    pub daily_p99: Vec<(i64, i64)>,
}

const DAY_NS: i64 = 86_400 * 1_000_000_000;

/// The upper bound of the bucket holding the `q` quantile of `buckets` (`(bucket_ns, frames)`,
/// any order): the smallest bound with at least `q × total` frames at or below it.
pub fn histogram_quantile(buckets: &mut [(i64, i64)], q: f64) -> Option<i64> {
    buckets.sort_unstable();
    // Counts may come from a lake: negative ones count as zero, sums saturate.
    let total = buckets
        .iter()
        .fold(0i64, |sum, b| sum.saturating_add(b.1.max(0)));
    if total <= 0 {
        return None;
    }
    let wanted = (q * total as f64).ceil().max(1.0) as i64;
    let mut seen = 0i64;
    for &(bucket, frames) in buckets.iter() {
        seen = seen.saturating_add(frames.max(0));
        if seen >= wanted {
            return Some(bucket);
        }
    }
    buckets.last().map(|b| b.0)
}

/// Groups the sessions in `chosen` (indices into `sessions`) by the value of `property` (a
/// session without it is in the group `"(none)"`) and merges their histograms.
pub fn distribution_by(
    sessions: &[SessionRow],
    histograms: &[HistogramRow],
    chosen: &HashSet<usize>,
    property: &str,
) -> Vec<GroupDistribution> {
    let value_of = |i: usize| -> String {
        sessions[i]
            .properties
            .get(property)
            .cloned()
            .unwrap_or_else(|| "(none)".to_owned())
    };
    let mut all: BTreeMap<String, HashMap<i64, i64>> = BTreeMap::new();
    let mut daily: BTreeMap<(String, i64), HashMap<i64, i64>> = BTreeMap::new();
    let mut members: BTreeMap<String, HashSet<usize>> = BTreeMap::new();
    for row in histograms.iter().filter(|r| chosen.contains(&r.session)) {
        let value = value_of(row.session);
        let day = sessions[row.session].start_ns.div_euclid(DAY_NS) * DAY_NS;
        // Counts come from summary parts in the lake: clamped and added without overflow.
        let frames = row.frames.max(0);
        let slot = all
            .entry(value.clone())
            .or_default()
            .entry(row.bucket_ns)
            .or_default();
        *slot = slot.saturating_add(frames);
        let slot = daily
            .entry((value.clone(), day))
            .or_default()
            .entry(row.bucket_ns)
            .or_default();
        *slot = slot.saturating_add(frames);
        members.entry(value).or_default().insert(row.session);
    }
    all.into_iter()
        .map(|(value, buckets)| {
            let mut buckets: Vec<(i64, i64)> = buckets.into_iter().collect();
            let frames = buckets.iter().fold(0i64, |sum, b| sum.saturating_add(b.1));
            let daily_p99 = daily
                .iter()
                .filter(|((v, _), _)| *v == value)
                .filter_map(|((_, day), b)| {
                    let mut b: Vec<(i64, i64)> = b.iter().map(|(k, v)| (*k, *v)).collect();
                    histogram_quantile(&mut b, 0.99).map(|p| (*day, p))
                })
                .collect();
            GroupDistribution {
                sessions: members.get(&value).map_or(0, HashSet::len),
                frames,
                p50_ns: histogram_quantile(&mut buckets, 0.5).unwrap_or(0),
                p95_ns: histogram_quantile(&mut buckets, 0.95).unwrap_or(0),
                p99_ns: histogram_quantile(&mut buckets, 0.99).unwrap_or(0),
                daily_p99,
                value,
            }
        })
        .collect()
}

/// What the fleet page shows: sessions and their histograms.
#[derive(Clone, Debug, Default)]
pub struct Fleet {
    pub sessions: Vec<SessionRow>,
    pub histograms: Vec<HistogramRow>,
}

impl Engine {
    /// Every session started at or after `since_ns` (all if `None`), by start time, with its
    /// `frame` figures from the summaries, and the histograms of those frames.
    pub async fn fleet(&self, since_ns: Option<i64>) -> Result<Fleet, EngineError> {
        let lake = self.lake();
        let since_date = since_ns.map(frameline_instrument::lake::date_of_unix_ns);
        lake.load_dates(since_date.as_deref(), None).await?;
        let mut sessions: Vec<SessionRow> = lake
            .processes()
            .iter()
            .filter(|p| since_ns.is_none_or(|t| p.start_unix_ns >= t))
            .map(|p| SessionRow {
                process_id: p.process_id.clone(),
                exe: p.exe.clone(),
                computer: p.computer.clone(),
                username: p.username.clone(),
                start_ns: p.start_unix_ns,
                end_ns: p.end_unix_ns,
                properties: p.properties.clone(),
                frames: None,
                p50_ns: None,
                p95_ns: None,
                p99_ns: None,
                max_ns: None,
                spikes: None,
                dropped_blocks: p.dropped_blocks,
            })
            .collect();
        let index: HashMap<String, usize> = sessions
            .iter()
            .enumerate()
            .map(|(i, s)| (s.process_id.clone(), i))
            .collect();
        let in_range = |df: datafusion::dataframe::DataFrame| match since_ns {
            Some(t) => df.filter(col("start_time").gt_eq(lit(
                datafusion::scalar::ScalarValue::TimestampNanosecond(Some(t), Some("UTC".into())),
            ))),
            None => Ok(df),
        };
        let frames = in_range(self.context().table("session_frames").await?)?
            .filter(col("frame_set").eq(lit("frame")))?
            .select_columns(&[
                "process_id",
                "frames",
                "p50_ns",
                "p95_ns",
                "p99_ns",
                "max_ns",
                "spikes",
            ])?;
        for batch in frames.collect().await? {
            let ids = strings(&batch, "process_id")?;
            let columns: Vec<Vec<i64>> =
                ["frames", "p50_ns", "p95_ns", "p99_ns", "max_ns", "spikes"]
                    .iter()
                    .map(|c| i64s(&batch, c))
                    .collect::<Result<_, _>>()?;
            for (row, id) in ids.iter().enumerate() {
                if let Some(&i) = index.get(id) {
                    let s = &mut sessions[i];
                    s.frames = Some(columns[0][row]);
                    s.p50_ns = Some(columns[1][row]);
                    s.p95_ns = Some(columns[2][row]);
                    s.p99_ns = Some(columns[3][row]);
                    s.max_ns = Some(columns[4][row]);
                    s.spikes = Some(columns[5][row]);
                }
            }
        }
        let buckets = in_range(self.context().table("session_frame_histogram").await?)?
            .filter(col("frame_set").eq(lit("frame")))?
            .select_columns(&["process_id", "bucket_ns", "frames"])?;
        let mut histograms = Vec::new();
        for batch in buckets.collect().await? {
            let ids = strings(&batch, "process_id")?;
            let (bucket_ns, frames) = (i64s(&batch, "bucket_ns")?, i64s(&batch, "frames")?);
            for (row, id) in ids.iter().enumerate() {
                if let Some(&session) = index.get(id) {
                    histograms.push(HistogramRow {
                        session,
                        bucket_ns: bucket_ns[row],
                        frames: frames[row],
                    });
                }
            }
        }
        Ok(Fleet {
            sessions,
            histograms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_of_a_histogram() {
        let mut buckets = vec![(30, 1), (10, 90), (20, 9)];
        assert_eq!(histogram_quantile(&mut buckets, 0.5), Some(10));
        assert_eq!(histogram_quantile(&mut buckets, 0.9), Some(10));
        assert_eq!(histogram_quantile(&mut buckets, 0.95), Some(20));
        assert_eq!(histogram_quantile(&mut buckets, 0.99), Some(20));
        assert_eq!(histogram_quantile(&mut buckets, 1.0), Some(30));
        assert_eq!(histogram_quantile(&mut [], 0.5), None);
        // Counts read from a hostile part: no overflow, no panic.
        let mut hostile = vec![(10, i64::MAX), (20, i64::MAX), (30, -5)];
        assert_eq!(histogram_quantile(&mut hostile, 0.99), Some(10));
    }

    #[test]
    fn groups_merge_their_sessions_histograms() {
        let session = |build: &str, start_ns| SessionRow {
            process_id: format!("{build}-{start_ns}"),
            exe: "game".into(),
            computer: "c".into(),
            username: "u".into(),
            start_ns,
            end_ns: None,
            properties: [("build".to_owned(), build.to_owned())].into(),
            frames: None,
            p50_ns: None,
            p95_ns: None,
            p99_ns: None,
            max_ns: None,
            spikes: None,
            dropped_blocks: 0,
        };
        let sessions = vec![session("a", 0), session("a", DAY_NS), session("b", 0)];
        let h = |session, bucket_ns, frames| HistogramRow {
            session,
            bucket_ns,
            frames,
        };
        let histograms = vec![
            h(0, 10, 99),
            h(0, 50, 1),
            h(1, 10, 50),
            h(1, 90, 50),
            h(2, 20, 5),
        ];
        let all: HashSet<usize> = [0, 1, 2].into();
        let groups = distribution_by(&sessions, &histograms, &all, "build");
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].value, "a");
        assert_eq!(groups[0].sessions, 2);
        assert_eq!(groups[0].frames, 200);
        assert_eq!(groups[0].p50_ns, 10);
        assert_eq!(groups[0].p99_ns, 90);
        assert_eq!(groups[0].daily_p99, vec![(0, 10), (DAY_NS, 90)]);
        assert_eq!(groups[1].p99_ns, 20);
        let only_first: HashSet<usize> = [0].into();
        let groups = distribution_by(&sessions, &histograms, &only_first, "build");
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].p99_ns, 10);
    }
}
