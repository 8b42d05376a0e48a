//! `traguardo backup` and `restore` (issue 13), with real processes: a server
//! writing while the backup is taken, copies whose chain fails or lacks a
//! published head, and a database that is never overwritten.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::json;

use crate::support::{seed_path, traguardo, Serve, SERVE_ADMIN};

/// What a command printed on stdout.
fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).to_string()
}

fn everything(output: &std::process::Output) -> String {
    format!(
        "{:?}\nstdout: {}\nstderr: {}",
        output.status,
        stdout(output),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The `SEQ:HASH` a backup or restore printed after "head ".
fn head_of(output: &std::process::Output) -> String {
    stdout(output)
        .split("head ")
        .nth(1)
        .map(|rest| rest.trim().to_string())
        .unwrap_or_else(|| panic!("no head printed: {}", everything(output)))
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn seeded(dir: &Path) -> String {
    let db = dir.join("traguardo.db").display().to_string();
    let loaded = traguardo(&db, &["import", path(&seed_path())]);
    assert!(loaded.status.success(), "{}", everything(&loaded));
    db
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_the_server_writes_verifies_and_restores() {
    let dir = tempfile::tempdir().unwrap();
    let db = seeded(dir.path());
    let server = Serve::start(&db);
    // A writer that keeps appending (a token per request) until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (stop, written) = (stop.clone(), written.clone());
        let url = server.url("/api/v1/tokens");
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            while !stop.load(Ordering::SeqCst) {
                let answer = client
                    .post(&url)
                    .bearer_auth(SERVE_ADMIN)
                    .json(&json!({"actor": "Revisore", "role": "auditor"}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(answer.status(), reqwest::StatusCode::CREATED);
                written.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    while written.load(Ordering::SeqCst) < 20 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let copy = dir.path().join("copia.db");
    let taken = {
        let (db, copy) = (db.clone(), copy.clone());
        tokio::task::spawn_blocking(move || traguardo(&db, &["backup", "--to", path(&copy)]))
            .await
            .unwrap()
    };
    let during = written.load(Ordering::SeqCst);
    while written.load(Ordering::SeqCst) < during + 10 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::SeqCst);
    writer.await.unwrap();
    assert!(taken.status.success(), "{}", everything(&taken));
    let head = head_of(&taken);
    let seq: u64 = head.split(':').next().unwrap().parse().unwrap();
    assert!(
        seq > 20,
        "the copy holds the plan and the tokens written before it: {head}"
    );

    // The copy verifies on its own, and the live log still holds its head: the
    // copy is a prefix of the log, taken as one snapshot.
    let checked = traguardo(path(&copy), &["verify", "--expect", &head]);
    assert!(checked.status.success(), "{}", everything(&checked));
    assert!(
        stdout(&checked).contains(&format!("{seq} events")),
        "{}",
        everything(&checked)
    );
    let live = traguardo(&db, &["verify", "--expect", &head]);
    assert!(live.status.success(), "{}", everything(&live));

    // Restoring over the database the server uses is refused, and harms nothing.
    let refused = traguardo(&db, &["restore", "--from", path(&copy)]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("exists"),
        "{}",
        everything(&refused)
    );
    let live = traguardo(&db, &["verify"]);
    assert!(live.status.success(), "{}", everything(&live));
    server.stop();

    let restored = dir.path().join("ripristino.db");
    let done = traguardo(
        path(&restored),
        &["restore", "--from", path(&copy), "--expect", &head],
    );
    assert!(done.status.success(), "{}", everything(&done));
    assert_eq!(head_of(&done), head);
    let export = |db: &str| stdout(&traguardo(db, &["export"]));
    let restored_log = export(path(&restored));
    assert_eq!(
        restored_log,
        export(path(&copy)),
        "the restored log is the copy, byte for byte"
    );
    let live_log = export(&db);
    assert!(live_log.starts_with(&restored_log) && live_log.len() > restored_log.len());
    // A server starts on the restored file.
    Serve::start(path(&restored)).stop();
}

#[test]
fn a_copy_whose_chain_fails_or_lacks_a_published_head_is_not_restored() {
    let dir = tempfile::tempdir().unwrap();
    let db = seeded(dir.path());
    let copy = dir.path().join("copia.db");
    let taken = traguardo(&db, &["backup", "--to", path(&copy)]);
    assert!(taken.status.success(), "{}", everything(&taken));
    let head = head_of(&taken);
    let (seq, hash) = head.split_once(':').unwrap();
    let target = dir.path().join("ripristino.db");

    let later = format!("{}:{hash}", seq.parse::<u64>().unwrap() + 1);
    let other = format!("{seq}:{}", "0".repeat(64));
    for expect in [later, other] {
        let refused = traguardo(
            path(&target),
            &["restore", "--from", path(&copy), "--expect", &expect],
        );
        assert!(
            !refused.status.success(),
            "{expect}: {}",
            everything(&refused)
        );
        assert!(
            stdout(&refused).contains("MISSING"),
            "{}",
            everything(&refused)
        );
        assert!(!target.exists(), "nothing is written");
    }

    // An event changed behind the store's back.
    let conn = rusqlite::Connection::open(&copy).unwrap();
    conn.execute_batch(
        "DROP TRIGGER events_no_update;
         UPDATE events SET data = replace(data, 'Alessandria', 'Alexandria') WHERE seq = 1;",
    )
    .unwrap();
    drop(conn);
    let refused = traguardo(path(&target), &["restore", "--from", path(&copy)]);
    assert!(!refused.status.success(), "{}", everything(&refused));
    assert!(
        stdout(&refused).contains("BROKEN at seq 1"),
        "{}",
        everything(&refused)
    );
    assert!(!target.exists(), "nothing is written");
}

#[test]
fn a_backup_never_overwrites_and_points_postgres_to_pg_dump() {
    let dir = tempfile::tempdir().unwrap();
    let db = seeded(dir.path());
    let copy = dir.path().join("copia.db");
    std::fs::write(&copy, "something precious").unwrap();
    let refused = traguardo(&db, &["backup", "--to", path(&copy)]);
    assert!(!refused.status.success());
    assert_eq!(
        std::fs::read_to_string(&copy).unwrap(),
        "something precious"
    );

    let pg = traguardo(
        "postgres://postgres@127.0.0.1:5432/whatever",
        &["backup", "--to", path(&dir.path().join("pg.db"))],
    );
    assert!(!pg.status.success());
    assert!(
        String::from_utf8_lossy(&pg.stderr).contains("pg_dump"),
        "{}",
        everything(&pg)
    );
}
