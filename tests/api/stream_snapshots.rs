//! Time travel from stream snapshots (issue 18): an objective's folded state
//! stored beside the log every N versions of its stream, where a read at a past
//! seq starts instead of version 1. At every seq of a test history the answer
//! equals the full fold of the stream's prefix; a snapshot whose event was
//! rewritten since, or of an old schema, or whose bytes are not an objective,
//! is refused (and counted) and the answer is still the full fold; a log
//! written without them gets them from `write_stream_snapshots`.

use std::time::Duration;

use traguardo_events::model::objective_stream;
use traguardo_events::store::Until;

use crate::support::World;
use crate::time_travel::{full_fold, grow, head, KEYS};

/// Every this many versions, in these tests: streams of ~25 events get five.
const EVERY: u64 = 4;

/// A seeded world whose four objectives have about 25 events each, with stream
/// snapshots every [`EVERY`] versions, all written.
fn snapshotted_history() -> World {
    let w = World::with_seed();
    w.app.set_stream_snapshot_every(EVERY);
    grow(&w, 1, 12);
    assert!(w.app.flush_stream_snapshots(Duration::from_secs(30)));
    w
}

/// Every key at every seq from 0 to past the head, in the order given, equals
/// the full fold.
fn assert_equal_to_the_full_fold(w: &World, seqs: impl Iterator<Item = u64>) {
    for seq in seqs {
        for key in KEYS {
            assert_eq!(
                w.app.objective_as_of(key, Until::Seq(seq)).unwrap(),
                full_fold(w, key, Until::Seq(seq)),
                "{key} at seq {seq}"
            );
        }
    }
}

/// Snapshots stored for `key`, by version.
fn snapshot_versions(w: &World, key: &str) -> Vec<u64> {
    let store = w.app.store();
    let mut versions = Vec::new();
    let mut at = u64::MAX;
    while let Some(s) = store
        .stream_snapshot_at(&objective_stream(key), at)
        .unwrap()
    {
        versions.push(s.version);
        at = s.seq - 1;
    }
    versions.reverse();
    versions
}

#[test]
fn time_travel_from_stream_snapshots_equals_the_full_fold_at_every_seq() {
    let w = snapshotted_history();
    let head = head(&w);
    let version = w
        .app
        .store()
        .stream_version(&objective_stream(KEYS[0]))
        .unwrap();
    assert!(version > 4 * EVERY, "streams of {version} versions");
    let written = w.app.stream_snapshot_stats();
    assert_eq!((written.dropped, written.failed), (0, 0), "{written:?}");
    for key in KEYS {
        let versions = snapshot_versions(&w, key);
        let expected: Vec<u64> = (1..)
            .map(|i| i * EVERY)
            .take_while(|v| {
                *v <= w
                    .app
                    .store()
                    .stream_version(&objective_stream(key))
                    .unwrap()
            })
            .collect();
        assert_eq!(versions, expected, "{key}");
    }
    // Nothing in memory: every read starts from the nearest snapshot.
    w.app.set_time_travel_budget(0);
    assert_equal_to_the_full_fold(&w, 0..=head + 1);
    let stats = w.app.time_travel_stats();
    assert!(stats.snapshots_used > head, "{stats:?}");
    assert_eq!(stats.snapshots_refused, 0);
    // With memory, from the middle down, then up past it: stretches that start
    // at a snapshot are joined to earlier ones read later, and extended.
    w.app.set_time_travel_budget(64 << 20);
    assert_equal_to_the_full_fold(&w, (0..=head / 2).rev());
    assert_equal_to_the_full_fold(&w, head / 2..=head + 1);
    assert_equal_to_the_full_fold(&w, (0..=head).rev());
    let cached = w.app.time_travel_stats();
    assert!(cached.hits > 2 * head, "{cached:?}");
    assert_eq!(cached.snapshots_refused, 0);
}

#[test]
fn record_time_cuts_from_stream_snapshots_equal_the_full_fold() {
    let w = snapshotted_history();
    let events = w.app.store().read_all(0, 10_000).unwrap();
    let mut cuts: Vec<_> = events
        .iter()
        .flat_map(|e| {
            let t = e.recorded_at;
            [t - chrono::Duration::microseconds(1), t]
        })
        .collect();
    cuts.dedup();
    for budget in [0, 64 << 20] {
        w.app.set_time_travel_budget(budget);
        for at in cuts.iter().rev() {
            for key in KEYS {
                assert_eq!(
                    w.app.objective_as_of(key, Until::RecordedAt(*at)).unwrap(),
                    full_fold(&w, key, Until::RecordedAt(*at)),
                    "{key} as of {at}"
                );
            }
        }
    }
    assert!(w.app.time_travel_stats().snapshots_used > 0);
}

/// Opens the database behind the store's back, as someone with the sqlite3
/// shell could, without the trigger that refuses UPDATE on the log.
fn intruder(w: &World) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(w.db()).expect("the file opens");
    conn.execute_batch("DROP TRIGGER events_no_update").unwrap();
    conn
}

#[test]
fn a_stream_snapshot_whose_event_was_rewritten_since_is_refused_and_the_answer_is_the_full_fold() {
    let w = snapshotted_history();
    let head = head(&w);
    let stream = objective_stream(KEYS[0]);
    let snapshot = w
        .app
        .store()
        .stream_snapshot_at(&stream, head)
        .unwrap()
        .expect("a snapshot");
    // Someone rewrites who recorded the event the snapshot was taken at, and
    // its hash, as if the chain had been recomputed from there.
    let changed = intruder(&w)
        .execute(
            "UPDATE events SET actor = 'Qualcun altro', hash = ?2 WHERE seq = ?1",
            rusqlite::params![snapshot.seq, "e".repeat(64)],
        )
        .unwrap();
    assert_eq!(changed, 1);
    w.app.set_time_travel_budget(0);
    for seq in snapshot.seq..=head {
        assert_eq!(
            w.app.objective_as_of(KEYS[0], Until::Seq(seq)).unwrap(),
            full_fold(&w, KEYS[0], Until::Seq(seq)),
            "at seq {seq}"
        );
    }
    let stats = w.app.time_travel_stats();
    assert!(stats.snapshots_refused > 0, "{stats:?}");
    // The same with memory: the stretch is folded from version 1.
    w.app.set_time_travel_budget(64 << 20);
    assert_equal_to_the_full_fold(&w, (0..=head).rev());
    assert!(w.app.time_travel_stats().snapshots_refused > stats.snapshots_refused);
}

#[test]
fn stream_snapshots_of_an_old_schema_or_not_an_objective_are_refused_and_the_answer_is_the_full_fold(
) {
    let w = snapshotted_history();
    let head = head(&w);
    let conn = rusqlite::Connection::open(w.db()).expect("the file opens");
    // The snapshots of two streams written by an older fold; another's bytes
    // are not an objective. The table is disposable: no trigger guards it.
    let old = conn
        .execute(
            "UPDATE stream_snapshots SET schema = schema - 1 WHERE stream IN (?1, ?2)",
            [objective_stream(KEYS[0]), objective_stream(KEYS[1])],
        )
        .unwrap();
    let garbage = conn
        .execute(
            "UPDATE stream_snapshots SET data = x'c1' WHERE stream = ?1",
            [objective_stream(KEYS[2])],
        )
        .unwrap();
    assert!(old > 0 && garbage > 0);
    w.app.set_time_travel_budget(0);
    assert_equal_to_the_full_fold(&w, 0..=head);
    let stats = w.app.time_travel_stats();
    assert!(stats.snapshots_refused > head, "{stats:?}");
    // The fourth stream's snapshots are still good, and used.
    assert!(stats.snapshots_used > 0, "{stats:?}");
}

#[test]
fn a_log_written_without_stream_snapshots_gets_them_and_answers_the_same() {
    let w = World::with_seed();
    w.app.set_stream_snapshot_every(0);
    grow(&w, 1, 12);
    assert!(w.app.flush_stream_snapshots(Duration::from_secs(30)));
    assert!(snapshot_versions(&w, KEYS[0]).is_empty());
    let written =
        traguardo::snapshots::write_stream_snapshots(w.app.store().as_ref(), EVERY).unwrap();
    let versions = snapshot_versions(&w, KEYS[0]);
    assert!(versions.len() >= 4, "{versions:?}");
    assert!(written >= 4 * versions.len() as u64 - 4, "{written}");
    w.app.set_time_travel_budget(0);
    assert_equal_to_the_full_fold(&w, 0..=head(&w));
    assert!(w.app.time_travel_stats().snapshots_used > 0);
}
