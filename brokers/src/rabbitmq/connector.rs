//! The broker's one AMQP connection, opened again on demand after it is lost.

use std::time::Duration;

use event_bus_core::BusError;
use lapin::{Channel, Connection, ConnectionProperties};
use tokio::sync::Mutex;

use super::{RabbitMqError, amqp_error};

/// Longest wait for a connection to open, so an outage is reported instead of hanging.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Hands out channels on a shared connection, reconnecting when it is gone.
pub(super) struct Connector {
    uri: String,
    connection: Mutex<Option<Connection>>,
}

impl Connector {
    /// Opens the connection, so that a wrong URL or a missing server fails at once.
    pub(super) async fn open(uri: &str) -> Result<Self, BusError> {
        let connection = connect(uri).await?;
        Ok(Self {
            uri: uri.to_owned(),
            connection: Mutex::new(Some(connection)),
        })
    }

    /// A new channel, on a new connection when the current one is lost.
    pub(super) async fn channel(&self) -> Result<Channel, BusError> {
        let mut connection = self.connection.lock().await;
        if let Some(open) = connection.as_ref().filter(|c| c.status().connected()) {
            match open.create_channel().await {
                Ok(channel) => return Ok(channel),
                Err(error) => tracing::debug!(%error, "rabbitmq: connection lost; reconnecting"),
            }
        }
        *connection = None;
        let fresh = connect(&self.uri).await?;
        let channel = fresh.create_channel().await.map_err(amqp_error)?;
        *connection = Some(fresh);
        Ok(channel)
    }
}

async fn connect(uri: &str) -> Result<Connection, BusError> {
    let properties = ConnectionProperties::default().with_connection_name("event-bus".into());
    match tokio::time::timeout(CONNECT_TIMEOUT, Connection::connect(uri, properties)).await {
        Ok(connected) => connected.map_err(amqp_error),
        Err(_) => Err(BusError::backend(
            "rabbitmq",
            RabbitMqError::ConnectTimeout(CONNECT_TIMEOUT),
        )),
    }
}
