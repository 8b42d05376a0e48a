//! Progress on the Alessandria 2022 seed, scores (DESIGN.md §4) by valid
//! time, and the state as the system knew it at a past record time or seq.
//!
//! Weights and deadlines come from the seed (checked against the source text in
//! `plan.rs`); every expected percentage is worked out from them by the rules of
//! DESIGN.md §4, in a comment beside it.

use traguardo::commands::RefusalKind;
use traguardo::commands::{ObjectiveCommand, RevisionRequest};
use traguardo::AppError;
use traguardo_events::domain::{ObjectiveEvent, RevisionChange};
use traguardo_events::model::{Hundredths, PhaseSpec, ValidationOutcome, ValidationStage};
use traguardo_events::store::Until;
use traguardo_projections::{Objective, ObjectiveView, Outcome, PhaseStatus, Score};

use crate::support::{admin, auditor, d, manager, manager_of, validator, World};

const RF_A: &str = "2022-2250-A";
const RF_B: &str = "2022-2250-B";
const RF_C: &str = "2022-2250-C";
const SI_C: &str = "2022-2249-C";
const PL_B: &str = "2022-2247-B";
const POLO: &str = "2022-2252-C";
const PEDIBUS: &str = "2022-2252-D";

fn pct(value: f64) -> Hundredths {
    Hundredths((value * 100.0).round() as i64)
}

fn score(world: &World, key: &str, at: &str) -> Score {
    world.app.read(|r| r.objective(key).unwrap().score(d(at)))
}

fn view(world: &World, key: &str, at: &str) -> ObjectiveView {
    world
        .app
        .read(|r| r.objective(key).unwrap().evaluate(d(at)))
}

fn status(world: &World, key: &str, phase: u32, at: &str) -> PhaseStatus {
    world.app.read(|r| {
        r.objective(key)
            .unwrap()
            .phase(phase)
            .unwrap()
            .status_at(d(at))
    })
}

#[track_caller]
fn assert_score(s: Score, completed: f64, on_time: f64, outcome: Outcome) {
    assert_eq!(
        (s.completed_pct, s.on_time_pct, s.outcome),
        (pct(completed), pct(on_time), outcome),
        "completed, on time, outcome at {}",
        s.at
    );
}

fn revision(act_date: Option<&str>, changes: Vec<RevisionChange>) -> RevisionRequest {
    RevisionRequest {
        act: "D.G.C. n. 182 del 28/07/2022".into(),
        act_date: act_date.map(d),
        reason: "integrazione/rimodulazione/revisione obiettivi 2022".into(),
        changes,
    }
}

fn deadline(objective: &str, phase: Option<u32>, new_deadline: &str) -> RevisionChange {
    RevisionChange::Deadline {
        objective: objective.into(),
        phase,
        new_deadline: d(new_deadline),
    }
}

fn weights(objective: &str, weights: &[(u32, i64)]) -> RevisionChange {
    RevisionChange::Weights {
        objective: objective.into(),
        weights_hundredths: weights.iter().map(|(n, w)| (*n, Hundredths(*w))).collect(),
    }
}

fn final_validation(
    outcome: ValidationOutcome,
    unverified: &[u32],
    neutralised: &[u32],
    note: Option<&str>,
) -> ObjectiveCommand {
    ObjectiveCommand::RecordValidation(traguardo::commands::ValidationRequest {
        stage: ValidationStage::Final,
        outcome,
        unverified_phases: unverified.to_vec(),
        neutralised_phases: neutralised.to_vec(),
        note: note.map(str::to_string),
        reference: None,
    })
}

fn retract(phase: u32, reason: &str) -> ObjectiveCommand {
    ObjectiveCommand::RetractCompletion {
        phase,
        reason: reason.into(),
        backfill: None,
    }
}

fn head(world: &World) -> u64 {
    world.app.store().head().unwrap().seq
}

fn last_seq(written: traguardo::app::Written) -> u64 {
    written.events.last().unwrap().seq
}

// ---------------------------------------------------------------------------
// Scenarios on the seed

#[test]
fn an_objective_with_every_phase_on_time_is_achieved_at_one_hundred() {
    // Pedibus: 40 by 24/05, 10 and 25 by 31/05, 20 and 5 by 30/06.
    let w = World::with_seed();
    w.on("2022-05-20");
    w.start(PEDIBUS, 1, "2022-05-02").unwrap();
    w.complete(PEDIBUS, 1, "2022-05-20").unwrap();
    w.on("2022-05-31");
    w.complete(PEDIBUS, 2, "2022-05-30").unwrap();
    w.complete(PEDIBUS, 3, "2022-05-31").unwrap();
    w.on("2022-07-01");
    w.complete(PEDIBUS, 4, "2022-06-29").unwrap();
    w.complete(PEDIBUS, 5, "2022-06-30").unwrap();

    assert_score(
        score(&w, PEDIBUS, "2022-07-01"),
        100.0,
        100.0,
        Outcome::Achieved,
    );
    // On 25/05 only phase 1 was done: 40, and it could still all be done in time.
    assert_score(
        score(&w, PEDIBUS, "2022-05-25"),
        40.0,
        40.0,
        Outcome::InProgress,
    );
    let v = view(&w, PEDIBUS, "2022-07-01");
    assert!(v
        .phases
        .iter()
        .all(|p| p.status == PhaseStatus::CompletedOnTime));
    assert_eq!(v.phases[0].started_on, Some(d("2022-05-02")));
    assert_eq!(
        v.phases[4].completed_by.as_deref(),
        Some("Dirigente 2252"),
        "who recorded it"
    );
    assert_eq!(v.score.validated_pct, None, "no final validation yet");
}

#[test]
fn a_late_phase_means_not_achieved_and_on_time_is_the_sum_of_the_other_weights() {
    // Obiettivo B of Risorse Finanziarie: 30 by 31/03, 30 by 31/05, 40 by 31/12.
    let w = World::with_seed();
    w.on("2022-04-01");
    w.complete(RF_B, 1, "2022-03-30").unwrap();
    // On 1 June phase 2 is overdue: the objective can no longer be achieved.
    assert_eq!(status(&w, RF_B, 2, "2022-06-01"), PhaseStatus::Overdue);
    assert_score(
        score(&w, RF_B, "2022-06-01"),
        30.0,
        30.0,
        Outcome::NotAchieved,
    );
    w.on("2022-06-16");
    w.complete(RF_B, 2, "2022-06-15").unwrap();
    w.on("2022-12-21");
    w.complete(RF_B, 3, "2022-12-20").unwrap();
    assert_eq!(
        status(&w, RF_B, 2, "2022-12-31"),
        PhaseStatus::CompletedLate
    );
    // Completed: 30 + 30 + 40 = 100; on time: 30 + 40 = 70.
    assert_score(
        score(&w, RF_B, "2022-12-31"),
        100.0,
        70.0,
        Outcome::NotAchieved,
    );
}

#[test]
fn a_deadline_extended_before_it_passed_makes_a_later_completion_on_time() {
    // Sistemi Informativi C phase 1 (20) is due 28/02; Risorse Finanziarie C phase
    // 1 (25) is due 28/02 too and gets no extension: the control case.
    let w = World::with_seed();
    w.on("2022-02-21");
    w.revise(
        2022,
        revision(
            Some("2022-02-20"),
            vec![deadline(SI_C, Some(1), "2022-03-31")],
        ),
    )
    .unwrap();
    w.on("2022-03-16");
    w.complete(SI_C, 1, "2022-03-15").unwrap();
    w.complete(RF_C, 1, "2022-03-15").unwrap();

    assert_eq!(
        status(&w, SI_C, 1, "2022-03-20"),
        PhaseStatus::CompletedOnTime
    );
    assert_eq!(
        status(&w, RF_C, 1, "2022-03-20"),
        PhaseStatus::CompletedLate
    );
    assert_score(
        score(&w, SI_C, "2022-03-20"),
        20.0,
        20.0,
        Outcome::InProgress,
    );
    let after = view(&w, SI_C, "2022-03-20");
    assert_eq!(after.phases[0].deadline, d("2022-03-31"));
    assert_eq!(after.phases[0].original_deadline, d("2022-02-28"));
    // At a date before the act, the old deadline is the one in force.
    let before = view(&w, SI_C, "2022-02-19");
    assert_eq!(before.phases[0].deadline, d("2022-02-28"));
    assert_eq!(before.phases[0].status, PhaseStatus::NotStarted);
}

#[test]
fn a_deadline_extended_after_it_passed_counts_only_from_the_act_date() {
    // Risorse Finanziarie C phase 1 (25), due 28/02, done 15/03; an act of 10/04
    // moves the deadline to 31/03.
    let w = World::with_seed();
    w.on("2022-03-16");
    w.complete(RF_C, 1, "2022-03-15").unwrap();
    w.on("2022-04-11");
    w.revise(
        2022,
        revision(
            Some("2022-04-10"),
            vec![deadline(RF_C, Some(1), "2022-03-31")],
        ),
    )
    .unwrap();
    assert_eq!(
        status(&w, RF_C, 1, "2022-04-09"),
        PhaseStatus::CompletedLate
    );
    assert_score(
        score(&w, RF_C, "2022-04-09"),
        25.0,
        0.0,
        Outcome::NotAchieved,
    );
    assert_eq!(
        status(&w, RF_C, 1, "2022-04-10"),
        PhaseStatus::CompletedOnTime
    );
    // Phase 2 (25) is not due until 30/04: still possible.
    assert_score(
        score(&w, RF_C, "2022-04-10"),
        25.0,
        25.0,
        Outcome::InProgress,
    );
}

#[test]
fn a_retracted_completion_no_longer_counts_and_the_phase_is_in_progress_again() {
    // Risorse Finanziarie A phase 1 (20), due 30/05.
    let w = World::with_seed();
    w.on("2022-03-01");
    w.start(RF_A, 1, "2022-03-01").unwrap();
    w.on("2022-05-20");
    w.complete(RF_A, 1, "2022-05-20").unwrap();
    assert_score(
        score(&w, RF_A, "2022-05-21"),
        20.0,
        20.0,
        Outcome::InProgress,
    );
    w.on("2022-05-22");
    let written = w
        .run(
            RF_A,
            retract(1, "registrata per errore: manca il verbale"),
            &manager("2250"),
        )
        .unwrap();
    assert_eq!(written.events[0].event_type, "phase_completion_retracted");
    assert_eq!(written.events[0].actor, "Dirigente 2250");
    assert_eq!(status(&w, RF_A, 1, "2022-05-22"), PhaseStatus::InProgress);
    assert_score(score(&w, RF_A, "2022-05-22"), 0.0, 0.0, Outcome::InProgress);
    // Not redone by the deadline: overdue.
    assert_eq!(status(&w, RF_A, 1, "2022-05-31"), PhaseStatus::Overdue);
    // Recorded again, with the right date.
    w.on("2022-05-27");
    w.complete(RF_A, 1, "2022-05-26").unwrap();
    assert_eq!(
        status(&w, RF_A, 1, "2022-05-31"),
        PhaseStatus::CompletedOnTime
    );
}

#[test]
fn a_completion_recorded_without_a_start_and_retracted_leaves_the_phase_in_progress() {
    // Pedibus phase 1 (40), due 24/05: declared done on 10/05 with no start
    // recorded, then retracted.
    let w = World::with_seed();
    w.on("2022-05-11");
    w.complete(PEDIBUS, 1, "2022-05-10").unwrap();
    w.run(
        PEDIBUS,
        retract(1, "registrata per errore"),
        &manager("2252"),
    )
    .unwrap();
    assert_eq!(
        status(&w, PEDIBUS, 1, "2022-05-11"),
        PhaseStatus::InProgress
    );
    // Before the retracted completion's date nothing said it was under way.
    assert_eq!(
        status(&w, PEDIBUS, 1, "2022-05-09"),
        PhaseStatus::NotStarted
    );
    assert_eq!(status(&w, PEDIBUS, 1, "2022-05-25"), PhaseStatus::Overdue);
    // The correct, earlier date can be recorded: the retracted one is no start.
    w.complete(PEDIBUS, 1, "2022-05-09").unwrap();
    assert_eq!(
        status(&w, PEDIBUS, 1, "2022-05-25"),
        PhaseStatus::CompletedOnTime
    );
}

#[test]
fn a_withdrawn_phase_does_not_count_and_the_others_make_one_hundred() {
    // Polizia Locale B: 20, 60, 10, 10. An act of 28/07 withdraws phase 3 and gives
    // its 10 to phase 4.
    let w = World::with_seed();
    w.on("2022-07-29");
    w.revise(
        2022,
        revision(
            Some("2022-07-28"),
            vec![
                RevisionChange::WithdrawPhase {
                    objective: PL_B.into(),
                    phase: 3,
                },
                weights(PL_B, &[(4, 2000)]),
            ],
        ),
    )
    .unwrap();
    w.complete(PL_B, 1, "2022-06-20").unwrap();
    w.on("2022-08-21");
    w.complete(PL_B, 2, "2022-08-20").unwrap();
    w.on("2022-12-16");
    w.complete(PL_B, 4, "2022-12-15").unwrap();

    // Phase 3 is past its 30/09 deadline, but it no longer counts.
    assert_score(
        score(&w, PL_B, "2022-12-31"),
        100.0,
        100.0,
        Outcome::Achieved,
    );
    let v = view(&w, PL_B, "2022-12-31");
    assert_eq!(v.phases.len(), 4, "a withdrawn phase stays in the list");
    assert!(v.phases[2].withdrawn);
    assert_eq!(v.phases[3].weight.0, Hundredths(2000));
    assert_eq!(v.phases[3].original_weight.0, Hundredths(1000));
    // Before the act, phase 3 counted with its 10 and phase 4 weighed 10.
    let before = view(&w, PL_B, "2022-07-01");
    assert!(!before.phases[2].withdrawn);
    let total: i64 = before
        .phases
        .iter()
        .filter(|p| !p.withdrawn)
        .map(|p| p.weight.0 .0)
        .sum();
    assert_eq!(total, 10_000);
    assert_eq!(before.phases[3].weight.0, Hundredths(1000));
    // Nothing can be recorded on it.
    let refused = w.complete(PL_B, 3, "2022-09-20");
    assert!(
        matches!(refused, Err(AppError::Domain(ref e)) if e.kind() == RefusalKind::Rule && e.to_string().contains("la fase 3 di 2022-2247-B è stata stralciata")),
        "{refused:?}"
    );
}

#[test]
fn an_objective_part_done_with_nothing_late_is_in_progress() {
    // Polo Etnografico: 25 each, due 31/05, 30/06, 31/07, 31/12.
    let w = World::with_seed();
    w.on("2022-06-02");
    w.complete(POLO, 1, "2022-05-30").unwrap();
    w.start(POLO, 2, "2022-06-01").unwrap();
    assert_score(
        score(&w, POLO, "2022-06-10"),
        25.0,
        25.0,
        Outcome::InProgress,
    );
    let v = view(&w, POLO, "2022-06-10");
    let statuses: Vec<PhaseStatus> = v.phases.iter().map(|p| p.status).collect();
    assert_eq!(
        statuses,
        [
            PhaseStatus::CompletedOnTime,
            PhaseStatus::InProgress,
            PhaseStatus::NotStarted,
            PhaseStatus::NotStarted
        ]
    );
}

// ---------------------------------------------------------------------------
// Final validation: declared and verified

/// Risorse Finanziarie A: 20 on time, 20 late, 20 on time, 40 never done.
fn rf_a_with_a_late_phase() -> World {
    let w = World::with_seed();
    w.on("2022-05-29");
    w.complete(RF_A, 1, "2022-05-28").unwrap();
    w.on("2022-07-30");
    w.complete(RF_A, 2, "2022-07-15").unwrap();
    w.complete(RF_A, 3, "2022-07-29").unwrap();
    w.on("2023-01-20");
    w
}

#[test]
fn a_final_validation_that_neutralises_a_phase_rescales_the_other_weights() {
    let w = rf_a_with_a_late_phase();
    // Declared: completed 60, on time 20 + 20 = 40.
    assert_score(
        score(&w, RF_A, "2023-01-20"),
        60.0,
        40.0,
        Outcome::NotAchieved,
    );
    w.run(
        RF_A,
        final_validation(
            ValidationOutcome::Approved,
            &[],
            &[2],
            Some("fase 2 dipendente dalla risposta degli altri settori"),
        ),
        &validator(),
    )
    .unwrap();
    // Phase 2 left out: 40 on time of the remaining 80 → 50.
    let s = score(&w, RF_A, "2023-01-20");
    assert_eq!(s.validated_pct, Some(pct(50.0)));
    assert_eq!(s.on_time_pct, pct(40.0), "declared, side by side");
    // Before the validation was recorded there was none.
    assert_eq!(score(&w, RF_A, "2023-01-19").validated_pct, None);
    let v = view(&w, RF_A, "2023-01-20");
    assert_eq!(v.validations.len(), 1);
    assert_eq!(v.validations[0].neutralised_phases, [2]);
}

#[test]
fn neutralising_rounds_the_rescaled_result_to_two_decimals() {
    // Sistemi Informativi C: 20, 30, 40, 10. Phases 1 and 4 on time (30), phase 3
    // late; phase 2 neutralised: 30 of 70 = 42.857… → 42.86.
    let w = World::with_seed();
    w.on("2022-02-28");
    w.complete(SI_C, 1, "2022-02-28").unwrap();
    w.on("2022-10-10");
    w.complete(SI_C, 3, "2022-10-10").unwrap();
    w.on("2022-12-30");
    w.complete(SI_C, 4, "2022-12-30").unwrap();
    w.on("2023-01-20");
    w.run(
        SI_C,
        final_validation(
            ValidationOutcome::Approved,
            &[],
            &[2],
            Some("chatbot: ritardo del fornitore"),
        ),
        &validator(),
    )
    .unwrap();
    let s = score(&w, SI_C, "2023-01-20");
    assert_eq!(s.on_time_pct, pct(30.0));
    assert_eq!(s.validated_pct, Some(Hundredths(4286)));
}

#[test]
fn a_declared_phase_left_unverified_counts_as_not_completed_in_the_validated_result() {
    // Risorse Finanziarie C: 25, 25, 20, 30, all declared on time.
    let w = World::with_seed();
    w.on("2022-02-25");
    w.complete(RF_C, 1, "2022-02-25").unwrap();
    w.on("2022-04-28");
    w.complete(RF_C, 2, "2022-04-28").unwrap();
    w.on("2022-07-29");
    w.complete(RF_C, 3, "2022-07-29").unwrap();
    w.on("2022-12-30");
    w.complete(RF_C, 4, "2022-12-30").unwrap();
    w.on("2023-01-20");
    w.run(
        RF_C,
        final_validation(
            ValidationOutcome::Approved,
            &[3],
            &[],
            Some("TARI con PagoPA: emissione non documentata"),
        ),
        &validator(),
    )
    .unwrap();
    let s = score(&w, RF_C, "2023-01-20");
    assert_score(s, 100.0, 100.0, Outcome::Achieved);
    // 100 declared, 20 of it not accepted: 80.
    assert_eq!(s.validated_pct, Some(pct(80.0)));
}

#[test]
fn a_rejected_final_validation_validates_zero() {
    let w = rf_a_with_a_late_phase();
    w.run(
        RF_A,
        final_validation(
            ValidationOutcome::Rejected,
            &[],
            &[],
            Some("documentazione assente"),
        ),
        &validator(),
    )
    .unwrap();
    assert_eq!(
        score(&w, RF_A, "2023-01-20").validated_pct,
        Some(Hundredths::ZERO)
    );
}

// ---------------------------------------------------------------------------
// Time travel: valid time and record time

#[test]
fn the_state_as_of_a_seq_is_what_the_system_said_then() {
    let w = World::with_seed();
    let loaded = head(&w);
    w.on("2022-05-20");
    w.start(RF_A, 1, "2022-05-02").unwrap();
    let completed = last_seq(w.complete(RF_A, 1, "2022-05-20").unwrap());
    w.on("2022-05-22");
    let retracted = last_seq(w.run(RF_A, retract(1, "errore"), &manager("2250")).unwrap());

    let as_of = |n: u64| -> Objective {
        w.app
            .objective_as_of(RF_A, Until::Seq(n))
            .unwrap()
            .expect("defined by then")
    };
    assert!(w
        .app
        .objective_as_of(RF_A, Until::Seq(0))
        .unwrap()
        .is_none());
    assert!(as_of(loaded).phases()[0].completed().is_none());
    let then = as_of(completed);
    assert_eq!(then.phases()[0].completed().unwrap().on, d("2022-05-20"));
    assert_score(then.score(d("2022-05-21")), 20.0, 20.0, Outcome::InProgress);
    let now = as_of(retracted);
    assert!(now.phases()[0].completed().is_none());
    assert_score(now.score(d("2022-05-21")), 0.0, 0.0, Outcome::InProgress);
    // The latest seq is the live state.
    assert_eq!(now, w.app.read(|r| r.objective(RF_A).unwrap().clone()));
}

#[test]
fn an_auditor_asks_what_the_system_said_on_a_past_day_and_what_score_it_computed() {
    // Risorse Finanziarie A phase 2 (20, due 30/06) done 15/07: late. On 5/11 an act
    // of 4/11 moves its deadline to 31/07.
    let w = World::with_seed();
    w.on("2022-05-29");
    w.complete(RF_A, 1, "2022-05-28").unwrap();
    w.on("2022-07-20");
    w.complete(RF_A, 2, "2022-07-15").unwrap();
    w.complete(RF_A, 3, "2022-07-20").unwrap();
    w.on("2022-11-05");
    w.revise(
        2022,
        revision(
            Some("2022-11-04"),
            vec![deadline(RF_A, Some(2), "2022-07-31")],
        ),
    )
    .unwrap();

    // "What did the system say on 2022-10-01 about 2022-2250-A?"
    let evening = d("2022-10-01").and_hms_opt(23, 59, 59).unwrap().and_utc();
    let then = w
        .app
        .objective_as_of(RF_A, Until::RecordedAt(evening))
        .unwrap()
        .unwrap();
    assert_eq!(then.phases()[1].deadline.latest(), &d("2022-06-30"));
    assert_score(
        then.score(d("2022-10-01")),
        60.0,
        40.0,
        Outcome::NotAchieved,
    );
    // What the system says today about the same day: the act came later, so on
    // 1/10 phase 2 was late all the same.
    assert_score(
        score(&w, RF_A, "2022-10-01"),
        60.0,
        40.0,
        Outcome::NotAchieved,
    );
    // From the act on, phase 2 is on time: 20 + 20 + 20, phase 4 (40) still open.
    assert_score(
        score(&w, RF_A, "2022-11-04"),
        60.0,
        60.0,
        Outcome::InProgress,
    );

    // The plan's scores as of that evening, from the log up to then.
    let registry = w
        .app
        .registry_as_of(2022, Until::RecordedAt(evening))
        .unwrap();
    let scores = registry.scores(2022, d("2022-10-01")).unwrap();
    let line = scores.objectives.iter().find(|l| l.key == RF_A).unwrap();
    assert_eq!(line.on_time_pct.0, pct(40.0));
    assert_eq!(line.outcome, Outcome::NotAchieved);
}

#[test]
fn plan_and_unit_scores_are_means_of_the_objectives_on_time_percentages() {
    let w = World::with_seed();
    // 2250 A: every phase on time → 100. 2250 B: phases 1 and 3 on time, 2 late →
    // 70. 2252 C: phase 1 only → 25. 2252 D (Pedibus): all on time → 100.
    // 2250 C, 2249 C, 2247 B: nothing → 0.
    for (record, key, phase, on) in [
        ("2022-03-31", RF_B, 1, "2022-03-31"),
        ("2022-05-31", RF_A, 1, "2022-05-30"),
        ("2022-05-31", POLO, 1, "2022-05-31"),
        ("2022-05-31", PEDIBUS, 1, "2022-05-24"),
        ("2022-05-31", PEDIBUS, 2, "2022-05-31"),
        ("2022-05-31", PEDIBUS, 3, "2022-05-31"),
        ("2022-06-15", RF_B, 2, "2022-06-15"),
        ("2022-06-30", RF_A, 2, "2022-06-30"),
        ("2022-06-30", PEDIBUS, 4, "2022-06-30"),
        ("2022-06-30", PEDIBUS, 5, "2022-06-30"),
        ("2022-07-31", RF_A, 3, "2022-07-31"),
        ("2022-12-31", RF_A, 4, "2022-12-31"),
        ("2022-12-31", RF_B, 3, "2022-12-31"),
    ] {
        w.on(record);
        w.complete(key, phase, on).unwrap();
    }

    let scores = w.app.read(|r| r.scores(2022, d("2022-12-31"))).unwrap();
    let on_time: Vec<(String, Hundredths)> = scores
        .objectives
        .iter()
        .map(|l| (l.key.clone(), l.on_time_pct.0))
        .collect();
    assert_eq!(
        on_time,
        [
            (RF_A.to_string(), pct(100.0)),
            (RF_B.to_string(), pct(70.0)),
            (RF_C.to_string(), pct(0.0)),
            (SI_C.to_string(), pct(0.0)),
            (PL_B.to_string(), pct(0.0)),
            (POLO.to_string(), pct(25.0)),
            (PEDIBUS.to_string(), pct(100.0)),
        ]
    );
    let units: Vec<(String, Hundredths)> = scores
        .units
        .iter()
        .map(|u| (u.unit.clone(), u.score.0))
        .collect();
    assert_eq!(
        units,
        [
            ("2247".to_string(), pct(0.0)),
            ("2249".to_string(), pct(0.0)),
            // (100 + 70 + 0) / 3 = 56.666…
            ("2250".to_string(), Hundredths(5667)),
            // (25 + 100) / 2
            ("2252".to_string(), pct(62.5)),
        ]
    );
    // 295 / 7 = 42.142…
    assert_eq!(scores.plan.score.0, Hundredths(4214));

    // A withdrawn objective leaves the means.
    w.revise(
        2022,
        revision(
            Some("2022-12-31"),
            vec![RevisionChange::WithdrawObjective {
                objective: RF_C.into(),
            }],
        ),
    )
    .unwrap();
    let scores = w.app.read(|r| r.scores(2022, d("2022-12-31"))).unwrap();
    assert_eq!(scores.objectives.len(), 6);
    let unit_2250 = scores.units.iter().find(|u| u.unit == "2250").unwrap();
    assert_eq!(unit_2250.score.0, pct(85.0));
    // 295 / 6 = 49.1666…
    assert_eq!(scores.plan.score.0, Hundredths(4917));
    // Before the act it still counted.
    let earlier = w.app.read(|r| r.scores(2022, d("2022-12-30"))).unwrap();
    assert_eq!(earlier.objectives.len(), 7);
}

// ---------------------------------------------------------------------------
// Rules through the application: the error, and nothing appended

#[test]
fn an_unknown_objective_or_phase_is_not_found_and_appends_nothing() {
    let w = World::with_seed();
    let before = head(&w);
    w.on("2022-06-10");
    let unknown = w.complete("2022-2250-Z", 1, "2022-06-01");
    assert!(
        matches!(unknown, Err(AppError::Domain(ref e)) if e.to_string() == "non esiste l'obiettivo 2022-2250-Z"),
        "{unknown:?}"
    );
    let phase = w.complete(RF_B, 4, "2022-06-01");
    assert!(
        matches!(phase, Err(AppError::Domain(ref e)) if e.kind() == RefusalKind::NotFound && e.to_string().contains("non ha la fase 4")),
        "{phase:?}"
    );
    assert_eq!(head(&w), before);
}

#[test]
fn a_valid_date_after_the_record_date_is_refused_and_appends_nothing() {
    let w = World::with_seed();
    let before = head(&w);
    w.on("2022-06-10");
    for result in [
        w.start(RF_A, 1, "2022-06-11"),
        w.complete(RF_A, 1, "2022-06-11"),
    ] {
        match result {
            Err(AppError::Invalid(errors)) => {
                assert_eq!(errors[0].field, "on");
                assert!(errors[0].message.contains("è dopo oggi (10/06/2022)"));
            }
            other => panic!("expected invalid input, got {other:?}"),
        }
    }
    assert_eq!(head(&w), before);
    // The same date is fine once it has come.
    w.on("2022-06-11");
    w.complete(RF_A, 1, "2022-06-11").unwrap();
}

#[test]
fn progress_rules_refuse_through_the_application() {
    let w = World::with_seed();
    w.on("2022-03-02");
    w.start(RF_A, 1, "2022-03-01").unwrap();
    let before = head(&w);
    let early = w.complete(RF_A, 1, "2022-02-28");
    assert!(
        matches!(early, Err(AppError::Domain(ref e)) if e.kind() == RefusalKind::Rule && e.to_string().contains("prima del suo avvio il 01/03/2022")),
        "{early:?}"
    );
    w.complete(RF_A, 1, "2022-03-02").unwrap();
    let twice = w.complete(RF_A, 1, "2022-03-02");
    assert!(
        matches!(twice, Err(AppError::Domain(ref e)) if e.kind() == RefusalKind::Rule && e.to_string().contains("già stata completata il 02/03/2022")),
        "{twice:?}"
    );
    assert_eq!(head(&w), before + 1);
    for who in [manager("2249"), admin(), auditor(), validator()] {
        let refused = w.run(
            RF_A,
            ObjectiveCommand::StartPhase {
                phase: 2,
                on: d("2022-03-02"),
                note: None,
                backfill: None,
            },
            &who,
        );
        assert!(
            matches!(refused, Err(AppError::Domain(ref e)) if e.kind() == RefusalKind::Forbidden),
            "{refused:?}"
        );
    }
    let no_reason = w.run(RF_A, retract(1, ""), &manager_of(RF_A));
    assert!(
        matches!(no_reason, Err(AppError::Invalid(ref e)) if e[0].field == "reason"),
        "{no_reason:?}"
    );
    let zero = w.run(
        RF_B,
        ObjectiveCommand::RecordMeasurement(traguardo::commands::Measurement {
            indicator: "rimborsi-90gg".into(),
            on: d("2022-03-01"),
            value: None,
            numerator: Some(5),
            denominator: Some(0),
            text: None,
            entry: traguardo::commands::Entry {
                note: None,
                backfill: None,
            },
        }),
        &manager("2250"),
    );
    assert!(
        matches!(zero, Err(AppError::Invalid(ref e)) if e[0].field == "denominator" && e[0].message == "deve essere maggiore di 0"),
        "{zero:?}"
    );
    assert_eq!(head(&w), before + 1);
}

#[test]
fn the_recorder_of_a_completion_may_not_validate_and_the_note_is_mandatory() {
    let w = rf_a_with_a_late_phase();
    let same_person = traguardo::commands::Principal {
        role: traguardo_events::model::Role::Validator,
        units: vec![],
        ..manager("2250")
    };
    let refused = w.run(
        RF_A,
        final_validation(ValidationOutcome::Approved, &[], &[], None),
        &same_person,
    );
    assert!(
        matches!(refused, Err(AppError::Domain(ref e)) if e.kind() == RefusalKind::Forbidden && e.to_string().contains("non può validarlo")),
        "{refused:?}"
    );
    let no_note = w.run(
        RF_A,
        final_validation(ValidationOutcome::Approved, &[], &[2], None),
        &validator(),
    );
    assert!(
        matches!(no_note, Err(AppError::Invalid(ref e)) if e[0].field == "note"),
        "{no_note:?}"
    );
}

#[test]
fn the_plan_stage_is_validated_once_unless_a_revision_changed_the_objective_since() {
    let w = World::with_seed();
    let plan_stage = || {
        ObjectiveCommand::RecordValidation(traguardo::commands::ValidationRequest {
            stage: ValidationStage::Plan,
            outcome: ValidationOutcome::Approved,
            unverified_phases: vec![],
            neutralised_phases: vec![],
            note: None,
            reference: None,
        })
    };
    w.on("2022-02-01");
    w.run(RF_A, plan_stage(), &validator()).unwrap();
    let again = w.run(RF_A, plan_stage(), &validator());
    assert!(
        matches!(again, Err(AppError::Domain(ref e)) if e.kind() == RefusalKind::Rule && e.to_string().contains("già stato validato")),
        "{again:?}"
    );
    w.on("2022-07-29");
    w.revise(
        2022,
        revision(
            Some("2022-07-28"),
            vec![deadline(RF_A, Some(3), "2022-09-30")],
        ),
    )
    .unwrap();
    w.run(RF_A, plan_stage(), &validator()).unwrap();
    let third = w.run(RF_A, plan_stage(), &validator());
    assert!(
        matches!(third, Err(AppError::Domain(ref e)) if e.kind() == RefusalKind::Rule),
        "{third:?}"
    );
}

#[test]
fn a_withdrawn_objective_takes_nothing_more() {
    let w = World::with_seed();
    w.on("2022-07-29");
    w.revise(
        2022,
        revision(
            None,
            vec![RevisionChange::WithdrawObjective {
                objective: POLO.into(),
            }],
        ),
    )
    .unwrap();
    let refused = w.complete(POLO, 1, "2022-05-30");
    assert!(
        matches!(refused, Err(AppError::Domain(ref e)) if e.to_string() == "l'obiettivo 2022-2252-C è stato stralciato da una rimodulazione"),
        "{refused:?}"
    );
    assert!(view(&w, POLO, "2022-07-29").withdrawn);
    assert!(!view(&w, POLO, "2022-07-28").withdrawn);
}

#[test]
fn a_revision_with_violations_reports_every_one_and_applies_nothing() {
    let w = World::with_seed();
    w.on("2022-07-29");
    let before = head(&w);
    let state = w.app.read(|r| {
        (
            r.objective(RF_A).unwrap().clone(),
            r.objective(PEDIBUS).unwrap().clone(),
        )
    });
    let result = w.revise(
        2022,
        revision(
            Some("2022-07-28"),
            vec![
                // Valid on its own.
                deadline(RF_B, Some(3), "2022-12-15"),
                // 30 + 20 + 20 + 40 = 110.
                weights(RF_A, &[(1, 3000)]),
                // After the Pedibus' final deadline of 30/06.
                deadline(PEDIBUS, Some(5), "2022-07-15"),
            ],
        ),
    );
    let Err(AppError::Invalid(errors)) = result else {
        panic!("expected invalid input, got {result:?}");
    };
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert_eq!(errors[0].field, RF_A);
    assert!(errors[0]
        .message
        .contains("sommano a 110%, non esattamente a 100"));
    assert_eq!(errors[1].field, PEDIBUS);
    assert!(errors[1]
        .message
        .contains("la fase 5 scade il 15/07/2022, dopo la scadenza finale del 30/06/2022"));
    assert_eq!(head(&w), before, "nothing appended");
    assert_eq!(
        w.app.read(|r| (
            r.objective(RF_A).unwrap().clone(),
            r.objective(PEDIBUS).unwrap().clone()
        )),
        state
    );
    assert_eq!(
        w.app.read(|r| r.objective(RF_B).unwrap().phases()[2]
            .deadline
            .latest()
            .to_owned()),
        d("2022-12-31"),
        "not even the valid change"
    );
}

#[test]
fn a_revision_touching_several_objectives_is_one_atomic_append_that_survives_a_restart() {
    let w = World::with_seed();
    w.on("2022-07-29");
    let written = w
        .revise(
            2022,
            revision(
                Some("2022-07-28"),
                vec![
                    weights(RF_A, &[(1, 1000), (4, 5000)]),
                    RevisionChange::AddPhase {
                        objective: RF_B.into(),
                        phase: PhaseSpec {
                            number: 4,
                            description: "Relazione finale".into(),
                            weight_hundredths: Hundredths(1000),
                            involved: vec!["2577".into()],
                            deadline: d("2022-12-31"),
                        },
                    },
                    weights(RF_B, &[(3, 3000)]),
                    deadline(PEDIBUS, None, "2022-07-31"),
                ],
            ),
        )
        .unwrap();
    let types: Vec<(&str, &str)> = written
        .events
        .iter()
        .map(|e| (e.stream.as_str(), e.event_type.as_str()))
        .collect();
    assert_eq!(
        types,
        [
            ("plan/2022", "revision_recorded"),
            ("objective/2022-2250-A", "weights_revised"),
            ("objective/2022-2250-B", "phase_added"),
            ("objective/2022-2250-B", "weights_revised"),
            ("objective/2022-2252-D", "deadline_revised"),
        ]
    );
    let correlation = &written.events[0].correlation;
    assert!(written.events.iter().all(|e| &e.correlation == correlation));
    let live = w.app.read(|r| {
        let mut all: Vec<(String, Objective)> = r
            .objectives()
            .map(|o| (o.key().to_string(), o.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    });
    assert_eq!(
        live.iter().find(|(k, _)| k == RF_A).unwrap().1.phases()[3]
            .weight
            .latest(),
        &Hundredths(5000)
    );
    // Every event of the revision folds again from the file.
    let reopened = traguardo::App::open(w.db(), w.clock.clone()).expect("the log folds again");
    let rebuilt = reopened.read(|r| {
        let mut all: Vec<(String, Objective)> = r
            .objectives()
            .map(|o| (o.key().to_string(), o.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    });
    assert_eq!(rebuilt, live);
    assert_eq!(
        reopened.read(|r| r.plan(2022).unwrap().revisions.len()),
        1,
        "the revision record folds too"
    );
}

#[test]
fn an_added_objective_joins_the_plan_from_its_act_date() {
    let w = World::with_seed();
    w.on("2022-07-29");
    let mut spec = w.app.read(|r| r.objective(PEDIBUS).unwrap().definition());
    spec.letter = "E".into();
    spec.final_deadline = d("2022-12-31");
    w.revise(
        2022,
        revision(
            Some("2022-07-28"),
            vec![RevisionChange::AddObjective {
                objective: Box::new(spec),
            }],
        ),
    )
    .unwrap();
    let scores = w.app.read(|r| r.scores(2022, d("2022-07-28"))).unwrap();
    assert_eq!(scores.objectives.len(), 8);
    assert_eq!(scores.objectives[7].key, "2022-2252-E");
    let earlier = w.app.read(|r| r.scores(2022, d("2022-07-27"))).unwrap();
    assert_eq!(earlier.objectives.len(), 7);
    let defined = w
        .app
        .store()
        .read_stream("objective/2022-2252-E", Until::End)
        .unwrap();
    let ObjectiveEvent::ObjectiveDefined { revision, .. } = defined[0].decode().unwrap() else {
        panic!("not a definition");
    };
    assert_eq!(revision.unwrap().in_force_from, d("2022-07-28"));
}
