//! The audit trail: every event as an auditor reads it — who, when, what, on what
//! authority — with a one-line summary in Italian, as an official of the *Ente*
//! would write it, and the fields it changed.
//!
//! The trail is computed from the events alone. It may be given a plan year's
//! events (plan, objective and `org` streams mixed) or one objective's stream; the
//! few things a summary needs from earlier events (an objective's unit, how many
//! validations it has, an indicator's previous measurement, a token's holder) are
//! remembered while walking them, and are simply absent when the slice starts later.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use traguardo_events::domain::{ObjectiveEvent, OrgEvent, PlanEvent, RevisionRef};
use traguardo_events::model::{
    Backfill, Hundredths, PhaseSpec, Role, ValidationOutcome, ValidationStage,
};
use traguardo_events::{ObjectiveKey, RecordedEvent, StreamId};
use uuid::Uuid;

use crate::italian;
use crate::objective::{self, Pct};
use crate::ProjectionError;

/// One event of the trail (`GET /objectives/{key}/audit`, DESIGN.md §5).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditEntry {
    /// The event's global position.
    pub seq: u64,
    /// Record time: when the system learnt it.
    #[serde(with = "traguardo_events::envelope::timestamp")]
    pub recorded_at: DateTime<Utc>,
    /// Who did it.
    pub actor: String,
    /// In which role.
    pub role: String,
    /// The event's type string, e.g. `phase_completed`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// One line in Italian, e.g. «Fase 2: scadenza spostata dal 30/06/2022 al
    /// 31/07/2022 — D.G.C. n. 182 del 28/07/2022».
    pub summary: String,
    /// The fields the event changed, with their values before and after.
    pub changes: Vec<FieldChange>,
    /// Why: the reason of a revision or a retraction, the note of a validation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// On what authority: the act of a revision.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub act: Option<String>,
    /// The event's link in the hash chain.
    pub hash: String,
    /// The stream it belongs to.
    pub stream: String,
    /// The objective it is about, for objective events.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub objective: Option<String>,
    /// The unit owning that objective.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// One field changed by an event: `phases[2].deadline` from `"2022-06-30"` to
/// `"2022-07-31"`. A phase is named by its number (`phases[2]` is phase 2, not a
/// position), an indicator by its id, a validation or a token by its position or
/// id; `null` stands for "absent".
#[derive(Debug, Serialize, Clone, PartialEq)]
pub struct FieldChange {
    /// The path of the field in the objective's state (DESIGN.md §5).
    pub field: String,
    /// Its value before.
    pub from: Value,
    /// Its value after.
    pub to: Value,
}

impl FieldChange {
    /// A change of `field` from `from` to `to`.
    pub fn new(field: impl Into<String>, from: Value, to: Value) -> Self {
        FieldChange {
            field: field.into(),
            from,
            to,
        }
    }
}

/// Which entries of the trail to keep; every criterion given must hold.
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    /// Entries about this unit's objectives, the revisions that touched them and
    /// the tokens scoped to it.
    pub unit: Option<String>,
    /// Entries recorded by this actor (exact name).
    pub actor: Option<String>,
    /// Entries of this event type, e.g. `deadline_revised`.
    pub event_type: Option<String>,
    /// Recorded at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Recorded at or before this time (inclusive).
    pub to: Option<DateTime<Utc>>,
}

impl AuditFilter {
    fn keeps(&self, entry: &AuditEntry, units: &[String]) -> bool {
        self.unit
            .as_ref()
            .is_none_or(|u| units.iter().any(|x| x == u))
            && self.actor.as_ref().is_none_or(|a| *a == entry.actor)
            && self
                .event_type
                .as_ref()
                .is_none_or(|t| *t == entry.event_type)
            && self.from.is_none_or(|from| entry.recorded_at >= from)
            && self.to.is_none_or(|to| entry.recorded_at <= to)
    }
}

/// The audit trail of `events`, oldest first, keeping the entries `filter` allows.
///
/// The changes of a `revision_recorded` entry are those of the objective events of
/// the same revision found in `events`, each prefixed by its objective's key
/// (`2022-2250-A.phases[2].deadline`).
///
/// # Errors
/// [`ProjectionError::Decode`] when an event of a plan, objective or `org` stream
/// cannot be decoded. Events of other streams get a generic summary.
pub fn trail(
    events: &[RecordedEvent],
    filter: &AuditFilter,
) -> Result<Vec<AuditEntry>, ProjectionError> {
    walk(events, filter, false)
}

/// The audit trail of a whole plan year: as [`trail`], and each objective event's
/// summary names its objective (`2022-2250-A · Fase 1 completata il …`).
///
/// # Errors
/// As [`trail`].
pub fn plan_trail(
    events: &[RecordedEvent],
    filter: &AuditFilter,
) -> Result<Vec<AuditEntry>, ProjectionError> {
    walk(events, filter, true)
}

fn walk(
    events: &[RecordedEvent],
    filter: &AuditFilter,
    name_objectives: bool,
) -> Result<Vec<AuditEntry>, ProjectionError> {
    let mut ordered: Vec<&RecordedEvent> = events.iter().collect();
    ordered.sort_by_key(|e| e.seq);
    let mut memory = Memory::default();
    let mut described = Vec::with_capacity(ordered.len());
    for event in ordered {
        let mut d = memory.describe(event)?;
        if let (true, Some(key)) = (name_objectives, &d.entry.objective) {
            d.entry.summary = format!("{key} · {}", d.entry.summary);
        }
        described.push(d);
    }
    // A revision's own entry lists what it changed on every objective it touched.
    let mut by_revision: HashMap<Uuid, Vec<FieldChange>> = HashMap::new();
    for d in &described {
        if let (Some(id), Some(key), false) = (d.revision, &d.entry.objective, d.is_revision) {
            by_revision
                .entry(id)
                .or_default()
                .extend(d.entry.changes.iter().map(|c| FieldChange {
                    field: format!("{key}.{}", c.field),
                    ..c.clone()
                }));
        }
    }
    Ok(described
        .into_iter()
        .filter_map(|mut d| {
            if let (true, Some(id)) = (d.is_revision, d.revision) {
                d.entry.changes = by_revision.remove(&id).unwrap_or_default();
            }
            filter.keeps(&d.entry, &d.units).then_some(d.entry)
        })
        .collect())
}

/// An entry with what the filter and the revision pass need.
struct Described {
    entry: AuditEntry,
    units: Vec<String>,
    revision: Option<Uuid>,
    is_revision: bool,
}

/// What the walk remembers of earlier events.
#[derive(Default)]
struct Memory {
    /// Objective key → what is known of it.
    objectives: HashMap<String, Known>,
    /// Token id → (holder, role).
    tokens: HashMap<Uuid, (String, Role)>,
}

#[derive(Default)]
struct Known {
    unit: Option<String>,
    validations: usize,
    measurements: HashMap<String, Value>,
}

impl Memory {
    fn describe(&mut self, event: &RecordedEvent) -> Result<Described, ProjectionError> {
        let mut entry = AuditEntry {
            seq: event.seq,
            recorded_at: event.recorded_at,
            actor: event.actor.clone(),
            role: event.role.clone(),
            event_type: event.event_type.clone(),
            summary: String::new(),
            changes: Vec::new(),
            reason: None,
            act: None,
            hash: event.hash.clone(),
            stream: event.stream.clone(),
            objective: None,
            unit: None,
        };
        let mut units = Vec::new();
        let mut revision = None;
        let mut is_revision = false;
        let stream: Option<StreamId> = event.stream.parse().ok();
        if let Some(StreamId::Objective(parsed)) = &stream {
            let key = parsed.to_string();
            let key = key.as_str();
            let decoded = objective::decode(event)?;
            let known = self.objectives.entry(key.to_string()).or_default();
            if let ObjectiveEvent::ObjectiveDefined { objective, .. } = &decoded {
                known.unit = Some(objective.unit.clone());
            }
            let unit = known
                .unit
                .clone()
                .or_else(|| Some(parsed.unit().to_string()));
            revision = revision_ref(&decoded).map(|r| r.id);
            let described = describe_objective_event(event, &decoded, known);
            entry.summary = described.summary;
            entry.changes = described.changes;
            entry.reason = described.reason;
            entry.act = described.act;
            entry.objective = Some(key.to_string());
            units.extend(unit.clone());
            entry.unit = unit;
        } else if let Some(StreamId::Plan(_)) = &stream {
            let decoded: PlanEvent = crate::error::decode(event)?;
            match decoded {
                PlanEvent::PlanDefined {
                    year,
                    organisation,
                    title,
                    units: plan_units,
                    objectives,
                } => {
                    entry.summary = format!(
                        "Caricato il piano «{title}» per il {year} ({organisation}): {}, {}",
                        italian::count(objectives.len(), "obiettivo", "obiettivi"),
                        italian::count(
                            plan_units.len(),
                            "unità organizzativa",
                            "unità organizzative"
                        ),
                    );
                    entry.changes = vec![
                        FieldChange::new("organisation", Value::Null, json!(organisation)),
                        FieldChange::new("title", Value::Null, json!(title)),
                        FieldChange::new(
                            "units",
                            Value::Null,
                            json!(plan_units.iter().map(|u| &u.code).collect::<Vec<_>>()),
                        ),
                        FieldChange::new("objectives", Value::Null, json!(objectives)),
                    ];
                }
                PlanEvent::RevisionRecorded {
                    revision: id,
                    act,
                    in_force_from,
                    reason,
                    changes,
                    objectives,
                    ..
                } => {
                    entry.summary = format!(
                        "Revisione del piano approvata con {act}, in vigore dal {}: {} su {} ({})",
                        italian::date(in_force_from),
                        italian::count(changes.len(), "modifica", "modifiche"),
                        italian::count(objectives.len(), "obiettivo", "obiettivi"),
                        objectives.join(", "),
                    );
                    entry.act = Some(act);
                    entry.reason = Some(reason);
                    for key in &objectives {
                        let unit = self
                            .objectives
                            .get(key)
                            .and_then(|k| k.unit.clone())
                            .or_else(|| {
                                key.parse::<ObjectiveKey>()
                                    .ok()
                                    .map(|k| k.unit().to_string())
                            });
                        if let Some(unit) = unit.filter(|u| !units.contains(u)) {
                            units.push(unit);
                        }
                    }
                    revision = Some(id);
                    is_revision = true;
                }
                PlanEvent::FlagAcknowledged { flag, note } => {
                    entry.summary = format!(
                        "Segnalazione {flag} esaminata dal Nucleo di Valutazione: {}",
                        italian::one_line(&note)
                    );
                    entry.reason = Some(note);
                }
                PlanEvent::PlanSealed {
                    origin, size, root, ..
                } => {
                    entry.summary = format!(
                        "Esercizio chiuso dal Nucleo di Valutazione: sigillato al checkpoint \
                         firmato «{origin}» di {} (radice {root}); da ora nessuna scrittura \
                         sugli obiettivi dell'anno",
                        italian::count(
                            usize::try_from(size).unwrap_or(usize::MAX),
                            "evento",
                            "eventi"
                        ),
                    );
                    entry.changes = vec![FieldChange::new(
                        "sealed",
                        Value::Null,
                        json!({"origin": origin, "size": size, "root": root}),
                    )];
                }
            }
        } else if let Some(StreamId::Org) = &stream {
            let decoded: OrgEvent = crate::error::decode(event)?;
            match decoded {
                OrgEvent::TokenIssued {
                    token_id,
                    actor,
                    role,
                    units: scope,
                    ..
                } => {
                    let scope_text = match scope.len() {
                        0 => String::new(),
                        1 => format!(" per l'unità {}", scope[0]),
                        _ => format!(" per le unità {}", scope.join(", ")),
                    };
                    entry.summary = format!(
                        "Rilasciato un token di accesso a {actor} con ruolo di {}{scope_text}",
                        italian::role(role)
                    );
                    entry.changes = vec![FieldChange::new(
                        format!("tokens[{token_id}]"),
                        Value::Null,
                        json!({"actor": actor, "role": role, "units": scope}),
                    )];
                    self.tokens.insert(token_id, (actor, role));
                    units = scope;
                }
                OrgEvent::TokenRevoked { token_id } => {
                    let held = self.tokens.remove(&token_id);
                    entry.summary = match &held {
                        Some((actor, role)) => format!(
                            "Revocato il token di accesso di {actor} ({})",
                            italian::role(*role)
                        ),
                        None => format!("Revocato il token di accesso {token_id}"),
                    };
                    entry.changes = vec![FieldChange::new(
                        format!("tokens[{token_id}]"),
                        held.map_or(
                            Value::Null,
                            |(actor, role)| json!({"actor": actor, "role": role}),
                        ),
                        Value::Null,
                    )];
                }
                OrgEvent::UserCreated {
                    username,
                    actor,
                    role,
                    units: scope,
                    ..
                } => {
                    entry.summary = format!(
                        "Creato l'account {username} per {actor} con ruolo di {}",
                        italian::role(role)
                    );
                    entry.changes = vec![FieldChange::new(
                        format!("users[{username}]"),
                        Value::Null,
                        json!({"actor": actor, "role": role, "units": scope}),
                    )];
                    units = scope;
                }
                OrgEvent::UserDeleted { username } => {
                    entry.summary = format!("Eliminato l'account {username}");
                    entry.changes = vec![FieldChange::new(
                        format!("users[{username}]"),
                        json!({"username": username}),
                        Value::Null,
                    )];
                }
            }
        } else {
            entry.summary = format!("Evento {} sul flusso {}", event.event_type, event.stream);
        }
        Ok(Described {
            entry,
            units,
            revision,
            is_revision,
        })
    }
}

/// Summary, changes, reason and act of one objective event.
struct ObjectiveEntry {
    summary: String,
    changes: Vec<FieldChange>,
    reason: Option<String>,
    act: Option<String>,
}

fn describe_objective_event(
    event: &RecordedEvent,
    decoded: &ObjectiveEvent,
    known: &mut Known,
) -> ObjectiveEntry {
    let key = event
        .stream
        .parse::<StreamId>()
        .ok()
        .and_then(|s| s.objective().map(ToString::to_string))
        .unwrap_or_default();
    let key = key.as_str();
    let by = format!(
        "registrata il {} da {}",
        italian::date(event.recorded_on()),
        event.actor
    );
    let mut reason = None;
    let mut act = None;
    let (summary, changes) = match decoded {
        ObjectiveEvent::ObjectiveDefined {
            objective,
            revision,
        } => {
            let shape = format!(
                "responsabile {}: {}, scadenza finale {}",
                objective.manager,
                italian::count(objective.phases.len(), "fase", "fasi"),
                italian::date(objective.final_deadline)
            );
            // A title printed in quotes in the plan gets only the «» of the summary.
            let title = objective
                .title
                .trim_matches(|c| matches!(c, '"' | '“' | '”' | '«' | '»'));
            let summary = match revision {
                None => format!("Obiettivo {key} «{title}» definito nel piano, {shape}"),
                Some(r) => format!(
                    "Obiettivo {key} «{title}» aggiunto al piano, {shape} — {}",
                    r.act
                ),
            };
            let mut changes = vec![
                FieldChange::new("title", Value::Null, json!(objective.title)),
                FieldChange::new("manager", Value::Null, json!(objective.manager)),
                FieldChange::new(
                    "final_deadline",
                    Value::Null,
                    json!(objective.final_deadline),
                ),
            ];
            changes.extend(objective.phases.iter().map(|p| {
                FieldChange::new(format!("phases[{}]", p.number), Value::Null, phase_json(p))
            }));
            (summary, changes)
        }
        ObjectiveEvent::PhaseStarted {
            phase,
            on,
            note,
            backfill,
        } => {
            reason = note.clone();
            (
                format!(
                    "Fase {phase} avviata il {}, {by}{}",
                    italian::date(*on),
                    backfill_clause(backfill.as_deref())
                ),
                vec![FieldChange::new(
                    format!("phases[{phase}].started_on"),
                    Value::Null,
                    json!(on),
                )],
            )
        }
        ObjectiveEvent::PhaseCompleted {
            phase,
            on,
            evidence,
            note,
            backfill,
            ..
        } => {
            reason = note.clone();
            let mut changes = vec![FieldChange::new(
                format!("phases[{phase}].completed_on"),
                Value::Null,
                json!(on),
            )];
            if !evidence.is_empty() {
                changes.push(FieldChange::new(
                    format!("phases[{phase}].evidence"),
                    json!([]),
                    json!(evidence),
                ));
            }
            let evidence = if evidence.is_empty() {
                String::new()
            } else {
                format!(" (evidenze: {})", evidence.join("; "))
            };
            (
                format!(
                    "Fase {phase} completata il {}{evidence}, {by}{}",
                    italian::date(*on),
                    backfill_clause(backfill.as_deref())
                ),
                changes,
            )
        }
        ObjectiveEvent::PhaseCompletionRetracted {
            phase,
            completed_on,
            reason: why,
            backfill,
        } => {
            reason = Some(why.clone());
            (
                format!(
                    "Fase {phase}: annullato il completamento del {}; annullamento {}{}",
                    italian::date(*completed_on),
                    by.replace("registrata", "registrato"),
                    backfill_clause(backfill.as_deref())
                ),
                vec![FieldChange::new(
                    format!("phases[{phase}].completed_on"),
                    json!(completed_on),
                    Value::Null,
                )],
            )
        }
        ObjectiveEvent::DeadlineRevised {
            phase,
            from,
            to,
            revision,
        } => {
            let (what, field) = match phase {
                Some(n) => (
                    format!("Fase {n}: scadenza spostata"),
                    format!("phases[{n}].deadline"),
                ),
                None => (
                    "Scadenza finale spostata".to_string(),
                    "final_deadline".to_string(),
                ),
            };
            (
                format!(
                    "{what} dal {} al {} — {}",
                    italian::date(*from),
                    italian::date(*to),
                    revision.act
                ),
                vec![FieldChange::new(field, json!(from), json!(to))],
            )
        }
        ObjectiveEvent::WeightsRevised { from, to, revision } => {
            let mut parts = Vec::new();
            let mut changes = Vec::new();
            for (n, new) in to {
                let old = from.get(n);
                parts.push(match old {
                    Some(old) => format!(
                        "fase {n} {} {}",
                        italian::dal_pct(*old),
                        italian::al_pct(*new)
                    ),
                    None => format!("fase {n} {}", italian::al_pct(*new)),
                });
                changes.push(FieldChange::new(
                    format!("phases[{n}].weight"),
                    old.map_or(Value::Null, |w| json!(Pct(*w))),
                    json!(Pct(*new)),
                ));
            }
            (
                format!(
                    "Incidenze rimodulate: {} — {}",
                    parts.join(", "),
                    revision.act
                ),
                changes,
            )
        }
        ObjectiveEvent::PhaseAdded { phase, revision } => (
            format!(
                "Aggiunta la fase {} «{}» (incidenza {}, scadenza {}) — {}",
                phase.number,
                phase.description,
                italian::pct(phase.weight_hundredths),
                italian::date(phase.deadline),
                revision.act
            ),
            vec![FieldChange::new(
                format!("phases[{}]", phase.number),
                Value::Null,
                phase_json(phase),
            )],
        ),
        ObjectiveEvent::PhaseWithdrawn { phase, revision } => (
            format!("Fase {phase} stralciata — {}", revision.act),
            vec![FieldChange::new(
                format!("phases[{phase}].withdrawn"),
                json!(false),
                json!(true),
            )],
        ),
        ObjectiveEvent::ObjectiveWithdrawn { revision } => (
            format!("Obiettivo {key} stralciato dal piano — {}", revision.act),
            vec![FieldChange::new("withdrawn", json!(false), json!(true))],
        ),
        ObjectiveEvent::IndicatorMeasured {
            indicator,
            on,
            value_hundredths,
            numerator,
            denominator,
            text,
            note,
            backfill,
        } => {
            reason = note.clone();
            let value = value_hundredths.or(match (numerator, denominator) {
                (Some(n), Some(d)) => Hundredths::percent_of(*n, *d),
                _ => None,
            });
            let reading = match (numerator, denominator, value, text) {
                (Some(n), Some(d), Some(v), _) => format!("{n} su {d} ({})", italian::pct(v)),
                (_, _, Some(v), _) => italian::pct(v),
                (_, _, None, Some(text)) => format!("«{text}»"),
                _ => "valore non indicato".to_string(),
            };
            let mut measurement = json!({
                "on": on,
                "value": value.map(Pct),
                "numerator": numerator,
                "denominator": denominator,
                "note": note,
            });
            if let (Some(text), Some(map)) = (text, measurement.as_object_mut()) {
                map.insert("text".into(), json!(text));
            }
            let previous = known
                .measurements
                .insert(indicator.clone(), measurement.clone())
                .unwrap_or(Value::Null);
            (
                format!(
                    "Rilevazione dell'indicatore «{indicator}» al {}: {reading}, {by}{}",
                    italian::date(*on),
                    backfill_clause(backfill.as_deref())
                ),
                vec![FieldChange::new(
                    format!("indicators[{indicator}].latest"),
                    previous,
                    measurement,
                )],
            )
        }
        ObjectiveEvent::ValidationRecorded {
            stage,
            outcome,
            unverified_phases,
            neutralised_phases,
            note,
            reference,
        } => {
            reason = note.clone();
            let what = match stage {
                ValidationStage::Plan => "Validazione del piano (visto ex ante)",
                ValidationStage::Final => "Validazione finale dei risultati",
            };
            let verdict = match outcome {
                ValidationOutcome::Approved => "approvata",
                ValidationOutcome::Rejected => "respinta",
            };
            let mut details = Vec::new();
            if !unverified_phases.is_empty() {
                details.push(format!(
                    "fasi non verificate: {}",
                    italian::numbers(unverified_phases)
                ));
            }
            if !neutralised_phases.is_empty() {
                details.push(format!(
                    "fasi sterilizzate: {}",
                    italian::numbers(neutralised_phases)
                ));
            }
            let details = if details.is_empty() {
                String::new()
            } else {
                format!(" ({})", details.join("; "))
            };
            let index = known.validations;
            known.validations += 1;
            let minutes = reference
                .as_ref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default();
            (
                format!("{what}: {verdict}{details}{minutes}, {by}"),
                vec![FieldChange::new(
                    format!("validations[{index}]"),
                    Value::Null,
                    json!({
                        "stage": stage,
                        "outcome": outcome,
                        "unverified_phases": unverified_phases,
                        "neutralised_phases": neutralised_phases,
                        "note": note,
                        "reference": reference,
                    }),
                )],
            )
        }
        ObjectiveEvent::ManagerChanged { from, to, revision } => (
            format!("Responsabile cambiato da {from} a {to} — {}", revision.act),
            vec![FieldChange::new("manager", json!(from), json!(to))],
        ),
        ObjectiveEvent::TitleChanged { from, to, revision } => (
            format!("Titolo cambiato da «{from}» a «{to}» — {}", revision.act),
            vec![FieldChange::new("title", json!(from), json!(to))],
        ),
        ObjectiveEvent::PhaseDescriptionChanged {
            phase,
            from,
            to,
            revision,
        } => (
            format!(
                "Fase {phase}: descrizione cambiata da «{from}» a «{to}» — {}",
                revision.act
            ),
            vec![FieldChange::new(
                format!("phases[{phase}].description"),
                json!(from),
                json!(to),
            )],
        ),
        ObjectiveEvent::IndicatorTargetChanged {
            indicator,
            from,
            to,
            revision,
        } => {
            let pct = |v: &Option<Hundredths>| v.map_or("nessuno".to_string(), italian::pct);
            (
                format!(
                    "Indicatore «{indicator}»: valore atteso cambiato da {} a {} — {}",
                    pct(from),
                    pct(to),
                    revision.act
                ),
                vec![FieldChange::new(
                    format!("indicators[{indicator}].target"),
                    json!(from.map(Pct)),
                    json!(to.map(Pct)),
                )],
            )
        }
        ObjectiveEvent::IndicatorAdded {
            indicator,
            revision,
        } => (
            format!(
                "Aggiunto l'indicatore «{}» ({}{}) — {}",
                indicator.id,
                indicator.description,
                indicator
                    .target_hundredths
                    .map(|t| format!(", valore atteso {}", italian::pct(t)))
                    .unwrap_or_default(),
                revision.act
            ),
            vec![FieldChange::new(
                format!("indicators[{}]", indicator.id),
                Value::Null,
                json!({
                    "id": indicator.id,
                    "description": indicator.description,
                    "kind": indicator.kind,
                    "target": indicator.target_hundredths.map(Pct),
                }),
            )],
        ),
        ObjectiveEvent::IndicatorWithdrawn {
            indicator,
            revision,
        } => (
            format!("Indicatore «{indicator}» stralciato — {}", revision.act),
            vec![FieldChange::new(
                format!("indicators[{indicator}].withdrawn"),
                json!(false),
                json!(true),
            )],
        ),
    };
    if let Some(r) = revision_ref(decoded) {
        act = Some(r.act.clone());
        reason = Some(r.reason.clone());
    }
    ObjectiveEntry {
        summary,
        changes,
        reason,
        act,
    }
}

/// The one-line Italian summary of an objective event, as the trail gives it
/// (without what the trail learns from earlier events, such as the previous
/// measurement of an indicator).
pub fn summarize_objective_event(event: &RecordedEvent, decoded: &ObjectiveEvent) -> String {
    describe_objective_event(event, decoded, &mut Known::default()).summary
}

/// The revision an objective event was made by, if any.
pub fn revision_ref(event: &ObjectiveEvent) -> Option<&RevisionRef> {
    match event {
        ObjectiveEvent::ObjectiveDefined { revision, .. } => revision.as_ref(),
        ObjectiveEvent::DeadlineRevised { revision, .. }
        | ObjectiveEvent::WeightsRevised { revision, .. }
        | ObjectiveEvent::PhaseAdded { revision, .. }
        | ObjectiveEvent::PhaseWithdrawn { revision, .. }
        | ObjectiveEvent::ObjectiveWithdrawn { revision }
        | ObjectiveEvent::ManagerChanged { revision, .. }
        | ObjectiveEvent::TitleChanged { revision, .. }
        | ObjectiveEvent::PhaseDescriptionChanged { revision, .. }
        | ObjectiveEvent::IndicatorTargetChanged { revision, .. }
        | ObjectiveEvent::IndicatorAdded { revision, .. }
        | ObjectiveEvent::IndicatorWithdrawn { revision, .. } => Some(revision),
        ObjectiveEvent::PhaseStarted { .. }
        | ObjectiveEvent::PhaseCompleted { .. }
        | ObjectiveEvent::PhaseCompletionRetracted { .. }
        | ObjectiveEvent::IndicatorMeasured { .. }
        | ObjectiveEvent::ValidationRecorded { .. } => None,
    }
}

/// «— caricamento storico (act): reason», for an entry loaded after the fact.
fn backfill_clause(backfill: Option<&Backfill>) -> String {
    backfill.map_or(String::new(), |b| {
        let behalf = b
            .on_behalf_of
            .as_ref()
            .map(|who| format!(" per conto di {who}"))
            .unwrap_or_default();
        format!(" — caricamento storico{behalf} ({}): {}", b.act, b.reason)
    })
}

fn phase_json(p: &PhaseSpec) -> Value {
    json!({
        "number": p.number,
        "description": p.description,
        "weight": Pct(p.weight_hundredths),
        "involved": p.involved,
        "deadline": p.deadline,
    })
}
