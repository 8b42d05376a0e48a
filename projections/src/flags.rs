//! Red flags (*segnalazioni*): facts in a plan year's log that an auditor should
//! look at, each with the events that raise it and one Italian sentence saying what
//! happened and why it matters (`GET /plans/{year}/flags`, DESIGN.md §5).
//!
//! The log is walked once in seq order, folding each objective as it goes, so every
//! flag is judged on what the system knew when the raising event was recorded.
//! Each kind has one rule, a function over a shared `Context`; adding a kind means
//! adding a variant of [`FlagKind`] and its function.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use traguardo_events::domain::RevisionRef;
use traguardo_events::domain::{ObjectiveEvent, PlanEvent};
use traguardo_events::model::ValidationStage;
use traguardo_events::{RecordedEvent, StreamId};
use uuid::Uuid;

use crate::audit::{revision_ref, summarize_objective_event};
use crate::italian;
use crate::objective::{self, Objective, Validation};
use crate::ProjectionError;

/// What a flag is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FlagKind {
    /// A deadline moved by an act in force only after that deadline had passed.
    RetroactiveRevision,
    /// A completion recorded more than the allowed days after its valid date.
    LateRegistration,
    /// A completion late against the deadline in force when it was recorded, made
    /// on time by a later revision.
    RescuedByRevision,
    /// A change to an objective (a revision, or a completion) after its final
    /// validation.
    ChangedAfterValidation,
    /// A completion retracted after the objective's final validation.
    RetractedAfterValidation,
    /// Weights revised when some phase of the objective was already completed.
    WeightsRevisedAfterCompletion,
}

impl FlagKind {
    /// The kind's name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            FlagKind::RetroactiveRevision => "retroactive_revision",
            FlagKind::LateRegistration => "late_registration",
            FlagKind::RescuedByRevision => "rescued_by_revision",
            FlagKind::ChangedAfterValidation => "changed_after_validation",
            FlagKind::RetractedAfterValidation => "retracted_after_validation",
            FlagKind::WeightsRevisedAfterCompletion => "weights_revised_after_completion",
        }
    }

    /// Every kind, in the order flags raised by one event are listed.
    pub const ALL: [FlagKind; 6] = [
        FlagKind::RetroactiveRevision,
        FlagKind::LateRegistration,
        FlagKind::RescuedByRevision,
        FlagKind::ChangedAfterValidation,
        FlagKind::RetractedAfterValidation,
        FlagKind::WeightsRevisedAfterCompletion,
    ];
}

/// Where a flag stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FlagStatus {
    /// Nobody has settled or examined it yet.
    Open,
    /// A later event settled it: a final validation of the objective recorded
    /// after the flag was raised (the Nucleo judged the result knowing the fact).
    Resolved,
    /// The *Nucleo di Valutazione* examined it and said what it found.
    Acknowledged,
}

/// One step in a flag's history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlagStep {
    /// The status from this step on.
    pub status: FlagStatus,
    /// The event of the step: the one raising the flag, the validation settling
    /// it, or the acknowledgement.
    pub seq: u64,
    /// Who recorded that event.
    pub actor: String,
    /// When.
    #[serde(with = "traguardo_events::envelope::timestamp")]
    pub recorded_at: DateTime<Utc>,
    /// The Nucleo's note, for an acknowledgement.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// One red flag.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Flag {
    /// A stable id: the kind and the seq of the event raising it
    /// (`late_registration-57`).
    pub id: String,
    /// Open, resolved or acknowledged: the status of its latest step.
    pub status: FlagStatus,
    /// What kind.
    pub kind: FlagKind,
    /// The objective's key.
    pub objective: String,
    /// The phase, when the flag is about one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<u32>,
    /// The events that raise it, ascending; the last is the one that raised it.
    pub seqs: Vec<u64>,
    /// One Italian sentence: what happened and why it matters.
    pub message: String,
    /// How it came to its status, oldest first; the first step raised it.
    pub history: Vec<FlagStep>,
}

impl Flag {
    /// The latest acknowledgement by the Nucleo, if any.
    pub fn acknowledgement(&self) -> Option<&FlagStep> {
        self.history
            .iter()
            .rev()
            .find(|s| s.status == FlagStatus::Acknowledged)
    }
}

/// How strict the flags are.
#[derive(Debug, Clone)]
pub struct FlagSettings {
    /// A completion recorded more than this many days after its valid date is a
    /// late registration (default 30).
    pub late_registration_days: i64,
}

impl Default for FlagSettings {
    fn default() -> Self {
        FlagSettings {
            late_registration_days: 30,
        }
    }
}

/// A completion that was late when it was recorded.
struct LateCompletion {
    seq: u64,
    on: NaiveDate,
    deadline: NaiveDate,
}

/// A flag that cites the score change of its revision, finished once all the
/// revision's events on the objective are folded.
struct Pending {
    revision: Uuid,
    key: String,
    raised: u64,
    flag: Flag,
    /// The date the score is compared at.
    at: NaiveDate,
}

/// The placeholder for the score clause in a pending flag's message.
const SCORE: &str = "{score}";

/// What every rule sees of one objective event: the event, the objective as
/// folded just before it, and what the walk has learnt of the log so far.
struct Context<'a> {
    event: &'a RecordedEvent,
    decoded: &'a ObjectiveEvent,
    key: &'a str,
    /// The objective before the event.
    state: &'a Objective,
    /// The Italian date the event was recorded on.
    recorded_on: NaiveDate,
    /// The latest final validation before the event: its seq and how a sentence
    /// names it.
    validated: Option<(u64, String)>,
    /// The revision the event came from, and the seq of its `revision_recorded`.
    revision: Option<(&'a RevisionRef, Option<u64>)>,
    /// Completions that were late when recorded, by objective and phase.
    late: &'a HashMap<(String, u32), LateCompletion>,
    settings: &'a FlagSettings,
}

/// What a rule raises.
enum Raised {
    /// A flag complete now.
    Now(Flag),
    /// A flag whose score clause waits for the end of its revision.
    Pending(Pending),
}

impl Context<'_> {
    /// A flag raised by this event, citing `seqs` besides it.
    fn flag(
        &self,
        kind: FlagKind,
        phase: Option<u32>,
        seqs: Vec<Option<u64>>,
        message: String,
    ) -> Flag {
        Flag {
            id: format!("{}-{}", kind.as_str(), self.event.seq),
            status: FlagStatus::Open,
            kind,
            objective: self.key.to_string(),
            phase,
            seqs: sorted(seqs.into_iter().chain([Some(self.event.seq)])),
            message,
            history: vec![FlagStep {
                status: FlagStatus::Open,
                seq: self.event.seq,
                actor: self.event.actor.clone(),
                recorded_at: self.event.recorded_at,
                note: None,
            }],
        }
    }

    /// A flag of this event's revision, finished when the revision is.
    fn pending(&self, revision: &RevisionRef, at: NaiveDate, flag: Flag) -> Raised {
        Raised::Pending(Pending {
            revision: revision.id,
            key: self.key.to_string(),
            raised: self.event.seq,
            at,
            flag,
        })
    }
}

/// Runs the rule of one kind on one event. The match lists every kind, so a new
/// kind does not compile until it has its rule.
fn rule(kind: FlagKind, cx: &Context<'_>) -> Option<Raised> {
    match kind {
        FlagKind::RetroactiveRevision => retroactive_revision(cx),
        FlagKind::LateRegistration => late_registration(cx),
        FlagKind::RescuedByRevision => rescued_by_revision(cx),
        FlagKind::ChangedAfterValidation => changed_after_validation(cx),
        FlagKind::RetractedAfterValidation => retracted_after_validation(cx),
        FlagKind::WeightsRevisedAfterCompletion => weights_revised_after_completion(cx),
    }
}

/// A revision, or a completion, after the final validation.
fn changed_after_validation(cx: &Context<'_>) -> Option<Raised> {
    let (validation_seq, validation) = cx.validated.as_ref()?;
    // A retraction has a kind of its own.
    let changes = cx.revision.is_some()
        || matches!(
            cx.decoded,
            ObjectiveEvent::PhaseStarted { .. }
                | ObjectiveEvent::PhaseCompleted { .. }
                | ObjectiveEvent::IndicatorMeasured { .. }
        );
    changes.then(|| {
        Raised::Now(cx.flag(
            FlagKind::ChangedAfterValidation,
            phase_of(cx.decoded),
            vec![Some(*validation_seq), cx.revision.and_then(|(_, seq)| seq)],
            format!(
                "Dopo la registrazione {validation} l'obiettivo è stato modificato ({}): il \
                 risultato validato non corrisponde più a quanto dichiarato e la validazione \
                 va ripetuta.",
                summarize_objective_event(cx.event, cx.decoded)
            ),
        ))
    })
}

/// A completion recorded more than the allowed days after its date.
fn late_registration(cx: &Context<'_>) -> Option<Raised> {
    // A declared loading of past records (*caricamento storico*) is late on purpose.
    let ObjectiveEvent::PhaseCompleted {
        phase,
        on,
        backfill: None,
        ..
    } = cx.decoded
    else {
        return None;
    };
    let days = (cx.recorded_on - *on).num_days();
    (days > cx.settings.late_registration_days).then(|| {
        Raised::Now(cx.flag(
            FlagKind::LateRegistration,
            Some(*phase),
            vec![],
            format!(
                "Il completamento della fase {phase} del {} è stato registrato il {} \
                 da {}, {days} giorni dopo (limite {}): una registrazione così tardiva \
                 sottrae il dato al controllo tempestivo e la data dichiarata va \
                 verificata sui documenti.",
                italian::date(*on),
                italian::date(cx.recorded_on),
                cx.event.actor,
                cx.settings.late_registration_days
            ),
        ))
    })
}

/// A completion retracted after the final validation.
fn retracted_after_validation(cx: &Context<'_>) -> Option<Raised> {
    let ObjectiveEvent::PhaseCompletionRetracted {
        phase,
        completed_on,
        ..
    } = cx.decoded
    else {
        return None;
    };
    let (validation_seq, validation) = cx.validated.as_ref()?;
    let completion = cx
        .state
        .phase(*phase)
        .and_then(|p| p.completed())
        .map(|c| c.recorded.seq);
    Some(Raised::Now(cx.flag(
        FlagKind::RetractedAfterValidation,
        Some(*phase),
        vec![completion, Some(*validation_seq)],
        format!(
            "Il completamento della fase {phase} del {} è stato annullato il {} da \
             {} dopo la registrazione {validation}: il risultato validato poggia \
             su un completamento non più dichiarato e va riesaminato.",
            italian::date(*completed_on),
            italian::date(cx.recorded_on),
            cx.event.actor
        ),
    )))
}

/// A deadline moved by an act in force only after it had passed.
fn retroactive_revision(cx: &Context<'_>) -> Option<Raised> {
    let ObjectiveEvent::DeadlineRevised {
        phase,
        from,
        to,
        revision: r,
    } = cx.decoded
    else {
        return None;
    };
    if *from >= r.in_force_from {
        return None;
    }
    let what = match phase {
        Some(n) => format!("la scadenza della fase {n}"),
        None => "la scadenza finale".to_string(),
    };
    let revision_seq = cx.revision.and_then(|(_, seq)| seq);
    Some(cx.pending(
        r,
        r.in_force_from,
        cx.flag(
            FlagKind::RetroactiveRevision,
            *phase,
            vec![revision_seq],
            format!(
                "L'atto «{}», in vigore dal {}, ha spostato {what} dal {} al {} \
                 quando quel termine era già scaduto: una modifica retroattiva \
                 può sanare a posteriori un ritardo e va motivata; {SCORE}.",
                r.act,
                italian::date(r.in_force_from),
                italian::date(*from),
                italian::date(*to)
            ),
        ),
    ))
}

/// A completion late when recorded, made on time by a later deadline revision.
fn rescued_by_revision(cx: &Context<'_>) -> Option<Raised> {
    let ObjectiveEvent::DeadlineRevised {
        phase: Some(n),
        to,
        revision: r,
        ..
    } = cx.decoded
    else {
        return None;
    };
    let late = cx
        .late
        .get(&(cx.key.to_string(), *n))
        .filter(|l| l.on <= *to)?;
    Some(Raised::Now(cx.flag(
        FlagKind::RescuedByRevision,
        Some(*n),
        vec![Some(late.seq), cx.revision.and_then(|(_, seq)| seq)],
        format!(
            "La fase {n}, completata il {} oltre la scadenza allora in vigore \
             del {}, risulta nei termini solo perché l'atto «{}» ha poi \
             spostato la scadenza al {}: il ritardo è stato sanato da una \
             revisione successiva e non dal rispetto dei tempi.",
            italian::date(late.on),
            italian::date(late.deadline),
            r.act,
            italian::date(*to)
        ),
    )))
}

/// Weights revised when some phase was already completed.
fn weights_revised_after_completion(cx: &Context<'_>) -> Option<Raised> {
    let ObjectiveEvent::WeightsRevised { revision: r, .. } = cx.decoded else {
        return None;
    };
    let done: Vec<(u32, u64)> = cx
        .state
        .phases
        .iter()
        .filter_map(|p| p.completed().map(|c| (p.number, c.recorded.seq)))
        .collect();
    if done.is_empty() {
        return None;
    }
    let numbers: Vec<String> = done.iter().map(|(n, _)| n.to_string()).collect();
    let which = if numbers.len() == 1 {
        format!("la fase {} era già completata", numbers[0])
    } else {
        format!("le fasi {} erano già completate", numbers.join(", "))
    };
    let mut seqs: Vec<Option<u64>> = done.iter().map(|(_, seq)| Some(*seq)).collect();
    seqs.push(cx.revision.and_then(|(_, seq)| seq));
    Some(cx.pending(
        r,
        cx.recorded_on.max(r.in_force_from),
        cx.flag(
            FlagKind::WeightsRevisedAfterCompletion,
            None,
            seqs,
            format!(
                "L'atto «{}» ha rimodulato le incidenze delle fasi quando {which}: \
                 cambiare i pesi a risultati noti può spostare il grado di raggiungimento verso \
                 le fasi già concluse; {SCORE}.",
                r.act
            ),
        ),
    ))
}

/// Keeps track of completions that were late when recorded, for
/// [`rescued_by_revision`].
fn track_late(
    late: &mut HashMap<(String, u32), LateCompletion>,
    key: &str,
    event: &RecordedEvent,
    decoded: &ObjectiveEvent,
    state: &Objective,
) {
    match decoded {
        ObjectiveEvent::PhaseCompleted { phase, on, .. } => {
            if let Some(p) = state.phase(*phase) {
                let deadline = *p.deadline.at(event.recorded_on());
                if *on > deadline {
                    late.insert(
                        (key.to_string(), *phase),
                        LateCompletion {
                            seq: event.seq,
                            on: *on,
                            deadline,
                        },
                    );
                }
            }
        }
        ObjectiveEvent::PhaseCompletionRetracted { phase, .. } => {
            late.remove(&(key.to_string(), *phase));
        }
        ObjectiveEvent::DeadlineRevised {
            phase: Some(n), to, ..
        } => {
            let entry = (key.to_string(), *n);
            if late.get(&entry).is_some_and(|l| l.on <= *to) {
                late.remove(&entry);
            }
        }
        ObjectiveEvent::ObjectiveDefined { .. }
        | ObjectiveEvent::PhaseStarted { .. }
        | ObjectiveEvent::DeadlineRevised { phase: None, .. }
        | ObjectiveEvent::WeightsRevised { .. }
        | ObjectiveEvent::PhaseAdded { .. }
        | ObjectiveEvent::PhaseWithdrawn { .. }
        | ObjectiveEvent::ObjectiveWithdrawn { .. }
        | ObjectiveEvent::IndicatorMeasured { .. }
        | ObjectiveEvent::ValidationRecorded { .. }
        | ObjectiveEvent::ManagerChanged { .. }
        | ObjectiveEvent::TitleChanged { .. }
        | ObjectiveEvent::PhaseDescriptionChanged { .. }
        | ObjectiveEvent::IndicatorTargetChanged { .. }
        | ObjectiveEvent::IndicatorAdded { .. }
        | ObjectiveEvent::IndicatorWithdrawn { .. } => {}
    }
}

/// The red flags of a plan year's events, in seq order of the event raising each.
///
/// # Errors
/// When an event of a plan or objective stream cannot be decoded or folded.
pub fn red_flags(
    year_events: &[RecordedEvent],
    settings: &FlagSettings,
) -> Result<Vec<Flag>, ProjectionError> {
    let mut ordered: Vec<(&RecordedEvent, Option<StreamId>)> = year_events
        .iter()
        .map(|e| (e, e.stream.parse().ok()))
        .collect();
    ordered.sort_by_key(|(e, _)| e.seq);
    // The last seq of each revision on each objective: where its effect is known.
    let mut revision_end: HashMap<(Uuid, String), u64> = HashMap::new();
    for (event, stream) in &ordered {
        if let Some(StreamId::Objective(key)) = stream {
            if let Some(r) = revision_ref(&objective::decode(event)?) {
                revision_end.insert((r.id, key.to_string()), event.seq);
            }
        }
    }
    // Revision id → seq of its `revision_recorded`.
    let mut revisions: HashMap<Uuid, u64> = HashMap::new();
    let mut objectives: HashMap<String, Objective> = HashMap::new();
    let mut snapshots: HashMap<(Uuid, String), Objective> = HashMap::new();
    let mut late: HashMap<(String, u32), LateCompletion> = HashMap::new();
    let mut pending: Vec<Pending> = Vec::new();
    let mut flags: Vec<(u64, Flag)> = Vec::new();
    // What later events say of the flags: final validations by objective, and
    // the Nucleo's acknowledgements by flag id.
    let mut finals: HashMap<String, Vec<FlagStep>> = HashMap::new();
    let mut acknowledgements: HashMap<String, Vec<FlagStep>> = HashMap::new();
    let step = |status, event: &RecordedEvent, note| FlagStep {
        status,
        seq: event.seq,
        actor: event.actor.clone(),
        recorded_at: event.recorded_at,
        note,
    };
    for (event, stream) in ordered {
        let key = match stream {
            Some(StreamId::Plan(_)) => {
                let decoded: PlanEvent = crate::error::decode(event)?;
                match decoded {
                    PlanEvent::RevisionRecorded { revision, .. } => {
                        revisions.insert(revision, event.seq);
                    }
                    PlanEvent::FlagAcknowledged { flag, note } => acknowledgements
                        .entry(flag)
                        .or_default()
                        .push(step(FlagStatus::Acknowledged, event, Some(note))),
                    PlanEvent::PlanDefined { .. } | PlanEvent::PlanSealed { .. } => {}
                }
                continue;
            }
            Some(StreamId::Objective(key)) => key.to_string(),
            Some(StreamId::Org) | None => continue,
        };
        let decoded = objective::decode(event)?;
        if let ObjectiveEvent::ValidationRecorded {
            stage: ValidationStage::Final,
            ..
        } = decoded
        {
            finals
                .entry(key.clone())
                .or_default()
                .push(step(FlagStatus::Resolved, event, None));
        }
        let Some(state) = objectives.get_mut(&key) else {
            objectives.insert(key, Objective::define(&event.envelope(), decoded)?);
            continue;
        };
        let revision = revision_ref(&decoded).cloned();
        {
            let cx = Context {
                event,
                decoded: &decoded,
                key: &key,
                state,
                recorded_on: event.recorded_on(),
                validated: last_final_validation(state).map(|v| {
                    (
                        v.recorded.seq,
                        format!(
                            "della validazione finale del Nucleo di Valutazione del {}",
                            italian::recorded_on(v.recorded.recorded_at)
                        ),
                    )
                }),
                revision: revision
                    .as_ref()
                    .map(|r| (r, revisions.get(&r.id).copied())),
                late: &late,
                settings,
            };
            for kind in FlagKind::ALL {
                match rule(kind, &cx) {
                    Some(Raised::Now(flag)) => flags.push((event.seq, flag)),
                    Some(Raised::Pending(p)) => pending.push(p),
                    None => {}
                }
            }
        }
        track_late(&mut late, &key, event, &decoded, state);
        if let Some(r) = &revision {
            snapshots
                .entry((r.id, key.clone()))
                .or_insert_with(|| state.clone());
        }
        state.apply(&event.envelope(), &decoded)?;
        if let Some(r) = revision {
            if revision_end.get(&(r.id, key.clone())) == Some(&event.seq) {
                let before = snapshots.remove(&(r.id, key.clone()));
                finish(&mut pending, &mut flags, r.id, &key, before.as_ref(), state);
            }
        }
    }
    // Revisions whose last event was not in the slice: judged on what was seen.
    for p in std::mem::take(&mut pending) {
        let before = snapshots.get(&(p.revision, p.key.clone()));
        let after = objectives.get(&p.key);
        flags.push((p.raised, complete(p.flag, p.at, before, after)));
    }
    // Flags raised by the same event come in the order of their kinds.
    flags.sort_by_key(|(raised, flag)| (*raised, flag.kind as u8));
    Ok(flags
        .into_iter()
        .map(|(raised, mut flag)| {
            // The first final validation after the flag settles it; every
            // acknowledgement is a step of its own.
            let settled = finals
                .get(&flag.objective)
                .and_then(|steps| steps.iter().find(|s| s.seq > raised));
            flag.history.extend(settled.cloned());
            flag.history.extend(
                acknowledgements
                    .get(&flag.id)
                    .into_iter()
                    .flatten()
                    .cloned(),
            );
            flag.history.sort_by_key(|s| s.seq);
            flag.status = flag.history.last().map_or(FlagStatus::Open, |s| s.status);
            flag
        })
        .collect())
}

/// Completes the pending flags of revision `id` on objective `key`.
fn finish(
    pending: &mut Vec<Pending>,
    flags: &mut Vec<(u64, Flag)>,
    id: Uuid,
    key: &str,
    before: Option<&Objective>,
    after: &Objective,
) {
    let (done, rest): (Vec<Pending>, Vec<Pending>) = std::mem::take(pending)
        .into_iter()
        .partition(|p| p.revision == id && p.key == key);
    *pending = rest;
    for p in done {
        flags.push((p.raised, complete(p.flag, p.at, before, Some(after))));
    }
}

/// Fills in the score clause: the objective's *grado di raggiungimento* at `at`
/// before and after the revision.
fn complete(
    mut flag: Flag,
    at: NaiveDate,
    before: Option<&Objective>,
    after: Option<&Objective>,
) -> Flag {
    let on_time = |o: Option<&Objective>| o.map(|o| o.score(at).on_time_pct);
    let clause = match (on_time(before), on_time(after)) {
        (Some(b), Some(a)) if a == b => format!(
            "il grado di raggiungimento al {} resta {}",
            italian::date(at),
            italian::al_pct(a)
        ),
        (Some(b), Some(a)) => format!(
            "il grado di raggiungimento al {} passa {} {}",
            italian::date(at),
            italian::dal_pct(b),
            italian::al_pct(a)
        ),
        _ => "l'effetto sul grado di raggiungimento non è determinabile dagli eventi forniti"
            .to_string(),
    };
    flag.message = flag.message.replace(SCORE, &clause);
    flag
}

/// The latest final validation folded into `objective`.
fn last_final_validation(objective: &Objective) -> Option<&Validation> {
    objective
        .validations
        .iter()
        .rev()
        .find(|v| v.stage == ValidationStage::Final)
}

/// The phase an objective event is about, if any.
fn phase_of(event: &ObjectiveEvent) -> Option<u32> {
    match event {
        ObjectiveEvent::PhaseStarted { phase, .. }
        | ObjectiveEvent::PhaseCompleted { phase, .. }
        | ObjectiveEvent::PhaseCompletionRetracted { phase, .. }
        | ObjectiveEvent::PhaseWithdrawn { phase, .. } => Some(*phase),
        ObjectiveEvent::DeadlineRevised { phase, .. } => *phase,
        ObjectiveEvent::PhaseAdded { phase, .. } => Some(phase.number),
        ObjectiveEvent::PhaseDescriptionChanged { phase, .. } => Some(*phase),
        ObjectiveEvent::ManagerChanged { .. }
        | ObjectiveEvent::TitleChanged { .. }
        | ObjectiveEvent::IndicatorTargetChanged { .. }
        | ObjectiveEvent::IndicatorAdded { .. }
        | ObjectiveEvent::IndicatorWithdrawn { .. }
        | ObjectiveEvent::ObjectiveDefined { .. }
        | ObjectiveEvent::WeightsRevised { .. }
        | ObjectiveEvent::ObjectiveWithdrawn { .. }
        | ObjectiveEvent::IndicatorMeasured { .. }
        | ObjectiveEvent::ValidationRecorded { .. } => None,
    }
}

fn sorted(seqs: impl IntoIterator<Item = Option<u64>>) -> Vec<u64> {
    let mut seqs: Vec<u64> = seqs.into_iter().flatten().collect();
    seqs.sort_unstable();
    seqs.dedup();
    seqs
}
