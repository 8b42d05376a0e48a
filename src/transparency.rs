//! Signed checkpoints, witnesses and the year-end seal (DESIGN.md §9), over the
//! store's Merkle tree and the `traguardo-tlog` crate.
//!
//! [`Checkpoints`] is what a server keeps: the log's signing key (if one is
//! configured), the witnesses whose cosignatures it accepts, and the latest
//! signed checkpoints with the cosignatures attached to them. [`seal_year`] is
//! the use case behind `POST /plans/{year}/seal`. Key files and the offline
//! checks of the command line live in [`crate::transparency_cli`].

use std::collections::BTreeMap;
use std::sync::Mutex;

use base64::Engine as _;
use traguardo_events::envelope::Actor;
use traguardo_events::model::plan_stream;
use traguardo_events::{AppendBatch, ExpectedVersion, NewEvent, RecordedEvent, Store};
use traguardo_tlog::checkpoint::Checkpoint;
use traguardo_tlog::cosignature;
use traguardo_tlog::note::{self, KeyType, Note, Signature, SignerKey, VerifierKey};

use crate::commands::{self, Principal, SealedCheckpoint};
use crate::error::{AppError, FieldError};
use crate::App;

/// How many recent checkpoints keep accepting cosignatures: a witness that
/// fetched one just before the head moved may still post its line.
const RECENT: usize = 64;

/// Base64 as in checkpoints and proofs (standard, padded).
pub fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Why a cosignature line was not attached.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CosignatureRefused {
    /// No checkpoint key is configured, so there is nothing to cosign.
    #[error("questo server non firma checkpoint: avviarlo con --checkpoint-key")]
    NoKey,
    /// Not one `— <name> <base64>` line.
    #[error("la riga di cosignatura non è valida: {0}")]
    Malformed(String),
    /// A key the server was not told to trust (`--witness-vkey`).
    #[error("la chiave {name}+{id} non è tra i testimoni riconosciuti da questo server")]
    UnknownWitness {
        /// The key's name.
        name: String,
        /// Its ID, hex.
        id: String,
    },
    /// A known key, but the line verifies for none of the recent checkpoints.
    #[error(
        "la cosignatura di {name} non verifica per nessuno degli ultimi checkpoint firmati \
         (è di un altro checkpoint, o di un'altra chiave)"
    )]
    DoesNotVerify {
        /// The key's name.
        name: String,
    },
}

/// A checkpoint signed by the server, with the cosignatures attached since.
#[derive(Debug, Clone)]
struct Signed {
    checkpoint: Checkpoint,
    note: Note,
}

/// The server's checkpoints: its key, its witnesses, and the recent signed
/// checkpoints by tree size.
#[derive(Debug)]
pub struct Checkpoints {
    signer: Option<SignerKey>,
    witnesses: Vec<VerifierKey>,
    // A std mutex: held only to read or replace notes in memory, never across I/O.
    recent: Mutex<BTreeMap<u64, Signed>>,
}

impl Checkpoints {
    /// No key: the checkpoint routes answer that none is configured.
    pub fn disabled() -> Self {
        Checkpoints {
            signer: None,
            witnesses: Vec::new(),
            recent: Mutex::default(),
        }
    }

    /// A server that signs with `signer` and accepts the cosignatures of
    /// `witnesses`.
    ///
    /// # Errors
    /// A message when the signer is not an Ed25519 note key or a witness key is
    /// not a cosignature (`0x04`) key.
    pub fn new(signer: Option<SignerKey>, witnesses: Vec<VerifierKey>) -> Result<Self, String> {
        if let Some(key) = &signer {
            if key.kind() != KeyType::Ed25519 {
                return Err(format!(
                    "the checkpoint key {} is a {:?} key; the log signs with an Ed25519 key \
                     (traguardo key generate)",
                    key.name(),
                    key.kind()
                ));
            }
        }
        if let Some(key) = witnesses
            .iter()
            .find(|k| k.kind() != KeyType::CosignatureV1)
        {
            return Err(format!(
                "the witness key {} is not a cosignature key (traguardo key generate --witness)",
                key.name()
            ));
        }
        Ok(Checkpoints {
            signer,
            witnesses,
            recent: Mutex::default(),
        })
    }

    /// The log's verifier key, in the signed-note `vkey` form.
    pub fn vkey(&self) -> Option<VerifierKey> {
        self.signer.as_ref().map(SignerKey::verifier_key)
    }

    /// Whether a key is configured.
    pub fn enabled(&self) -> bool {
        self.signer.is_some()
    }

    fn recent(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Signed>> {
        self.recent.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The latest signed checkpoint, cosignatures included.
    pub fn latest(&self) -> Option<Note> {
        self.recent().values().next_back().map(|s| s.note.clone())
    }

    /// The signed checkpoint of exactly tree size `size`, cosignatures included,
    /// if it is among the recent ones.
    pub fn of_size(&self, size: u64) -> Option<Note> {
        self.recent().get(&size).map(|s| s.note.clone())
    }

    /// Signs a checkpoint of the current head unless the latest one is of it
    /// already; returns the latest (none without a key). Blocking: it reads the
    /// store.
    ///
    /// # Errors
    /// When the store cannot be read.
    pub fn refresh<S: Store + ?Sized>(&self, store: &S) -> Result<Option<Note>, AppError> {
        let Some(signer) = &self.signer else {
            return Ok(None);
        };
        let size = store.head()?.seq;
        if let Some((&latest, signed)) = self.recent().iter().next_back() {
            if latest >= size {
                return Ok(Some(signed.note.clone()));
            }
        }
        let root = store.tree_root(size)?;
        let checkpoint = Checkpoint::new(signer.name().as_str(), size, root)
            .map_err(|e| AppError::Internal(format!("checkpoint: {e}")))?;
        let note = checkpoint
            .sign(signer)
            .map_err(|e| AppError::Internal(format!("signing the checkpoint: {e}")))?;
        let mut recent = self.recent();
        recent
            .entry(size)
            .or_insert_with(|| Signed { checkpoint, note });
        while recent.len() > RECENT {
            recent.pop_first();
        }
        Ok(recent.values().next_back().map(|s| s.note.clone()))
    }

    /// Attaches a witness's cosignature line (`— <name> <base64>`) to the recent
    /// checkpoint it signs, and returns that checkpoint's note.
    ///
    /// # Errors
    /// A [`CosignatureRefused`] saying why not.
    pub fn add_cosignature(&self, line: &str) -> Result<Note, CosignatureRefused> {
        if self.signer.is_none() {
            return Err(CosignatureRefused::NoKey);
        }
        let signature = parse_signature_line(line)?;
        let witness = self
            .witnesses
            .iter()
            .find(|k| *k.name() == signature.name && k.id() == signature.id)
            .ok_or_else(|| CosignatureRefused::UnknownWitness {
                name: signature.name.to_string(),
                id: signature.id.to_string(),
            })?;
        let mut recent = self.recent();
        for signed in recent.values_mut().rev() {
            let Ok(mut candidate) = Note::new(signed.checkpoint.to_string()) else {
                continue;
            };
            candidate.add_signature(signature.clone());
            if cosignature::verify(&candidate, witness).is_ok() {
                signed.note.add_signature(signature);
                return Ok(signed.note.clone());
            }
        }
        Err(CosignatureRefused::DoesNotVerify {
            name: signature.name.to_string(),
        })
    }
}

/// Parses one signature line of a note (without or with its final newline).
///
/// # Errors
/// [`CosignatureRefused::Malformed`].
pub fn parse_signature_line(line: &str) -> Result<Signature, CosignatureRefused> {
    let line = line.strip_suffix('\n').unwrap_or(line);
    if line.is_empty() || line.contains('\n') {
        return Err(CosignatureRefused::Malformed(
            "serve esattamente una riga «— <nome> <base64>»".into(),
        ));
    }
    // A note of any text with this one signature line: the note parser checks it.
    let note = Note::parse(format!("x\n\n{line}\n").as_bytes())
        .map_err(|e| CosignatureRefused::Malformed(e.to_string()))?;
    note.signatures()
        .first()
        .cloned()
        .ok_or_else(|| CosignatureRefused::Malformed("nessuna firma".into()))
}

/// Parses a verifier key given on the command line or in the environment.
///
/// # Errors
/// The key's parse error, as text.
pub fn parse_vkey(text: &str) -> Result<VerifierKey, String> {
    VerifierKey::parse(text.trim()).map_err(|e| format!("not a verifier key: {e}"))
}

/// Reads a secret key file written by `traguardo key generate`.
///
/// # Errors
/// When the file cannot be read or is not a signer key.
pub fn read_signer_key(path: &std::path::Path) -> anyhow::Result<SignerKey> {
    use anyhow::Context;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the key file {}", path.display()))?;
    SignerKey::parse(text.trim())
        .map_err(|e: note::Error| anyhow::anyhow!("{} is not a signer key: {e}", path.display()))
}

/// The checkpoint a seal names, from a signed note of this log.
///
/// # Errors
/// [`AppError::Internal`] if the note is not a checkpoint (it was signed here).
fn sealed_checkpoint(note: &Note) -> Result<SealedCheckpoint, AppError> {
    let checkpoint = Checkpoint::parse(note.text())
        .map_err(|e| AppError::Internal(format!("the signed checkpoint does not parse: {e}")))?;
    Ok(SealedCheckpoint {
        origin: checkpoint.origin().to_string(),
        size: checkpoint.size(),
        root: base64(checkpoint.root()),
        note: note.to_string(),
    })
}

/// Seals plan `year` at a checkpoint of the current head (DESIGN.md §9): signs
/// one if the latest is behind, decides, and appends `plan_sealed` to the plan
/// stream at the version it was decided on.
///
/// # Errors
/// [`AppError::Conflict`] with an Italian detail when no checkpoint key is
/// configured; what [`commands::decide_seal`] refuses; a conflict when the plan
/// moved meanwhile.
pub async fn seal_year(
    app: &App,
    checkpoints: &std::sync::Arc<Checkpoints>,
    year: i32,
    principal: &Principal,
) -> Result<RecordedEvent, AppError> {
    if !checkpoints.enabled() {
        return Err(AppError::Conflict(
            "il sigillo richiede un checkpoint firmato: avviare il server con --checkpoint-key"
                .into(),
        ));
    }
    let signing = {
        let (app, checkpoints) = (app.clone(), checkpoints.clone());
        tokio::task::spawn_blocking(move || checkpoints.refresh(&**app.store()))
    };
    let note = signing
        .await
        .map_err(|e| AppError::Internal(format!("signing a checkpoint: {e}")))??
        .ok_or_else(|| AppError::Internal("no checkpoint after signing".into()))?;
    let sealed = sealed_checkpoint(&note)?;
    let (version, event) = app.read(|r| commands::decide_seal(r, year, principal, sealed))?;
    let stream = plan_stream(year);
    let actor: Actor = principal.actor();
    let batch = AppendBatch::new()
        .expect(&stream, ExpectedVersion::Exact(version))
        .push(NewEvent::from_domain(&stream, &event, &actor, None)?);
    let mut events = app.store().append_async(batch).await?;
    events
        .pop()
        .ok_or_else(|| AppError::Internal("the seal appended nothing".into()))
}

/// Refuses a field of a proof request, in Italian, naming it.
pub fn invalid(field: &str, message: impl Into<String>) -> AppError {
    AppError::Invalid(vec![FieldError::new(field, message)])
}
