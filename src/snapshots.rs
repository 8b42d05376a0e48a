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
//!
//! Stream snapshots ([`StreamSnapshots`]) are the other kind: one objective's
//! folded state every [`STREAM_SNAPSHOT_EVERY`] versions of its stream, handed
//! over by the commit hook and written by a thread of their own, where time
//! travel starts ([`crate::time_travel`]). `traguardo snapshot` also writes them
//! for a whole existing log ([`write_stream_snapshots`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use traguardo_events::store::REGISTRY_SNAPSHOT;
use traguardo_events::{RecordedEvent, Snapshot, Store, StoreExt, StreamSnapshot};
use traguardo_projections::snapshot::{self, OBJECTIVE_SCHEMA, SCHEMA};
use traguardo_projections::{Objective, Registry};

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

/// An empty read model for a process: the texts it folds are kept in the
/// texts' file ([`traguardo_projections::text`]), however it is built.
pub fn live() -> Registry {
    let mut registry = Registry::new();
    registry.keep_texts_on_disk();
    registry
}

/// Builds the read model for a process that starts: from the latest snapshot
/// when it matches the log, else from the whole log (discarding the snapshot,
/// with a warning that says why).
///
/// # Errors
/// When the log cannot be read or an event cannot be folded. A snapshot that
/// cannot be read or used is never an error: the log is folded instead.
pub fn load(store: &dyn Store) -> Result<Folded, AppError> {
    let folded = build(store);
    give_back_freed_memory();
    folded
}

/// Returns to the system the pages that the build of the read model used and
/// freed (the snapshot's bytes, its decoding threads' buffers, the replay's
/// rows), which the allocator would otherwise keep for the life of the
/// process: with glibc, each decoding thread leaves an arena of them; the
/// binaries allocate with mimalloc, which keeps the segments of exited
/// threads until collected. (SQLite's own allocations go to glibc's malloc.)
fn give_back_freed_memory() {
    // SAFETY: `mi_collect` frees only memory no allocation holds; it takes no
    // pointer, and where mimalloc is not the allocator (the test binaries)
    // it finds nothing of its own to free.
    unsafe {
        libmimalloc_sys::mi_collect(true);
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only releases free memory of the allocator's own
    // arenas; it takes no pointer and may be called at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

fn build(store: &dyn Store) -> Result<Folded, AppError> {
    let (stored, decoded) = traguardo_projections::text::on_disk(|| read(store));
    let stored = match stored {
        Ok(stored) => stored,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the snapshot; folding the whole log");
            None
        }
    };
    let Some(stored) = stored else {
        let (registry, hash, events) = fold_after(store, live(), genesis())?;
        return Ok(Folded {
            registry,
            hash,
            start: Start::Replayed { events },
        });
    };
    match check(store, &stored, decoded) {
        Ok(mut registry) => {
            registry.keep_texts_on_disk();
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
            let (registry, hash, events) = fold_after(store, live(), genesis())?;
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

/// The latest snapshot's head (`data` empty) and, when its schema is the
/// fold's, the registry its bytes hold: decoded part by part while the store
/// reads them (no copy of the whole snapshot is ever held).
fn read(
    store: &dyn Store,
) -> (
    traguardo_events::Result<Option<Snapshot>>,
    Result<Registry, snapshot::SnapshotError>,
) {
    snapshot::decode_streamed(|feed| {
        store.read_snapshot(REGISTRY_SNAPSHOT, &mut |head| head.schema == SCHEMA, feed)
    })
}

/// The registry a stored snapshot holds (`decoded` from its bytes), if it may
/// be used on this log.
///
/// # Errors
/// Why it may not.
fn check(
    store: &dyn Store,
    stored: &Snapshot,
    decoded: Result<Registry, snapshot::SnapshotError>,
) -> Result<Registry, Refused> {
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
    let registry = decoded.map_err(|e| Refused::Undecodable(e.to_string()))?;
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
        registry.apply_text(event, data).map_err(AppError::from)?;
        hash.clear();
        hash.push_str(event.hash);
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

/// A stream snapshot every this many versions of an objective's stream, unless
/// told otherwise (`serve --stream-snapshot-every`).
pub const STREAM_SNAPSHOT_EVERY: u64 = 32;

/// Folded objectives waiting to be encoded and written, at most: when the
/// writer falls this far behind, further snapshots are dropped (and counted),
/// never waited for.
const STREAM_SNAPSHOT_QUEUE: usize = 4_096;

/// Stream snapshots written per transaction, at most.
const STREAM_SNAPSHOT_BATCH: usize = 256;

/// The prefix of objective streams.
const OBJECTIVE_STREAMS: &str = "objective/";

/// Writes stream snapshots ([`traguardo_events::StreamSnapshot`]) of objectives
/// off the request path: the read model hands over (by [`StreamSnapshots::offer`],
/// from the commit hook) a copy of an objective whose stream just reached a
/// multiple of `every` versions, and a thread of its own encodes what is queued
/// and writes it in one transaction. A full queue or a failed write loses
/// snapshots, never a request: time travel then starts from an earlier one.
pub struct StreamSnapshots {
    every: AtomicU64,
    sender: Mutex<Option<mpsc::SyncSender<Due>>>,
    counters: Arc<StreamSnapshotCounters>,
}

/// What [`StreamSnapshots`] did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamSnapshotStats {
    /// Stream snapshots written.
    pub written: u64,
    /// Dropped because the queue was full.
    pub dropped: u64,
    /// Lost to a failed encoding or write.
    pub failed: u64,
}

#[derive(Default)]
struct StreamSnapshotCounters {
    queued: AtomicU64,
    /// Written, or failed: no longer waiting.
    done: AtomicU64,
    written: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
}

/// An objective folded through the event at `version` of its stream.
struct Due {
    stream: String,
    version: u64,
    seq: u64,
    hash: String,
    objective: Objective,
}

impl StreamSnapshots {
    /// A writer of stream snapshots into `store`, every `every` versions (0:
    /// none). Its thread ends when this is dropped or the store is gone.
    pub fn start(store: Weak<dyn Store>, every: u64) -> Self {
        let counters = Arc::new(StreamSnapshotCounters::default());
        let (sender, receiver) = mpsc::sync_channel(STREAM_SNAPSHOT_QUEUE);
        let thread_counters = counters.clone();
        let spawned = std::thread::Builder::new()
            .name("stream-snapshots".into())
            .spawn(move || write_loop(&store, &receiver, &thread_counters));
        let sender = match spawned {
            Ok(_) => Some(sender),
            Err(e) => {
                tracing::warn!(error = %e, "cannot start the stream snapshot writer; none will be written");
                None
            }
        };
        StreamSnapshots {
            every: AtomicU64::new(every),
            sender: Mutex::new(sender),
            counters,
        }
    }

    /// Writes one every `every` versions from now on (0: none).
    pub fn set_every(&self, every: u64) {
        self.every.store(every, Ordering::Relaxed);
    }

    /// Whether `event`, just folded, brings its objective to a version that
    /// gets a snapshot.
    pub fn due(&self, event: &RecordedEvent) -> bool {
        let every = self.every.load(Ordering::Relaxed);
        every > 0
            && event.version.is_multiple_of(every)
            && event.stream.starts_with(OBJECTIVE_STREAMS)
    }

    /// Queues a snapshot of `objective`, folded through `event`; dropped (and
    /// counted) when the writer is that far behind.
    pub fn offer(&self, event: &RecordedEvent, objective: &Objective) {
        let sender = self.sender.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(sender) = sender.as_ref() else {
            return;
        };
        let due = Due {
            stream: event.stream.clone(),
            version: event.version,
            seq: event.seq,
            hash: event.hash.clone(),
            objective: objective.clone(),
        };
        self.counters.queued.fetch_add(1, Ordering::Relaxed);
        if sender.try_send(due).is_err() {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            self.counters.done.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Waits until every snapshot queued so far is written (or lost), at most
    /// `timeout`; whether it was.
    pub fn flush(&self, timeout: Duration) -> bool {
        let queued = self.counters.queued.load(Ordering::Relaxed);
        let until = Instant::now() + timeout;
        while self.counters.done.load(Ordering::Relaxed) < queued {
            if Instant::now() >= until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }

    /// Written, dropped and failed so far.
    pub fn stats(&self) -> StreamSnapshotStats {
        let c = &self.counters;
        StreamSnapshotStats {
            written: c.written.load(Ordering::Relaxed),
            dropped: c.dropped.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
        }
    }
}

/// The writer thread: takes what is queued (up to a batch), encodes it, writes
/// it in one transaction; until the queue closes or the store is gone.
fn write_loop(
    store: &Weak<dyn Store>,
    receiver: &mpsc::Receiver<Due>,
    counters: &StreamSnapshotCounters,
) {
    while let Ok(first) = receiver.recv() {
        let mut batch = vec![first];
        while batch.len() < STREAM_SNAPSHOT_BATCH {
            match receiver.try_recv() {
                Ok(due) => batch.push(due),
                Err(_) => break,
            }
        }
        let count = batch.len() as u64;
        let Some(store) = store.upgrade() else {
            counters.done.fetch_add(count, Ordering::Relaxed);
            return;
        };
        let encoded: Vec<StreamSnapshot> = batch
            .into_iter()
            .filter_map(|due| match stream_snapshot(due) {
                Ok(snapshot) => Some(snapshot),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot encode a stream snapshot");
                    None
                }
            })
            .collect();
        let lost = count - encoded.len() as u64;
        match store.put_stream_snapshots(&encoded) {
            Ok(()) => {
                counters
                    .written
                    .fetch_add(encoded.len() as u64, Ordering::Relaxed);
                counters.failed.fetch_add(lost, Ordering::Relaxed);
            }
            Err(e) => {
                tracing::warn!(error = %e, snapshots = count, "cannot write stream snapshots");
                counters.failed.fetch_add(count, Ordering::Relaxed);
            }
        }
        counters.done.fetch_add(count, Ordering::Relaxed);
    }
}

fn stream_snapshot(due: Due) -> Result<StreamSnapshot, AppError> {
    Ok(StreamSnapshot {
        data: snapshot::encode_objective(&due.objective)
            .map_err(|e| AppError::Internal(e.to_string()))?,
        stream: due.stream,
        version: due.version,
        seq: due.seq,
        hash: due.hash,
        schema: OBJECTIVE_SCHEMA,
    })
}

/// Writes the stream snapshots of a whole existing log (`traguardo snapshot`):
/// folds it from the start and stores each objective's state at every
/// multiple of `every` versions (replacing any stored there). Answers how many
/// were written.
///
/// # Errors
/// When the log cannot be read or folded, or the snapshots cannot be written.
pub fn write_stream_snapshots(store: &dyn Store, every: u64) -> Result<u64, AppError> {
    if every == 0 {
        return Ok(0);
    }
    let mut registry = Registry::new();
    let mut batch = Vec::with_capacity(STREAM_SNAPSHOT_BATCH);
    let mut written = 0u64;
    store.for_each_raw(0, |event, data| {
        registry.apply_text(event, data).map_err(AppError::from)?;
        let key = event.stream.strip_prefix(OBJECTIVE_STREAMS);
        if let Some(objective) = key
            .filter(|_| event.version.is_multiple_of(every))
            .and_then(|key| registry.objective(key))
        {
            batch.push(stream_snapshot(Due {
                stream: event.stream.to_string(),
                version: event.version,
                seq: event.seq,
                hash: event.hash.to_string(),
                objective: objective.clone(),
            })?);
            if batch.len() == STREAM_SNAPSHOT_BATCH {
                store.put_stream_snapshots(&batch)?;
                written += batch.len() as u64;
                batch.clear();
            }
        }
        Ok::<(), AppError>(())
    })?;
    store.put_stream_snapshots(&batch)?;
    Ok(written + batch.len() as u64)
}
