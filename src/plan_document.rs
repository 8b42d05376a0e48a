//! The plan document (contract, DESIGN.md §6): parsing, validation that reports
//! every problem at once with its path, and the events that load it.
//!
//! The document is walked as a JSON value rather than deserialized in one go, so
//! that one wrong field does not hide the next: every problem is collected, each
//! with its path (`objectives[2].phases[1].deadline`), and nothing is loaded unless
//! there are none. The serde types below describe the same document for its JSON
//! Schema (`seeds/plan.schema.json`), kept in step by a test.

use std::collections::{BTreeMap, BTreeSet};

use crate::commands::limits;
use crate::commands::shape::{self, PhaseShape, ShapeProblem};
pub use crate::error::FieldError;
use crate::AppError;
use chrono::NaiveDate;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use traguardo_events::domain::{ObjectiveEvent, PlanEvent};
use traguardo_events::model::{objective_stream, plan_stream};
use traguardo_events::model::{
    Hundredths, IndicatorKind, IndicatorSpec, ObjectiveSpec, PhaseSpec, Unit, UnitKind,
};
use traguardo_events::store::Until;
use traguardo_events::Store;

/// A plan document that passed validation, in domain types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidPlan {
    /// *Ente*.
    pub organisation: String,
    /// Year.
    pub year: i32,
    /// Title.
    pub title: String,
    /// *Elenco Responsabili*.
    pub units: Vec<Unit>,
    /// Objectives in document order.
    pub objectives: Vec<ObjectiveSpec>,
}

/// A required text: the importer trims it and refuses it empty.
const NOT_BLANK: &str = r"\S";

/// The plan document, for its JSON Schema and for writing documents out.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "Traguardo plan document (Piano degli Obiettivi)")]
pub struct PlanDocument {
    /// *Ente*, e.g. "Città di Alessandria".
    #[schemars(regex(pattern = NOT_BLANK))]
    pub organisation: String,
    /// Plan year.
    #[schemars(range(min = 1990, max = 2200))]
    pub year: i32,
    /// The plan's title.
    #[schemars(regex(pattern = NOT_BLANK))]
    pub title: String,
    /// The *Elenco Responsabili*: every unit an objective or phase may name.
    #[schemars(length(min = 1))]
    pub units: Vec<UnitDocument>,
    /// *Obiettivi*, in document order.
    #[schemars(length(min = 1))]
    pub objectives: Vec<ObjectiveDocument>,
}

/// A unit of the *Elenco Responsabili*.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnitDocument {
    /// Unit code, e.g. "2250".
    #[schemars(regex(pattern = NOT_BLANK))]
    pub code: String,
    /// Name as printed.
    #[schemars(regex(pattern = NOT_BLANK))]
    pub name: String,
    /// The accountable person, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager: Option<String>,
    /// *Dirigente*, *Responsabile in P.O.*, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager_title: Option<String>,
    /// `settore`, `servizio_autonomo`, `area` or `ufficio`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<UnitKindSchema>")]
    pub kind: Option<UnitKind>,
    /// The name as the Comune writes it in prose, without the *Elenco*'s
    /// "RESPONSABILE", e.g. "Servizio autonomo Polizia locale".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// The JSON Schema of [`UnitKind`] (the domain type carries no schemars).
#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
#[allow(dead_code)]
enum UnitKindSchema {
    /// *Settore*.
    Settore,
    /// *Servizio autonomo*.
    ServizioAutonomo,
    /// *Area*.
    Area,
    /// *Ufficio*.
    Ufficio,
}

/// An objective (*Obiettivo*).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ObjectiveDocument {
    /// Owning unit code (must be in `units`).
    #[schemars(regex(pattern = NOT_BLANK))]
    pub unit: String,
    /// Letter, unique per unit and year.
    #[schemars(regex(pattern = NOT_BLANK))]
    pub letter: String,
    /// Accountable manager.
    #[schemars(regex(pattern = NOT_BLANK))]
    pub manager: String,
    /// Title.
    #[schemars(regex(pattern = NOT_BLANK))]
    pub title: String,
    /// *Finalità strategiche*.
    #[serde(default)]
    pub strategic_purpose: String,
    /// *Direttive specifiche*.
    #[serde(default)]
    pub directives: String,
    /// *Fasi*, numbered 1..n, weights summing to exactly 100.
    #[schemars(length(min = 1))]
    pub phases: Vec<PhaseDocument>,
    /// *Scadenza finale*, YYYY-MM-DD.
    pub final_deadline: NaiveDate,
    /// *Risultato atteso*.
    #[serde(default)]
    pub expected_result: String,
    /// When it counts as achieved.
    #[serde(default)]
    pub achieved_when: String,
    /// When it counts as not achieved.
    #[serde(default)]
    pub not_achieved_when: String,
    /// *Indicatori di risultato*.
    #[serde(default)]
    pub indicators: Vec<IndicatorDocument>,
    /// *Vincoli*.
    #[serde(default)]
    pub constraints: String,
    /// *Risorse umane*.
    #[serde(default)]
    pub human_resources: String,
    /// *Risorse finanziarie*.
    #[serde(default)]
    pub financial_resources: String,
}

/// A phase (*Fase*).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PhaseDocument {
    /// 1..n.
    #[schemars(range(min = 1, max = 999))]
    pub number: u32,
    /// What the phase is.
    #[schemars(regex(pattern = NOT_BLANK))]
    pub description: String,
    /// *Incidenza %*: a percentage with at most two decimals (33.33), the
    /// phases of an objective summing to exactly 100. (Not `multipleOf: 0.01`:
    /// binary floating point makes 33.33 fail that test in standard validators.)
    #[schemars(range(min = 0, max = 100))]
    pub weight: f64,
    /// Unit codes (in `units`) or outside bodies by name.
    #[serde(default)]
    #[schemars(inner(regex(pattern = NOT_BLANK)))]
    pub involved: Vec<String>,
    /// *Scadenza prevista*, YYYY-MM-DD, not after the final deadline.
    pub deadline: NaiveDate,
}

/// An indicator (*Indicatore di risultato*).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IndicatorDocument {
    /// Short id, unique within the objective.
    #[schemars(regex(pattern = NOT_BLANK))]
    pub id: String,
    /// What it measures.
    #[schemars(regex(pattern = NOT_BLANK))]
    pub description: String,
    /// `ratio`, `threshold` or `qualitative`.
    pub kind: IndicatorKindDocument,
    /// Target percentage, when it has one: at most two decimals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 100))]
    pub target: Option<f64>,
}

/// How an indicator is read.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum IndicatorKindDocument {
    /// n° a / n° b.
    Ratio,
    /// A value against a threshold (≥ 50%).
    Threshold,
    /// A judgement in words.
    Qualitative,
}

impl From<&ValidPlan> for PlanDocument {
    /// The document that loads `plan` (weights and targets back to percentages).
    fn from(plan: &ValidPlan) -> Self {
        PlanDocument {
            organisation: plan.organisation.clone(),
            year: plan.year,
            title: plan.title.clone(),
            units: plan
                .units
                .iter()
                .map(|u| UnitDocument {
                    code: u.code.clone(),
                    name: u.name.clone(),
                    manager: u.manager.clone(),
                    manager_title: u.manager_title.clone(),
                    kind: u.kind,
                    label: u.label.clone(),
                })
                .collect(),
            objectives: plan
                .objectives
                .iter()
                .map(|o| ObjectiveDocument {
                    unit: o.unit.clone(),
                    letter: o.letter.clone(),
                    manager: o.manager.clone(),
                    title: o.title.clone(),
                    strategic_purpose: o.strategic_purpose.clone(),
                    directives: o.directives.clone(),
                    phases: o
                        .phases
                        .iter()
                        .map(|p| PhaseDocument {
                            number: p.number,
                            description: p.description.clone(),
                            weight: p.weight_hundredths.as_f64(),
                            involved: p.involved.clone(),
                            deadline: p.deadline,
                        })
                        .collect(),
                    final_deadline: o.final_deadline,
                    expected_result: o.expected_result.clone(),
                    achieved_when: o.achieved_when.clone(),
                    not_achieved_when: o.not_achieved_when.clone(),
                    indicators: o
                        .indicators
                        .iter()
                        .map(|i| IndicatorDocument {
                            id: i.id.clone(),
                            description: i.description.clone(),
                            kind: match i.kind {
                                IndicatorKind::Ratio => IndicatorKindDocument::Ratio,
                                IndicatorKind::Threshold => IndicatorKindDocument::Threshold,
                                IndicatorKind::Qualitative => IndicatorKindDocument::Qualitative,
                            },
                            target: i.target_hundredths.map(Hundredths::as_f64),
                        })
                        .collect(),
                    constraints: o.constraints.clone(),
                    human_resources: o.human_resources.clone(),
                    financial_resources: o.financial_resources.clone(),
                })
                .collect(),
        }
    }
}

/// The plan of `year` as it was loaded: its `plan_defined` event and the
/// definitions of the objectives loaded with it (what later revisions changed or
/// added is not part of it).
///
/// # Errors
/// [`AppError::NotFound`] when no plan of that year is loaded; a store error when
/// the log cannot be read or holds what it should not.
pub fn loaded_plan(store: &dyn Store, year: i32) -> Result<ValidPlan, AppError> {
    let defined = store
        .read_stream(&plan_stream(year), Until::Version(1))?
        .into_iter()
        .next()
        .ok_or_else(|| AppError::NotFound(format!("no plan for {year}")))?;
    let PlanEvent::PlanDefined {
        organisation,
        title,
        units,
        objectives: keys,
        ..
    } = defined.decode()?
    else {
        return Err(AppError::Internal(format!(
            "the first event of plan/{year} is not its definition"
        )));
    };
    let mut objectives = Vec::with_capacity(keys.len());
    for key in &keys {
        let first = store
            .read_stream(&objective_stream(key), Until::Version(1))?
            .into_iter()
            .next();
        match first.map(|e| e.decode::<ObjectiveEvent>()).transpose()? {
            Some(ObjectiveEvent::ObjectiveDefined { objective, .. }) => objectives.push(*objective),
            _ => {
                return Err(AppError::Internal(format!(
                    "objective {key} of plan {year} has no definition"
                )))
            }
        }
    }
    Ok(ValidPlan {
        organisation,
        year,
        title,
        units,
        objectives,
    })
}

/// The JSON Schema of the plan document, as published in `seeds/plan.schema.json`.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(PlanDocument);
    let mut text = serde_json::to_string_pretty(&schema).unwrap_or_default();
    text.push('\n');
    text
}

/// Parses and validates a plan document.
///
/// # Errors
/// Every problem found, each with its path; an empty list never.
pub fn parse(text: &str) -> Result<ValidPlan, Vec<FieldError>> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        vec![FieldError {
            field: "$".into(),
            message: format!("non è JSON valido: {e}"),
        }]
    })?;
    if let Some(problem) = duplicate_key(text.as_bytes()) {
        return Err(vec![problem]);
    }
    validate(&value)
}

/// The first key that a JSON object of `json` holds twice, as a problem naming
/// its path (`objectives[0].year`), if there is one. A [`Value`] keeps the last
/// of two equal keys, so a document read into one would silently lose the
/// first; the typed bodies refuse them (serde's "duplicate field"), and so do
/// plan documents and revisions, through this. Text that is not JSON is left to
/// the parser that reports it.
pub fn duplicate_key(json: &[u8]) -> Option<FieldError> {
    let found = std::cell::RefCell::new(None);
    let mut reader = serde_json::Deserializer::from_slice(json);
    let _ = serde::de::DeserializeSeed::deserialize(
        unique::Unique {
            path: "",
            found: &found,
        },
        &mut reader,
    );
    found.into_inner().map(|path: String| FieldError {
        message: "questa chiave compare due volte nello stesso oggetto".into(),
        field: path,
    })
}

/// A serde visitor that walks any JSON and stops at the first repeated key of an
/// object, leaving its path in `found`.
mod unique {
    use std::cell::RefCell;
    use std::collections::HashSet;
    use std::fmt;

    use serde::de::{DeserializeSeed, Deserializer, Error, MapAccess, SeqAccess, Visitor};

    pub(super) struct Unique<'a> {
        pub path: &'a str,
        pub found: &'a RefCell<Option<String>>,
    }

    impl<'de> DeserializeSeed<'de> for Unique<'_> {
        type Value = ();

        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_any(self)
        }
    }

    impl<'de> Visitor<'de> for Unique<'_> {
        type Value = ();

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("any JSON value")
        }

        fn visit_bool<E>(self, _: bool) -> Result<(), E> {
            Ok(())
        }
        fn visit_i64<E>(self, _: i64) -> Result<(), E> {
            Ok(())
        }
        fn visit_u64<E>(self, _: u64) -> Result<(), E> {
            Ok(())
        }
        fn visit_f64<E>(self, _: f64) -> Result<(), E> {
            Ok(())
        }
        fn visit_str<E>(self, _: &str) -> Result<(), E> {
            Ok(())
        }
        fn visit_unit<E>(self) -> Result<(), E> {
            Ok(())
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let mut i = 0usize;
            loop {
                let path = format!("{}[{i}]", self.path);
                let item = Unique {
                    path: &path,
                    found: self.found,
                };
                if seq.next_element_seed(item)?.is_none() {
                    return Ok(());
                }
                i += 1;
            }
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut seen = HashSet::new();
            while let Some(key) = map.next_key::<String>()? {
                let path = super::join(self.path, &key);
                if !seen.insert(key) {
                    *self.found.borrow_mut() = Some(path);
                    return Err(A::Error::custom("duplicate key"));
                }
                map.next_value_seed(Unique {
                    path: &path,
                    found: self.found,
                })?;
            }
            Ok(())
        }
    }
}

/// Validates a plan document already parsed as JSON.
///
/// # Errors
/// Every problem found, each with its path.
pub fn validate(value: &Value) -> Result<ValidPlan, Vec<FieldError>> {
    let mut w = Walker::default();
    let plan = w.plan(value);
    match plan {
        Some(plan) if w.errors.is_empty() => Ok(plan),
        _ => {
            if w.errors.is_empty() {
                w.error("$", "il documento non è un piano valido");
            }
            if w.more > 0 {
                w.errors.push(FieldError {
                    field: "$".into(),
                    message: format!("e altri {} problemi non elencati", w.more),
                });
            }
            Err(w.errors)
        }
    }
}

/// The most problems a document reports one by one; the rest are counted, so
/// that a megabyte of bad items answers a page, not tens of megabytes.
const REPORTED: usize = 200;

#[derive(Default)]
struct Walker {
    errors: Vec<FieldError>,
    /// Problems found beyond [`REPORTED`].
    more: usize,
}

impl Walker {
    fn error(&mut self, field: impl Into<String>, message: impl Into<String>) {
        if self.errors.len() >= REPORTED {
            self.more += 1;
            return;
        }
        self.errors.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    fn object<'v>(
        &mut self,
        value: &'v Value,
        path: &str,
        allowed: &[&str],
    ) -> Option<&'v Map<String, Value>> {
        let Some(map) = value.as_object() else {
            self.error(path, "deve essere un oggetto");
            return None;
        };
        for key in map.keys() {
            if !allowed.contains(&key.as_str()) {
                self.error(join(path, key), "campo sconosciuto");
            }
        }
        Some(map)
    }

    fn text(
        &mut self,
        map: &Map<String, Value>,
        path: &str,
        key: &str,
        required: bool,
    ) -> Option<String> {
        let field = join(path, key);
        match map.get(key) {
            None | Some(Value::Null) if required => {
                self.error(field, "è obbligatorio");
                None
            }
            None | Some(Value::Null) => Some(String::new()),
            Some(Value::String(s)) if required && s.trim().is_empty() => {
                self.error(field, "non può essere vuoto");
                None
            }
            Some(Value::String(s)) => Some(s.trim().to_string()),
            Some(_) => {
                self.error(field, "deve essere un testo");
                None
            }
        }
    }

    fn optional_text(
        &mut self,
        map: &Map<String, Value>,
        path: &str,
        key: &str,
    ) -> Option<Option<String>> {
        match map.get(key) {
            None | Some(Value::Null) => Some(None),
            Some(Value::String(s)) if s.trim().is_empty() => Some(None),
            Some(Value::String(s)) => Some(Some(s.trim().to_string())),
            Some(_) => {
                self.error(join(path, key), "deve essere un testo");
                None
            }
        }
    }

    fn array<'v>(
        &mut self,
        map: &'v Map<String, Value>,
        path: &str,
        key: &str,
        required: bool,
    ) -> Option<&'v [Value]> {
        match map.get(key) {
            None | Some(Value::Null) if required => {
                self.error(join(path, key), "è obbligatorio");
                None
            }
            None | Some(Value::Null) => Some(&[]),
            Some(Value::Array(items)) if required && items.is_empty() => {
                self.error(join(path, key), "non può essere vuoto");
                None
            }
            Some(Value::Array(items)) => Some(items),
            Some(_) => {
                self.error(join(path, key), "deve essere un elenco");
                None
            }
        }
    }

    fn date(&mut self, map: &Map<String, Value>, path: &str, key: &str) -> Option<NaiveDate> {
        let field = join(path, key);
        match map.get(key) {
            None | Some(Value::Null) => {
                self.error(field, "è obbligatorio");
                None
            }
            Some(Value::String(s)) => match parse_date(s) {
                Ok(date) => Some(date),
                Err(message) => {
                    self.error(field, message);
                    None
                }
            },
            Some(_) => {
                self.error(field, "deve essere una data scritta AAAA-MM-GG");
                None
            }
        }
    }

    fn percentage(
        &mut self,
        map: &Map<String, Value>,
        path: &str,
        key: &str,
        required: bool,
    ) -> Option<Option<Hundredths>> {
        let field = join(path, key);
        match map.get(key) {
            None | Some(Value::Null) if required => {
                self.error(field, "è obbligatorio");
                None
            }
            None | Some(Value::Null) => Some(None),
            Some(Value::Number(n)) => match Hundredths::from_json(n) {
                Ok(h) if h < Hundredths::ZERO => {
                    self.error(field, format!("{n} è negativo"));
                    None
                }
                Ok(h) if h > Hundredths::HUNDRED => {
                    self.error(field, format!("{n} è più di 100"));
                    None
                }
                Ok(h) => Some(Some(h)),
                Err(message) => {
                    self.error(field, message);
                    None
                }
            },
            Some(_) => {
                self.error(field, "deve essere un numero con al più due decimali");
                None
            }
        }
    }

    fn plan(&mut self, value: &Value) -> Option<ValidPlan> {
        let map = self.object(
            value,
            "",
            &["organisation", "year", "title", "units", "objectives"],
        )?;
        let organisation = self.text(map, "", "organisation", true);
        let title = self.text(map, "", "title", true);
        let year = match map.get("year") {
            None | Some(Value::Null) => {
                self.error("year", "è obbligatorio");
                None
            }
            Some(Value::Number(n)) => match n.as_i64().filter(|y| (1990..=2200).contains(y)) {
                Some(y) => Some(y as i32),
                None => {
                    self.error("year", format!("{n} non è l'anno di un piano"));
                    None
                }
            },
            Some(_) => {
                self.error("year", "deve essere un numero");
                None
            }
        };
        let mut codes = BTreeSet::new();
        let units = self.units(map, &mut codes);
        // Codes are checked against every unit whose code was readable, even if
        // another field of that unit, or another unit, was wrong.
        let check_codes = matches!(map.get("units"), Some(Value::Array(_)));
        let mut objectives = Vec::new();
        let mut letters: BTreeMap<(String, String), usize> = BTreeMap::new();
        for (i, item) in self
            .array(map, "", "objectives", true)
            .unwrap_or(&[])
            .iter()
            .enumerate()
        {
            let path = format!("objectives[{i}]");
            // The letter is checked on the raw text, so that a problem elsewhere in
            // the objective does not hide a repeated letter.
            let raw = |key: &str| {
                item.get(key)
                    .and_then(Value::as_str)
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
            };
            if let (Some(unit), Some(letter)) = (raw("unit"), raw("letter")) {
                if let Some(first) = letters.get(&(unit.clone(), letter.clone())) {
                    self.error(
                        format!("{path}.letter"),
                        format!(
                            "l'obiettivo {letter} dell'unità {unit} è già definito in objectives[{first}]"
                        ),
                    );
                } else {
                    letters.insert((unit, letter), i);
                }
            }
            if let Some(objective) =
                self.objective(item, &path, year.unwrap_or(0), &codes, check_codes)
            {
                objectives.push(objective);
            }
        }
        Some(ValidPlan {
            organisation: organisation?,
            year: year?,
            title: title?,
            units: units?,
            objectives,
        })
    }

    /// The units, if all are valid; `codes` gets every readable code either way.
    fn units(
        &mut self,
        map: &Map<String, Value>,
        codes: &mut BTreeSet<String>,
    ) -> Option<Vec<Unit>> {
        let items = self.array(map, "", "units", true)?;
        let mut units = Vec::new();
        let mut seen = BTreeMap::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let path = format!("units[{i}]");
            let Some(unit) = self.object(
                item,
                &path,
                &["code", "name", "manager", "manager_title", "kind", "label"],
            ) else {
                ok = false;
                continue;
            };
            let code = self.text(unit, &path, "code", true);
            let name = self.text(unit, &path, "name", true);
            let manager = self.optional_text(unit, &path, "manager");
            let manager_title = self.optional_text(unit, &path, "manager_title");
            let kind = self.unit_kind(unit, &path);
            let label = self.optional_text(unit, &path, "label");
            if let Some(Some(label)) = &label {
                if let Some(problem) =
                    limits::text(&join(&path, "label"), label, limits::NAME_CHARS)
                {
                    self.errors.push(problem);
                    ok = false;
                }
            }
            if let Some(code) = &code {
                codes.insert(code.clone());
                if let Some(first) = seen.insert(code.clone(), i) {
                    self.error(
                        format!("{path}.code"),
                        format!("l'unità {code} è già elencata in units[{first}]"),
                    );
                }
            }
            match (code, name, manager, manager_title, kind, label) {
                (
                    Some(code),
                    Some(name),
                    Some(manager),
                    Some(manager_title),
                    Some(kind),
                    Some(label),
                ) => units.push(Unit {
                    code,
                    name,
                    manager,
                    manager_title,
                    kind,
                    label,
                }),
                _ => ok = false,
            }
        }
        ok.then_some(units)
    }

    /// A unit's optional `kind`: none when absent, a problem when unknown.
    fn unit_kind(&mut self, map: &Map<String, Value>, path: &str) -> Option<Option<UnitKind>> {
        match map.get("kind") {
            None | Some(Value::Null) => Some(None),
            Some(Value::String(s)) => match s.trim().parse::<UnitKind>() {
                Ok(kind) => Some(Some(kind)),
                Err(message) => {
                    self.error(join(path, "kind"), message);
                    None
                }
            },
            Some(_) => {
                self.error(
                    join(path, "kind"),
                    "deve essere settore, servizio_autonomo, area o ufficio",
                );
                None
            }
        }
    }

    fn objective(
        &mut self,
        value: &Value,
        path: &str,
        year: i32,
        codes: &BTreeSet<String>,
        check_codes: bool,
    ) -> Option<ObjectiveSpec> {
        let map = self.object(
            value,
            path,
            &[
                "unit",
                "letter",
                "manager",
                "title",
                "strategic_purpose",
                "directives",
                "phases",
                "final_deadline",
                "expected_result",
                "achieved_when",
                "not_achieved_when",
                "indicators",
                "constraints",
                "human_resources",
                "financial_resources",
            ],
        )?;
        let unit = self.text(map, path, "unit", true);
        if let Some(unit) = &unit {
            if check_codes && !codes.contains(unit) {
                self.error(
                    join(path, "unit"),
                    format!("l'unità {unit} non è tra le unità (units)"),
                );
            }
        }
        let letter = self.text(map, path, "letter", true);
        let manager = self.text(map, path, "manager", true);
        let title = self.text(map, path, "title", true);
        let strategic_purpose = self.text(map, path, "strategic_purpose", false);
        let directives = self.text(map, path, "directives", false);
        let final_deadline = self.date(map, path, "final_deadline");
        let phases = self.phases(map, path, final_deadline, codes, check_codes);
        let expected_result = self.text(map, path, "expected_result", false);
        let achieved_when = self.text(map, path, "achieved_when", false);
        let not_achieved_when = self.text(map, path, "not_achieved_when", false);
        let indicators = self.indicators(map, path);
        let constraints = self.text(map, path, "constraints", false);
        let human_resources = self.text(map, path, "human_resources", false);
        let financial_resources = self.text(map, path, "financial_resources", false);
        Some(ObjectiveSpec {
            year,
            unit: unit?,
            letter: letter?,
            manager: manager?,
            title: title?,
            strategic_purpose: strategic_purpose?,
            directives: directives?,
            phases: phases?,
            final_deadline: final_deadline?,
            expected_result: expected_result?,
            achieved_when: achieved_when?,
            not_achieved_when: not_achieved_when?,
            indicators: indicators?,
            constraints: constraints?,
            human_resources: human_resources?,
            financial_resources: financial_resources?,
        })
    }

    fn phases(
        &mut self,
        map: &Map<String, Value>,
        path: &str,
        final_deadline: Option<NaiveDate>,
        codes: &BTreeSet<String>,
        check_codes: bool,
    ) -> Option<Vec<PhaseSpec>> {
        let items = self.array(map, path, "phases", true)?;
        // The phases that could be read, with their place in the document.
        let mut read: Vec<(usize, PhaseSpec)> = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let ppath = format!("{path}.phases[{i}]");
            match self.phase(item, &ppath, codes, check_codes) {
                Some(phase) => read.push((i, phase)),
                None => ok = false,
            }
        }
        let shapes: Vec<PhaseShape> = read
            .iter()
            .map(|(_, p)| PhaseShape {
                number: p.number,
                weight: p.weight_hundredths,
                deadline: p.deadline,
            })
            .collect();
        let final_deadline = final_deadline.unwrap_or(NaiveDate::MAX);
        for problem in shape::check(&shapes, final_deadline) {
            let field = match &problem {
                ShapeProblem::WeightOutOfRange { index, .. } => {
                    format!("{path}.phases[{}].weight", read[*index].0)
                }
                ShapeProblem::DeadlineAfterFinal { index, .. } => {
                    format!("{path}.phases[{}].deadline", read[*index].0)
                }
                // Numbering and the sum mean something only for the whole list.
                ShapeProblem::Numbering { .. } | ShapeProblem::WeightsSum { .. } if !ok => continue,
                ShapeProblem::Numbering { .. } | ShapeProblem::WeightsSum { .. } => {
                    join(path, "phases")
                }
            };
            self.error(field, problem.to_string());
            ok = false;
        }
        let mut phases: Vec<PhaseSpec> = read.into_iter().map(|(_, p)| p).collect();
        phases.sort_by_key(|p| p.number);
        ok.then_some(phases)
    }

    fn phase(
        &mut self,
        value: &Value,
        path: &str,
        codes: &BTreeSet<String>,
        check_codes: bool,
    ) -> Option<PhaseSpec> {
        let map = self.object(
            value,
            path,
            &["number", "description", "weight", "involved", "deadline"],
        )?;
        let number = match map.get("number") {
            Some(Value::Number(n)) => match n.as_u64().filter(|n| (1..=999).contains(n)) {
                Some(n) => Some(n as u32),
                None => {
                    self.error(
                        join(path, "number"),
                        format!("{n} non è il numero di una fase (1, 2, …)"),
                    );
                    None
                }
            },
            None | Some(Value::Null) => {
                self.error(join(path, "number"), "è obbligatorio");
                None
            }
            Some(_) => {
                self.error(join(path, "number"), "deve essere un numero");
                None
            }
        };
        let description = self.text(map, path, "description", true);
        let weight = self.percentage(map, path, "weight", true).flatten();
        let involved = self.involved(map, path, codes, check_codes);
        let deadline = self.date(map, path, "deadline");
        Some(PhaseSpec {
            number: number?,
            description: description?,
            weight_hundredths: weight?,
            involved: involved?,
            deadline: deadline?,
        })
    }

    fn involved(
        &mut self,
        map: &Map<String, Value>,
        path: &str,
        codes: &BTreeSet<String>,
        check_codes: bool,
    ) -> Option<Vec<String>> {
        let items = self.array(map, path, "involved", false)?;
        if let Some(problem) = crate::commands::limits::list(&format!("{path}.involved"), items) {
            self.errors.push(problem);
            return None;
        }
        let mut involved = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let field = format!("{path}.involved[{i}]");
            match item.as_str().map(str::trim) {
                Some("") | None => {
                    self.error(
                        field,
                        "deve essere il codice di un'unità o il nome di un ente esterno",
                    );
                    ok = false;
                }
                Some(code) => {
                    let numeric = code.bytes().all(|b| b.is_ascii_digit());
                    if numeric && check_codes && !codes.contains(code) {
                        self.error(field, format!("l'unità {code} non è tra le unità (units)"));
                        ok = false;
                    }
                    involved.push(code.to_string());
                }
            }
        }
        ok.then_some(involved)
    }

    fn indicators(&mut self, map: &Map<String, Value>, path: &str) -> Option<Vec<IndicatorSpec>> {
        let items = self.array(map, path, "indicators", false)?;
        let mut indicators: Vec<IndicatorSpec> = Vec::new();
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let ipath = format!("{path}.indicators[{i}]");
            let Some(imap) = self.object(item, &ipath, &["id", "description", "kind", "target"])
            else {
                ok = false;
                continue;
            };
            let id = self.text(imap, &ipath, "id", true);
            if let Some(id) = &id {
                if indicators.iter().any(|x| &x.id == id) {
                    self.error(
                        join(&ipath, "id"),
                        format!("l'indicatore {id} è definito due volte"),
                    );
                    ok = false;
                }
            }
            let description = self.text(imap, &ipath, "description", true);
            let kind = match imap.get("kind").and_then(Value::as_str) {
                Some("ratio") => Some(IndicatorKind::Ratio),
                Some("threshold") => Some(IndicatorKind::Threshold),
                Some("qualitative") => Some(IndicatorKind::Qualitative),
                _ => {
                    self.error(
                        join(&ipath, "kind"),
                        "deve essere ratio, threshold o qualitative",
                    );
                    None
                }
            };
            let target = self.percentage(imap, &ipath, "target", false);
            match (id, description, kind, target) {
                (Some(id), Some(description), Some(kind), Some(target_hundredths)) => indicators
                    .push(IndicatorSpec {
                        id,
                        description,
                        kind,
                        target_hundredths,
                    }),
                _ => ok = false,
            }
        }
        ok.then_some(indicators)
    }
}

/// Parses a `YYYY-MM-DD` date that exists.
///
/// # Errors
/// A plain message naming the text.
pub fn parse_date(text: &str) -> Result<NaiveDate, String> {
    let shaped = text.len() == 10
        && text.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    if !shaped {
        return Err(format!("{text:?} non è una data scritta AAAA-MM-GG"));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| format!("{text} non è una data che esiste"))
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Validates one objective of a revision's `add_objective`, as in a plan document
/// of `year` whose units are `unit_codes`.
///
/// # Errors
/// Every problem found, with paths under `path`.
pub fn parse_objective(
    value: &Value,
    path: &str,
    year: i32,
    unit_codes: &BTreeSet<String>,
) -> Result<ObjectiveSpec, Vec<FieldError>> {
    let mut w = Walker::default();
    let objective = w.objective(value, path, year, unit_codes, true);
    match objective {
        Some(objective) if w.errors.is_empty() => Ok(objective),
        _ => Err(w.errors),
    }
}

/// Validates one phase of a revision's `add_phase` (its deadline is checked
/// against the final deadline once the whole revision is applied).
///
/// # Errors
/// Every problem found, with paths under `path`.
pub fn parse_phase(
    value: &Value,
    path: &str,
    unit_codes: &BTreeSet<String>,
) -> Result<PhaseSpec, Vec<FieldError>> {
    let mut w = Walker::default();
    let phase = w.phase(value, path, unit_codes, true);
    match phase {
        Some(phase) if w.errors.is_empty() => Ok(phase),
        _ => Err(w.errors),
    }
}

/// Reads a percentage written as a JSON number with at most two decimals.
///
/// # Errors
/// A problem at `path`.
pub fn parse_weight(value: &Value, path: &str) -> Result<Hundredths, FieldError> {
    let mut w = Walker::default();
    let mut map = Map::new();
    map.insert("weight".into(), value.clone());
    match w.percentage(&map, "", "weight", true) {
        Some(Some(h)) => Ok(h),
        _ => Err(w
            .errors
            .pop()
            .map(|e| FieldError::new(path, e.message))
            .unwrap_or_else(|| FieldError::new(path, "deve essere un peso"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_given_twice_is_refused_with_its_path() {
        let seed = crate::http::DEMO_PLAN;
        assert!(parse(seed).is_ok(), "the seed has no repeated key");
        let twice = seed.replacen("\"year\": 2022,", "\"year\": 2022, \"year\": 2023,", 1);
        assert_ne!(twice, seed, "the seed names its year as the test expects");
        let errors = parse(&twice).expect_err("a repeated key is refused");
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].field, "year");
        assert!(errors[0].message.contains("due volte"), "{errors:?}");
    }

    #[test]
    fn a_repeated_key_deep_inside_is_named_by_its_path() {
        let json = br#"{"objectives": [{"unit": "2250"}, {"phases": [{"number": 1, "weight": 20, "weight": 80}]}]}"#;
        let problem = duplicate_key(json).expect("found");
        assert_eq!(problem.field, "objectives[1].phases[0].weight");
        assert!(duplicate_key(br#"{"a": {"b": 1}, "c": {"b": 2}}"#).is_none());
        assert!(duplicate_key(b"not json").is_none());
    }
}
