//! Logging for the command line: `--logging-level` and `--logging-format`.

use std::io::IsTerminal;

use tracing_subscriber::filter::LevelFilter;

use super::args::LogFormat;

/// Installs the process's tracing subscriber, writing to stderr. Does nothing when the
/// application already installed one.
pub(super) fn install(level: tracing::Level, format: LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_max_level(LevelFilter::from_level(level))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let installed = match format {
        LogFormat::Plain => builder.with_target(false).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
    };
    // An application that set up its own logging keeps it.
    drop(installed);
}
