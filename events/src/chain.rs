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
    let data = canonical_value(&event.data);
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
    /// `data`, already in canonical form ([`canonical_value`]).
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

/// Appends the canonical JSON of an event to `out`: the fields in sorted key
/// order, written straight into `out` (no envelope built, no re-parse of the
/// data, no intermediate string). The output is byte for byte what serde_json
/// writes for the same object with its keys sorted (a test below checks it).
/// `f.data` is spliced in as it is: it must be the output of
/// [`canonical_value`].
///
/// # Errors
/// Never: the result is kept so that callers need not change if the form ever
/// needs a check.
pub fn write_canonical_event(out: &mut String, f: &Fields<'_>) -> serde_json::Result<()> {
    out.reserve(200 + f.data.len() + f.stream.len() + f.actor.len());
    out.push_str("{\"actor\":");
    push_json_str(out, f.actor);
    out.push_str(",\"correlation\":");
    match f.correlation {
        Some(correlation) => push_json_str(out, correlation),
        None => out.push_str("null"),
    }
    out.push_str(",\"data\":");
    out.push_str(f.data);
    out.push_str(",\"id\":");
    push_json_str(out, f.id);
    out.push_str(",\"recorded_at\":");
    push_json_str(out, f.recorded_at);
    out.push_str(",\"role\":");
    push_json_str(out, f.role);
    out.push_str(",\"schema\":");
    push_integer(out, u64::from(f.schema));
    out.push_str(",\"seq\":");
    push_integer(out, f.seq);
    out.push_str(",\"stream\":");
    push_json_str(out, f.stream);
    out.push_str(",\"type\":");
    push_json_str(out, f.event_type);
    out.push_str(",\"version\":");
    push_integer(out, f.version);
    out.push('}');
    Ok(())
}

/// Appends `n` in decimal.
fn push_integer(out: &mut String, n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    let mut n = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[at..] {
        out.push(char::from(d));
    }
}

/// Appends `s` as a JSON string, escaped as serde_json and RFC 8785 escape it:
/// `"` and `\`, the short escapes `\b \f \n \r \t`, other control
/// characters as lowercase `\u00xx`, everything else as it is.
fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    let bytes = s.as_bytes();
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
        // Every byte escaped is ASCII, so `start..i` ends on a char boundary.
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// The canonical JSON of a value: object keys sorted at every depth, no
/// whitespace. This is also the form the store keeps `data` in.
///
/// serde_json's compact output is the canonical form: its map is ordered by key
/// (the workspace never enables `preserve_order`, and a test below fails if
/// something does), and it escapes strings as RFC 8785 does.
/// `serde_json::to_string` writes into a byte buffer, serde_json's fastest
/// writer (writing through `io::Write` into a `String` checked each piece for
/// UTF-8 and was a tenth of the writer thread's time).
#[must_use]
pub fn canonical_value(value: &Value) -> String {
    // Serialising a `Value` (whose keys are strings) does not fail: the
    // fallback is not reached, and kept correct anyway.
    serde_json::to_string(value).unwrap_or_else(|_| value.to_string())
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
    let digest: [u8; 32] = hasher.finalize().into();
    // Into a buffer on the stack: `hex::encode` collects an iterator of chars,
    // a few times slower on the writer's path. The lengths match and hex digits
    // are ASCII, so the fallback is not reached.
    let mut text = [0u8; 64];
    match hex::encode_to_slice(digest, &mut text).map(|()| std::str::from_utf8(&text)) {
        Ok(Ok(text)) => text.to_owned(),
        _ => hex::encode(digest),
    }
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
        let out = canonical_value(&Value::String(text.to_string()));
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
        let out = canonical_value(&Value::Object(map));
        assert_eq!(
            out,
            "{\"Z\":null,\"a\":null,\"b\":null,\"é\":null,\"\u{ffff}\":null,\"😀\":null}"
        );
    }

    #[test]
    fn canonical_value_is_serde_json_compact_output_with_sorted_keys() {
        let value = serde_json::json!({"b": [1, -2, u64::MAX, i64::MIN, null, false],
            "a": {"d": "\u{1f}x", "c": {}}, "": []});
        let out = canonical_value(&value);
        assert_eq!(out, value.to_string());
        assert_eq!(
            out,
            r#"{"":[],"a":{"c":{},"d":"\u001fx"},"b":[1,-2,18446744073709551615,-9223372036854775808,null,false]}"#
        );
    }

    #[test]
    fn strings_are_escaped_exactly_as_serde_json_escapes_them() {
        let mut samples: Vec<String> = (0u32..0x80)
            .filter_map(char::from_u32)
            .map(|c| format!("a{c}b"))
            .collect();
        samples.extend(
            [
                "",
                "è—😀\u{2028}\u{7f}",
                "\"\\\n\u{1}x\u{1f}",
                "fine",
                "\u{0}\u{0}",
            ]
            .map(String::from),
        );
        for text in samples {
            let mut out = String::new();
            push_json_str(&mut out, &text);
            assert_eq!(out, serde_json::to_string(&text).unwrap(), "{text:?}");
        }
    }

    #[test]
    fn the_event_is_written_as_serde_json_writes_it_with_sorted_keys() {
        let data = serde_json::json!({"note": "Fase 1\nconclusa \u{1}\"x\"", "phase": 3});
        let rendered = canonical_value(&data);
        for (correlation, seq) in [
            (None, 0u64),
            (Some("corr\t\u{7}"), u64::MAX),
            (Some(""), 10),
        ] {
            let fields = Fields {
                actor: "Dott.ssa \"Rossi\"\\",
                correlation,
                data: &rendered,
                id: "018f0000-0000-7000-8000-000000000000",
                recorded_at: "2022-06-10T09:12:03.000000Z",
                role: "manager",
                schema: u32::MAX,
                seq,
                stream: "objective/2022-2250-A",
                event_type: "phase_completed",
                version: 1,
            };
            let mut out = String::from("kept");
            write_canonical_event(&mut out, &fields).unwrap();
            let expected = serde_json::json!({
                "actor": fields.actor, "correlation": correlation, "data": data,
                "id": fields.id, "recorded_at": fields.recorded_at, "role": fields.role,
                "schema": fields.schema, "seq": seq, "stream": fields.stream,
                "type": fields.event_type, "version": 1,
            });
            assert_eq!(
                out,
                format!("kept{}", serde_json::to_string(&expected).unwrap())
            );
        }
    }

    #[test]
    fn a_changed_byte_changes_the_hash() {
        let a = event();
        let mut b = event();
        b.actor = "admin2".into();
        assert_ne!(hash(GENESIS, &a).unwrap(), hash(GENESIS, &b).unwrap());
        assert_eq!(hash(GENESIS, &a).unwrap().len(), 64);
    }

    #[test]
    fn the_hash_is_the_lowercase_hex_of_sha_256_over_prev_newline_canonical() {
        let canonical = canonical(&event()).unwrap();
        let digest = Sha256::digest(format!("{GENESIS}\n{canonical}").as_bytes());
        assert_eq!(
            hash_canonical(GENESIS, &canonical),
            hex::encode(digest),
            "the hex of the digest, as the hex crate writes it"
        );
        for prev in ["0".repeat(64), "f".repeat(64), "0123456789abcdef".repeat(4)] {
            let digest = Sha256::digest(format!("{prev}\n{canonical}").as_bytes());
            assert_eq!(hash_canonical(&prev, &canonical), hex::encode(digest));
        }
    }
}
