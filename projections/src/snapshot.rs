//! The read model as bytes, for snapshots: the [`Registry`] encoded as
//! MessagePack (compact, and written by serde from the same types the fold
//! fills, so there is no second schema to keep in step).
//!
//! The objectives, nearly all of a large registry, go in [`CHUNKS`] separate
//! parts, encoded and decoded on as many threads as the machine has: a start
//! from a snapshot is bound by decoding, and so is how long a snapshot holds
//! the registry's read lock. Layout: a magic, then length-prefixed parts (u64
//! little-endian): the registry without its objectives (MessagePack maps with
//! field names: plans and tokens hold the events' types, whose optional fields
//! are left out when empty), then each chunk of objectives: the table of the
//! actors, roles and identities it names (a MessagePack array of strings), then
//! a MessagePack array of objectives, each a positional array (no field names,
//! which were most of the bytes; the objective's types leave no field out, so
//! positions hold) in which those names are indexes into the table
//! ([`crate::name::packed`]).
//!
//! [`SCHEMA`] numbers the layout: [`FOLD`], the number of what the fold keeps,
//! then this encoding's own last digits. Any change to what the fold keeps (a
//! field added to [`crate::Objective`], a change of meaning) must raise
//! [`FOLD`], which changes [`SCHEMA`] and [`OBJECTIVE_SCHEMA`] alike; a change of
//! one encoding alone changes its own last digits, and leaves the other kind of
//! snapshot valid. A snapshot of another number is discarded and the read model
//! (or the stream) is folded from the log again. Whether a snapshot still matches the log (its seq and head hash) is
//! checked by whoever loads it; see the application's start.

use crate::name::packed;
use crate::{Objective, Registry};

/// What the fold keeps; raise it whenever the fold changes. Both snapshot
/// numbers below carry it, so a change of the fold discards snapshots of
/// either kind.
pub const FOLD: u32 = 3;

/// The layout of the encoded [`Registry`]: [`FOLD`], and 5 for this encoding
/// (positional objectives, names once per part, the notes' and measurements'
/// dates as day numbers, the log's days ([`crate::days`]); 4 had no days, 3
/// had those dates as text, 2 the names in place, and was stored as plain
/// `2`).
pub const SCHEMA: u32 = FOLD * 1_000 + 5;

/// The layout of one [`Objective`] encoded alone, for the stream snapshots that
/// time travel starts from: [`FOLD`], and 2 for this encoding (positional, names
/// in place, dates of notes and measurements as day numbers; 1 had them as
/// text). A new layout of the whole registry alone leaves it as it is.
pub const OBJECTIVE_SCHEMA: u32 = FOLD * 1_000 + 2;

/// How many parts the objectives are split into (whatever the machine: the
/// bytes do not depend on it).
pub const CHUNKS: usize = 16;

/// The first bytes of an encoded registry.
const MAGIC: &[u8; 8] = b"TGSNAP05";

/// A read model that could not be encoded, or bytes that are not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// The registry could not be encoded.
    #[error("cannot encode the read model: {0}")]
    Encode(String),
    /// The bytes are not a registry of this [`SCHEMA`].
    #[error("cannot decode the snapshot: {0}")]
    Decode(String),
}

/// The registry as bytes.
///
/// # Errors
/// [`SnapshotError::Encode`], which would be a bug.
pub fn encode(registry: &Registry) -> Result<Vec<u8>, SnapshotError> {
    let rest = Registry {
        plans: registry.plans.clone(),
        objectives: Default::default(),
        tokens: registry.tokens.clone(),
        users: registry.users.clone(),
        last_seq: registry.last_seq,
        days: registry.days.clone(),
        texts: registry.texts,
    };
    let objectives: Vec<&Objective> = registry.objectives().collect();
    let per_chunk = objectives.len().div_ceil(CHUNKS).max(1);
    let chunks: Vec<&[&Objective]> = objectives.chunks(per_chunk).collect();
    let encoded = in_parallel(&chunks, |chunk| encode_chunk(chunk))?;
    let mut bytes = Vec::with_capacity(encoded.iter().map(Vec::len).sum::<usize>() + 1024);
    bytes.extend_from_slice(MAGIC);
    for part in std::iter::once(named(&rest)?).chain(encoded) {
        bytes.extend_from_slice(&(part.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&part);
    }
    Ok(bytes)
}

/// The registry those bytes encode.
///
/// # Errors
/// [`SnapshotError::Decode`] for bytes that are not a registry of this schema.
pub fn decode(bytes: &[u8]) -> Result<Registry, SnapshotError> {
    decode_streamed(|feed| feed(bytes)).1
}

/// The registry of bytes handed over piece by piece while they are read:
/// `read` is given a function to feed them to, in order, in pieces of any
/// size; each part of the layout is decoded, on as many threads as the machine
/// has, as soon as its last byte is fed, so that decoding overlaps the reading.
/// Returns what `read` returned, and the registry (an error when the bytes fed
/// are not a whole registry of this schema, whatever `read` returned).
pub fn decode_streamed<R>(
    read: impl FnOnce(&mut dyn FnMut(&[u8])) -> R,
) -> (R, Result<Registry, SnapshotError>) {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let (jobs, queue) = std::sync::mpsc::channel::<(usize, Vec<u8>)>();
    let queue = std::sync::Mutex::new(queue);
    // The workers decode for this thread: its texts go where its would.
    let on_disk = crate::text::kept_on_disk();
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| scope.spawn(|| crate::text::on_disk_if(on_disk, || decode_jobs(&queue))))
            .collect();
        let mut splitter = Splitter::new(jobs);
        let read = read(&mut |bytes| splitter.feed(bytes));
        let split = splitter.finish();
        let mut decoded = Vec::new();
        for worker in workers {
            match worker.join() {
                Ok(done) => decoded.extend(done),
                Err(_) => decoded.push((0, Err(failed("a worker thread panicked")))),
            }
        }
        (read, split.and_then(|parts| assemble(parts, decoded)))
    })
}

/// Decodes the parts sent to `queue` until it closes: each with its index.
fn decode_jobs(
    queue: &std::sync::Mutex<std::sync::mpsc::Receiver<(usize, Vec<u8>)>>,
) -> Vec<(usize, Result<Part, SnapshotError>)> {
    let mut done = Vec::new();
    loop {
        let job = queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .recv();
        let Ok((index, part)) = job else {
            return done;
        };
        done.push((index, decode_part(index, &part)));
    }
}

/// A part of the layout, decoded.
#[allow(clippy::vec_box)] // on purpose: see `Objectives`
enum Part {
    /// The first: the registry without its objectives.
    Rest(Registry),
    /// Any other: a chunk of objectives, each decoded into its own box (as
    /// the registry keeps them: no array of whole objectives to free after).
    Objectives(Vec<Box<Objective>>),
}

fn decode_part(index: usize, bytes: &[u8]) -> Result<Part, SnapshotError> {
    if index == 0 {
        from_bytes(bytes).map(Part::Rest)
    } else {
        decode_chunk(bytes).map(Part::Objectives)
    }
}

/// The registry of its decoded parts (`parts` of them, in any order).
fn assemble(
    parts: usize,
    mut decoded: Vec<(usize, Result<Part, SnapshotError>)>,
) -> Result<Registry, SnapshotError> {
    if parts == 0 {
        return Err(failed("the snapshot is empty"));
    }
    if decoded.len() != parts {
        return Err(failed("a part was not decoded"));
    }
    decoded.sort_unstable_by_key(|(index, _)| *index);
    let mut decoded = decoded.into_iter().map(|(_, part)| part);
    let Some(Part::Rest(mut registry)) = decoded.next().transpose()? else {
        return Err(failed("the snapshot does not start with the registry"));
    };
    let chunks = decoded
        .map(|part| match part? {
            Part::Objectives(objectives) => Ok(objectives),
            Part::Rest(_) => Err(failed("the registry is in the snapshot twice")),
        })
        .collect::<Result<Vec<_>, _>>()?;
    registry
        .objectives
        .reserve(chunks.iter().map(Vec::len).sum());
    for objective in chunks.into_iter().flatten() {
        registry.objectives.insert(objective.key, objective);
    }
    Ok(registry)
}

fn failed(message: &str) -> SnapshotError {
    SnapshotError::Decode(message.to_string())
}

/// Cuts the bytes fed to it into the layout's parts (the magic, then parts
/// each after its length) and sends each whole part, numbered, to be decoded.
struct Splitter {
    jobs: std::sync::mpsc::Sender<(usize, Vec<u8>)>,
    /// The magic or a length, while its 8 bytes are being fed.
    prefix: Vec<u8>,
    magic: bool,
    /// The part being fed: its length and the bytes so far.
    part: Option<(usize, Vec<u8>)>,
    sent: usize,
    error: Option<SnapshotError>,
}

/// A part is given at most this much room before its bytes arrive, whatever
/// length it claims (a damaged length must not allocate it).
const PART_ROOM: usize = 64 << 20;

impl Splitter {
    fn new(jobs: std::sync::mpsc::Sender<(usize, Vec<u8>)>) -> Splitter {
        Splitter {
            jobs,
            prefix: Vec::with_capacity(8),
            magic: false,
            part: None,
            sent: 0,
            error: None,
        }
    }

    fn feed(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() && self.error.is_none() {
            if let Some((len, part)) = &mut self.part {
                let take = (*len - part.len()).min(bytes.len());
                part.extend_from_slice(&bytes[..take]);
                bytes = &bytes[take..];
                if part.len() == *len {
                    self.send();
                }
                continue;
            }
            let take = (8 - self.prefix.len()).min(bytes.len());
            self.prefix.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            let Ok(prefix) = <[u8; 8]>::try_from(self.prefix.as_slice()) else {
                continue;
            };
            self.prefix.clear();
            if !self.magic {
                if &prefix != MAGIC {
                    self.error = Some(failed("not a snapshot of the read model"));
                }
                self.magic = true;
                continue;
            }
            let Ok(len) = usize::try_from(u64::from_le_bytes(prefix)) else {
                self.error = Some(failed("a part is longer than the snapshot"));
                continue;
            };
            self.part = Some((len, Vec::with_capacity(len.min(PART_ROOM))));
            if len == 0 {
                self.send();
            }
        }
    }

    fn send(&mut self) {
        if let Some((_, part)) = self.part.take() {
            // The workers outlive the splitter: the channel is open.
            let _ = self.jobs.send((self.sent, part));
            self.sent += 1;
        }
    }

    /// How many parts were sent, once every byte has been fed; the channel is
    /// closed either way.
    fn finish(self) -> Result<usize, SnapshotError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        if !self.magic {
            return Err(failed("not a snapshot of the read model"));
        }
        if self.part.is_some() {
            return Err(failed("a part is longer than the snapshot"));
        }
        if !self.prefix.is_empty() {
            return Err(failed("a part's length is cut"));
        }
        Ok(self.sent)
    }
}

/// A chunk of objectives as bytes: the table of the names it holds, then the
/// objectives with those names as indexes.
fn encode_chunk(objectives: &[&Objective]) -> Result<Vec<u8>, SnapshotError> {
    let (encoded, names) = packed::encoding(|| positional(objectives));
    let mut bytes = positional(&names)?;
    bytes.extend_from_slice(&encoded?);
    Ok(bytes)
}

/// The objectives of a chunk of [`encode_chunk`].
#[allow(clippy::vec_box)] // as the registry keeps them: see `Part::Objectives`
fn decode_chunk(bytes: &[u8]) -> Result<Vec<Box<Objective>>, SnapshotError> {
    let failed = |e: rmp_serde::decode::Error| SnapshotError::Decode(e.to_string());
    let mut read = rmp_serde::Deserializer::from_read_ref(bytes);
    let names: Vec<&str> = serde::Deserialize::deserialize(&mut read).map_err(failed)?;
    let names = names.into_iter().map(crate::name::name).collect();
    packed::decoding(names, || serde::Deserialize::deserialize(&mut read)).map_err(failed)
}

/// One objective as bytes (a positional MessagePack array, as the objectives
/// of [`encode`]): a stream snapshot of layout [`OBJECTIVE_SCHEMA`].
///
/// # Errors
/// [`SnapshotError::Encode`], which would be a bug.
pub fn encode_objective(objective: &Objective) -> Result<Vec<u8>, SnapshotError> {
    positional(objective)
}

/// The objective those bytes encode.
///
/// # Errors
/// [`SnapshotError::Decode`] for bytes that are not an objective of
/// [`OBJECTIVE_SCHEMA`].
pub fn decode_objective(bytes: &[u8]) -> Result<Objective, SnapshotError> {
    from_bytes(bytes)
}

fn named<T: serde::Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, SnapshotError> {
    rmp_serde::to_vec_named(value).map_err(|e| SnapshotError::Encode(e.to_string()))
}

fn positional<T: serde::Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, SnapshotError> {
    rmp_serde::to_vec(value).map_err(|e| SnapshotError::Encode(e.to_string()))
}

fn from_bytes<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, SnapshotError> {
    rmp_serde::from_slice(bytes).map_err(|e| SnapshotError::Decode(e.to_string()))
}

/// `f` of every item, in order, on as many threads as the machine has (the
/// encoding's: a worker that panicked is an encoding error).
fn in_parallel<I: Sync, T: Send>(
    items: &[I],
    f: impl Fn(&I) -> Result<T, SnapshotError> + Sync,
) -> Result<Vec<T>, SnapshotError> {
    let threads = std::thread::available_parallelism()
        .map_or(1, std::num::NonZeroUsize::get)
        .min(items.len())
        .max(1);
    let per_thread = items.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let workers: Vec<_> = items
            .chunks(per_thread)
            .map(|slice| scope.spawn(|| slice.iter().map(&f).collect::<Result<Vec<T>, _>>()))
            .collect();
        let mut all = Vec::with_capacity(items.len());
        for worker in workers {
            let done = worker
                .join()
                .map_err(|_| SnapshotError::Encode("a worker thread panicked".into()))?;
            all.extend(done?);
        }
        Ok(all)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_registry_comes_back_equal() {
        let registry = Registry::new();
        let bytes = encode(&registry).unwrap();
        assert_eq!(decode(&bytes).unwrap(), registry);
    }

    #[test]
    fn a_registry_of_objectives_comes_back_equal_and_with_interned_names() {
        let mut registry = Registry::new();
        registry
            .apply_all(&crate::objective::tests::history())
            .unwrap();
        let bytes = encode(&registry).unwrap();
        let back = decode(&bytes).unwrap();
        assert_eq!(back, registry);
        let (a, b) = (
            registry.objective("2022-2250-A").unwrap(),
            back.objective("2022-2250-A").unwrap(),
        );
        // Names come back interned: the very same strings.
        assert!(std::ptr::eq(
            a.phases()[0]
                .notes()
                .get(0)
                .unwrap()
                .recorded
                .actor
                .as_str(),
            b.phases()[0]
                .notes()
                .get(0)
                .unwrap()
                .recorded
                .actor
                .as_str()
        ));
        let at = chrono::NaiveDate::from_ymd_opt(2022, 12, 31).unwrap();
        assert_eq!(
            serde_json::to_string(&a.evaluate(at)).unwrap(),
            serde_json::to_string(&b.evaluate(at)).unwrap()
        );
    }

    /// How many of the registry's non-empty texts (definitions') and phases'
    /// notes are in the texts' file, and how many on the heap.
    fn placement(registry: &Registry) -> (usize, usize) {
        let on_disk = registry.objectives().flat_map(|o| {
            let t = o.texts();
            let notes = o
                .phases()
                .iter()
                .map(|p| p.notes())
                .filter(|n| !n.is_empty())
                .map(|n| n.is_on_disk());
            [&t.strategic_purpose, &t.directives, &t.expected_result]
                .into_iter()
                .filter(|t| !t.is_empty())
                .map(|t| t.is_on_disk())
                .chain(notes)
                .collect::<Vec<_>>()
        });
        on_disk.fold((0, 0), |(disk, heap), on_disk| {
            if on_disk {
                (disk + 1, heap)
            } else {
                (disk, heap + 1)
            }
        })
    }

    #[test]
    fn a_live_registry_keeps_its_texts_on_disk_and_equals_one_that_keeps_them_on_the_heap() {
        let history = crate::objective::tests::history();
        let mut heap = Registry::new();
        heap.apply_all(&history).unwrap();
        let mut live = Registry::new();
        live.keep_texts_on_disk();
        live.apply_all(&history).unwrap();
        let (on_disk, on_heap) = placement(&live);
        assert!(on_disk > 3, "{on_disk} texts on disk");
        assert_eq!(on_heap, 0);
        assert_eq!(placement(&heap).0, 0);
        assert_eq!(live, heap);
        let at = chrono::NaiveDate::from_ymd_opt(2022, 12, 31).unwrap();
        let key = "2022-2250-A";
        assert_eq!(
            serde_json::to_string(&live.objective(key).unwrap().evaluate(at)).unwrap(),
            serde_json::to_string(&heap.objective(key).unwrap().evaluate(at)).unwrap()
        );
        // Encoded alike; decoded for the live read model (on its decoding
        // threads too), the texts go to the file; else to the heap.
        let bytes = encode(&live).unwrap();
        assert_eq!(bytes, encode(&heap).unwrap());
        let back = crate::text::on_disk(|| decode(&bytes)).unwrap();
        assert_eq!(placement(&back), (on_disk, 0));
        assert_eq!(back, heap);
        assert_eq!(placement(&decode(&bytes).unwrap()), (0, on_disk));
    }

    #[test]
    fn bytes_fed_in_pieces_of_any_size_decode_as_the_whole() {
        let mut registry = Registry::new();
        registry
            .apply_all(&crate::objective::tests::history())
            .unwrap();
        let bytes = encode(&registry).unwrap();
        for piece in [1, 3, 8, 9, 100, bytes.len() - 1, bytes.len()] {
            let (fed, back) = decode_streamed(|feed| bytes.chunks(piece).map(feed).count());
            assert_eq!(fed, bytes.len().div_ceil(piece));
            assert_eq!(back.unwrap(), registry, "pieces of {piece} bytes");
        }
        // Cut anywhere, the bytes are not a registry.
        for cut in [0, 7, 8, 12, 16, 17, bytes.len() / 2, bytes.len() - 1] {
            let (_, back) = decode_streamed(|feed| feed(&bytes[..cut]));
            assert!(
                matches!(back, Err(SnapshotError::Decode(_))),
                "cut at {cut} of {}",
                bytes.len()
            );
        }
    }

    #[test]
    fn bytes_that_are_not_an_objective_are_refused() {
        for bytes in [&b""[..], b"\x93\x01\x02\x03", b"TGSNAP01"] {
            assert!(
                matches!(decode_objective(bytes), Err(SnapshotError::Decode(_))),
                "{bytes:?}"
            );
        }
    }

    #[test]
    fn bytes_that_are_not_a_registry_are_refused() {
        for bytes in [
            &b""[..],
            b"\x93\x01\x02\x03",
            b"TGSNAP01",
            b"TGSNAP02",
            b"TGSNAP03",
            b"TGSNAP05",
            b"TGSNAP05\xff\xff\xff\xff\xff\xff\xff\xff",
            b"TGSNAP05\x01\x00\x00\x00\x00\x00\x00\x00\xc1",
        ] {
            assert!(
                matches!(decode(bytes), Err(SnapshotError::Decode(_))),
                "{bytes:?}"
            );
        }
    }
}
