//! Checkpoints against the C2SP `tlog-checkpoint` example, strictly parsed.

use traguardo_tlog::checkpoint::{open, Checkpoint, Error};
use traguardo_tlog::merkle::{empty_root, MemoryTree};
use traguardo_tlog::note::{self, KeyName, KeyType, Note, SignerKey};

use crate::b64_hash;

/// From c2sp.org/tlog-checkpoint.
const SPEC_BODY: &str =
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";
const SPEC_SIG: &str = "\u{2014} example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n";

fn log_key() -> SignerKey {
    let name = KeyName::parse("comune.alessandria.it/traguardo").unwrap();
    SignerKey::from_seed(name, KeyType::Ed25519, &[42; 32])
}

#[test]
fn the_specification_example_parses_and_formats_byte_for_byte() {
    let cp = Checkpoint::parse(SPEC_BODY).unwrap();
    assert_eq!(cp.origin(), "example.com/behind-the-sofa");
    assert_eq!(cp.size(), 20_852_163);
    assert_eq!(
        cp.root(),
        &b64_hash("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    );
    assert!(cp.extensions().is_empty());
    assert_eq!(cp.to_string(), SPEC_BODY);

    let signed = format!("{SPEC_BODY}\n{SPEC_SIG}");
    let note = Note::parse(signed.as_bytes()).unwrap();
    assert_eq!(note.text(), SPEC_BODY);
    assert_eq!(note.signatures()[0].id.to_string(), "033de0ae");
    assert_eq!(note.to_string(), signed);
}

#[test]
fn extension_lines_are_kept_in_order() {
    let text = format!("{SPEC_BODY}ext one\next two\n");
    let cp = Checkpoint::parse(&text).unwrap();
    assert_eq!(cp.extensions(), ["ext one", "ext two"]);
    assert_eq!(cp.to_string(), text);
    let built = Checkpoint::parse(SPEC_BODY)
        .unwrap()
        .with_extension("ext one")
        .unwrap()
        .with_extension("ext two")
        .unwrap();
    assert_eq!(built, cp);
}

#[test]
fn the_empty_tree_has_size_zero_and_the_empty_root() {
    let cp = Checkpoint::new("log.example/x", 0, empty_root()).unwrap();
    assert_eq!(
        cp.to_string(),
        "log.example/x\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"
    );
    assert_eq!(Checkpoint::parse(&cp.to_string()).unwrap(), cp);
}

#[test]
fn malformed_checkpoints_are_rejected_with_typed_errors() {
    let root = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=";
    let cases: Vec<(String, Error)> = vec![
        (SPEC_BODY.trim_end().to_owned(), Error::MissingFinalNewline),
        ("o\n1\n".to_owned(), Error::TooFewLines { found: 2 }),
        (format!("\n1\n{root}\n"), Error::EmptyOrigin),
        (format!("o\n01\n{root}\n"), Error::InvalidSize("01".into())),
        (format!("o\n00\n{root}\n"), Error::InvalidSize("00".into())),
        (format!("o\n+1\n{root}\n"), Error::InvalidSize("+1".into())),
        (format!("o\n-1\n{root}\n"), Error::InvalidSize("-1".into())),
        (format!("o\n 1\n{root}\n"), Error::InvalidSize(" 1".into())),
        (format!("o\n\n{root}\n"), Error::InvalidSize(String::new())),
        (
            format!("o\n1e3\n{root}\n"),
            Error::InvalidSize("1e3".into()),
        ),
        (
            format!("o\n18446744073709551616\n{root}\n"),
            Error::InvalidSize("18446744073709551616".into()),
        ),
        (
            "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n".to_owned(),
            Error::RootBase64("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=".into()),
        ),
        (
            "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I\n".to_owned(),
            Error::RootBase64("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I".into()),
        ),
        ("o\n1\nAAAA\n".to_owned(), Error::RootLength(3)),
        (
            format!("o\n1\n{root}\n\n"),
            Error::EmptyExtension { line: 4 },
        ),
        (
            format!("o\n1\n{root}\nx\n\ny\n"),
            Error::EmptyExtension { line: 5 },
        ),
        (
            format!("o\r\n1\n{root}\n"),
            Error::ControlCharacter {
                code: 0x0d,
                offset: 1,
            },
        ),
    ];
    for (text, want) in cases {
        assert_eq!(Checkpoint::parse(&text), Err(want), "{text:?}");
    }
    assert_eq!(
        Checkpoint::new("", 1, empty_root()),
        Err(Error::EmptyOrigin)
    );
    assert!(matches!(
        Checkpoint::new("a\nb", 1, empty_root()),
        Err(Error::ControlCharacter { code: 0x0a, .. })
    ));
    assert_eq!(
        Checkpoint::new("o", 1, empty_root())
            .unwrap()
            .with_extension(""),
        Err(Error::EmptyExtension { line: 4 })
    );
}

#[test]
fn a_checkpoint_signed_by_the_log_opens_with_its_key() {
    let tree = MemoryTree::from_leaf_hashes(&[[1; 32], [2; 32], [3; 32]]);
    let log = log_key();
    let cp = Checkpoint::new(log.name().as_str(), 3, tree.root(3).unwrap()).unwrap();
    let note = cp.sign(&log).unwrap();
    let msg = note.to_string();
    let opened = open(msg.as_bytes(), &log.verifier_key()).unwrap();
    assert_eq!(opened.checkpoint, cp);
    assert_eq!(opened.note, note);
}

#[test]
fn a_checkpoint_is_refused_under_another_key_or_origin() {
    let log = log_key();
    let cp = Checkpoint::new(log.name().as_str(), 3, [9; 32]).unwrap();
    let msg = cp.sign(&log).unwrap().to_string();

    let impostor = SignerKey::from_seed(log.name().clone(), KeyType::Ed25519, &[43; 32]);
    assert_eq!(
        open(msg.as_bytes(), &impostor.verifier_key()),
        Err(Error::Note(note::Error::NoVerifiedSignature))
    );
    // A tampered size breaks the signature.
    let tampered = msg.replacen("\n3\n", "\n4\n", 1);
    assert!(matches!(
        open(tampered.as_bytes(), &log.verifier_key()),
        Err(Error::Note(note::Error::InvalidSignature { .. }))
    ));
    // The log signs only its own origin.
    let foreign = Checkpoint::new("example.com/other", 3, [9; 32]).unwrap();
    assert_eq!(
        foreign.sign(&log),
        Err(Error::OriginMismatch {
            origin: "example.com/other".into(),
            key: log.name().to_string()
        })
    );
    // And a note signed by the key over another origin does not open.
    let mut note = Note::new(foreign.to_string()).unwrap();
    note.sign(&log).unwrap();
    assert!(matches!(
        open(note.to_string().as_bytes(), &log.verifier_key()),
        Err(Error::OriginMismatch { .. })
    ));
    // A signed note that is not a checkpoint.
    let mut note = Note::new("hello\n").unwrap();
    note.sign(&log).unwrap();
    assert_eq!(
        open(note.to_string().as_bytes(), &log.verifier_key()),
        Err(Error::TooFewLines { found: 1 })
    );
}
