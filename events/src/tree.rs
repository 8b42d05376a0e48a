//! The log as a Merkle tree (DESIGN.md §9), on the store's side: what both
//! engines share to keep the tree's nodes beside the events and to answer
//! roots and proofs from them.
//!
//! Leaf `i` is the event with seq `i + 1`, its leaf data the 32 raw bytes of the
//! event's chain hash ([`traguardo_tlog::merkle::chain_leaf_hash`]). Each engine
//! keeps one row per complete subtree `(level, idx) → hash` in `tree_nodes`
//! (the storage model of [`traguardo_tlog::merkle`]) **from level
//! [`TILE_LEVEL`] up**, inserted by the writer in the same transaction as the
//! events, so a rolled-back group leaves no node. The nodes below, inside a
//! *tile* of [`TILE_WIDTH`] leaves, are not stored: the events already hold
//! their leaves, and a read that needs them hashes the tile's chain hashes
//! again (at most 32 leaf hashes and 31 node hashes per tile). A group of
//! 1,000 events writes about 62 rows of the tree instead of about 2,000.
//! (Tiles of 256 leaves wrote fewer still, but tripled the cost of a proof.)
//!
//! Every operation first runs against a *recording* reader, which learns which
//! nodes it will read (which nodes a proof needs depends on the sizes only, never
//! on the hashes), then fetches those nodes in one go and runs again: one round
//! trip to PostgreSQL for the stored nodes of a proof, plus one per tile whose
//! events it hashes again, instead of one per node.
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

/// The lowest level of the tree that `tree_nodes` holds: a stored node covers
/// at least one tile of [`TILE_WIDTH`] leaves. (A log written before the tiles
/// also holds the levels below; they are never read.)
pub(crate) const TILE_LEVEL: u8 = 5;

/// Leaves per tile.
pub(crate) const TILE_WIDTH: u64 = 1 << TILE_LEVEL;

/// The query both engines count a stored tree's complete tiles with: its
/// nodes at [`TILE_LEVEL`] (a macro, so that PostgreSQL's group opening can
/// `concat!` it into its one round trip).
macro_rules! stored_tiles_sql {
    () => {
        "SELECT COALESCE(MAX(idx) + 1, 0) FROM tree_nodes WHERE level = 5"
    };
}
pub(crate) use stored_tiles_sql;

/// Whether a stored tree of `tiles` complete tiles is caught up with a log of
/// `head` events: it holds every complete tile, and the events after them are
/// the leaves of the tile still open.
pub(crate) fn caught_up(tiles: u64, head: u64) -> bool {
    head / TILE_WIDTH == tiles
}

/// How many leaves a stored tree of `tiles` complete tiles holds on a log of
/// `head` events: the whole log when caught up; else the leaves of its tiles
/// (fewer than the head when the tree is behind, more when the log was cut).
fn stored_leaves(tiles: u64, head: u64) -> u64 {
    if caught_up(tiles, head) {
        head
    } else {
        tiles.saturating_mul(TILE_WIDTH)
    }
}

/// A node's address: level and index.
pub(crate) type NodeKey = (u8, u64);

/// What an engine provides, inside a transaction or on a read connection.
pub(crate) trait TreeTx {
    /// How many complete tiles the stored tree has ([`stored_tiles_sql`]).
    fn stored_tiles(&mut self) -> Result<u64>;
    /// The seq of the log's last event (0 when empty).
    fn head(&mut self) -> Result<u64>;
    /// The stored nodes among `keys`, all at [`TILE_LEVEL`] or above (absent
    /// ones are left out).
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
    let keys = wanted.into_inner();
    let nodes = fetch(tx, size, keys)?;
    op(&Prefetch::Fetched { size, nodes }).map_err(Error::Tree)
}

/// The nodes among `keys` of a tree of `size` leaves: those at [`TILE_LEVEL`]
/// and above from the table, those below hashed from their tile's events, from
/// the tile's first to the last leaf a key covers (never a leaf at or past
/// `size`). A node that is neither stored nor computable (its events are
/// missing) is left out.
fn fetch(
    tx: &mut impl TreeTx,
    size: u64,
    mut keys: Vec<NodeKey>,
) -> Result<HashMap<NodeKey, Hash>> {
    keys.sort_unstable();
    keys.dedup();
    let (inside, stored): (Vec<NodeKey>, Vec<NodeKey>) =
        keys.into_iter().partition(|(level, _)| *level < TILE_LEVEL);
    let mut nodes = if stored.is_empty() {
        HashMap::new()
    } else {
        tx.fetch(&stored)?
    };
    let tile_of = |(level, index): NodeKey| index >> (TILE_LEVEL - level);
    // Each tile once, with the end of the last leaf its keys cover.
    let mut tiles: Vec<(u64, u64)> = inside
        .iter()
        .map(|&(level, index)| (tile_of((level, index)), (index + 1) << level))
        .collect();
    tiles.sort_unstable();
    tiles.dedup_by(|later, earlier| {
        later.0 == earlier.0 && {
            earlier.1 = later.1;
            true
        }
    });
    for (tile, end) in tiles {
        let tree = tile_tree(tx, tile, size.min(end))?;
        for &(level, index) in inside.iter().filter(|key| tile_of(**key) == tile) {
            let within = index & ((1 << (TILE_LEVEL - level)) - 1);
            if let Some(hash) = tree
                .node(level, within)
                .unwrap_or_else(|never| match never {})
            {
                nodes.insert((level, index), hash);
            }
        }
    }
    Ok(nodes)
}

/// The tree of tile `tile`'s leaves below `end`, read from the events' chain
/// hashes, up to the first one missing.
fn tile_tree(tx: &mut impl TreeTx, tile: u64, end: u64) -> Result<merkle::MemoryTree> {
    let start = tile.saturating_mul(TILE_WIDTH);
    let end = end.min(start.saturating_add(TILE_WIDTH));
    if end <= start {
        return Ok(merkle::MemoryTree::new());
    }
    let rows = tx.event_hashes(start, usize::try_from(end - start).unwrap_or(usize::MAX))?;
    let mut leaves = Vec::with_capacity(rows.len());
    for (seq, hash) in &rows {
        if *seq != start + leaves.len() as u64 + 1 {
            break;
        }
        leaves.push(leaf(*seq, hash)?);
    }
    Ok(merkle::MemoryTree::from_leaf_hashes(&leaves))
}

/// How many leaves the stored tree holds, as a reader sees it.
fn stored_size(tx: &mut impl TreeTx) -> Result<u64> {
    let tiles = tx.stored_tiles()?;
    Ok(stored_leaves(tiles, tx.head()?))
}

/// The nodes a tree keeps in `tree_nodes`, among those an append created.
fn kept(nodes: Vec<Node>) -> Vec<Node> {
    nodes
        .into_iter()
        .filter(|node| node.level >= TILE_LEVEL)
        .collect()
}

/// The root of the first `size` leaves.
pub(crate) fn root(tx: &mut impl TreeTx, size: u64) -> Result<Hash> {
    let stored = stored_size(tx)?;
    prefetched(tx, stored, |r| merkle::root(r, size))
}

/// The inclusion proof of the event `seq` in the tree of `size` leaves.
pub(crate) fn inclusion_proof(tx: &mut impl TreeTx, seq: u64, size: u64) -> Result<Vec<Hash>> {
    if seq == 0 {
        return Err(Error::SeqZero);
    }
    let stored = stored_size(tx)?;
    prefetched(tx, stored, |r| merkle::inclusion_proof(r, seq - 1, size))
}

/// The consistency proof from the tree of `from` leaves to that of `to`.
pub(crate) fn consistency_proof(tx: &mut impl TreeTx, from: u64, to: u64) -> Result<Vec<Hash>> {
    let stored = stored_size(tx)?;
    prefetched(tx, stored, |r| merkle::consistency_proof(r, from, to))
}

/// The leaf hash of an event from its stored chain hash.
pub(crate) fn leaf(seq: u64, chain_hash: &str) -> Result<Hash> {
    merkle::chain_leaf_hash_hex(chain_hash).map_err(|e| Error::Corrupt {
        seq,
        message: e.to_string(),
    })
}

/// Stores the nodes at [`TILE_LEVEL`] and above that `leaves` add to a tree
/// of `size` leaves.
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
    tx.insert_nodes(&kept(nodes))
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

/// The nodes to store (at [`TILE_LEVEL`] and above) that `leaves` add to a
/// tree of `size` stored leaves, reading the edge from `edge` and fetching
/// only the nodes it lacks; and the edge of the grown tree (its nodes below
/// the tiles' level included), to keep once those nodes are committed (and
/// only then).
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
        fetch(tx, size, missing)?
    };
    known.extend(edge.0.iter().map(|(key, hash)| (*key, *hash)));
    let reader = Prefetch::Fetched { size, nodes: known };
    let created = merkle::append(&reader, size, leaves).map_err(Error::Tree)?;
    let Prefetch::Fetched { nodes: known, .. } = reader else {
        unreachable!("built as a fetched reader")
    };
    // The grown edge: a node just created (found from the end, where the
    // edge's nodes were made; not hashed into the map, which a group of 1,000
    // events made cost 2,000 inserts) or one known before.
    let grown = size + leaves.len() as u64;
    let next = Edge::keys(grown)
        .filter_map(|key| {
            created
                .iter()
                .rev()
                .find(|n| (n.level, n.index) == key)
                .map(|n| n.hash)
                .or_else(|| known.get(&key).copied())
                .map(|hash| (key, hash))
        })
        .collect();
    Ok((kept(created), Edge(next)))
}

/// [`catch_up`] at open: a tree longer than the log (its tail deleted behind
/// the store's back) is left as it is, with a warning, so that the log still
/// opens and `verify` can say what happened; appends will fail on it.
pub(crate) fn catch_up_at_open(tx: &mut impl TreeTx, head: u64) -> Result<()> {
    let size = stored_leaves(tx.stored_tiles()?, head);
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
    let mut size = stored_leaves(tx.stored_tiles()?, head);
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

    /// A log's chain hashes and its stored nodes in memory, counting what is
    /// read.
    #[derive(Default)]
    struct Nodes {
        /// The events' chain hashes, in hex: seq `i + 1` at `i`.
        events: Vec<String>,
        stored: HashMap<NodeKey, Hash>,
        /// Nodes asked of the table.
        fetched: usize,
        /// Events read for their chain hash.
        events_read: usize,
    }

    impl Nodes {
        fn with_events(n: u32) -> Nodes {
            Nodes {
                events: (0..n)
                    .map(|i| hex::encode(merkle::leaf_hash(&i.to_be_bytes())))
                    .collect(),
                ..Nodes::default()
            }
        }

        fn leaves(&self, n: u64) -> Vec<Hash> {
            self.events[..n as usize]
                .iter()
                .enumerate()
                .map(|(i, hash)| leaf(i as u64 + 1, hash).expect("a chain hash"))
                .collect()
        }
    }

    impl TreeTx for Nodes {
        fn stored_tiles(&mut self) -> Result<u64> {
            Ok(self
                .stored
                .keys()
                .filter(|(level, _)| *level == TILE_LEVEL)
                .map(|(_, index)| index + 1)
                .max()
                .unwrap_or(0))
        }

        fn head(&mut self) -> Result<u64> {
            Ok(self.events.len() as u64)
        }

        fn fetch(&mut self, keys: &[NodeKey]) -> Result<HashMap<NodeKey, Hash>> {
            assert!(
                keys.iter().all(|(level, _)| *level >= TILE_LEVEL),
                "{keys:?}"
            );
            self.fetched += keys.len();
            Ok(keys
                .iter()
                .filter_map(|k| self.stored.get(k).map(|h| (*k, *h)))
                .collect())
        }

        fn event_hashes(&mut self, after: u64, limit: usize) -> Result<Vec<(u64, String)>> {
            let rows: Vec<(u64, String)> = self
                .events
                .iter()
                .enumerate()
                .skip(after as usize)
                .take(limit)
                .map(|(i, hash)| (i as u64 + 1, hash.clone()))
                .collect();
            self.events_read += rows.len();
            Ok(rows)
        }

        fn insert_nodes(&mut self, nodes: &[Node]) -> Result<()> {
            for n in nodes {
                assert!(n.level >= TILE_LEVEL, "{n:?} is inside a tile");
                assert!(
                    self.stored.insert((n.level, n.index), n.hash).is_none(),
                    "{n:?} stored twice"
                );
            }
            Ok(())
        }
    }

    #[test]
    fn the_tiles_query_counts_the_tiles_level() {
        assert!(stored_tiles_sql!().ends_with(&format!("WHERE level = {TILE_LEVEL}")));
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
        let w = TILE_WIDTH;
        let first = 4 * w + 3 * w / 4;
        let n = 5 * w + w / 4;
        let mut nodes = Nodes::with_events(n as u32);
        let leaves = nodes.leaves(n);
        let mut edge = Edge::default();
        let mut size = 0u64;
        for chunk in leaves[..first as usize].chunks(7) {
            let (created, next) = grow(&mut nodes, &edge, size, chunk).expect("it grows");
            nodes.insert_nodes(&created).expect("stored");
            size += chunk.len() as u64;
            edge = next;
        }
        assert_eq!(
            (nodes.fetched, nodes.events_read),
            (0, 0),
            "the kept edge is all an append reads"
        );
        // Only the tiles' level and above are stored: 4 tiles, 2 pairs of
        // them, 1 of four.
        assert_eq!(nodes.stored.len(), 4 + 2 + 1);
        let expected = merkle::MemoryTree::from_leaf_hashes(&leaves);
        nodes.events.truncate(first as usize);
        for at in [1, w - 1, w, w + 1, 4 * w, first - 1, first] {
            assert_eq!(
                root(&mut nodes, at).expect("a root"),
                expected.root(at).expect("a root"),
                "root at {at}"
            );
        }
        // A writer that kept nothing (another process appended) fetches the
        // edge's stored nodes and hashes the open tile's events again.
        nodes.fetched = 0;
        nodes.events_read = 0;
        nodes.events = Nodes::with_events(n as u32).events;
        let (created, _) = grow(
            &mut nodes,
            &Edge::default(),
            size,
            &leaves[first as usize..],
        )
        .expect("it grows");
        nodes.insert_nodes(&created).expect("stored");
        assert_eq!(nodes.fetched, 1, "the node of the first four tiles");
        assert_eq!(
            nodes.events_read,
            (first - 4 * w) as usize,
            "the open tile's events"
        );
        assert_eq!(nodes.stored.len(), 4 + 2 + 1 + 1, "the fifth tile");
        for at in [first + 1, 5 * w, n] {
            assert_eq!(
                root(&mut nodes, at).expect("a root"),
                expected.root(at).expect("a root")
            );
        }
    }

    #[test]
    fn proofs_inside_and_across_tiles_are_the_memory_trees() {
        let w = TILE_WIDTH;
        let n = 2 * w + 3 * w / 4;
        let mut nodes = Nodes::with_events(n as u32);
        let leaves = nodes.leaves(n);
        assert_eq!(catch_up(&mut nodes, n).expect("built"), n);
        let expected = merkle::MemoryTree::from_leaf_hashes(&leaves);
        for seq in [1, 2, w - 1, w, w + 1, 2 * w, 2 * w + 1, n - 1, n] {
            for size in [seq, w, w + w / 4, 2 * w - 1, 2 * w, n] {
                if size < seq {
                    continue;
                }
                assert_eq!(
                    inclusion_proof(&mut nodes, seq, size).expect("a proof"),
                    expected.inclusion_proof(seq - 1, size).expect("a proof"),
                    "inclusion of {seq} in {size}"
                );
                assert_eq!(
                    consistency_proof(&mut nodes, seq, size).expect("a proof"),
                    expected.consistency_proof(seq, size).expect("a proof"),
                    "consistency from {seq} to {size}"
                );
            }
        }
    }

    #[test]
    fn a_tree_behind_or_past_its_log_is_caught_up_or_refused() {
        let w = TILE_WIDTH;
        let n = 2 * w + w / 4 + 3;
        let mut nodes = Nodes::with_events(n as u32);
        // Behind: no tile stored on a log of two complete tiles.
        assert_eq!(stored_size(&mut nodes).expect("a size"), 0);
        assert!(matches!(
            root(&mut nodes, n),
            Err(Error::Tree(merkle::TreeError::BeyondStored {
                stored: 0,
                ..
            }))
        ));
        assert_eq!(catch_up(&mut nodes, n).expect("built"), n);
        assert_eq!(nodes.stored.len(), 2 + 1);
        assert_eq!(stored_size(&mut nodes).expect("a size"), n);
        // Past: the log was cut inside its second tile.
        let cut = w + w / 2;
        nodes.events.truncate(cut as usize);
        assert_eq!(stored_size(&mut nodes).expect("a size"), 2 * w);
        assert!(matches!(
            catch_up(&mut nodes, cut),
            Err(Error::Corrupt { .. })
        ));
        catch_up_at_open(&mut nodes, cut).expect("it opens, with a warning");
        // The part of the cut tree the log still holds answers.
        let expected = merkle::MemoryTree::from_leaf_hashes(&nodes.leaves(cut));
        assert_eq!(
            root(&mut nodes, w + w / 4).expect("a root"),
            expected.root(w + w / 4).expect("a root")
        );
    }
}
