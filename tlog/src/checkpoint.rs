//! C2SP `tlog-checkpoint` (<https://c2sp.org/tlog-checkpoint>): the note text
//! that names a tree head. Three lines, each ending in a newline: the origin
//! (which log), the tree size in decimal, the root hash in base64; then
//! optional, non-empty extension lines.
//!
//! Traguardo's origin is the name of the log's key (DESIGN.md §9), e.g.
//! `comune.alessandria.it/traguardo`, so [`Checkpoint::sign`] and [`open`]
//! insist that they match.

use std::fmt;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;

use crate::merkle::Hash;
use crate::note::{self, KeyType, Note, SignerKey, VerifierKey};

/// What is wrong with a checkpoint text or its signature.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    /// A checkpoint text that does not end with a newline.
    #[error("checkpoint does not end with a newline")]
    MissingFinalNewline,
    /// A control character (other than the line ends) in a checkpoint.
    #[error("control character U+{code:04X} at byte {offset} of the checkpoint")]
    ControlCharacter {
        /// The character's code point.
        code: u32,
        /// Its byte offset.
        offset: usize,
    },
    /// Fewer than the three lines every checkpoint has.
    #[error("checkpoint has {found} lines, at least 3 are needed")]
    TooFewLines {
        /// Lines found.
        found: usize,
    },
    /// An empty origin line.
    #[error("checkpoint origin is empty")]
    EmptyOrigin,
    /// A size line that is not a decimal `u64` without leading zeros.
    #[error("tree size {0:?} is not a decimal number without leading zeros")]
    InvalidSize(String),
    /// A root line that is not standard, padded base64.
    #[error("root hash {0:?} is not valid base64")]
    RootBase64(String),
    /// A root of other than 32 bytes.
    #[error("root hash is {0} bytes, expected 32")]
    RootLength(usize),
    /// An empty extension line (the blank line of a note belongs to the note).
    #[error("extension line {line} is empty")]
    EmptyExtension {
        /// Its line number in the checkpoint, from 1.
        line: usize,
    },
    /// A checkpoint whose origin is not the name of the log's key.
    #[error("checkpoint origin {origin:?} is not the log key's name {key:?}")]
    OriginMismatch {
        /// The checkpoint's origin.
        origin: String,
        /// The key's name.
        key: String,
    },
    /// The note around the checkpoint is malformed or not signed by the log.
    #[error(transparent)]
    Note(#[from] note::Error),
}

/// A tree head as the log states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    origin: String,
    size: u64,
    root: Hash,
    extensions: Vec<String>,
}

/// Fails on any character below U+0020 other than newline.
fn check_controls(text: &str) -> Result<(), Error> {
    match text.char_indices().find(|&(_, c)| c < ' ' && c != '\n') {
        Some((offset, c)) => Err(Error::ControlCharacter {
            code: c as u32,
            offset,
        }),
        None => Ok(()),
    }
}

/// Checks that a would-be line is non-empty and holds no control character.
fn check_line(line: &str, empty: Error) -> Result<(), Error> {
    if line.is_empty() {
        return Err(empty);
    }
    check_controls(line)?;
    if let Some(offset) = line.find('\n') {
        return Err(Error::ControlCharacter { code: 0x0a, offset });
    }
    Ok(())
}

impl Checkpoint {
    /// A checkpoint without extension lines.
    ///
    /// # Errors
    /// [`Error::EmptyOrigin`] or [`Error::ControlCharacter`] for an origin
    /// that cannot be a line.
    pub fn new(origin: &str, size: u64, root: Hash) -> Result<Self, Error> {
        check_line(origin, Error::EmptyOrigin)?;
        Ok(Self {
            origin: origin.to_owned(),
            size,
            root,
            extensions: Vec::new(),
        })
    }

    /// Adds an extension line (not recommended by the specification: log
    /// monitors cannot audit them).
    ///
    /// # Errors
    /// [`Error::EmptyExtension`] or [`Error::ControlCharacter`].
    pub fn with_extension(mut self, line: &str) -> Result<Self, Error> {
        check_line(
            line,
            Error::EmptyExtension {
                line: 4 + self.extensions.len(),
            },
        )?;
        self.extensions.push(line.to_owned());
        Ok(self)
    }

    /// Parses a checkpoint text (a note's text, final newline included),
    /// strictly: no leading zeros, canonical base64, no empty line.
    ///
    /// # Errors
    /// Every variant of [`Error`] but [`Error::OriginMismatch`] and
    /// [`Error::Note`].
    pub fn parse(text: &str) -> Result<Self, Error> {
        check_controls(text)?;
        let body = text.strip_suffix('\n').ok_or(Error::MissingFinalNewline)?;
        let lines: Vec<&str> = body.split('\n').collect();
        let [origin, size, root, extensions @ ..] = &lines[..] else {
            return Err(Error::TooFewLines { found: lines.len() });
        };
        if origin.is_empty() {
            return Err(Error::EmptyOrigin);
        }
        let size = parse_size(size)?;
        let root = parse_root(root)?;
        for (i, line) in extensions.iter().enumerate() {
            if line.is_empty() {
                return Err(Error::EmptyExtension { line: 4 + i });
            }
        }
        Ok(Self {
            origin: (*origin).to_owned(),
            size,
            root,
            extensions: extensions.iter().map(|l| (*l).to_owned()).collect(),
        })
    }

    /// The origin: which log this is.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The root hash of the tree of that many leaves.
    pub fn root(&self) -> &Hash {
        &self.root
    }

    /// The extension lines, without newlines.
    pub fn extensions(&self) -> &[String] {
        &self.extensions
    }

    /// Signs the checkpoint as the log, whose key name must be the origin.
    ///
    /// # Errors
    /// [`Error::OriginMismatch`], or [`Error::Note`] for a key that is not an
    /// Ed25519 note key.
    pub fn sign(&self, log: &SignerKey) -> Result<Note, Error> {
        check_origin(&self.origin, log.name().as_str())?;
        log.require(KeyType::Ed25519)?;
        let mut note = Note::new(self.to_string())?;
        note.sign(log)?;
        Ok(note)
    }
}

impl fmt::Display for Checkpoint {
    /// The checkpoint text, every line ending in a newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}", self.origin)?;
        writeln!(f, "{}", self.size)?;
        writeln!(f, "{}", BASE64.encode(self.root))?;
        for line in &self.extensions {
            writeln!(f, "{line}")?;
        }
        Ok(())
    }
}

/// Parses a tree size: ASCII digits, no sign, no leading zero but `0` itself.
fn parse_size(line: &str) -> Result<u64, Error> {
    let invalid = || Error::InvalidSize(line.to_owned());
    if line.is_empty() || !line.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    if line.len() > 1 && line.starts_with('0') {
        return Err(invalid());
    }
    line.parse().map_err(|_| invalid())
}

/// Parses a root hash: canonical standard base64 of 32 bytes.
fn parse_root(line: &str) -> Result<Hash, Error> {
    let raw = BASE64
        .decode(line)
        .map_err(|_| Error::RootBase64(line.to_owned()))?;
    raw.as_slice()
        .try_into()
        .map_err(|_| Error::RootLength(raw.len()))
}

/// Fails unless the origin is the key's name.
fn check_origin(origin: &str, key: &str) -> Result<(), Error> {
    if origin != key {
        return Err(Error::OriginMismatch {
            origin: origin.to_owned(),
            key: key.to_owned(),
        });
    }
    Ok(())
}

/// A checkpoint whose note the log's key has verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// The tree head.
    pub checkpoint: Checkpoint,
    /// The note it came in, every signature line kept (cosignatures too).
    pub note: Note,
}

/// Opens a signed checkpoint: parses the note, verifies the log's signature
/// (other signature lines, such as cosignatures, are kept but not checked),
/// checks that the origin is the log key's name, and parses the checkpoint.
///
/// # Errors
/// [`Error::Note`] when the note is malformed or the log's signature is
/// missing or wrong, [`Error::OriginMismatch`], or a checkpoint error.
pub fn open(msg: &[u8], log: &VerifierKey) -> Result<SignedCheckpoint, Error> {
    if log.kind() != KeyType::Ed25519 {
        return Err(note::Error::WrongKeyType {
            name: log.name().to_string(),
            expected: KeyType::Ed25519,
            actual: log.kind(),
        }
        .into());
    }
    let (note, _) = note::open(msg, std::slice::from_ref(log))?;
    let checkpoint = Checkpoint::parse(note.text())?;
    check_origin(&checkpoint.origin, log.name().as_str())?;
    Ok(SignedCheckpoint { checkpoint, note })
}
