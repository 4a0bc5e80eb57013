//! Broker leases of the messages a subscription holds: renewed while their handlers run, so a
//! slow handler's message is not given to another member, and dropped once settled.

use std::collections::HashSet;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

/// The messages (by the broker's id for them) one subscription holds unsettled.
pub struct Leases<K> {
    held: Mutex<HashSet<K>>,
}

impl<K> Default for Leases<K> {
    fn default() -> Self {
        Self {
            held: Mutex::new(HashSet::new()),
        }
    }
}

impl<K: Eq + Hash + Clone + Send + 'static> Leases<K> {
    /// A set whose leases `renew` extends every `period` (with every held id at once) until
    /// the set is dropped. A failed renewal is tried again at the next period.
    pub fn renewed_every<F, Fut>(period: Duration, renew: F) -> Arc<Self>
    where
        F: Fn(Vec<K>) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let leases = Arc::new(Self::default());
        tokio::spawn(keep_renewing(Arc::downgrade(&leases), period, renew));
        leases
    }

    /// The message is held from now on.
    pub fn hold(&self, id: K) {
        self.lock().insert(id);
    }

    /// The message is settled (or handed back): its lease is no longer renewed.
    pub fn release(&self, id: &K) {
        self.lock().remove(id);
    }

    /// Every held id, emptying the set (a closing subscription hands them back).
    pub fn take_all(&self) -> Vec<K> {
        self.lock().drain().collect()
    }

    fn snapshot(&self) -> Vec<K> {
        self.lock().iter().cloned().collect()
    }

    fn lock(&self) -> MutexGuard<'_, HashSet<K>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

async fn keep_renewing<K, F, Fut>(leases: Weak<Leases<K>>, period: Duration, renew: F)
where
    K: Eq + Hash + Clone + Send + 'static,
    F: Fn(Vec<K>) -> Fut,
    Fut: Future<Output = ()>,
{
    loop {
        tokio::time::sleep(period).await;
        let Some(held) = leases.upgrade().map(|leases| leases.snapshot()) else {
            return;
        };
        if !held.is_empty() {
            renew(held).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn held_ids_are_renewed_until_released_and_renewal_stops_with_the_set() {
        let renewed = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&renewed);
        let leases = Leases::renewed_every(Duration::from_secs(1), move |mut ids: Vec<u32>| {
            ids.sort_unstable();
            seen.lock().unwrap().push(ids);
            async {}
        });
        leases.hold(1);
        leases.hold(2);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        leases.release(&1);
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(leases.take_all(), vec![2]);
        tokio::time::sleep(Duration::from_secs(1)).await;
        drop(leases);
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(*renewed.lock().unwrap(), vec![vec![1, 2], vec![2]]);
    }
}
