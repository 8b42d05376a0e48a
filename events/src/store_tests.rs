//! Contract tests of the stores. Each test of the contract runs twice, against
//! SQLite (a fresh file in its own temporary folder) and against PostgreSQL (a
//! fresh database of its own, dropped afterwards even when the test fails):
//! optimistic concurrency under racing threads, atomic batches, the append-only
//! triggers, every read, idempotency keys, `verify`, several processes on one
//! log, and following another process's appends. Tests never skip: with no
//! PostgreSQL to reach, the PostgreSQL half fails and says why.
//!
//! PostgreSQL is found at `TRAGUARDO_TEST_PG` (a server URL without a database,
//! default `postgres://postgres@127.0.0.1:5432`).

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::{mpsc, Arc, Barrier, Mutex};
use std::task::{Context, Poll, Wake};

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Value};

use crate::chain;
use crate::pg::PgStore;
use crate::sqlite::SqliteStore;
use crate::store::{IdempotencyKey, IdempotentResult, Store, StoreExt, Until};
use crate::{AppendBatch, Clock, Error, ExpectedVersion, Head, NewEvent, RecordedEvent};

/// The engine a contract test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Engine {
    Sqlite,
    Postgres,
}

/// Where a fixture's log lives; dropped after the stores.
enum Db {
    Sqlite(tempfile::TempDir),
    Postgres(PgDb),
}

/// A store over a fresh database, with a manual clock.
struct Fixture {
    store: Arc<dyn Store>,
    clock: Clock,
    db: Db,
}

impl Fixture {
    fn new(engine: Engine) -> Fixture {
        let clock = Clock::manual(t0());
        let db = match engine {
            Engine::Sqlite => Db::Sqlite(tempfile::tempdir().expect("a temporary folder")),
            Engine::Postgres => Db::Postgres(PgDb::create()),
        };
        let store = open_on(&db, clock.clone());
        Fixture { store, clock, db }
    }

    fn engine(&self) -> Engine {
        match self.db {
            Db::Sqlite(_) => Engine::Sqlite,
            Db::Postgres(_) => Engine::Postgres,
        }
    }

    /// Another store on the same database: another process.
    fn open_another(&self, clock: Clock) -> Arc<dyn Store> {
        open_on(&self.db, clock)
    }

    /// Runs `sql` through a connection that does not go through the store.
    fn raw_execute(&self, sql: &str) -> Result<(), String> {
        match &self.db {
            Db::Sqlite(dir) => rusqlite::Connection::open(dir.path().join("log.db"))
                .expect("a raw connection")
                .execute_batch(sql)
                .map_err(|e| e.to_string()),
            Db::Postgres(db) => db
                .raw()
                .batch_execute(sql)
                .map_err(|e| crate::pg::describe(&e)),
        }
    }

    /// A number read through a connection that does not go through the store.
    fn raw_count(&self, sql: &str) -> i64 {
        match &self.db {
            Db::Sqlite(dir) => rusqlite::Connection::open(dir.path().join("log.db"))
                .expect("a raw connection")
                .query_row(sql, [], |r| r.get(0))
                .expect("the count reads"),
            Db::Postgres(db) => db
                .raw()
                .query_one(sql, &[])
                .expect("the count reads")
                .get(0),
        }
    }

    /// Drops append-only triggers behind the store's back.
    fn drop_triggers(&self, names: &[&str]) {
        for name in names {
            let sql = match self.engine() {
                Engine::Sqlite => format!("DROP TRIGGER {name}"),
                Engine::Postgres => format!("DROP TRIGGER {name} ON events"),
            };
            self.raw_execute(&sql).expect("the trigger drops");
        }
    }

    /// Appends one event to `stream` with no expectation.
    fn append_one(&self, stream: &str, data: Value) -> RecordedEvent {
        let mut events = self
            .store
            .append(AppendBatch::new().push(event(stream, data)))
            .expect("the append succeeds");
        events.pop().expect("one event")
    }

    fn all(&self) -> Vec<RecordedEvent> {
        self.store.read_all(0, 1_000_000).expect("the log reads")
    }
}

fn open_on(db: &Db, clock: Clock) -> Arc<dyn Store> {
    match db {
        Db::Sqlite(dir) => {
            Arc::new(SqliteStore::open(dir.path().join("log.db"), clock).expect("the store opens"))
        }
        Db::Postgres(db) => Arc::new(PgStore::open(&db.url, clock).expect("the store opens")),
    }
}

/// A PostgreSQL database of one test's own, dropped when the test ends, however
/// it ends.
struct PgDb {
    name: String,
    url: String,
}

impl PgDb {
    fn server() -> String {
        std::env::var("TRAGUARDO_TEST_PG")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
            .trim_end_matches('/')
            .to_string()
    }

    fn admin() -> ::postgres::Client {
        let url = format!("{}/postgres", Self::server());
        ::postgres::Client::connect(&url, ::postgres::NoTls).unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is not answering at {url} ({}). Start it with \
                 `pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start`, \
                 or set TRAGUARDO_TEST_PG to a server URL",
                crate::pg::describe(&e)
            )
        })
    }

    fn create() -> PgDb {
        let name = format!("traguardo_test_{}", uuid::Uuid::now_v7().simple());
        Self::admin()
            .batch_execute(&format!(
                "CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8'"
            ))
            .expect("a fresh database");
        let url = format!("{}/{name}", Self::server());
        PgDb { name, url }
    }

    /// A connection that does not go through the store at all.
    fn raw(&self) -> ::postgres::Client {
        ::postgres::Client::connect(&self.url, ::postgres::NoTls).expect("a raw connection")
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        // FORCE ends the connections a failed test may have left open.
        let dropped = Self::admin().batch_execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
        if let Err(e) = dropped {
            eprintln!("could not drop test database {}: {e}", self.name);
        }
    }
}

/// Runs each named contract test against both engines: `sqlite::name` and
/// `postgres::name`.
macro_rules! contract_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[test] fn $name() { super::$name(super::Engine::Sqlite) } )*
        }
        mod postgres {
            $( #[test] fn $name() { super::$name(super::Engine::Postgres) } )*
        }
    };
}

contract_tests!(
    sixteen_threads_racing_on_one_stream_win_each_version_exactly_once,
    sixteen_threads_on_different_streams_all_succeed,
    a_batch_whose_second_stream_conflicts_appends_nothing,
    a_batch_failing_after_its_inserts_is_rolled_back_alone_within_its_group_commit,
    update_and_delete_through_another_connection_are_refused,
    read_stream_stops_at_each_kind_of_until,
    read_all_pages_through_the_log_after_a_seq,
    seq_at_is_the_last_seq_recorded_by_a_time,
    record_time_never_goes_backwards_along_the_log_even_when_the_clock_does,
    an_event_with_a_float_in_its_data_is_refused,
    an_idempotency_key_is_committed_with_its_batch_and_cannot_be_used_twice,
    an_idempotency_key_survives_a_restart,
    a_conflict_names_the_stream_the_expected_and_the_actual_version,
    verify_holds_published_heads_and_names_those_the_log_no_longer_holds,
    verify_finds_the_first_row_changed_behind_the_stores_back,
    a_second_store_on_the_same_database_extends_the_same_chain,
    two_processes_appending_from_many_threads_never_fork_gap_or_lose_an_event,
    a_foreign_append_moves_the_followed_head,
    commit_hooks_and_the_head_watch_see_every_commit_in_seq_order,
    after_shutdown_queued_appends_are_done_and_later_ones_refused,
    an_append_failing_in_the_database_fails_alone_and_its_group_is_retried_without_it,
    for_each_visits_every_event_in_order_and_stops_at_the_first_error,
    a_panicking_commit_hook_does_not_stop_the_writer,
    the_store_works_from_inside_an_async_runtime,
    the_tree_is_the_memory_tree_of_the_log_after_appends_batches_and_group_commits,
    a_log_without_tree_nodes_gets_them_at_open_and_at_the_next_append,
    proofs_beyond_the_head_from_seq_zero_or_backwards_are_refused,
    a_log_imported_into_either_engine_keeps_every_hash_and_a_fork_is_refused,
    web_sessions_live_beside_the_log_are_shared_by_stores_expire_and_end_when_closed,
    idempotency_keys_imported_into_either_engine_answer_as_on_the_source,
    a_snapshot_replaces_the_one_before_survives_a_restart_and_is_discarded_on_request,
    a_stream_is_read_from_a_version_on_up_to_each_kind_of_until,
    the_nearest_stream_snapshot_at_or_before_a_seq_comes_back_and_a_new_one_replaces_it,
    batches_of_every_size_around_the_multi_row_inserts_are_appended_whole_and_in_order,
    a_long_batch_failing_midway_in_the_database_leaves_nothing_and_its_group_goes_on,
);

/// `read_stream_from`: the versions from `from` on, bounded like `read_stream`;
/// from version 1 it is `read_stream`.
fn a_stream_is_read_from_a_version_on_up_to_each_kind_of_until(engine: Engine) {
    let f = Fixture::new(engine);
    for i in 0..6 {
        for stream in ["objective/a", "objective/b"] {
            f.clock.advance(chrono::Duration::seconds(1));
            f.store
                .append(AppendBatch::new().push(event(stream, json!({"i": i}))))
                .unwrap();
        }
    }
    let all = f.store.read_stream("objective/a", Until::End).unwrap();
    let versions =
        |events: Vec<RecordedEvent>| events.iter().map(|e| e.version).collect::<Vec<_>>();
    let read = |from, until| {
        f.store
            .read_stream_from("objective/a", from, until)
            .unwrap()
    };
    assert_eq!(read(1, Until::End), all);
    assert_eq!(versions(read(4, Until::End)), [4, 5, 6]);
    assert_eq!(versions(read(2, Until::Version(4))), [2, 3, 4]);
    // Seq 7 is the fourth event of `objective/a` (the streams alternate).
    assert_eq!(versions(read(3, Until::Seq(7))), [3, 4]);
    assert_eq!(
        versions(read(3, Until::RecordedAt(all[4].recorded_at))),
        [3, 4, 5]
    );
    assert!(read(5, Until::Seq(4)).is_empty());
    assert!(read(7, Until::End).is_empty());
    assert_eq!(read(5, Until::End), all[4..].to_vec());
    // The raw visit gives the same events, with the data as the stored text.
    let raw = |from, until| {
        let mut events = Vec::new();
        f.store
            .visit_stream_raw("objective/a", from, until, &mut |event, data| {
                events.push(event.to_recorded(serde_json::from_str(data).unwrap()));
                std::ops::ControlFlow::Continue(())
            })
            .unwrap();
        events
    };
    for (from, until) in [
        (1, Until::End),
        (4, Until::End),
        (2, Until::Version(4)),
        (3, Until::Seq(7)),
        (3, Until::RecordedAt(all[4].recorded_at)),
        (5, Until::Seq(4)),
        (7, Until::End),
    ] {
        assert_eq!(raw(from, until), read(from, until), "{from} {until:?}");
    }
    // It stops where the visitor breaks off.
    let mut seen = 0;
    f.store
        .visit_stream_raw("objective/a", 1, Until::End, &mut |_, _| {
            seen += 1;
            std::ops::ControlFlow::Break(())
        })
        .unwrap();
    assert_eq!(seen, 1);
}

/// Stream snapshots: the one with the greatest seq at or before the one asked
/// comes back byte for byte (none before the first), other streams are apart,
/// a second put at the same version replaces the first, and the log is
/// untouched.
fn the_nearest_stream_snapshot_at_or_before_a_seq_comes_back_and_a_new_one_replaces_it(
    engine: Engine,
) {
    use crate::store::StreamSnapshot;
    let f = Fixture::new(engine);
    for i in 0..4 {
        for stream in ["objective/a", "objective/b"] {
            f.store
                .append(AppendBatch::new().push(event(stream, json!({"i": i}))))
                .unwrap();
        }
    }
    let of = |stream: &str, version: u64, data: Vec<u8>| {
        let e = f
            .store
            .read_stream(stream, Until::Version(version))
            .unwrap();
        let e = e.last().unwrap();
        StreamSnapshot {
            stream: stream.into(),
            version,
            seq: e.seq,
            hash: e.hash.clone(),
            schema: 3,
            data,
        }
    };
    // `objective/a` holds seqs 1, 3, 5, 7; `objective/b` 2, 4, 6, 8.
    let (a2, a4, b2) = (
        of("objective/a", 2, vec![2, 0, 255]),
        of("objective/a", 4, (0..=255).collect()),
        of("objective/b", 2, vec![7]),
    );
    f.store
        .put_stream_snapshots(&[a2.clone(), a4.clone(), b2.clone()])
        .unwrap();
    f.store.put_stream_snapshots(&[]).unwrap();
    let at = |stream: &str, seq| f.store.stream_snapshot_at(stream, seq).unwrap();
    assert_eq!(at("objective/a", 2), None);
    assert_eq!(at("objective/a", 3), Some(a2.clone()));
    assert_eq!(at("objective/a", 6), Some(a2));
    assert_eq!(at("objective/a", 7), Some(a4.clone()));
    assert_eq!(at("objective/a", u64::MAX), Some(a4.clone()));
    assert_eq!(at("objective/b", 100), Some(b2));
    assert_eq!(at("objective/c", 100), None);
    let replaced = StreamSnapshot {
        schema: 4,
        data: vec![1, 2, 3],
        ..a4
    };
    f.store
        .put_stream_snapshots(std::slice::from_ref(&replaced))
        .unwrap();
    f.store.shutdown();
    let reopened = f.open_another(f.clock.clone());
    assert_eq!(
        reopened.stream_snapshot_at("objective/a", 8).unwrap(),
        Some(replaced)
    );
    assert_eq!(reopened.head().unwrap().seq, 8, "the log is untouched");
    assert!(reopened.verify(&[]).unwrap().ok());
}

/// The writer inserts a group's events (and the tree's nodes) in multi-row
/// statements of 256, 64, 16, 4 and 1 rows: batches of every size around those
/// sizes, over streams old and new, come back whole, in order, each version the
/// next of its stream, with their data as given, a chain that verifies and the
/// tree of the log.
fn batches_of_every_size_around_the_multi_row_inserts_are_appended_whole_and_in_order(
    engine: Engine,
) {
    let f = Fixture::new(engine);
    let sizes = [
        1usize, 2, 3, 4, 5, 15, 16, 17, 20, 63, 64, 65, 69, 84, 85, 129, 255, 256, 257, 341,
    ];
    let mut expected: Vec<(String, Value)> = Vec::new();
    for (b, size) in sizes.iter().enumerate() {
        let mut batch = AppendBatch::new();
        for i in 0..*size {
            // Two long-lived streams and one new stream per batch, interleaved;
            // a note with characters the canonical form escapes.
            let stream = match i % 3 {
                0 => "objective/2022-2250-A".to_string(),
                1 => format!("objective/2022-{b}-N"),
                _ => "objective/2022-2250-B".to_string(),
            };
            let data = json!({"b": b, "i": i, "note": format!("riga {i}\n\"è\" \u{1}")});
            expected.push((stream.clone(), data.clone()));
            batch = batch.push(event(&stream, data));
        }
        let appended = f.store.append(batch).unwrap();
        assert_eq!(appended.len(), *size);
    }
    let all = f.all();
    assert_eq!(all.len(), expected.len());
    assert_gapless_chain(&all);
    let mut versions = std::collections::HashMap::new();
    for (event, (stream, data)) in all.iter().zip(&expected) {
        assert_eq!(&event.stream, stream);
        assert_eq!(&event.data, data);
        let version = versions.entry(stream.clone()).or_insert(0u64);
        *version += 1;
        assert_eq!(event.version, *version, "seq {}", event.seq);
    }
    assert!(f.store.verify(&[]).unwrap().ok());
    assert_tree_matches(&f);
}

/// A batch long enough to need several multi-row statements fails in the
/// database on its 270th event (a statement past the first): nothing of it is
/// left (no event, no idempotency key, no tree node), and the appends grouped
/// with it, before and after, are committed.
fn a_long_batch_failing_midway_in_the_database_leaves_nothing_and_its_group_goes_on(
    engine: Engine,
) {
    let f = Fixture::new(engine);
    f.raw_execute(match engine {
        Engine::Sqlite => {
            "CREATE TRIGGER poison BEFORE INSERT ON events
             WHEN NEW.data LIKE '%\"poison\":true%'
             BEGIN SELECT RAISE(ABORT, 'poisoned'); END;"
        }
        Engine::Postgres => {
            "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 IF NEW.data LIKE '%\"poison\":true%' THEN RAISE EXCEPTION 'poisoned'; END IF;
                 RETURN NEW;
             END $$;
             CREATE TRIGGER poison BEFORE INSERT ON events
                 FOR EACH ROW EXECUTE FUNCTION poison();"
        }
    })
    .unwrap();
    let (release, held) = mpsc::channel::<()>();
    let held = Mutex::new(Some(held));
    let groups: Arc<Mutex<Vec<usize>>> = Arc::default();
    let seen = groups.clone();
    f.store.on_commit(Arc::new(move |events: &[RecordedEvent]| {
        seen.lock().unwrap().push(events.len());
        if let Some(held) = held.lock().unwrap().take() {
            let _ = held.recv();
        }
    }));
    let append = |stream: &'static str, n: usize, poison_at: Option<usize>, key: Option<&str>| {
        let store = f.store.clone();
        let key = key.map(|k| IdempotencyKey {
            key: k.into(),
            request_sha256: "bb".repeat(32),
        });
        std::thread::spawn(move || {
            let mut batch = AppendBatch::new();
            for i in 0..n {
                batch = batch.push(event(
                    stream,
                    json!({"i": i, "poison": poison_at == Some(i)}),
                ));
            }
            block_on(store.append_idempotent(batch, key))
        })
    };
    let first = append("objective/2022-2250-A", 1, None, None);
    while groups.lock().unwrap().is_empty() {
        std::thread::yield_now();
    }
    let before = append("objective/2022-2250-B", 30, None, None);
    let poisoned = append("objective/2022-2250-P", 300, Some(269), Some("k-poison"));
    let after = append("objective/2022-2250-C", 70, None, None);
    std::thread::sleep(std::time::Duration::from_millis(50));
    release.send(()).unwrap();

    assert_eq!(first.join().unwrap().unwrap().len(), 1);
    assert_eq!(before.join().unwrap().unwrap().len(), 30);
    assert_eq!(after.join().unwrap().unwrap().len(), 70);
    match poisoned.join().unwrap() {
        Err(e @ (Error::Sqlite(_) | Error::Postgres(_))) => {
            assert!(e.to_string().contains("poisoned"), "{e}")
        }
        other => panic!("expected the poisoned batch to fail, got {other:?}"),
    }
    let all = f.all();
    assert_eq!(all.len(), 101);
    assert_gapless_chain(&all);
    assert!(all.iter().all(|e| e.stream != "objective/2022-2250-P"));
    assert!(f.store.idempotent_result("k-poison").unwrap().is_none());
    assert!(f.store.verify(&[]).unwrap().ok());
    assert_tree_matches(&f);
}

/// Web sessions: kept in `web_sessions`, outside the chained log; one store
/// opens a session and another store on the same database (another process)
/// finds it; a session idle too long is gone (its row deleted), a closed one
/// too, and none of it touches the log.
fn web_sessions_live_beside_the_log_are_shared_by_stores_expire_and_end_when_closed(
    engine: Engine,
) {
    let f = Fixture::new(engine);
    f.append_one("org", json!({"n": 1}));
    let other = f.open_another(Clock::system());
    let (a, b, old) = ("a".repeat(64), "b".repeat(64), "c".repeat(64));
    let idle = 8 * 3600;
    let now = 1_700_000_000;
    f.store
        .open_session(&old, "rossi", now - idle - 5, idle)
        .unwrap();
    f.store.open_session(&a, "specchia", now, idle).unwrap();
    assert_eq!(
        f.raw_count("SELECT COUNT(*) FROM web_sessions"),
        1,
        "opening a session deletes those idle too long"
    );
    assert_eq!(
        other.session(&a, now + 10, idle).unwrap().as_deref(),
        Some("specchia"),
        "another store on the same database finds it"
    );
    assert_eq!(other.session(&b, now, idle).unwrap(), None);
    // Used within the idle time it stays open, and its last use moves on.
    assert_eq!(
        f.store
            .session(&a, now + idle - 1, idle)
            .unwrap()
            .as_deref(),
        Some("specchia")
    );
    assert_eq!(
        other
            .session(&a, now + 2 * idle - 2, idle)
            .unwrap()
            .as_deref(),
        Some("specchia")
    );
    // Idle too long: gone, and its row with it.
    assert_eq!(f.store.session(&a, now + 3 * idle, idle).unwrap(), None);
    assert_eq!(f.raw_count("SELECT COUNT(*) FROM web_sessions"), 0);
    // Closed on one store: gone on both; the row may be deleted, the log's may not.
    f.store.open_session(&b, "bocchio", now, idle).unwrap();
    assert!(other.session(&b, now, idle).unwrap().is_some());
    other.close_session(&b).unwrap();
    assert_eq!(f.store.session(&b, now, idle).unwrap(), None);
    f.store.close_session(&b).unwrap();
    // A session secret is unique: the same one twice is refused.
    f.store.open_session(&a, "specchia", now, idle).unwrap();
    assert!(other.open_session(&a, "bocchio", now, idle).is_err());
    f.raw_execute("DELETE FROM web_sessions")
        .expect("sessions may be deleted");
    assert_eq!(f.all().len(), 1, "the log is untouched");
    assert!(f.store.verify(&[]).unwrap().ok());
    other.shutdown();
}

/// `visit_keys` and `import_keys` (what `traguardo copy` moves keys with) into
/// a fresh log of each engine, from a log of the other: each key answers as on
/// the source and cannot be used again; a key naming seqs the log does not hold,
/// or one recorded already, is refused with nothing written.
fn idempotency_keys_imported_into_either_engine_answer_as_on_the_source(engine: Engine) {
    let source = Fixture::new(match engine {
        Engine::Sqlite => Engine::Postgres,
        Engine::Postgres => Engine::Sqlite,
    });
    let stream = "objective/2022-2250-A";
    source.append_one(stream, json!({"n": 0}));
    for i in 1..=3 {
        let key = IdempotencyKey {
            key: format!("manager-2250:richiesta-{i}"),
            request_sha256: format!("{i:02}").repeat(32),
        };
        block_on(
            source.store.append_idempotent(
                AppendBatch::new()
                    .push(event(stream, json!({"n": i})))
                    .push(event(stream, json!({"n": i, "second": true}))),
                Some(key),
            ),
        )
        .expect("appended");
    }
    let mut keys = Vec::new();
    source
        .store
        .visit_keys(&mut |key| {
            keys.push(key);
            Ok(())
        })
        .unwrap();
    assert_eq!(
        keys.iter().map(|k| k.result.first_seq).collect::<Vec<_>>(),
        [2, 4, 6],
        "in the order of their seqs"
    );
    let target = Fixture::new(engine);
    // Before the events are there, the keys name seqs the log does not hold.
    assert!(matches!(
        target.store.import_keys(&keys),
        Err(Error::Import(_))
    ));
    target.store.import_recorded(&source.all()).unwrap();
    target.store.import_keys(&keys[..1]).unwrap();
    // A key recorded already refuses the whole import.
    match target.store.import_keys(&keys) {
        Err(Error::KeyUsed(key)) => assert_eq!(key, keys[0].key),
        other => panic!("expected KeyUsed, got {other:?}"),
    }
    let mut imported = Vec::new();
    target
        .store
        .visit_keys(&mut |key| {
            imported.push(key);
            Ok(())
        })
        .unwrap();
    assert_eq!(imported, keys[..1]);
    target.store.import_keys(&keys[1..]).unwrap();
    for key in &keys {
        assert_eq!(
            target.store.idempotent_result(&key.key).unwrap().as_ref(),
            Some(&key.result)
        );
    }
    // A key that came with the log cannot be used again on it.
    let reused = block_on(target.store.append_idempotent(
        AppendBatch::new().push(event(stream, json!({"n": 9}))),
        Some(IdempotencyKey {
            key: keys[2].key.clone(),
            request_sha256: keys[2].result.request_sha256.clone(),
        }),
    ));
    assert!(matches!(reused, Err(Error::KeyUsed(_))), "{reused:?}");
    assert_eq!(target.all(), source.all());
}

/// Snapshots live beside the log: the latest of a name comes back byte for
/// byte (after a restart too), a new one replaces the old, other names are
/// left alone, and discarding removes them without touching the log.
fn a_snapshot_replaces_the_one_before_survives_a_restart_and_is_discarded_on_request(
    engine: Engine,
) {
    use crate::store::Snapshot;
    let f = Fixture::new(engine);
    for i in 0..3 {
        f.store
            .append(AppendBatch::new().push(event("org", json!({"i": i}))))
            .unwrap();
    }
    assert_eq!(f.store.latest_snapshot("registry").unwrap(), None);
    let at = |seq: u64, bytes: Vec<u8>| Snapshot {
        name: "registry".into(),
        seq,
        hash: f.store.read_all(seq - 1, 1).unwrap()[0].hash.clone(),
        schema: 7,
        taken_at: f.clock.now(),
        data: bytes,
    };
    let first = at(2, vec![0, 1, 2, 255]);
    f.store.save_snapshot(&first).unwrap();
    assert_eq!(f.store.latest_snapshot("registry").unwrap(), Some(first));
    // Three parts and a bit, every byte value.
    let size = 3 * crate::store::SNAPSHOT_PART_BYTES + 12_345;
    let big: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
    let second = at(3, big);
    f.store.save_snapshot(&second).unwrap();
    let other = Snapshot {
        name: "objective/2022-2250-A".into(),
        ..at(1, vec![9])
    };
    f.store.save_snapshot(&other).unwrap();
    f.store.shutdown();
    let reopened = f.open_another(f.clock.clone());
    assert_eq!(
        reopened.latest_snapshot("registry").unwrap(),
        Some(second.clone()),
        "the newer snapshot replaced the older and survived the restart"
    );
    // Read part by part: the stored parts in order, each as it was written.
    let mut parts = Vec::new();
    let head = reopened
        .read_snapshot("registry", &mut |head| head.seq == 3, &mut |part| {
            parts.push(part.to_vec());
        })
        .unwrap()
        .unwrap();
    assert_eq!((head.seq, head.schema, head.data.len()), (3, 7, 0));
    assert_eq!(
        parts.iter().map(Vec::len).collect::<Vec<_>>(),
        [crate::store::SNAPSHOT_PART_BYTES; 3]
            .into_iter()
            .chain([12_345])
            .collect::<Vec<_>>()
    );
    assert_eq!(parts.concat(), second.data);
    // Not wanted: its head, and no part read.
    let mut given = 0;
    let head = reopened
        .read_snapshot("registry", &mut |_| false, &mut |_| given += 1)
        .unwrap();
    assert_eq!(head.map(|h| h.seq), Some(3));
    assert_eq!(given, 0);
    reopened.discard_snapshots("registry").unwrap();
    assert_eq!(reopened.latest_snapshot("registry").unwrap(), None);
    assert_eq!(
        reopened.latest_snapshot("objective/2022-2250-A").unwrap(),
        Some(other)
    );
    assert_eq!(reopened.head().unwrap().seq, 3, "the log is untouched");
    assert!(reopened.verify(&[]).unwrap().ok());
}

/// `import_recorded` (what `traguardo copy` uses) into a fresh log of each
/// engine, from a log of the other: every row as it was, and events that do
/// not continue the log are refused whole.
fn a_log_imported_into_either_engine_keeps_every_hash_and_a_fork_is_refused(engine: Engine) {
    let source = Fixture::new(match engine {
        Engine::Sqlite => Engine::Postgres,
        Engine::Postgres => Engine::Sqlite,
    });
    for i in 0..5 {
        source.append_one(
            &format!("objective/2022-2250-{i}"),
            json!({"i": i, "note": "città"}),
        );
    }
    let events = source.all();
    let target = Fixture::new(engine);
    let head = target
        .store
        .import_recorded(&events[..3])
        .expect("imported");
    assert_eq!(head.seq, 3);
    // Seq 5 after seq 3, or seq 4 again: refused, nothing written.
    for wrong in [&events[4..], &events[2..4]] {
        assert!(matches!(
            target.store.import_recorded(wrong),
            Err(Error::Import(_))
        ));
    }
    target
        .store
        .import_recorded(&events[3..])
        .expect("imported");
    assert_eq!(target.all(), events);
    let v = target
        .store
        .verify(&[source.store.head().unwrap()])
        .unwrap();
    assert!(v.ok(), "{v:?}");
    // The importing store's head watch moved with it.
    assert_eq!(target.store.watch_head().borrow().seq, 5);
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2022, 6, 10, 9, 12, 3).unwrap()
}

fn event(stream: &str, data: Value) -> NewEvent {
    NewEvent {
        stream: stream.into(),
        event_type: "phase_started".into(),
        schema: 1,
        data,
        actor: "Dott. Stefano Specchia".into(),
        role: "manager".into(),
        correlation: None,
    }
}

/// Drives a future on this thread (the store's async API needs no runtime: its
/// futures wait on a oneshot channel that the writer thread completes).
fn block_on<F: Future>(future: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Arc::new(Unpark(std::thread::current())).into();
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        std::thread::park();
    }
}

/// The stored tree is exactly the tree of the log's chain hashes: the root at
/// every size, every leaf's inclusion proof and every consistency proof agree
/// with a [`MemoryTree`] built from the exported log, and the table holds the
/// nodes of its complete tiles and above, no node more (a rolled-back batch
/// left none behind).
fn assert_tree_matches(f: &Fixture) {
    use traguardo_tlog::merkle::{chain_leaf_hash_hex, MemoryTree};
    let events = f.all();
    let leaves: Vec<_> = events
        .iter()
        .map(|e| chain_leaf_hash_hex(&e.hash).unwrap())
        .collect();
    let memory = MemoryTree::from_leaf_hashes(&leaves);
    let n = events.len() as u64;
    for size in 0..=n {
        assert_eq!(
            f.store.tree_root(size).unwrap(),
            memory.root(size).unwrap(),
            "root at size {size}"
        );
    }
    for seq in 1..=n {
        assert_eq!(
            f.store.inclusion_proof(seq, n).unwrap(),
            memory.inclusion_proof(seq - 1, n).unwrap(),
            "inclusion of seq {seq}"
        );
    }
    for from in 1..=n {
        assert_eq!(
            f.store.consistency_proof(from, n).unwrap(),
            memory.consistency_proof(from, n).unwrap(),
            "consistency from {from}"
        );
    }
    // Every complete subtree from the tiles' level up once, and nothing
    // else: n/2^l nodes at level l.
    let expected: u64 = (crate::tree::TILE_LEVEL..64).map(|l| n >> l).sum();
    assert_eq!(
        f.raw_count("SELECT COUNT(*) FROM tree_nodes") as u64,
        expected,
        "the tree table holds exactly the tiles' nodes of {n} leaves"
    );
}

fn the_tree_is_the_memory_tree_of_the_log_after_appends_batches_and_group_commits(engine: Engine) {
    let f = Fixture::new(engine);
    assert_tree_matches(&f);
    for i in 0..5 {
        f.append_one("objective/2022-2250-A", json!({ "n": i }));
    }
    assert_tree_matches(&f);
    // Up to two events short of the first tile (32 leaves)...
    let mut batch = AppendBatch::new();
    for i in 0..25 {
        batch = batch.push(event(
            &format!("objective/2022-2250-{}", i % 11),
            json!({ "n": i }),
        ));
    }
    f.store.append(batch).unwrap();
    assert_tree_matches(&f);
    // ...which group commits complete: sixteen threads appending at once
    // share transactions.
    let appenders: Vec<_> = (0..16)
        .map(|t| {
            let store = f.store.clone();
            std::thread::spawn(move || {
                for i in 0..3 {
                    store
                        .append(
                            AppendBatch::new()
                                .push(event(&format!("objective/t{t}"), json!({ "i": i })))
                                .push(event(&format!("objective/u{t}"), json!({ "i": i }))),
                        )
                        .unwrap();
                }
            })
        })
        .collect();
    for a in appenders {
        a.join().unwrap();
    }
    assert_eq!(f.store.head().unwrap().seq, 5 + 25 + 16 * 3 * 2);
    assert_tree_matches(&f);
    // A second store (another process) carries the same tree on.
    let other = f.open_another(f.clock.clone());
    other
        .append(AppendBatch::new().push(event("org", json!({}))))
        .unwrap();
    other.shutdown();
    assert_tree_matches(&f);
}

fn a_log_without_tree_nodes_gets_them_at_open_and_at_the_next_append(engine: Engine) {
    let f = Fixture::new(engine);
    // Three complete tiles of 32 leaves and part of a fourth.
    let mut batch = AppendBatch::new();
    for i in 0..99 {
        batch = batch.push(event("objective/2022-2250-A", json!({ "n": i })));
    }
    f.store.append(batch).unwrap();
    f.append_one("objective/2022-2250-A", json!({ "n": 99 }));
    // A log written before the tree existed: no nodes at all.
    let drop_triggers = match engine {
        Engine::Sqlite => "DROP TRIGGER tree_nodes_no_delete; DELETE FROM tree_nodes;",
        Engine::Postgres => {
            "DROP TRIGGER tree_nodes_no_delete ON tree_nodes; DELETE FROM tree_nodes;"
        }
    };
    f.raw_execute(drop_triggers).unwrap();
    assert_eq!(f.raw_count("SELECT COUNT(*) FROM tree_nodes"), 0);
    assert!(matches!(f.store.tree_root(100), Err(Error::Tree(_))));
    // The next append builds what is missing before it adds its own nodes.
    f.append_one("objective/2022-2250-A", json!({ "n": 100 }));
    assert_tree_matches(&f);
    // And so does opening the log.
    f.raw_execute("DELETE FROM tree_nodes").unwrap();
    let reopened = f.open_another(f.clock.clone());
    reopened.shutdown();
    assert_tree_matches(&f);
}

fn proofs_beyond_the_head_from_seq_zero_or_backwards_are_refused(engine: Engine) {
    use traguardo_tlog::merkle::TreeError;
    let f = Fixture::new(engine);
    for i in 0..3 {
        f.append_one("org", json!({ "n": i }));
    }
    assert!(matches!(f.store.inclusion_proof(0, 3), Err(Error::SeqZero)));
    assert!(matches!(
        f.store.inclusion_proof(4, 3),
        Err(Error::Tree(TreeError::IndexOutOfRange {
            index: 3,
            size: 3
        }))
    ));
    assert!(matches!(
        f.store.inclusion_proof(1, 4),
        Err(Error::Tree(TreeError::BeyondStored { size: 4, stored: 3 }))
    ));
    assert!(matches!(
        f.store.tree_root(4),
        Err(Error::Tree(TreeError::BeyondStored { size: 4, stored: 3 }))
    ));
    assert!(matches!(
        f.store.consistency_proof(3, 2),
        Err(Error::Tree(TreeError::FromAfterTo { from: 3, to: 2 }))
    ));
    assert!(matches!(
        f.store.consistency_proof(0, 2),
        Err(Error::Tree(TreeError::FromEmpty))
    ));
    assert!(f.store.consistency_proof(3, 3).unwrap().is_empty());
}

/// Every seq from 1 to the head is there once, and every event links to the one
/// before it.
fn assert_gapless_chain(events: &[RecordedEvent]) {
    let mut prev = chain::GENESIS.to_string();
    for (i, e) in events.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1, "seqs are gapless");
        assert_eq!(e.prev_hash, prev, "seq {} links to the one before", e.seq);
        assert_eq!(e.hash, chain::hash(&prev, e).unwrap(), "seq {} hash", e.seq);
        prev = e.hash.clone();
    }
}

fn sixteen_threads_racing_on_one_stream_win_each_version_exactly_once(engine: Engine) {
    const THREADS: usize = 16;
    const TARGET: u64 = 240;
    let f = Fixture::new(engine);
    let stream = "objective/2022-2250-A";
    let start = Arc::new(Barrier::new(THREADS));
    let workers: Vec<_> = (0..THREADS)
        .map(|thread| {
            let store = f.store.clone();
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                let (mut wins, mut conflicts) = (Vec::new(), 0u64);
                loop {
                    let read = store.stream_version(stream).expect("the version reads");
                    if read >= TARGET {
                        return (wins, conflicts);
                    }
                    let batch = AppendBatch::new()
                        .expect(stream, ExpectedVersion::Exact(read))
                        .push(event(stream, json!({"thread": thread, "read": read})));
                    match store.append(batch) {
                        Ok(events) => {
                            assert_eq!(events.len(), 1);
                            wins.push((events[0].version, events[0].seq, read));
                        }
                        Err(Error::Conflict {
                            stream: s,
                            expected,
                            actual,
                        }) => {
                            assert_eq!(s, stream);
                            assert_eq!(expected, read.to_string());
                            assert!(actual > read, "a conflict means the stream moved on");
                            conflicts += 1;
                        }
                        Err(other) => panic!("unexpected error: {other}"),
                    }
                }
            })
        })
        .collect();
    let mut wins = Vec::new();
    let mut conflicts = 0;
    for worker in workers {
        let (w, c) = worker.join().expect("no thread panicked");
        wins.extend(w);
        conflicts += c;
    }
    wins.sort();
    let versions: Vec<u64> = wins.iter().map(|w| w.0).collect();
    assert_eq!(
        versions,
        (1..=TARGET).collect::<Vec<_>>(),
        "one winner per version, no gap, no duplicate"
    );
    for (version, seq, read) in &wins {
        assert_eq!(
            *read + 1,
            *version,
            "the winner appended on the version it read"
        );
        assert_eq!(seq, version, "the only stream: seq equals version");
    }
    assert!(
        conflicts > 0,
        "16 racing threads must have lost some races, or the test proved nothing"
    );
    let stream_events = f.store.read_stream(stream, Until::End).unwrap();
    assert_eq!(
        stream_events.iter().map(|e| e.version).collect::<Vec<_>>(),
        (1..=TARGET).collect::<Vec<_>>()
    );
    assert_gapless_chain(&f.all());
    assert!(f.store.verify(&[]).unwrap().ok());
}

fn sixteen_threads_on_different_streams_all_succeed(engine: Engine) {
    const THREADS: usize = 16;
    const PER_THREAD: u64 = 20;
    let f = Fixture::new(engine);
    let start = Arc::new(Barrier::new(THREADS));
    let workers: Vec<_> = (0..THREADS)
        .map(|thread| {
            let store = f.store.clone();
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                let stream = format!("objective/2022-{}-A", 2200 + thread);
                for version in 0..PER_THREAD {
                    let batch = AppendBatch::new()
                        .expect(&stream, ExpectedVersion::Exact(version))
                        .push(event(&stream, json!({"n": version})));
                    let events = store.append(batch).expect("no conflict on its own stream");
                    assert_eq!(events[0].version, version + 1);
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("no thread panicked");
    }
    for thread in 0..THREADS {
        let stream = format!("objective/2022-{}-A", 2200 + thread);
        let events = f.store.read_stream(&stream, Until::End).unwrap();
        assert_eq!(
            events.iter().map(|e| e.version).collect::<Vec<_>>(),
            (1..=PER_THREAD).collect::<Vec<_>>()
        );
    }
    let all = f.all();
    assert_eq!(all.len() as u64, THREADS as u64 * PER_THREAD);
    assert_gapless_chain(&all);
    assert_eq!(f.store.head().unwrap().seq, THREADS as u64 * PER_THREAD);
}

fn a_batch_whose_second_stream_conflicts_appends_nothing(engine: Engine) {
    let f = Fixture::new(engine);
    f.append_one("objective/2022-2250-A", json!({"phase": 1}));
    f.append_one("objective/2022-2250-B", json!({"phase": 1}));
    f.append_one("objective/2022-2250-B", json!({"phase": 2}));
    let head = f.store.head().unwrap();

    let batch = AppendBatch::new()
        .expect("objective/2022-2250-A", ExpectedVersion::Exact(1))
        .expect("objective/2022-2250-B", ExpectedVersion::Exact(1))
        .push(event("objective/2022-2250-A", json!({"phase": 2})))
        .push(event("objective/2022-2250-B", json!({"phase": 3})));
    match f.store.append(batch) {
        Err(Error::Conflict {
            stream,
            expected,
            actual,
        }) => {
            assert_eq!(stream, "objective/2022-2250-B");
            assert_eq!(expected, "1");
            assert_eq!(actual, 2);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    assert_eq!(f.store.head().unwrap(), head, "the head did not move");
    assert_eq!(
        f.store
            .read_stream("objective/2022-2250-A", Until::End)
            .unwrap()
            .len(),
        1,
        "the first stream got nothing"
    );
    assert_eq!(f.all().len(), 3);

    // The same batch with the right expectations goes through whole, with the
    // next seqs.
    let batch = AppendBatch::new()
        .expect("objective/2022-2250-A", ExpectedVersion::Exact(1))
        .expect("objective/2022-2250-B", ExpectedVersion::Exact(2))
        .push(event("objective/2022-2250-A", json!({"phase": 2})))
        .push(event("objective/2022-2250-B", json!({"phase": 3})));
    let events = f.store.append(batch).unwrap();
    assert_eq!(
        events
            .iter()
            .map(|e| (e.seq, e.version))
            .collect::<Vec<_>>(),
        [(4, 2), (5, 3)]
    );
    assert_gapless_chain(&f.all());
}

fn a_batch_failing_after_its_inserts_is_rolled_back_alone_within_its_group_commit(engine: Engine) {
    let f = Fixture::new(engine);
    // Hold the writer inside its first commit so that the next appends queue up
    // and are committed as one group.
    let (release, held) = mpsc::channel::<()>();
    let held = Mutex::new(Some(held));
    let groups: Arc<Mutex<Vec<Vec<u64>>>> = Arc::default();
    let seen = groups.clone();
    f.store.on_commit(Arc::new(move |events: &[RecordedEvent]| {
        seen.lock()
            .unwrap()
            .push(events.iter().map(|e| e.seq).collect());
        if let Some(held) = held.lock().unwrap().take() {
            let _ = held.recv();
        }
    }));
    let key = |k: &str| IdempotencyKey {
        key: k.into(),
        request_sha256: "aa".repeat(32),
    };
    let first = {
        let store = f.store.clone();
        let k = key("k-1");
        std::thread::spawn(move || {
            block_on(store.append_idempotent(
                AppendBatch::new().push(event("objective/2022-2250-A", json!({"n": 1}))),
                Some(k),
            ))
        })
    };
    // Wait until the writer is inside the hook of the first commit.
    while groups.lock().unwrap().is_empty() {
        std::thread::yield_now();
    }
    // A batch that inserts two events and then fails on its idempotency key, and
    // a good batch behind it.
    let reused = {
        let store = f.store.clone();
        let k = key("k-1");
        std::thread::spawn(move || {
            block_on(
                store.append_idempotent(
                    AppendBatch::new()
                        .push(event("objective/2022-2250-B", json!({"n": 1})))
                        .push(event("objective/2022-2250-B", json!({"n": 2}))),
                    Some(k),
                ),
            )
        })
    };
    let good = {
        let store = f.store.clone();
        std::thread::spawn(move || {
            store.append(AppendBatch::new().push(event("objective/2022-2250-C", json!({"n": 1}))))
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(50));
    release.send(()).unwrap();

    assert_eq!(first.join().unwrap().unwrap()[0].seq, 1);
    match reused.join().unwrap() {
        Err(Error::KeyUsed(k)) => assert_eq!(k, "k-1"),
        other => panic!("expected KeyUsed, got {other:?}"),
    }
    let good = good.join().unwrap().unwrap();
    assert_eq!(good[0].seq, 2, "the failed batch left no seq behind");
    assert!(f
        .store
        .read_stream("objective/2022-2250-B", Until::End)
        .unwrap()
        .is_empty());
    assert_eq!(f.all().len(), 2);
    assert_gapless_chain(&f.all());
    assert!(f.store.verify(&[]).unwrap().ok());
    assert_tree_matches(&f);
}

fn update_and_delete_through_another_connection_are_refused(engine: Engine) {
    let f = Fixture::new(engine);
    let first = f.append_one("objective/2022-2250-A", json!({"phase": 1}));
    f.append_one("objective/2022-2250-A", json!({"phase": 2}));
    let refused = |sql: &str| {
        let e = f
            .raw_execute(sql)
            .expect_err("the database refuses it by itself");
        assert!(e.contains("append-only"), "refused by a trigger: {e}");
    };
    refused("UPDATE events SET data = '{\"phase\":9}' WHERE seq = 1");
    refused("UPDATE events SET actor = 'someone else'");
    refused("DELETE FROM events WHERE seq = 2");
    refused("DELETE FROM events");
    let head = f.store.head().unwrap().hash;
    let fresh = uuid::Uuid::now_v7().to_string();
    let hash = "ab".repeat(32);
    let insert = |verb: &str, seq: u64, version: u64, id: &str, prev: &str, tail: &str| {
        format!(
            "{verb} INTO events (seq, id, stream, version, type, schema, data, \
             actor, role, recorded_at, correlation, prev_hash, hash) VALUES ({seq}, '{id}', \
             'objective/2022-2250-A', {version}, 'phase_started', 1, '{{}}', 'x', 'admin', \
             '2022-06-10T09:12:03.000000Z', NULL, '{prev}', '{hash}') {tail}"
        )
    };
    // An insert that does not extend the chain: a copy that does not link to the
    // head, a stream version skipped.
    refused(&insert("INSERT", 3, 3, &fresh, chain::GENESIS, ""));
    refused(&insert("INSERT", 3, 4, &fresh, &head, ""));
    // Refused by a trigger, or by a key before the trigger runs.
    let refused_by_schema = |sql: &str| {
        let e = f
            .raw_execute(sql)
            .expect_err("the database refuses it by itself");
        assert!(
            e.contains("append-only") || e.to_lowercase().contains("unique"),
            "refused by the schema: {e}"
        );
    };
    // A seq skipped; a version taken again; a new stream not starting at 1.
    refused(&insert("INSERT", 4, 3, &fresh, &head, ""));
    refused_by_schema(&insert("INSERT", 3, 2, &fresh, &head, ""));
    refused(
        &insert("INSERT", 3, 3, &fresh, &head, "")
            .replace("objective/2022-2250-A", "objective/2022-2250-Z"),
    );
    // Two rows in one statement: versions out of log order (4 before 3), or
    // the second not linking to the first.
    let two = |first_version: u64, second_version: u64, second_prev: &str| {
        format!(
            "INSERT INTO events (seq, id, stream, version, type, schema, data, \
             actor, role, recorded_at, correlation, prev_hash, hash) VALUES \
             (3, '{fresh}', 'objective/2022-2250-A', {first_version}, 'phase_started', 1, \
             '{{}}', 'x', 'admin', '2022-06-10T09:12:03.000000Z', NULL, '{head}', '{hash}'), \
             (4, '{}', 'objective/2022-2250-A', {second_version}, 'phase_started', 1, '{{}}', \
             'x', 'admin', '2022-06-10T09:12:03.000000Z', NULL, '{second_prev}', '{}')",
            uuid::Uuid::now_v7(),
            "ef".repeat(32)
        )
    };
    refused(&two(4, 3, &hash));
    refused(&two(3, 4, &"cd".repeat(32)));
    // The same id again, at the right seq, version and link.
    refused_by_schema(&insert("INSERT", 3, 3, &first.id.to_string(), &head, ""));
    match engine {
        Engine::Sqlite => {
            // REPLACE deletes the row it collides with without firing DELETE triggers.
            refused(&insert(
                "INSERT OR REPLACE",
                1,
                1,
                &fresh,
                chain::GENESIS,
                "",
            )); // the same seq
            refused(&insert("INSERT OR REPLACE", 3, 1, &fresh, &head, "")); // the same (stream, version)
            refused(&insert(
                "INSERT OR REPLACE",
                3,
                3,
                &first.id.to_string(),
                &head,
                "",
            )); // the same id
        }
        Engine::Postgres => {
            refused("TRUNCATE events");
            refused(&insert(
                "INSERT",
                1,
                1,
                &fresh,
                chain::GENESIS,
                "ON CONFLICT (seq) DO UPDATE SET data = EXCLUDED.data",
            ));
        }
    }
    let events = f.all();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0], first);
    assert!(f.store.verify(&[]).unwrap().ok());
    // The store's own appends still go through.
    assert_eq!(f.append_one("org", json!({})).seq, 3);
}

fn read_stream_stops_at_each_kind_of_until(engine: Engine) {
    let f = Fixture::new(engine);
    let a = "objective/2022-2250-A";
    let b = "objective/2022-2250-B";
    // seq: stream, version, recorded at
    // 1: a1 t0, 2: b1 t0, 3: a2 t0+1d, 4: a3 t0+2d, 5: b2 t0+2d, 6: a4 t0+3d
    f.append_one(a, json!({"n": 1}));
    f.append_one(b, json!({"n": 1}));
    f.clock.advance(Duration::days(1));
    f.append_one(a, json!({"n": 2}));
    f.clock.advance(Duration::days(1));
    f.append_one(a, json!({"n": 3}));
    f.append_one(b, json!({"n": 2}));
    f.clock.advance(Duration::days(1));
    f.append_one(a, json!({"n": 4}));

    let seqs = |until| -> Vec<u64> {
        f.store
            .read_stream(a, until)
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect()
    };
    assert_eq!(seqs(Until::End), [1, 3, 4, 6]);
    assert_eq!(seqs(Until::Version(0)), Vec::<u64>::new());
    assert_eq!(seqs(Until::Version(2)), [1, 3]);
    assert_eq!(seqs(Until::Version(99)), [1, 3, 4, 6]);
    assert_eq!(seqs(Until::Seq(2)), [1]);
    assert_eq!(seqs(Until::Seq(4)), [1, 3, 4]);
    assert_eq!(
        seqs(Until::RecordedAt(t0() - Duration::seconds(1))),
        Vec::<u64>::new()
    );
    assert_eq!(seqs(Until::RecordedAt(t0())), [1]);
    assert_eq!(seqs(Until::RecordedAt(t0() + Duration::hours(36))), [1, 3]);
    assert_eq!(seqs(Until::RecordedAt(t0() + Duration::days(2))), [1, 3, 4]);
    // Versions come back in order, each event whole.
    let events = f.store.read_stream(a, Until::End).unwrap();
    assert_eq!(
        events.iter().map(|e| e.version).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    assert_eq!(events[1].data, json!({"n": 2}));
    assert_eq!(events[1].recorded_at, t0() + Duration::days(1));
    assert!(f
        .store
        .read_stream("objective/none", Until::End)
        .unwrap()
        .is_empty());

    // By prefix: both streams in seq order; a version bound makes no sense there.
    let prefixed = |until| -> Vec<u64> {
        f.store
            .read_streams_with_prefix("objective/2022-2250-", until)
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect()
    };
    assert_eq!(prefixed(Until::End), [1, 2, 3, 4, 5, 6]);
    assert_eq!(prefixed(Until::Seq(3)), [1, 2, 3]);
    assert_eq!(prefixed(Until::Version(1)), [1, 2, 3, 4, 5, 6]);
    assert_eq!(prefixed(Until::RecordedAt(t0())), [1, 2]);
    assert!(f
        .store
        .read_streams_with_prefix("objective/2023-", Until::End)
        .unwrap()
        .is_empty());
}

fn read_all_pages_through_the_log_after_a_seq(engine: Engine) {
    let f = Fixture::new(engine);
    for i in 0..10 {
        f.append_one(&format!("objective/2022-2250-{i}"), json!({"i": i}));
    }
    let seqs = |after, limit| -> Vec<u64> {
        f.store
            .read_all(after, limit)
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect()
    };
    assert_eq!(seqs(0, 3), [1, 2, 3]);
    assert_eq!(seqs(3, 3), [4, 5, 6]);
    assert_eq!(seqs(8, 5), [9, 10]);
    assert_eq!(seqs(10, 5), Vec::<u64>::new());
    assert_eq!(seqs(0, 0), Vec::<u64>::new());
    assert_eq!(seqs(0, 100).len(), 10);
    let mut visited = Vec::new();
    f.store
        .for_each(7, |e| -> Result<(), Error> {
            visited.push(e.seq);
            Ok(())
        })
        .unwrap();
    assert_eq!(visited, [8, 9, 10]);
}

fn seq_at_is_the_last_seq_recorded_by_a_time(engine: Engine) {
    let f = Fixture::new(engine);
    assert_eq!(f.store.seq_at(t0()).unwrap(), 0, "an empty log");
    f.append_one("org", json!({}));
    f.append_one("org", json!({}));
    f.clock.advance(Duration::minutes(5));
    f.append_one("org", json!({}));
    assert_eq!(f.store.seq_at(t0() - Duration::microseconds(1)).unwrap(), 0);
    assert_eq!(f.store.seq_at(t0()).unwrap(), 2);
    assert_eq!(f.store.seq_at(t0() + Duration::minutes(4)).unwrap(), 2);
    assert_eq!(f.store.seq_at(t0() + Duration::minutes(5)).unwrap(), 3);
    assert_eq!(f.store.seq_at(t0() + Duration::days(400)).unwrap(), 3);
}

fn record_time_never_goes_backwards_along_the_log_even_when_the_clock_does(engine: Engine) {
    let f = Fixture::new(engine);
    f.clock.advance(Duration::minutes(10));
    let first = f.append_one("org", json!({}));
    f.clock.set(t0()); // the clock steps back ten minutes
    let second = f.append_one("org", json!({}));
    assert_eq!(
        second.recorded_at, first.recorded_at,
        "stamped with the head's time, not earlier"
    );
    f.clock.advance(Duration::minutes(20));
    let third = f.append_one("org", json!({}));
    assert_eq!(third.recorded_at, t0() + Duration::minutes(20));
    assert_eq!(f.store.seq_at(t0() + Duration::minutes(10)).unwrap(), 2);
    assert_eq!(f.store.seq_at(t0() + Duration::minutes(9)).unwrap(), 0);
    assert!(f.store.verify(&[]).unwrap().ok());
}

fn an_event_with_a_float_in_its_data_is_refused(engine: Engine) {
    let f = Fixture::new(engine);
    for data in [
        json!({"weight": 33.33}),
        json!({"weight": 100.0}),
        json!({"phases": [{"number": 1, "weights": [20, 0.5]}]}),
    ] {
        match f
            .store
            .append(AppendBatch::new().push(event("org", data.clone())))
        {
            Err(Error::InvalidAppend(message)) => {
                assert!(message.contains("floating-point"), "{message}")
            }
            other => panic!("{data} was not refused: {other:?}"),
        }
    }
    // Nor is data that is not an object, or an empty batch.
    assert!(matches!(
        f.store
            .append(AppendBatch::new().push(event("org", json!([1])))),
        Err(Error::InvalidAppend(_))
    ));
    assert!(matches!(
        f.store.append(AppendBatch::new()),
        Err(Error::InvalidAppend(_))
    ));
    assert_eq!(f.store.head().unwrap(), Head::genesis());
    // Integers, even large or negative, are fine.
    let e = f.append_one("org", json!({"w": 3333, "n": -5, "big": u64::MAX}));
    assert_eq!(e.data["big"], json!(u64::MAX));
}

fn an_idempotency_key_is_committed_with_its_batch_and_cannot_be_used_twice(engine: Engine) {
    let f = Fixture::new(engine);
    let key = IdempotencyKey {
        key: "manager-2250:retry-1".into(),
        request_sha256: "12".repeat(32),
    };
    let stream = "objective/2022-2250-A";
    assert_eq!(f.store.idempotent_result(&key.key).unwrap(), None);
    let events = block_on(
        f.store.append_idempotent(
            AppendBatch::new()
                .push(event(stream, json!({"n": 1})))
                .push(event(stream, json!({"n": 2}))),
            Some(key.clone()),
        ),
    )
    .unwrap();
    assert_eq!(
        f.store.idempotent_result(&key.key).unwrap(),
        Some(IdempotentResult {
            request_sha256: key.request_sha256.clone(),
            first_seq: events[0].seq,
            last_seq: events[1].seq,
        })
    );
    let head = f.store.head().unwrap();
    match block_on(f.store.append_idempotent(
        AppendBatch::new().push(event(stream, json!({"n": 3}))),
        Some(key.clone()),
    )) {
        Err(Error::KeyUsed(k)) => assert_eq!(k, key.key),
        other => panic!("expected KeyUsed, got {other:?}"),
    }
    assert_eq!(
        f.store.head().unwrap(),
        head,
        "the second use appended nothing"
    );

    // A key sent with a batch that fails is not kept: the retry may use it.
    let unlucky = IdempotencyKey {
        key: "manager-2250:retry-2".into(),
        request_sha256: "34".repeat(32),
    };
    let conflicting = AppendBatch::new()
        .expect(stream, ExpectedVersion::Exact(0))
        .push(event(stream, json!({"n": 3})));
    assert!(matches!(
        block_on(
            f.store
                .append_idempotent(conflicting, Some(unlucky.clone()))
        ),
        Err(Error::Conflict { .. })
    ));
    assert_eq!(f.store.idempotent_result(&unlucky.key).unwrap(), None);
    let retried = AppendBatch::new()
        .expect(stream, ExpectedVersion::Exact(2))
        .push(event(stream, json!({"n": 3})));
    let events = block_on(f.store.append_idempotent(retried, Some(unlucky.clone()))).unwrap();
    assert_eq!(
        f.store
            .idempotent_result(&unlucky.key)
            .unwrap()
            .map(|r| r.first_seq),
        Some(events[0].seq)
    );
}

fn a_conflict_names_the_stream_the_expected_and_the_actual_version(engine: Engine) {
    let f = Fixture::new(engine);
    let stream = "objective/2022-2250-A";
    f.append_one(stream, json!({"n": 1}));
    f.append_one(stream, json!({"n": 2}));
    for (expected, named) in [
        (ExpectedVersion::Exact(1), "1"),
        (ExpectedVersion::NoStream, "no stream (0)"),
    ] {
        let e = f
            .store
            .append(
                AppendBatch::new()
                    .expect(stream, expected)
                    .push(event(stream, json!({}))),
            )
            .expect_err("a stale expectation conflicts");
        match &e {
            Error::Conflict {
                stream: s,
                expected,
                actual,
            } => {
                assert_eq!(s, stream);
                assert_eq!(expected, named);
                assert_eq!(*actual, 2);
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
        assert_eq!(
            e.to_string(),
            format!("version conflict on stream {stream}: expected {named}, actual 2")
        );
    }
    // Any and a right Exact go through.
    f.store
        .append(
            AppendBatch::new()
                .expect(stream, ExpectedVersion::Any)
                .push(event(stream, json!({}))),
        )
        .unwrap();
    f.store
        .append(
            AppendBatch::new()
                .expect(stream, ExpectedVersion::Exact(3))
                .expect("objective/new", ExpectedVersion::NoStream)
                .push(event(stream, json!({}))),
        )
        .unwrap();
}

fn verify_holds_published_heads_and_names_those_the_log_no_longer_holds(engine: Engine) {
    let f = Fixture::new(engine);
    let mut heads = vec![Head::genesis()];
    for i in 0..5 {
        let e = f.append_one("org", json!({"i": i}));
        heads.push(Head {
            seq: e.seq,
            hash: e.hash,
        });
    }
    let v = f.store.verify(&heads).unwrap();
    assert!(v.ok(), "{v:?}");
    assert_eq!(v.events, 5);
    assert_eq!(v.head, heads[5]);
    assert!(v.triggers_present);

    let forged = Head {
        seq: 3,
        hash: "f".repeat(64),
    };
    let beyond = Head {
        seq: 9,
        hash: heads[5].hash.clone(),
    };
    let bad_genesis = Head {
        seq: 0,
        hash: "1".repeat(64),
    };
    // The right head for seq 3 given along with a wrong one must not hide it.
    let v = f
        .store
        .verify(&[
            forged.clone(),
            heads[3].clone(),
            beyond.clone(),
            bad_genesis.clone(),
        ])
        .unwrap();
    assert!(!v.ok());
    assert_eq!(v.first_bad_seq, None, "the chain itself holds");
    let missing: BTreeSet<u64> = v.missing_heads.iter().map(|(h, _)| h.seq).collect();
    assert_eq!(missing, BTreeSet::from([0, 3, 9]));
    assert!(v.missing_heads.iter().all(|(h, _)| *h != heads[3]));
    let v = f.store.verify(&[heads[3].clone(), forged.clone()]).unwrap();
    assert_eq!(v.missing_heads.len(), 1);
    assert_eq!(v.missing_heads[0].0, forged);
}

fn verify_finds_the_first_row_changed_behind_the_stores_back(engine: Engine) {
    let f = Fixture::new(engine);
    for i in 0..6 {
        f.append_one("org", json!({"i": i}));
    }
    f.drop_triggers(&["events_no_update", "events_no_delete"]);
    let v = f.store.verify(&[]).unwrap();
    assert!(!v.ok() && !v.triggers_present && v.first_bad_seq.is_none());
    f.raw_execute("UPDATE events SET data = '{\"i\":40}' WHERE seq = 4")
        .unwrap();
    f.raw_execute("UPDATE events SET actor = 'x' WHERE seq = 5")
        .unwrap();
    let v = f.store.verify(&[]).unwrap();
    assert_eq!(v.first_bad_seq, Some(4), "{v:?}");
    assert_eq!(v.events, 3, "the events before it hold");
    f.raw_execute("DELETE FROM events WHERE seq = 2").unwrap();
    let v = f.store.verify(&[]).unwrap();
    assert_eq!(v.first_bad_seq, Some(2), "{v:?}");
}

fn a_second_store_on_the_same_database_extends_the_same_chain(engine: Engine) {
    // Two processes (here two stores) writing the same database take turns under
    // the database's write lock; each reads the head inside it.
    let f = Fixture::new(engine);
    let other = f.open_another(Clock::system());
    let workers: Vec<_> = [f.store.clone(), other.clone()]
        .into_iter()
        .enumerate()
        .map(|(n, store)| {
            std::thread::spawn(move || {
                for i in 0..30 {
                    store
                        .append(AppendBatch::new().push(event(
                            &format!("objective/2022-2250-{}", i % 3),
                            json!({"writer": n, "i": i}),
                        )))
                        .unwrap();
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    let all = f.all();
    assert_eq!(all.len(), 60);
    assert_gapless_chain(&all);
    for s in 0..3 {
        let versions: Vec<u64> = f
            .store
            .read_stream(&format!("objective/2022-2250-{s}"), Until::End)
            .unwrap()
            .iter()
            .map(|e| e.version)
            .collect();
        assert_eq!(versions, (1..=20).collect::<Vec<_>>());
    }
    assert_eq!(other.head().unwrap(), f.store.head().unwrap());
}

fn commit_hooks_and_the_head_watch_see_every_commit_in_seq_order(engine: Engine) {
    let f = Fixture::new(engine);
    let seen: Arc<Mutex<Vec<u64>>> = Arc::default();
    let hook_seen = seen.clone();
    f.store.on_commit(Arc::new(move |events: &[RecordedEvent]| {
        hook_seen
            .lock()
            .unwrap()
            .extend(events.iter().map(|e| e.seq))
    }));
    let watch = f.store.watch_head();
    let workers: Vec<_> = (0..4)
        .map(|t| {
            let store = f.store.clone();
            std::thread::spawn(move || {
                for i in 0..10 {
                    store
                        .append(
                            AppendBatch::new()
                                .push(event("org", json!({"t": t, "i": i})))
                                .push(event("org", json!({"t": t, "i": i, "second": true}))),
                        )
                        .unwrap();
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(*seen.lock().unwrap(), (1..=80).collect::<Vec<_>>());
    assert_eq!(watch.borrow().seq, 80);
    assert_eq!(*watch.borrow(), f.store.head().unwrap());
}

fn after_shutdown_queued_appends_are_done_and_later_ones_refused(engine: Engine) {
    let f = Fixture::new(engine);
    f.append_one("org", json!({}));
    f.store.shutdown();
    assert!(matches!(
        f.store
            .append(AppendBatch::new().push(event("org", json!({})))),
        Err(Error::WriterGone)
    ));
    // Reads still work, and a reopened store carries on the chain.
    assert_eq!(f.store.head().unwrap().seq, 1);
    let reopened = f.open_another(Clock::system());
    reopened
        .append(AppendBatch::new().push(event("org", json!({}))))
        .unwrap();
    assert_gapless_chain(&reopened.read_all(0, 10).unwrap());
}

#[test]
fn sqlite_open_existing_refuses_what_is_not_a_traguardo_log_and_leaves_it_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.db");
    let e = SqliteStore::open_existing(&missing).unwrap_err();
    assert!(e.to_string().contains("no such database file"), "{e}");
    assert!(!missing.exists(), "nothing was created");

    let text = dir.path().join("notes.txt");
    let content = "Piano degli obiettivi provvisorio 2022\n".repeat(200);
    std::fs::write(&text, &content).unwrap();
    let e = SqliteStore::open_existing(&text).unwrap_err();
    assert!(matches!(e, Error::Open { .. }));
    assert!(e.to_string().contains("not a SQLite database"), "{e}");
    assert_eq!(std::fs::read_to_string(&text).unwrap(), content);

    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let e = SqliteStore::open_existing(&empty).unwrap_err();
    assert!(e.to_string().contains("not a Traguardo database"), "{e}");
    assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0);

    let foreign = dir.path().join("foreign.db");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE protocollo (n INTEGER PRIMARY KEY, oggetto TEXT);")
        .unwrap();
    let e = SqliteStore::open_existing(&foreign).unwrap_err();
    assert!(e.to_string().contains("not a Traguardo database"), "{e}");
    let tables: i64 = rusqlite::Connection::open(&foreign)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM sqlite_master", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        tables, 1,
        "no event log was created in someone else's database"
    );

    // A log made by the store opens.
    let f = Fixture::new(Engine::Sqlite);
    f.append_one("org", json!({}));
    let Db::Sqlite(dir) = &f.db else {
        unreachable!("a SQLite fixture")
    };
    assert_eq!(
        SqliteStore::open_existing(dir.path().join("log.db"))
            .unwrap()
            .head()
            .unwrap()
            .seq,
        1
    );
}

#[test]
fn record_times_read_back_exactly_in_the_stored_form_or_any_rfc_3339() {
    use crate::envelope::format_timestamp;
    use crate::sqlite::parse_timestamp;
    for at in [
        t0(),
        t0() + Duration::microseconds(123_456),
        Utc.with_ymd_and_hms(1999, 12, 31, 23, 59, 59).unwrap() + Duration::microseconds(999_999),
        Utc.with_ymd_and_hms(2024, 2, 29, 0, 0, 0).unwrap(),
    ] {
        let text = format_timestamp(&at);
        assert_eq!(parse_timestamp(text.as_bytes()), Ok(at), "{text}");
    }
    assert_eq!(
        parse_timestamp(b"2022-06-10T11:12:03+02:00"),
        Ok(t0()),
        "an offset is read as RFC 3339"
    );
    for bad in [
        &b"2022-02-30T09:12:03.000000Z"[..],
        b"2022-06-10T25:12:03.000000Z",
        b"2022-06-10T09:12:03.00000xZ",
        b"yesterday",
        b"",
    ] {
        assert!(
            parse_timestamp(bad).is_err(),
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
}

fn an_append_failing_in_the_database_fails_alone_and_its_group_is_retried_without_it(
    engine: Engine,
) {
    let f = Fixture::new(engine);
    // Something outside the store makes inserts to one stream fail (as a full
    // disk or a broken page might fail one append and not the others).
    f.raw_execute(match engine {
        Engine::Sqlite => {
            "CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.stream = 'objective/poison'
             BEGIN SELECT RAISE(ABORT, 'poisoned'); END;"
        }
        Engine::Postgres => {
            "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN
                 IF NEW.stream = 'objective/poison' THEN RAISE EXCEPTION 'poisoned'; END IF;
                 RETURN NEW;
             END $$;
             CREATE TRIGGER poison BEFORE INSERT ON events
                 FOR EACH ROW EXECUTE FUNCTION poison();"
        }
    })
    .unwrap();
    // Hold the writer in the hook of a first commit so the next appends queue up.
    let (release, held) = mpsc::channel::<()>();
    let held = Mutex::new(Some(held));
    let groups: Arc<Mutex<Vec<usize>>> = Arc::default();
    let seen = groups.clone();
    f.store.on_commit(Arc::new(move |events: &[RecordedEvent]| {
        seen.lock().unwrap().push(events.len());
        if let Some(held) = held.lock().unwrap().take() {
            let _ = held.recv();
        }
    }));
    let append = |stream: &'static str| {
        let store = f.store.clone();
        std::thread::spawn(move || {
            store.append(
                AppendBatch::new()
                    .push(event(stream, json!({"n": 1})))
                    .push(event(stream, json!({"n": 2}))),
            )
        })
    };
    let first = append("objective/2022-2250-A");
    while groups.lock().unwrap().is_empty() {
        std::thread::yield_now();
    }
    let before = append("objective/2022-2250-B");
    let poisoned = append("objective/poison");
    let after = append("objective/2022-2250-C");
    std::thread::sleep(std::time::Duration::from_millis(50));
    release.send(()).unwrap();

    assert_eq!(first.join().unwrap().unwrap().len(), 2);
    assert_eq!(before.join().unwrap().unwrap().len(), 2);
    assert_eq!(after.join().unwrap().unwrap().len(), 2);
    match poisoned.join().unwrap() {
        Err(e @ (Error::Sqlite(_) | Error::Postgres(_))) => {
            assert!(e.to_string().contains("poisoned"), "{e}")
        }
        other => panic!("expected the poisoned append to fail, got {other:?}"),
    }
    let all = f.all();
    assert_eq!(all.len(), 6);
    assert_gapless_chain(&all);
    assert!(all.iter().all(|e| e.stream != "objective/poison"));
    assert_eq!(f.store.head().unwrap().seq, 6);
    assert_tree_matches(&f);
}

fn for_each_visits_every_event_in_order_and_stops_at_the_first_error(engine: Engine) {
    let f = Fixture::new(engine);
    let mut batch = AppendBatch::new();
    for i in 0..1_000 {
        batch = batch.push(event(
            &format!("objective/2022-{}-A", i % 13),
            json!({"i": i}),
        ));
    }
    f.store.append(batch).unwrap();
    let mut seen = Vec::new();
    f.store
        .for_each(0, |e| -> Result<(), Error> {
            assert_eq!(e.data["i"], json!(e.seq - 1));
            seen.push(e.seq);
            Ok(())
        })
        .unwrap();
    assert_eq!(seen, (1..=1_000).collect::<Vec<_>>());

    let mut visited = 0;
    let stopped = f.store.for_each(100, |e| {
        visited += 1;
        if e.seq == 700 {
            return Err(Error::InvalidAppend("enough".into()));
        }
        Ok(())
    });
    assert!(matches!(stopped, Err(Error::InvalidAppend(m)) if m == "enough"));
    assert_eq!(visited, 600, "nothing after the error");

    // A row that no longer decodes stops the walk with its seq.
    f.drop_triggers(&["events_no_update"]);
    f.raw_execute("UPDATE events SET data = '{not json' WHERE seq = 900")
        .unwrap();
    let mut last = 0;
    let broken = f.store.for_each(0, |e| -> Result<(), Error> {
        last = e.seq;
        Ok(())
    });
    assert!(
        matches!(broken, Err(Error::Corrupt { seq: 900, .. })),
        "{broken:?}"
    );
    assert_eq!(last, 899);

    // The raw walk hands over that data as stored; an envelope the store cannot
    // read stops it with its seq, after every event before it, those read
    // ahead with it included.
    let corrupt_envelope = match engine {
        Engine::Sqlite => "UPDATE events SET id = 'not a uuid' WHERE seq = 950",
        Engine::Postgres => "UPDATE events SET schema = -1 WHERE seq = 950",
    };
    f.raw_execute(corrupt_envelope).unwrap();
    let mut seen = Vec::new();
    let broken = f.store.for_each_raw(0, |e, data| -> Result<(), Error> {
        seen.push(e.seq);
        if e.seq == 900 {
            assert_eq!(data, "{not json");
        }
        Ok(())
    });
    assert!(
        matches!(broken, Err(Error::Corrupt { seq: 950, .. })),
        "{broken:?}"
    );
    assert_eq!(seen, (1..950).collect::<Vec<_>>());
}

fn a_panicking_commit_hook_does_not_stop_the_writer(engine: Engine) {
    let f = Fixture::new(engine);
    f.store.on_commit(Arc::new(|events: &[RecordedEvent]| {
        if events.iter().any(|e| e.seq == 1) {
            panic!("a hook with a bug");
        }
    }));
    let first = f.append_one("org", json!({"n": 1}));
    let second = f.append_one("org", json!({"n": 2}));
    assert_eq!((first.seq, second.seq), (1, 2));
    assert_eq!(f.all().len(), 2);
}

fn an_idempotency_key_survives_a_restart(engine: Engine) {
    let f = Fixture::new(engine);
    let key = IdempotencyKey {
        key: "manager-2250:retry-9".into(),
        request_sha256: "56".repeat(32),
    };
    let stream = "objective/2022-2250-A";
    let events = block_on(f.store.append_idempotent(
        AppendBatch::new().push(event(stream, json!({"n": 1}))),
        Some(key.clone()),
    ))
    .unwrap();
    f.store.shutdown();
    let restarted = f.open_another(Clock::system());
    assert_eq!(
        restarted.idempotent_result(&key.key).unwrap(),
        Some(IdempotentResult {
            request_sha256: key.request_sha256.clone(),
            first_seq: events[0].seq,
            last_seq: events[0].seq,
        })
    );
    match block_on(restarted.append_idempotent(
        AppendBatch::new().push(event(stream, json!({"n": 2}))),
        Some(key.clone()),
    )) {
        Err(Error::KeyUsed(k)) => assert_eq!(k, key.key),
        other => panic!("expected KeyUsed after a restart, got {other:?}"),
    }
    assert_eq!(restarted.head().unwrap().seq, 1);
}

fn two_processes_appending_from_many_threads_never_fork_gap_or_lose_an_event(engine: Engine) {
    // Two stores on one database are two processes: each has its own writer and
    // its own group commits, and they must take turns on the one chain.
    const THREADS_PER_STORE: usize = 4;
    const APPENDS: usize = 15;
    let f = Fixture::new(engine);
    let stores = [f.store.clone(), f.open_another(Clock::system())];
    let start = Arc::new(Barrier::new(2 * THREADS_PER_STORE));
    let workers: Vec<_> = stores
        .iter()
        .enumerate()
        .flat_map(|(n, store)| {
            let start = start.clone();
            (0..THREADS_PER_STORE).map(move |t| {
                let store = store.clone();
                let start = start.clone();
                std::thread::spawn(move || {
                    start.wait();
                    let mut acknowledged = Vec::new();
                    for i in 0..APPENDS {
                        // Odd appends race on one shared stream with an expected
                        // version, retrying on conflict; the others go to a
                        // stream of their own, two events at a time.
                        if i % 2 == 1 {
                            let shared = "objective/2022-shared";
                            loop {
                                let read = store.stream_version(shared).unwrap();
                                let batch = AppendBatch::new()
                                    .expect(shared, ExpectedVersion::Exact(read))
                                    .push(event(shared, json!({"store": n, "t": t, "i": i})));
                                match store.append(batch) {
                                    Ok(events) => {
                                        acknowledged.extend(events);
                                        break;
                                    }
                                    Err(Error::Conflict { .. }) => continue,
                                    Err(e) => panic!("unexpected error: {e}"),
                                }
                            }
                        } else {
                            let own = format!("objective/2022-{n}-{t}");
                            let batch = AppendBatch::new()
                                .push(event(&own, json!({"i": i})))
                                .push(event("org", json!({"store": n, "t": t, "i": i})));
                            acknowledged.extend(store.append(batch).unwrap());
                        }
                    }
                    acknowledged
                })
            })
        })
        .collect();
    let mut acknowledged = Vec::new();
    for worker in workers {
        acknowledged.extend(worker.join().expect("no thread panicked"));
    }
    let all = f.all();
    let expected_events = 2 * THREADS_PER_STORE * (APPENDS / 2 + 2 * APPENDS.div_ceil(2));
    assert_eq!(acknowledged.len(), expected_events);
    assert_eq!(all.len(), expected_events, "nothing more, nothing less");
    assert_gapless_chain(&all);
    // Every acknowledged event is in the log as it was acknowledged.
    for event in &acknowledged {
        assert_eq!(&all[event.seq as usize - 1], event, "seq {}", event.seq);
    }
    // Every stream's versions run from 1 without a gap.
    let mut streams: std::collections::BTreeMap<&str, Vec<u64>> = Default::default();
    for e in &all {
        streams.entry(&e.stream).or_default().push(e.version);
    }
    for (stream, versions) in streams {
        assert_eq!(
            versions,
            (1..=versions.len() as u64).collect::<Vec<_>>(),
            "{stream}"
        );
    }
    let v = f.store.verify(&[]).unwrap();
    assert!(v.ok(), "{v:?}");
    assert_eq!(stores[1].head().unwrap(), v.head);
}

fn a_foreign_append_moves_the_followed_head(engine: Engine) {
    let f = Fixture::new(engine);
    f.append_one("org", json!({"n": 1}));
    let followed = f.store.follow().unwrap();
    assert_eq!(followed.borrow().seq, 1);
    // Following twice starts nothing new.
    let _again = f.store.follow().unwrap();
    let other = f.open_another(Clock::system());
    let foreign = other
        .append(AppendBatch::new().push(event("org", json!({"n": 2}))))
        .unwrap();
    let waited = std::time::Instant::now();
    while followed.borrow().seq < 2 {
        assert!(
            waited.elapsed() < std::time::Duration::from_secs(5),
            "the follower never saw seq 2"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(
        *followed.borrow(),
        Head {
            seq: foreign[0].seq,
            hash: foreign[0].hash.clone()
        }
    );
    // What a follower folds: the events after the last it saw.
    assert_eq!(f.store.read_all(1, 100).unwrap(), foreign);
    // Its own appends still move the head, which never goes back.
    let own = f.append_one("org", json!({"n": 3}));
    assert_eq!(followed.borrow().seq, own.seq);
    f.store.shutdown();
}

fn the_store_works_from_inside_an_async_runtime(engine: Engine) {
    let f = Fixture::new(engine);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let store = f.store.clone();
    runtime.block_on(async move {
        let appended = store
            .append_async(AppendBatch::new().push(event("org", json!({"n": 1}))))
            .await
            .unwrap();
        // Blocking reads on an async thread are to be avoided, but must not fail.
        assert_eq!(store.head().unwrap().seq, appended[0].seq);
        assert_eq!(store.read_all(0, 10).unwrap(), appended);
        let mut seen = Vec::new();
        store
            .for_each_raw(0, |e, data| -> Result<(), Error> {
                seen.push((e.seq, data.to_string()));
                Ok(())
            })
            .unwrap();
        assert_eq!(seen, [(1, "{\"n\":1}".to_string())]);
        let snapshot = crate::store::Snapshot {
            name: "registry".into(),
            seq: 1,
            hash: appended[0].hash.clone(),
            schema: 7,
            taken_at: appended[0].recorded_at,
            data: vec![1, 2, 3],
        };
        store.save_snapshot(&snapshot).unwrap();
        assert_eq!(store.latest_snapshot("registry").unwrap(), Some(snapshot));
        assert!(store.verify(&[]).unwrap().ok());
        // The last handle may go away here too.
        drop(store);
    });
}

#[test]
fn open_picks_the_engine_from_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.db");
    let sqlite = crate::store::open(path.to_str().unwrap(), Clock::system()).unwrap();
    assert!(format!("{sqlite:?}").starts_with("SqliteStore"));
    assert_eq!(sqlite.location(), path.display().to_string());
    let db = PgDb::create();
    for url in [
        db.url.clone(),
        db.url.replacen("postgres://", "postgresql://", 1),
    ] {
        let pg = crate::store::open(&url, Clock::system()).unwrap();
        assert!(format!("{pg:?}").starts_with("PgStore"), "{pg:?}");
        pg.shutdown();
    }
}

#[test]
fn postgres_a_wrong_url_or_a_refused_connection_is_a_clear_error_at_open() {
    let refused = PgStore::open(
        "postgres://traguardo:s3cret@127.0.0.1:1/traguardo",
        Clock::system(),
    )
    .unwrap_err();
    let message = refused.to_string();
    assert!(matches!(refused, Error::OpenUrl { .. }), "{refused:?}");
    assert!(message.contains("cannot connect"), "{message}");
    assert!(
        !message.contains("s3cret"),
        "the password is not shown: {message}"
    );
    let malformed = PgStore::open("postgres://127.0.0.1:notaport/x", Clock::system()).unwrap_err();
    assert!(
        malformed.to_string().contains("not a valid PostgreSQL URL"),
        "{malformed}"
    );
    let db = PgDb::create();
    let missing = db.url.replace(&db.name, "traguardo_no_such_database");
    let e = PgStore::open(&missing, Clock::system()).unwrap_err();
    assert!(e.to_string().contains("does not exist"), "{e}");
}

#[test]
fn postgres_open_existing_refuses_a_database_without_a_log_and_leaves_it_untouched() {
    let db = PgDb::create();
    let e = PgStore::open_existing(&db.url).unwrap_err();
    assert!(e.to_string().contains("not a Traguardo database"), "{e}");
    let tables: i64 = db
        .raw()
        .query_one(
            "SELECT COUNT(*) FROM pg_tables WHERE schemaname = 'public'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(tables, 0, "nothing was created");
    PgStore::open(&db.url, Clock::system()).unwrap().shutdown();
    assert_eq!(
        PgStore::open_existing(&db.url).unwrap().head().unwrap().seq,
        0
    );
}

#[test]
fn postgres_migrations_are_numbered_recorded_and_applied_once() {
    let db = PgDb::create();
    let versions = || -> Vec<i32> {
        db.raw()
            .query(
                "SELECT version FROM schema_migrations ORDER BY version",
                &[],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    };
    let all: Vec<i32> = (1..=crate::pg::MIGRATION_COUNT as i32).collect();
    // Two processes starting together migrate once.
    let opening: Vec<_> = (0..2)
        .map(|_| {
            let url = db.url.clone();
            std::thread::spawn(move || PgStore::open(&url, Clock::system()).map(|s| s.shutdown()))
        })
        .collect();
    for o in opening {
        o.join().unwrap().unwrap();
    }
    assert_eq!(versions(), all);
    PgStore::open(&db.url, Clock::system()).unwrap().shutdown();
    assert_eq!(versions(), all, "nothing applied twice");
    // A database migrated by a newer program is not touched by this one.
    db.raw()
        .execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[&(all.len() as i32 + 1)],
        )
        .unwrap();
    let e = PgStore::open(&db.url, Clock::system()).unwrap_err();
    assert!(e.to_string().contains("newer than this program"), "{e}");
}

#[test]
fn a_log_copied_between_engines_verifies_hash_for_hash() {
    // Appends on SQLite, copied row for row into PostgreSQL behind the store's
    // back: PostgreSQL reads back the same events and verifies the same chain.
    let sqlite = Fixture::new(Engine::Sqlite);
    sqlite.append_one("plan/2022", json!({"title": "Piano 2022 — è", "n": -3}));
    sqlite
        .store
        .append(
            AppendBatch::new()
                .push(event(
                    "objective/2022-2250-A",
                    json!({"nested": {"b": 1, "a": [1, 2]}}),
                ))
                .push(event(
                    "objective/2022-2250-B",
                    json!({"text": "riga\ncon \"virgolette\""}),
                )),
        )
        .unwrap();
    let events = sqlite.all();
    let pg = Fixture::new(Engine::Postgres);
    let Db::Postgres(db) = &pg.db else {
        unreachable!("a PostgreSQL fixture")
    };
    let mut raw = db.raw();
    for e in &events {
        let data = chain::canonical_value(&e.data);
        raw.execute(
            "INSERT INTO events (seq, id, stream, version, type, schema, data, actor, role, \
             recorded_at, correlation, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            &[
                &(e.seq as i64) as &(dyn ::postgres::types::ToSql + Sync),
                &e.id,
                &e.stream,
                &(e.version as i64),
                &e.event_type,
                &i64::from(e.schema),
                &data,
                &e.actor,
                &e.role,
                &e.recorded_at,
                &e.correlation,
                &e.prev_hash,
                &e.hash,
            ],
        )
        .unwrap();
    }
    assert_eq!(pg.all(), events);
    let v = pg.store.verify(&[pg.store.head().unwrap()]).unwrap();
    assert!(v.ok(), "{v:?}");
    assert_eq!(v.head, sqlite.store.head().unwrap());
    // And the PostgreSQL store carries the chain on.
    let next = pg.append_one("org", json!({}));
    assert_eq!(next.prev_hash, events.last().unwrap().hash);
    assert!(pg.store.verify(&[]).unwrap().ok());
    // The rows copied in had no tree nodes: the append built them first.
    assert_tree_matches(&pg);
    assert_eq!(
        pg.store.tree_root(3).unwrap(),
        sqlite.store.tree_root(3).unwrap()
    );
}
