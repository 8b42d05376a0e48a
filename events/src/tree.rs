//! The log as a Merkle tree (DESIGN.md §9), on the store's side: what both
//! engines share to keep the tree's nodes beside the events and to answer
//! roots and proofs from them.
//!
//! Leaf `i` is the event with seq `i + 1`, its leaf data the 32 raw bytes of the
//! event's chain hash ([`traguardo_tlog::merkle::chain_leaf_hash`]). Each engine
//! keeps one row per complete subtree `(level, idx) → hash` in `tree_nodes`
//! (the storage model of [`traguardo_tlog::merkle`]), inserted by the writer in
//! the same transaction as the events, so a rolled-back group leaves no node.
//!
//! Every operation first runs against a *recording* reader, which learns which
//! nodes it will read (which nodes a proof needs depends on the sizes only, never
//! on the hashes), then fetches those nodes in one go and runs again: one round
//! trip to PostgreSQL per proof instead of one per node.
//!
//! A log whose tree is behind its events (one written before the tree existed,
//! or rows copied in behind the store's back) is caught up by [`catch_up`], at
//! open and at the start of every group commit.

use std::cell::RefCell;
use std::collections::HashMap;
use std::convert::Infallible;

use traguardo_tlog::merkle::{self, Hash, Node, NodeReader, TreeError};

use crate::{Error, Result};

/// Leaves added per step when an existing log's tree is built.
const CATCH_UP_CHUNK: usize = 16_384;

/// A node's address: level and index.
pub(crate) type NodeKey = (u8, u64);

/// What an engine provides, inside a transaction or on a read connection.
pub(crate) trait TreeTx {
    /// How many leaves the stored tree has.
    fn tree_size(&mut self) -> Result<u64>;
    /// The stored nodes among `keys` (absent ones are left out).
    fn fetch(&mut self, keys: &[NodeKey]) -> Result<HashMap<NodeKey, Hash>>;
    /// Up to `limit` `(seq, hash)` of the events after `after`, in seq order.
    fn event_hashes(&mut self, after: u64, limit: usize) -> Result<Vec<(u64, String)>>;
    /// Inserts new nodes.
    fn insert_nodes(&mut self, nodes: &[Node]) -> Result<()>;
}

/// A reader that either records what is read (answering zeros) or answers
/// from nodes fetched beforehand.
enum Prefetch {
    Recording {
        size: u64,
        wanted: RefCell<Vec<NodeKey>>,
    },
    Fetched {
        size: u64,
        nodes: HashMap<NodeKey, Hash>,
    },
}

impl NodeReader for Prefetch {
    type Error = Infallible;

    fn stored_size(&self) -> std::result::Result<u64, Infallible> {
        Ok(match self {
            Prefetch::Recording { size, .. } | Prefetch::Fetched { size, .. } => *size,
        })
    }

    fn node(&self, level: u8, index: u64) -> std::result::Result<Option<Hash>, Infallible> {
        Ok(match self {
            Prefetch::Recording { wanted, .. } => {
                wanted.borrow_mut().push((level, index));
                Some([0; 32])
            }
            Prefetch::Fetched { nodes, .. } => nodes.get(&(level, index)).copied(),
        })
    }
}

/// Runs a tree operation over a tree of `size` stored leaves in two passes:
/// one to learn the nodes it reads, one over those nodes fetched at once.
fn prefetched<T>(
    tx: &mut impl TreeTx,
    size: u64,
    op: impl Fn(&Prefetch) -> std::result::Result<T, TreeError<Infallible>>,
) -> Result<T> {
    let recording = Prefetch::Recording {
        size,
        wanted: RefCell::new(Vec::new()),
    };
    op(&recording).map_err(Error::Tree)?;
    let Prefetch::Recording { wanted, .. } = recording else {
        unreachable!("built as a recording reader")
    };
    let mut keys = wanted.into_inner();
    keys.sort_unstable();
    keys.dedup();
    let nodes = tx.fetch(&keys)?;
    op(&Prefetch::Fetched { size, nodes }).map_err(Error::Tree)
}

/// The root of the first `size` leaves.
pub(crate) fn root(tx: &mut impl TreeTx, size: u64) -> Result<Hash> {
    let stored = tx.tree_size()?;
    prefetched(tx, stored, |r| merkle::root(r, size))
}

/// The inclusion proof of the event `seq` in the tree of `size` leaves.
pub(crate) fn inclusion_proof(tx: &mut impl TreeTx, seq: u64, size: u64) -> Result<Vec<Hash>> {
    if seq == 0 {
        return Err(Error::SeqZero);
    }
    let stored = tx.tree_size()?;
    prefetched(tx, stored, |r| merkle::inclusion_proof(r, seq - 1, size))
}

/// The consistency proof from the tree of `from` leaves to that of `to`.
pub(crate) fn consistency_proof(tx: &mut impl TreeTx, from: u64, to: u64) -> Result<Vec<Hash>> {
    let stored = tx.tree_size()?;
    prefetched(tx, stored, |r| merkle::consistency_proof(r, from, to))
}

/// The leaf hash of an event from its stored chain hash.
pub(crate) fn leaf(seq: u64, chain_hash: &str) -> Result<Hash> {
    merkle::chain_leaf_hash_hex(chain_hash).map_err(|e| Error::Corrupt {
        seq,
        message: e.to_string(),
    })
}

/// Stores the nodes that `leaves` add to a tree of `size` leaves.
pub(crate) fn extend(tx: &mut impl TreeTx, size: u64, leaves: &[Hash]) -> Result<()> {
    if leaves.is_empty() {
        return Ok(());
    }
    let nodes = prefetched(tx, size, |r| {
        merkle::append(r, size, leaves).map_err(|e| match e {
            TreeError::Read(never) => match never {},
            other => other,
        })
    })?;
    tx.insert_nodes(&nodes)
}

/// The right edge of a stored tree (its complete subtrees of decreasing size
/// covering every leaf): the nodes the next append reads. A writer keeps the
/// edge it committed last so that its next append need not read it again. A
/// node never changes once stored, so what is kept stays true when another
/// process appends meanwhile; the nodes the next append lacks are fetched.
#[derive(Debug, Default)]
pub(crate) struct Edge(HashMap<NodeKey, Hash>);

impl Edge {
    /// The addresses of the right edge of a tree of `size` leaves: one
    /// complete subtree for each bit set in `size`, the largest first.
    fn keys(size: u64) -> impl Iterator<Item = NodeKey> {
        let mut start = 0u64;
        (0..64u8).rev().filter_map(move |level| {
            let width = 1u64 << level;
            (size & width != 0).then(|| {
                let key = (level, start >> level);
                start += width;
                key
            })
        })
    }
}

/// The nodes that `leaves` add to a tree of `size` stored leaves, reading the
/// edge from `edge` and fetching only the nodes it lacks; and the edge of the
/// grown tree, to keep once those nodes are committed (and only then).
pub(crate) fn grow(
    tx: &mut impl TreeTx,
    edge: &Edge,
    size: u64,
    leaves: &[Hash],
) -> Result<(Vec<Node>, Edge)> {
    let missing: Vec<NodeKey> = Edge::keys(size)
        .filter(|key| !edge.0.contains_key(key))
        .collect();
    let mut known = if missing.is_empty() {
        HashMap::new()
    } else {
        tx.fetch(&missing)?
    };
    known.extend(edge.0.iter().map(|(key, hash)| (*key, *hash)));
    let reader = Prefetch::Fetched { size, nodes: known };
    let created = merkle::append(&reader, size, leaves).map_err(Error::Tree)?;
    let Prefetch::Fetched {
        nodes: mut known, ..
    } = reader
    else {
        unreachable!("built as a fetched reader")
    };
    known.extend(created.iter().map(|n| ((n.level, n.index), n.hash)));
    let grown = size + leaves.len() as u64;
    let next = Edge::keys(grown)
        .filter_map(|key| known.get(&key).map(|hash| (key, *hash)))
        .collect();
    Ok((created, Edge(next)))
}

/// [`catch_up`] at open: a tree longer than the log (its tail deleted behind
/// the store's back) is left as it is, with a warning, so that the log still
/// opens and `verify` can say what happened; appends will fail on it.
pub(crate) fn catch_up_at_open(tx: &mut impl TreeTx, head: u64) -> Result<()> {
    let size = tx.tree_size()?;
    if size > head {
        tracing::warn!(
            tree = size,
            head,
            "the Merkle tree holds more leaves than the log has events: the log was cut"
        );
        return Ok(());
    }
    catch_up(tx, head).map(|_| ())
}

/// Brings the stored tree up to the log's `head` seq, reading the events it
/// lacks; returns the tree's size (the head). Run inside the write transaction.
pub(crate) fn catch_up(tx: &mut impl TreeTx, head: u64) -> Result<u64> {
    let mut size = tx.tree_size()?;
    if size > head {
        return Err(Error::Corrupt {
            seq: head,
            message: format!("the Merkle tree holds {size} leaves, the log only {head} events"),
        });
    }
    while size < head {
        // Never past `head`: the group's own events may follow it already.
        let want = usize::try_from(head - size).map_or(CATCH_UP_CHUNK, |n| n.min(CATCH_UP_CHUNK));
        let rows = tx.event_hashes(size, want)?;
        let mut leaves = Vec::with_capacity(rows.len());
        for (seq, hash) in &rows {
            if *seq != size + leaves.len() as u64 + 1 {
                return Err(Error::Corrupt {
                    seq: *seq,
                    message: "the log has a gap before this seq".into(),
                });
            }
            leaves.push(leaf(*seq, hash)?);
        }
        if leaves.is_empty() {
            break;
        }
        extend(tx, size, &leaves)?;
        size += leaves.len() as u64;
    }
    if size != head {
        return Err(Error::Corrupt {
            seq: size + 1,
            message: format!("the Merkle tree cannot reach the head {head}: the log has a gap"),
        });
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nodes in memory, counting what is fetched.
    #[derive(Default)]
    struct Nodes {
        stored: HashMap<NodeKey, Hash>,
        size: u64,
        fetched: usize,
    }

    impl TreeTx for Nodes {
        fn tree_size(&mut self) -> Result<u64> {
            Ok(self.size)
        }

        fn fetch(&mut self, keys: &[NodeKey]) -> Result<HashMap<NodeKey, Hash>> {
            self.fetched += keys.len();
            Ok(keys
                .iter()
                .filter_map(|k| self.stored.get(k).map(|h| (*k, *h)))
                .collect())
        }

        fn event_hashes(&mut self, _after: u64, _limit: usize) -> Result<Vec<(u64, String)>> {
            Ok(Vec::new())
        }

        fn insert_nodes(&mut self, nodes: &[Node]) -> Result<()> {
            for n in nodes {
                self.stored.insert((n.level, n.index), n.hash);
            }
            Ok(())
        }
    }

    #[test]
    fn the_right_edge_is_what_an_append_reads() {
        for size in (0..300).chain([1 << 20, (1 << 40) + 12_345, u64::MAX >> 1]) {
            let recording = Prefetch::Recording {
                size,
                wanted: RefCell::new(Vec::new()),
            };
            merkle::append(&recording, size, &[[7; 32]]).expect("an append records");
            let Prefetch::Recording { wanted, .. } = recording else {
                unreachable!()
            };
            assert_eq!(
                Edge::keys(size).collect::<Vec<_>>(),
                wanted.into_inner(),
                "size {size}"
            );
        }
    }

    #[test]
    fn a_kept_edge_grows_the_same_tree_without_reading_it_again() {
        let leaves: Vec<Hash> = (0..500u32)
            .map(|i| merkle::leaf_hash(&i.to_be_bytes()))
            .collect();
        let mut nodes = Nodes::default();
        let mut edge = Edge::default();
        let mut size = 0u64;
        for chunk in leaves.chunks(37) {
            let (created, next) = grow(&mut nodes, &edge, size, chunk).expect("it grows");
            nodes.insert_nodes(&created).expect("stored");
            size += chunk.len() as u64;
            nodes.size = size;
            edge = next;
        }
        assert_eq!(nodes.fetched, 0, "the kept edge is all an append reads");
        let expected = merkle::MemoryTree::from_leaf_hashes(&leaves);
        assert_eq!(
            root(&mut nodes, size).expect("a root"),
            expected.root(size).expect("a root")
        );
        // A writer that kept nothing (another process appended) fetches the edge.
        nodes.fetched = 0;
        let more = [merkle::leaf_hash(b"more")];
        let (created, _) = grow(&mut nodes, &Edge::default(), size, &more).expect("it grows");
        nodes.insert_nodes(&created).expect("stored");
        nodes.size = size + 1;
        assert_eq!(nodes.fetched, Edge::keys(size).count());
        let mut all = leaves.clone();
        all.extend(more);
        assert_eq!(
            root(&mut nodes, size + 1).expect("a root"),
            merkle::MemoryTree::from_leaf_hashes(&all)
                .root(size + 1)
                .expect("a root")
        );
    }
}
