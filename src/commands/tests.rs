//! Given / when / then tests of the decide functions, with no database: the given
//! is a log of hand-made events on the Alessandria 2022 seed, folded by the real
//! projections; the when is a decide call; the then is its events or its error.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use serde::Serialize;
use traguardo_events::domain::{ObjectiveEvent, PlanEvent, RevisionChange, RevisionRef, Schema};
use traguardo_events::envelope::{NewEvent, RecordedEvent};
use traguardo_events::model::{
    objective_stream, plan_stream, Hundredths, ObjectiveSpec, PhaseSpec, Role, ValidationOutcome,
    ValidationStage,
};
use traguardo_projections::{Objective, PhaseStatus, Registry};
use uuid::Uuid;

use super::*;
use crate::error::AppError;

const SEED: &str = include_str!("../../seeds/alessandria-2022.json");

fn d(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").expect("a test date")
}

fn admin() -> Principal {
    Principal::new("Programmazione e Controllo", Role::Admin, vec![])
}

fn manager(unit: &str) -> Principal {
    Principal::new(
        format!("Dirigente {unit}"),
        Role::Manager,
        vec![unit.into()],
    )
}

fn validator() -> Principal {
    Principal::new("Nucleo di Valutazione", Role::Validator, vec![])
}

fn auditor() -> Principal {
    Principal::new("Revisore", Role::Auditor, vec![])
}

/// The given: a log of events, as the store would hold them.
struct Log {
    events: Vec<RecordedEvent>,
    now: DateTime<Utc>,
}

impl Log {
    /// The seed loaded on 2022-01-10.
    fn seed() -> Log {
        let plan = crate::plan_document::parse(SEED).expect("the seed is valid");
        let mut log = Log {
            events: Vec::new(),
            now: Utc.with_ymd_and_hms(2022, 1, 10, 9, 0, 0).unwrap(),
        };
        log.record(
            &plan_stream(2022),
            &PlanEvent::PlanDefined {
                year: 2022,
                organisation: plan.organisation.clone(),
                title: plan.title.clone(),
                units: plan.units.clone(),
                objectives: plan.objectives.iter().map(ObjectiveSpec::key).collect(),
            },
            &admin(),
        );
        for objective in plan.objectives {
            log.record(
                &objective_stream(&objective.key()),
                &ObjectiveEvent::ObjectiveDefined {
                    objective: Box::new(objective),
                    revision: None,
                },
                &admin(),
            );
        }
        log
    }

    /// Moves record time to 09:00 of `date`.
    fn on(mut self, date: &str) -> Log {
        self.now = Utc.from_utc_datetime(&d(date).and_hms_opt(9, 0, 0).unwrap());
        self
    }

    fn today(&self) -> NaiveDate {
        self.now.date_naive()
    }

    fn record<E: Serialize + Schema>(&mut self, stream: &str, event: &E, who: &Principal) {
        let new = NewEvent::from_domain(stream, event, &who.actor(), None).expect("encodes");
        let version = self.events.iter().filter(|e| e.stream == stream).count() as u64 + 1;
        self.events.push(RecordedEvent {
            seq: self.events.len() as u64 + 1,
            id: Uuid::now_v7(),
            stream: new.stream,
            version,
            event_type: new.event_type,
            schema: new.schema,
            data: new.data,
            actor: new.actor,
            role: new.role,
            recorded_at: self.now,
            correlation: None,
            prev_hash: String::new(),
            hash: String::new(),
        });
    }

    /// Appends an objective event as `who`, without asking decide.
    fn with(mut self, key: &str, who: &Principal, event: ObjectiveEvent) -> Log {
        self.record(&objective_stream(key), &event, who);
        self
    }

    /// Runs a command through decide and appends what it returns: a given built by
    /// the rules themselves.
    fn after(mut self, key: &str, command: ObjectiveCommand, who: &Principal) -> Log {
        let events = decide(&self.objective(key), &command, who, self.today())
            .unwrap_or_else(|e| panic!("the given command is refused: {e}"));
        for event in events {
            self.record(&objective_stream(key), &event, who);
        }
        self
    }

    /// Applies a revision through decide_revision and appends it.
    fn revised(mut self, request: RevisionRequest) -> Log {
        let decision = decide_revision(
            &self.registry(),
            2022,
            &request,
            &admin(),
            self.today(),
            Uuid::now_v7(),
        )
        .unwrap_or_else(|e| panic!("the given revision is refused: {e}"));
        self.record(&plan_stream(2022), &decision.plan_event, &admin());
        for (key, _, events) in decision.objectives {
            for event in events {
                self.record(&objective_stream(&key), &event, &admin());
            }
        }
        self
    }

    fn registry(&self) -> Registry {
        let mut registry = Registry::new();
        registry.apply_all(&self.events).expect("the log folds");
        registry
    }

    fn objective(&self, key: &str) -> Objective {
        let stream = objective_stream(key);
        Objective::from_events(self.events.iter().filter(|e| e.stream == stream))
            .expect("the stream folds")
            .expect("the objective exists")
    }

    /// When: `who` asks for `command` on `key`, today.
    fn when(
        &self,
        key: &str,
        command: ObjectiveCommand,
        who: &Principal,
    ) -> Result<Vec<ObjectiveEvent>, AppError> {
        Ok(decide(&self.objective(key), &command, who, self.today())?)
    }

    /// When: the admin asks for a revision of 2022, today.
    fn when_revised(&self, request: &RevisionRequest) -> Result<RevisionDecision, AppError> {
        decide_revision(
            &self.registry(),
            2022,
            request,
            &admin(),
            self.today(),
            Uuid::nil(),
        )
    }
}

fn start(phase: u32, on: &str) -> ObjectiveCommand {
    ObjectiveCommand::StartPhase {
        phase,
        on: d(on),
        note: None,
        backfill: None,
    }
}

fn complete(phase: u32, on: &str) -> ObjectiveCommand {
    ObjectiveCommand::CompletePhase {
        phase,
        on: d(on),
        note: None,
        evidence: vec![],
        backfill: None,
    }
}

fn retract(phase: u32, reason: &str) -> ObjectiveCommand {
    ObjectiveCommand::RetractCompletion {
        phase,
        reason: reason.into(),
        backfill: None,
    }
}

fn measure(
    indicator: &str,
    on: &str,
    value: Option<i64>,
    ratio: Option<(Option<u64>, Option<u64>)>,
) -> ObjectiveCommand {
    let (numerator, denominator) = ratio.unwrap_or((None, None));
    ObjectiveCommand::RecordMeasurement(Measurement {
        indicator: indicator.into(),
        on: d(on),
        value: value.map(Hundredths),
        numerator,
        denominator,
        text: None,
        entry: Entry {
            note: None,
            backfill: None,
        },
    })
}

fn validation(
    stage: ValidationStage,
    outcome: ValidationOutcome,
    unverified: &[u32],
    neutralised: &[u32],
    note: Option<&str>,
) -> ObjectiveCommand {
    ObjectiveCommand::RecordValidation(ValidationRequest {
        stage,
        outcome,
        unverified_phases: unverified.to_vec(),
        neutralised_phases: neutralised.to_vec(),
        note: note.map(str::to_string),
        reference: None,
    })
}

fn final_approved(unverified: &[u32], neutralised: &[u32], note: Option<&str>) -> ObjectiveCommand {
    validation(
        ValidationStage::Final,
        ValidationOutcome::Approved,
        unverified,
        neutralised,
        note,
    )
}

fn plan_approved() -> ObjectiveCommand {
    validation(
        ValidationStage::Plan,
        ValidationOutcome::Approved,
        &[],
        &[],
        None,
    )
}

fn revision(act_date: Option<&str>, changes: Vec<RevisionChange>) -> RevisionRequest {
    RevisionRequest {
        act: "D.G.C. n. 182 del 28/07/2022".into(),
        act_date: act_date.map(d),
        reason: "rimodulazione degli obiettivi".into(),
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

fn withdraw_phase(objective: &str, phase: u32) -> RevisionChange {
    RevisionChange::WithdrawPhase {
        objective: objective.into(),
        phase,
    }
}

fn new_phase(number: u32, weight: i64, deadline: &str) -> PhaseSpec {
    PhaseSpec {
        number,
        description: "Rendicontazione finale".into(),
        weight_hundredths: Hundredths(weight),
        involved: vec![],
        deadline: d(deadline),
    }
}

/// Then: a refusal of `kind`, saying `words`.
#[track_caller]
fn assert_refused<T: std::fmt::Debug>(result: Result<T, AppError>, kind: RefusalKind, words: &str) {
    match result {
        Err(AppError::Domain(e)) if e.kind() == kind => {
            let message = e.to_string();
            assert!(
                message.contains(words),
                "{message:?} does not say {words:?}"
            )
        }
        other => panic!("expected {kind:?} saying {words:?}, got {other:?}"),
    }
}

/// Then: a rule of the objective's state refused it, saying `words`.
#[track_caller]
fn assert_rule<T: std::fmt::Debug>(result: Result<T, AppError>, words: &str) {
    assert_refused(result, RefusalKind::Rule, words);
}

/// Then: the input was refused at `field`, saying `words`.
#[track_caller]
fn assert_invalid<T: std::fmt::Debug>(result: Result<T, AppError>, field: &str, words: &str) {
    match result {
        Err(AppError::Invalid(errors)) => assert!(
            errors
                .iter()
                .any(|e| e.field == field && e.message.contains(words)),
            "no {field}: …{words}… in {errors:#?}"
        ),
        other => panic!("expected invalid input at {field}, got {other:?}"),
    }
}

#[track_caller]
fn assert_forbidden<T: std::fmt::Debug>(result: Result<T, AppError>, words: &str) {
    assert_refused(result, RefusalKind::Forbidden, words);
}

#[track_caller]
fn assert_not_found<T: std::fmt::Debug>(result: Result<T, AppError>, words: &str) {
    assert_refused(result, RefusalKind::NotFound, words);
}

const A: &str = "2022-2250-A";
const B: &str = "2022-2250-B";
const PEDIBUS: &str = "2022-2252-D";

// ---------------------------------------------------------------------------
// Starting and completing phases

#[test]
fn a_manager_starts_a_phase_of_their_unit() {
    let given = Log::seed().on("2022-03-02");
    let then = given.when(
        A,
        ObjectiveCommand::StartPhase {
            phase: 1,
            on: d("2022-03-01"),
            note: Some("  incontro con la software house  ".into()),
            backfill: None,
        },
        &manager("2250"),
    );
    assert_eq!(
        then.unwrap(),
        vec![ObjectiveEvent::PhaseStarted {
            phase: 1,
            on: d("2022-03-01"),
            note: Some("incontro con la software house".into()),
            backfill: None,
        }]
    );
}

#[test]
fn a_start_dated_after_the_record_date_is_refused() {
    let given = Log::seed().on("2022-03-02");
    assert_invalid(
        given.when(A, start(1, "2022-03-03"), &manager("2250")),
        "on",
        "il 03/03/2022 è dopo oggi (02/03/2022)",
    );
}

#[test]
fn a_phase_cannot_be_started_twice() {
    let given = Log::seed()
        .on("2022-03-02")
        .after(A, start(1, "2022-03-01"), &manager("2250"));
    assert_rule(
        given.when(A, start(1, "2022-03-02"), &manager("2250")),
        "già stata avviata il 01/03/2022",
    );
}

#[test]
fn a_manager_completes_a_phase_with_its_evidence() {
    let given = Log::seed().on("2022-06-10");
    let then = given.when(
        A,
        ObjectiveCommand::CompletePhase {
            phase: 1,
            on: d("2022-05-28"),
            note: None,
            evidence: vec!["prot. 1234/2022".into(), "  ".into()],
            backfill: None,
        },
        &manager("2250"),
    );
    assert_eq!(
        then.unwrap(),
        vec![ObjectiveEvent::PhaseCompleted {
            phase: 1,
            on: d("2022-05-28"),
            note: None,
            evidence: vec!["prot. 1234/2022".into()],
            backfill: None,
            actor_id: Some("dirigente 2250".into()),
        }]
    );
}

#[test]
fn a_completion_dated_after_the_record_date_is_refused() {
    let given = Log::seed().on("2022-06-10");
    assert_invalid(
        given.when(A, complete(1, "2022-06-11"), &manager("2250")),
        "on",
        "il 11/06/2022 è dopo oggi (10/06/2022)",
    );
}

#[test]
fn a_completion_dated_today_is_accepted() {
    let given = Log::seed().on("2022-06-10");
    assert!(given
        .when(A, complete(1, "2022-06-10"), &manager("2250"))
        .is_ok());
}

#[test]
fn a_completion_dated_before_the_recorded_start_is_refused() {
    let given = Log::seed()
        .on("2022-03-02")
        .after(A, start(1, "2022-03-01"), &manager("2250"))
        .on("2022-06-10");
    assert_rule(
        given.when(A, complete(1, "2022-02-28"), &manager("2250")),
        "non può essere completata il 28/02/2022, prima del suo avvio il 01/03/2022",
    );
    assert!(given
        .when(A, complete(1, "2022-03-01"), &manager("2250"))
        .is_ok());
}

#[test]
fn a_phase_cannot_be_completed_twice() {
    let given = Log::seed()
        .on("2022-06-10")
        .after(A, complete(1, "2022-05-28"), &manager("2250"));
    assert_rule(
        given.when(A, complete(1, "2022-05-29"), &manager("2250")),
        "già stata completata il 28/05/2022",
    );
    assert_rule(
        given.when(A, start(1, "2022-05-01"), &manager("2250")),
        "già stata completata il 28/05/2022",
    );
}

#[test]
fn an_unknown_phase_is_not_found() {
    let given = Log::seed().on("2022-06-10");
    // Obiettivo B of Risorse Finanziarie has three phases.
    for command in [
        start(4, "2022-06-01"),
        complete(4, "2022-06-01"),
        retract(4, "errore"),
    ] {
        assert_not_found(
            given.when(B, command, &manager("2250")),
            "l'obiettivo 2022-2250-B non ha la fase 4",
        );
    }
}

#[test]
fn only_a_manager_of_the_objectives_unit_records_progress() {
    let given = Log::seed().on("2022-06-10");
    for who in [manager("2249"), admin(), validator(), auditor()] {
        assert_forbidden(
            given.when(A, complete(1, "2022-05-28"), &who),
            "solo un dirigente dell'unità 2250",
        );
    }
    let both = Principal {
        units: vec!["2249".into(), "2250".into()],
        ..manager("2249")
    };
    assert!(given.when(A, complete(1, "2022-05-28"), &both).is_ok());
}

// ---------------------------------------------------------------------------
// Retractions

#[test]
fn a_retraction_needs_a_reason() {
    let given = Log::seed()
        .on("2022-06-10")
        .after(A, complete(1, "2022-05-28"), &manager("2250"));
    assert_invalid(
        given.when(A, retract(1, "   "), &manager("2250")),
        "reason",
        "richiede una motivazione",
    );
}

#[test]
fn only_a_recorded_completion_can_be_retracted() {
    let given = Log::seed().on("2022-06-10");
    assert_rule(
        given.when(A, retract(1, "registrata per errore"), &manager("2250")),
        "non ha un completamento da annullare",
    );
}

#[test]
fn a_retracted_completion_returns_the_phase_to_in_progress() {
    let given = Log::seed()
        .on("2022-03-02")
        .after(A, start(1, "2022-03-01"), &manager("2250"))
        .on("2022-06-10")
        .after(A, complete(1, "2022-05-28"), &manager("2250"));
    let then = given
        .when(
            A,
            retract(1, "registrata sulla fase sbagliata"),
            &manager("2250"),
        )
        .unwrap();
    assert_eq!(
        then,
        vec![ObjectiveEvent::PhaseCompletionRetracted {
            phase: 1,
            completed_on: d("2022-05-28"),
            reason: "registrata sulla fase sbagliata".into(),
            backfill: None,
        }]
    );
    let after = given.with(A, &manager("2250"), then[0].clone());
    let phase = after.objective(A).phase(1).cloned().unwrap();
    assert_eq!(phase.status_at(d("2022-05-29")), PhaseStatus::InProgress);
    assert!(phase.completed().is_none());
    // And it can be completed again, with the right date.
    assert!(after
        .when(A, complete(1, "2022-05-27"), &manager("2250"))
        .is_ok());
}

// ---------------------------------------------------------------------------
// Withdrawn phases and objectives

#[test]
fn nothing_is_recorded_on_a_withdrawn_phase() {
    let given = Log::seed()
        .on("2022-06-10")
        .after(A, complete(2, "2022-06-01"), &manager("2250"))
        .revised(revision(
            None,
            vec![withdraw_phase(A, 2), weights(A, &[(4, 6000)])],
        ));
    for command in [
        start(2, "2022-06-10"),
        complete(2, "2022-06-10"),
        retract(2, "errore"),
    ] {
        assert_rule(
            given.when(A, command, &manager("2250")),
            "la fase 2 di 2022-2250-A è stata stralciata",
        );
    }
    assert_invalid(
        given.when(A, final_approved(&[2], &[], Some("n")), &validator()),
        "unverified_phases",
        "la fase 2 è stata stralciata",
    );
}

#[test]
fn nothing_is_recorded_on_a_withdrawn_objective() {
    let given = Log::seed().on("2022-06-10").revised(revision(
        None,
        vec![RevisionChange::WithdrawObjective {
            objective: A.into(),
        }],
    ));
    for (command, who) in [
        (start(1, "2022-06-01"), manager("2250")),
        (complete(1, "2022-06-01"), manager("2250")),
        (
            measure("completezza-fasi-tempistica", "2022-06-01", Some(100), None),
            manager("2250"),
        ),
        (plan_approved(), validator()),
    ] {
        assert_rule(
            given.when(A, command, &who),
            "l'obiettivo 2022-2250-A è stato stralciato",
        );
    }
}

// ---------------------------------------------------------------------------
// Indicator measurements

#[test]
fn a_ratio_measurement_is_recorded_and_read_as_a_percentage() {
    let given = Log::seed().on("2023-01-15");
    let then = given
        .when(
            B,
            measure(
                "rimborsi-90gg",
                "2022-12-31",
                None,
                Some((Some(187), Some(200))),
            ),
            &manager("2250"),
        )
        .unwrap();
    let after = given.with(B, &manager("2250"), then[0].clone());
    let view = after.objective(B).evaluate(d("2022-12-31"));
    let latest = view.indicators[1].latest.as_ref().expect("a measurement");
    assert_eq!(latest.value.map(|p| p.0), Some(Hundredths(9350)));
    assert_eq!(
        (latest.numerator, latest.denominator),
        (Some(187), Some(200))
    );
}

#[test]
fn a_ratio_with_a_zero_denominator_is_refused() {
    let given = Log::seed().on("2023-01-15");
    assert_invalid(
        given.when(
            B,
            measure(
                "rimborsi-90gg",
                "2022-12-31",
                None,
                Some((Some(0), Some(0))),
            ),
            &manager("2250"),
        ),
        "denominator",
        "deve essere maggiore di 0",
    );
}

#[test]
fn a_measurement_needs_a_value_or_both_terms_of_a_ratio() {
    let given = Log::seed().on("2023-01-15");
    let who = manager("2250");
    assert_invalid(
        given.when(B, measure("rimborsi-90gg", "2022-12-31", None, None), &who),
        "value",
        "indicare un valore, oppure numeratore e denominatore",
    );
    assert_invalid(
        given.when(
            B,
            measure("rimborsi-90gg", "2022-12-31", None, Some((Some(3), None))),
            &who,
        ),
        "denominator",
        "sia il numeratore sia il denominatore",
    );
    assert_invalid(
        given.when(
            B,
            measure("rimborsi-90gg", "2023-01-16", Some(9000), None),
            &who,
        ),
        "on",
        "è dopo oggi",
    );
}

#[test]
fn an_unknown_indicator_is_not_found() {
    let given = Log::seed().on("2023-01-15");
    assert_not_found(
        given.when(
            B,
            measure("adesione-50", "2022-12-31", Some(6000), None),
            &manager("2250"),
        ),
        "l'obiettivo 2022-2250-B non ha l'indicatore adesione-50",
    );
}

// ---------------------------------------------------------------------------
// Validations by the Nucleo di Valutazione

#[test]
fn only_the_nucleo_validates() {
    let given = Log::seed().on("2022-02-01");
    for who in [manager("2250"), admin(), auditor()] {
        assert_forbidden(
            given.when(A, plan_approved(), &who),
            "solo il Nucleo di Valutazione",
        );
    }
    assert!(given.when(A, plan_approved(), &validator()).is_ok());
}

#[test]
fn the_one_who_recorded_a_completion_may_not_validate_it() {
    let dual = Principal {
        role: Role::Validator,
        units: vec![],
        ..manager("2250")
    };
    let given = Log::seed()
        .on("2022-06-10")
        .after(A, complete(1, "2022-05-28"), &manager("2250"))
        .on("2023-01-20");
    assert_forbidden(
        given.when(A, final_approved(&[], &[], None), &dual),
        "Dirigente 2250 ha registrato il completamento della fase 1 di 2022-2250-A e non può validarlo",
    );
    // Someone else of the Nucleo may.
    assert!(given
        .when(A, final_approved(&[], &[], None), &validator())
        .is_ok());
}

#[test]
fn the_plan_of_an_objective_is_validated_only_once() {
    let given = Log::seed()
        .on("2022-02-01")
        .after(A, plan_approved(), &validator());
    assert_rule(
        given.when(A, plan_approved(), &validator()),
        "il piano dell'obiettivo 2022-2250-A è già stato validato il 01/02/2022 e nessuna rimodulazione lo ha cambiato da allora",
    );
    // Another objective's validation is no obstacle.
    assert!(given.when(B, plan_approved(), &validator()).is_ok());
}

#[test]
fn the_plan_may_be_validated_again_after_a_revision_changed_the_objective() {
    let given = Log::seed()
        .on("2022-02-01")
        .after(A, plan_approved(), &validator())
        .on("2022-07-28")
        .revised(revision(
            Some("2022-07-28"),
            vec![deadline(A, Some(3), "2022-09-30")],
        ));
    assert!(given.when(A, plan_approved(), &validator()).is_ok());
    // A revision of another objective does not reopen this one.
    let other = Log::seed()
        .on("2022-02-01")
        .after(A, plan_approved(), &validator())
        .on("2022-07-28")
        .revised(revision(
            Some("2022-07-28"),
            vec![deadline(B, Some(3), "2022-12-30")],
        ));
    assert_rule(
        other.when(A, plan_approved(), &validator()),
        "già stato validato",
    );
}

#[test]
fn a_validation_that_leaves_phases_out_or_rejects_needs_a_note() {
    let given = Log::seed()
        .on("2022-06-10")
        .after(A, complete(1, "2022-05-28"), &manager("2250"))
        .on("2023-01-20");
    let message = "la nota è obbligatoria";
    assert_invalid(
        given.when(A, final_approved(&[1], &[], None), &validator()),
        "note",
        message,
    );
    assert_invalid(
        given.when(A, final_approved(&[], &[2], Some("   ")), &validator()),
        "note",
        message,
    );
    assert_invalid(
        given.when(
            A,
            validation(
                ValidationStage::Final,
                ValidationOutcome::Rejected,
                &[],
                &[],
                None,
            ),
            &validator(),
        ),
        "note",
        message,
    );
    let then = given
        .when(
            A,
            final_approved(&[1], &[2], Some("fase 2 dipendente da altri settori")),
            &validator(),
        )
        .unwrap();
    assert_eq!(
        then,
        vec![ObjectiveEvent::ValidationRecorded {
            stage: ValidationStage::Final,
            outcome: ValidationOutcome::Approved,
            unverified_phases: vec![1],
            neutralised_phases: vec![2],
            note: Some("fase 2 dipendente da altri settori".into()),
            reference: None,
        }]
    );
}

#[test]
fn only_a_declared_phase_can_be_left_unverified() {
    let given = Log::seed().on("2023-01-20");
    assert_invalid(
        given.when(A, final_approved(&[3], &[], Some("n")), &validator()),
        "unverified_phases",
        "la fase 3 non è stata dichiarata completata",
    );
}

#[test]
fn validation_lists_name_phases_that_exist_once_each_and_leave_one_to_evaluate() {
    let given = Log::seed()
        .on("2022-06-10")
        .after(A, complete(1, "2022-05-28"), &manager("2250"))
        .on("2023-01-20");
    assert_invalid(
        given.when(A, final_approved(&[], &[9], Some("n")), &validator()),
        "neutralised_phases",
        "l'obiettivo 2022-2250-A non ha la fase 9",
    );
    assert_invalid(
        given.when(A, final_approved(&[1], &[1], Some("n")), &validator()),
        "neutralised_phases",
        "la fase 1 non può essere insieme non verificata e sterilizzata",
    );
    assert_invalid(
        given.when(
            A,
            final_approved(&[], &[1, 2, 3, 4], Some("n")),
            &validator(),
        ),
        "neutralised_phases",
        "almeno una fase deve restare da valutare",
    );
    assert_invalid(
        given.when(
            A,
            validation(
                ValidationStage::Plan,
                ValidationOutcome::Approved,
                &[],
                &[2],
                Some("n"),
            ),
            &validator(),
        ),
        "stage",
        "appartengono alla validazione finale",
    );
}

// ---------------------------------------------------------------------------
// Revisions

#[test]
fn a_revision_appends_its_record_and_each_change_with_the_act_it_came_from() {
    let given = Log::seed().on("2022-07-29");
    let then = given
        .when_revised(&revision(
            Some("2022-07-28"),
            vec![
                deadline(PEDIBUS, Some(5), "2022-06-30"),
                deadline(A, None, "2023-01-31"),
                deadline(A, Some(4), "2023-01-31"),
            ],
        ))
        .unwrap();
    let reference = RevisionRef {
        id: Uuid::nil(),
        act: "D.G.C. n. 182 del 28/07/2022".into(),
        in_force_from: d("2022-07-28"),
        reason: "rimodulazione degli obiettivi".into(),
    };
    assert_eq!(then.objectives.len(), 2);
    assert_eq!(then.objectives[0].0, PEDIBUS);
    assert_eq!(then.objectives[1].0, A);
    assert_eq!(then.objectives[1].1, Some(1), "decided on version 1 of A");
    assert_eq!(
        then.objectives[1].2,
        vec![
            ObjectiveEvent::DeadlineRevised {
                phase: None,
                from: d("2022-12-31"),
                to: d("2023-01-31"),
                revision: reference.clone(),
            },
            ObjectiveEvent::DeadlineRevised {
                phase: Some(4),
                from: d("2022-12-31"),
                to: d("2023-01-31"),
                revision: reference,
            },
        ]
    );
    let PlanEvent::RevisionRecorded {
        in_force_from,
        objectives,
        ..
    } = then.plan_event
    else {
        panic!("not a revision record");
    };
    assert_eq!(in_force_from, d("2022-07-28"));
    assert_eq!(objectives, [PEDIBUS, A]);
}

#[test]
fn a_revision_without_an_act_date_is_in_force_from_its_record_date() {
    let given = Log::seed().on("2022-07-29");
    let then = given
        .when_revised(&revision(None, vec![deadline(A, Some(3), "2022-08-31")]))
        .unwrap();
    let ObjectiveEvent::DeadlineRevised { revision, .. } = &then.objectives[0].2[0] else {
        panic!("not a deadline change");
    };
    assert_eq!(revision.in_force_from, d("2022-07-29"));
}

#[test]
fn only_an_admin_records_revisions() {
    let given = Log::seed().on("2022-07-29");
    for who in [manager("2250"), validator(), auditor()] {
        assert_forbidden(
            decide_revision(
                &given.registry(),
                2022,
                &revision(None, vec![deadline(A, Some(3), "2022-08-31")]),
                &who,
                given.today(),
                Uuid::nil(),
            ),
            "solo un amministratore",
        );
    }
}

#[test]
fn a_revision_of_an_unknown_plan_is_not_found() {
    let given = Log::seed().on("2022-07-29");
    assert_not_found(
        decide_revision(
            &given.registry(),
            2021,
            &revision(None, vec![deadline(A, Some(3), "2022-08-31")]),
            &admin(),
            given.today(),
            Uuid::nil(),
        ),
        "non esiste un piano per il 2021",
    );
}

#[test]
fn a_revision_needs_an_act_a_reason_a_change_and_an_act_date_not_in_the_future() {
    let given = Log::seed().on("2022-07-29");
    let request = RevisionRequest {
        act: " ".into(),
        act_date: Some(d("2022-07-30")),
        reason: "".into(),
        changes: vec![],
    };
    let result = given.when_revised(&request);
    let Err(AppError::Invalid(errors)) = result else {
        panic!("expected invalid input, got {result:?}");
    };
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["act", "reason", "changes", "act_date"]);
}

#[test]
fn a_revision_naming_an_unknown_objective_or_phase_is_refused() {
    let given = Log::seed().on("2022-07-29");
    assert_invalid(
        given.when_revised(&revision(
            None,
            vec![deadline("2022-2250-Z", Some(1), "2022-08-31")],
        )),
        "changes[0].objective",
        "non esiste l'obiettivo 2022-2250-Z",
    );
    assert_invalid(
        given.when_revised(&revision(None, vec![deadline(B, Some(4), "2022-08-31")])),
        "changes[0].phase",
        "l'obiettivo 2022-2250-B non ha la fase 4",
    );
}

#[test]
fn revised_weights_must_sum_to_one_hundred() {
    let given = Log::seed().on("2022-07-29");
    assert_invalid(
        given.when_revised(&revision(None, vec![weights(A, &[(1, 1000)])])),
        A,
        "dopo la rimodulazione, per 2022-2250-A: i pesi delle fasi sommano a 90%, non esattamente a 100",
    );
    assert_invalid(
        given.when_revised(&revision(None, vec![weights(A, &[(1, -1000), (4, 6000)])])),
        "changes[0].weights.1",
        "-10% non è un peso compreso tra 0 e 100",
    );
    // Moving ten points from phase 1 to phase 4 keeps 100.
    assert!(given
        .when_revised(&revision(None, vec![weights(A, &[(1, 1000), (4, 5000)])]))
        .is_ok());
}

#[test]
fn a_phase_withdrawn_without_moving_its_weight_leaves_the_objective_short_of_one_hundred() {
    let given = Log::seed().on("2022-07-29");
    assert_invalid(
        given.when_revised(&revision(None, vec![withdraw_phase(B, 2)])),
        B,
        "sommano a 70%, non esattamente a 100",
    );
}

#[test]
fn a_phase_deadline_after_the_final_deadline_is_refused() {
    let given = Log::seed().on("2022-07-29");
    assert_invalid(
        given.when_revised(&revision(None, vec![deadline(PEDIBUS, Some(4), "2022-07-15")])),
        PEDIBUS,
        "dopo la rimodulazione, per 2022-2252-D: la fase 4 scade il 15/07/2022, dopo la scadenza finale del 30/06/2022",
    );
    // Moving the final deadline too makes it consistent.
    assert!(given
        .when_revised(&revision(
            None,
            vec![
                deadline(PEDIBUS, Some(4), "2022-07-15"),
                deadline(PEDIBUS, None, "2022-07-31"),
            ],
        ))
        .is_ok());
    // Bringing the final deadline before a phase's deadline is refused as well.
    assert_invalid(
        given.when_revised(&revision(None, vec![deadline(A, None, "2022-11-30")])),
        A,
        "la fase 4 scade il 31/12/2022, dopo la scadenza finale del 30/11/2022",
    );
}

#[test]
fn every_violation_of_a_revision_is_reported_at_once() {
    let given = Log::seed().on("2022-07-29");
    let result = given.when_revised(&revision(
        None,
        vec![
            weights(A, &[(1, 3000)]),
            deadline(PEDIBUS, Some(1), "2022-08-01"),
            withdraw_phase(B, 9),
            deadline("2022-9999-A", None, "2022-12-31"),
        ],
    ));
    let Err(AppError::Invalid(errors)) = result else {
        panic!("expected invalid input, got {result:?}");
    };
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    for expected in ["changes[2].phase", "changes[3].objective", A, PEDIBUS] {
        assert!(
            fields.contains(&expected),
            "{expected} missing from {errors:#?}"
        );
    }
}

#[test]
fn nothing_can_be_changed_on_an_objective_withdrawn_by_the_same_revision() {
    let given = Log::seed().on("2022-07-29");
    assert_invalid(
        given.when_revised(&revision(
            None,
            vec![
                RevisionChange::WithdrawObjective {
                    objective: A.into(),
                },
                deadline(A, Some(1), "2022-06-30"),
            ],
        )),
        "changes[1]",
        "l'obiettivo 2022-2250-A è stato stralciato",
    );
}

#[test]
fn a_revision_may_not_predate_one_already_applied_to_the_objective() {
    let given = Log::seed().on("2022-07-29").revised(revision(
        Some("2022-07-28"),
        vec![deadline(A, Some(3), "2022-08-31")],
    ));
    assert_invalid(
        given.when_revised(&revision(
            Some("2022-07-01"),
            vec![deadline(A, Some(2), "2022-07-15")],
        )),
        "act_date",
        "il 01/07/2022 precede il 28/07/2022",
    );
}

#[test]
fn an_added_phase_needs_a_new_number_and_a_weight_between_zero_and_one_hundred() {
    let given = Log::seed().on("2022-07-29");
    let add = |phase: PhaseSpec| RevisionChange::AddPhase {
        objective: B.into(),
        phase,
    };
    assert_invalid(
        given.when_revised(&revision(
            None,
            vec![
                add(new_phase(3, 1000, "2022-12-31")),
                weights(B, &[(3, 3000)]),
            ],
        )),
        "changes[0].phase.number",
        "l'obiettivo 2022-2250-B ha già una fase 3",
    );
    // A negative weight balanced by a raise elsewhere still sums to 100: it must be
    // refused on its own, or a completed weight could exceed 100.
    assert_invalid(
        given.when_revised(&revision(
            None,
            vec![
                add(new_phase(4, -2000, "2022-12-31")),
                weights(B, &[(3, 6000)]),
            ],
        )),
        "changes[0].phase.weight",
        "-20% non è un peso compreso tra 0 e 100",
    );
    let ok = given
        .when_revised(&revision(
            None,
            vec![
                add(new_phase(4, 1000, "2022-12-31")),
                weights(B, &[(3, 3000)]),
            ],
        ))
        .unwrap();
    assert!(matches!(
        ok.objectives[0].2[0],
        ObjectiveEvent::PhaseAdded { ref phase, .. } if phase.number == 4
    ));
}

#[test]
fn an_added_objective_belongs_to_the_plan_year_and_a_unit_of_the_plan() {
    let given = Log::seed().on("2022-07-29");
    let mut spec = given.objective(A).definition();
    spec.letter = "E".into();
    let ok = given
        .when_revised(&revision(
            None,
            vec![RevisionChange::AddObjective {
                objective: Box::new(spec.clone()),
            }],
        ))
        .unwrap();
    assert_eq!(ok.objectives[0].0, "2022-2250-E");
    assert_eq!(ok.objectives[0].1, None, "a new stream");
    let mut foreign = spec.clone();
    foreign.unit = "9999".into();
    assert_invalid(
        given.when_revised(&revision(
            None,
            vec![RevisionChange::AddObjective {
                objective: Box::new(foreign),
            }],
        )),
        "changes[0].objective.unit",
        "l'unità 9999 non è tra le unità del piano",
    );
    let mut negative = spec.clone();
    negative.phases[0].weight_hundredths = Hundredths(-2000);
    negative.phases[3].weight_hundredths = Hundredths(8000);
    assert_invalid(
        given.when_revised(&revision(
            None,
            vec![RevisionChange::AddObjective {
                objective: Box::new(negative),
            }],
        )),
        "changes[0].objective.phases[0].weight",
        "-20% non è un peso compreso tra 0 e 100",
    );
    assert_invalid(
        given.when_revised(&revision(
            None,
            vec![RevisionChange::AddObjective {
                objective: Box::new(given.objective(A).definition()),
            }],
        )),
        "changes[0]",
        "l'obiettivo 2022-2250-A esiste già",
    );
}

// --- the year-end seal ------------------------------------------------------

fn sealed_checkpoint() -> crate::commands::SealedCheckpoint {
    crate::commands::SealedCheckpoint {
        origin: "comune.test/traguardo".into(),
        size: 8,
        root: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into(),
        note:
            "comune.test/traguardo\n8\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n— x AAAA\n"
                .into(),
    }
}

#[test]
fn once_sealed_a_year_refuses_progress_validations_revisions_and_a_second_seal() {
    let mut log = Log::seed().on("2023-02-01");
    // Only the Nucleo seals.
    for who in [admin(), manager("2250"), auditor()] {
        let refused =
            crate::commands::decide_seal(&log.registry(), 2022, &who, sealed_checkpoint())
                .unwrap_err();
        assert_eq!(refused.kind(), RefusalKind::Forbidden, "{refused}");
    }
    let (version, event) =
        crate::commands::decide_seal(&log.registry(), 2022, &validator(), sealed_checkpoint())
            .unwrap();
    assert_eq!(version, 1);
    log.record(&plan_stream(2022), &event, &validator());
    let registry = log.registry();
    let seal = registry.plan(2022).unwrap().sealed.clone().unwrap();
    assert_eq!(
        (seal.size, seal.actor.as_str()),
        (8, "Nucleo di Valutazione")
    );
    let closed = |e: DomainError| {
        assert!(
            matches!(
                e,
                DomainError::YearSealed {
                    year: 2022,
                    size: 8,
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(e.kind(), RefusalKind::Rule);
        assert!(e.to_string().starts_with("esercizio chiuso"), "{e}");
    };
    let objective = log.objective("2022-2250-A");
    for (command, who) in [
        (
            ObjectiveCommand::StartPhase {
                phase: 1,
                on: d("2022-03-01"),
                note: None,
                backfill: None,
            },
            manager("2250"),
        ),
        (
            ObjectiveCommand::RecordValidation(ValidationRequest {
                stage: ValidationStage::Plan,
                outcome: ValidationOutcome::Approved,
                unverified_phases: vec![],
                neutralised_phases: vec![],
                note: None,
                reference: None,
            }),
            validator(),
        ),
    ] {
        closed(
            crate::commands::decide_in_year(&registry, &objective, &command, &who, log.today())
                .unwrap_err(),
        );
    }
    closed(
        crate::commands::decide_seal(&registry, 2022, &validator(), sealed_checkpoint())
            .unwrap_err(),
    );
    let revision = revision(
        None,
        vec![RevisionChange::Deadline {
            objective: "2022-2250-A".into(),
            phase: None,
            new_deadline: d("2022-12-31"),
        }],
    );
    match decide_revision(
        &registry,
        2022,
        &revision,
        &admin(),
        log.today(),
        Uuid::now_v7(),
    ) {
        Err(crate::AppError::Domain(e)) => closed(e),
        other => panic!("expected esercizio chiuso, got {other:?}"),
    }
}
