//! W3C Trace Context in message headers: the publisher writes `traceparent` (and `tracestate`)
//! from the OpenTelemetry context of its `event.publish` span; the consumer's `event.handle`
//! span takes it as its remote parent, so one trace runs from producer to consumer.
//!
//! The contexts are OpenTelemetry's, bridged from `tracing` spans by `tracing-opentelemetry`:
//! with an `OpenTelemetryLayer` installed, traces continue across services whatever the
//! backend. Without one, no `traceparent` is written, and an incoming one is still recorded as
//! the `trace_id` field of the `event.handle` span, for logs.

use std::collections::BTreeMap;

use opentelemetry::Context;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Header names of the W3C Trace Context.
pub mod headers {
    /// `00-{trace id}-{parent span id}-{flags}`.
    pub const TRACEPARENT: &str = "traceparent";
    /// Vendor-specific trace state, passed along as it is.
    pub const TRACESTATE: &str = "tracestate";
}

/// Writes the span's OpenTelemetry context as `traceparent` / `tracestate`; nothing when the
/// span has no valid context (no OpenTelemetry layer installed).
pub fn inject(span: &tracing::Span, headers: &mut BTreeMap<String, String>) {
    let context = span.context();
    let span_ref = context.span();
    let span_context = span_ref.span_context();
    if !span_context.is_valid() {
        return;
    }
    headers.insert(
        headers::TRACEPARENT.to_owned(),
        format_traceparent(span_context),
    );
    let state = span_context.trace_state().header();
    if !state.is_empty() {
        headers.insert(headers::TRACESTATE.to_owned(), state);
    }
}

/// The remote span context the headers carry, if `traceparent` is present and valid.
pub fn extract(headers: &BTreeMap<String, String>) -> Option<SpanContext> {
    let mut context = parse_traceparent(headers.get(headers::TRACEPARENT)?)?;
    if let Some(state) = headers.get(headers::TRACESTATE)
        && let Ok(state) = state.parse::<TraceState>()
    {
        context = SpanContext::new(
            context.trace_id(),
            context.span_id(),
            context.trace_flags(),
            true,
            state,
        );
    }
    Some(context)
}

/// Makes the headers' trace the parent of `span` (which must not have been entered yet) and
/// records its `trace_id` field; returns the trace id, if any.
pub fn continue_trace(span: &tracing::Span, headers: &BTreeMap<String, String>) -> Option<TraceId> {
    let remote = extract(headers)?;
    let trace_id = remote.trace_id();
    span.record("trace_id", tracing::field::display(trace_id));
    if let Err(error) = span.set_parent(Context::new().with_remote_span_context(remote)) {
        tracing::debug!(%error, "the trace context could not be set as the span's parent");
    }
    Some(trace_id)
}

/// `00-{trace id}-{span id}-{flags}`, lower-case hex.
pub fn format_traceparent(context: &SpanContext) -> String {
    format!(
        "00-{}-{}-{:02x}",
        context.trace_id(),
        context.span_id(),
        context.trace_flags().to_u8()
    )
}

/// Reads a `traceparent` as the W3C recommendation says: version `ff` and all-zero ids are
/// invalid; version `00` has exactly four fields; a later version may append fields.
pub fn parse_traceparent(value: &str) -> Option<SpanContext> {
    let value = value.trim();
    let mut parts = value.split('-');
    let version = parts.next()?;
    let trace_id = parts.next()?;
    let span_id = parts.next()?;
    let flags = parts.next()?;
    let rest = parts.next();
    let lower_hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    if !lower_hex(version, 2) || version == "ff" || (version == "00" && rest.is_some()) {
        return None;
    }
    if !lower_hex(trace_id, 32) || !lower_hex(span_id, 16) || !lower_hex(flags, 2) {
        return None;
    }
    let trace_id = TraceId::from_hex(trace_id).ok()?;
    let span_id = SpanId::from_hex(span_id).ok()?;
    if trace_id == TraceId::INVALID || span_id == SpanId::INVALID {
        return None;
    }
    let flags = u8::from_str_radix(flags, 16).ok()?;
    Some(SpanContext::new(
        trace_id,
        span_id,
        TraceFlags::new(flags) & TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn the_specifications_example_round_trips() {
        let context = parse_traceparent(EXAMPLE).expect("valid");
        assert_eq!(
            context.trace_id(),
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap()
        );
        assert_eq!(
            context.span_id(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap()
        );
        assert!(context.is_sampled());
        assert!(context.is_remote());
        assert_eq!(format_traceparent(&context), EXAMPLE);
    }

    #[test]
    fn invalid_values_are_refused() {
        for value in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
        ] {
            assert!(parse_traceparent(value).is_none(), "{value:?} was accepted");
        }
        assert!(
            parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-later")
                .is_some(),
            "a later version may append fields"
        );
    }

    #[test]
    fn tracestate_travels_with_traceparent() {
        let headers = BTreeMap::from([
            (headers::TRACEPARENT.to_owned(), EXAMPLE.to_owned()),
            (
                headers::TRACESTATE.to_owned(),
                "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7".to_owned(),
            ),
        ]);
        let context = extract(&headers).expect("valid");
        assert_eq!(context.trace_state().get("congo"), Some("t61rcWkgMzE"));
        assert_eq!(
            context.trace_state().header(),
            "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
        );
        assert!(extract(&BTreeMap::new()).is_none());
    }
}
