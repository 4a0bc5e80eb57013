//! Publishing: one request per message, or, with batching, one request for everything queued
//! for a topic while the previous request was in flight.

use std::collections::HashMap;

use event_bus_core::{BusError, Message};
use gcloud_gax::grpc::Code;
use gcloud_googleapis::pubsub::v1::PubsubMessage;
use gcloud_pubsub::publisher::{Publisher, PublisherConfig};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::JoinHandle;

use super::admin::Admin;
use super::attributes::to_pubsub;
use super::request_error;

/// Most messages Pub/Sub takes in one publish request.
const MAX_BATCH: usize = 1000;
/// Most bytes put into one publish request (Pub/Sub allows 10 MB).
const MAX_BATCH_BYTES: usize = 9 * 1024 * 1024;

struct Pending {
    message: PubsubMessage,
    done: oneshot::Sender<Result<(), BusError>>,
}

/// Sends messages to topics, creating a topic the first time it is missing.
pub(super) struct Sender {
    admin: Admin,
    ordering: bool,
    batching: bool,
    publishers: Mutex<HashMap<String, Publisher>>,
    queues: std::sync::Mutex<HashMap<String, mpsc::UnboundedSender<Pending>>>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl Sender {
    pub(super) fn new(admin: Admin, ordering: bool, batching: bool) -> Self {
        Self {
            admin,
            ordering,
            batching,
            publishers: Mutex::default(),
            queues: std::sync::Mutex::default(),
            workers: Mutex::default(),
        }
    }

    /// Publishes one message and waits for the server's answer.
    pub(super) async fn publish(&self, topic: &str, message: &Message) -> Result<(), BusError> {
        let message = to_pubsub(message, self.ordering);
        if !self.batching {
            return self.send(topic, vec![message]).await;
        }
        let (done, answer) = oneshot::channel();
        self.queue(topic)
            .await
            .send(Pending { message, done })
            .map_err(|_| BusError::Closed("publisher"))?;
        answer.await.unwrap_or(Err(BusError::Closed("publisher")))
    }

    /// Publishes messages in requests of up to 1,000; each message gets its request's outcome.
    pub(super) async fn publish_batch(
        &self,
        topic: &str,
        messages: &[Message],
    ) -> Vec<Result<(), BusError>> {
        let mut results = Vec::with_capacity(messages.len());
        for chunk in chunks(
            messages
                .iter()
                .map(|m| to_pubsub(m, self.ordering))
                .collect(),
        ) {
            let count = chunk.len();
            let outcome = self.send(topic, chunk).await;
            results.extend((0..count).map(|_| outcome.as_ref().map(drop).map_err(copy)));
        }
        results
    }

    /// Stops taking messages and waits until everything queued has been answered.
    pub(super) async fn close(&self) {
        self.queues
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
        for worker in self.workers.lock().await.drain(..) {
            let _ = worker.await;
        }
        for (_, mut publisher) in self.publishers.lock().await.drain() {
            publisher.shutdown().await;
        }
    }

    async fn queue(&self, topic: &str) -> mpsc::UnboundedSender<Pending> {
        let (queue, receiver) = {
            let mut queues = self
                .queues
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(queue) = queues.get(topic) {
                return queue.clone();
            }
            let (queue, receiver) = mpsc::unbounded_channel();
            queues.insert(topic.to_owned(), queue.clone());
            (queue, receiver)
        };
        let worker = tokio::spawn(batches(
            self.admin.clone(),
            self.publisher(topic).await,
            topic.to_owned(),
            receiver,
        ));
        self.workers.lock().await.push(worker);
        queue
    }

    async fn publisher(&self, topic: &str) -> Publisher {
        self.publishers
            .lock()
            .await
            .entry(topic.to_owned())
            .or_insert_with(|| {
                let config = PublisherConfig {
                    workers: 1,
                    ..PublisherConfig::default()
                };
                self.admin.client.topic(topic).new_publisher(Some(config))
            })
            .clone()
    }

    async fn send(&self, topic: &str, messages: Vec<PubsubMessage>) -> Result<(), BusError> {
        let publisher = self.publisher(topic).await;
        send(&self.admin, &publisher, topic, messages).await
    }
}

/// Takes a topic's queued publishes and sends what has gathered as one request at a time.
async fn batches(
    admin: Admin,
    publisher: Publisher,
    topic: String,
    mut receiver: mpsc::UnboundedReceiver<Pending>,
) {
    while let Some(first) = receiver.recv().await {
        let mut bytes = first.message.data.len();
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH && bytes < MAX_BATCH_BYTES {
            match receiver.try_recv() {
                Ok(next) => {
                    bytes += next.message.data.len();
                    batch.push(next);
                }
                Err(_) => break,
            }
        }
        let (messages, waiting): (Vec<_>, Vec<_>) =
            batch.into_iter().map(|p| (p.message, p.done)).unzip();
        let outcome = send(&admin, &publisher, &topic, messages).await;
        for done in waiting {
            let _ = done.send(outcome.as_ref().map(drop).map_err(copy));
        }
    }
}

/// One publish request; a missing topic is created and the request sent again.
async fn send(
    admin: &Admin,
    publisher: &Publisher,
    topic: &str,
    messages: Vec<PubsubMessage>,
) -> Result<(), BusError> {
    match publisher.publish_immediately(messages.clone(), None).await {
        Ok(_) => Ok(()),
        Err(status) if status.code() == Code::NotFound => {
            admin.create_topic(topic).await?;
            publisher
                .publish_immediately(messages, None)
                .await
                .map(drop)
                .map_err(|status| request_error("publish", topic, status))
        }
        Err(status) => Err(request_error("publish", topic, status)),
    }
}

fn chunks(messages: Vec<PubsubMessage>) -> Vec<Vec<PubsubMessage>> {
    let mut chunks: Vec<Vec<PubsubMessage>> = Vec::new();
    let mut bytes = 0;
    for message in messages {
        let fits = chunks
            .last()
            .is_some_and(|c| c.len() < MAX_BATCH && bytes + message.data.len() <= MAX_BATCH_BYTES);
        if !fits {
            chunks.push(Vec::new());
            bytes = 0;
        }
        bytes += message.data.len();
        chunks.last_mut().expect("a chunk").push(message);
    }
    chunks
}

/// The same failure for every message of a request.
fn copy(error: &BusError) -> BusError {
    match error {
        BusError::Closed(what) => BusError::Closed(what),
        BusError::MissingTopology { backend, what } => BusError::MissingTopology {
            backend,
            what: what.clone(),
        },
        BusError::Access {
            backend,
            kind,
            detail,
        } => BusError::access(backend, *kind, detail.clone()),
        BusError::Backend { backend, source } => {
            BusError::backend(backend, SharedFailure(source.to_string()))
        }
        other => BusError::backend("pubsub", SharedFailure(other.to_string())),
    }
}

/// A request's failure, as reported to each message it carried.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct SharedFailure(String);
