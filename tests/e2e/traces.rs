//! Traces: each run's span is a child of the span that added the call, through the W3C
//! trace context carried in the message — for a call due now, one due later, and the
//! retries of a failing call; a task reaches that span through its injected
//! `tracing::Span` and `TaskLogger`. Spans (and the events inside them) go to an
//! in-memory OpenTelemetry exporter.

use std::sync::OnceLock;
use std::time::Duration;

use docket::TaskLogger;
use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing::{Instrument, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;

use crate::support::{Target, drain, on_both_backends, test_worker};
use crate::tasks::{AddNumbers, FailsThrice};

/// The process-wide exporter (spans of every test land here; each test filters by its
/// docket name).
fn exporter() -> &'static InMemorySpanExporter {
    static EXPORTER: OnceLock<InMemorySpanExporter> = OnceLock::new();
    EXPORTER.get_or_init(|| {
        let exporter = InMemorySpanExporter::default();
        let provider = SdkTracerProvider::builder()
            .with_simple_exporter(exporter.clone())
            .build();
        let tracer = provider.tracer("docket-tests");
        let subscriber =
            tracing_subscriber::registry().with(tracing_opentelemetry::layer().with_tracer(tracer));
        tracing::subscriber::set_global_default(subscriber).expect("one global subscriber");
        exporter
    })
}

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    value_of(&span.attributes, key)
}

/// The value of `key` among a span's or an event's attributes.
fn value_of(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

async fn runs_are_children_of_the_spans_that_added_them(target: Target) {
    let exporter = exporter();
    let docket = target.docket().await;
    let request = tracing::info_span!("test.request", test.docket = %target.name);
    let (now, later, failing) = async {
        let now = docket.add(AddNumbers::new(1, 2)).key("now").await.unwrap();
        let later = docket
            .add(AddNumbers::new(3, 4))
            .key("later")
            .after(Duration::from_millis(200))
            .await
            .unwrap();
        let failing = docket
            .add(FailsThrice::new(target.name.clone()))
            .key("failing")
            .await
            .unwrap();
        (now, later, failing)
    }
    .instrument(request)
    .await;
    drain(&docket).await;
    let _ = (now, later, failing);

    let spans = exporter.get_finished_spans().unwrap();
    let mine = |span: &&SpanData| attribute(span, "docket.name").as_deref() == Some(&*target.name);
    let adds: Vec<&SpanData> = spans
        .iter()
        .filter(mine)
        .filter(|s| s.name == "docket.add")
        .collect();
    assert_eq!(adds.len(), 3, "one producer span per add");
    for key in ["now", "later", "failing"] {
        let runs: Vec<&SpanData> = spans
            .iter()
            .filter(mine)
            .filter(|s| attribute(s, "docket.key").as_deref() == Some(key))
            .collect();
        let expected = if key == "failing" { 3 } else { 1 };
        assert_eq!(runs.len(), expected, "{key}: {runs:#?}");
        for run in &runs {
            let task = attribute(run, "docket.task").unwrap();
            assert_eq!(run.name, format!("docket.task.{task}"));
            assert!(attribute(run, "docket.worker").is_some());
            assert!(attribute(run, "docket.attempt").is_some());
            let parent = adds
                .iter()
                .find(|add| add.span_context.span_id() == run.parent_span_id)
                .unwrap_or_else(|| panic!("{key}: the run's parent is not an add span"));
            assert_eq!(parent.span_context.trace_id(), run.span_context.trace_id());
            assert_eq!(attribute(parent, "docket.task"), Some(task));
        }
        if key == "failing" {
            for run in runs {
                assert!(
                    matches!(run.status, opentelemetry::trace::Status::Error { .. }),
                    "{run:#?}"
                );
                assert!(
                    run.events.iter().any(|e| e.name == "exception"),
                    "an exception event on failure: {run:#?}"
                );
            }
        }
    }
}

/// What the worker's main loop does on its own (here: cancelling the next copy of a key
/// that used up its `run_at_most` runs) is traced within the span of the code that runs
/// the worker, though the loop runs as a task of its own.
async fn the_worker_loop_traces_within_its_caller_s_span(target: Target) {
    let exporter = exporter();
    let docket = target.docket().await;
    docket
        .add(AddNumbers::new(1, 1))
        .key("limited")
        .await
        .unwrap();
    let worker = test_worker(&docket).build().unwrap();
    let caller = tracing::info_span!("test.worker", test.docket = %target.name);
    tokio::time::timeout(
        Duration::from_secs(30),
        worker.run_at_most([("limited", 1)]).instrument(caller),
    )
    .await
    .expect("the worker finished within 30 s")
    .unwrap();

    let spans = exporter.get_finished_spans().unwrap();
    let caller = spans
        .iter()
        .find(|s| {
            s.name == "test.worker" && attribute(s, "test.docket").as_deref() == Some(&*target.name)
        })
        .expect("the caller's span");
    let cancel = spans
        .iter()
        .find(|s| {
            s.name == "docket.cancel"
                && attribute(s, "docket.name").as_deref() == Some(&*target.name)
                && attribute(s, "docket.key").as_deref() == Some("limited")
        })
        .expect("the worker cancelled the used-up key's next copy");
    assert_eq!(
        cancel.parent_span_id,
        caller.span_context.span_id(),
        "{cancel:#?}"
    );
    assert_eq!(
        cancel.span_context.trace_id(),
        caller.span_context.trace_id()
    );
}

/// Marks its run's span with `note` through the injected span, and logs one line
/// through the injected logger, both from a spawned task that is in no span of its own.
#[docket::task]
async fn notes_its_run(note: String, span: Span, log: TaskLogger) {
    tokio::spawn(async move {
        span.set_attribute("test.note", note.clone());
        log.info(format_args!("noted {note}"));
    })
    .await
    .unwrap();
}

async fn a_task_s_span_and_logger_are_its_run_s(target: Target) {
    let exporter = exporter();
    let docket = target.docket().await;
    docket
        .add(NotesItsRun::new(target.name.clone()))
        .key("noted")
        .await
        .unwrap();
    drain(&docket).await;

    let spans = exporter.get_finished_spans().unwrap();
    let run = spans
        .iter()
        .find(|s| {
            attribute(s, "docket.name").as_deref() == Some(&*target.name)
                && attribute(s, "docket.key").as_deref() == Some("noted")
        })
        .expect("the run's span");
    assert_eq!(
        attribute(run, "test.note").as_deref(),
        Some(&*target.name),
        "the injected span is the run's: {run:#?}"
    );
    let line = run
        .events
        .iter()
        .find(|event| event.name == format!("noted {}", target.name))
        .unwrap_or_else(|| panic!("the logged line is an event of the run's span: {run:#?}"));
    let field = |key: &str| value_of(&line.attributes, key);
    assert_eq!(field("docket.key").as_deref(), Some("noted"), "{line:#?}");
    assert_eq!(field("docket.task").as_deref(), Some("notes_its_run"));
    assert_eq!(field("docket.attempt").as_deref(), Some("1"));
    assert_eq!(field("docket.name").as_deref(), Some(&*target.name));
    assert_eq!(field("docket.worker"), attribute(run, "docket.worker"));
    assert_eq!(field("target").as_deref(), Some("docket::task"));
    assert_eq!(field("level").as_deref(), Some("INFO"));
}

on_both_backends!(
    runs_are_children_of_the_spans_that_added_them,
    the_worker_loop_traces_within_its_caller_s_span,
    a_task_s_span_and_logger_are_its_run_s,
);
