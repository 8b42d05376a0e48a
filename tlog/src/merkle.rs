//! The log as an RFC 9162 §2.1 Merkle tree: hashing, storage of complete
//! subtrees, roots, inclusion and consistency proofs, and their verification.
//!
//! # Storage model
//!
//! A store keeps the hash of every *complete* subtree, addressed by
//! `(level, index)`: the node at `level` `l` and `index` `i` is the root of the
//! perfect subtree over leaves `[i·2^l, (i+1)·2^l)`. Level 0 holds the leaf
//! hashes. A node, once written, never changes: appending leaves only adds
//! nodes, so a store can insert them in the same transaction as the events.
//!
//! [`append`] reads the `popcount(size) ≤ 64` nodes on the right edge of the
//! current tree and returns the new nodes (about two per new leaf); [`root`],
//! [`inclusion_proof`] and [`consistency_proof`] read `O(log n)` nodes through
//! a [`NodeReader`], never the whole log.
//!
//! Traguardo's leaf `i` is the event with seq `i + 1`, and its leaf data is the
//! 32 raw bytes of that event's chain hash ([`chain_leaf_hash`]).

use std::convert::Infallible;

use sha2::{Digest, Sha256};

/// A SHA-256 digest: a leaf hash, a node hash or a root.
pub type Hash = [u8; 32];

/// Why a tree could not be read, or a proof could not be made from it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TreeError<E> {
    /// A leaf index at or past the tree size it is asked about.
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange {
        /// The leaf index asked for.
        index: u64,
        /// The tree size it was asked for.
        size: u64,
    },
    /// A tree size larger than the tree the store holds.
    #[error("tree size {size} is beyond the {stored} leaves stored")]
    BeyondStored {
        /// The tree size asked for.
        size: u64,
        /// How many leaves the store holds.
        stored: u64,
    },
    /// A consistency proof from a larger tree to a smaller one.
    #[error("consistency proof from size {from} to the smaller size {to}")]
    FromAfterTo {
        /// The earlier size asked for.
        from: u64,
        /// The later size asked for.
        to: u64,
    },
    /// A consistency proof from the empty tree, which RFC 9162 does not define.
    #[error("consistency proof from the empty tree is not defined")]
    FromEmpty,
    /// A complete subtree that should be stored is not: the store is damaged.
    #[error("node at level {level}, index {index} is not stored")]
    MissingNode {
        /// The node's level (0 for leaves).
        level: u8,
        /// The node's index within its level.
        index: u64,
    },
    /// The store could not be read.
    #[error("reading the tree failed: {0}")]
    Read(#[source] E),
}

/// Why a proof did not verify (RFC 9162 §2.1.3.2 and §2.1.4.2).
#[derive(Debug, Clone, Copy, thiserror::Error, PartialEq, Eq)]
pub enum ProofError {
    /// A leaf index at or past the tree size.
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange {
        /// The leaf index of the proof.
        index: u64,
        /// The tree size of the proof.
        size: u64,
    },
    /// A consistency proof from a larger tree to a smaller one.
    #[error("consistency proof from size {from} to the smaller size {to}")]
    FromAfterTo {
        /// The earlier size.
        from: u64,
        /// The later size.
        to: u64,
    },
    /// A consistency proof from the empty tree, which RFC 9162 does not define.
    #[error("consistency proof from the empty tree is not defined")]
    FromEmpty,
    /// The proof has more hashes than the tree sizes allow.
    #[error("proof has more hashes than the tree sizes allow")]
    TooLong,
    /// The proof has fewer hashes than the tree sizes need.
    #[error("proof has fewer hashes than the tree sizes need")]
    TooShort,
    /// Between equal sizes the proof must be empty and the roots equal.
    #[error("roots of two trees of the same size differ")]
    SameSizeRootsDiffer,
    /// The hashes recomputed from the proof do not give the earlier root.
    #[error("proof does not lead to the earlier root")]
    OldRootMismatch,
    /// The hashes recomputed from the proof do not give the (later) root.
    #[error("proof does not lead to the root")]
    RootMismatch,
}

/// A stored node: the root of the complete subtree over leaves
/// `[index·2^level, (index+1)·2^level)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node {
    /// 0 for a leaf hash, `l` for a subtree of `2^l` leaves.
    pub level: u8,
    /// Position within the level, from 0.
    pub index: u64,
    /// The subtree's hash.
    pub hash: Hash,
}

/// Read access to the stored complete subtrees of one tree.
pub trait NodeReader {
    /// The store's own error.
    type Error;

    /// How many leaves the store holds.
    ///
    /// # Errors
    /// When the store cannot be read.
    fn stored_size(&self) -> Result<u64, Self::Error>;

    /// The hash of the complete subtree at `(level, index)`, or `None` if it is
    /// not stored.
    ///
    /// # Errors
    /// When the store cannot be read.
    fn node(&self, level: u8, index: u64) -> Result<Option<Hash>, Self::Error>;
}

/// RFC 9162 leaf hash: SHA-256(0x00 || data).
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(data);
    h.finalize().into()
}

/// RFC 9162 interior node hash: SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// The root of the empty tree: SHA-256 of the empty string (RFC 9162 §2.1.1).
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The leaf hash of a Traguardo event: the leaf data is the 32 raw bytes of
/// the event's chain hash.
pub fn chain_leaf_hash(chain_hash: &Hash) -> Hash {
    leaf_hash(chain_hash)
}

/// Why an event's chain hash, as stored in hex, is not 32 bytes.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("chain hash {0:?} is not 64 lowercase hexadecimal characters")]
pub struct InvalidChainHash(pub String);

/// The leaf hash of a Traguardo event from its chain hash in lowercase hex,
/// as the event store keeps it.
///
/// # Errors
/// [`InvalidChainHash`] unless the text is exactly 64 lowercase hex digits.
pub fn chain_leaf_hash_hex(chain_hash_hex: &str) -> Result<Hash, InvalidChainHash> {
    let invalid = || InvalidChainHash(chain_hash_hex.to_owned());
    if chain_hash_hex.len() != 64 || chain_hash_hex.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(invalid());
    }
    let mut raw = [0u8; 32];
    hex::decode_to_slice(chain_hash_hex, &mut raw).map_err(|_| invalid())?;
    Ok(chain_leaf_hash(&raw))
}

/// Reads one node that must be stored.
fn read<R: NodeReader>(reader: &R, level: u8, index: u64) -> Result<Hash, TreeError<R::Error>> {
    reader
        .node(level, index)
        .map_err(TreeError::Read)?
        .ok_or(TreeError::MissingNode { level, index })
}

/// Fails unless the store holds at least `size` leaves.
fn check_stored<R: NodeReader>(reader: &R, size: u64) -> Result<(), TreeError<R::Error>> {
    let stored = reader.stored_size().map_err(TreeError::Read)?;
    if size > stored {
        return Err(TreeError::BeyondStored { size, stored });
    }
    Ok(())
}

/// The complete subtrees that make up leaves `[start, end)`, left to right,
/// each as large as alignment allows. For the ranges RFC 9162 uses (the left
/// part of a split is a power of two, the right part ends where its parent
/// does) their sizes decrease, so folding them from the right gives MTH.
fn perfect_ranges(mut start: u64, end: u64) -> impl Iterator<Item = (u8, u64)> {
    std::iter::from_fn(move || {
        if start >= end {
            return None;
        }
        let align = if start == 0 {
            63
        } else {
            start.trailing_zeros()
        };
        let fit = 63 - (end - start).leading_zeros();
        let level = align.min(fit);
        let index = start >> level;
        start += 1u64 << level;
        Some((level as u8, index))
    })
}

/// MTH of leaves `[start, end)` read from stored complete subtrees (the empty
/// range hashes to [`empty_root`]).
fn range_hash<R: NodeReader>(
    reader: &R,
    start: u64,
    end: u64,
) -> Result<Hash, TreeError<R::Error>> {
    let mut parts = Vec::with_capacity(64);
    for (level, index) in perfect_ranges(start, end) {
        parts.push(read(reader, level, index)?);
    }
    let Some(mut acc) = parts.pop() else {
        return Ok(empty_root());
    };
    while let Some(left) = parts.pop() {
        acc = node_hash(&left, &acc);
    }
    Ok(acc)
}

/// The largest power of two strictly smaller than `n` (`n ≥ 2`): RFC 9162's `k`.
fn split_point(n: u64) -> u64 {
    1u64 << (63 - (n - 1).leading_zeros())
}

/// The root of the tree of the first `size` leaves.
///
/// Reads the stored size and at most `popcount(size)` nodes.
///
/// # Errors
/// [`TreeError::BeyondStored`] past the stored leaves, [`TreeError::MissingNode`]
/// or [`TreeError::Read`] when the store fails.
pub fn root<R: NodeReader>(reader: &R, size: u64) -> Result<Hash, TreeError<R::Error>> {
    check_stored(reader, size)?;
    range_hash(reader, 0, size)
}

/// The inclusion proof (RFC 9162 §2.1.3.1) of leaf `index` in the tree of the
/// first `size` leaves, from the leaf's sibling up.
///
/// Reads `O(log size)` nodes: one per proof hash, plus at most `popcount(size)`
/// for the one sibling that is not a complete subtree.
///
/// # Errors
/// [`TreeError::IndexOutOfRange`] when `index >= size`, and the errors of [`root`].
pub fn inclusion_proof<R: NodeReader>(
    reader: &R,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, TreeError<R::Error>> {
    if index >= size {
        return Err(TreeError::IndexOutOfRange { index, size });
    }
    check_stored(reader, size)?;
    // Walk down from the root over [lo, hi), collecting siblings top-down.
    let (mut lo, mut hi) = (0u64, size);
    let mut proof = Vec::new();
    while hi - lo > 1 {
        let k = split_point(hi - lo);
        if index - lo < k {
            proof.push(range_hash(reader, lo + k, hi)?);
            hi = lo + k;
        } else {
            proof.push(range_hash(reader, lo, lo + k)?);
            lo += k;
        }
    }
    proof.reverse();
    Ok(proof)
}

/// The consistency proof (RFC 9162 §2.1.4.1) from the tree of the first `from`
/// leaves to the tree of the first `to` leaves. Empty when `from == to`.
///
/// Reads `O(log to)` nodes.
///
/// # Errors
/// [`TreeError::FromEmpty`] when `from == 0` (RFC 9162 defines no proof from
/// the empty tree), [`TreeError::FromAfterTo`] when `from > to`, and the errors
/// of [`root`].
pub fn consistency_proof<R: NodeReader>(
    reader: &R,
    from: u64,
    to: u64,
) -> Result<Vec<Hash>, TreeError<R::Error>> {
    if from == 0 {
        return Err(TreeError::FromEmpty);
    }
    if from > to {
        return Err(TreeError::FromAfterTo { from, to });
    }
    check_stored(reader, to)?;
    // SUBPROOF(m, D[lo:hi], b), unrolled: m is `from` relative to lo.
    let (mut lo, mut hi) = (0u64, to);
    let mut whole = true; // b: the subtree at hand is the whole old tree
    let mut proof = Vec::new();
    while from - lo != hi - lo {
        let n = hi - lo;
        let m = from - lo;
        let k = split_point(n);
        if m <= k {
            proof.push(range_hash(reader, lo + k, hi)?);
            hi = lo + k;
        } else {
            proof.push(range_hash(reader, lo, lo + k)?);
            lo += k;
            whole = false;
        }
    }
    if !whole {
        proof.push(range_hash(reader, lo, hi)?);
    }
    proof.reverse();
    Ok(proof)
}

/// The nodes to store when `leaves` (leaf hashes, already through
/// [`leaf_hash`]) are appended to a tree of `size` leaves: every new leaf and
/// every complete subtree the new leaves close, in an order where a node comes
/// after its children.
///
/// Reads only the `popcount(size)` complete subtrees on the tree's right
/// edge. It does not check `size` against [`NodeReader::stored_size`], so a
/// store may call it inside the transaction that appends the events.
///
/// # Errors
/// [`TreeError::MissingNode`] or [`TreeError::Read`] when the right edge cannot
/// be read.
pub fn append<R: NodeReader>(
    reader: &R,
    size: u64,
    leaves: &[Hash],
) -> Result<Vec<Node>, TreeError<R::Error>> {
    // The right edge: complete subtrees of decreasing size covering [0, size).
    let mut edge: Vec<Node> = Vec::with_capacity(64);
    for (level, index) in perfect_ranges(0, size) {
        edge.push(Node {
            level,
            index,
            hash: read(reader, level, index)?,
        });
    }
    Ok(extend_edge(&mut edge, size, leaves))
}

/// Pushes `leaves` onto a right edge (complete subtrees of strictly
/// decreasing level covering `[0, size)`), returning every node created.
fn extend_edge(edge: &mut Vec<Node>, size: u64, leaves: &[Hash]) -> Vec<Node> {
    let mut created = Vec::with_capacity(leaves.len() * 2);
    for (offset, leaf) in leaves.iter().enumerate() {
        let mut node = Node {
            level: 0,
            index: size + offset as u64,
            hash: *leaf,
        };
        created.push(node);
        while let Some(last) = edge.last() {
            if last.level != node.level {
                break;
            }
            node = Node {
                level: node.level + 1,
                index: last.index / 2,
                hash: node_hash(&last.hash, &node.hash),
            };
            edge.pop();
            created.push(node);
        }
        edge.push(node);
    }
    created
}

/// Verifies an inclusion proof (RFC 9162 §2.1.3.2): that `leaf_hash` is leaf
/// `index` of the tree of `size` leaves whose root is `root`.
///
/// # Errors
/// [`ProofError::IndexOutOfRange`], [`ProofError::TooLong`],
/// [`ProofError::TooShort`] or [`ProofError::RootMismatch`].
pub fn verify_inclusion(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let computed = root_from_inclusion(leaf_hash, index, size, proof)?;
    if computed != *root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// Steps 2–5 of RFC 9162 §2.1.3.2, up to the comparison with the root.
fn root_from_inclusion(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
) -> Result<Hash, ProofError> {
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf_hash;
    for p in proof {
        if snode == 0 {
            return Err(ProofError::TooLong);
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::TooShort);
    }
    Ok(r)
}

/// Verifies a consistency proof (RFC 9162 §2.1.4.2): that the tree of `to`
/// leaves with root `new_root` extends the tree of `from` leaves with root
/// `old_root`. Between equal sizes the proof must be empty and the roots equal.
///
/// # Errors
/// [`ProofError::FromEmpty`], [`ProofError::FromAfterTo`],
/// [`ProofError::SameSizeRootsDiffer`], [`ProofError::TooLong`],
/// [`ProofError::TooShort`], [`ProofError::OldRootMismatch`] or
/// [`ProofError::RootMismatch`].
pub fn verify_consistency(
    from: u64,
    to: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if from == 0 {
        return Err(ProofError::FromEmpty);
    }
    if from > to {
        return Err(ProofError::FromAfterTo { from, to });
    }
    if from == to {
        if !proof.is_empty() {
            return Err(ProofError::TooLong);
        }
        if old_root != new_root {
            return Err(ProofError::SameSizeRootsDiffer);
        }
        return Ok(());
    }
    // Step 1: an empty path proves nothing between different sizes.
    let Some((first, rest)) = proof.split_first() else {
        return Err(ProofError::TooShort);
    };
    // Step 2: when `from` is a power of two the old root is the path's start.
    let (seed, path) = if from.is_power_of_two() {
        (old_root, proof)
    } else {
        (first, rest)
    };
    // Steps 3–4.
    let (mut fnode, mut snode) = (from - 1, to - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    // Steps 5–6.
    let (mut fr, mut sr) = (*seed, *seed);
    for c in path {
        if snode == 0 {
            return Err(ProofError::TooLong);
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    // Step 7.
    if snode != 0 {
        return Err(ProofError::TooShort);
    }
    if fr != *old_root {
        return Err(ProofError::OldRootMismatch);
    }
    if sr != *new_root {
        return Err(ProofError::RootMismatch);
    }
    Ok(())
}

/// A whole tree in memory, for tests and for offline tools that rebuild the
/// tree from an export. `levels[l][i]` is the node at `(l, i)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryTree {
    levels: Vec<Vec<Hash>>,
    /// The right edge, kept so that appending needs no reads.
    edge: Vec<Node>,
}

impl MemoryTree {
    /// The empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// A tree of the given leaf hashes.
    pub fn from_leaf_hashes(leaves: &[Hash]) -> Self {
        let mut tree = Self::new();
        tree.append(leaves);
        tree
    }

    /// How many leaves the tree has.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// Appends leaf hashes (already through [`leaf_hash`]) and stores the
    /// nodes they create, the same nodes [`append`] would return.
    pub fn append(&mut self, leaves: &[Hash]) {
        let size = self.size();
        for node in extend_edge(&mut self.edge, size, leaves) {
            let level = usize::from(node.level);
            if self.levels.len() <= level {
                self.levels.resize_with(level + 1, Vec::new);
            }
            self.levels[level].push(node.hash);
        }
    }

    /// The root of the first `size` leaves.
    ///
    /// # Errors
    /// [`TreeError::BeyondStored`] past the tree's size.
    pub fn root(&self, size: u64) -> Result<Hash, TreeError<Infallible>> {
        root(self, size)
    }

    /// [`inclusion_proof`] on this tree.
    ///
    /// # Errors
    /// As [`inclusion_proof`].
    pub fn inclusion_proof(
        &self,
        index: u64,
        size: u64,
    ) -> Result<Vec<Hash>, TreeError<Infallible>> {
        inclusion_proof(self, index, size)
    }

    /// [`consistency_proof`] on this tree.
    ///
    /// # Errors
    /// As [`consistency_proof`].
    pub fn consistency_proof(
        &self,
        from: u64,
        to: u64,
    ) -> Result<Vec<Hash>, TreeError<Infallible>> {
        consistency_proof(self, from, to)
    }
}

impl NodeReader for MemoryTree {
    type Error = Infallible;

    fn stored_size(&self) -> Result<u64, Infallible> {
        Ok(self.size())
    }

    fn node(&self, level: u8, index: u64) -> Result<Option<Hash>, Infallible> {
        Ok(self
            .levels
            .get(usize::from(level))
            .and_then(|l| usize::try_from(index).ok().and_then(|i| l.get(i)))
            .copied())
    }
}
