//! A value that revisions change from a valid date on (*in force from* the act).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// One change: from `in_force_from` on, the value is `value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change<T> {
    /// The act's date.
    #[serde(with = "crate::name::days")]
    pub in_force_from: NaiveDate,
    /// The value from then on.
    pub value: T,
    /// The seq of the event that made the change.
    pub seq: u64,
}

/// An original value and the changes made to it, in record order (which is also
/// act-date order: a revision may not predate an earlier one on the same objective).
///
/// Most values are never revised, so the changes sit behind one pointer that is
/// null until the first one: a million-event read model has some hundred
/// thousand timelines, nearly all of them a bare original.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeline<T> {
    /// The value as first defined.
    pub original: T,
    /// The changes, oldest first; none until the first. A boxed `Vec` on
    /// purpose: one pointer (a `Vec` is three words, a boxed slice two).
    #[allow(clippy::box_collection)]
    changes: Option<Box<Vec<Change<T>>>>,
}

impl<T: Clone> Timeline<T> {
    /// A value never changed.
    pub fn new(original: T) -> Self {
        Timeline {
            original,
            changes: None,
        }
    }

    /// The changes, oldest first.
    pub fn changes(&self) -> &[Change<T>] {
        self.changes.as_deref().map_or(&[], Vec::as_slice)
    }

    /// The heap bytes a clone of the timeline allocates: its changes (their
    /// values' own heap not counted).
    pub fn clone_bytes(&self) -> usize {
        self.changes.as_ref().map_or(0, |changes| {
            std::mem::size_of::<Vec<Change<T>>>() + changes.len() * std::mem::size_of::<Change<T>>()
        })
    }

    /// The value in force on `date`: the latest change in force by then, else the
    /// original.
    pub fn at(&self, date: NaiveDate) -> &T {
        self.changes()
            .iter()
            .rev()
            .find(|c| c.in_force_from <= date)
            .map_or(&self.original, |c| &c.value)
    }

    /// The latest value, whatever its date.
    pub fn latest(&self) -> &T {
        self.changes().last().map_or(&self.original, |c| &c.value)
    }

    /// Records a change.
    pub fn change(&mut self, in_force_from: NaiveDate, value: T, seq: u64) {
        self.changes.get_or_insert_default().push(Change {
            in_force_from,
            value,
            seq,
        });
    }

    /// The same timeline with each value mapped by `f`.
    pub(crate) fn map<U>(&self, f: impl Fn(&T) -> U) -> Timeline<U> {
        Timeline {
            original: f(&self.original),
            changes: self.changes.as_ref().map(|changes| {
                Box::new(
                    changes
                        .iter()
                        .map(|c| Change {
                            in_force_from: c.in_force_from,
                            value: f(&c.value),
                            seq: c.seq,
                        })
                        .collect(),
                )
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2022, 3, d).unwrap()
    }

    #[test]
    fn a_timeline_answers_the_value_in_force_on_each_date() {
        let mut t = Timeline::new(1);
        assert_eq!(t.changes(), &[]);
        t.change(day(10), 2, 7);
        t.change(day(20), 3, 9);
        assert_eq!((*t.at(day(9)), *t.at(day(10)), *t.at(day(25))), (1, 2, 3));
        assert_eq!(*t.latest(), 3);
        assert_eq!(t.changes().len(), 2);
    }

    #[test]
    fn an_unchanged_timeline_costs_one_pointer_beside_its_value() {
        assert_eq!(
            std::mem::size_of::<Timeline<u64>>(),
            std::mem::size_of::<u64>() + std::mem::size_of::<usize>()
        );
    }
}
