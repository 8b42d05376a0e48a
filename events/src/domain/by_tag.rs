//! Decoding stored events by their `type` column, without buffering.
//!
//! The domain enums are tagged by `type` inside the object (`#[serde(tag = "type")]`),
//! and serde's derived decoder for such an enum reads the whole object into a
//! buffer of its own before it knows the variant. The log keeps the tag beside the
//! data, so the variant is known before the data is read: here each enum has a
//! second decoder in externally tagged form ([`serde(remote)`] mirrors whose
//! fields the compiler checks against the enum's), and [`ByTag`] hands it the tag
//! as the variant and the stored data as the variant's fields, read straight from
//! the text. What is accepted and refused is the same as through the enum's own
//! `Deserialize`: unknown types, unknown fields, missing fields.
//!
//! [`serde(remote)`]: https://serde.rs/remote-derive.html

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, VariantAccess, Visitor,
};
use serde::Deserialize;
use uuid::Uuid;

use super::{phase_keys, ObjectiveEvent, OrgEvent, PlanEvent, RevisionChange, RevisionRef};
use crate::model::{
    Backfill, Hundredths, IndicatorSpec, ObjectiveSpec, PhaseSpec, Role, Unit, ValidationOutcome,
    ValidationStage,
};

/// A domain event enum that decodes from its type string and its data apart.
pub trait DecodeByTag: Sized {
    /// Decodes the variant named `tag` from `data`, any deserializer of the data's
    /// object (the stored text, or a [`serde_json::Value`]).
    ///
    /// # Errors
    /// When the tag names no variant or the data does not fit it.
    fn deserialize_by_tag<'de, D>(tag: &str, data: D) -> serde_json::Result<Self>
    where
        D: Deserializer<'de, Error = serde_json::Error>;

    /// Decodes the variant named `tag` from `data`, the stored JSON text of its
    /// fields; nothing but white space may follow the object.
    ///
    /// # Errors
    /// When the tag names no variant, the data does not fit it, or text follows.
    fn decode_by_tag(tag: &str, data: &str) -> serde_json::Result<Self> {
        let mut text = serde_json::Deserializer::from_str(data);
        let event = Self::deserialize_by_tag(tag, &mut text)?;
        text.end()?;
        Ok(event)
    }
}

impl DecodeByTag for ObjectiveEvent {
    fn deserialize_by_tag<'de, D>(tag: &str, data: D) -> serde_json::Result<Self>
    where
        D: Deserializer<'de, Error = serde_json::Error>,
    {
        ObjectiveEventByTag::deserialize(ByTag { tag, data })
    }
}

impl DecodeByTag for PlanEvent {
    fn deserialize_by_tag<'de, D>(tag: &str, data: D) -> serde_json::Result<Self>
    where
        D: Deserializer<'de, Error = serde_json::Error>,
    {
        PlanEventByTag::deserialize(ByTag { tag, data })
    }
}

impl DecodeByTag for OrgEvent {
    fn deserialize_by_tag<'de, D>(tag: &str, data: D) -> serde_json::Result<Self>
    where
        D: Deserializer<'de, Error = serde_json::Error>,
    {
        OrgEventByTag::deserialize(ByTag { tag, data })
    }
}

/// An enum in externally tagged form, `{tag: data}`, without the object around it:
/// the variant is `tag`, its fields are read from `data`. Only struct variants
/// are accepted (every domain event is one).
struct ByTag<'t, D> {
    tag: &'t str,
    data: D,
}

impl<'de, D> Deserializer<'de> for ByTag<'_, D>
where
    D: Deserializer<'de, Error = serde_json::Error>,
{
    type Error = serde_json::Error;

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> serde_json::Result<V::Value> {
        visitor.visit_enum(self)
    }

    fn deserialize_any<V: Visitor<'de>>(self, _visitor: V) -> serde_json::Result<V::Value> {
        Err(de::Error::custom("an event decodes only into an enum"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}

impl<'de, D> EnumAccess<'de> for ByTag<'_, D>
where
    D: Deserializer<'de, Error = serde_json::Error>,
{
    type Error = serde_json::Error;
    type Variant = Fields<D>;

    fn variant_seed<S: DeserializeSeed<'de>>(
        self,
        seed: S,
    ) -> serde_json::Result<(S::Value, Fields<D>)> {
        let tag: de::value::StrDeserializer<'_, serde_json::Error> = self.tag.into_deserializer();
        Ok((seed.deserialize(tag)?, Fields(self.data)))
    }
}

/// The data of the variant: its fields, as an object (and only an object).
struct Fields<D>(D);

impl<'de, D> VariantAccess<'de> for Fields<D>
where
    D: Deserializer<'de, Error = serde_json::Error>,
{
    type Error = serde_json::Error;

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> serde_json::Result<V::Value> {
        // As a map, not a struct: serde_json would take a struct from an array too.
        self.0.deserialize_map(visitor)
    }

    fn unit_variant(self) -> serde_json::Result<()> {
        Err(de::Error::custom("an event has fields"))
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        _seed: T,
    ) -> serde_json::Result<T::Value> {
        Err(de::Error::custom("an event has named fields"))
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        _visitor: V,
    ) -> serde_json::Result<V::Value> {
        Err(de::Error::custom("an event has named fields"))
    }
}

// The mirrors. Every variant, field and field attribute that bears on decoding is
// the enum's own; serde's remote derive makes the compiler check the fields.

/// [`PlanEvent`] in externally tagged form.
#[derive(Deserialize)]
#[serde(remote = "PlanEvent", rename_all = "snake_case", deny_unknown_fields)]
enum PlanEventByTag {
    PlanDefined {
        year: i32,
        organisation: String,
        title: String,
        units: Vec<Unit>,
        objectives: Vec<String>,
    },
    RevisionRecorded {
        revision: Uuid,
        act: String,
        act_date: Option<NaiveDate>,
        in_force_from: NaiveDate,
        reason: String,
        changes: Vec<RevisionChange>,
        objectives: Vec<String>,
    },
    FlagAcknowledged {
        flag: String,
        note: String,
    },
    PlanSealed {
        origin: String,
        size: u64,
        root: String,
        checkpoint: String,
    },
}

/// [`ObjectiveEvent`] in externally tagged form.
#[derive(Deserialize)]
#[serde(
    remote = "ObjectiveEvent",
    rename_all = "snake_case",
    deny_unknown_fields
)]
enum ObjectiveEventByTag {
    ObjectiveDefined {
        objective: Box<ObjectiveSpec>,
        #[serde(default)]
        revision: Option<RevisionRef>,
    },
    PhaseStarted {
        phase: u32,
        on: NaiveDate,
        #[serde(default)]
        note: Option<String>,
        #[serde(default)]
        backfill: Option<Box<Backfill>>,
    },
    PhaseCompleted {
        phase: u32,
        on: NaiveDate,
        #[serde(default)]
        note: Option<String>,
        #[serde(default)]
        evidence: Vec<String>,
        #[serde(default)]
        backfill: Option<Box<Backfill>>,
        #[serde(default)]
        actor_id: Option<String>,
    },
    PhaseCompletionRetracted {
        phase: u32,
        completed_on: NaiveDate,
        reason: String,
        #[serde(default)]
        backfill: Option<Box<Backfill>>,
    },
    DeadlineRevised {
        #[serde(default)]
        phase: Option<u32>,
        from: NaiveDate,
        to: NaiveDate,
        revision: RevisionRef,
    },
    WeightsRevised {
        #[serde(with = "phase_keys")]
        from: BTreeMap<u32, Hundredths>,
        #[serde(with = "phase_keys")]
        to: BTreeMap<u32, Hundredths>,
        revision: RevisionRef,
    },
    PhaseAdded {
        phase: PhaseSpec,
        revision: RevisionRef,
    },
    PhaseWithdrawn {
        phase: u32,
        revision: RevisionRef,
    },
    ObjectiveWithdrawn {
        revision: RevisionRef,
    },
    IndicatorMeasured {
        indicator: String,
        on: NaiveDate,
        #[serde(default)]
        value_hundredths: Option<Hundredths>,
        #[serde(default)]
        numerator: Option<u64>,
        #[serde(default)]
        denominator: Option<u64>,
        #[serde(default)]
        text: Option<String>,
        #[serde(default)]
        note: Option<String>,
        #[serde(default)]
        backfill: Option<Box<Backfill>>,
    },
    ValidationRecorded {
        stage: ValidationStage,
        outcome: ValidationOutcome,
        #[serde(default)]
        unverified_phases: Vec<u32>,
        #[serde(default)]
        neutralised_phases: Vec<u32>,
        #[serde(default)]
        note: Option<String>,
        #[serde(default)]
        reference: Option<String>,
    },
    ManagerChanged {
        from: String,
        to: String,
        revision: RevisionRef,
    },
    TitleChanged {
        from: String,
        to: String,
        revision: RevisionRef,
    },
    PhaseDescriptionChanged {
        phase: u32,
        from: String,
        to: String,
        revision: RevisionRef,
    },
    IndicatorTargetChanged {
        indicator: String,
        #[serde(default)]
        from: Option<Hundredths>,
        #[serde(default)]
        to: Option<Hundredths>,
        revision: RevisionRef,
    },
    IndicatorAdded {
        indicator: IndicatorSpec,
        revision: RevisionRef,
    },
    IndicatorWithdrawn {
        indicator: String,
        revision: RevisionRef,
    },
}

/// [`OrgEvent`] in externally tagged form.
#[derive(Deserialize)]
#[serde(remote = "OrgEvent", rename_all = "snake_case", deny_unknown_fields)]
enum OrgEventByTag {
    TokenIssued {
        token_id: Uuid,
        token_sha256: String,
        actor: String,
        role: Role,
        #[serde(default)]
        units: Vec<String>,
        #[serde(default)]
        actor_id: Option<String>,
        #[serde(default)]
        expires: Option<DateTime<Utc>>,
    },
    TokenRevoked {
        token_id: Uuid,
    },
    UserCreated {
        username: String,
        actor: String,
        role: Role,
        #[serde(default)]
        units: Vec<String>,
        password_phc: String,
    },
    UserDeleted {
        username: String,
    },
}

#[cfg(test)]
mod tests {
    use std::fmt::Debug;

    use serde::de::DeserializeOwned;
    use serde::Serialize;
    use serde_json::{json, Value};

    use super::*;
    use crate::model::{IndicatorKind, UnitKind};

    fn date(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn revision() -> RevisionRef {
        RevisionRef {
            id: Uuid::from_u128(7),
            act: "D.G.C. n. 182 del 28/07/2022".into(),
            in_force_from: date("2022-07-28"),
            reason: "rimodulazione \"semestrale\"\n".into(),
        }
    }

    fn backfill(on_behalf_of: Option<&str>) -> Backfill {
        Backfill {
            act: "Determinazione n. 12 del 10/01/2023".into(),
            reason: "adozione a metà anno".into(),
            on_behalf_of: on_behalf_of.map(Into::into),
        }
    }

    fn phase(number: u32) -> PhaseSpec {
        PhaseSpec {
            number,
            description: format!("fase {number}"),
            weight_hundredths: Hundredths(5000),
            involved: vec!["2250".into(), "Regione".into()],
            deadline: date("2022-12-31"),
        }
    }

    fn indicator(target: Option<i64>) -> IndicatorSpec {
        IndicatorSpec {
            id: "i1".into(),
            description: "pratiche evase".into(),
            kind: IndicatorKind::Ratio,
            target_hundredths: target.map(Hundredths),
        }
    }

    fn objective() -> ObjectiveSpec {
        ObjectiveSpec {
            year: 2022,
            unit: "2250".into(),
            letter: "A".into(),
            manager: "Dott. Stefano Specchia".into(),
            title: "Pedibus".into(),
            strategic_purpose: "mobilità".into(),
            directives: "—".into(),
            phases: vec![phase(1), phase(2)],
            final_deadline: date("2022-12-31"),
            expected_result: "attivato".into(),
            achieved_when: "sempre".into(),
            not_achieved_when: "mai".into(),
            indicators: vec![indicator(Some(8000)), indicator(None)],
            constraints: String::new(),
            human_resources: "2".into(),
            financial_resources: "0".into(),
        }
    }

    fn weights(pairs: &[(u32, i64)]) -> BTreeMap<u32, Hundredths> {
        pairs.iter().map(|&(n, w)| (n, Hundredths(w))).collect()
    }

    fn plan_events() -> Vec<PlanEvent> {
        let units = vec![
            Unit {
                code: "2250".into(),
                name: "SETTORE MOBILITÀ".into(),
                manager: Some("Dott. Stefano Specchia".into()),
                manager_title: Some("Dirigente".into()),
                kind: Some(UnitKind::ServizioAutonomo),
                label: Some("Settore Mobilità".into()),
            },
            Unit {
                code: "10".into(),
                name: "POLIZIA LOCALE".into(),
                manager: None,
                manager_title: None,
                kind: None,
                label: None,
            },
        ];
        let changes = vec![
            RevisionChange::Deadline {
                objective: "2022-2250-A".into(),
                phase: Some(2),
                new_deadline: date("2023-01-31"),
            },
            RevisionChange::Deadline {
                objective: "2022-2250-A".into(),
                phase: None,
                new_deadline: date("2023-01-31"),
            },
            RevisionChange::Weights {
                objective: "2022-2250-A".into(),
                weights_hundredths: weights(&[(1, 4000), (2, 6000)]),
            },
            RevisionChange::AddObjective {
                objective: Box::new(objective()),
            },
            RevisionChange::IndicatorTarget {
                objective: "2022-2250-A".into(),
                indicator: "i1".into(),
                target_hundredths: None,
            },
        ];
        vec![
            PlanEvent::PlanDefined {
                year: 2022,
                organisation: "Comune di Lecce".into(),
                title: "Piano degli Obiettivi 2022".into(),
                units,
                objectives: vec!["2022-2250-A".into()],
            },
            PlanEvent::RevisionRecorded {
                revision: Uuid::from_u128(9),
                act: "D.G.C. n. 182 del 28/07/2022".into(),
                act_date: Some(date("2022-07-28")),
                in_force_from: date("2022-07-28"),
                reason: "rimodulazione".into(),
                changes,
                objectives: vec!["2022-2250-A".into()],
            },
            PlanEvent::RevisionRecorded {
                revision: Uuid::from_u128(10),
                act: "verbale".into(),
                act_date: None,
                in_force_from: date("2022-08-01"),
                reason: String::new(),
                changes: Vec::new(),
                objectives: Vec::new(),
            },
            PlanEvent::FlagAcknowledged {
                flag: "late/2022-2250-A/1".into(),
                note: "visto".into(),
            },
            PlanEvent::PlanSealed {
                origin: "traguardo.example/log".into(),
                size: u64::MAX,
                root: "q83vEjRWeJA=".into(),
                checkpoint: "traguardo.example/log\n42\nq83vEjRWeJA=\n".into(),
            },
        ]
    }

    fn objective_events() -> Vec<ObjectiveEvent> {
        use ObjectiveEvent::*;
        vec![
            ObjectiveDefined {
                objective: Box::new(objective()),
                revision: None,
            },
            ObjectiveDefined {
                objective: Box::new(objective()),
                revision: Some(revision()),
            },
            PhaseStarted {
                phase: 1,
                on: date("2022-02-01"),
                note: None,
                backfill: None,
            },
            PhaseStarted {
                phase: 1,
                on: date("2022-02-01"),
                note: Some("avviata".into()),
                backfill: Some(Box::new(backfill(None))),
            },
            PhaseCompleted {
                phase: 3,
                on: date("2022-05-28"),
                note: None,
                evidence: Vec::new(),
                backfill: None,
                actor_id: None,
            },
            PhaseCompleted {
                phase: 3,
                on: date("2022-05-28"),
                note: Some("fatto \"bene\" — ok\n".into()),
                evidence: vec!["prot. 1/2022".into()],
                backfill: Some(Box::new(backfill(Some("Ing. Rossi")))),
                actor_id: Some("stefano.specchia".into()),
            },
            PhaseCompletionRetracted {
                phase: 3,
                completed_on: date("2022-05-28"),
                reason: "errore".into(),
                backfill: None,
            },
            PhaseCompletionRetracted {
                phase: 3,
                completed_on: date("2022-05-28"),
                reason: "errore".into(),
                backfill: Some(Box::new(backfill(None))),
            },
            DeadlineRevised {
                phase: None,
                from: date("2022-12-31"),
                to: date("2023-01-31"),
                revision: revision(),
            },
            DeadlineRevised {
                phase: Some(2),
                from: date("2022-12-31"),
                to: date("2023-01-31"),
                revision: revision(),
            },
            WeightsRevised {
                from: weights(&[(1, 5000), (2, 5000)]),
                to: weights(&[(1, 4000), (2, 6000), (10, 0)]),
                revision: revision(),
            },
            WeightsRevised {
                from: BTreeMap::new(),
                to: BTreeMap::new(),
                revision: revision(),
            },
            PhaseAdded {
                phase: phase(3),
                revision: revision(),
            },
            PhaseWithdrawn {
                phase: 2,
                revision: revision(),
            },
            ObjectiveWithdrawn {
                revision: revision(),
            },
            IndicatorMeasured {
                indicator: "i1".into(),
                on: date("2022-06-30"),
                value_hundredths: None,
                numerator: None,
                denominator: None,
                text: None,
                note: None,
                backfill: None,
            },
            IndicatorMeasured {
                indicator: "i1".into(),
                on: date("2022-06-30"),
                value_hundredths: Some(Hundredths(-1)),
                numerator: Some(187),
                denominator: Some(200),
                text: Some("buono".into()),
                note: Some("nota".into()),
                backfill: Some(Box::new(backfill(None))),
            },
            ValidationRecorded {
                stage: ValidationStage::Plan,
                outcome: ValidationOutcome::Approved,
                unverified_phases: Vec::new(),
                neutralised_phases: Vec::new(),
                note: None,
                reference: None,
            },
            ValidationRecorded {
                stage: ValidationStage::Final,
                outcome: ValidationOutcome::Rejected,
                unverified_phases: vec![1],
                neutralised_phases: vec![2, 3],
                note: Some("non verificata".into()),
                reference: Some("Verbale n. 3 del 15/03/2023".into()),
            },
            ManagerChanged {
                from: "A".into(),
                to: "B".into(),
                revision: revision(),
            },
            TitleChanged {
                from: "A".into(),
                to: "B".into(),
                revision: revision(),
            },
            PhaseDescriptionChanged {
                phase: 1,
                from: "A".into(),
                to: "B".into(),
                revision: revision(),
            },
            IndicatorTargetChanged {
                indicator: "i1".into(),
                from: None,
                to: None,
                revision: revision(),
            },
            IndicatorTargetChanged {
                indicator: "i1".into(),
                from: Some(Hundredths(5000)),
                to: Some(Hundredths(6000)),
                revision: revision(),
            },
            IndicatorAdded {
                indicator: indicator(None),
                revision: revision(),
            },
            IndicatorWithdrawn {
                indicator: "i1".into(),
                revision: revision(),
            },
        ]
    }

    fn org_events() -> Vec<OrgEvent> {
        vec![
            OrgEvent::TokenIssued {
                token_id: Uuid::from_u128(1),
                token_sha256: "ab".repeat(32),
                actor: "Admin".into(),
                role: Role::Admin,
                units: Vec::new(),
                actor_id: None,
                expires: None,
            },
            OrgEvent::TokenIssued {
                token_id: Uuid::from_u128(2),
                token_sha256: "cd".repeat(32),
                actor: "Dott. Stefano Specchia".into(),
                role: Role::Manager,
                units: vec!["2250".into()],
                actor_id: Some("stefano.specchia".into()),
                expires: Some(
                    DateTime::parse_from_rfc3339("2023-06-10T09:12:03.123456Z")
                        .unwrap()
                        .with_timezone(&Utc),
                ),
            },
            OrgEvent::TokenRevoked {
                token_id: Uuid::from_u128(2),
            },
            OrgEvent::UserCreated {
                username: "nucleo".into(),
                actor: "Nucleo di Valutazione".into(),
                role: Role::Validator,
                units: Vec::new(),
                password_phc: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
            },
            OrgEvent::UserCreated {
                username: "rossi".into(),
                actor: "Ing. Rossi".into(),
                role: Role::Manager,
                units: vec!["10".into(), "2250".into()],
                password_phc: "$argon2id$…".into(),
            },
            OrgEvent::UserDeleted {
                username: "rossi".into(),
            },
        ]
    }

    /// Which variant an event is: written as an exhaustive match, so that a new
    /// variant does not compile until the examples have it.
    fn plan_variant(event: &PlanEvent) -> usize {
        match event {
            PlanEvent::PlanDefined { .. } => 0,
            PlanEvent::RevisionRecorded { .. } => 1,
            PlanEvent::FlagAcknowledged { .. } => 2,
            PlanEvent::PlanSealed { .. } => 3,
        }
    }

    fn objective_variant(event: &ObjectiveEvent) -> usize {
        use ObjectiveEvent::*;
        match event {
            ObjectiveDefined { .. } => 0,
            PhaseStarted { .. } => 1,
            PhaseCompleted { .. } => 2,
            PhaseCompletionRetracted { .. } => 3,
            DeadlineRevised { .. } => 4,
            WeightsRevised { .. } => 5,
            PhaseAdded { .. } => 6,
            PhaseWithdrawn { .. } => 7,
            ObjectiveWithdrawn { .. } => 8,
            IndicatorMeasured { .. } => 9,
            ValidationRecorded { .. } => 10,
            ManagerChanged { .. } => 11,
            TitleChanged { .. } => 12,
            PhaseDescriptionChanged { .. } => 13,
            IndicatorTargetChanged { .. } => 14,
            IndicatorAdded { .. } => 15,
            IndicatorWithdrawn { .. } => 16,
        }
    }

    fn org_variant(event: &OrgEvent) -> usize {
        match event {
            OrgEvent::TokenIssued { .. } => 0,
            OrgEvent::TokenRevoked { .. } => 1,
            OrgEvent::UserCreated { .. } => 2,
            OrgEvent::UserDeleted { .. } => 3,
        }
    }

    /// The event's tag and its data as stored: the normal serialisation with the
    /// `type` split off.
    fn stored<E: Serialize>(event: &E) -> (String, Value) {
        let Value::Object(mut data) = serde_json::to_value(event).unwrap() else {
            panic!("an event serializes to an object");
        };
        let Some(Value::String(tag)) = data.remove("type") else {
            panic!("an event has a type");
        };
        (tag, Value::Object(data))
    }

    /// Decodes every event by its tag, from the text and from the value, and
    /// checks it gives what serde's own (buffered) decoder gives: the event itself.
    fn decodes_as_buffered<E>(events: &[E], variant: fn(&E) -> usize, variants: usize)
    where
        E: Serialize + DeserializeOwned + DecodeByTag + PartialEq + Debug,
    {
        let mut seen = vec![false; variants];
        for event in events {
            seen[variant(event)] = true;
            let whole = serde_json::to_string(event).unwrap();
            let buffered: E = serde_json::from_str(&whole).unwrap();
            assert_eq!(&buffered, event);
            let (tag, data) = stored(event);
            let text = data.to_string();
            assert_eq!(E::decode_by_tag(&tag, &text).unwrap(), buffered, "{text}");
            let pretty = serde_json::to_string_pretty(&data).unwrap();
            assert_eq!(E::decode_by_tag(&tag, &pretty).unwrap(), buffered);
            assert_eq!(E::deserialize_by_tag(&tag, &data).unwrap(), buffered);
        }
        assert!(
            seen.iter().all(|&s| s),
            "a variant has no example: {seen:?}"
        );
    }

    #[test]
    fn every_variant_decodes_by_its_tag_as_through_the_buffered_path() {
        decodes_as_buffered(&plan_events(), plan_variant, 4);
        decodes_as_buffered(&objective_events(), objective_variant, 17);
        decodes_as_buffered(&org_events(), org_variant, 4);
    }

    /// Both decoders refuse the text `data` under `tag`: by the tag, and serde's
    /// own with the tag put in front (as the stored text was decoded before).
    fn refused_text<E: DeserializeOwned + DecodeByTag + Debug>(tag: &str, data: &str) -> String {
        let by_tag = E::decode_by_tag(tag, data).expect_err(data);
        if let Some(rest) = data.trim_start().strip_prefix('{') {
            let comma = if rest.trim_start().starts_with('}') {
                ""
            } else {
                ","
            };
            let whole = format!("{{\"type\":{tag:?}{comma}{rest}");
            serde_json::from_str::<E>(&whole).expect_err(&whole);
        }
        by_tag.to_string()
    }

    /// Both decoders refuse `data` under `tag`, as text and as a value.
    fn refused<E: DeserializeOwned + DecodeByTag + Debug>(tag: &str, data: &str) -> String {
        if let Ok(value) = serde_json::from_str::<Value>(data) {
            E::deserialize_by_tag(tag, &value).expect_err(data);
            if let Value::Object(mut whole) = value {
                whole.insert("type".into(), Value::String(tag.into()));
                serde_json::from_value::<E>(Value::Object(whole)).expect_err(data);
            }
        }
        refused_text::<E>(tag, data)
    }

    #[test]
    fn what_the_buffered_path_refuses_is_refused_by_tag() {
        let started = r#"{"phase":1,"on":"2022-02-01"}"#;
        ObjectiveEvent::decode_by_tag("phase_started", started).unwrap();

        let unknown_field = refused::<ObjectiveEvent>(
            "phase_started",
            r#"{"phase":1,"on":"2022-02-01","colour":"red"}"#,
        );
        assert!(
            unknown_field.contains("unknown field `colour`"),
            "{unknown_field}"
        );
        let unknown_type = refused::<ObjectiveEvent>("phase_teleported", started);
        assert!(
            unknown_type.contains("unknown variant `phase_teleported`"),
            "{unknown_type}"
        );
        let other_enum = refused::<OrgEvent>("phase_started", started);
        assert!(other_enum.contains("unknown variant"), "{other_enum}");
        let wrong_type =
            refused::<ObjectiveEvent>("phase_started", r#"{"phase":"1","on":"2022-02-01"}"#);
        assert!(wrong_type.contains("invalid type"), "{wrong_type}");
        let missing = refused::<ObjectiveEvent>("phase_started", r#"{"phase":1}"#);
        assert!(missing.contains("missing field `on`"), "{missing}");
        // (A value keeps the last of duplicate keys: only the text can have both.)
        let duplicate = refused_text::<ObjectiveEvent>(
            "phase_started",
            r#"{"phase":1,"phase":2,"on":"2022-02-01"}"#,
        );
        assert!(duplicate.contains("duplicate field `phase`"), "{duplicate}");
        // A `type` inside the data: a second tag to serde's own, an unknown field here.
        let typed = r#"{"type":"phase_started","phase":1,"on":"2022-02-01"}"#;
        refused_text::<ObjectiveEvent>("phase_started", typed);
        let value: Value = serde_json::from_str(typed).unwrap();
        ObjectiveEvent::deserialize_by_tag("phase_started", &value).unwrap_err();
        refused::<ObjectiveEvent>(
            "weights_revised",
            &json!({"from": {"x": 1}, "to": {}, "revision": revision()}).to_string(),
        );
        refused::<OrgEvent>("token_revoked", r#"{"token_id":"not a uuid"}"#);
        refused::<PlanEvent>("flag_acknowledged", r#"{"flag":"f","note":null}"#);

        let trailing = refused::<ObjectiveEvent>("phase_started", &format!("{started} x"));
        assert!(trailing.contains("trailing characters"), "{trailing}");
        refused::<ObjectiveEvent>("phase_started", &format!("{started}{{}}"));
        refused::<ObjectiveEvent>("phase_started", &started[..started.len() - 1]);
        refused::<ObjectiveEvent>("phase_started", "[1,\"2022-02-01\"]");
        refused::<ObjectiveEvent>("phase_started", "null");
        // White space around the object is no harm, as for serde_json::from_str.
        ObjectiveEvent::decode_by_tag("phase_started", &format!(" {started}\n")).unwrap();
    }

    #[test]
    fn an_objective_event_is_no_larger_than_a_measurement_without_its_backfill() {
        // The time-travel cache keeps decoded events, nearly all of them phases
        // and measurements: a variant that grew past them (an unboxed
        // definition or backfill) would grow every event it holds.
        // A measurement's fields: the indicator, the date (padded), three
        // optional numbers, two optional strings and the boxed backfill; and
        // a word for the variant's tag.
        let measurement = 24 + 8 + 3 * 16 + 2 * 24 + 8 + 8;
        assert!(
            std::mem::size_of::<ObjectiveEvent>() <= measurement,
            "ObjectiveEvent is {} bytes, more than the {measurement} of a measurement",
            std::mem::size_of::<ObjectiveEvent>()
        );
    }
}
