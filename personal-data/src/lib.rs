//! Crypto-shredding for the event bus and the event store.
//!
//! A typed event declares which payload fields are personal data and whose ([`PersonalData`]);
//! the declaration travels as envelope headers. Those fields are encrypted with the data
//! subject's own key (AES-256-GCM) when published ([`SealingBroker`]) and when appended
//! ([`SealedStore`]); the rest of the envelope stays readable. Handlers ([`OpenLayer`]), reads,
//! replays and rebuilt states see them decrypted while the key exists. [`Sealer::forget`]
//! deletes the key: from then on every copy of the fields, in the store, snapshots, broker logs,
//! dead letters or backups, reads as [`ERASED`].
//!
//! ```
//! use std::{sync::Arc, time::Duration};
//! use event_bus_core::{BusSettings, EventBus, EventEnvelope, InMemoryBroker, Recorder};
//! use personal_data::{DeclarePersonalData, ERASED, MemoryKeyStore, OpenLayer, Sealer, SealingBroker};
//! use tower_layer::Layer;
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sealer = Sealer::new(Arc::new(MemoryKeyStore::new()));
//! let broker = SealingBroker::new(Arc::new(InMemoryBroker::new()), sealer.clone());
//! let bus = EventBus::new(Arc::new(broker), BusSettings::default());
//! let (wire, opened) = (Recorder::new(), Recorder::new());
//! bus.subscribe(bus.subscription("user.registered", "audit"), wire.clone()).await?;
//! bus.subscribe(
//!     bus.subscription("user.registered", "welcome"),
//!     OpenLayer::new(sealer.clone()).layer(opened.clone()),
//! )
//! .await?;
//!
//! let event = EventEnvelope::builder("user.registered", serde_json::json!({"email": "ada@example.com"}))
//!     .personal_data("u-1", &["email"])
//!     .build();
//! bus.publish(&event).await?;
//! let sealed = &wire.wait_for(1, Duration::from_secs(5)).await?[0];
//! assert!(sealed.payload["email"].as_str().unwrap().starts_with("pdenc1:"));
//! assert_eq!(opened.wait_for(1, Duration::from_secs(5)).await?[0].payload["email"], "ada@example.com");
//!
//! sealer.forget("u-1").await?;
//! let mut copy = sealed.clone();
//! sealer.open(&mut copy).await?;
//! assert_eq!(copy.payload["email"], ERASED);
//! bus.shutdown().await?;
//! # Ok(()) }
//! ```

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
