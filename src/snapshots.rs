//! Snapshots of the read model, and how a process starts from one.
//!
//! A snapshot is the whole [`Registry`] encoded at one seq
//! ([`traguardo_projections::snapshot`]), stored beside the log with that seq, the
//! chain hash of the event at that seq and the fold's schema number. It is
//! checked, never trusted: at start ([`load`]) it is used only if the log still
//! holds the event at its seq with its hash (a log rewritten since, or replaced
//! by another, does not) and its schema number is the fold's; otherwise it is
//! discarded, a warning says why, and the read model is folded from the whole
//! log. From a good snapshot only the events after its seq are folded.
//!
//! `serve --snapshot-every N` takes one in the background whenever the read
//! model has folded N events since the last ([`crate::App::take_snapshot`]):
//! encoded under the registry's read lock (appends wait for the encoding, not
//! for the disk), then written by a blocking task outside the store's writer,
//! in parts that are each a transaction of their own ([`Store::save_snapshot`]).

use traguardo_events::store::REGISTRY_SNAPSHOT;
use traguardo_events::{Snapshot, Store, StoreExt};
use traguardo_projections::snapshot::{self, SCHEMA};
use traguardo_projections::Registry;

use crate::error::AppError;

/// Why a stored snapshot was not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// It was written by another version of the fold.
    #[error("schema {found}, the fold's is {expected}")]
    Schema {
        /// The snapshot's schema number.
        found: u32,
        /// This program's.
        expected: u32,
    },
    /// The log does not reach its seq any more.
    #[error("the log has no event at seq {seq}")]
    Missing {
        /// The snapshot's seq.
        seq: u64,
    },
    /// The event at its seq is not the one it was taken at.
    #[error("the event at seq {seq} has hash {found}, the snapshot was taken at {expected}")]
    Hash {
        /// The snapshot's seq.
        seq: u64,
        /// The hash the snapshot names.
        expected: String,
        /// The hash the log holds there.
        found: String,
    },
    /// Its bytes are not a registry of this schema, or disagree with its seq.
    #[error("{0}")]
    Undecodable(String),
}

/// How the read model was built at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Start {
    /// Folded from the whole log: there was no snapshot.
    Replayed {
        /// Events folded.
        events: u64,
    },
    /// From a snapshot that matched the log, and the events after it.
    FromSnapshot {
        /// The snapshot's seq.
        seq: u64,
        /// Events folded after it.
        events: u64,
    },
    /// A snapshot was refused (and discarded): folded from the whole log.
    Refused {
        /// The refused snapshot's seq.
        seq: u64,
        /// Why.
        reason: Refused,
        /// Events folded.
        events: u64,
    },
}

impl Start {
    /// The seq of the snapshot the read model started from, if any.
    pub fn snapshot_seq(&self) -> Option<u64> {
        match self {
            Start::FromSnapshot { seq, .. } => Some(*seq),
            Start::Replayed { .. } | Start::Refused { .. } => None,
        }
    }

    /// Whether a snapshot was refused at start.
    pub fn refused(&self) -> bool {
        matches!(self, Start::Refused { .. })
    }
}

/// The read model folded: the registry, and the chain hash of the last event
/// folded (64 zeros before any).
pub struct Folded {
    /// The registry.
    pub registry: Registry,
    /// The hash of the event at `registry.last_seq()`.
    pub hash: String,
    /// How it was built.
    pub start: Start,
}

/// Builds the read model for a process that starts: from the latest snapshot
/// when it matches the log, else from the whole log (discarding the snapshot,
/// with a warning that says why).
///
/// # Errors
/// When the log cannot be read or an event cannot be folded. A snapshot that
/// cannot be read or used is never an error: the log is folded instead.
pub fn load(store: &dyn Store) -> Result<Folded, AppError> {
    let stored = match store.latest_snapshot(REGISTRY_SNAPSHOT) {
        Ok(stored) => stored,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the snapshot; folding the whole log");
            None
        }
    };
    let Some(stored) = stored else {
        let (registry, hash, events) = fold_after(store, Registry::new(), genesis())?;
        return Ok(Folded {
            registry,
            hash,
            start: Start::Replayed { events },
        });
    };
    match check(store, &stored) {
        Ok(registry) => {
            let seq = stored.seq;
            let (registry, hash, events) = fold_after(store, registry, stored.hash)?;
            tracing::info!(
                snapshot_seq = seq,
                events_after = events,
                "read model started from a snapshot checked against the log"
            );
            Ok(Folded {
                registry,
                hash,
                start: Start::FromSnapshot { seq, events },
            })
        }
        Err(reason) => {
            tracing::warn!(
                snapshot_seq = stored.seq,
                reason = %reason,
                "snapshot refused and discarded; folding the whole log"
            );
            if let Err(e) = store.discard_snapshots(REGISTRY_SNAPSHOT) {
                tracing::warn!(error = %e, "cannot discard the refused snapshot");
            }
            let (registry, hash, events) = fold_after(store, Registry::new(), genesis())?;
            Ok(Folded {
                registry,
                hash,
                start: Start::Refused {
                    seq: stored.seq,
                    reason,
                    events,
                },
            })
        }
    }
}

/// The registry a stored snapshot holds, if it may be used on this log.
///
/// # Errors
/// Why it may not.
pub fn check(store: &dyn Store, stored: &Snapshot) -> Result<Registry, Refused> {
    if stored.schema != SCHEMA {
        return Err(Refused::Schema {
            found: stored.schema,
            expected: SCHEMA,
        });
    }
    if stored.seq == 0 {
        return Err(Refused::Missing { seq: 0 });
    }
    let event = store
        .read_all(stored.seq - 1, 1)
        .map_err(|e| Refused::Undecodable(format!("cannot read the log: {e}")))?
        .into_iter()
        .next()
        .filter(|e| e.seq == stored.seq)
        .ok_or(Refused::Missing { seq: stored.seq })?;
    if event.hash != stored.hash {
        return Err(Refused::Hash {
            seq: stored.seq,
            expected: stored.hash.clone(),
            found: event.hash,
        });
    }
    let registry =
        snapshot::decode(&stored.data).map_err(|e| Refused::Undecodable(e.to_string()))?;
    if registry.last_seq() != stored.seq {
        return Err(Refused::Undecodable(format!(
            "it holds the read model at seq {}, not {}",
            registry.last_seq(),
            stored.seq
        )));
    }
    Ok(registry)
}

/// Folds every event after the registry's last seq into it; the hash of the
/// last event folded (`hash` when there is none) and how many were folded.
///
/// # Errors
/// When the log cannot be read or an event cannot be folded.
pub fn fold_after(
    store: &dyn Store,
    mut registry: Registry,
    mut hash: String,
) -> Result<(Registry, String, u64), AppError> {
    let mut events = 0u64;
    store.for_each_raw(registry.last_seq(), |event, data| {
        registry.apply_text(&event, data).map_err(AppError::from)?;
        hash = event.hash;
        events += 1;
        Ok::<(), AppError>(())
    })?;
    Ok((registry, hash, events))
}

/// The encoded registry as a snapshot at `hash`, stamped now.
///
/// # Errors
/// When it cannot be encoded (a bug).
pub fn encode(
    registry: &Registry,
    hash: &str,
    taken_at: chrono::DateTime<chrono::Utc>,
) -> Result<Snapshot, AppError> {
    Ok(Snapshot {
        name: REGISTRY_SNAPSHOT.to_string(),
        seq: registry.last_seq(),
        hash: hash.to_string(),
        schema: SCHEMA,
        taken_at,
        data: snapshot::encode(registry).map_err(|e| AppError::Internal(e.to_string()))?,
    })
}

fn genesis() -> String {
    traguardo_events::Head::genesis().hash
}
