//! Revision replay: the revisions (*rimodulazioni*) of a plan year, and for one of
//! them every objective it touched as it was just before and just after it, both
//! evaluated at the same date, with a field-by-field diff.
//!
//! "Before" and "after" are record-time cuts of the log: the objective folded from
//! its events with a seq below the revision's first event, and from its events up
//! to the revision's last one. Later events are left out of both, so a sequence of
//! revisions can be walked step by step, and [`objective_at`] gives any objective
//! at any seq.

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use traguardo_events::domain::{PlanEvent, RevisionChange};
use traguardo_events::model::objective_stream;
use traguardo_events::RecordedEvent;
use traguardo_events::StreamRef;
use uuid::Uuid;

use crate::audit::FieldChange;
use crate::objective::{Objective, ObjectiveView};
use crate::ProjectionError;

/// A revision as recorded: the act, why, who, when, and what it asked for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RevisionSummary {
    /// The revision's id (the correlation of all its events).
    pub id: Uuid,
    /// The act, e.g. `D.G.C. n. 182 del 28/07/2022`.
    pub act: String,
    /// The act's date as stated, if it was.
    pub act_date: Option<NaiveDate>,
    /// The date its changes are in force from.
    pub in_force_from: NaiveDate,
    /// Why.
    pub reason: String,
    /// Who recorded it.
    pub actor: String,
    /// In which role.
    pub role: String,
    /// When it was recorded.
    #[serde(with = "traguardo_events::envelope::timestamp")]
    pub recorded_at: DateTime<Utc>,
    /// Seq of its `revision_recorded` event.
    pub seq: u64,
    /// The changes, as requested, in order.
    pub changes: Vec<RevisionChange>,
    /// Keys of the objectives it touched.
    pub objectives: Vec<String>,
    /// Seqs of every event it appended (plan and objective streams), in order.
    pub events: Vec<u64>,
}

/// One revision replayed: what it was, and each touched objective before and after.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RevisionReplay {
    /// The revision.
    #[serde(flatten)]
    pub revision: RevisionSummary,
    /// The valid date both states are evaluated at.
    pub at: NaiveDate,
    /// Every objective it touched, in the revision's order.
    pub touched: Vec<TouchedObjective>,
}

/// One objective touched by a revision.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TouchedObjective {
    /// Its key.
    pub key: String,
    /// Its state just before the revision; `null` for an objective it added.
    pub before: Option<ObjectiveView>,
    /// Its state just after.
    pub after: ObjectiveView,
    /// What differs, field by field (see [`diff`]).
    pub diff: Vec<FieldChange>,
}

/// The revisions of a plan year, oldest first.
///
/// # Errors
/// [`ProjectionError::Decode`] when a plan event cannot be decoded.
pub fn list(year_events: &[RecordedEvent]) -> Result<Vec<RevisionSummary>, ProjectionError> {
    let mut revisions = Vec::new();
    for event in year_events.iter().filter(|e| {
        matches!(StreamRef::parse(&e.stream), Ok(StreamRef::Plan(_)))
            && e.event_type == "revision_recorded"
    }) {
        let decoded: PlanEvent = crate::error::decode(event)?;
        let PlanEvent::RevisionRecorded {
            revision,
            act,
            act_date,
            in_force_from,
            reason,
            changes,
            objectives,
        } = decoded
        else {
            continue;
        };
        let mut events: Vec<u64> = year_events
            .iter()
            .filter(|e| e.seq == event.seq || made_by(e, revision))
            .map(|e| e.seq)
            .collect();
        events.sort_unstable();
        revisions.push(RevisionSummary {
            id: revision,
            act,
            act_date,
            in_force_from,
            reason,
            actor: event.actor.clone(),
            role: event.role.clone(),
            recorded_at: event.recorded_at,
            seq: event.seq,
            changes,
            objectives,
            events,
        });
    }
    revisions.sort_by_key(|r| r.seq);
    Ok(revisions)
}

/// Revision `id` replayed: each objective it touched before and after it, both
/// evaluated at `at`; `None` when the year has no such revision.
///
/// # Errors
/// When an event cannot be decoded or folded, or a touched objective does not
/// exist after the revision (a log that contradicts itself).
pub fn replay(
    year_events: &[RecordedEvent],
    id: Uuid,
    at: NaiveDate,
) -> Result<Option<RevisionReplay>, ProjectionError> {
    let Some(revision) = list(year_events)?.into_iter().find(|r| r.id == id) else {
        return Ok(None);
    };
    let first = revision.events.first().copied().unwrap_or(revision.seq);
    let last = revision.events.last().copied().unwrap_or(revision.seq);
    let mut touched = Vec::with_capacity(revision.objectives.len());
    for key in &revision.objectives {
        let before = fold(year_events, key, |seq| seq < first)?;
        let after =
            fold(year_events, key, |seq| seq <= last)?.ok_or(ProjectionError::Impossible {
                seq: revision.seq,
                message: format!("revision {id} touched {key}, which has no events"),
            })?;
        let before = before.map(|o| o.evaluate(at));
        let after = after.evaluate(at);
        touched.push(TouchedObjective {
            key: key.clone(),
            diff: diff(before.as_ref(), &after),
            before,
            after,
        });
    }
    Ok(Some(RevisionReplay {
        revision,
        at,
        touched,
    }))
}

/// Objective `key` as the log held it once event `seq` was appended (its events
/// with a seq up to and including `seq`); `None` when it did not exist yet.
///
/// # Errors
/// When one of its events cannot be decoded or folded.
pub fn objective_at(
    events: &[RecordedEvent],
    key: &str,
    seq: u64,
) -> Result<Option<Objective>, ProjectionError> {
    fold(events, key, |s| s <= seq)
}

fn fold(
    events: &[RecordedEvent],
    key: &str,
    keep: impl Fn(u64) -> bool,
) -> Result<Option<Objective>, ProjectionError> {
    let stream = objective_stream(key);
    let mut mine: Vec<&RecordedEvent> = events
        .iter()
        .filter(|e| e.stream == stream && keep(e.seq))
        .collect();
    mine.sort_by_key(|e| e.seq);
    Objective::from_events(mine)
}

/// Whether `event` belongs to revision `id`: its correlation, or the revision an
/// objective event names in its data.
fn made_by(event: &RecordedEvent, id: Uuid) -> bool {
    let named = event
        .data
        .get("revision")
        .and_then(|r| r.get("id"))
        .and_then(Value::as_str)
        .and_then(|s| Uuid::parse_str(s).ok());
    named == Some(id)
        || (named.is_none()
            && matches!(StreamRef::parse(&event.stream), Ok(StreamRef::Objective(_)))
            && event.correlation.as_deref() == Some(id.to_string().as_str()))
}

/// The fields that differ between two states of an objective, in the order of the
/// state's keys (alphabetical), list items in the order of the state after.
///
/// Paths follow the state's JSON: `final_deadline`, `score.on_time_pct`,
/// `withdrawn`; a phase is named by its number (`phases[2].deadline` is phase 2),
/// an indicator by its id (`indicators[rimborsi-90gg].latest`), other list items by
/// position. A list of plain values (`involved`) is one field. An item present on
/// one side only is one change to or from `null`; with no `before`, every field is
/// a change from `null`. `version` and `last_seq`, which every event moves, are
/// left out.
pub fn diff(before: Option<&ObjectiveView>, after: &ObjectiveView) -> Vec<FieldChange> {
    let to_value = |view: &ObjectiveView| {
        let mut value = serde_json::to_value(view).unwrap_or(Value::Null);
        if let Value::Object(map) = &mut value {
            map.remove("version");
            map.remove("last_seq");
        }
        value
    };
    let before = before.map_or(Value::Object(Map::new()), to_value);
    let mut changes = Vec::new();
    diff_values("", &before, &to_value(after), &mut changes);
    changes
}

/// Recursive diff of two JSON values under `path`.
pub fn diff_values(path: &str, before: &Value, after: &Value, out: &mut Vec<FieldChange>) {
    let join = |key: &str| {
        if path.is_empty() {
            key.to_string()
        } else {
            format!("{path}.{key}")
        }
    };
    match (before, after) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in b {
                diff_values(&join(key), a.get(key).unwrap_or(&Value::Null), value, out);
            }
            for (key, value) in a.iter().filter(|(k, _)| !b.contains_key(*k)) {
                diff_values(&join(key), value, &Value::Null, out);
            }
        }
        (Value::Array(a), Value::Array(b)) if a.iter().chain(b).any(Value::is_object) => {
            let keyed = |items: &[Value]| -> Vec<(String, Value)> {
                items
                    .iter()
                    .enumerate()
                    .map(|(i, item)| (item_key(item, i), item.clone()))
                    .collect()
            };
            let (a, b) = (keyed(a), keyed(b));
            for (key, value) in &b {
                let old = a
                    .iter()
                    .find(|(k, _)| k == key)
                    .map_or(&Value::Null, |(_, v)| v);
                diff_values(&format!("{path}[{key}]"), old, value, out);
            }
            for (key, value) in a.iter().filter(|(k, _)| !b.iter().any(|(x, _)| x == k)) {
                diff_values(&format!("{path}[{key}]"), value, &Value::Null, out);
            }
        }
        (a, b) if a != b => out.push(FieldChange::new(path, a.clone(), b.clone())),
        _ => {}
    }
}

/// A list item's name in a path: a phase's number, an indicator's id, else its
/// position.
fn item_key(item: &Value, index: usize) -> String {
    match (item.get("number"), item.get("id")) {
        (Some(Value::Number(n)), _) => n.to_string(),
        (_, Some(Value::String(id))) => id.clone(),
        _ => index.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn phases_are_named_by_number_and_plain_lists_are_one_field() {
        let before = json!({"phases": [
            {"number": 1, "deadline": "2022-05-30", "involved": ["2269"]},
            {"number": 2, "deadline": "2022-06-30", "involved": []},
        ]});
        let after = json!({"phases": [
            {"number": 1, "deadline": "2022-05-30", "involved": ["2269", "2250"]},
            {"number": 2, "deadline": "2022-07-31", "involved": []},
            {"number": 3, "deadline": "2022-09-30", "involved": []},
        ]});
        let mut out = Vec::new();
        diff_values("", &before, &after, &mut out);
        assert_eq!(
            out,
            vec![
                FieldChange::new(
                    "phases[1].involved",
                    json!(["2269"]),
                    json!(["2269", "2250"])
                ),
                FieldChange::new(
                    "phases[2].deadline",
                    json!("2022-06-30"),
                    json!("2022-07-31")
                ),
                FieldChange::new(
                    "phases[3]",
                    Value::Null,
                    json!({"number": 3, "deadline": "2022-09-30", "involved": []})
                ),
            ]
        );
    }

    #[test]
    fn an_item_that_disappears_is_a_change_to_null() {
        let before = json!({"indicators": [{"id": "x", "latest": null}]});
        let after = json!({"indicators": []});
        let mut out = Vec::new();
        diff_values("", &before, &after, &mut out);
        assert_eq!(
            out,
            vec![FieldChange::new(
                "indicators[x]",
                json!({"id": "x", "latest": null}),
                Value::Null
            )]
        );
    }
}
