//! The shape of an objective, checked in one place: weights within 0..100 that
//! sum to exactly 100, phases numbered 1..n, no phase due after the final
//! deadline. A plan document and a revision both call [`check`]; each reports the
//! problems at the fields its caller knows.

use chrono::NaiveDate;
use traguardo_events::model::Hundredths;
use traguardo_projections::italian;

/// A phase as the shape rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhaseShape {
    /// 1..n.
    pub number: u32,
    /// *Incidenza %*.
    pub weight: Hundredths,
    /// *Scadenza*.
    pub deadline: NaiveDate,
}

/// One way an objective's shape is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShapeProblem {
    /// A weight below 0 or above 100. `index` is the phase's place in the list.
    #[error("{} non è un peso compreso tra 0 e 100", italian::pct(*weight))]
    WeightOutOfRange {
        /// The phase's place in the list checked.
        index: usize,
        /// The weight.
        weight: Hundredths,
    },
    /// Phase numbers are not 1..n, each once.
    #[error(
        "le fasi vanno numerate da 1 a {}, ciascuna una volta: trovate {}",
        found.len(),
        italian::numbers(found)
    )]
    Numbering {
        /// The numbers found, in order.
        found: Vec<u32>,
    },
    /// Weights that do not sum to exactly 100.
    #[error("i pesi delle fasi sommano a {}, non esattamente a 100", italian::pct(*total))]
    WeightsSum {
        /// Their sum.
        total: Hundredths,
    },
    /// A phase due after the final deadline.
    #[error(
        "la fase {number} scade il {}, dopo la scadenza finale del {}",
        italian::date(*deadline),
        italian::date(*final_deadline)
    )]
    DeadlineAfterFinal {
        /// The phase's place in the list checked.
        index: usize,
        /// The phase number.
        number: u32,
        /// Its deadline.
        deadline: NaiveDate,
        /// The final deadline.
        final_deadline: NaiveDate,
    },
}

/// Why `weight` cannot be a phase's weight, if it cannot.
pub fn weight_problem(index: usize, weight: Hundredths) -> Option<ShapeProblem> {
    (weight < Hundredths::ZERO || weight > Hundredths::HUNDRED)
        .then_some(ShapeProblem::WeightOutOfRange { index, weight })
}

/// Every problem with the shape of an objective whose active phases are `phases`.
/// The sum is checked only when every weight is in range, so that one wrong
/// weight is not reported twice.
pub fn check(phases: &[PhaseShape], final_deadline: NaiveDate) -> Vec<ShapeProblem> {
    let mut problems: Vec<ShapeProblem> = phases
        .iter()
        .enumerate()
        .filter_map(|(index, p)| weight_problem(index, p.weight))
        .collect();
    let in_range = problems.is_empty();
    let mut numbers: Vec<u32> = phases.iter().map(|p| p.number).collect();
    numbers.sort_unstable();
    if numbers.iter().copied().ne(1..=phases.len() as u32) {
        problems.push(ShapeProblem::Numbering { found: numbers });
    }
    if in_range {
        let total: Hundredths = phases.iter().map(|p| p.weight).sum();
        if total != Hundredths::HUNDRED {
            problems.push(ShapeProblem::WeightsSum { total });
        }
    }
    for (index, p) in phases.iter().enumerate() {
        if p.deadline > final_deadline {
            problems.push(ShapeProblem::DeadlineAfterFinal {
                index,
                number: p.number,
                deadline: p.deadline,
                final_deadline,
            });
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn phase(number: u32, weight: i64, deadline: &str) -> PhaseShape {
        PhaseShape {
            number,
            weight: Hundredths(weight),
            deadline: d(deadline),
        }
    }

    #[test]
    fn a_well_formed_objective_has_no_problem() {
        let phases = [
            phase(1, 3333, "2022-03-31"),
            phase(2, 3333, "2022-06-30"),
            phase(3, 3334, "2022-12-31"),
        ];
        assert_eq!(check(&phases, d("2022-12-31")), []);
    }

    #[test]
    fn every_problem_is_reported_with_the_phase_it_concerns() {
        let phases = [phase(1, -1000, "2022-03-31"), phase(3, 5000, "2023-01-31")];
        let problems = check(&phases, d("2022-12-31"));
        assert_eq!(
            problems,
            [
                ShapeProblem::WeightOutOfRange {
                    index: 0,
                    weight: Hundredths(-1000)
                },
                ShapeProblem::Numbering { found: vec![1, 3] },
                ShapeProblem::DeadlineAfterFinal {
                    index: 1,
                    number: 3,
                    deadline: d("2023-01-31"),
                    final_deadline: d("2022-12-31"),
                },
            ]
        );
        assert_eq!(
            problems[2].to_string(),
            "la fase 3 scade il 31/01/2023, dopo la scadenza finale del 31/12/2022"
        );
    }

    #[test]
    fn weights_must_sum_to_exactly_one_hundred() {
        let phases = [phase(1, 3333, "2022-03-31"), phase(2, 6666, "2022-06-30")];
        let problems = check(&phases, d("2022-12-31"));
        assert_eq!(
            problems,
            [ShapeProblem::WeightsSum {
                total: Hundredths(9999)
            }]
        );
        assert_eq!(
            problems[0].to_string(),
            "i pesi delle fasi sommano a 99,99%, non esattamente a 100"
        );
    }
}
