//! The orchestrator: starts sagas from trigger events, drives them to the end, resumes the
//! unfinished ones after a restart, and lets callers wait on a saga's state.

mod driver;
mod lease;
mod start;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use event_bus_core::{EventBus, EventEnvelope, HandlerError, SubscriptionHandle, handler_fn};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::command::{REPLY_EVENT_TYPE, Replies};
use crate::definition::SagaDefinition;
use crate::error::SagaError;
use crate::repository::{Lease, SagaRepository};
use crate::settings::SagaSettings;
use crate::state::SagaState;

pub use start::{StartOutcome, saga_id};

/// Runs sagas over an event bus, keeping their state in a [`SagaRepository`]; cheap to clone.
#[derive(Clone)]
pub struct SagaOrchestrator {
    inner: Arc<Inner>,
}

struct Inner {
    bus: Arc<EventBus>,
    repository: Arc<dyn SagaRepository>,
    settings: SagaSettings,
    definitions: RwLock<HashMap<String, Arc<SagaDefinition>>>,
    /// The sagas this instance drives, each with the token that stops its driver.
    active: Mutex<HashMap<Uuid, CancellationToken>>,
    renewing: AtomicBool,
    sweeping: AtomicBool,
    tasks: Mutex<JoinSet<()>>,
    subscriptions: Mutex<Vec<SubscriptionHandle>>,
    changed: Notify,
    shutdown: CancellationToken,
    replies: Arc<Replies>,
    instance: Uuid,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SagaOrchestrator {
    /// An orchestrator with no sagas registered yet.
    pub fn new(
        bus: Arc<EventBus>,
        repository: Arc<dyn SagaRepository>,
        settings: SagaSettings,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                bus,
                repository,
                settings,
                definitions: RwLock::default(),
                active: Mutex::default(),
                renewing: AtomicBool::new(false),
                sweeping: AtomicBool::new(false),
                tasks: Mutex::new(JoinSet::new()),
                subscriptions: Mutex::default(),
                changed: Notify::new(),
                shutdown: CancellationToken::new(),
                replies: Arc::default(),
                instance: Uuid::now_v7(),
            }),
        }
    }

    /// Adds a saga definition, replacing one of the same name.
    pub fn register(&self, definition: SagaDefinition) -> Result<(), SagaError> {
        definition.validate()?;
        self.inner
            .definitions
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(definition.name.clone(), Arc::new(definition));
        Ok(())
    }

    /// The settings it runs with.
    pub fn settings(&self) -> &SagaSettings {
        &self.inner.settings
    }

    /// Where sagas are kept; query it for running, failed or compensated sagas and step logs.
    pub fn repository(&self) -> &Arc<dyn SagaRepository> {
        &self.inner.repository
    }

    /// The bus it publishes on.
    pub fn bus(&self) -> &Arc<EventBus> {
        &self.inner.bus
    }

    /// This instance's id, the owner of the sagas it drives.
    pub fn instance(&self) -> Uuid {
        self.inner.instance
    }

    fn lease(&self) -> Lease {
        Lease {
            owner: self.inner.instance,
            duration: self.inner.settings.lease,
        }
    }

    fn definition(&self, name: &str) -> Option<Arc<SagaDefinition>> {
        self.inner
            .definitions
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// Subscribes each registered saga to its trigger event type, in the consumer group
    /// `saga-{name}` (a delivery is acknowledged once the saga is stored), and this
    /// orchestrator to command replies (`saga.reply`, a group of its own). Does nothing when
    /// sagas are disabled (`ENABLE_SAGAS=false`).
    pub async fn subscribe(&self) -> Result<(), SagaError> {
        if !self.inner.settings.enabled {
            tracing::info!("sagas are disabled (ENABLE_SAGAS=false); not subscribing");
            return Ok(());
        }
        let definitions: Vec<Arc<SagaDefinition>> = self
            .inner
            .definitions
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        let replies = Arc::clone(&self.inner.replies);
        let reply_handler = handler_fn(move |reply: EventEnvelope| {
            let outcome = replies.deliver(&reply);
            async move { outcome }
        });
        // A group of its own: every orchestrator sees every reply and keeps those it awaits.
        // It is removed when the orchestrator stops, and expires if it dies.
        let reply_group = format!("saga-replies-{}", self.inner.instance.simple());
        let config = self
            .inner
            .bus
            .subscription(REPLY_EVENT_TYPE, &reply_group)
            .ephemeral();
        let handle = self.inner.bus.subscribe(config, reply_handler).await?;
        lock(&self.inner.subscriptions).push(handle);
        self.inner.replies.mark_subscribed();
        for definition in definitions {
            let orchestrator = self.clone();
            let name = definition.name.clone();
            let handler = handler_fn(move |event: EventEnvelope| {
                let orchestrator = orchestrator.clone();
                let name = name.clone();
                async move {
                    match orchestrator.start(&name, &event).await {
                        Ok(_) => Ok(()),
                        Err(SagaError::UnknownSaga(name)) => {
                            Err(HandlerError::permanent(SagaError::UnknownSaga(name)))
                        }
                        Err(error) => Err(HandlerError::retryable(error)),
                    }
                }
            });
            let config = self
                .inner
                .bus
                .subscription(&definition.trigger, &format!("saga-{}", definition.name));
            let handle = self.inner.bus.subscribe(config, handler).await?;
            lock(&self.inner.subscriptions).push(handle);
        }
        Ok(())
    }

    /// The trigger subscriptions [`subscribe`](Self::subscribe) opened, for their counters.
    pub fn subscriptions(&self) -> Vec<SubscriptionHandle> {
        lock(&self.inner.subscriptions).clone()
    }

    /// Drives, in the background, every running or compensating saga of a registered type
    /// that no live instance holds: its lease was released by a clean shutdown or has expired
    /// (its owner died). Returns their ids. From then on, until shutdown, it looks again every
    /// quarter lease, so the sagas of an instance that dies later are taken over too. Safe to
    /// call at every start while other instances run: it never takes a saga whose owner is
    /// alive.
    pub async fn resume(&self) -> Result<Vec<Uuid>, SagaError> {
        if !self.inner.settings.enabled {
            return Ok(Vec::new());
        }
        let resumed = self.take_over().await?;
        if !self.inner.sweeping.swap(true, Ordering::SeqCst) {
            let orchestrator = self.clone();
            lock(&self.inner.tasks).spawn(async move { orchestrator.sweep().await });
        }
        Ok(resumed)
    }

    /// Waits until the saga's state satisfies `condition`, or fails after `timeout`.
    pub async fn wait_until(
        &self,
        id: Uuid,
        timeout: Duration,
        condition: impl Fn(&SagaState) -> bool,
    ) -> Result<SagaState, SagaError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let changed = self.inner.changed.notified();
            let state = self.inner.repository.get(id).await?;
            if let Some(state) = &state
                && condition(state)
            {
                return Ok(state.clone());
            }
            let poll = tokio::time::Instant::now() + Duration::from_millis(200);
            let _ = tokio::time::timeout_at(poll.min(deadline), changed).await;
            if tokio::time::Instant::now() >= deadline {
                return Err(SagaError::WaitTimeout {
                    id,
                    timeout,
                    last: state.map_or_else(|| "not stored".to_owned(), |s| s.status.to_string()),
                });
            }
        }
    }

    /// Waits until the saga is completed, compensated or failed.
    pub async fn wait_finished(&self, id: Uuid, timeout: Duration) -> Result<SagaState, SagaError> {
        self.wait_until(id, timeout, |s| s.status.is_terminal())
            .await
    }

    /// Stops taking trigger events, and stops driving sagas at their next step boundary (an
    /// action or compensation in flight is abandoned and runs again on resume), releasing
    /// their leases so another instance takes them over at once.
    pub async fn shutdown(&self) {
        let subscriptions = std::mem::take(&mut *lock(&self.inner.subscriptions));
        futures::future::join_all(subscriptions.iter().map(SubscriptionHandle::shutdown)).await;
        self.inner.shutdown.cancel();
        let mut tasks = std::mem::take(&mut *lock(&self.inner.tasks));
        while tasks.join_next().await.is_some() {}
    }

    fn spawn_drive(&self, id: Uuid) {
        let stop = self.inner.shutdown.child_token();
        {
            let mut active = lock(&self.inner.active);
            if active.contains_key(&id) {
                return;
            }
            active.insert(id, stop.clone());
        }
        if !self.inner.renewing.swap(true, Ordering::SeqCst) {
            let orchestrator = self.clone();
            lock(&self.inner.tasks).spawn(async move { orchestrator.renew_leases().await });
        }
        let orchestrator = self.clone();
        let mut tasks = lock(&self.inner.tasks);
        while tasks.try_join_next().is_some() {}
        tasks.spawn(async move {
            orchestrator.drive(id, stop).await;
            lock(&orchestrator.inner.active).remove(&id);
            orchestrator.inner.changed.notify_waiters();
        });
    }
}
