//! A type that cannot be injected is reported once per parameter, at its whole path.

mod telemetry {
    pub struct Span;
}

#[docket::task]
async fn send_email(to: String, #[inject] sender: std::string::String, span: telemetry::Span) {
    let _ = (to, sender, span);
}

fn main() {}
