//! Cosignatures against the C2SP `tlog-cosignature` example and a vector
//! made with an independent Ed25519 (Python `cryptography`) from the spec's
//! signed-message example.

use traguardo_tlog::checkpoint::{self, Checkpoint};
use traguardo_tlog::cosignature::{cosign, signed_message, verify, MAX_TIMESTAMP};
use traguardo_tlog::note::{Error, KeyName, KeyType, Note, SignerKey, VerifierKey};

/// From c2sp.org/tlog-cosignature.
const SPEC_BODY: &str =
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
const SPEC_LOG_SIG: &str = "\u{2014} example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n";
const SPEC_COSIG: &str = "\u{2014} witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n";
const SPEC_MESSAGE: &str = "cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

/// Seed 00 01 .. 1f, type 0x04, signed by Python `cryptography` over SPEC_MESSAGE.
const PY_SKEY: &str =
    "PRIVATE+KEY+witness.example.com/w1+a0059f11+BAABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f";
const PY_VKEY: &str =
    "witness.example.com/w1+a0059f11+BAOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4";
const PY_COSIG: &str = "\u{2014} witness.example.com/w1 oAWfEQAAAABkGFDLBuRDazBLVac2NE+Y+IjbjQOcXLfF9CSDZVUIoS83rE1nFZsVE8YiWV6Ngr7lV8H6bdoBQGP/l73euDMQ9k+bBQ==\n";

const SPEC_TIME: u64 = 1_679_315_147;

#[test]
fn the_signed_message_is_the_one_in_the_specification() {
    assert_eq!(
        signed_message(SPEC_TIME, SPEC_BODY),
        SPEC_MESSAGE.as_bytes()
    );
}

#[test]
fn the_specification_example_line_carries_its_timestamp() {
    let msg = format!("{SPEC_BODY}\n{SPEC_LOG_SIG}{SPEC_COSIG}");
    let note = Note::parse(msg.as_bytes()).unwrap();
    let cosig = &note.signatures()[1];
    assert_eq!(cosig.name.as_str(), "witness.example.com/w1");
    assert_eq!(cosig.id.to_string(), "8d66cf3f");
    assert_eq!(cosig.bytes.len(), 72);
    assert_eq!(
        u64::from_be_bytes(cosig.bytes[..8].try_into().unwrap()),
        SPEC_TIME
    );
    assert_eq!(note.to_string(), msg);
}

#[test]
fn cosigning_reproduces_an_independent_implementations_line() {
    let cosigner = SignerKey::parse(PY_SKEY).unwrap();
    assert_eq!(cosigner.kind(), KeyType::CosignatureV1);
    assert_eq!(cosigner.verifier_key().to_string(), PY_VKEY);
    let cp = Checkpoint::parse(SPEC_BODY).unwrap();
    let sig = cosign(&cp, &cosigner, SPEC_TIME).unwrap();
    assert_eq!(format!("{sig}\n"), PY_COSIG);

    let msg = format!("{SPEC_BODY}\n{SPEC_LOG_SIG}{PY_COSIG}");
    let note = Note::parse(msg.as_bytes()).unwrap();
    let vkey = VerifierKey::parse(PY_VKEY).unwrap();
    assert_eq!(verify(&note, &vkey), Ok(SPEC_TIME));
}

#[test]
fn a_cosignature_does_not_verify_over_another_checkpoint_or_time() {
    let vkey = VerifierKey::parse(PY_VKEY).unwrap();
    let other = SPEC_BODY.replace("20852163", "20852164");
    let msg = format!("{other}\n{PY_COSIG}");
    assert!(matches!(
        verify(&Note::parse(msg.as_bytes()).unwrap(), &vkey),
        Err(Error::InvalidSignature { .. })
    ));
    // The same signature bytes under another timestamp.
    let cosigner = SignerKey::parse(PY_SKEY).unwrap();
    let cp = Checkpoint::parse(SPEC_BODY).unwrap();
    let mut sig = cosign(&cp, &cosigner, SPEC_TIME).unwrap();
    sig.bytes[7] ^= 1;
    let mut note = Note::new(SPEC_BODY).unwrap();
    note.add_signature(sig);
    assert!(matches!(
        verify(&note, &vkey),
        Err(Error::InvalidSignature { .. })
    ));
    // No line by this cosigner at all.
    let msg = format!("{SPEC_BODY}\n{SPEC_LOG_SIG}");
    assert_eq!(
        verify(&Note::parse(msg.as_bytes()).unwrap(), &vkey),
        Err(Error::NoVerifiedSignature)
    );
}

#[test]
fn cosigner_and_log_keys_are_not_interchangeable() {
    let name = KeyName::parse("nucleo.example/witness").unwrap();
    let seed = [5u8; 32];
    let as_log = SignerKey::from_seed(name.clone(), KeyType::Ed25519, &seed);
    let as_cosigner = SignerKey::from_seed(name.clone(), KeyType::CosignatureV1, &seed);
    // One seed, two types: two key IDs.
    assert_ne!(as_log.id(), as_cosigner.id());
    let cp = Checkpoint::parse(SPEC_BODY).unwrap();
    assert!(matches!(
        cosign(&cp, &as_log, 1),
        Err(Error::WrongKeyType {
            expected: KeyType::CosignatureV1,
            ..
        })
    ));
    assert!(matches!(
        verify(&Note::new(SPEC_BODY).unwrap(), &as_log.verifier_key()),
        Err(Error::WrongKeyType { .. })
    ));
    // A plain signature by the same seed is not a cosignature.
    let mut note = Note::new(SPEC_BODY).unwrap();
    note.sign(&as_log).unwrap();
    assert_eq!(
        verify(&note, &as_cosigner.verifier_key()),
        Err(Error::NoVerifiedSignature)
    );
}

#[test]
fn timestamps_above_two_to_the_63_are_refused() {
    let cosigner = SignerKey::parse(PY_SKEY).unwrap();
    let cp = Checkpoint::parse(SPEC_BODY).unwrap();
    assert!(cosign(&cp, &cosigner, MAX_TIMESTAMP).is_ok());
    assert_eq!(
        cosign(&cp, &cosigner, MAX_TIMESTAMP + 1),
        Err(Error::TimestampTooLarge(MAX_TIMESTAMP + 1))
    );
}

#[test]
fn a_cosigned_checkpoint_still_opens_with_the_logs_key() {
    let log = SignerKey::from_seed(
        KeyName::parse("comune.alessandria.it/traguardo").unwrap(),
        KeyType::Ed25519,
        &[1; 32],
    );
    let cosigner = SignerKey::parse(PY_SKEY).unwrap();
    let cp = Checkpoint::new(log.name().as_str(), 10, [3; 32]).unwrap();
    let mut note = cp.sign(&log).unwrap();
    note.add_signature(cosign(&cp, &cosigner, 1_700_000_000).unwrap());
    let msg = note.to_string();
    let opened = checkpoint::open(msg.as_bytes(), &log.verifier_key()).unwrap();
    assert_eq!(opened.checkpoint, cp);
    assert_eq!(
        verify(&opened.note, &cosigner.verifier_key()),
        Ok(1_700_000_000)
    );
}
