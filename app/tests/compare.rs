//! `frameline compare` on real demo captures: a normal run against one with `physics.solve`
//! slowed 3 times (the regression), against itself, and against a second normal run (the
//! noise). The runs are recorded one after the other, each alone on the machine (the other
//! tests of this binary wait for them): recorded at the same time, three CPU-bound debug games
//! on two cores made the scheduler favour one process over another for seconds at a time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod viewer_common;

use common::frameline;
use egui_kittest::kittest::Queryable as _;
use frameline::viewer::{Page, Startup};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use viewer_common::{harness, loaded, run_until};

/// `lake_a` holds a normal run (build=a) and a slowed one (build=b); `lake_b` a second normal run.
struct Captures {
    lake_a: PathBuf,
    lake_b: PathBuf,
}

fn captures() -> &'static Captures {
    static CAPTURES: OnceLock<Captures> = OnceLock::new();
    CAPTURES.get_or_init(|| {
        let root = tempfile::tempdir().unwrap().keep();
        let (lake_a, lake_b) = (root.join("a"), root.join("b"));
        let runs: [(&PathBuf, &[&str]); 3] = [
            (&lake_a, &["--property", "build=a"]),
            (
                &lake_a,
                &["--property", "build=b", "--slow", "physics.solve=3"],
            ),
            (&lake_b, &["--property", "build=a"]),
        ];
        for (lake, extra) in runs {
            let status = Command::new(env!("CARGO_BIN_EXE_frameline"))
                .args(["demo", "--out", lake.to_str().unwrap(), "--seconds", "4"])
                .args(["--threads", "1"])
                .args(extra)
                .stdout(std::process::Stdio::null())
                .status()
                .unwrap();
            assert!(status.success());
        }
        Captures { lake_a, lake_b }
    })
}

fn side(lake: &std::path::Path, selector: &str) -> String {
    format!("{}{selector}", lake.display())
}

/// Runs `frameline compare … --format json`: exit code, the JSON, standard error.
fn compare_json(
    baseline: &str,
    candidate: &str,
    extra: &[&str],
) -> (i32, serde_json::Value, String) {
    let mut args = vec!["compare", "--baseline", baseline, "--candidate", candidate];
    args.extend_from_slice(&["--format", "json"]);
    args.extend_from_slice(extra);
    let output = frameline(&args);
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let json = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stderr}"));
    (output.status.code().unwrap(), json, stderr)
}

fn names(json: &serde_json::Value) -> Vec<&str> {
    json["comparison"]["spans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect()
}

fn flagged(json: &serde_json::Value) -> Vec<&str> {
    json["comparison"]["spans"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["flagged"] == true || s["self_flagged"] == true)
        .map(|s| s["name"].as_str().unwrap())
        .collect()
}

#[test]
fn a_slowed_span_tops_the_regressions_and_fails_the_check() {
    let c = captures();
    let (code, json, stderr) = compare_json(
        &side(&c.lake_a, "#build=a"),
        &side(&c.lake_a, "#build=b"),
        &["--fail-if", "spans.self > +10%"],
    );
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(names(&json)[0], "physics.solve", "{:?}", names(&json));
    let top = &json["comparison"]["spans"][0];
    assert_eq!(top["self_flagged"], true);
    assert!(top["change_pct"].as_f64().unwrap() > 20.0, "{top}");
    assert!(
        stderr.contains("FAIL spans.self > +10%: physics.solve"),
        "{stderr}"
    );
    assert_eq!(json["violations"][0]["condition"], "spans.self > +10%");
    // Its parent grew with it.
    let step = json["comparison"]["spans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "physics.step")
        .unwrap();
    assert!(
        step["delta_total_per_frame_ns"].as_f64().unwrap() > 0.0,
        "{step}"
    );
    // The table names the culprit first too.
    let table = frameline(&[
        "compare",
        "--baseline",
        &side(&c.lake_a, "#build=a"),
        "--candidate",
        &side(&c.lake_a, "#build=b"),
    ]);
    assert_eq!(
        table.status.code(),
        Some(0),
        "no --fail-if: nothing to fail"
    );
    let text = String::from_utf8_lossy(&table.stdout);
    let first_row = text
        .lines()
        .skip_while(|l| !l.starts_with("name "))
        .nth(1)
        .unwrap();
    assert!(
        first_row.starts_with("physics.solve ") && first_row.ends_with("SLOWER"),
        "{text}"
    );
}

#[test]
fn a_capture_against_itself_flags_nothing() {
    let c = captures();
    let a = side(&c.lake_a, "#build=a");
    let (code, json, stderr) = compare_json(
        &a,
        &a,
        &["--fail-if", "p99 > +0%", "--fail-if", "spans.total > +0%"],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(flagged(&json).is_empty());
    assert_eq!(json["comparison"]["frames"]["flagged"], false);
    assert!(json["violations"].as_array().unwrap().is_empty());
}

#[test]
fn two_normal_runs_flag_almost_nothing() {
    // The noise budget: of the 20 span names with the most time per frame, at most one is
    // flagged between two normal runs recorded side by side (a slowed span is flagged at
    // p < 1e-6; α here is 0.01 / names).
    let c = captures();
    let (code, json, stderr) = compare_json(
        &side(&c.lake_a, "#build=a"),
        &c.lake_b.to_string_lossy(),
        &["--fail-if", "spans.total > +50%"],
    );
    let mut spans: Vec<&serde_json::Value> = json["comparison"]["spans"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    spans.sort_by(|a, b| {
        let t = |s: &serde_json::Value| s["baseline"]["total_per_frame_ns"].as_f64().unwrap();
        t(b).total_cmp(&t(a))
    });
    let top20: Vec<&str> = spans[..20]
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    let noisy: Vec<&&str> = top20
        .iter()
        .filter(|n| flagged(&json).contains(n))
        .collect();
    assert!(
        noisy.len() <= 1,
        "flagged between two normal runs: {noisy:?} ({stderr})"
    );
    assert!(code == 0 || noisy.len() == 1, "{stderr}");
}

#[test]
fn frame_percentiles_equal_sql_on_the_frames_table() {
    let c = captures();
    let (_, json, _) = compare_json(
        &side(&c.lake_a, "#build=a"),
        &side(&c.lake_a, "#build=b"),
        &[],
    );
    let lake = c.lake_a.to_str().unwrap();
    for (side_name, build) in [("baseline", "a"), ("candidate", "b")] {
        // Nearest rank: the value at row ceil(q × n) of the frames in duration order.
        let sql = format!(
            "WITH f AS (SELECT duration_ns, row_number() OVER (ORDER BY duration_ns) AS r, count(*) OVER () AS n \
               FROM frames JOIN process_properties p USING (process_id) \
               WHERE frames.name = 'frame' AND p.key = 'build' AND p.value = '{build}') \
             SELECT (SELECT duration_ns FROM f WHERE r = ceil(0.5 * n)) AS p50, \
                    (SELECT duration_ns FROM f WHERE r = ceil(0.9 * n)) AS p90, \
                    (SELECT duration_ns FROM f WHERE r = ceil(0.99 * n)) AS p99, \
                    (SELECT max(duration_ns) FROM f) AS max, (SELECT count(*) FROM f) AS n"
        );
        let out = common::frameline_ok(&["query", "--lake", lake, "--format", "json", &sql]);
        let rows: serde_json::Value = serde_json::from_str(&out).unwrap();
        let frames = &json["comparison"]["frames"][side_name];
        for stat in ["p50", "p90", "p99", "max"] {
            assert_eq!(
                frames[format!("{stat}_ns")].as_i64().unwrap(),
                rows[0][stat].as_i64().unwrap(),
                "{side_name} {stat}"
            );
        }
        assert_eq!(
            frames["count"].as_i64().unwrap(),
            rows[0]["n"].as_i64().unwrap()
        );
    }
}

#[test]
fn ranges_span_lists_and_formats() {
    let c = captures();
    let whole = compare_json(
        &side(&c.lake_a, "#build=a"),
        &side(&c.lake_a, "#build=a"),
        &[],
    )
    .1;
    let (code, part, stderr) = compare_json(
        &side(&c.lake_a, "#build=a@1s..3s"),
        &side(&c.lake_a, "#build=b@1s..3s"),
        &["--spans", "physics.solve,render.frame"],
    );
    assert_eq!(code, 0, "{stderr}");
    let frames = |j: &serde_json::Value| j["comparison"]["baseline_frames"].as_u64().unwrap();
    assert!(frames(&part) > 0 && frames(&part) < frames(&whole));
    assert_eq!(names(&part), ["physics.solve", "render.frame"]);
    let csv = common::frameline_ok(&[
        "compare",
        "--baseline",
        &side(&c.lake_a, "#build=a"),
        "--candidate",
        &side(&c.lake_a, "#build=b"),
        "--format",
        "csv",
    ]);
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("kind,name,"));
    assert!(lines[1].starts_with("frames,frame,"));
    assert!(lines[2].starts_with("span,physics.solve,"));
    assert_eq!(lines.len(), names(&whole).len() + 2);
}

#[test]
fn bad_input_exits_2_with_one_line() {
    let c = captures();
    let a = side(&c.lake_a, "#build=a");
    for (baseline, extra, expected) in [
        ("/no/such/lake".to_owned(), vec![], "does not exist"),
        (side(&c.lake_a, "#build=zzz"), vec![], "selects no process"),
        (
            a.clone(),
            vec!["--fail-if", "p98 > 1%"],
            "unknown statistic",
        ),
        (
            a.clone(),
            vec!["--frames", "no_such_frames"],
            "has no frames",
        ),
        (
            side(&c.lake_a, "#build=a@3s..1s"),
            vec![],
            "ends before it begins",
        ),
    ] {
        let mut args = vec!["compare", "--baseline", &baseline, "--candidate", &a];
        args.extend(extra);
        let output = frameline(&args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.starts_with("error: ") && stderr.contains(expected),
            "{stderr}"
        );
    }
}

#[test]
fn the_compare_view_shows_the_regression_first_and_jumps_to_it() {
    let c = captures();
    let mut h = harness(Startup::Open(c.lake_a.to_string_lossy().into_owned()));
    run_until(&mut h, "the capture", loaded);
    h.get_by_label("Compare").click();
    h.run();
    {
        let view = h.state_mut().lake.as_mut().unwrap();
        assert_eq!(view.page, Page::Compare);
        // The two processes of the lake are suggested; the sides are then set as a developer
        // would type them.
        assert!(view.compare.baseline.starts_with('#') && view.compare.candidate.starts_with('#'));
        view.compare.baseline = "#build=a".into();
        view.compare.candidate = "#build=b".into();
    }
    h.get_by_label("Compare sides").click();
    h.step();
    let compared = |app: &frameline::viewer::ViewerApp| {
        app.lake
            .as_ref()
            .is_some_and(|v| v.compare.result.is_some() && !v.compare.busy())
    };
    run_until(&mut h, "the comparison", compared);
    let result = h
        .state()
        .lake
        .as_ref()
        .unwrap()
        .compare
        .result
        .clone()
        .unwrap();
    assert_eq!(result.comparison.spans[0].name, "physics.solve");
    assert!(h.query_all_by_label_contains("build=a").count() >= 1);
    // The regression first on screen, marked; its distributions and jumps a click away.
    assert!(h.query_all_by_label("SLOWER").count() >= 1);
    h.get_by_label("physics.solve").click();
    h.run();
    h.get_by_label_contains("Worst in baseline");
    // Frame times and the flame-graph diff render from the same result.
    h.get_by_label("Frame times").click();
    h.run();
    assert!(h.query_all_by_label("p99").count() >= 1);
    h.get_by_label("Flame graph diff").click();
    h.run();
    let flame = &result.flame;
    let solve = flame
        .candidate
        .nodes
        .iter()
        .position(|n| flame.candidate.names[n.name as usize] == "physics.solve")
        .unwrap() as u32;
    assert!(flame.delta_per_frame_ns(solve) > 0.0);
    h.get_by_label("Spans").click();
    h.run();
    // The candidate's longest physics.solve, on the candidate's timeline.
    let worst = result.comparison.spans[0].candidate.worst.unwrap();
    let was_loaded = h.state().lake.as_ref().unwrap().selected.clone();
    h.get_by_label_contains("Worst in candidate").click();
    // The click is taken on the next step; only then is the candidate's process loading.
    h.step();
    assert_eq!(h.state().lake.as_ref().unwrap().page, Page::Session);
    run_until(&mut h, "the candidate's timeline", loaded);
    let view = h.state().lake.as_ref().unwrap();
    assert_eq!(view.page, Page::Session);
    let process = view.selected.iter().next().unwrap().clone();
    assert_eq!(
        view.engine.lake().process(&process).unwrap().properties["build"],
        "b"
    );
    assert!(
        view.timeline.t0 <= worst.begin_ns as f64 && view.timeline.t1 >= worst.end_ns as f64,
        "timeline {}..{}, worst {worst:?}, selected before {was_loaded:?}, now {process}",
        view.timeline.t0,
        view.timeline.t1
    );
    assert!(view.timeline.t1 - view.timeline.t0 < 2.0 * (worst.end_ns - worst.begin_ns) as f64);

    // Swap: the same span is now the largest improvement, last.
    h.get_by_label("Compare").click();
    h.run();
    h.get_by_label("Swap").click();
    h.step();
    assert!(h.state().lake.as_ref().unwrap().compare.busy());
    run_until(&mut h, "the swapped comparison", compared);
    let swapped = h
        .state()
        .lake
        .as_ref()
        .unwrap()
        .compare
        .result
        .clone()
        .unwrap();
    assert!(swapped.comparison.baseline.contains("build=b"));
    let solve = swapped
        .comparison
        .spans
        .iter()
        .position(|s| s.name == "physics.solve")
        .unwrap();
    assert_eq!(swapped.comparison.spans[solve].rank(), 3);
}
