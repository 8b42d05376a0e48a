//! The hash chain (contract, DESIGN.md §3).
//!
//! `hash = hex(SHA-256(prev_hash + "\n" + canonical(event)))`, where `prev_hash` of
//! seq 1 is 64 zeros and `canonical(event)` is the JSON object of the event's fields
//! other than `hash` and `prev_hash`, keys sorted, no insignificant whitespace,
//! UTF-8. Event data holds no floating-point numbers, so serde_json's compact output
//! of strings and integers is the RFC 8785 form: it escapes only `"`, `\` and
//! control characters (`\b \f \n \r \t`, others as lowercase `\u00xx`), like JCS.
//! Keys are sorted here explicitly, whatever map type serde_json was built with.

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::envelope::RecordedEvent;

/// The `prev_hash` of the first event: 64 zeros.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The canonical JSON text of an event: every field but `hash` and `prev_hash`.
pub fn canonical(event: &RecordedEvent) -> String {
    let mut out = String::with_capacity(256 + event.data.to_string().len());
    // The envelope's keys, already in sorted order.
    out.push_str("{\"actor\":");
    push_str(&mut out, &event.actor);
    out.push_str(",\"correlation\":");
    match &event.correlation {
        Some(c) => push_str(&mut out, c),
        None => out.push_str("null"),
    }
    out.push_str(",\"data\":");
    push_value(&mut out, &event.data);
    out.push_str(",\"id\":");
    push_str(&mut out, &event.id.to_string());
    out.push_str(",\"recorded_at\":");
    push_str(
        &mut out,
        &crate::envelope::format_timestamp(&event.recorded_at),
    );
    out.push_str(",\"role\":");
    push_str(&mut out, &event.role);
    out.push_str(",\"schema\":");
    out.push_str(&event.schema.to_string());
    out.push_str(",\"seq\":");
    out.push_str(&event.seq.to_string());
    out.push_str(",\"stream\":");
    push_str(&mut out, &event.stream);
    out.push_str(",\"type\":");
    push_str(&mut out, &event.event_type);
    out.push_str(",\"version\":");
    out.push_str(&event.version.to_string());
    out.push('}');
    out
}

fn push_str(out: &mut String, text: &str) {
    // serde_json never fails to encode a &str.
    out.push_str(&serde_json::to_string(text).unwrap_or_default());
}

fn push_value(out: &mut String, value: &Value) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_str(out, key);
                out.push(':');
                push_value(out, &map[key]);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_value(out, item);
            }
            out.push(']');
        }
        Value::String(s) => push_str(out, s),
        other => out.push_str(&other.to_string()),
    }
}

/// The hash of an event given the hash of the one before it.
pub fn hash(prev_hash: &str, event: &RecordedEvent) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(b"\n");
    hasher.update(canonical(event).as_bytes());
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
            canonical(&event()),
            r#"{"actor":"admin","correlation":null,"data":{"a":{"b":[2,{"c":true,"d":null}],"y":"è\n"},"z":1},"id":"00000000-0000-0000-0000-000000000000","recorded_at":"2022-06-10T09:12:03.000000Z","role":"admin","schema":1,"seq":1,"stream":"plan/2022","type":"plan_defined","version":1}"#
        );
    }

    #[test]
    fn a_changed_byte_changes_the_hash() {
        let a = event();
        let mut b = event();
        b.actor = "admin2".into();
        assert_ne!(hash(GENESIS, &a), hash(GENESIS, &b));
        assert_eq!(hash(GENESIS, &a).len(), 64);
    }
}
