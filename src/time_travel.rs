//! Time travel from memory: an objective as the log held it at a past seq,
//! folded from a cached copy of its stream instead of read and folded whole from
//! the store on every request.
//!
//! A stream only grows and the log refuses UPDATE and DELETE, so what a stream
//! held up to a seq never changes: a prefix read once stays true in every process.
//! For each stream asked about, the cache keeps
//! - its events read so far (versions `1..=n`), decoded once, their JSON dropped;
//! - the folded [`Objective`] after every [`CHECKPOINT_EVERY`] versions;
//! - the seq up to which that prefix is known to be the whole stream: the cut it
//!   was read at, never past the head of the log read just before it (so nothing
//!   committed at or before it can be missing).
//!
//! A read at seq `N` within that bound clones the checkpoint at or before `N` and
//! folds at most `CHECKPOINT_EVERY - 1` events onto it. Past the bound, the
//! stream is read again up to the new cut: its event at the cached last version
//! must be the one cached (same seq and hash), and only the events after it are
//! decoded and folded; otherwise the entry is rebuilt from what was read.
//! A seq past the head of the log is answered from the store, never cached.
//!
//! Memory is bounded by a budget of estimated bytes (the JSON size of the events'
//! data plus their fixed parts, and a checkpoint counted as the events folded into
//! it); whole streams are evicted, least recently read first.

use std::sync::{Arc, Mutex, PoisonError};

use hashlink::LinkedHashMap;
use traguardo_events::domain::ObjectiveEvent;
use traguardo_events::model::objective_stream;
use traguardo_events::store::{Store, Until};
use traguardo_events::RecordedEvent;
use traguardo_projections::objective::decode;
use traguardo_projections::Objective;

use crate::error::AppError;

/// A folded checkpoint every this many versions of a stream: a read folds at most
/// this many minus one (already decoded) events onto a clone of one. A checkpoint
/// holds everything folded before it, so the memory of a stream's checkpoints
/// grows with the square of its length over this; at 64, a 190-event stream
/// has two, about as large together as its events.
pub const CHECKPOINT_EVERY: usize = 64;

/// The budget when none is given: 512 MiB of estimated bytes.
pub const DEFAULT_BUDGET_BYTES: usize = 512 << 20;

/// Cached streams of objectives, for reads at a past seq.
pub struct TimeTravelCache {
    state: Mutex<State>,
}

struct State {
    /// Least recently read first.
    streams: LinkedHashMap<String, Arc<History>>,
    bytes: usize,
    budget: usize,
    stats: CacheStats,
}

/// What the cache did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Reads answered from memory alone.
    pub hits: u64,
    /// Reads that had to read the store (a stream not cached, or grown since).
    pub misses: u64,
    /// Streams dropped to stay within the budget.
    pub evictions: u64,
    /// Streams held now.
    pub streams: usize,
    /// Estimated bytes held now.
    pub bytes: usize,
}

/// One event of a cached stream: its envelope (without its JSON data) and its
/// decoded data.
struct Cached {
    event: RecordedEvent,
    decoded: ObjectiveEvent,
}

/// The cached prefix of one stream.
struct History {
    /// Versions `1..=events.len()`, in order.
    events: Vec<Cached>,
    /// `checkpoints[i]`: the objective folded through version
    /// `(i + 1) * CHECKPOINT_EVERY`.
    checkpoints: Vec<Arc<Objective>>,
    /// Every event of the stream with a seq at or before this is in `events`.
    complete_through: u64,
    /// The hash of the last event of `events` (the events keep none).
    last_hash: String,
    /// Estimated bytes of the events alone (`bytes` adds the checkpoints).
    event_bytes: usize,
    bytes: usize,
}

impl History {
    /// The prefix `base` (if any) continued by `fresh` (the events after it, in
    /// version order), known complete through `head`. `None` when `fresh` does
    /// not continue `base`.
    fn extend(
        base: Option<&History>,
        fresh: Vec<RecordedEvent>,
        head: u64,
    ) -> Result<Option<History>, AppError> {
        let mut last_hash = base.map(|h| h.last_hash.clone()).unwrap_or_default();
        let (mut events, mut checkpoints, mut event_bytes, mut bytes, mut folded) = match base {
            Some(h) => (
                // Cloned, not shared: the entry readers hold stays as it was.
                h.events
                    .iter()
                    .map(|c| Cached {
                        event: c.event.clone(),
                        decoded: c.decoded.clone(),
                    })
                    .collect::<Vec<_>>(),
                h.checkpoints.clone(),
                h.event_bytes,
                h.bytes,
                h.fold_through(h.events.len())?,
            ),
            None => (Vec::new(), Vec::new(), 0, 0, None),
        };
        for mut event in fresh {
            let expected = events.len() as u64 + 1;
            let last_seq = events.last().map_or(0, |c| c.event.seq);
            if event.version != expected || event.seq <= last_seq {
                return Ok(None);
            }
            let decoded = decode(&event)?;
            let size = estimated_bytes(&event);
            last_hash = std::mem::take(&mut event.hash);
            // The fold reads the envelope's seq, version, actor, role and record
            // time, and the decoded data: the rest is dropped.
            event.data = serde_json::Value::Null;
            event.stream = String::new();
            event.prev_hash = String::new();
            event.correlation = None;
            match folded.as_mut() {
                None => folded = Some(Objective::define(&event, decoded.clone())?),
                Some(o) => o.apply(&event, decoded.clone())?,
            }
            events.push(Cached { event, decoded });
            event_bytes += size;
            bytes += size;
            if events.len() % CHECKPOINT_EVERY == 0 {
                if let Some(o) = &folded {
                    checkpoints.push(Arc::new(o.clone()));
                    bytes += event_bytes;
                }
            }
        }
        let complete_through = head.max(events.last().map_or(0, |c| c.event.seq));
        Ok(Some(History {
            events,
            checkpoints,
            complete_through,
            last_hash,
            event_bytes,
            bytes: bytes + std::mem::size_of::<History>(),
        }))
    }

    /// The objective as it was with its first `count` events folded (`None` for 0).
    fn fold_through(&self, count: usize) -> Result<Option<Objective>, AppError> {
        let from_checkpoint = count / CHECKPOINT_EVERY;
        let (mut objective, start) = match from_checkpoint
            .checked_sub(1)
            .and_then(|i| self.checkpoints.get(i))
        {
            Some(checkpoint) => (
                Some(Objective::clone(checkpoint)),
                from_checkpoint * CHECKPOINT_EVERY,
            ),
            None => (None, 0),
        };
        for cached in &self.events[start..count] {
            match objective.as_mut() {
                None => objective = Some(Objective::define(&cached.event, cached.decoded.clone())?),
                Some(o) => o.apply(&cached.event, cached.decoded.clone())?,
            }
        }
        Ok(objective)
    }

    /// The objective as the log held it up to `seq` (at most `complete_through`).
    fn at_seq(&self, seq: u64) -> Result<Option<Objective>, AppError> {
        let count = self.events.partition_point(|c| c.event.seq <= seq);
        self.fold_through(count)
    }
}

/// The estimated bytes of one cached event: its inline size, the kept strings,
/// and its data as compact JSON for the decoded data (about what its strings
/// take).
fn estimated_bytes(event: &RecordedEvent) -> usize {
    let data = serde_json::to_vec(&event.data).map_or(0, |v| v.len());
    std::mem::size_of::<Cached>()
        + data
        + event.event_type.len()
        + event.actor.len()
        + event.role.len()
}

impl TimeTravelCache {
    /// An empty cache holding at most `budget` estimated bytes.
    #[must_use]
    pub fn new(budget: usize) -> Self {
        TimeTravelCache {
            state: Mutex::new(State {
                streams: LinkedHashMap::new(),
                bytes: 0,
                budget,
                stats: CacheStats::default(),
            }),
        }
    }

    /// Changes the budget, evicting what no longer fits.
    pub fn set_budget(&self, budget: usize) {
        let mut state = self.lock();
        state.budget = budget;
        state.evict();
    }

    /// Hits, misses, evictions and what is held now.
    #[must_use]
    pub fn stats(&self) -> CacheStats {
        let state = self.lock();
        CacheStats {
            streams: state.streams.len(),
            bytes: state.bytes,
            ..state.stats
        }
    }

    /// Objective `key` as the log held it up to seq `seq`: from memory when the
    /// cached prefix of its stream reaches `seq`, else after reading from the
    /// store what is not cached.
    ///
    /// # Errors
    /// When the store cannot be read or the stream cannot be folded.
    pub fn objective_at(
        &self,
        store: &dyn Store,
        key: &str,
        seq: u64,
    ) -> Result<Option<Objective>, AppError> {
        let stream = objective_stream(key);
        if self.lock().budget == 0 {
            // Turned off: the plain read and fold of the whole prefix.
            let events = store.read_stream(&stream, Until::Seq(seq))?;
            return Ok(Objective::from_events(&events)?);
        }
        let cached = self.lookup(&stream);
        if let Some(history) = cached.as_ref().filter(|h| seq <= h.complete_through) {
            self.count(|s| s.hits += 1);
            return history.at_seq(seq);
        }
        self.count(|s| s.misses += 1);
        // The head first: everything committed at or before it is visible to the
        // stream read that follows. Only the rows up to the cut are read (a miss
        // costs what a read without the cache does); a cut past the head is not
        // history yet and is never cached.
        let cut = seq.min(store.head()?.seq);
        let fresh = store.read_stream(&stream, Until::Seq(cut))?;
        let history = match cached {
            Some(base) => {
                // The log only grows: the rows read continue the cached prefix.
                let known = base.events.len();
                let still = fresh
                    .get(known.wrapping_sub(1))
                    .zip(base.events.last())
                    .is_some_and(|(now, then)| {
                        now.seq == then.event.seq && now.hash == base.last_hash
                    });
                if still {
                    History::extend(Some(&base), fresh.into_iter().skip(known).collect(), cut)?
                } else {
                    tracing::warn!(stream, "a cached stream no longer matches the log");
                    History::extend(None, fresh, cut)?
                }
            }
            None => History::extend(None, fresh, cut)?,
        };
        let Some(history) = history.filter(|h| !h.events.is_empty()) else {
            return Ok(None);
        };
        let answer = if seq <= history.complete_through {
            history.at_seq(seq)?
        } else {
            // Past the head: not yet history, and not cached as if it were.
            let events = store.read_stream(&stream, Until::Seq(seq))?;
            Objective::from_events(&events)?
        };
        self.insert(stream, Arc::new(history));
        Ok(answer)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is consistent after every statement: a panic elsewhere
        // cannot leave it half-changed.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn count(&self, f: impl FnOnce(&mut CacheStats)) {
        f(&mut self.lock().stats);
    }

    fn lookup(&self, stream: &str) -> Option<Arc<History>> {
        let mut state = self.lock();
        let found = state.streams.to_back(stream)?;
        Some(found.clone())
    }

    fn insert(&self, stream: String, history: Arc<History>) {
        let mut state = self.lock();
        if history.bytes > state.budget {
            return;
        }
        state.bytes += history.bytes;
        if let Some(old) = state.streams.replace(stream, history) {
            state.bytes -= old.bytes;
        }
        state.evict();
    }
}

impl State {
    fn evict(&mut self) {
        while self.bytes > self.budget {
            let Some((_, old)) = self.streams.pop_front() else {
                break;
            };
            self.bytes -= old.bytes;
            self.stats.evictions += 1;
        }
    }
}
