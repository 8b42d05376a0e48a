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
