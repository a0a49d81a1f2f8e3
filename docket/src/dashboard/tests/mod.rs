//! The dashboard's router called as a browser or a script would, on `memory://`:
//! mounted inside an application, who may act, the headers, escaping, bulk actions.

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tower::ServiceExt;

use super::{Dashboard, router};
use crate::backend::NewTask;
use crate::client::Docket;
use crate::model::{ExecutionState, Message, When};

const TOKEN: &str = "s3cret-token";

async fn docket() -> Docket {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Docket::connect(format!("dash-{n}"), format!("memory://dashboard-test-{n}"))
        .await
        .unwrap()
}

/// Schedules a call of `task` under `key` with `args`, an hour from now.
async fn park(docket: &Docket, key: &str, task: &str, args: &str) {
    let task = NewTask {
        message: Message::unplaced(key.to_owned(), task.to_owned(), args.to_owned(), 1),
        due: When::After(Duration::from_hours(1)),
        replace: false,
        fresh: false,
    };
    docket.backend().schedule(&[task]).await.unwrap();
}

async fn state(docket: &Docket, key: &str) -> ExecutionState {
    docket.backend().record(key).await.unwrap().unwrap().state
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

async fn call(app: &Router, request: Request<Body>) -> Answer {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    Answer {
        status,
        headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

async fn get(app: &Router, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut request = Request::get(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    call(app, request.body(Body::empty()).unwrap()).await
}

async fn post(app: &Router, path: &str, form: &str, headers: &[(&str, &str)]) -> Answer {
    let mut request =
        Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    call(app, request.body(Body::from(form.to_owned())).unwrap()).await
}

const BEARER: (&str, &str) = ("authorization", "Bearer s3cret-token");

#[tokio::test]
async fn the_router_mounts_inside_an_application_on_memory() {
    let docket = docket().await;
    park(&docket, "welcome-7", "send_welcome", r#"{"user":7}"#).await;
    let app = Router::new()
        .route("/health", axum::routing::get(|| async { "fine" }))
        .nest("/ops/docket", router(docket.clone()));
    let overview = get(&app, "/ops/docket", &[]).await;
    assert_eq!(
        overview.status,
        StatusCode::OK,
        "{}",
        &overview.body[..overview.body.len().min(3000)]
    );
    assert!(
        overview.body.contains(r#"<base href="/ops/docket/">"#),
        "{}",
        overview.body
    );
    assert!(
        overview
            .body
            .contains(r#"<a href="/ops/docket">Overview</a>"#)
    );
    assert!(overview.body.contains(docket.name()));
    let scheduled = get(&app, "/ops/docket/tasks?list=scheduled", &[]).await;
    assert!(scheduled.body.contains("welcome-7"), "{}", scheduled.body);
    assert!(scheduled.body.contains("send_welcome"));
    let run = get(&app, "/ops/docket/run?key=welcome-7", &[]).await;
    assert_eq!(run.status, StatusCode::OK);
    assert!(
        run.body.contains("&quot;user&quot;: 7") || run.body.contains("\"user\": 7"),
        "{}",
        run.body
    );
    let script = get(&app, "/ops/docket/assets/dashboard.js", &[]).await;
    assert!(script.body.contains("EventSource"));
    assert_eq!(get(&app, "/health", &[]).await.body, "fine");
    assert_eq!(
        get(&app, "/ops/docket/nowhere", &[]).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn every_page_carries_a_strict_content_security_policy() {
    let docket = docket().await;
    let app = Dashboard::new(docket).auth_token(TOKEN).router();
    for path in [
        "/",
        "/tasks?list=queued",
        "/tasks?list=nowhere",
        "/run?key=none",
        "/search?q=x",
        "/dead-letters",
        "/workers",
        "/strikes",
        "/schedules",
        "/login",
        "/nowhere",
        "/assets/dashboard.css",
    ] {
        let answer = get(&app, path, &[]).await;
        let policy = answer.headers[header::CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(policy.contains("script-src 'self'"), "{path}: {policy}");
        assert!(!policy.contains("unsafe-inline"), "{path}: {policy}");
        assert_eq!(answer.headers[header::X_FRAME_OPTIONS], "DENY", "{path}");
        assert!(
            !answer.body.contains("<script>"),
            "{path}: no inline script"
        );
    }
}

#[tokio::test]
async fn without_the_token_a_post_is_refused_and_nothing_changes() {
    let docket = docket().await;
    park(&docket, "k", "send_welcome", "{}").await;
    let app = Dashboard::new(docket.clone()).auth_token(TOKEN).router();
    let refused = post(&app, "/actions/cancel", "key=k", &[]).await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    let wrong = post(
        &app,
        "/actions/cancel",
        "key=k",
        &[("authorization", "Bearer nope")],
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert_eq!(state(&docket, "k").await, ExecutionState::Scheduled);
    let page = get(&app, "/run?key=k", &[]).await;
    assert!(
        !page.body.contains("actions/cancel"),
        "no buttons for a visitor"
    );

    let no_token = router(docket.clone());
    let refused = post(&no_token, "/actions/cancel", "key=k", &[BEARER]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.body.contains("read-only"));
    assert_eq!(state(&docket, "k").await, ExecutionState::Scheduled);

    let acted = post(&app, "/actions/cancel", "key=k", &[BEARER]).await;
    assert_eq!(acted.status, StatusCode::SEE_OTHER, "{}", acted.body);
    assert_eq!(state(&docket, "k").await, ExecutionState::Cancelled);
}

#[tokio::test]
async fn read_only_shows_no_action_buttons_and_refuses_posts() {
    let docket = docket().await;
    park(&docket, "k", "send_welcome", "{}").await;
    let app = Dashboard::new(docket.clone())
        .auth_token(TOKEN)
        .read_only(true)
        .router();
    for path in [
        "/run?key=k",
        "/tasks?list=scheduled",
        "/dead-letters",
        "/strikes",
    ] {
        let page = get(&app, path, &[BEARER]).await;
        assert!(!page.body.contains("actions/"), "{path}: {}", page.body);
        assert!(page.body.contains("read-only"), "{path}");
    }
    let refused = post(&app, "/actions/cancel", "key=k", &[BEARER]).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let login = post(&app, "/login", "token=s3cret-token", &[]).await;
    assert_eq!(login.status, StatusCode::FORBIDDEN);
    assert!(!login.headers.contains_key(header::SET_COOKIE));
    assert_eq!(state(&docket, "k").await, ExecutionState::Scheduled);
}

/// Signs in through the form; the session cookie and a page's CSRF token.
async fn sign_in(app: &Router) -> (String, String) {
    let wrong = post(app, "/login", "token=guess", &[]).await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let login = post(app, "/login", "token=s3cret-token", &[]).await;
    assert_eq!(login.status, StatusCode::SEE_OTHER, "{}", login.body);
    let cookie = login.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let cookie = cookie.split(';').next().unwrap().to_owned();
    let page = get(app, "/strikes", &[("cookie", &cookie)]).await;
    let csrf = page
        .body
        .split(r#"name="csrf" value=""#)
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a signed-in page carries the CSRF token")
        .to_owned();
    (cookie, csrf)
}

#[tokio::test]
async fn a_cross_site_form_post_is_refused() {
    let docket = docket().await;
    park(&docket, "k", "send_welcome", "{}").await;
    let app = Dashboard::new(docket.clone()).auth_token(TOKEN).router();
    let (cookie, csrf) = sign_in(&app).await;
    let form = format!("key=k&csrf={csrf}");
    let host = ("host", "127.0.0.1:8080");
    for origin in [
        ("origin", "http://evil.example"),
        ("sec-fetch-site", "cross-site"),
    ] {
        let refused = post(
            &app,
            "/actions/cancel",
            &form,
            &[("cookie", &cookie), host, origin],
        )
        .await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{origin:?}");
    }
    let no_csrf = post(
        &app,
        "/actions/cancel",
        "key=k",
        &[("cookie", &cookie), host],
    )
    .await;
    assert_eq!(no_csrf.status, StatusCode::FORBIDDEN);
    assert_eq!(state(&docket, "k").await, ExecutionState::Scheduled);
    let same_site = [
        ("cookie", cookie.as_str()),
        host,
        ("origin", "http://127.0.0.1:8080"),
    ];
    let acted = post(&app, "/actions/cancel", &form, &same_site).await;
    assert_eq!(acted.status, StatusCode::SEE_OTHER, "{}", acted.body);
    assert_eq!(state(&docket, "k").await, ExecutionState::Cancelled);
}

#[tokio::test]
async fn values_from_tasks_are_escaped_everywhere() {
    let docket = docket().await;
    let evil = r#"{"note":"<script>alert(1)</script>"}"#;
    park(&docket, "<b>key</b>", "<i>task</i>", evil).await;
    let app = Dashboard::new(docket).auth_token(TOKEN).router();
    for path in [
        "/tasks?list=scheduled",
        "/run?key=%3Cb%3Ekey%3C%2Fb%3E",
        "/search?q=%3Cscript%3E",
        "/tasks?list=scheduled&q=%3Cscript%3E",
    ] {
        let page = get(&app, path, &[BEARER]).await;
        assert_eq!(page.status, StatusCode::OK, "{path}");
        assert!(
            page.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{path}: {}",
            page.body
        );
        assert!(!page.body.contains("<script>alert"), "{path}");
        assert!(
            !page.body.contains("<b>key</b>") && !page.body.contains("<i>task</i>"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_bulk_action_on_a_filter_names_the_count_then_acts_on_each_match() {
    let docket = docket().await;
    for i in 0..30 {
        let tier = if i % 3 == 0 { "vip" } else { "basic" };
        park(
            &docket,
            &format!("order-{i}"),
            "ship",
            &format!(r#"{{"tier":"{tier}"}}"#),
        )
        .await;
    }
    let app = Dashboard::new(docket.clone()).auth_token(TOKEN).router();
    let filtered = get(&app, "/tasks?list=scheduled&q=vip", &[BEARER]).await;
    assert!(
        filtered.body.contains("10 matching among the 30"),
        "{}",
        filtered.body
    );
    let form = "list=scheduled&scope=filter&q=vip&op=cancel";
    let confirm = post(&app, "/actions/bulk", form, &[BEARER]).await;
    assert_eq!(confirm.status, StatusCode::OK);
    assert!(
        confirm
            .body
            .contains(r#"<strong class="confirm-count">10</strong>"#),
        "{}",
        confirm.body
    );
    assert_eq!(
        docket.counts().await.unwrap().scheduled,
        30,
        "nothing done before confirming"
    );
    let stale = post(
        &app,
        "/actions/bulk",
        &format!("{form}&confirm=9"),
        &[BEARER],
    )
    .await;
    assert!(
        stale.body.contains("count changed since you confirmed 9"),
        "{}",
        stale.body
    );
    assert!(
        stale
            .body
            .contains(r#"<strong class="confirm-count">10</strong>"#)
    );
    assert_eq!(
        docket.counts().await.unwrap().scheduled,
        30,
        "nothing done on a stale count"
    );
    let done = post(
        &app,
        "/actions/bulk",
        &format!("{form}&confirm=10"),
        &[BEARER],
    )
    .await;
    assert!(
        done.body
            .contains(r#"<strong class="done-count">10</strong>"#),
        "{}",
        done.body
    );
    assert_eq!(docket.counts().await.unwrap().scheduled, 20);
    assert_eq!(state(&docket, "order-3").await, ExecutionState::Cancelled);
    assert_eq!(state(&docket, "order-4").await, ExecutionState::Scheduled);

    let selection = "list=scheduled&scope=selection&op=run-now&key=order-1&key=order-2&confirm=2";
    let done = post(&app, "/actions/bulk", selection, &[BEARER]).await;
    assert!(
        done.body
            .contains(r#"<strong class="done-count">2</strong>"#),
        "{}",
        done.body
    );
    assert_eq!(state(&docket, "order-1").await, ExecutionState::Queued);
}

#[tokio::test]
async fn replacing_arguments_checks_them_and_names_a_bad_value() {
    let docket = docket().await;
    park(&docket, "k", "send_welcome", r#"{"user":1}"#).await;
    let app = Dashboard::new(docket.clone()).auth_token(TOKEN).router();
    let bad = post(&app, "/actions/replace", "key=k&args=%5B1%5D", &[BEARER]).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("[1]"), "{}", bad.body);
    let record = docket.backend().record("k").await.unwrap().unwrap();
    assert_eq!(record.message.args, r#"{"user":1}"#);
    let good = post(
        &app,
        "/actions/replace",
        "key=k&args=%7B%22user%22%3A2%7D",
        &[BEARER],
    )
    .await;
    assert_eq!(good.status, StatusCode::SEE_OTHER, "{}", good.body);
    let record = docket.backend().record("k").await.unwrap().unwrap();
    assert_eq!(record.message.args, r#"{"user":2}"#);
    assert_eq!(
        record.state,
        ExecutionState::Scheduled,
        "a parked call keeps its due time"
    );
}

#[tokio::test]
async fn strikes_are_made_and_restored_from_the_form() {
    let docket = docket().await;
    let app = Dashboard::new(docket.clone()).auth_token(TOKEN).router();
    let bad = post(
        &app,
        "/actions/strike",
        "task=ship&parameter=n&operator=between&value=int%3A3",
        &[BEARER],
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("between"), "{}", bad.body);
    let made = post(
        &app,
        "/actions/strike",
        "task=ship&parameter=customer&operator=%3D%3D&value=int%3A7",
        &[BEARER],
    )
    .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
    assert_eq!(docket.strikes().len(), 1);
    let page = get(&app, "/strikes", &[BEARER]).await;
    assert!(page.body.contains("customer == 7"), "{}", page.body);
    let restored = post(
        &app,
        "/actions/restore",
        "task=ship&parameter=customer&operator=%3D%3D&value=json%3A7",
        &[BEARER],
    )
    .await;
    assert_eq!(restored.status, StatusCode::SEE_OTHER);
    assert!(docket.strikes().is_empty());
}
