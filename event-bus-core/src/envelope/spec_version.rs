//! The CloudEvents `specversion` attribute, which only ever holds `1.0`.

use serde::de::{Error, Unexpected};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

const CLOUDEVENTS_SPEC_VERSION: &str = "1.0";

/// Marker for CloudEvents spec version 1.0; rejects any other version when decoding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SpecVersion;

impl Serialize for SpecVersion {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(CLOUDEVENTS_SPEC_VERSION)
    }
}

impl<'de> Deserialize<'de> for SpecVersion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let version = String::deserialize(deserializer)?;
        if version == CLOUDEVENTS_SPEC_VERSION {
            Ok(SpecVersion)
        } else {
            Err(D::Error::invalid_value(
                Unexpected::Str(&version),
                &"CloudEvents specversion 1.0",
            ))
        }
    }
}
