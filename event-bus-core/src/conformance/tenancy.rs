//! Tenant safety: a tenant's subscriber never handles another tenant's events.

use super::ConformanceTarget;
use super::fixture::{Fixture, TIMEOUT, header_map, ids, take_messages};
use crate::dead_letter::headers;
use crate::envelope::{EventEnvelope, wire_headers};
use crate::testing::Recorder;
use crate::transport::SubscriptionConfig;

/// Interleaved events of tenants `acme` and `globex`: each tenant's subscriber (same handler
/// name, per-tenant consumer groups) handles exactly its own tenant's events, whether the broker
/// or the worker filters out the others; every message
/// carries its tenant as the `tenant_id` attribute; a message whose attribute says `acme` but
/// whose envelope says `globex` is dead-lettered with reason `tenant-mismatch`, never handled.
pub async fn a_tenant_never_handles_another_tenants_events(
    target: &(impl ConformanceTarget + ?Sized),
) {
    const PER_TENANT: u32 = 20;
    let fixture = Fixture::new(target);
    let mut dead_letters = fixture.watch_dead_letters().await;
    let topic = fixture.topic("tenant.event");
    let mut raw = fixture
        .subscribe_raw(&SubscriptionConfig::new(
            &topic,
            format!("{}-raw", fixture.settings.subscription_prefix),
        ))
        .await;
    let bus = fixture.bus().await;
    let (acme, globex) = (Recorder::new(), Recorder::new());
    let acme_subscription = bus
        .subscribe(
            fixture.subscription("tenant.event", "h").tenant("acme"),
            acme.clone(),
        )
        .await
        .expect("subscribe acme");
    let globex_subscription = bus
        .subscribe(
            fixture.subscription("tenant.event", "h").tenant("globex"),
            globex.clone(),
        )
        .await
        .expect("subscribe globex");

    let event = |tenant: &str, n: u32| {
        EventEnvelope::builder("tenant.event", serde_json::json!({"n": n}))
            .aggregate("account", format!("{tenant}-{}", n % 3), u64::from(n) + 1)
            .tenant_id(tenant)
            .build()
    };
    let (mut acme_events, mut globex_events) = (Vec::new(), Vec::new());
    for n in 0..PER_TENANT {
        acme_events.push(event("acme", n));
        globex_events.push(event("globex", n));
        bus.publish(&acme_events[acme_events.len() - 1])
            .await
            .expect("publish");
        bus.publish(&globex_events[globex_events.len() - 1])
            .await
            .expect("publish");
    }
    let spoofed = event("globex", PER_TENANT);
    let message = spoofed
        .to_message()
        .expect("encode")
        .with_header(wire_headers::TENANT_ID, "acme");
    fixture
        .broker()
        .await
        .publish(&topic, message)
        .await
        .expect("publish the spoofed message");

    // Other tenants' events are dropped either by the broker (a subscription filter) or by the
    // worker's filter (counted as skipped); either way they are never handled.
    let acme_stats = acme_subscription
        .stats()
        .wait_until(TIMEOUT, |s| {
            s.handled + s.dead_lettered > u64::from(PER_TENANT) || s.retried > 0
        })
        .await
        .expect("acme's subscription settles its events and the mismatch");
    let globex_stats = globex_subscription
        .stats()
        .wait_until(TIMEOUT, |s| s.handled >= u64::from(PER_TENANT))
        .await
        .expect("globex's subscription handles its events");
    assert_eq!(
        (
            acme_stats.handled,
            acme_stats.dead_lettered,
            acme_stats.retried
        ),
        (u64::from(PER_TENANT), 1, 0),
        "acme: handled its own, dead-lettered the mismatch ({acme_stats})"
    );
    assert!(acme_stats.skipped <= u64::from(PER_TENANT), "{acme_stats}");
    assert_eq!(
        (globex_stats.handled, globex_stats.dead_lettered),
        (u64::from(PER_TENANT), 0),
        "globex: handled its own ({globex_stats})"
    );
    assert!(
        globex_stats.skipped <= u64::from(PER_TENANT) + 1,
        "{globex_stats}"
    );
    let handled_by_acme = acme.events();
    assert_eq!(ids(&handled_by_acme), ids(&acme_events));
    assert!(
        handled_by_acme
            .iter()
            .all(|e| e.tenant_id.as_deref() == Some("acme"))
    );
    assert!(
        !ids(&handled_by_acme).contains(&spoofed.id),
        "the mismatch was handled"
    );
    let handled_by_globex = globex.events();
    assert_eq!(ids(&handled_by_globex), ids(&globex_events));

    let dead = take_messages(dead_letters.as_mut(), 1).await.remove(0);
    assert_eq!(
        EventEnvelope::from_message(&dead).expect("intact").id,
        spoofed.id
    );
    let h = header_map(&dead);
    assert_eq!(h.get(headers::REASON), Some(&"tenant-mismatch"));
    assert!(h[headers::SUBSCRIPTION].ends_with("-tenant-acme"), "{h:?}");

    for message in take_messages(raw.as_mut(), 2 * PER_TENANT as usize + 1).await {
        let envelope = EventEnvelope::from_message(&message).expect("an envelope");
        let attribute = message
            .headers
            .get(wire_headers::TENANT_ID)
            .map(String::as_str);
        if envelope.id == spoofed.id {
            assert_eq!(attribute, Some("acme"));
        } else {
            assert_eq!(
                attribute,
                envelope.tenant_id.as_deref(),
                "the tenant travels as the `tenant_id` attribute"
            );
        }
    }
    raw.close().await.expect("close");
    dead_letters.close().await.expect("close");
    bus.shutdown().await.expect("shutdown");
}
