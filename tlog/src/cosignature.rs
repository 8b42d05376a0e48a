//! C2SP `tlog-cosignature` v1 (<https://c2sp.org/tlog-cosignature>): a
//! witness's timestamped Ed25519 signature of a checkpoint, a note signature
//! line of type `0x04` whose bytes are `timestamp (u64, big-endian) ||
//! signature (64 bytes)`. The signed message is
//! `cosignature/v1\ntime <timestamp>\n` followed by the checkpoint text.
//!
//! A v1 cosignature states that, at that time, this was the largest tree
//! consistent with everything the cosigner had seen of the log; the
//! [`crate::witness`] module decides when that is true.

use crate::checkpoint::Checkpoint;
use crate::note::{Error, KeyType, Note, Signature, SignerKey, VerifierKey};

/// The header line that separates cosignatures from other signatures.
pub const HEADER: &str = "cosignature/v1";

/// The largest timestamp a cosignature may carry: 2^63 - 1.
pub const MAX_TIMESTAMP: u64 = i64::MAX as u64;

/// Bytes of a v1 cosignature after the key ID: timestamp and signature.
const TIMESTAMPED_LEN: usize = 8 + 64;

/// The message a v1 cosignature signs: the header line, the timestamp line
/// and the checkpoint text (final newline included, no signature lines).
pub fn signed_message(timestamp: u64, checkpoint_text: &str) -> Vec<u8> {
    format!("{HEADER}\ntime {timestamp}\n{checkpoint_text}").into_bytes()
}

/// Splits a `timestamped_signature`, refusing a wrong length or a timestamp
/// above [`MAX_TIMESTAMP`].
pub(crate) fn split_timestamped(bytes: &[u8]) -> Option<(u64, [u8; 64])> {
    if bytes.len() != TIMESTAMPED_LEN {
        return None;
    }
    let (time, sig) = bytes.split_at(8);
    let timestamp = u64::from_be_bytes(time.try_into().ok()?);
    if timestamp > MAX_TIMESTAMP {
        return None;
    }
    Some((timestamp, sig.try_into().ok()?))
}

/// Cosigns a checkpoint at `timestamp` (seconds since the Epoch), returning
/// the signature line to add to its note. The caller decides first, with
/// [`crate::witness::decide`], that the checkpoint deserves it.
///
/// # Errors
/// [`Error::WrongKeyType`] unless the key is a cosigner (`0x04`) key, and
/// [`Error::TimestampTooLarge`] above [`MAX_TIMESTAMP`].
pub fn cosign(
    checkpoint: &Checkpoint,
    cosigner: &SignerKey,
    timestamp: u64,
) -> Result<Signature, Error> {
    cosigner.require(KeyType::CosignatureV1)?;
    if timestamp > MAX_TIMESTAMP {
        return Err(Error::TimestampTooLarge(timestamp));
    }
    let message = signed_message(timestamp, &checkpoint.to_string());
    let mut bytes = Vec::with_capacity(TIMESTAMPED_LEN);
    bytes.extend_from_slice(&timestamp.to_be_bytes());
    bytes.extend_from_slice(&cosigner.sign_raw(&message));
    Ok(Signature {
        name: cosigner.name().clone(),
        id: cosigner.id(),
        bytes,
    })
}

/// Verifies a cosigner's signature on a note and returns the time it states.
///
/// # Errors
/// [`Error::WrongKeyType`] unless the key is a cosigner (`0x04`) key,
/// [`Error::NoVerifiedSignature`] when the note has no line by that key,
/// [`Error::InvalidSignature`] when that line does not verify.
pub fn verify(note: &Note, cosigner: &VerifierKey) -> Result<u64, Error> {
    if cosigner.kind() != KeyType::CosignatureV1 {
        return Err(Error::WrongKeyType {
            name: cosigner.name().to_string(),
            expected: KeyType::CosignatureV1,
            actual: cosigner.kind(),
        });
    }
    let verified = note.verify(std::slice::from_ref(cosigner))?;
    verified
        .first()
        .and_then(|v| v.timestamp)
        .ok_or(Error::NoVerifiedSignature)
}
