//! A TLS front for a test server that cannot speak TLS itself: it accepts TLS connections on
//! a loopback port, with a certificate made for it, and forwards the decrypted bytes to the
//! server's plain port. Tansu 0.6 is such a server: its CLI refuses `--cert` together with
//! `--key` ("the argument '--cert <CERT>' cannot be used with '--key <KEY>'").

use std::io;
use std::net::TcpListener;
use std::sync::Arc;

use tokio::runtime::Runtime;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::aws_lc_rs;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::certificates::CertificateFiles;

/// A running proxy; its connections end when it is dropped.
pub struct TlsProxy {
    runtime: Option<Runtime>,
}

impl TlsProxy {
    /// Serves TLS with `files`' certificate on `listener`, forwarding each connection to
    /// 127.0.0.1:`upstream`.
    pub fn start(
        listener: TcpListener,
        files: &CertificateFiles,
        upstream: u16,
    ) -> io::Result<Self> {
        let certificates = CertificateDer::pem_file_iter(&files.cert)
            .and_then(Iterator::collect::<Result<Vec<_>, _>>)
            .map_err(io::Error::other)?;
        let key = PrivateKeyDer::from_pem_file(&files.key).map_err(io::Error::other)?;
        let config = ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_no_client_auth()
            .with_single_cert(certificates, key)
            .map_err(io::Error::other)?;
        let acceptor = TlsAcceptor::from(Arc::new(config));
        listener.set_nonblocking(true)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let listener = {
            let _entered = runtime.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        runtime.spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut client) = acceptor.accept(client).await else {
                        return;
                    };
                    let Ok(mut server) =
                        tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                    else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                });
            }
        });
        Ok(Self {
            runtime: Some(runtime),
        })
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
