//! Logging setup: human-readable lines, or one JSON object per line with
//! `EVENT_BUS_LOG_FORMAT=json`. Every publish and every handler call logs an event with the
//! fields `operation` (`publish` or `handle`), `eventType`, `eventId`, `aggregateId` and
//! `latencyMs`, at `info` (a failed publish at `warn`), target `event_bus`; a failed handler
//! call adds `error`.

use std::str::FromStr;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// The variable choosing the format.
pub const LOG_FORMAT_VARIABLE: &str = "EVENT_BUS_LOG_FORMAT";

/// How log lines look.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines (the default).
    #[default]
    Text,
    /// One JSON object per line, event fields at the top level.
    Json,
}

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// `EVENT_BUS_LOG_FORMAT` names no format.
    #[error("unknown EVENT_BUS_LOG_FORMAT `{0}`; expected `text` or `json`")]
    UnknownFormat(String),
    /// A global subscriber was installed already.
    #[error("a tracing subscriber is installed already: {0}")]
    AlreadyInstalled(#[from] tracing::subscriber::SetGlobalDefaultError),
}

impl FromStr for LogFormat {
    type Err = LoggingError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "text" => Ok(Self::Text),
            "json" => Ok(Self::Json),
            _ => Err(LoggingError::UnknownFormat(value.to_owned())),
        }
    }
}

impl LogFormat {
    /// The format `EVENT_BUS_LOG_FORMAT` names (text when unset).
    pub fn from_env() -> Result<Self, LoggingError> {
        std::env::var(LOG_FORMAT_VARIABLE)
            .unwrap_or_default()
            .parse()
    }
}

/// Installs the global subscriber: format from `EVENT_BUS_LOG_FORMAT`, filter from `RUST_LOG`
/// (else `default_filter`), lines to standard error. Returns the format.
pub fn init_logging(default_filter: &str) -> Result<LogFormat, LoggingError> {
    let format = LogFormat::from_env()?;
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    tracing::subscriber::set_global_default(subscriber(format, filter, std::io::stderr))?;
    Ok(format)
}

/// A subscriber writing `format` lines that pass `filter` to `writer`.
pub fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Text => Box::new(builder.with_ansi(false).finish()),
        LogFormat::Json => Box::new(
            builder
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false)
                .finish(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_and_unknown_ones_are_named() {
        assert_eq!("JSON".parse::<LogFormat>().unwrap(), LogFormat::Json);
        assert_eq!("".parse::<LogFormat>().unwrap(), LogFormat::Text);
        let error = "xml".parse::<LogFormat>().unwrap_err();
        assert_eq!(
            error.to_string(),
            "unknown EVENT_BUS_LOG_FORMAT `xml`; expected `text` or `json`"
        );
    }
}
