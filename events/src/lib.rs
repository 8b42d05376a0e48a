//! Traguardo's event log: what happened, and the append-only store that keeps it.
//!
//! - [`envelope`]: the envelope every event travels in ([`NewEvent`] before it is
//!   appended, [`RecordedEvent`] after), stream names and expected versions.
//! - [`domain`]: the domain's events, one past-tense enum per aggregate
//!   ([`domain::PlanEvent`], [`domain::ObjectiveEvent`], [`domain::OrgEvent`]).
//! - [`model`]: the plain domain values the events carry (weights in exact
//!   hundredths, phases, indicators, roles).
//! - [`ids`]: objective keys and stream names, parsed once.
//! - [`chain`]: the hash chain of DESIGN.md §3: canonical JSON and SHA-256.
//! - [`store`]: the SQLite event store: one group-commit writer, atomic multi-stream
//!   appends with optimistic concurrency, reads by stream, seq and record time, and
//!   verification of the whole chain.
//! - [`clock`]: where record time comes from (the system clock, or a test's own).

pub mod chain;
pub mod clock;
pub mod domain;
pub mod envelope;
pub mod error;
pub mod ids;
pub mod model;
pub mod store;
#[cfg(test)]
mod store_tests;

pub use clock::Clock;
pub use envelope::{AppendBatch, ExpectedVersion, Head, NewEvent, RecordedEvent, StreamAppend};
pub use error::{Error, Result};
pub use ids::{IdError, ObjectiveKey, StreamId, StreamRef};
pub use store::{Store, Verification};
