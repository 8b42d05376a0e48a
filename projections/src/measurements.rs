//! An indicator's measurements: a list that the clones of one objective
//! share, each seeing its own prefix of it.
//!
//! Measurements are only ever appended, in record order, each built from the
//! event at its seq. So the measurements of an objective at an earlier
//! version are a prefix of those of the same objective later, and time
//! travel's checkpoints of one stream can all share one list: a clone costs a
//! count, not a copy of every measurement, and a fold from a checkpoint takes
//! the next measurement of the shared list ([`Measurements::follow`]) instead
//! of building it again.

use std::ops::Deref;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::objective::Measurement;

/// Measurements in record order: the first `len` of a list that clones share.
/// Nothing in the list is changed while it is shared: a push onto a shared
/// list copies the prefix first.
#[derive(Clone, Default)]
pub struct Measurements {
    /// `None` until the first measurement (most indicators of a live plan
    /// have none).
    run: Option<Arc<Vec<Measurement>>>,
    /// How many of `run` are this list's.
    len: usize,
}

impl Measurements {
    /// Appends a measurement, in place when the list is this one's alone.
    /// A full list makes room for one more while it is short, and for a
    /// quarter more once it holds eight or more.
    pub fn push(&mut self, measurement: Measurement) {
        let len = self.len;
        let own = self.run.as_mut().and_then(Arc::get_mut);
        if let Some(run) = own {
            // Alone: whatever lies past this list's prefix is nobody's.
            run.truncate(len);
            if run.len() == run.capacity() {
                run.reserve_exact(room_after(len));
            }
            run.push(measurement);
        } else {
            // The copy keeps the room the shared list had: when a stretch of
            // the time-travel cache is built, a checkpoint shares the list
            // that was given room for the whole stretch, and the fold goes on
            // pushing onto its copy.
            let room = self.run.as_ref().map_or(0, |run| run.capacity());
            let mut run = Vec::with_capacity(room.max(len + 1));
            run.extend_from_slice(self);
            run.push(measurement);
            self.run = Some(Arc::new(run));
        }
        self.len += 1;
    }

    /// Takes the next measurement of the shared list, when `is_next` says it
    /// is the one about to be pushed (the same seq), and answers whether it
    /// did. What a fold of the same stream's events calls before it builds a
    /// measurement.
    pub fn follow(&mut self, is_next: impl FnOnce(&Measurement) -> bool) -> bool {
        let next = self.run.as_ref().and_then(|run| run.get(self.len));
        if next.is_some_and(is_next) {
            self.len += 1;
            true
        } else {
            false
        }
    }

    /// Makes room for `more` pushes, when the list is this one's alone or
    /// there is none yet.
    pub fn reserve_exact(&mut self, more: usize) {
        if more == 0 {
            return;
        }
        match self.run.as_mut() {
            None => self.run = Some(Arc::new(Vec::with_capacity(more))),
            Some(run) => {
                if let Some(run) = Arc::get_mut(run) {
                    run.truncate(self.len);
                    run.reserve_exact(more);
                }
            }
        }
    }

    /// Shares the list of `later`, a later state of the same indicator, when
    /// this one's measurements are a prefix of it (the same seqs): what the
    /// time-travel cache does to the checkpoints of a stretch, so that they
    /// hold one list between them.
    pub fn share(&mut self, later: &Measurements) {
        let prefix = later.len >= self.len
            && self
                .iter()
                .zip(later.iter())
                .all(|(a, b)| a.recorded.seq == b.recorded.seq);
        if prefix {
            self.run.clone_from(&later.run);
        }
    }

    /// The heap bytes of the shared list: its measurements and their boxed
    /// backfills, not the texts they share with the events.
    pub fn shared_bytes(&self) -> usize {
        use std::mem::size_of;
        self.run.as_ref().map_or(0, |run| {
            size_of::<Vec<Measurement>>()
                + 2 * size_of::<usize>()
                + run.capacity() * size_of::<Measurement>()
                + run.iter().filter(|m| m.backfill.is_some()).count()
                    * size_of::<traguardo_events::model::Backfill>()
        })
    }
}

/// The room a full list of the read model of `len` items makes for the next:
/// one at a time while it is short (an indicator of a live plan has a few
/// measurements and an objective a few validations, on hundreds of thousands
/// of objectives, and one more reallocation costs less than room kept for
/// growth), a quarter more once it is long, so that an indicator measured
/// every day is not copied whole at each of its measurements.
pub(crate) fn room_after(len: usize) -> usize {
    if len < 8 {
        1
    } else {
        len / 4
    }
}

impl Deref for Measurements {
    type Target = [Measurement];

    fn deref(&self) -> &[Measurement] {
        self.run.as_ref().map_or(&[], |run| &run[..self.len])
    }
}

impl From<Vec<Measurement>> for Measurements {
    fn from(run: Vec<Measurement>) -> Self {
        let len = run.len();
        Measurements {
            run: (len > 0).then(|| Arc::new(run)),
            len,
        }
    }
}

impl std::fmt::Debug for Measurements {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl PartialEq for Measurements {
    fn eq(&self, other: &Self) -> bool {
        **self == **other
    }
}

impl Eq for Measurements {}

impl Serialize for Measurements {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Measurements {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Vec::deserialize(deserializer).map(Measurements::from)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeZone, Utc};

    use super::*;
    use crate::name::name;
    use crate::objective::Recorded;

    fn measurement(seq: u64) -> Measurement {
        Measurement {
            on: NaiveDate::from_ymd_opt(2022, 3, 1).unwrap() + chrono::Days::new(seq),
            value: None,
            numerator: Some(seq),
            denominator: Some(200),
            text: None,
            note: Some(format!("Rilevazione n. {seq}").as_str().into()),
            backfill: None,
            recorded: Recorded {
                actor: name("Dirigente"),
                role: name("manager"),
                recorded_at: Utc.timestamp_opt(1_650_000_000 + seq as i64, 0).unwrap(),
                seq,
            },
        }
    }

    fn seqs(list: &Measurements) -> Vec<u64> {
        list.iter().map(|m| m.recorded.seq).collect()
    }

    #[test]
    fn a_push_onto_a_shared_list_leaves_the_other_clones_as_they_were() {
        let mut earlier = Measurements::default();
        for seq in [3, 5] {
            earlier.push(measurement(seq));
        }
        let mut later = earlier.clone();
        later.push(measurement(8));
        let mut other = earlier.clone();
        other.push(measurement(9));
        assert_eq!(seqs(&earlier), [3, 5]);
        assert_eq!(seqs(&later), [3, 5, 8]);
        assert_eq!(seqs(&other), [3, 5, 9]);
        // Alone again, a list grows in place past what it no longer shares.
        drop(later);
        drop(other);
        earlier.push(measurement(12));
        assert_eq!(seqs(&earlier), [3, 5, 12]);
    }

    #[test]
    fn a_clone_of_a_prefix_follows_the_shared_list_only_on_the_same_seq() {
        let mut last = Measurements::default();
        for seq in [3, 5, 8] {
            last.push(measurement(seq));
        }
        let mut checkpoint = Measurements::from(vec![measurement(3)]);
        checkpoint.share(&last);
        assert_eq!(checkpoint.shared_bytes(), last.shared_bytes());
        let mut read = checkpoint.clone();
        assert!(!read.follow(|m| m.recorded.seq == 6));
        assert!(read.follow(|m| m.recorded.seq == 5));
        assert_eq!(seqs(&read), [3, 5]);
        assert_eq!(seqs(&checkpoint), [3]);
        assert_eq!(read[1], measurement(5));
        // A push where the shared list goes on differently copies, and the
        // list it copied from keeps its measurements.
        read.push(measurement(7));
        assert_eq!(seqs(&read), [3, 5, 7]);
        assert_eq!(seqs(&last), [3, 5, 8]);
        assert!(!read.follow(|_| true));
    }

    #[test]
    fn a_list_that_is_no_prefix_keeps_its_own() {
        let last = Measurements::from(vec![measurement(3), measurement(5)]);
        let mut other = Measurements::from(vec![measurement(4)]);
        other.share(&last);
        assert_eq!(seqs(&other), [4]);
        assert!(!other.follow(|m| m.recorded.seq == 5));
        let mut longer = Measurements::from(vec![measurement(3), measurement(5), measurement(8)]);
        longer.share(&last);
        assert_eq!(seqs(&longer), [3, 5, 8]);
    }

    #[test]
    fn a_list_serialises_as_the_sequence_of_its_own_measurements() {
        let last = Measurements::from(vec![measurement(3), measurement(5)]);
        let mut prefix = Measurements::from(vec![measurement(3)]);
        prefix.share(&last);
        let json = serde_json::to_value(&prefix).unwrap();
        assert_eq!(json, serde_json::to_value(vec![measurement(3)]).unwrap());
        let back: Measurements = serde_json::from_value(json).unwrap();
        assert_eq!(back, prefix);
        assert_eq!(back.len(), 1);
    }

    fn capacity(list: &Measurements) -> usize {
        list.run.as_ref().map_or(0, |run| run.capacity())
    }

    /// How many times the list was moved to a larger allocation.
    fn growths(list: &mut Measurements, seqs: std::ops::Range<u64>) -> usize {
        let mut grown = 0;
        for seq in seqs {
            let before = capacity(list);
            list.push(measurement(seq));
            grown += usize::from(capacity(list) != before);
        }
        grown
    }

    #[test]
    fn a_short_list_grows_one_at_a_time_and_a_long_one_by_a_quarter() {
        let mut list = Measurements::default();
        assert_eq!(growths(&mut list, 0..8), 8);
        assert_eq!(capacity(&list), 8, "no spare room while short");
        // 192 more: +2, +2, +3, … , a quarter each time, not one by one.
        let grown = growths(&mut list, 8..200);
        assert!(grown <= 20, "{grown} reallocations for 192 measurements");
        assert!(capacity(&list) <= 200 + 200 / 4, "{}", capacity(&list));
        assert_eq!(seqs(&list), (0..200).collect::<Vec<_>>());
    }

    #[test]
    fn room_made_before_the_first_measurement_takes_them_all() {
        let mut list = Measurements::default();
        list.reserve_exact(50);
        assert!(list.is_empty());
        assert_eq!(growths(&mut list, 0..50), 0);
        assert_eq!(capacity(&list), 50);
        assert_eq!(seqs(&list), (0..50).collect::<Vec<_>>());
    }

    #[test]
    fn a_copy_of_a_shared_list_keeps_the_room_it_had() {
        let mut list = Measurements::default();
        list.reserve_exact(40);
        growths(&mut list, 0..10);
        let checkpoint = list.clone();
        // The first push copies the shared list, with its room: no growth
        // after it, and the checkpoint sees its own ten.
        growths(&mut list, 10..40);
        assert_eq!(capacity(&list), 40);
        assert_eq!(seqs(&list), (0..40).collect::<Vec<_>>());
        assert_eq!(seqs(&checkpoint), (0..10).collect::<Vec<_>>());
    }
}
