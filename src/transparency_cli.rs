//! The commands of DESIGN.md §9: `key generate`, `prove inclusion|consistency`,
//! `cosign` and `verify --checkpoint`. They work offline on a database or on an
//! NDJSON export (`traguardo export`), except `cosign --url`, which asks a
//! server.
//!
//! An export is checked before anything is proved from it: its chain is
//! recomputed from seq 1, and its tree is rebuilt in memory from the chain
//! hashes. A database's tree is read from its stored nodes for proofs; `verify
//! --checkpoint` rebuilds it from the events as well, so that it trusts nothing
//! but the events and the keys it was given.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context};
use serde::Serialize;
use traguardo_events::{chain, RecordedEvent, Store, StoreExt};
use traguardo_tlog::checkpoint;
use traguardo_tlog::cosignature;
use traguardo_tlog::merkle::{self, Hash, MemoryTree};
use traguardo_tlog::note::{KeyName, KeyType, Note, SignerKey, VerifierKey};
use traguardo_tlog::witness::{self, WitnessState};

use crate::http::transparency::{ConsistencyProof, InclusionProof};
use crate::transparency::base64;

/// `traguardo key` commands.
#[derive(Debug, clap::Subcommand)]
pub enum KeyCommand {
    /// Write a new secret key to a file (mode 0600, never overwritten) and
    /// print its verifier key (vkey) to give to those who check.
    Generate {
        /// The key's name: for the log's key, the checkpoints' origin, e.g.
        /// `comune.alessandria.it/traguardo`.
        #[arg(long)]
        name: String,
        /// The secret key file to create.
        #[arg(long)]
        out: PathBuf,
        /// A witness's key (C2SP tlog-cosignature, for `traguardo cosign`)
        /// rather than the log's signing key.
        #[arg(long)]
        witness: bool,
    },
}

/// Where the log to prove from or to verify comes from.
#[derive(Debug, Clone, clap::Args)]
pub struct LogSource {
    /// An NDJSON export (`traguardo export`) instead of the database.
    #[arg(long)]
    pub export: Option<PathBuf>,
}

/// `traguardo prove` commands.
#[derive(Debug, clap::Subcommand)]
pub enum ProveCommand {
    /// The inclusion proof of one event, as `GET /api/v1/proofs/inclusion`.
    Inclusion {
        /// The event's seq.
        #[arg(long)]
        seq: u64,
        /// The tree size (default: the whole log).
        #[arg(long)]
        size: Option<u64>,
        /// The log.
        #[command(flatten)]
        log: LogSource,
    },
    /// The consistency proof between two tree sizes, as
    /// `GET /api/v1/proofs/consistency`.
    Consistency {
        /// The earlier size.
        #[arg(long)]
        from: u64,
        /// The later size (default: the whole log).
        #[arg(long)]
        to: Option<u64>,
        /// The log.
        #[command(flatten)]
        log: LogSource,
    },
}

/// `traguardo cosign` options.
#[derive(Debug, Clone, clap::Args)]
pub struct CosignArgs {
    /// The witness's secret key file (`traguardo key generate --witness`).
    #[arg(long)]
    pub key: PathBuf,
    /// The log's verifier key: the checkpoint must be signed by it.
    #[arg(long, value_parser = crate::transparency::parse_vkey)]
    pub vkey: VerifierKey,
    /// The witness's state file: the last checkpoint this key cosigned (created
    /// on first use).
    #[arg(long)]
    pub state: PathBuf,
    /// The server to fetch the checkpoint and the consistency proof from
    /// (`http://host:port`).
    #[arg(long, conflicts_with = "checkpoint", requires = "token")]
    pub url: Option<String>,
    /// A bearer token for `--url`.
    #[arg(long, env = "TRAGUARDO_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// With `--url`: post the cosignature to the server as well (validator token).
    #[arg(long, requires = "url")]
    pub post: bool,
    /// A signed checkpoint file instead of `--url`; the consistency proof is then
    /// computed from `--db` or `--export`.
    #[arg(long, required_unless_present = "url")]
    pub checkpoint: Option<PathBuf>,
    /// The log, for the proof when `--checkpoint` is given.
    #[command(flatten)]
    pub log: LogSource,
}

/// A log to prove from: a store's stored tree, or an export's tree rebuilt.
enum Log {
    Store(Arc<dyn Store>),
    Export { tree: MemoryTree },
}

impl Log {
    /// Opens the export if one is given, else the database.
    fn open(db: &Path, source: &LogSource) -> anyhow::Result<Log> {
        match &source.export {
            Some(path) => {
                let events = read_export(path)?;
                Ok(Log::Export {
                    tree: tree_of(&events)?,
                })
            }
            None => Ok(Log::Store(open_store(db)?)),
        }
    }

    fn size(&self) -> anyhow::Result<u64> {
        Ok(match self {
            Log::Store(store) => store.head()?.seq,
            Log::Export { tree } => tree.size(),
        })
    }

    fn inclusion(&self, seq: u64, size: u64) -> anyhow::Result<Vec<Hash>> {
        if seq == 0 {
            bail!("seq 0 names no event: seqs start at 1");
        }
        Ok(match self {
            Log::Store(store) => store.inclusion_proof(seq, size)?,
            Log::Export { tree } => tree.inclusion_proof(seq - 1, size)?,
        })
    }

    fn consistency(&self, from: u64, to: u64) -> anyhow::Result<Vec<Hash>> {
        Ok(match self {
            Log::Store(store) => store.consistency_proof(from, to)?,
            Log::Export { tree } => tree.consistency_proof(from, to)?,
        })
    }
}

/// Opens an existing log named by `--db` (a file, or a `postgres://` URL).
fn open_store(db: &Path) -> anyhow::Result<Arc<dyn Store>> {
    Ok(traguardo_events::store::open_existing(
        &db.to_string_lossy(),
    )?)
}

/// Reads an NDJSON export and recomputes its chain from seq 1.
///
/// # Errors
/// A line that is not an event, a gap, or a hash that does not recompute:
/// the export was changed.
pub fn read_export(path: &Path) -> anyhow::Result<Vec<RecordedEvent>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the export {}", path.display()))?;
    let mut events: Vec<RecordedEvent> = Vec::new();
    let mut prev = chain::GENESIS.to_string();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let event: RecordedEvent = serde_json::from_str(line)
            .with_context(|| format!("{}:{}: not an event", path.display(), i + 1))?;
        let seq = events.len() as u64 + 1;
        if event.seq != seq {
            bail!("the export has seq {} where seq {seq} should be", event.seq);
        }
        if event.prev_hash != prev {
            bail!("seq {seq}: prev_hash does not link to the event before it");
        }
        let computed = chain::hash(&prev, &event)?;
        if computed != event.hash {
            bail!(
                "seq {seq}: the stored hash {} differs from the recomputed {computed}: the event was changed",
                event.hash
            );
        }
        prev = computed;
        events.push(event);
    }
    Ok(events)
}

/// The Merkle tree of a log's chain hashes.
fn tree_of(events: &[RecordedEvent]) -> anyhow::Result<MemoryTree> {
    let leaves = events
        .iter()
        .map(|e| merkle::chain_leaf_hash_hex(&e.hash))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(MemoryTree::from_leaf_hashes(&leaves))
}

/// `traguardo key generate`.
///
/// # Errors
/// An invalid name, or a file that exists or cannot be written.
pub fn key(command: KeyCommand) -> anyhow::Result<ExitCode> {
    let KeyCommand::Generate { name, out, witness } = command;
    let name = KeyName::parse(&name).map_err(|e| anyhow::anyhow!("{e}"))?;
    let kind = if witness {
        KeyType::CosignatureV1
    } else {
        KeyType::Ed25519
    };
    let key = SignerKey::generate(name, kind).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&out)
        .with_context(|| format!("cannot create {} (it must not exist yet)", out.display()))?;
    writeln!(file, "{}", key.to_private_string())?;
    file.sync_all()?;
    println!("{}", key.verifier_key());
    eprintln!(
        "secret key written to {} (mode 0600): keep it secret; give the line above to those who verify",
        out.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `traguardo prove`.
///
/// # Errors
/// A log that cannot be read, or a proof it cannot give.
pub fn prove(db: &Path, command: ProveCommand) -> anyhow::Result<ExitCode> {
    let json = match command {
        ProveCommand::Inclusion { seq, size, log } => {
            let log = Log::open(db, &log)?;
            let size = match size {
                Some(size) => size,
                None => log.size()?,
            };
            let hashes = log.inclusion(seq, size)?;
            serde_json::to_string_pretty(&InclusionProof {
                leaf_index: seq - 1,
                tree_size: size,
                hashes: hashes.iter().map(|h| base64(h)).collect(),
            })?
        }
        ProveCommand::Consistency { from, to, log } => {
            let log = Log::open(db, &log)?;
            let to = match to {
                Some(to) => to,
                None => log.size()?,
            };
            let hashes = log.consistency(from, to)?;
            serde_json::to_string_pretty(&ConsistencyProof {
                hashes: hashes.iter().map(|h| base64(h)).collect(),
            })?
        }
    };
    println!("{json}");
    Ok(ExitCode::SUCCESS)
}

/// Decodes base64 proof hashes.
fn decode_hashes(hashes: &[String]) -> anyhow::Result<Vec<Hash>> {
    use base64::Engine as _;
    hashes
        .iter()
        .map(|h| {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(h)
                .with_context(|| format!("{h:?} is not base64"))?;
            <[u8; 32]>::try_from(raw.as_slice())
                .map_err(|_| anyhow::anyhow!("{h:?} is not a 32-byte hash"))
        })
        .collect()
}

/// The API base of a server URL: `http://host:port` or `…/api/v1`.
fn api_base(url: &str) -> String {
    let url = url.trim_end_matches('/');
    if url.ends_with("/api/v1") {
        url.to_string()
    } else {
        format!("{url}/api/v1")
    }
}

/// A GET with a bearer token; a problem answer becomes the error.
async fn get(client: &reqwest::Client, url: &str, token: &str) -> anyhow::Result<String> {
    let response = client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = response.status();
    let body = response.text().await?;
    if !status.is_success() {
        bail!("{url} answered {status}: {body}");
    }
    Ok(body)
}

/// `traguardo cosign`: fetch or read a checkpoint, check it extends the last
/// one this key cosigned (refusing forks), print the cosignature line and keep
/// the new state.
///
/// # Errors
/// Keys, files or a server that cannot be used; a checkpoint not signed by the
/// log's key; a refusal of the witness rule (a fork, a smaller tree, a proof
/// that does not hold).
pub fn cosign(db: &Path, args: CosignArgs) -> anyhow::Result<ExitCode> {
    let cosigner = crate::transparency::read_signer_key(&args.key)?;
    if cosigner.kind() != KeyType::CosignatureV1 {
        bail!(
            "{} is not a witness key: make one with `traguardo key generate --witness`",
            args.key.display()
        );
    }
    let last: Option<WitnessState> = match std::fs::read_to_string(&args.state) {
        Ok(text) => Some(
            serde_json::from_str(&text)
                .with_context(|| format!("{} is not a witness state", args.state.display()))?,
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).context(format!("cannot read {}", args.state.display())),
    };
    let runtime = crate::cli::runtime()?;
    let client = reqwest::Client::new();
    let msg = match (&args.url, &args.checkpoint) {
        (Some(url), _) => runtime.block_on(get(
            &client,
            &format!("{}/checkpoint", api_base(url)),
            args.token.as_deref().unwrap_or_default(),
        ))?,
        (None, Some(path)) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the checkpoint {}", path.display()))?,
        (None, None) => bail!("give --url or --checkpoint"),
    };
    let signed = checkpoint::open(msg.as_bytes(), &args.vkey)
        .map_err(|e| anyhow::anyhow!("the checkpoint does not open with the log's key: {e}"))?;
    let size = signed.checkpoint.size();
    let proof = match &last {
        Some(last) if last.size > 0 && size > last.size => match &args.url {
            Some(url) => {
                let body = runtime.block_on(get(
                    &client,
                    &format!(
                        "{}/proofs/consistency?from={}&to={size}",
                        api_base(url),
                        last.size
                    ),
                    args.token.as_deref().unwrap_or_default(),
                ))?;
                let proof: ConsistencyProof = serde_json::from_str(&body)?;
                decode_hashes(&proof.hashes)?
            }
            None => Log::open(db, &args.log)?.consistency(last.size, size)?,
        },
        _ => Vec::new(),
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let cosigned = witness::cosign(
        last.as_ref(),
        msg.as_bytes(),
        &args.vkey,
        &proof,
        &cosigner,
        now,
    )
    .map_err(|e| anyhow::anyhow!("not cosigned: {e}"))?;
    if args.post {
        if let Some(url) = &args.url {
            let response = runtime.block_on(
                client
                    .post(format!("{}/checkpoint/cosignatures", api_base(url)))
                    .bearer_auth(args.token.as_deref().unwrap_or_default())
                    .body(format!("{}\n", cosigned.signature))
                    .send(),
            )?;
            let status = response.status();
            if !status.is_success() {
                let body = runtime.block_on(response.text()).unwrap_or_default();
                bail!("the server refused the cosignature ({status}): {body}");
            }
        }
    }
    // The state is written last, and whole: a crash leaves the old one.
    let tmp = args.state.with_extension("tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(&cosigned.state)? + "\n")
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, &args.state)
        .with_context(|| format!("cannot write {}", args.state.display()))?;
    println!("{}", cosigned.signature);
    eprintln!(
        "cosigned {} at size {size}; state kept in {}",
        signed.checkpoint.origin(),
        args.state.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// What `verify --checkpoint` found, for people.
#[derive(Debug, Serialize)]
struct CheckpointVerified {
    origin: String,
    size: u64,
    root: String,
    cosigned_by: Vec<String>,
    events: u64,
}

/// `traguardo verify --checkpoint FILE --vkey KEY…`: the checkpoint is signed
/// by one of the given log keys (and cosigned by every given witness key), the
/// log's chain holds, and its tree at the checkpoint's size has the
/// checkpoint's root. Prints `ok` or the reason, and exits non-zero then.
///
/// # Errors
/// Only when the files cannot be read at all.
pub fn verify_checkpoint(
    db: &Path,
    file: &Path,
    vkeys: &[VerifierKey],
    source: &LogSource,
) -> anyhow::Result<ExitCode> {
    let msg = std::fs::read(file)
        .with_context(|| format!("cannot read the checkpoint {}", file.display()))?;
    match check_checkpoint(db, &msg, vkeys, source) {
        Ok(found) => {
            println!(
                "ok: checkpoint {} of {} events, root {}, matches the log ({} events){}",
                found.origin,
                found.size,
                found.root,
                found.events,
                if found.cosigned_by.is_empty() {
                    String::new()
                } else {
                    format!("; cosigned by {}", found.cosigned_by.join(", "))
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(reason) => {
            println!("FAILED: {reason:#}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn check_checkpoint(
    db: &Path,
    msg: &[u8],
    vkeys: &[VerifierKey],
    source: &LogSource,
) -> anyhow::Result<CheckpointVerified> {
    if vkeys.is_empty() {
        bail!("give the log's verifier key with --vkey");
    }
    let note = Note::parse(msg).map_err(|e| anyhow::anyhow!("not a signed note: {e}"))?;
    let logs: Vec<&VerifierKey> = vkeys
        .iter()
        .filter(|k| k.kind() == KeyType::Ed25519)
        .collect();
    let mut refusals = Vec::new();
    let signed = logs.iter().find_map(|key| {
        checkpoint::open(msg, key)
            .map_err(|e| refusals.push(format!("{}: {e}", key.name())))
            .ok()
    });
    let Some(signed) = signed else {
        if logs.is_empty() {
            bail!("none of the keys given is a log (Ed25519) key");
        }
        bail!(
            "the checkpoint is not signed by any of the log keys given ({})",
            refusals.join("; ")
        );
    };
    let mut cosigned_by = Vec::new();
    for witness in vkeys.iter().filter(|k| k.kind() == KeyType::CosignatureV1) {
        cosignature::verify(&note, witness)
            .map_err(|e| anyhow::anyhow!("cosignature of {}: {e}", witness.name()))?;
        cosigned_by.push(witness.name().to_string());
    }
    let checkpoint = signed.checkpoint;
    let size = checkpoint.size();
    let (events, computed, stored) = match &source.export {
        Some(path) => {
            let events = read_export(path)?;
            let tree = tree_of(&events)?;
            (events.len() as u64, tree.root(size).ok(), None)
        }
        None => {
            let store = open_store(db)?;
            let v = store.verify(&[])?;
            if let (Some(seq), Some(problem)) = (v.first_bad_seq, &v.problem) {
                bail!("the log's chain breaks at seq {seq}: {problem}");
            }
            if !v.triggers_present {
                bail!("the append-only triggers have been removed from the database");
            }
            let mut leaves = Vec::new();
            store.for_each_raw(0, |event, _| -> anyhow::Result<()> {
                leaves.push(merkle::chain_leaf_hash_hex(event.hash)?);
                Ok(())
            })?;
            let tree = MemoryTree::from_leaf_hashes(&leaves);
            let stored = store.tree_root(size).ok();
            (v.events, tree.root(size).ok(), stored)
        }
    };
    let Some(computed) = computed else {
        bail!("the log holds {events} events, fewer than the checkpoint's {size}: it was cut back");
    };
    if computed != *checkpoint.root() {
        bail!(
            "the log's tree of {size} events has root {}, the checkpoint says {}: the log was \
             rewritten, or the checkpoint is of a fork",
            base64(&computed),
            base64(checkpoint.root())
        );
    }
    if let Some(stored) = stored.filter(|s| *s != computed) {
        bail!(
            "the database's stored tree has root {} at size {size}, the events give {}: its \
             tree table was changed",
            base64(&stored),
            base64(&computed)
        );
    }
    Ok(CheckpointVerified {
        origin: checkpoint.origin().to_string(),
        size,
        root: base64(checkpoint.root()),
        cosigned_by,
        events,
    })
}
