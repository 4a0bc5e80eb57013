//! The circuit-breaker layer: a handler whose downstream keeps failing stops calling it for a
//! while, and the events wait (retried later, never dead-lettered for it) instead of failing.
//!
//! Closed: calls go through; `failure_threshold` retryable failures in a row open it. Open:
//! calls are deferred at once with [`CircuitOpen`] (not a failed attempt) until `cool_down` has passed. Half-open:
//! one probe call goes through (others fail fast); its success closes the circuit, its failure
//! opens it for another cool-down. Permanent failures say nothing about the downstream and
//! neither count nor reset. Time is `tokio::time`, so tests can pause and advance it.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;
use tower_layer::Layer;

use super::{Handler, HandlerError};
use crate::envelope::EventEnvelope;

/// Shortest delay a fail-fast call asks for, so waiting events do not spin.
const MIN_RETRY: Duration = Duration::from_millis(10);

/// Wraps handlers in one circuit breaker: every handler it wraps shares the breaker's state,
/// so handlers calling one downstream can share one circuit.
#[derive(Clone)]
pub struct CircuitBreakerLayer {
    breaker: Arc<Breaker>,
}

impl CircuitBreakerLayer {
    /// Opens after `failure_threshold` retryable failures in a row (at least 1) and lets a
    /// probe through after `cool_down`.
    pub fn new(failure_threshold: u32, cool_down: Duration) -> Self {
        Self {
            breaker: Arc::new(Breaker {
                failure_threshold: failure_threshold.max(1),
                cool_down,
                state: Mutex::new(State::Closed { failures: 0 }),
            }),
        }
    }

    /// The state now.
    pub fn state(&self) -> CircuitState {
        self.breaker.state()
    }
}

impl<H> Layer<H> for CircuitBreakerLayer {
    type Service = CircuitBreaker<H>;

    fn layer(&self, inner: H) -> Self::Service {
        CircuitBreaker {
            inner,
            breaker: Arc::clone(&self.breaker),
        }
    }
}

/// A handler behind a circuit breaker.
pub struct CircuitBreaker<H> {
    inner: H,
    breaker: Arc<Breaker>,
}

/// The state of a circuit, as observed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CircuitState {
    /// Calls go through.
    Closed,
    /// Calls fail fast.
    Open,
    /// The cool-down passed: the next call (or the one running) is the probe.
    HalfOpen,
}

/// The circuit is open: the handler was not called. Retryable; the worker retries the event
/// after `retry_in` without counting it toward dead-lettering.
#[derive(Debug, thiserror::Error)]
#[error("circuit open: the downstream failed repeatedly; retry in {retry_in:?}")]
pub struct CircuitOpen {
    /// When the circuit will let a probe through.
    pub retry_in: Duration,
}

#[derive(Debug)]
enum State {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

struct Breaker {
    failure_threshold: u32,
    cool_down: Duration,
    state: Mutex<State>,
}

/// What a call was let through as.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Permit {
    Call,
    Probe,
}

/// How a call ended, for the breaker.
enum Verdict {
    Success,
    Failure,
    Neutral,
}

impl Breaker {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn state(&self) -> CircuitState {
        match *self.lock() {
            State::Closed { .. } => CircuitState::Closed,
            State::Open { until } if Instant::now() < until => CircuitState::Open,
            State::Open { .. } | State::HalfOpen { .. } => CircuitState::HalfOpen,
        }
    }

    fn admit(&self) -> Result<Permit, CircuitOpen> {
        let mut state = self.lock();
        let now = Instant::now();
        match *state {
            State::Closed { .. } => Ok(Permit::Call),
            State::Open { until } if now < until => Err(CircuitOpen {
                retry_in: (until - now).max(MIN_RETRY),
            }),
            State::Open { .. } | State::HalfOpen { probing: false } => {
                *state = State::HalfOpen { probing: true };
                Ok(Permit::Probe)
            }
            State::HalfOpen { probing: true } => Err(CircuitOpen {
                retry_in: (self.cool_down / 10).max(MIN_RETRY),
            }),
        }
    }

    fn record(&self, permit: Permit, verdict: Verdict) {
        let mut state = self.lock();
        let open = || State::Open {
            until: Instant::now() + self.cool_down,
        };
        match (permit, verdict, &mut *state) {
            (_, Verdict::Success, _) => *state = State::Closed { failures: 0 },
            (Permit::Probe, Verdict::Failure, _) => {
                tracing::warn!("circuit breaker probe failed; open again");
                *state = open();
            }
            (Permit::Probe, Verdict::Neutral, _) => *state = State::HalfOpen { probing: false },
            (Permit::Call, Verdict::Failure, State::Closed { failures }) => {
                *failures += 1;
                if *failures >= self.failure_threshold {
                    tracing::warn!(failures = *failures, "circuit breaker open");
                    *state = open();
                }
            }
            // A call let through while closed, ending after the circuit changed: the newer
            // state stands.
            (Permit::Call, _, _) => {}
        }
    }
}

/// Records the call as a failure unless it finished: a panic or a dropped future counts.
struct CallGuard<'a> {
    breaker: &'a Breaker,
    permit: Permit,
    finished: bool,
}

impl CallGuard<'_> {
    fn finish(mut self, verdict: Verdict) {
        self.finished = true;
        self.breaker.record(self.permit, verdict);
    }
}

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        if !self.finished {
            self.breaker.record(self.permit, Verdict::Failure);
        }
    }
}

#[async_trait]
impl<H: Handler> Handler for CircuitBreaker<H> {
    async fn handle(&self, event: &EventEnvelope) -> Result<(), HandlerError> {
        let permit = self
            .breaker
            .admit()
            .map_err(|open| HandlerError::deferred(open.retry_in, open))?;
        let guard = CallGuard {
            breaker: &self.breaker,
            permit,
            finished: false,
        };
        let outcome = self.inner.handle(event).await;
        guard.finish(match &outcome {
            Ok(()) => Verdict::Success,
            Err(HandlerError::Retryable(_)) => Verdict::Failure,
            Err(HandlerError::Permanent(_) | HandlerError::Deferred { .. }) => Verdict::Neutral,
        });
        outcome
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

    use super::*;
    use crate::handler::handler_fn;

    const COOL_DOWN: Duration = Duration::from_secs(30);

    /// A downstream that fails while `down` is set, counting calls.
    struct Downstream {
        down: AtomicBool,
        calls: AtomicU32,
    }

    fn setup(threshold: u32) -> (Arc<Downstream>, CircuitBreakerLayer, impl Handler) {
        let downstream = Arc::new(Downstream {
            down: AtomicBool::new(true),
            calls: AtomicU32::new(0),
        });
        let layer = CircuitBreakerLayer::new(threshold, COOL_DOWN);
        let handler = {
            let downstream = Arc::clone(&downstream);
            handler_fn(move |_| {
                let downstream = Arc::clone(&downstream);
                async move {
                    downstream.calls.fetch_add(1, Ordering::SeqCst);
                    if downstream.down.load(Ordering::SeqCst) {
                        Err(HandlerError::retryable("downstream unavailable"))
                    } else {
                        Ok(())
                    }
                }
            })
        };
        (downstream, layer.clone(), layer.layer(handler))
    }

    fn event() -> EventEnvelope {
        EventEnvelope::builder("x.y", serde_json::json!({})).build()
    }

    fn is_circuit_open(outcome: &Result<(), HandlerError>) -> bool {
        matches!(outcome, Err(HandlerError::Deferred { reason, .. }) if reason.is::<CircuitOpen>())
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_consecutive_failures_and_then_fails_fast() {
        let (downstream, layer, handler) = setup(3);
        for _ in 0..3 {
            let outcome = handler.handle(&event()).await;
            assert!(outcome.is_err() && !is_circuit_open(&outcome));
        }
        assert_eq!(layer.state(), CircuitState::Open);
        for _ in 0..5 {
            let outcome = handler.handle(&event()).await;
            assert!(is_circuit_open(&outcome), "{outcome:?}");
        }
        assert_eq!(
            downstream.calls.load(Ordering::SeqCst),
            3,
            "an open circuit does not call the handler"
        );
        let Err(HandlerError::Deferred { after, reason }) = handler.handle(&event()).await else {
            panic!("fails fast");
        };
        let retry_in = reason.downcast_ref::<CircuitOpen>().unwrap().retry_in;
        assert_eq!(after, retry_in);
        assert_eq!(
            retry_in, COOL_DOWN,
            "time is paused: the whole cool-down remains"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_resets_the_count() {
        let (downstream, layer, handler) = setup(3);
        for _ in 0..2 {
            handler.handle(&event()).await.unwrap_err();
        }
        downstream.down.store(false, Ordering::SeqCst);
        handler.handle(&event()).await.unwrap();
        downstream.down.store(true, Ordering::SeqCst);
        for _ in 0..2 {
            handler.handle(&event()).await.unwrap_err();
        }
        assert_eq!(layer.state(), CircuitState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn after_the_cool_down_one_probe_goes_through_and_its_failure_reopens() {
        let (downstream, layer, handler) = setup(1);
        handler.handle(&event()).await.unwrap_err();
        tokio::time::advance(COOL_DOWN - Duration::from_millis(1)).await;
        assert!(is_circuit_open(&handler.handle(&event()).await));
        assert_eq!(downstream.calls.load(Ordering::SeqCst), 1);

        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(layer.state(), CircuitState::HalfOpen);
        let probe = handler.handle(&event()).await;
        assert!(probe.is_err() && !is_circuit_open(&probe), "the probe ran");
        assert_eq!(downstream.calls.load(Ordering::SeqCst), 2);
        assert_eq!(layer.state(), CircuitState::Open, "a failed probe reopens");
        assert!(is_circuit_open(&handler.handle(&event()).await));

        tokio::time::advance(COOL_DOWN).await;
        downstream.down.store(false, Ordering::SeqCst);
        handler.handle(&event()).await.expect("the probe succeeds");
        assert_eq!(layer.state(), CircuitState::Closed);
        handler.handle(&event()).await.expect("closed again");
        assert_eq!(downstream.calls.load(Ordering::SeqCst), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn while_the_probe_runs_other_calls_fail_fast() {
        let layer = CircuitBreakerLayer::new(1, COOL_DOWN);
        let release = Arc::new(tokio::sync::Notify::new());
        let calls = Arc::new(AtomicU32::new(0));
        let handler = Arc::new(layer.layer({
            let (release, calls) = (Arc::clone(&release), Arc::clone(&calls));
            handler_fn(move |_| {
                let (release, calls) = (Arc::clone(&release), Arc::clone(&calls));
                async move {
                    if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                        return Err(HandlerError::retryable("down"));
                    }
                    release.notified().await;
                    Ok(())
                }
            })
        }));
        handler.handle(&event()).await.unwrap_err();
        tokio::time::advance(COOL_DOWN).await;
        let probe = tokio::spawn({
            let handler = Arc::clone(&handler);
            async move { handler.handle(&event()).await }
        });
        while calls.load(Ordering::SeqCst) < 2 {
            tokio::task::yield_now().await;
        }
        assert!(is_circuit_open(&handler.handle(&event()).await));
        release.notify_one();
        probe.await.unwrap().expect("the probe succeeds");
        assert_eq!(layer.state(), CircuitState::Closed);
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_failures_do_not_open_it_and_a_panicking_probe_reopens_it() {
        let layer = CircuitBreakerLayer::new(2, COOL_DOWN);
        let permanent = layer.layer(handler_fn(|_| async {
            Err(HandlerError::permanent("bad payload"))
        }));
        for _ in 0..5 {
            permanent.handle(&event()).await.unwrap_err();
        }
        assert_eq!(layer.state(), CircuitState::Closed);

        let failing = layer.layer(handler_fn(|_| async {
            Err(HandlerError::retryable("down"))
        }));
        for _ in 0..2 {
            failing.handle(&event()).await.unwrap_err();
        }
        tokio::time::advance(COOL_DOWN).await;
        let panicking = layer.layer(handler_fn(|_| async { panic!("probe blew up") }));
        let panicked = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(
            panicking.handle(&event()),
        ))
        .await;
        assert!(panicked.is_err());
        assert_eq!(
            layer.state(),
            CircuitState::Open,
            "a panicking probe counts as a failure"
        );
    }
}
