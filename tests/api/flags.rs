//! The auditor's view, part two: red flags. For every kind, a scenario that raises
//! it and a near-identical one that does not.

use std::collections::BTreeMap;

use serde_json::json;
use traguardo::commands::{ObjectiveCommand, RevisionRequest};
use traguardo_events::domain::RevisionChange;
use traguardo_events::model::{Hundredths, ValidationOutcome, ValidationStage};
use traguardo_events::store::Until;
use traguardo_projections::flags::{red_flags, Flag, FlagKind, FlagSettings};

use crate::support::{d, manager_of, validator, World};

const A: &str = "2022-2250-A";
const B: &str = "2022-2250-B";

fn flags_with(world: &World, settings: &FlagSettings) -> Vec<Flag> {
    let events = world.app.year_events(2022, Until::End).unwrap();
    red_flags(&events, settings).expect("the flags fold")
}

fn flags(world: &World) -> Vec<Flag> {
    flags_with(world, &FlagSettings::default())
}

fn of_kind(flags: &[Flag], kind: FlagKind) -> Vec<Flag> {
    flags.iter().filter(|f| f.kind == kind).cloned().collect()
}

/// The seq of the last event appended so far.
fn head(world: &World) -> u64 {
    world.app.store().head().unwrap().seq
}

fn revise(world: &World, act: &str, act_date: &str, changes: Vec<RevisionChange>) -> u64 {
    let written = world
        .revise(
            2022,
            RevisionRequest {
                act: act.into(),
                act_date: Some(d(act_date)),
                reason: "Rimodulazione".into(),
                changes,
            },
        )
        .expect("the revision is recorded");
    written.events[0].seq
}

fn move_deadline(objective: &str, phase: u32, to: &str) -> RevisionChange {
    RevisionChange::Deadline {
        objective: objective.into(),
        phase: Some(phase),
        new_deadline: d(to),
    }
}

fn reweigh(objective: &str, weights: &[(u32, i64)]) -> RevisionChange {
    RevisionChange::Weights {
        objective: objective.into(),
        weights_hundredths: weights
            .iter()
            .map(|(n, w)| (*n, Hundredths(w * 100)))
            .collect::<BTreeMap<_, _>>(),
    }
}

fn validate_final(world: &World, key: &str) -> u64 {
    world
        .run(
            key,
            ObjectiveCommand::RecordValidation(traguardo::commands::ValidationRequest {
                stage: ValidationStage::Final,
                outcome: ValidationOutcome::Approved,
                unverified_phases: vec![],
                neutralised_phases: vec![],
                note: None,
                reference: None,
            }),
            &validator(),
        )
        .expect("the validation is recorded")
        .events[0]
        .seq
}

fn retract(world: &World, key: &str, phase: u32) -> u64 {
    world
        .run(
            key,
            ObjectiveCommand::RetractCompletion {
                phase,
                reason: "Completamento dichiarato per errore".into(),
                backfill: None,
            },
            &manager_of(key),
        )
        .expect("the retraction is recorded")
        .events[0]
        .seq
}

/// A: phase 1 done on time, phase 2 done on 05/07 against a deadline of 30/06.
fn a_late_phase() -> World {
    let world = World::with_seed();
    world.on("2022-05-20");
    world.complete(A, 1, "2022-05-15").unwrap();
    world.on("2022-07-10");
    world.complete(A, 2, "2022-07-05").unwrap();
    world.on("2022-07-29");
    world
}

// --- retroactive revision -------------------------------------------------------

#[test]
fn a_deadline_moved_by_an_act_after_it_had_passed_is_a_retroactive_revision() {
    let world = a_late_phase();
    let revision = revise(
        &world,
        "D.G.C. n. 182 del 28/07/2022",
        "2022-07-28",
        vec![move_deadline(A, 2, "2022-07-31")],
    );
    let found = of_kind(&flags(&world), FlagKind::RetroactiveRevision);
    assert_eq!(found.len(), 1);
    let flag = &found[0];
    assert_eq!(flag.objective, A);
    assert_eq!(flag.phase, Some(2));
    assert_eq!(flag.seqs, [revision, revision + 1]);
    assert_eq!(
        flag.message,
        "L'atto «D.G.C. n. 182 del 28/07/2022», in vigore dal 28/07/2022, ha spostato la \
         scadenza della fase 2 dal 30/06/2022 al 31/07/2022 quando quel termine era già scaduto: \
         una modifica retroattiva può sanare a posteriori un ritardo e va motivata; il grado di \
         raggiungimento al 28/07/2022 passa dal 20% al 40%."
    );
}

#[test]
fn a_deadline_moved_by_an_act_of_its_last_day_is_not_retroactive() {
    let world = a_late_phase();
    revise(
        &world,
        "D.G.C. n. 150 del 30/06/2022",
        "2022-06-30",
        vec![move_deadline(A, 2, "2022-07-31")],
    );
    assert!(of_kind(&flags(&world), FlagKind::RetroactiveRevision).is_empty());
}

#[test]
fn a_retroactive_move_of_a_phase_not_yet_done_says_the_score_did_not_change() {
    let world = World::with_seed();
    world.on("2022-07-29");
    revise(
        &world,
        "D.G.C. n. 182 del 28/07/2022",
        "2022-07-28",
        vec![move_deadline(A, 1, "2022-07-31")],
    );
    let found = of_kind(&flags(&world), FlagKind::RetroactiveRevision);
    assert_eq!(found.len(), 1);
    assert!(
        found[0]
            .message
            .ends_with("il grado di raggiungimento al 28/07/2022 resta allo 0%."),
        "{}",
        found[0].message
    );
}

// --- late registration ----------------------------------------------------------

fn completed_and_recorded(recorded: &str) -> World {
    let world = World::with_seed();
    world.on(recorded);
    world.complete(B, 1, "2022-03-28").unwrap();
    world
}

#[test]
fn a_completion_recorded_31_days_after_its_date_is_a_late_registration() {
    let world = completed_and_recorded("2022-04-28");
    let found = of_kind(&flags(&world), FlagKind::LateRegistration);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].objective, B);
    assert_eq!(found[0].phase, Some(1));
    assert_eq!(found[0].seqs, [head(&world)]);
    assert_eq!(
        found[0].message,
        "Il completamento della fase 1 del 28/03/2022 è stato registrato il 28/04/2022 da \
         Dirigente 2250, 31 giorni dopo (limite 30): una registrazione così tardiva sottrae il \
         dato al controllo tempestivo e la data dichiarata va verificata sui documenti."
    );
}

#[test]
fn a_completion_recorded_30_days_after_its_date_is_not_late() {
    let world = completed_and_recorded("2022-04-27");
    assert!(of_kind(&flags(&world), FlagKind::LateRegistration).is_empty());
}

#[test]
fn the_days_allowed_for_registration_are_configurable() {
    let world = completed_and_recorded("2022-04-28");
    let lenient = FlagSettings {
        late_registration_days: 31,
    };
    assert!(of_kind(&flags_with(&world, &lenient), FlagKind::LateRegistration).is_empty());
    let strict = FlagSettings {
        late_registration_days: 7,
    };
    let found = of_kind(&flags_with(&world, &strict), FlagKind::LateRegistration);
    assert_eq!(found.len(), 1);
    assert!(found[0].message.contains("31 giorni dopo (limite 7)"));
}

// --- rescued by revision --------------------------------------------------------

#[test]
fn a_late_completion_made_on_time_by_a_later_revision_was_rescued() {
    let world = a_late_phase();
    let completion = head(&world);
    let revision = revise(
        &world,
        "D.G.C. n. 182 del 28/07/2022",
        "2022-07-28",
        vec![move_deadline(A, 2, "2022-07-31")],
    );
    let found = of_kind(&flags(&world), FlagKind::RescuedByRevision);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].objective, A);
    assert_eq!(found[0].phase, Some(2));
    assert_eq!(found[0].seqs, [completion, revision, revision + 1]);
    assert_eq!(
        found[0].message,
        "La fase 2, completata il 05/07/2022 oltre la scadenza allora in vigore del 30/06/2022, \
         risulta nei termini solo perché l'atto «D.G.C. n. 182 del 28/07/2022» ha poi spostato \
         la scadenza al 31/07/2022: il ritardo è stato sanato da una revisione successiva e non \
         dal rispetto dei tempi."
    );
}

#[test]
fn a_late_completion_still_late_after_the_revision_was_not_rescued() {
    let world = a_late_phase();
    revise(
        &world,
        "D.G.C. n. 182 del 28/07/2022",
        "2022-07-28",
        vec![move_deadline(A, 2, "2022-07-04")],
    );
    let all = flags(&world);
    assert!(of_kind(&all, FlagKind::RescuedByRevision).is_empty());
    // The move itself is still retroactive.
    assert_eq!(of_kind(&all, FlagKind::RetroactiveRevision).len(), 1);
}

#[test]
fn a_completion_recorded_after_the_revision_that_moved_its_deadline_was_not_rescued() {
    let world = World::with_seed();
    world.on("2022-06-20");
    revise(
        &world,
        "D.G.C. n. 140 del 20/06/2022",
        "2022-06-20",
        vec![move_deadline(A, 2, "2022-07-31")],
    );
    world.on("2022-07-10");
    world.complete(A, 2, "2022-07-05").unwrap();
    assert!(flags(&world).is_empty(), "{:?}", flags(&world));
}

// --- changed after validation ---------------------------------------------------

fn b_done_and_validated_around(revised: &str, validated: &str) -> (World, u64, u64) {
    let world = World::with_seed();
    world.on("2022-03-31");
    world.complete(B, 1, "2022-03-28").unwrap();
    let mut seqs = (0, 0);
    let steps = if revised < validated {
        [("revise", revised), ("validate", validated)]
    } else {
        [("validate", validated), ("revise", revised)]
    };
    for (step, on) in steps {
        world.on(on);
        if step == "revise" {
            seqs.0 = revise(
                &world,
                "D.G.C. n. 12 del 25/01/2023",
                on,
                vec![move_deadline(B, 2, "2022-06-30")],
            );
        } else {
            seqs.1 = validate_final(&world, B);
        }
    }
    (world, seqs.0, seqs.1)
}

#[test]
fn a_revision_after_the_final_validation_is_a_change_after_validation() {
    let (world, revision, validation) = b_done_and_validated_around("2023-01-25", "2023-01-20");
    let found = of_kind(&flags(&world), FlagKind::ChangedAfterValidation);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].objective, B);
    assert_eq!(found[0].phase, Some(2));
    assert_eq!(found[0].seqs, [validation, revision, revision + 1]);
    assert_eq!(
        found[0].message,
        "Dopo la registrazione della validazione finale del Nucleo di Valutazione del 20/01/2023 \
         l'obiettivo è stato modificato (Fase 2: scadenza spostata dal 31/05/2022 al 30/06/2022 \
         — D.G.C. n. 12 del 25/01/2023): il risultato validato non corrisponde più a quanto \
         dichiarato e la validazione va ripetuta."
    );
}

#[test]
fn a_revision_before_the_final_validation_is_not_a_change_after_validation() {
    let (world, _, _) = b_done_and_validated_around("2023-01-15", "2023-01-20");
    assert!(of_kind(&flags(&world), FlagKind::ChangedAfterValidation).is_empty());
}

#[test]
fn a_completion_declared_after_the_final_validation_is_a_change_after_validation() {
    let world = World::with_seed();
    world.on("2022-12-20");
    world.complete(B, 3, "2022-12-15").unwrap();
    world.on("2023-01-20");
    validate_final(&world, B);
    world.on("2023-01-22");
    world.complete(B, 1, "2022-03-28").unwrap();
    let found = of_kind(&flags(&world), FlagKind::ChangedAfterValidation);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].phase, Some(1));
    assert!(found[0]
        .message
        .contains("(Fase 1 completata il 28/03/2022, registrata il 22/01/2023 da Dirigente 2250)"));
}

// --- retracted after validation -------------------------------------------------

fn b_validated_and_retracted(retracted: &str) -> (World, u64, u64, u64) {
    let world = World::with_seed();
    world.on("2022-03-31");
    let completion = world.complete(B, 1, "2022-03-28").unwrap().events[0].seq;
    let validated = "2023-01-20";
    let mut retraction = 0;
    if retracted < validated {
        world.on(retracted);
        retraction = retract(&world, B, 1);
    }
    world.on(validated);
    let validation = validate_final(&world, B);
    if retracted > validated {
        world.on(retracted);
        retraction = retract(&world, B, 1);
    }
    (world, completion, validation, retraction)
}

#[test]
fn a_completion_retracted_after_the_final_validation_is_flagged() {
    let (world, completion, validation, retraction) = b_validated_and_retracted("2023-01-25");
    let found = of_kind(&flags(&world), FlagKind::RetractedAfterValidation);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].objective, B);
    assert_eq!(found[0].phase, Some(1));
    assert_eq!(found[0].seqs, [completion, validation, retraction]);
    assert_eq!(
        found[0].message,
        "Il completamento della fase 1 del 28/03/2022 è stato annullato il 25/01/2023 da \
         Dirigente 2250 dopo la registrazione della validazione finale del Nucleo di Valutazione \
         del 20/01/2023: il risultato validato poggia su un completamento non più dichiarato e va \
         riesaminato."
    );
}

#[test]
fn a_completion_retracted_before_the_final_validation_is_not_flagged() {
    let (world, _, _, _) = b_validated_and_retracted("2023-01-15");
    assert!(of_kind(&flags(&world), FlagKind::RetractedAfterValidation).is_empty());
}

// --- weights revised after completion -------------------------------------------

#[test]
fn weights_revised_after_a_phase_was_completed_are_flagged_with_the_score_they_moved() {
    let world = World::with_seed();
    world.on("2022-03-31");
    let completion = world.complete(B, 1, "2022-03-28").unwrap().events[0].seq;
    world.on("2022-04-15");
    let revision = revise(
        &world,
        "D.G.C. n. 60 del 15/04/2022",
        "2022-04-15",
        vec![reweigh(B, &[(1, 40), (2, 20)])],
    );
    let found = of_kind(&flags(&world), FlagKind::WeightsRevisedAfterCompletion);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].objective, B);
    assert_eq!(found[0].phase, None);
    assert_eq!(found[0].seqs, [completion, revision, revision + 1]);
    assert_eq!(
        found[0].message,
        "L'atto «D.G.C. n. 60 del 15/04/2022» ha rimodulato le incidenze delle fasi quando la \
         fase 1 era già completata: cambiare i pesi a risultati noti può spostare il grado di \
         raggiungimento verso le fasi già concluse; il grado di raggiungimento al 15/04/2022 passa dal 30% al \
         40%."
    );
}

#[test]
fn weights_revised_before_any_phase_was_recorded_complete_are_not_flagged() {
    let world = World::with_seed();
    world.on("2022-04-15");
    revise(
        &world,
        "D.G.C. n. 60 del 15/04/2022",
        "2022-04-15",
        vec![reweigh(B, &[(1, 40), (2, 20)])],
    );
    world.on("2022-04-20");
    world.complete(B, 1, "2022-03-28").unwrap();
    assert!(of_kind(&flags(&world), FlagKind::WeightsRevisedAfterCompletion).is_empty());
}

#[test]
fn weights_revised_after_a_completion_was_retracted_are_not_flagged() {
    let world = World::with_seed();
    world.on("2022-03-31");
    world.complete(B, 1, "2022-03-28").unwrap();
    world.on("2022-04-05");
    retract(&world, B, 1);
    world.on("2022-04-15");
    revise(
        &world,
        "D.G.C. n. 60 del 15/04/2022",
        "2022-04-15",
        vec![reweigh(B, &[(1, 40), (2, 20)])],
    );
    assert!(of_kind(&flags(&world), FlagKind::WeightsRevisedAfterCompletion).is_empty());
}

// --- together -------------------------------------------------------------------

#[test]
fn flags_come_in_seq_order_and_serialize_as_the_api_names_them() {
    let world = a_late_phase();
    world.on("2022-08-30");
    world.complete(A, 3, "2022-07-25").unwrap(); // 36 days late in the log
    world.on("2022-08-31");
    revise(
        &world,
        "D.G.C. n. 182 del 28/07/2022",
        "2022-07-28",
        vec![
            move_deadline(A, 2, "2022-07-31"),
            reweigh(A, &[(1, 10), (4, 50)]),
        ],
    );
    let all = flags(&world);
    let kinds: Vec<FlagKind> = all.iter().map(|f| f.kind).collect();
    assert_eq!(
        kinds,
        [
            FlagKind::LateRegistration,
            FlagKind::RetroactiveRevision,
            FlagKind::RescuedByRevision,
            FlagKind::WeightsRevisedAfterCompletion,
        ]
    );
    let raised: Vec<u64> = all.iter().map(|f| *f.seqs.last().unwrap()).collect();
    assert!(raised.windows(2).all(|w| w[0] <= w[1]), "{raised:?}");
    // The score of a revision counts all its changes to the objective.
    assert!(
        all[3].message.ends_with("passa dal 40% al 50%."),
        "{}",
        all[3].message
    );
    let json = serde_json::to_value(&all).unwrap();
    assert_eq!(json[0]["kind"], "late_registration");
    assert_eq!(json[0]["objective"], A);
    assert_eq!(json[0]["phase"], 3);
    assert_eq!(json[3]["kind"], "weights_revised_after_completion");
    assert!(json[3].get("phase").is_none());
    assert_eq!(json[1]["seqs"], json!(all[1].seqs));
}

#[test]
fn the_command_line_prints_one_flag_per_line_and_the_head() {
    let world = completed_and_recorded("2022-04-28");
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_traguardo"))
            .arg("--db")
            .arg(world.db())
            .args(["flags", "--year", "2022"])
            .args(args)
            .output()
            .expect("the binary runs")
    };
    let text = run(&[]);
    assert!(text.status.success(), "{text:?}");
    let stdout = String::from_utf8(text.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    let seq = head(&world);
    assert!(
        lines[0].starts_with(&format!(
            "late_registration 2022-2250-B fase 1 (seq {seq}): Il completamento della fase 1"
        )),
        "{}",
        lines[0]
    );
    let stderr = String::from_utf8(text.stderr).unwrap();
    assert!(stderr.contains(&format!("head {seq}:")), "{stderr}");

    let lenient = run(&["--late-days", "31"]);
    assert!(lenient.status.success());
    assert!(lenient.stdout.is_empty());

    let before = run(&["--as-of", "2022-04-27", "--format", "json"]);
    assert!(before.status.success(), "{before:?}");
    let answer: serde_json::Value = serde_json::from_slice(&before.stdout).unwrap();
    assert_eq!(answer["year"], 2022);
    assert_eq!(answer["flags"], json!([]));
    assert_eq!(
        answer["head"]["seq"],
        seq - 1,
        "the head of 27/04: the seed"
    );

    let json = run(&["--format", "json"]);
    let answer: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(answer["head"]["seq"], seq);
    assert_eq!(answer["flags"][0]["kind"], "late_registration");

    let no_plan = std::process::Command::new(env!("CARGO_BIN_EXE_traguardo"))
        .arg("--db")
        .arg(world.db())
        .args(["flags", "--year", "2031"])
        .output()
        .unwrap();
    assert!(!no_plan.status.success());
}
