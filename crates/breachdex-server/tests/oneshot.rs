//! The router works without a socket (as tests and embedders drive it with
//! `oneshot`): no peer address means keys without an IP allow-list pass and keys with
//! one are refused.

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
