//! The envelope: what every event carries besides its data (DESIGN.md §3).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::domain::DecodeByTag;

/// An event as the log holds it, with its position and its link in the chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RecordedEvent {
    /// Global, gapless position in the log, from 1.
    pub seq: u64,
    /// UUID v7 of the event.
    pub id: Uuid,
    /// The stream it belongs to, e.g. `objective/2022-2250-A`.
    pub stream: String,
    /// Position within its stream, from 1.
    pub version: u64,
    /// The stable type string, e.g. `phase_completed`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Schema number of `data` for this type.
    pub schema: u32,
    /// The facts, as JSON (never floating point).
    #[schema(value_type = Object)]
    pub data: Value,
    /// Who did it: the actor of the token that asked.
    pub actor: String,
    /// In which role: `admin`, `manager`, `validator`, `auditor`, `system`.
    pub role: String,
    /// Record time: when the system learnt it (UTC, microseconds).
    #[serde(with = "timestamp")]
    #[schema(value_type = String, format = DateTime)]
    pub recorded_at: DateTime<Utc>,
    /// The request or revision this event came from.
    pub correlation: Option<String>,
    /// Hash of the event before (64 zeros for seq 1).
    pub prev_hash: String,
    /// `SHA-256(prev_hash + "\n" + canonical(event))`, hex.
    pub hash: String,
}

impl RecordedEvent {
    /// Decodes the data into the domain event of its `type`
    /// ([`DecodeByTag`]: the tag is the variant, the data its fields).
    ///
    /// # Errors
    /// [`crate::Error::Corrupt`] when the type is unknown or the data does not fit.
    pub fn decode<E: DecodeByTag>(&self) -> crate::Result<E> {
        if !self.data.is_object() {
            return Err(self.corrupt("data is not a JSON object".into()));
        }
        E::deserialize_by_tag(&self.event_type, &self.data).map_err(|e| self.corrupt_data(&e))
    }

    /// Decodes `data`, the event's data as the stored JSON text, into the domain
    /// event of its `type`, reading the text once and in place: no
    /// `serde_json::Value`, no copy, no buffer of the whole object (replay of the
    /// whole log at start goes this way).
    ///
    /// # Errors
    /// [`crate::Error::Corrupt`] when the type is unknown or the data does not fit.
    pub fn decode_text<E: DecodeByTag>(&self, data: &str) -> crate::Result<E> {
        if !data.trim_start().starts_with('{') {
            return Err(self.corrupt("data is not a JSON object".into()));
        }
        E::decode_by_tag(&self.event_type, data).map_err(|e| self.corrupt_data(&e))
    }

    fn corrupt(&self, message: String) -> crate::Error {
        crate::Error::Corrupt {
            seq: self.seq,
            message,
        }
    }

    fn corrupt_data(&self, e: &serde_json::Error) -> crate::Error {
        self.corrupt(format!("{} event: {e}", self.event_type))
    }

    /// The record date of the event, in Italy ([`crate::clock::TIME_ZONE`]).
    pub fn recorded_on(&self) -> chrono::NaiveDate {
        crate::clock::local_date(&self.recorded_at)
    }
}

/// An event about to be appended: the store gives it seq, id, version, record time
/// and hashes.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// The stream it goes to.
    pub stream: String,
    /// The stable type string.
    pub event_type: String,
    /// Schema number of `data`.
    pub schema: u32,
    /// The facts (a JSON object, no floating point).
    pub data: Value,
    /// Who did it.
    pub actor: String,
    /// In which role.
    pub role: String,
    /// The request or revision it belongs to.
    pub correlation: Option<String>,
}

impl NewEvent {
    /// Wraps a domain event (an enum tagged by `type`) in an envelope.
    ///
    /// # Errors
    /// [`crate::Error::InvalidAppend`] if the event does not serialize to a tagged
    /// object.
    pub fn from_domain<E: Serialize + crate::domain::Schema>(
        stream: impl Into<String>,
        event: &E,
        actor: &Actor,
        correlation: Option<String>,
    ) -> crate::Result<Self> {
        let Value::Object(mut data) = serde_json::to_value(event)? else {
            return Err(crate::Error::InvalidAppend("event is not an object".into()));
        };
        let Some(Value::String(event_type)) = data.remove("type") else {
            return Err(crate::Error::InvalidAppend("event has no type tag".into()));
        };
        Ok(NewEvent {
            stream: stream.into(),
            event_type,
            schema: event.schema(),
            data: Value::Object(data),
            actor: actor.name.clone(),
            role: actor.role.clone(),
            correlation,
        })
    }
}

/// Who acts, as written on every event: the name and role of a token's holder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The actor's name, e.g. `Dott. Stefano Specchia`.
    pub name: String,
    /// The role string, e.g. `manager`.
    pub role: String,
}

impl Actor {
    /// An actor with a name and a role.
    pub fn new(name: impl Into<String>, role: impl Into<String>) -> Self {
        Actor {
            name: name.into(),
            role: role.into(),
        }
    }
}

/// What a stream's version must be for an append to go through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// Append whatever the version (no concurrency check).
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream must be at exactly this version.
    Exact(u64),
}

impl ExpectedVersion {
    /// Whether a stream at version `actual` satisfies this expectation.
    pub fn matches(self, actual: u64) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => actual == 0,
            ExpectedVersion::Exact(v) => v == actual,
        }
    }
}

impl std::fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExpectedVersion::Any => f.write_str("any"),
            ExpectedVersion::NoStream => f.write_str("no stream (0)"),
            ExpectedVersion::Exact(v) => write!(f, "{v}"),
        }
    }
}

/// One stream's part of a batch: its expected version and its new events.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamAppend {
    /// The stream.
    pub stream: String,
    /// The version it must be at.
    pub expected: ExpectedVersion,
}

/// Events for one or more streams, appended all or nothing.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppendBatch {
    /// Expected versions; a stream not named here is appended with
    /// [`ExpectedVersion::Any`].
    pub expectations: Vec<StreamAppend>,
    /// The events, in the order they get their seqs.
    pub events: Vec<NewEvent>,
}

impl AppendBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requires `stream` to be at `expected` when the batch is appended.
    pub fn expect(mut self, stream: impl Into<String>, expected: ExpectedVersion) -> Self {
        self.expectations.push(StreamAppend {
            stream: stream.into(),
            expected,
        });
        self
    }

    /// Adds an event.
    pub fn push(mut self, event: NewEvent) -> Self {
        self.events.push(event);
        self
    }
}

/// The last event of the log: what a report or an auditor pins a result to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Head {
    /// Its seq (0 for an empty log).
    pub seq: u64,
    /// Its hash (64 zeros for an empty log).
    pub hash: String,
}

impl Head {
    /// The head of an empty log.
    pub fn genesis() -> Self {
        Head {
            seq: 0,
            hash: crate::chain::GENESIS.to_string(),
        }
    }
}

/// Formats a record time the one way it is stored and hashed:
/// `2022-06-10T09:12:03.000000Z`.
pub fn format_timestamp(at: &DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Serde for record times in the stored format.
pub mod timestamp {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes as `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_timestamp(at))
    }

    /// Parses any RFC 3339 timestamp.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ObjectiveEvent, OrgEvent};

    fn recorded(event_type: &str, data: Value) -> RecordedEvent {
        RecordedEvent {
            seq: 7,
            id: Uuid::nil(),
            stream: "objective/2022-2250-A".into(),
            version: 2,
            event_type: event_type.into(),
            schema: 1,
            data,
            actor: "a".into(),
            role: "manager".into(),
            recorded_at: DateTime::parse_from_rfc3339("2022-06-10T09:12:03Z")
                .unwrap()
                .with_timezone(&Utc),
            correlation: None,
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    #[test]
    fn data_decodes_the_same_from_its_value_and_from_its_stored_text() {
        let cases = [
            (
                "phase_completed",
                serde_json::json!({"phase": 3, "on": "2022-05-28", "note": "fatto \"bene\" — ok\n", "evidence": ["prot. 1/2022"]}),
            ),
            (
                "phase_started",
                serde_json::json!({"phase": 1, "on": "2022-02-01"}),
            ),
        ];
        for (event_type, data) in cases {
            let event = recorded(event_type, data.clone());
            let from_value: ObjectiveEvent = event.decode().unwrap();
            let from_text: ObjectiveEvent = event.decode_text(&data.to_string()).unwrap();
            assert_eq!(from_value, from_text);
        }
        let revoked = recorded(
            "token_revoked",
            serde_json::json!({"token_id": Uuid::nil()}),
        );
        let text: OrgEvent = revoked.decode_text(&revoked.data.to_string()).unwrap();
        assert_eq!(
            text,
            OrgEvent::TokenRevoked {
                token_id: Uuid::nil()
            }
        );
    }

    #[test]
    fn text_that_is_not_an_object_or_of_another_type_is_a_corrupt_event() {
        let event = recorded("phase_started", Value::Null);
        assert!(matches!(
            event.decode_text::<ObjectiveEvent>("[1]"),
            Err(crate::Error::Corrupt { seq: 7, .. })
        ));
        assert!(matches!(
            event.decode_text::<ObjectiveEvent>("{}"),
            Err(crate::Error::Corrupt { seq: 7, .. })
        ));
        let unknown = recorded("phase_teleported", Value::Null);
        assert!(matches!(
            unknown.decode_text::<ObjectiveEvent>(r#"{"phase": 1}"#),
            Err(crate::Error::Corrupt { .. })
        ));
    }
}
