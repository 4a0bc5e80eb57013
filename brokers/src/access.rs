//! Telling refused access apart from other client errors.

/// True when a TLS handshake failed over the server's certificate: some error of the chain
/// names a certificate.
pub(crate) fn names_a_certificate(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(error) = cause {
        if error
            .to_string()
            .to_ascii_lowercase()
            .contains("certificate")
        {
            return true;
        }
        cause = error.source();
    }
    false
}
