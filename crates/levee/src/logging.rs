//! levee's own log (`[log] level`, `error`, `error_format`): text or JSON
//! lines, to stderr, stdout or a file that `levee reload` and SIGUSR1
//! reopen (levee-server's `LogFile`).
//!
//! Each connection is a span (`conn`: listener, peer) and each HTTP request
//! within it another (`request`: method, path and a `request_id` field the
//! request ids will fill), so a line logged on its behalf carries them: in
//! text before the message, in JSON under `spans`.

use std::io::IsTerminal;
use std::sync::Arc;

use anyhow::Context;
use levee_config::{ErrorLogFormat, ErrorLogTarget, LogConfig};
use levee_server::logfile::LogFile;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

/// Sets the process's subscriber up; the file to reopen, when the log goes
/// to one.
pub(crate) fn init(log: &LogConfig) -> anyhow::Result<Option<Arc<LogFile>>> {
    let (writer, ansi, file) = match &log.error {
        ErrorLogTarget::Stderr => (
            BoxMakeWriter::new(std::io::stderr),
            std::io::stderr().is_terminal(),
            None,
        ),
        ErrorLogTarget::Stdout => (
            BoxMakeWriter::new(std::io::stdout),
            std::io::stdout().is_terminal(),
            None,
        ),
        ErrorLogTarget::File(path) => {
            let file = LogFile::open(path)
                .with_context(|| format!("log.error: cannot open {}", path.display()))?;
            let writer = file.clone();
            (
                BoxMakeWriter::new(move || writer.writer()),
                false,
                Some(file),
            )
        }
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter(&log.level))
        .with_writer(writer)
        .with_target(false);
    match log.error_format {
        ErrorLogFormat::Text => builder.with_ansi(ansi).init(),
        ErrorLogFormat::Json => builder
            .json()
            .with_current_span(false)
            .with_span_list(true)
            .init(),
    }
    Ok(file)
}

fn filter(level: &str) -> tracing_subscriber::EnvFilter {
    // The admin audit log stays on whatever `[log] level` says; LEVEE_LOG,
    // set by hand, is taken as it is.
    let configured = |level: &str| {
        tracing_subscriber::EnvFilter::try_new(format!(
            "{level},{}=info",
            levee_admin::audit::TARGET
        ))
    };
    tracing_subscriber::EnvFilter::try_from_env("LEVEE_LOG")
        .or_else(|_| configured(level))
        .or_else(|_| configured("info"))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"))
}
