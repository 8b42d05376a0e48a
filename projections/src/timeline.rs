//! A value that revisions change from a valid date on (*in force from* the act).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// One change: from `in_force_from` on, the value is `value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change<T> {
    /// The act's date.
    pub in_force_from: NaiveDate,
    /// The value from then on.
    pub value: T,
    /// The seq of the event that made the change.
    pub seq: u64,
}

/// An original value and the changes made to it, in record order (which is also
/// act-date order: a revision may not predate an earlier one on the same objective).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeline<T> {
    /// The value as first defined.
    pub original: T,
    /// The changes, oldest first.
    pub changes: Vec<Change<T>>,
}

impl<T: Clone> Timeline<T> {
    /// A value never changed.
    pub fn new(original: T) -> Self {
        Timeline {
            original,
            changes: Vec::new(),
        }
    }

    /// The value in force on `date`: the latest change in force by then, else the
    /// original.
    pub fn at(&self, date: NaiveDate) -> &T {
        self.changes
            .iter()
            .rev()
            .find(|c| c.in_force_from <= date)
            .map_or(&self.original, |c| &c.value)
    }

    /// The latest value, whatever its date.
    pub fn latest(&self) -> &T {
        self.changes.last().map_or(&self.original, |c| &c.value)
    }

    /// Records a change.
    pub fn change(&mut self, in_force_from: NaiveDate, value: T, seq: u64) {
        self.changes.push(Change {
            in_force_from,
            value,
            seq,
        });
    }
}
