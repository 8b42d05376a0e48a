//! Plain domain values carried by events and shared by import, projections and the
//! API. Percentages are exact integer hundredths ([`Hundredths`]): no floating point
//! is ever stored.

use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// An exact decimal with two places, stored as an integer number of hundredths:
/// *Incidenza %* 33.33 is `Hundredths(3333)`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(transparent)]
#[schema(value_type = i64)]
pub struct Hundredths(pub i64);

impl Hundredths {
    /// 100%.
    pub const HUNDRED: Hundredths = Hundredths(10_000);
    /// 0%.
    pub const ZERO: Hundredths = Hundredths(0);

    /// Parses a decimal written with at most two decimals (`20`, `33.33`, `-1.5`).
    ///
    /// # Errors
    /// A plain message when the text is not such a number.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (negative, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        let fraction = fraction.trim_end_matches('0');
        if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{text} is not a decimal number"));
        }
        if !fraction.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{text} is not a decimal number"));
        }
        if fraction.len() > 2 {
            return Err(format!("{text} has more than two decimals"));
        }
        let whole: i64 = whole
            .parse()
            .ok()
            .filter(|w: &i64| *w < 1_000_000_000_000)
            .ok_or_else(|| format!("{text} is too large"))?;
        let fraction: i64 = format!("{fraction:0<2}").parse().unwrap_or(0);
        let value = whole * 100 + fraction;
        Ok(Hundredths(if negative { -value } else { value }))
    }

    /// Parses a JSON number (as serde_json writes it back, the shortest form that
    /// reads as the same double, which is the text written for ≤ 2 decimals).
    ///
    /// # Errors
    /// A plain message when it has more than two decimals or is out of range.
    pub fn from_json(number: &serde_json::Number) -> Result<Self, String> {
        if let Some(i) = number.as_i64() {
            return i
                .checked_mul(100)
                .map(Hundredths)
                .ok_or_else(|| format!("{i} is too large"));
        }
        Hundredths::parse(&number.to_string())
    }

    /// The value as a float, for answers only (rounded to two decimals already).
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / 100.0
    }

    /// `numerator / denominator` as a percentage, exact in 128-bit arithmetic and
    /// rounded half up to hundredths; none for a zero denominator or a result
    /// too large to hold.
    pub fn percent_of(numerator: u64, denominator: u64) -> Option<Hundredths> {
        if denominator == 0 {
            return None;
        }
        let (n, d) = (u128::from(numerator) * 10_000, u128::from(denominator));
        let q = (2 * n + d) / (2 * d);
        i64::try_from(q).ok().map(Hundredths)
    }

    /// `self * numerator / denominator`, rounded half away from zero to hundredths.
    pub fn scale(self, numerator: i64, denominator: i64) -> Hundredths {
        if denominator == 0 {
            return Hundredths::ZERO;
        }
        let n = self.0 as i128 * numerator as i128;
        let d = denominator as i128;
        let q = (2 * n + d.signum() * n.signum() * d.abs()) / (2 * d);
        Hundredths(q as i64)
    }
}

impl fmt::Display for Hundredths {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let (whole, cents) = (abs / 100, abs % 100);
        if cents == 0 {
            write!(f, "{sign}{whole}")
        } else if cents % 10 == 0 {
            write!(f, "{sign}{whole}.{}", cents / 10)
        } else {
            write!(f, "{sign}{whole}.{cents:02}")
        }
    }
}

impl std::iter::Sum for Hundredths {
    fn sum<I: Iterator<Item = Self>>(iter: I) -> Self {
        Hundredths(iter.map(|h| h.0).sum())
    }
}

impl std::ops::Add for Hundredths {
    type Output = Hundredths;
    fn add(self, rhs: Self) -> Self {
        Hundredths(self.0 + rhs.0)
    }
}

/// A unit (*Settore* / *Servizio Autonomo*) of the *Elenco Responsabili*.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Unit {
    /// Its code, e.g. `2250`.
    pub code: String,
    /// Its name as printed.
    pub name: String,
    /// The accountable person (*Dirigente* / *Responsabile in P.O.*), if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager: Option<String>,
    /// The manager's title, e.g. `Dirigente`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manager_title: Option<String>,
    /// What kind of unit it is (*Settore*, *Servizio autonomo*, …), if the plan
    /// says. Absent from plans loaded before it existed, and then not written, so
    /// that their events hash as they always did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<UnitKind>,
    /// The name as the Comune writes it in prose, e.g. "Servizio autonomo Polizia
    /// locale" (`name` keeps the *Elenco*'s capitals and its "RESPONSABILE").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

impl Unit {
    /// The name to show people: the label when the plan gives one, else the
    /// name as printed in the *Elenco*.
    pub fn display_name(&self) -> &str {
        self.label.as_deref().unwrap_or(&self.name)
    }
}

/// The kind of an organisational unit, in the Comune's own words.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum UnitKind {
    /// *Settore*, headed by a *Dirigente*.
    Settore,
    /// *Servizio autonomo*, outside the Settori.
    ServizioAutonomo,
    /// *Area*, grouping Settori.
    Area,
    /// *Ufficio*.
    Ufficio,
}

impl UnitKind {
    /// Every kind, in the order of the organisation chart.
    pub const ALL: [UnitKind; 4] = [
        UnitKind::Settore,
        UnitKind::ServizioAutonomo,
        UnitKind::Area,
        UnitKind::Ufficio,
    ];

    /// The word written in documents: `settore`, `servizio_autonomo`, …
    pub fn as_str(self) -> &'static str {
        match self {
            UnitKind::Settore => "settore",
            UnitKind::ServizioAutonomo => "servizio_autonomo",
            UnitKind::Area => "area",
            UnitKind::Ufficio => "ufficio",
        }
    }

    /// The Italian word people read: "Settore", "Servizio autonomo", …
    pub fn italian(self) -> &'static str {
        match self {
            UnitKind::Settore => "Settore",
            UnitKind::ServizioAutonomo => "Servizio autonomo",
            UnitKind::Area => "Area",
            UnitKind::Ufficio => "Ufficio",
        }
    }
}

impl std::str::FromStr for UnitKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        UnitKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "{s:?} non è un tipo di struttura: settore, servizio_autonomo, area o ufficio"
                )
            })
    }
}

impl fmt::Display for UnitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A phase (*Fase*) as defined: description, weight, involved units, deadline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PhaseSpec {
    /// 1..n within the objective.
    pub number: u32,
    /// What the phase is.
    pub description: String,
    /// *Incidenza %*, in hundredths of a percent.
    pub weight_hundredths: Hundredths,
    /// *Codifica responsabili coinvolti*: unit codes or outside bodies.
    pub involved: Vec<String>,
    /// *Scadenza prevista*.
    pub deadline: NaiveDate,
}

/// How an indicator (*Indicatore di risultato*) is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IndicatorKind {
    /// n° a / n° b.
    Ratio,
    /// A value against a threshold (≥ 50%).
    Threshold,
    /// A judgement in words.
    Qualitative,
}

/// An indicator as defined in the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IndicatorSpec {
    /// Short id, unique within the objective.
    pub id: String,
    /// What it measures.
    pub description: String,
    /// Its kind.
    pub kind: IndicatorKind,
    /// The target, in hundredths (100% = 10000), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_hundredths: Option<Hundredths>,
}

/// A progress entry loaded after the fact by the control office (*caricamento
/// storico*): a Comune adopting Traguardo in the middle of a year, or loading a
/// past one, declares on what authority and for whom. Such entries raise no
/// late-registration flag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Backfill {
    /// The act that orders the loading, e.g. "Determinazione n. 12 del 10/01/2023".
    pub act: String,
    /// Why the entry is loaded now.
    pub reason: String,
    /// The manager the entry is loaded for, when it is not the one of the unit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<String>,
}

/// An objective (*Obiettivo*) as defined in the plan or added by a revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ObjectiveSpec {
    /// Plan year.
    pub year: i32,
    /// Owning unit code.
    pub unit: String,
    /// The letter, unique per unit and year.
    pub letter: String,
    /// Accountable manager.
    pub manager: String,
    /// Title.
    pub title: String,
    /// *Finalità strategiche*.
    pub strategic_purpose: String,
    /// *Direttive specifiche*.
    pub directives: String,
    /// *Fasi*, numbered 1..n.
    pub phases: Vec<PhaseSpec>,
    /// *Scadenza finale*.
    pub final_deadline: NaiveDate,
    /// *Risultato atteso*.
    pub expected_result: String,
    /// When it counts as achieved.
    pub achieved_when: String,
    /// When it counts as not achieved.
    pub not_achieved_when: String,
    /// *Indicatori di risultato*.
    pub indicators: Vec<IndicatorSpec>,
    /// *Vincoli*.
    pub constraints: String,
    /// *Risorse umane*.
    pub human_resources: String,
    /// *Risorse finanziarie*.
    pub financial_resources: String,
}

impl ObjectiveSpec {
    /// The objective's key, `{year}-{unit}-{letter}`.
    pub fn key(&self) -> String {
        objective_key(self.year, &self.unit, &self.letter)
    }
}

/// `{year}-{unit}-{letter}`, e.g. `2022-2250-A`.
pub fn objective_key(year: i32, unit: &str, letter: &str) -> String {
    format!("{year}-{unit}-{letter}")
}

/// The stream of an objective: `objective/2022-2250-A`.
pub fn objective_stream(key: &str) -> String {
    format!("objective/{key}")
}

/// The stream of a plan year: `plan/2022`.
pub fn plan_stream(year: i32) -> String {
    format!("plan/{year}")
}

/// The stream of the organisation's tokens and actors.
pub const ORG_STREAM: &str = "org";

/// Who may act, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// *Programmazione e Controllo*: loads plans, records revisions, issues tokens.
    Admin,
    /// *Dirigente*: records progress for the units of the token.
    Manager,
    /// *Nucleo di Valutazione*: validates.
    Validator,
    /// Reads everything.
    Auditor,
}

impl Role {
    /// The role string written on events.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Manager => "manager",
            Role::Validator => "validator",
            Role::Auditor => "auditor",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "admin" => Ok(Role::Admin),
            "manager" => Ok(Role::Manager),
            "validator" => Ok(Role::Validator),
            "auditor" => Ok(Role::Auditor),
            other => Err(format!(
                "unknown role {other:?}: expected admin, manager, validator or auditor"
            )),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The stage of a validation by the *Nucleo di Valutazione*.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ValidationStage {
    /// Ex ante, of the plan (*Visto di validazione*).
    Plan,
    /// Ex post, of the results.
    Final,
}

/// What the *Nucleo* decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ValidationOutcome {
    /// Approved.
    Approved,
    /// Rejected.
    Rejected,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ratio_is_exact_however_large_its_terms() {
        assert_eq!(Hundredths::percent_of(187, 200), Some(Hundredths(9350)));
        assert_eq!(Hundredths::percent_of(1, 3), Some(Hundredths(3333)));
        assert_eq!(Hundredths::percent_of(2, 3), Some(Hundredths(6667)));
        assert_eq!(
            Hundredths::percent_of(u64::MAX, u64::MAX),
            Some(Hundredths::HUNDRED)
        );
        assert_eq!(Hundredths::percent_of(u64::MAX, 1), None);
        assert_eq!(Hundredths::percent_of(5, 0), None);
    }

    #[test]
    fn hundredths_parse_two_decimals_exactly() {
        assert_eq!(Hundredths::parse("33.33"), Ok(Hundredths(3333)));
        assert_eq!(Hundredths::parse("20"), Ok(Hundredths(2000)));
        assert_eq!(Hundredths::parse("0.5"), Ok(Hundredths(50)));
        assert_eq!(Hundredths::parse("-1.25"), Ok(Hundredths(-125)));
        assert!(Hundredths::parse("33.333").is_err());
        assert!(Hundredths::parse("1e2").is_err());
        assert!(Hundredths::parse("").is_err());
    }

    #[test]
    fn hundredths_read_json_numbers_as_written() {
        let n: serde_json::Number = serde_json::from_str("33.34").unwrap();
        assert_eq!(Hundredths::from_json(&n), Ok(Hundredths(3334)));
        let n: serde_json::Number = serde_json::from_str("33.333").unwrap();
        assert!(Hundredths::from_json(&n).is_err());
        let n: serde_json::Number = serde_json::from_str("100.0").unwrap();
        assert_eq!(Hundredths::from_json(&n), Ok(Hundredths::HUNDRED));
    }

    #[test]
    fn hundredths_display_without_trailing_zeros() {
        assert_eq!(Hundredths(3333).to_string(), "33.33");
        assert_eq!(Hundredths(2000).to_string(), "20");
        assert_eq!(Hundredths(2050).to_string(), "20.5");
        assert_eq!(Hundredths(-5).to_string(), "-0.05");
    }

    #[test]
    fn a_unit_without_kind_or_label_serializes_as_before_and_shows_its_name() {
        let unit: Unit =
            serde_json::from_str(r#"{"code":"2250","name":"RESPONSABILE X"}"#).unwrap();
        assert_eq!(unit.kind, None);
        assert_eq!(unit.display_name(), "RESPONSABILE X");
        assert_eq!(
            serde_json::to_string(&unit).unwrap(),
            r#"{"code":"2250","name":"RESPONSABILE X"}"#
        );
        let labelled = Unit {
            kind: Some(UnitKind::ServizioAutonomo),
            label: Some("Servizio autonomo Polizia locale".into()),
            ..unit
        };
        assert_eq!(labelled.display_name(), "Servizio autonomo Polizia locale");
        assert_eq!(
            serde_json::to_value(&labelled).unwrap()["kind"],
            "servizio_autonomo"
        );
        assert_eq!(UnitKind::ServizioAutonomo.italian(), "Servizio autonomo");
        assert_eq!("area".parse::<UnitKind>(), Ok(UnitKind::Area));
        assert!("Settore".parse::<UnitKind>().is_err());
    }

    #[test]
    fn hundredths_scale_rounds_half_away_from_zero() {
        // 60 of 80 rescaled to 100: 75.
        assert_eq!(Hundredths(6000).scale(10_000, 8_000), Hundredths(7500));
        // 20 / 30 * 100 = 66.666… → 66.67
        assert_eq!(Hundredths(2000).scale(10_000, 3_000), Hundredths(6667));
    }
}
