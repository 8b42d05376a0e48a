//! Traguardo's event log: what happened, and the append-only store that keeps it.
//!
//! - [`backup`]: consistent copies of a live SQLite log (online backup API).
//! - [`envelope`]: the envelope every event travels in ([`NewEvent`] before it is
//!   appended, [`RecordedEvent`] after), stream names and expected versions.
//! - [`domain`]: the domain's events, one past-tense enum per aggregate
//!   ([`domain::PlanEvent`], [`domain::ObjectiveEvent`], [`domain::OrgEvent`]),
//!   and [`domain::DecodeByTag`]: their decode from the stored `type` and data
//!   apart, read in place without buffering.
//! - [`model`]: the plain domain values the events carry (weights in exact
//!   hundredths, phases, indicators, roles).
//! - [`identity`]: the stable `actor_id` of a display name.
//! - [`ids`]: objective keys and stream names, parsed once.
//! - [`chain`]: the hash chain of DESIGN.md §3: canonical JSON and SHA-256.
//! - [`store`]: the [`Store`] trait, the interface the application holds whatever
//!   the engine: atomic multi-stream appends with optimistic concurrency and
//!   idempotency keys, reads by stream, seq and record time, verification of the
//!   whole chain, following other processes' appends; [`store::open`] picks the
//!   engine from a path or URL. Also the group-commit writer loop both engines run,
//!   and [`Snapshot`]s: a read model's serialised state at a seq and hash, kept
//!   beside the log (table `snapshots`) and checked against it before use;
//!   [`StreamSnapshot`]s, one stream's folded state every N versions (table
//!   `stream_snapshots`), where time travel starts instead of version 1.
//! - [`sqlite`]: [`SqliteStore`], the embedded engine (one file, WAL).
//! - [`pg`]: [`PgStore`], the PostgreSQL engine (several processes on one
//!   database, ordered by a table lock, followed by LISTEN/NOTIFY).
//! - `tree`: the log as an RFC 9162 Merkle tree (DESIGN.md §9), its nodes kept
//!   by both engines beside the events; [`Store::tree_root`] and the proofs.
//! - [`clock`]: where record time comes from (the system clock, or a test's own).

pub mod backup;
pub mod chain;
pub mod clock;
pub mod domain;
pub mod envelope;
pub mod error;
pub mod identity;
pub mod ids;
pub mod model;
pub mod pg;
pub mod sqlite;
pub mod store;
#[cfg(test)]
mod store_tests;
mod tree;

pub use clock::Clock;
pub use envelope::{
    AppendBatch, EventRef, ExpectedVersion, Head, NewEvent, RecordedEvent, StreamAppend,
};
pub use error::{Error, Result, Unwritable};
pub use ids::{IdError, ObjectiveKey, StreamId, StreamRef};
pub use pg::PgStore;
pub use sqlite::SqliteStore;
pub use store::{
    PendingAppend, Snapshot, Store, StoreExt, StoredKey, StreamSnapshot, Verification,
};
