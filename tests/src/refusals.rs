//! What a refusal must look like on every backend: a typed error, within a bound, naming the
//! cause and showing no secret; and a missing piece of topology named with the command that
//! creates it.

use std::future::Future;
use std::time::{Duration, Instant};

use event_bus_core::{AccessKind, BusError, Subscriber, SubscriptionConfig};

/// How long a refused login, certificate or permission may take to be reported.
pub const REFUSED_WITHIN: Duration = Duration::from_secs(10);

/// Awaits `attempt`, which must fail within [`REFUSED_WITHIN`] with [`BusError::Access`] of
/// `backend` and `kind`, showing none of `secrets` in its `Display` or `Debug`; returns it.
pub async fn expect_refusal<T>(
    backend: &str,
    kind: AccessKind,
    secrets: &[&str],
    attempt: impl Future<Output = Result<T, BusError>>,
) -> BusError {
    let started = Instant::now();
    let Err(error) = attempt.await else {
        panic!("{backend}: expected a refusal ({kind}), but it was accepted");
    };
    assert!(
        started.elapsed() < REFUSED_WITHIN,
        "{backend}: the refusal took {:?}",
        started.elapsed()
    );
    assert!(
        matches!(&error, BusError::Access { backend: b, kind: k, .. } if *b == backend && *k == kind),
        "{backend}: expected Access ({kind}), got {error:?}"
    );
    let shown = format!("{error} {error:?}");
    for secret in secrets {
        assert!(!shown.contains(secret), "a secret shows in: {shown}");
    }
    error
}

/// `error` is [`BusError::MissingTopology`] naming `what` and `eventbus setup`.
pub fn assert_missing(error: &BusError, what: &str) {
    assert!(
        matches!(error, BusError::MissingTopology { .. }),
        "expected MissingTopology naming {what}, got {error:?}"
    );
    let shown = error.to_string();
    assert!(shown.contains(what), "{shown} does not name {what}");
    assert!(shown.contains("eventbus setup"), "{shown}");
}

/// Subscribing `config` on `broker` must fail as [`assert_missing`] says, naming `what`.
pub async fn expect_missing(
    broker: &(impl Subscriber + ?Sized),
    config: &SubscriptionConfig,
    what: &str,
) {
    match broker.subscribe(config).await {
        Ok(_) => panic!("subscribing {config:?} should fail: {what} is missing"),
        Err(error) => assert_missing(&error, what),
    }
}

/// An instance-scoped group on `topic` must be refused with [`BusError::InstanceScopedGroup`]:
/// only its owner could create and delete it.
pub async fn expect_instance_scoped_refused(broker: &(impl Subscriber + ?Sized), topic: &str) {
    let config = SubscriptionConfig::new(topic, "replies-1").ephemeral();
    match broker.subscribe(&config).await {
        Ok(_) => panic!("an instance-scoped group was allowed under existing topology"),
        Err(error) => assert!(
            matches!(error, BusError::InstanceScopedGroup { .. }),
            "{error:?}"
        ),
    }
}
