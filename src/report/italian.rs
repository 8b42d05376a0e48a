//! Italian labels and formats for the documents people read (Markdown and HTML):
//! dates as dd/mm/yyyy, decimals with a comma, statuses and outcomes in words.

use chrono::{DateTime, Utc};
use traguardo_events::model::ValidationOutcome;
use traguardo_projections::objective::Pct;

use super::model::{ChangeReport, FlagReport, PhaseValidation, RevisionReport};

pub use traguardo_projections::italian::{
    date, flag_kind, flag_status, one_line, optional_date, outcome, recorded_on, status,
    status_symbol, timestamp, validation_outcome,
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
    let decided = match outcome {
        ValidationOutcome::Approved => "Approvata dal Nucleo di Valutazione",
        ValidationOutcome::Rejected => "Respinta dal Nucleo di Valutazione",
    };
    let mut parts = vec![format!(
        "{decided} il {}, registrata da {actor}",
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
            // Only the weights that changed: a phase whose weight stayed is not
            // news.
            let weights = to
                .iter()
                .filter(|(n, w)| from.get(n) != Some(w))
                .map(|(n, w)| match from.get(n) {
                    Some(before) => format!("fase {n} {} → {}", pct(*before), pct(*w)),
                    None => format!("fase {n} {}", pct(*w)),
                })
                .collect::<Vec<_>>()
                .join(", ");
            if weights.is_empty() {
                format!("{objective}: pesi confermati senza variazioni")
            } else {
                format!("{objective}: pesi {weights}")
            }
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
            format!("{objective}: stralciata la fase {phase}")
        }
        ChangeReport::AddObjective { objective, title } => {
            format!("aggiunto l'obiettivo {objective} «{title}»")
        }
        ChangeReport::WithdrawObjective { objective } => {
            format!("stralciato l'obiettivo {objective}")
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
    let mut line = format!(
        "{} — {place}: {} ({events} {seqs}). Stato: {}",
        flag_kind(flag.kind),
        flag.message,
        flag_status(flag.status)
    );
    if let (Some(by), Some(on)) = (&flag.acknowledged_by, flag.acknowledged_at) {
        line.push_str(&format!(" ({by}, il {})", recorded_on(on)));
    }
    if let Some(note) = &flag.acknowledgement {
        line.push_str(&format!(": «{}»", note.trim()));
    }
    one_line(&line)
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

    #[test]
    fn a_weights_change_lists_only_the_weights_that_changed() {
        let weights = |pairs: &[(u32, i64)]| {
            pairs
                .iter()
                .map(|(n, w)| (*n, Pct(Hundredths(*w))))
                .collect::<std::collections::BTreeMap<_, _>>()
        };
        let line = change(&ChangeReport::Weights {
            objective: "2022-2247-B".into(),
            from: weights(&[(1, 2000), (2, 6000), (3, 1000), (4, 1000)]),
            to: weights(&[(1, 2000), (2, 7000), (3, 1000)]),
        });
        assert_eq!(line, "2022-2247-B: pesi fase 2 60% → 70%");
    }
}
