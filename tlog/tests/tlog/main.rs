//! The transparency log crate's tests, one binary with a module per part.

mod checkpoint;
mod cosignature;
mod merkle;
mod note;
mod witness;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use traguardo_tlog::Hash;

/// Decodes base64 of a 32-byte hash.
pub fn b64_hash(text: &str) -> Hash {
    BASE64
        .decode(text)
        .expect("base64")
        .try_into()
        .expect("32 bytes")
}

/// Decodes hex of a 32-byte hash.
pub fn hex_hash(text: &str) -> Hash {
    hex::decode(text)
        .expect("hex")
        .try_into()
        .expect("32 bytes")
}
