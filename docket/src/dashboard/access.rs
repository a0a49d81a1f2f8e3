//! Who may act, and the headers every page carries.
//!
//! With no token, or `read_only`, the dashboard only shows. With a token, an operator
//! acts after giving it: in the login form (which sets a session cookie derived from it,
//! `HttpOnly` and `SameSite=Strict`) or as `Authorization: Bearer TOKEN`. A form posted
//! with the cookie must also carry the page's CSRF token and come from the dashboard's
//! own origin. Every page is sent with a strict Content-Security-Policy: scripts and
//! styles from the dashboard itself only, never inline.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, OriginalUri, Request};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use serde::Deserialize;

use super::State;
use super::pages::layout::{self, Base, Chrome};

/// The session cookie's name.
const SESSION_COOKIE: &str = "docket_session";

/// The policy every response carries.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; \
    frame-ancestors 'none'; base-uri 'self'";

/// Who may act on this dashboard.
pub(super) struct Access {
    token: Option<String>,
    read_only: bool,
    /// The cookie a login sets: derived from the token and this process's secret.
    session: String,
    /// The token every form of a signed-in page carries.
    csrf: String,
}

/// How a request proved it may act.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Proof {
    /// It may not.
    None,
    /// The session cookie of a login.
    Session,
    /// `Authorization: Bearer` with the token.
    Bearer,
}

/// Who acted, for the audit log.
pub(super) struct Who {
    pub peer: String,
    pub proof: Proof,
}

impl std::fmt::Display for Who {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let how = match self.proof {
            Proof::None => "anonymous",
            Proof::Session => "session",
            Proof::Bearer => "bearer token",
        };
        write!(f, "{} ({how})", self.peer)
    }
}

impl Access {
    pub(super) fn new(token: Option<String>, read_only: bool) -> Self {
        let secret = format!("{}{}", uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let derive = |what: &str| {
            let mut hash = sha1_smol::Sha1::new();
            hash.update(secret.as_bytes());
            hash.update(what.as_bytes());
            hash.update(token.as_deref().unwrap_or_default().as_bytes());
            hash.digest().to_string()
        };
        Self {
            session: derive(":session:"),
            csrf: derive(":csrf:"),
            token,
            read_only,
        }
    }

    /// Whether anyone may act here at all.
    pub(super) fn actions_enabled(&self) -> bool {
        self.token.is_some() && !self.read_only
    }

    /// Whether the dashboard is read-only because it was told to be.
    pub(super) fn forced_read_only(&self) -> bool {
        self.read_only
    }

    /// How the request proves it may act.
    pub(super) fn proof(&self, headers: &HeaderMap) -> Proof {
        let Some(token) = self.token.as_deref().filter(|_| !self.read_only) else {
            return Proof::None;
        };
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "));
        if bearer.is_some_and(|given| same(given.trim(), token)) {
            return Proof::Bearer;
        }
        if cookie(headers, SESSION_COOKIE).is_some_and(|given| same(given, &self.session)) {
            return Proof::Session;
        }
        Proof::None
    }

    /// The CSRF token of a page shown to a signed-in operator.
    pub(super) fn csrf(&self) -> &str {
        &self.csrf
    }

    /// Lets a POST through, or says why not: read-only (403), not signed in (401), or
    /// a form that did not come from the dashboard's own pages (403).
    pub(super) fn check_post(
        &self,
        headers: &HeaderMap,
        csrf: Option<&str>,
    ) -> Result<Proof, (StatusCode, String)> {
        if !self.actions_enabled() {
            return Err((
                StatusCode::FORBIDDEN,
                if self.read_only {
                    "this dashboard is read-only".to_owned()
                } else {
                    "this dashboard has no token configured, so it is read-only \
                     (start it with --auth-token or DOCKET_DASHBOARD_TOKEN)"
                        .to_owned()
                },
            ));
        }
        match self.proof(headers) {
            Proof::None => Err((
                StatusCode::UNAUTHORIZED,
                "sign in with the dashboard's token first".to_owned(),
            )),
            Proof::Bearer => Ok(Proof::Bearer),
            Proof::Session => {
                if cross_site(headers) {
                    return Err((
                        StatusCode::FORBIDDEN,
                        "a form posted from another site is refused".to_owned(),
                    ));
                }
                if !csrf.is_some_and(|given| same(given, &self.csrf)) {
                    return Err((
                        StatusCode::FORBIDDEN,
                        "the form's CSRF token is missing or stale: reload the page".to_owned(),
                    ));
                }
                Ok(Proof::Session)
            }
        }
    }
}

/// Whether two secrets are equal, in time that does not depend on where they differ.
fn same(given: &str, expected: &str) -> bool {
    given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |diff, (a, b)| diff | (a ^ b))
            == 0
}

/// A cookie's value.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Whether the browser says the request comes from another site: `Sec-Fetch-Site`,
/// else an `Origin` whose host is not the `Host` the request was sent to.
fn cross_site(headers: &HeaderMap) -> bool {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site")) {
        return !matches!(site, "same-origin" | "none");
    }
    match (text(header::ORIGIN), text(header::HOST)) {
        (Some("null"), _) => true,
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .map(|(_, rest)| rest)
            .is_none_or(|origin_host| origin_host != host),
        _ => false,
    }
}

/// The peer of a request, when the server knows it.
pub(super) fn peer(request_extensions: &axum::http::Extensions) -> String {
    request_extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "unknown peer".to_owned(), |info| info.0.to_string())
}

/// Every response: the security headers; every request: where the dashboard is
/// mounted ([`Base`]), for its relative links, and who sent it.
pub(super) async fn secure_headers(mut request: Request, next: Next) -> Response {
    let full = request.extensions().get::<OriginalUri>().map_or_else(
        || request.uri().path().to_owned(),
        |uri| uri.path().to_owned(),
    );
    let base = Base::of(&full, request.uri().path());
    let peer = peer(request.extensions());
    request.extensions_mut().insert(base);
    request.extensions_mut().insert(Peer(peer));
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

/// The peer a request came from (as the server saw it), for the audit log.
#[derive(Debug, Clone)]
pub(super) struct Peer(pub String);

#[derive(Deserialize)]
pub(super) struct LoginForm {
    token: String,
}

pub(super) async fn login_form(
    axum::extract::State(app): State,
    Extension(base): Extension<Base>,
    headers: HeaderMap,
) -> Response {
    let chrome = Chrome::new(&app, &base, &headers, "Sign in");
    layout::html(StatusCode::OK, chrome.page(layout::login(&app, None)))
}

pub(super) async fn login(
    axum::extract::State(app): State,
    Extension(base): Extension<Base>,
    Extension(peer): Extension<Peer>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let chrome = Chrome::new(&app, &base, &headers, "Sign in");
    let refuse =
        |status, why: &str| layout::html(status, chrome.page(layout::login(&app, Some(why))));
    if !app.access.actions_enabled() {
        return refuse(
            StatusCode::FORBIDDEN,
            "this dashboard is read-only: there is nothing to sign in for",
        );
    }
    if cross_site(&headers) {
        return refuse(
            StatusCode::FORBIDDEN,
            "a sign-in posted from another site is refused",
        );
    }
    let token = app.access.token.as_deref().unwrap_or_default();
    if !same(form.token.trim(), token) {
        tracing::warn!(target: "docket::dashboard::audit", docket = %app.docket.name(),
            who = %peer.0, action = "login", "sign-in refused: wrong token");
        return refuse(
            StatusCode::UNAUTHORIZED,
            "that is not the dashboard's token",
        );
    }
    tracing::info!(target: "docket::dashboard::audit", docket = %app.docket.name(),
        who = %peer.0, action = "login", "signed in");
    let cookie = format!(
        "{SESSION_COOKIE}={}; Path={}; HttpOnly; SameSite=Strict",
        app.access.session, base.home
    );
    let mut response = Redirect::to(&base.home).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

pub(super) async fn logout(Extension(base): Extension<Base>) -> Response {
    let cookie = format!(
        "{SESSION_COOKIE}=; Path={}; HttpOnly; SameSite=Strict; Max-Age=0",
        base.home
    );
    let mut response = Redirect::to(&base.home).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn without_a_token_or_when_read_only_nobody_acts() {
        for access in [
            Access::new(None, false),
            Access::new(Some("t".into()), true),
        ] {
            let bearer = headers(&[("authorization", "Bearer t")]);
            assert_eq!(access.proof(&bearer), Proof::None);
            assert_eq!(
                access.check_post(&bearer, None).unwrap_err().0,
                StatusCode::FORBIDDEN
            );
        }
    }

    #[test]
    fn a_bearer_token_or_a_session_with_its_csrf_token_may_act() {
        let access = Access::new(Some("secret".into()), false);
        let bearer = headers(&[("authorization", "Bearer secret")]);
        assert_eq!(access.check_post(&bearer, None), Ok(Proof::Bearer));
        let wrong = headers(&[("authorization", "Bearer secreT")]);
        assert_eq!(
            access.check_post(&wrong, None).unwrap_err().0,
            StatusCode::UNAUTHORIZED
        );

        let session = format!("{SESSION_COOKIE}={}", access.session);
        let signed_in = headers(&[("cookie", &session), ("host", "127.0.0.1:8080")]);
        let csrf = access.csrf().to_owned();
        assert_eq!(
            access.check_post(&signed_in, Some(&csrf)),
            Ok(Proof::Session)
        );
        assert_eq!(
            access.check_post(&signed_in, None).unwrap_err().0,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            access.check_post(&signed_in, Some("x")).unwrap_err().0,
            StatusCode::FORBIDDEN
        );

        let from_elsewhere = headers(&[
            ("cookie", &session),
            ("host", "127.0.0.1:8080"),
            ("origin", "http://evil.example"),
        ]);
        assert_eq!(
            access
                .check_post(&from_elsewhere, Some(&csrf))
                .unwrap_err()
                .0,
            StatusCode::FORBIDDEN
        );
        let fetch_cross = headers(&[("cookie", &session), ("sec-fetch-site", "cross-site")]);
        assert_eq!(
            access.check_post(&fetch_cross, Some(&csrf)).unwrap_err().0,
            StatusCode::FORBIDDEN
        );
        let same_origin = headers(&[
            ("cookie", &session),
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080"),
        ]);
        assert_eq!(
            access.check_post(&same_origin, Some(&csrf)),
            Ok(Proof::Session)
        );
    }

    #[test]
    fn a_session_of_another_process_or_token_is_not_accepted() {
        let one = Access::new(Some("secret".into()), false);
        let other = Access::new(Some("secret".into()), false);
        let session = format!("{SESSION_COOKIE}={}", other.session);
        assert_eq!(one.proof(&headers(&[("cookie", &session)])), Proof::None);
    }
}
