//! The Merkle tree against published vectors and against a naive reading of
//! RFC 9162 §2.1 written here from the definitions.

use std::cell::Cell;
use std::collections::HashMap;
use std::convert::Infallible;

use sha2::{Digest, Sha256};
use traguardo_tlog::merkle::{
    self, chain_leaf_hash, chain_leaf_hash_hex, consistency_proof, empty_root, inclusion_proof,
    leaf_hash, root, verify_consistency, verify_inclusion, MemoryTree, Node, NodeReader,
    ProofError, TreeError,
};
use traguardo_tlog::Hash;

use crate::{b64_hash, hex_hash};

// ---- The naive reference: RFC 9162 §2.1.1, §2.1.3.1, §2.1.4.1, recursively.

fn naive_node(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

fn naive_k(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// MTH over leaf hashes.
fn mth(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => Sha256::digest([]).into(),
        1 => leaves[0],
        n => {
            let k = naive_k(n);
            naive_node(&mth(&leaves[..k]), &mth(&leaves[k..]))
        }
    }
}

fn naive_path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
    let n = leaves.len();
    if n == 1 {
        return Vec::new();
    }
    let k = naive_k(n);
    if m < k {
        let mut p = naive_path(m, &leaves[..k]);
        p.push(mth(&leaves[k..]));
        p
    } else {
        let mut p = naive_path(m - k, &leaves[k..]);
        p.push(mth(&leaves[..k]));
        p
    }
}

fn naive_subproof(m: usize, leaves: &[Hash], whole: bool) -> Vec<Hash> {
    let n = leaves.len();
    if m == n {
        return if whole { Vec::new() } else { vec![mth(leaves)] };
    }
    let k = naive_k(n);
    if m <= k {
        let mut p = naive_subproof(m, &leaves[..k], whole);
        p.push(mth(&leaves[k..]));
        p
    } else {
        let mut p = naive_subproof(m - k, &leaves[k..], false);
        p.push(mth(&leaves[..k]));
        p
    }
}

/// Leaf hashes shaped like Traguardo's: leaf data is a 32-byte chain hash.
fn event_leaves(n: usize) -> Vec<Hash> {
    (0..n as u64)
        .map(|i| chain_leaf_hash(&Sha256::digest(i.to_be_bytes()).into()))
        .collect()
}

/// A tiny deterministic generator (SplitMix64), so runs repeat.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform-ish in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

fn flip(hash: &Hash) -> Hash {
    let mut h = *hash;
    h[7] ^= 0x20;
    h
}

// ---- Published vectors: transparency-dev/merkle `testonly/constants.go`
// (RFC 6962 reference tree of 8 leaves) and `testdata/{inclusion,consistency}`.

const VECTOR_LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

const VECTOR_ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// Every complete subtree of the 8-leaf tree, by level then index.
const VECTOR_NODES: [&[&str]; 4] = [
    &[
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
        "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
        "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
        "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
        "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
        "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
    ],
    &[
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
        "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
        "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    ],
    &[
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    ],
    &["5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"],
];

/// (leaf index, tree size, proof) from `testdata/inclusion/*/happy-path.json`.
const VECTOR_INCLUSIONS: [(u64, u64, &[&str]); 5] = [
    (0, 1, &[]),
    (
        0,
        8,
        &[
            "lqKW0iTyhcZ77pPDD4owkVfw2qNdxbh+QQt4YwoJz8c=",
            "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
            "a0eq8p7jwq+a+Im8H7klTavTEXfxYjLdaqsDXKOb9uQ=",
        ],
    ),
    (
        5,
        8,
        &[
            "vBoGQ7EuTS18d5GPROD095qDi2z57FtcKD4fTYhZnms=",
            "yoVOoSjtBQtBs1/8G4e46yveRh6eO1WW7Oa51ZdaCuA=",
            "037kGJdt2VdTwcc4Yrk5j6Kiz5tP8P3+izDNlSCWFLc=",
        ],
    ),
    (2, 3, &["+sVCA+fMaWzw38tCySodnbr3CtnmIfS9jZhmLwDjwSU="]),
    (
        1,
        5,
        &[
            "bjQLnP+zepicpUTmu3gKLHiQHT+zNzh2hRGjBhevoB0=",
            "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
            "vBoGQ7EuTS18d5GPROD095qDi2z57FtcKD4fTYhZnms=",
        ],
    ),
];

/// (from, to, proof) from `testdata/consistency/*/happy-path.json`.
const VECTOR_CONSISTENCIES: [(u64, u64, &[&str]); 5] = [
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "lqKW0iTyhcZ77pPDD4owkVfw2qNdxbh+QQt4YwoJz8c=",
            "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
            "a0eq8p7jwq+a+Im8H7klTavTEXfxYjLdaqsDXKOb9uQ=",
        ],
    ),
    (
        6,
        8,
        &[
            "DrxdNDf74tsVi58Sah0RjjCBgQMdCpSfje3t68VY72o=",
            "yoVOoSjtBQtBs1/8G4e46yveRh6eO1WW7Oa51ZdaCuA=",
            "037kGJdt2VdTwcc4Yrk5j6Kiz5tP8P3+izDNlSCWFLc=",
        ],
    ),
    (
        2,
        5,
        &[
            "Xwg/ChozygdqlSeYMlgNs+DvRYS9/x9UyKNg9Q3jAx4=",
            "vBoGQ7EuTS18d5GPROD095qDi2z57FtcKD4fTYhZnms=",
        ],
    ),
    (
        6,
        7,
        &[
            "DrxdNDf74tsVi58Sah0RjjCBgQMdCpSfje3t68VY72o=",
            "sIaT7C5yFZcTBkHoIR5+7cy0wmQTlj7ubB4u0W/7Gl8=",
            "037kGJdt2VdTwcc4Yrk5j6Kiz5tP8P3+izDNlSCWFLc=",
        ],
    ),
];

fn vector_tree() -> (Vec<Hash>, MemoryTree) {
    let leaves: Vec<Hash> = VECTOR_LEAVES
        .iter()
        .map(|h| leaf_hash(&hex::decode(h).expect("hex")))
        .collect();
    let tree = MemoryTree::from_leaf_hashes(&leaves);
    (leaves, tree)
}

#[test]
fn the_reference_tree_has_the_published_roots_at_every_size() {
    let (_, tree) = vector_tree();
    for (size, want) in VECTOR_ROOTS.iter().enumerate() {
        assert_eq!(
            tree.root(size as u64).unwrap(),
            hex_hash(want),
            "size {size}"
        );
    }
    assert_eq!(empty_root(), hex_hash(VECTOR_ROOTS[0]));
}

#[test]
fn the_reference_tree_stores_the_published_complete_subtrees() {
    let (_, tree) = vector_tree();
    for (level, nodes) in VECTOR_NODES.iter().enumerate() {
        for (index, want) in nodes.iter().enumerate() {
            assert_eq!(
                tree.node(level as u8, index as u64).unwrap(),
                Some(hex_hash(want)),
                "node ({level}, {index})"
            );
        }
    }
    assert_eq!(tree.node(3, 1).unwrap(), None);
    assert_eq!(tree.node(4, 0).unwrap(), None);
}

#[test]
fn inclusion_proofs_match_the_published_ones_and_verify() {
    let (leaves, tree) = vector_tree();
    for (index, size, want) in VECTOR_INCLUSIONS {
        let want: Vec<Hash> = want.iter().map(|h| b64_hash(h)).collect();
        let proof = tree.inclusion_proof(index, size).unwrap();
        assert_eq!(proof, want, "inclusion of {index} in {size}");
        let root = tree.root(size).unwrap();
        verify_inclusion(&leaves[index as usize], index, size, &want, &root).unwrap();
    }
}

#[test]
fn consistency_proofs_match_the_published_ones_and_verify() {
    let (_, tree) = vector_tree();
    for (from, to, want) in VECTOR_CONSISTENCIES {
        let want: Vec<Hash> = want.iter().map(|h| b64_hash(h)).collect();
        let proof = tree.consistency_proof(from, to).unwrap();
        assert_eq!(proof, want, "consistency {from} -> {to}");
        let (old, new) = (tree.root(from).unwrap(), tree.root(to).unwrap());
        verify_consistency(from, to, &old, &new, &want).unwrap();
    }
}

#[test]
fn roots_match_the_naive_definition_for_every_size_up_to_64() {
    let leaves = event_leaves(64);
    let tree = MemoryTree::from_leaf_hashes(&leaves);
    for size in 0..=64 {
        assert_eq!(
            tree.root(size as u64).unwrap(),
            mth(&leaves[..size]),
            "size {size}"
        );
    }
}

#[test]
fn every_inclusion_proof_up_to_64_matches_the_naive_one_and_verifies() {
    let leaves = event_leaves(64);
    let tree = MemoryTree::from_leaf_hashes(&leaves);
    for size in 1..=64usize {
        let root = mth(&leaves[..size]);
        for index in 0..size {
            let proof = tree.inclusion_proof(index as u64, size as u64).unwrap();
            assert_eq!(
                proof,
                naive_path(index, &leaves[..size]),
                "{index} in {size}"
            );
            verify_inclusion(&leaves[index], index as u64, size as u64, &proof, &root).unwrap();
        }
    }
}

#[test]
fn every_consistency_proof_up_to_64_matches_the_naive_one_and_verifies() {
    let leaves = event_leaves(64);
    let tree = MemoryTree::from_leaf_hashes(&leaves);
    for to in 1..=64usize {
        let new_root = mth(&leaves[..to]);
        for from in 1..=to {
            let old_root = mth(&leaves[..from]);
            let proof = tree.consistency_proof(from as u64, to as u64).unwrap();
            assert_eq!(
                proof,
                naive_subproof(from, &leaves[..to], true),
                "{from} -> {to}"
            );
            verify_consistency(from as u64, to as u64, &old_root, &new_root, &proof).unwrap();
        }
    }
}

#[test]
fn a_tampered_leaf_proof_index_or_root_fails_inclusion() {
    let leaves = event_leaves(40);
    let tree = MemoryTree::from_leaf_hashes(&leaves);
    for size in 1..=40u64 {
        let root = tree.root(size).unwrap();
        for index in 0..size {
            let leaf = leaves[index as usize];
            let proof = tree.inclusion_proof(index, size).unwrap();
            assert_eq!(
                verify_inclusion(&flip(&leaf), index, size, &proof, &root),
                Err(ProofError::RootMismatch)
            );
            assert_eq!(
                verify_inclusion(&leaf, index, size, &proof, &flip(&root)),
                Err(ProofError::RootMismatch)
            );
            for i in 0..proof.len() {
                let mut bad = proof.clone();
                bad[i] = flip(&bad[i]);
                assert!(verify_inclusion(&leaf, index, size, &bad, &root).is_err());
                let mut short = proof.clone();
                short.remove(i);
                assert!(verify_inclusion(&leaf, index, size, &short, &root).is_err());
            }
            let mut long = proof.clone();
            long.push(root);
            assert!(verify_inclusion(&leaf, index, size, &long, &root).is_err());
            // Another leaf's position never verifies this leaf.
            for other in (0..size).filter(|&o| o != index) {
                assert!(verify_inclusion(&leaf, other, size, &proof, &root).is_err());
            }
            assert_eq!(
                verify_inclusion(&leaf, size, size, &proof, &root),
                Err(ProofError::IndexOutOfRange { index: size, size })
            );
        }
    }
}

#[test]
fn a_tampered_proof_or_root_fails_consistency() {
    let leaves = event_leaves(40);
    let tree = MemoryTree::from_leaf_hashes(&leaves);
    for to in 2..=40u64 {
        let new_root = tree.root(to).unwrap();
        for from in 1..to {
            let old_root = tree.root(from).unwrap();
            let proof = tree.consistency_proof(from, to).unwrap();
            for i in 0..proof.len() {
                let mut bad = proof.clone();
                bad[i] = flip(&bad[i]);
                assert!(verify_consistency(from, to, &old_root, &new_root, &bad).is_err());
                let mut short = proof.clone();
                short.remove(i);
                assert!(verify_consistency(from, to, &old_root, &new_root, &short).is_err());
            }
            let mut long = proof.clone();
            long.push(new_root);
            assert!(verify_consistency(from, to, &old_root, &new_root, &long).is_err());
            assert!(verify_consistency(from, to, &flip(&old_root), &new_root, &proof).is_err());
            assert!(verify_consistency(from, to, &old_root, &flip(&new_root), &proof).is_err());
            assert!(verify_consistency(from, to, &new_root, &old_root, &proof).is_err());
            assert!(verify_consistency(from, to, &old_root, &new_root, &[]).is_err());
        }
    }
}

#[test]
fn edge_cases_are_typed_errors() {
    let leaves = event_leaves(10);
    let tree = MemoryTree::from_leaf_hashes(&leaves);
    assert_eq!(MemoryTree::new().root(0).unwrap(), mth(&[]));
    assert_eq!(tree.root(0).unwrap(), empty_root());
    assert_eq!(
        tree.root(11),
        Err(TreeError::BeyondStored {
            size: 11,
            stored: 10
        })
    );
    assert_eq!(
        tree.inclusion_proof(10, 10),
        Err(TreeError::IndexOutOfRange {
            index: 10,
            size: 10
        })
    );
    assert_eq!(
        tree.inclusion_proof(0, 0),
        Err(TreeError::IndexOutOfRange { index: 0, size: 0 })
    );
    assert_eq!(
        tree.inclusion_proof(3, 12),
        Err(TreeError::BeyondStored {
            size: 12,
            stored: 10
        })
    );
    assert_eq!(tree.consistency_proof(0, 5), Err(TreeError::FromEmpty));
    assert_eq!(tree.consistency_proof(0, 0), Err(TreeError::FromEmpty));
    assert_eq!(
        tree.consistency_proof(6, 5),
        Err(TreeError::FromAfterTo { from: 6, to: 5 })
    );
    assert_eq!(
        tree.consistency_proof(5, 11),
        Err(TreeError::BeyondStored {
            size: 11,
            stored: 10
        })
    );
    assert_eq!(tree.consistency_proof(7, 7), Ok(vec![]));

    let (r3, r5) = (tree.root(3).unwrap(), tree.root(5).unwrap());
    assert_eq!(
        verify_consistency(0, 5, &empty_root(), &r5, &[]),
        Err(ProofError::FromEmpty)
    );
    assert_eq!(
        verify_consistency(5, 3, &r5, &r3, &[]),
        Err(ProofError::FromAfterTo { from: 5, to: 3 })
    );
    assert_eq!(verify_consistency(5, 5, &r5, &r5, &[]), Ok(()));
    assert_eq!(
        verify_consistency(5, 5, &r5, &r3, &[]),
        Err(ProofError::SameSizeRootsDiffer)
    );
    assert_eq!(
        verify_consistency(5, 5, &r5, &r5, &[r3]),
        Err(ProofError::TooLong)
    );
    assert_eq!(
        verify_consistency(3, 5, &r3, &r5, &[]),
        Err(ProofError::TooShort)
    );
    assert_eq!(
        verify_inclusion(&leaves[0], 0, 0, &[], &empty_root()),
        Err(ProofError::IndexOutOfRange { index: 0, size: 0 })
    );
}

#[test]
fn the_leaf_of_an_event_is_the_leaf_hash_of_its_raw_chain_hash() {
    let chain = "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328";
    let raw = hex_hash(chain);
    let mut data = vec![0u8];
    data.extend_from_slice(&raw);
    let want: Hash = Sha256::digest(&data).into();
    assert_eq!(chain_leaf_hash(&raw), want);
    assert_eq!(chain_leaf_hash_hex(chain), Ok(want));
    assert!(chain_leaf_hash_hex(&chain.to_uppercase()).is_err());
    assert!(chain_leaf_hash_hex(&chain[..62]).is_err());
    assert!(chain_leaf_hash_hex(&format!("{}zz", &chain[..62])).is_err());
}

// ---- A store of its own, written only through `merkle::append`.

/// What a database store would keep: nodes by (level, index), and a size.
#[derive(Default)]
struct MapStore {
    nodes: HashMap<(u8, u64), Hash>,
    size: u64,
    reads: Cell<usize>,
}

impl MapStore {
    fn append(&mut self, leaves: &[Hash]) -> Vec<Node> {
        let nodes = merkle::append(self, self.size, leaves).unwrap();
        for n in &nodes {
            assert!(
                self.nodes.insert((n.level, n.index), n.hash).is_none(),
                "node ({}, {}) written twice",
                n.level,
                n.index
            );
        }
        self.size += leaves.len() as u64;
        nodes
    }
}

impl NodeReader for MapStore {
    type Error = Infallible;

    fn stored_size(&self) -> Result<u64, Infallible> {
        self.reads.set(self.reads.get() + 1);
        Ok(self.size)
    }

    fn node(&self, level: u8, index: u64) -> Result<Option<Hash>, Infallible> {
        self.reads.set(self.reads.get() + 1);
        Ok(self.nodes.get(&(level, index)).copied())
    }
}

#[test]
fn appending_in_chunks_stores_exactly_the_complete_subtrees_of_a_fresh_build() {
    let leaves = event_leaves(300);
    let mut rng = Rng(7);
    let mut store = MapStore::default();
    let mut at = 0usize;
    while at < leaves.len() {
        let chunk = (rng.range(0, 17) as usize).min(leaves.len() - at);
        let before = store.reads.get();
        let nodes = store.append(&leaves[at..at + chunk]);
        // Only the right edge is read: one node per set bit of the old size.
        assert_eq!(
            store.reads.get() - before,
            (at as u64).count_ones() as usize
        );
        // Children before parents, and only complete subtrees within the new size.
        for n in &nodes {
            let end = (n.index + 1) << n.level;
            assert!(end <= (at + chunk) as u64 && end > at as u64);
        }
        at += chunk;
        assert_eq!(
            root(&store, at as u64).unwrap(),
            mth(&leaves[..at]),
            "size {at}"
        );
    }
    let fresh = MemoryTree::from_leaf_hashes(&leaves);
    let mut count = 0;
    for level in 0..=9u8 {
        let mut index = 0;
        while let Some(hash) = fresh.node(level, index).unwrap() {
            assert_eq!(store.nodes.get(&(level, index)), Some(&hash));
            index += 1;
            count += 1;
        }
    }
    assert_eq!(store.nodes.len(), count);
    for size in 1..=300u64 {
        assert_eq!(root(&store, size).unwrap(), fresh.root(size).unwrap());
    }
}

#[test]
fn roots_and_proofs_read_a_logarithmic_number_of_nodes() {
    let mut store = MapStore::default();
    store.append(&event_leaves(5000));
    let mut rng = Rng(11);
    for _ in 0..200 {
        let size = rng.range(1, 5000);
        store.reads.set(0);
        root(&store, size).unwrap();
        assert!(store.reads.get() <= 1 + size.count_ones() as usize);

        let index = rng.range(0, size - 1);
        store.reads.set(0);
        let proof = inclusion_proof(&store, index, size).unwrap();
        assert!(store.reads.get() <= 1 + proof.len() + size.count_ones() as usize);

        let from = rng.range(1, size);
        store.reads.set(0);
        let proof = consistency_proof(&store, from, size).unwrap();
        assert!(store.reads.get() <= 1 + proof.len() + size.count_ones() as usize);
    }
}

#[test]
fn a_missing_node_is_reported_not_guessed() {
    let mut store = MapStore::default();
    store.append(&event_leaves(8));
    store.nodes.remove(&(2, 1));
    assert_eq!(root(&store, 8), Ok(mth(&event_leaves(8))));
    assert_eq!(root(&store, 7), Ok(mth(&event_leaves(8)[..7])));
    assert_eq!(
        consistency_proof(&store, 4, 8),
        Err(TreeError::MissingNode { level: 2, index: 1 })
    );
    assert_eq!(
        inclusion_proof(&store, 0, 8),
        Err(TreeError::MissingNode { level: 2, index: 1 })
    );
    assert_eq!(
        merkle::append(&store, 8, &[]).map(|n| n.len()),
        Ok(0),
        "appending to 8 leaves reads only the level-3 node"
    );
    store.nodes.remove(&(3, 0));
    assert_eq!(
        merkle::append(&store, 8, &event_leaves(1)),
        Err(TreeError::MissingNode { level: 3, index: 0 })
    );
}

/// A store whose reads fail.
struct Broken;

impl NodeReader for Broken {
    type Error = &'static str;

    fn stored_size(&self) -> Result<u64, &'static str> {
        Ok(100)
    }

    fn node(&self, _: u8, _: u64) -> Result<Option<Hash>, &'static str> {
        Err("disk on fire")
    }
}

#[test]
fn a_read_error_comes_back_as_the_stores_own_error() {
    assert_eq!(root(&Broken, 5), Err(TreeError::Read("disk on fire")));
    assert_eq!(root(&Broken, 0), Ok(empty_root()));
}

#[test]
fn a_hundred_thousand_leaves_prove_random_inclusions_and_extensions() {
    const N: u64 = 100_000;
    let leaves = event_leaves(N as usize);
    let tree = MemoryTree::from_leaf_hashes(&leaves);
    assert_eq!(tree.size(), N);
    // Roots at a few sizes, against the naive definition and a second build
    // appended in uneven chunks.
    let mut rng = Rng(2024);
    let mut chunked = MemoryTree::new();
    let mut at = 0u64;
    while at < N {
        let chunk = rng.range(1, 5000).min(N - at);
        chunked.append(&leaves[at as usize..(at + chunk) as usize]);
        at += chunk;
    }
    for size in [N, 65_536, 65_537, 99_999, rng.range(1, N)] {
        let want = mth(&leaves[..size as usize]);
        assert_eq!(tree.root(size).unwrap(), want, "size {size}");
        assert_eq!(chunked.root(size).unwrap(), want, "chunked, size {size}");
    }
    for _ in 0..300 {
        let size = rng.range(1, N);
        let index = rng.range(0, size - 1);
        let root = tree.root(size).unwrap();
        let proof = tree.inclusion_proof(index, size).unwrap();
        verify_inclusion(&leaves[index as usize], index, size, &proof, &root).unwrap();
        assert!(
            verify_inclusion(&leaves[index as usize], index, size, &proof, &flip(&root)).is_err()
        );

        let from = rng.range(1, size);
        let old = tree.root(from).unwrap();
        let proof = tree.consistency_proof(from, size).unwrap();
        verify_consistency(from, size, &old, &root, &proof).unwrap();
        if let Some(first) = proof.first() {
            let mut bad = proof.clone();
            bad[0] = flip(first);
            assert!(verify_consistency(from, size, &old, &root, &bad).is_err());
        }
    }
}
