//! Trace context across the queue: the producer's span context travels in the message
//! as a W3C `traceparent`, and each run's span becomes its child — for calls due now,
//! later, and for their retries. Active with the `opentelemetry` feature; spans are
//! recorded through `tracing`, so a `tracing-opentelemetry` layer exports them.

/// The W3C `traceparent` of the current span, when it belongs to a valid trace.
#[cfg(feature = "opentelemetry")]
pub(crate) fn current_traceparent() -> Option<String> {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    let context = tracing::Span::current().context();
    let span = context.span();
    let span_context = span.span_context();
    span_context.is_valid().then(|| {
        format!(
            "00-{}-{}-{:02x}",
            span_context.trace_id(),
            span_context.span_id(),
            span_context.trace_flags().to_u8()
        )
    })
}

#[cfg(not(feature = "opentelemetry"))]
pub(crate) fn current_traceparent() -> Option<String> {
    None
}

/// Makes `span` a child of the remote span a message's `traceparent` names.
#[cfg(feature = "opentelemetry")]
pub(crate) fn continue_trace(span: &tracing::Span, traceparent: Option<&str>) {
    use opentelemetry::trace::{SpanContext, TraceContextExt, TraceFlags, TraceState};
    use opentelemetry::{SpanId, TraceId};
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    let Some(parts) = traceparent.map(|t| t.split('-').collect::<Vec<_>>()) else {
        return;
    };
    let [version, trace_id, span_id, flags] = parts.as_slice() else {
        tracing::debug!(?traceparent, "ignoring a malformed traceparent");
        return;
    };
    let (Ok(trace_id), Ok(span_id), Ok(flags)) = (
        TraceId::from_hex(trace_id),
        SpanId::from_hex(span_id),
        u8::from_str_radix(flags, 16),
    ) else {
        tracing::debug!(?traceparent, "ignoring a malformed traceparent");
        return;
    };
    if *version != "00" {
        return;
    }
    let remote = SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::new(flags),
        true,
        TraceState::default(),
    );
    let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
}

#[cfg(not(feature = "opentelemetry"))]
pub(crate) fn continue_trace(_span: &tracing::Span, _traceparent: Option<&str>) {}
