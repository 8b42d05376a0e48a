//! The witness rule: a cosigner (for Traguardo, the Nucleo di valutazione)
//! cosigns a checkpoint only if it is consistent with the last checkpoint
//! the same key cosigned. It refuses a smaller tree, a different root at the
//! same size (a fork), and a larger tree that a consistency proof does not
//! show to extend the last one.
//!
//! The state between runs is a [`WitnessState`]: the last `(origin, size,
//! root)` cosigned, which the caller keeps in a small JSON file (serde, the
//! root in base64 as in a checkpoint). [`decide`] is the pure rule;
//! [`cosign`] is the whole step of `traguardo cosign`.

use serde::{Deserialize, Serialize};

use crate::checkpoint::{self, Checkpoint};
use crate::cosignature;
use crate::merkle::{self, Hash, ProofError};
use crate::note::{self, Note, Signature, SignerKey, VerifierKey};

/// The last checkpoint a cosigner key cosigned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WitnessState {
    /// The log's origin line.
    pub origin: String,
    /// The tree size cosigned.
    pub size: u64,
    /// The root cosigned, base64 in JSON as in a checkpoint.
    #[serde(with = "base64_hash")]
    pub root: Hash,
}

impl WitnessState {
    /// The state after cosigning this checkpoint.
    pub fn of(checkpoint: &Checkpoint) -> Self {
        Self {
            origin: checkpoint.origin().to_owned(),
            size: checkpoint.size(),
            root: *checkpoint.root(),
        }
    }
}

/// Why a witness will not cosign a checkpoint.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum Refusal {
    /// The checkpoint is of another log than the state.
    #[error("checkpoint is of log {actual:?}, this state is of {expected:?}")]
    OtherLog {
        /// The state's origin.
        expected: String,
        /// The checkpoint's origin.
        actual: String,
    },
    /// The tree is smaller than the one last cosigned: the log went back.
    #[error("tree size {new} is smaller than the {last} already cosigned")]
    Smaller {
        /// The size last cosigned.
        last: u64,
        /// The checkpoint's size.
        new: u64,
    },
    /// The same size with another root: the log forked.
    #[error("tree of size {size} has a root other than the one already cosigned")]
    Fork {
        /// The size of both.
        size: u64,
    },
    /// A proof was given where none is needed (same tree, or from the empty tree).
    #[error("a consistency proof of {len} hashes was given where none is needed")]
    UnexpectedProof {
        /// The proof's length.
        len: usize,
    },
    /// The proof does not show that the new tree extends the last one.
    #[error("tree of size {to} is not shown consistent with size {from}: {source}")]
    Inconsistent {
        /// The size last cosigned.
        from: u64,
        /// The checkpoint's size.
        to: u64,
        /// Why the proof failed.
        #[source]
        source: ProofError,
    },
}

/// Decides whether to cosign `checkpoint`, given the last state (`None`
/// before the first cosignature: trust on first use) and a consistency proof
/// from the last size to the new one. Returns the state to keep after
/// cosigning.
///
/// The same tree again is accepted (a fresh cosignature, empty proof); from
/// the empty tree every tree is an extension (empty proof).
///
/// # Errors
/// A [`Refusal`] saying why not.
pub fn decide(
    last: Option<&WitnessState>,
    checkpoint: &Checkpoint,
    proof: &[Hash],
) -> Result<WitnessState, Refusal> {
    let next = WitnessState::of(checkpoint);
    let Some(last) = last else {
        return Ok(next);
    };
    if last.origin != next.origin {
        return Err(Refusal::OtherLog {
            expected: last.origin.clone(),
            actual: next.origin,
        });
    }
    if next.size < last.size {
        return Err(Refusal::Smaller {
            last: last.size,
            new: next.size,
        });
    }
    if next.size == last.size {
        if next.root != last.root {
            return Err(Refusal::Fork { size: next.size });
        }
        if !proof.is_empty() {
            return Err(Refusal::UnexpectedProof { len: proof.len() });
        }
        return Ok(next);
    }
    if last.size == 0 {
        if !proof.is_empty() {
            return Err(Refusal::UnexpectedProof { len: proof.len() });
        }
        return Ok(next);
    }
    merkle::verify_consistency(last.size, next.size, &last.root, &next.root, proof).map_err(
        |source| Refusal::Inconsistent {
            from: last.size,
            to: next.size,
            source,
        },
    )?;
    Ok(next)
}

/// Why [`cosign`] did not cosign.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// The checkpoint could not be opened with the log's key.
    #[error("checkpoint: {0}")]
    Checkpoint(#[from] checkpoint::Error),
    /// The rule refused it.
    #[error("refused: {0}")]
    Refused(#[from] Refusal),
    /// The cosigner key cannot cosign (wrong type, timestamp out of range).
    #[error("cosigning: {0}")]
    Cosign(#[from] note::Error),
}

/// A cosigned checkpoint and the state to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cosigned {
    /// The checkpoint's note with the cosignature added.
    pub note: Note,
    /// The cosignature line alone (what `POST /api/v1/checkpoint/cosignatures` takes).
    pub signature: Signature,
    /// The state after cosigning: write it back.
    pub state: WitnessState,
}

/// The whole witness step: open the signed checkpoint `msg` with the log's
/// key, [`decide`], and cosign at `timestamp`.
///
/// # Errors
/// [`Error::Checkpoint`], [`Error::Refused`] or [`Error::Cosign`].
pub fn cosign(
    last: Option<&WitnessState>,
    msg: &[u8],
    log: &VerifierKey,
    proof: &[Hash],
    cosigner: &SignerKey,
    timestamp: u64,
) -> Result<Cosigned, Error> {
    let signed = checkpoint::open(msg, log)?;
    let state = decide(last, &signed.checkpoint, proof)?;
    let signature = cosignature::cosign(&signed.checkpoint, cosigner, timestamp)?;
    let mut note = signed.note;
    note.add_signature(signature.clone());
    Ok(Cosigned {
        note,
        signature,
        state,
    })
}

/// Serde for a root hash as standard base64.
mod base64_hash {
    use base64::engine::general_purpose::STANDARD as BASE64;
    use base64::Engine as _;
    use serde::{de, Deserialize, Deserializer, Serializer};

    use crate::merkle::Hash;

    pub fn serialize<S: Serializer>(hash: &Hash, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&BASE64.encode(hash))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Hash, D::Error> {
        let text = String::deserialize(d)?;
        let raw = BASE64.decode(&text).map_err(de::Error::custom)?;
        raw.as_slice()
            .try_into()
            .map_err(|_| de::Error::invalid_length(raw.len(), &"32 bytes"))
    }
}
