//! Sealing and opening: a declared event's personal fields encrypted with its subject's key, and
//! decrypted again, or replaced by the erased marker once the subject is forgotten.

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use event_bus_core::envelope::EventEnvelope;
use serde_json::Value;

use crate::declare::{CIPHER, Declaration, ERASED, ERASED_HEADER, SEALED_HEADER};
use crate::key::DataKey;
use crate::keys::{KeyState, KeyStore, KeyStoreError};

/// How a sealed value starts: the format version, then base64 of nonce and ciphertext.
const SEALED_PREFIX: &str = "pdenc1:";
/// Field of a sealed whole value (such as a snapshot) naming its subject.
const VALUE_SUBJECT: &str = "personaldatasubject";
/// Field of a sealed whole value holding the ciphertext.
const VALUE_SEALED: &str = "personaldatasealed";
/// Context a sealed whole value is bound to, beside its subject.
const VALUE_CONTEXT: &str = "#value";

/// Why an event could not be sealed or opened. A forgotten subject is not an error.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The key store failed; trying again later may work.
    #[error(transparent)]
    Keys(#[from] KeyStoreError),
    /// A sealed field does not decrypt under its subject's live key: it was altered, or sealed
    /// with a key from another key store.
    #[error("personal field `{field}` of subject `{subject}` does not decrypt with its key")]
    NotAuthentic {
        /// The subject.
        subject: String,
        /// The field's JSON pointer.
        field: String,
    },
    /// A field value could not be encoded or decoded as JSON.
    #[error("personal field could not be encoded or decoded: {0}")]
    Json(#[from] serde_json::Error),
}

/// What opening found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Opened {
    /// Nothing sealed: no personal data declared, or already open.
    Plain,
    /// The personal fields were decrypted.
    Decrypted,
    /// The subject was forgotten: the personal fields now hold [`ERASED`].
    Erased,
}

/// Seals and opens personal fields with the keys of a [`KeyStore`].
#[derive(Clone)]
pub struct Sealer {
    keys: Arc<dyn KeyStore>,
}

impl Sealer {
    /// A sealer using `keys`.
    pub fn new(keys: Arc<dyn KeyStore>) -> Self {
        Self { keys }
    }

    /// The key store.
    pub fn keys(&self) -> &Arc<dyn KeyStore> {
        &self.keys
    }

    /// Forgets `subject`: deletes its key, so none of its sealed fields ever decrypts again.
    pub async fn forget(&self, subject: &str) -> Result<bool, KeyStoreError> {
        self.keys.forget(subject).await
    }

    /// Encrypts the declared personal fields of `envelope` with its subject's key (made on first
    /// use); returns whether anything was done. An envelope without a declaration, or already
    /// sealed, is left as it is. For a forgotten subject the fields are replaced by [`ERASED`]:
    /// nothing personal of a forgotten subject is written again.
    pub async fn seal(&self, envelope: &mut EventEnvelope) -> Result<bool, SealError> {
        if envelope.headers.contains_key(SEALED_HEADER) {
            return Ok(false);
        }
        let Some(declaration) = Declaration::of(envelope) else {
            return Ok(false);
        };
        match self.keys.key_or_create(&declaration.subject).await? {
            KeyState::Live(key) => {
                for pointer in &declaration.pointers {
                    if let Some(field) = envelope.payload.pointer_mut(pointer) {
                        let plain = serde_json::to_vec(field)?;
                        *field = Value::String(sealed_text(
                            &key.encrypt(&plain, &context(&declaration.subject, pointer)),
                        ));
                    }
                }
            }
            KeyState::Forgotten | KeyState::Absent => erase(envelope, &declaration),
        }
        envelope
            .headers
            .insert(SEALED_HEADER.to_owned(), CIPHER.to_owned());
        Ok(true)
    }

    /// Decrypts the sealed personal fields of `envelope`, or, when its subject was forgotten
    /// (or its key is unknown to this store), replaces them with [`ERASED`] and sets
    /// [`ERASED_HEADER`].
    pub async fn open(&self, envelope: &mut EventEnvelope) -> Result<Opened, SealError> {
        if !envelope.headers.contains_key(SEALED_HEADER) {
            return Ok(Opened::Plain);
        }
        let Some(declaration) = Declaration::of(envelope) else {
            envelope.headers.remove(SEALED_HEADER);
            return Ok(Opened::Plain);
        };
        let opened = match self.keys.key(&declaration.subject).await? {
            KeyState::Live(key) => {
                for pointer in &declaration.pointers {
                    if let Some(field) = envelope.payload.pointer_mut(pointer)
                        && let Some(plain) = open_field(&key, &declaration.subject, pointer, field)?
                    {
                        *field = plain;
                    }
                }
                Opened::Decrypted
            }
            KeyState::Forgotten | KeyState::Absent => {
                erase(envelope, &declaration);
                Opened::Erased
            }
        };
        envelope.headers.remove(SEALED_HEADER);
        Ok(opened)
    }

    /// A whole value (such as a snapshot's state) sealed with `subject`'s key, as
    /// `{"personaldatasubject": subject, "personaldatasealed": ciphertext}`; `None` when the
    /// subject was forgotten.
    pub async fn seal_value(
        &self,
        subject: &str,
        value: &Value,
    ) -> Result<Option<Value>, SealError> {
        let KeyState::Live(key) = self.keys.key_or_create(subject).await? else {
            return Ok(None);
        };
        let sealed = key.encrypt(
            &serde_json::to_vec(value)?,
            &context(subject, VALUE_CONTEXT),
        );
        Ok(Some(serde_json::json!({
            VALUE_SUBJECT: subject,
            VALUE_SEALED: sealed_text(&sealed),
        })))
    }

    /// The value [`seal_value`](Self::seal_value) sealed; a value not sealed that way is
    /// returned as it is; `None` when its subject was forgotten.
    pub async fn open_value(&self, value: Value) -> Result<Option<Value>, SealError> {
        let (Some(Value::String(subject)), Some(sealed)) =
            (value.get(VALUE_SUBJECT), value.get(VALUE_SEALED))
        else {
            return Ok(Some(value));
        };
        match self.keys.key(subject).await? {
            KeyState::Live(key) => {
                let mut sealed = sealed.clone();
                Ok(open_field(&key, subject, VALUE_CONTEXT, &mut sealed)?.or(Some(sealed)))
            }
            KeyState::Forgotten | KeyState::Absent => Ok(None),
        }
    }
}

/// The context a field's ciphertext is bound to: its subject and where it sits.
fn context(subject: &str, pointer: &str) -> Vec<u8> {
    [subject.as_bytes(), b"\0", pointer.as_bytes()].concat()
}

fn sealed_text(sealed: &[u8]) -> String {
    format!("{SEALED_PREFIX}{}", STANDARD_NO_PAD.encode(sealed))
}

/// The plaintext of a sealed field; `None` for a value that is not sealed text.
fn open_field(
    key: &DataKey,
    subject: &str,
    pointer: &str,
    field: &mut Value,
) -> Result<Option<Value>, SealError> {
    let Some(encoded) = field.as_str().and_then(|s| s.strip_prefix(SEALED_PREFIX)) else {
        return Ok(None);
    };
    let not_authentic = || SealError::NotAuthentic {
        subject: subject.to_owned(),
        field: pointer.to_owned(),
    };
    let sealed = STANDARD_NO_PAD
        .decode(encoded)
        .map_err(|_| not_authentic())?;
    let plain = key
        .decrypt(&sealed, &context(subject, pointer))
        .map_err(|_| not_authentic())?;
    Ok(Some(serde_json::from_slice(&plain)?))
}

fn erase(envelope: &mut EventEnvelope, declaration: &Declaration) {
    for pointer in &declaration.pointers {
        if let Some(field) = envelope.payload.pointer_mut(pointer) {
            *field = Value::String(ERASED.to_owned());
        }
    }
    envelope
        .headers
        .insert(ERASED_HEADER.to_owned(), "true".to_owned());
}
