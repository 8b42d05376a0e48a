//! Identifiers parsed once: an objective's key (`2022-2250-A`) and a stream's name
//! (`plan/2022`, `objective/2022-2250-A`, `org`). Everything else takes these
//! types instead of splitting strings by hand.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An objective's key, `{year}-{unit}-{letter}`: the letter is unique per unit and
/// year (DESIGN.md §1), so the three name one objective.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectiveKey {
    year: i32,
    unit: String,
    letter: String,
}

/// Why a text is not an identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// Not `{year}-{unit}-{letter}`.
    #[error("{0:?} non è la chiave di un obiettivo (anno-unità-lettera, per esempio 2022-2250-A)")]
    ObjectiveKey(String),
    /// Not `plan/{year}`, `objective/{key}` or `org`.
    #[error("{0:?} non è il nome di uno stream (plan/ANNO, objective/CHIAVE oppure org)")]
    Stream(String),
}

impl ObjectiveKey {
    /// The key of objective `letter` of `unit` in plan `year`.
    ///
    /// # Errors
    /// When the unit or the letter is empty or holds a `-` or a `/`, which would
    /// make the key ambiguous.
    pub fn new(year: i32, unit: &str, letter: &str) -> Result<Self, IdError> {
        let part_ok = |part: &str| !part.is_empty() && !part.contains(['-', '/']);
        if part_ok(unit) && part_ok(letter) && (0..=9999).contains(&year) {
            Ok(ObjectiveKey {
                year,
                unit: unit.to_string(),
                letter: letter.to_string(),
            })
        } else {
            Err(IdError::ObjectiveKey(format!("{year}-{unit}-{letter}")))
        }
    }

    /// The plan year.
    pub fn year(&self) -> i32 {
        self.year
    }

    /// The owning unit's code.
    pub fn unit(&self) -> &str {
        &self.unit
    }

    /// The letter (A, B, …).
    pub fn letter(&self) -> &str {
        &self.letter
    }

    /// The objective's stream.
    pub fn stream(&self) -> StreamId {
        StreamId::Objective(self.clone())
    }
}

impl FromStr for ObjectiveKey {
    type Err = IdError;

    fn from_str(text: &str) -> Result<Self, IdError> {
        let bad = || IdError::ObjectiveKey(text.to_string());
        let mut parts = text.splitn(3, '-');
        let (Some(year), Some(unit), Some(letter)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let year = year
            .parse::<i32>()
            .ok()
            .filter(|_| year.len() == 4 && year.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(bad)?;
        ObjectiveKey::new(year, unit, letter).map_err(|_| bad())
    }
}

impl fmt::Display for ObjectiveKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.year, self.unit, self.letter)
    }
}

impl Serialize for ObjectiveKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ObjectiveKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.trim().parse().map_err(serde::de::Error::custom)
    }
}

/// The name of a stream of the log.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StreamId {
    /// `plan/{year}`: a plan year and its revisions.
    Plan(i32),
    /// `objective/{key}`: one objective.
    Objective(ObjectiveKey),
    /// `org`: who may act.
    Org,
}

impl StreamId {
    /// The objective this stream is about, if it is an objective's.
    pub fn objective(&self) -> Option<&ObjectiveKey> {
        match self {
            StreamId::Objective(key) => Some(key),
            StreamId::Plan(_) | StreamId::Org => None,
        }
    }

    /// The plan year, for a plan's stream.
    pub fn plan_year(&self) -> Option<i32> {
        match self {
            StreamId::Plan(year) => Some(*year),
            StreamId::Objective(_) | StreamId::Org => None,
        }
    }
}

/// A stream's name read without copying, for the paths that see every event
/// (replay): the objective's key stays a slice of the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamRef<'a> {
    /// `plan/{year}`.
    Plan(i32),
    /// `objective/{key}`, with the key's text.
    Objective(&'a str),
    /// `org`.
    Org,
}

impl<'a> StreamRef<'a> {
    /// Reads a stream's name; the key of an objective is checked as
    /// [`ObjectiveKey`] checks it only when it is parsed into one.
    ///
    /// # Errors
    /// [`IdError::Stream`] when the name is none of the three forms.
    pub fn parse(text: &'a str) -> Result<Self, IdError> {
        if text == "org" {
            Ok(StreamRef::Org)
        } else if let Some(year) = text.strip_prefix("plan/") {
            year.parse()
                .map(StreamRef::Plan)
                .map_err(|_| IdError::Stream(text.to_string()))
        } else if let Some(key) = text.strip_prefix("objective/").filter(|k| !k.is_empty()) {
            Ok(StreamRef::Objective(key))
        } else {
            Err(IdError::Stream(text.to_string()))
        }
    }
}

impl FromStr for StreamId {
    type Err = IdError;

    fn from_str(text: &str) -> Result<Self, IdError> {
        let bad = || IdError::Stream(text.to_string());
        if text == "org" {
            return Ok(StreamId::Org);
        }
        if let Some(year) = text.strip_prefix("plan/") {
            return year.parse().map(StreamId::Plan).map_err(|_| bad());
        }
        if let Some(key) = text.strip_prefix("objective/") {
            return key.parse().map(StreamId::Objective).map_err(|_| bad());
        }
        Err(bad())
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamId::Plan(year) => write!(f, "plan/{year}"),
            StreamId::Objective(key) => write!(f, "objective/{key}"),
            StreamId::Org => f.write_str("org"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_reads_back_as_it_was_written() {
        let key: ObjectiveKey = "2022-2250-A".parse().unwrap();
        assert_eq!((key.year(), key.unit(), key.letter()), (2022, "2250", "A"));
        assert_eq!(key.to_string(), "2022-2250-A");
        assert_eq!(key.stream().to_string(), "objective/2022-2250-A");
    }

    #[test]
    fn malformed_keys_are_refused() {
        for text in [
            "",
            "2022",
            "2022-2250",
            "22-2250-A",
            "2022--A",
            "2022-2250-",
            "x-1-A",
        ] {
            assert!(text.parse::<ObjectiveKey>().is_err(), "{text:?}");
        }
    }

    #[test]
    fn a_stream_name_is_read_without_copying_its_key() {
        assert_eq!(
            StreamRef::parse("objective/2022-2250-A"),
            Ok(StreamRef::Objective("2022-2250-A"))
        );
        assert_eq!(StreamRef::parse("plan/2022"), Ok(StreamRef::Plan(2022)));
        assert_eq!(StreamRef::parse("org"), Ok(StreamRef::Org));
        assert!(StreamRef::parse("objective/").is_err());
    }

    #[test]
    fn streams_read_back_as_they_were_written() {
        for text in ["org", "plan/2022", "objective/2022-2250-A"] {
            assert_eq!(text.parse::<StreamId>().unwrap().to_string(), text);
        }
        assert_eq!(
            "plan/2022".parse::<StreamId>().unwrap().plan_year(),
            Some(2022)
        );
        for text in ["plans/2022", "plan/x", "objective/nope", "organisation"] {
            assert!(text.parse::<StreamId>().is_err(), "{text:?}");
        }
    }
}
