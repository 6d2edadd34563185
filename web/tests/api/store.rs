//! The records store's durability: what a 201 promises, and what survives a reopen.

use crate::helpers::film_body;
use crate::on_both_backends;
use awc::http::StatusCode;
use filmgate_web::RecordsStore;
use filmgate_web::store::{ListFilter, NewSequence, Saved};

on_both_backends! {
    async fn a_201_film_is_already_committed_when_the_answer_arrives(app) {
        let seq = app.create_sequence("line-1").await["id"].as_i64().unwrap();
        for i in 0..20 {
            let uid = format!("committed-{i}");
            let (status, _) = app
                .post_json("/api/films/", &film_body(seq, "line-1", &uid))
                .await;
            assert_eq!(status, StatusCode::CREATED);
            assert_eq!(
                app.committed_films(&uid),
                1,
                "{uid} answered 201 before its commit"
            );
        }
    }
}

#[actix_rt::test]
async fn a_reopened_store_has_its_rows_counts_and_ids() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("records.sqlite3");
    {
        let store = RecordsStore::open_sqlite(&path).unwrap();
        let saved = store
            .create_sequence(NewSequence {
                uid: "s".into(),
                source: "a".into(),
                key: None,
            })
            .await
            .unwrap();
        assert!(matches!(saved, Saved::Created(_)));
        let films = (0..3)
            .map(|i| filmgate_web::store::NewFilm {
                uid: format!("f{i}"),
                sequence: saved.row().id,
                source: "a".into(),
                received_at: "2026-11-22T05:03:05.123Z".into(),
                raw: "x".into(),
                data: Default::default(),
            })
            .collect();
        store.create_films(films).await.unwrap();
    }
    let store = RecordsStore::open_sqlite(&path).unwrap();
    assert_eq!(store.films_total(), 3);
    assert_eq!(store.sequences_total(), 1);
    assert_eq!(store.latest_ids(), (1, 3));
    let page = store
        .list_films(ListFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.count, 3);
    assert_eq!(page.results[0].uid, "f2");
}

#[actix_rt::test]
async fn an_unwritable_records_path_is_a_clear_open_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let err = RecordsStore::open_sqlite(&file.join("records.sqlite3"))
        .err()
        .expect("open must fail");
    let text = err.to_string();
    assert!(text.contains("cannot open the records store at"), "{text}");
    assert!(text.contains("a-file"), "{text}");
    let cause = std::error::Error::source(&err)
        .expect("a cause")
        .to_string();
    assert!(cause.contains("os error"), "{cause}");
}
