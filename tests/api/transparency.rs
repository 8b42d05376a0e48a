//! Signed checkpoints, proofs, witnesses and the year-end seal (DESIGN.md §9):
//! over HTTP against the real server, and the offline commands against real
//! files, with every proof checked by the `traguardo-tlog` verifiers.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine as _;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use traguardo::http::Server;
use traguardo::transparency::Checkpoints;
use traguardo::App;
use traguardo_events::domain::OrgEvent;
use traguardo_events::{AppendBatch, Clock, NewEvent, SqliteStore, Store};
use traguardo_tlog::checkpoint;
use traguardo_tlog::merkle::{self, Hash, MemoryTree};
use traguardo_tlog::note::{KeyName, KeyType, SignerKey, VerifierKey};

use crate::support::seed_path;

const ADMIN: &str = "test-bootstrap-admin-token-for-checkpoints";
const ORIGIN: &str = "comune.test/traguardo";

fn b64(text: &str) -> Hash {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("base64");
    raw.as_slice().try_into().expect("32 bytes")
}

fn log_key() -> SignerKey {
    SignerKey::generate(KeyName::parse(ORIGIN).unwrap(), KeyType::Ed25519).unwrap()
}

fn witness_key(name: &str) -> SignerKey {
    SignerKey::generate(KeyName::parse(name).unwrap(), KeyType::CosignatureV1).unwrap()
}

/// A server with its own database, signing checkpoints with `key`.
struct Signing {
    dir: tempfile::TempDir,
    server: Option<Server>,
    base: String,
    client: reqwest::Client,
    vkey: Option<VerifierKey>,
}

impl Signing {
    async fn start(key: Option<SignerKey>, witnesses: Vec<VerifierKey>) -> Signing {
        Self::start_in(tempfile::tempdir().unwrap(), key, witnesses).await
    }

    async fn start_in(
        dir: tempfile::TempDir,
        key: Option<SignerKey>,
        witnesses: Vec<VerifierKey>,
    ) -> Signing {
        let app = App::open(dir.path().join("traguardo.db"), Clock::system()).unwrap();
        app.set_bootstrap_token(ADMIN);
        let vkey = key.as_ref().map(SignerKey::verifier_key);
        let checkpoints = Checkpoints::new(key, witnesses).unwrap();
        let server = traguardo::http::start_with(app, "127.0.0.1:0", checkpoints)
            .await
            .unwrap();
        Signing {
            dir,
            base: format!("http://{}", server.addr),
            server: Some(server),
            client: reqwest::Client::new(),
            vkey,
        }
    }

    fn app(&self) -> &App {
        // The server's own application: appends through it fold as usual.
        self.server.as_ref().unwrap().app()
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<String>,
    ) -> (StatusCode, String) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await.unwrap();
        (response.status(), response.text().await.unwrap())
    }

    async fn json(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (status, text) = self
            .send(method, path, token, body.map(|b| b.to_string()))
            .await;
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn token(&self, actor: &str, role: &str, units: &[&str]) -> String {
        let (status, body) = self
            .json(
                Method::POST,
                "/api/v1/tokens",
                ADMIN,
                Some(json!({"actor": actor, "role": role, "units": units})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["token"].as_str().unwrap().to_string()
    }

    async fn load_seed(&self) {
        let plan = std::fs::read_to_string(seed_path()).unwrap();
        let (status, body) = self
            .send(Method::POST, "/api/v1/plans", ADMIN, Some(plan))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    /// The latest checkpoint, opened with the log's key: (size, root, note text).
    async fn checkpoint(&self, token: &str) -> (u64, Hash, String) {
        let (status, text) = self
            .send(Method::GET, "/api/v1/checkpoint", token, None)
            .await;
        assert_eq!(status, StatusCode::OK, "{text}");
        let signed = checkpoint::open(text.as_bytes(), self.vkey.as_ref().unwrap())
            .expect("the checkpoint verifies with the log's key");
        assert_eq!(signed.checkpoint.origin(), ORIGIN);
        (signed.checkpoint.size(), *signed.checkpoint.root(), text)
    }

    async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await;
        }
    }
}

/// The leaf hashes of the log in a database, in seq order.
fn leaves_of(store: &dyn Store) -> Vec<Hash> {
    store
        .read_all(0, usize::MAX)
        .unwrap()
        .iter()
        .map(|e| merkle::chain_leaf_hash_hex(&e.hash).unwrap())
        .collect()
}

fn assert_problem(status: StatusCode, body: &Value, expected: StatusCode, field: Option<&str>) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["status"], expected.as_u16(), "{body}");
    if let Some(field) = field {
        assert_eq!(body["errors"][0]["field"], field, "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_leaf_of_small_logs_proves_inclusion_and_every_size_consistency_over_http() {
    let server = Signing::start(Some(log_key()), vec![]).await;
    let auditor = server.token("Revisore", "auditor", &[]).await;
    for round in 0..10 {
        // Each token issued is one event on the org stream.
        server
            .token(&format!("Revisore {round}"), "auditor", &[])
            .await;
        let leaves = leaves_of(&**server.app().store());
        let (size, root, _) = server.checkpoint(&auditor).await;
        assert_eq!(size, leaves.len() as u64, "the checkpoint is of the head");
        let memory = MemoryTree::from_leaf_hashes(&leaves);
        assert_eq!(root, memory.root(size).unwrap());
        for seq in 1..=size {
            let (status, proof) = server
                .json(
                    Method::GET,
                    &format!("/api/v1/proofs/inclusion?seq={seq}&size={size}"),
                    &auditor,
                    None,
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{proof}");
            assert_eq!(proof["leaf_index"], seq - 1);
            assert_eq!(proof["tree_size"], size);
            let hashes: Vec<Hash> = proof["hashes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| b64(h.as_str().unwrap()))
                .collect();
            merkle::verify_inclusion(&leaves[seq as usize - 1], seq - 1, size, &hashes, &root)
                .unwrap_or_else(|e| panic!("seq {seq} of {size}: {e}"));
        }
        for from in 1..=size {
            let (status, proof) = server
                .json(
                    Method::GET,
                    &format!("/api/v1/proofs/consistency?from={from}&to={size}"),
                    &auditor,
                    None,
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{proof}");
            let hashes: Vec<Hash> = proof["hashes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| b64(h.as_str().unwrap()))
                .collect();
            merkle::verify_consistency(from, size, &memory.root(from).unwrap(), &root, &hashes)
                .unwrap_or_else(|e| panic!("{from} → {size}: {e}"));
        }
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_leaves_of_a_fifty_thousand_event_log_prove_inclusion_against_the_signed_root() {
    const EVENTS: usize = 50_000;
    // Appends block: they run off the test's runtime.
    let (dir, leaves) = tokio::task::spawn_blocking(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("traguardo.db");
        let store = SqliteStore::open(&path, Clock::system()).unwrap();
        let actor = traguardo_events::envelope::Actor::new("traguardo-test", "admin");
        for _ in 0..EVENTS / 1000 {
            let mut batch = AppendBatch::new();
            for _ in 0..1000 {
                let event = OrgEvent::TokenRevoked {
                    token_id: uuid::Uuid::now_v7(),
                };
                batch = batch.push(NewEvent::from_domain("org", &event, &actor, None).unwrap());
            }
            store.append(batch).unwrap();
        }
        let leaves = leaves_of(&store);
        store.shutdown();
        drop(store);
        (dir, leaves)
    })
    .await
    .unwrap();
    let memory = MemoryTree::from_leaf_hashes(&leaves);
    let server = Signing::start_in(dir, Some(log_key()), vec![]).await;
    let (size, root, _) = server.checkpoint(ADMIN).await;
    assert_eq!(size, EVENTS as u64);
    assert_eq!(root, memory.root(size).unwrap());
    // A fixed pseudo-random walk over the leaves (and both ends).
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut seqs = vec![1, size];
    for _ in 0..200 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        seqs.push(x % size + 1);
    }
    for seq in seqs {
        let (status, proof) = server
            .json(
                Method::GET,
                &format!("/api/v1/proofs/inclusion?seq={seq}&size={size}"),
                ADMIN,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{proof}");
        let hashes: Vec<Hash> = proof["hashes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| b64(h.as_str().unwrap()))
            .collect();
        merkle::verify_inclusion(&leaves[seq as usize - 1], seq - 1, size, &hashes, &root)
            .unwrap_or_else(|e| panic!("seq {seq}: {e}"));
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_proof_requests_are_422_naming_the_field_and_checkpoints_need_a_key() {
    let server = Signing::start(None, vec![]).await;
    server.load_seed().await;
    let manager = server.token("Dirigente 2250", "manager", &["2250"]).await;
    for (path, field) in [
        ("/api/v1/proofs/inclusion?seq=0&size=3", "seq"),
        ("/api/v1/proofs/inclusion?seq=1&size=999", "size"),
        ("/api/v1/proofs/inclusion?seq=5&size=3", "seq"),
        ("/api/v1/proofs/inclusion?seq=uno", "seq"),
        ("/api/v1/proofs/inclusion?size=3", "seq"),
        ("/api/v1/proofs/consistency?from=5&to=3", "from"),
        ("/api/v1/proofs/consistency?from=0&to=3", "from"),
        ("/api/v1/proofs/consistency?from=2&to=999", "to"),
        ("/api/v1/proofs/consistency?from=due&to=3", "from"),
    ] {
        let (status, body) = server.json(Method::GET, path, &manager, None).await;
        assert_problem(status, &body, StatusCode::UNPROCESSABLE_ENTITY, Some(field));
    }
    // Any role may read proofs; without a token, nobody.
    let (status, _) = server
        .json(
            Method::GET,
            "/api/v1/proofs/inclusion?seq=1&size=3",
            &manager,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = server
        .json(Method::GET, "/api/v1/proofs/inclusion?seq=1", "nope", None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // No key: the checkpoint routes say so, in Italian, and nothing can be sealed.
    for path in ["/api/v1/checkpoint", "/api/v1/checkpoint/vkey"] {
        let (status, body) = server.json(Method::GET, path, &manager, None).await;
        assert_problem(status, &body, StatusCode::NOT_FOUND, None);
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains("--checkpoint-key"),
            "{body}"
        );
    }
    let validator = server.token("Nucleo", "validator", &[]).await;
    let (status, body) = server
        .json(Method::POST, "/api/v1/plans/2022/seal", &validator, None)
        .await;
    assert_problem(status, &body, StatusCode::CONFLICT, None);
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("checkpoint firmato"),
        "{body}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sealed_year_refuses_every_write_with_409_and_its_report_carries_the_checkpoint() {
    let nucleo = witness_key("nucleo.test");
    let server = Signing::start(Some(log_key()), vec![nucleo.verifier_key()]).await;
    server.load_seed().await;
    let manager = server.token("Dirigente 2250", "manager", &["2250"]).await;
    let validator = server.token("Nucleo", "validator", &[]).await;
    let (status, body) = server
        .json(
            Method::POST,
            "/api/v1/objectives/2022-2250-A/phases/1/start",
            &manager,
            Some(json!({"on": "2022-03-01"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    // Only the Nucleo seals.
    let (status, body) = server
        .json(Method::POST, "/api/v1/plans/2022/seal", &manager, None)
        .await;
    assert_problem(status, &body, StatusCode::FORBIDDEN, None);
    let (status, body) = server
        .json(Method::POST, "/api/v1/plans/2099/seal", &validator, None)
        .await;
    assert_problem(status, &body, StatusCode::NOT_FOUND, None);
    // The witness cosigns the latest checkpoint first; the seal names it.
    let (size, _, note) = server.checkpoint(&validator).await;
    let signed = checkpoint::open(note.as_bytes(), server.vkey.as_ref().unwrap()).unwrap();
    let line = traguardo_tlog::cosignature::cosign(&signed.checkpoint, &nucleo, 1_700_000_000)
        .unwrap()
        .to_string();
    let (status, text) = server
        .send(
            Method::POST,
            "/api/v1/checkpoint/cosignatures",
            &validator,
            Some(line.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    assert!(text.contains(&line));
    let (status, body) = server
        .json(Method::POST, "/api/v1/plans/2022/seal", &validator, None)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["seal"]["size"], size);
    let sealed_note = body["seal"]["checkpoint"].as_str().unwrap().to_string();
    assert!(
        sealed_note.contains(&line),
        "the seal keeps the cosignature"
    );
    assert_eq!(body["seal"]["origin"], ORIGIN);
    // From then on: progress, validations, revisions and a second seal are 409.
    let admin = ADMIN.to_string();
    let writes = [
        (
            "/api/v1/objectives/2022-2250-A/phases/1/complete",
            &manager,
            json!({"on": "2022-05-28"}),
        ),
        (
            "/api/v1/objectives/2022-2250-A/phases/2/start",
            &manager,
            json!({"on": "2022-05-28"}),
        ),
        (
            "/api/v1/objectives/2022-2250-A/validations",
            &validator,
            json!({"stage": "plan", "outcome": "approved"}),
        ),
        (
            "/api/v1/plans/2022/revisions",
            &admin,
            json!({"act": "D.G.C. n. 1", "reason": "prova", "changes": [
                {"kind": "deadline", "objective": "2022-2250-A", "new_deadline": "2022-12-31"}]}),
        ),
        ("/api/v1/plans/2022/seal", &validator, Value::Null),
    ];
    for (path, token, body) in writes {
        let body = (!body.is_null()).then_some(body);
        let (status, answer) = server.json(Method::POST, path, token, body).await;
        assert_problem(status, &answer, StatusCode::CONFLICT, None);
        assert!(
            answer["detail"]
                .as_str()
                .unwrap()
                .contains("esercizio chiuso"),
            "{path}: {answer}"
        );
    }
    // The report carries the sealed checkpoint, in every format.
    let (status, report) = server
        .json(
            Method::GET,
            "/api/v1/plans/2022/report?format=json",
            &manager,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(report["sealed"]["checkpoint"], sealed_note.as_str());
    for format in ["md", "html"] {
        let (status, text) = server
            .send(
                Method::GET,
                &format!("/api/v1/plans/2022/report?format={format}"),
                &manager,
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(text.contains("Esercizio chiuso"), "{format}");
        assert!(text.contains(signed.checkpoint.to_string().lines().nth(2).unwrap()));
    }
    // And the plan's audit trail says so in Italian.
    let (_, audit) = server
        .json(Method::GET, "/api/v1/plans/2022/audit", &manager, None)
        .await;
    let last = audit.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["type"], "plan_sealed");
    assert!(
        last["summary"]
            .as_str()
            .unwrap()
            .starts_with("Esercizio chiuso"),
        "{last}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_takes_only_cosignatures_of_known_witnesses_that_verify() {
    let nucleo = witness_key("nucleo.test");
    let stranger = witness_key("altro.test");
    let server = Signing::start(Some(log_key()), vec![nucleo.verifier_key()]).await;
    server.load_seed().await;
    let validator = server.token("Nucleo", "validator", &[]).await;
    let auditor = server.token("Revisore", "auditor", &[]).await;
    let (_, _, note) = server.checkpoint(&auditor).await;
    let signed = checkpoint::open(note.as_bytes(), server.vkey.as_ref().unwrap()).unwrap();
    let cosign = |key: &SignerKey, size_delta: u64| {
        let checkpoint = traguardo_tlog::checkpoint::Checkpoint::new(
            ORIGIN,
            signed.checkpoint.size() + size_delta,
            *signed.checkpoint.root(),
        )
        .unwrap();
        traguardo_tlog::cosignature::cosign(&checkpoint, key, 1_700_000_000)
            .unwrap()
            .to_string()
    };
    for (line, who) in [
        (cosign(&stranger, 0), "an unknown witness"),
        (cosign(&nucleo, 7), "a checkpoint the log never signed"),
        ("— nucleo.test non-base64!".to_string(), "a malformed line"),
        (String::new(), "an empty body"),
    ] {
        let (status, text) = server
            .send(
                Method::POST,
                "/api/v1/checkpoint/cosignatures",
                &validator,
                Some(line),
            )
            .await;
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_problem(
            status,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("cosignature"),
        );
        assert!(!body["detail"].as_str().unwrap().is_empty(), "{who}");
    }
    let (status, _) = server
        .send(
            Method::POST,
            "/api/v1/checkpoint/cosignatures",
            &auditor,
            Some(cosign(&nucleo, 0)),
        )
        .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "only the Nucleo posts cosignatures"
    );
    let (status, text) = server
        .send(
            Method::POST,
            "/api/v1/checkpoint/cosignatures",
            &validator,
            Some(cosign(&nucleo, 0)),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{text}");
    let (_, _, latest) = server.checkpoint(&auditor).await;
    let (note, _) =
        traguardo_tlog::note::open(latest.as_bytes(), &[nucleo.verifier_key()]).unwrap();
    assert_eq!(
        note.signatures().len(),
        2,
        "the log's signature and the Nucleo's"
    );
    let (status, vkey) = server
        .send(Method::GET, "/api/v1/checkpoint/vkey", &auditor, None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(vkey.trim(), server.vkey.as_ref().unwrap().to_string());
    server.stop().await;
}

// --- the command line -------------------------------------------------------

fn traguardo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_traguardo"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn everything(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// A database with the seed loaded through the command line.
fn seeded(dir: &Path, name: &str) -> PathBuf {
    let db = dir.join(name);
    let out = traguardo(&[
        "--db",
        db.to_str().unwrap(),
        "import",
        seed_path().to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", everything(&out));
    db
}

/// Signs a checkpoint of the database's head with `key` and writes it to `file`.
fn sign_checkpoint(db: &Path, key: &SignerKey, file: &Path) -> String {
    let store = SqliteStore::open_existing(db).unwrap();
    let checkpoints = Checkpoints::new(Some(key.clone()), vec![]).unwrap();
    let note = checkpoints.refresh(&store).unwrap().unwrap().to_string();
    store.shutdown();
    std::fs::write(file, &note).unwrap();
    note
}

fn write_key(dir: &Path, name: &str, key: &SignerKey) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, key.to_private_string()).unwrap();
    path
}

#[test]
fn key_generate_writes_a_private_file_once_and_prints_its_vkey() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("log.key");
    let first = traguardo(&[
        "key",
        "generate",
        "--name",
        ORIGIN,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(first.status.success(), "{}", everything(&first));
    let vkey = VerifierKey::parse(stdout(&first).trim()).unwrap();
    assert_eq!(vkey.name().as_str(), ORIGIN);
    assert_eq!(vkey.kind(), KeyType::Ed25519);
    let secret = SignerKey::parse(std::fs::read_to_string(&out).unwrap().trim()).unwrap();
    assert_eq!(secret.verifier_key(), vkey);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&out).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let again = traguardo(&[
        "key",
        "generate",
        "--name",
        ORIGIN,
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        !again.status.success(),
        "an existing key is never overwritten"
    );
    assert_eq!(
        SignerKey::parse(std::fs::read_to_string(&out).unwrap().trim())
            .unwrap()
            .verifier_key(),
        vkey
    );
    let witness = dir.path().join("w.key");
    let w = traguardo(&[
        "key",
        "generate",
        "--name",
        "nucleo.test",
        "--out",
        witness.to_str().unwrap(),
        "--witness",
    ]);
    assert!(w.status.success());
    assert_eq!(
        VerifierKey::parse(stdout(&w).trim()).unwrap().kind(),
        KeyType::CosignatureV1
    );
    let bad = traguardo(&["key", "generate", "--name", "with space", "--out", "/tmp/x"]);
    assert!(!bad.status.success());
}

#[test]
fn verify_checkpoint_catches_a_tampered_event_a_rewritten_log_a_fork_and_a_wrong_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = log_key();
    let vkey = key.verifier_key().to_string();
    let db = seeded(d, "a.db");
    let cp = d.join("a.checkpoint");
    sign_checkpoint(&db, &key, &cp);
    let verify = |db: &Path, cp: &Path, vkeys: &[&str], export: Option<&Path>| {
        let mut args = vec![
            "--db",
            db.to_str().unwrap(),
            "verify",
            "--checkpoint",
            cp.to_str().unwrap(),
        ];
        for v in vkeys {
            args.extend(["--vkey", v]);
        }
        if let Some(export) = export {
            args.extend(["--export", export.to_str().unwrap()]);
        }
        traguardo(&args)
    };
    let ok = verify(&db, &cp, &[&vkey], None);
    assert!(ok.status.success(), "{}", everything(&ok));
    assert!(stdout(&ok).starts_with("ok:"));
    // The same through an export; and proofs offline agree with the database.
    let export = d.join("a.ndjson");
    let exported = traguardo(&["--db", db.to_str().unwrap(), "export"]);
    std::fs::write(&export, &exported.stdout).unwrap();
    let ok = verify(Path::new("/nonexistent.db"), &cp, &[&vkey], Some(&export));
    assert!(ok.status.success(), "{}", everything(&ok));
    let from_db = traguardo(&[
        "--db",
        db.to_str().unwrap(),
        "prove",
        "inclusion",
        "--seq",
        "3",
        "--size",
        "8",
    ]);
    let from_export = traguardo(&[
        "prove",
        "inclusion",
        "--seq",
        "3",
        "--size",
        "8",
        "--export",
        export.to_str().unwrap(),
    ]);
    assert!(from_db.status.success(), "{}", everything(&from_db));
    assert_eq!(stdout(&from_db), stdout(&from_export));
    let consistency = traguardo(&[
        "prove",
        "consistency",
        "--from",
        "3",
        "--to",
        "8",
        "--export",
        export.to_str().unwrap(),
    ]);
    assert!(consistency.status.success());
    let bad = traguardo(&[
        "--db",
        db.to_str().unwrap(),
        "prove",
        "inclusion",
        "--seq",
        "0",
    ]);
    assert!(!bad.status.success());
    let bad = traguardo(&[
        "--db",
        db.to_str().unwrap(),
        "prove",
        "consistency",
        "--from",
        "5",
        "--to",
        "3",
    ]);
    assert!(!bad.status.success());
    assert!(
        everything(&bad).contains("smaller size"),
        "{}",
        everything(&bad)
    );

    // A wrong key: another key of the same name never verifies.
    let impostor = log_key().verifier_key().to_string();
    let wrong = verify(&db, &cp, &[&impostor], None);
    assert!(!wrong.status.success());
    assert!(
        stdout(&wrong).contains("not signed by"),
        "{}",
        everything(&wrong)
    );
    // Malformed and unsigned checkpoints.
    let garbage = d.join("garbage");
    std::fs::write(&garbage, "not a checkpoint").unwrap();
    let failed = verify(&db, &garbage, &[&vkey], None);
    assert!(!failed.status.success());
    assert!(
        stdout(&failed).contains("not a signed note"),
        "{}",
        everything(&failed)
    );
    let unsigned = d.join("unsigned");
    let text = std::fs::read_to_string(&cp).unwrap();
    std::fs::write(
        &unsigned,
        text.split("\n\n").next().unwrap().to_string() + "\n",
    )
    .unwrap();
    assert!(!verify(&db, &unsigned, &[&vkey], None).status.success());

    // A rewritten log: the same plan loaded again has other ids and times, so a
    // chain that holds, of the same size, with another root.
    let rewritten = seeded(d, "b.db");
    let failed = verify(&rewritten, &cp, &[&vkey], None);
    assert!(!failed.status.success());
    assert!(
        stdout(&failed).contains("rewritten"),
        "{}",
        everything(&failed)
    );
    // A fork: the log's key signed a checkpoint of that other log.
    let fork = d.join("fork.checkpoint");
    sign_checkpoint(&rewritten, &key, &fork);
    let failed = verify(&db, &fork, &[&vkey], None);
    assert!(!failed.status.success());
    assert!(stdout(&failed).contains("fork"), "{}", everything(&failed));
    // A tampered export: one character of one event's data.
    let tampered = d.join("tampered.ndjson");
    let text = std::fs::read_to_string(&export).unwrap();
    std::fs::write(&tampered, text.replacen("Alessandria", "Alexandria", 1)).unwrap();
    let failed = verify(Path::new("/nonexistent.db"), &cp, &[&vkey], Some(&tampered));
    assert!(!failed.status.success());
    assert!(
        stdout(&failed).contains("was changed"),
        "{}",
        everything(&failed)
    );
    // A tampered database: an event changed behind the store's back.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "DROP TRIGGER events_no_update;
         UPDATE events SET data = replace(data, 'Alessandria', 'Alexandria') WHERE seq = 1;",
    )
    .unwrap();
    drop(conn);
    let failed = verify(&db, &cp, &[&vkey], None);
    assert!(!failed.status.success());
    assert!(
        stdout(&failed).contains("breaks at seq 1"),
        "{}",
        everything(&failed)
    );
}

#[test]
fn cosign_extends_its_state_and_refuses_a_fork() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let key = log_key();
    let vkey = key.verifier_key().to_string();
    let nucleo = witness_key("nucleo.test");
    let wkey = write_key(d, "w.key", &nucleo);
    let state = d.join("w.state");
    let db = seeded(d, "a.db");
    let first = d.join("first.checkpoint");
    sign_checkpoint(&db, &key, &first);
    let cosign = |cp: &Path, db: &Path| {
        traguardo(&[
            "--db",
            db.to_str().unwrap(),
            "cosign",
            "--key",
            wkey.to_str().unwrap(),
            "--vkey",
            &vkey,
            "--state",
            state.to_str().unwrap(),
            "--checkpoint",
            cp.to_str().unwrap(),
        ])
    };
    let out = cosign(&first, &db);
    assert!(out.status.success(), "{}", everything(&out));
    let line = stdout(&out);
    let signature = traguardo::transparency::parse_signature_line(line.trim()).unwrap();
    assert_eq!(signature.name.as_str(), "nucleo.test");
    let kept: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(kept["size"], 8);
    // The log grows: the next checkpoint is consistent with the first.
    let store = SqliteStore::open_existing(&db).unwrap();
    let actor = traguardo_events::envelope::Actor::new("traguardo-test", "admin");
    let event = OrgEvent::TokenRevoked {
        token_id: uuid::Uuid::now_v7(),
    };
    store
        .append(
            AppendBatch::new().push(NewEvent::from_domain("org", &event, &actor, None).unwrap()),
        )
        .unwrap();
    store.shutdown();
    drop(store);
    let second = d.join("second.checkpoint");
    sign_checkpoint(&db, &key, &second);
    let out = cosign(&second, &db);
    assert!(out.status.success(), "{}", everything(&out));
    let kept: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(kept["size"], 9);
    // A fork: another log of the same size, signed by the same key.
    let other = seeded(d, "b.db");
    let store = SqliteStore::open_existing(&other).unwrap();
    store
        .append(
            AppendBatch::new().push(NewEvent::from_domain("org", &event, &actor, None).unwrap()),
        )
        .unwrap();
    store.shutdown();
    drop(store);
    let forked = d.join("fork.checkpoint");
    sign_checkpoint(&other, &key, &forked);
    let out = cosign(&forked, &other);
    assert!(!out.status.success(), "a fork is never cosigned");
    assert!(
        everything(&out).contains("root other than"),
        "{}",
        everything(&out)
    );
    let after: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(after, kept, "the state is unchanged by a refusal");
    // Going back is refused too, and so is a checkpoint the log's key did not sign.
    assert!(!cosign(&first, &db).status.success());
    let foreign = d.join("foreign.checkpoint");
    sign_checkpoint(&db, &log_key(), &foreign);
    let out = cosign(&foreign, &db);
    assert!(!out.status.success());
    assert!(
        everything(&out).contains("log's key"),
        "{}",
        everything(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cosign_over_http_fetches_proves_and_posts_its_cosignature() {
    let nucleo = witness_key("nucleo.test");
    let server = Signing::start(Some(log_key()), vec![nucleo.verifier_key()]).await;
    server.load_seed().await;
    let validator = server.token("Nucleo", "validator", &[]).await;
    let d = server.dir.path().to_path_buf();
    let wkey = write_key(&d, "w.key", &nucleo);
    let vkey = server.vkey.as_ref().unwrap().to_string();
    let state = d.join("w.state");
    let base = server.base.clone();
    let run = {
        let (wkey, state, validator) = (wkey.clone(), state.clone(), validator.clone());
        move || {
            traguardo(&[
                "cosign",
                "--key",
                wkey.to_str().unwrap(),
                "--vkey",
                &vkey,
                "--state",
                state.to_str().unwrap(),
                "--url",
                &base,
                "--token",
                &validator,
                "--post",
            ])
        }
    };
    let out = tokio::task::spawn_blocking(run.clone()).await.unwrap();
    assert!(out.status.success(), "{}", everything(&out));
    // More events; the second run needs (and gets) a consistency proof.
    server.token("Revisore", "auditor", &[]).await;
    let out = tokio::task::spawn_blocking(run).await.unwrap();
    assert!(out.status.success(), "{}", everything(&out));
    let (size, _, note) = server.checkpoint(&validator).await;
    let kept: Value = serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(kept["size"], size);
    traguardo_tlog::cosignature::verify(
        &traguardo_tlog::note::Note::parse(note.as_bytes()).unwrap(),
        &nucleo.verifier_key(),
    )
    .expect("the posted cosignature is served with the checkpoint");
    server.stop().await;
}

/// The auditor's routine of the README, run as written: Python's standard
/// library and `cryptography` (installed with pip when it is missing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_auditor_script_verifies_a_checkpoint_and_an_inclusion_proof() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let script = readme
        .split("<!-- auditor-script -->")
        .nth(1)
        .and_then(|rest| rest.split("```python\n").nth(1))
        .and_then(|rest| rest.split("```").next())
        .expect("the README holds the auditor's script after its marker");
    let has_cryptography = Command::new("python3")
        .args(["-c", "import cryptography"])
        .status()
        .expect("python3 runs")
        .success();
    if !has_cryptography {
        let pip = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "cryptography"])
            .status()
            .expect("pip runs");
        assert!(pip.success(), "pip could not install cryptography");
    }
    let server = Signing::start(Some(log_key()), vec![]).await;
    server.load_seed().await;
    let d = server.dir.path().to_path_buf();
    let (size, _, note) = server.checkpoint(ADMIN).await;
    std::fs::write(d.join("checkpoint.txt"), &note).unwrap();
    std::fs::write(d.join("audit.py"), script).unwrap();
    let events = server.app().store().read_all(0, 100).unwrap();
    let vkey = server.vkey.as_ref().unwrap().to_string();
    for seq in [1, 4, size] {
        let (_, proof) = server
            .json(
                Method::GET,
                &format!("/api/v1/proofs/inclusion?seq={seq}&size={size}"),
                ADMIN,
                None,
            )
            .await;
        std::fs::write(d.join("proof.json"), proof.to_string()).unwrap();
        let hash = &events[seq as usize - 1].hash;
        let run = |hash: &str, vkey: &str| {
            Command::new("python3")
                .current_dir(&d)
                .args(["audit.py", "checkpoint.txt", vkey, "proof.json", hash])
                .output()
                .unwrap()
        };
        let ok = run(hash, &vkey);
        assert!(ok.status.success(), "seq {seq}: {}", everything(&ok));
        assert_eq!(stdout(&ok).trim(), "ok");
        // Another event's hash, or another key, fails.
        let other = &events[(seq as usize) % events.len()].hash;
        assert!(!run(other, &vkey).status.success());
        let impostor = log_key().verifier_key().to_string();
        assert!(!run(hash, &impostor).status.success());
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_from_a_signing_server_carries_the_checkpoint_of_its_head() {
    let server = Signing::start(Some(log_key()), vec![]).await;
    server.load_seed().await;
    let auditor = server.token("Revisore", "auditor", &[]).await;
    let (status, report) = server
        .json(
            Method::GET,
            "/api/v1/plans/2022/report?at=2022-12-31",
            &auditor,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    let note = report["checkpoint"].as_str().expect("a checkpoint");
    let signed = checkpoint::open(note.as_bytes(), server.vkey.as_ref().unwrap())
        .expect("it verifies with the log's key");
    assert_eq!(
        signed.checkpoint.size(),
        report["head"]["seq"].as_u64().unwrap()
    );
    let (status, md) = server
        .send(
            Method::GET,
            "/api/v1/plans/2022/report?format=md&at=2022-12-31",
            &auditor,
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(md.contains("Checkpoint firmato del registro"), "{md}");
    assert!(md.contains(note.lines().next().unwrap()));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_from_a_server_without_a_key_has_no_checkpoint() {
    let server = Signing::start(None, vec![]).await;
    server.load_seed().await;
    let auditor = server.token("Revisore", "auditor", &[]).await;
    let (status, report) = server
        .json(Method::GET, "/api/v1/plans/2022/report", &auditor, None)
        .await;
    assert_eq!(status, StatusCode::OK, "{report}");
    assert!(report.get("checkpoint").is_none(), "{report}");
    server.stop().await;
}
