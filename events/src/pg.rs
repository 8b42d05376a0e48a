//! The PostgreSQL event store, [`PgStore`]: the engine for several processes
//! sharing one log (`--db postgres://…`).
//!
//! The same log as the SQLite engine, column for column and hash for hash: one
//! table, one global gapless `seq`, `UNIQUE(stream, version)`, the chain of
//! [`crate::chain`] (a log copied between engines verifies unchanged), triggers
//! refusing UPDATE, DELETE and TRUNCATE and any insert that does not extend the
//! chain, idempotency keys committed with their
//! events, numbered migrations embedded here and recorded in `schema_migrations`.
//!
//! **Order across processes.** Each store has one writer thread that commits
//! every queued append in one transaction (group commit). That transaction
//! first takes `LOCK TABLE events IN EXCLUSIVE MODE`: writers of every process
//! queue on it (readers do not), and whatever else tries to insert waits too.
//! Only then does it read the head and the stream versions, which in READ
//! COMMITTED are those of the last commit of any process. So seqs never fork
//! or gap, each append links to the true head, and record time is stamped
//! `max(now, the head's recorded_at)`: it never goes backwards along the log.
//! An append is answered only after its COMMIT returned, so with PostgreSQL's
//! default `synchronous_commit` it is durable when acknowledged.
//!
//! **Following other processes.** Each commit sends `NOTIFY traguardo_head`
//! with the new head seq; [`PgStore::follow`] LISTENs on its own connection and
//! re-reads the head on every notification and every [`store::FOLLOW_POLL`],
//! so a lost notification (a dropped connection) only delays it.
//!
//! **Driver.** The synchronous `postgres` crate (the blocking face of
//! `tokio-postgres`, same maintainers, the long-standing choice for PostgreSQL
//! in Rust). The store's interface is synchronous and its writer is a dedicated
//! thread, exactly as with rusqlite: a blocking client fits that shape with no
//! pool crate and no async plumbing, and the `Statement`s it prepares stay with
//! the writer's connection. Its one trap, that a blocking client may not run on
//! an async worker thread (it drives its own small runtime), is handled here
//! once: such a call is moved to a scoped helper thread ([`off_runtime`]).

use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use chrono::{DateTime, Utc};
use postgres::error::SqlState;
use postgres::fallible_iterator::FallibleIterator;
use postgres::{Client, Config, IsolationLevel, NoTls, Row, Statement, Transaction};
use serde_json::Value;
use uuid::Uuid;

use crate::chain;
use crate::envelope::{format_timestamp, AppendBatch, Head, RecordedEvent};
use crate::store::{
    self, ChainCheck, CommitHook, Follower, GroupCommit, GroupDone, GroupFailure, IdempotencyKey,
    IdempotentResult, PendingAppend, Queue, RawVisitor, Request, Snapshot, Staged, Store, Until,
    Verification, Writer,
};
use crate::tree::{self, NodeKey, TreeTx};
use crate::{Clock, Error, Result};

/// Numbered migrations, applied at open in one transaction, never edited once
/// released. Migration `n` is recorded as version `n` in `schema_migrations`.
const MIGRATIONS: &[&str] = &[
    // 1: the log, append-only by trigger. `stream` compares byte by byte
    // (COLLATE "C"), so a prefix is a range of the (stream, version) index.
    r#"CREATE TABLE events (
        seq          BIGINT      PRIMARY KEY CHECK (seq > 0),
        id           UUID        NOT NULL UNIQUE,
        stream       TEXT        COLLATE "C" NOT NULL,
        version      BIGINT      NOT NULL CHECK (version > 0),
        type         TEXT        NOT NULL,
        schema       BIGINT      NOT NULL,
        data         TEXT        NOT NULL,
        actor        TEXT        NOT NULL,
        role         TEXT        NOT NULL,
        recorded_at  TIMESTAMPTZ NOT NULL,
        correlation  TEXT,
        prev_hash    TEXT        NOT NULL,
        hash         TEXT        NOT NULL,
        CONSTRAINT events_stream_version UNIQUE (stream, version)
    );
    CREATE INDEX events_recorded_at ON events (recorded_at);
    CREATE FUNCTION traguardo_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'the event log is append-only: % refused', TG_OP
            USING ERRCODE = 'integrity_constraint_violation';
    END $$;
    CREATE TRIGGER events_no_update BEFORE UPDATE ON events
        FOR EACH ROW EXECUTE FUNCTION traguardo_refuse_change();
    CREATE TRIGGER events_no_delete BEFORE DELETE ON events
        FOR EACH ROW EXECUTE FUNCTION traguardo_refuse_change();
    CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
        FOR EACH STATEMENT EXECUTE FUNCTION traguardo_refuse_change();
    -- As on SQLite: an insert must extend the chain, whoever makes it.
    CREATE FUNCTION traguardo_check_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF NEW.seq IS DISTINCT FROM (SELECT COALESCE(MAX(seq), 0) + 1 FROM events)
           OR NEW.version IS DISTINCT FROM (SELECT COALESCE(MAX(version), 0) + 1
                                            FROM events WHERE stream = NEW.stream)
           OR NEW.prev_hash IS DISTINCT FROM COALESCE(
                  (SELECT hash FROM events ORDER BY seq DESC LIMIT 1), repeat('0', 64))
        THEN
            RAISE EXCEPTION 'the event log is append-only: an insert must take the next '
                'seq, the next version of its stream and link to the head'
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN NEW;
    END $$;
    CREATE TRIGGER events_append_only BEFORE INSERT ON events
        FOR EACH ROW EXECUTE FUNCTION traguardo_check_insert();"#,
    // 2: idempotency keys of write requests, committed with the events they made.
    "CREATE TABLE idempotency (
        key            TEXT   PRIMARY KEY,
        request_sha256 TEXT   NOT NULL,
        first_seq      BIGINT NOT NULL,
        last_seq       BIGINT NOT NULL
    );",
    // 3: the log as a Merkle tree (DESIGN.md §9): one row per complete subtree,
    // written with the events; an existing log's nodes are built at open.
    "CREATE TABLE tree_nodes (
        level SMALLINT NOT NULL CHECK (level >= 0 AND level < 64),
        idx   BIGINT   NOT NULL CHECK (idx >= 0),
        hash  BYTEA    NOT NULL CHECK (length(hash) = 32),
        PRIMARY KEY (level, idx)
    );
    CREATE TRIGGER tree_nodes_no_update BEFORE UPDATE ON tree_nodes
        FOR EACH ROW EXECUTE FUNCTION traguardo_refuse_change();
    CREATE TRIGGER tree_nodes_no_delete BEFORE DELETE ON tree_nodes
        FOR EACH ROW EXECUTE FUNCTION traguardo_refuse_change();
    CREATE TRIGGER tree_nodes_no_truncate BEFORE TRUNCATE ON tree_nodes
        FOR EACH STATEMENT EXECUTE FUNCTION traguardo_refuse_change();",
    // 4: the same checks on insert, the head's seq and hash read in one lookup
    // instead of two (the trigger runs for every row appended).
    r#"CREATE OR REPLACE FUNCTION traguardo_check_insert() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        head_seq  BIGINT;
        head_hash TEXT;
    BEGIN
        SELECT seq, hash INTO head_seq, head_hash FROM events ORDER BY seq DESC LIMIT 1;
        IF NEW.seq IS DISTINCT FROM COALESCE(head_seq, 0) + 1
           OR NEW.prev_hash IS DISTINCT FROM COALESCE(head_hash, repeat('0', 64))
           OR NEW.version IS DISTINCT FROM (SELECT COALESCE(MAX(version), 0) + 1
                                            FROM events WHERE stream = NEW.stream)
        THEN
            RAISE EXCEPTION 'the event log is append-only: an insert must take the next '
                'seq, the next version of its stream and link to the head'
                USING ERRCODE = 'integrity_constraint_violation';
        END IF;
        RETURN NEW;
    END $$;"#,
    // 5: snapshots of read models, to start without folding the whole log. Not
    // part of the log: replaced and discarded freely, checked before use. The
    // bytes go in parts, each written in a transaction of its own; the header
    // row, written last, makes a snapshot visible.
    "CREATE TABLE snapshots (
        name     TEXT        NOT NULL,
        seq      BIGINT      NOT NULL CHECK (seq >= 0),
        hash     TEXT        NOT NULL,
        schema   INTEGER     NOT NULL,
        taken_at TIMESTAMPTZ NOT NULL,
        parts    INTEGER     NOT NULL,
        PRIMARY KEY (name, seq)
    );
    CREATE TABLE snapshot_parts (
        name TEXT    NOT NULL,
        seq  BIGINT  NOT NULL,
        part INTEGER NOT NULL,
        data BYTEA   NOT NULL,
        PRIMARY KEY (name, seq, part)
    );",
];

/// The triggers that keep the log append-only; `verify` reports any that is
/// gone or disabled.
const TRIGGERS: &[&str] = &[
    "events_no_update",
    "events_no_delete",
    "events_no_truncate",
    "events_append_only",
];

const MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER     PRIMARY KEY,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)";
/// Serialises processes migrating the same database at the same time.
const MIGRATION_LOCK: i64 = 0x7472_6167_7561_7264; // "traguard"
/// Serialises the appends of every process (readers are not blocked).
const LOCK_LOG: &str = "LOCK TABLE events IN EXCLUSIVE MODE";
/// The channel each append notifies with its new head seq.
const CHANNEL: &str = "traguardo_head";

const SELECT_EVENT: &str = "SELECT seq, id, stream, version, type, schema, data, actor, role, \
     recorded_at, correlation, prev_hash, hash FROM events";
/// The events of one append, in one statement: one array per column, inserted
/// in seq order (the insert trigger checks each row against the one before).
const INSERT_EVENTS: &str = "INSERT INTO events (seq, id, stream, version, type, schema, data, \
     actor, role, recorded_at, correlation, prev_hash, hash) \
     SELECT * FROM UNNEST($1::bigint[], $2::uuid[], $3::text[], $4::bigint[], $5::text[], \
     $6::bigint[], $7::text[], $8::text[], $9::text[], $10::timestamptz[], $11::text[], \
     $12::text[], $13::text[]) \
     AS u (seq, id, stream, version, type, schema, data, actor, role, recorded_at, \
     correlation, prev_hash, hash) ORDER BY seq";
const STREAM_VERSION: &str = "SELECT COALESCE(MAX(version), 0) FROM events WHERE stream = $1";
const HEAD: &str = "SELECT seq, hash, recorded_at FROM events ORDER BY seq DESC LIMIT 1";
/// The current version of each of the streams `$1` names (NULL for those
/// without events): one backward step in the `(stream, version)` index each,
/// never the stream's other rows.
const STREAM_VERSIONS: &str = "SELECT s.stream, (SELECT e.version FROM events e \
     WHERE e.stream = s.stream ORDER BY e.version DESC LIMIT 1) \
     FROM UNNEST($1::text[]) AS s (stream)";
/// Which of the keys `$1` names are used already.
const KEYS_USED: &str = "SELECT key FROM idempotency WHERE key = ANY($1)";
/// The idempotency keys of a group, in one statement.
const INSERT_KEYS: &str = "INSERT INTO idempotency (key, request_sha256, first_seq, last_seq) \
     SELECT * FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::bigint[])";
const SELECT_IDEMPOTENCY: &str =
    "SELECT request_sha256, first_seq, last_seq FROM idempotency WHERE key = $1";
const TREE_SIZE: &str = "SELECT COALESCE(MAX(idx) + 1, 0) FROM tree_nodes WHERE level = 0";
const SELECT_NODES: &str = "SELECT level, idx, hash FROM tree_nodes \
     WHERE (level, idx) IN (SELECT * FROM UNNEST($1::smallint[], $2::bigint[]))";
const INSERT_NODES: &str = "INSERT INTO tree_nodes (level, idx, hash) \
     SELECT * FROM UNNEST($1::smallint[], $2::bigint[], $3::bytea[])";
const EVENT_HASHES: &str = "SELECT seq, hash FROM events WHERE seq > $1 ORDER BY seq LIMIT $2";
const DELETE_SNAPSHOTS: &str = "DELETE FROM snapshots WHERE name = $1";
const DELETE_SNAPSHOT_PARTS: &str = "DELETE FROM snapshot_parts WHERE name = $1";
/// Parts of `name` that no complete snapshot other than the one at `seq` owns:
/// what a save interrupted midway left, and an earlier save at the same seq.
const DELETE_STRAY_PARTS: &str = "DELETE FROM snapshot_parts WHERE name = $1 \
     AND (seq = $2 OR seq NOT IN (SELECT seq FROM snapshots WHERE name = $1))";
const DELETE_SNAPSHOT_AT: &str = "DELETE FROM snapshots WHERE name = $1 AND seq = $2";
const INSERT_SNAPSHOT_PART: &str =
    "INSERT INTO snapshot_parts (name, seq, part, data) VALUES ($1, $2, $3, $4)";
const INSERT_SNAPSHOT: &str = "INSERT INTO snapshots (name, seq, hash, schema, taken_at, parts) \
     VALUES ($1, $2, $3, $4, $5, $6)";
const DELETE_OLDER_SNAPSHOTS: &str = "DELETE FROM snapshots WHERE name = $1 AND seq <> $2";
const DELETE_OLDER_PARTS: &str = "DELETE FROM snapshot_parts WHERE name = $1 AND seq <> $2";
const LATEST_SNAPSHOT: &str = "SELECT seq, hash, schema, taken_at, parts FROM snapshots \
     WHERE name = $1 ORDER BY seq DESC LIMIT 1";
const SNAPSHOT_PARTS: &str =
    "SELECT data FROM snapshot_parts WHERE name = $1 AND seq = $2 ORDER BY part";
const SEQ_AT: &str = "SELECT COALESCE((SELECT seq FROM events WHERE recorded_at <= $1 \
     ORDER BY recorded_at DESC, seq DESC LIMIT 1), 0)";

/// Idle read connections kept per store.
const MAX_IDLE_READERS: usize = 16;
/// Rows fetched per round trip when walking the whole log.
const PAGE: i32 = 1_000;

struct Inner {
    /// The URL, password hidden.
    url: String,
    config: Config,
    clock: Clock,
    sender: Queue,
    writer: Mutex<Option<JoinHandle<()>>>,
    follower: Mutex<Option<Follower>>,
    // Idle read connections: a std mutex, held only to push or pop, never across I/O.
    readers: Mutex<Vec<Client>>,
    hooks: Arc<Mutex<Vec<CommitHook>>>,
    head: tokio::sync::watch::Sender<Head>,
}

/// The PostgreSQL event store: cheap to clone, shared by every request.
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("url", &self.inner.url)
            .finish()
    }
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user@host/db`), creates or
    /// migrates the schema and starts the writer.
    ///
    /// # Errors
    /// [`Error::OpenUrl`] for a malformed URL, a refused connection, a database
    /// that is not UTF-8, or a schema newer than this program.
    pub fn open(url: &str, clock: Clock) -> Result<Self> {
        Self::open_with(url, clock, true)
    }

    /// Opens a database that holds a Traguardo log already; an empty database or
    /// another program's is an error and is left untouched.
    ///
    /// # Errors
    /// As [`PgStore::open`], and when there is no event log there.
    pub fn open_existing(url: &str) -> Result<Self> {
        Self::open_with(url, Clock::system(), false)
    }

    fn open_with(url: &str, clock: Clock, create: bool) -> Result<Self> {
        let shown = redact(url);
        let open_error = |message: String| Error::OpenUrl {
            url: shown.clone(),
            message,
        };
        let mut config: Config = url
            .parse()
            .map_err(|e| open_error(format!("not a valid PostgreSQL URL: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(10));
        }
        if config.get_application_name().is_none() {
            config.application_name("traguardo");
        }
        let (client, head) =
            off_runtime(|| prepare_database(&config, create)).map_err(open_error)?;
        let (head_tx, _) = tokio::sync::watch::channel(head);
        let (sender, receiver) = mpsc::channel();
        let hooks: Arc<Mutex<Vec<CommitHook>>> = Arc::default();
        let inner = Arc::new(Inner {
            url: shown.clone(),
            config: config.clone(),
            clock: clock.clone(),
            sender: Mutex::new(Some(sender)),
            writer: Mutex::new(None),
            follower: Mutex::new(None),
            readers: Mutex::new(Vec::new()),
            hooks: hooks.clone(),
            head: head_tx,
        });
        let head_publisher = inner.head.clone();
        let writer = std::thread::Builder::new()
            .name("traguardo-pg-writer".into())
            .spawn(move || {
                Writer {
                    engine: PgWriter {
                        config,
                        connection: Some(client),
                        statements: None,
                        clock,
                        canonical: String::with_capacity(1024),
                    },
                    hooks,
                    head: head_publisher,
                }
                .run(receiver)
            })
            .map_err(|e| open_error(format!("cannot start the writer thread: {e}")))?;
        *inner.writer.lock().unwrap_or_else(|e| e.into_inner()) = Some(writer);
        Ok(PgStore { inner })
    }

    /// The URL of the database, password hidden.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    fn connect(&self) -> Result<Client> {
        Ok(self.inner.config.connect(NoTls)?)
    }

    /// Runs `f` on an idle read connection (or a new one), off any async runtime.
    fn with_reader<T: Send>(&self, f: impl FnOnce(&mut Client) -> Result<T> + Send) -> Result<T> {
        off_runtime(|| {
            let pooled = self
                .inner
                .readers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .pop();
            let mut client = match pooled {
                Some(client) if !client.is_closed() => client,
                _ => self.connect()?,
            };
            let result = f(&mut client);
            if !client.is_closed() {
                let mut readers = self.inner.readers.lock().unwrap_or_else(|e| e.into_inner());
                if readers.len() < MAX_IDLE_READERS {
                    readers.push(client);
                }
            }
            result
        })
    }

    /// Reads the events of `sql` (`$1`, and `$2` bound to `bound` if any).
    fn read_events(
        &self,
        sql: &str,
        first: &(dyn postgres::types::ToSql + Sync),
        bound: Bound,
    ) -> Result<Vec<RecordedEvent>> {
        self.with_reader(|client| {
            let rows = match bound {
                Bound::None => client.query(sql, &[first])?,
                Bound::Int(n) => client.query(sql, &[first, &n])?,
                Bound::Time(t) => client.query(sql, &[first, &t])?,
            };
            rows.iter().map(event_from_row).collect()
        })
    }

    /// Calls `sink` with the rows after `after`, a page at a time, from one
    /// snapshot of the log, until it returns false.
    fn read_pages(&self, after: u64, mut sink: impl FnMut(Vec<Row>) -> bool) -> Result<()> {
        let mut client = self.connect()?;
        let mut tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()?;
        let sql = format!("{SELECT_EVENT} WHERE seq > $1 ORDER BY seq");
        let portal = tx.bind(sql.as_str(), &[&to_i64(after)])?;
        loop {
            let page = tx.query_portal(&portal, PAGE)?;
            if page.is_empty() || !sink(page) {
                return Ok(());
            }
        }
    }

    /// Registers a hook called after every commit with the committed events.
    pub fn on_commit(&self, hook: CommitHook) {
        self.inner
            .hooks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(hook);
    }

    /// Starts the follower: a connection that LISTENs for other processes'
    /// appends and moves the head watch; see [`Store::follow`].
    ///
    /// # Errors
    /// When the follower thread cannot be started.
    pub fn follow(&self) -> Result<tokio::sync::watch::Receiver<Head>> {
        let mut follower = self
            .inner
            .follower
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if follower.is_none() {
            let config = self.inner.config.clone();
            let head = self.inner.head.clone();
            *follower = Some(Follower::start("traguardo-pg-follow", move |stopped| {
                follow(&config, &head, &stopped)
            })?);
        }
        Ok(self.inner.head.subscribe())
    }

    /// Stops accepting appends, lets the writer finish what is queued, and waits
    /// for it; stops following. Later appends fail with [`Error::WriterGone`].
    pub fn shutdown(&self) {
        self.inner
            .sender
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        let writer = self
            .inner
            .writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(writer) = writer {
            let _ = writer.join();
        }
        let follower = self
            .inner
            .follower
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(follower) = follower {
            follower.stop();
        }
    }
}

/// The follower's loop: re-read the head at every notification and every poll,
/// reconnecting when the connection drops.
fn follow(config: &Config, head: &tokio::sync::watch::Sender<Head>, stopped: &mpsc::Receiver<()>) {
    let mut client: Option<Client> = None;
    while !store::told_to_stop(stopped, Duration::ZERO) {
        if client.as_ref().is_none_or(Client::is_closed) {
            client = config
                .connect(NoTls)
                .and_then(|mut c| c.batch_execute(&format!("LISTEN {CHANNEL}")).map(|()| c))
                .inspect_err(|e| tracing::warn!(error = %describe(e), "cannot follow the log"))
                .ok();
        }
        let Some(c) = client.as_mut() else {
            if store::told_to_stop(stopped, store::FOLLOW_POLL) {
                return;
            }
            continue;
        };
        match read_head(c) {
            Ok(now) => store::publish_head(head, now),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the head");
                client = None;
                continue;
            }
        }
        // Wait for a notification, or the poll: then read the head again.
        let woke = {
            let mut notifications = c.notifications();
            let woke = notifications
                .timeout_iter(store::FOLLOW_POLL)
                .next()
                .map_err(|e| describe(&e));
            // Those that came meanwhile say nothing the next read of the head won't.
            while let Ok(Some(_)) = notifications.iter().next() {}
            woke
        };
        if let Err(e) = woke {
            tracing::warn!(error = %e, "lost the notification connection");
            client = None;
        }
    }
}

impl Store for PgStore {
    fn location(&self) -> String {
        self.inner.url.clone()
    }

    fn tree_root(&self, size: u64) -> Result<traguardo_tlog::Hash> {
        self.with_reader(|client| tree::root(&mut PgTree(client), size))
    }

    fn inclusion_proof(&self, seq: u64, size: u64) -> Result<Vec<traguardo_tlog::Hash>> {
        self.with_reader(|client| tree::inclusion_proof(&mut PgTree(client), seq, size))
    }

    fn consistency_proof(&self, from: u64, to: u64) -> Result<Vec<traguardo_tlog::Hash>> {
        self.with_reader(|client| tree::consistency_proof(&mut PgTree(client), from, to))
    }

    fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    fn on_commit(&self, hook: CommitHook) {
        PgStore::on_commit(self, hook)
    }

    fn watch_head(&self) -> tokio::sync::watch::Receiver<Head> {
        self.inner.head.subscribe()
    }

    fn follow(&self) -> Result<tokio::sync::watch::Receiver<Head>> {
        PgStore::follow(self)
    }

    fn append_idempotent(&self, batch: AppendBatch, key: Option<IdempotencyKey>) -> PendingAppend {
        store::submit(&self.inner.sender, batch, key)
    }

    fn head(&self) -> Result<Head> {
        self.with_reader(read_head)
    }

    fn stream_version(&self, stream: &str) -> Result<u64> {
        self.with_reader(|client| {
            let version: i64 = client.query_one(STREAM_VERSION, &[&stream])?.try_get(0)?;
            Ok(version as u64)
        })
    }

    fn read_stream(&self, stream: &str, until: Until) -> Result<Vec<RecordedEvent>> {
        let (clause, bound) = until_clause(until);
        let sql = format!("{SELECT_EVENT} WHERE stream = $1 {clause} ORDER BY version");
        self.read_events(&sql, &stream, bound)
    }

    fn read_streams_with_prefix(&self, prefix: &str, until: Until) -> Result<Vec<RecordedEvent>> {
        let until = match until {
            Until::Version(_) => Until::End,
            other => other,
        };
        let (clause, bound) = until_clause(until);
        // `stream` is COLLATE "C": byte order, which is code point order in UTF-8,
        // so every name with the prefix sorts below the prefix and U+10FFFF.
        let upper = format!("{prefix}\u{10FFFF}");
        let sql = match bound {
            Bound::None => {
                format!("{SELECT_EVENT} WHERE stream >= $1 AND stream < $2 ORDER BY seq")
            }
            _ => format!("{SELECT_EVENT} WHERE stream >= $1 AND stream < $3 {clause} ORDER BY seq"),
        };
        self.with_reader(|client| {
            let rows = match bound {
                Bound::None => client.query(&sql, &[&prefix, &upper])?,
                Bound::Int(n) => client.query(&sql, &[&prefix, &n, &upper])?,
                Bound::Time(t) => client.query(&sql, &[&prefix, &t, &upper])?,
            };
            rows.iter().map(event_from_row).collect()
        })
    }

    fn read_all(&self, after: u64, limit: usize) -> Result<Vec<RecordedEvent>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let sql = format!("{SELECT_EVENT} WHERE seq > $1 ORDER BY seq LIMIT $2");
        self.read_events(&sql, &to_i64(after), Bound::Int(limit))
    }

    fn visit_raw(&self, after: u64, visit: &mut RawVisitor<'_>) -> Result<()> {
        // Each row is decoded and handed over here; whether `visit` broke off.
        let mut feed = |page: Vec<Row>| -> Result<bool> {
            for row in &page {
                let event = envelope_from_row(row, Value::Null)?;
                let data: &str = row.try_get(6)?;
                if visit(event, data).is_break() {
                    return Ok(false);
                }
            }
            Ok(true)
        };
        if !in_runtime() {
            let mut failed = None;
            self.read_pages(after, |page| match feed(page) {
                Ok(go_on) => go_on,
                Err(e) => {
                    failed = Some(e);
                    false
                }
            })?;
            return failed.map_or(Ok(()), Err);
        }
        // On an async worker the client must run on another thread: it reads the
        // pages there and hands them over, one in flight.
        std::thread::scope(|scope| {
            let (pages, received) = mpsc::sync_channel::<Result<Vec<Row>>>(1);
            scope.spawn(move || {
                if let Err(e) = self.read_pages(after, |page| pages.send(Ok(page)).is_ok()) {
                    let _ = pages.send(Err(e));
                }
            });
            for page in received {
                if !feed(page?)? {
                    break;
                }
            }
            Ok(())
        })
    }

    fn seq_at(&self, at: DateTime<Utc>) -> Result<u64> {
        // Record times never decrease along the log (the writer sees to it), so
        // the last event at or before `at` is one index seek.
        self.with_reader(|client| {
            let seq: i64 = client.query_one(SEQ_AT, &[&at])?.try_get(0)?;
            Ok(seq as u64)
        })
    }

    fn idempotent_result(&self, key: &str) -> Result<Option<IdempotentResult>> {
        self.with_reader(|client| {
            let Some(row) = client.query_opt(SELECT_IDEMPOTENCY, &[&key])? else {
                return Ok(None);
            };
            Ok(Some(IdempotentResult {
                request_sha256: row.try_get(0)?,
                first_seq: row.try_get::<_, i64>(1)? as u64,
                last_seq: row.try_get::<_, i64>(2)? as u64,
            }))
        })
    }

    fn verify(&self, expect: &[Head]) -> Result<Verification> {
        let triggers: i64 = self.with_reader(|client| {
            let names: Vec<&str> = TRIGGERS.to_vec();
            Ok(client
                .query_one(
                    "SELECT COUNT(*) FROM pg_trigger WHERE tgrelid = 'events'::regclass \
                     AND tgname = ANY($1) AND tgenabled <> 'D'",
                    &[&names],
                )?
                .try_get(0)?)
        })?;
        let mut check = ChainCheck::new(expect, triggers == TRIGGERS.len() as i64);
        let mut failed = None;
        let walk = || {
            self.read_pages(0, |page| {
                for row in &page {
                    let seq = match row.try_get::<_, i64>(0) {
                        Ok(seq) => seq as u64,
                        Err(e) => {
                            failed = Some(Error::from(e));
                            return false;
                        }
                    };
                    if check.next(seq, event_from_row(row)).is_break() {
                        return false;
                    }
                }
                true
            })
        };
        off_runtime(walk)?;
        match failed {
            Some(e) => Err(e),
            None => Ok(check.finish()),
        }
    }

    fn import_recorded(&self, events: &[RecordedEvent]) -> Result<Head> {
        off_runtime(|| {
            let mut client = self.connect()?;
            let mut tx = client.transaction()?;
            tx.batch_execute(LOCK_LOG)?;
            let mut head = read_head(&mut tx)?;
            store::check_import(&head, events)?;
            let mut rows = Rows::with_capacity(events.len());
            for event in events {
                let mut data = String::with_capacity(512);
                chain::write_canonical_value(&mut data, &event.data);
                rows.seq.push(to_i64(event.seq));
                rows.id.push(event.id);
                rows.stream.push(&event.stream);
                rows.version.push(to_i64(event.version));
                rows.event_type.push(&event.event_type);
                rows.schema.push(i64::from(event.schema));
                rows.data.push(data);
                rows.actor.push(&event.actor);
                rows.role.push(&event.role);
                rows.recorded_at.push(event.recorded_at);
                rows.correlation.push(event.correlation.as_deref());
                rows.prev_hash.push(event.prev_hash.clone());
                rows.hash.push(event.hash.clone());
            }
            rows.insert(&mut tx, INSERT_EVENTS)?;
            if let Some(last) = events.last() {
                head = Head {
                    seq: last.seq,
                    hash: last.hash.clone(),
                };
            }
            if !events.is_empty() {
                tx.execute(
                    "SELECT pg_notify($1, $2)",
                    &[&CHANNEL, &head.seq.to_string()],
                )?;
            }
            tx.commit()?;
            store::publish_head(&self.inner.head, head.clone());
            Ok(head)
        })
    }

    fn shutdown(&self) {
        PgStore::shutdown(self)
    }

    fn save_snapshot(&self, snapshot: &Snapshot) -> Result<()> {
        self.with_reader(|client| {
            let (name, seq) = (&snapshot.name, to_i64(snapshot.seq));
            let mut tx = client.transaction()?;
            tx.execute(DELETE_SNAPSHOT_AT, &[name, &seq])?;
            tx.execute(DELETE_STRAY_PARTS, &[name, &seq])?;
            tx.commit()?;
            // One transaction per part, as on SQLite.
            let mut parts = 0i32;
            for part in snapshot.data.chunks(store::SNAPSHOT_PART_BYTES) {
                client.execute(INSERT_SNAPSHOT_PART, &[name, &seq, &parts, &part])?;
                parts += 1;
            }
            let schema = i32::try_from(snapshot.schema).unwrap_or(i32::MAX);
            let mut tx = client.transaction()?;
            tx.execute(
                INSERT_SNAPSHOT,
                &[
                    name,
                    &seq,
                    &snapshot.hash,
                    &schema,
                    &snapshot.taken_at,
                    &parts,
                ],
            )?;
            tx.execute(DELETE_OLDER_SNAPSHOTS, &[name, &seq])?;
            tx.execute(DELETE_OLDER_PARTS, &[name, &seq])?;
            tx.commit()?;
            Ok(())
        })
    }

    fn latest_snapshot(&self, name: &str) -> Result<Option<Snapshot>> {
        self.with_reader(|client| {
            let Some(row) = client.query_opt(LATEST_SNAPSHOT, &[&name])? else {
                return Ok(None);
            };
            let seq: i64 = row.try_get(0)?;
            let schema: i32 = row.try_get(2)?;
            let parts: i32 = row.try_get(4)?;
            let mut data = Vec::new();
            let mut found = 0i32;
            for part in client.query(SNAPSHOT_PARTS, &[&name, &seq])? {
                data.extend_from_slice(part.try_get::<_, &[u8]>(0)?);
                found += 1;
            }
            if found != parts {
                return Err(Error::Snapshot {
                    name: name.to_string(),
                    seq: seq as u64,
                    message: format!("{found} parts of {parts}"),
                });
            }
            Ok(Some(Snapshot {
                name: name.to_string(),
                seq: seq as u64,
                hash: row.try_get(1)?,
                schema: u32::try_from(schema).unwrap_or(u32::MAX),
                taken_at: row.try_get(3)?,
                data,
            }))
        })
    }

    fn discard_snapshots(&self, name: &str) -> Result<()> {
        self.with_reader(|client| {
            let mut tx = client.transaction()?;
            tx.execute(DELETE_SNAPSHOTS, &[&name])?;
            tx.execute(DELETE_SNAPSHOT_PARTS, &[&name])?;
            tx.commit()?;
            Ok(())
        })
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.sender.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(writer) = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = writer.join();
        }
        if let Some(follower) = self
            .follower
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            follower.stop();
        }
        // A client owns a small runtime, which may not be dropped on an async worker.
        let readers = std::mem::take(&mut *self.readers.lock().unwrap_or_else(|e| e.into_inner()));
        off_runtime(move || drop(readers));
    }
}

/// Up to where a read goes, as the parameter its clause binds.
#[derive(Clone, Copy)]
enum Bound {
    None,
    Int(i64),
    Time(DateTime<Utc>),
}

fn until_clause(until: Until) -> (&'static str, Bound) {
    match until {
        Until::End => ("", Bound::None),
        Until::Version(v) => ("AND version <= $2", Bound::Int(to_i64(v))),
        Until::Seq(s) => ("AND seq <= $2", Bound::Int(to_i64(s))),
        Until::RecordedAt(t) => ("AND recorded_at <= $2", Bound::Time(t)),
    }
}

/// Seqs and versions are BIGINT: beyond `i64::MAX` a bound means "everything".
fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Connects, checks the database, migrates it (or, for `create == false`, checks
/// that it holds a log already) and reads the head.
fn prepare_database(config: &Config, create: bool) -> std::result::Result<(Client, Head), String> {
    let mut client = config.connect(NoTls).map_err(|e| {
        format!(
            "cannot connect: {} (is PostgreSQL running there?)",
            describe(&e)
        )
    })?;
    let pg = |e: postgres::Error| describe(&e);
    let encoding: String = client
        .query_one("SHOW server_encoding", &[])
        .and_then(|r| r.try_get(0))
        .map_err(pg)?;
    if encoding != "UTF8" {
        return Err(format!(
            "the database's encoding is {encoding}; the event log needs UTF8"
        ));
    }
    if !create {
        let exists: bool = client
            .query_one(
                "SELECT to_regclass('events') IS NOT NULL \
                 AND to_regclass('schema_migrations') IS NOT NULL",
                &[],
            )
            .and_then(|r| r.try_get(0))
            .map_err(pg)?;
        if !exists {
            return Err("not a Traguardo database (it holds no event log)".into());
        }
    }
    migrate(&mut client)?;
    catch_up_tree(&mut client).map_err(|e| format!("cannot build the Merkle tree: {e}"))?;
    let head = read_head(&mut client).map_err(|e| e.to_string())?;
    Ok((client, head))
}

/// Applies the migrations the database has not seen, in one transaction, under
/// an advisory lock so that two processes starting together do not both try.
fn migrate(client: &mut Client) -> std::result::Result<(), String> {
    let failed = |e: postgres::Error| format!("schema migration failed: {}", describe(&e));
    let mut tx = client.transaction().map_err(failed)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(failed)?;
    tx.batch_execute(MIGRATIONS_TABLE).map_err(failed)?;
    let current: i32 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            &[],
        )
        .and_then(|r| r.try_get(0))
        .map_err(failed)?;
    let current = usize::try_from(current).unwrap_or(0);
    if current > MIGRATIONS.len() {
        return Err(format!(
            "the schema is at version {current}, newer than this program's {}",
            MIGRATIONS.len()
        ));
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        let version = i32::try_from(i + 1).unwrap_or(i32::MAX);
        tx.batch_execute(sql).map_err(failed)?;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[&version],
        )
        .map_err(failed)?;
    }
    tx.commit().map_err(failed)
}

/// Builds the tree's missing nodes (a log written before the tree existed),
/// under the writers' lock, in one transaction; nothing to do on most opens.
fn catch_up_tree(client: &mut Client) -> Result<()> {
    let mut tx = client.transaction()?;
    let head = read_head(&mut tx)?.seq;
    let stored: i64 = tx.query_one(TREE_SIZE, &[])?.try_get(0)?;
    if stored as u64 == head {
        return Ok(());
    }
    tx.batch_execute(LOCK_LOG)?;
    let head = read_head(&mut tx)?.seq;
    tree::catch_up_at_open(&mut PgTree(&mut tx), head)?;
    tx.commit()?;
    Ok(())
}

/// The Merkle tree's nodes, read and written through one connection or
/// transaction.
struct PgTree<'a, C: postgres::GenericClient>(&'a mut C);

impl<C: postgres::GenericClient> TreeTx for PgTree<'_, C> {
    fn tree_size(&mut self) -> Result<u64> {
        let size: i64 = self.0.query_one(TREE_SIZE, &[])?.try_get(0)?;
        Ok(size as u64)
    }

    fn fetch(
        &mut self,
        keys: &[NodeKey],
    ) -> Result<std::collections::HashMap<NodeKey, traguardo_tlog::Hash>> {
        let levels: Vec<i16> = keys.iter().map(|k| i16::from(k.0)).collect();
        let indexes: Vec<i64> = keys.iter().map(|k| to_i64(k.1)).collect();
        let mut nodes = std::collections::HashMap::with_capacity(keys.len());
        for row in self.0.query(SELECT_NODES, &[&levels, &indexes])? {
            let level: i16 = row.try_get(0)?;
            let idx: i64 = row.try_get(1)?;
            let hash: &[u8] = row.try_get(2)?;
            if let (Ok(level), Ok(hash)) = (u8::try_from(level), <[u8; 32]>::try_from(hash)) {
                nodes.insert((level, idx as u64), hash);
            }
        }
        Ok(nodes)
    }

    fn event_hashes(&mut self, after: u64, limit: usize) -> Result<Vec<(u64, String)>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.0
            .query(EVENT_HASHES, &[&to_i64(after), &limit])?
            .iter()
            .map(|row| Ok((row.try_get::<_, i64>(0)? as u64, row.try_get(1)?)))
            .collect()
    }

    fn insert_nodes(&mut self, nodes: &[traguardo_tlog::merkle::Node]) -> Result<()> {
        let levels: Vec<i16> = nodes.iter().map(|n| i16::from(n.level)).collect();
        let indexes: Vec<i64> = nodes.iter().map(|n| to_i64(n.index)).collect();
        let hashes: Vec<&[u8]> = nodes.iter().map(|n| &n.hash[..]).collect();
        self.0
            .execute(INSERT_NODES, &[&levels, &indexes, &hashes])?;
        Ok(())
    }
}

/// The versions `schema_migrations` records, for tests.
#[cfg(test)]
pub(crate) const MIGRATION_COUNT: usize = MIGRATIONS.len();

fn read_head(client: &mut impl postgres::GenericClient) -> Result<Head> {
    Ok(match client.query_opt(HEAD, &[])? {
        Some(row) => Head {
            seq: row.try_get::<_, i64>(0)? as u64,
            hash: row.try_get(1)?,
        },
        None => Head::genesis(),
    })
}

fn event_from_row(row: &Row) -> Result<RecordedEvent> {
    let data: &str = row.try_get(6)?;
    let data = serde_json::from_str(data).map_err(|e| Error::Corrupt {
        seq: row.try_get::<_, i64>(0).unwrap_or_default() as u64,
        message: format!("data: {e}"),
    })?;
    envelope_from_row(row, data)
}

/// The envelope of a row, with `data` given by the caller.
fn envelope_from_row(row: &Row, data: Value) -> Result<RecordedEvent> {
    let seq = row.try_get::<_, i64>(0)? as u64;
    let schema = u32::try_from(row.try_get::<_, i64>(5)?).map_err(|e| Error::Corrupt {
        seq,
        message: format!("schema: {e}"),
    })?;
    Ok(RecordedEvent {
        seq,
        id: row.try_get(1)?,
        stream: row.try_get(2)?,
        version: row.try_get::<_, i64>(3)? as u64,
        event_type: row.try_get(4)?,
        schema,
        data,
        actor: row.try_get(7)?,
        role: row.try_get(8)?,
        recorded_at: row.try_get(9)?,
        correlation: row.try_get(10)?,
        prev_hash: row.try_get(11)?,
        hash: row.try_get(12)?,
    })
}

/// The writer's prepared statements, valid on the connection that prepared them.
struct Statements {
    insert: Statement,
    stream_versions: Statement,
    keys_used: Statement,
    insert_keys: Statement,
}

/// The PostgreSQL side of group commit: the writer's connection, opened again
/// when it drops.
struct PgWriter {
    config: Config,
    connection: Option<Client>,
    statements: Option<Statements>,
    clock: Clock,
    /// Reused for each event's canonical form.
    canonical: String,
}

impl PgWriter {
    /// The writer's connection and statements, reconnecting if it was lost.
    fn connection(&mut self) -> Result<(&mut Client, &Statements)> {
        if self.connection.as_ref().is_none_or(Client::is_closed) {
            self.statements = None;
            self.connection = Some(self.config.connect(NoTls)?);
        }
        let Some(client) = self.connection.as_mut() else {
            return Err(Error::WriterGone);
        };
        if self.statements.is_none() {
            self.statements = Some(Statements {
                insert: client.prepare(INSERT_EVENTS)?,
                stream_versions: client.prepare(STREAM_VERSIONS)?,
                keys_used: client.prepare(KEYS_USED)?,
                insert_keys: client.prepare(INSERT_KEYS)?,
            });
        }
        match &self.statements {
            Some(statements) => Ok((client, statements)),
            None => Err(Error::WriterGone),
        }
    }
}

impl GroupCommit for PgWriter {
    /// The whole group in a handful of round trips, whatever its size: the lock,
    /// the head, the versions of every stream it names and the keys it uses
    /// (one query each); the checks and the chain in memory; then every event in
    /// one multi-row insert and every key in another. A failure of those inserts
    /// (a bug, or the database failing) is blamed on the first append, so that
    /// the writer retries each append alone and finds the one at fault.
    fn try_commit_group(
        &mut self,
        group: &[Request],
    ) -> std::result::Result<GroupDone, GroupFailure> {
        let whole = |e: postgres::Error| (Error::from(e), None);
        let clock = self.clock.clone();
        let mut canonical = std::mem::take(&mut self.canonical);
        let (client, statements) = self.connection().map_err(|e| (e, None))?;
        let mut tx = client.transaction().map_err(whole)?;
        // Every process's writer queues here; then the head is the last commit's.
        tx.batch_execute(LOCK_LOG).map_err(whole)?;
        let (mut head, last_at) = match tx.query_opt(HEAD, &[]).map_err(whole)? {
            Some(row) => (
                Head {
                    seq: row.try_get::<_, i64>(0).map_err(whole)? as u64,
                    hash: row.try_get(1).map_err(whole)?,
                },
                Some(row.try_get::<_, DateTime<Utc>>(2).map_err(whole)?),
            ),
            None => (Head::genesis(), None),
        };
        // Record time never goes backwards along the log, even if the clock does
        // (an NTP step, another process with a skewed clock).
        let now = match last_at {
            Some(last) => clock.now().max(last),
            None => clock.now(),
        };
        let now_text = format_timestamp(&now);
        let tree_size = head.seq;
        let mut versions = stream_versions(&mut tx, statements, group).map_err(whole)?;
        let mut used = keys_used(&mut tx, statements, group).map_err(whole)?;
        let mut staged = Vec::with_capacity(group.len());
        let mut all = Vec::new();
        let mut rows = Rows::with_capacity(group.iter().map(|r| r.batch.events.len()).sum());
        let mut keys = KeyRows::default();
        let mut id_text = Uuid::encode_buffer();
        for request in group {
            // The checks that may refuse an append, against the versions and
            // keys as the appends before it in the group left them.
            let conflict = request.batch.expectations.iter().find_map(|expectation| {
                let actual = versions
                    .get(expectation.stream.as_str())
                    .copied()
                    .unwrap_or(0);
                (!expectation.expected.matches(actual)).then(|| Error::Conflict {
                    stream: expectation.stream.clone(),
                    expected: expectation.expected.to_string(),
                    actual,
                })
            });
            let refused = conflict.or_else(|| {
                let key = request.idempotency.as_ref()?;
                used.contains(key.key.as_str())
                    .then(|| Error::KeyUsed(key.key.clone()))
            });
            if let Some(refused) = refused {
                staged.push(Staged::Refused(refused));
                continue;
            }
            let start = all.len();
            for new in &request.batch.events {
                let version = versions.entry(new.stream.as_str()).or_insert(0);
                *version += 1;
                let version = *version;
                let seq = head.seq + 1;
                let id = Uuid::now_v7();
                let id_text: &str = id.hyphenated().encode_lower(&mut id_text);
                // The data is kept in its canonical form, rendered once for both.
                let mut data = String::with_capacity(512);
                chain::write_canonical_value(&mut data, &new.data);
                canonical.clear();
                chain::write_canonical_event(
                    &mut canonical,
                    &chain::Fields {
                        actor: &new.actor,
                        correlation: new.correlation.as_deref(),
                        data: &data,
                        id: id_text,
                        recorded_at: &now_text,
                        role: &new.role,
                        schema: new.schema,
                        seq,
                        stream: &new.stream,
                        event_type: &new.event_type,
                        version,
                    },
                )
                .map_err(|e| (Error::from(e), Some(staged.len())))?;
                let hash = chain::hash_canonical(&head.hash, &canonical);
                let prev_hash = std::mem::replace(&mut head.hash, hash.clone());
                head.seq = seq;
                rows.seq.push(to_i64(seq));
                rows.id.push(id);
                rows.stream.push(&new.stream);
                rows.version.push(to_i64(version));
                rows.event_type.push(&new.event_type);
                rows.schema.push(i64::from(new.schema));
                rows.data.push(data);
                rows.actor.push(&new.actor);
                rows.role.push(&new.role);
                rows.recorded_at.push(now);
                rows.correlation.push(new.correlation.as_deref());
                rows.prev_hash.push(prev_hash.clone());
                rows.hash.push(hash.clone());
                // Strings and data move in from the request once committed.
                all.push(RecordedEvent {
                    seq,
                    id,
                    stream: String::new(),
                    version,
                    event_type: String::new(),
                    schema: new.schema,
                    data: Value::Null,
                    actor: String::new(),
                    role: String::new(),
                    recorded_at: now,
                    correlation: None,
                    prev_hash,
                    hash,
                });
            }
            if let (Some(key), Some(first), Some(last)) =
                (&request.idempotency, all.get(start), all.last())
            {
                used.insert(key.key.as_str());
                keys.key.push(&key.key);
                keys.request_sha256.push(&key.request_sha256);
                keys.first_seq.push(to_i64(first.seq));
                keys.last_seq.push(to_i64(last.seq));
            }
            staged.push(Staged::Appended(start..all.len()));
        }
        // Blamed on the first append: see above.
        let blame = |e: postgres::Error| {
            let e = match (group, all.first()) {
                ([request], Some(first)) => match unique_constraint(&e) {
                    Some("idempotency_pkey") => Error::KeyUsed(
                        request
                            .idempotency
                            .as_ref()
                            .map(|k| k.key.clone())
                            .unwrap_or_default(),
                    ),
                    _ => unique_violation_as_conflict(
                        e,
                        &request.batch.events[0].stream,
                        first.version,
                    ),
                },
                _ => Error::Postgres(e),
            };
            (e, Some(0))
        };
        if !all.is_empty() {
            rows.insert(&mut tx, &statements.insert).map_err(blame)?;
            if !keys.key.is_empty() {
                tx.execute(
                    &statements.insert_keys,
                    &[
                        &keys.key,
                        &keys.request_sha256,
                        &keys.first_seq,
                        &keys.last_seq,
                    ],
                )
                .map_err(blame)?;
            }
            // The tree's nodes go in the same transaction. A failure here is the
            // database's: blame the last append, so the group is retried one by one.
            let last = staged.len().saturating_sub(1);
            let mut nodes = PgTree(&mut tx);
            tree::catch_up(&mut nodes, tree_size)
                .and_then(|_| {
                    let leaves = all
                        .iter()
                        .map(|e| tree::leaf(e.seq, &e.hash))
                        .collect::<Result<Vec<_>>>()?;
                    tree::extend(&mut nodes, tree_size, &leaves)
                })
                .map_err(|e| (e, Some(last)))?;
            // Delivered to listeners when the transaction commits, not before.
            tx.execute(
                "SELECT pg_notify($1, $2)",
                &[&CHANNEL, &head.seq.to_string()],
            )
            .map_err(whole)?;
        }
        tx.commit().map_err(whole)?;
        self.canonical = canonical;
        Ok((staged, all))
    }
}

/// The version of every stream a group names, expected or appended to (0 for
/// those without events), in one query.
fn stream_versions<'g>(
    tx: &mut Transaction<'_>,
    statements: &Statements,
    group: &'g [Request],
) -> std::result::Result<std::collections::HashMap<&'g str, u64>, postgres::Error> {
    let mut names: Vec<&str> = group
        .iter()
        .flat_map(|r| {
            r.batch
                .expectations
                .iter()
                .map(|e| e.stream.as_str())
                .chain(r.batch.events.iter().map(|e| e.stream.as_str()))
        })
        .collect();
    names.sort_unstable();
    names.dedup();
    let mut versions = std::collections::HashMap::with_capacity(names.len());
    for row in tx.query(&statements.stream_versions, &[&names])? {
        let stream: &str = row.try_get(0)?;
        let version: Option<i64> = row.try_get(1)?;
        // Keyed by the request's own string, which outlives the row.
        if let (Ok(i), Some(version)) = (names.binary_search(&stream), version) {
            versions.insert(names[i], version as u64);
        }
    }
    Ok(versions)
}

/// Which of the idempotency keys of a group are used already, in one query.
fn keys_used<'g>(
    tx: &mut Transaction<'_>,
    statements: &Statements,
    group: &'g [Request],
) -> std::result::Result<std::collections::HashSet<&'g str>, postgres::Error> {
    let keys: Vec<&str> = group
        .iter()
        .filter_map(|r| r.idempotency.as_ref().map(|k| k.key.as_str()))
        .collect();
    let mut used = std::collections::HashSet::new();
    if keys.is_empty() {
        return Ok(used);
    }
    for row in tx.query(&statements.keys_used, &[&keys])? {
        let key: &str = row.try_get(0)?;
        if let Some(ours) = keys.iter().find(|k| **k == key) {
            used.insert(*ours);
        }
    }
    Ok(used)
}

/// The idempotency keys of a group, column by column, for [`INSERT_KEYS`].
#[derive(Default)]
struct KeyRows<'r> {
    key: Vec<&'r str>,
    request_sha256: Vec<&'r str>,
    first_seq: Vec<i64>,
    last_seq: Vec<i64>,
}

/// The rows of a group (or of an import), column by column, for [`INSERT_EVENTS`].
struct Rows<'r> {
    seq: Vec<i64>,
    id: Vec<Uuid>,
    stream: Vec<&'r str>,
    version: Vec<i64>,
    event_type: Vec<&'r str>,
    schema: Vec<i64>,
    data: Vec<String>,
    actor: Vec<&'r str>,
    role: Vec<&'r str>,
    recorded_at: Vec<DateTime<Utc>>,
    correlation: Vec<Option<&'r str>>,
    prev_hash: Vec<String>,
    hash: Vec<String>,
}

impl Rows<'_> {
    /// Inserts the rows with `statement` ([`INSERT_EVENTS`], prepared or not).
    fn insert<T: postgres::ToStatement + ?Sized>(
        &self,
        tx: &mut Transaction<'_>,
        statement: &T,
    ) -> std::result::Result<u64, postgres::Error> {
        tx.execute(
            statement,
            &[
                &self.seq,
                &self.id,
                &self.stream,
                &self.version,
                &self.event_type,
                &self.schema,
                &self.data,
                &self.actor,
                &self.role,
                &self.recorded_at,
                &self.correlation,
                &self.prev_hash,
                &self.hash,
            ],
        )
    }

    fn with_capacity(n: usize) -> Self {
        Rows {
            seq: Vec::with_capacity(n),
            id: Vec::with_capacity(n),
            stream: Vec::with_capacity(n),
            version: Vec::with_capacity(n),
            event_type: Vec::with_capacity(n),
            schema: Vec::with_capacity(n),
            data: Vec::with_capacity(n),
            actor: Vec::with_capacity(n),
            role: Vec::with_capacity(n),
            recorded_at: Vec::with_capacity(n),
            correlation: Vec::with_capacity(n),
            prev_hash: Vec::with_capacity(n),
            hash: Vec::with_capacity(n),
        }
    }
}

/// The constraint a unique violation broke, told by SQLSTATE 23505 alone.
fn unique_constraint(e: &postgres::Error) -> Option<&str> {
    if e.code() != Some(&SqlState::UNIQUE_VIOLATION) {
        return None;
    }
    e.as_db_error().and_then(|db| db.constraint())
}

/// A `UNIQUE(stream, version)` violation means someone else took the version: a
/// conflict, told apart from other failures by its SQLSTATE and constraint.
fn unique_violation_as_conflict(e: postgres::Error, stream: &str, version: u64) -> Error {
    match unique_constraint(&e) {
        Some("events_stream_version") => Error::Conflict {
            stream: stream.to_string(),
            expected: (version - 1).to_string(),
            actual: version,
        },
        _ => Error::Postgres(e),
    }
}

/// A PostgreSQL error made plain: the server's message and SQLSTATE, or the
/// client's error and its cause (a refused connection, a timeout).
pub(crate) fn describe(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} (SQLSTATE {})", db.message(), db.code().code());
    }
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

/// The URL with its password, if any, replaced by `***`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{user}:***@{host}"),
            None => authority.to_string(),
        },
        None => authority.to_string(),
    };
    // A password may also come as a query parameter.
    let tail = match tail.split_once('?') {
        Some((path, query)) => {
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some(("password", _)) => "password=***".to_string(),
                    _ => pair.to_string(),
                })
                .collect();
            format!("{path}?{}", query.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
}

/// Whether this thread runs inside an async runtime, where the blocking client
/// may not start its own.
fn in_runtime() -> bool {
    tokio::runtime::Handle::try_current().is_ok()
}

/// Runs `f` here, or, inside an async runtime, on a scoped helper thread: the
/// blocking client drives a runtime of its own, which tokio refuses to start
/// (or drop) on a thread that is already in one. The caller still waits.
fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
    if !in_runtime() {
        return f();
    }
    std::thread::scope(|scope| match scope.spawn(f).join() {
        Ok(value) => value,
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn a_password_is_hidden_wherever_the_url_puts_it() {
        assert_eq!(
            redact("postgres://app:s3cret@db.comune.it:5432/traguardo"),
            "postgres://app:***@db.comune.it:5432/traguardo"
        );
        assert_eq!(
            redact("postgresql://app@db/traguardo?sslmode=disable&password=s3cret"),
            "postgresql://app@db/traguardo?sslmode=disable&password=***"
        );
        assert_eq!(redact("postgres://localhost/x"), "postgres://localhost/x");
    }
}
