//! The hash chain (contract, DESIGN.md §3).
//!
//! `hash = hex(SHA-256(prev_hash + "\n" + canonical(event)))`, where `prev_hash` of
//! seq 1 is 64 zeros and `canonical(event)` is the JSON object of the event's fields
//! other than `hash` and `prev_hash`, keys sorted, no insignificant whitespace,
//! UTF-8. Event data holds no floating-point numbers, so serde_json's compact output
//! of strings and integers is the RFC 8785 form: it escapes only `"`, `\` and
//! control characters (`\b \f \n \r \t`, others as lowercase `\u00xx`), like JCS.
//! The envelope is a struct whose fields are declared in sorted order; the data is
//! a `serde_json::Value`, whose map is sorted by key.

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::envelope::RecordedEvent;

/// The `prev_hash` of the first event: 64 zeros.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The canonical JSON text of an event: every field but `hash` and `prev_hash`.
///
/// # Errors
/// Never for an event whose data came from serde_json; the error is kept rather
/// than hidden.
pub fn canonical(event: &RecordedEvent) -> serde_json::Result<String> {
    let mut data = String::with_capacity(256);
    write_canonical_value(&mut data, &event.data);
    let mut id = uuid::Uuid::encode_buffer();
    let mut out = String::with_capacity(256 + data.len());
    write_canonical_event(
        &mut out,
        &Fields {
            actor: &event.actor,
            correlation: event.correlation.as_deref(),
            data: &data,
            id: event.id.hyphenated().encode_lower(&mut id),
            recorded_at: &crate::envelope::format_timestamp(&event.recorded_at),
            role: &event.role,
            schema: event.schema,
            seq: event.seq,
            stream: &event.stream,
            event_type: &event.event_type,
            version: event.version,
        },
    )?;
    Ok(out)
}

/// An event's fields as the canonical form writes them, already rendered: the
/// store renders the data, id and record time once and uses them for the row too.
///
/// The fields are declared in the order the canonical form sorts them, so that
/// serde's derive writes them sorted; `data` is spliced in as it was rendered.
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a> {
    /// `actor`.
    pub actor: &'a str,
    /// `correlation`.
    pub correlation: Option<&'a str>,
    /// `data`, already in canonical form ([`write_canonical_value`]).
    pub data: &'a str,
    /// `id`, hyphenated lowercase.
    pub id: &'a str,
    /// `recorded_at`, as [`crate::envelope::format_timestamp`] writes it.
    pub recorded_at: &'a str,
    /// `role`.
    pub role: &'a str,
    /// `schema`.
    pub schema: u32,
    /// `seq`.
    pub seq: u64,
    /// `stream`.
    pub stream: &'a str,
    /// `type`.
    pub event_type: &'a str,
    /// `version`.
    pub version: u64,
}

/// The envelope as serialised: keys in sorted order, `data` as raw JSON text.
#[derive(Serialize)]
struct Envelope<'a> {
    actor: &'a str,
    correlation: Option<&'a str>,
    data: &'a RawValue,
    id: &'a str,
    recorded_at: &'a str,
    role: &'a str,
    schema: u32,
    seq: u64,
    stream: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
    version: u64,
}

/// Appends the canonical JSON of an event to `out`.
///
/// # Errors
/// When `f.data` is not JSON text (it always is when it comes from
/// [`write_canonical_value`]).
pub fn write_canonical_event(out: &mut String, f: &Fields<'_>) -> serde_json::Result<()> {
    let envelope = Envelope {
        actor: f.actor,
        correlation: f.correlation,
        data: serde_json::from_str(f.data)?,
        id: f.id,
        recorded_at: f.recorded_at,
        role: f.role,
        schema: f.schema,
        seq: f.seq,
        stream: f.stream,
        event_type: f.event_type,
        version: f.version,
    };
    out.push_str(&serde_json::to_string(&envelope)?);
    Ok(())
}

/// Appends the canonical JSON of a value to `out`: object keys sorted at every
/// depth, no whitespace. This is also the form the store keeps `data` in.
///
/// serde_json's compact output is the canonical form: its map is ordered by key
/// (the workspace never enables `preserve_order`, and a test below fails if
/// something does), and it escapes strings as RFC 8785 does.
pub fn write_canonical_value(out: &mut String, value: &Value) {
    out.push_str(&value.to_string());
}

/// The hash of an event given the hash of the one before it.
///
/// # Errors
/// As [`canonical`].
pub fn hash(prev_hash: &str, event: &RecordedEvent) -> serde_json::Result<String> {
    Ok(hash_canonical(prev_hash, &canonical(event)?))
}

/// `hex(SHA-256(prev_hash + "\n" + canonical))`.
pub fn hash_canonical(prev_hash: &str, canonical: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(b"\n");
    hasher.update(canonical.as_bytes());
    hex::encode(hasher.finalize())
}

/// Whether a JSON value holds a floating-point number anywhere (refused in events).
pub fn has_float(value: &Value) -> bool {
    match value {
        Value::Number(n) => !(n.is_i64() || n.is_u64()),
        Value::Array(items) => items.iter().any(has_float),
        Value::Object(map) => map.values().any(has_float),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn event() -> RecordedEvent {
        RecordedEvent {
            seq: 1,
            id: uuid::Uuid::nil(),
            stream: "plan/2022".into(),
            version: 1,
            event_type: "plan_defined".into(),
            schema: 1,
            data: serde_json::json!({"z": 1, "a": {"y": "è\n", "b": [2, {"d": null, "c": true}]}}),
            actor: "admin".into(),
            role: "admin".into(),
            recorded_at: chrono::Utc.with_ymd_and_hms(2022, 6, 10, 9, 12, 3).unwrap(),
            correlation: None,
            prev_hash: GENESIS.into(),
            hash: String::new(),
        }
    }

    #[test]
    fn canonical_form_sorts_keys_at_every_depth_without_whitespace() {
        assert_eq!(
            canonical(&event()).unwrap(),
            r#"{"actor":"admin","correlation":null,"data":{"a":{"b":[2,{"c":true,"d":null}],"y":"è\n"},"z":1},"id":"00000000-0000-0000-0000-000000000000","recorded_at":"2022-06-10T09:12:03.000000Z","role":"admin","schema":1,"seq":1,"stream":"plan/2022","type":"plan_defined","version":1}"#
        );
    }

    #[test]
    fn strings_are_escaped_as_rfc_8785_escapes_them() {
        // RFC 8785 §3.2.2.2: the short escapes, other controls as lowercase
        // \u00xx, and everything else (DEL, non-ASCII, U+2028) as it is.
        let text = "\u{1}\u{8}\u{c}\n\r\t\u{1f}\"\\/\u{7f}è—😀\u{2028}";
        let mut out = String::new();
        write_canonical_value(&mut out, &Value::String(text.to_string()));
        assert_eq!(
            out,
            "\"\\u0001\\b\\f\\n\\r\\t\\u001f\\\"\\\\/\u{7f}è—😀\u{2028}\""
        );
    }

    #[test]
    fn keys_are_sorted_by_code_point_whatever_order_they_were_inserted_in() {
        let mut map = serde_json::Map::new();
        for key in ["é", "b", "Z", "a", "😀", "\u{ffff}"] {
            map.insert(key.to_string(), Value::Null);
        }
        let mut out = String::new();
        write_canonical_value(&mut out, &Value::Object(map));
        assert_eq!(
            out,
            "{\"Z\":null,\"a\":null,\"b\":null,\"é\":null,\"\u{ffff}\":null,\"😀\":null}"
        );
    }

    #[test]
    fn canonical_value_is_serde_json_compact_output_with_sorted_keys() {
        let value = serde_json::json!({"b": [1, -2, u64::MAX, i64::MIN, null, false],
            "a": {"d": "\u{1f}x", "c": {}}, "": []});
        let mut out = String::new();
        write_canonical_value(&mut out, &value);
        assert_eq!(out, value.to_string());
        assert_eq!(
            out,
            r#"{"":[],"a":{"c":{},"d":"\u001fx"},"b":[1,-2,18446744073709551615,-9223372036854775808,null,false]}"#
        );
    }

    #[test]
    fn a_changed_byte_changes_the_hash() {
        let a = event();
        let mut b = event();
        b.actor = "admin2".into();
        assert_ne!(hash(GENESIS, &a).unwrap(), hash(GENESIS, &b).unwrap());
        assert_eq!(hash(GENESIS, &a).unwrap().len(), 64);
    }
}
