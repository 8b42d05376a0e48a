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
    /// The envelope, borrowed: what a fold reads, nothing copied.
    pub fn envelope(&self) -> EventRef<'_> {
        EventRef {
            seq: self.seq,
            id: self.id,
            stream: &self.stream,
            version: self.version,
            event_type: &self.event_type,
            schema: self.schema,
            actor: &self.actor,
            role: &self.role,
            recorded_at: self.recorded_at,
            correlation: self.correlation.as_deref(),
            prev_hash: &self.prev_hash,
            hash: &self.hash,
        }
    }

    /// Decodes the data into the domain event of its `type`
    /// ([`DecodeByTag`]: the tag is the variant, the data its fields).
    ///
    /// # Errors
    /// [`crate::Error::Corrupt`] when the type is unknown or the data does not fit.
    pub fn decode<E: DecodeByTag>(&self) -> crate::Result<E> {
        let envelope = self.envelope();
        if !self.data.is_object() {
            return Err(envelope.corrupt("data is not a JSON object".into()));
        }
        E::deserialize_by_tag(&self.event_type, &self.data).map_err(|e| envelope.corrupt_data(&e))
    }

    /// See [`EventRef::decode_text`].
    ///
    /// # Errors
    /// [`crate::Error::Corrupt`] when the type is unknown or the data does not fit.
    pub fn decode_text<E: DecodeByTag>(&self, data: &str) -> crate::Result<E> {
        self.envelope().decode_text(data)
    }

    /// See [`EventRef::recorded_on`].
    pub fn recorded_on(&self) -> chrono::NaiveDate {
        self.envelope().recorded_on()
    }
}

/// An event's envelope borrowed from where it was read (a row of the log, a
/// page of a `COPY`, a [`RecordedEvent`]), its data aside: what replay and the
/// folds read, without a copy of its texts. [`EventRef::to_recorded`] makes a
/// [`RecordedEvent`] of it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EventRef<'a> {
    /// See [`RecordedEvent::seq`].
    pub seq: u64,
    /// See [`RecordedEvent::id`].
    pub id: Uuid,
    /// See [`RecordedEvent::stream`].
    pub stream: &'a str,
    /// See [`RecordedEvent::version`].
    pub version: u64,
    /// See [`RecordedEvent::event_type`].
    pub event_type: &'a str,
    /// See [`RecordedEvent::schema`].
    pub schema: u32,
    /// See [`RecordedEvent::actor`].
    pub actor: &'a str,
    /// See [`RecordedEvent::role`].
    pub role: &'a str,
    /// See [`RecordedEvent::recorded_at`].
    pub recorded_at: DateTime<Utc>,
    /// See [`RecordedEvent::correlation`].
    pub correlation: Option<&'a str>,
    /// See [`RecordedEvent::prev_hash`].
    pub prev_hash: &'a str,
    /// See [`RecordedEvent::hash`].
    pub hash: &'a str,
}

impl EventRef<'_> {
    /// The event with its texts copied and `data` as its data.
    pub fn to_recorded(&self, data: Value) -> RecordedEvent {
        RecordedEvent {
            seq: self.seq,
            id: self.id,
            stream: self.stream.to_string(),
            version: self.version,
            event_type: self.event_type.to_string(),
            schema: self.schema,
            data,
            actor: self.actor.to_string(),
            role: self.role.to_string(),
            recorded_at: self.recorded_at,
            correlation: self.correlation.map(str::to_string),
            prev_hash: self.prev_hash.to_string(),
            hash: self.hash.to_string(),
        }
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
        E::decode_by_tag(self.event_type, data).map_err(|e| self.corrupt_data(&e))
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
    let mut buf = [0; TIMESTAMP_LEN];
    match write_timestamp(at, &mut buf) {
        Some(text) => text.to_owned(),
        None => at.to_rfc3339_opts(SecondsFormat::Micros, true),
    }
}

/// The length of a record time in the stored format, for years 0 to 9999.
pub const TIMESTAMP_LEN: usize = 27;

/// Writes a record time in the stored format into `buf`, as
/// [`format_timestamp`] does, with no allocation and no formatting machinery
/// (every JSON answer writes one per note and measurement). `None` for a year
/// outside 0 to 9999 or a leap second, which chrono's own formatting writes.
pub fn write_timestamp<'b>(
    at: &DateTime<Utc>,
    buf: &'b mut [u8; TIMESTAMP_LEN],
) -> Option<&'b str> {
    use chrono::Timelike;
    let nanos = at.nanosecond();
    if nanos >= 1_000_000_000 {
        return None;
    }
    let (date, time) = buf.split_at_mut(10);
    write_date_into(&at.date_naive(), date.try_into().ok()?)?;
    time[0] = b'T';
    put_digits(&mut time[1..3], at.hour());
    time[3] = b':';
    put_digits(&mut time[4..6], at.minute());
    time[6] = b':';
    put_digits(&mut time[7..9], at.second());
    time[9] = b'.';
    // Truncated to microseconds, as chrono's `SecondsFormat::Micros` does.
    put_digits(&mut time[10..16], nanos / 1_000);
    time[16] = b'Z';
    std::str::from_utf8(buf).ok()
}

/// The length of an ISO date, for years 0 to 9999.
pub const DATE_LEN: usize = 10;

/// Writes `date` as `YYYY-MM-DD` into `buf`, as chrono's `Display` does, with
/// no formatting machinery. `None` for a year outside 0 to 9999 (chrono writes
/// those with a sign).
pub fn write_date<'b>(date: &chrono::NaiveDate, buf: &'b mut [u8; DATE_LEN]) -> Option<&'b str> {
    write_date_into(date, buf)?;
    std::str::from_utf8(buf).ok()
}

fn write_date_into(date: &chrono::NaiveDate, buf: &mut [u8; DATE_LEN]) -> Option<()> {
    use chrono::Datelike;
    let year = u32::try_from(date.year()).ok().filter(|y| *y <= 9999)?;
    put_digits(&mut buf[0..4], year);
    buf[4] = b'-';
    put_digits(&mut buf[5..7], date.month());
    buf[7] = b'-';
    put_digits(&mut buf[8..10], date.day());
    Some(())
}

/// Writes `value`'s last `out.len()` decimal digits, zero-padded.
fn put_digits(out: &mut [u8], mut value: u32) {
    for digit in out.iter_mut().rev() {
        // A remainder of a division by 10 is below 10: the cast cannot truncate.
        *digit = b'0' + (value % 10) as u8;
        value /= 10;
    }
}

/// Serde for record times in the stored format.
pub mod timestamp {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes as `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0; super::TIMESTAMP_LEN];
        match super::write_timestamp(at, &mut buf) {
            Some(text) => s.serialize_str(text),
            None => s.serialize_str(&super::format_timestamp(at)),
        }
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
    use proptest::prelude::*;

    proptest! {
        /// The hand-written formats equal chrono's over its whole range of
        /// times, leap seconds included (those fall back to chrono).
        #[test]
        fn timestamps_and_dates_are_written_as_chrono_writes_them(
            seconds in chrono::DateTime::<Utc>::MIN_UTC.timestamp()..=chrono::DateTime::<Utc>::MAX_UTC.timestamp(),
            nanos in prop_oneof![0u32..1_000_000_000, 1_000_000_000u32..2_000_000_000],
        ) {
            let Some(at) = DateTime::<Utc>::from_timestamp(seconds, nanos) else {
                return Ok(());
            };
            prop_assert_eq!(
                format_timestamp(&at),
                at.to_rfc3339_opts(SecondsFormat::Micros, true)
            );
            let date = at.date_naive();
            let mut buf = [0; DATE_LEN];
            match write_date(&date, &mut buf) {
                Some(text) => prop_assert_eq!(text, date.to_string()),
                None => prop_assert!(!(0..=9999).contains(&chrono::Datelike::year(&date))),
            }
        }
    }

    #[test]
    fn the_stored_format_of_ordinary_and_edge_times() {
        let at = |text: &str| {
            DateTime::parse_from_rfc3339(text)
                .unwrap()
                .with_timezone(&Utc)
        };
        for (given, stored) in [
            ("2022-06-10T09:12:03Z", "2022-06-10T09:12:03.000000Z"),
            (
                "0000-01-01T00:00:00.000000999Z",
                "0000-01-01T00:00:00.000000Z",
            ),
            (
                "9999-12-31T23:59:59.999999999Z",
                "9999-12-31T23:59:59.999999Z",
            ),
        ] {
            assert_eq!(format_timestamp(&at(given)), stored);
        }
        let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_micro_opt(23, 59, 59, 1_500_000)
            .unwrap()
            .and_utc();
        assert_eq!(format_timestamp(&leap), "2016-12-31T23:59:60.500000Z");
    }
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
