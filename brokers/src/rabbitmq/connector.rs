//! The broker's one AMQP connection, opened again on demand after it is lost; over TLS for an
//! `amqps://` URL.

use std::path::{Path, PathBuf};
use std::time::Duration;

use event_bus_core::BusError;
use lapin::tcp::{OwnedIdentity, OwnedTLSConfig};
use lapin::{Channel, Connection, ConnectionProperties, DefaultConnectionBuilder};
use tokio::sync::Mutex;

use super::{RabbitMqError, amqp_error, connection_error};

/// Longest wait for a connection to open, so an outage is reported instead of hanging.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// PEM files for `amqps://`; `None` everywhere: the web's roots, no client certificate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RabbitMqTls {
    /// `RABBITMQ_TLS_CA_FILE`: the CA that signed the server's certificate, trusted besides
    /// the web's roots.
    pub ca_file: Option<PathBuf>,
    /// `RABBITMQ_TLS_CERT_FILE`: a client certificate, for servers that ask for one (with
    /// `key_file`).
    pub cert_file: Option<PathBuf>,
    /// `RABBITMQ_TLS_KEY_FILE`: the client certificate's PKCS#8 private key.
    pub key_file: Option<PathBuf>,
}

impl RabbitMqTls {
    /// The client's TLS configuration, with the files read.
    fn config(&self) -> Result<OwnedTLSConfig, BusError> {
        let cert_chain = match &self.ca_file {
            Some(path) => Some(read_text("RABBITMQ_TLS_CA_FILE", path)?),
            None => None,
        };
        let identity = match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => Some(OwnedIdentity::PKCS8 {
                pem: read("RABBITMQ_TLS_CERT_FILE", cert)?,
                key: read("RABBITMQ_TLS_KEY_FILE", key)?,
            }),
            _ => None,
        };
        Ok(OwnedTLSConfig {
            identity,
            cert_chain,
        })
    }
}

fn read(variable: &'static str, path: &Path) -> Result<Vec<u8>, BusError> {
    std::fs::read(path).map_err(|source| {
        BusError::backend(
            "rabbitmq",
            RabbitMqError::TlsFile {
                variable,
                path: path.to_owned(),
                source,
            },
        )
    })
}

fn read_text(variable: &'static str, path: &Path) -> Result<String, BusError> {
    let bytes = read(variable, path)?;
    String::from_utf8(bytes).map_err(|error| {
        BusError::backend(
            "rabbitmq",
            RabbitMqError::TlsFile {
                variable,
                path: path.to_owned(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, error),
            },
        )
    })
}

/// Hands out channels on a shared connection, reconnecting when it is gone.
pub(super) struct Connector {
    uri: String,
    tls: OwnedTLSConfig,
    connection: Mutex<Option<Connection>>,
}

impl Connector {
    /// Opens the connection, so that a wrong URL, a missing server, refused credentials or an
    /// untrusted certificate fail at once.
    pub(super) async fn open(uri: &str, tls: &RabbitMqTls) -> Result<Self, BusError> {
        let tls = tls.config()?;
        let connection = connect(uri, &tls).await?;
        Ok(Self {
            uri: uri.to_owned(),
            tls,
            connection: Mutex::new(Some(connection)),
        })
    }

    /// A new channel, on a new connection when the current one is lost or does not answer
    /// within the connect timeout.
    pub(super) async fn channel(&self) -> Result<Channel, BusError> {
        let mut connection = self.connection.lock().await;
        if let Some(open) = connection.as_ref().filter(|c| c.status().connected()) {
            match tokio::time::timeout(CONNECT_TIMEOUT, open.create_channel()).await {
                Ok(Ok(channel)) => return Ok(channel),
                Ok(Err(error)) => {
                    tracing::debug!(%error, "rabbitmq: connection lost; reconnecting");
                }
                Err(_) => tracing::debug!("rabbitmq: the connection went silent; reconnecting"),
            }
        }
        *connection = None;
        let fresh = connect(&self.uri, &self.tls).await?;
        let channel = fresh.create_channel().await.map_err(amqp_error)?;
        *connection = Some(fresh);
        Ok(channel)
    }

    /// Forgets the connection, which went silent while it still looks open: the next
    /// [`channel`](Self::channel) opens a new one.
    pub(super) async fn reset(&self) {
        *self.connection.lock().await = None;
    }
}

async fn connect(uri: &str, tls: &OwnedTLSConfig) -> Result<Connection, BusError> {
    let properties = ConnectionProperties::default().with_connection_name("event-bus".into());
    let builder = DefaultConnectionBuilder::new()
        .map_err(connection_error)?
        .with_uri_str(uri.to_owned())
        .with_properties(properties)
        .with_tls_config(tls.clone());
    match tokio::time::timeout(CONNECT_TIMEOUT, builder.connect()).await {
        Ok(connected) => connected.map_err(connection_error),
        Err(_) => Err(BusError::backend(
            "rabbitmq",
            RabbitMqError::ConnectTimeout(CONNECT_TIMEOUT),
        )),
    }
}
