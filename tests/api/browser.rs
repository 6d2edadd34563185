//! The dashboard driven in a real headless Chromium over WebDriver (Debian's `chromedriver`):
//! the default live mode shows a film within 2 s of its arrival; deleting a dead item asks to
//! confirm and for the API token; a retry says what happened; a page on another origin can
//! neither frame the dashboard nor make it act; the quality panel draws its charts, shows an
//! SPC alarm within 2 s and Ack removes it; the lot report draws and prints on A4. Screenshots
//! and the printed report are kept in `target/test-artifacts/`.

use crate::helpers::*;
use actix_web::{App, HttpResponse, HttpServer, web};
use base64::Engine as _;
use filmgate_actors::token::Token;
use serde_json::{Value, json};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The W3C name of an element reference in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// chromedriver with one headless Chromium session.
struct Browser {
    driver: Child,
    base: String,
    client: awc::Client,
    /// Chromium's profile directory, unique to this browser: its processes name it.
    profile: std::path::PathBuf,
}

impl Browser {
    async fn start() -> Browser {
        let port = unclaimed_port();
        let chromedriver = "/usr/bin/chromedriver";
        assert!(
            std::path::Path::new(chromedriver).exists(),
            "chromedriver is missing: run tests/peers.sh"
        );
        // A process group of its own, so Drop ends chromedriver and the browser it started.
        let mut driver = Command::new(chromedriver)
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        wait_for(Duration::from_secs(20), "chromedriver", async || {
            if let Ok(Some(status)) = driver.try_wait() {
                panic!("chromedriver exited: {status}");
            }
            std::net::TcpStream::connect(("127.0.0.1", port))
                .ok()
                .map(|_| ())
        })
        .await;
        let client = awc::Client::builder()
            .timeout(Duration::from_secs(60))
            .finish();
        let profile = std::env::temp_dir().join(format!("filmgate-chrome-{port}"));
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                         "--no-first-run", "--disable-background-networking",
                         "--disable-component-update", "--disable-sync",
                         "--window-size=1366,900",
                         format!("--user-data-dir={}", profile.display())],
            }
        }}});
        let session: Value = client
            .post(format!("http://127.0.0.1:{port}/session"))
            .send_json(&caps)
            .await
            .expect("new session")
            .json()
            .limit(1 << 20)
            .await
            .unwrap();
        let id = session["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {session}"));
        Browser {
            driver,
            base: format!("http://127.0.0.1:{port}/session/{id}"),
            client,
            profile,
        }
    }

    async fn command(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "GET" => self.client.get(url),
            "DELETE" => self.client.delete(url),
            _ => self.client.post(url),
        };
        let mut res = if method == "POST" {
            req.send_json(&body).await
        } else {
            req.send().await
        }
        .expect("webdriver answers");
        let answer: Value = res.json().limit(16 << 20).await.unwrap();
        answer["value"].clone()
    }

    async fn go(&self, url: &str) {
        self.command("POST", "/url", json!({ "url": url })).await;
    }

    async fn script(&self, script: &str) -> Value {
        self.command(
            "POST",
            "/execute/sync",
            json!({ "script": script, "args": [] }),
        )
        .await
    }

    /// The first element matching `css`, waiting for it to exist.
    async fn element(&self, css: &str) -> String {
        wait_for(Duration::from_secs(10), css, async || {
            let found = self
                .command(
                    "POST",
                    "/element",
                    json!({"using": "css selector", "value": css}),
                )
                .await;
            found[ELEMENT].as_str().map(str::to_owned)
        })
        .await
    }

    async fn click(&self, css: &str) {
        let id = self.element(css).await;
        let answer = self
            .command("POST", &format!("/element/{id}/click"), json!({}))
            .await;
        assert!(answer.is_null(), "click on {css}: {answer}");
    }

    async fn type_into(&self, css: &str, text: &str) {
        let id = self.element(css).await;
        self.command(
            "POST",
            &format!("/element/{id}/value"),
            json!({ "text": text }),
        )
        .await;
    }

    /// Waits until `script` (an expression) is true in the page.
    async fn until(&self, what: &str, expression: &str) {
        let script = format!("return Boolean({expression});");
        wait_for(Duration::from_secs(10), what, async || {
            (self.script(&script).await == json!(true)).then_some(())
        })
        .await;
    }
}

impl Drop for Browser {
    /// Ends chromedriver and every Chromium process of this browser, also when the test
    /// failed: the driver's process group, then any process still naming this browser's
    /// profile (Chromium's helpers may leave the group), then the profile.
    fn drop(&mut self) {
        use nix::sys::signal::{Signal, kill, killpg};
        use nix::unistd::Pid;
        let _ = killpg(Pid::from_raw(self.driver.id() as i32), Signal::SIGKILL);
        let _ = self.driver.wait();
        let marker = format!("--user-data-dir={}", self.profile.display());
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|p| p.parse::<i32>().ok())
            else {
                continue;
            };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&marker) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

#[actix_rt::test]
async fn the_live_dashboard_shows_a_film_within_two_seconds() {
    let dir = temp_dir();
    let link = device_link(dir.path());
    let pty = pty_behind(&link);
    let app = spawn_app(test_settings(dir.path(), Some(&link), None)).await;
    app.wait_link_up("line-1").await;
    let browser = Browser::start().await;
    browser.go(&format!("{}/", app.address)).await;
    browser
        .until(
            "the link card",
            "document.body.innerText.includes('line-1')",
        )
        .await;
    let line = film_line("LIVE-LOT", 4242);
    let raw = line.trim_end_matches('\r').to_owned();
    let _pty = write_off_thread(pty, line.into_bytes()).await;
    let written = Instant::now();
    wait_for(Duration::from_secs(10), "the film stored", async || {
        (app.get_json("/api/films/").await["count"] == 1).then_some(())
    })
    .await;
    browser
        .until(
            "the film on the page",
            &format!("document.body.innerText.includes('{raw}')"),
        )
        .await;
    let shown_after = written.elapsed();
    println!("live mode: the film was on the page {shown_after:?} after its line was written");
    assert!(shown_after < Duration::from_secs(2), "{shown_after:?}");
}

#[actix_rt::test]
async fn deleting_a_dead_item_asks_to_confirm_and_for_the_token_and_a_retry_says_what_happened() {
    let dir = temp_dir();
    let link = device_link(dir.path());
    let pty = pty_behind(&link);
    let mut settings = test_settings(dir.path(), Some(&link), None);
    settings.web.token = Token::parse("s3cret").unwrap();
    let app = spawn_app(settings).await;
    app.wait_link_up("line-1").await;
    let _pty = write_off_thread(pty, b"not,a,film\rneither,is,this\r".to_vec()).await;
    wait_for(Duration::from_secs(10), "two dead items", async || {
        (app.stats().await["dead"] == 2).then_some(())
    })
    .await;

    let browser = Browser::start().await;
    browser.go(&format!("{}/?refresh=1000", app.address)).await;
    browser
        .until(
            "two dead rows",
            "document.querySelectorAll('#dead-items tr').length === 2",
        )
        .await;

    // Retry: the frame still does not parse, and the page says so.
    browser
        .click("#dead-items tr button[data-action=retry]")
        .await;
    browser
        .until(
            "the token form",
            "!document.getElementById('token-form').hidden",
        )
        .await;
    browser.type_into("#token-input", "s3cret\u{E007}").await;
    browser
        .until(
            "the retry's answer",
            "document.body.innerText.includes('still dead')",
        )
        .await;

    // Delete: a first click only asks to confirm.
    browser
        .click("#dead-items tr button[data-action=delete]")
        .await;
    browser
        .until(
            "the confirm step",
            "[...document.querySelectorAll('#dead-items button')].some(b => b.textContent === 'Confirm delete')",
        )
        .await;
    assert_eq!(
        app.stats().await["dead"],
        2,
        "nothing deleted before the confirmation"
    );
    browser
        .click("#dead-items tr button[data-action=delete]")
        .await;
    wait_for(Duration::from_secs(10), "one dead item left", async || {
        (app.stats().await["dead"] == 1).then_some(())
    })
    .await;
    browser
        .until(
            "one dead row",
            "document.querySelectorAll('#dead-items tr').length === 1",
        )
        .await;
}

#[actix_rt::test]
async fn a_page_on_another_origin_can_neither_frame_the_dashboard_nor_make_it_act() {
    let dir = temp_dir();
    let link = device_link(dir.path());
    let _pty = pty_behind(&link);
    let app = spawn_app(test_settings(dir.path(), Some(&link), None)).await;
    app.wait_link_up("line-1").await;
    let target = app.address.clone();
    let page = format!(
        r#"<!doctype html><title>evil</title>
        <iframe id="frame" src="{target}/" style="opacity:0.01"></iframe>
        <form id="f" method="POST" action="{target}/api/links/line-1/restart"></form>
        <script>
          fetch("{target}/api/links/line-1/restart", {{method: "POST", mode: "no-cors"}})
            .finally(() => {{ window.fetchDone = true; }});
        </script>"#
    );
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let evil = format!(
        "http://localhost:{}/",
        listener.local_addr().unwrap().port()
    );
    let server = HttpServer::new(move || {
        let page = page.clone();
        App::new().default_service(web::to(move || {
            let page = page.clone();
            async move { HttpResponse::Ok().content_type("text/html").body(page) }
        }))
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    actix_rt::spawn(server);

    let browser = Browser::start().await;
    browser.go(&evil).await;
    browser
        .until("the page's fetch", "window.fetchDone === true")
        .await;
    browser
        .script("document.getElementById('f').submit(); return true;")
        .await;
    // The form's POST navigates the page: wait for the answer (the 403) to load.
    browser
        .until(
            "the form's answer",
            "document.body && document.body.innerText.includes('cross-site')",
        )
        .await;
    assert_eq!(
        app.link("line-1").await["restarts"],
        0,
        "no restart from another origin"
    );

    browser.go(&evil).await;
    let frame = browser.element("#frame").await;
    browser
        .command("POST", "/frame", json!({ "id": { ELEMENT: frame } }))
        .await;
    let inside = browser.script("return location.href;").await;
    assert!(
        !inside.as_str().unwrap_or("").starts_with(&target),
        "the dashboard loaded inside another origin's frame: {inside}"
    );
}

#[actix_rt::test]
async fn hostile_data_cannot_widen_squeeze_or_reorder_the_dashboard() {
    let dir = temp_dir();
    let app = spawn_app(test_settings(dir.path(), None, None)).await;
    let post = async |path: &str, body: Value| -> Value {
        let mut res = app
            .client()
            .post(format!("{}{path}", app.address))
            .send_json(&body)
            .await
            .unwrap();
        assert!(res.status().is_success(), "{path}: {}", res.status());
        res.json().limit(1 << 20).await.unwrap()
    };
    let long_source = "S".repeat(105);
    let spoof = "LOT\u{202E}gnp.exe";
    let sequence = post(
        "/api/sequences/",
        json!({"source": long_source, "key": spoof}),
    )
    .await["id"]
        .clone();
    for n in 0..25 {
        let value = if n == 24 {
            "V".repeat(3000)
        } else {
            format!("{n}")
        };
        post(
            "/api/films/",
            json!({"sequence": sequence, "source": long_source, "raw": format!("raw {n}"),
                   "received_at": "2026-12-02T10:00:00.000Z",
                   "data": {"lot": spoof, "note": value}}),
        )
        .await;
    }
    let browser = Browser::start().await;
    browser
        .command(
            "POST",
            "/window/rect",
            json!({"width": 1400, "height": 900}),
        )
        .await;
    browser.go(&format!("{}/", app.address)).await;
    browser
        .until(
            "the films on the page",
            "document.querySelectorAll('.films-table tbody tr').length >= 25",
        )
        .await;
    let page_width = browser
        .script("return [document.documentElement.scrollWidth, window.innerWidth];")
        .await;
    assert!(
        page_width[0].as_f64() <= page_width[1].as_f64(),
        "the page is wider than the window: {page_width}"
    );
    let record_px = browser
        .script(
            "return Math.min(...[...document.querySelectorAll('.films-table td.rec')]
                .map((td) => td.getBoundingClientRect().width));",
        )
        .await;
    assert!(
        record_px.as_f64().unwrap() >= 200.0,
        "the Record column is squeezed to {record_px} px"
    );
    // The whole value is there on hover; the direction control is shown, not obeyed.
    let key = browser
        .script("return document.querySelector('#sequences td.key, td.key').innerText;")
        .await;
    let key = key.as_str().unwrap();
    assert!(!key.contains('\u{202E}'), "{key:?}");
    assert_eq!(key, "LOT⟨U+202E⟩gnp.exe");
    let titled = browser
        .script("return [...document.querySelectorAll('td.src')].every((td) => td.title.length === 105);")
        .await;
    assert_eq!(titled, json!(true));
    browser
        .script("document.querySelector('.films-table').scrollIntoView(); return true;")
        .await;
    let shot = browser.command("GET", "/screenshot", json!({})).await;
    if let Some(png) = shot.as_str() {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png)
            .unwrap();
        let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("hostile-data.png");
        std::fs::write(&path, bytes).unwrap();
        println!("screenshot: {}", path.display());
    }
}

impl Browser {
    /// A PNG of the window, kept as a test artifact.
    async fn screenshot(&self, name: &str) -> std::path::PathBuf {
        let png = self.command("GET", "/screenshot", json!({})).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().expect("a base64 PNG"))
            .unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "not a PNG");
        keep_artifact(name, &bytes)
    }

    /// The page printed on A4 (as a browser's print dialog would), kept as a test artifact;
    /// its number of pages.
    async fn print_a4(&self, name: &str) -> usize {
        let pdf = self
            .command(
                "POST",
                "/print",
                json!({"page": {"width": 21.0, "height": 29.7}, "background": true}),
            )
            .await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(pdf.as_str().expect("a base64 PDF"))
            .unwrap();
        assert!(bytes.starts_with(b"%PDF"), "not a PDF");
        keep_artifact(name, &bytes);
        let text = String::from_utf8_lossy(&bytes);
        text.matches("/Type /Page").count() - text.matches("/Type /Pages").count()
    }
}

/// Writes `bytes` to `target/test-artifacts/<name>` (CI keeps that folder) and says where.
fn keep_artifact(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    println!("artifact: {}", path.display());
    path
}

/// A record of lot `Q-1` with this thickness.
fn thickness_line(n: u32, thickness_um: f64) -> String {
    format!("Q-1,{n},{thickness_um:.2},1200.5,0\r")
}

#[actix_rt::test]
async fn the_quality_panel_draws_charts_shows_an_alarm_live_and_ack_removes_it_and_the_lot_prints()
{
    let dir = temp_dir();
    let link = device_link(dir.path());
    let mut pty = pty_behind(&link);
    let mut settings = test_settings(dir.path(), Some(&link), None);
    settings.web.token = Token::parse("s3cret").unwrap();
    settings.upstream.token = Token::parse("s3cret").unwrap();
    // Individuals against fixed limits: judged from the first film.
    settings.serial[0].spc.insert(
        "thickness_um".into(),
        filmgate_actors::spc::SpcConfig {
            lsl: Some(24.5),
            usl: Some(25.5),
            subgroup: 1,
            center: Some(25.0),
            ucl: Some(25.3),
            lcl: Some(24.7),
            ..Default::default()
        },
    );
    let app = spawn_app(settings).await;
    app.wait_link_up("line-1").await;
    let browser = Browser::start().await;
    browser.go(&format!("{}/", app.address)).await;
    let normal: String = (1..=10)
        .map(|n| thickness_line(n, if n % 2 == 0 { 25.05 } else { 24.95 }))
        .collect();
    pty = write_off_thread(pty, normal.into_bytes()).await;
    browser
        .until(
            "both charts drawn with their 10 points and a nonzero size",
            "[...document.querySelectorAll('#quality .spc-chart')].length === 2 && \
             [...document.querySelectorAll('#quality .spc-chart')].every(s => { \
               const r = s.getBoundingClientRect(); return r.width > 100 && r.height > 50; }) && \
             document.querySelectorAll('#quality .spc-mean circle').length === 10",
        )
        .await;
    assert_eq!(
        browser
            .script("return document.querySelectorAll('#quality .spc-alarm-item').length;")
            .await,
        0
    );

    let _pty = write_off_thread(pty, thickness_line(11, 26.0).into_bytes()).await;
    let written = Instant::now();
    browser
        .until(
            "the alarms on the panel",
            "document.querySelectorAll('#quality .spc-alarm-item').length === 2",
        )
        .await;
    let shown_after = written.elapsed();
    println!("the alarm was on the panel {shown_after:?} after its line was written");
    assert!(shown_after < Duration::from_secs(2), "{shown_after:?}");
    let rules = browser
        .script(
            "return [...document.querySelectorAll('#quality .spc-alarm-item')] \
               .map(li => li.dataset.rule).sort().join(' ');",
        )
        .await;
    assert_eq!(rules, "beyond_3sigma out_of_spec");
    let marked = browser
        .script(
            "return [...document.querySelectorAll('#quality .spc-mean .spc-mark-label')] \
               .map(t => t.textContent).join('|');",
        )
        .await;
    assert_eq!(marked, "3σ spec", "the point that fired, named");
    browser
        .script("document.getElementById('quality-panel').scrollIntoView(); return true;")
        .await;
    browser.screenshot("quality-panel.png").await;

    browser.click("#quality .spc-ack").await;
    browser
        .until(
            "the token form",
            "!document.getElementById('token-form').hidden",
        )
        .await;
    browser.type_into("#token-input", "s3cret\u{E007}").await;
    browser
        .until(
            "one alarm left",
            "document.querySelectorAll('#quality .spc-alarm-item').length === 1",
        )
        .await;
    browser.click("#quality .spc-ack").await;
    browser
        .until(
            "no alarm left",
            "document.querySelectorAll('#quality .spc-alarm-item').length === 0",
        )
        .await;
    let open = app.get_json("/api/alarms/?acknowledged=false").await;
    assert_eq!(open["count"], 0, "{open}");

    let sequences = app.get_json("/api/sequences/").await;
    let id = sequences["results"][0]["id"].as_i64().unwrap();
    browser.go(&format!("{}/lots/{id}", app.address)).await;
    browser
        .until(
            "the lot report drawn",
            "document.body.dataset.ready === 'true' && \
             document.querySelectorAll('.report-field .spc-chart').length === 2 && \
             document.querySelector('.report-field .spc-chart').getBoundingClientRect().width > 100",
        )
        .await;
    let text = browser.script("return document.body.innerText;").await;
    let text = text.as_str().unwrap();
    for shown in [
        "Lot Q-1",
        "This lot (11 films)",
        "beyond_3sigma",
        "out_of_spec",
    ] {
        assert!(text.contains(shown), "{shown:?} not in the report:\n{text}");
    }
    browser.screenshot("lot-report.png").await;
    let pages = browser.print_a4("lot-report.pdf").await;
    assert!((1..=2).contains(&pages), "{pages} A4 pages");

    let mut res = app
        .client()
        .get(format!("{}/api/sequences/{id}/films.csv", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let csv = String::from_utf8(res.body().await.unwrap().to_vec()).unwrap();
    let rows: Vec<&str> = csv.split("\r\n").filter(|r| !r.is_empty()).collect();
    assert_eq!(
        rows[0],
        "lot,film_no,thickness_um,width_mm,defects,uid,received_at,raw"
    );
    assert_eq!(rows.len(), 12);
    assert!(
        rows[11].starts_with("Q-1,11,26.0,1200.5,0,")
            && rows[11].ends_with(",\"Q-1,11,26.00,1200.5,0\""),
        "{}",
        rows[11]
    );
}
