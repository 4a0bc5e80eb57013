//! The master key that wraps data keys at rest, from a variable or a file, and the previous
//! one kept during a rotation.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use zeroize::Zeroizing;

use crate::key::{DataKey, KEY_BYTES, NotAuthentic};

/// The master key, base64 of 32 random bytes (`openssl rand -base64 32`).
pub const MASTER_KEY: &str = "PERSONAL_DATA_MASTER_KEY";
/// A file holding the master key in the same form; used when `PERSONAL_DATA_MASTER_KEY` is unset.
pub const MASTER_KEY_FILE: &str = "PERSONAL_DATA_MASTER_KEY_FILE";
/// During a rotation, the master key being replaced.
pub const PREVIOUS_MASTER_KEY: &str = "PERSONAL_DATA_PREVIOUS_MASTER_KEY";
/// During a rotation, a file holding the master key being replaced.
pub const PREVIOUS_MASTER_KEY_FILE: &str = "PERSONAL_DATA_PREVIOUS_MASTER_KEY_FILE";

/// Why no master key could be read. Never contains the key.
#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    /// Neither the variable nor its file variable is set.
    #[error("no master key: set {0} or {0}_FILE")]
    Missing(&'static str),
    /// The key file could not be read.
    #[error("cannot read the master key file named by {variable}: {source}")]
    File {
        /// The variable naming the file.
        variable: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The value is not base64 of exactly 32 bytes.
    #[error("the master key in {0} is not base64 of 32 bytes")]
    Malformed(&'static str),
}

/// A key that wraps data keys.
#[derive(Clone, Debug)]
pub struct MasterKey(DataKey);

impl MasterKey {
    /// The master key from base64 text (surrounding whitespace ignored).
    pub fn from_base64(text: &str, variable: &'static str) -> Result<Self, MasterKeyError> {
        let bytes = Zeroizing::new(
            STANDARD
                .decode(text.trim())
                .map_err(|_| MasterKeyError::Malformed(variable))?,
        );
        let bytes: &[u8; KEY_BYTES] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| MasterKeyError::Malformed(variable))?;
        Ok(Self(DataKey::from_bytes(bytes)))
    }

    /// Reads `variable`, or the file `{variable}_FILE` names; `None` when neither is set.
    fn read(
        lookup: &impl Fn(&str) -> Option<String>,
        variable: &'static str,
        file_variable: &'static str,
    ) -> Result<Option<Self>, MasterKeyError> {
        if let Some(text) = lookup(variable) {
            return Self::from_base64(&text, variable).map(Some);
        }
        let Some(path) = lookup(file_variable) else {
            return Ok(None);
        };
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|source| {
            MasterKeyError::File {
                variable: file_variable,
                source,
            }
        })?);
        Self::from_base64(&text, file_variable).map(Some)
    }

    fn wrap(&self, key: &[u8], subject: &str) -> Vec<u8> {
        self.0.encrypt(key, subject.as_bytes())
    }

    fn unwrap(&self, wrapped: &[u8], subject: &str) -> Result<Vec<u8>, NotAuthentic> {
        self.0.decrypt(wrapped, subject.as_bytes())
    }
}

/// The current master key, which wraps every new data key, and during a rotation the previous
/// one, which still unwraps the keys it wrapped until they are rewrapped.
#[derive(Clone, Debug)]
pub struct MasterKeys {
    current: MasterKey,
    previous: Option<MasterKey>,
}

impl MasterKeys {
    /// Only `current`.
    pub fn new(current: MasterKey) -> Self {
        Self {
            current,
            previous: None,
        }
    }

    /// Also unwraps with `previous`, during a rotation.
    #[must_use]
    pub fn with_previous(mut self, previous: MasterKey) -> Self {
        self.previous = Some(previous);
        self
    }

    /// From `PERSONAL_DATA_MASTER_KEY` (or `_FILE`), and `PERSONAL_DATA_PREVIOUS_MASTER_KEY`
    /// (or `_FILE`) when set.
    pub fn from_env() -> Result<Self, MasterKeyError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// As [`from_env`](Self::from_env), with the variables `lookup` gives.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, MasterKeyError> {
        let current = MasterKey::read(&lookup, MASTER_KEY, MASTER_KEY_FILE)?
            .ok_or(MasterKeyError::Missing(MASTER_KEY))?;
        let previous = MasterKey::read(&lookup, PREVIOUS_MASTER_KEY, PREVIOUS_MASTER_KEY_FILE)?;
        Ok(Self { current, previous })
    }

    /// Wraps a data key for `subject` with the current master key.
    pub(super) fn wrap(&self, key: &[u8], subject: &str) -> Vec<u8> {
        self.current.wrap(key, subject)
    }

    /// Unwraps with the current master key, then the previous one; says which worked.
    pub(super) fn unwrap(
        &self,
        wrapped: &[u8],
        subject: &str,
    ) -> Result<(Zeroizing<Vec<u8>>, bool), NotAuthentic> {
        match self.current.unwrap(wrapped, subject) {
            Ok(key) => Ok((Zeroizing::new(key), true)),
            Err(error) => match &self.previous {
                Some(previous) => Ok((Zeroizing::new(previous.unwrap(wrapped, subject)?), false)),
                None => Err(error),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    fn lookup(vars: &[(&str, String)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.clone()))
            .collect();
        move |name| {
            vars.iter()
                .find(|(n, _)| n == name)
                .map(|(_, value)| value.clone())
        }
    }

    #[test]
    fn the_master_key_comes_from_the_variable_or_its_file() {
        let keys = MasterKeys::from_lookup(lookup(&[(MASTER_KEY, KEY.to_owned())])).unwrap();
        assert!(keys.previous.is_none());

        let dir = std::env::temp_dir().join(format!("pd-master-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("master.key");
        std::fs::write(&file, format!("{KEY}\n")).unwrap();
        let path = file.to_string_lossy().into_owned();
        let from_file = MasterKeys::from_lookup(lookup(&[
            (MASTER_KEY_FILE, path.clone()),
            (PREVIOUS_MASTER_KEY, KEY.to_owned()),
        ]))
        .unwrap();
        let wrapped = keys.wrap(b"data key", "u-1");
        assert_eq!(
            from_file.unwrap(&wrapped, "u-1").unwrap().0.as_slice(),
            b"data key"
        );
        assert!(from_file.previous.is_some());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_or_malformed_master_key_is_named_never_shown() {
        let missing = MasterKeys::from_lookup(lookup(&[])).unwrap_err();
        assert!(missing.to_string().contains(MASTER_KEY_FILE), "{missing}");
        let short = "c2hvcnQtc2VjcmV0";
        let error = MasterKeys::from_lookup(lookup(&[(MASTER_KEY, short.to_owned())])).unwrap_err();
        assert!(matches!(error, MasterKeyError::Malformed(MASTER_KEY)));
        assert!(!error.to_string().contains(short));
        let unreadable = MasterKeys::from_lookup(lookup(&[(
            MASTER_KEY_FILE,
            "/nonexistent/master.key".to_owned(),
        )]))
        .unwrap_err();
        assert!(
            unreadable.to_string().contains(MASTER_KEY_FILE),
            "{unreadable}"
        );
    }
}
