//! Time travel: an objective as the log held it at a past seq or record time,
//! folded from the nearest stream snapshot stored beside the log and from
//! cached stretches of its stream, instead of read and folded whole from
//! version 1 on every request.
//!
//! A stream only grows and the log refuses UPDATE and DELETE, so what a stream
//! held up to a seq never changes: a stretch read once stays true in every
//! process. For each stream asked about, the cache keeps disjoint stretches,
//! each
//! - from a floor: the objective folded through some version (a stream
//!   snapshot's), or nothing for the stretch that starts at version 1;
//! - with its events after the floor, decoded once, their JSON dropped, and
//!   the folded [`Objective`] at every [`CHECKPOINT_EVERY`]-th version;
//! - known to hold every event of the stream up to a seq: the cut it was read
//!   at, never past a head known committed (so nothing at or before it can be
//!   missing).
//!
//! A read at seq `N` within a stretch clones the checkpoint at or before `N`
//! (or the floor) and folds at most `CHECKPOINT_EVERY - 1` events onto it, in
//! memory
//! ([`TimeTravelCache::cached`], which the HTTP handler calls on the runtime
//! thread, without the blocking pool). Otherwise the nearest stream snapshot at
//! or before `N` is looked up: when a cached stretch reaches its version, only
//! the versions after that stretch's last are read (the last is read again and
//! must be the one cached: same seq and hash); else a new stretch starts at the
//! snapshot. Either way a miss reads the versions between a snapshot and `N`,
//! not the stream from version 1; while the cache has room, it reads on to the
//! next multiple of [`READ_AHEAD_TO`] (where the next snapshot starts), so
//! that the next reads of that stretch are answered from memory.
//!
//! A stream snapshot is never trusted blindly: its schema number must be
//! [`OBJECTIVE_SCHEMA`], and the stream is read from the snapshot's own version
//! on, so that the first event read must have the snapshot's seq and chain
//! hash (a log rewritten under it does not). A refused snapshot is counted
//! ([`CacheStats::snapshots_refused`]) and the stream is folded from version 1.
//!
//! A stream is cached from its second read on: the first read of a stream
//! (not read since its name left a bounded list of recently read streams)
//! folds the rows after the nearest snapshot onto it and keeps nothing, since
//! building a stretch (decoded events, checkpoints, their estimated size) costs
//! more than the fold, and most streams of a wide log are asked about once.
//! The second read reads a stream of at most [`WHOLE_STREAM_VERSIONS`]
//! versions whole, from version 1 through the head: one read of its rows
//! instead of a miss in each stretch between two snapshots that a read falls
//! in first (an objective's stream is short; the stretches are for the long
//! ones, and for what a stream grew since). It does so also when the cache is
//! full, evicting the streams read least recently: a stream held whole answers
//! every later read of it, where a stretch read to the cut alone would miss
//! again at the next seq, and fill the cache with slivers that miss.
//!
//! Memory is bounded by a budget of estimated bytes; whole streams are evicted,
//! least recently read first. The estimate follows what is really held (a
//! test counts it against the allocator's figures): each event's inline size
//! and the strings of its data, and for each checkpoint what a copy of a
//! folded objective holds apart from the others
//! ([`Objective::clone_bytes`]), not the texts they share. A budget of 0
//! keeps nothing in memory: every read starts from a snapshot in the store.

use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Utc};
use hashlink::{LinkedHashMap, LinkedHashSet};
use traguardo_events::domain::ObjectiveEvent;
use traguardo_events::model::objective_stream;
use traguardo_events::store::{Store, StoreExt, Until};
use traguardo_events::StreamSnapshot;
use traguardo_events::{EventRef, RecordedEvent};
use traguardo_projections::name::{name, Name};
use traguardo_projections::objective::decode_text;
use traguardo_projections::snapshot::{decode_objective, OBJECTIVE_SCHEMA};
use traguardo_projections::Objective;
use uuid::Uuid;

use crate::error::AppError;

/// A folded checkpoint at every version that is a multiple of this: a read
/// folds at most this many minus one (already decoded) events onto a clone of
/// one. The checkpoints of a stretch share one list of each indicator's
/// measurements ([`Objective::share_measurements`]), so a checkpoint holds its
/// phases, validations and the like, a few hundred bytes, and a clone of one
/// copies no measurement. When each held its own copy of the measurements,
/// the benchmark's 1M-event log (5,000 streams of 186 events, most of them
/// measurements) took 774 MiB with checkpoints every 32 versions and 544 MiB
/// every 64.
pub const CHECKPOINT_EVERY: u64 = 64;

/// A miss reads on to a version that is a multiple of this: where the next
/// stream snapshot starts, at the interval they are written by default.
pub const READ_AHEAD_TO: u64 = crate::snapshots::STREAM_SNAPSHOT_EVERY;

/// The budget when none is given: 512 MiB of estimated bytes.
pub const DEFAULT_BUDGET_BYTES: usize = 512 << 20;

/// A stream of at most this many versions is read whole when it is cached
/// (about 150 KB of rows); a longer one, a stretch at a time.
pub const WHOLE_STREAM_VERSIONS: u64 = 512;

/// How many streams read once (and not cached) are remembered, so that their
/// second read caches them: 8 bytes each.
const SEEN_CAPACITY: usize = 1 << 16;

/// Cached stretches of objective streams, for reads at a past seq.
pub struct TimeTravelCache {
    state: Mutex<State>,
}

struct State {
    /// Least recently read first.
    streams: LinkedHashMap<String, Arc<Stream>>,
    /// The hashes of the names of streams read once and not cached, least
    /// recently read first. A collision only caches a stream at its first read.
    seen: LinkedHashSet<u64>,
    hasher: std::hash::RandomState,
    bytes: usize,
    budget: usize,
    stats: CacheStats,
}

/// What the cache did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Reads answered from memory alone.
    pub hits: u64,
    /// Reads that had to read the store (a stream not cached, grown since, or
    /// asked below its cached stretch).
    pub misses: u64,
    /// Misses on a stream not read recently: answered by a fold from the
    /// nearest snapshot, with nothing kept (the stream is cached from its next
    /// read on).
    pub first_reads: u64,
    /// Streams dropped (with every stretch of theirs) to stay within the budget.
    pub evictions: u64,
    /// Streams held now.
    pub streams: usize,
    /// Estimated bytes held now.
    pub bytes: usize,
    /// Store reads that started from a stream snapshot.
    pub snapshots_used: u64,
    /// Stream snapshots refused (an old schema, or the log no longer holds
    /// their event): the stream was folded from version 1.
    pub snapshots_refused: u64,
    /// Seq cuts whose date was read from the store: the read model's days did
    /// not tell it (it had not folded that far yet, or the seq is past the
    /// head).
    pub dates_read: u64,
}

/// One event of a cached stream: what a fold reads of its envelope, its names
/// interned, and its decoded data. (Not the stream, which is the stretch's own,
/// nor the correlation and the hashes, which no fold reads: a whole
/// [`RecordedEvent`] took more than twice the room.)
struct Cached {
    seq: u64,
    version: u64,
    id: Uuid,
    recorded_at: DateTime<Utc>,
    schema: u32,
    event_type: Name,
    actor: Name,
    role: Name,
    decoded: ObjectiveEvent,
}

impl Cached {
    fn new(event: &RecordedEvent, decoded: ObjectiveEvent) -> Cached {
        Cached {
            seq: event.seq,
            version: event.version,
            id: event.id,
            recorded_at: event.recorded_at,
            schema: event.schema,
            event_type: name(&event.event_type),
            actor: name(&event.actor),
            role: name(&event.role),
            decoded,
        }
    }

    /// The envelope a fold reads.
    fn envelope(&self) -> EventRef<'_> {
        EventRef {
            seq: self.seq,
            id: self.id,
            stream: "",
            version: self.version,
            event_type: &self.event_type,
            schema: self.schema,
            actor: &self.actor,
            role: &self.role,
            recorded_at: self.recorded_at,
            correlation: None,
            prev_hash: "",
            hash: "",
        }
    }
}

/// Where an event sits in the log: enough to check that the log still holds it
/// and to cut on record time.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Mark {
    version: u64,
    seq: u64,
    hash: String,
    recorded_at: DateTime<Utc>,
}

impl Mark {
    fn of(event: &RecordedEvent) -> Mark {
        Mark {
            version: event.version,
            seq: event.seq,
            hash: event.hash.clone(),
            recorded_at: event.recorded_at,
        }
    }
}

/// A stretch of one stream: a floor, the events after it, checkpoints.
#[derive(Clone)]
struct History {
    /// The event the floor state was folded through (`None`: from version 1).
    floor: Option<Mark>,
    /// The events after the floor, in version order, from version
    /// `floor.version + 1`.
    events: Events,
    /// Folded states by ascending version: the floor's first (when there is
    /// one), then every [`CHECKPOINT_EVERY`]-th version.
    checkpoints: Vec<(u64, Arc<Objective>)>,
    /// The last event of the stretch (the floor's when it has no events).
    last: Option<Mark>,
    /// Every event of the stream with a seq from the floor's to this is here.
    complete_through: u64,
    /// For a stretch from version 1, the length of the definition's stored
    /// JSON: about the bytes of the texts that every checkpoint shares.
    definition_len: usize,
    bytes: usize,
}

/// The events of a stretch, in the runs they were read in: a stretch
/// continued shares the runs before with the one it continues, and a stream
/// read whole is one run, its events side by side (not one allocation each).
#[derive(Clone, Default)]
struct Events {
    runs: Vec<Arc<[Cached]>>,
    len: usize,
}

impl Events {
    fn len(&self) -> usize {
        self.len
    }

    fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn push_run(&mut self, run: Vec<Cached>) {
        self.len += run.len();
        self.runs.push(run.into());
    }

    /// The events at positions `start..end` (clamped to those held).
    fn range(&self, start: usize, end: usize) -> impl Iterator<Item = &Cached> {
        self.runs
            .iter()
            .scan(0, |offset, run| {
                let at = *offset;
                *offset += run.len();
                Some((at, run))
            })
            .flat_map(move |(at, run)| {
                let from = start.saturating_sub(at).min(run.len());
                let to = end.saturating_sub(at).min(run.len()).max(from);
                run[from..to].iter()
            })
    }

    /// How many events `before` holds for, when it holds for a prefix of them.
    fn partition_point(&self, before: impl Fn(&Cached) -> bool) -> usize {
        let whole = self
            .runs
            .partition_point(|run| run.last().is_some_and(&before));
        let counted: usize = self.runs[..whole].iter().map(|run| run.len()).sum();
        counted
            + self
                .runs
                .get(whole)
                .map_or(0, |run| run.partition_point(&before))
    }
}

/// A stretch read from the store: the floor (its event and state), and the
/// events after it.
struct Read {
    floor: Option<(RecordedEvent, Objective, usize)>,
    events: Vec<Fresh>,
}

/// An event read from the store and decoded straight from its stored text: its
/// envelope without the data, and without what neither a fold nor a check of
/// the stretch reads (the stream, which is the stretch's own, the correlation
/// and the previous hash).
struct Fresh {
    event: RecordedEvent,
    decoded: ObjectiveEvent,
    /// The length of the stored text.
    data_len: usize,
}

/// Reads on after `fresh`, the events of `stream` from version `from` through
/// seq `cut` (a seq known committed, at most `head`), to the next version that
/// is a multiple of [`READ_AHEAD_TO`]: a cached stretch then ends where the
/// next stream snapshot starts, and the reads that fall between the cut and
/// there later are answered from memory, instead of each missing and reading
/// the few rows after the stretch. At most `READ_AHEAD_TO` rows more.
/// Returns the seq through which `fresh` then holds every event of the stream:
/// the last one's when the interval is full (later events may follow), else
/// `head` (every event at or before it is visible to the read, and the stream
/// has none after the last read).
fn read_to_next_snapshot(
    store: &dyn Store,
    stream: &str,
    fresh: &mut Vec<Fresh>,
    from: u64,
    cut: u64,
    head: u64,
) -> Result<u64, AppError> {
    let last = fresh
        .last()
        .map_or(from.saturating_sub(1), |f| f.event.version);
    let next = (last / READ_AHEAD_TO + 1) * READ_AHEAD_TO;
    let more = read_fresh(store, stream, last + 1, Until::Version(next), next - last)?;
    let full = more
        .last()
        .filter(|f| f.event.version == next)
        .map(|f| f.event.seq);
    fresh.extend(more);
    Ok(full.unwrap_or(head).max(cut))
}

/// The events of `stream` from version `from` on, up to `until`, decoded;
/// `expected` is how many there are likely to be (the room made first, so that
/// a stream read whole is not copied again and again as the list grows: at
/// about 400 bytes an event, a list of a few hundred lands on fresh pages each
/// time it doubles).
fn read_fresh(
    store: &dyn Store,
    stream: &str,
    from: u64,
    until: Until,
    expected: u64,
) -> Result<Vec<Fresh>, AppError> {
    let mut fresh = Vec::with_capacity(usize::try_from(expected).unwrap_or(0));
    store.for_each_in_stream_raw(stream, from, until, |event, data| {
        fresh.push(Fresh {
            decoded: decode_text(event, data)?,
            data_len: data.len(),
            event: EventRef {
                stream: "",
                correlation: None,
                prev_hash: "",
                ..*event
            }
            .to_recorded(serde_json::Value::Null),
        });
        Ok::<_, AppError>(())
    })?;
    Ok(fresh)
}

impl History {
    /// The version the events start after.
    fn base(&self) -> u64 {
        self.floor.as_ref().map_or(0, |f| f.version)
    }

    /// The version of the last event of the stretch (0 when none).
    fn last_version(&self) -> u64 {
        self.last.as_ref().map_or(0, |l| l.version)
    }

    /// A stretch from `floor` (its event, state and encoded size) followed by
    /// `fresh`, known complete through `head`. `None` when the events do not
    /// follow on from one another.
    fn build(
        floor: Option<(Mark, Arc<Objective>, usize)>,
        fresh: Vec<Fresh>,
        head: u64,
    ) -> Result<Option<History>, AppError> {
        let (floor, state, encoded) = match floor {
            Some((mark, state, encoded)) => (Some(mark), Some(state), encoded),
            None => (None, None, 0),
        };
        // A state decoded from a snapshot: what a copy of it holds, its
        // measurements, and its own texts (fewer bytes than the snapshot that
        // holds them).
        let size = state
            .as_ref()
            .map_or(0, |s| s.clone_bytes() + s.measurement_bytes() + encoded);
        let empty = History {
            last: floor.clone(),
            checkpoints: state
                .into_iter()
                .filter_map(|s| Some((floor.as_ref()?.version, s)))
                .collect(),
            floor,
            events: Events::default(),
            complete_through: 0,
            definition_len: 0,
            bytes: std::mem::size_of::<History>() + size,
        };
        empty.extend(fresh, head)
    }

    /// This stretch continued by `fresh` (the events after its last, in
    /// version order), complete through `head`; `None` when they do not follow.
    fn extend(&self, fresh: Vec<Fresh>, head: u64) -> Result<Option<History>, AppError> {
        let mut folded = self.fold_through(self.base() + self.events.len() as u64)?;
        let mut events = self.events.clone();
        let mut run = Vec::with_capacity(fresh.len());
        let mut checkpoints = self.checkpoints.clone();
        let kept = checkpoints.len();
        let mut bytes = self.bytes;
        let mut last = self.last.clone();
        let mut definition_len = self.definition_len;
        if let Some(o) = folded.as_mut() {
            o.reserve_for(fresh.iter().map(|f| &f.decoded));
        }
        let mut fresh = fresh.into_iter();
        while let Some(Fresh {
            event,
            decoded,
            data_len,
        }) = fresh.next()
        {
            let expected = last.as_ref().map_or(1, |m| m.version + 1);
            if event.version != expected || last.as_ref().is_some_and(|m| event.seq <= m.seq) {
                return Ok(None);
            }
            last = Some(Mark::of(&event));
            let cached = Cached::new(&event, decoded);
            let defines = folded.is_none();
            if defines {
                definition_len = data_len;
            }
            fold(&mut folded, &cached.envelope(), &cached.decoded)?;
            if let Some(o) = folded.as_mut().filter(|_| defines) {
                // Defined by this event: room for what the rest of the run
                // measures, as for a stretch that starts from a state.
                o.reserve_for(fresh.as_slice().iter().map(|f| &f.decoded));
            }
            bytes += estimated_bytes(data_len);
            if event.version.is_multiple_of(CHECKPOINT_EVERY) {
                if let Some(o) = &folded {
                    if checkpoints.is_empty() {
                        // The texts the checkpoints share, once.
                        bytes += definition_len;
                    }
                    bytes += o.clone_bytes();
                    checkpoints.push((event.version, Arc::new(o.clone())));
                }
            }
            run.push(cached);
        }
        if !run.is_empty() {
            bytes += RUN_BYTES;
            events.push_run(run);
        }
        // The new checkpoints' measurements: prefixes of the last state's, one
        // list for them all instead of a copy each.
        if let Some(last_state) = folded.as_ref().filter(|_| checkpoints.len() > kept) {
            for (_, checkpoint) in &mut checkpoints[kept..] {
                if let Some(c) = Arc::get_mut(checkpoint) {
                    c.share_measurements(last_state);
                }
            }
            bytes += last_state.measurement_bytes();
        }
        Ok(Some(History {
            floor: self.floor.clone(),
            events,
            checkpoints,
            complete_through: head.max(last.as_ref().map_or(0, |m| m.seq)),
            last,
            definition_len,
            bytes,
        }))
    }

    /// The objective folded through `version` (`None` for 0); `version` is
    /// at least the floor's and at most the last cached.
    fn fold_through(&self, version: u64) -> Result<Option<Objective>, AppError> {
        let at = self.checkpoints.partition_point(|(v, _)| *v <= version);
        let (mut objective, from) = match at.checked_sub(1).map(|i| &self.checkpoints[i]) {
            Some((v, state)) => (Some(Objective::clone(state)), *v),
            None => (None, 0),
        };
        let base = self.base();
        let start = usize::try_from(from.saturating_sub(base)).unwrap_or(usize::MAX);
        let end = usize::try_from(version.saturating_sub(base)).unwrap_or(usize::MAX);
        // No room is made first (`Objective::reserve_for`): the clone shares
        // its measurements with the checkpoint and follows them.
        for cached in self.events.range(start, end) {
            fold(&mut objective, &cached.envelope(), &cached.decoded)?;
        }
        Ok(objective)
    }

    /// The objective at a cut (`None` when it did not exist yet), if this
    /// stretch holds every event of the stream up to it.
    fn at(&self, cut: Until) -> Option<Result<Option<Objective>, AppError>> {
        let count = match cut {
            Until::Seq(seq) => {
                if seq > self.complete_through || self.floor.as_ref().is_some_and(|f| seq < f.seq) {
                    return None;
                }
                self.events.partition_point(|c| c.seq <= seq)
            }
            Until::RecordedAt(t) => {
                // Record times never decrease along the log: the stream's events
                // at or before `t` come before the first cached one after it.
                if self.floor.as_ref().is_some_and(|f| f.recorded_at > t)
                    || self.last.as_ref().is_none_or(|l| l.recorded_at <= t)
                {
                    return None;
                }
                self.events.partition_point(|c| c.recorded_at <= t)
            }
            Until::End | Until::Version(_) => return None,
        };
        Some(self.fold_through(self.base() + count as u64))
    }
}

fn fold(
    objective: &mut Option<Objective>,
    event: &EventRef<'_>,
    decoded: &ObjectiveEvent,
) -> Result<(), AppError> {
    match objective.as_mut() {
        None => *objective = Some(Objective::define(event, decoded.clone())?),
        Some(o) => o.apply(event, decoded)?,
    }
    Ok(())
}

/// The estimated bytes of one cached event: its inline size, and the length
/// of its stored JSON for the strings of its decoded data (about what they
/// take).
fn estimated_bytes(data_len: usize) -> usize {
    std::mem::size_of::<Cached>() + data_len
}

/// The bytes of a run of events besides the events: its `Arc`'s two counts
/// and the pointer to it.
const RUN_BYTES: usize = 2 * std::mem::size_of::<usize>() + std::mem::size_of::<Arc<[Cached]>>();

impl TimeTravelCache {
    /// An empty cache holding at most `budget` estimated bytes.
    #[must_use]
    pub fn new(budget: usize) -> Self {
        TimeTravelCache {
            state: Mutex::new(State {
                streams: LinkedHashMap::new(),
                seen: LinkedHashSet::new(),
                hasher: std::hash::RandomState::new(),
                bytes: 0,
                budget,
                stats: CacheStats::default(),
            }),
        }
    }

    /// Counts a seq cut whose date was read from the store.
    pub(crate) fn note_date_read(&self) {
        self.count(|s| s.dates_read += 1);
    }

    /// Changes the budget, evicting what no longer fits.
    pub fn set_budget(&self, budget: usize) {
        let mut state = self.lock();
        state.budget = budget;
        state.evict();
    }

    /// Hits, misses, evictions, snapshots used and refused, and what is held now.
    #[must_use]
    pub fn stats(&self) -> CacheStats {
        let state = self.lock();
        CacheStats {
            streams: state.streams.len(),
            bytes: state.bytes,
            ..state.stats
        }
    }

    /// Objective `key` at a cut (a seq or a record time), from memory alone:
    /// `None` when no cached stretch of its stream holds every event up to the
    /// cut (then [`TimeTravelCache::objective_at`] reads the store). The
    /// objective is `None` when it did not exist yet.
    ///
    /// # Errors
    /// When a cached event cannot be folded (a bug).
    pub fn cached(&self, key: &str, cut: Until) -> Option<Result<Option<Objective>, AppError>> {
        let stream = self.lookup(&objective_stream(key))?;
        let answer = stream.covering(cut)?.at(cut)?;
        self.count(|s| s.hits += 1);
        Some(answer)
    }

    /// Objective `key` as the log held it up to seq `seq`: from memory when a
    /// cached stretch of its stream holds it, else after reading from the
    /// store at most what lies between the nearest stream snapshot at or before
    /// `seq` (or the end of a cached stretch past it) and `seq`. `head` is a
    /// seq known committed (everything at or before it is visible to a read).
    ///
    /// # Errors
    /// When the store cannot be read or the stream cannot be folded.
    pub fn objective_at(
        &self,
        store: &dyn Store,
        key: &str,
        seq: u64,
        head: u64,
    ) -> Result<Option<Objective>, AppError> {
        if let Some(answer) = self.cached(key, Until::Seq(seq)) {
            return answer;
        }
        let name = objective_stream(key);
        let cut = seq.min(head);
        if !self.lock().admit(&name) {
            return self.fold_from_snapshot(store, &name, seq, cut);
        }
        let mut stream = self
            .lookup(&name)
            .map_or_else(Stream::default, |s| Stream::clone(&s));
        // A stream cached for the first time is read whole, when it is short
        // enough.
        let whole = if stream.stretches.is_empty() {
            self.read_whole(store, &name, head)?
        } else {
            None
        };
        let stretch = match whole {
            Some(whole) => {
                stream.add(whole.clone());
                whole
            }
            None => {
                let read_ahead = self.lock().has_room();
                self.read_stretch(store, &name, &mut stream, cut, head, read_ahead)?
            }
        };
        if stream
            .stretches
            .iter()
            .all(|h| h.floor.is_none() && h.events.is_empty())
        {
            // No such objective (yet): nothing to keep.
            return Ok(None);
        }
        let answer = match stretch.at(Until::Seq(seq)) {
            Some(answer) => answer?,
            None => {
                // Past the head: not yet history, and not cached as if it were.
                let events = store.read_stream(&name, Until::Seq(seq))?;
                Objective::from_events(&events)?
            }
        };
        self.insert(name, Arc::new(stream));
        Ok(answer)
    }

    /// Stream `name` from version 1 through `head`, when it has at most
    /// [`WHOLE_STREAM_VERSIONS`] versions: one read, after which every read of
    /// the stream up to `head` is answered from memory (instead of a miss for
    /// each stretch between two snapshots that a read falls in first).
    fn read_whole(
        &self,
        store: &dyn Store,
        name: &str,
        head: u64,
    ) -> Result<Option<Arc<History>>, AppError> {
        let versions = store.stream_version(name)?;
        if versions == 0 || versions > WHOLE_STREAM_VERSIONS {
            return Ok(None);
        }
        let fresh = read_fresh(store, name, 1, Until::Seq(head), versions)?;
        match History::build(None, fresh, head)? {
            Some(built) => Ok(Some(Arc::new(built))),
            None => Err(AppError::Internal(format!(
                "the stream {name} read from the store does not follow on"
            ))),
        }
    }

    /// The stretch of `stream` that holds seq `cut` (a seq known committed, at
    /// most `head`), after reading what it lacks from the store: from the
    /// nearest snapshot at or before `cut`, or from the end of a cached stretch
    /// that reaches it; on to where the next snapshot starts when
    /// `read_ahead`, else through the cut only. `stream` is updated with it.
    fn read_stretch(
        &self,
        store: &dyn Store,
        name: &str,
        stream: &mut Stream,
        cut: u64,
        head: u64,
        read_ahead: bool,
    ) -> Result<Arc<History>, AppError> {
        let mut snapshot = self.snapshot_at(store, name, cut);
        // What a miss read: on to where the next snapshot starts while the
        // cache has room for it, else through the cut only; the seq it is complete through.
        let read_on = |fresh: &mut Vec<Fresh>, from| {
            if read_ahead {
                read_to_next_snapshot(store, name, fresh, from, cut, head)
            } else {
                Ok(cut)
            }
        };
        loop {
            let base = snapshot.as_ref().map_or(0, |s| s.version);
            // A cached stretch that reaches the snapshot's version: continued
            // from its last event (fewer rows than from the snapshot).
            if let Some(i) = stream
                .stretches
                .iter()
                .rposition(|h| h.base() <= base && h.last_version() >= base)
            {
                let h = stream.stretches[i].clone();
                if cut <= h.complete_through {
                    // The seq is past the head: the stretch up to it stays.
                    return Ok(h);
                }
                let from = h.last_version().max(1);
                let mut fresh = read_fresh(store, name, from, Until::Seq(cut), READ_AHEAD_TO)?;
                let complete = read_on(&mut fresh, from)?;
                let continues = match (&h.last, fresh.first().map(|f| &f.event)) {
                    (None, _) => true,
                    (Some(l), Some(first)) => first.seq == l.seq && first.hash == l.hash,
                    (Some(_), None) => false,
                };
                let skip = usize::from(h.last.is_some());
                let extended = if continues {
                    h.extend(fresh.into_iter().skip(skip).collect(), complete)?
                } else {
                    None
                };
                if let Some(extended) = extended {
                    let extended = Arc::new(extended);
                    stream.replace(i, extended.clone());
                    return Ok(extended);
                }
                tracing::warn!(stream = name, "a cached stream no longer matches the log");
                *stream = Stream::default();
                continue;
            }
            let Some(mut read) = self.read(store, name, snapshot.take(), Until::Seq(cut))? else {
                continue;
            };
            let from = read.floor.as_ref().map_or(1, |(e, _, _)| e.version + 1);
            let complete = read_on(&mut read.events, from)?;
            let Some(built) = History::build(floored(read.floor), read.events, complete)? else {
                return Err(AppError::Internal(format!(
                    "the stream {name} read from the store does not follow on"
                )));
            };
            let built = Arc::new(built);
            stream.add(built.clone());
            return Ok(built);
        }
    }

    /// Objective `key` up to seq `seq`, folded from the nearest snapshot at or
    /// before `cut` (a seq known committed) and dropped: nothing is kept.
    fn fold_from_snapshot(
        &self,
        store: &dyn Store,
        name: &str,
        seq: u64,
        cut: u64,
    ) -> Result<Option<Objective>, AppError> {
        let mut snapshot = self.snapshot_at(store, name, cut);
        let read = loop {
            if let Some(read) = self.read(store, name, snapshot.take(), Until::Seq(seq))? {
                break read;
            }
        };
        let mut objective = read.floor.map(|(_, state, _)| state);
        if let Some(o) = objective.as_mut() {
            o.reserve_for(read.events.iter().map(|f| &f.decoded));
        }
        for fresh in read.events {
            fold(&mut objective, &fresh.event.envelope(), &fresh.decoded)?;
        }
        Ok(objective)
    }

    /// The nearest stream snapshot at or before seq `at`, when there is one of
    /// this fold's schema (one of another is refused and counted).
    fn snapshot_at(&self, store: &dyn Store, stream: &str, at: u64) -> Option<StreamSnapshot> {
        let snapshot = match store.stream_snapshot_at(stream, at) {
            Ok(found) => found?,
            Err(e) => {
                tracing::warn!(stream, error = %e, "cannot read a stream snapshot");
                return None;
            }
        };
        if snapshot.schema == OBJECTIVE_SCHEMA {
            return Some(snapshot);
        }
        self.refused(
            &snapshot,
            &format!(
                "schema {}, the fold's is {OBJECTIVE_SCHEMA}",
                snapshot.schema
            ),
        );
        None
    }

    /// The stretch of `stream` from `snapshot` (else from version 1) up to
    /// `until`. The snapshot's own event is read first and must be the one it
    /// names: `None` when it is not (the snapshot is refused and counted).
    fn read(
        &self,
        store: &dyn Store,
        stream: &str,
        snapshot: Option<StreamSnapshot>,
        until: Until,
    ) -> Result<Option<Read>, AppError> {
        let Some(snapshot) = snapshot else {
            return Ok(Some(Read {
                floor: None,
                events: read_fresh(store, stream, 1, until, READ_AHEAD_TO)?,
            }));
        };
        let mut events = read_fresh(store, stream, snapshot.version, until, READ_AHEAD_TO)?;
        let holds = events.first().map(|f| &f.event).is_some_and(|e| {
            e.version == snapshot.version && e.seq == snapshot.seq && e.hash == snapshot.hash
        });
        if !holds {
            self.refused(&snapshot, "the log no longer holds its event");
            return Ok(None);
        }
        match decode_objective(&snapshot.data) {
            Ok(state) if state.version() == snapshot.version => {
                self.count(|s| s.snapshots_used += 1);
                let first = events.remove(0).event;
                Ok(Some(Read {
                    floor: Some((first, state, snapshot.data.len())),
                    events,
                }))
            }
            Ok(state) => {
                self.refused(&snapshot, &format!("it holds version {}", state.version()));
                Ok(None)
            }
            Err(e) => {
                self.refused(&snapshot, &e.to_string());
                Ok(None)
            }
        }
    }

    fn refused(&self, snapshot: &StreamSnapshot, reason: &str) {
        self.count(|s| s.snapshots_refused += 1);
        tracing::warn!(
            stream = snapshot.stream,
            version = snapshot.version,
            seq = snapshot.seq,
            reason,
            "stream snapshot refused; folding the stream from version 1"
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is consistent after every statement: a panic elsewhere
        // cannot leave it half-changed.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn count(&self, f: impl FnOnce(&mut CacheStats)) {
        f(&mut self.lock().stats);
    }

    fn lookup(&self, stream: &str) -> Option<Arc<Stream>> {
        let mut state = self.lock();
        let found = state.streams.to_back(stream)?;
        Some(found.clone())
    }

    fn insert(&self, name: String, stream: Arc<Stream>) {
        let mut state = self.lock();
        if stream.bytes > state.budget {
            return;
        }
        state.bytes += stream.bytes;
        if let Some(old) = state.streams.replace(name, stream) {
            state.bytes -= old.bytes;
        }
        state.evict();
    }
}

/// The cached stretches of one stream: disjoint, by ascending floor.
#[derive(Clone, Default)]
struct Stream {
    stretches: Vec<Arc<History>>,
    bytes: usize,
}

impl Stream {
    /// The stretch a cut would fall in: the last whose floor is at or before it.
    fn covering(&self, cut: Until) -> Option<&History> {
        let after = self.stretches.partition_point(|h| match (&h.floor, cut) {
            (None, _) => true,
            (Some(f), Until::Seq(seq)) => f.seq <= seq,
            (Some(f), Until::RecordedAt(t)) => f.recorded_at <= t,
            (Some(_), Until::End | Until::Version(_)) => false,
        });
        Some(&self.stretches[after.checked_sub(1)?])
    }

    fn replace(&mut self, i: usize, stretch: Arc<History>) {
        self.bytes = self.bytes - self.stretches[i].bytes + stretch.bytes;
        self.stretches[i] = stretch;
    }

    fn add(&mut self, stretch: Arc<History>) {
        let at = self
            .stretches
            .partition_point(|h| h.base() < stretch.base());
        self.bytes += stretch.bytes;
        if self
            .stretches
            .get(at)
            .is_some_and(|h| h.base() == stretch.base())
        {
            self.bytes -= self.stretches[at].bytes;
            self.stretches[at] = stretch;
        } else {
            self.stretches.insert(at, stretch);
        }
    }
}

/// A floor read from the store as a stretch's floor.
fn floored(
    floor: Option<(RecordedEvent, Objective, usize)>,
) -> Option<(Mark, Arc<Objective>, usize)> {
    floor.map(|(event, state, encoded)| (Mark::of(&event), Arc::new(state), encoded))
}

impl State {
    /// Whether a miss on `stream` builds or extends a cached stretch (the
    /// stream is cached, or read for the second time lately), counting the
    /// miss; else it folds and drops, and a first read is remembered. With the
    /// cache off, nothing is counted or remembered.
    fn admit(&mut self, stream: &str) -> bool {
        if self.budget == 0 {
            return false;
        }
        self.stats.misses += 1;
        if self.streams.contains_key(stream) {
            return true;
        }
        let hash = self.hasher.hash_one(stream);
        if self.seen.remove(&hash) {
            return true;
        }
        self.seen.insert(hash);
        if self.seen.len() > SEEN_CAPACITY {
            self.seen.pop_front();
        }
        self.stats.first_reads += 1;
        false
    }

    /// Whether the cache has room to keep what a miss reads ahead (it holds
    /// less than seven eighths of its budget). Once it is full, what a miss
    /// read past its cut would push out streams that are being read, and
    /// would likely be evicted before it is read: a miss then reads only up
    /// to its cut.
    fn has_room(&self) -> bool {
        self.bytes < self.budget - self.budget / 8
    }

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
