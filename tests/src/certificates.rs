//! Certificates for the tests' private TLS servers: a CA of the test's own, and a server
//! certificate for 127.0.0.1 and localhost that it signed.

use std::io;
use std::path::{Path, PathBuf};

/// The PEM files [`write`] makes in a folder.
pub struct CertificateFiles {
    /// The CA's certificate: what a client trusts.
    pub ca: PathBuf,
    /// The server's certificate.
    pub cert: PathBuf,
    /// The server's private key.
    pub key: PathBuf,
}

/// Writes a new CA and a server certificate it signed, as `ca.pem`, `server.pem` and
/// `server.key` in `dir`.
pub fn write(dir: &Path) -> io::Result<CertificateFiles> {
    let files = CertificateFiles {
        ca: dir.join("ca.pem"),
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
    };
    let (ca, cert, key) = generate().map_err(io::Error::other)?;
    std::fs::write(&files.ca, ca)?;
    std::fs::write(&files.cert, cert)?;
    std::fs::write(&files.key, key)?;
    Ok(files)
}

/// A CA certificate in a temporary folder, unrelated to any server: what a client that must
/// not trust the server is given.
pub struct UnrelatedCa {
    _dir: tempfile::TempDir,
    /// Its PEM file.
    pub file: PathBuf,
}

impl UnrelatedCa {
    /// A new CA, written to a new temporary folder.
    pub fn new() -> io::Result<Self> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("stranger.pem");
        let (ca, _, _) = generate().map_err(io::Error::other)?;
        std::fs::write(&file, ca)?;
        Ok(Self { _dir: dir, file })
    }
}

/// The CA's certificate, and the server's certificate and key, as PEM.
fn generate() -> Result<(String, String, String), rcgen::Error> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    // A name of its own: a client given another CA of the same name would take it for the
    // issuer and fail on the signature instead of on an unknown issuer.
    ca.distinguished_name.push(
        DnType::CommonName,
        format!("event-bus test CA {}", uuid::Uuid::new_v4().simple()),
    );
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);
    let server_key = KeyPair::generate()?;
    let mut server = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])?;
    // OpenSSL (librdkafka) takes a certificate whose subject is its issuer for self-signed.
    server
        .distinguished_name
        .push(DnType::CommonName, "127.0.0.1");
    let server = server.signed_by(&server_key, &issuer)?;
    Ok((ca_cert.pem(), server.pem(), server_key.serialize_pem()))
}
