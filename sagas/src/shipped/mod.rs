//! The sagas shipped with the crate, each with its domain events, the service interface its
//! steps call, and an example implementation of that interface ([`ExampleServices`]).

pub mod example_services;
pub mod gdpr_deletion;
pub mod gdpr_export;
pub mod password_reset;
pub mod user_registration;
pub mod voice_training;

pub use example_services::{ExampleServices, Fault};
