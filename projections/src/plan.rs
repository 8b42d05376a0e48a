//! Plan years and the in-memory registry of everything folded from the log.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use traguardo_events::domain::{ObjectiveEvent, OrgEvent, PlanEvent, RevisionChange};
use traguardo_events::model::{Hundredths, Role, Unit};
use traguardo_events::StreamRef;
use traguardo_events::{EventRef, RecordedEvent};
use uuid::Uuid;

use crate::days::Days;
use crate::name::Name;
use crate::objective::{Objective, Outcome, Pct, Score};
use crate::ProjectionError;

/// A revision as recorded on the plan stream.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Revision {
    /// Its id.
    pub id: Uuid,
    /// The act.
    pub act: String,
    /// The act's date as stated.
    pub act_date: Option<NaiveDate>,
    /// In force from.
    pub in_force_from: NaiveDate,
    /// Why.
    pub reason: String,
    /// The changes, in order.
    pub changes: Vec<RevisionChange>,
    /// Objectives touched.
    pub objectives: Vec<String>,
    /// Who recorded it.
    pub actor: String,
    /// In which role.
    pub role: String,
    /// When.
    pub recorded_at: DateTime<Utc>,
    /// Seq of its `revision_recorded` event.
    pub seq: u64,
}

/// A plan year.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    /// Year.
    pub year: i32,
    /// *Ente*.
    pub organisation: String,
    /// Title.
    pub title: String,
    /// *Elenco Responsabili*.
    pub units: Vec<Unit>,
    /// Objective keys, in plan order, then in the order revisions added them.
    pub objectives: Vec<String>,
    /// Revisions, oldest first.
    pub revisions: Vec<Revision>,
    /// The year-end seal, once recorded: the year then takes no more writes.
    pub sealed: Option<Seal>,
    /// Stream version.
    pub version: u64,
}

/// A year-end seal (*chiusura dell'esercizio*) as recorded on the plan stream:
/// the signed checkpoint it names, and who sealed and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Seal {
    /// The checkpoint's origin (the log key's name).
    pub origin: String,
    /// The tree size sealed.
    pub size: u64,
    /// The root at that size, base64.
    pub root: String,
    /// The signed note, with its cosignatures.
    pub checkpoint: String,
    /// Who sealed.
    pub actor: String,
    /// When.
    pub recorded_at: DateTime<Utc>,
    /// Seq of the `plan_sealed` event.
    pub seq: u64,
}

impl Plan {
    /// The unit with this code.
    pub fn unit(&self, code: &str) -> Option<&Unit> {
        self.units.iter().find(|u| u.code == code)
    }
}

/// A web account, as the `org` stream says (DESIGN.md §8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserAccount {
    /// Username: the account's `actor_id`.
    pub username: String,
    /// Display name.
    pub actor: String,
    /// Role.
    pub role: Role,
    /// Units a manager may act for.
    pub units: Vec<String>,
    /// Argon2id hash of the password (PHC string). Serialised only into
    /// snapshots, which stay in the database beside the log; the API answers
    /// its own view of an account, without it.
    pub password_phc: String,
}

/// A token holder, as the `org` stream says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// Token id.
    pub token_id: Uuid,
    /// Actor name (display).
    pub actor: String,
    /// The holder's stable identity.
    pub actor_id: String,
    /// Role.
    pub role: Role,
    /// Units a manager may act for.
    pub units: Vec<String>,
    /// When it was issued (record time).
    pub issued: DateTime<Utc>,
    /// When it stops authenticating.
    pub expires: DateTime<Utc>,
    /// When it was revoked, if it was.
    pub revoked: Option<DateTime<Utc>>,
}

/// How long a token issued before expiry existed stays valid: one year from its
/// issue, the default of new tokens.
pub const LEGACY_TOKEN_LIFETIME_DAYS: i64 = 365;

impl TokenInfo {
    /// Whether it authenticates at `now`: not revoked, not expired.
    pub fn valid_at(&self, now: DateTime<Utc>) -> bool {
        self.revoked.is_none() && now < self.expires
    }
}

/// One objective's line in a plan's scores.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ObjectiveScoreLine {
    /// Key.
    pub key: String,
    /// Unit.
    pub unit: String,
    /// Completed weight.
    pub completed_pct: Pct,
    /// On-time weight.
    pub on_time_pct: Pct,
    /// Outcome.
    pub outcome: Outcome,
    /// Validated result, absent before a final validation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validated_pct: Option<Pct>,
    /// `achieved` when the validated result is 100, else `not_achieved`; absent
    /// before a final validation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validated_outcome: Option<Outcome>,
    /// Whether the final validation went stale (*validazione da ripetere*).
    pub validation_stale: bool,
}

/// A unit's score: the mean `on_time_pct` of its objectives.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct UnitScore {
    /// Unit code.
    pub unit: String,
    /// Mean on-time percentage (declared).
    pub score: Pct,
    /// Mean validated percentage, when every active objective of the unit has a
    /// current (not stale) final validation; else null.
    pub validated_score: Option<Pct>,
    /// How many of its objectives have a current final validation.
    pub validated: usize,
    /// How many active objectives it has.
    pub objectives: usize,
}

/// The plan's score: the mean over all its objectives.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PlanScore {
    /// Mean on-time percentage (declared).
    pub score: Pct,
    /// Mean validated percentage, when every active objective has a current
    /// final validation; else null.
    pub validated_score: Option<Pct>,
    /// How many objectives have a current final validation.
    pub validated: usize,
    /// How many active objectives there are.
    pub objectives: usize,
}

/// `GET /plans/{year}/scores`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PlanScores {
    /// Year.
    pub year: i32,
    /// Reference date.
    pub at: NaiveDate,
    /// Every objective active at `at`.
    pub objectives: Vec<ObjectiveScoreLine>,
    /// Per unit, in unit-code order.
    pub units: Vec<UnitScore>,
    /// The plan.
    pub plan: PlanScore,
}

/// Everything folded from the log: plans, objectives, tokens. Serialisable
/// whole, for snapshots ([`crate::snapshot`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Registry {
    /// Plans by year.
    pub(crate) plans: BTreeMap<i32, Plan>,
    /// Objectives by key, each boxed: the map keeps a spare slot for every
    /// seven it fills, and a slot of the map is a pointer, not an objective.
    pub(crate) objectives: ustr::UstrMap<Box<Objective>>,
    /// Every token ever issued, revoked ones too, by the hex SHA-256 of its secret.
    pub(crate) tokens: HashMap<String, TokenInfo>,
    /// Web accounts by username.
    pub(crate) users: BTreeMap<String, UserAccount>,
    /// The seq of the last event folded.
    pub(crate) last_seq: u64,
    /// The Italian days the events folded were recorded on.
    pub(crate) days: Days,
    /// Where the texts of what it folds are kept.
    #[serde(skip)]
    pub(crate) texts: TextsKept,
}

/// Where a registry keeps the texts of the events it folds: in the texts'
/// file ([`crate::text`]) for the live read model, else on the heap. Not part
/// of what the registry holds: two registries of the same events are equal
/// wherever their texts are.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct TextsKept {
    on_disk: bool,
}

impl PartialEq for TextsKept {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The registry of a selection of the log (one plan year's events, say),
    /// folded in seq order; the gaps between their seqs are events of other
    /// streams, left out on purpose.
    ///
    /// # Errors
    /// The first event that cannot be folded.
    pub fn of_selection<'a>(
        events: impl IntoIterator<Item = &'a RecordedEvent>,
    ) -> Result<Self, ProjectionError> {
        let mut registry = Registry::new();
        for event in events {
            registry.fold(&event.envelope(), Data::Value(event))?;
        }
        Ok(registry)
    }

    /// From now on, keeps the texts of the events it folds (notes,
    /// descriptions, titles, evidence) in the texts' file rather than on the
    /// heap: for the read model that lives as long as the process.
    pub fn keep_texts_on_disk(&mut self) {
        self.texts.on_disk = true;
    }

    /// The plan of `year`.
    pub fn plan(&self, year: i32) -> Option<&Plan> {
        self.plans.get(&year)
    }

    /// Every plan, by year.
    pub fn plans(&self) -> impl DoubleEndedIterator<Item = &Plan> {
        self.plans.values()
    }

    /// The objective `key`.
    pub fn objective(&self, key: &str) -> Option<&Objective> {
        // A key never interned is no objective's (and a lookup interns nothing).
        self.objectives
            .get(&Name::from_existing(key)?)
            .map(Box::as_ref)
    }

    /// Every objective, in no particular order.
    pub fn objectives(&self) -> impl Iterator<Item = &Objective> {
        self.objectives.values().map(Box::as_ref)
    }

    /// The active token whose secret hashes to `sha256_hex`.
    pub fn token(&self, sha256_hex: &str) -> Option<&TokenInfo> {
        self.tokens.get(sha256_hex)
    }

    /// Every token not revoked (expired ones too).
    pub fn tokens(&self) -> impl Iterator<Item = &TokenInfo> {
        self.tokens.values().filter(|t| t.revoked.is_none())
    }

    /// Every token ever issued, revoked ones too.
    pub fn all_tokens(&self) -> impl Iterator<Item = &TokenInfo> {
        self.tokens.values()
    }

    /// Whether an admin token authenticates at `now` (the bootstrap token then
    /// no longer does).
    pub fn has_admin_token(&self, now: DateTime<Utc>) -> bool {
        self.tokens
            .values()
            .any(|t| t.role == Role::Admin && t.valid_at(now))
    }

    /// The web account `username`.
    pub fn user(&self, username: &str) -> Option<&UserAccount> {
        self.users.get(username)
    }

    /// Every web account, by username.
    pub fn users(&self) -> impl Iterator<Item = &UserAccount> {
        self.users.values()
    }

    /// The seq of the last event folded.
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// Folds events in seq order.
    ///
    /// # Errors
    /// The first event that cannot be folded.
    pub fn apply_all<'a>(
        &mut self,
        events: impl IntoIterator<Item = &'a RecordedEvent>,
    ) -> Result<(), ProjectionError> {
        events.into_iter().try_for_each(|e| self.apply(e))
    }

    /// Folds one event; an event already folded (seq ≤ last) is skipped.
    ///
    /// # Errors
    /// When the event cannot be decoded or does not fit the state.
    pub fn apply(&mut self, event: &RecordedEvent) -> Result<(), ProjectionError> {
        self.apply_from(&event.envelope(), Data::Value(event))
    }

    /// Folds one event given as its envelope and its data as stored JSON text:
    /// replay at start reads both from the row, with no copy of the envelope's
    /// texts and no intermediate value.
    ///
    /// # Errors
    /// As [`Registry::apply`].
    pub fn apply_text(&mut self, event: &EventRef<'_>, data: &str) -> Result<(), ProjectionError> {
        self.apply_from(event, Data::Text(data))
    }

    fn apply_from(&mut self, event: &EventRef<'_>, data: Data<'_>) -> Result<(), ProjectionError> {
        if event.seq <= self.last_seq {
            return Ok(());
        }
        self.fold(event, data)
    }

    /// Folds one event, whatever the last seq folded, its texts kept where the
    /// registry keeps them.
    fn fold(&mut self, event: &EventRef<'_>, data: Data<'_>) -> Result<(), ProjectionError> {
        crate::text::on_disk_if(self.texts.on_disk, || self.fold_here(event, data))
    }

    fn fold_here(&mut self, event: &EventRef<'_>, data: Data<'_>) -> Result<(), ProjectionError> {
        let impossible = |message: String| ProjectionError::Impossible {
            seq: event.seq,
            message,
        };
        let stream = StreamRef::parse(event.stream).map_err(|e| impossible(e.to_string()))?;
        if let StreamRef::Objective(key) = stream {
            let decoded: ObjectiveEvent = data.decode(event)?;
            match Name::from_existing(key).and_then(|k| self.objectives.get_mut(&k)) {
                Some(o) => o.apply(event, &decoded)?,
                None => {
                    let o = Objective::define(event, decoded)?;
                    self.objectives.insert(o.key, Box::new(o));
                }
            }
        } else if let StreamRef::Plan(year) = stream {
            let decoded: PlanEvent = data.decode(event)?;
            match decoded {
                PlanEvent::PlanDefined {
                    year: defined_year,
                    organisation,
                    title,
                    units,
                    objectives,
                } => {
                    if defined_year != year {
                        return Err(impossible(format!(
                            "plan {defined_year} defined in stream {}",
                            event.stream
                        )));
                    }
                    if self.plans.contains_key(&year) {
                        return Err(impossible(format!("plan {year} defined twice")));
                    }
                    self.plans.insert(
                        year,
                        Plan {
                            year,
                            organisation,
                            title,
                            units,
                            objectives,
                            revisions: Vec::new(),
                            sealed: None,
                            version: event.version,
                        },
                    );
                }
                PlanEvent::RevisionRecorded {
                    revision,
                    act,
                    act_date,
                    in_force_from,
                    reason,
                    changes,
                    objectives,
                } => {
                    let plan = self
                        .plans
                        .get_mut(&year)
                        .ok_or_else(|| impossible(format!("revision of unknown plan {year}")))?;
                    for change in &changes {
                        if let RevisionChange::AddObjective { objective } = change {
                            plan.objectives.push(objective.key());
                        }
                    }
                    plan.revisions.push(Revision {
                        id: revision,
                        act,
                        act_date,
                        in_force_from,
                        reason,
                        changes,
                        objectives,
                        actor: event.actor.to_string(),
                        role: event.role.to_string(),
                        recorded_at: event.recorded_at,
                        seq: event.seq,
                    });
                    plan.version = event.version;
                }
                PlanEvent::FlagAcknowledged { .. } => {
                    let plan = self
                        .plans
                        .get_mut(&year)
                        .ok_or_else(|| impossible(format!("flag of unknown plan {year}")))?;
                    plan.version = event.version;
                }
                PlanEvent::PlanSealed {
                    origin,
                    size,
                    root,
                    checkpoint,
                } => {
                    let plan = self
                        .plans
                        .get_mut(&year)
                        .ok_or_else(|| impossible(format!("seal of unknown plan {year}")))?;
                    if plan.sealed.is_some() {
                        return Err(impossible(format!("plan {year} sealed twice")));
                    }
                    plan.sealed = Some(Seal {
                        origin,
                        size,
                        root,
                        checkpoint,
                        actor: event.actor.to_string(),
                        recorded_at: event.recorded_at,
                        seq: event.seq,
                    });
                    plan.version = event.version;
                }
            }
        } else if event.stream == traguardo_events::model::ORG_STREAM {
            let decoded: OrgEvent = data.decode(event)?;
            match decoded {
                OrgEvent::TokenIssued {
                    token_id,
                    token_sha256,
                    actor,
                    role,
                    units,
                    actor_id,
                    expires,
                } => {
                    let issued = event.recorded_at;
                    self.tokens.insert(
                        token_sha256,
                        TokenInfo {
                            token_id,
                            actor_id: actor_id
                                .unwrap_or_else(|| traguardo_events::identity::actor_id_of(&actor)),
                            actor,
                            role,
                            units,
                            issued,
                            expires: expires.unwrap_or(
                                issued + chrono::Duration::days(LEGACY_TOKEN_LIFETIME_DAYS),
                            ),
                            revoked: None,
                        },
                    );
                }
                OrgEvent::TokenRevoked { token_id } => {
                    for token in self.tokens.values_mut() {
                        if token.token_id == token_id && token.revoked.is_none() {
                            token.revoked = Some(event.recorded_at);
                        }
                    }
                }
                OrgEvent::UserCreated {
                    username,
                    actor,
                    role,
                    units,
                    password_phc,
                } => {
                    self.users.insert(
                        username.clone(),
                        UserAccount {
                            username,
                            actor,
                            role,
                            units,
                            password_phc,
                        },
                    );
                }
                OrgEvent::UserDeleted { username } => {
                    self.users.remove(&username);
                }
            }
        } else {
            return Err(impossible(format!("unknown stream {}", event.stream)));
        }
        self.days.record(event.seq, event.recorded_at);
        self.last_seq = event.seq;
        Ok(())
    }

    /// The Italian date the event at `seq` was recorded on, when the events
    /// folded tell it ([`Days::day_of`]): from memory, for any seq of the log
    /// up to the last folded.
    pub fn day_of(&self, seq: u64) -> Option<NaiveDate> {
        self.days.day_of(seq)
    }

    /// The objectives of a plan, in plan order.
    pub fn plan_objectives(&self, year: i32) -> Vec<&Objective> {
        self.plans
            .get(&year)
            .map(|plan| {
                plan.objectives
                    .iter()
                    .filter_map(|key| self.objective(key))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The scores of a plan at `at`, or `None` for an unknown year.
    pub fn scores(&self, year: i32, at: NaiveDate) -> Option<PlanScores> {
        self.plans.get(&year)?;
        Some(scores_of(year, at, self.plan_objectives(year)))
    }
}

/// Where an event's data is read from.
#[derive(Clone, Copy)]
enum Data<'a> {
    /// The event's `data` value.
    Value(&'a RecordedEvent),
    /// The stored JSON text.
    Text(&'a str),
}

impl Data<'_> {
    fn decode<E: traguardo_events::domain::DecodeByTag>(
        self,
        event: &EventRef<'_>,
    ) -> Result<E, ProjectionError> {
        match self {
            Data::Value(recorded) => crate::error::decode(recorded),
            Data::Text(text) => event
                .decode_text(text)
                .map_err(|e| ProjectionError::Decode {
                    seq: event.seq,
                    message: e.to_string(),
                }),
        }
    }
}

/// The declared and validated results of a set of objectives (a unit's, or the
/// plan's), gathered one objective at a time.
#[derive(Default)]
struct Tally {
    on_time: Vec<Hundredths>,
    /// `validated_pct` of the objectives with a current final validation.
    validated: Vec<Hundredths>,
}

impl Tally {
    fn add(&mut self, score: &Score, validated: bool) {
        self.on_time.push(score.on_time_pct);
        if let (true, Some(pct)) = (validated, score.validated_pct) {
            self.validated.push(pct);
        }
    }

    /// The mean `validated_pct`, when every objective has a current final
    /// validation.
    fn validated_score(&self) -> Option<Pct> {
        (!self.on_time.is_empty() && self.validated.len() == self.on_time.len())
            .then(|| Pct(mean(&self.validated)))
    }
}

/// Scores of a set of objectives (DESIGN.md §4): a unit's score is the mean
/// `on_time_pct` of its objectives, the plan's the mean over all of them; beside
/// each, the mean validated result when every one of them has a current final
/// validation. Withdrawn objectives do not count.
pub fn scores_of(year: i32, at: NaiveDate, objectives: Vec<&Objective>) -> PlanScores {
    let mut lines = Vec::new();
    let mut by_unit: BTreeMap<String, Tally> = BTreeMap::new();
    let mut all = Tally::default();
    for objective in objectives.into_iter().filter(|o| o.active_at(at)) {
        let score = objective.score(at);
        let validated = objective.validated_at(at);
        by_unit
            .entry(objective.unit().to_string())
            .or_default()
            .add(&score, validated);
        all.add(&score, validated);
        lines.push(ObjectiveScoreLine {
            key: objective.key.to_string(),
            unit: objective.unit().to_string(),
            completed_pct: Pct(score.completed_pct),
            on_time_pct: Pct(score.on_time_pct),
            outcome: score.outcome,
            validated_pct: score.validated_pct.map(Pct),
            validated_outcome: score.validated_outcome,
            validation_stale: score.validation_stale,
        });
    }
    PlanScores {
        year,
        at,
        objectives: lines,
        units: by_unit
            .into_iter()
            .map(|(unit, tally)| UnitScore {
                unit,
                score: Pct(mean(&tally.on_time)),
                validated_score: tally.validated_score(),
                validated: tally.validated.len(),
                objectives: tally.on_time.len(),
            })
            .collect(),
        plan: PlanScore {
            score: Pct(mean(&all.on_time)),
            validated_score: all.validated_score(),
            validated: all.validated.len(),
            objectives: all.on_time.len(),
        },
    }
}

/// The mean of percentages, rounded to hundredths (0 for none).
pub fn mean(values: &[Hundredths]) -> Hundredths {
    let sum: Hundredths = values.iter().copied().sum();
    sum.scale(1, values.len() as i64)
}
