//! Interned names and boxed texts: how the read model keeps its strings.
//!
//! A million-event read model repeats a few hundred names (actors, roles, unit
//! codes, managers, outside bodies, objective keys) millions of times.
//! [`Name`] is an interned string ([`ustr::Ustr`]): one pointer, the text kept
//! once for the life of the process, compared by pointer, serialised as the
//! plain string (so a snapshot stays self-describing and re-interns on decode).
//! Only names whose set is bounded by what plans and tokens define are
//! interned; free text (notes, descriptions) is a [`Text`]: a boxed `str`,
//! without the spare capacity and the third word of a `String`.

use std::cell::RefCell;
use std::collections::HashMap;

/// An interned name: actors, roles, unit codes, managers, keys.
pub type Name = ustr::Ustr;

/// A free text, kept once and never grown.
pub type Text = Box<str>;

/// The name `text`, interned.
pub fn name(text: &str) -> Name {
    ustr::ustr(text)
}

/// The stable identity of a display name (`actor_id_of`, Unicode NFKC and case
/// folding), memoised per thread: the fold asks it for every start and
/// completion, and a log has few actors.
pub fn actor_id_of(actor: Name) -> Name {
    thread_local! {
        static IDS: RefCell<HashMap<Name, Name>> = RefCell::new(HashMap::new());
    }
    IDS.with(|ids| {
        *ids.borrow_mut()
            .entry(actor)
            .or_insert_with(|| name(&traguardo_events::identity::actor_id_of(&actor)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_one_pointer_and_equal_names_are_one_string() {
        assert_eq!(std::mem::size_of::<Name>(), std::mem::size_of::<usize>());
        let a = name(&String::from("Dott.ssa Rossi"));
        let b = name("Dott.ssa Rossi");
        assert_eq!(a, b);
        assert!(std::ptr::eq(a.as_str(), b.as_str()));
    }

    #[test]
    fn a_name_goes_through_serde_as_its_plain_string() {
        let a = name("2250");
        assert_eq!(serde_json::to_string(&a).unwrap(), "\"2250\"");
        let back: Name = serde_json::from_str("\"2250\"").unwrap();
        assert_eq!(back, a);
        let packed = rmp_serde::to_vec(&a).unwrap();
        assert_eq!(rmp_serde::from_slice::<Name>(&packed).unwrap(), a);
    }

    #[test]
    fn a_record_time_goes_through_serde_as_nanoseconds_unchanged() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct At(#[serde(with = "nanos")] chrono::DateTime<chrono::Utc>);
        let at = At(
            chrono::DateTime::parse_from_rfc3339("2022-06-10T09:12:03.123456789Z")
                .unwrap()
                .to_utc(),
        );
        let packed = rmp_serde::to_vec(&at).unwrap();
        assert_eq!(rmp_serde::from_slice::<At>(&packed).unwrap(), at);
        assert!(packed.len() <= 10, "{packed:?}");
    }

    #[test]
    fn the_memoised_actor_id_is_the_identity_of_the_display_name() {
        for display in [
            "Mgr 2250",
            "mgr\u{a0}2250",
            "  MGR 2250 ",
            "Ｍｇｒ ２２５０",
        ] {
            assert_eq!(actor_id_of(name(display)), "mgr 2250");
            assert_eq!(
                actor_id_of(name(display)),
                traguardo_events::identity::actor_id_of(display)
            );
        }
    }
}

/// Record times as whole nanoseconds since the epoch (one integer, where the
/// default is an RFC 3339 string): how the read model's types serialise them,
/// for snapshots. Record times are within the years 1677–2262.
pub mod nanos {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialises `at` as nanoseconds since the epoch.
    ///
    /// # Errors
    /// A time outside the years 1677–2262.
    pub fn serialize<S: Serializer>(at: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        let nanos = at
            .timestamp_nanos_opt()
            .ok_or_else(|| serde::ser::Error::custom("a record time out of range"))?;
        s.serialize_i64(nanos)
    }

    /// Reads what [`serialize`] wrote.
    ///
    /// # Errors
    /// What is not an integer.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        Ok(DateTime::from_timestamp_nanos(i64::deserialize(d)?))
    }
}
