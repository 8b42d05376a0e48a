//! The read model as bytes, for snapshots: the whole [`Registry`] encoded as
//! MessagePack (compact, self-describing, and written by serde from the same
//! types the fold fills, so there is no second schema to keep in step).
//!
//! [`SCHEMA`] numbers the layout. Any change to what the fold keeps (a field
//! added to [`crate::Objective`], a change of meaning) must raise it: a snapshot
//! of another number is discarded and the read model is folded from the log
//! again. Whether a snapshot still matches the log (its seq and head hash) is
//! checked by whoever loads it; see the application's start.

use crate::Registry;

/// The layout of the encoded [`Registry`]; raise it whenever the fold changes.
pub const SCHEMA: u32 = 1;

/// A read model that could not be encoded, or bytes that are not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// The registry could not be encoded.
    #[error("cannot encode the read model: {0}")]
    Encode(String),
    /// The bytes are not a registry of this [`SCHEMA`].
    #[error("cannot decode the snapshot: {0}")]
    Decode(String),
}

/// The registry as bytes: MessagePack maps with field names, so that the
/// optional fields events leave out decode as they do from JSON.
///
/// # Errors
/// [`SnapshotError::Encode`], which would be a bug.
pub fn encode(registry: &Registry) -> Result<Vec<u8>, SnapshotError> {
    rmp_serde::to_vec_named(registry).map_err(|e| SnapshotError::Encode(e.to_string()))
}

/// The registry those bytes encode.
///
/// # Errors
/// [`SnapshotError::Decode`] for bytes that are not a registry of this schema.
pub fn decode(bytes: &[u8]) -> Result<Registry, SnapshotError> {
    rmp_serde::from_slice(bytes).map_err(|e| SnapshotError::Decode(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_registry_comes_back_equal() {
        let registry = Registry::new();
        let bytes = encode(&registry).unwrap();
        assert_eq!(decode(&bytes).unwrap(), registry);
    }

    #[test]
    fn bytes_that_are_not_a_registry_are_refused() {
        assert!(matches!(
            decode(b"\x93\x01\x02\x03"),
            Err(SnapshotError::Decode(_))
        ));
        assert!(matches!(decode(b""), Err(SnapshotError::Decode(_))));
    }
}
