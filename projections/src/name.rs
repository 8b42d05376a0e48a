//! Interned names and boxed texts: how the read model keeps its strings.
//!
//! A million-event read model repeats a few hundred names (actors, roles, unit
//! codes, managers, outside bodies, objective keys) millions of times.
//! [`Name`] is an interned string ([`ustr::Ustr`]): one pointer, the text kept
//! once for the life of the process, compared by pointer, serialised as the
//! plain string (so a snapshot stays self-describing and re-interns on decode).
//! Only names whose set is bounded by what plans and tokens define are
//! interned; free text (notes, descriptions) is a [`Text`]: in the live read
//! model kept in a file mapped into memory ([`crate::text`]), elsewhere a boxed
//! `str`, without the spare capacity and the third word of a `String`.

use std::cell::RefCell;
use std::collections::HashMap;

/// An interned name: actors, roles, unit codes, managers, keys.
pub type Name = ustr::Ustr;

pub use crate::text::Text;

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

    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct Who {
        #[serde(with = "packed")]
        actor: Name,
        #[serde(with = "packed")]
        role: Name,
    }

    #[test]
    fn a_packed_name_is_an_index_only_inside_a_snapshots_table() {
        let who = vec![
            Who {
                actor: name("Dott. Rossi"),
                role: name("manager"),
            },
            Who {
                actor: name("Dott. Bianchi"),
                role: name("manager"),
            },
            Who {
                actor: name("Dott. Rossi"),
                role: name("control_office"),
            },
        ];
        // Outside a table: the plain string, in JSON as in MessagePack.
        let json = serde_json::to_string(&who[0]).unwrap();
        assert_eq!(json, r#"{"actor":"Dott. Rossi","role":"manager"}"#);
        let plain = rmp_serde::to_vec(&who).unwrap();
        assert_eq!(rmp_serde::from_slice::<Vec<Who>>(&plain).unwrap(), who);

        // Inside: each distinct name once in the table, in the order first written.
        let (packed_bytes, table) = packed::encoding(|| rmp_serde::to_vec(&who).unwrap());
        let table: Vec<&str> = table.iter().map(|n| n.as_str()).collect();
        assert_eq!(
            table,
            ["Dott. Rossi", "manager", "Dott. Bianchi", "control_office"]
        );
        assert!(packed_bytes.len() < plain.len() / 3, "{packed_bytes:?}");
        let names: Vec<Name> = table.iter().map(|n| name(n)).collect();
        let back: Vec<Who> =
            packed::decoding(names, || rmp_serde::from_slice(&packed_bytes)).unwrap();
        assert_eq!(back, who);

        // An index the table does not have is an error, not a name.
        let short = vec![name("Dott. Rossi")];
        let refused = packed::decoding(short, || rmp_serde::from_slice::<Vec<Who>>(&packed_bytes));
        let message = refused.unwrap_err().to_string();
        assert!(
            message.contains("name 1 is not in the part's table"),
            "{message}"
        );

        // Afterwards the thread writes strings again.
        assert_eq!(
            serde_json::to_string(&who[1]).unwrap(),
            r#"{"actor":"Dott. Bianchi","role":"manager"}"#
        );
        assert_eq!(rmp_serde::to_vec(&who).unwrap(), plain);
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
    fn a_date_is_its_day_number_in_a_snapshot_and_its_iso_form_in_json() {
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct Dates {
            #[serde(with = "days")]
            on: chrono::NaiveDate,
            #[serde(with = "days::opt")]
            from: Option<chrono::NaiveDate>,
            #[serde(with = "days::opt")]
            to: Option<chrono::NaiveDate>,
        }
        let dates = Dates {
            on: chrono::NaiveDate::from_ymd_opt(2022, 6, 30).unwrap(),
            from: chrono::NaiveDate::from_ymd_opt(1, 1, 1),
            to: None,
        };
        let packed = rmp_serde::to_vec(&dates).unwrap();
        assert_eq!(rmp_serde::from_slice::<Dates>(&packed).unwrap(), dates);
        // An array of three: 738,336 (a u32: 5 bytes), 1 and nil.
        assert_eq!(packed, [0x93, 0xce, 0x00, 0x0b, 0x44, 0x20, 0x01, 0xc0]);
        let json = serde_json::to_string(&dates).unwrap();
        assert_eq!(json, r#"{"on":"2022-06-30","from":"0001-01-01","to":null}"#);
        assert_eq!(serde_json::from_str::<Dates>(&json).unwrap(), dates);
        // A day number chrono has no date for is refused.
        let far = rmp_serde::to_vec(&(i32::MAX, 1, ())).unwrap();
        assert!(rmp_serde::from_slice::<Dates>(&far).is_err());

        // A timeline of dates: its original and its changes' values alike.
        #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
        struct Deadline(
            #[serde(with = "days::timeline")] crate::timeline::Timeline<chrono::NaiveDate>,
        );
        let mut deadline = Deadline(crate::timeline::Timeline::new(dates.on));
        deadline
            .0
            .change(dates.on, dates.on + chrono::Days::new(63), 9);
        let packed = rmp_serde::to_vec(&deadline).unwrap();
        assert_eq!(
            rmp_serde::from_slice::<Deadline>(&packed).unwrap(),
            deadline
        );
        assert!(
            !packed.windows(10).any(|w| w == b"2022-06-30"),
            "{packed:?}"
        );
        let json = serde_json::to_string(&deadline).unwrap();
        assert_eq!(serde_json::from_str::<Deadline>(&json).unwrap(), deadline);
        assert!(
            json.starts_with(
                r#"{"original":"2022-06-30","changes":[{"in_force_from":"2022-06-30","value":"#
            ),
            "{json}"
        );
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

/// Valid dates as their day number (days from 1 January of year 1) where the
/// format is not for people (the snapshots' MessagePack), and as `YYYY-MM-DD`
/// where it is (JSON): parsing some two million date strings was a twelfth of a
/// start from the snapshot. [`days::opt`] is the same for an optional date.
pub mod days {
    use chrono::{Datelike, NaiveDate};
    use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

    /// Serialises `date`: its day number, or its ISO form for people.
    ///
    /// # Errors
    /// The serialiser's.
    pub fn serialize<S: Serializer>(date: &NaiveDate, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            let mut buf = [0; traguardo_events::envelope::DATE_LEN];
            match traguardo_events::envelope::write_date(date, &mut buf) {
                Some(text) => s.serialize_str(text),
                None => date.serialize(s),
            }
        } else {
            s.serialize_i32(date.num_days_from_ce())
        }
    }

    /// Reads what [`serialize`] wrote.
    ///
    /// # Errors
    /// What is not a date, or a day number outside chrono's range.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<NaiveDate, D::Error> {
        if d.is_human_readable() {
            return NaiveDate::deserialize(d);
        }
        let day = i32::deserialize(d)?;
        NaiveDate::from_num_days_from_ce_opt(day)
            .ok_or_else(|| de::Error::custom(format!("day {day} is not a date")))
    }

    /// A date written by [`serialize`], inside an `Option` or a timeline.
    #[derive(Clone, Copy)]
    struct Day(NaiveDate);

    impl Serialize for Day {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            serialize(&self.0, s)
        }
    }

    impl<'de> Deserialize<'de> for Day {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            deserialize(d).map(Day)
        }
    }

    /// [`super::days`] for a [`Timeline`](crate::timeline::Timeline) of dates.
    pub mod timeline {
        use chrono::NaiveDate;
        use serde::{Deserialize, Deserializer, Serialize, Serializer};

        use super::Day;
        use crate::timeline::Timeline;

        /// Serialises `dates`, each as [`super::serialize`] does.
        ///
        /// # Errors
        /// The serialiser's.
        pub fn serialize<S: Serializer>(
            dates: &Timeline<NaiveDate>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            dates.map(|date| Day(*date)).serialize(s)
        }

        /// Reads what [`serialize`] wrote.
        ///
        /// # Errors
        /// As [`super::deserialize`].
        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Timeline<NaiveDate>, D::Error> {
            Ok(Timeline::<Day>::deserialize(d)?.map(|day| day.0))
        }
    }

    /// [`super::days`] for an optional date.
    pub mod opt {
        use chrono::NaiveDate;
        use serde::{Deserialize, Deserializer, Serialize, Serializer};

        use super::Day;

        /// Serialises `date`, if any, as [`super::serialize`] does.
        ///
        /// # Errors
        /// The serialiser's.
        pub fn serialize<S: Serializer>(date: &Option<NaiveDate>, s: S) -> Result<S::Ok, S::Error> {
            date.map(Day).serialize(s)
        }

        /// Reads what [`serialize`] wrote.
        ///
        /// # Errors
        /// As [`super::deserialize`].
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<NaiveDate>, D::Error> {
            Ok(Option::<Day>::deserialize(d)?.map(|day| day.0))
        }
    }
}

/// Names written once per part of a snapshot, and referred to by their index in
/// the part's table everywhere else in it: a snapshot of a million events holds
/// some three million actors, roles and identities, a few hundred distinct, and
/// decoding each as a string and interning it again was the seventh of a start
/// from the snapshot. Only inside [`packed::encoding`] and [`packed::decoding`]
/// (on that thread) is a name an index; anywhere else (JSON, a stream snapshot)
/// it is its plain string, as any other [`Name`].
pub mod packed {
    use std::cell::RefCell;
    use std::collections::HashMap;

    use serde::{de, Deserialize, Deserializer, Serializer};

    use super::Name;

    enum Table {
        Encode {
            index: HashMap<Name, u32>,
            names: Vec<Name>,
        },
        Decode(Vec<Name>),
    }

    thread_local! {
        static TABLE: RefCell<Option<Table>> = const { RefCell::new(None) };
    }

    /// Puts the table back as it was when dropped, panics included.
    struct Restore(Option<Table>);

    impl Drop for Restore {
        fn drop(&mut self) {
            let before = self.0.take();
            TABLE.with_borrow_mut(|table| *table = before);
        }
    }

    fn with_table<T>(table: Table, f: impl FnOnce() -> T) -> (T, Option<Table>) {
        let restore = Restore(TABLE.with_borrow_mut(|slot| slot.replace(table)));
        let value = f();
        let used = TABLE.with_borrow_mut(Option::take);
        drop(restore);
        (value, used)
    }

    /// Runs `f` (which serialises) with names written as indexes, and returns
    /// what it returned with the table of the names it wrote, in index order.
    pub fn encoding<T>(f: impl FnOnce() -> T) -> (T, Vec<Name>) {
        let table = Table::Encode {
            index: HashMap::new(),
            names: Vec::new(),
        };
        match with_table(table, f) {
            (value, Some(Table::Encode { names, .. })) => (value, names),
            (value, _) => (value, Vec::new()),
        }
    }

    /// Runs `f` (which deserialises) with names read as indexes into `names`.
    pub fn decoding<T>(names: Vec<Name>, f: impl FnOnce() -> T) -> T {
        with_table(Table::Decode(names), f).0
    }

    pub fn serialize<S: Serializer>(name: &Name, s: S) -> Result<S::Ok, S::Error> {
        let index = TABLE.with_borrow_mut(|table| match table {
            Some(Table::Encode { index, names }) => Some(match index.get(name) {
                Some(&at) => Ok(at),
                None => u32::try_from(names.len()).inspect(|&at| {
                    names.push(*name);
                    index.insert(*name, at);
                }),
            }),
            _ => None,
        });
        match index {
            Some(Ok(index)) => s.serialize_u32(index),
            Some(Err(_)) => Err(serde::ser::Error::custom(
                "more names than a part's table holds",
            )),
            None => s.serialize_str(name),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Name, D::Error> {
        let decoding = TABLE.with_borrow(|table| matches!(table, Some(Table::Decode(_))));
        if !decoding {
            return Name::deserialize(d);
        }
        let index = u32::deserialize(d)?;
        TABLE
            .with_borrow(|table| match table {
                Some(Table::Decode(names)) => names.get(index as usize).copied(),
                _ => None,
            })
            .ok_or_else(|| de::Error::custom(format!("name {index} is not in the part's table")))
    }
}
