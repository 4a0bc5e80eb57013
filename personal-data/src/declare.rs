//! How an event says which of its payload fields are personal and whose: headers of the
//! envelope, set from a typed event's [`PersonalData`] declaration.

use event_bus_core::envelope::{DomainEvent, EnvelopeBuilder, EventEnvelope};

/// Header naming the data subject (whose personal data the fields are), such as a user id.
pub const SUBJECT_HEADER: &str = "personaldatasubject";
/// Header listing the personal fields, comma-separated; `/` separates nested field names.
pub const FIELDS_HEADER: &str = "personaldatafields";
/// Header set once the fields are encrypted, naming the cipher.
pub const SEALED_HEADER: &str = "personaldatasealed";
/// Header set on an opened event whose subject was forgotten: its personal fields hold
/// [`ERASED`].
pub const ERASED_HEADER: &str = "personaldataerased";
/// The value of [`SEALED_HEADER`].
pub const CIPHER: &str = "aes-256-gcm";
/// What a personal field holds once its subject was forgotten.
pub const ERASED: &str = "[personal data erased]";

/// A typed event with personal data: which payload fields and whose.
///
/// Personal fields should be strings (or `Option<String>`, or a type that also reads the
/// [`ERASED`] string), so an event whose subject was forgotten still decodes.
pub trait PersonalData: DomainEvent {
    /// Names of the payload fields holding personal data; `a/b` names field `b` inside `a`.
    const PERSONAL_FIELDS: &'static [&'static str];

    /// The data subject: whose personal data the fields are.
    fn data_subject(&self) -> String;
}

/// Starts an envelope for a typed event with its personal fields declared.
pub fn envelope_of<E: PersonalData>(event: &E) -> Result<EnvelopeBuilder, serde_json::Error> {
    Ok(EventEnvelope::from_event(event)?.personal_data(event.data_subject(), E::PERSONAL_FIELDS))
}

/// Declaring personal fields on an envelope being built.
pub trait DeclarePersonalData {
    /// Declares `fields` of the payload as personal data of `subject`.
    #[must_use]
    fn personal_data(self, subject: impl Into<String>, fields: &[&str]) -> Self;
}

impl DeclarePersonalData for EnvelopeBuilder {
    fn personal_data(self, subject: impl Into<String>, fields: &[&str]) -> Self {
        self.header(SUBJECT_HEADER, subject)
            .header(FIELDS_HEADER, fields.join(","))
    }
}

/// An envelope's declaration: the subject and the JSON pointers of its personal fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Declaration {
    /// The data subject.
    pub subject: String,
    /// JSON pointers of the personal fields, such as `/email`.
    pub pointers: Vec<String>,
}

impl Declaration {
    /// The declaration an envelope carries, if any.
    pub fn of(envelope: &EventEnvelope) -> Option<Self> {
        let subject = envelope.headers.get(SUBJECT_HEADER)?;
        let fields = envelope.headers.get(FIELDS_HEADER)?;
        Some(Self {
            subject: subject.clone(),
            pointers: fields
                .split(',')
                .map(str::trim)
                .filter(|field| !field.is_empty())
                .map(|field| format!("/{}", field.trim_start_matches('/')))
                .collect(),
        })
    }
}
