//! The one Italian formatter: how dates, percentages, statuses, outcomes and roles
//! are written for the people who read Traguardo (dd/mm/yyyy, decimal comma, words
//! instead of codes). The audit trail, the reports, the error messages and the
//! pages all write through it.

use chrono::{DateTime, NaiveDate, Utc};
use traguardo_events::clock::{local_date, TIME_ZONE};
use traguardo_events::model::{Hundredths, Role, ValidationOutcome, ValidationStage};

use crate::objective::{Outcome, PhaseStatus};

/// A date as written in Italian documents: `28/07/2022`.
pub fn date(on: NaiveDate) -> String {
    on.format("%d/%m/%Y").to_string()
}

/// A date as `dd/mm/yyyy`, or a dash.
pub fn optional_date(on: Option<NaiveDate>) -> String {
    on.map_or_else(|| "—".to_string(), date)
}

/// A timestamp in Italian time, as `dd/mm/yyyy HH:MM:SS CET` (or `CEST`).
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.with_timezone(&TIME_ZONE)
        .format("%d/%m/%Y %H:%M:%S %Z")
        .to_string()
}

/// The Italian date of a record time, as `dd/mm/yyyy`.
pub fn recorded_on(at: DateTime<Utc>) -> String {
    date(local_date(&at))
}

/// A percentage's number with a decimal comma: `33,33`.
pub fn number(value: Hundredths) -> String {
    value.to_string().replace('.', ",")
}

/// A percentage as written in Italian: `33,33%`, `20%`.
pub fn pct(value: Hundredths) -> String {
    format!("{}%", number(value))
}

/// A percentage after «a» with its article: `al 20%`, `all'8%`, `allo 0%`.
pub fn al_pct(value: Hundredths) -> String {
    with_article(value, "al ", "all'", "allo ")
}

/// A percentage after «da» with its article: `dal 20%`, `dall'80%`, `dallo 0%`.
pub fn dal_pct(value: Hundredths) -> String {
    with_article(value, "dal ", "dall'", "dallo ")
}

/// Italian elides the article before a number read with a vowel (uno, otto,
/// undici, ottanta…) and uses «lo» before zero.
fn with_article(value: Hundredths, plain: &str, elided: &str, zero: &str) -> String {
    let whole = value.0.unsigned_abs() / 100;
    let article = match whole {
        0 => zero,
        1 | 8 | 11 | 80..=89 | 800..=899 => elided,
        _ => plain,
    };
    format!("{article}{}", pct(value))
}

/// «1 fase», «3 fasi».
pub fn count(n: usize, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

/// «2, 3».
pub fn numbers(list: &[u32]) -> String {
    list.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A text on one line: line breaks and runs of blanks become one space.
pub fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The role's name in Italian.
pub fn role(role: Role) -> &'static str {
    match role {
        Role::Admin => "amministratore",
        Role::Manager => "dirigente",
        Role::Validator => "validatore",
        Role::Auditor => "revisore",
    }
}

/// A phase's status in words.
pub fn status(status: PhaseStatus) -> &'static str {
    match status {
        PhaseStatus::CompletedOnTime => "completata nei tempi",
        PhaseStatus::CompletedLate => "completata in ritardo",
        PhaseStatus::Overdue => "scaduta, non completata",
        PhaseStatus::InProgress => "in corso",
        PhaseStatus::NotStarted => "non avviata",
        PhaseStatus::Withdrawn => "stralciata",
    }
}

/// A symbol for a phase's status, so that it reads without colour too.
pub fn status_symbol(status: PhaseStatus) -> &'static str {
    match status {
        PhaseStatus::CompletedOnTime => "✔",
        PhaseStatus::CompletedLate => "▲",
        PhaseStatus::Overdue => "✖",
        PhaseStatus::InProgress => "◐",
        PhaseStatus::NotStarted => "○",
        PhaseStatus::Withdrawn => "⊘",
    }
}

/// Every phase status with its symbol and words, in the order a legend lists them.
pub fn status_legend() -> Vec<(&'static str, &'static str)> {
    PhaseStatus::ALL
        .iter()
        .map(|s| (status_symbol(*s), status(*s)))
        .collect()
}

/// *Raggiunto*, *non raggiunto*, *in corso*, *stralciato*.
pub fn outcome(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Achieved => "raggiunto",
        Outcome::NotAchieved => "non raggiunto",
        Outcome::InProgress => "in corso",
        Outcome::Withdrawn => "stralciato",
    }
}

/// *Approvata* or *respinta*.
pub fn validation_outcome(outcome: ValidationOutcome) -> &'static str {
    match outcome {
        ValidationOutcome::Approved => "approvata",
        ValidationOutcome::Rejected => "respinta",
    }
}

/// The name of a kind of red flag (*segnalazione*), as a heading: the one
/// wording of pages, reports and the command line.
pub fn flag_kind(kind: crate::flags::FlagKind) -> &'static str {
    use crate::flags::FlagKind as K;
    match kind {
        K::RetroactiveRevision => "Rimodulazione retroattiva",
        K::LateRegistration => "Registrazione tardiva",
        K::RescuedByRevision => "Ritardo sanato da rimodulazione",
        K::ChangedAfterValidation => "Modifica dopo la validazione",
        K::RetractedAfterValidation => "Completamento annullato dopo la validazione",
        K::WeightsRevisedAfterCompletion => "Pesi rivisti dopo un completamento",
    }
}

/// Where a flag stands: *aperta*, *risolta*, *presa visione*.
pub fn flag_status(status: crate::flags::FlagStatus) -> &'static str {
    use crate::flags::FlagStatus as S;
    match status {
        S::Open => "aperta",
        S::Resolved => "risolta da una validazione successiva",
        S::Acknowledged => "presa visione del Nucleo di Valutazione",
    }
}

/// *Validazione del piano* or *validazione finale*.
pub fn validation_stage(stage: ValidationStage) -> &'static str {
    match stage {
        ValidationStage::Plan => "validazione del piano",
        ValidationStage::Final => "validazione finale",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_percentages_are_written_the_italian_way() {
        let on = NaiveDate::from_ymd_opt(2022, 7, 8).unwrap();
        assert_eq!(date(on), "08/07/2022");
        assert_eq!(pct(Hundredths(3333)), "33,33%");
        assert_eq!(pct(Hundredths(2000)), "20%");
        assert_eq!(pct(Hundredths(2050)), "20,5%");
        assert_eq!(al_pct(Hundredths(2000)), "al 20%");
        assert_eq!(al_pct(Hundredths(800)), "all'8%");
        assert_eq!(dal_pct(Hundredths(8050)), "dall'80,5%");
        assert_eq!(dal_pct(Hundredths(0)), "dallo 0%");
        assert_eq!(al_pct(Hundredths(150)), "all'1,5%");
        assert_eq!(al_pct(Hundredths(1800)), "al 18%");
    }

    #[test]
    fn the_legend_names_every_status_once() {
        let legend = status_legend();
        assert_eq!(legend.len(), PhaseStatus::ALL.len());
        assert!(legend.contains(&("⊘", "stralciata")));
    }
}
