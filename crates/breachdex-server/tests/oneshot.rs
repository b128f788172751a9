//! The router works without a socket (as tests and embedders drive it with
//! `oneshot`): no peer address means keys without an IP allow-list pass and keys with
//! one are refused; a full request-log queue drops rows (the request goes on) and
//! counts them.

mod common;

use axum::body::Body;
use axum::http::Request;
use breachdex_server::keys::NewKey;
use breachdex_server::{AppState, router};
use common::*;
use tower::ServiceExt;

#[tokio::test]
async fn the_router_answers_without_a_socket() {
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join("index");
    build(&dir.path().join("work"), &index, false);
    let data = dir.path().join("data");
    let (_, open_key) = create(&data, NewKey::default());
    let (_, listed_key) = create(&data, NewKey { allow_ip: Some("10.0.0.0/8".into()), ..Default::default() });
    let app = router(AppState::open(config(&index, &data)).unwrap());
    let call = |key: String| {
        let app = app.clone();
        async move {
            let req = Request::get("/api/v1/usage/").header("x-api-key", key).body(Body::empty()).unwrap();
            app.oneshot(req).await.unwrap().status().as_u16()
        }
    };
    assert_eq!(call(open_key).await, 200);
    assert_eq!(call(listed_key).await, 403);
}

#[tokio::test]
async fn a_full_log_queue_drops_rows_and_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join("index");
    build(&dir.path().join("work"), &index, false);
    let mut c = config(&index, &dir.path().join("data"));
    c.log_queue = 1;
    c.metrics = true;
    // No writer runs (the router without `serve`), so the queue stays full.
    let app = router(AppState::open(c).unwrap());
    for _ in 0..3 {
        let r = app.clone().oneshot(Request::get("/nope").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(r.status().as_u16(), 404);
    }
    let r = app.oneshot(Request::get("/metrics").body(Body::empty()).unwrap()).await.unwrap();
    let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(text.contains("breachdex_log_rows_dropped_total 2\n"), "{text}");
}
