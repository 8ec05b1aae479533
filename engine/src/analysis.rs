//! Analyses of the timeline's in-memory model for the viewer's panels: span statistics per name
//! (count, total, self, mean, exact percentiles, max), the aggregated call tree of a selection
//! (the flame graph, merged by call path) and its diff against another selection, and finding
//! every instance of a name. Everything reads a [`TimelineModel`]: no SQL, no UI, so it is
//! benchable on its own (`engine/benches/analysis.rs`).
//!
//! What a selection holds: for statistics, the spans that **begin** in `[begin_ns, end_ns)`
//! (whole durations, so counts equal `SELECT count(*) FROM thread_spans WHERE begin_time >= …
//! AND begin_time < …`); for the flame graph, the spans that **overlap** it, clipped to it (so a
//! parent that began before the range still holds its children, and widths add up to the range).

use crate::timeline::{Lane, TimelineModel, Track};
use std::collections::HashMap;

/// A time range on some threads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    pub begin_ns: i64,
    pub end_ns: i64,
    /// Indices into `model.tracks`; empty means every track.
    pub tracks: Vec<usize>,
}

impl Selection {
    /// Everything loaded.
    pub fn all(model: &TimelineModel) -> Selection {
        Selection {
            begin_ns: model.begin_ns,
            end_ns: model.end_ns.saturating_add(1),
            tracks: Vec::new(),
        }
    }

    fn tracks<'m>(&'m self, model: &'m TimelineModel) -> impl Iterator<Item = &'m Track> + 'm {
        let all = self.tracks.is_empty();
        model
            .tracks
            .iter()
            .enumerate()
            .filter(move |(i, _)| all || self.tracks.contains(i))
            .map(|(_, t)| t)
    }
}

/// Span names by id: call sites with the same name (different file:line) share one.
#[derive(Clone, Debug, Default)]
pub struct NameTable {
    pub names: Vec<String>,
    /// `site_name[site]` is the name id of call site `site`.
    pub site_name: Vec<u32>,
}

impl NameTable {
    pub fn new(model: &TimelineModel) -> NameTable {
        let mut ids: HashMap<&str, u32> = HashMap::new();
        let mut names = Vec::new();
        let site_name = model
            .sites
            .iter()
            .map(|s| {
                *ids.entry(s.name.as_str()).or_insert_with(|| {
                    names.push(s.name.clone());
                    (names.len() - 1) as u32
                })
            })
            .collect();
        NameTable { names, site_name }
    }

    fn of(&self, site: u32) -> u32 {
        self.site_name.get(site as usize).copied().unwrap_or(0)
    }

    pub fn id(&self, name: &str) -> Option<u32> {
        self.names.iter().position(|n| n == name).map(|i| i as u32)
    }
}

/// Statistics of one span name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NameStats {
    pub name: String,
    pub count: u64,
    pub total_ns: i64,
    /// Total minus the time spent in direct children.
    pub self_ns: i64,
    pub mean_ns: f64,
    pub p50_ns: i64,
    pub p90_ns: i64,
    pub p99_ns: i64,
    pub max_ns: i64,
    /// Every duration, for the histogram (in no particular order); a uniform sample of them
    /// when `approximate`.
    pub durations_ns: Vec<i64>,
    /// Percentiles from a sketch (within 1.1 %), not exact: a range of more spans than
    /// `range_stats::EXACT_DURATIONS` folded by the engine.
    pub approximate: bool,
}

/// The index of the `p`-th percentile in a sorted list of `n` values (nearest rank).
pub(crate) fn rank(n: usize, p: f64) -> usize {
    ((p * n as f64).ceil() as usize).clamp(1, n) - 1
}

/// P50, P90 and P99 of `d` (nearest rank; `d` is reordered, not sorted), 0 when empty.
pub(crate) fn percentiles(d: &mut [i64]) -> (i64, i64, i64) {
    let n = d.len();
    if n == 0 {
        return (0, 0, 0);
    }
    // Largest rank first: each later selection only looks at the part before it.
    let i99 = rank(n, 0.99);
    let p99 = *d.select_nth_unstable(i99).1;
    let i90 = rank(n, 0.90);
    let p90 = *d[..=i99].select_nth_unstable(i90).1;
    let i50 = rank(n, 0.50);
    let p50 = *d[..=i90].select_nth_unstable(i50).1;
    (p50, p90, p99)
}

/// Span statistics per name over `selection`, sorted by total time (largest first).
/// Percentiles are exact: nearest rank, found with `select_nth_unstable`.
pub fn span_stats(model: &TimelineModel, selection: &Selection) -> Vec<NameStats> {
    let names = NameTable::new(model);
    let mut durations: Vec<Vec<i64>> = vec![Vec::new(); names.names.len()];
    let mut self_ns: Vec<i64> = vec![0; names.names.len()];
    let (t0, t1) = (selection.begin_ns, selection.end_ns);
    for track in selection.tracks(model) {
        for (depth, lane) in track.lanes.iter().enumerate() {
            let first = lane.begin_ns.partition_point(|&b| b < t0);
            let last = lane.begin_ns.partition_point(|&b| b < t1);
            let children = track.lanes.get(depth + 1);
            // Children are sorted and never overlap: one cursor walks them for the whole lane.
            let mut c = children.map_or(0, |ch| ch.begin_ns.partition_point(|&b| b < t0));
            for i in first..last {
                let (b, e) = (lane.begin_ns[i], lane.end_ns[i]);
                let name = names.of(lane.name[i]) as usize;
                durations[name].push(e.saturating_sub(b));
                let mut inner = 0i64;
                if let Some(ch) = children {
                    while c < ch.len() && ch.begin_ns[c] < b {
                        c += 1;
                    }
                    while c < ch.len() && ch.begin_ns[c] <= e {
                        inner = inner
                            .saturating_add(ch.end_ns[c].min(e).saturating_sub(ch.begin_ns[c]));
                        c += 1;
                    }
                }
                self_ns[name] =
                    self_ns[name].saturating_add(e.saturating_sub(b).saturating_sub(inner));
            }
        }
    }
    let mut out: Vec<NameStats> = durations
        .into_iter()
        .enumerate()
        .filter(|(_, d)| !d.is_empty())
        .map(|(id, mut d)| {
            let n = d.len();
            let total = d.iter().fold(0i64, |sum, &x| sum.saturating_add(x));
            let max = d.iter().copied().max().unwrap_or(0);
            let (p50, p90, p99) = percentiles(&mut d);
            NameStats {
                name: names.names[id].clone(),
                count: n as u64,
                total_ns: total,
                self_ns: self_ns[id],
                mean_ns: total as f64 / n as f64,
                p50_ns: p50,
                p90_ns: p90,
                p99_ns: p99,
                max_ns: max,
                durations_ns: d,
                approximate: false,
            }
        })
        .collect();
    out.sort_by(|a, b| b.total_ns.cmp(&a.total_ns).then(a.name.cmp(&b.name)));
    out
}

/// One node of the aggregated call tree.
#[derive(Clone, Debug, PartialEq)]
pub struct FlameNode {
    /// Name id in [`FlameGraph::names`]; the root's name is `"selection"`.
    pub name: u32,
    pub parent: Option<u32>,
    pub depth: u32,
    pub total_ns: i64,
    pub self_ns: i64,
    pub calls: u64,
    pub children: Vec<u32>,
}

/// The call tree of a selection, merged by call path: node 0 is the root (the whole selection,
/// its total the sum of the top-level spans).
#[derive(Clone, Debug, Default)]
pub struct FlameGraph {
    pub nodes: Vec<FlameNode>,
    pub names: Vec<String>,
}

impl FlameGraph {
    /// Builds the flame graph of `selection`. O(spans in the range): each lane is walked once,
    /// with one cursor into its parent lane.
    pub fn build(model: &TimelineModel, selection: &Selection) -> FlameGraph {
        let table = NameTable::new(model);
        let mut names = table.names.clone();
        names.push("selection".to_owned());
        let root_name = (names.len() - 1) as u32;
        let mut nodes = vec![FlameNode {
            name: root_name,
            parent: None,
            depth: 0,
            total_ns: 0,
            self_ns: 0,
            calls: 1,
            children: Vec::new(),
        }];
        let (t0, t1) = (selection.begin_ns, selection.end_ns);
        // Per lane: the node of each span in the selected range (parallel to `range`).
        let mut parent_nodes: Vec<u32> = Vec::new();
        let mut nodes_here: Vec<u32> = Vec::new();
        for track in selection.tracks(model) {
            let mut parent_range = 0..0;
            let mut parent_lane: Option<&Lane> = None;
            for lane in &track.lanes {
                // Spans overlapping [t0, t1): ends are sorted too.
                let first = lane.end_ns.partition_point(|&e| e <= t0);
                let last = lane.begin_ns.partition_point(|&b| b < t1);
                let range = first..last.max(first);
                nodes_here.clear();
                let mut p = parent_range.start;
                for i in range.clone() {
                    let (b, e) = (lane.begin_ns[i].max(t0), lane.end_ns[i].min(t1));
                    let duration = e.saturating_sub(b).max(0);
                    let parent = match parent_lane {
                        None => 0,
                        Some(pl) => {
                            let begin = lane.begin_ns[i];
                            while p < parent_range.end && pl.end_ns[p] < begin {
                                p += 1;
                            }
                            if p < parent_range.end && pl.begin_ns[p] <= begin {
                                parent_nodes[p - parent_range.start]
                            } else {
                                0
                            }
                        }
                    };
                    let name = table.of(lane.name[i]);
                    let found = nodes[parent as usize]
                        .children
                        .iter()
                        .copied()
                        .find(|&c| nodes[c as usize].name == name);
                    let node = match found {
                        Some(c) => c,
                        None => {
                            let depth = nodes[parent as usize].depth + 1;
                            nodes.push(FlameNode {
                                name,
                                parent: Some(parent),
                                depth,
                                total_ns: 0,
                                self_ns: 0,
                                calls: 0,
                                children: Vec::new(),
                            });
                            let id = (nodes.len() - 1) as u32;
                            nodes[parent as usize].children.push(id);
                            id
                        }
                    };
                    let n = &mut nodes[node as usize];
                    n.total_ns = n.total_ns.saturating_add(duration);
                    n.self_ns = n.self_ns.saturating_add(duration);
                    n.calls += 1;
                    if parent == 0 {
                        nodes[0].total_ns = nodes[0].total_ns.saturating_add(duration);
                    } else {
                        let parent = &mut nodes[parent as usize];
                        parent.self_ns = parent.self_ns.saturating_sub(duration);
                    }
                    nodes_here.push(node);
                }
                std::mem::swap(&mut parent_nodes, &mut nodes_here);
                parent_range = range;
                parent_lane = Some(lane);
            }
        }
        // Widest first: the order a flame graph draws children in.
        for i in 0..nodes.len() {
            let mut children = std::mem::take(&mut nodes[i].children);
            children.sort_by(|&a, &b| {
                nodes[b as usize]
                    .total_ns
                    .cmp(&nodes[a as usize].total_ns)
                    .then(a.cmp(&b))
            });
            nodes[i].children = children;
        }
        FlameGraph { nodes, names }
    }

    pub fn root(&self) -> &FlameNode {
        &self.nodes[0]
    }

    pub fn name(&self, node: u32) -> &str {
        self.nodes
            .get(node as usize)
            .and_then(|n| self.names.get(n.name as usize))
            .map_or("?", String::as_str)
    }

    /// The names from the root's child down to `node`.
    pub fn path(&self, node: u32) -> Vec<&str> {
        let mut path = Vec::new();
        let mut at = Some(node);
        while let Some(n) = at.filter(|&n| n != 0) {
            path.push(self.name(n));
            at = self.nodes.get(n as usize).and_then(|n| n.parent);
        }
        path.reverse();
        path
    }

    /// The node at a call path (names from the root's child down), if present.
    pub fn find_path(&self, path: &[&str]) -> Option<u32> {
        let mut at = 0u32;
        for name in path {
            at = self.nodes[at as usize]
                .children
                .iter()
                .copied()
                .find(|&c| self.name(c) == *name)?;
        }
        Some(at)
    }

    /// Per node of `self`: the node of `baseline` at the same call path, if any.
    pub fn matched_in(&self, baseline: &FlameGraph) -> Vec<Option<u32>> {
        let mut matched: Vec<Option<u32>> = vec![None; self.nodes.len()];
        if let Some(root) = matched.first_mut() {
            *root = (!baseline.nodes.is_empty()).then_some(0);
        }
        // Parents come before children in `nodes`.
        for (i, node) in self.nodes.iter().enumerate().skip(1) {
            if let Some(parent) = node.parent
                && let Some(bp) = matched[parent as usize]
            {
                let name = self.name(i as u32);
                matched[i] = baseline.nodes[bp as usize]
                    .children
                    .iter()
                    .copied()
                    .find(|&c| baseline.name(c) == name);
            }
        }
        matched
    }

    /// Per node of `self`: its total minus the total of the same call path in `baseline`
    /// (a path missing from the baseline counts as 0 there).
    pub fn diff_ns(&self, baseline: &FlameGraph) -> Vec<i64> {
        self.matched_in(baseline)
            .iter()
            .zip(&self.nodes)
            .map(|(m, node)| {
                node.total_ns
                    .saturating_sub(m.map_or(0, |b| baseline.nodes[b as usize].total_ns))
            })
            .collect()
    }
}

/// A span in the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SpanAt {
    pub track: usize,
    pub depth: usize,
    pub index: usize,
}

/// Every span whose name equals `name` (or contains it, if `substring`), in time order.
pub fn find_instances(model: &TimelineModel, name: &str, substring: bool) -> Vec<SpanAt> {
    let needle = name.to_lowercase();
    let matching: Vec<bool> = model
        .sites
        .iter()
        .map(|s| {
            if substring {
                s.name.to_lowercase().contains(&needle)
            } else {
                s.name == name
            }
        })
        .collect();
    let mut out: Vec<(i64, SpanAt)> = Vec::new();
    for (t, track) in model.tracks.iter().enumerate() {
        for (d, lane) in track.lanes.iter().enumerate() {
            for (i, &site) in lane.name.iter().enumerate() {
                if matching.get(site as usize).copied().unwrap_or(false) {
                    out.push((
                        lane.begin_ns[i],
                        SpanAt {
                            track: t,
                            depth: d,
                            index: i,
                        },
                    ));
                }
            }
        }
    }
    out.sort_by_key(|(b, s)| (*b, s.track, s.depth));
    out.into_iter().map(|(_, s)| s).collect()
}

/// A synthetic model for tests and benchmarks: `threads` tracks of `frames` frames each lasting
/// `frame_ns`; every frame is a `frame` span holding `per_frame` children named `work.{i % 8}`,
/// every other child holding one `inner` grandchild. Spans = threads × frames × (1 + 1.5 ×
/// per_frame).
pub fn synthetic_model(
    threads: usize,
    frames: usize,
    per_frame: usize,
    frame_ns: i64,
) -> TimelineModel {
    use crate::timeline::SpanSite;
    let site = |name: &str| SpanSite {
        name: name.to_owned(),
        file: "synthetic.rs".to_owned(),
        line: 1,
    };
    let mut sites = vec![site("frame"), site("inner")];
    for i in 0..8 {
        sites.push(site(&format!("work.{i}")));
    }
    let slot = frame_ns / (per_frame.max(1) as i64 + 1);
    let mut tracks = Vec::new();
    for t in 0..threads {
        let mut lanes = vec![Lane::default(), Lane::default(), Lane::default()];
        for f in 0..frames as i64 {
            let fb = f * frame_ns;
            lanes[0].begin_ns.push(fb);
            lanes[0].end_ns.push(fb + frame_ns - 1);
            lanes[0].name.push(0);
            for i in 0..per_frame as i64 {
                let b = fb + i * slot + 1;
                // Durations vary so percentiles differ from the mean.
                let len = slot / 2 + (i * 7 + f * 13) % (slot / 2).max(1);
                lanes[1].begin_ns.push(b);
                lanes[1].end_ns.push(b + len);
                lanes[1].name.push(2 + (i % 8) as u32);
                if i % 2 == 0 {
                    lanes[2].begin_ns.push(b + 1);
                    lanes[2].end_ns.push(b + 1 + len / 3);
                    lanes[2].name.push(1);
                }
            }
        }
        tracks.push(Track {
            process_id: "synthetic".to_owned(),
            stream_id: format!("stream-{t}"),
            thread_name: format!("thread-{t}"),
            lanes,
        });
    }
    TimelineModel {
        tracks,
        sites,
        begin_ns: 0,
        end_ns: frames as i64 * frame_ns,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::SpanSite;

    /// One thread: a (0..100) with children b (10..30) and c (40..90); c holds d (50..60).
    /// Then a again (200..250) holding b (210..220).
    fn model() -> TimelineModel {
        let sites = ["a", "b", "c", "d"]
            .iter()
            .map(|n| SpanSite {
                name: (*n).to_owned(),
                file: "x.rs".into(),
                line: 1,
            })
            .collect();
        let lane = |spans: &[(i64, i64, u32)]| Lane {
            begin_ns: spans.iter().map(|s| s.0).collect(),
            end_ns: spans.iter().map(|s| s.1).collect(),
            name: spans.iter().map(|s| s.2).collect(),
            count: Vec::new(),
        };
        TimelineModel {
            tracks: vec![Track {
                process_id: "p".into(),
                stream_id: "s".into(),
                thread_name: "main".into(),
                lanes: vec![
                    lane(&[(0, 100, 0), (200, 250, 0)]),
                    lane(&[(10, 30, 1), (40, 90, 2), (210, 220, 1)]),
                    lane(&[(50, 60, 3)]),
                ],
            }],
            sites,
            begin_ns: 0,
            end_ns: 250,
        }
    }

    #[test]
    fn statistics_count_total_self_and_percentiles() {
        let m = model();
        let stats = span_stats(&m, &Selection::all(&m));
        let a = stats.iter().find(|s| s.name == "a").unwrap();
        assert_eq!(
            (a.count, a.total_ns, a.self_ns, a.max_ns),
            (2, 150, 150 - 70 - 10, 100)
        );
        assert_eq!((a.p50_ns, a.p90_ns, a.p99_ns), (50, 100, 100));
        let c = stats.iter().find(|s| s.name == "c").unwrap();
        assert_eq!((c.count, c.total_ns, c.self_ns), (1, 50, 40));
        assert_eq!(stats[0].name, "a", "sorted by total");
        // Only spans beginning in [0, 100): the second a and its b are out.
        let first = span_stats(
            &m,
            &Selection {
                begin_ns: 0,
                end_ns: 100,
                tracks: vec![],
            },
        );
        let b = first.iter().find(|s| s.name == "b").unwrap();
        assert_eq!((b.count, b.total_ns), (1, 20));
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut d: Vec<i64> = (1..=100).collect();
        d.reverse();
        assert_eq!(rank(100, 0.5), 49);
        assert_eq!(rank(100, 0.99), 98);
        assert_eq!(rank(1, 0.99), 0);
        let i = rank(100, 0.9);
        assert_eq!(*d.select_nth_unstable(i).1, 90);
    }

    #[test]
    fn flame_graph_merges_call_paths() {
        let m = model();
        let g = FlameGraph::build(&m, &Selection::all(&m));
        assert_eq!(g.root().total_ns, 150);
        let a = g.find_path(&["a"]).unwrap();
        let node = &g.nodes[a as usize];
        assert_eq!((node.total_ns, node.self_ns, node.calls), (150, 70, 2));
        let ab = g.find_path(&["a", "b"]).unwrap();
        assert_eq!(
            (g.nodes[ab as usize].total_ns, g.nodes[ab as usize].calls),
            (30, 2)
        );
        let acd = g.find_path(&["a", "c", "d"]).unwrap();
        assert_eq!(g.nodes[acd as usize].total_ns, 10);
        assert_eq!(g.path(acd), vec!["a", "c", "d"]);
        // Widest child first.
        assert_eq!(g.name(node.children[0]), "c");
        // Clipped to the range: [45, 215) keeps 55 of the first a and 15 of the second.
        let clipped = FlameGraph::build(
            &m,
            &Selection {
                begin_ns: 45,
                end_ns: 215,
                tracks: vec![0],
            },
        );
        let a = clipped.find_path(&["a"]).unwrap();
        assert_eq!(clipped.nodes[a as usize].total_ns, 55 + 15);
        let ac = clipped.find_path(&["a", "c"]).unwrap();
        assert_eq!(clipped.nodes[ac as usize].total_ns, 45);
        let ab = clipped.find_path(&["a", "b"]).unwrap();
        assert_eq!(clipped.nodes[ab as usize].total_ns, 5);
    }

    #[test]
    fn diff_against_a_baseline() {
        let m = model();
        let first = FlameGraph::build(
            &m,
            &Selection {
                begin_ns: 0,
                end_ns: 100,
                tracks: vec![],
            },
        );
        let second = FlameGraph::build(
            &m,
            &Selection {
                begin_ns: 200,
                end_ns: 250,
                tracks: vec![],
            },
        );
        let diff = first.diff_ns(&second);
        let a = first.find_path(&["a"]).unwrap() as usize;
        assert_eq!(diff[a], 100 - 50);
        let ac = first.find_path(&["a", "c"]).unwrap() as usize;
        assert_eq!(diff[ac], 50, "absent from the baseline");
        let ab = first.find_path(&["a", "b"]).unwrap() as usize;
        assert_eq!(diff[ab], 20 - 10);
    }

    #[test]
    fn instances_in_time_order() {
        let m = model();
        let b = find_instances(&m, "b", false);
        assert_eq!(b.len(), 2);
        assert!(b[0].index == 0 && b[1].index == 2 && b[0].depth == 1);
        assert_eq!(find_instances(&m, "A", true).len(), 2);
        assert!(find_instances(&m, "zz", true).is_empty());
    }

    #[test]
    fn synthetic_model_has_the_documented_size() {
        let m = synthetic_model(2, 10, 8, 1_000_000);
        assert_eq!(m.span_count(), 2 * 10 * (1 + 8 + 4));
        let stats = span_stats(&m, &Selection::all(&m));
        assert_eq!(
            stats.iter().map(|s| s.count).sum::<u64>(),
            m.span_count() as u64
        );
        let g = FlameGraph::build(&m, &Selection::all(&m));
        assert_eq!(
            g.find_path(&["frame"]).map(|f| g.nodes[f as usize].calls),
            Some(20)
        );
    }
}
