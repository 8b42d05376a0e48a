//! The application: the store, the in-memory read model kept in step with it, and
//! the use cases (load a plan, run a command, record a revision, issue a token).
//!
//! Flow: parse → load state from the registry → decide (pure) → append → the
//! store's commit hook folds the new events into the registry before the append
//! returns → answer from the registry.

use std::path::Path;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, NaiveDate, Utc};
use sha2::{Digest, Sha256};
use traguardo_events::domain::{ObjectiveEvent, OrgEvent, PlanEvent};
use traguardo_events::envelope::Actor;
use traguardo_events::model::{objective_stream, plan_stream, Role, ORG_STREAM};
use traguardo_events::store::{IdempotencyKey, Until};
use traguardo_events::{
    AppendBatch, Clock, ExpectedVersion, Head, NewEvent, RecordedEvent, SqliteStore,
};
use traguardo_projections::{Objective, Registry, TokenInfo};
use uuid::Uuid;

use crate::commands::{self, DomainError, ObjectiveCommand, Principal, RevisionRequest};
use crate::error::AppError;
use crate::plan_document::ValidPlan;

/// The application state: cheap to clone, shared by every request.
#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

struct Inner {
    store: SqliteStore,
    // A std lock: held only to read or fold in memory, never across an await.
    registry: Arc<RwLock<Registry>>,
    // The first committed event that could not be folded: the read model has
    // drifted from the log, and `/status` says so until a restart rebuilds it.
    drift: Arc<std::sync::Mutex<Option<String>>>,
    bootstrap_sha256: RwLock<Option<String>>,
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
    /// Opens the database, replays the log into memory and keeps it in step.
    ///
    /// # Errors
    /// When the database cannot be opened or an event cannot be folded.
    pub fn open(path: impl AsRef<Path>, clock: Clock) -> Result<Self, AppError> {
        let store = SqliteStore::open(path, clock)?;
        Self::with_store(store)
    }

    /// Builds the application over an open store.
    ///
    /// # Errors
    /// When an event of the log cannot be folded.
    pub fn with_store(store: SqliteStore) -> Result<Self, AppError> {
        let registry = replay(&store)?;
        let registry = Arc::new(RwLock::new(registry));
        let drift: Arc<std::sync::Mutex<Option<String>>> = Arc::default();
        let drifted = drift.clone();
        let folded = registry.clone();
        store.on_commit(Arc::new(move |events: &[RecordedEvent]| {
            let mut registry = folded.write().unwrap_or_else(|e| e.into_inner());
            if let Some(first) = events.first() {
                if first.seq != registry.last_seq() + 1 {
                    tracing::warn!(
                        expected = registry.last_seq() + 1,
                        got = first.seq,
                        "another process appended to this database; restart to see its events"
                    );
                }
            }
            for event in events {
                if let Err(e) = registry.apply(event) {
                    tracing::error!(error = %e, "cannot fold a committed event");
                    drifted
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get_or_insert_with(|| e.to_string());
                }
            }
        }));
        Ok(App {
            inner: Arc::new(Inner {
                store,
                registry,
                drift,
                bootstrap_sha256: RwLock::new(None),
            }),
        })
    }

    /// Whether the in-memory read model still mirrors the log.
    ///
    /// # Errors
    /// The first event that could not be folded since start.
    pub fn health(&self) -> Result<(), String> {
        match self
            .inner
            .drift
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            Some(problem) => Err(format!("the read model is behind the log: {problem}")),
            None => Ok(()),
        }
    }

    /// The event store.
    pub fn store(&self) -> &SqliteStore {
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
            .registry
            .read()
            .unwrap_or_else(|e| e.into_inner()))
    }

    /// Accepts `token` as an admin token for this process (not stored anywhere).
    pub fn set_bootstrap_token(&self, token: &str) {
        *self
            .inner
            .bootstrap_sha256
            .write()
            .unwrap_or_else(|e| e.into_inner()) = Some(sha256_hex(token));
    }

    /// The principal holding `token`, if it is valid.
    pub fn authenticate(&self, token: &str) -> Option<Principal> {
        let digest = sha256_hex(token);
        let bootstrap = self
            .inner
            .bootstrap_sha256
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if bootstrap.as_deref() == Some(digest.as_str()) {
            return Some(Principal {
                name: "admin".into(),
                role: Role::Admin,
                units: Vec::new(),
            });
        }
        self.read(|r| {
            r.token(&digest).map(|t| Principal {
                name: t.actor.clone(),
                role: t.role,
                units: t.units.clone(),
            })
        })
    }

    /// Loads a validated plan: the plan event and every objective, in one batch.
    ///
    /// # Errors
    /// [`AppError::Forbidden`] for a non-admin, [`AppError::Conflict`] when the
    /// year is loaded already.
    pub async fn import_plan(
        &self,
        plan: &ValidPlan,
        principal: &Principal,
    ) -> Result<Vec<RecordedEvent>, AppError> {
        if principal.role != Role::Admin {
            return Err(DomainError::NotAdmin {
                action: "caricare un piano",
                actor: principal.name.clone(),
                role: principal.role,
            }
            .into());
        }
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

    /// Issues a bearer token; returns the secret (shown once) and what it allows.
    ///
    /// # Errors
    /// [`AppError::Forbidden`] for a non-admin, [`AppError::Invalid`] for an empty
    /// actor or a manager without units.
    pub async fn issue_token(
        &self,
        actor: &str,
        role: Role,
        units: Vec<String>,
        principal: &Principal,
    ) -> Result<(String, TokenInfo), AppError> {
        if principal.role != Role::Admin {
            return Err(DomainError::NotAdmin {
                action: "emettere token",
                actor: principal.name.clone(),
                role: principal.role,
            }
            .into());
        }
        let mut errors = Vec::new();
        if actor.trim().is_empty() {
            errors.push(crate::error::FieldError::new("actor", "must not be empty"));
        }
        let units: Vec<String> = units
            .into_iter()
            .map(|u| u.trim().to_string())
            .filter(|u| !u.is_empty())
            .collect();
        if role == Role::Manager && units.is_empty() {
            errors.push(crate::error::FieldError::new(
                "units",
                "a manager needs at least one unit",
            ));
        }
        if role != Role::Manager && !units.is_empty() {
            errors.push(crate::error::FieldError::new(
                "units",
                "only managers are scoped to units",
            ));
        }
        if !errors.is_empty() {
            return Err(AppError::Invalid(errors));
        }
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(AppError::Randomness)?;
        let token = format!("tg_{}", hex::encode(secret));
        let info = TokenInfo {
            token_id: Uuid::now_v7(),
            actor: actor.trim().to_string(),
            role,
            units,
        };
        let event = OrgEvent::TokenIssued {
            token_id: info.token_id,
            token_sha256: sha256_hex(&token),
            actor: info.actor.clone(),
            role,
            units: info.units.clone(),
        };
        let batch = AppendBatch::new().push(NewEvent::from_domain(
            ORG_STREAM,
            &event,
            &principal.actor(),
            None,
        )?);
        self.inner.store.append_async(batch).await?;
        Ok((token, info))
    }

    /// An objective as the log held it up to `until` (record time), read from the
    /// store; `None` when it did not exist then.
    ///
    /// # Errors
    /// When the store cannot be read or the stream cannot be folded.
    pub fn objective_as_of(&self, key: &str, until: Until) -> Result<Option<Objective>, AppError> {
        let until = self.as_seq(until)?;
        let events = self
            .inner
            .store
            .read_stream(&objective_stream(key), until)?;
        Ok(Objective::from_events(&events)?)
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

    /// [`App::replay`] on a blocking thread: it reads SQLite.
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
            objective: objective.clone(),
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

/// Folds the whole log into a fresh registry, decoding each event's data straight
/// from its stored text (what the server does at start).
///
/// # Errors
/// When the log cannot be read or an event cannot be folded.
pub fn replay(store: &SqliteStore) -> Result<Registry, AppError> {
    let mut registry = Registry::new();
    store.for_each_raw(0, |event, data| {
        registry.apply_text(&event, data).map_err(AppError::from)
    })?;
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

/// Hex SHA-256 of a text (tokens are kept only as this).
pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}
