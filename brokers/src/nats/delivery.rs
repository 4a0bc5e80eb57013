//! Settling a pulled message, all of it: `+ACK`, `-NAK` (with a delay) and `+TERM`, each
//! confirmed by the server, and `-NAK` at once for a delivery dropped unsettled or handed back
//! by a closing member.

use async_nats::Subject;
use async_nats::jetstream::AckKind;
use async_trait::async_trait;
use event_bus_core::{BusError, Delivery, Message, Nack};

use super::{NatsError, headers};

/// A message pulled from a group's consumer; dropped unsettled, it is handed back at once.
pub(super) struct NatsDelivery {
    client: async_nats::Client,
    /// The JetStream acknowledgement subject of this delivery.
    reply: Subject,
    message: Message,
    attempt: u32,
    settled: bool,
}

impl NatsDelivery {
    /// The delivery of a pulled message; an error if it has no acknowledgement subject.
    pub(super) fn new(
        client: async_nats::Client,
        pulled: async_nats::Message,
    ) -> Result<Self, NatsError> {
        let Some(reply) = pulled.reply.filter(|reply| reply.starts_with(ACK_PREFIX)) else {
            return Err(NatsError::NotJetStream {
                subject: pulled.subject.to_string(),
            });
        };
        Ok(Self {
            attempt: delivery_count(&reply).unwrap_or(1),
            message: headers::from_nats(pulled.headers.as_ref(), pulled.payload),
            client,
            reply,
            settled: false,
        })
    }

    /// Hands the message back to its group for another delivery now.
    pub(super) async fn hand_back(mut self) -> Result<(), BusError> {
        self.settle(AckKind::Nak(None)).await
    }

    /// Sends the acknowledgement and waits for the server's confirmation.
    async fn settle(&mut self, kind: AckKind) -> Result<(), BusError> {
        self.settled = true;
        let name = match kind {
            AckKind::Ack => "+ACK",
            AckKind::Term => "+TERM",
            _ => "-NAK",
        };
        self.client
            .request(self.reply.clone(), kind.into())
            .await
            .map(drop)
            .map_err(|source| NatsError::Settle { kind: name, source }.into())
    }
}

#[async_trait]
impl Delivery for NatsDelivery {
    fn message(&self) -> &Message {
        &self.message
    }

    fn attempt(&self) -> u32 {
        self.attempt
    }

    async fn ack(mut self: Box<Self>) -> Result<(), BusError> {
        self.settle(AckKind::Ack).await
    }

    async fn nack(mut self: Box<Self>, nack: Nack) -> Result<(), BusError> {
        let kind = match nack {
            Nack::Requeue => AckKind::Nak(None),
            Nack::RequeueAfter(delay) if delay.is_zero() => AckKind::Nak(None),
            Nack::RequeueAfter(delay) => AckKind::Nak(Some(delay)),
            Nack::Discard => AckKind::Term,
        };
        self.settle(kind).await
    }
}

impl Drop for NatsDelivery {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (client, reply) = (self.client.clone(), self.reply.clone());
        runtime.spawn(async move {
            if let Err(error) = client.publish(reply, AckKind::Nak(None).into()).await {
                tracing::debug!(%error, "nats: handing back an unsettled delivery failed; it returns after the ack wait");
            }
        });
    }
}

const ACK_PREFIX: &str = "$JS.ACK.";

/// JetStream's delivery count in an acknowledgement subject:
/// `$JS.ACK.{stream}.{consumer}.{delivered}.…` (7 tokens after the prefix), or with domain
/// and account hash first (9 or more).
fn delivery_count(reply: &str) -> Option<u32> {
    let tokens: Vec<&str> = reply.strip_prefix(ACK_PREFIX)?.split('.').collect();
    let index = match tokens.len() {
        7 => 2,
        n if n >= 9 => 4,
        _ => return None,
    };
    tokens[index].parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_attempt_is_the_delivery_count_of_either_subject_form() {
        assert_eq!(
            delivery_count("$JS.ACK.orders.billing.3.120.118.1712345678901234567.4"),
            Some(3)
        );
        assert_eq!(
            delivery_count("$JS.ACK.hub.ACCHASH.orders.billing.2.120.118.1712345678901234567.4.x"),
            Some(2)
        );
        assert_eq!(delivery_count("$JS.ACK.too.short"), None);
        assert_eq!(delivery_count("_INBOX.abc"), None);
    }
}
