//! The Italian days of the log: for each day the events were recorded on, the
//! first and the last seq folded that day.
//!
//! A time-travel read by seq is evaluated at the Italian date of that seq's
//! record time (DESIGN.md §4). Record times never decrease along the log, so
//! every seq from a day's first folded event to its last was recorded that day
//! too, whether or not the registry folded it: [`Days::day_of`] answers from
//! memory, with no trip to the store, for any seq the registry has folded past.
//! A year of a Comune's log is a few hundred days; the index is a few KB.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use traguardo_events::clock::{end_of_day, local_date};

/// The days of the events folded, in seq order.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Days {
    spans: Vec<Span>,
    /// The instants the last span's day runs over, `[start, end)` in UTC:
    /// an event inside them is on that day without a time-zone conversion.
    /// Learned again after a snapshot is loaded.
    #[serde(skip)]
    last_day: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

/// One day's stretch of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Span {
    #[serde(with = "crate::name::days")]
    day: NaiveDate,
    first: u64,
    last: u64,
}

/// Two indexes are equal when they hold the same days: the instants cached
/// for the last one are not part of what they hold.
impl PartialEq for Days {
    fn eq(&self, other: &Self) -> bool {
        self.spans == other.spans
    }
}

impl Days {
    /// Notes that the event at `seq`, after every seq noted so far, was
    /// recorded at `at`.
    pub fn record(&mut self, seq: u64, at: DateTime<Utc>) {
        let last = match self.spans.last_mut() {
            Some(last) if seq <= last.last => return,
            Some(last) => last,
            None => {
                self.push(seq, at);
                return;
            }
        };
        if self
            .last_day
            .is_some_and(|(start, end)| start <= at && at < end)
        {
            last.last = seq;
            return;
        }
        let day = local_date(&at);
        if last.day == day {
            last.last = seq;
            self.last_day = day_bounds(day);
        } else {
            self.push(seq, at);
        }
    }

    /// Starts a day with the event at `seq`, recorded at `at`.
    fn push(&mut self, seq: u64, at: DateTime<Utc>) {
        let day = local_date(&at);
        self.spans.push(Span {
            day,
            first: seq,
            last: seq,
        });
        self.last_day = day_bounds(day);
    }

    /// The Italian date `seq` was recorded on, when the events noted tell it:
    /// the seq lies between the first and the last noted on one day.
    pub fn day_of(&self, seq: u64) -> Option<NaiveDate> {
        let i = self.spans.partition_point(|s| s.last < seq);
        self.spans.get(i).filter(|s| s.first <= seq).map(|s| s.day)
    }

    /// How many days are noted.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether no day is noted.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
}

/// The instants of Italian day `day`, `[its midnight, the next)` in UTC.
fn day_bounds(day: NaiveDate) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let end = end_of_day(day) + chrono::Duration::microseconds(1);
    let start = end_of_day(day.pred_opt()?) + chrono::Duration::microseconds(1);
    (local_date(&start) == day && local_date(&end) != day).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};
    use proptest::prelude::*;

    use super::*;

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn a_day_is_the_italian_one_around_midnight_and_the_clock_changes() {
        let mut days = Days::default();
        // 22:59 UTC is 23:59 in Rome in winter, 23:00 UTC the next day.
        days.record(1, utc(2022, 1, 10, 22, 59));
        days.record(2, utc(2022, 1, 10, 23, 0));
        // Summer time began on 27/03/2022: 21:59 UTC is 23:59 on the 27th.
        days.record(3, utc(2022, 3, 27, 21, 59));
        days.record(4, utc(2022, 3, 27, 22, 0));
        assert_eq!(days.day_of(1), Some(date(2022, 1, 10)));
        assert_eq!(days.day_of(2), Some(date(2022, 1, 11)));
        assert_eq!(days.day_of(3), Some(date(2022, 3, 27)));
        assert_eq!(days.day_of(4), Some(date(2022, 3, 28)));
        assert_eq!(days.day_of(0), None);
        assert_eq!(days.day_of(5), None);
        assert_eq!(days.len(), 4);
    }

    #[test]
    fn seqs_between_two_events_of_a_day_are_on_that_day_and_those_between_days_unknown() {
        let mut days = Days::default();
        days.record(10, utc(2022, 5, 2, 8, 0));
        days.record(14, utc(2022, 5, 2, 17, 0));
        days.record(20, utc(2022, 5, 4, 9, 0));
        for seq in 10..=14 {
            assert_eq!(days.day_of(seq), Some(date(2022, 5, 2)), "seq {seq}");
        }
        for seq in [9, 15, 19, 21] {
            assert_eq!(days.day_of(seq), None, "seq {seq}");
        }
        assert_eq!(days.day_of(20), Some(date(2022, 5, 4)));
    }

    #[test]
    fn a_seq_noted_again_changes_nothing() {
        let mut days = Days::default();
        days.record(5, utc(2022, 5, 2, 8, 0));
        days.record(6, utc(2022, 5, 3, 8, 0));
        let before = days.clone();
        days.record(6, utc(2022, 5, 9, 8, 0));
        days.record(3, utc(2022, 5, 9, 8, 0));
        assert_eq!(days, before);
        assert_eq!(days.day_of(6), Some(date(2022, 5, 3)));
        // The seq noted again did not move the day the next one is read into.
        days.record(7, utc(2022, 5, 9, 9, 0));
        assert_eq!(days.day_of(7), Some(date(2022, 5, 9)));
        assert_eq!(days.day_of(6), Some(date(2022, 5, 3)));
    }

    proptest! {
        /// Over a log of any pace, across the clock changes, every seq of the
        /// log gets the Italian date of its record time, however the index
        /// was interrupted by a snapshot (encoded, decoded, and noted on).
        #[test]
        fn every_seq_gets_the_date_of_its_record_time(
            steps in proptest::collection::vec(0i64..40 * 3_600, 1..300),
            start in 0i64..(2 * 365 * 86_400),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut at = utc(2022, 1, 1, 0, 0) + Duration::seconds(start);
            let mut times = Vec::new();
            for step in steps {
                at += Duration::seconds(step);
                times.push(at);
            }
            let cut = cut.index(times.len());
            let mut days = Days::default();
            for (i, t) in times[..cut].iter().enumerate() {
                days.record(i as u64 + 1, *t);
            }
            let bytes = rmp_serde::to_vec_named(&days).unwrap();
            let mut days: Days = rmp_serde::from_slice(&bytes).unwrap();
            for (i, t) in times.iter().enumerate().skip(cut) {
                days.record(i as u64 + 1, *t);
            }
            for (i, t) in times.iter().enumerate() {
                prop_assert_eq!(days.day_of(i as u64 + 1), Some(local_date(t)));
            }
            prop_assert_eq!(days.day_of(times.len() as u64 + 1), None);
            let distinct: std::collections::BTreeSet<_> = times.iter().map(local_date).collect();
            prop_assert_eq!(days.len(), distinct.len());
        }
    }
}
