//! The web dashboard for the people on call: what is queued, scheduled and running,
//! each run by key with its live progress, dead letters, workers, strikes and
//! schedules; search by key, task or argument value; and actions (cancel, run now,
//! retry, replace arguments, strike, restore), one at a time or in bulk.
//!
//! Server-rendered HTML with one small script for live updates (server-sent events),
//! served from the binary: no build step, nothing from a CDN, it works offline. Every
//! list is read a page at a time, so a docket with a million tasks renders as fast as
//! an empty one, and watching it adds no Redis work per task.
//!
//! Mount it in an application with [`router`] or [`Dashboard`], or run it with
//! `docket dashboard --port 8080`.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> docket::Result<()> {
//! let docket = docket::Docket::connect("orders", "memory://doc-dashboard").await?;
//! let app = axum::Router::new().nest("/docket", docket::dashboard::router(docket));
//! # let _ = app; Ok(()) }
//! ```
//!
//! With no token the dashboard only shows; with one, an operator who gives it (a login
//! form that sets a cookie, or an `Authorization: Bearer` header) may act:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> docket::Result<()> {
//! let docket = docket::Docket::connect("orders", "memory://doc-dashboard-token").await?;
//! let router = docket::dashboard::Dashboard::new(docket)
//!     .auth_token("a long random secret")
//!     .router();
//! # let _ = router; Ok(()) }
//! ```

mod access;
mod actions;
mod live;
mod pages;
mod scan;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};

use crate::client::Docket;
use crate::error::{Error, Result};

pub use axum;

/// The dashboard of one docket: who may act, and its router.
#[derive(Debug, Clone)]
pub struct Dashboard {
    docket: Docket,
    token: Option<String>,
    read_only: bool,
}

impl Dashboard {
    /// A dashboard of `docket`: read-only until given a token.
    pub fn new(docket: Docket) -> Self {
        Self {
            docket,
            token: None,
            read_only: false,
        }
    }

    /// The token that lets an operator act: typed into the login form, or sent as
    /// `Authorization: Bearer TOKEN`. An empty token is no token.
    #[must_use]
    pub fn auth_token(mut self, token: impl Into<String>) -> Self {
        let token = token.into();
        self.token = (!token.is_empty()).then_some(token);
        self
    }

    /// Shows and never acts, even with a token: no action buttons, and every POST is
    /// refused.
    #[must_use]
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// The dashboard's routes, to serve or to mount under a path of an application
    /// (`Router::nest("/docket", ...)`); its links are relative, so any path works.
    pub fn router(self) -> Router {
        let app = Arc::new(App {
            access: access::Access::new(self.token, self.read_only),
            docket: self.docket,
        });
        Router::new()
            .route("/", get(pages::overview::page))
            .route("/tasks", get(pages::tasks::page))
            .route("/run", get(pages::run::page))
            .route("/search", get(pages::tasks::search))
            .route("/dead-letters", get(pages::others::dead_letters))
            .route("/workers", get(pages::others::workers))
            .route("/strikes", get(pages::others::strikes))
            .route("/schedules", get(pages::others::schedules))
            .route("/login", get(access::login_form).post(access::login))
            .route("/logout", post(access::logout))
            .route("/events", get(live::events))
            .route("/assets/dashboard.js", get(pages::layout::script))
            .route("/assets/dashboard.css", get(pages::layout::style))
            .route("/actions/{action}", post(actions::act))
            .fallback(pages::layout::not_found)
            .layer(axum::middleware::from_fn(access::secure_headers))
            .with_state(app)
    }

    /// Serves the dashboard on `addr` until the process ends (or `shutdown` resolves).
    ///
    /// # Errors
    /// [`Error::InvalidOption`] naming the address when it cannot be bound.
    pub async fn serve(
        self,
        addr: SocketAddr,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let listener =
            tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|error| Error::InvalidOption {
                    name: "dashboard address",
                    value: addr.to_string(),
                    reason: format!("cannot listen on it: {error}"),
                })?;
        tracing::info!(docket = %self.docket.name(), %addr, "dashboard listening");
        let app = self
            .router()
            .into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|error| Error::Protocol(format!("the dashboard stopped: {error}")))
    }
}

/// The read-only dashboard of `docket`, to mount in an application. For one that acts,
/// see [`Dashboard::auth_token`].
pub fn router(docket: Docket) -> Router {
    Dashboard::new(docket).router()
}

/// What every handler shares.
pub(crate) struct App {
    docket: Docket,
    access: access::Access,
}

type State = axum::extract::State<Arc<App>>;
