//! The process's rustls crypto provider. The Redis and NATS clients take rustls's process-wide
//! default, which rustls picks from its crate features only when exactly one provider is
//! compiled in; a dependency that also enables `ring` would make every TLS connection panic.

/// Makes aws-lc-rs (the provider the bus's clients are built with) the process's rustls
/// provider, unless the application installed one already.
pub(crate) fn ensure_installed() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race to another installer is fine: a provider is installed either way.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }
}
