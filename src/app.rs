//! The application: the store, the in-memory read model kept in step with it, and
//! the use cases (load a plan, run a command, record a revision, issue a token).
//!
//! At start the read model comes from the latest snapshot when the log still
//! holds its head, else from the whole log ([`crate::snapshots`]).
//!
//! Flow: parse → load state from the registry → decide (pure) → append → the
//! store's commit hook folds the new events into the registry before the append
//! returns → answer from the registry.
//!
//! Several processes may share one log (DESIGN.md §10). A server follows it
//! ([`App::follow`]): whenever the head moves past what the registry folded, it
//! reads the rest from the store and folds it, so another process's appends
//! show up here within a second. Every fold, from the hook or the follower,
//! goes through one cursor under the registry's lock: nothing is folded twice,
//! and a gap (another process's events between two of ours) is read from the
//! store, never skipped.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use sha2::{Digest, Sha256};
use traguardo_events::domain::{ObjectiveEvent, OrgEvent, PlanEvent};
use traguardo_events::envelope::Actor;
use traguardo_events::model::{objective_stream, plan_stream, Role, ORG_STREAM};
use traguardo_events::store::{self, IdempotencyKey, Until};
use traguardo_events::{
    AppendBatch, Clock, ExpectedVersion, Head, NewEvent, RecordedEvent, SqliteStore, Store,
};
use traguardo_projections::{Objective, Registry, TokenInfo};
use uuid::Uuid;

use crate::commands::{self, DomainError, ObjectiveCommand, Principal, RevisionRequest};
use crate::error::AppError;
use crate::plan_document::ValidPlan;
use crate::snapshots::{self, Folded, Start, StreamSnapshotStats, StreamSnapshots};
use crate::time_travel::{self, TimeTravelCache};

/// A time-travel answer from memory ([`App::time_travel_cached`]): the
/// objective at the cut (`None` when it did not exist yet) and, when memory
/// tells it, the Italian date the cut is evaluated at.
pub type CachedAnswer = (Option<Objective>, Option<NaiveDate>);

/// The application state: cheap to clone, shared by every request.
#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    model: Arc<ReadModel>,
    bootstrap_sha256: RwLock<Option<String>>,
    /// How the read model was built at start.
    start: Start,
    /// Snapshots taken by this process, and the seq of the latest one (taken or
    /// started from).
    snapshots: SnapshotCounters,
    /// Objective streams already read, for reads at a past seq.
    travel: TimeTravelCache,
}

/// What `/metrics` says about snapshots.
#[derive(Default)]
struct SnapshotCounters {
    taken: AtomicU64,
    latest_seq: AtomicU64,
    /// Taken one at a time: a slow disk must not pile up encodings.
    taking: Mutex<()>,
}

/// The registry and how far it has followed the log.
struct ReadModel {
    // A std lock: held only to read or fold in memory, never across an await.
    registry: RwLock<Registry>,
    /// The chain hash of the last event folded, moved with the cursor under the
    /// registry's write lock: a snapshot names it.
    hash: Mutex<String>,
    /// The last seq folded or found unfoldable: moved only under the registry's
    /// write lock, watched by requests waiting for a seq (`min_seq`).
    folded: tokio::sync::watch::Sender<u64>,
    // The first committed event that could not be folded: the read model has
    // drifted from the log, and `/status` says so until a restart rebuilds it.
    drift: Mutex<Option<String>>,
    // Why the read model cannot follow the log right now (the database does not
    // answer); cleared once it catches up again.
    lagging: Mutex<Option<String>>,
    /// Where the fold hands over objectives whose stream reached a multiple of
    /// N versions, to be stored as stream snapshots in the background.
    stream_snapshots: StreamSnapshots,
}

/// How many events the follower reads and folds at a time.
const FOLLOW_PAGE: usize = 1_000;
/// How often the follower checks the log when nothing wakes it: a database
/// that stopped answering shows on `/status` within this.
const FOLLOW_CHECK: Duration = Duration::from_secs(1);

impl ReadModel {
    /// Folds `events` (in seq order) past the cursor; those at or before it are
    /// skipped. An event that cannot be folded is recorded as drift and passed.
    fn fold(&self, events: &[RecordedEvent]) {
        let mut registry = self.registry.write().unwrap_or_else(|e| e.into_inner());
        let mut cursor = *self.folded.borrow();
        let mut last_hash = None;
        for event in events {
            if event.seq <= cursor {
                continue;
            }
            if event.seq != cursor + 1 {
                // Callers read gaps first; this would be a bug, and it is loud.
                tracing::error!(
                    expected = cursor + 1,
                    got = event.seq,
                    "the read model would skip events"
                );
                self.drifted(format!("seq {} folded after seq {cursor}", event.seq));
            }
            if let Err(e) = registry.apply(event) {
                tracing::error!(error = %e, "cannot fold a committed event");
                self.drifted(e.to_string());
            } else if self.stream_snapshots.due(event) {
                // A copy now, at exactly this version; encoded and written by
                // the snapshot thread, off the append's path.
                let key = event.stream.strip_prefix("objective/").unwrap_or_default();
                if let Some(objective) = registry.objective(key) {
                    self.stream_snapshots.offer(event, objective);
                }
            }
            cursor = event.seq;
            last_hash = Some(&event.hash);
        }
        if let Some(hash) = last_hash {
            hash.clone_into(&mut self.hash.lock().unwrap_or_else(|e| e.into_inner()));
        }
        self.folded.send_if_modified(|folded| {
            let moved = cursor > *folded;
            *folded = cursor.max(*folded);
            moved
        });
    }

    fn cursor(&self) -> u64 {
        *self.folded.borrow()
    }

    fn drifted(&self, problem: String) {
        self.drift
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(problem);
    }

    fn set_lagging(&self, problem: Option<String>) {
        *self.lagging.lock().unwrap_or_else(|e| e.into_inner()) = problem;
    }

    /// Reads from `store` and folds every event after the cursor up to `until`
    /// (inclusive; `u64::MAX` for the whole log).
    fn catch_up(&self, store: &dyn Store, until: u64) -> traguardo_events::Result<()> {
        loop {
            let after = self.cursor();
            if after >= until {
                return Ok(());
            }
            let want = usize::try_from(until - after)
                .unwrap_or(usize::MAX)
                .min(FOLLOW_PAGE);
            let events = store.read_all(after, want)?;
            self.fold(&events);
            if events.len() < want {
                return Ok(());
            }
        }
    }
}

/// How long a token lasts unless its issuer says otherwise.
pub const TOKEN_DEFAULT_DAYS: i64 = 365;
/// The longest a token may last: two years.
pub const TOKEN_MAX_DAYS: i64 = 730;
/// The shortest bootstrap token accepted (DESIGN.md §5): 32 characters.
pub const BOOTSTRAP_MIN_CHARS: usize = 32;

/// Why `token` cannot be a bootstrap token, if it cannot: one line for people.
pub fn bootstrap_problem(token: &str) -> Option<String> {
    let chars = token.chars().count();
    (chars < BOOTSTRAP_MIN_CHARS).then(|| {
        format!(
            "the bootstrap token has {chars} characters, at least {BOOTSTRAP_MIN_CHARS} are needed \
             (e.g. `openssl rand -hex 32`)"
        )
    })
}

/// A token, as asked by an administrator.
#[derive(Debug, Clone)]
pub struct NewToken {
    /// Display name written on the events the token causes.
    pub actor: String,
    /// Stable identity (a username, a codice fiscale); without one, the display
    /// name normalised. Normalised either way.
    pub actor_id: Option<String>,
    /// Role.
    pub role: Role,
    /// For managers, their units: each must be listed by a loaded plan.
    pub units: Vec<String>,
    /// When it stops authenticating; default [`TOKEN_DEFAULT_DAYS`] from now,
    /// at most [`TOKEN_MAX_DAYS`].
    pub expires: Option<DateTime<Utc>>,
}

/// What a write appended, and whether it is the replay of an earlier request with
/// the same idempotency key.
#[derive(Debug, Clone)]
pub struct Written {
    /// The events, in seq order.
    pub events: Vec<RecordedEvent>,
    /// True when nothing was appended because the key was used before.
    pub replayed: bool,
}

impl App {
    /// Opens the log at `db` (a SQLite file, or a `postgres://` URL: see
    /// [`open_store`]), replays it into memory and keeps it in step.
    ///
    /// # Errors
    /// When the database cannot be opened or an event cannot be folded.
    pub fn open(db: impl AsRef<Path>, clock: Clock) -> Result<Self, AppError> {
        let store = open_store(db.as_ref(), clock)?;
        if let Some(dir) = database_dir(db.as_ref()) {
            traguardo_projections::text::keep_in(dir);
        }
        Self::with_store(store)
    }

    /// Builds the application over an open store.
    ///
    /// # Errors
    /// When an event of the log cannot be folded.
    pub fn with_store(store: Arc<dyn Store>) -> Result<Self, AppError> {
        let Folded {
            registry,
            hash,
            start,
        } = snapshots::load(store.as_ref())?;
        let (folded, _) = tokio::sync::watch::channel(registry.last_seq());
        let snapshot_counters = SnapshotCounters::default();
        if let Some(seq) = start.snapshot_seq() {
            snapshot_counters.latest_seq.store(seq, Ordering::Relaxed);
        }
        let model = Arc::new(ReadModel {
            registry: RwLock::new(registry),
            hash: Mutex::new(hash),
            folded,
            drift: Mutex::default(),
            lagging: Mutex::default(),
            stream_snapshots: StreamSnapshots::start(
                Arc::downgrade(&store),
                snapshots::STREAM_SNAPSHOT_EVERY,
            ),
        });
        // Weak: the store keeps its hooks, and must not keep itself alive.
        let reader: Weak<dyn Store> = Arc::downgrade(&store);
        let hooked = model.clone();
        store.on_commit(Arc::new(move |events: &[RecordedEvent]| {
            let Some(first) = events.first() else { return };
            let cursor = hooked.cursor();
            if first.seq > cursor + 1 {
                // Another process appended since our last commit and the
                // follower has not folded it yet: read the gap, then ours.
                let filled = match reader.upgrade() {
                    Some(store) => hooked.catch_up(store.as_ref(), first.seq - 1),
                    None => Err(traguardo_events::Error::WriterGone),
                };
                if let Err(e) = filled {
                    // Folding ours now would skip the gap: leave both to the
                    // follower, which reads them from the store.
                    tracing::warn!(error = %e, "cannot read another process's events yet");
                    hooked.set_lagging(Some(e.to_string()));
                    return;
                }
            }
            hooked.fold(events);
        }));
        Ok(App {
            inner: Arc::new(Inner {
                store,
                model,
                bootstrap_sha256: RwLock::new(None),
                start,
                snapshots: snapshot_counters,
                travel: TimeTravelCache::new(time_travel::DEFAULT_BUDGET_BYTES),
            }),
        })
    }

    /// Follows the log in a background task (until it is aborted): whatever
    /// other processes append is folded within a second, and when the log
    /// cannot be read [`App::health`] says so until it can again.
    ///
    /// # Errors
    /// When the store cannot start following.
    pub fn follow(&self) -> Result<tokio::task::JoinHandle<()>, AppError> {
        let mut head = self.inner.store.follow()?;
        let app = self.clone();
        Ok(tokio::spawn(async move {
            loop {
                let caught_up = {
                    let app = app.clone();
                    tokio::task::spawn_blocking(move || {
                        app.inner.model.catch_up(app.inner.store.as_ref(), u64::MAX)
                    })
                    .await
                };
                let problem = match caught_up {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(e.to_string()),
                    Err(e) => Some(format!("the follower failed: {e}")),
                };
                if let Some(problem) = &problem {
                    tracing::warn!(%problem, "the read model cannot follow the log");
                }
                app.inner.model.set_lagging(problem);
                // Wait until the head moves past what is folded (our own commits
                // are folded by the hook already), or for the next check.
                let _ = tokio::time::timeout(FOLLOW_CHECK, async {
                    loop {
                        if head.changed().await.is_err() {
                            // The store is gone: only the periodic check is left.
                            std::future::pending::<()>().await;
                        }
                        if head.borrow_and_update().seq > app.inner.model.cursor() {
                            return;
                        }
                    }
                })
                .await;
            }
        }))
    }

    /// The last seq the read model has folded.
    pub fn folded_seq(&self) -> u64 {
        self.inner.model.cursor()
    }

    /// How the read model was built at start: from a snapshot, from the whole
    /// log, or from the whole log after refusing a snapshot.
    pub fn start(&self) -> &Start {
        &self.inner.start
    }

    /// Snapshots this process took, and the seq of the latest one it took or
    /// started from (0: none).
    pub fn snapshot_counts(&self) -> (u64, u64) {
        let counters = &self.inner.snapshots;
        (
            counters.taken.load(Ordering::Relaxed),
            counters.latest_seq.load(Ordering::Relaxed),
        )
    }

    /// Stores a snapshot of the read model as it is now and answers its seq;
    /// `None` when there is nothing to snapshot (an empty log), when the read
    /// model has drifted from the log, or when another snapshot is being taken.
    /// The registry is encoded under its read lock (appends wait for the
    /// encoding, not for the disk); the bytes are written after the lock is
    /// released, in parts that are each a transaction of their own. Blocks: call it from a
    /// blocking thread.
    ///
    /// # Errors
    /// When the snapshot cannot be encoded or written.
    pub fn take_snapshot(&self) -> Result<Option<u64>, AppError> {
        let counters = &self.inner.snapshots;
        let Ok(_one_at_a_time) = counters.taking.try_lock() else {
            return Ok(None);
        };
        if self.health().is_err() {
            return Ok(None);
        }
        let model = &self.inner.model;
        let taken = {
            let registry = model.registry.read().unwrap_or_else(|e| e.into_inner());
            let seq = registry.last_seq();
            if seq == 0 || seq != model.cursor() {
                return Ok(None);
            }
            let hash = model.hash.lock().unwrap_or_else(|e| e.into_inner()).clone();
            snapshots::encode(&registry, &hash, self.inner.store.clock().now())?
        };
        self.inner.store.save_snapshot(&taken)?;
        counters.taken.fetch_add(1, Ordering::Relaxed);
        counters.latest_seq.store(taken.seq, Ordering::Relaxed);
        tracing::info!(
            seq = taken.seq,
            bytes = taken.data.len(),
            "snapshot of the read model taken"
        );
        Ok(Some(taken.seq))
    }

    /// Takes a snapshot in the background whenever the read model has folded
    /// `every` events since the latest one, until the task is aborted. A failed
    /// snapshot is logged and tried again after the next `every` events.
    pub fn snapshot_every(&self, every: u64) -> tokio::task::JoinHandle<()> {
        let app = self.clone();
        let every = every.max(1);
        tokio::spawn(async move {
            let mut folded = app.inner.model.folded.subscribe();
            let mut last = app.inner.snapshots.latest_seq.load(Ordering::Relaxed);
            loop {
                if folded.wait_for(|seq| *seq >= last + every).await.is_err() {
                    return;
                }
                let taker = app.clone();
                match tokio::task::spawn_blocking(move || taker.take_snapshot()).await {
                    Ok(Ok(Some(seq))) => last = seq,
                    Ok(Ok(None)) => last = app.folded_seq(),
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "cannot take a snapshot");
                        last = app.folded_seq();
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "the snapshot task failed");
                        last = app.folded_seq();
                    }
                }
            }
        })
    }

    /// Waits until the read model has folded seq `seq`, at most `timeout`;
    /// whether it has.
    pub async fn wait_for_seq(&self, seq: u64, timeout: Duration) -> bool {
        let mut folded = self.inner.model.folded.subscribe();
        tokio::time::timeout(timeout, folded.wait_for(|folded| *folded >= seq))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Whether the in-memory read model mirrors the log and follows it.
    ///
    /// # Errors
    /// The first event that could not be folded since start, or why the log
    /// cannot be followed right now.
    pub fn health(&self) -> Result<(), String> {
        let model = &self.inner.model;
        if let Some(problem) = model
            .drift
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            return Err(format!("the read model is behind the log: {problem}"));
        }
        match model
            .lagging
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            Some(problem) => Err(format!("the read model cannot follow the log: {problem}")),
            None => Ok(()),
        }
    }

    /// The event store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// Today's date in Italy by the store's clock: no valid date may be later.
    pub fn today(&self) -> NaiveDate {
        self.inner.store.clock().today()
    }

    /// Reads the registry under its lock.
    pub fn read<T>(&self, f: impl FnOnce(&Registry) -> T) -> T {
        f(&self
            .inner
            .model
            .registry
            .read()
            .unwrap_or_else(|e| e.into_inner()))
    }

    /// Accepts `token` as an admin token for this process (not stored anywhere),
    /// as long as no admin token of the log authenticates: the bootstrap token
    /// is for issuing the first one. `traguardo serve` refuses one shorter than
    /// [`BOOTSTRAP_MIN_CHARS`] ([`bootstrap_problem`]).
    pub fn set_bootstrap_token(&self, token: &str) {
        *self
            .inner
            .bootstrap_sha256
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Some(sha256_hex(token));
    }

    /// The principal holding `token`, if it authenticates now: a token of the
    /// log that is neither revoked nor expired, or the bootstrap token while no
    /// admin token of the log authenticates.
    pub fn authenticate(&self, token: &str) -> Option<Principal> {
        let digest = sha256_hex(token);
        let now = self.inner.store.clock().now();
        let bootstrap = self
            .inner
            .bootstrap_sha256
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if bootstrap.as_deref() == Some(digest.as_str()) {
            if self.read(|r| r.has_admin_token(now)) {
                return None;
            }
            return Some(Principal::new("admin", Role::Admin, Vec::new()));
        }
        self.read(|r| {
            r.token(&digest)
                .filter(|t| t.valid_at(now))
                .map(|t| Principal {
                    name: t.actor.clone(),
                    actor_id: t.actor_id.clone(),
                    role: t.role,
                    units: t.units.clone(),
                })
        })
    }

    /// Loads a validated plan: the plan event and every objective, in one batch.
    ///
    /// # Errors
    /// [`DomainError::NotAdmin`] for a non-admin, [`AppError::Conflict`] when the
    /// year is loaded already.
    pub async fn import_plan(
        &self,
        plan: &ValidPlan,
        principal: &Principal,
    ) -> Result<Vec<RecordedEvent>, AppError> {
        principal.require_admin("caricare un piano")?;
        let batch = plan_batch(plan, &principal.actor(), None)?;
        match self.inner.store.append_async(batch).await {
            Err(traguardo_events::Error::Conflict { .. }) => Err(AppError::Conflict(format!(
                "the plan for {} is already loaded",
                plan.year
            ))),
            other => Ok(other?),
        }
    }

    /// Runs a command on objective `key`.
    ///
    /// # Errors
    /// [`AppError::NotFound`] for an unknown objective, [`AppError::PreconditionFailed`]
    /// for a stale `if_match`, [`AppError::IdempotencyMismatch`] for a key reused
    /// with another request, and whatever [`commands::decide`] refuses.
    pub async fn execute(
        &self,
        key: &str,
        command: &ObjectiveCommand,
        principal: &Principal,
        if_match: Option<u64>,
        idempotency: Option<IdempotencyKey>,
    ) -> Result<Written, AppError> {
        if let Some(done) = self.replay_off_runtime(idempotency.as_ref()).await? {
            return Ok(done);
        }
        let attempt = self
            .execute_once(key, command, principal, if_match, idempotency.clone())
            .await;
        self.key_wins(attempt, idempotency.as_ref()).await
    }

    async fn execute_once(
        &self,
        key: &str,
        command: &ObjectiveCommand,
        principal: &Principal,
        if_match: Option<u64>,
        idempotency: Option<IdempotencyKey>,
    ) -> Result<Written, AppError> {
        let today = self.today();
        let (version, events) = self.read(|r| {
            let objective = r
                .objective(key)
                .ok_or_else(|| DomainError::UnknownObjective {
                    key: key.to_string(),
                })?;
            if let Some(expected) = if_match.filter(|v| *v != objective.version()) {
                return Err(AppError::PreconditionFailed {
                    expected,
                    actual: objective.version(),
                });
            }
            Ok((
                objective.version(),
                commands::decide_in_year(r, objective, command, principal, today)?,
            ))
        })?;
        let stream = objective_stream(key);
        let actor = principal.actor();
        let correlation = Some(Uuid::now_v7().to_string());
        let batch = AppendBatch::new().expect(&stream, ExpectedVersion::Exact(version));
        let batch = push_events(batch, &stream, &events, &actor, &correlation)?;
        self.append(batch, idempotency).await
    }

    /// Records a revision of plan `year`, all its changes in one batch.
    ///
    /// # Errors
    /// As [`commands::decide_revision`], and [`AppError::Conflict`] when another
    /// write touched the same plan or objectives first.
    pub async fn revise(
        &self,
        year: i32,
        request: &RevisionRequest,
        principal: &Principal,
        idempotency: Option<IdempotencyKey>,
    ) -> Result<Written, AppError> {
        if let Some(done) = self.replay_off_runtime(idempotency.as_ref()).await? {
            return Ok(done);
        }
        let attempt = self
            .revise_once(year, request, principal, idempotency.clone())
            .await;
        self.key_wins(attempt, idempotency.as_ref()).await
    }

    async fn revise_once(
        &self,
        year: i32,
        request: &RevisionRequest,
        principal: &Principal,
        idempotency: Option<IdempotencyKey>,
    ) -> Result<Written, AppError> {
        let today = self.today();
        let id = Uuid::now_v7();
        let decision =
            self.read(|r| commands::decide_revision(r, year, request, principal, today, id))?;
        let actor = principal.actor();
        let correlation = Some(id.to_string());
        let plan = plan_stream(year);
        let batch = AppendBatch::new().expect(&plan, ExpectedVersion::Exact(decision.plan_version));
        let mut batch = push_events(
            batch,
            &plan,
            std::slice::from_ref(&decision.plan_event),
            &actor,
            &correlation,
        )?;
        for (key, version, events) in &decision.objectives {
            let stream = objective_stream(key);
            let expected = version.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
            batch = push_events(
                batch.expect(&stream, expected),
                &stream,
                events,
                &actor,
                &correlation,
            )?;
        }
        self.append(batch, idempotency).await
    }

    /// Records the Nucleo's acknowledgement of red flag `flag` of plan `year`.
    ///
    /// # Errors
    /// As [`commands::flags::decide_acknowledgement`], [`DomainError::UnknownPlan`]
    /// for an unknown plan, and [`AppError::Conflict`] when the plan moved meanwhile.
    pub async fn acknowledge_flag(
        &self,
        year: i32,
        flag: &str,
        note: &str,
        principal: &Principal,
        idempotency: Option<IdempotencyKey>,
    ) -> Result<Written, AppError> {
        if let Some(done) = self.replay_off_runtime(idempotency.as_ref()).await? {
            return Ok(done);
        }
        let attempt = self
            .acknowledge_once(year, flag, note, principal, idempotency.clone())
            .await;
        self.key_wins(attempt, idempotency.as_ref()).await
    }

    async fn acknowledge_once(
        &self,
        year: i32,
        flag: &str,
        note: &str,
        principal: &Principal,
        idempotency: Option<IdempotencyKey>,
    ) -> Result<Written, AppError> {
        let version = self
            .read(|r| r.plan(year).map(|p| p.version))
            .ok_or(DomainError::UnknownPlan { year })?;
        let app = self.clone();
        let events = tokio::task::spawn_blocking(move || app.year_events(year, Until::End))
            .await
            .map_err(|e| AppError::Internal(format!("flags: {e}")))??;
        let flags = traguardo_projections::flags::red_flags(
            &events,
            &traguardo_projections::flags::FlagSettings::default(),
        )?;
        let event = commands::flags::decide_acknowledgement(&flags, year, flag, note, principal)?;
        let stream = plan_stream(year);
        let batch = AppendBatch::new().expect(&stream, ExpectedVersion::Exact(version));
        let batch = push_events(
            batch,
            &stream,
            &[event],
            &principal.actor(),
            &Some(Uuid::now_v7().to_string()),
        )?;
        self.append(batch, idempotency).await
    }

    /// Issues a bearer token for `actor` with its identity derived from the name
    /// and the default lifetime: [`App::issue`] with only these.
    ///
    /// # Errors
    /// As [`App::issue`].
    pub async fn issue_token(
        &self,
        actor: &str,
        role: Role,
        units: Vec<String>,
        principal: &Principal,
    ) -> Result<(String, TokenInfo), AppError> {
        let request = NewToken {
            actor: actor.to_string(),
            actor_id: None,
            role,
            units,
            expires: None,
        };
        self.issue(request, principal).await
    }

    /// Issues a bearer token; returns the secret (shown once) and what it allows.
    ///
    /// # Errors
    /// [`DomainError::NotAdmin`] for a non-admin, [`AppError::Invalid`] naming every
    /// bad field: an empty actor or actor id, a manager without units, units that
    /// no loaded plan lists, an expiry in the past or beyond
    /// [`TOKEN_MAX_DAYS`].
    pub async fn issue(
        &self,
        request: NewToken,
        principal: &Principal,
    ) -> Result<(String, TokenInfo), AppError> {
        use crate::error::FieldError;
        principal.require_admin("emettere token")?;
        let NewToken {
            actor,
            actor_id,
            role,
            units,
            expires,
        } = request;
        let mut errors = Vec::new();
        let actor = actor.trim().to_string();
        if actor.is_empty() {
            errors.push(FieldError::new("actor", "il nome è obbligatorio"));
        }
        errors.extend(commands::limits::text(
            "actor",
            &actor,
            commands::limits::NAME_CHARS,
        ));
        let actor_id = match actor_id {
            Some(id) => traguardo_events::identity::actor_id_of(&id),
            None => traguardo_events::identity::actor_id_of(&actor),
        };
        if actor_id.is_empty() && !actor.is_empty() {
            errors.push(FieldError::new(
                "actor_id",
                "l'identificativo non può essere vuoto",
            ));
        }
        errors.extend(commands::limits::text(
            "actor_id",
            &actor_id,
            commands::limits::NAME_CHARS,
        ));
        let units: Vec<String> = units
            .into_iter()
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty())
            .collect();
        errors.extend(commands::limits::list("units", &units));
        if role == Role::Manager && units.is_empty() {
            errors.push(FieldError::new(
                "units",
                "un dirigente ha almeno un'unità organizzativa",
            ));
        }
        if role != Role::Manager && !units.is_empty() {
            errors.push(FieldError::new(
                "units",
                "solo i dirigenti sono legati a unità organizzative",
            ));
        }
        let unknown = self.read(|r| {
            units
                .iter()
                .filter(|u| !r.plans().any(|p| p.unit(u).is_some()))
                .cloned()
                .collect::<Vec<_>>()
        });
        if !unknown.is_empty() && units.len() <= commands::limits::LIST_ITEMS {
            errors.push(FieldError::new(
                "units",
                format!(
                    "unità che nessun piano caricato elenca: {}",
                    unknown.join(", ")
                ),
            ));
        }
        let now = self.inner.store.clock().now();
        let longest = now + chrono::Duration::days(TOKEN_MAX_DAYS);
        let expires = expires.unwrap_or(now + chrono::Duration::days(TOKEN_DEFAULT_DAYS));
        if expires <= now {
            errors.push(FieldError::new(
                "expires",
                "la scadenza deve essere nel futuro",
            ));
        } else if expires > longest {
            errors.push(FieldError::new(
                "expires",
                format!("un token dura al massimo {TOKEN_MAX_DAYS} giorni"),
            ));
        }
        if !errors.is_empty() {
            return Err(AppError::Invalid(errors));
        }
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(AppError::Randomness)?;
        let token = format!("tg_{}", hex::encode(secret));
        let token_id = Uuid::now_v7();
        let event = OrgEvent::TokenIssued {
            token_id,
            token_sha256: sha256_hex(&token),
            actor: actor.clone(),
            role,
            units: units.clone(),
            actor_id: Some(actor_id.clone()),
            expires: Some(expires),
        };
        let batch = AppendBatch::new().push(NewEvent::from_domain(
            ORG_STREAM,
            &event,
            &principal.actor(),
            None,
        )?);
        let appended = self.inner.store.append_async(batch).await?;
        let issued = appended.first().map_or(now, |e| e.recorded_at);
        let info = TokenInfo {
            token_id,
            actor,
            actor_id,
            role,
            units,
            issued,
            expires,
            revoked: None,
        };
        Ok((token, info))
    }

    /// An objective as the log held it up to `until` (record time), read from the
    /// store; `None` when it did not exist then.
    ///
    /// # Errors
    /// When the store cannot be read or the stream cannot be folded.
    pub fn objective_as_of(&self, key: &str, until: Until) -> Result<Option<Objective>, AppError> {
        if let Some(answer) = self.inner.travel.cached(key, until) {
            return answer;
        }
        let until = self.as_seq(until)?;
        if let Until::Seq(seq) = until {
            // Everything the read model folded is committed: visible to a read.
            let head = self.inner.model.cursor();
            return self
                .inner
                .travel
                .objective_at(self.inner.store.as_ref(), key, seq, head);
        }
        let events = self
            .inner
            .store
            .read_stream(&objective_stream(key), until)?;
        Ok(Objective::from_events(&events)?)
    }

    /// Time travel from memory alone, without reading the store (so on any
    /// thread): objective `key` at a record-time cut, and the date it is
    /// evaluated at when memory tells it (DESIGN.md §4: the Italian date of
    /// the cut's record time; for a seq, known once the read model has folded
    /// it, [`Registry::day_of`]). `None` when the store must be read: then
    /// [`App::time_travel`].
    pub fn time_travel_cached(
        &self,
        key: &str,
        cut: Until,
    ) -> Option<Result<CachedAnswer, AppError>> {
        let answer = self.inner.travel.cached(key, cut)?;
        Some(answer.map(|objective| {
            let date = match cut {
                Until::RecordedAt(t) => Some(traguardo_events::clock::local_date(&t)),
                Until::Seq(seq) => self.read(|r| r.day_of(seq)),
                Until::End | Until::Version(_) => None,
            };
            (objective, date)
        }))
    }

    /// Objective `key` at a record-time cut and the date it is evaluated at:
    /// `at` when given, else the Italian date of the cut's record time.
    ///
    /// # Errors
    /// When the store cannot be read or the stream cannot be folded.
    pub fn time_travel(
        &self,
        key: &str,
        cut: Until,
        at: Option<NaiveDate>,
    ) -> Result<(Option<Objective>, NaiveDate), AppError> {
        let objective = self.objective_as_of(key, cut)?;
        let at = match at {
            Some(at) => at,
            None => self.cut_date(cut)?,
        };
        Ok((objective, at))
    }

    /// The Italian date of a cut's record time (today for a seq past the head,
    /// or without a cut). For a seq the read model has folded past, from the
    /// days it has noted ([`Registry::day_of`]), else from the store.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub fn cut_date(&self, cut: Until) -> Result<NaiveDate, AppError> {
        Ok(match cut {
            Until::RecordedAt(t) => traguardo_events::clock::local_date(&t),
            Until::Seq(seq) => match self.read(|r| r.day_of(seq)) {
                Some(day) => day,
                None => {
                    self.inner.travel.note_date_read();
                    self.recorded_at(seq)?
                        .map_or_else(|| self.today(), |t| traguardo_events::clock::local_date(&t))
                }
            },
            Until::End | Until::Version(_) => self.today(),
        })
    }

    /// Writes a stream snapshot of an objective every `every` versions of its
    /// stream from now on (0: none; [`snapshots::STREAM_SNAPSHOT_EVERY`] until
    /// set).
    pub fn set_stream_snapshot_every(&self, every: u64) {
        self.inner.model.stream_snapshots.set_every(every);
    }

    /// Waits, at most `timeout`, until every stream snapshot handed over so far
    /// is written (or lost); whether it was.
    pub fn flush_stream_snapshots(&self, timeout: Duration) -> bool {
        self.inner.model.stream_snapshots.flush(timeout)
    }

    /// Stream snapshots written, dropped and failed so far.
    #[must_use]
    pub fn stream_snapshot_stats(&self) -> StreamSnapshotStats {
        self.inner.model.stream_snapshots.stats()
    }

    /// Bounds the memory of the cache behind [`App::objective_as_of`] to
    /// `bytes` (estimated; [`time_travel::DEFAULT_BUDGET_BYTES`] until set),
    /// evicting what no longer fits. 0 turns it off.
    pub fn set_time_travel_budget(&self, bytes: usize) {
        self.inner.travel.set_budget(bytes);
    }

    /// What the cache behind [`App::objective_as_of`] did so far and holds now.
    #[must_use]
    pub fn time_travel_stats(&self) -> time_travel::CacheStats {
        self.inner.travel.stats()
    }

    /// Every event of objective `key`'s stream, oldest first.
    ///
    /// # Errors
    /// [`AppError::NotFound`] when there is no such objective.
    pub fn objective_events(&self, key: &str) -> Result<Vec<RecordedEvent>, AppError> {
        let events = self
            .inner
            .store
            .read_stream(&objective_stream(key), Until::End)?;
        if events.is_empty() {
            return Err(DomainError::UnknownObjective {
                key: key.to_string(),
            }
            .into());
        }
        Ok(events)
    }

    /// The registry of one plan year as the log held it up to `until`.
    ///
    /// # Errors
    /// When the store cannot be read or an event cannot be folded.
    pub fn registry_as_of(&self, year: i32, until: Until) -> Result<Registry, AppError> {
        let events = self.year_events(year, until)?;
        Ok(Registry::of_selection(&events)?)
    }

    /// The events of one plan year (its plan stream and every objective stream of
    /// the year) up to `until`, in seq order.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub fn year_events(&self, year: i32, until: Until) -> Result<Vec<RecordedEvent>, AppError> {
        let until = self.as_seq(until)?;
        let store = &self.inner.store;
        let mut events = store.read_stream(&plan_stream(year), until)?;
        events.extend(store.read_streams_with_prefix(&format!("objective/{year}-"), until)?);
        events.sort_by_key(|e| e.seq);
        Ok(events)
    }

    /// A record-time cut as the seq it amounts to: record times never decrease
    /// along the log, so this is one index seek, and the reads after it filter on
    /// the `(stream, version)` index instead of every row's time.
    /// The record time of the event with seq `seq`, if there is one.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub fn recorded_at(&self, seq: u64) -> Result<Option<DateTime<Utc>>, AppError> {
        Ok(self.event_at(seq)?.map(|e| e.recorded_at))
    }

    /// The head of the log at a cut: the last event up to `until` (the genesis
    /// head before any). A report or a list of flags names the head it was
    /// computed from.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub fn head_at(&self, until: Until) -> Result<Head, AppError> {
        let head = self.inner.store.head()?;
        let seq = match self.as_seq(until)? {
            Until::Seq(seq) => seq.min(head.seq),
            Until::End | Until::Version(_) | Until::RecordedAt(_) => return Ok(head),
        };
        Ok(self.event_at(seq)?.map_or_else(Head::genesis, |e| Head {
            seq: e.seq,
            hash: e.hash,
        }))
    }

    fn event_at(&self, seq: u64) -> Result<Option<RecordedEvent>, AppError> {
        if seq == 0 {
            return Ok(None);
        }
        Ok(self
            .inner
            .store
            .read_all(seq - 1, 1)?
            .into_iter()
            .next()
            .filter(|e| e.seq == seq))
    }

    fn as_seq(&self, until: Until) -> Result<Until, AppError> {
        Ok(match until {
            Until::RecordedAt(at) => Until::Seq(self.inner.store.seq_at(at)?),
            other => other,
        })
    }

    /// The key wins over the version: a write that failed (a stale `If-Match`,
    /// a version conflict, a rule its own first attempt made true, such as "the
    /// phase is completed already") while a retry with the same idempotency key
    /// committed is answered as that first attempt was. Concurrent retries of one
    /// request therefore all get the first answer, never a 409 or 412.
    async fn key_wins(
        &self,
        attempt: Result<Written, AppError>,
        key: Option<&IdempotencyKey>,
    ) -> Result<Written, AppError> {
        match attempt {
            Err(refused)
                if key.is_some() && !matches!(refused, AppError::IdempotencyMismatch(_)) =>
            {
                match self.replay_off_runtime(key).await? {
                    Some(first) => Ok(first),
                    None => Err(refused),
                }
            }
            other => other,
        }
    }

    /// `App::replay` on a blocking thread: it reads the store.
    /// The first answer of a write that committed with idempotency key `key`,
    /// if one did: the key wins over any later check (a stale `If-Match`, a
    /// version moved by that very write).
    ///
    /// # Errors
    /// When the store cannot be read, or the key was used with another request
    /// or identity.
    pub async fn idempotent_answer(
        &self,
        key: Option<&IdempotencyKey>,
    ) -> Result<Option<Written>, AppError> {
        self.replay_off_runtime(key).await
    }

    async fn replay_off_runtime(
        &self,
        key: Option<&IdempotencyKey>,
    ) -> Result<Option<Written>, AppError> {
        let Some(key) = key.cloned() else {
            return Ok(None);
        };
        let app = self.clone();
        tokio::task::spawn_blocking(move || app.replay(Some(&key)))
            .await
            .map_err(|e| AppError::Internal(format!("idempotency lookup: {e}")))?
    }

    fn replay(&self, key: Option<&IdempotencyKey>) -> Result<Option<Written>, AppError> {
        let Some(key) = key else { return Ok(None) };
        let Some(first) = self.inner.store.idempotent_result(&key.key)? else {
            return Ok(None);
        };
        if first.request_sha256 != key.request_sha256 {
            let identity = |hashes: &str| hashes.split_once('.').map(|(who, _)| who.to_string());
            if identity(&first.request_sha256) != identity(&key.request_sha256) {
                return Err(AppError::IdempotencyMismatch(
                    "questa Idempotency-Key è stata usata da un'altra identità: \
                     ogni richiesta ne usa una nuova"
                        .into(),
                ));
            }
            return Err(AppError::IdempotencyMismatch(
                "this Idempotency-Key was used with a different request".into(),
            ));
        }
        let count = (first.last_seq + 1 - first.first_seq) as usize;
        let events = self.inner.store.read_all(first.first_seq - 1, count)?;
        Ok(Some(Written {
            events,
            replayed: true,
        }))
    }

    async fn append(
        &self,
        batch: AppendBatch,
        idempotency: Option<IdempotencyKey>,
    ) -> Result<Written, AppError> {
        match self
            .inner
            .store
            .append_idempotent(batch, idempotency.clone())
            .await
        {
            Ok(events) => Ok(Written {
                events,
                replayed: false,
            }),
            // Two retries raced: the other one committed; answer as it did.
            Err(traguardo_events::Error::KeyUsed(_)) => Ok(self
                .replay(idempotency.as_ref())?
                .ok_or_else(|| AppError::Conflict("idempotency key in use".into()))?),
            Err(e) => Err(e.into()),
        }
    }
}

/// The events that load a plan: `plan_defined`, then each `objective_defined`, with
/// every stream required to be new.
///
/// # Errors
/// Only if an event cannot be encoded.
pub fn plan_batch(
    plan: &ValidPlan,
    actor: &Actor,
    correlation: Option<String>,
) -> Result<AppendBatch, AppError> {
    let stream = plan_stream(plan.year);
    let defined = PlanEvent::PlanDefined {
        year: plan.year,
        organisation: plan.organisation.clone(),
        title: plan.title.clone(),
        units: plan.units.clone(),
        objectives: plan.objectives.iter().map(|o| o.key()).collect(),
    };
    let mut batch = AppendBatch::new()
        .expect(&stream, ExpectedVersion::NoStream)
        .push(NewEvent::from_domain(
            &stream,
            &defined,
            actor,
            correlation.clone(),
        )?);
    for objective in &plan.objectives {
        let stream = objective_stream(&objective.key());
        let event = ObjectiveEvent::ObjectiveDefined {
            objective: Box::new(objective.clone()),
            revision: None,
        };
        batch = batch
            .expect(&stream, ExpectedVersion::NoStream)
            .push(NewEvent::from_domain(
                &stream,
                &event,
                actor,
                correlation.clone(),
            )?);
    }
    Ok(batch)
}

/// Opens the log named by `db`: a `postgres://` (or `postgresql://`) URL opens
/// PostgreSQL, anything else is a SQLite file, created if missing.
///
/// # Errors
/// When the database cannot be opened (the message names it, password hidden).
pub fn open_store(db: &Path, clock: Clock) -> Result<Arc<dyn Store>, AppError> {
    Ok(match postgres_url(db) {
        Some(url) => store::open(url, clock)?,
        None => Arc::new(SqliteStore::open(db, clock)?),
    })
}

/// Like [`open_store`], but the log must exist already (for reading commands):
/// a missing file or a database without a log is an error, left untouched.
///
/// # Errors
/// When there is no Traguardo log there.
pub fn open_existing_store(db: &Path) -> Result<Arc<dyn Store>, AppError> {
    Ok(match postgres_url(db) {
        Some(url) => store::open_existing(url)?,
        None => Arc::new(SqliteStore::open_existing(db)?),
    })
}

/// The directory of a SQLite database file (where the read model keeps its
/// texts' file); `None` for PostgreSQL.
fn database_dir(db: &Path) -> Option<&Path> {
    if postgres_url(db).is_some() {
        return None;
    }
    Some(match db.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    })
}

/// `db` as a PostgreSQL URL, if it is one (a path need not be UTF-8; a URL is).
fn postgres_url(db: &Path) -> Option<&str> {
    db.to_str().filter(|text| store::is_postgres_url(text))
}

/// Folds the whole log into a fresh registry, decoding each event's data straight
/// from its stored text (what the server does at start without a snapshot).
///
/// # Errors
/// When the log cannot be read or an event cannot be folded.
pub fn replay(store: &dyn Store) -> Result<Registry, AppError> {
    let (registry, _, _) = snapshots::fold_after(store, Registry::new(), Head::genesis().hash)?;
    Ok(registry)
}

/// Adds domain events of one stream to a batch, each in its envelope.
fn push_events<E: serde::Serialize + traguardo_events::domain::Schema>(
    mut batch: AppendBatch,
    stream: &str,
    events: &[E],
    actor: &Actor,
    correlation: &Option<String>,
) -> Result<AppendBatch, AppError> {
    for event in events {
        batch = batch.push(NewEvent::from_domain(
            stream,
            event,
            actor,
            correlation.clone(),
        )?);
    }
    Ok(batch)
}

/// The idempotency key a client sent (`Idempotency-Key`), as the store keeps it.
///
/// The key is one for the whole log, not one per caller: a retry is answered
/// as the first attempt only for the same identity (`actor_id`, whatever display
/// name its token carries) and the same request, and another identity sending
/// the key is refused (422), never served someone else's answer. The store's
/// `request_sha256` holds both, as `sha256(actor_id).sha256(request)`, so that a
/// refusal can say which one differs.
pub fn idempotency_key(key: &str, actor_id: &str, request: &str) -> IdempotencyKey {
    IdempotencyKey {
        key: sha256_hex(&format!("idempotency-key\n{key}")),
        request_sha256: format!("{}.{}", sha256_hex(actor_id), sha256_hex(request)),
    }
}

/// Hex SHA-256 of a text (tokens are kept only as this).
pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}
