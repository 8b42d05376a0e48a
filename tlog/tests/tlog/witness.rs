//! The witness rule: extend, never fork, never go back.

use traguardo_tlog::checkpoint::Checkpoint;
use traguardo_tlog::cosignature;
use traguardo_tlog::merkle::{empty_root, MemoryTree, ProofError};
use traguardo_tlog::note::{KeyName, KeyType, SignerKey};
use traguardo_tlog::witness::{cosign, decide, Error, Refusal, WitnessState};
use traguardo_tlog::Hash;

const ORIGIN: &str = "comune.alessandria.it/traguardo";

fn leaves(n: u8, salt: u8) -> Vec<Hash> {
    (0..n).map(|i| [i ^ salt; 32]).collect()
}

fn checkpoint(tree: &MemoryTree, size: u64) -> Checkpoint {
    Checkpoint::new(ORIGIN, size, tree.root(size).unwrap()).unwrap()
}

fn state(tree: &MemoryTree, size: u64) -> WitnessState {
    WitnessState::of(&checkpoint(tree, size))
}

#[test]
fn a_consistent_extension_is_accepted() {
    let tree = MemoryTree::from_leaf_hashes(&leaves(20, 0));
    let last = state(&tree, 7);
    let proof = tree.consistency_proof(7, 20).unwrap();
    assert_eq!(
        decide(Some(&last), &checkpoint(&tree, 20), &proof),
        Ok(state(&tree, 20))
    );
}

#[test]
fn a_fork_at_the_same_size_is_refused() {
    let tree = MemoryTree::from_leaf_hashes(&leaves(12, 0));
    let fork = MemoryTree::from_leaf_hashes(&leaves(12, 0x80));
    let last = state(&tree, 12);
    assert_eq!(
        decide(Some(&last), &checkpoint(&fork, 12), &[]),
        Err(Refusal::Fork { size: 12 })
    );
    // The same tree again is fine (a fresh cosignature).
    assert_eq!(
        decide(Some(&last), &checkpoint(&tree, 12), &[]),
        Ok(last.clone())
    );
    assert_eq!(
        decide(Some(&last), &checkpoint(&tree, 12), &[[0; 32]]),
        Err(Refusal::UnexpectedProof { len: 1 })
    );
}

#[test]
fn an_inconsistent_extension_is_refused() {
    let tree = MemoryTree::from_leaf_hashes(&leaves(20, 0));
    // A log that rewrote leaf 3 and then grew.
    let mut rewritten = leaves(20, 0);
    rewritten[3] = [0xee; 32];
    let other = MemoryTree::from_leaf_hashes(&rewritten);
    let last = state(&tree, 7);
    let proof = other.consistency_proof(7, 20).unwrap();
    assert!(matches!(
        decide(Some(&last), &checkpoint(&other, 20), &proof),
        Err(Refusal::Inconsistent {
            from: 7,
            to: 20,
            source: ProofError::OldRootMismatch
        })
    ));
    // The honest proof with a wrong new root.
    let honest = tree.consistency_proof(7, 20).unwrap();
    assert!(matches!(
        decide(Some(&last), &checkpoint(&other, 20), &honest),
        Err(Refusal::Inconsistent { .. })
    ));
    // No proof at all.
    assert!(matches!(
        decide(Some(&last), &checkpoint(&tree, 20), &[]),
        Err(Refusal::Inconsistent {
            source: ProofError::TooShort,
            ..
        })
    ));
}

#[test]
fn a_smaller_tree_or_another_log_is_refused() {
    let tree = MemoryTree::from_leaf_hashes(&leaves(20, 0));
    let last = state(&tree, 15);
    assert_eq!(
        decide(Some(&last), &checkpoint(&tree, 14), &[]),
        Err(Refusal::Smaller { last: 15, new: 14 })
    );
    let foreign = Checkpoint::new("example.com/other", 20, tree.root(20).unwrap()).unwrap();
    assert_eq!(
        decide(
            Some(&last),
            &foreign,
            &tree.consistency_proof(15, 20).unwrap()
        ),
        Err(Refusal::OtherLog {
            expected: ORIGIN.into(),
            actual: "example.com/other".into()
        })
    );
}

#[test]
fn the_first_cosignature_and_growth_from_empty_need_no_proof() {
    let tree = MemoryTree::from_leaf_hashes(&leaves(5, 0));
    assert_eq!(
        decide(None, &checkpoint(&tree, 5), &[]),
        Ok(state(&tree, 5))
    );
    let empty = WitnessState {
        origin: ORIGIN.into(),
        size: 0,
        root: empty_root(),
    };
    assert_eq!(
        decide(Some(&empty), &checkpoint(&tree, 5), &[]),
        Ok(state(&tree, 5))
    );
}

#[test]
fn the_state_is_a_small_json_file_with_a_base64_root() {
    let st = WitnessState {
        origin: ORIGIN.into(),
        size: 0,
        root: empty_root(),
    };
    let json = serde_json::to_string(&st).unwrap();
    assert_eq!(
        json,
        r#"{"origin":"comune.alessandria.it/traguardo","size":0,"root":"47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="}"#
    );
    assert_eq!(serde_json::from_str::<WitnessState>(&json).unwrap(), st);
    assert!(
        serde_json::from_str::<WitnessState>(r#"{"origin":"o","size":0,"root":"AAAA"}"#).is_err()
    );
    assert!(serde_json::from_str::<WitnessState>(r#"{"origin":"o","size":0,"root":"*"}"#).is_err());
}

#[test]
fn the_whole_step_opens_decides_and_cosigns() {
    let log = SignerKey::from_seed(KeyName::parse(ORIGIN).unwrap(), KeyType::Ed25519, &[1; 32]);
    let nucleo = SignerKey::from_seed(
        KeyName::parse("nucleo.alessandria.it/witness").unwrap(),
        KeyType::CosignatureV1,
        &[2; 32],
    );
    let mut tree = MemoryTree::from_leaf_hashes(&leaves(9, 0));
    let first = checkpoint(&tree, 9).sign(&log).unwrap().to_string();
    let done = cosign(
        None,
        first.as_bytes(),
        &log.verifier_key(),
        &[],
        &nucleo,
        100,
    )
    .unwrap();
    assert_eq!(done.state, state(&tree, 9));
    assert_eq!(
        cosignature::verify(&done.note, &nucleo.verifier_key()),
        Ok(100)
    );
    assert_eq!(done.note.signatures().last(), Some(&done.signature));

    tree.append(&leaves(4, 0x40));
    let second = checkpoint(&tree, 13).sign(&log).unwrap().to_string();
    let proof = tree.consistency_proof(9, 13).unwrap();
    let next = cosign(
        Some(&done.state),
        second.as_bytes(),
        &log.verifier_key(),
        &proof,
        &nucleo,
        200,
    )
    .unwrap();
    assert_eq!(next.state.size, 13);

    // Back to the first checkpoint: refused, not cosigned.
    assert_eq!(
        cosign(
            Some(&next.state),
            first.as_bytes(),
            &log.verifier_key(),
            &[],
            &nucleo,
            300
        ),
        Err(Error::Refused(Refusal::Smaller { last: 13, new: 9 }))
    );
    // A checkpoint the log did not sign: refused before the rule.
    let forged = second.replacen("\n13\n", "\n14\n", 1);
    assert!(matches!(
        cosign(
            Some(&done.state),
            forged.as_bytes(),
            &log.verifier_key(),
            &proof,
            &nucleo,
            300
        ),
        Err(Error::Checkpoint(_))
    ));
    // A log key cannot cosign.
    assert!(matches!(
        cosign(None, first.as_bytes(), &log.verifier_key(), &[], &log, 1),
        Err(Error::Cosign(_))
    ));
}
