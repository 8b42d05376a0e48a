//! Traguardo's transparency log (DESIGN.md §9): the event log seen as a Merkle
//! tree, and the signed checkpoints that let an auditor check one event, or
//! that a later log extends an earlier one, without the whole log.
//!
//! Pure library code, no database: the store, the HTTP API and the command
//! line build on it.
//!
//! - [`merkle`]: RFC 9162 §2.1 tree hashing; the storage model (every complete
//!   subtree by `(level, index)`, read through [`merkle::NodeReader`], written
//!   as [`merkle::append`] says); roots, inclusion and consistency proofs in
//!   `O(log n)` reads and their verifiers; the in-memory [`merkle::MemoryTree`].
//! - [`note`]: C2SP `signed-note`: key names, verifier and signer keys in
//!   their text forms, Ed25519 signing, and opening a note against trusted keys.
//! - [`checkpoint`]: C2SP `tlog-checkpoint`: the note text naming a tree head
//!   (origin, size, root), parsed strictly, and signing it as the log.
//! - [`cosignature`]: C2SP `tlog-cosignature` v1: timestamped Ed25519
//!   cosignatures of a checkpoint.
//! - [`witness`]: the cosigner's rule: cosign only a checkpoint consistent with
//!   the last one the key cosigned, with the state it keeps between runs.
//!
//! Each module has its own error enum: the parts are independent (a verifier
//! of proofs has no note errors to report), and the tree's errors are generic
//! over the store's own read error.

pub mod checkpoint;
pub mod cosignature;
pub mod merkle;
pub mod note;
pub mod witness;

pub use merkle::Hash;
