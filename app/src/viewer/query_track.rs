//! A query's spans as a timeline track ("Add to timeline" in the SQL panel): packed into as
//! many lanes as they need not to overlap.

use super::{LakeView, sql};
use frameline_engine::timeline::{Lane, SpanSite, Track};
use std::collections::BTreeMap;

impl LakeView {
    /// Adds a query's spans to the timeline as their own track (under a "query results"
    /// process), in as many lanes as they need to not overlap.
    pub fn add_query_track(&mut self, track: sql::QueryTrack) {
        let Some(mut shared) = self.model.take() else {
            return;
        };
        let model = std::sync::Arc::make_mut(&mut shared);
        let mut spans = track.spans;
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
            thread_name: track.label,
            lanes,
        });
        self.set_model(shared);
        self.process_labels
            .insert("query results".into(), "Query results".into());
    }
}
