//! `traguardo-bench proofs`: the latency of Merkle proofs (DESIGN.md §9) on a
//! large log, over HTTP against the real server with a checkpoint key, and
//! straight from the store for comparison.
//!
//! The scratch log is filled with small `org` events in batches of 1,000
//! through the store (the tree's nodes written with them), the server is
//! started on loopback, and each of `--concurrency` client tasks asks for
//! inclusion proofs of random seqs at the head's size, one at a time, then for
//! consistency proofs from a random size to the head. Latency is from sending
//! the request to having read the whole answer.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use rand::{RngExt, SeedableRng};
use traguardo::transparency::Checkpoints;
use traguardo::App;
use traguardo_events::domain::OrgEvent;
use traguardo_events::envelope::Actor;
use traguardo_events::{AppendBatch, Clock, NewEvent, SqliteStore, Store};

/// `proofs` options.
#[derive(Debug, Clone, clap::Args)]
pub struct ProofsArgs {
    /// Where the scratch database goes (a `traguardo-bench-proofs-PID` folder,
    /// deleted at the end).
    #[arg(long, default_value = "/tmp")]
    pub dir: PathBuf,
    /// Events in the log.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// Proof requests of each kind.
    #[arg(long, default_value_t = 20_000)]
    pub requests: usize,
    /// Client tasks asking at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
}

const TOKEN: &str = "traguardo-bench-proofs-bootstrap-token";

/// Runs the benchmark.
///
/// # Errors
/// When the scratch database or the server cannot be set up, or a proof fails.
pub fn run(args: ProofsArgs) -> anyhow::Result<ExitCode> {
    let dir = args
        .dir
        .join(format!("traguardo-bench-proofs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let result = run_in(&args, &dir.join("log.db"));
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn run_in(args: &ProofsArgs, path: &std::path::Path) -> anyhow::Result<ExitCode> {
    println!(
        "proofs: {} events, {} requests of each kind, {} at once; load average {}",
        args.events,
        args.requests,
        args.concurrency,
        load_average()
    );
    let store = SqliteStore::open(path, Clock::system())?;
    let actor = Actor::new("traguardo-bench", "admin");
    let started = Instant::now();
    let mut appended = 0;
    while appended < args.events {
        let n = (args.events - appended).min(1000);
        let mut batch = AppendBatch::new();
        for _ in 0..n {
            let event = OrgEvent::TokenRevoked {
                token_id: uuid::Uuid::now_v7(),
            };
            batch = batch.push(NewEvent::from_domain("org", &event, &actor, None)?);
        }
        store.append(batch)?;
        appended += n;
    }
    println!(
        "filled: {appended} events in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let size = store.head()?.seq;
    // The store alone: no HTTP, no JSON.
    let mut rng = rand::rngs::SmallRng::seed_from_u64(7);
    let mut direct = Vec::with_capacity(args.requests);
    for _ in 0..args.requests {
        let seq = rng.random_range(1..=size);
        let t = Instant::now();
        let proof = store.inclusion_proof(seq, size)?;
        direct.push(t.elapsed());
        anyhow::ensure!(!proof.is_empty() || size == 1, "an empty proof");
    }
    report("store.inclusion_proof (no HTTP)", &mut direct, None);
    store.shutdown();
    drop(store);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let app = App::open(path, Clock::system())?;
        app.set_bootstrap_token(TOKEN);
        let key = traguardo_tlog_key()?;
        let server = traguardo::http::start_with(
            app,
            "127.0.0.1:0",
            Checkpoints::new(Some(key), vec![]).map_err(|e| anyhow::anyhow!(e))?,
        )
        .await?;
        let base = format!("http://{}/api/v1", server.addr);
        let client = reqwest::Client::new();
        for (name, kind) in [
            ("GET /proofs/inclusion", Kind::Inclusion),
            ("GET /proofs/consistency", Kind::Consistency),
        ] {
            let started = Instant::now();
            let mut tasks = Vec::new();
            for t in 0..args.concurrency {
                let (client, base) = (client.clone(), base.clone());
                let count = args.requests / args.concurrency;
                tasks.push(tokio::spawn(async move {
                    ask(client, base, kind, size, count, t as u64).await
                }));
            }
            let mut latencies = Vec::new();
            for task in tasks {
                latencies.extend(task.await??);
            }
            report(name, &mut latencies, Some(started.elapsed()));
        }
        server.stop().await;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// A fresh log key for the server.
fn traguardo_tlog_key() -> anyhow::Result<traguardo_tlog::note::SignerKey> {
    use traguardo_tlog::note::{KeyName, KeyType, SignerKey};
    let name = KeyName::parse("bench.traguardo/log").map_err(|e| anyhow::anyhow!("{e}"))?;
    SignerKey::generate(name, KeyType::Ed25519).map_err(|e| anyhow::anyhow!("{e}"))
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Inclusion,
    Consistency,
}

/// One client's requests, one at a time; their latencies.
async fn ask(
    client: reqwest::Client,
    base: String,
    kind: Kind,
    size: u64,
    count: usize,
    seed: u64,
) -> anyhow::Result<Vec<Duration>> {
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let mut latencies = Vec::with_capacity(count);
    for _ in 0..count {
        let n = rng.random_range(1..=size);
        let url = match kind {
            Kind::Inclusion => format!("{base}/proofs/inclusion?seq={n}&size={size}"),
            Kind::Consistency => format!("{base}/proofs/consistency?from={n}&to={size}"),
        };
        let t = Instant::now();
        let response = client.get(&url).bearer_auth(TOKEN).send().await?;
        let status = response.status();
        let body = response.bytes().await?;
        latencies.push(t.elapsed());
        anyhow::ensure!(
            status.is_success(),
            "{url}: {status} {}",
            String::from_utf8_lossy(&body)
        );
    }
    Ok(latencies)
}

/// Prints percentiles of `latencies` (and the rate, given the wall time).
fn report(name: &str, latencies: &mut [Duration], wall: Option<Duration>) {
    latencies.sort_unstable();
    let at = |p: f64| {
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i].as_secs_f64() * 1e3
    };
    let rate = wall.map_or(String::new(), |w| {
        format!(", {:.0} req/s", latencies.len() as f64 / w.as_secs_f64())
    });
    println!(
        "{name}: {} requests, p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms{rate}",
        latencies.len(),
        at(0.50),
        at(0.90),
        at(0.99),
        at(1.0),
    );
}

/// The 1-minute load average, for the record.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}
