//! Snapshots of the read model: a process started from one answers exactly as
//! one that folded the whole log, and a snapshot that no longer matches the log
//! (a rewritten event at its seq), of an old schema, or whose bytes are not a
//! read model is refused, discarded, and the read model is folded from the log,
//! with a warning in the log and on `/metrics`.

use std::time::Duration;

use proptest::prelude::*;
use reqwest::StatusCode;
use traguardo::snapshots::{Refused, Start};
use traguardo::App;
use traguardo_events::store::REGISTRY_SNAPSHOT;
use traguardo_projections::Registry;

use crate::properties::{bytes_of, dates, run, step, Step};
use crate::support::{seed_path, traguardo, Db, Serve, World, SERVE_ADMIN};

/// Every JSON answer the read model gives about the 2022 plan, at every date
/// of the property tests: each objective's state and the plan's scores.
fn answers(registry: &Registry) -> Vec<(String, Vec<u8>)> {
    let mut keys: Vec<&str> = registry.objectives().map(|o| o.key()).collect();
    keys.sort_unstable();
    let mut answers = Vec::new();
    for at in dates() {
        for key in &keys {
            let view = registry.objective(key).expect("listed").evaluate(at);
            answers.push((
                format!("{key} at {at}"),
                serde_json::to_vec(&view).expect("serializes"),
            ));
        }
        answers.push((
            format!("scores at {at}"),
            serde_json::to_vec(&registry.scores(2022, at)).expect("serializes"),
        ));
    }
    answers
}

/// How many of the registry's non-empty texts (objectives' definitions) and
/// phases' notes are in the texts' file, and how many on the heap.
fn texts_kept(registry: &Registry) -> (usize, usize) {
    let mut kept = (0, 0);
    for objective in registry.objectives() {
        let t = objective.texts();
        let notes = objective
            .phases()
            .iter()
            .map(|p| p.notes())
            .filter(|n| !n.is_empty())
            .map(|n| n.is_on_disk());
        for on_disk in [&t.strategic_purpose, &t.directives, &t.expected_result]
            .into_iter()
            .filter(|t| !t.is_empty())
            .map(|t| t.is_on_disk())
            .chain(notes)
        {
            if on_disk {
                kept.0 += 1;
            } else {
                kept.1 += 1;
            }
        }
    }
    kept
}

/// Runs `steps`, taking a snapshot before step `snapshot_at` (after the last
/// when it is past the end); then a new process starts from that snapshot and
/// must hold what a fold of the whole log holds.
fn started_from_a_snapshot(steps: Vec<Step>, snapshot_at: usize) -> Result<(), TestCaseError> {
    let world = World::with_seed();
    let mut taken = None;
    for (i, step) in steps.iter().enumerate() {
        if i == snapshot_at {
            taken = world.app.take_snapshot().expect("a snapshot is taken");
        }
        run(&world, step)?;
    }
    if taken.is_none() {
        taken = world.app.take_snapshot().expect("a snapshot is taken");
    }
    let seq = taken.expect("a seeded log has a read model to snapshot");
    let head = world.app.store().head().unwrap().seq;

    let restarted = App::open(world.db(), world.clock.clone()).expect("the log opens");
    prop_assert_eq!(
        restarted.start(),
        &Start::FromSnapshot {
            seq,
            events: head - seq
        }
    );
    let from_snapshot = restarted.read(Registry::clone);
    let full = traguardo::app::replay(world.app.store().as_ref()).expect("the log folds");
    // A process's read model keeps its texts in the texts' file, a command's
    // fold on the heap: the same registry and answers either way.
    let (on_disk, on_heap) = texts_kept(&from_snapshot);
    prop_assert!(
        on_disk > 0 && on_heap == 0,
        "{} on disk, {} on the heap",
        on_disk,
        on_heap
    );
    prop_assert_eq!(texts_kept(&full), (0, on_disk));
    prop_assert_eq!(&from_snapshot, &full);
    prop_assert_eq!(&from_snapshot, &world.app.read(Registry::clone));
    prop_assert_eq!(bytes_of(&from_snapshot), bytes_of(&full));
    let (ours, theirs) = (answers(&from_snapshot), answers(&full));
    prop_assert_eq!(ours.len(), theirs.len());
    for ((what, a), (_, b)) in ours.iter().zip(&theirs) {
        prop_assert!(a == b, "{} differs from the full fold", what);
    }
    restarted.store().shutdown();
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 16,
        max_shrink_iters: 100,
        ..ProptestConfig::default()
    })]

    #[test]
    fn a_read_model_started_from_a_snapshot_answers_as_the_whole_log_folded(
        (steps, snapshot_at) in prop::collection::vec(step(), 1..24)
            .prop_flat_map(|steps| {
                let len = steps.len();
                (Just(steps), 0..=len)
            })
    ) {
        started_from_a_snapshot(steps, snapshot_at)?;
    }
}

/// A seeded world with one phase started and completed, snapshotted, then one
/// more event after the snapshot; answers the snapshot's seq.
fn snapshotted_world() -> (World, u64) {
    let world = World::with_seed();
    world.on("2022-03-01");
    world.start("2022-2250-A", 1, "2022-02-01").unwrap();
    world.complete("2022-2250-A", 1, "2022-02-28").unwrap();
    let seq = world.app.take_snapshot().unwrap().expect("a snapshot");
    world.start("2022-2250-A", 2, "2022-03-01").unwrap();
    (world, seq)
}

/// Opens the database behind the store's back, without the append-only
/// triggers, as someone with the sqlite3 shell could.
fn intruder(world: &World) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(world.db()).expect("the file opens");
    conn.execute_batch("DROP TRIGGER events_no_update").unwrap();
    conn
}

/// The registry of a process started now, and how it started.
fn restart(world: &World) -> (Registry, Start) {
    let app = App::open(world.db(), world.clock.clone()).expect("the log opens");
    let answer = (app.read(Registry::clone), app.start().clone());
    app.store().shutdown();
    answer
}

#[test]
fn a_snapshot_whose_event_was_rewritten_since_is_refused_and_the_log_is_folded_instead() {
    let (world, seq) = snapshotted_world();
    // The completion at the snapshot's seq, rewritten with a new note and hash.
    let forged = "f".repeat(64);
    let changed = intruder(&world)
        .execute(
            "UPDATE events SET data = json_set(data, '$.note', 'riscritta'), hash = ?1 \
             WHERE seq = ?2",
            rusqlite::params![forged, seq],
        )
        .unwrap();
    assert_eq!(changed, 1);

    let (registry, start) = restart(&world);
    let Start::Refused {
        seq: refused,
        reason: Refused::Hash { found, .. },
        ..
    } = start
    else {
        panic!("the snapshot is refused for its hash: {start:?}");
    };
    assert_eq!((refused, found), (seq, forged));
    // The read model is the log as it is now, rewritten note and all.
    let phase = registry.objective("2022-2250-A").unwrap().phase(1).unwrap();
    assert_eq!(phase.completed().unwrap().note, Some("riscritta"));
    assert_eq!(
        registry,
        traguardo::app::replay(world.app.store().as_ref()).unwrap()
    );
    assert_eq!(
        world
            .app
            .store()
            .latest_snapshot(REGISTRY_SNAPSHOT)
            .unwrap(),
        None,
        "the refused snapshot is discarded"
    );
    // The next start has nothing to refuse.
    assert!(matches!(restart(&world).1, Start::Replayed { .. }));
}

#[test]
fn a_snapshot_of_an_old_schema_is_refused_and_the_log_is_folded_instead() {
    let (world, _) = snapshotted_world();
    let old = traguardo_projections::snapshot::SCHEMA - 1;
    rusqlite::Connection::open(world.db())
        .unwrap()
        .execute("UPDATE snapshots SET schema = ?1", [old])
        .unwrap();
    let (registry, start) = restart(&world);
    assert!(
        matches!(
            start,
            Start::Refused {
                reason: Refused::Schema { found, expected },
                ..
            } if found == old && expected == traguardo_projections::snapshot::SCHEMA
        ),
        "{start:?}"
    );
    assert_eq!(registry, world.app.read(Registry::clone));
    assert_eq!(
        world
            .app
            .store()
            .latest_snapshot(REGISTRY_SNAPSHOT)
            .unwrap(),
        None
    );
}

#[test]
fn a_snapshot_whose_bytes_are_not_a_read_model_is_refused_and_the_log_is_folded_instead() {
    let (world, _) = snapshotted_world();
    rusqlite::Connection::open(world.db())
        .unwrap()
        .execute("UPDATE snapshot_parts SET data = x'93010203'", [])
        .unwrap();
    let (registry, start) = restart(&world);
    assert!(
        matches!(
            start,
            Start::Refused {
                reason: Refused::Undecodable(_),
                ..
            }
        ),
        "{start:?}"
    );
    assert_eq!(registry, world.app.read(Registry::clone));
}

#[test]
fn a_snapshot_beyond_the_end_of_the_log_is_refused() {
    let (world, _) = snapshotted_world();
    rusqlite::Connection::open(world.db())
        .unwrap()
        .execute_batch(
            "UPDATE snapshots SET seq = seq + 1000; UPDATE snapshot_parts SET seq = seq + 1000",
        )
        .unwrap();
    let (registry, start) = restart(&world);
    assert!(
        matches!(
            start,
            Start::Refused {
                reason: Refused::Missing { .. },
                ..
            }
        ),
        "{start:?}"
    );
    assert_eq!(registry, world.app.read(Registry::clone));
}

#[test]
fn without_events_there_is_nothing_to_snapshot() {
    let world = World::new();
    assert_eq!(world.app.take_snapshot().unwrap(), None);
    assert_eq!(
        world
            .app
            .store()
            .latest_snapshot(REGISTRY_SNAPSHOT)
            .unwrap(),
        None
    );
    assert_eq!(world.app.start(), &Start::Replayed { events: 0 });
}

// ---------------------------------------------------------------------------
// Over HTTP, with real `traguardo serve` processes.

async fn fetch(server: &Serve, path: &str, token: &str) -> (StatusCode, Vec<u8>) {
    let response = reqwest::Client::new()
        .get(server.url(path))
        .bearer_auth(token)
        .send()
        .await
        .expect("the server answers");
    let status = response.status();
    (status, response.bytes().await.expect("a body").to_vec())
}

async fn post(server: &Serve, path: &str, token: &str, body: serde_json::Value) -> StatusCode {
    reqwest::Client::new()
        .post(server.url(path))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("the server answers")
        .status()
}

/// The value of metric `name` on `/metrics`.
async fn metric(server: &Serve, name: &str) -> i64 {
    let (status, body) = fetch(server, "/metrics", SERVE_ADMIN).await;
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(body).unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} is on /metrics: {text}"))
}

/// The answers compared between processes, byte for byte.
const PATHS: &[&str] = &[
    "/api/v1/plans/2022?at=2022-12-31",
    "/api/v1/plans/2022/scores?at=2022-06-30",
    "/api/v1/objectives/2022-2250-A?at=2022-12-31",
    "/api/v1/objectives/2022-2249-C?at=2022-04-30",
];

async fn bodies(server: &Serve) -> Vec<Vec<u8>> {
    let mut bodies = Vec::new();
    for path in PATHS {
        let (status, body) = fetch(server, path, SERVE_ADMIN).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        bodies.push(body);
    }
    bodies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_takes_snapshots_starts_from_them_with_the_same_answers_and_refuses_a_rewritten_one()
{
    let db = Db::sqlite();
    let target = db.target();
    let seed = seed_path();
    let imported = traguardo(&target, &["import", seed.to_str().unwrap()]);
    assert!(imported.status.success(), "{imported:?}");

    // 1. A server taking a snapshot every 3 events, and some writes.
    let (server, _) = Serve::start_with(&target, &["--snapshot-every", "3"], "warn");
    let response = reqwest::Client::new()
        .post(server.url("/api/v1/tokens"))
        .bearer_auth(SERVE_ADMIN)
        .json(&serde_json::json!({
            "actor": "Dott. Stefano Specchia", "role": "manager", "units": ["2250"]
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let issued: serde_json::Value = response.json().await.unwrap();
    let manager = issued["token"].as_str().expect("a token").to_string();
    for (phase, on) in [(1, "2022-02-01"), (2, "2022-03-01"), (3, "2022-04-01")] {
        for action in ["start", "complete"] {
            let path = format!("/api/v1/objectives/2022-2250-A/phases/{phase}/{action}");
            let status = post(&server, &path, &manager, serde_json::json!({ "on": on })).await;
            assert_eq!(status, StatusCode::CREATED, "{path}");
        }
    }
    let mut taken = 0;
    for _ in 0..100 {
        taken = metric(&server, "traguardo_read_model_snapshots_taken").await;
        if taken >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        taken >= 2,
        "snapshots are taken as events are folded: {taken}"
    );
    let before = bodies(&server).await;
    server.stop();

    // 2. A restart starts from the latest snapshot and answers the same bytes.
    let (server, printed) = Serve::start_with(&target, &["--log-format", "json"], "info");
    let seq = metric(&server, "traguardo_read_model_snapshot_seq").await;
    assert!(seq > 0);
    // Its read model keeps the notes and descriptions in its texts' file.
    assert!(metric(&server, "traguardo_read_model_text_bytes").await > 1_000);
    assert!(
        printed
            .iter()
            .any(|line| line.contains("read model started from a snapshot")
                && line.contains(&format!("\"snapshot_seq\":{seq}"))),
        "{printed:#?}"
    );
    assert_eq!(
        metric(&server, "traguardo_read_model_snapshot_refused").await,
        0
    );
    assert_eq!(bodies(&server).await, before);
    server.stop();

    // 3. The event at the snapshot's seq is rewritten (after more events were
    // appended): the snapshot is refused, said so, and the log folded.
    let more = traguardo(
        &target,
        &[
            "token", "create", "--actor", "Revisore", "--role", "auditor",
        ],
    );
    assert!(more.status.success(), "{more:?}");
    let conn = rusqlite::Connection::open(&target).unwrap();
    conn.execute_batch("DROP TRIGGER events_no_update").unwrap();
    conn.execute(
        "UPDATE events SET hash = ?1 WHERE seq = ?2",
        rusqlite::params!["e".repeat(64), seq],
    )
    .unwrap();
    drop(conn);
    // The head file may name that very event (when the snapshot was at the
    // head): serve would then refuse the log; this test is about the snapshot.
    let _ = std::fs::remove_file(format!("{target}.head"));
    let (server, printed) = Serve::start_with(&target, &["--log-format", "json"], "warn");
    assert!(
        printed
            .iter()
            .any(|line| line.contains("snapshot refused") && line.contains(&format!("seq {seq}"))),
        "{printed:#?}"
    );
    assert_eq!(
        metric(&server, "traguardo_read_model_snapshot_refused").await,
        1
    );
    assert_eq!(
        metric(&server, "traguardo_read_model_snapshot_seq").await,
        0
    );
    assert_eq!(bodies(&server).await, before);
    server.stop();
}
