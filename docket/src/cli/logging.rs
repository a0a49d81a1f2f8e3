//! Logging (and, with the `opentelemetry` feature, trace export) for the command line:
//! `--logging-level`, `--logging-format`, and OTLP when `OTEL_EXPORTER_OTLP_ENDPOINT`
//! is set.

use std::io::IsTerminal;

use tracing_subscriber::Layer;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use super::args::LogFormat;

/// Flushes exported spans when the command ends.
#[must_use]
pub(super) struct Telemetry {
    #[cfg(feature = "opentelemetry")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        #[cfg(feature = "opentelemetry")]
        if let Some(provider) = self.provider.take()
            && let Err(error) = provider.shutdown()
        {
            eprintln!("warning: could not export the last spans: {error}");
        }
    }
}

/// Installs the process's tracing subscriber, writing logs to stderr. Does nothing
/// when the application already installed one.
pub(super) fn install(level: tracing::Level, format: LogFormat) -> Telemetry {
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let fmt = match format {
        LogFormat::Plain => fmt.with_target(false).boxed(),
        LogFormat::Json => fmt
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .boxed(),
    };
    let (otel, telemetry) = otlp();
    let installed = tracing_subscriber::registry()
        .with(LevelFilter::from_level(level))
        .with(fmt)
        .with(otel)
        .try_init();
    // An application that set up its own logging keeps it.
    drop(installed);
    telemetry
}

#[cfg(feature = "opentelemetry")]
fn otlp<S>() -> (Option<Box<dyn Layer<S> + Send + Sync>>, Telemetry)
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a> + Send + Sync,
{
    use opentelemetry::trace::TracerProvider as _;

    let none = || (None, Telemetry { provider: None });
    if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_none_or(|v| v.is_empty()) {
        return none();
    }
    let exporter = match opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
    {
        Ok(exporter) => exporter,
        Err(error) => {
            eprintln!(
                "warning: OTEL_EXPORTER_OTLP_ENDPOINT is set but spans cannot be exported: {error}"
            );
            return none();
        }
    };
    let mut resource = opentelemetry_sdk::Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("docket");
    }
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_resource(resource.build())
        .with_batch_exporter(exporter)
        .build();
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("docket"));
    (
        Some(layer.boxed()),
        Telemetry {
            provider: Some(provider),
        },
    )
}

#[cfg(not(feature = "opentelemetry"))]
fn otlp<S>() -> (Option<Box<dyn Layer<S> + Send + Sync>>, Telemetry)
where
    S: tracing::Subscriber,
{
    (None, Telemetry {})
}
