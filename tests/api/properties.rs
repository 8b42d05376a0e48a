//! Property tests: random sequences of valid and invalid commands and
//! revisions on the Alessandria 2022 seed, then
//! (a) the state folded incrementally after every append equals the state rebuilt
//!     from the whole log (a second `App::open`, and `Objective::from_events`);
//! (b) rebuilding twice gives identical bytes when serialized;
//! (c) the state as of seq N (and as of a record time) equals the state the system
//!     held right after seq N was appended, and the state folded from the first N
//!     events of the log;
//! (d) at every date, `0 ≤ on_time_pct ≤ completed_pct ≤ 100`, the validated
//!     result is a percentage, and the weights of the active phases sum to 100,
//!     and the JSON the API writes from the read model (`Objective::answer`) is
//!     the objective's view, byte for byte.
//!
//! Refused commands must say why with a typed error and append nothing.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use proptest::prelude::*;
use traguardo::commands::{ObjectiveCommand, Principal, RevisionRequest};
use traguardo::{App, AppError};
use traguardo_events::domain::RevisionChange;
use traguardo_events::model::{
    Backfill, Hundredths, IndicatorKind, PhaseSpec, Role, ValidationOutcome, ValidationStage,
};
use traguardo_events::store::Until;
use traguardo_projections::{Objective, Plan, Registry};

use crate::support::{admin, block_on, d, manager, manager_of, validator, World};

/// One step of a random history. Indexes pick among the plan's objectives (and a
/// phase or indicator of it) modulo their number, so that most steps name things
/// that exist; phase numbers go one or two past the end so that some do not.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    /// Move record time forward.
    Advance(i64),
    Start {
        objective: usize,
        phase: u32,
        days_ago: i64,
    },
    Complete {
        objective: usize,
        phase: u32,
        days_ago: i64,
        /// Loaded by the control office as a declared back-fill.
        declared: bool,
    },
    Retract {
        objective: usize,
        phase: u32,
        with_reason: bool,
    },
    Measure {
        objective: usize,
        indicator: usize,
        value: Option<i64>,
        ratio: Option<(u64, u64)>,
    },
    Validate {
        objective: usize,
        final_stage: bool,
        rejected: bool,
        unverified: Vec<u32>,
        neutralised: Vec<u32>,
        with_note: bool,
        /// The validator bears the name of the unit's manager.
        as_the_recorder: bool,
    },
    /// Someone who may not act tries to.
    Intruder { objective: usize, phase: u32 },
    /// The Nucleo acknowledges one of the flags raised so far.
    Acknowledge(usize),
    Revise {
        /// The act's days before today (negative: an act in the future); none: no
        /// act date.
        act_days_ago: Option<i64>,
        changes: Vec<Change>,
    },
}

#[derive(Debug, Clone)]
pub(crate) enum Change {
    Deadline {
        objective: usize,
        phase: Option<u32>,
        shift: i64,
    },
    /// Moves `amount` hundredths from one phase to another (valid when both are
    /// active and the source has enough).
    MoveWeight {
        objective: usize,
        from: u32,
        to: u32,
        amount: i64,
    },
    /// Sets one weight and nothing else: almost always leaves a sum ≠ 100.
    SetWeight {
        objective: usize,
        phase: u32,
        weight: i64,
    },
    /// Withdraws a phase, giving its weight to another.
    WithdrawPhase {
        objective: usize,
        phase: u32,
        heir: u32,
    },
    /// Adds a phase with weight taken from another.
    AddPhase {
        objective: usize,
        donor: u32,
        amount: i64,
        deadline_shift: i64,
    },
    WithdrawObjective {
        objective: usize,
    },
    /// Adds a copy of an objective under a new letter.
    AddObjective {
        template: usize,
        letter: char,
    },
    /// A new responsible manager.
    Manager {
        objective: usize,
        which: u8,
    },
    /// A new title.
    Title {
        objective: usize,
    },
    /// What a phase says.
    PhaseDescription {
        objective: usize,
        phase: u32,
    },
    /// An indicator's target (some out of range).
    IndicatorTarget {
        objective: usize,
        indicator: usize,
        target: i64,
    },
    /// A new threshold indicator.
    AddIndicator {
        objective: usize,
    },
    /// An indicator withdrawn.
    WithdrawIndicator {
        objective: usize,
        indicator: usize,
    },
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        3 => (0..8usize, prop::option::of(1..7u32), -60..60i64).prop_map(|(objective, phase, shift)| {
            Change::Deadline { objective, phase, shift }
        }),
        3 => (0..8usize, 1..7u32, 1..7u32, -500..3000i64).prop_map(|(objective, from, to, amount)| {
            Change::MoveWeight { objective, from, to, amount }
        }),
        1 => (0..8usize, 1..7u32, -1000..11000i64).prop_map(|(objective, phase, weight)| {
            Change::SetWeight { objective, phase, weight }
        }),
        2 => (0..8usize, 1..7u32, 1..7u32).prop_map(|(objective, phase, heir)| {
            Change::WithdrawPhase { objective, phase, heir }
        }),
        2 => (0..8usize, 1..7u32, -500..3000i64, -30..200i64).prop_map(
            |(objective, donor, amount, deadline_shift)| Change::AddPhase {
                objective, donor, amount, deadline_shift,
            }
        ),
        1 => (0..8usize).prop_map(|objective| Change::WithdrawObjective { objective }),
        1 => (0..7usize, prop::sample::select(vec!['E', 'F', 'A']))
            .prop_map(|(template, letter)| Change::AddObjective { template, letter }),
        1 => (0..8usize, 0..3u8).prop_map(|(objective, which)| Change::Manager { objective, which }),
        1 => (0..8usize).prop_map(|objective| Change::Title { objective }),
        1 => (0..8usize, 1..7u32).prop_map(|(objective, phase)| Change::PhaseDescription { objective, phase }),
        1 => (0..8usize, 0..3usize, -1000..12000i64).prop_map(|(objective, indicator, target)| {
            Change::IndicatorTarget { objective, indicator, target }
        }),
        1 => (0..8usize).prop_map(|objective| Change::AddIndicator { objective }),
        1 => (0..8usize, 0..3usize).prop_map(|(objective, indicator)| {
            Change::WithdrawIndicator { objective, indicator }
        }),
    ]
}

pub(crate) fn step() -> impl Strategy<Value = Step> {
    let phases = || prop::collection::vec(1..7u32, 0..2);
    prop_oneof![
        4 => (0..25i64).prop_map(Step::Advance),
        4 => (0..8usize, 1..7u32, -2..40i64).prop_map(|(objective, phase, days_ago)| {
            Step::Start { objective, phase, days_ago }
        }),
        6 => (0..8usize, 1..7u32, -2..60i64, prop::bool::weighted(0.15)).prop_map(
            |(objective, phase, days_ago, declared)| {
                Step::Complete { objective, phase, days_ago, declared }
            }
        ),
        1 => (0..6usize).prop_map(Step::Acknowledge),
        2 => (0..8usize, 1..7u32, prop::bool::weighted(0.8)).prop_map(|(objective, phase, with_reason)| {
            Step::Retract { objective, phase, with_reason }
        }),
        1 => (
            0..8usize,
            0..3usize,
            prop::option::of(0..12000i64),
            prop::option::of((0..300u64, 0..300u64)),
        )
            .prop_map(|(objective, indicator, value, ratio)| Step::Measure {
                objective, indicator, value, ratio,
            }),
        2 => (
            0..8usize,
            any::<bool>(),
            prop::bool::weighted(0.2),
            phases(),
            phases(),
            prop::bool::weighted(0.8),
            prop::bool::weighted(0.1),
        )
            .prop_map(
                |(objective, final_stage, rejected, unverified, neutralised, with_note, as_the_recorder)| {
                    Step::Validate {
                        objective, final_stage, rejected, unverified, neutralised, with_note,
                        as_the_recorder,
                    }
                }
            ),
        1 => (0..8usize, 1..7u32).prop_map(|(objective, phase)| Step::Intruder { objective, phase }),
        2 => (prop::option::of(-2..40i64), prop::collection::vec(change(), 1..4))
            .prop_map(|(act_days_ago, changes)| Step::Revise { act_days_ago, changes }),
    ]
}

/// The state the system held, right after an append.
struct Snapshot {
    seq: u64,
    recorded_at: DateTime<Utc>,
    objectives: BTreeMap<String, Objective>,
}

fn objectives_of(registry: &Registry) -> BTreeMap<String, Objective> {
    registry
        .objectives()
        .map(|o| (o.key().to_string(), o.clone()))
        .collect()
}

/// Plans and objectives, serialized in a fixed order.
pub(crate) fn bytes_of(registry: &Registry) -> Vec<u8> {
    let plans: Vec<&Plan> = registry.plans().collect();
    let objectives: BTreeMap<&str, &Objective> =
        registry.objectives().map(|o| (o.key(), o)).collect();
    serde_json::to_vec(&(plans, objectives, registry.last_seq())).expect("serializes")
}

fn keys(world: &World) -> Vec<String> {
    world
        .app
        .read(|r| r.plan(2022).map(|p| p.objectives.clone()))
        .unwrap_or_default()
}

fn pick(keys: &[String], index: usize) -> String {
    keys[index % keys.len()].clone()
}

fn objective(world: &World, key: &str) -> Option<Objective> {
    world.app.read(|r| r.objective(key).cloned())
}

fn today(world: &World) -> NaiveDate {
    world.clock.now().date_naive()
}

fn latest_weight(o: &Objective, phase: u32) -> i64 {
    o.phase(phase).map_or(0, |p| p.weight.latest().0)
}

/// Turns a random change into a revision change against the current state.
fn revision_change(world: &World, keys: &[String], change: &Change) -> RevisionChange {
    let key = |i: usize| pick(keys, i);
    match change {
        Change::Deadline {
            objective: i,
            phase,
            shift,
        } => {
            let o = objective(world, &key(*i)).expect("listed objectives exist");
            let current = match phase.and_then(|n| o.phase(n)) {
                Some(p) => *p.deadline.latest(),
                None => *o.final_deadline().latest(),
            };
            RevisionChange::Deadline {
                objective: key(*i),
                phase: *phase,
                new_deadline: current + Duration::days(*shift),
            }
        }
        Change::MoveWeight {
            objective: i,
            from,
            to,
            amount,
        } => {
            let o = objective(world, &key(*i)).unwrap();
            let mut weights = BTreeMap::new();
            weights.insert(*from, Hundredths(latest_weight(&o, *from) - amount));
            weights.insert(*to, Hundredths(latest_weight(&o, *to) + amount));
            if from == to {
                weights.insert(*from, Hundredths(latest_weight(&o, *from)));
            }
            RevisionChange::Weights {
                objective: key(*i),
                weights_hundredths: weights,
            }
        }
        Change::SetWeight {
            objective: i,
            phase,
            weight,
        } => RevisionChange::Weights {
            objective: key(*i),
            weights_hundredths: [(*phase, Hundredths(*weight))].into(),
        },
        Change::WithdrawPhase {
            objective: i,
            phase,
            ..
        } => RevisionChange::WithdrawPhase {
            objective: key(*i),
            phase: *phase,
        },
        Change::AddPhase {
            objective: i,
            amount,
            deadline_shift,
            ..
        } => {
            let o = objective(world, &key(*i)).unwrap();
            let number = o.phases().iter().map(|p| p.number).max().unwrap_or(0) + 1;
            RevisionChange::AddPhase {
                objective: key(*i),
                phase: PhaseSpec {
                    number,
                    description: format!("Fase aggiunta {number}"),
                    weight_hundredths: Hundredths(*amount),
                    involved: vec![],
                    deadline: today(world) + Duration::days(*deadline_shift),
                },
            }
        }
        Change::WithdrawObjective { objective: i } => {
            RevisionChange::WithdrawObjective { objective: key(*i) }
        }
        Change::AddObjective { template, letter } => {
            let mut spec = objective(world, &key(*template)).unwrap().spec().clone();
            spec.letter = letter.to_string();
            RevisionChange::AddObjective {
                objective: Box::new(spec),
            }
        }
        Change::Manager {
            objective: i,
            which,
        } => RevisionChange::Manager {
            objective: key(*i),
            manager: ["Dott.ssa Maria Rossi", "Ing. Paolo Bianchi", " "][*which as usize % 3]
                .into(),
        },
        Change::Title { objective: i } => RevisionChange::Title {
            objective: key(*i),
            title: "Titolo rimodulato".into(),
        },
        Change::PhaseDescription {
            objective: i,
            phase,
        } => RevisionChange::PhaseDescription {
            objective: key(*i),
            phase: *phase,
            description: format!("Fase {phase} riformulata"),
        },
        Change::IndicatorTarget {
            objective: i,
            indicator,
            target,
        } => RevisionChange::IndicatorTarget {
            objective: key(*i),
            indicator: indicator_id(world, &key(*i), *indicator),
            target_hundredths: Some(Hundredths(*target)),
        },
        Change::AddIndicator { objective: i } => RevisionChange::AddIndicator {
            objective: key(*i),
            indicator: traguardo_events::model::IndicatorSpec {
                id: "aggiunto".into(),
                description: "Indicatore aggiunto".into(),
                kind: IndicatorKind::Threshold,
                target_hundredths: Some(Hundredths(5000)),
            },
        },
        Change::WithdrawIndicator {
            objective: i,
            indicator,
        } => RevisionChange::WithdrawIndicator {
            objective: key(*i),
            indicator: indicator_id(world, &key(*i), *indicator),
        },
    }
}

/// The id of an objective's `index`-th indicator, or one it does not have.
fn indicator_id(world: &World, key: &str, index: usize) -> String {
    objective(world, key)
        .and_then(|o| o.indicators().get(index).map(|i| i.id.to_string()))
        .unwrap_or_else(|| "sconosciuto".into())
}

/// The revision changes of one random revision: a withdrawal or addition of a
/// phase comes with the weight change that keeps the sum (when it can).
fn revision_changes(world: &World, keys: &[String], changes: &[Change]) -> Vec<RevisionChange> {
    let mut out = Vec::new();
    for change in changes {
        out.push(revision_change(world, keys, change));
        match change {
            Change::WithdrawPhase {
                objective: i,
                phase,
                heir,
            } => {
                let o = objective(world, &pick(keys, *i)).unwrap();
                out.push(RevisionChange::Weights {
                    objective: pick(keys, *i),
                    weights_hundredths: [(
                        *heir,
                        Hundredths(latest_weight(&o, *heir) + latest_weight(&o, *phase)),
                    )]
                    .into(),
                });
            }
            Change::AddPhase {
                objective: i,
                donor,
                amount,
                ..
            } => {
                let o = objective(world, &pick(keys, *i)).unwrap();
                out.push(RevisionChange::Weights {
                    objective: pick(keys, *i),
                    weights_hundredths: [(*donor, Hundredths(latest_weight(&o, *donor) - amount))]
                        .into(),
                });
            }
            _ => {}
        }
    }
    out
}

fn command(
    world: &World,
    keys: &[String],
    step: &Step,
) -> Option<(String, ObjectiveCommand, Principal)> {
    let today = today(world);
    Some(match step {
        Step::Start {
            objective,
            phase,
            days_ago,
        } => {
            let key = pick(keys, *objective);
            let who = manager_of(&key);
            (
                key,
                ObjectiveCommand::StartPhase {
                    phase: *phase,
                    on: today - Duration::days(*days_ago),
                    note: None,
                    backfill: None,
                },
                who,
            )
        }
        Step::Complete {
            objective,
            phase,
            days_ago,
            declared,
        } => {
            let key = pick(keys, *objective);
            let (who, backfill) = if *declared {
                (
                    admin(),
                    Some(Backfill {
                        act: "Determinazione n. 12".into(),
                        reason: "caricamento storico".into(),
                        on_behalf_of: None,
                    }),
                )
            } else {
                (manager_of(&key), None)
            };
            (
                key,
                ObjectiveCommand::CompletePhase {
                    phase: *phase,
                    on: today - Duration::days(*days_ago),
                    note: Some("fatto".into()),
                    evidence: vec!["prot. 1/2022".into()],
                    backfill,
                },
                who,
            )
        }
        Step::Retract {
            objective,
            phase,
            with_reason,
        } => {
            let key = pick(keys, *objective);
            let who = manager_of(&key);
            (
                key,
                ObjectiveCommand::RetractCompletion {
                    phase: *phase,
                    reason: if *with_reason {
                        "errore di registrazione".into()
                    } else {
                        " ".into()
                    },
                    backfill: None,
                },
                who,
            )
        }
        Step::Measure {
            objective,
            indicator,
            value,
            ratio,
        } => {
            let key = pick(keys, *objective);
            let o = objective_state(world, &key);
            let id = o
                .indicators()
                .get(*indicator)
                .map_or("sconosciuto".to_string(), |i| i.id.to_string());
            let who = manager_of(&key);
            let qualitative = o
                .indicators()
                .get(*indicator)
                .is_some_and(|i| i.kind == IndicatorKind::Qualitative);
            (
                key,
                ObjectiveCommand::RecordMeasurement(traguardo::commands::Measurement {
                    indicator: id,
                    on: today,
                    value: value.filter(|_| !qualitative).map(Hundredths),
                    numerator: ratio.filter(|_| !qualitative).map(|r| r.0),
                    denominator: ratio.filter(|_| !qualitative).map(|r| r.1),
                    text: qualitative.then(|| "rilevazione qualitativa".to_string()),
                    entry: traguardo::commands::Entry {
                        note: None,
                        backfill: None,
                    },
                }),
                who,
            )
        }
        Step::Validate {
            objective,
            final_stage,
            rejected,
            unverified,
            neutralised,
            with_note,
            as_the_recorder,
        } => {
            let key = pick(keys, *objective);
            let who = if *as_the_recorder {
                Principal {
                    role: Role::Validator,
                    units: vec![],
                    ..manager_of(&key)
                }
            } else {
                validator()
            };
            (
                key,
                ObjectiveCommand::RecordValidation(traguardo::commands::ValidationRequest {
                    stage: if *final_stage {
                        ValidationStage::Final
                    } else {
                        ValidationStage::Plan
                    },
                    outcome: if *rejected {
                        ValidationOutcome::Rejected
                    } else {
                        ValidationOutcome::Approved
                    },
                    unverified_phases: unverified.clone(),
                    neutralised_phases: neutralised.clone(),
                    note: with_note.then(|| "valutazione del Nucleo".to_string()),
                    reference: with_note.then(|| "Verbale n. 3 del 15/03/2023".to_string()),
                }),
                who,
            )
        }
        Step::Intruder { objective, phase } => {
            let key = pick(keys, *objective);
            let unit = objective_state(world, &key).unit().to_string();
            let other = if unit == "2250" { "2249" } else { "2250" };
            (
                key,
                ObjectiveCommand::CompletePhase {
                    phase: *phase,
                    on: today,
                    note: None,
                    evidence: vec![],
                    backfill: None,
                },
                manager(other),
            )
        }
        Step::Advance(_) | Step::Revise { .. } | Step::Acknowledge(_) => return None,
    })
}

fn objective_state(world: &World, key: &str) -> Objective {
    objective(world, key).expect("listed objectives exist")
}

/// Draws phase numbers from the chosen objective's own range (one past the end
/// stays possible, to be refused), and retractions from its completed phases, so
/// that most steps can succeed.
fn resolve(world: &World, keys: &[String], step: &Step) -> Step {
    let number = |objective: usize, raw: u32| -> u32 {
        let n = objective_state(world, &pick(keys, objective))
            .phases()
            .len() as u32;
        1 + raw % (n + 1)
    };
    let mut step = step.clone();
    match &mut step {
        Step::Start {
            objective, phase, ..
        }
        | Step::Complete {
            objective, phase, ..
        }
        | Step::Intruder { objective, phase } => *phase = number(*objective, *phase),
        Step::Retract {
            objective, phase, ..
        } => {
            let o = objective_state(world, &pick(keys, *objective));
            let done: Vec<u32> = o
                .phases()
                .iter()
                .filter(|p| p.completed().is_some())
                .map(|p| p.number)
                .collect();
            *phase = match done.len() {
                0 => number(*objective, *phase),
                n => done[*phase as usize % n],
            };
        }
        Step::Validate {
            objective,
            unverified,
            neutralised,
            ..
        } => {
            for p in unverified.iter_mut().chain(neutralised.iter_mut()) {
                *p = number(*objective, *p);
            }
        }
        Step::Revise { changes, .. } => {
            for change in changes {
                match change {
                    Change::Deadline {
                        objective,
                        phase: Some(p),
                        ..
                    }
                    | Change::SetWeight {
                        objective,
                        phase: p,
                        ..
                    }
                    | Change::AddPhase {
                        objective,
                        donor: p,
                        ..
                    } => *p = number(*objective, *p),
                    Change::MoveWeight {
                        objective,
                        from: a,
                        to: b,
                        ..
                    }
                    | Change::WithdrawPhase {
                        objective,
                        phase: a,
                        heir: b,
                    } => {
                        *a = number(*objective, *a);
                        *b = number(*objective, *b);
                    }
                    _ => {}
                }
            }
        }
        Step::Advance(_) | Step::Measure { .. } | Step::Acknowledge(_) => {}
    }
    step
}

/// Runs one step; `Ok(true)` when something was appended.
pub(crate) fn run(world: &World, step: &Step) -> Result<bool, TestCaseError> {
    let keys = keys(world);
    let step = &resolve(world, &keys, step);
    let result = match step {
        Step::Advance(days) => {
            world.clock.advance(Duration::days(*days));
            return Ok(false);
        }
        Step::Revise {
            act_days_ago,
            changes,
        } => {
            let request = RevisionRequest {
                act: "D.G.C. n. 182 del 28/07/2022".into(),
                act_date: act_days_ago.map(|n| today(world) - Duration::days(n)),
                reason: "rimodulazione".into(),
                changes: revision_changes(world, &keys, changes),
            };
            block_on(world.app.revise(2022, &request, &admin(), None))
        }
        Step::Acknowledge(index) => {
            let events = world.app.year_events(2022, Until::End).unwrap();
            let flags = traguardo_projections::flags::red_flags(
                &events,
                &traguardo_projections::flags::FlagSettings::default(),
            )
            .unwrap();
            let Some(flag) = (!flags.is_empty()).then(|| &flags[index % flags.len()]) else {
                return Ok(false);
            };
            block_on(
                world
                    .app
                    .acknowledge_flag(2022, &flag.id, "esaminata", &validator(), None),
            )
        }
        other => {
            let (key, command, who) = command(world, &keys, other).expect("an objective command");
            world.run(&key, command, &who)
        }
    };
    match result {
        Ok(written) => {
            prop_assert!(!written.events.is_empty());
            Ok(true)
        }
        Err(AppError::NotFound(_) | AppError::Domain(_) | AppError::Invalid(_)) => Ok(false),
        Err(other) => Err(TestCaseError::fail(format!(
            "{step:?} failed with {other:?}"
        ))),
    }
}

/// The dates at which (d) is checked: before the plan, through 2022, after it.
pub(crate) fn dates() -> Vec<NaiveDate> {
    let mut dates = vec![d("2021-12-01")];
    let mut at = d("2022-01-01");
    while at <= d("2023-03-31") {
        dates.push(at);
        at += Duration::days(9);
    }
    dates.push(d("2022-12-31"));
    dates
}

fn check_scores(objectives: &BTreeMap<String, Objective>) -> Result<(), TestCaseError> {
    for (key, o) in objectives {
        for at in dates() {
            if !o.active_at(at) {
                continue;
            }
            let active: i64 = o
                .phases()
                .iter()
                .filter(|p| p.active_at(at))
                .map(|p| p.weight.at(at).0)
                .sum();
            prop_assert_eq!(active, 10_000, "weights of {} at {}", key, at);
            let s = o.score(at);
            prop_assert!(
                Hundredths::ZERO <= s.on_time_pct
                    && s.on_time_pct <= s.completed_pct
                    && s.completed_pct <= Hundredths::HUNDRED,
                "{} at {}: on time {:?}, completed {:?}",
                key,
                at,
                s.on_time_pct,
                s.completed_pct
            );
            if let Some(v) = s.validated_pct {
                prop_assert!(
                    Hundredths::ZERO <= v && v <= Hundredths::HUNDRED,
                    "{} at {}: validated {:?}",
                    key,
                    at,
                    v
                );
            }
        }
    }
    Ok(())
}

/// The API writes an objective's state straight from the read model
/// (`Objective::answer`): the same bytes as its view, at every date.
fn check_answers(objectives: &BTreeMap<String, Objective>) -> Result<(), TestCaseError> {
    for (key, o) in objectives {
        for at in dates() {
            let written = o.answer(at).to_json().expect("serializes");
            let built = serde_json::to_vec(&o.evaluate(at)).expect("serializes");
            prop_assert!(
                written == built,
                "{} at {}: the answer\n{}\nis not the view\n{}",
                key,
                at,
                String::from_utf8_lossy(&written),
                String::from_utf8_lossy(&built)
            );
        }
    }
    Ok(())
}

fn rebuilt(world: &World) -> Registry {
    let app = App::open(world.db(), world.clock.clone()).expect("the log folds");
    app.read(Registry::clone)
}

fn history(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let world = World::with_seed();
    let store = world.app.store().clone();
    let mut snapshots = vec![Snapshot {
        seq: store.head().unwrap().seq,
        recorded_at: world.clock.now(),
        objectives: world.app.read(objectives_of),
    }];
    for step in &steps {
        let before = store.head().unwrap();
        let appended = run(&world, step)?;
        let after = store.head().unwrap();
        if !appended {
            prop_assert_eq!(&after, &before, "a refused {:?} appended something", step);
            continue;
        }
        // (a) after every append, the incremental state is the stream's fold.
        let live = world.app.read(objectives_of);
        for (key, o) in &live {
            let stream = store
                .read_stream(&format!("objective/{key}"), Until::End)
                .unwrap();
            let folded = Objective::from_events(&stream).unwrap();
            prop_assert_eq!(folded.as_ref(), Some(o), "{} after {:?}", key, step);
        }
        snapshots.push(Snapshot {
            seq: after.seq,
            recorded_at: world.clock.now(),
            objectives: live,
        });
    }

    // (a) the whole log, folded by a second application, is the live state.
    let live = world.app.read(Registry::clone);
    let first = rebuilt(&world);
    prop_assert_eq!(&first, &live);
    // (b) twice, byte for byte.
    let second = rebuilt(&world);
    prop_assert_eq!(bytes_of(&first), bytes_of(&second));
    prop_assert_eq!(bytes_of(&first), bytes_of(&live));

    // (c) as of seq N: what the system held right after N, from the store's
    // stream reads and from the first N events of the log.
    let all = store.read_all(0, usize::MAX >> 1).unwrap();
    for snapshot in &snapshots {
        for key in live.objectives().map(Objective::key) {
            let as_of = world
                .app
                .objective_as_of(key, Until::Seq(snapshot.seq))
                .unwrap();
            prop_assert_eq!(
                as_of.as_ref(),
                snapshot.objectives.get(key),
                "{} as of seq {}",
                key,
                snapshot.seq
            );
        }
        let mut prefix = Registry::new();
        prefix
            .apply_all(all.iter().take(snapshot.seq as usize))
            .unwrap();
        prop_assert_eq!(objectives_of(&prefix), snapshot.objectives.clone());
        let registry = world
            .app
            .registry_as_of(2022, Until::Seq(snapshot.seq))
            .unwrap();
        prop_assert_eq!(objectives_of(&registry), snapshot.objectives.clone());
    }
    // … and as of a record time: the last state held at that time.
    let mut by_time: BTreeMap<DateTime<Utc>, &Snapshot> = BTreeMap::new();
    for snapshot in &snapshots {
        by_time.insert(snapshot.recorded_at, snapshot);
    }
    for (at, snapshot) in by_time {
        for (key, expected) in &snapshot.objectives {
            let as_of = world
                .app
                .objective_as_of(key, Until::RecordedAt(at))
                .unwrap();
            prop_assert_eq!(as_of.as_ref(), Some(expected), "{} as of {}", key, at);
        }
    }

    // (d) every state the system held, at every date.
    for snapshot in &snapshots {
        check_scores(&snapshot.objectives)?;
        check_answers(&snapshot.objectives)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 28,
        max_shrink_iters: 200,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_histories_fold_the_same_every_way_and_keep_scores_in_bounds(
        steps in prop::collection::vec(step(), 1..32)
    ) {
        history(steps)?;
    }
}
