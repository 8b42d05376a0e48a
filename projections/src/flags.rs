//! Red flags (*segnalazioni*): facts in a plan year's log that an auditor should
//! look at, each with the events that raise it and one Italian sentence saying what
//! happened and why it matters (`GET /plans/{year}/flags`, DESIGN.md §5).
//!
//! The log is walked once in seq order, folding each objective as it goes, so every
//! flag is judged on what the system knew when the raising event was recorded.

use std::collections::HashMap;

use chrono::NaiveDate;
use serde::Serialize;
use traguardo_events::domain::{ObjectiveEvent, PlanEvent};
use traguardo_events::model::ValidationStage;
use traguardo_events::RecordedEvent;
use uuid::Uuid;

use crate::audit::{al_pct, dal_pct, it_date, revision_ref, summarize_objective_event};
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

/// One red flag.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Flag {
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

/// The red flags of a plan year's events, in seq order of the event raising each.
///
/// # Errors
/// When an event of a plan or objective stream cannot be decoded or folded.
pub fn red_flags(
    year_events: &[RecordedEvent],
    settings: &FlagSettings,
) -> Result<Vec<Flag>, ProjectionError> {
    let mut ordered: Vec<&RecordedEvent> = year_events.iter().collect();
    ordered.sort_by_key(|e| e.seq);
    // The last seq of each revision on each objective: where its effect is known.
    let mut revision_end: HashMap<(Uuid, &str), u64> = HashMap::new();
    for event in &ordered {
        if let Some(key) = event.stream.strip_prefix("objective/") {
            if let Some(r) = revision_ref(&objective::decode(event)?) {
                revision_end.insert((r.id, key), event.seq);
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
    for event in ordered {
        if event.stream.starts_with("plan/") {
            let decoded: PlanEvent = crate::error::decode(event)?;
            if let PlanEvent::RevisionRecorded { revision, .. } = decoded {
                revisions.insert(revision, event.seq);
            }
            continue;
        }
        let Some(key) = event.stream.strip_prefix("objective/") else {
            continue;
        };
        let decoded = objective::decode(event)?;
        let Some(state) = objectives.get_mut(key) else {
            objectives.insert(key.to_string(), Objective::define(event, decoded)?);
            continue;
        };
        let mut raise = |kind, phase, mut seqs: Vec<u64>, message| {
            seqs.push(event.seq);
            seqs.sort_unstable();
            seqs.dedup();
            flags.push((
                event.seq,
                Flag {
                    kind,
                    objective: key.to_string(),
                    phase,
                    seqs,
                    message,
                },
            ));
        };
        let recorded_on = event.recorded_on();
        let validated = last_final_validation(state).map(|v| {
            (
                v.recorded.seq,
                format!(
                    "della validazione finale del Nucleo di Valutazione del {}",
                    it_date(traguardo_events::clock::local_date(&v.recorded.recorded_at))
                ),
            )
        });
        let revision = revision_ref(&decoded).cloned();
        let revision_seq = revision
            .as_ref()
            .and_then(|r| revisions.get(&r.id))
            .copied();
        let changes_the_objective =
            revision.is_some() || matches!(decoded, ObjectiveEvent::PhaseCompleted { .. });
        if let (true, Some((validation_seq, validation))) = (changes_the_objective, &validated) {
            raise(
                FlagKind::ChangedAfterValidation,
                phase_of(&decoded),
                [Some(*validation_seq), revision_seq]
                    .into_iter()
                    .flatten()
                    .collect(),
                format!(
                    "Dopo la registrazione {validation} l'obiettivo è stato modificato ({}): il \
                     risultato validato non corrisponde più a quanto dichiarato e la validazione \
                     va ripetuta.",
                    summarize_objective_event(event, &decoded)
                ),
            );
        }
        if let Some(r) = &revision {
            snapshots
                .entry((r.id, key.to_string()))
                .or_insert_with(|| state.clone());
        }
        match &decoded {
            ObjectiveEvent::PhaseCompleted { phase, on, .. } => {
                let days = (recorded_on - *on).num_days();
                if days > settings.late_registration_days {
                    raise(
                        FlagKind::LateRegistration,
                        Some(*phase),
                        vec![],
                        format!(
                            "Il completamento della fase {phase} del {} è stato registrato il {} \
                             da {}, {days} giorni dopo (limite {}): una registrazione così tardiva \
                             sottrae il dato al controllo tempestivo e la data dichiarata va \
                             verificata sui documenti.",
                            it_date(*on),
                            it_date(recorded_on),
                            event.actor,
                            settings.late_registration_days
                        ),
                    );
                }
                if let Some(p) = state.phase(*phase) {
                    let deadline = *p.deadline.at(recorded_on);
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
            ObjectiveEvent::PhaseCompletionRetracted {
                phase,
                completed_on,
                ..
            } => {
                late.remove(&(key.to_string(), *phase));
                if let Some((validation_seq, validation)) = &validated {
                    let completion = state
                        .phase(*phase)
                        .and_then(|p| p.completed.as_ref())
                        .map(|c| c.recorded.seq);
                    raise(
                        FlagKind::RetractedAfterValidation,
                        Some(*phase),
                        [completion, Some(*validation_seq)]
                            .into_iter()
                            .flatten()
                            .collect(),
                        format!(
                            "Il completamento della fase {phase} del {} è stato ritirato il {} da \
                             {} dopo la registrazione {validation}: il risultato validato poggia \
                             su un completamento non più dichiarato e va riesaminato.",
                            it_date(*completed_on),
                            it_date(recorded_on),
                            event.actor
                        ),
                    );
                }
            }
            ObjectiveEvent::DeadlineRevised {
                phase,
                from,
                to,
                revision: r,
            } => {
                let what = match phase {
                    Some(n) => format!("la scadenza della fase {n}"),
                    None => "la scadenza finale".to_string(),
                };
                if *from < r.in_force_from {
                    pending.push(Pending {
                        revision: r.id,
                        key: key.to_string(),
                        raised: event.seq,
                        at: r.in_force_from,
                        flag: Flag {
                            kind: FlagKind::RetroactiveRevision,
                            objective: key.to_string(),
                            phase: *phase,
                            seqs: sorted([revision_seq, Some(event.seq)]),
                            message: format!(
                                "L'atto «{}», in vigore dal {}, ha spostato {what} dal {} al {} \
                                 quando quel termine era già scaduto: una modifica retroattiva \
                                 può sanare a posteriori un ritardo e va motivata; {SCORE}.",
                                r.act,
                                it_date(r.in_force_from),
                                it_date(*from),
                                it_date(*to)
                            ),
                        },
                    });
                }
                if let Some(n) = phase {
                    let rescued = late
                        .get(&(key.to_string(), *n))
                        .filter(|l| l.on <= *to)
                        .map(|l| (l.seq, l.on, l.deadline));
                    if let Some((completion_seq, on, deadline)) = rescued {
                        late.remove(&(key.to_string(), *n));
                        raise(
                            FlagKind::RescuedByRevision,
                            Some(*n),
                            [Some(completion_seq), revision_seq]
                                .into_iter()
                                .flatten()
                                .collect(),
                            format!(
                                "La fase {n}, completata il {} oltre la scadenza allora in vigore \
                                 del {}, risulta nei termini solo perché l'atto «{}» ha poi \
                                 spostato la scadenza al {}: il ritardo è stato sanato da una \
                                 revisione successiva e non dal rispetto dei tempi.",
                                it_date(on),
                                it_date(deadline),
                                r.act,
                                it_date(*to)
                            ),
                        );
                    }
                }
            }
            ObjectiveEvent::WeightsRevised { revision: r, .. } => {
                let done: Vec<(u32, u64)> = state
                    .phases
                    .iter()
                    .filter_map(|p| p.completed.as_ref().map(|c| (p.number, c.recorded.seq)))
                    .collect();
                if !done.is_empty() {
                    let numbers: Vec<String> = done.iter().map(|(n, _)| n.to_string()).collect();
                    let which = if numbers.len() == 1 {
                        format!("la fase {} era già completata", numbers[0])
                    } else {
                        format!("le fasi {} erano già completate", numbers.join(", "))
                    };
                    let mut seqs: Vec<u64> = done.iter().map(|(_, seq)| *seq).collect();
                    seqs.extend(revision_seq);
                    seqs.push(event.seq);
                    pending.push(Pending {
                        revision: r.id,
                        key: key.to_string(),
                        raised: event.seq,
                        at: recorded_on.max(r.in_force_from),
                        flag: Flag {
                            kind: FlagKind::WeightsRevisedAfterCompletion,
                            objective: key.to_string(),
                            phase: None,
                            seqs: sorted(seqs.into_iter().map(Some)),
                            message: format!(
                                "L'atto «{}» ha rimodulato le incidenze delle fasi quando {which}: \
                                 cambiare i pesi a risultati noti può spostare il punteggio verso \
                                 le fasi già concluse; {SCORE}.",
                                r.act
                            ),
                        },
                    });
                }
            }
            _ => {}
        }
        state.apply(event, decoded)?;
        if let Some(r) = revision {
            if revision_end.get(&(r.id, key)) == Some(&event.seq) {
                let before = snapshots.remove(&(r.id, key.to_string()));
                finish(&mut pending, &mut flags, r.id, key, before.as_ref(), state);
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
    Ok(flags.into_iter().map(|(_, flag)| flag).collect())
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
            it_date(at),
            al_pct(a)
        ),
        (Some(b), Some(a)) => format!(
            "il grado di raggiungimento al {} passa {} {}",
            it_date(at),
            dal_pct(b),
            al_pct(a)
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
        _ => None,
    }
}

fn sorted(seqs: impl IntoIterator<Item = Option<u64>>) -> Vec<u64> {
    let mut seqs: Vec<u64> = seqs.into_iter().flatten().collect();
    seqs.sort_unstable();
    seqs.dedup();
    seqs
}
