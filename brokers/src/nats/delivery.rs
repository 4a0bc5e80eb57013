//! Settling a pulled message: `+ACK`, `-NAK` (with a delay), each confirmed by the server,
//! and `-NAK` at once for a delivery dropped unsettled or handed back by a closing member.

use std::sync::Arc;
use std::time::Duration;

use async_nats::Subject;
use async_nats::jetstream::AckKind;
use async_trait::async_trait;
use event_bus_core::kit::{Delivered, Leases, Settle};
use event_bus_core::{BusError, Message};

use super::{NatsError, headers};

/// The acknowledgement subject of one pulled message.
pub(super) struct NatsSettle {
    client: async_nats::Client,
    reply: Subject,
    /// The member's unsettled messages, kept in progress while held.
    leases: Option<Arc<Leases<String>>>,
}

/// The delivery of a pulled message, held in `leases` until settled; an error if it has no
/// JetStream acknowledgement subject.
pub(super) fn delivered(
    client: async_nats::Client,
    pulled: async_nats::Message,
    leases: &Arc<Leases<String>>,
) -> Result<Delivered<NatsSettle>, NatsError> {
    let mut settle = NatsSettle::of(client, &pulled)?;
    leases.hold(settle.reply.to_string());
    settle.leases = Some(Arc::clone(leases));
    let attempt = delivery_count(&settle.reply).unwrap_or(1);
    let message = headers::from_nats(pulled.headers.as_ref(), pulled.payload);
    Ok(Delivered::new(message, attempt, settle))
}

impl NatsSettle {
    /// The acknowledgement subject of `pulled`; an error if it has none.
    pub(super) fn of(
        client: async_nats::Client,
        pulled: &async_nats::Message,
    ) -> Result<Self, NatsError> {
        match &pulled.reply {
            Some(reply) if reply.starts_with(ACK_PREFIX) => Ok(Self {
                client,
                reply: reply.clone(),
                leases: None,
            }),
            _ => Err(NatsError::NotJetStream {
                subject: pulled.subject.to_string(),
            }),
        }
    }

    /// Sends the acknowledgement and waits for the server's confirmation.
    pub(super) async fn send(self, kind: AckKind) -> Result<(), BusError> {
        self.release();
        let name = match kind {
            AckKind::Ack => "+ACK",
            _ => "-NAK",
        };
        self.client
            .request(self.reply, kind.into())
            .await
            .map(drop)
            .map_err(|source| NatsError::Settle { kind: name, source }.into())
    }
}

#[async_trait]
impl Settle for NatsSettle {
    async fn ack(self) -> Result<(), BusError> {
        self.send(AckKind::Ack).await
    }

    async fn retry(self, after: Duration, _: Message, _: u32) -> Result<(), BusError> {
        self.send(AckKind::Nak((!after.is_zero()).then_some(after)))
            .await
    }

    /// `-NAK` without waiting for the confirmation; unconfirmed, it returns after the ack wait.
    fn hand_back(self, _: Message, _: u32) {
        self.release();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            if let Err(error) = self.client.publish(self.reply, AckKind::Nak(None).into()).await {
                tracing::debug!(%error, "nats: handing back an unsettled delivery failed; it returns after the ack wait");
            }
        });
    }
}

impl NatsSettle {
    fn release(&self) {
        if let Some(leases) = &self.leases {
            leases.release(&self.reply.to_string());
        }
    }
}

/// Held messages kept in progress (`+WPI`) every `period`, a third of the ack wait, so a slow
/// handler's message is not redelivered to another member.
pub(super) fn renewed_leases(client: async_nats::Client, period: Duration) -> Arc<Leases<String>> {
    Leases::renewed_every(period, move |held: Vec<String>| {
        let client = client.clone();
        async move {
            for reply in held {
                if let Err(error) = client
                    .publish(Subject::from(reply), AckKind::Progress.into())
                    .await
                {
                    tracing::debug!(%error, "nats: keeping a held message in progress failed; trying again later");
                }
            }
        }
    })
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
