//! C2SP `signed-note` (<https://c2sp.org/signed-note>): a text ending in a
//! newline, a blank line, and one or more signature lines
//! `— <key name> <base64(key ID || signature)>`.
//!
//! Keys travel as text: a verifier key (*vkey*) is
//! `<name>+<hex key ID>+<base64(type || public key)>`, a signer key is
//! `PRIVATE+KEY+<name>+<hex key ID>+<base64(type || seed)>`. Two signature
//! types are known: [`KeyType::Ed25519`] (`0x01`, the log's signature over the
//! note text) and [`KeyType::CosignatureV1`] (`0x04`, a witness's timestamped
//! signature, see [`crate::cosignature`]).

use std::fmt;
use std::str::FromStr;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::cosignature;

/// The most signature lines a note may carry; the specification asks
/// verifiers to accept at least 16.
pub const MAX_SIGNATURES: usize = 100;

/// The em dash (U+2014) and space that open a signature line.
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// The prefix of a signer key's text form.
const PRIVATE_PREFIX: &str = "PRIVATE+KEY+";

/// What went wrong with a key, a note or a signature.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// A key name that is empty, or contains a Unicode space or a `+`.
    #[error("invalid key name {0:?}: it must be non-empty, without spaces or '+'")]
    InvalidKeyName(String),
    /// A key string with the wrong number of `+`-separated parts.
    #[error("key has {found} '+'-separated parts, expected {expected}")]
    KeyParts {
        /// How many parts the form has.
        expected: usize,
        /// How many the text has.
        found: usize,
    },
    /// A signer key string that does not start with `PRIVATE+KEY+`.
    #[error("signer key does not start with PRIVATE+KEY+")]
    NotPrivateKey,
    /// A key ID that is not 8 lowercase hexadecimal digits.
    #[error("key ID {0:?} is not 8 lowercase hexadecimal digits")]
    KeyIdHex(String),
    /// Key material that is not standard, padded base64.
    #[error("key material is not valid base64")]
    KeyBase64,
    /// Key material of the wrong length (type byte included).
    #[error("key material is {actual} bytes, expected {expected}")]
    KeyLength {
        /// Bytes the key type needs, type byte included.
        expected: usize,
        /// Bytes decoded.
        actual: usize,
    },
    /// A signature type byte this crate does not know.
    #[error("unknown signature type 0x{0:02x}")]
    UnknownKeyType(u8),
    /// A key ID that is not the one the key's name, type and public key give.
    #[error("key ID {stated} does not match the key, which gives {computed}")]
    KeyIdMismatch {
        /// The ID in the key string.
        stated: KeyId,
        /// The ID computed from the key.
        computed: KeyId,
    },
    /// Public key bytes that are not a usable Ed25519 point.
    #[error("public key is not a valid Ed25519 key")]
    InvalidPublicKey,
    /// A key of one signature type used where another is needed.
    #[error("key {name} is of type {actual:?}, expected {expected:?}")]
    WrongKeyType {
        /// The key's name.
        name: String,
        /// The type needed.
        expected: KeyType,
        /// The key's type.
        actual: KeyType,
    },
    /// The operating system gave no randomness for a new key.
    #[error("no randomness for key generation: {0}")]
    Random(#[source] getrandom::Error),
    /// A note that is not UTF-8.
    #[error("note is not valid UTF-8")]
    NotUtf8,
    /// A control character other than newline in a note.
    #[error("control character U+{code:04X} at byte {offset} of the note")]
    ControlCharacter {
        /// The character's code point.
        code: u32,
        /// Its byte offset in the note.
        offset: usize,
    },
    /// A note (or note text) that does not end in a newline.
    #[error("note does not end with a newline")]
    MissingFinalNewline,
    /// No blank line separates the text from the signatures.
    #[error("note has no blank line before its signatures")]
    NoSignatureBlock,
    /// A blank line with no signature line after it.
    #[error("note has no signature lines")]
    NoSignatures,
    /// More signature lines than [`MAX_SIGNATURES`].
    #[error("note has {count} signature lines, at most {max} are accepted")]
    TooManySignatures {
        /// Lines found.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// A signature line not of the form `— <name> <base64>`.
    #[error("signature line {line} is not of the form '— <name> <base64>'")]
    MalformedSignatureLine {
        /// The line's number among the signature lines, from 1.
        line: usize,
    },
    /// A signature line whose signature is not standard, padded base64.
    #[error("signature line {line} is not valid base64")]
    SignatureBase64 {
        /// The line's number among the signature lines, from 1.
        line: usize,
    },
    /// A signature line too short to hold a key ID and a signature.
    #[error("signature line {line} holds {len} bytes, fewer than a key ID and a signature")]
    SignatureTooShort {
        /// The line's number among the signature lines, from 1.
        line: usize,
        /// Bytes decoded.
        len: usize,
    },
    /// Two different trusted keys with the same name and ID.
    #[error("two trusted keys are named {name}+{id}")]
    AmbiguousKey {
        /// The shared name.
        name: String,
        /// The shared ID.
        id: KeyId,
    },
    /// A signature by a trusted key that does not verify: the whole note is
    /// rejected, as the specification recommends.
    #[error("signature by {name}+{id} does not verify")]
    InvalidSignature {
        /// The key's name.
        name: String,
        /// The key's ID.
        id: KeyId,
    },
    /// No signature by any trusted key.
    #[error("note carries no signature by a trusted key")]
    NoVerifiedSignature,
    /// A cosignature timestamp above 2^63 - 1.
    #[error("timestamp {0} is above 2^63 - 1")]
    TimestampTooLarge(u64),
}

/// A key name: non-empty, no Unicode spaces, no `+`. Traguardo uses a
/// schema-less URL such as `comune.alessandria.it/traguardo`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyName(String);

impl KeyName {
    /// Checks a key name.
    ///
    /// # Errors
    /// [`Error::InvalidKeyName`] when empty or holding a space, a `+` or a
    /// control character.
    pub fn parse(name: &str) -> Result<Self, Error> {
        let bad = |c: char| c.is_whitespace() || c == '+' || c.is_control();
        if name.is_empty() || name.chars().any(bad) {
            return Err(Error::InvalidKeyName(name.to_owned()));
        }
        Ok(Self(name.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for KeyName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}

/// A key ID: four bytes, by convention the start of
/// SHA-256(name || "\n" || type || public key). Shown as 8 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId(pub [u8; 4]);

impl KeyId {
    /// The key ID of a named public key of a signature type.
    pub fn compute(name: &KeyName, kind: KeyType, public_key: &[u8; 32]) -> Self {
        let mut h = Sha256::new();
        h.update(name.as_str().as_bytes());
        h.update(b"\n");
        h.update([kind.byte()]);
        h.update(public_key);
        let digest = h.finalize();
        Self([digest[0], digest[1], digest[2], digest[3]])
    }

    /// Parses 8 lowercase hex digits.
    ///
    /// # Errors
    /// [`Error::KeyIdHex`] for anything else.
    pub fn parse_hex(text: &str) -> Result<Self, Error> {
        let bad = || Error::KeyIdHex(text.to_owned());
        if text.len() != 8 || !text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err(bad());
        }
        let mut id = [0u8; 4];
        hex::decode_to_slice(text, &mut id).map_err(|_| bad())?;
        Ok(Self(id))
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

/// The signature types this crate signs and verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyType {
    /// `0x01`: Ed25519 over the note text (signed-note).
    Ed25519,
    /// `0x04`: timestamped Ed25519 checkpoint cosignature (tlog-cosignature v1).
    CosignatureV1,
}

impl KeyType {
    /// The type's identifier byte.
    pub fn byte(self) -> u8 {
        match self {
            Self::Ed25519 => 0x01,
            Self::CosignatureV1 => 0x04,
        }
    }

    /// The type with this identifier byte.
    ///
    /// # Errors
    /// [`Error::UnknownKeyType`] for any other byte.
    pub fn from_byte(byte: u8) -> Result<Self, Error> {
        match byte {
            0x01 => Ok(Self::Ed25519),
            0x04 => Ok(Self::CosignatureV1),
            other => Err(Error::UnknownKeyType(other)),
        }
    }
}

/// Decodes `base64(type || 32 bytes)`.
fn decode_key_material(text: &str) -> Result<(KeyType, [u8; 32]), Error> {
    let raw = BASE64.decode(text).map_err(|_| Error::KeyBase64)?;
    let (&type_byte, material) = raw.split_first().ok_or(Error::KeyLength {
        expected: 33,
        actual: 0,
    })?;
    let kind = KeyType::from_byte(type_byte)?;
    let bytes: [u8; 32] = material.try_into().map_err(|_| Error::KeyLength {
        expected: 33,
        actual: raw.len(),
    })?;
    Ok((kind, bytes))
}

/// Encodes `base64(type || 32 bytes)`.
fn encode_key_material(kind: KeyType, bytes: &[u8; 32]) -> String {
    let mut raw = Vec::with_capacity(33);
    raw.push(kind.byte());
    raw.extend_from_slice(bytes);
    BASE64.encode(raw)
}

/// A public key that verifies note signatures: a name, an ID, a type and an
/// Ed25519 public key. Its text form is the *vkey* of the specification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: KeyName,
    id: KeyId,
    kind: KeyType,
    key: VerifyingKey,
}

impl VerifierKey {
    /// A verifier key with the conventional key ID.
    pub fn new(name: KeyName, kind: KeyType, key: VerifyingKey) -> Self {
        let id = KeyId::compute(&name, kind, key.as_bytes());
        Self {
            name,
            id,
            kind,
            key,
        }
    }

    /// Parses `<name>+<hex key ID>+<base64(type || public key)>`.
    ///
    /// # Errors
    /// [`Error::KeyParts`], [`Error::InvalidKeyName`], [`Error::KeyIdHex`],
    /// [`Error::KeyBase64`], [`Error::UnknownKeyType`], [`Error::KeyLength`],
    /// [`Error::InvalidPublicKey`] or [`Error::KeyIdMismatch`].
    pub fn parse(text: &str) -> Result<Self, Error> {
        // The name has no '+', the ID neither; base64 may.
        let parts: Vec<&str> = text.splitn(3, '+').collect();
        let [name, id, material] = parts[..] else {
            return Err(Error::KeyParts {
                expected: 3,
                found: parts.len(),
            });
        };
        let name = KeyName::parse(name)?;
        let stated = KeyId::parse_hex(id)?;
        let (kind, bytes) = decode_key_material(material)?;
        let key = VerifyingKey::from_bytes(&bytes).map_err(|_| Error::InvalidPublicKey)?;
        if key.is_weak() {
            return Err(Error::InvalidPublicKey);
        }
        let verifier = Self::new(name, kind, key);
        if verifier.id != stated {
            return Err(Error::KeyIdMismatch {
                stated,
                computed: verifier.id,
            });
        }
        Ok(verifier)
    }

    /// The key's name.
    pub fn name(&self) -> &KeyName {
        &self.name
    }

    /// The key's ID.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The key's signature type.
    pub fn kind(&self) -> KeyType {
        self.kind
    }

    /// The Ed25519 public key.
    pub fn public_key(&self) -> &VerifyingKey {
        &self.key
    }

    /// Whether this key verifies `sig` (the bytes after the key ID) over the
    /// note text; for a cosignature, the timestamp it signed.
    fn check(&self, text: &str, sig: &[u8]) -> Option<Option<u64>> {
        match self.kind {
            KeyType::Ed25519 => {
                let sig = ed25519_dalek::Signature::from_slice(sig).ok()?;
                self.key.verify_strict(text.as_bytes(), &sig).ok()?;
                Some(None)
            }
            KeyType::CosignatureV1 => {
                let (timestamp, sig) = cosignature::split_timestamped(sig)?;
                let message = cosignature::signed_message(timestamp, text);
                let sig = ed25519_dalek::Signature::from_bytes(&sig);
                self.key.verify_strict(&message, &sig).ok()?;
                Some(Some(timestamp))
            }
        }
    }
}

impl fmt::Display for VerifierKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}+{}+{}",
            self.name,
            self.id,
            encode_key_material(self.kind, self.key.as_bytes())
        )
    }
}

impl FromStr for VerifierKey {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}

/// A secret key that signs notes. Its text form
/// `PRIVATE+KEY+<name>+<hex key ID>+<base64(type || seed)>` is only produced by
/// [`SignerKey::to_private_string`]; `Debug` does not show the seed.
#[derive(Clone)]
pub struct SignerKey {
    name: KeyName,
    id: KeyId,
    kind: KeyType,
    key: SigningKey,
}

impl SignerKey {
    /// A new random key from the operating system's generator.
    ///
    /// # Errors
    /// [`Error::Random`] when the system has no randomness to give.
    pub fn generate(name: KeyName, kind: KeyType) -> Result<Self, Error> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).map_err(Error::Random)?;
        let key = Self::from_seed(name, kind, &seed);
        seed.fill(0);
        Ok(key)
    }

    /// The key of a 32-byte Ed25519 seed (RFC 8032 private key).
    pub fn from_seed(name: KeyName, kind: KeyType, seed: &[u8; 32]) -> Self {
        let key = SigningKey::from_bytes(seed);
        let id = KeyId::compute(&name, kind, key.verifying_key().as_bytes());
        Self {
            name,
            id,
            kind,
            key,
        }
    }

    /// Parses `PRIVATE+KEY+<name>+<hex key ID>+<base64(type || seed)>`.
    ///
    /// # Errors
    /// [`Error::NotPrivateKey`], [`Error::KeyParts`], and the key errors of
    /// [`VerifierKey::parse`].
    pub fn parse(text: &str) -> Result<Self, Error> {
        let rest = text
            .strip_prefix(PRIVATE_PREFIX)
            .ok_or(Error::NotPrivateKey)?;
        let parts: Vec<&str> = rest.splitn(3, '+').collect();
        let [name, id, material] = parts[..] else {
            return Err(Error::KeyParts {
                expected: 5,
                found: parts.len() + 2,
            });
        };
        let name = KeyName::parse(name)?;
        let stated = KeyId::parse_hex(id)?;
        let (kind, seed) = decode_key_material(material)?;
        let signer = Self::from_seed(name, kind, &seed);
        if signer.id != stated {
            return Err(Error::KeyIdMismatch {
                stated,
                computed: signer.id,
            });
        }
        Ok(signer)
    }

    /// The secret key's text form, for a key file. Keep it secret.
    pub fn to_private_string(&self) -> String {
        format!(
            "{PRIVATE_PREFIX}{}+{}+{}",
            self.name,
            self.id,
            encode_key_material(self.kind, self.key.as_bytes())
        )
    }

    /// The matching verifier key.
    pub fn verifier_key(&self) -> VerifierKey {
        VerifierKey {
            name: self.name.clone(),
            id: self.id,
            kind: self.kind,
            key: self.key.verifying_key(),
        }
    }

    /// The key's name.
    pub fn name(&self) -> &KeyName {
        &self.name
    }

    /// The key's ID.
    pub fn id(&self) -> KeyId {
        self.id
    }

    /// The key's signature type.
    pub fn kind(&self) -> KeyType {
        self.kind
    }

    /// Fails unless the key is of type `expected`.
    pub(crate) fn require(&self, expected: KeyType) -> Result<(), Error> {
        if self.kind != expected {
            return Err(Error::WrongKeyType {
                name: self.name.to_string(),
                expected,
                actual: self.kind,
            });
        }
        Ok(())
    }

    /// The raw Ed25519 signature of `message`.
    pub(crate) fn sign_raw(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }
}

impl fmt::Debug for SignerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignerKey")
            .field("name", &self.name)
            .field("id", &self.id)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// One signature line: the key's name and ID and the signature bytes that
/// follow the ID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// The signing key's name.
    pub name: KeyName,
    /// The signing key's ID.
    pub id: KeyId,
    /// The signature proper (for a cosignature, timestamp and signature).
    pub bytes: Vec<u8>,
}

impl Signature {
    /// Parses a signature line without its newline; `line` numbers errors.
    fn parse_line(text: &str, line: usize) -> Result<Self, Error> {
        let malformed = || Error::MalformedSignatureLine { line };
        let rest = text.strip_prefix(SIGNATURE_PREFIX).ok_or_else(malformed)?;
        // Base64 has no spaces, so the last space ends the name.
        let (name, encoded) = rest.rsplit_once(' ').ok_or_else(malformed)?;
        let name = KeyName::parse(name)?;
        let raw = BASE64
            .decode(encoded)
            .map_err(|_| Error::SignatureBase64 { line })?;
        if raw.len() < 5 {
            return Err(Error::SignatureTooShort {
                line,
                len: raw.len(),
            });
        }
        let (id, bytes) = raw.split_at(4);
        Ok(Self {
            name,
            id: KeyId([id[0], id[1], id[2], id[3]]),
            bytes: bytes.to_vec(),
        })
    }
}

impl fmt::Display for Signature {
    /// The line without its newline: `— <name> <base64(ID || bytes)>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut raw = Vec::with_capacity(4 + self.bytes.len());
        raw.extend_from_slice(&self.id.0);
        raw.extend_from_slice(&self.bytes);
        write!(f, "{SIGNATURE_PREFIX}{} {}", self.name, BASE64.encode(raw))
    }
}

/// A signature that verified against a trusted key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The key's name.
    pub name: KeyName,
    /// The key's ID.
    pub id: KeyId,
    /// The key's type.
    pub kind: KeyType,
    /// For a cosignature, the time it states (seconds since the Epoch).
    pub timestamp: Option<u64>,
}

/// A note: its text (with the final newline) and its signature lines, in
/// order. Parsing checks the form only; [`Note::verify`] checks signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    text: String,
    signatures: Vec<Signature>,
}

/// Fails on an ASCII control character (below U+0020) other than newline.
fn check_controls(text: &str) -> Result<(), Error> {
    match text.char_indices().find(|&(_, c)| c < ' ' && c != '\n') {
        Some((offset, c)) => Err(Error::ControlCharacter {
            code: c as u32,
            offset,
        }),
        None => Ok(()),
    }
}

impl Note {
    /// An unsigned note of `text`, which must end in a newline and hold no
    /// control character but newline.
    ///
    /// # Errors
    /// [`Error::MissingFinalNewline`] or [`Error::ControlCharacter`].
    pub fn new(text: impl Into<String>) -> Result<Self, Error> {
        let text = text.into();
        check_controls(&text)?;
        if !text.ends_with('\n') {
            return Err(Error::MissingFinalNewline);
        }
        Ok(Self {
            text,
            signatures: Vec::new(),
        })
    }

    /// Parses a signed note, checking its form but no signature.
    ///
    /// # Errors
    /// [`Error::NotUtf8`], [`Error::ControlCharacter`],
    /// [`Error::MissingFinalNewline`], [`Error::NoSignatureBlock`],
    /// [`Error::NoSignatures`], [`Error::TooManySignatures`], or an error of
    /// one signature line.
    pub fn parse(msg: &[u8]) -> Result<Self, Error> {
        let msg = std::str::from_utf8(msg).map_err(|_| Error::NotUtf8)?;
        check_controls(msg)?;
        if !msg.ends_with('\n') {
            return Err(Error::MissingFinalNewline);
        }
        let split = msg.rfind("\n\n").ok_or(Error::NoSignatureBlock)?;
        let (text, block) = (&msg[..=split], &msg[split + 2..]);
        if block.is_empty() {
            return Err(Error::NoSignatures);
        }
        let count = block.matches('\n').count();
        if count > MAX_SIGNATURES {
            return Err(Error::TooManySignatures {
                count,
                max: MAX_SIGNATURES,
            });
        }
        let signatures = block
            .split_terminator('\n')
            .enumerate()
            .map(|(i, line)| Signature::parse_line(line, i + 1))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            text: text.to_owned(),
            signatures,
        })
    }

    /// The note text, final newline included.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The signature lines, in order.
    pub fn signatures(&self) -> &[Signature] {
        &self.signatures
    }

    /// Adds a signature line, replacing one by the same key (name and ID).
    pub fn add_signature(&mut self, signature: Signature) {
        match self
            .signatures
            .iter_mut()
            .find(|s| s.name == signature.name && s.id == signature.id)
        {
            Some(existing) => *existing = signature,
            None => self.signatures.push(signature),
        }
    }

    /// Signs the note text with an Ed25519 (`0x01`) key.
    ///
    /// # Errors
    /// [`Error::WrongKeyType`] for a cosigner key: cosign with
    /// [`crate::cosignature::cosign`].
    pub fn sign(&mut self, signer: &SignerKey) -> Result<(), Error> {
        signer.require(KeyType::Ed25519)?;
        let bytes = signer.sign_raw(self.text.as_bytes()).to_vec();
        self.add_signature(Signature {
            name: signer.name.clone(),
            id: signer.id,
            bytes,
        });
        Ok(())
    }

    /// Verifies the note against trusted keys. Signatures by unknown keys
    /// (name or ID not both matching a trusted key) are ignored; every
    /// signature by a trusted key must verify; at least one must be there.
    /// Returns the verified signatures, one per key.
    ///
    /// # Errors
    /// [`Error::AmbiguousKey`], [`Error::InvalidSignature`] or
    /// [`Error::NoVerifiedSignature`].
    pub fn verify(&self, trusted: &[VerifierKey]) -> Result<Vec<Verified>, Error> {
        let mut verified: Vec<Verified> = Vec::new();
        for sig in &self.signatures {
            let mut matching = trusted
                .iter()
                .filter(|k| k.name == sig.name && k.id == sig.id);
            let Some(key) = matching.next() else {
                continue;
            };
            if matching.any(|other| other != key) {
                return Err(Error::AmbiguousKey {
                    name: sig.name.to_string(),
                    id: sig.id,
                });
            }
            let timestamp = key
                .check(&self.text, &sig.bytes)
                .ok_or(Error::InvalidSignature {
                    name: sig.name.to_string(),
                    id: sig.id,
                })?;
            if !verified
                .iter()
                .any(|v| v.name == sig.name && v.id == sig.id)
            {
                verified.push(Verified {
                    name: sig.name.clone(),
                    id: sig.id,
                    kind: key.kind,
                    timestamp,
                });
            }
        }
        if verified.is_empty() {
            return Err(Error::NoVerifiedSignature);
        }
        Ok(verified)
    }
}

impl fmt::Display for Note {
    /// The note as sent: text, blank line, signature lines.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)?;
        f.write_str("\n")?;
        for sig in &self.signatures {
            writeln!(f, "{sig}")?;
        }
        Ok(())
    }
}

/// Parses a signed note and verifies it against trusted keys: what a client
/// does with a note it receives.
///
/// # Errors
/// The errors of [`Note::parse`] and [`Note::verify`].
pub fn open(msg: &[u8], trusted: &[VerifierKey]) -> Result<(Note, Vec<Verified>), Error> {
    let note = Note::parse(msg)?;
    let verified = note.verify(trusted)?;
    Ok((note, verified))
}
