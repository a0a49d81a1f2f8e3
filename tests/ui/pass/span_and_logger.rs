//! The run's `tracing::Span` and a `docket::TaskLogger` are injected, by full path or
//! imported; neither is carried in the call.

use docket::{Call, TaskLogger};
use tracing::Span;

#[docket::task]
async fn traced(order_id: u64, span: tracing::Span, log: docket::TaskLogger) {
    span.in_scope(|| log.info(format_args!("order {order_id}")));
}

#[docket::task]
async fn imported(span: Span, log: TaskLogger) -> u32 {
    let _ = span;
    log.fields().attempt
}

fn main() {
    let call = Traced::new(7);
    assert_eq!(call.order_id, 7);
    let _: Call = call.into();
    let _: Call = Imported::new().into();
    let parameters = |name| {
        docket::__private::registered()
            .find(|task| task.name() == name)
            .unwrap()
            .parameters()
    };
    assert_eq!(parameters("traced"), ["order_id"]);
    assert!(parameters("imported").is_empty());
}
