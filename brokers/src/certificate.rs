//! Telling a refused certificate apart from other connection failures.

/// True when an error, or one of its causes, says a TLS certificate was refused: clients
/// report this as an I/O error whose message names the certificate.
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
