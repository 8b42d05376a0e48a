//! The domain's events: one enum per aggregate, past-tense variants that carry the
//! facts. The `type` string stored beside the data is the variant name in
//! snake_case; the schema number lives in [`Schema`].
//!
//! Dates named `on` are valid times (when it happened in the world); record time is
//! in the envelope. Revisions carry `in_force_from`, the date of their act (or the
//! record date when the act gave none).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

mod by_tag;

pub use by_tag::DecodeByTag;

use crate::model::{
    Backfill, Hundredths, IndicatorSpec, ObjectiveSpec, PhaseSpec, Role, Unit, ValidationOutcome,
    ValidationStage,
};

/// The schema number of an event's data, stored beside it so that old events can be
/// upcast when a variant's shape changes.
pub trait Schema {
    /// The schema of this event's data (1 until a shape changes).
    fn schema(&self) -> u32 {
        1
    }
}

/// Events of a plan year, stream `plan/{year}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum PlanEvent {
    /// *Piano degli Obiettivi* loaded: the year, its units and its objectives.
    PlanDefined {
        /// Plan year.
        year: i32,
        /// *Ente*.
        organisation: String,
        /// The plan's title.
        title: String,
        /// The *Elenco Responsabili*.
        units: Vec<Unit>,
        /// Keys of the objectives defined with it.
        objectives: Vec<String>,
    },
    /// A revision (*rimodulazione*) approved by a formal act; its changes are the
    /// events with the same correlation on the objective streams.
    RevisionRecorded {
        /// The revision's id (also the events' correlation).
        revision: Uuid,
        /// The act, e.g. `D.G.C. n. 182 del 28/07/2022`.
        act: String,
        /// The act's date as stated, if it was.
        act_date: Option<NaiveDate>,
        /// The date the changes are in force from (act date, else record date).
        in_force_from: NaiveDate,
        /// Why.
        reason: String,
        /// The changes, as requested, in order.
        changes: Vec<RevisionChange>,
        /// Keys of the objectives it touched.
        objectives: Vec<String>,
    },
    /// The *Nucleo di Valutazione* examined a red flag and said what it found.
    FlagAcknowledged {
        /// The flag's stable id.
        flag: String,
        /// What the Nucleo found.
        note: String,
    },
    /// The year-end seal (*chiusura dell'esercizio*): the Nucleo di Valutazione
    /// seals the year at a signed checkpoint of the log (DESIGN.md §9); from then
    /// on the year's plan and objectives take no more writes.
    PlanSealed {
        /// The checkpoint's origin: the name of the log's key.
        origin: String,
        /// The tree size sealed: the seq of the head it was signed at.
        size: u64,
        /// The tree root at that size, base64 as in the checkpoint.
        root: String,
        /// The signed note as it stood, with its cosignatures.
        checkpoint: String,
    },
}

impl Schema for PlanEvent {}

/// One change of a revision, as requested (weights in hundredths).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RevisionChange {
    /// A phase deadline, or the final deadline when `phase` is absent.
    Deadline {
        /// Objective key.
        objective: String,
        /// Phase number; none for the final deadline.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        phase: Option<u32>,
        /// The new deadline.
        new_deadline: NaiveDate,
    },
    /// New weights for some phases.
    Weights {
        /// Objective key.
        objective: String,
        /// Phase number → weight in hundredths.
        #[serde(with = "phase_keys")]
        weights_hundredths: BTreeMap<u32, Hundredths>,
    },
    /// A new phase.
    AddPhase {
        /// Objective key.
        objective: String,
        /// The phase.
        phase: PhaseSpec,
    },
    /// A phase withdrawn.
    WithdrawPhase {
        /// Objective key.
        objective: String,
        /// Phase number.
        phase: u32,
    },
    /// A new objective.
    AddObjective {
        /// The objective.
        objective: Box<ObjectiveSpec>,
    },
    /// An objective withdrawn.
    WithdrawObjective {
        /// Objective key.
        objective: String,
    },
    /// A new responsible manager.
    Manager {
        /// Objective key.
        objective: String,
        /// The manager from the act on.
        manager: String,
    },
    /// A new title.
    Title {
        /// Objective key.
        objective: String,
        /// The title from the act on.
        title: String,
    },
    /// What a phase says.
    PhaseDescription {
        /// Objective key.
        objective: String,
        /// Phase number.
        phase: u32,
        /// The description from the act on.
        description: String,
    },
    /// What an indicator aims at.
    IndicatorTarget {
        /// Objective key.
        objective: String,
        /// Indicator id.
        indicator: String,
        /// The target in hundredths; none for an indicator without a number.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target_hundredths: Option<Hundredths>,
    },
    /// A new indicator.
    AddIndicator {
        /// Objective key.
        objective: String,
        /// The indicator.
        indicator: IndicatorSpec,
    },
    /// An indicator withdrawn: it is no longer measured.
    WithdrawIndicator {
        /// Objective key.
        objective: String,
        /// Indicator id.
        indicator: String,
    },
}

impl RevisionChange {
    /// The key of the objective the change touches.
    pub fn objective_key(&self) -> String {
        match self {
            RevisionChange::Deadline { objective, .. }
            | RevisionChange::Weights { objective, .. }
            | RevisionChange::AddPhase { objective, .. }
            | RevisionChange::WithdrawPhase { objective, .. }
            | RevisionChange::WithdrawObjective { objective }
            | RevisionChange::Manager { objective, .. }
            | RevisionChange::Title { objective, .. }
            | RevisionChange::PhaseDescription { objective, .. }
            | RevisionChange::IndicatorTarget { objective, .. }
            | RevisionChange::AddIndicator { objective, .. }
            | RevisionChange::WithdrawIndicator { objective, .. } => objective.clone(),
            RevisionChange::AddObjective { objective } => objective.key(),
        }
    }
}

/// The revision an objective event came from: enough for the audit trail to say on
/// what authority, without looking elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevisionRef {
    /// The revision's id.
    pub id: Uuid,
    /// The act.
    pub act: String,
    /// The date the change is in force from.
    pub in_force_from: NaiveDate,
    /// Why.
    pub reason: String,
}

/// Events of one objective, stream `objective/{year}-{unit}-{letter}`.
///
/// The definition and the backfills are boxed: the definition is more than
/// twice the size of any other variant, a backfill (rare: the control office's
/// loading after the fact) half a measurement, and the time-travel cache keeps
/// the decoded events of the streams it holds, most of them phases and
/// measurements.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ObjectiveEvent {
    /// Defined by the plan, or added by a revision.
    ObjectiveDefined {
        /// The objective and its phases.
        objective: Box<ObjectiveSpec>,
        /// The revision that added it, if it was not in the plan.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        revision: Option<RevisionRef>,
    },
    /// A phase was started on a date.
    PhaseStarted {
        /// Phase number.
        phase: u32,
        /// Valid date.
        on: NaiveDate,
        /// Optional note.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
        /// Loaded after the fact by the control office (*caricamento storico*).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        backfill: Option<Box<Backfill>>,
    },
    /// A phase was completed on a date (declared by the manager).
    PhaseCompleted {
        /// Phase number.
        phase: u32,
        /// Valid date.
        on: NaiveDate,
        /// Optional note.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
        /// Links or references to evidence.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        evidence: Vec<String>,
        /// Loaded after the fact by the control office (*caricamento storico*).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        backfill: Option<Box<Backfill>>,
        /// The stable identity of who recorded it (separation of duties compares
        /// it). Absent in events recorded before identities: then the envelope's
        /// actor normalised ([`crate::identity::actor_id_of`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        actor_id: Option<String>,
    },
    /// A completion recorded in error was withdrawn; the phase is in progress again.
    PhaseCompletionRetracted {
        /// Phase number.
        phase: u32,
        /// The completion date that was retracted.
        completed_on: NaiveDate,
        /// Why.
        reason: String,
        /// Loaded after the fact by the control office (*caricamento storico*).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        backfill: Option<Box<Backfill>>,
    },
    /// A phase deadline (or, with no phase, the final deadline) was moved.
    DeadlineRevised {
        /// Phase number; none for the final deadline.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        phase: Option<u32>,
        /// The deadline in force before.
        from: NaiveDate,
        /// The new deadline.
        to: NaiveDate,
        /// On what authority.
        revision: RevisionRef,
    },
    /// Phase weights were changed.
    WeightsRevised {
        /// Phase number → weight before.
        #[serde(with = "phase_keys")]
        from: BTreeMap<u32, Hundredths>,
        /// Phase number → new weight.
        #[serde(with = "phase_keys")]
        to: BTreeMap<u32, Hundredths>,
        /// On what authority.
        revision: RevisionRef,
    },
    /// A phase was added.
    PhaseAdded {
        /// The new phase.
        phase: PhaseSpec,
        /// On what authority.
        revision: RevisionRef,
    },
    /// A phase was withdrawn: it no longer counts.
    PhaseWithdrawn {
        /// Phase number.
        phase: u32,
        /// On what authority.
        revision: RevisionRef,
    },
    /// The objective was withdrawn: it no longer counts.
    ObjectiveWithdrawn {
        /// On what authority.
        revision: RevisionRef,
    },
    /// An indicator was measured.
    IndicatorMeasured {
        /// Indicator id.
        indicator: String,
        /// Valid date of the measurement.
        on: NaiveDate,
        /// The value, in hundredths, when given directly.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        value_hundredths: Option<Hundredths>,
        /// n° a.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        numerator: Option<u64>,
        /// n° b (> 0).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        denominator: Option<u64>,
        /// The finding, for a qualitative indicator.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        /// Optional note.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
        /// Loaded after the fact by the control office (*caricamento storico*).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        backfill: Option<Box<Backfill>>,
    },
    /// The *Nucleo di Valutazione* validated the objective (ex ante or ex post).
    ValidationRecorded {
        /// `plan` or `final`.
        stage: ValidationStage,
        /// `approved` or `rejected`.
        outcome: ValidationOutcome,
        /// Declared complete but not accepted: counted as not completed.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        unverified_phases: Vec<u32>,
        /// Not attributable to the unit (*sterilizzazione*): left out, the other
        /// weights rescaled to 100.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        neutralised_phases: Vec<u32>,
        /// Mandatory when anything is unverified, neutralised or rejected.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
        /// The minutes it was decided in, e.g. "Verbale n. 3 del 15/03/2023".
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reference: Option<String>,
    },
    /// The responsible manager was changed.
    ManagerChanged {
        /// Before.
        from: String,
        /// After.
        to: String,
        /// On what authority.
        revision: RevisionRef,
    },
    /// The title was changed.
    TitleChanged {
        /// Before.
        from: String,
        /// After.
        to: String,
        /// On what authority.
        revision: RevisionRef,
    },
    /// What a phase says was changed.
    PhaseDescriptionChanged {
        /// Phase number.
        phase: u32,
        /// Before.
        from: String,
        /// After.
        to: String,
        /// On what authority.
        revision: RevisionRef,
    },
    /// An indicator's target was changed.
    IndicatorTargetChanged {
        /// Indicator id.
        indicator: String,
        /// Before, in hundredths.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<Hundredths>,
        /// After, in hundredths.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<Hundredths>,
        /// On what authority.
        revision: RevisionRef,
    },
    /// An indicator was added.
    IndicatorAdded {
        /// The indicator.
        indicator: IndicatorSpec,
        /// On what authority.
        revision: RevisionRef,
    },
    /// An indicator was withdrawn.
    IndicatorWithdrawn {
        /// Indicator id.
        indicator: String,
        /// On what authority.
        revision: RevisionRef,
    },
}

impl Schema for ObjectiveEvent {}

/// Maps keyed by phase number. JSON writes the keys as strings (`{"4": 6000}`);
/// inside a `type`-tagged enum serde buffers the data and no longer turns such a key
/// back into a number, so the keys are read as strings and parsed here.
mod phase_keys {
    use std::collections::BTreeMap;
    use std::fmt;

    use serde::de::{Error, Visitor};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use crate::model::Hundredths;

    pub fn serialize<S: Serializer>(
        map: &BTreeMap<u32, Hundredths>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        map.serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<u32, Hundredths>, D::Error> {
        Ok(BTreeMap::<PhaseNumber, Hundredths>::deserialize(d)?
            .into_iter()
            .map(|(PhaseNumber(n), weight)| (n, weight))
            .collect())
    }

    /// A phase number as a map key: text in JSON (`"3"`), an integer in the
    /// binary snapshots of the read model.
    #[derive(PartialEq, Eq, PartialOrd, Ord)]
    struct PhaseNumber(u32);

    impl<'de> Deserialize<'de> for PhaseNumber {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct Key;
            impl Visitor<'_> for Key {
                type Value = PhaseNumber;

                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a phase number")
                }

                fn visit_u64<E: Error>(self, n: u64) -> Result<PhaseNumber, E> {
                    u32::try_from(n)
                        .map(PhaseNumber)
                        .map_err(|_| E::custom(format!("{n} is not a phase number")))
                }

                fn visit_str<E: Error>(self, key: &str) -> Result<PhaseNumber, E> {
                    key.parse::<u32>()
                        .map(PhaseNumber)
                        .map_err(|_| E::custom(format!("{key:?} is not a phase number")))
                }
            }
            d.deserialize_any(Key)
        }
    }
}

/// Events of the organisation, stream `org`: who may act.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum OrgEvent {
    /// A bearer token was issued. Only its SHA-256 is kept.
    TokenIssued {
        /// The token's id.
        token_id: Uuid,
        /// Hex SHA-256 of the secret.
        token_sha256: String,
        /// Whose token it is.
        actor: String,
        /// Its role.
        role: Role,
        /// For managers, the units they may act for.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        units: Vec<String>,
        /// The holder's stable identity. Absent in tokens issued before
        /// identities: then the actor normalised ([`crate::identity::actor_id_of`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        actor_id: Option<String>,
        /// When it stops authenticating. Absent in tokens issued before expiry
        /// existed: those expire one year after they were recorded.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expires: Option<DateTime<Utc>>,
    },
    /// A token was revoked: it no longer authenticates.
    TokenRevoked {
        /// The token's id.
        token_id: Uuid,
    },
    /// A web account was created (DESIGN.md §8). Only the password's Argon2id
    /// hash is kept, as its PHC string; never the password.
    UserCreated {
        /// The username: the account's stable `actor_id`.
        username: String,
        /// The display name written on the events the account causes.
        actor: String,
        /// Its role.
        role: Role,
        /// For managers, the units they may act for.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        units: Vec<String>,
        /// The Argon2id hash of the password, as a PHC string.
        password_phc: String,
    },
    /// A web account was deleted: it no longer logs in, and its sessions end.
    UserDeleted {
        /// The username.
        username: String,
    },
}

impl Schema for OrgEvent {}
