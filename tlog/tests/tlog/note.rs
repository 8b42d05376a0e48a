//! Signed notes against the C2SP `signed-note` examples and the vectors of
//! Go's `golang.org/x/mod/sumdb/note` tests.

use traguardo_tlog::note::{
    open, Error, KeyId, KeyName, KeyType, Note, SignerKey, VerifierKey, MAX_SIGNATURES,
};

/// From c2sp.org/signed-note, "Verifier keys / Example".
const SPEC_VKEY: &str = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
const SPEC_NOTE: &str = "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";

/// The opening example of c2sp.org/signed-note (its key is not published).
const QUASIMODO: &str = "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned \u{e8} subito sera.\n\n\u{2014} quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n";

/// From Go's sumdb/note tests.
const PETER_SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
const PETER_VKEY: &str = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
const PETER_TEXT: &str =
    "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";
const PETER_SIG: &str = "\u{2014} PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";
const ENOCH_SIG: &str = "\u{2014} EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

fn vkey(text: &str) -> VerifierKey {
    VerifierKey::parse(text).unwrap()
}

#[test]
fn the_specification_example_verifies_with_its_published_key() {
    let key = vkey(SPEC_VKEY);
    assert_eq!(key.name().as_str(), "example.com/foo");
    assert_eq!(key.id().to_string(), "530d903a");
    assert_eq!(key.kind(), KeyType::Ed25519);
    assert_eq!(key.to_string(), SPEC_VKEY);
    let (note, verified) = open(SPEC_NOTE.as_bytes(), &[key]).unwrap();
    assert_eq!(note.text(), "This is an example message.\n");
    assert_eq!(verified.len(), 1);
    assert_eq!(verified[0].id, KeyId([0x53, 0x0d, 0x90, 0x3a]));
    assert_eq!(verified[0].timestamp, None);
    assert_eq!(note.to_string(), SPEC_NOTE);
}

#[test]
fn the_quasimodo_example_parses_and_formats_byte_for_byte() {
    let note = Note::parse(QUASIMODO.as_bytes()).unwrap();
    assert_eq!(
        note.text(),
        "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned \u{e8} subito sera.\n"
    );
    assert_eq!(note.signatures().len(), 1);
    assert_eq!(
        note.signatures()[0].name.as_str(),
        "quasimodo.example/salvatore"
    );
    assert_eq!(note.signatures()[0].id.to_string(), "367ba04b");
    assert_eq!(note.signatures()[0].bytes.len(), 64);
    assert_eq!(note.to_string(), QUASIMODO);
    // Its key is not known here, so it is not trusted.
    assert_eq!(
        open(QUASIMODO.as_bytes(), &[vkey(SPEC_VKEY)]),
        Err(Error::NoVerifiedSignature)
    );
}

#[test]
fn signing_reproduces_gos_signature_byte_for_byte() {
    let signer = SignerKey::parse(PETER_SKEY).unwrap();
    assert_eq!(signer.verifier_key().to_string(), PETER_VKEY);
    assert_eq!(signer.to_private_string(), PETER_SKEY);
    let mut note = Note::new(PETER_TEXT).unwrap();
    note.sign(&signer).unwrap();
    assert_eq!(note.to_string(), format!("{PETER_TEXT}\n{PETER_SIG}"));
    // Signing again replaces the line rather than adding one.
    note.sign(&signer).unwrap();
    assert_eq!(note.signatures().len(), 1);
}

#[test]
fn unknown_keys_are_ignored_and_known_ones_verified() {
    let msg = format!("{PETER_TEXT}\n{PETER_SIG}{ENOCH_SIG}");
    let (note, verified) = open(msg.as_bytes(), &[vkey(PETER_VKEY)]).unwrap();
    assert_eq!(note.signatures().len(), 2);
    assert_eq!(verified.len(), 1);
    assert_eq!(verified[0].name.as_str(), "PeterNeumann");

    let (_, verified) = open(msg.as_bytes(), &[vkey(ENOCH_VKEY), vkey(PETER_VKEY)]).unwrap();
    let names: Vec<&str> = verified.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["PeterNeumann", "EnochRoot"]);

    // The same trusted key twice is not ambiguous; a repeated line counts once.
    let twice = format!("{PETER_TEXT}\n{PETER_SIG}{PETER_SIG}");
    let (_, verified) = open(twice.as_bytes(), &[vkey(PETER_VKEY), vkey(PETER_VKEY)]).unwrap();
    assert_eq!(verified.len(), 1);

    assert_eq!(
        open(msg.as_bytes(), &[vkey(SPEC_VKEY)]),
        Err(Error::NoVerifiedSignature)
    );
    assert_eq!(open(msg.as_bytes(), &[]), Err(Error::NoVerifiedSignature));
}

#[test]
fn a_note_signed_with_another_key_never_verifies() {
    let mallory =
        SignerKey::generate(KeyName::parse("PeterNeumann").unwrap(), KeyType::Ed25519).unwrap();
    let mut note = Note::new(PETER_TEXT).unwrap();
    note.sign(&mallory).unwrap();
    // Same name, other key: another ID, so an unknown key, so no trusted signature.
    assert_eq!(
        note.verify(&[vkey(PETER_VKEY)]),
        Err(Error::NoVerifiedSignature)
    );
    // Mallory's signature relabelled with Peter's ID: a known key that fails.
    let mut forged = note.clone();
    let mut sig = forged.signatures()[0].clone();
    sig.id = vkey(PETER_VKEY).id();
    forged = {
        let mut n = Note::new(forged.text()).unwrap();
        n.add_signature(sig);
        n
    };
    assert_eq!(
        forged.verify(&[vkey(PETER_VKEY)]),
        Err(Error::InvalidSignature {
            name: "PeterNeumann".into(),
            id: vkey(PETER_VKEY).id()
        })
    );
    // Peter's signature on another text.
    let other = format!("{PETER_TEXT}Amen.\n\n{PETER_SIG}");
    assert!(matches!(
        open(other.as_bytes(), &[vkey(PETER_VKEY)]),
        Err(Error::InvalidSignature { .. })
    ));
}

#[test]
fn a_bad_signature_by_a_trusted_key_rejects_the_whole_note() {
    let bad_peter = format!("{}ABCD{}", &PETER_SIG[..60], &PETER_SIG[60..]);
    let msg = format!("{PETER_TEXT}\n{ENOCH_SIG}{bad_peter}");
    assert!(matches!(
        open(msg.as_bytes(), &[vkey(PETER_VKEY), vkey(ENOCH_VKEY)]),
        Err(Error::InvalidSignature { .. })
    ));
    // Bad lines by keys nobody trusts are ignored.
    assert!(open(msg.as_bytes(), &[vkey(ENOCH_VKEY)]).is_ok());
}

#[test]
fn a_vkey_claiming_another_keys_name_and_id_is_refused() {
    // Two trusted keys can share name and ID only by a 32-bit collision, so
    // a vkey whose ID does not match its key is refused when parsed.
    let other = SignerKey::generate(KeyName::parse("PeterNeumann").unwrap(), KeyType::Ed25519)
        .unwrap()
        .verifier_key()
        .to_string();
    let material = other.splitn(3, '+').nth(2).unwrap();
    let forged = format!("PeterNeumann+c74f20a3+{material}");
    assert!(matches!(
        VerifierKey::parse(&forged),
        Err(Error::KeyIdMismatch { .. })
    ));
    // The same key trusted twice is not ambiguous.
    let msg = format!("{PETER_TEXT}\n{PETER_SIG}");
    assert!(open(msg.as_bytes(), &[vkey(PETER_VKEY), vkey(PETER_VKEY)]).is_ok());
}

#[test]
fn malformed_notes_are_rejected_with_typed_errors() {
    let good_sig = PETER_SIG;
    let cases: Vec<(Vec<u8>, Error)> = vec![
        (b"\xff\n\n".to_vec(), Error::NotUtf8),
        (
            format!("\u{1}{PETER_TEXT}\n{good_sig}").into_bytes(),
            Error::ControlCharacter { code: 1, offset: 0 },
        ),
        (
            format!("a\rb\n\n{good_sig}").into_bytes(),
            Error::ControlCharacter {
                code: 0x0d,
                offset: 1,
            },
        ),
        (PETER_TEXT.as_bytes().to_vec(), Error::NoSignatureBlock),
        (format!("{PETER_TEXT}\n").into_bytes(), Error::NoSignatures),
        (
            format!("{PETER_TEXT}\n{}", good_sig.trim_end()).into_bytes(),
            Error::MissingFinalNewline,
        ),
        (
            format!("{PETER_TEXT}\n{good_sig}Unexpected line.\n").into_bytes(),
            Error::MalformedSignatureLine { line: 2 },
        ),
        (
            format!("{PETER_TEXT}\n- PeterNeumann x08go/ZJkuBS9UG\n").into_bytes(),
            Error::MalformedSignatureLine { line: 1 },
        ),
        (
            format!("{PETER_TEXT}\n\u{2014} PeterNeumann\n").into_bytes(),
            Error::MalformedSignatureLine { line: 1 },
        ),
        (
            format!("{PETER_TEXT}\n\u{2014} Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n").into_bytes(),
            Error::InvalidKeyName("Bad Name".into()),
        ),
        (
            format!("{PETER_TEXT}\n\u{2014} a+b x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n").into_bytes(),
            Error::InvalidKeyName("a+b".into()),
        ),
        (
            format!("{PETER_TEXT}\n\u{2014} PeterNeumann x08go/ZJkuBS9UG*\n").into_bytes(),
            Error::SignatureBase64 { line: 1 },
        ),
        (
            format!("{PETER_TEXT}\n\u{2014} PeterNeumann x08gow==\n").into_bytes(),
            Error::SignatureTooShort { line: 1, len: 4 },
        ),
        (
            format!("{PETER_TEXT}\n{}", good_sig.repeat(MAX_SIGNATURES + 1)).into_bytes(),
            Error::TooManySignatures {
                count: MAX_SIGNATURES + 1,
                max: MAX_SIGNATURES,
            },
        ),
    ];
    for (msg, want) in cases {
        assert_eq!(
            Note::parse(&msg),
            Err(want),
            "{}",
            String::from_utf8_lossy(&msg)
        );
    }
    // 16 signatures must be accepted (the specification's floor).
    let sixteen = format!("{PETER_TEXT}\n{}", good_sig.repeat(16));
    assert!(open(sixteen.as_bytes(), &[vkey(PETER_VKEY)]).is_ok());
}

#[test]
fn note_texts_must_end_in_a_newline_and_hold_no_control_characters() {
    assert_eq!(Note::new("no newline"), Err(Error::MissingFinalNewline));
    assert_eq!(
        Note::new("tab\there\n"),
        Err(Error::ControlCharacter { code: 9, offset: 3 })
    );
    assert!(Note::new("blank lines\n\ninside are fine\n").is_ok());
}

#[test]
fn every_mangled_key_string_is_refused() {
    // As Go's TestNewVerifier and TestNewSigner: every proper substring and
    // every one-byte change fails to parse.
    for key in [PETER_VKEY, PETER_SKEY] {
        let parse = |s: &str| {
            if key.starts_with("PRIVATE") {
                SignerKey::parse(s).map(|_| ())
            } else {
                VerifierKey::parse(s).map(|_| ())
            }
        };
        assert!(parse(key).is_ok());
        let b = key.as_bytes();
        for i in 0..=b.len() {
            for j in i + 1..=b.len() {
                if (i, j) != (0, b.len()) {
                    let sub = std::str::from_utf8(&b[i..j]).unwrap();
                    assert!(parse(sub).is_err(), "{sub:?} parsed");
                }
            }
        }
        for i in 0..b.len() {
            let mut m = b.to_vec();
            m[i] = m[i].wrapping_add(1);
            if let Ok(s) = std::str::from_utf8(&m) {
                assert!(parse(s).is_err(), "{s:?} parsed");
            }
        }
    }
}

#[test]
fn key_strings_fail_with_the_error_that_names_the_fault() {
    assert_eq!(
        VerifierKey::parse("PeterNeumann+c74f20a3"),
        Err(Error::KeyParts {
            expected: 3,
            found: 2
        })
    );
    assert_eq!(
        VerifierKey::parse("PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
        Err(Error::KeyIdHex("C74F20A3".into()))
    );
    assert_eq!(
        VerifierKey::parse("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T"),
        Err(Error::KeyBase64)
    );
    // Go's lenient base64 reads this as a long key; strict base64 refuses it.
    assert_eq!(
        VerifierKey::parse(
            "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=="
        ),
        Err(Error::KeyBase64)
    );
    assert_eq!(
        VerifierKey::parse("PeterNeumann+c74f20a3+ARpc"),
        Err(Error::KeyLength {
            expected: 33,
            actual: 3
        })
    );
    assert_eq!(
        VerifierKey::parse("PeterNeumann+c74f20a3+"),
        Err(Error::KeyLength {
            expected: 33,
            actual: 0
        })
    );
    assert_eq!(
        VerifierKey::parse("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
        Err(Error::UnknownKeyType(0x65))
    );
    assert_eq!(
        VerifierKey::parse("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
        Err(Error::KeyIdMismatch {
            stated: KeyId([0xc7, 0x4f, 0x20, 0xa4]),
            computed: KeyId([0xc7, 0x4f, 0x20, 0xa3]),
        })
    );
    assert_eq!(
        VerifierKey::parse("Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"),
        Err(Error::InvalidKeyName("Peter Neumann".into()))
    );
    assert_eq!(
        SignerKey::parse(PETER_VKEY).map(|_| ()),
        Err(Error::NotPrivateKey)
    );
    assert_eq!(
        SignerKey::parse("PRIVATE+KEY+PeterNeumann+c74f20a3").map(|_| ()),
        Err(Error::KeyParts {
            expected: 5,
            found: 4
        })
    );
    assert_eq!(
        KeyName::parse(""),
        Err(Error::InvalidKeyName(String::new()))
    );
    assert_eq!(
        KeyName::parse("non\u{a0}breaking"),
        Err(Error::InvalidKeyName("non\u{a0}breaking".into()))
    );
}

#[test]
fn a_cosigner_key_of_another_implementation_parses_with_its_id() {
    // A witness vkey (type 0x04) from transparency-dev/formats' tests.
    let key = vkey("remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2");
    assert_eq!(key.kind(), KeyType::CosignatureV1);
    assert_eq!(key.id().to_string(), "da77ade7");
}

#[test]
fn a_generated_key_round_trips_through_its_text_forms_and_signs() {
    let name = KeyName::parse("comune.alessandria.it/traguardo").unwrap();
    let signer = SignerKey::generate(name.clone(), KeyType::Ed25519).unwrap();
    let again = SignerKey::parse(&signer.to_private_string()).unwrap();
    assert_eq!(again.verifier_key(), signer.verifier_key());
    let verifier = VerifierKey::parse(&signer.verifier_key().to_string()).unwrap();
    assert_eq!(
        verifier.id(),
        KeyId::compute(&name, KeyType::Ed25519, verifier.public_key().as_bytes())
    );
    let mut note = Note::new("hello\n").unwrap();
    note.sign(&again).unwrap();
    let (_, verified) = open(note.to_string().as_bytes(), &[verifier]).unwrap();
    assert_eq!(verified[0].name, name);
    // Debug never shows the secret: the key material, after
    // `PRIVATE+KEY+{name}+{id}+` (base64, which may itself hold a `+`).
    let debug = format!("{signer:?}");
    let private = signer.to_private_string();
    let material = private.splitn(5, '+').nth(4).unwrap();
    assert!(material.len() > 40, "{private}");
    assert!(!debug.contains(material));
    // Two generated keys differ.
    let other = SignerKey::generate(name, KeyType::Ed25519).unwrap();
    assert_ne!(other.verifier_key(), signer.verifier_key());
}

#[test]
fn a_cosigner_key_cannot_sign_a_plain_note() {
    let name = KeyName::parse("nucleo.example/w1").unwrap();
    let cosigner = SignerKey::from_seed(name, KeyType::CosignatureV1, &[7; 32]);
    let mut note = Note::new("hello\n").unwrap();
    assert!(matches!(
        note.sign(&cosigner),
        Err(Error::WrongKeyType {
            expected: KeyType::Ed25519,
            actual: KeyType::CosignatureV1,
            ..
        })
    ));
}
