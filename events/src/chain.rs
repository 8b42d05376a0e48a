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
    );
    out
}

/// An event's fields as the canonical form writes them, already rendered: the
/// store renders the data, id and record time once and uses them for the row too.
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

/// Appends the canonical JSON of an event to `out`.
pub fn write_canonical_event(out: &mut String, f: &Fields<'_>) {
    use std::fmt::Write;
    // The envelope's keys, already in sorted order.
    out.push_str("{\"actor\":");
    push_str(out, f.actor);
    out.push_str(",\"correlation\":");
    match f.correlation {
        Some(c) => push_str(out, c),
        None => out.push_str("null"),
    }
    out.push_str(",\"data\":");
    out.push_str(f.data);
    out.push_str(",\"id\":");
    push_str(out, f.id);
    out.push_str(",\"recorded_at\":");
    push_str(out, f.recorded_at);
    out.push_str(",\"role\":");
    push_str(out, f.role);
    // Writing to a String cannot fail.
    let _ = write!(out, ",\"schema\":{},\"seq\":{}", f.schema, f.seq);
    out.push_str(",\"stream\":");
    push_str(out, f.stream);
    out.push_str(",\"type\":");
    push_str(out, f.event_type);
    let _ = write!(out, ",\"version\":{}}}", f.version);
}

/// Appends `text` as a JSON string, escaped exactly as serde_json (and RFC 8785)
/// do: `"` and `\`, the short escapes `\b \f \n \r \t`, other control characters
/// as lowercase `\u00xx`; everything else as it is.
fn push_str(out: &mut String, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    let bytes = text.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let escape: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        // Bytes below 0x80 are whole characters: slicing here keeps UTF-8 intact.
        out.push_str(&text[start..i]);
        if escape.is_empty() {
            out.push_str("\\u00");
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 0xf) as usize] as char);
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&text[start..]);
    out.push('"');
}

/// Appends the canonical JSON of a value to `out`: object keys sorted at every
/// depth, no whitespace. This is also the form the store keeps `data` in.
pub fn write_canonical_value(out: &mut String, value: &Value) {
    match value {
        Value::Object(map) => {
            out.push('{');
            // serde_json's default map is sorted already; sort only if it is not
            // (the `preserve_order` feature keeps insertion order).
            if map.keys().is_sorted() {
                for (i, (key, item)) in map.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    push_str(out, key);
                    out.push(':');
                    write_canonical_value(out, item);
                }
            } else {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                for (i, key) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    push_str(out, key);
                    out.push(':');
                    write_canonical_value(out, &map[key]);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical_value(out, item);
            }
            out.push(']');
        }
        Value::String(s) => push_str(out, s),
        Value::Number(n) => {
            use std::fmt::Write;
            let _ = write!(out, "{n}");
        }
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Null => out.push_str("null"),
    }
}

/// The hash of an event given the hash of the one before it.
pub fn hash(prev_hash: &str, event: &RecordedEvent) -> String {
    hash_canonical(prev_hash, &canonical(event))
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
            canonical(&event()),
            r#"{"actor":"admin","correlation":null,"data":{"a":{"b":[2,{"c":true,"d":null}],"y":"è\n"},"z":1},"id":"00000000-0000-0000-0000-000000000000","recorded_at":"2022-06-10T09:12:03.000000Z","role":"admin","schema":1,"seq":1,"stream":"plan/2022","type":"plan_defined","version":1}"#
        );
    }

    #[test]
    fn strings_are_escaped_exactly_as_serde_json_escapes_them() {
        let mut every: String = (0u32..0x80).filter_map(char::from_u32).collect();
        every.push_str("è—✓😀\u{2028}\u{feff}\u{10ffff}");
        for text in [every.as_str(), "", "plain", "\"\\", "a\u{1}b\u{7f}c"] {
            let mut out = String::new();
            push_str(&mut out, text);
            assert_eq!(out, serde_json::to_string(text).unwrap(), "{text:?}");
        }
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
        assert_ne!(hash(GENESIS, &a), hash(GENESIS, &b));
        assert_eq!(hash(GENESIS, &a).len(), 64);
    }
}
