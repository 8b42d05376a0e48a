//! The plan's JSON Schema (`seeds/plan.schema.json`) with a standard validator
//! (the `jsonschema` crate, JSON Schema 2020-12 with format assertions): it
//! accepts what the importer loads (the seed, the contract's example) and refuses
//! what the importer refuses for a reason a schema can state.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use traguardo::plan_document;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

fn validator() -> jsonschema::Validator {
    let schema = read(&root().join("seeds/plan.schema.json"));
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .expect("the published schema is a valid JSON Schema")
}

/// The schema's complaints about a document, one line each.
fn schema_errors(document: &Value) -> Vec<String> {
    validator()
        .iter_errors(document)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

/// The plan documents bundled in `seeds/` (every JSON file but the schema).
fn seed_documents() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(root().join("seeds"))
        .expect("seeds/")
        .map(|entry| entry.expect("an entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .filter(|p| !p.to_string_lossy().ends_with(".schema.json"))
        .collect();
    found.sort();
    found
}

fn filled_example() -> Value {
    read(&root().join("tests/api/fixtures/design-6-example-filled.json"))
}

#[test]
fn every_seed_document_validates_against_the_published_schema_and_imports() {
    let seeds = seed_documents();
    assert!(!seeds.is_empty(), "no plan document in seeds/");
    for path in seeds {
        let document = read(&path);
        assert_eq!(schema_errors(&document), Vec::<String>::new(), "{path:?}");
        assert!(plan_document::validate(&document).is_ok(), "{path:?}");
    }
}

#[test]
fn the_contract_example_with_weights_of_two_decimals_validates_and_imports() {
    // DESIGN.md §6's example with its placeholders filled in, and the weights
    // its text gives (33.33, 33.33, 33.34): no `multipleOf: 0.01` refuses 33.33.
    let document = filled_example();
    assert_eq!(
        document["objectives"][0]["phases"][0]["weight"],
        json!(33.33)
    );
    assert_eq!(schema_errors(&document), Vec::<String>::new());
    let plan = plan_document::validate(&document).expect("the importer loads it");
    assert_eq!(plan.objectives[0].phases[0].weight_hundredths.0, 3333);
}

#[test]
fn the_contract_example_as_printed_is_refused_by_both_for_its_placeholder_kind() {
    // §6 prints `"kind": "ratio|threshold|qualitative"`: a list of choices, not a
    // kind. Schema and importer both refuse it, at the same field.
    let document = read(&root().join("tests/api/fixtures/design-6-example.json"));
    let schema = schema_errors(&document);
    assert!(
        schema
            .iter()
            .any(|e| e.starts_with("/objectives/0/indicators/0/kind")),
        "{schema:?}"
    );
    let importer = plan_document::validate(&document).unwrap_err();
    assert!(
        importer
            .iter()
            .any(|e| e.field == "objectives[0].indicators[0].kind"),
        "{importer:?}"
    );
}

#[test]
fn documents_the_importer_refuses_for_their_shape_are_refused_by_the_schema_too() {
    type Edit = fn(&mut Value);
    let cases: [(&str, Edit); 12] = [
        ("phase number 0", |d| {
            d["objectives"][0]["phases"][0]["number"] = json!(0)
        }),
        ("a weight over 100", |d| {
            d["objectives"][0]["phases"][0]["weight"] = json!(100.5)
        }),
        ("a negative weight", |d| {
            d["objectives"][0]["phases"][0]["weight"] = json!(-1)
        }),
        ("a weight as text", |d| {
            d["objectives"][0]["phases"][0]["weight"] = json!("33,33")
        }),
        ("a date that does not exist", |d| {
            d["objectives"][0]["phases"][0]["deadline"] = json!("2022-02-30")
        }),
        ("a date written dd/mm/yyyy", |d| {
            d["objectives"][0]["final_deadline"] = json!("31/12/2022")
        }),
        ("an unknown field", |d| {
            d["objectives"][0]["phases"][0]["peso"] = json!(20)
        }),
        ("no phases", |d| d["objectives"][0]["phases"] = json!([])),
        ("a blank title", |d| {
            d["objectives"][0]["title"] = json!("  ")
        }),
        ("a year out of range", |d| d["year"] = json!(22)),
        ("an unknown indicator kind", |d| {
            d["objectives"][0]["indicators"][0]["kind"] = json!("percentuale")
        }),
        ("a target over 100", |d| {
            d["objectives"][0]["indicators"][0]["target"] = json!(120)
        }),
    ];
    for (what, edit) in cases {
        let mut document = filled_example();
        edit(&mut document);
        assert!(
            plan_document::validate(&document).is_err(),
            "the importer accepts {what}"
        );
        assert!(
            !schema_errors(&document).is_empty(),
            "the schema accepts {what}"
        );
    }
}
