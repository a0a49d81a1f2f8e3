//! Observability: docket's metrics and their Prometheus text, trace context, and the
//! small HTTP server a worker serves health and metrics with.

mod http;
pub(crate) mod metrics;
pub(crate) mod trace;

pub(crate) use http::{Response, serve};
pub use metrics::prometheus_text;

/// Every metric of the process in the Prometheus text format.
pub(crate) fn metrics_response() -> Response {
    Response::text(
        200,
        "text/plain; version=0.0.4; charset=utf-8",
        prometheus_text(),
    )
}
