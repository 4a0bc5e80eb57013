//! Plain Redis Pub/Sub channels: fast fan-out with no durability or groups. The server never
//! redelivers; a delivery to retry is kept by its subscription and handed out again after its
//! delay, so a failing handler's event is retried and then dead-lettered, not dropped, as long
//! as the process lives.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use event_bus_core::kit::{ClosedFlag, Delivered, Settle};
use event_bus_core::{
    Broker, BusError, Capabilities, Delivery, Message, Publisher, Subscriber, Subscription,
    SubscriptionConfig,
};
use futures::StreamExt;
use redis::aio::{ConnectionManager, PubSubStream};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

use super::broker::connection;
use super::redis_error;

/// Publishes with `PUBLISH` and subscribes with `SUBSCRIBE` on `{prefix}{topic}`.
pub struct RedisChannelBroker {
    client: redis::Client,
    publisher: ConnectionManager,
    prefix: String,
    closed: ClosedFlag,
}

/// A channel message that is not a frame this backend wrote.
#[derive(Debug, thiserror::Error)]
#[error("malformed channel frame: {0}")]
pub struct MalformedFrame(&'static str);

impl RedisChannelBroker {
    /// Connects with `client`, using channels under `prefix`.
    pub async fn connect(client: &redis::Client, prefix: &str) -> Result<Self, BusError> {
        let publisher = connection(client).await?;
        Ok(Self {
            client: client.clone(),
            publisher,
            prefix: prefix.to_owned(),
            closed: ClosedFlag::default(),
        })
    }

    fn channel(&self, topic: &str) -> String {
        format!("{}{topic}", self.prefix)
    }
}

/// One frame: a JSON line with key and headers, then the payload bytes.
fn encode(message: &Message) -> Vec<u8> {
    let meta = serde_json::json!({ "key": message.key, "headers": message.headers });
    let mut frame = serde_json::to_vec(&meta).expect("strings always encode");
    frame.push(b'\n');
    frame.extend_from_slice(&message.payload);
    frame
}

fn decode(frame: &[u8]) -> Result<Message, MalformedFrame> {
    let split = frame
        .iter()
        .position(|&b| b == b'\n')
        .ok_or(MalformedFrame("no header line"))?;
    let meta: serde_json::Value = serde_json::from_slice(&frame[..split])
        .map_err(|_| MalformedFrame("header line is not JSON"))?;
    let headers: BTreeMap<String, String> = serde_json::from_value(meta["headers"].clone())
        .map_err(|_| MalformedFrame("headers are not strings"))?;
    Ok(Message {
        key: meta["key"].as_str().map(str::to_owned),
        headers,
        payload: frame[split + 1..].to_vec().into(),
    })
}

#[async_trait]
impl Publisher for RedisChannelBroker {
    async fn publish(&self, topic: &str, message: Message) -> Result<(), BusError> {
        self.closed.ensure_open("publisher")?;
        let mut conn = self.publisher.clone();
        redis::cmd("PUBLISH")
            .arg(self.channel(topic))
            .arg(encode(&message))
            .query_async::<i64>(&mut conn)
            .await
            .map_err(redis_error)?;
        Ok(())
    }

    async fn close(&self) -> Result<(), BusError> {
        self.closed.close();
        Ok(())
    }
}

#[async_trait]
impl Subscriber for RedisChannelBroker {
    async fn subscribe(
        &self,
        config: &SubscriptionConfig,
    ) -> Result<Box<dyn Subscription>, BusError> {
        let mut pubsub = self.client.get_async_pubsub().await.map_err(redis_error)?;
        pubsub
            .subscribe(self.channel(&config.topic))
            .await
            .map_err(redis_error)?;
        let (retries, due) = unbounded_channel();
        Ok(Box::new(ChannelSubscription {
            messages: pubsub.into_on_message(),
            retries,
            due,
        }))
    }
}

impl Broker for RedisChannelBroker {
    fn name(&self) -> &'static str {
        "redis-channels"
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            consumer_groups: false,
            per_key_ordering: false,
            persistent: false,
            new_subscriber_receives_old_messages: false,
            can_restart_server: false,
        }
    }
}

/// A message to hand out again, with its attempt number.
type Retry = (Message, u32);

/// Messages of one channel as they are published, and retries as they fall due.
struct ChannelSubscription {
    messages: PubSubStream,
    retries: UnboundedSender<Retry>,
    due: UnboundedReceiver<Retry>,
}

impl ChannelSubscription {
    fn delivery(&self, message: Message, attempt: u32) -> Box<dyn Delivery> {
        let settle = ChannelSettle(self.retries.clone());
        Delivered::new(message, attempt, settle).boxed()
    }
}

#[async_trait]
impl Subscription for ChannelSubscription {
    async fn next(&mut self) -> Option<Result<Box<dyn Delivery>, BusError>> {
        tokio::select! {
            biased;
            Some((message, attempt)) = self.due.recv() => Some(Ok(self.delivery(message, attempt))),
            frame = self.messages.next() => {
                let frame = frame?;
                Some(
                    decode(frame.get_payload_bytes())
                        .map(|message| self.delivery(message, 1))
                        .map_err(|error| BusError::backend("redis-channels", error)),
                )
            }
        }
    }

    async fn close(self: Box<Self>) -> Result<(), BusError> {
        Ok(())
    }
}

/// Retries go back to the subscription that handed the message out, after their delay; they
/// live in this process only.
struct ChannelSettle(UnboundedSender<Retry>);

#[async_trait]
impl Settle for ChannelSettle {
    async fn ack(self) -> Result<(), BusError> {
        Ok(())
    }

    async fn retry(self, after: Duration, message: Message, attempt: u32) -> Result<(), BusError> {
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            // A closed subscription takes nothing more: the process is stopping.
            let _ = self.0.send((message, attempt + 1));
        });
        Ok(())
    }

    fn hand_back(self, message: Message, attempt: u32) {
        let _ = self.0.send((message, attempt));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_garbage_is_refused() {
        let message = Message::new(b"line one\nline two".to_vec())
            .with_key("k")
            .with_header("x", "ü");
        assert_eq!(decode(&encode(&message)).unwrap(), message);
        assert!(decode(b"no newline").is_err());
        assert!(decode(b"{not json\npayload").is_err());
    }
}
