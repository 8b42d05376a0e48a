//! The auditor's view, part one: the audit trail (who, when, what, on what
//! authority, in Italian) and revision replay (each touched objective before and
//! after, with a field-by-field diff).

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Value};
use traguardo::commands::{ObjectiveCommand, RevisionRequest};
use traguardo_events::domain::{OrgEvent, RevisionChange};
use traguardo_events::model::{
    Hundredths, ObjectiveSpec, PhaseSpec, Role, ValidationOutcome, ValidationStage, ORG_STREAM,
};
use traguardo_events::store::Until;
use traguardo_events::{AppendBatch, NewEvent, RecordedEvent};
use traguardo_projections::audit::{trail, AuditEntry, AuditFilter, FieldChange};
use traguardo_projections::revision::{self, objective_at};
use traguardo_projections::PhaseStatus;

use crate::support::{admin, block_on, d, manager_of, validator, World};

const ACT: &str = "D.G.C. n. 182 del 28/07/2022";

fn year_events(world: &World) -> Vec<RecordedEvent> {
    world
        .app
        .year_events(2022, Until::End)
        .expect("the log is readable")
}

fn entries(world: &World, filter: &AuditFilter) -> Vec<AuditEntry> {
    trail(&year_events(world), filter).expect("the trail folds")
}

/// The summaries of the entries of one type, oldest first.
fn summaries(entries: &[AuditEntry], event_type: &str) -> Vec<String> {
    entries
        .iter()
        .filter(|e| e.event_type == event_type)
        .map(|e| e.summary.clone())
        .collect()
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
        weights_hundredths: weights
            .iter()
            .map(|(n, w)| (*n, Hundredths(w * 100)))
            .collect::<BTreeMap<_, _>>(),
    }
}

fn revision_182(changes: Vec<RevisionChange>) -> RevisionRequest {
    RevisionRequest {
        act: ACT.into(),
        act_date: Some(d("2022-07-28")),
        reason: "Ritardi nella consegna del software".into(),
        changes,
    }
}

fn at(date: &str) -> DateTime<Utc> {
    Utc.from_utc_datetime(&d(date).and_hms_opt(9, 0, 0).unwrap())
}

fn validate(world: &World, key: &str, stage: ValidationStage, neutralised: Vec<u32>) {
    world
        .run(
            key,
            ObjectiveCommand::RecordValidation(traguardo::commands::ValidationRequest {
                stage,
                outcome: ValidationOutcome::Approved,
                unverified_phases: vec![],
                neutralised_phases: neutralised.clone(),
                note: (!neutralised.is_empty())
                    .then(|| "Ritardo imputabile al fornitore esterno".to_string()),
                reference: None,
            }),
            &validator(),
        )
        .expect("the validation is recorded");
}

fn new_objective() -> ObjectiveSpec {
    let phase = |number, description: &str, weight: i64, deadline| PhaseSpec {
        number,
        description: description.into(),
        weight_hundredths: Hundredths(weight * 100),
        involved: vec![],
        deadline: d(deadline),
    };
    ObjectiveSpec {
        year: 2022,
        unit: "2250".into(),
        letter: "Z".into(),
        manager: "Dott. Stefano Specchia".into(),
        title: "Recupero evasione IMU".into(),
        strategic_purpose: "Equità fiscale".into(),
        directives: "Bonifica della banca dati".into(),
        phases: vec![
            phase(1, "Bonifica banca dati", 50, "2022-09-30"),
            phase(2, "Emissione avvisi", 50, "2022-12-31"),
        ],
        final_deadline: d("2022-12-31"),
        expected_result: "Avvisi emessi".into(),
        achieved_when: "tutte le fasi nei termini".into(),
        not_achieved_when: "una fase oltre i termini".into(),
        indicators: vec![],
        constraints: String::new(),
        human_resources: "Settore".into(),
        financial_resources: "PEG".into(),
    }
}

/// A year with one event of every type (and both kinds of deadline revision).
fn a_busy_year() -> World {
    let world = World::with_seed();
    let b = "2022-2250-B";
    world.on("2022-02-01");
    validate(&world, b, ValidationStage::Plan, vec![]);
    world.on("2022-03-10");
    world.start(b, 1, "2022-03-01").unwrap();
    world.on("2022-03-31");
    world.complete(b, 1, "2022-03-28").unwrap();
    world.on("2022-04-05");
    world
        .run(
            b,
            ObjectiveCommand::RetractCompletion {
                phase: 1,
                reason: "Data di completamento errata".into(),
                backfill: None,
            },
            &manager_of(b),
        )
        .unwrap();
    world.on("2022-06-30");
    world
        .run(
            b,
            ObjectiveCommand::RecordMeasurement(traguardo::commands::Measurement {
                indicator: "rimborsi-90gg".into(),
                on: d("2022-06-30"),
                value: None,
                numerator: Some(187),
                denominator: Some(200),
                text: None,
                entry: traguardo::commands::Entry {
                    note: None,
                    backfill: None,
                },
            }),
            &manager_of(b),
        )
        .unwrap();
    world.on("2022-07-29");
    world
        .revise(
            2022,
            revision_182(vec![
                deadline(b, Some(2), "2022-07-31"),
                deadline("2022-2250-A", None, "2023-01-31"),
                weights("2022-2250-C", &[(4, 20)]),
                RevisionChange::AddPhase {
                    objective: "2022-2250-C".into(),
                    phase: PhaseSpec {
                        number: 5,
                        description: "Rendicontazione finale".into(),
                        weight_hundredths: Hundredths(1000),
                        involved: vec![],
                        deadline: d("2022-11-30"),
                    },
                },
                RevisionChange::WithdrawPhase {
                    objective: "2022-2249-C".into(),
                    phase: 4,
                },
                weights("2022-2249-C", &[(3, 50)]),
                RevisionChange::WithdrawObjective {
                    objective: "2022-2252-D".into(),
                },
                RevisionChange::AddObjective {
                    objective: Box::new(new_objective()),
                },
            ]),
        )
        .expect("the revision is recorded");
    world.on("2022-08-01");
    world.complete(b, 1, "2022-03-30").unwrap();
    world.complete(b, 2, "2022-07-20").unwrap();
    world.on("2023-01-20");
    validate(&world, b, ValidationStage::Final, vec![3]);
    world
}

#[test]
fn every_event_type_has_its_italian_summary() {
    let world = a_busy_year();
    let all = entries(&world, &AuditFilter::default());
    assert_eq!(
        summaries(&all, "plan_defined"),
        [
            "Caricato il piano «Piano degli obiettivi provvisorio 2022 — integrazione/\
          rimodulazione/revisione obiettivi» per il 2022 (Città di Alessandria): 7 obiettivi, \
          18 unità organizzative"
        ]
    );
    let defined = summaries(&all, "objective_defined");
    assert_eq!(defined.len(), 8);
    assert_eq!(
        defined[1],
        "Obiettivo 2022-2250-B «Riduzione tempi di definizione rimborsi e rateizzazioni» \
         definito nel piano, responsabile Dott. Stefano Specchia: 3 fasi, scadenza finale \
         31/12/2022"
    );
    assert_eq!(
        defined[6],
        "Obiettivo 2022-2252-D «Progetto Pedibus: Nidi e Scuola Infanzia al Giardino Botanico, \
         in Biblioteca e al Parco Isola delle Sensazioni» definito nel piano, responsabile \
         Dott.ssa Orietta Bocchio: 5 fasi, scadenza finale 30/06/2022",
        "the plan's own quotes give way to the summary's"
    );
    assert_eq!(
        defined[7],
        "Obiettivo 2022-2250-Z «Recupero evasione IMU» aggiunto al piano, responsabile Dott. \
         Stefano Specchia: 2 fasi, scadenza finale 31/12/2022 — D.G.C. n. 182 del 28/07/2022"
    );
    assert_eq!(
        summaries(&all, "validation_recorded"),
        [
            "Validazione del piano (visto ex ante): approvata, registrata il 01/02/2022 da \
             Nucleo di Valutazione",
            "Validazione finale dei risultati: approvata (fasi sterilizzate: 3), registrata il \
             20/01/2023 da Nucleo di Valutazione",
        ]
    );
    assert_eq!(
        summaries(&all, "phase_started"),
        ["Fase 1 avviata il 01/03/2022, registrata il 10/03/2022 da Dirigente 2250"]
    );
    assert_eq!(
        summaries(&all, "phase_completed"),
        [
            "Fase 1 completata il 28/03/2022, registrata il 31/03/2022 da Dirigente 2250",
            "Fase 1 completata il 30/03/2022, registrata il 01/08/2022 da Dirigente 2250",
            "Fase 2 completata il 20/07/2022, registrata il 01/08/2022 da Dirigente 2250",
        ]
    );
    assert_eq!(
        summaries(&all, "phase_completion_retracted"),
        [
            "Fase 1: annullato il completamento del 28/03/2022; annullamento registrato il 05/04/2022 \
             da Dirigente 2250"
        ]
    );
    assert_eq!(
        summaries(&all, "indicator_measured"),
        [
            "Rilevazione dell'indicatore «rimborsi-90gg» al 30/06/2022: 187 su 200 (93,5%), \
             registrata il 30/06/2022 da Dirigente 2250"
        ]
    );
    assert_eq!(
        summaries(&all, "revision_recorded"),
        [
            "Revisione del piano approvata con D.G.C. n. 182 del 28/07/2022, in vigore dal \
             28/07/2022: 8 modifiche su 6 obiettivi (2022-2250-B, 2022-2250-A, 2022-2250-C, \
             2022-2249-C, 2022-2252-D, 2022-2250-Z)"
        ]
    );
    assert_eq!(
        summaries(&all, "deadline_revised"),
        [
            "Fase 2: scadenza spostata dal 31/05/2022 al 31/07/2022 — D.G.C. n. 182 del 28/07/2022",
            "Scadenza finale spostata dal 31/12/2022 al 31/01/2023 — D.G.C. n. 182 del 28/07/2022",
        ]
    );
    assert_eq!(
        summaries(&all, "weights_revised"),
        [
            "Incidenze rimodulate: fase 4 dal 30% al 20% — D.G.C. n. 182 del 28/07/2022",
            "Incidenze rimodulate: fase 3 dal 40% al 50% — D.G.C. n. 182 del 28/07/2022",
        ]
    );
    assert_eq!(
        summaries(&all, "phase_added"),
        [
            "Aggiunta la fase 5 «Rendicontazione finale» (incidenza 10%, scadenza 30/11/2022) — \
             D.G.C. n. 182 del 28/07/2022"
        ]
    );
    assert_eq!(
        summaries(&all, "phase_withdrawn"),
        ["Fase 4 stralciata — D.G.C. n. 182 del 28/07/2022"]
    );
    assert_eq!(
        summaries(&all, "objective_withdrawn"),
        ["Obiettivo 2022-2252-D stralciato dal piano — D.G.C. n. 182 del 28/07/2022"]
    );
}

#[test]
fn token_events_are_summarised_without_their_secret() {
    let world = World::new();
    world.on("2022-02-01");
    let (_, info) = block_on(world.app.issue_token(
        "Dott. Stefano Specchia",
        Role::Manager,
        vec!["2250".into()],
        &admin(),
    ))
    .expect("the token is issued");
    world.on("2022-09-01");
    let revoke = NewEvent::from_domain(
        ORG_STREAM,
        &OrgEvent::TokenRevoked {
            token_id: info.token_id,
        },
        &admin().actor(),
        None,
    )
    .unwrap();
    world
        .app
        .store()
        .append(AppendBatch::new().push(revoke))
        .expect("the revocation is appended");
    let events = world
        .app
        .store()
        .read_stream(ORG_STREAM, Until::End)
        .unwrap();
    let all = trail(&events, &AuditFilter::default()).unwrap();
    assert_eq!(
        summaries(&all, "token_issued"),
        [
            "Rilasciato un token di accesso a Dott. Stefano Specchia con ruolo di dirigente per \
          l'unità 2250"
        ]
    );
    assert_eq!(
        summaries(&all, "token_revoked"),
        ["Revocato il token di accesso di Dott. Stefano Specchia (dirigente)"]
    );
    let field = format!("tokens[{}]", info.token_id);
    assert_eq!(
        all[0].changes,
        [FieldChange::new(
            &field,
            Value::Null,
            json!({"actor": "Dott. Stefano Specchia", "role": "manager", "units": ["2250"]})
        )]
    );
    assert_eq!(all[1].changes[0].to, Value::Null);
    assert!(
        !serde_json::to_string(&all).unwrap().contains("sha256"),
        "the trail never shows a token's hash"
    );
    // Filtered by unit, a manager's token belongs to the units it is scoped to.
    let unit = |u: &str| AuditFilter {
        unit: Some(u.into()),
        ..AuditFilter::default()
    };
    assert_eq!(trail(&events, &unit("2250")).unwrap().len(), 1);
    assert!(trail(&events, &unit("2252")).unwrap().is_empty());
}

#[test]
fn each_entry_says_who_when_on_what_authority_and_what_changed() {
    let world = a_busy_year();
    let events = year_events(&world);
    let all = entries(&world, &AuditFilter::default());
    assert_eq!(all.len(), events.len(), "one entry per event");
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq), "oldest first");
    for (entry, event) in all.iter().zip(&events) {
        assert_eq!(
            (entry.seq, &entry.hash, &entry.actor, &entry.role),
            (event.seq, &event.hash, &event.actor, &event.role)
        );
    }
    let moved = all
        .iter()
        .find(|e| {
            e.event_type == "deadline_revised" && e.objective.as_deref() == Some("2022-2250-B")
        })
        .unwrap();
    assert_eq!(moved.recorded_at, at("2022-07-29"));
    assert_eq!(moved.actor, "Programmazione e Controllo");
    assert_eq!(moved.role, "admin");
    assert_eq!(moved.act.as_deref(), Some(ACT));
    assert_eq!(
        moved.reason.as_deref(),
        Some("Ritardi nella consegna del software")
    );
    assert_eq!(moved.unit.as_deref(), Some("2250"));
    assert_eq!(moved.stream, "objective/2022-2250-B");
    assert_eq!(
        moved.changes,
        [FieldChange::new(
            "phases[2].deadline",
            json!("2022-05-31"),
            json!("2022-07-31")
        )]
    );
    let retracted = all
        .iter()
        .find(|e| e.event_type == "phase_completion_retracted")
        .unwrap();
    assert_eq!(
        retracted.reason.as_deref(),
        Some("Data di completamento errata")
    );
    assert_eq!(retracted.act, None);
    assert_eq!(
        retracted.changes,
        [FieldChange::new(
            "phases[1].completed_on",
            json!("2022-03-28"),
            Value::Null
        )]
    );
    let reweighted = all
        .iter()
        .find(|e| e.event_type == "weights_revised")
        .unwrap();
    assert_eq!(
        reweighted.changes,
        [FieldChange::new("phases[4].weight", json!(30), json!(20))]
    );
    let withdrawn = all
        .iter()
        .find(|e| e.event_type == "objective_withdrawn")
        .unwrap();
    assert_eq!(
        withdrawn.changes,
        [FieldChange::new("withdrawn", json!(false), json!(true))]
    );
    let measured = all
        .iter()
        .find(|e| e.event_type == "indicator_measured")
        .unwrap();
    assert_eq!(
        measured.changes[0].field,
        "indicators[rimborsi-90gg].latest"
    );
    assert_eq!(measured.changes[0].from, Value::Null);
    assert_eq!(measured.changes[0].to["value"], json!(93.5));
    let validated = all
        .iter()
        .filter(|e| e.event_type == "validation_recorded")
        .collect::<Vec<_>>();
    assert_eq!(validated[1].changes[0].field, "validations[1]");
    assert_eq!(
        validated[1].reason.as_deref(),
        Some("Ritardo imputabile al fornitore esterno")
    );
    // The revision's own entry gathers what it changed on every objective.
    let revision = all
        .iter()
        .find(|e| e.event_type == "revision_recorded")
        .unwrap();
    assert_eq!(revision.act.as_deref(), Some(ACT));
    assert_eq!(revision.objective, None);
    let fields: Vec<&str> = revision
        .changes
        .iter()
        .map(|c| c.field.as_str())
        .take(6)
        .collect();
    assert_eq!(
        fields,
        [
            "2022-2250-B.phases[2].deadline",
            "2022-2250-A.final_deadline",
            "2022-2250-C.phases[4].weight",
            "2022-2250-C.phases[5]",
            "2022-2249-C.phases[4].withdrawn",
            "2022-2249-C.phases[3].weight",
        ]
    );
    // The JSON keeps the contract's names and leaves out what is absent.
    let json = serde_json::to_value(retracted).unwrap();
    assert_eq!(json["type"], "phase_completion_retracted");
    assert_eq!(json["recorded_at"], "2022-04-05T09:00:00.000000Z");
    assert!(json.get("act").is_none());
}

#[test]
fn the_trail_filters_by_unit_actor_type_and_record_time() {
    let world = a_busy_year();
    let all = entries(&world, &AuditFilter::default());
    let filtered = |filter: AuditFilter| entries(&world, &filter);

    let unit_2252 = filtered(AuditFilter {
        unit: Some("2252".into()),
        ..AuditFilter::default()
    });
    let types: Vec<(&str, Option<&str>)> = unit_2252
        .iter()
        .map(|e| (e.event_type.as_str(), e.objective.as_deref()))
        .collect();
    assert_eq!(
        types,
        [
            ("objective_defined", Some("2022-2252-C")),
            ("objective_defined", Some("2022-2252-D")),
            ("revision_recorded", None),
            ("objective_withdrawn", Some("2022-2252-D")),
        ],
        "a unit's objectives, and the revision that touched one of them"
    );
    let unit_2250 = filtered(AuditFilter {
        unit: Some("2250".into()),
        ..AuditFilter::default()
    });
    assert!(unit_2250
        .iter()
        .all(|e| e.unit.as_deref() == Some("2250") || e.event_type == "revision_recorded"));
    assert!(unit_2250
        .iter()
        .any(|e| e.objective.as_deref() == Some("2022-2250-Z")));

    let by_validator = filtered(AuditFilter {
        actor: Some("Nucleo di Valutazione".into()),
        ..AuditFilter::default()
    });
    assert_eq!(by_validator.len(), 2);
    assert!(by_validator
        .iter()
        .all(|e| e.event_type == "validation_recorded"));
    let by_manager = filtered(AuditFilter {
        actor: Some("Dirigente 2250".into()),
        ..AuditFilter::default()
    });
    assert_eq!(
        by_manager.len(),
        all.iter().filter(|e| e.actor == "Dirigente 2250").count()
    );
    assert_eq!(by_manager.len(), 6);

    let deadlines = filtered(AuditFilter {
        event_type: Some("deadline_revised".into()),
        ..AuditFilter::default()
    });
    assert_eq!(deadlines.len(), 2);

    // Record time, both ends inclusive: March 10 to April 5.
    let spring = filtered(AuditFilter {
        from: Some(at("2022-03-10")),
        to: Some(at("2022-04-05")),
        ..AuditFilter::default()
    });
    let types: Vec<&str> = spring.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types,
        [
            "phase_started",
            "phase_completed",
            "phase_completion_retracted"
        ]
    );
    let after_summer = filtered(AuditFilter {
        from: Some(at("2022-08-01")),
        ..AuditFilter::default()
    });
    assert_eq!(after_summer.len(), 3);

    // Criteria combine: the manager's completions in 2022-08.
    let combined = filtered(AuditFilter {
        unit: Some("2250".into()),
        actor: Some("Dirigente 2250".into()),
        event_type: Some("phase_completed".into()),
        from: Some(at("2022-07-01")),
        to: None,
    });
    assert_eq!(combined.len(), 2);
}

#[test]
fn a_revision_across_two_objectives_is_replayed_before_and_after_field_by_field() {
    let world = World::with_seed();
    let (a, b) = ("2022-2250-A", "2022-2250-B");
    world.on("2022-05-20");
    world.complete(a, 1, "2022-05-15").unwrap();
    world.on("2022-07-10");
    world.complete(a, 2, "2022-07-05").unwrap(); // after its deadline of 30/06
    world.on("2022-07-29");
    world
        .revise(
            2022,
            revision_182(vec![
                deadline(a, Some(2), "2022-07-31"),
                weights(b, &[(1, 40), (2, 20)]),
            ]),
        )
        .unwrap();
    world.on("2022-08-05");
    world.complete(a, 3, "2022-08-01").unwrap(); // later: in neither state

    let events = year_events(&world);
    let revisions = revision::list(&events).unwrap();
    assert_eq!(revisions.len(), 1);
    let summary = &revisions[0];
    assert_eq!(summary.act, ACT);
    assert_eq!(summary.act_date, Some(d("2022-07-28")));
    assert_eq!(summary.in_force_from, d("2022-07-28"));
    assert_eq!(summary.reason, "Ritardi nella consegna del software");
    assert_eq!(summary.actor, "Programmazione e Controllo");
    assert_eq!(summary.role, "admin");
    assert_eq!(summary.recorded_at, at("2022-07-29"));
    assert_eq!(summary.objectives, [a, b]);
    assert_eq!(summary.changes.len(), 2);
    assert_eq!(
        summary.events.len(),
        3,
        "revision_recorded and one event each"
    );
    assert_eq!(summary.events[0], summary.seq);

    let replay = revision::replay(&events, summary.id, d("2022-07-29"))
        .unwrap()
        .expect("the revision exists");
    assert_eq!(replay.at, d("2022-07-29"));
    assert_eq!(replay.touched.len(), 2);

    let ta = &replay.touched[0];
    assert_eq!(ta.key, a);
    let before_a = ta.before.as_ref().expect("A existed before");
    let (p2_before, p2_after) = (&before_a.phases[1], &ta.after.phases[1]);
    assert_eq!(p2_before.deadline, d("2022-06-30"));
    assert_eq!(p2_before.status, PhaseStatus::CompletedLate);
    assert_eq!(p2_after.deadline, d("2022-07-31"));
    assert_eq!(p2_after.original_deadline, d("2022-06-30"));
    assert_eq!(p2_after.status, PhaseStatus::CompletedOnTime);
    assert_eq!(
        ta.after.phases[2].completed_on, None,
        "a later event is left out"
    );
    assert_eq!(ta.after.version, before_a.version + 1);
    let score = |v: &traguardo_projections::ObjectiveView| serde_json::to_value(&v.score).unwrap();
    assert_eq!(
        score(before_a),
        json!({"at": "2022-07-29", "completed_pct": 40, "on_time_pct": 20,
               "outcome": "not_achieved", "validated_pct": null, "validated_outcome": null})
    );
    assert_eq!(
        score(&ta.after),
        json!({"at": "2022-07-29", "completed_pct": 40, "on_time_pct": 40,
               "outcome": "in_progress", "validated_pct": null, "validated_outcome": null})
    );
    assert_eq!(
        ta.diff,
        [
            FieldChange::new(
                "phases[2].deadline",
                json!("2022-06-30"),
                json!("2022-07-31")
            ),
            FieldChange::new(
                "phases[2].status",
                json!("completed_late"),
                json!("completed_on_time")
            ),
            FieldChange::new("score.on_time_pct", json!(20), json!(40)),
            FieldChange::new("score.outcome", json!("not_achieved"), json!("in_progress")),
        ]
    );

    let tb = &replay.touched[1];
    assert_eq!(tb.key, b);
    let before = tb.before.as_ref().expect("B existed before");
    let weights = |v: &traguardo_projections::ObjectiveView| {
        serde_json::to_value(v.phases.iter().map(|p| p.weight).collect::<Vec<_>>()).unwrap()
    };
    assert_eq!(weights(before), json!([30, 30, 40]));
    assert_eq!(weights(&tb.after), json!([40, 20, 40]));
    assert_eq!(
        tb.diff,
        [
            FieldChange::new("phases[1].weight", json!(30), json!(40)),
            FieldChange::new("phases[2].weight", json!(30), json!(20)),
        ]
    );

    // Evaluated before the act was in force, the revision changes nothing yet.
    let early = revision::replay(&events, summary.id, d("2022-07-27"))
        .unwrap()
        .unwrap();
    assert!(early.touched.iter().all(|t| t.diff.is_empty()));

    // The answer of GET /plans/{year}/revisions/{id}: the revision's fields flat.
    let json = serde_json::to_value(&replay).unwrap();
    assert_eq!(json["act"], ACT);
    assert_eq!(json["recorded_at"], "2022-07-29T09:00:00.000000Z");
    assert_eq!(json["touched"][0]["diff"][2]["field"], "score.on_time_pct");
    assert_eq!(json["changes"][0]["kind"], "deadline");

    // Walking the log step by step: A at the seq just before the revision.
    let before_seq = summary.seq - 1;
    let walked = objective_at(&events, a, before_seq).unwrap().unwrap();
    assert_eq!(walked.evaluate(d("2022-07-29")), *before_a);
    assert_eq!(
        objective_at(&events, "2022-2250-Z", before_seq).unwrap(),
        None
    );

    // An unknown revision is not an error, just absent.
    assert!(
        revision::replay(&events, uuid::Uuid::nil(), d("2022-07-29"))
            .unwrap()
            .is_none()
    );
}

#[test]
fn an_objective_added_by_a_revision_has_no_before_and_every_field_in_its_diff() {
    let world = World::with_seed();
    world.on("2022-07-29");
    world
        .revise(
            2022,
            revision_182(vec![RevisionChange::AddObjective {
                objective: Box::new(new_objective()),
            }]),
        )
        .unwrap();
    let events = year_events(&world);
    let id = revision::list(&events).unwrap()[0].id;
    let replay = revision::replay(&events, id, d("2022-12-31"))
        .unwrap()
        .unwrap();
    let added = &replay.touched[0];
    assert_eq!(added.key, "2022-2250-Z");
    assert!(added.before.is_none());
    assert!(added
        .diff
        .iter()
        .all(|c| c.from == Value::Null && !c.field.contains('.')));
    assert!(added.diff.contains(&FieldChange::new(
        "title",
        Value::Null,
        json!("Recupero evasione IMU")
    )));
}
