//! The store interface: the few operations the application needs from an event
//! log, whatever engine keeps it ([`crate::sqlite::SqliteStore`],
//! [`crate::pg::PgStore`]), and what the engines share.
//!
//! Both engines keep the same log (DESIGN.md §3 and §10): one global gapless
//! `seq`, per-stream versions under `UNIQUE(stream, version)`, the hash chain of
//! [`crate::chain`], triggers refusing UPDATE and DELETE, atomic multi-stream
//! appends checked against expected versions, idempotency keys committed with
//! their events, and one writer thread per store that commits every queued
//! append in one transaction (group commit). The writer loop, the post-commit
//! hand-over to hooks and appenders, batch validation and the chain check of
//! `verify` live here, once; each engine supplies its transaction.

use std::future::Future;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::sync::{mpsc, Arc, Mutex};
use std::task::{Context, Poll};

use chrono::{DateTime, Utc};

use crate::chain;
use crate::envelope::{AppendBatch, EventRef, Head, RecordedEvent};
use crate::{Clock, Error, Result};

/// Up to where a stream is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Until {
    /// Everything.
    #[default]
    End,
    /// Up to and including this stream version.
    Version(u64),
    /// Up to and including this global seq.
    Seq(u64),
    /// Everything recorded at or before this time.
    RecordedAt(DateTime<Utc>),
}

/// An idempotency key sent with an append: committed in the same transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyKey {
    /// The key, scoped by the caller (e.g. by actor).
    pub key: String,
    /// Hash of the request it was first used with.
    pub request_sha256: String,
}

/// A key already used: the request it was used with, and the seqs it appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotentResult {
    /// Hash of the first request.
    pub request_sha256: String,
    /// First seq the request appended.
    pub first_seq: u64,
    /// Last seq the request appended.
    pub last_seq: u64,
}

/// Web sessions (DESIGN.md §8) are kept beside the log, in `web_sessions`, not
/// in it: a session is not a fact of the plan, and it is deleted when it ends.
/// A row names the session by the SHA-256 (hex) of its secret, never the secret,
/// so a copy of the database opens no session. Times are Unix seconds.
///
/// A session's last use is written again only when it is older than this, so
/// that a page view costs a read, not a write: idle expiry is this coarse.
pub const SESSION_TOUCH_SECONDS: i64 = 60;

/// What [`Store::session`] does with a session: whether it is still alive at
/// `now` after `idle` seconds without use, and whether its last use must be
/// written again.
pub(crate) fn session_fate(last_seen: i64, now: i64, idle: i64) -> SessionFate {
    if now - last_seen >= idle {
        SessionFate::Expired
    } else if now - last_seen >= SESSION_TOUCH_SECONDS {
        SessionFate::Touch
    } else {
        SessionFate::Alive
    }
}

/// See [`session_fate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionFate {
    /// Gone: its row is deleted.
    Expired,
    /// Alive, its last use written again.
    Touch,
    /// Alive, used recently.
    Alive,
}
/// An idempotency key as stored: the key and what it was first used for.
/// What `traguardo copy` moves beside the events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredKey {
    /// The client's key.
    pub key: String,
    /// The request it was first used with, and the seqs that request appended.
    pub result: IdempotentResult,
}

/// Called by [`Store::visit_keys`] with each stored key.
pub type KeyVisitor<'a> = dyn FnMut(StoredKey) -> Result<()> + 'a;

/// What `verify` found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    /// Events read.
    pub events: u64,
    /// The last event read.
    pub head: Head,
    /// The first seq at which the chain breaks, if it does.
    pub first_bad_seq: Option<u64>,
    /// What is wrong there.
    pub problem: Option<String>,
    /// Published heads (`--expect`) that the log no longer holds, each with why.
    pub missing_heads: Vec<(Head, String)>,
    /// Whether the append-only triggers are still in place.
    pub triggers_present: bool,
}

impl Verification {
    /// True when the chain holds, every expected head is in it, and the triggers
    /// are in place.
    pub fn ok(&self) -> bool {
        self.first_bad_seq.is_none() && self.missing_heads.is_empty() && self.triggers_present
    }
}

/// The state of a read model as serialised at one point of the log, kept beside
/// the log so that a process can start without folding it all again. The log
/// stays the truth: whoever loads a snapshot checks that the log still holds
/// the event `seq` with the chain hash `hash`, and that `schema` is the fold's
/// current one, before using it (and folds the events after `seq` on top).
#[derive(Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// What it is the state of: [`REGISTRY_SNAPSHOT`] for the whole read model.
    pub name: String,
    /// The seq of the last event folded into it.
    pub seq: u64,
    /// The chain hash of that event.
    pub hash: String,
    /// The schema number of the fold that wrote it; another number means another
    /// layout, and the snapshot is discarded.
    pub schema: u32,
    /// When it was taken.
    pub taken_at: DateTime<Utc>,
    /// The serialised state.
    pub data: Vec<u8>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("name", &self.name)
            .field("seq", &self.seq)
            .field("hash", &self.hash)
            .field("schema", &self.schema)
            .field("taken_at", &self.taken_at)
            .field("bytes", &self.data.len())
            .finish()
    }
}

/// The folded state of one stream at one of its versions, kept beside the log
/// (`stream_snapshots`) so that a read of the stream at a past seq starts from
/// it instead of version 1. Disposable: written off the request path, replaced
/// freely, and never trusted blindly: a reader checks that the log still holds
/// the event `seq` of this stream at `version` with the chain hash `hash`, and
/// that `schema` is its fold's current one, before using `data`.
#[derive(Clone, PartialEq, Eq)]
pub struct StreamSnapshot {
    /// The stream, e.g. `objective/2022-2250-A`.
    pub stream: String,
    /// The stream version of the last event folded into it.
    pub version: u64,
    /// The global seq of that event.
    pub seq: u64,
    /// The chain hash of that event.
    pub hash: String,
    /// The schema number of the encoding and fold that wrote it.
    pub schema: u32,
    /// The encoded folded state.
    pub data: Vec<u8>,
}

impl std::fmt::Debug for StreamSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamSnapshot")
            .field("stream", &self.stream)
            .field("version", &self.version)
            .field("seq", &self.seq)
            .field("hash", &self.hash)
            .field("schema", &self.schema)
            .field("bytes", &self.data.len())
            .finish()
    }
}

/// The name of the snapshot of the whole read model.
pub const REGISTRY_SNAPSHOT: &str = "registry";

/// A snapshot is written in parts of at most this many bytes, each in a
/// transaction of its own, so that appends never wait for a whole snapshot.
pub const SNAPSHOT_PART_BYTES: usize = 4 << 20;

/// Called by the writer, in seq order, with the events of each of this store's
/// commits before the appenders are answered: projections fold here so a reply
/// never runs ahead of them. (Appends by other processes are not passed to hooks:
/// see [`Store::follow`].)
pub type CommitHook = Arc<dyn Fn(&[RecordedEvent]) + Send + Sync>;

/// A visitor of raw events for [`Store::visit_raw`]: the envelope, borrowed from
/// the row, and the data as its stored JSON text. `Break` stops the walk.
pub type RawVisitor<'a> = dyn FnMut(&EventRef<'_>, &str) -> ControlFlow<()> + 'a;

/// The event log, as the application uses it. Both engines implement it, and the
/// contract tests run against both. Reads block: call them from a blocking
/// thread (`spawn_blocking`), never on an async worker. Appends are futures
/// completed by the store's writer thread, or block with [`Store::append`].
pub trait Store: Send + Sync + std::fmt::Debug {
    /// Where the log lives, for messages: a file path, or a URL without its
    /// password.
    fn location(&self) -> String;

    /// The clock that stamps record times.
    fn clock(&self) -> &Clock;

    /// Registers a hook called after every commit of this store with the
    /// committed events.
    fn on_commit(&self, hook: CommitHook);

    /// A receiver of the head. It moves after every commit of this store and,
    /// once [`Store::follow`] was called, when another process appends; it never
    /// moves backwards.
    fn watch_head(&self) -> tokio::sync::watch::Receiver<Head>;

    /// Starts following appends made by other processes (idempotent) and returns
    /// a receiver of the head that moves with them: on SQLite by polling the head
    /// every [`FOLLOW_POLL`]; on PostgreSQL by `LISTEN` for the `NOTIFY` each
    /// append commits, with the same poll as a safety net. The head only tells
    /// where the log ends: a follower catches up with
    /// [`Store::read_all`]`(its_last_seq, …)`, so a missed wake-up loses nothing.
    ///
    /// # Errors
    /// When the follower thread cannot be started.
    fn follow(&self) -> Result<tokio::sync::watch::Receiver<Head>>;

    /// Appends a batch, all or nothing, and records `key` in the same
    /// transaction, so that a retry can find what the first request appended.
    /// The returned future completes when the batch is durable; it needs no
    /// runtime (the writer thread completes it), and [`PendingAppend::wait`]
    /// blocks on it instead.
    ///
    /// # Errors
    /// [`Error::Conflict`] when a stream is not at its expected version (nothing is
    /// appended); [`Error::KeyUsed`] when the key was committed by another
    /// request; [`Error::InvalidAppend`] for a malformed batch;
    /// [`Error::WriterGone`] after [`Store::shutdown`].
    fn append_idempotent(&self, batch: AppendBatch, key: Option<IdempotencyKey>) -> PendingAppend;

    /// [`Store::append_idempotent`] without a key.
    ///
    /// # Errors
    /// As [`Store::append_idempotent`].
    fn append_async(&self, batch: AppendBatch) -> PendingAppend {
        self.append_idempotent(batch, None)
    }

    /// Appends a batch and blocks until it is durable. Not from an async task:
    /// use [`Store::append_async`] there.
    ///
    /// # Errors
    /// As [`Store::append_idempotent`].
    fn append(&self, batch: AppendBatch) -> Result<Vec<RecordedEvent>> {
        self.append_idempotent(batch, None).wait()
    }

    /// The last event's seq and hash (seq 0 and 64 zeros when empty).
    ///
    /// # Errors
    /// When the database cannot be read.
    fn head(&self) -> Result<Head>;

    /// The current version of a stream (0 when it does not exist).
    ///
    /// # Errors
    /// When the database cannot be read.
    fn stream_version(&self, stream: &str) -> Result<u64>;

    /// The events of one stream, oldest first, up to `until`.
    ///
    /// # Errors
    /// When the database cannot be read or a row is corrupt.
    fn read_stream(&self, stream: &str, until: Until) -> Result<Vec<RecordedEvent>>;

    /// The events of one stream from version `from` (inclusive) on, oldest
    /// first, up to `until`: what a reader that holds the stream's first
    /// versions already (or a snapshot of them) still needs.
    ///
    /// # Errors
    /// When the database cannot be read or a row is corrupt.
    fn read_stream_from(&self, stream: &str, from: u64, until: Until)
        -> Result<Vec<RecordedEvent>>;

    /// Calls `visit` with the events of one stream from version `from`
    /// (inclusive) on, oldest first, up to `until`, each as its envelope borrowed
    /// from the row and its data as the stored JSON text: [`Store::read_stream_from`]
    /// for callers that decode it straight into domain types
    /// ([`EventRef::decode_text`]). Stops when `visit` breaks off.
    ///
    /// # Errors
    /// When the database cannot be read or a row is corrupt.
    fn visit_stream_raw(
        &self,
        stream: &str,
        from: u64,
        until: Until,
        visit: &mut RawVisitor<'_>,
    ) -> Result<()>;

    /// The events of every stream whose name starts with `prefix` (e.g.
    /// `objective/2022-`), in seq order, up to `until` (a version bound is ignored).
    ///
    /// # Errors
    /// When the database cannot be read or a row is corrupt.
    fn read_streams_with_prefix(&self, prefix: &str, until: Until) -> Result<Vec<RecordedEvent>>;

    /// Up to `limit` events of the global log with seq greater than `after`.
    ///
    /// # Errors
    /// When the database cannot be read or a row is corrupt.
    fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>>;

    /// Calls `visit` with every event after `after`, in seq order, one at a time
    /// (constant memory on any size of log), all from one snapshot of the log,
    /// each as its envelope borrowed from the row and its data as the stored
    /// JSON text. Stops when `visit` breaks.
    /// [`StoreExt::for_each_raw`] and [`StoreExt::for_each`] are the friendlier
    /// forms.
    ///
    /// # Errors
    /// When the database cannot be read or a row is corrupt.
    fn visit_raw(&self, after: u64, visit: &mut RawVisitor<'_>) -> Result<()>;

    /// The last seq recorded at or before `at` (0 when none).
    ///
    /// # Errors
    /// When the database cannot be read.
    fn seq_at(&self, at: DateTime<Utc>) -> Result<u64>;

    /// What an idempotency key was first used for, if it was.
    ///
    /// # Errors
    /// When the database cannot be read.
    fn idempotent_result(&self, key: &str) -> Result<Option<IdempotentResult>>;

    /// Recomputes the whole chain from seq 1 and checks each published head in
    /// `expect` against it, and that the append-only triggers are in place.
    ///
    /// # Errors
    /// When the database cannot be read at all (a broken chain is not an error: it
    /// is reported in the [`Verification`]).
    fn verify(&self, expect: &[Head]) -> Result<Verification>;

    /// The root of the log's Merkle tree (DESIGN.md §9) over its first `size`
    /// events, from the stored nodes: `O(log size)` reads.
    ///
    /// # Errors
    /// [`Error::Tree`] for a size beyond the stored tree (or a missing node),
    /// or when the database cannot be read.
    fn tree_root(&self, size: u64) -> Result<traguardo_tlog::Hash>;

    /// The RFC 9162 inclusion proof of the event `seq` (leaf `seq - 1`) in the
    /// tree of the first `size` events, from the leaf's sibling up.
    ///
    /// # Errors
    /// [`Error::SeqZero`]; [`Error::Tree`] when `seq > size` or `size` is beyond
    /// the stored tree; or when the database cannot be read.
    fn inclusion_proof(&self, seq: u64, size: u64) -> Result<Vec<traguardo_tlog::Hash>>;

    /// The RFC 9162 consistency proof from the tree of the first `from` events
    /// to that of the first `to` events (empty when they are equal).
    ///
    /// # Errors
    /// [`Error::Tree`] when `from` is 0, `from > to` or `to` is beyond the
    /// stored tree; or when the database cannot be read.
    fn consistency_proof(&self, from: u64, to: u64) -> Result<Vec<traguardo_tlog::Hash>>;

    /// Appends events recorded by another log exactly as they are (seq, id,
    /// record time, hashes), in one transaction: what `traguardo copy` moves a
    /// log between engines with. They must continue this log: the first one's
    /// seq is the head's plus one and its `prev_hash` the head's hash. The
    /// events go around the writer, so commit hooks do not see them (a
    /// follower does); call it on a log nobody else is writing.
    ///
    /// # Errors
    /// [`Error::Import`] when the events do not continue this log (nothing is
    /// written), or when the database fails.
    fn import_recorded(&self, events: &[RecordedEvent]) -> Result<Head>;

    /// Calls `visit` with every stored idempotency key, in the order of the
    /// seqs they appended, one at a time; stops at the first error `visit`
    /// returns, and returns it.
    ///
    /// # Errors
    /// When the database cannot be read, or `visit` fails.
    fn visit_keys(&self, visit: &mut KeyVisitor<'_>) -> Result<()>;

    /// Records idempotency keys used on another log exactly as they are, in one
    /// transaction, after that log's events were imported with
    /// [`Store::import_recorded`]: a retried request then finds its first
    /// answer on this log too.
    ///
    /// # Errors
    /// [`Error::Import`] when a key names seqs this log does not hold;
    /// [`Error::KeyUsed`] when a key is recorded here already (nothing is
    /// written either way); or when the database fails.
    fn import_keys(&self, keys: &[StoredKey]) -> Result<()>;

    /// Stops accepting appends, lets the writer finish what is queued, and waits
    /// for it (and stops following). Later appends fail with
    /// [`Error::WriterGone`]; reads still work.
    fn shutdown(&self);

    /// Opens a web session for `username`, named by the SHA-256 (hex) of its
    /// secret, last used at `now` (Unix seconds); sessions idle for `idle`
    /// seconds or more are deleted on the way.
    ///
    /// # Errors
    /// When the database cannot be written (a session already named so is an
    /// error too: secrets are random).
    fn open_session(&self, secret_sha256: &str, username: &str, now: i64, idle: i64) -> Result<()>;

    /// The username of the session named by `secret_sha256`, if it is open and
    /// was used less than `idle` seconds before `now`. An expired session is
    /// deleted; a live one is marked used at `now` (at most once every
    /// [`SESSION_TOUCH_SECONDS`]).
    ///
    /// # Errors
    /// When the database cannot be read or written.
    fn session(&self, secret_sha256: &str, now: i64, idle: i64) -> Result<Option<String>>;

    /// Ends a session: its row is deleted (nothing when there is none).
    ///
    /// # Errors
    /// When the database cannot be written.
    fn close_session(&self, secret_sha256: &str) -> Result<()>;
    /// Stores `snapshot` in place of every earlier one of the same name, beside
    /// the log and around its writer: its bytes in parts of
    /// [`SNAPSHOT_PART_BYTES`], each in a transaction of its own (an append
    /// waits at most for one part), then the row that makes it the latest,
    /// which also deletes the older ones. Interrupted midway, it leaves the
    /// previous snapshot in place (and parts that the next save deletes).
    ///
    /// # Errors
    /// When the database cannot be written.
    fn save_snapshot(&self, snapshot: &Snapshot) -> Result<()>;

    /// Reads the latest snapshot named `name` part by part, unchecked: `wanted`
    /// is shown where it stands (its seq, hash, schema and time, with `data`
    /// empty) and says whether to read its bytes; then `part` is given each
    /// stored part in order, as it is read, so that whoever decodes the bytes
    /// can start before the last part is read. Returns that head (`data`
    /// empty), or `None` when there is no snapshot of that name.
    ///
    /// # Errors
    /// When the database cannot be read, or holds fewer parts than the
    /// snapshot's row counts ([`Error::Snapshot`]); `part` may have been given
    /// some of them.
    fn read_snapshot(
        &self,
        name: &str,
        wanted: &mut dyn FnMut(&Snapshot) -> bool,
        part: &mut dyn FnMut(&[u8]),
    ) -> Result<Option<Snapshot>>;

    /// The latest snapshot named `name`, if there is one, whole; unchecked.
    ///
    /// # Errors
    /// As [`Store::read_snapshot`].
    fn latest_snapshot(&self, name: &str) -> Result<Option<Snapshot>> {
        let mut data = Vec::new();
        let head = self.read_snapshot(name, &mut |_| true, &mut |part| {
            data.extend_from_slice(part);
        })?;
        Ok(head.map(|head| Snapshot { data, ..head }))
    }

    /// Deletes every snapshot named `name` (one that does not match the log
    /// any more, or of an old schema).
    ///
    /// # Errors
    /// When the database cannot be written.
    fn discard_snapshots(&self, name: &str) -> Result<()>;

    /// Stores stream snapshots in one transaction, around the writer, each in
    /// place of any earlier one of the same stream and version.
    ///
    /// # Errors
    /// When the database cannot be written.
    fn put_stream_snapshots(&self, snapshots: &[StreamSnapshot]) -> Result<()>;

    /// The snapshot of `stream` with the greatest seq at or before `seq`, if
    /// there is one; unchecked.
    ///
    /// # Errors
    /// When the database cannot be read.
    fn stream_snapshot_at(&self, stream: &str, seq: u64) -> Result<Option<StreamSnapshot>>;

    /// Why the last commit failed, while the database refuses writes (a full
    /// disk, a read-only file); `None` once a commit succeeds again. Engines
    /// that cannot tell answer `None`.
    fn write_failure(&self) -> Option<String> {
        None
    }
}

/// The generic forms of [`Store::visit_raw`], for any store, `dyn Store` included.
pub trait StoreExt: Store {
    /// Calls `f` with every event after `after`: its envelope, borrowed from the
    /// row, and its data as stored JSON text, for callers that decode it straight
    /// into domain types ([`EventRef::decode_text`]). Stops at the first error.
    ///
    /// # Errors
    /// When the database cannot be read, a row is corrupt, or `f` fails.
    fn for_each_raw<E>(
        &self,
        after: u64,
        f: impl FnMut(&EventRef<'_>, &str) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E>
    where
        E: From<Error>,
    {
        fallibly(f, |visit| self.visit_raw(after, visit))
    }

    /// Calls `f` with the events of `stream` from version `from` on, up to
    /// `until`, and their data as stored JSON text ([`Store::visit_stream_raw`]).
    /// Stops at the first error.
    ///
    /// # Errors
    /// When the database cannot be read, a row is corrupt, or `f` fails.
    fn for_each_in_stream_raw<E>(
        &self,
        stream: &str,
        from: u64,
        until: Until,
        f: impl FnMut(&EventRef<'_>, &str) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E>
    where
        E: From<Error>,
    {
        fallibly(f, |visit| self.visit_stream_raw(stream, from, until, visit))
    }

    /// Calls `f` with every event after `after`, in seq order, data decoded.
    ///
    /// # Errors
    /// When the database cannot be read, a row is corrupt, or `f` fails.
    fn for_each<E>(
        &self,
        after: u64,
        mut f: impl FnMut(RecordedEvent) -> std::result::Result<(), E>,
    ) -> std::result::Result<(), E>
    where
        E: From<Error>,
    {
        self.for_each_raw(after, |event, data| {
            let data = serde_json::from_str(data).map_err(|e| {
                E::from(Error::Corrupt {
                    seq: event.seq,
                    message: format!("data: {e}"),
                })
            })?;
            f(event.to_recorded(data))
        })
    }
}

impl<S: Store + ?Sized> StoreExt for S {}

/// Runs `walk` with a visitor that hands each event to `f` and breaks off at
/// its first error, which is returned.
fn fallibly<E: From<Error>>(
    mut f: impl FnMut(&EventRef<'_>, &str) -> std::result::Result<(), E>,
    walk: impl FnOnce(&mut RawVisitor<'_>) -> Result<()>,
) -> std::result::Result<(), E> {
    let mut failed = None;
    walk(&mut |event, data| match f(event, data) {
        Ok(()) => ControlFlow::Continue(()),
        Err(e) => {
            failed = Some(e);
            ControlFlow::Break(())
        }
    })
    .map_err(E::from)?;
    failed.map_or(Ok(()), Err)
}

/// Opens the log named by `target`, creating it if needed: a `postgres://` or
/// `postgresql://` URL opens a [`crate::pg::PgStore`], anything else is the
/// path of a SQLite file ([`crate::sqlite::SqliteStore`]).
///
/// # Errors
/// [`Error::Open`] or [`Error::OpenUrl`] when the log cannot be opened.
pub fn open(target: &str, clock: Clock) -> Result<Arc<dyn Store>> {
    Ok(if is_postgres_url(target) {
        Arc::new(crate::pg::PgStore::open(target, clock)?)
    } else {
        Arc::new(crate::sqlite::SqliteStore::open(target, clock)?)
    })
}

/// Like [`open`], but the log must exist already: a missing file, an empty
/// database or another program's database is an error, and is left untouched.
///
/// # Errors
/// [`Error::Open`] or [`Error::OpenUrl`] when there is no Traguardo log there.
pub fn open_existing(target: &str) -> Result<Arc<dyn Store>> {
    Ok(if is_postgres_url(target) {
        Arc::new(crate::pg::PgStore::open_existing(target)?)
    } else {
        Arc::new(crate::sqlite::SqliteStore::open_existing(target)?)
    })
}

/// Whether `target` names a PostgreSQL database rather than a SQLite file.
pub fn is_postgres_url(target: &str) -> bool {
    target.starts_with("postgres://") || target.starts_with("postgresql://")
}

/// How often a follower polls the head ([`Store::follow`]).
pub const FOLLOW_POLL: std::time::Duration = std::time::Duration::from_millis(200);

/// An append on its way: completes with the recorded events once durable.
#[must_use = "an append is only known to be durable once its result is awaited"]
pub struct PendingAppend(Pending);

enum Pending {
    Ready(Option<Result<Vec<RecordedEvent>>>),
    Waiting(tokio::sync::oneshot::Receiver<Result<Vec<RecordedEvent>>>),
}

impl PendingAppend {
    /// An append refused before it reached the writer.
    pub(crate) fn failed(e: Error) -> Self {
        PendingAppend(Pending::Ready(Some(Err(e))))
    }

    /// An append queued for the writer, which answers on `reply`.
    pub(crate) fn queued(
        reply: tokio::sync::oneshot::Receiver<Result<Vec<RecordedEvent>>>,
    ) -> Self {
        PendingAppend(Pending::Waiting(reply))
    }

    /// Blocks this thread until the append is durable. Not from an async task.
    ///
    /// # Errors
    /// As [`Store::append_idempotent`].
    pub fn wait(self) -> Result<Vec<RecordedEvent>> {
        match self.0 {
            Pending::Ready(result) => result.unwrap_or(Err(Error::WriterGone)),
            Pending::Waiting(reply) => reply.blocking_recv().map_err(|_| Error::WriterGone)?,
        }
    }
}

impl Future for PendingAppend {
    type Output = Result<Vec<RecordedEvent>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().0 {
            Pending::Ready(result) => Poll::Ready(result.take().unwrap_or(Err(Error::WriterGone))),
            Pending::Waiting(reply) => Pin::new(reply)
                .poll(cx)
                .map(|r| r.map_err(|_| Error::WriterGone)?),
        }
    }
}

impl std::fmt::Debug for PendingAppend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PendingAppend")
    }
}

/// One append queued for a writer.
pub(crate) struct Request {
    pub(crate) batch: AppendBatch,
    pub(crate) idempotency: Option<IdempotencyKey>,
    pub(crate) reply: tokio::sync::oneshot::Sender<Result<Vec<RecordedEvent>>>,
}

/// The sending end of a writer's queue, shared by the clones of a store.
pub(crate) type Queue = Mutex<Option<mpsc::Sender<Request>>>;

/// Validates `batch` and queues it for the writer behind `queue`.
pub(crate) fn submit(
    queue: &Queue,
    batch: AppendBatch,
    idempotency: Option<IdempotencyKey>,
) -> PendingAppend {
    if let Err(e) = validate_batch(&batch) {
        return PendingAppend::failed(e);
    }
    let (reply, receiver) = tokio::sync::oneshot::channel();
    let sender = queue.lock().unwrap_or_else(|e| e.into_inner());
    let Some(sender) = sender.as_ref() else {
        return PendingAppend::failed(Error::WriterGone);
    };
    match sender.send(Request {
        batch,
        idempotency,
        reply,
    }) {
        Ok(()) => PendingAppend::queued(receiver),
        Err(_) => PendingAppend::failed(Error::WriterGone),
    }
}

/// What became of one request of a group, before the group's transaction commits.
pub(crate) enum Staged {
    /// Appended: these events of the group (their strings and data are still in
    /// the request, and move into them once the transaction has committed).
    Appended(std::ops::Range<usize>),
    /// Refused by its checks before it wrote anything.
    Refused(Error),
}

/// Why a group's transaction failed: the error, and the request being appended
/// when it happened (none when the transaction itself failed).
pub(crate) type GroupFailure = (Error, Option<usize>);

/// What a group's transaction staged: each request's fate, and the events.
pub(crate) type GroupDone = (Vec<Staged>, Vec<RecordedEvent>);

/// An engine's side of group commit: one transaction for a group of appends.
pub(crate) trait GroupCommit {
    /// Appends every request of `group` that passes its checks, in one
    /// transaction, and commits it. The events it returns have empty strings
    /// and null data (they move from the requests once committed).
    fn try_commit_group(
        &mut self,
        group: &[Request],
    ) -> std::result::Result<GroupDone, GroupFailure>;

    /// A failure told to every appender of a group whose transaction failed.
    fn describe(&self, e: &Error) -> String {
        e.to_string()
    }

    /// Called when no append has come for [`WRITER_IDLE`]: housekeeping that
    /// should not delay an append (SQLite checkpoints its WAL here).
    fn idle(&mut self) {}
}

/// How long the writer waits for an append before it calls
/// [`GroupCommit::idle`].
pub(crate) const WRITER_IDLE: std::time::Duration = std::time::Duration::from_secs(1);

/// The writer thread's loop, the same for every engine.
pub(crate) struct Writer<C> {
    pub(crate) engine: C,
    pub(crate) hooks: Arc<Mutex<Vec<CommitHook>>>,
    pub(crate) head: tokio::sync::watch::Sender<Head>,
}

/// How many queued appends one group commit takes at most.
const MAX_GROUP: usize = 512;

impl<C: GroupCommit> Writer<C> {
    /// Takes every queued append, commits them as one group, until the queue
    /// closes.
    pub(crate) fn run(mut self, receiver: mpsc::Receiver<Request>) {
        loop {
            let first = match receiver.recv_timeout(WRITER_IDLE) {
                Ok(first) => first,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    self.engine.idle();
                    continue;
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            };
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match receiver.try_recv() {
                    Ok(request) => group.push(request),
                    Err(_) => break,
                }
            }
            self.commit_group(group);
        }
    }

    /// Commits a group of appends in one transaction, so that they share one
    /// fsync. The checks that may refuse an append (expected versions, a used
    /// idempotency key) all run before it writes anything, so a refused append
    /// leaves no trace and the others go on without it: no savepoint is needed.
    /// A failure nobody asked for (I/O, a full disk) rolls the whole transaction
    /// back; then each append is tried alone, so that only the one at fault fails.
    fn commit_group(&mut self, mut group: Vec<Request>) {
        let (staged, mut all) = match self.engine.try_commit_group(&group) {
            Ok(done) => done,
            Err((e, Some(_))) if group.len() > 1 => {
                tracing::warn!(error = %e, appends = group.len(), "group commit failed; retrying its appends one by one");
                for request in group {
                    self.commit_group(vec![request]);
                }
                return;
            }
            Err((e, _)) => {
                tracing::error!(error = %e, appends = group.len(), "append failed");
                if group.len() == 1 {
                    // A lone append hears its own error.
                    let _ = group.remove(0).reply.send(Err(e));
                } else {
                    // The transaction itself failed (begin, commit): everyone hears
                    // why; errors are not Clone, so the message is passed on.
                    let message = self.engine.describe(&e);
                    let unavailable = e.is_unavailable();
                    let unwritable = e.unwritable();
                    for request in group {
                        let _ = request.reply.send(Err(if unavailable {
                            Error::Unavailable(message.clone())
                        } else if let Some(kind) = unwritable {
                            Error::Unwritable(kind, message.clone())
                        } else {
                            Error::InvalidAppend(format!("commit failed: {message}"))
                        }));
                    }
                }
                return;
            }
        };
        // Committed: the strings and data move from the requests into the events.
        for (request, staged) in group.iter_mut().zip(&staged) {
            if let Staged::Appended(range) = staged {
                for (event, new) in all[range.clone()]
                    .iter_mut()
                    .zip(request.batch.events.iter_mut())
                {
                    event.stream = std::mem::take(&mut new.stream);
                    event.event_type = std::mem::take(&mut new.event_type);
                    event.data = std::mem::take(&mut new.data);
                    event.actor = std::mem::take(&mut new.actor);
                    event.role = std::mem::take(&mut new.role);
                    event.correlation = new.correlation.take();
                }
            }
        }
        if let Some(last) = all.last() {
            for hook in self.hooks.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                // The events are durable whatever a hook does: a panicking hook
                // must not take the writer, and every later append, down with it.
                let called = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| hook(&all)));
                if called.is_err() {
                    tracing::error!(seq = last.seq, "a commit hook panicked; the writer goes on");
                }
            }
            publish_head(
                &self.head,
                Head {
                    seq: last.seq,
                    hash: last.hash.clone(),
                },
            );
        }
        // Hand each appender its own events, splitting from the end.
        let mut outcomes = Vec::with_capacity(group.len());
        for staged in staged.into_iter().rev() {
            outcomes.push(match staged {
                Staged::Appended(range) => Ok(all.split_off(range.start)),
                Staged::Refused(e) => Err(e),
            });
        }
        for (request, outcome) in group.into_iter().zip(outcomes.into_iter().rev()) {
            let _ = request.reply.send(outcome);
        }
    }
}

/// Moves the watched head to `head` unless it is there or further already: the
/// writer and a follower both publish, and the head never goes backwards.
pub(crate) fn publish_head(watch: &tokio::sync::watch::Sender<Head>, head: Head) {
    watch.send_if_modified(|current| {
        if head.seq > current.seq {
            *current = head;
            true
        } else {
            false
        }
    });
}

/// A thread that follows other processes' appends, and the means to stop it.
pub(crate) struct Follower {
    stop: mpsc::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

impl Follower {
    /// Starts `body` on a thread named `name`; `body` returns when the receiver it
    /// is given disconnects.
    pub(crate) fn start(
        name: &str,
        body: impl FnOnce(mpsc::Receiver<()>) + Send + 'static,
    ) -> Result<Self> {
        let (stop, stopped) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || body(stopped))
            .map_err(|e| Error::Thread("follower", e))?;
        Ok(Follower { stop, thread })
    }

    /// Stops the thread and waits for it.
    pub(crate) fn stop(self) {
        drop(self.stop);
        let _ = self.thread.join();
    }
}

/// Whether a follower told to stop through `stopped` should return, waiting at
/// most `wait` for the word.
pub(crate) fn told_to_stop(stopped: &mpsc::Receiver<()>, wait: std::time::Duration) -> bool {
    matches!(
        stopped.recv_timeout(wait),
        Err(mpsc::RecvTimeoutError::Disconnected) | Ok(())
    )
}

/// Checks that `events` continue the log whose head is `head`: consecutive
/// seqs from the head's next, each linked to the one before (the engines'
/// triggers check versions and links again as each row is inserted).
pub(crate) fn check_import(head: &Head, events: &[RecordedEvent]) -> Result<()> {
    let mut prev = head.clone();
    for event in events {
        if event.seq != prev.seq + 1 {
            return Err(Error::Import(format!(
                "seq {} does not follow seq {}",
                event.seq, prev.seq
            )));
        }
        if event.prev_hash != prev.hash {
            return Err(Error::Import(format!(
                "seq {} links to {}, not to the hash of seq {} ({})",
                event.seq, event.prev_hash, prev.seq, prev.hash
            )));
        }
        prev = Head {
            seq: event.seq,
            hash: event.hash.clone(),
        };
    }
    Ok(())
}

/// Checks that imported keys name seqs of a log whose head is `head`.
pub(crate) fn check_import_keys(head: &Head, keys: &[StoredKey]) -> Result<()> {
    for stored in keys {
        let IdempotentResult {
            first_seq,
            last_seq,
            ..
        } = stored.result;
        if first_seq == 0 || first_seq > last_seq || last_seq > head.seq {
            return Err(Error::Import(format!(
                "the idempotency key {:?} names seqs {first_seq}..{last_seq}, \
                 not within this log's 1..{}",
                stored.key, head.seq
            )));
        }
    }
    Ok(())
}

/// Checks a batch before it is queued: events, streams and types present, data
/// an object without floating-point numbers.
pub(crate) fn validate_batch(batch: &AppendBatch) -> Result<()> {
    if batch.events.is_empty() {
        return Err(Error::InvalidAppend(
            "a batch needs at least one event".into(),
        ));
    }
    for event in &batch.events {
        if event.stream.is_empty() || event.event_type.is_empty() {
            return Err(Error::InvalidAppend(
                "every event needs a stream and a type".into(),
            ));
        }
        if !event.data.is_object() {
            return Err(Error::InvalidAppend(format!(
                "{} event data must be a JSON object",
                event.event_type
            )));
        }
        if chain::has_float(&event.data) {
            return Err(Error::InvalidAppend(format!(
                "{} event data holds a floating-point number; store integers (hundredths)",
                event.event_type
            )));
        }
    }
    Ok(())
}

/// The walk of `verify`: fed every row in seq order, it recomputes the chain and
/// checks the published heads, the same way on every engine.
pub(crate) struct ChainCheck<'a> {
    // Several heads may be published for one seq (only one can be right): keep
    // them all, a map keyed by seq alone would silently drop all but the last.
    expected: std::collections::BTreeMap<u64, Vec<&'a Head>>,
    missing: Vec<(Head, String)>,
    verification: Verification,
    prev: String,
}

impl<'a> ChainCheck<'a> {
    /// A check of the heads in `expect`, on a log whose triggers are present or not.
    pub(crate) fn new(expect: &'a [Head], triggers_present: bool) -> Self {
        let mut expected: std::collections::BTreeMap<u64, Vec<&Head>> =
            std::collections::BTreeMap::new();
        let mut missing = Vec::new();
        for published in expect {
            if published.seq == 0 {
                // The empty log's head is held by every log.
                if published.hash != chain::GENESIS {
                    missing.push((
                        published.clone(),
                        format!("seq 0 is the empty log, whose hash is {}", chain::GENESIS),
                    ));
                }
                continue;
            }
            expected.entry(published.seq).or_default().push(published);
        }
        ChainCheck {
            expected,
            missing,
            verification: Verification {
                events: 0,
                head: Head::genesis(),
                first_bad_seq: None,
                problem: None,
                missing_heads: Vec::new(),
                triggers_present,
            },
            prev: chain::GENESIS.to_string(),
        }
    }

    /// Checks the row at `seq` (or why it could not be read); `Break` once the
    /// chain is broken, when reading on proves nothing more.
    pub(crate) fn next(&mut self, seq: u64, row: Result<RecordedEvent>) -> ControlFlow<()> {
        let next_seq = self.verification.head.seq + 1;
        let problem = match row {
            Err(e) => Some(format!("unreadable row: {e}")),
            Ok(_) if seq != next_seq => Some(format!(
                "seq {next_seq} is missing (the next row has seq {seq})"
            )),
            Ok(event) if event.prev_hash != self.prev => Some(format!(
                "prev_hash {} does not match the hash of seq {} ({})",
                event.prev_hash,
                next_seq - 1,
                self.prev
            )),
            Ok(event) => {
                let computed = chain::hash(&self.prev, &event).unwrap_or_else(|e| e.to_string());
                if computed != event.hash {
                    Some(format!(
                        "stored hash {} differs from the recomputed {computed}: the row was changed",
                        event.hash
                    ))
                } else {
                    for published in self.expected.remove(&seq).unwrap_or_default() {
                        if published.hash != event.hash {
                            self.missing.push((
                                published.clone(),
                                format!("the log has hash {} at seq {seq}", event.hash),
                            ));
                        }
                    }
                    self.prev = event.hash.clone();
                    self.verification.events += 1;
                    self.verification.head = Head {
                        seq,
                        hash: event.hash,
                    };
                    None
                }
            }
        };
        match problem {
            Some(problem) => {
                self.verification.first_bad_seq = Some(next_seq);
                self.verification.problem = Some(problem);
                ControlFlow::Break(())
            }
            None => ControlFlow::Continue(()),
        }
    }

    /// What the walk found, with every published head it did not reach.
    pub(crate) fn finish(mut self) -> Verification {
        for published in self.expected.into_values().flatten() {
            let why = if self.verification.first_bad_seq.is_some() {
                "the chain breaks before it".to_string()
            } else {
                format!(
                    "the log is shorter than seq {}: it ends at seq {}, so {} events are \
                     missing (lost with a deleted -wal file, or an older copy of the log)",
                    published.seq,
                    self.verification.head.seq,
                    published.seq - self.verification.head.seq
                )
            };
            self.missing.push((published.clone(), why));
        }
        self.verification.missing_heads = self.missing;
        self.verification
    }
}
