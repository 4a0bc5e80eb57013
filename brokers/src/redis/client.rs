//! The Redis client of every Redis piece (streams, channels, dedup store): a plain URL, or
//! TLS (`rediss://`) with the server's CA and a client certificate from files.

use std::path::{Path, PathBuf};

use event_bus_core::BusError;
use redis::{ClientTlsConfig, TlsCertificates};

use super::redis_error;

/// PEM files for TLS; `None` everywhere: the system's web roots, no client certificate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RedisTls {
    /// `REDIS_TLS_CA_FILE`: the CA that signed the server's certificate.
    pub ca_file: Option<PathBuf>,
    /// `REDIS_TLS_CERT_FILE`: the client certificate, for servers that ask for one.
    pub cert_file: Option<PathBuf>,
    /// `REDIS_TLS_KEY_FILE`: the client certificate's private key.
    pub key_file: Option<PathBuf>,
}

/// A TLS file could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{variable} `{path}` cannot be read: {source}")]
pub struct RedisTlsFileError {
    /// The variable naming the file.
    pub variable: &'static str,
    /// The file.
    pub path: PathBuf,
    /// Why.
    #[source]
    pub source: std::io::Error,
}

/// A client for `url` with `tls`'s files (used when the URL is `rediss://`).
pub(super) fn client(url: &str, tls: &RedisTls) -> Result<redis::Client, BusError> {
    crate::crypto_provider::ensure_installed();
    if *tls == RedisTls::default() {
        return redis::Client::open(url).map_err(redis_error);
    }
    let read = |variable: &'static str, path: &Path| {
        std::fs::read(path).map_err(|source| {
            BusError::backend(
                "redis",
                RedisTlsFileError {
                    variable,
                    path: path.to_owned(),
                    source,
                },
            )
        })
    };
    let root_cert = match &tls.ca_file {
        Some(path) => Some(read("REDIS_TLS_CA_FILE", path)?),
        None => None,
    };
    let client_tls = match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => Some(ClientTlsConfig {
            client_cert: read("REDIS_TLS_CERT_FILE", cert)?,
            client_key: read("REDIS_TLS_KEY_FILE", key)?,
        }),
        _ => None,
    };
    redis::Client::build_with_tls(
        url,
        TlsCertificates {
            client_tls,
            root_cert,
        },
    )
    .map_err(redis_error)
}
