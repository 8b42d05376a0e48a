//! Italian labels and formats for the documents people read (Markdown and HTML):
//! dates as dd/mm/yyyy, decimals with a comma, statuses and outcomes in words.

use chrono::{DateTime, Utc};
use traguardo_events::model::ValidationOutcome;
use traguardo_projections::objective::Pct;

use super::model::{ChangeReport, FlagReport, PhaseValidation, RevisionReport};

pub use traguardo_projections::italian::{
    date, one_line, optional_date, outcome, recorded_on, status, status_symbol, timestamp,
    validation_outcome,
};

/// A percentage with a decimal comma: `33,33%`.
pub fn pct(value: Pct) -> String {
    traguardo_projections::italian::pct(value.0)
}

/// A percentage's number with a decimal comma, without the sign: `33,33`.
pub fn number(value: Pct) -> String {
    traguardo_projections::italian::number(value.0)
}

/// How the final validation treated a phase, in words.
pub fn phase_validation(validation: PhaseValidation) -> &'static str {
    match validation {
        PhaseValidation::Neutralised => "sterilizzata",
        PhaseValidation::Unverified => "non verificata",
    }
}

use traguardo_projections::italian::numbers;

/// What the final validation said besides the number: outcome, phases left out or
/// not accepted, who and when.
pub fn validation_detail(
    outcome: ValidationOutcome,
    neutralised: &[u32],
    unverified: &[u32],
    actor: &str,
    at: DateTime<Utc>,
) -> String {
    let mut parts = vec![format!(
        "validazione finale {} da {actor} il {}",
        validation_outcome(outcome),
        recorded_on(at)
    )];
    if !neutralised.is_empty() {
        parts.push(format!("fasi sterilizzate: {}", numbers(neutralised)));
    }
    if !unverified.is_empty() {
        parts.push(format!("fasi non verificate: {}", numbers(unverified)));
    }
    parts.join("; ")
}

/// One change of a revision, in one phrase.
pub fn change(change: &ChangeReport) -> String {
    match change {
        ChangeReport::Deadline {
            objective,
            phase: Some(phase),
            from,
            to,
        } => format!(
            "{objective} fase {phase}: scadenza {} → {}",
            date(*from),
            date(*to)
        ),
        ChangeReport::Deadline {
            objective,
            phase: None,
            from,
            to,
        } => format!(
            "{objective}: scadenza finale {} → {}",
            date(*from),
            date(*to)
        ),
        ChangeReport::Weights {
            objective,
            from,
            to,
        } => {
            let weights = to
                .iter()
                .map(|(n, w)| match from.get(n) {
                    Some(before) => format!("fase {n} {} → {}", pct(*before), pct(*w)),
                    None => format!("fase {n} {}", pct(*w)),
                })
                .collect::<Vec<_>>()
                .join(", ");
            format!("{objective}: pesi {weights}")
        }
        ChangeReport::AddPhase {
            objective,
            phase,
            description,
            weight,
            deadline,
        } => format!(
            "{objective}: aggiunta fase {phase} «{description}» (peso {}, scadenza {})",
            pct(*weight),
            date(*deadline)
        ),
        ChangeReport::WithdrawPhase { objective, phase } => {
            format!("{objective}: ritirata fase {phase}")
        }
        ChangeReport::AddObjective { objective, title } => {
            format!("aggiunto obiettivo {objective} «{title}»")
        }
        ChangeReport::WithdrawObjective { objective } => {
            format!("ritirato obiettivo {objective}")
        }
        ChangeReport::Other { objective, summary } => format!("{objective}: {summary}"),
    }
}

/// A revision in one line: act, dates, what changed, why.
pub fn revision(revision: &RevisionReport) -> String {
    let mut line = revision.act.clone();
    let mut dates = Vec::new();
    if let Some(act_date) = revision.act_date {
        dates.push(format!("atto del {}", date(act_date)));
    }
    dates.push(format!("in vigore dal {}", date(revision.in_force_from)));
    if !revision.in_force {
        dates.push("non ancora in vigore alla data di riferimento".to_string());
    }
    dates.push(format!(
        "registrata il {}",
        recorded_on(revision.recorded_at)
    ));
    line.push_str(&format!(" ({})", dates.join(", ")));
    let changes = revision.changes.iter().map(change).collect::<Vec<_>>();
    if changes.is_empty() {
        line.push_str(": nessuna modifica");
    } else {
        line.push_str(&format!(": {}", changes.join("; ")));
    }
    if !revision.reason.trim().is_empty() {
        line.push_str(&format!(" — motivo: {}", revision.reason.trim()));
    }
    one_line(&line)
}

/// The name of a kind of red flag.
pub fn flag_kind(kind: &str) -> &str {
    match kind {
        "retroactive_revision" => "revisione retroattiva",
        "late_registration" => "registrazione tardiva",
        "rescued_by_revision" => "salvato da una revisione",
        "changed_after_validation" => "modifica dopo la validazione",
        "retracted_after_validation" => "completamento ritirato dopo la validazione",
        "weights_revised_after_completion" => "pesi rivisti dopo il completamento",
        other => other,
    }
}

/// A red flag in one line.
pub fn flag(flag: &FlagReport) -> String {
    let place = match flag.phase {
        Some(phase) => format!("{} fase {phase}", flag.objective),
        None => flag.objective.clone(),
    };
    let seqs = flag
        .seqs
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let events = if flag.seqs.len() == 1 {
        "evento"
    } else {
        "eventi"
    };
    one_line(&format!(
        "{} — {place}: {} ({events} {seqs})",
        flag_kind(&flag.kind),
        flag.message
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use traguardo_events::model::Hundredths;

    #[test]
    fn dates_and_percentages_read_the_italian_way() {
        let on = NaiveDate::from_ymd_opt(2022, 7, 28).expect("a date");
        assert_eq!(date(on), "28/07/2022");
        assert_eq!(pct(Pct(Hundredths(3333))), "33,33%");
        assert_eq!(pct(Pct(Hundredths(10_000))), "100%");
        assert_eq!(optional_date(None), "—");
        let late_evening = DateTime::parse_from_rfc3339("2022-06-09T22:30:00Z")
            .expect("a timestamp")
            .with_timezone(&Utc);
        assert_eq!(timestamp(late_evening), "10/06/2022 00:30:00 CEST");
        assert_eq!(recorded_on(late_evening), "10/06/2022");
    }
}
