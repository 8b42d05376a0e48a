//! Record time: the store stamps every event with its clock, so tests can replay a
//! year in a second and still see the record dates an auditor would see.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, NaiveDate, SubsecRound, Utc};

/// The time zone of the municipalities Traguardo serves: "today", and the date
/// on which something was recorded, are Italian dates. An event recorded at 00:30
/// in Alessandria on 10 June is recorded on 10 June, though UTC still says 9 June.
pub const TIME_ZONE: chrono_tz::Tz = chrono_tz::Europe::Rome;

/// The Italian calendar date of an instant.
pub fn local_date(at: &DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&TIME_ZONE).date_naive()
}

/// The last instant (to the microsecond) of an Italian calendar day: what a date
/// means where a record time is asked for ("what the system said on 1 October").
pub fn end_of_day(day: NaiveDate) -> DateTime<Utc> {
    use chrono::TimeZone;
    let next = day.succ_opt().unwrap_or(day);
    let midnight = next.and_hms_opt(0, 0, 0).unwrap_or_default();
    // Midnight exists in Rome every day (the clocks change at 02:00 and 03:00).
    let start = TIME_ZONE
        .from_local_datetime(&midnight)
        .earliest()
        .map_or_else(|| midnight.and_utc(), |t| t.with_timezone(&Utc));
    start - Duration::microseconds(1)
}

/// A record time as people write it: an RFC 3339 timestamp, or a date meaning
/// the end of that day in Italy.
///
/// # Errors
/// A message in Italian naming the text.
pub fn parse_record_time(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    match NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        Ok(day) if text.len() == 10 => Ok(end_of_day(day)),
        _ => Err(format!(
            "{text:?} non è un istante RFC 3339 (2022-10-01T00:00:00Z) né una data AAAA-MM-GG"
        )),
    }
}

/// Where the store and the commands read the current time from.
#[derive(Clone, Default)]
pub struct Clock(Option<Arc<Mutex<DateTime<Utc>>>>);

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Clock(None)
    }

    /// A clock that stands still at `at` until [`Clock::set`] or
    /// [`Clock::advance`] moves it (tests, imports of historic data).
    pub fn manual(at: DateTime<Utc>) -> Self {
        Clock(Some(Arc::new(Mutex::new(at.trunc_subsecs(6)))))
    }

    /// The current time, truncated to microseconds (the precision stored).
    pub fn now(&self) -> DateTime<Utc> {
        match &self.0 {
            None => Utc::now().trunc_subsecs(6),
            Some(at) => *at.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }

    /// Today's date in Italy ([`TIME_ZONE`]).
    pub fn today(&self) -> NaiveDate {
        local_date(&self.now())
    }

    /// Moves a manual clock to `at`; no effect on the system clock.
    pub fn set(&self, at: DateTime<Utc>) {
        if let Some(cell) = &self.0 {
            *cell.lock().unwrap_or_else(|e| e.into_inner()) = at.trunc_subsecs(6);
        }
    }

    /// Moves a manual clock forward; no effect on the system clock.
    pub fn advance(&self, by: Duration) {
        if let Some(cell) = &self.0 {
            let mut at = cell.lock().unwrap_or_else(|e| e.into_inner());
            *at += by;
        }
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            None => f.write_str("Clock::system"),
            Some(_) => write!(f, "Clock::manual({})", self.now()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_as_a_record_time_is_the_end_of_that_day_in_italy() {
        let day = NaiveDate::from_ymd_opt(2022, 10, 1).unwrap();
        // CEST is UTC+2: the Italian day ends at 21:59:59.999999 UTC.
        assert_eq!(
            end_of_day(day).to_rfc3339(),
            "2022-10-01T21:59:59.999999+00:00"
        );
        let winter = NaiveDate::from_ymd_opt(2022, 12, 31).unwrap();
        assert_eq!(
            end_of_day(winter).to_rfc3339(),
            "2022-12-31T22:59:59.999999+00:00"
        );
        assert_eq!(local_date(&end_of_day(day)), day);
        assert_eq!(parse_record_time("2022-10-01"), Ok(end_of_day(day)));
        assert!(parse_record_time("2022-10-01T00:00:00Z").is_ok());
        assert!(parse_record_time("01/10/2022").is_err());
    }
}
