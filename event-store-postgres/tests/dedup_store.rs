//! The PostgreSQL dedup store against the local server: the claim, renew, complete and release
//! semantics the idempotency layer relies on, with leases on the database's clock.

mod common;

use std::sync::Arc;
use std::time::Duration;

use event_bus_core::idempotency::{Claim, DedupStore};

const LEASE: Duration = Duration::from_secs(30);
const TTL: Duration = Duration::from_secs(3600);

#[tokio::test]
async fn a_key_is_acquired_once_then_in_progress_then_done() {
    let store = common::store(100).await.dedup_store();
    assert_eq!(store.claim("g/k", LEASE).await.unwrap(), Claim::Acquired);
    assert_eq!(store.claim("g/k", LEASE).await.unwrap(), Claim::InProgress);
    store.complete("g/k", TTL).await.unwrap();
    assert_eq!(store.claim("g/k", LEASE).await.unwrap(), Claim::Done);
    assert_eq!(
        store.claim("other/k", LEASE).await.unwrap(),
        Claim::Acquired
    );
}

#[tokio::test]
async fn a_released_key_can_be_claimed_again_but_a_done_one_is_not_released() {
    let store = common::store(100).await.dedup_store();
    store.claim("k", LEASE).await.unwrap();
    store.release("k").await.unwrap();
    assert_eq!(store.claim("k", LEASE).await.unwrap(), Claim::Acquired);
    store.complete("k", TTL).await.unwrap();
    store.release("k").await.unwrap();
    assert_eq!(store.claim("k", LEASE).await.unwrap(), Claim::Done);
}

#[tokio::test]
async fn an_abandoned_claim_expires_and_a_renewed_one_does_not() {
    let store = common::store(100).await.dedup_store();
    let short = Duration::from_millis(300);
    assert_eq!(
        store.claim("abandoned", short).await.unwrap(),
        Claim::Acquired
    );
    assert_eq!(
        store.claim("renewed", short).await.unwrap(),
        Claim::Acquired
    );
    store.renew("renewed", LEASE).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        store.claim("abandoned", LEASE).await.unwrap(),
        Claim::Acquired
    );
    assert_eq!(
        store.claim("renewed", LEASE).await.unwrap(),
        Claim::InProgress
    );
    // A handled key is not turned back into a claim by a late renewal.
    store.complete("renewed", TTL).await.unwrap();
    store.renew("renewed", short).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(store.claim("renewed", LEASE).await.unwrap(), Claim::Done);
    // Nor is an expired claim revived.
    store.claim("expired", short).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    store.renew("expired", LEASE).await.unwrap();
    assert_eq!(
        store.claim("expired", LEASE).await.unwrap(),
        Claim::Acquired
    );
}

#[tokio::test]
async fn handled_keys_expire_after_their_ttl() {
    let store = common::store(100).await.dedup_store();
    store.claim("k", LEASE).await.unwrap();
    store
        .complete("k", Duration::from_millis(300))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(store.claim("k", LEASE).await.unwrap(), Claim::Acquired);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_many_concurrent_claimers_exactly_one_acquires() {
    let pg = common::store(100).await;
    let store: Arc<dyn DedupStore> = Arc::new(pg.dedup_store());
    for round in 0..20 {
        let key = format!("race-{round}");
        let mut claimers = tokio::task::JoinSet::new();
        for _ in 0..8 {
            let (store, key) = (Arc::clone(&store), key.clone());
            claimers.spawn(async move { store.claim(&key, LEASE).await.unwrap() });
        }
        let claims = claimers.join_all().await;
        let acquired = claims.iter().filter(|c| **c == Claim::Acquired).count();
        assert_eq!(acquired, 1, "round {round}: {claims:?}");
    }
}
