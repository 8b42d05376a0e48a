//! What the Nucleo di Valutazione decides on, through the application over a real
//! database: qualitative and exact indicators, notes and evidence in the state,
//! validated scores and stale validations, flags that close, declared back-fill,
//! the richer revisions, and the limits on what a write may carry.

use serde_json::json;
use traguardo::commands::{
    Entry, Measurement, ObjectiveCommand, RevisionRequest, ValidationRequest,
};
use traguardo::AppError;
use traguardo_events::domain::RevisionChange;
use traguardo_events::model::{
    Backfill, Hundredths, IndicatorKind, IndicatorSpec, ValidationOutcome, ValidationStage,
};
use traguardo_events::store::Until;
use traguardo_projections::flags::{red_flags, Flag, FlagKind, FlagSettings, FlagStatus};
use traguardo_projections::objective::NoteKind;

use crate::support::{admin, block_on, d, manager, manager_of, validator, World};

const RF_A: &str = "2022-2250-A";
const RF_B: &str = "2022-2250-B";
const PEDIBUS: &str = "2022-2252-D";

fn measure(world: &World, key: &str, m: Measurement) -> Result<traguardo::app::Written, AppError> {
    world.run(
        key,
        ObjectiveCommand::RecordMeasurement(m),
        &manager_of(key),
    )
}

fn measurement(indicator: &str, on: &str) -> Measurement {
    Measurement {
        indicator: indicator.into(),
        on: d(on),
        value: None,
        numerator: None,
        denominator: None,
        text: None,
        entry: Entry::default(),
    }
}

fn final_validation(
    world: &World,
    key: &str,
    neutralised: &[u32],
) -> Result<traguardo::app::Written, AppError> {
    world.run(
        key,
        ObjectiveCommand::RecordValidation(ValidationRequest {
            stage: ValidationStage::Final,
            outcome: ValidationOutcome::Approved,
            unverified_phases: vec![],
            neutralised_phases: neutralised.to_vec(),
            note: (!neutralised.is_empty()).then(|| "ritardo non imputabile".to_string()),
            reference: Some("Verbale n. 3 del 15/03/2023".into()),
        }),
        &validator(),
    )
}

fn flags(world: &World) -> Vec<Flag> {
    let events = world.app.year_events(2022, Until::End).unwrap();
    red_flags(&events, &FlagSettings::default()).unwrap()
}

fn invalid_fields(result: Result<traguardo::app::Written, AppError>) -> Vec<String> {
    match result {
        Err(AppError::Invalid(errors)) => errors.into_iter().map(|e| e.field).collect(),
        other => panic!("expected invalid input, got {other:?}"),
    }
}

#[test]
fn every_indicator_of_the_seed_can_be_measured_and_says_whether_it_is_met() {
    let w = World::with_seed();
    w.on("2022-12-31");
    // Qualitative: a finding in words.
    let mut text = measurement("completezza-fasi-tempistica", "2022-12-31");
    text.text = Some("tutte le fasi concluse nei tempi previsti".into());
    measure(&w, RF_A, text).expect("a qualitative indicator takes a text");
    // Ratio: exact, 187 of 200 is 93.5%, below its target of 100.
    let mut ratio = measurement("rimborsi-90gg", "2022-12-31");
    ratio.numerator = Some(187);
    ratio.denominator = Some(200);
    measure(&w, RF_B, ratio).unwrap();
    // Threshold: 60% against ≥ 50%.
    let mut threshold = measurement("adesione-50", "2022-06-30");
    threshold.value = Some(Hundredths(6000));
    measure(&w, PEDIBUS, threshold).unwrap();

    let at = d("2022-12-31");
    let view = |key: &str| w.app.read(|r| r.objective(key).unwrap().evaluate(at));
    let a = view(RF_A);
    assert_eq!(a.indicators[0].met, None, "qualitative: no number to meet");
    assert_eq!(
        a.indicators[0].latest.as_ref().unwrap().text.as_deref(),
        Some("tutte le fasi concluse nei tempi previsti")
    );
    let b = view(RF_B);
    let rimborsi = b
        .indicators
        .iter()
        .find(|i| i.id == "rimborsi-90gg")
        .unwrap();
    assert_eq!(
        serde_json::to_value(rimborsi.latest.as_ref().unwrap().value).unwrap(),
        json!(93.5)
    );
    assert_eq!(rimborsi.met, Some(false));
    assert_eq!(rimborsi.history.len(), 1);
    let unmeasured = b
        .indicators
        .iter()
        .find(|i| i.id == "note-rimborsi-180gg")
        .unwrap();
    assert_eq!(unmeasured.met, Some(false), "no measurement yet: not met");
    let pedibus = view(PEDIBUS);
    let adesione = pedibus
        .indicators
        .iter()
        .find(|i| i.id == "adesione-50")
        .unwrap();
    assert_eq!(adesione.met, Some(true));
    // Before its date the measurement is not yet true.
    let early = w
        .app
        .read(|r| r.objective(PEDIBUS).unwrap().evaluate(d("2022-06-01")));
    assert_eq!(early.indicators[0].latest, None);
}

#[test]
fn measurements_out_of_range_or_of_the_wrong_kind_are_refused_naming_the_field() {
    let w = World::with_seed();
    w.on("2022-12-31");
    let before = w.app.store().head().unwrap();
    let mut huge = measurement("rimborsi-90gg", "2022-12-31");
    huge.numerator = Some(u64::MAX);
    huge.denominator = Some(1);
    assert_eq!(invalid_fields(measure(&w, RF_B, huge)), ["numerator"]);
    let mut contradicting = measurement("rimborsi-90gg", "2022-12-31");
    contradicting.numerator = Some(187);
    contradicting.denominator = Some(200);
    contradicting.value = Some(Hundredths(9000));
    assert_eq!(invalid_fields(measure(&w, RF_B, contradicting)), ["value"]);
    let mut number_for_words = measurement("completezza-fasi-tempistica", "2022-12-31");
    number_for_words.value = Some(Hundredths(5000));
    assert_eq!(
        invalid_fields(measure(&w, RF_A, number_for_words)),
        ["text", "value"]
    );
    let mut ancient = measurement("rimborsi-90gg", "0001-01-01");
    ancient.value = Some(Hundredths(10_000));
    assert_eq!(invalid_fields(measure(&w, RF_B, ancient)), ["on"]);
    assert_eq!(w.app.store().head().unwrap(), before, "nothing appended");
}

#[test]
fn notes_evidence_and_reasons_are_part_of_the_objective_state_with_who_and_when() {
    let w = World::with_seed();
    w.on("2022-06-10");
    w.run(
        RF_A,
        ObjectiveCommand::CompletePhase {
            phase: 1,
            on: d("2022-05-28"),
            note: Some("atti trasmessi alla Giunta".into()),
            evidence: vec!["Prot. n. 12345 del 01/03/2022".into()],
            backfill: None,
        },
        &manager("2250"),
    )
    .unwrap();
    w.run(
        RF_A,
        ObjectiveCommand::RetractCompletion {
            phase: 1,
            reason: "data errata".into(),
            backfill: None,
        },
        &manager("2250"),
    )
    .unwrap();
    let view = w
        .app
        .read(|r| r.objective(RF_A).unwrap().evaluate(d("2022-06-10")));
    let notes = &view.phases[0].notes;
    assert_eq!(notes.len(), 2);
    assert_eq!(notes[0].kind, NoteKind::Completion);
    assert_eq!(notes[0].text.as_deref(), Some("atti trasmessi alla Giunta"));
    assert_eq!(notes[0].evidence, ["Prot. n. 12345 del 01/03/2022"]);
    assert_eq!(notes[0].actor, "Dirigente 2250");
    assert_eq!(notes[1].kind, NoteKind::Retraction);
    assert_eq!(notes[1].text.as_deref(), Some("data errata"));
    let trail = traguardo_projections::audit::trail(
        &w.app.objective_events(RF_A).unwrap(),
        &Default::default(),
    )
    .unwrap();
    let completion = trail
        .iter()
        .find(|e| e.event_type == "phase_completed")
        .unwrap();
    assert_eq!(
        completion.reason.as_deref(),
        Some("atti trasmessi alla Giunta")
    );
    assert!(completion.summary.contains("Prot. n. 12345 del 01/03/2022"));
}

#[test]
fn a_validation_goes_stale_when_anything_is_recorded_after_it_until_it_is_repeated() {
    let w = World::with_seed();
    w.on("2022-12-30");
    for phase in 1..=4 {
        w.complete(PEDIBUS, phase, "2022-05-20").unwrap();
    }
    w.on("2023-01-20");
    final_validation(&w, PEDIBUS, &[]).unwrap();
    let at = d("2023-01-31");
    let state = |w: &World| w.app.read(|r| r.objective(PEDIBUS).unwrap().evaluate(at));
    assert!(!state(&w).validation_stale);
    assert_eq!(
        serde_json::to_value(state(&w).score.validated_outcome).unwrap(),
        json!("not_achieved"),
        "phase 5 is overdue: 80%"
    );
    assert_eq!(
        state(&w).validations[0].reference.as_deref(),
        Some("Verbale n. 3 del 15/03/2023")
    );
    // A completion after the validation makes it stale, and raises a flag.
    w.on("2023-01-25");
    w.complete(PEDIBUS, 5, "2022-06-30").unwrap();
    assert!(state(&w).validation_stale);
    let scores = w.app.read(|r| r.scores(2022, at).unwrap());
    let unit = scores.units.iter().find(|u| u.unit == "2252").unwrap();
    assert_eq!(
        unit.validated_score, None,
        "a stale validation does not count"
    );
    assert_eq!(unit.validated, 0);
    let changed = flags(&w)
        .into_iter()
        .find(|f| f.kind == FlagKind::ChangedAfterValidation)
        .expect("the change after validation is flagged");
    assert_eq!(changed.status, FlagStatus::Open);
    // Validated again: current, and the flag is resolved by it.
    w.on("2023-01-30");
    final_validation(&w, PEDIBUS, &[]).unwrap();
    assert!(!state(&w).validation_stale);
    assert_eq!(
        serde_json::to_value(state(&w).score.validated_outcome).unwrap(),
        json!("achieved")
    );
    let resolved = flags(&w).into_iter().find(|f| f.id == changed.id).unwrap();
    assert_eq!(resolved.status, FlagStatus::Resolved);
    assert_eq!(resolved.history.len(), 2);
    assert_eq!(resolved.history[1].actor, "Nucleo di Valutazione");
}

#[test]
fn unit_and_plan_carry_the_validated_score_only_when_every_objective_is_validated() {
    let w = World::with_seed();
    w.on("2022-12-30");
    for phase in 1..=5 {
        w.complete(PEDIBUS, phase, "2022-05-20").unwrap();
    }
    w.on("2023-01-20");
    final_validation(&w, PEDIBUS, &[]).unwrap();
    let at = d("2023-01-31");
    let scores = w.app.read(|r| r.scores(2022, at).unwrap());
    let unit = scores.units.iter().find(|u| u.unit == "2252").unwrap();
    assert_eq!((unit.validated, unit.objectives), (1, 2));
    assert_eq!(unit.validated_score, None, "2252-C is not validated");
    final_validation(&w, "2022-2252-C", &[1, 2, 3]).unwrap();
    let scores = w.app.read(|r| r.scores(2022, at).unwrap());
    let unit = scores.units.iter().find(|u| u.unit == "2252").unwrap();
    assert_eq!((unit.validated, unit.objectives), (2, 2));
    // 2252-D 100%; 2252-C, only phase 4 left and overdue, 0%: the mean is 50%.
    assert_eq!(
        serde_json::to_value(unit.validated_score).unwrap(),
        json!(50)
    );
    assert_eq!(scores.plan.validated_score, None);
    assert_eq!(scores.plan.validated, 2);
}

#[test]
fn the_nucleo_acknowledges_a_flag_which_keeps_its_note_and_history() {
    let w = World::with_seed();
    w.on("2022-08-10");
    w.complete(RF_A, 1, "2022-05-28").unwrap();
    let late = flags(&w)
        .into_iter()
        .find(|f| f.kind == FlagKind::LateRegistration)
        .expect("74 days late is flagged");
    assert!(late.id.starts_with("late_registration-"));
    let refused = block_on(
        w.app
            .acknowledge_flag(2022, &late.id, "visto", &manager("2250"), None),
    );
    assert!(matches!(refused, Err(AppError::Domain(_))), "{refused:?}");
    let unknown = block_on(
        w.app
            .acknowledge_flag(2022, "nope-1", "visto", &validator(), None),
    );
    assert!(
        unknown.as_ref().is_err_and(AppError::is_not_found),
        "{unknown:?}"
    );
    let empty = block_on(
        w.app
            .acknowledge_flag(2022, &late.id, " ", &validator(), None),
    );
    assert!(matches!(empty, Err(AppError::Invalid(_))), "{empty:?}");
    block_on(w.app.acknowledge_flag(
        2022,
        &late.id,
        "verificata la data sul protocollo",
        &validator(),
        None,
    ))
    .unwrap();
    let acknowledged = flags(&w).into_iter().find(|f| f.id == late.id).unwrap();
    assert_eq!(acknowledged.status, FlagStatus::Acknowledged);
    assert_eq!(
        acknowledged.acknowledgement().unwrap().note.as_deref(),
        Some("verificata la data sul protocollo")
    );
    let trail = traguardo_projections::audit::plan_trail(
        &w.app.year_events(2022, Until::End).unwrap(),
        &Default::default(),
    )
    .unwrap();
    assert!(trail
        .iter()
        .any(|e| e.event_type == "flag_acknowledged" && e.summary.contains(&late.id)));
    assert!(
        trail.iter().any(|e| e
            .summary
            .starts_with("2022-2250-A · Fase 1 completata il 28/05/2022")),
        "the plan trail names each objective"
    );
}

#[test]
fn a_declared_back_fill_raises_no_late_registration_flag_while_an_undeclared_one_does() {
    let w = World::with_seed();
    w.on("2022-09-15");
    let backfill = Backfill {
        act: "Determinazione n. 12 del 01/09/2022".into(),
        reason: "adozione di Traguardo a metà esercizio".into(),
        on_behalf_of: Some("Dott. Stefano Specchia".into()),
    };
    w.run(
        RF_A,
        ObjectiveCommand::CompletePhase {
            phase: 1,
            on: d("2022-05-28"),
            note: None,
            evidence: vec![],
            backfill: Some(backfill.clone()),
        },
        &admin(),
    )
    .expect("the control office loads a past completion");
    w.complete(RF_B, 1, "2022-03-30").unwrap();
    let late: Vec<Flag> = flags(&w)
        .into_iter()
        .filter(|f| f.kind == FlagKind::LateRegistration)
        .collect();
    assert_eq!(late.len(), 1);
    assert_eq!(late[0].objective, RF_B);
    let view = w
        .app
        .read(|r| r.objective(RF_A).unwrap().evaluate(d("2022-09-15")));
    assert_eq!(view.phases[0].notes[0].backfill.as_ref(), Some(&backfill));
    // Only the control office declares a back-fill, and it needs its act.
    let by_manager = w.run(
        RF_A,
        ObjectiveCommand::StartPhase {
            phase: 2,
            on: d("2022-06-01"),
            note: None,
            backfill: Some(backfill.clone()),
        },
        &manager("2250"),
    );
    assert_eq!(invalid_fields(by_manager), ["backfill"]);
    let without_act = w.run(
        RF_A,
        ObjectiveCommand::StartPhase {
            phase: 2,
            on: d("2022-06-01"),
            note: None,
            backfill: Some(Backfill {
                act: " ".into(),
                ..backfill
            }),
        },
        &admin(),
    );
    assert_eq!(invalid_fields(without_act), ["backfill.act"]);
    let undeclared = w.run(
        RF_A,
        ObjectiveCommand::StartPhase {
            phase: 2,
            on: d("2022-06-01"),
            note: None,
            backfill: None,
        },
        &admin(),
    );
    assert!(
        matches!(undeclared, Err(AppError::Domain(_))),
        "{undeclared:?}"
    );
}

#[test]
fn texts_with_control_or_bidi_characters_or_too_long_are_refused() {
    let w = World::with_seed();
    w.on("2022-06-10");
    for (note, what) in [
        ("x".repeat(4_001), "too long"),
        ("ok\u{0}".to_string(), "NUL"),
        ("fattura\u{202E}fdp.exe".to_string(), "bidi override"),
    ] {
        let result = w.run(
            RF_A,
            ObjectiveCommand::StartPhase {
                phase: 1,
                on: d("2022-05-01"),
                note: Some(note),
                backfill: None,
            },
            &manager("2250"),
        );
        assert_eq!(invalid_fields(result), ["note"], "{what}");
    }
}

fn revision(changes: Vec<RevisionChange>) -> RevisionRequest {
    RevisionRequest {
        act: "D.G.C. n. 182 del 28/07/2022".into(),
        act_date: Some(d("2022-07-28")),
        reason: "rimodulazione".into(),
        changes,
    }
}

#[test]
fn each_new_kind_of_revision_is_replayed_before_and_after() {
    let w = World::with_seed();
    w.on("2022-07-29");
    let written = w
        .revise(
            2022,
            revision(vec![
                RevisionChange::Manager {
                    objective: RF_A.into(),
                    manager: "Dott.ssa Maria Rossi".into(),
                },
                RevisionChange::Title {
                    objective: RF_A.into(),
                    title: "Riordino del Settore".into(),
                },
                RevisionChange::PhaseDescription {
                    objective: RF_A.into(),
                    phase: 2,
                    description: "Ricognizione delle risorse".into(),
                },
                RevisionChange::IndicatorTarget {
                    objective: RF_B.into(),
                    indicator: "rimborsi-90gg".into(),
                    target_hundredths: Some(Hundredths(9000)),
                },
                RevisionChange::AddIndicator {
                    objective: RF_B.into(),
                    indicator: IndicatorSpec {
                        id: "istanze-evase".into(),
                        description: "Istanze evase".into(),
                        kind: IndicatorKind::Threshold,
                        target_hundredths: Some(Hundredths(8000)),
                    },
                },
                RevisionChange::WithdrawIndicator {
                    objective: RF_B.into(),
                    indicator: "note-rimborsi-180gg".into(),
                },
            ]),
        )
        .expect("the revision is recorded");
    let id: uuid::Uuid = written.events[0]
        .correlation
        .clone()
        .unwrap()
        .parse()
        .unwrap();
    let replay = traguardo_projections::revision::replay(
        &w.app.year_events(2022, Until::End).unwrap(),
        id,
        d("2022-07-29"),
    )
    .unwrap()
    .expect("the revision replays");
    let a = replay.touched.iter().find(|o| o.key == RF_A).unwrap();
    let fields: Vec<&str> = a.diff.iter().map(|c| c.field.as_str()).collect();
    for field in ["manager", "title", "phases[2].description"] {
        assert!(fields.contains(&field), "{field} in {fields:?}");
    }
    assert_eq!(a.before.as_ref().unwrap().manager, "Dott. Stefano Specchia");
    assert_eq!(a.after.manager, "Dott.ssa Maria Rossi");
    let b = replay.touched.iter().find(|o| o.key == RF_B).unwrap();
    let target = b
        .after
        .indicators
        .iter()
        .find(|i| i.id == "rimborsi-90gg")
        .unwrap();
    assert_eq!(serde_json::to_value(target.target).unwrap(), json!(90));
    assert!(b.after.indicators.iter().any(|i| i.id == "istanze-evase"));
    assert!(b
        .after
        .indicators
        .iter()
        .any(|i| i.id == "note-rimborsi-180gg" && i.withdrawn));
    // Before the act date, the old values are in force.
    let earlier = w
        .app
        .read(|r| r.objective(RF_A).unwrap().evaluate(d("2022-07-01")));
    assert_eq!(earlier.manager, "Dott. Stefano Specchia");
    // A withdrawn indicator is no longer measured.
    let mut m = measurement("note-rimborsi-180gg", "2022-07-29");
    m.value = Some(Hundredths(5000));
    assert!(measure(&w, RF_B, m)
        .as_ref()
        .is_err_and(AppError::is_not_found));
}

#[test]
fn a_revision_reports_every_problem_even_with_a_bad_change_among_them() {
    let w = World::with_seed();
    w.on("2022-07-29");
    let result = w.revise(
        2022,
        revision(vec![
            RevisionChange::Manager {
                objective: RF_A.into(),
                manager: " ".into(),
            },
            RevisionChange::WithdrawIndicator {
                objective: RF_B.into(),
                indicator: "nope".into(),
            },
            RevisionChange::PhaseDescription {
                objective: RF_A.into(),
                phase: 9,
                description: "x".into(),
            },
        ]),
    );
    let fields = match result {
        Err(AppError::Invalid(errors)) => errors.into_iter().map(|e| e.field).collect::<Vec<_>>(),
        other => panic!("expected invalid input, got {other:?}"),
    };
    assert_eq!(
        fields,
        [
            "changes[0].manager",
            "changes[1].indicator",
            "changes[2].phase"
        ]
    );
}
