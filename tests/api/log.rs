//! The event log seen from outside, through the real `traguardo` binary on a real
//! file: tampering behind the store's back, a rewritten chain caught by a published
//! head, files that are not logs, export, a child killed with SIGKILL over and over,
//! and the hash chain recomputed from the README's description alone.
//!
//! The child that is killed is the test-support binary `traguardo-append-loop`
//! (`tests/support/append_loop.rs`): it appends through the same store as the
//! product, which no longer carries an append loop of its own.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use traguardo_events::{AppendBatch, Clock, NewEvent, RecordedEvent, SqliteStore};

use crate::support::seed_path;

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Runs the binary on `db` and waits for it.
fn traguardo(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_traguardo"))
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("TRAGUARDO_DB")
        .output()
        .expect("the binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs `verify` and returns its exit code and stdout, after checking it did not
/// panic.
fn verify(db: &Path, expect: &[String]) -> (i32, String) {
    let mut args = vec!["verify"];
    for head in expect {
        args.push("--expect");
        args.push(head);
    }
    let output = traguardo(db, &args);
    assert!(
        !stderr(&output).contains("panicked"),
        "verify panicked: {}",
        stderr(&output)
    );
    (output.status.code().expect("verify exits"), stdout(&output))
}

/// A log made the way a user makes one: the Alessandria plan imported, then 30
/// single-event appends. Returns the database and how many events it holds.
fn build_log(dir: &Path) -> (PathBuf, u64) {
    let db = dir.join("traguardo.db");
    let import = traguardo(&db, &["import", seed_path().to_str().unwrap()]);
    assert!(import.status.success(), "import: {}", stderr(&import));
    let appended = append_loop_child_command(&db)
        .arg("30")
        .output()
        .expect("the append loop runs");
    assert!(
        appended.status.success(),
        "append loop: {}",
        stderr(&appended)
    );
    assert_eq!(stdout(&appended).lines().count(), 30);
    let (code, out) = verify(&db, &[]);
    assert_eq!(code, 0, "a fresh log verifies: {out}");
    let events = out
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("verify prints the event count: {out}"));
    assert!(events > 30, "the seed added events");
    (db, events)
}

/// A copy of a log in its own folder (with its WAL, if one is left).
fn copy_log(db: &Path, dir: &Path) -> PathBuf {
    let copy = dir.join("copy.db");
    std::fs::copy(db, &copy).expect("the log copies");
    let wal = PathBuf::from(format!("{}-wal", db.display()));
    if wal.exists() {
        std::fs::copy(&wal, format!("{}-wal", copy.display())).expect("the WAL copies");
    }
    copy
}

/// A connection that goes around the store, with the append-only triggers
/// dropped, as someone with the sqlite3 shell could do. Returns the triggers'
/// SQL so that they can be put back.
fn intruder(db: &Path) -> (rusqlite::Connection, Vec<String>) {
    let conn = rusqlite::Connection::open(db).expect("the file opens");
    let triggers: Vec<(String, String)> = conn
        .prepare(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'events'",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(triggers.len() >= 2, "the log has its triggers");
    for (name, _) in &triggers {
        conn.execute_batch(&format!("DROP TRIGGER {name}")).unwrap();
    }
    (conn, triggers.into_iter().map(|(_, sql)| sql).collect())
}

/// `verify` fails with exit code 1, naming `seq` as the first bad one.
fn assert_broken_at(db: &Path, seq: u64) {
    let (code, out) = verify(db, &[]);
    assert_eq!(code, 1, "verify fails: {out}");
    assert!(
        out.contains(&format!("BROKEN at seq {seq}:")),
        "verify names seq {seq} as the first bad one: {out}"
    );
}

#[test]
fn verify_names_the_first_edited_row() {
    let dir = tempfile::tempdir().unwrap();
    let (db, events) = build_log(dir.path());
    // The first row, one in the middle (and a later one), the last row.
    for (case, rows) in [vec![1], vec![17, 20], vec![events]]
        .into_iter()
        .enumerate()
    {
        let case_dir = dir.path().join(format!("edit-{case}"));
        std::fs::create_dir(&case_dir).unwrap();
        let copy = copy_log(&db, &case_dir);
        let (conn, _) = intruder(&copy);
        for seq in &rows {
            let changed = conn
                .execute(
                    "UPDATE events SET data = json_set(data, '$.tampered', 1) WHERE seq = ?1",
                    [seq],
                )
                .unwrap();
            assert_eq!(changed, 1);
        }
        drop(conn);
        assert_broken_at(&copy, rows[0]);
    }
    // A change to any other column is caught too.
    for column in ["stream", "type", "actor", "role", "recorded_at", "id"] {
        let case_dir = dir.path().join(format!("edit-{column}"));
        std::fs::create_dir(&case_dir).unwrap();
        let copy = copy_log(&db, &case_dir);
        let (conn, _) = intruder(&copy);
        let value = match column {
            "recorded_at" => "2022-01-01T00:00:00.000000Z".to_string(),
            "id" => "01890a5d-ac96-774b-bcce-b302099a8057".to_string(),
            _ => "objective/forged".to_string(),
        };
        conn.execute(
            &format!("UPDATE events SET {column} = ?1 WHERE seq = 12"),
            [value],
        )
        .unwrap();
        drop(conn);
        assert_broken_at(&copy, 12);
    }
}

#[test]
fn verify_names_the_seq_of_a_deleted_row() {
    let dir = tempfile::tempdir().unwrap();
    let (db, events) = build_log(dir.path());
    for (case, seq) in [1, 23].into_iter().enumerate() {
        let case_dir = dir.path().join(format!("delete-{case}"));
        std::fs::create_dir(&case_dir).unwrap();
        let copy = copy_log(&db, &case_dir);
        let (conn, _) = intruder(&copy);
        assert_eq!(
            conn.execute("DELETE FROM events WHERE seq = ?1", [seq])
                .unwrap(),
            1
        );
        drop(conn);
        assert_broken_at(&copy, seq);
    }
    // Deleting the tail leaves a shorter chain that holds: only the head published
    // before catches it (see the next test); the triggers' absence is reported.
    let case_dir = dir.path().join("delete-tail");
    std::fs::create_dir(&case_dir).unwrap();
    let copy = copy_log(&db, &case_dir);
    let (code, out) = verify(&copy, &[]);
    assert_eq!(code, 0, "{out}");
    let head = out.split_whitespace().nth(4).unwrap().to_string();
    let (conn, _) = intruder(&copy);
    conn.execute("DELETE FROM events WHERE seq = ?1", [events])
        .unwrap();
    drop(conn);
    let (code, out) = verify(&copy, &[head]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(&format!("MISSING published head {events}:")),
        "{out}"
    );
    assert!(out.contains("TAMPERED"), "{out}");
}

#[test]
fn verify_names_the_first_of_two_swapped_rows() {
    let dir = tempfile::tempdir().unwrap();
    let (db, events) = build_log(dir.path());
    for (case, (a, b)) in [(5, 6), (9, 30), (1, events)].into_iter().enumerate() {
        let case_dir = dir.path().join(format!("swap-{case}"));
        std::fs::create_dir(&case_dir).unwrap();
        let copy = copy_log(&db, &case_dir);
        let (conn, _) = intruder(&copy);
        // Swap the rows' places in the log: each takes the other's seq.
        conn.execute_batch(&format!(
            "UPDATE events SET seq = -1 WHERE seq = {a};
             UPDATE events SET seq = {a} WHERE seq = {b};
             UPDATE events SET seq = {b} WHERE seq = -1;"
        ))
        .unwrap();
        drop(conn);
        assert_broken_at(&copy, a);
    }
    // Swapping everything but the seq (the contents) is the same reordering.
    let case_dir = dir.path().join("swap-contents");
    std::fs::create_dir(&case_dir).unwrap();
    let copy = copy_log(&db, &case_dir);
    let (conn, _) = intruder(&copy);
    let columns = "id, stream, version, type, schema, data, actor, role, recorded_at, \
                   correlation, prev_hash, hash";
    conn.execute_batch(&format!(
        "CREATE TEMP TABLE saved AS SELECT seq, {columns} FROM events WHERE seq IN (14, 15);
         UPDATE events SET id = 'x' || id, version = -version WHERE seq IN (14, 15);
         UPDATE events SET ({columns}) = (SELECT {columns} FROM saved WHERE saved.seq = 15)
           WHERE seq = 14;
         UPDATE events SET ({columns}) = (SELECT {columns} FROM saved WHERE saved.seq = 14)
           WHERE seq = 15;"
    ))
    .unwrap();
    drop(conn);
    assert_broken_at(&copy, 14);
}

#[test]
fn a_chain_recomputed_after_an_edit_is_caught_only_by_a_head_published_before() {
    let dir = tempfile::tempdir().unwrap();
    let (db, events) = build_log(dir.path());
    let (_, out) = verify(&db, &[]);
    let published = out.split_whitespace().nth(4).unwrap().to_string();
    assert!(published.starts_with(&format!("{events}:")), "{out}");
    let exported = export(&db);
    let early = format!("{}:{}", exported[9]["seq"], str_of(&exported[9]["hash"]));

    // Someone edits seq 12 and recomputes every hash from there, then puts the
    // triggers back: the file is again a perfectly consistent log.
    let (conn, triggers) = intruder(&db);
    conn.execute(
        "UPDATE events SET data = json_set(data, '$.note', 'riscritto') WHERE seq = 12",
        [],
    )
    .unwrap();
    let rows = rows_as_exported(&conn);
    let mut prev = str_of(&rows[10]["hash"]).to_string();
    for row in &rows[11..] {
        let hash = chain_hash(&prev, row);
        conn.execute(
            "UPDATE events SET prev_hash = ?1, hash = ?2 WHERE seq = ?3",
            rusqlite::params![prev, hash, row["seq"].as_u64()],
        )
        .unwrap();
        prev = hash;
    }
    for sql in &triggers {
        conn.execute_batch(sql).unwrap();
    }
    drop(conn);

    let (code, out) = verify(&db, &[]);
    assert_eq!(code, 0, "on its own the rewritten chain holds: {out}");
    let (code, out) = verify(&db, std::slice::from_ref(&early));
    assert_eq!(code, 0, "a head from before the edit is still held: {out}");
    let (code, out) = verify(&db, &[early, published.clone()]);
    assert_eq!(
        code, 1,
        "the head published before the rewrite is gone: {out}"
    );
    assert!(
        out.contains(&format!("MISSING published head {published}")),
        "{out}"
    );
}

#[test]
fn verify_and_export_refuse_a_missing_file_or_one_that_is_not_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere.db");
    let text = dir.path().join("piano.txt");
    std::fs::write(&text, "Piano degli obiettivi 2022\n".repeat(300)).unwrap();
    for (file, says) in [
        (&missing, "no such database file"),
        (&text, "not a SQLite database"),
    ] {
        for command in ["verify", "export"] {
            let output = traguardo(file, &[command]);
            let err = stderr(&output);
            assert_eq!(output.status.code(), Some(1), "{command}: {err}");
            assert!(err.contains(says), "{command} says why: {err}");
            assert!(
                err.contains(&file.display().to_string()),
                "names the file: {err}"
            );
            assert!(!err.contains("panicked"), "{err}");
            assert!(output.stdout.is_empty());
        }
    }
    assert!(!missing.exists(), "verify created nothing");
    assert_eq!(
        std::fs::read_to_string(&text).unwrap(),
        "Piano degli obiettivi 2022\n".repeat(300),
        "the file is untouched"
    );
}

#[test]
fn export_writes_every_event_as_one_json_line() {
    let dir = tempfile::tempdir().unwrap();
    let (db, events) = build_log(dir.path());
    let exported = export(&db);
    assert_eq!(exported.len() as u64, events);
    let store = SqliteStore::open_existing(&db).unwrap();
    let stored = store.read_all(0, 1_000_000).unwrap();
    for (line, event) in exported.iter().zip(&stored) {
        let parsed: RecordedEvent = serde_json::from_value(line.clone()).unwrap();
        assert_eq!(&parsed, event, "seq {} round-trips", event.seq);
    }
    let (_, out) = verify(&db, &[]);
    let last = exported.last().unwrap();
    assert!(out.contains(&format!("head {}:{}", last["seq"], str_of(&last["hash"]))));
}

/// `traguardo export`, parsed one line at a time.
fn export(db: &Path) -> Vec<Value> {
    let output = traguardo(db, &["export"]);
    assert!(output.status.success(), "export: {}", stderr(&output));
    let text = String::from_utf8(output.stdout).expect("export is UTF-8");
    assert!(text.ends_with('\n'));
    text.lines()
        .map(|line| serde_json::from_str(line).expect("each line is one JSON event"))
        .collect()
}

fn str_of(value: &Value) -> &str {
    value.as_str().expect("a string")
}

/// The rows of the log as `export` writes them, read with plain SQL.
fn rows_as_exported(conn: &rusqlite::Connection) -> Vec<Value> {
    conn.prepare(
        "SELECT seq, id, stream, version, type, schema, data, actor, role, recorded_at, \
         correlation, prev_hash, hash FROM events ORDER BY seq",
    )
    .unwrap()
    .query_map([], |r| {
        Ok(json!({
            "seq": r.get::<_, i64>(0)?, "id": r.get::<_, String>(1)?,
            "stream": r.get::<_, String>(2)?, "version": r.get::<_, i64>(3)?,
            "type": r.get::<_, String>(4)?, "schema": r.get::<_, i64>(5)?,
            "data": serde_json::from_str::<Value>(&r.get::<_, String>(6)?).unwrap(),
            "actor": r.get::<_, String>(7)?, "role": r.get::<_, String>(8)?,
            "recorded_at": r.get::<_, String>(9)?,
            "correlation": r.get::<_, Option<String>>(10)?,
            "prev_hash": r.get::<_, String>(11)?, "hash": r.get::<_, String>(12)?,
        }))
    })
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap()
}

// ---------------------------------------------------------------------------
// The hash chain, written from the README alone ("Hash chain: how to re-verify
// an export yourself"), with no call into traguardo_events::chain.

/// `canonical(event)`: every exported field but `hash` and `prev_hash`, keys
/// sorted at every depth, no whitespace, UTF-8 as is, JSON escapes only where
/// JSON requires them.
fn canonical(event: &Value) -> String {
    let Value::Object(fields) = event else {
        panic!("an exported event is a JSON object")
    };
    let mut body = fields.clone();
    body.remove("hash");
    body.remove("prev_hash");
    let mut out = String::new();
    write_canonical(&Value::Object(body), &mut out);
    out
}

fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            assert!(n.is_i64() || n.is_u64(), "no floating point in events: {n}");
            out.push_str(&n.to_string());
        }
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                write_canonical(&map[key], out);
            }
            out.push('}');
        }
    }
}

fn write_string(text: &str, out: &mut String) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `lowercase_hex(SHA-256(prev_hash + "\n" + canonical(event)))`.
fn chain_hash(prev_hash: &str, event: &Value) -> String {
    let mut hasher = Sha256::new();
    hasher.update(prev_hash.as_bytes());
    hasher.update(b"\n");
    hasher.update(canonical(event).as_bytes());
    hex::encode(hasher.finalize())
}

#[test]
fn the_readme_hash_algorithm_matches_a_vector_computed_with_its_python_script() {
    // This line and its hash were computed with the Python script of the README.
    let line = r#"{"seq":1,"id":"01890a5d-ac96-774b-bcce-b302099a8057","stream":"objective/2022-2250-A","version":1,"type":"phase_completed","schema":1,"data":{"phase":2,"on":"2022-05-28","note":"Fase \"2\" completata\tcon l'AMAG\\Ambiente — è\u0001\u001f\b\f\r ✓ 😀\n","evidence":["prot. n° 123/2022"],"z":{"b":[3,-1,{"y":null,"x":true}],"a":false,"Z":18446744073709551615}},"actor":"Dott. Stefano Specchia","role":"manager","recorded_at":"2022-06-10T09:12:03.123456Z","correlation":"rev/ß","prev_hash":"0000000000000000000000000000000000000000000000000000000000000000","hash":""}"#;
    let event: Value = serde_json::from_str(line).unwrap();
    assert_eq!(
        canonical(&event),
        r#"{"actor":"Dott. Stefano Specchia","correlation":"rev/ß","data":{"evidence":["prot. n° 123/2022"],"note":"Fase \"2\" completata\tcon l'AMAG\\Ambiente — è\u0001\u001f\b\f\r ✓ 😀\n","on":"2022-05-28","phase":2,"z":{"Z":18446744073709551615,"a":false,"b":[3,-1,{"x":true,"y":null}]}},"id":"01890a5d-ac96-774b-bcce-b302099a8057","recorded_at":"2022-06-10T09:12:03.123456Z","role":"manager","schema":1,"seq":1,"stream":"objective/2022-2250-A","type":"phase_completed","version":1}"#
    );
    assert_eq!(
        chain_hash(GENESIS, &event),
        "4c6f85f316e4526421922a1d44a5bdba415b066e7f1af400789b9b6f73da7672"
    );
}

#[test]
fn an_export_re_verifies_with_the_readme_algorithm_alone() {
    let dir = tempfile::tempdir().unwrap();
    let (db, _) = build_log(dir.path());
    // Events whose text needs every kind of escape, written through the library.
    let store = SqliteStore::open(&db, Clock::system()).unwrap();
    let awkward = [
        json!({"note": "Fase \"2\"\tcompletata\r\ncon l'AMAG\\Ambiente — è ✓ 😀", "phase": 2}),
        json!({"controls": "\u{1}\u{8}\u{c}\u{1f}\u{7f}", "z": {"b": [3, -1, null], "a": true}}),
        json!({"big": u64::MAX, "neg": i64::MIN, "empty": {}, "list": [], "": "chiave vuota"}),
        json!({"Zeta": 1, "alfa": 2, "Ärger": 3, "zz": {"ü": [{"b": 1, "a": 2}]}}),
    ];
    for (i, data) in awkward.into_iter().enumerate() {
        let event = NewEvent {
            stream: format!("objective/2022-2250-{}", ["A", "B"][i % 2]),
            event_type: "phase_completed".into(),
            schema: 1,
            data,
            actor: "Dott.ssa \"Maria\" D'Alessandro\\ufficio".into(),
            role: "manager".into(),
            correlation: (i % 2 == 0).then(|| format!("rev/ß-{i}\n")),
        };
        store.append(AppendBatch::new().push(event)).unwrap();
    }
    store.shutdown();
    drop(store);

    let exported = export(&db);
    let mut prev = GENESIS.to_string();
    for (i, event) in exported.iter().enumerate() {
        let seq = event["seq"].as_u64().unwrap();
        assert_eq!(seq, i as u64 + 1, "seqs are gapless from 1");
        let fields: Vec<&str> = event
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(
            fields.len(),
            13,
            "the README's eleven fields plus prev_hash and hash: {fields:?}"
        );
        assert_eq!(str_of(&event["prev_hash"]), prev, "seq {seq} links back");
        let hash = chain_hash(&prev, event);
        assert_eq!(str_of(&event["hash"]), hash, "seq {seq} hash");
        prev = hash;
    }
    // And the head verify reports is the one recomputed here.
    let (code, out) = verify(&db, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&prev), "{out}");
}

// ---------------------------------------------------------------------------
// Crash: a child appends continuously and is killed with SIGKILL, over and over.

/// The test-support binary `traguardo-append-loop` (tests/support/append_loop.rs)
/// on `db`: it appends through the product's store without end and prints `ack
/// SEQ HASH` for each append acknowledged as durable.
fn append_loop_child_command(db: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_traguardo-append-loop"));
    command.arg(db);
    command
}

/// A small deterministic generator (xorshift64*), so a failure can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One line of `traguardo-append-loop`: the seq and hash of an acknowledged append.
fn parse_ack(line: &str) -> Option<(u64, String)> {
    let (seq, hash) = line
        .strip_prefix("ack ")?
        .strip_suffix('\n')?
        .split_once(' ')?;
    let seq = seq.parse().ok()?;
    let hex = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
    hex.then(|| (seq, hash.to_string()))
}

#[test]
fn every_acknowledged_append_survives_sigkill_at_random_moments() {
    const RUNS: usize = 24;
    let seed = 0x7261_6775_6172_646f; // "raguardo"
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let mut acknowledged: BTreeMap<u64, String> = BTreeMap::new();
    let mut published_heads = Vec::new();
    let mut killed_mid_append = 0;
    let mut counted_runs = 0;
    for run in 0..RUNS {
        let mut child = append_loop_child_command(&db)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the child starts");
        let out = child.stdout.take().unwrap();
        let (lines_tx, lines) = mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            let mut out = BufReader::new(out);
            loop {
                let mut line = String::new();
                match out.read_line(&mut line) {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {
                        // Only the acknowledgements; the test harness's own
                        // lines (`running 1 test`) are not appends.
                        let Some(at) = line.find("ack ") else {
                            continue;
                        };
                        if lines_tx.send(line[at..].to_string()).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        // Kill after a random number of acknowledgements (right after one, with
        // the next append in flight), or after a random delay (during start-up,
        // migration, or anywhere in an append); never later than 200 ms.
        let mut acks = Vec::new();
        if rng.below(2) == 0 {
            // The first line bounds only a hung child (a loaded machine may take
            // a while to start one); the kill then comes within 200 ms.
            if let Ok(line) = lines.recv_timeout(Duration::from_secs(20)) {
                acks.push(line);
            }
            let deadline = Instant::now() + Duration::from_millis(200);
            let wanted = 1 + rng.below(40) as usize;
            while acks.len() < wanted {
                let left = deadline.saturating_duration_since(Instant::now());
                match lines.recv_timeout(left) {
                    Ok(line) => acks.push(line),
                    Err(_) => break,
                }
            }
            assert!(
                !acks.is_empty(),
                "run {run}: the child acknowledged nothing in 20 s"
            );
            counted_runs += 1;
        } else {
            std::thread::sleep(Duration::from_millis(rng.below(120)));
        }
        child.kill().expect("SIGKILL is sent");
        let status = child.wait().unwrap();
        reader.join().unwrap();
        // Lines still in the pipe were acknowledged before the kill too.
        acks.extend(lines.try_iter());
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        {
            use std::os::unix::process::ExitStatusExt;
            assert_eq!(
                status.signal(),
                Some(9),
                "run {run}: the child ran until it was killed ({status}): {err}"
            );
        }
        let mut last = None;
        for line in &acks {
            // A line cut by the kill was never a whole acknowledgement.
            let Some((seq, hash)) = parse_ack(line) else {
                assert!(!line.ends_with('\n'), "run {run}: bad line {line:?}");
                continue;
            };
            if let Some(before) = acknowledged.insert(seq, hash.clone()) {
                panic!("run {run}: seq {seq} acknowledged twice ({before}, then {hash})");
            }
            last = Some(format!("{seq}:{hash}"));
        }
        published_heads.extend(last);

        // After the crash, every acknowledged event is there, intact, and the
        // chain holds.
        if acknowledged.is_empty() && !db.exists() {
            continue;
        }
        let store = match SqliteStore::open_existing(&db) {
            Ok(store) => store,
            Err(e) if acknowledged.is_empty() => {
                // Killed while the very first run was creating the file.
                eprintln!("run {run}: nothing acknowledged yet, the file is not a log yet: {e}");
                continue;
            }
            Err(e) => panic!("run {run}: the log does not open after a crash: {e}"),
        };
        let head = store.head().unwrap();
        let stored = store.read_all(0, 10_000_000).unwrap();
        for (seq, hash) in &acknowledged {
            let event = stored
                .get(*seq as usize - 1)
                .unwrap_or_else(|| panic!("run {run}: acknowledged seq {seq} is gone"));
            assert_eq!(event.seq, *seq);
            assert_eq!(&event.hash, hash, "run {run}: seq {seq} is intact");
        }
        if head.seq > acknowledged.keys().last().copied().unwrap_or(0) {
            killed_mid_append += 1; // committed, then killed before printing it
        }
        let verification = store.verify(&[]).unwrap();
        assert!(verification.ok(), "run {run}: {verification:?}");
        drop(store);
    }
    assert!(
        counted_runs > 0 && acknowledged.len() >= counted_runs,
        "the children got to append something: {} acknowledged",
        acknowledged.len()
    );
    // Finally, the binary agrees, and still holds the last head of every run.
    let (code, out) = verify(&db, &published_heads);
    assert_eq!(code, 0, "{out}");
    eprintln!(
        "{RUNS} kills, {} acknowledged appends, {killed_mid_append} runs killed after a \
         commit it had not printed yet (seed {seed:#x})",
        acknowledged.len()
    );
}
