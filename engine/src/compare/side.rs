//! One side of a comparison: what a developer names (`LAKE#selector@range`), the processes it
//! resolves to, and what is loaded for them (frames and spans).
//!
//! ```text
//! caps/nightly                       every process of the lake
//! caps/nightly#3f2a9c1e              one process (an id or a unique prefix), or several: #a,b
//! s3://studio/lake#build=a           the processes whose properties match (all pairs must);
//! s3://studio/lake#build='a',map=x   exe, computer, user and os match too
//! caps/run#3f2a9c1e@2s..5.5s         a time range, from the earliest start of those processes
//! ```
//! Without a lake (`#build=a`), the side is in the lake already open (the viewer's case).

use super::CompareError;
use crate::reads::FrameTime;
use crate::timeline::TimelineModel;
use crate::{Engine, Progress};
use frameline_instrument::lake::ProcessMeta;
use std::sync::Arc;

/// Which processes of a lake.
#[derive(Clone, Debug, PartialEq)]
pub enum Selector {
    All,
    /// Process ids, or unique prefixes of them.
    Processes(Vec<String>),
    /// `key = value` pairs, every one of which must match.
    Properties(Vec<(String, String)>),
}

/// One side as the developer named it.
#[derive(Clone, Debug, PartialEq)]
pub struct SideSpec {
    /// `None`: the lake already open.
    pub lake: Option<String>,
    pub selector: Selector,
    /// Seconds from the earliest start of the selected processes.
    pub range_s: Option<(f64, f64)>,
}

/// Longest spec accepted (a command line or a text field, never lake data).
const MAX_SPEC_BYTES: usize = 4096;

fn bad(spec: &str, reason: impl Into<String>) -> CompareError {
    CompareError::BadSpec {
        spec: spec.to_owned(),
        reason: reason.into(),
    }
}

/// `2`, `2s`, `2.5s`, `300ms`, `40us`: seconds.
fn parse_seconds(spec: &str, text: &str) -> Result<f64, CompareError> {
    let text = text.trim();
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = text.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else {
        (text, 1.0)
    };
    match number.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v * scale),
        _ => Err(bad(
            spec,
            format!("`{text}` is not a time (e.g. 2.5s or 300ms)"),
        )),
    }
}

fn unquote(text: &str) -> &str {
    let t = text.trim();
    for q in ['\'', '"'] {
        if let Some(inner) = t.strip_prefix(q).and_then(|t| t.strip_suffix(q)) {
            return inner;
        }
    }
    t
}

impl std::str::FromStr for SideSpec {
    type Err = CompareError;

    fn from_str(spec: &str) -> Result<SideSpec, CompareError> {
        if spec.len() > MAX_SPEC_BYTES {
            let start: String = spec.chars().take(64).collect();
            return Err(bad(&start, "longer than 4 KiB"));
        }
        let (lake, rest) = match spec.split_once('#') {
            Some((lake, rest)) => (lake.trim(), rest),
            None => (spec.trim(), ""),
        };
        let lake = (!lake.is_empty()).then(|| lake.to_owned());
        let (selector_text, range_text) = match rest.rsplit_once('@') {
            Some((s, r)) if r.contains("..") => (s.trim(), Some(r)),
            _ => (rest.trim(), None),
        };
        let range_s = match range_text {
            None => None,
            Some(r) => {
                let (from, to) = r.split_once("..").unwrap_or((r, ""));
                let (from, to) = (parse_seconds(spec, from)?, parse_seconds(spec, to)?);
                if to <= from {
                    return Err(bad(spec, "the range ends before it begins"));
                }
                Some((from, to))
            }
        };
        let selector = if selector_text.is_empty() {
            Selector::All
        } else if selector_text.contains('=') {
            let mut pairs = Vec::new();
            let normalized = selector_text.replace(" AND ", ",").replace(" and ", ",");
            for pair in normalized.split(',').filter(|p| !p.trim().is_empty()) {
                let Some((key, value)) = pair.split_once('=') else {
                    return Err(bad(spec, format!("`{pair}` is not key=value")));
                };
                let key = unquote(key);
                if key.is_empty() {
                    return Err(bad(spec, format!("`{pair}` has no property name")));
                }
                pairs.push((key.to_owned(), unquote(value).to_owned()));
            }
            Selector::Properties(pairs)
        } else {
            Selector::Processes(
                selector_text
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect(),
            )
        };
        if lake.is_none() && selector == Selector::All && range_s.is_none() && !spec.is_empty() {
            return Err(bad(spec, "names no lake and no processes"));
        }
        Ok(SideSpec {
            lake,
            selector,
            range_s,
        })
    }
}

impl std::fmt::Display for SideSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(lake) = &self.lake {
            write!(f, "{lake}")?;
        }
        match &self.selector {
            Selector::All if self.range_s.is_some() => write!(f, "#")?,
            Selector::All => {}
            Selector::Processes(ids) => write!(f, "#{}", ids.join(","))?,
            Selector::Properties(pairs) => {
                let pairs: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
                write!(f, "#{}", pairs.join(","))?
            }
        }
        if let Some((from, to)) = self.range_s {
            write!(f, "@{from}s..{to}s")?;
        }
        Ok(())
    }
}

/// The value of `key` for a process: a property, or one of its descriptive fields.
fn field<'p>(process: &'p ProcessMeta, key: &str) -> Option<&'p str> {
    if let Some(value) = process.properties.get(key) {
        return Some(value);
    }
    match key {
        "exe" => Some(&process.exe),
        "computer" => Some(&process.computer),
        "user" | "username" => Some(&process.username),
        "os" => Some(&process.os),
        "process_id" => Some(&process.process_id),
        _ => None,
    }
}

impl SideSpec {
    /// The processes of `processes` this side selects, in start order.
    pub fn resolve(&self, processes: &[ProcessMeta]) -> Result<Vec<ProcessMeta>, CompareError> {
        let spec = self.to_string();
        let chosen: Vec<ProcessMeta> = match &self.selector {
            Selector::All => processes.to_vec(),
            Selector::Processes(ids) => {
                let mut chosen = Vec::new();
                for id in ids {
                    let matching: Vec<&ProcessMeta> = processes
                        .iter()
                        .filter(|p| p.process_id.starts_with(id.as_str()))
                        .collect();
                    let exact = matching.iter().find(|p| p.process_id == *id);
                    match (exact, matching.as_slice()) {
                        (Some(p), _) | (None, [p]) => chosen.push((*p).clone()),
                        (None, []) => return Err(bad(&spec, format!("no process `{id}`"))),
                        (None, _) => {
                            return Err(bad(
                                &spec,
                                format!("`{id}` matches {} processes", matching.len()),
                            ));
                        }
                    }
                }
                chosen
            }
            Selector::Properties(pairs) => processes
                .iter()
                .filter(|p| pairs.iter().all(|(k, v)| field(p, k) == Some(v.as_str())))
                .cloned()
                .collect(),
        };
        if chosen.is_empty() {
            return Err(CompareError::NoProcesses { spec });
        }
        let mut chosen = chosen;
        chosen.sort_by(|a, b| {
            (a.start_unix_ns, &a.process_id).cmp(&(b.start_unix_ns, &b.process_id))
        });
        chosen.dedup_by(|a, b| a.process_id == b.process_id);
        Ok(chosen)
    }
}

/// The frames of one process, in time order.
#[derive(Clone, Debug, Default)]
pub struct ProcessFrames {
    pub process_id: String,
    pub frames: Vec<FrameTime>,
}

/// A side, loaded: its processes' frames and spans (within its range).
#[derive(Clone, Debug)]
pub struct Side {
    pub spec: SideSpec,
    /// What the side is called on screen: the spec, and how many processes it holds.
    pub label: String,
    pub process_ids: Vec<String>,
    /// Absolute (unix ns) range, when the spec had one: frames and spans that begin in it.
    pub range_ns: Option<(i64, i64)>,
    pub frames: Vec<ProcessFrames>,
    pub model: Arc<TimelineModel>,
}

impl Side {
    /// Frames of this side, every process.
    pub fn frame_count(&self) -> usize {
        self.frames.iter().map(|p| p.frames.len()).sum()
    }
}

/// Loads `spec` from `engine` (its lake must be the one the spec names): frames of `frame_set`
/// and every span, for the processes and range it selects.
pub async fn load_side(
    engine: &Engine,
    spec: &SideSpec,
    frame_set: &str,
    progress: &Progress,
) -> Result<Side, CompareError> {
    let processes = spec.resolve(&engine.lake().processes())?;
    let process_ids: Vec<String> = processes.iter().map(|p| p.process_id.clone()).collect();
    let origin_ns = processes.iter().map(|p| p.start_unix_ns).min().unwrap_or(0);
    let range_ns = spec.range_s.map(|(from, to)| {
        (
            origin_ns.saturating_add((from * 1e9) as i64),
            origin_ns.saturating_add((to * 1e9) as i64),
        )
    });
    let (frames, model) = futures::join!(
        engine.frame_times_by_process(&process_ids, frame_set),
        engine.load_timeline(&process_ids, range_ns, progress)
    );
    let (frames, model) = (frames?, model?);
    let mut by_process: Vec<ProcessFrames> = process_ids
        .iter()
        .map(|id| ProcessFrames {
            process_id: id.clone(),
            frames: Vec::new(),
        })
        .collect();
    // A side may hold thousands of processes (a build's sessions): one lookup per frame.
    let slot_of: std::collections::HashMap<&str, usize> = process_ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    for (process_id, frame) in frames {
        if let Some((from, to)) = range_ns
            && (frame.begin_ns < from || frame.begin_ns >= to)
        {
            continue;
        }
        if let Some(slot) = slot_of
            .get(process_id.as_str())
            .and_then(|&i| by_process.get_mut(i))
        {
            slot.frames.push(frame);
        }
    }
    for p in &mut by_process {
        p.frames.sort_by_key(|f| f.begin_ns);
    }
    let count = process_ids.len();
    let label = format!(
        "{spec} ({count} process{})",
        if count == 1 { "" } else { "es" }
    );
    Ok(Side {
        spec: spec.clone(),
        label,
        process_ids,
        range_ns,
        frames: by_process,
        model: Arc::new(model),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> SideSpec {
        text.parse().unwrap()
    }

    #[test]
    fn specs_parse_and_print() {
        assert_eq!(
            parse("caps/a"),
            SideSpec {
                lake: Some("caps/a".into()),
                selector: Selector::All,
                range_s: None
            }
        );
        let s = parse("s3://b/lake#build = 'a' and map=x");
        assert_eq!(s.lake.as_deref(), Some("s3://b/lake"));
        assert_eq!(
            s.selector,
            Selector::Properties(vec![
                ("build".into(), "a".into()),
                ("map".into(), "x".into())
            ])
        );
        let s = parse("caps/a#3f2a,77@2s..5500ms");
        assert_eq!(
            s.selector,
            Selector::Processes(vec!["3f2a".into(), "77".into()])
        );
        assert_eq!(s.range_s, Some((2.0, 5.5)));
        assert_eq!(s.to_string(), "caps/a#3f2a,77@2s..5.5s");
        assert_eq!(parse("#build=b").lake, None);
        for wrong in [
            "caps#a@5s..2s",
            "caps#a@x..2",
            "caps#=a",
            "caps#build=a,oops",
        ] {
            assert!(wrong.parse::<SideSpec>().is_err(), "{wrong}");
        }
    }

    fn process(id: &str, start: i64, build: &str) -> ProcessMeta {
        let mut p: ProcessMeta = serde_json::from_str(&format!(
            r#"{{"process_id":"{id}","exe":"game","username":"u","computer":"c","os":"linux",
               "cpu_brand":"x","tsc_frequency":1000,"start_ticks":0,"start_unix_ns":{start}}}"#
        ))
        .unwrap();
        p.properties.insert("build".into(), build.into());
        p
    }

    #[test]
    fn selectors_resolve() {
        let all = vec![
            process("aa11", 30, "b"),
            process("aa22", 10, "a"),
            process("bb33", 20, "a"),
        ];
        let ids = |spec: &str| -> Vec<String> {
            parse(spec)
                .resolve(&all)
                .unwrap()
                .into_iter()
                .map(|p| p.process_id)
                .collect()
        };
        assert_eq!(ids("l"), ["aa22", "bb33", "aa11"]);
        assert_eq!(ids("l#build=a"), ["aa22", "bb33"]);
        assert_eq!(ids("l#build=a,exe=game"), ["aa22", "bb33"]);
        assert_eq!(ids("l#bb"), ["bb33"]);
        assert_eq!(ids("l#aa11,bb33"), ["bb33", "aa11"]);
        assert!(matches!(
            parse("l#aa").resolve(&all),
            Err(CompareError::BadSpec { .. })
        ));
        assert!(matches!(
            parse("l#build=c").resolve(&all),
            Err(CompareError::NoProcesses { .. })
        ));
        assert!(matches!(
            parse("l#zz").resolve(&all),
            Err(CompareError::BadSpec { .. })
        ));
    }
}
