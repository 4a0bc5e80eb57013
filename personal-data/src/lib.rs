//! Crypto-shredding for the event bus and the event store.
//!
//! A typed event declares which payload fields are personal data and whose ([`PersonalData`]);
//! the declaration travels as envelope headers. Those fields are encrypted with the data
//! subject's own key (AES-256-GCM) when published ([`SealingBroker`]) and when appended
//! ([`SealedStore`]); the rest of the envelope stays readable. Handlers ([`OpenLayer`]), reads,
//! replays and rebuilt states see them decrypted while the key exists. [`Sealer::forget`]
//! deletes the key: from then on every copy of the fields, in the store, snapshots, broker logs,
//! dead letters or backups, reads as [`ERASED`].

mod broker;
mod declare;
mod handler;
pub mod key;
pub mod keys;
mod sealer;
mod store;

pub use broker::SealingBroker;
pub use declare::{
    CIPHER, Declaration, DeclarePersonalData, ERASED, ERASED_HEADER, FIELDS_HEADER, PersonalData,
    SEALED_HEADER, SUBJECT_HEADER, envelope_of,
};
pub use handler::{OpenLayer, Opening};
pub use keys::{CachedKeyStore, KeyState, KeyStore, KeyStoreError, MemoryKeyStore};
#[cfg(feature = "postgres")]
pub use keys::{MasterKey, MasterKeyError, MasterKeys, PgKeyStore};
pub use sealer::{Opened, SealError, Sealer};
pub use store::{SealedStore, SnapshotSubject};

/// The environment variables this crate reads (the PostgreSQL key store's master keys).
pub const VARIABLES: &[&str] = &[
    "PERSONAL_DATA_MASTER_KEY",
    "PERSONAL_DATA_MASTER_KEY_FILE",
    "PERSONAL_DATA_PREVIOUS_MASTER_KEY",
    "PERSONAL_DATA_PREVIOUS_MASTER_KEY_FILE",
];
