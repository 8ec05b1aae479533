//! A query's spans as a timeline track ("Add to timeline" in the SQL panel): packed into as
//! many lanes as they need not to overlap.

use super::sql;
use frameline_engine::timeline::{Lane, SpanSite, TimelineModel, Track};
use std::collections::BTreeMap;

/// Adds `track`'s spans to `model` as their own track (under a "query results" process), in as
/// many lanes as they need to not overlap.
pub fn add_track(model: &mut TimelineModel, track: &sql::QueryTrack) {
    let mut spans = track.spans.clone();
    spans.sort_by_key(|s| (s.0, s.1));
    let mut lanes: Vec<Lane> = Vec::new();
    let mut site_ids: BTreeMap<String, u32> = BTreeMap::new();
    for (b, e, name) in spans {
        let site = *site_ids.entry(name.clone()).or_insert_with(|| {
            model.sites.push(SpanSite {
                name,
                file: "query".into(),
                line: 0,
            });
            (model.sites.len() - 1) as u32
        });
        let lane = match lanes
            .iter()
            .position(|l| l.end_ns.last().is_none_or(|&x| x <= b))
        {
            Some(i) => i,
            None => {
                lanes.push(Lane::default());
                lanes.len() - 1
            }
        };
        lanes[lane].begin_ns.push(b);
        lanes[lane].end_ns.push(e);
        lanes[lane].name.push(site);
    }
    model.tracks.push(Track {
        process_id: "query results".into(),
        stream_id: format!("query-{}", model.tracks.len()),
        thread_name: track.label.clone(),
        lanes,
    });
}
