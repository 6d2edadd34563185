//! Delivery to the records services plants really run: Django REST Framework on its
//! development server (close-delimited answers) and under gunicorn (chunked answers), with
//! token authentication, replays answered 200 and DRF's throttle; nginx answering plain 201s
//! to batches; nginx over https with a private CA and mutual TLS.

use crate::helpers::*;
use crate::peers::*;
use filmgate_actors::poster::BodyShape;
use filmgate_actors::token::Token;
use nix::sys::signal::Signal;
use serde_json::Value;
use std::collections::HashSet;
use std::time::Duration;

/// Writes films `from..=to` of `lot` from a blocking thread (the gateway reads on this one).
async fn write(pty: LinkedPty, lot: &str, from: u64, to: u64) -> LinkedPty {
    let text: String = (from..=to).map(|n| film_line(lot, n)).collect();
    write_off_thread(pty, text.into_bytes()).await
}

/// Waits for `count` films in Django's `api` (`/api/` or `/flat/api/`).
async fn wait_django_films(django: &Django, api: &str, count: u64) -> Value {
    wait_for(Duration::from_secs(60), "films in Django", async || {
        let counts = django.counts(api).await?;
        (counts["films"].as_u64()? >= count).then_some(counts)
    })
    .await
}

#[actix_rt::test]
async fn every_film_reaches_django_runserver_once_in_both_body_shapes() {
    let dir = temp_dir();
    let django = Django::start(dir.path(), DjangoServer::Runserver, &[]).await;
    for (shape, api) in [
        (BodyShape::Nested, "/api/"),
        (BodyShape::Flat, "/flat/api/"),
    ] {
        let run = tempfile::tempdir_in(dir.path()).unwrap();
        let link = device_link(run.path());
        let pty = pty_behind(&link);
        let base_url = format!("{}{api}", django.origin);
        let mut settings = test_settings(run.path(), Some(&link), Some(&base_url));
        settings.upstream.token = Token::parse(Django::TOKEN).unwrap();
        settings.upstream.body = shape;
        let app = spawn_app(settings).await;
        app.wait_link_up("line-1").await;
        let pty = write(pty, "DJ-A", 1, 40).await;
        let _pty = write(pty, "DJ-B", 41, 60).await;
        let counts = wait_django_films(&django, api, 60).await;
        assert_eq!(counts["distinct_uids"], 60, "{api}: {counts}");
        let films = django.films(api).await.unwrap();
        let raws: HashSet<&str> = films.iter().map(|f| f["raw"].as_str().unwrap()).collect();
        for n in 1..=60 {
            let lot = if n <= 40 { "DJ-A" } else { "DJ-B" };
            let line = film_line(lot, n);
            assert!(
                raws.contains(line.trim_end_matches('\r')),
                "{api}: film {n} missing"
            );
        }
        if shape == BodyShape::Flat {
            assert!(
                films
                    .iter()
                    .all(|f| f["thickness_um"].is_number() && f["lot"].is_string())
            );
        }
        let stats = app.stats().await;
        assert_eq!(
            (stats["posted"].as_u64(), stats["dead"].as_u64()),
            (Some(60), Some(0))
        );
        app.stop().await;
    }
    // Two lots, sequences shared by both APIs: one per lot and run.
    assert_eq!(django.counts("/api/").await.unwrap()["sequences"], 4);
}

#[actix_rt::test]
async fn sigkill_of_the_gateway_and_a_django_restart_leave_no_duplicate_and_no_empty_field() {
    const FILMS: u64 = 3000;
    let dir = temp_dir();
    let mut django = Django::start(dir.path(), DjangoServer::Gunicorn, &[]).await;
    let link = device_link(dir.path());
    let pty = pty_behind(&link);
    let base_url = format!("{}/flat/api/", django.origin);
    let mut settings = test_settings(dir.path(), Some(&link), Some(&base_url));
    settings.upstream.token = Token::parse(Django::TOKEN).unwrap();
    settings.upstream.body = BodyShape::Flat;
    settings.upstream.batch_size = 20;
    let config = dir.path().join("filmgate.toml");
    write_config(&config, &settings);
    let mut gateway = Gateway::start(&config);
    gateway.wait_link_up().await;

    let writer = std::thread::spawn(move || {
        let mut pty = pty;
        for chunk in (1..=FILMS).collect::<Vec<_>>().chunks(20) {
            let text: String = chunk.iter().map(|&n| film_line("KD", n)).collect();
            pty.write_all(text.as_bytes()).expect("pty write");
            std::thread::sleep(Duration::from_millis(5));
        }
        pty
    });
    wait_django_films(&django, "/flat/api/", 500).await;
    gateway.restart(Signal::SIGKILL).await;
    wait_django_films(&django, "/flat/api/", 1200).await;
    django.restart().await;
    let _pty = writer.join().unwrap();
    // Settled: the last line (written long after the kill) is in Django, nothing waits.
    wait_for(Duration::from_secs(60), "the gateway settled", async || {
        let stats = gateway.try_get_json("/api/queue/stats").await?;
        let idle = stats["pending"] == 0 && stats["in_flight"] == 0;
        let last = film_line("KD", FILMS);
        let films = django.films("/flat/api/").await?;
        let arrived = films
            .iter()
            .any(|f| f["raw"] == last.trim_end_matches('\r'));
        (idle && arrived).then_some(())
    })
    .await;
    let counts = django.counts("/flat/api/").await.unwrap();
    assert_eq!(counts["films"], counts["distinct_uids"], "{counts}");
    let films = django.films("/flat/api/").await.unwrap();
    let mut raws = HashSet::new();
    for film in &films {
        assert!(
            raws.insert(film["raw"].as_str().unwrap().to_owned()),
            "twice: {film}"
        );
        for field in [
            "lot",
            "film_no",
            "thickness_um",
            "width_mm",
            "defects",
            "sequence",
        ] {
            assert!(
                !film[field].is_null() && film[field] != "",
                "{field} empty: {film}"
            );
        }
    }
    // Only what the gateway had read but not committed when it was killed may be missing.
    assert!(
        raws.len() as u64 >= FILMS - 1024,
        "{} of {FILMS}",
        raws.len()
    );
}

#[actix_rt::test]
async fn drf_throttling_retry_after_is_waited_out() {
    let dir = temp_dir();
    // One POST a minute: the sequence takes it, the film gets 429 with Retry-After ~60.
    let django = Django::start(
        dir.path(),
        DjangoServer::Runserver,
        &[("FILMGATE_DJANGO_THROTTLE", "1/min")],
    )
    .await;
    let link = device_link(dir.path());
    let pty = pty_behind(&link);
    let base_url = format!("{}/api/", django.origin);
    let mut settings = test_settings(dir.path(), Some(&link), Some(&base_url));
    settings.upstream.token = Token::parse(Django::TOKEN).unwrap();
    let app = spawn_app(settings).await;
    app.wait_link_up("line-1").await;
    let _pty = write(pty, "TH", 1, 1).await;
    let item = wait_for(Duration::from_secs(30), "a throttled film", async || {
        let page = app.get_json("/api/queue/?state=pending").await;
        let item = page["results"].get(0)?.clone();
        item["last_error"]
            .as_str()?
            .starts_with("HTTP 429")
            .then_some(item)
    })
    .await;
    let due = humantime::parse_rfc3339(item["next_attempt_at"].as_str().unwrap()).unwrap();
    let wait = due
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default();
    assert!(
        wait >= Duration::from_secs(40),
        "retried in {wait:?}: {item}"
    );
    app.stop().await;
}

#[actix_rt::test]
async fn batches_behind_nginx_answering_plain_201s_are_posted_once() {
    let dir = temp_dir();
    let (nginx, port) = Nginx::start(
        &dir.path().join("nginx"),
        r#"server { listen 127.0.0.1:PORT;
             location /api/sequences/ { default_type application/json; return 201 '{"id": 1}'; }
             location / { return 201; } }"#,
    )
    .await;
    let link = device_link(dir.path());
    let mut pty = pty_behind(&link);
    let base_url = format!("http://127.0.0.1:{port}/api/");
    let mut settings = test_settings(dir.path(), Some(&link), Some(&base_url));
    settings.upstream.batch_size = 100;
    let app = spawn_app(settings).await;
    app.wait_link_up("line-1").await;
    for from in (1..=5000).step_by(500) {
        pty = write(pty, "NG", from, from + 499).await;
    }
    // Nothing pending and nothing in flight: no request can still be on its way to nginx.
    wait_for(Duration::from_secs(60), "5,000 films posted", async || {
        let stats = app.stats().await;
        let idle = stats["pending"] == 0 && stats["in_flight"] == 0;
        (stats["posted"] == 5000 && idle).then_some(())
    })
    .await;
    // nginx logs a request after it answered; at least 50 batches of up to 100 came.
    let requests = wait_for(
        Duration::from_secs(10),
        "nginx's log of the batches",
        async || {
            let requests = nginx.requests();
            (requests >= 50).then_some(requests)
        },
    )
    .await;
    assert!(
        (50..=5000 / 100 * 3).contains(&requests),
        "{requests} requests for 5,000 films in batches of up to 100"
    );
    assert_eq!(app.stats().await["dead"], 0);
    app.stop().await;
}

/// nginx over TLS with the test PKI, answering 201 with an id; `client_auth` requires a
/// client certificate signed by the CA.
async fn tls_nginx(dir: &std::path::Path, pki: &TestPki, client_auth: bool) -> (Nginx, u16) {
    let verify = if client_auth {
        format!(
            "ssl_verify_client on; ssl_client_certificate {};",
            pki.ca.display()
        )
    } else {
        String::new()
    };
    Nginx::start(
        dir,
        &format!(
            r#"server {{ listen 127.0.0.1:PORT ssl;
                 ssl_certificate {}; ssl_certificate_key {}; {verify}
                 location / {{ default_type application/json; return 201 '{{"id": 1}}'; }} }}"#,
            pki.server_cert.display(),
            pki.server_key.display()
        ),
    )
    .await
}

#[actix_rt::test]
async fn https_with_a_private_ca_and_mutual_tls() {
    let dir = temp_dir();
    let pki = TestPki::make(&dir.path().join("pki"));
    let (_plain_tls, port) = tls_nginx(&dir.path().join("n1"), &pki, false).await;
    let (_mutual_tls, mutual_port) = tls_nginx(&dir.path().join("n2"), &pki, true).await;

    let run = async |port: u16, ca: bool, client_cert: bool| {
        let run_dir = tempfile::tempdir_in(dir.path()).unwrap();
        let link = device_link(run_dir.path());
        let pty = pty_behind(&link);
        let base_url = format!("https://127.0.0.1:{port}/api/");
        let mut settings = test_settings(run_dir.path(), Some(&link), Some(&base_url));
        if ca {
            settings.upstream.ca_file = pki.ca.display().to_string();
        }
        if client_cert {
            settings.upstream.client_cert_file = pki.client_cert.display().to_string();
            settings.upstream.client_key_file = pki.client_key.display().to_string();
        }
        let app = spawn_app(settings).await;
        app.wait_link_up("line-1").await;
        let _pty = write(pty, "TLS", 1, 3).await;
        let outcome = wait_for(Duration::from_secs(30), "an outcome", async || {
            let stats = app.stats().await;
            if stats["posted"] == 3 {
                return Some(Ok(()));
            }
            let all = app.get_json("/api/queue/?limit=10").await;
            let error = all["results"]
                .as_array()?
                .iter()
                .find_map(|i| i["last_error"].as_str().map(str::to_owned))?;
            Some(Err(error))
        })
        .await;
        app.stop().await;
        outcome
    };
    assert_eq!(
        run(port, true, false).await,
        Ok(()),
        "trusted through ca_file"
    );
    let untrusted = run(port, false, false).await.unwrap_err();
    assert!(
        untrusted.to_lowercase().contains("certificate"),
        "{untrusted}"
    );
    assert_eq!(run(mutual_port, true, true).await, Ok(()), "mutual TLS");
    let no_client_cert = run(mutual_port, true, false).await.unwrap_err();
    assert!(no_client_cert.contains("400"), "{no_client_cert}");
}
