//! SPC through the real binary: a published data set written to a pseudo-terminal the way a
//! line writes it gives the published limits, capability and signals (on the release binary
//! when CI names it); limits, indexes, windows and alarms survive SIGTERM and SIGKILL; the API
//! answers mistakes with JSON errors, and its writes need the token.

use crate::helpers::*;
use filmgate_actors::spc::SpcConfig;
use filmgate_actors::token::Token;
use filmgate_testkit::textbook::{BASELINE, LSL, PISTON_RINGS, USL, published};
use nix::sys::signal::Signal;
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

const FIELD: &str = "diameter";
const CHART: &str = "/api/spc/line-1/diameter/";

/// A link reading `sample,diameter` records of one lot, watching the diameter as the book's
/// example does: subgroups of 5, limits from the first 25, spec 74.000 ± 0.05 mm.
fn settings(dir: &std::path::Path, link: &std::path::Path) -> filmgate::config::Settings {
    let mut s = test_settings(dir, Some(link), None);
    let line = &mut s.serial[0];
    line.record.fields = ["lot", "sample", FIELD].map(String::from).to_vec();
    line.record.sequence_key = "lot".into();
    line.spc.insert(
        FIELD.into(),
        SpcConfig {
            lsl: Some(LSL),
            usl: Some(USL),
            subgroup: 5,
            baseline: BASELINE,
            ..SpcConfig::default()
        },
    );
    s
}

/// The samples `from..to` (0-based) as record lines of lot `PR-1`, `\r`-terminated.
fn lines(from: usize, to: usize) -> Vec<u8> {
    let mut out = String::new();
    for (i, sample) in PISTON_RINGS.iter().enumerate().take(to).skip(from) {
        for v in sample {
            out.push_str(&format!("PR-1,{},{v:.3}\r", i + 1));
        }
    }
    out.into_bytes()
}

/// Waits until every film written so far is stored by the records service (so its frame and
/// its judgement are committed), then returns the chart.
async fn settled(gw: &Gateway, films: u64) -> Value {
    wait_for(Duration::from_secs(60), "the films stored", async || {
        let stored = gw.try_get_json("/api/films/?limit=1").await?;
        (stored["count"] == films).then_some(())
    })
    .await;
    gw.try_get_json(CHART).await.expect("the chart")
}

/// The indexes each rule fired on, from the lot's points.
async fn fired(gw: &Gateway) -> BTreeMap<String, Vec<u64>> {
    let points = gw
        .try_get_json(&format!("{CHART}points/?lot=PR-1"))
        .await
        .expect("points");
    let mut fired: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for p in points["results"].as_array().unwrap() {
        for rule in p["alarms"].as_array().unwrap() {
            let index = p["index"].as_u64().expect("only complete subgroups fire");
            fired
                .entry(rule.as_str().unwrap().into())
                .or_default()
                .push(index);
        }
    }
    fired
}

fn assert_published(chart: &Value) {
    let num = |v: &Value| v.as_f64().unwrap_or_else(|| panic!("a number: {v}"));
    let close = |got: f64, want: f64, unit: f64, what: &str| {
        assert!(
            (got - want).abs() <= unit,
            "{what}: {got} vs published {want}"
        );
    };
    assert_eq!(chart["state"], "monitoring");
    close(num(&chart["center"]), published::CENTER, 0.0005, "x̿");
    close(num(&chart["ucl"]), published::UCL, 0.001, "UCL");
    close(num(&chart["lcl"]), published::LCL, 0.001, "LCL");
    close(
        num(&chart["range"]["center"]),
        published::RANGE_CENTER,
        0.0005,
        "R̄",
    );
    close(
        num(&chart["range"]["ucl"]),
        published::RANGE_UCL,
        0.0005,
        "R UCL",
    );
    close(
        num(&chart["range"]["lcl"]),
        published::RANGE_LCL,
        0.0,
        "R LCL",
    );
    close(num(&chart["sigma"]), published::SIGMA, 0.0001, "σ̂");
    close(num(&chart["cp"]), published::CP, 0.015, "Cp");
}

/// What every rule flags on the 40 samples: beyond the UCL exactly the published samples, and
/// the run rules as README "Quality" defines them.
fn assert_signals(fired: &BTreeMap<String, Vec<u64>>) {
    let expected: BTreeMap<String, Vec<u64>> = [
        ("beyond_3sigma", published::BEYOND_UCL.to_vec()),
        ("2_of_3_beyond_2sigma", published::TWO_OF_THREE.to_vec()),
        ("4_of_5_beyond_1sigma", published::FOUR_OF_FIVE.to_vec()),
    ]
    .into_iter()
    .map(|(r, i)| (r.to_owned(), i))
    .collect();
    assert_eq!(fired, &expected);
}

#[actix_rt::test]
async fn a_published_data_set_through_a_pty_gives_the_published_limits_and_signals() {
    let dir = temp_dir();
    let link = device_link(dir.path());
    let pty = pty_behind(&link);
    let gw = Gateway::launch_release(dir.path(), &settings(dir.path(), &link));
    println!("binary: {}", release_binary().display());
    gw.wait_link_up().await;
    let _pty = write_off_thread(pty, lines(0, 40)).await;
    let chart = settled(&gw, 200).await;
    assert_published(&chart);
    assert_eq!(chart["subgroups"], 40);
    assert_eq!(chart["skipped"], 0);
    assert_signals(&fired(&gw).await);
    let alarms = gw
        .try_get_json("/api/alarms/?acknowledged=false")
        .await
        .unwrap();
    assert_eq!(alarms["count"], 11, "{alarms}");
    let first = &alarms["results"][10];
    assert_eq!(
        (&first["rule"], &first["index"], &first["lot"]),
        (
            &Value::from("2_of_3_beyond_2sigma"),
            &Value::from(35),
            &Value::from("PR-1")
        )
    );
    assert!(
        first["sequence"].is_number(),
        "the lot's id upstream: {first}"
    );
}

#[actix_rt::test]
async fn limits_indexes_run_windows_and_alarms_survive_sigterm_and_sigkill() {
    let dir = temp_dir();
    let link = device_link(dir.path());
    let mut pty = pty_behind(&link);
    let mut gw = Gateway::launch(dir.path(), &settings(dir.path(), &link));
    gw.wait_link_up().await;
    // 34 samples, a graceful restart; 2 more, a kill; the rest. The run rules at 35 and 38–40
    // need windows that began before each restart.
    pty = write_off_thread(pty, lines(0, 34)).await;
    let before = settled(&gw, 170).await;
    gw.restart(Signal::SIGTERM).await;
    let after = gw.try_get_json(CHART).await.unwrap();
    assert_eq!(before, after, "the chart across a graceful restart");
    pty = write_off_thread(pty, lines(34, 36)).await;
    let before = settled(&gw, 180).await;
    let alarms_before = gw.try_get_json("/api/alarms/").await.unwrap();
    gw.restart(Signal::SIGKILL).await;
    let after = gw.try_get_json(CHART).await.unwrap();
    // Counters since start are per process; every other figure is kept.
    let without_counts = |mut v: Value| {
        v.as_object_mut().unwrap().remove("alarms_total");
        v
    };
    assert_eq!(without_counts(before), without_counts(after.clone()));
    assert_eq!(
        gw.try_get_json("/api/alarms/").await.unwrap(),
        alarms_before
    );
    let _pty = write_off_thread(pty, lines(36, 40)).await;
    let chart = settled(&gw, 200).await;
    assert_published(&chart);
    assert_eq!(chart["subgroups"], 40);
    assert_signals(&fired(&gw).await);
}

/// What a client gets for a mistake: a JSON error with its status, never a panic.
#[actix_rt::test]
async fn the_spc_api_answers_mistakes_with_json_errors_and_writes_need_the_token() {
    let dir = temp_dir();
    let link = device_link(dir.path());
    let pty = pty_behind(&link);
    let mut s = settings(dir.path(), &link);
    s.web.token = Token::parse("s3cret").unwrap();
    s.upstream.token = Token::parse("s3cret").unwrap();
    let app = spawn_app(s).await;
    app.wait_link_up("line-1").await;
    let get = async |path: &str| {
        let mut res = app
            .client()
            .get(format!("{}{path}", app.address))
            .send()
            .await
            .unwrap();
        let body: Value = res.json().await.unwrap_or(Value::Null);
        (res.status().as_u16(), body)
    };
    let (status, body) = get("/api/spc/line-1/width/").await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("not watched"),
        "{body}"
    );
    let (status, body) = get(&format!("{CHART}points/?sequence=1&lot=PR-1")).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = get("/api/alarms/?acknowledged=maybe").await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = app.post(&format!("{CHART}reset")).await;
    assert_eq!(status, 401, "a reset without the token");
    let (status, _) = app.post("/api/alarms/1/ack").await;
    assert_eq!(status, 401, "an ack without the token");

    // The 40 samples, then a reset: the chart sets new limits from the next baseline, the
    // alarms stay listed, and /metrics counts them.
    let _pty = write_off_thread(pty, lines(0, 40)).await;
    wait_for(
        Duration::from_secs(30),
        "the 40 samples judged",
        async || (app.get_json(CHART).await["subgroups"] == 40).then_some(()),
    )
    .await;
    let authorized = |path: &str| {
        app.client()
            .post(format!("{}{path}", app.address))
            .insert_header(("Authorization", "Bearer s3cret"))
    };
    let mut res = authorized("/api/alarms/999999/ack").send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert!(res.json::<Value>().await.unwrap()["error"].is_string());
    let mut res = authorized(&format!("{CHART}reset")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let reset: Value = res.json().await.unwrap();
    assert_eq!(
        (&reset["state"], &reset["subgroups"]),
        (&Value::from("baselining"), &Value::from(0))
    );
    assert_eq!(app.get_json("/api/alarms/").await["count"], 11);
    // With no film since the reset, the newest lot is found among the stored points.
    let newest = app.get_json(&format!("{CHART}points/")).await;
    assert_eq!(
        (&newest["lot"], newest["results"].as_array().unwrap().len()),
        (&Value::from("PR-1"), 40)
    );
    let metrics = app.metrics().await;
    assert!(
        metrics.contains(
            "filmgate_spc_alarms_total{link=\"line-1\",field=\"diameter\",rule=\"beyond_3sigma\"} 3"
        ),
        "{metrics}"
    );
}

/// Every alarm is pushed on the event stream once and in order, through a burst of 189 judged
/// in well under a second.
#[actix_rt::test]
async fn every_alarm_is_pushed_once_on_the_event_stream_even_in_a_burst() {
    use futures_util::StreamExt as _;
    let dir = temp_dir();
    let link = device_link(dir.path());
    let pty = pty_behind(&link);
    let mut s = test_settings(dir.path(), Some(&link), None);
    // Individuals against fixed limits, every film far above: each one fires out_of_spec,
    // beyond_3sigma and, as the run grows, 2/3, 4/5 and 8 on one side.
    s.serial[0].spc.insert(
        "thickness_um".into(),
        SpcConfig {
            usl: Some(25.5),
            subgroup: 1,
            center: Some(25.0),
            ucl: Some(25.3),
            lcl: Some(24.7),
            ..SpcConfig::default()
        },
    );
    let app = spawn_app(s).await;
    app.wait_link_up("line-1").await;
    let mut events = app
        .client()
        .get(format!("{}/api/events/", app.address))
        .send()
        .await
        .unwrap();
    let lines: String = (1..=40)
        .map(|n| format!("B-1,{n},26.00,1200.5,0\r"))
        .collect();
    let _pty = write_off_thread(pty, lines.into_bytes()).await;
    // 40 × out_of_spec and beyond_3sigma, 39 × 2/3, 37 × 4/5, 33 × 8: 189 alarms.
    let expected = 40 + 40 + 39 + 37 + 33;
    let mut seen = String::new();
    let mut ids = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while ids.len() < expected {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let chunk = actix_rt::time::timeout(left, events.next())
            .await
            .unwrap_or_else(|_| panic!("{} of {expected} alarm events in 20 s", ids.len()))
            .expect("stream open")
            .expect("chunk");
        seen.push_str(&String::from_utf8_lossy(&chunk));
        while let Some((event, rest)) = seen.split_once("\n\n") {
            if let Some(data) = event.strip_prefix("event: alarm\ndata: ") {
                let alarm: Value = serde_json::from_str(data).unwrap();
                ids.push(alarm["id"].as_i64().unwrap());
            }
            seen = rest.to_owned();
        }
    }
    let listed = app.get_json("/api/alarms/?limit=1").await;
    assert_eq!(listed["count"], expected);
    let in_order: Vec<i64> = (1..=expected as i64).collect();
    assert_eq!(ids, in_order, "each alarm once, in order");
}
