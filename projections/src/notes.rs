//! A phase's notes, packed into bytes where the read model keeps its texts.
//!
//! Every start, completion and retraction of a phase is a note: what it
//! records, its date, the manager's words, the evidence, who and when. Every
//! read of an objective answers them, and the scores need only two of their
//! dates. Folded as structures, they were most of what the live read model
//! kept on its heap once its texts had moved to the texts' file: 96 bytes per
//! note plus a vector per phase, ten notes per objective. [`Notes`] packs all
//! of a phase's notes into one run of bytes instead, kept where the thread
//! keeps texts ([`crate::text::on_disk`]): in the texts' file for the live read
//! model, on the heap for every other fold. A phase holds two words for them.
//! A read decodes them in place ([`Note`] borrows its texts from the bytes);
//! a new note is appended to them ([`crate::text`]'s `Bytes::extend`: in place
//! when they are the last bytes the thread wrote, else by copying them).
//!
//! A note's bytes, little-endian: kind (1), flags (1: date, text, backfill,
//! on behalf of), two zero bytes, the date as days from the year 1 (4), the
//! seq (8), the record time as seconds and nanoseconds (8 + 4), the actor, the
//! role and the actor's identity as the [`Name`]s they are (one word each),
//! then the evidence count, the text, each piece of evidence and the
//! backfill's act, reason and manager, as a LEB128 length and UTF-8 bytes.
//! Names are written as their values (interned, they live as long as the
//! process), so the bytes mean something only in the process that wrote them:
//! snapshots serialise the notes field by field, as the structures they were.

use std::fmt;
use std::mem::size_of;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use traguardo_events::model::Backfill;

use crate::name::Name;
use crate::objective::{NoteKind, Recorded};
use crate::text::Bytes;

/// A phase's notes, oldest first, packed: two words however many.
pub struct Notes(Bytes);

/// A note to add: what the fold read from its event.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewNote<'a> {
    pub kind: NoteKind,
    pub on: Option<NaiveDate>,
    pub text: Option<&'a str>,
    pub evidence: &'a [String],
    pub backfill: Option<&'a Backfill>,
    pub recorded: Recorded,
    pub actor_id: Name,
}

/// A note of a phase, read from its bytes: a justification the manager gave,
/// with who and when. The Nucleo decides a *sterilizzazione* on these, and the
/// Relazione explains every *scostamento* with them.
///
/// Serialised as the snapshots hold it: the fields of the structure the notes
/// were before they were packed, in its order (the API answers a
/// [`NoteView`](crate::objective::NoteView)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Note<'a> {
    /// What it records.
    pub kind: NoteKind,
    /// The valid date of the fact (none for a retraction).
    #[serde(with = "crate::name::days::opt")]
    pub on: Option<NaiveDate>,
    /// The note, or the reason of a retraction.
    pub text: Option<&'a str>,
    /// Evidence references (completions).
    pub evidence: Evidence<'a>,
    /// Loaded after the fact (*caricamento storico*).
    pub backfill: Option<BackfillRef<'a>>,
    /// Who and when.
    pub recorded: Recorded,
    /// The stable identity of who recorded it: the event's `actor_id`, else the
    /// identity of its display name.
    #[serde(with = "crate::name::packed")]
    pub actor_id: Name,
}

impl Note<'_> {
    /// Whether the note is shown at `at`: its fact's date is on or before it, or,
    /// for a retraction, the Italian date it was recorded on.
    pub fn shown_at(&self, at: NaiveDate) -> bool {
        match self.on {
            Some(on) => on <= at,
            None => traguardo_events::clock::local_date(&self.recorded.recorded_at) <= at,
        }
    }
}

/// A note's evidence references, read from its bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Evidence<'a> {
    count: usize,
    /// Each reference as a length and its bytes.
    bytes: &'a [u8],
}

impl<'a> Evidence<'a> {
    /// None.
    pub const NONE: Evidence<'static> = Evidence {
        count: 0,
        bytes: &[],
    };

    /// How many.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Each reference, in the order given.
    pub fn iter(&self) -> EvidenceIter<'a> {
        EvidenceIter {
            left: self.count,
            bytes: self.bytes,
        }
    }
}

impl<'a> IntoIterator for Evidence<'a> {
    type Item = &'a str;
    type IntoIter = EvidenceIter<'a>;

    fn into_iter(self) -> EvidenceIter<'a> {
        self.iter()
    }
}

impl fmt::Debug for Evidence<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl Serialize for Evidence<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

/// The evidence references of a note, one by one.
#[derive(Debug, Clone)]
pub struct EvidenceIter<'a> {
    left: usize,
    bytes: &'a [u8],
}

impl<'a> Iterator for EvidenceIter<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let mut reader = Reader { bytes: self.bytes };
        let reference = reader.text()?;
        self.bytes = reader.bytes;
        Some(reference)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for EvidenceIter<'_> {}

/// A backfill (*caricamento storico*) as a note holds it: serialises as a
/// [`Backfill`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename = "Backfill")]
pub struct BackfillRef<'a> {
    /// The act that orders the loading.
    pub act: &'a str,
    /// Why the entry is loaded now.
    pub reason: &'a str,
    /// The manager the entry is loaded for, when it is not the one of the unit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<&'a str>,
}

impl BackfillRef<'_> {
    /// As the event recorded it.
    pub fn to_backfill(&self) -> Backfill {
        Backfill {
            act: self.act.to_string(),
            reason: self.reason.to_string(),
            on_behalf_of: self.on_behalf_of.map(str::to_string),
        }
    }
}

const HAS_ON: u8 = 1;
const HAS_TEXT: u8 = 2;
const HAS_BACKFILL: u8 = 4;
const HAS_ON_BEHALF: u8 = 8;

/// Where each fixed field of a note starts.
const ON: usize = 4;
const SEQ: usize = 8;
const SECS: usize = 16;
const NANOS: usize = 24;
const ACTOR: usize = 28;
const ROLE: usize = ACTOR + size_of::<Name>();
const ACTOR_ID: usize = ROLE + size_of::<Name>();
/// The fixed part of a note.
const FIXED: usize = ACTOR_ID + size_of::<Name>();

impl Notes {
    /// How many: counted by skipping over each note, without reading it.
    pub fn len(&self) -> usize {
        let mut reader = Reader {
            bytes: self.0.as_bytes(),
        };
        let mut count = 0;
        while reader.skip().is_some() {
            count += 1;
        }
        count
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.as_bytes().is_empty()
    }

    /// Each note, oldest first.
    pub fn iter(&self) -> NotesIter<'_> {
        NotesIter {
            reader: Reader {
                bytes: self.0.as_bytes(),
            },
        }
    }

    /// The note at `index` (0 is the oldest): the notes before it are
    /// skipped over, not read.
    pub fn get(&self, index: usize) -> Option<Note<'_>> {
        let mut reader = Reader {
            bytes: self.0.as_bytes(),
        };
        for _ in 0..index {
            reader.skip()?;
        }
        reader.note()
    }

    /// Whether the notes are in the texts' file (not on the heap): empty
    /// notes are nowhere, and on the heap.
    pub fn is_on_disk(&self) -> bool {
        self.0.is_on_disk()
    }

    /// The bytes of the notes on the heap (0 for notes in the texts' file,
    /// or none).
    pub fn heap_bytes(&self) -> usize {
        if self.0.is_on_disk() {
            0
        } else {
            self.0.as_bytes().len()
        }
    }

    /// Adds `note` after the others; its index.
    pub(crate) fn push(&mut self, note: NewNote<'_>) -> usize {
        let index = self.len();
        let mut bytes = Vec::with_capacity(FIXED + 64);
        write(&mut bytes, &note);
        self.0.extend(&bytes);
        index
    }
}

/// Appends `note`'s bytes: the only writer of a note's bytes, which
/// [`Reader::note`] trusts.
fn write(bytes: &mut Vec<u8>, note: &NewNote<'_>) {
    let mut flags = 0;
    for (set, flag) in [
        (note.on.is_some(), HAS_ON),
        (note.text.is_some(), HAS_TEXT),
        (note.backfill.is_some(), HAS_BACKFILL),
        (
            note.backfill.is_some_and(|b| b.on_behalf_of.is_some()),
            HAS_ON_BEHALF,
        ),
    ] {
        if set {
            flags |= flag;
        }
    }
    bytes.extend_from_slice(&[kind_byte(note.kind), flags, 0, 0]);
    let day = note.on.map_or(0, |on| on.num_days_from_ce());
    bytes.extend_from_slice(&day.to_le_bytes());
    bytes.extend_from_slice(&note.recorded.seq.to_le_bytes());
    let at = note.recorded.recorded_at;
    bytes.extend_from_slice(&at.timestamp().to_le_bytes());
    bytes.extend_from_slice(&at.timestamp_subsec_nanos().to_le_bytes());
    for name in [note.recorded.actor, note.recorded.role, note.actor_id] {
        let start = bytes.len();
        bytes.resize(start + size_of::<Name>(), 0);
        // SAFETY: `start..start + size_of::<Name>()` was just made part of
        // `bytes`; the write is unaligned, and a `Name` is `Copy` (nothing to
        // drop, nothing owned: its string is interned for the process).
        unsafe {
            std::ptr::write_unaligned(bytes.as_mut_ptr().add(start).cast::<Name>(), name);
        }
    }
    write_len(bytes, note.evidence.len());
    if let Some(text) = note.text {
        write_text(bytes, text);
    }
    for reference in note.evidence {
        write_text(bytes, reference);
    }
    if let Some(backfill) = note.backfill {
        write_text(bytes, &backfill.act);
        write_text(bytes, &backfill.reason);
        if let Some(manager) = &backfill.on_behalf_of {
            write_text(bytes, manager);
        }
    }
}

fn kind_byte(kind: NoteKind) -> u8 {
    match kind {
        NoteKind::Start => 0,
        NoteKind::Completion => 1,
        NoteKind::Retraction => 2,
    }
}

fn write_len(bytes: &mut Vec<u8>, len: usize) {
    let mut left = len as u64;
    loop {
        let low = (left & 0x7f) as u8;
        left >>= 7;
        if left == 0 {
            bytes.push(low);
            return;
        }
        bytes.push(low | 0x80);
    }
}

fn write_text(bytes: &mut Vec<u8>, text: &str) {
    write_len(bytes, text.len());
    bytes.extend_from_slice(text.as_bytes());
}

/// Reads notes' bytes from the front.
#[derive(Clone)]
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        let (taken, rest) = self.bytes.split_at_checked(len)?;
        self.bytes = rest;
        Some(taken)
    }

    fn len(&mut self) -> Option<usize> {
        let mut len = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = self.bytes.split_first()?;
            self.bytes = rest;
            len |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return usize::try_from(len).ok();
            }
        }
        None
    }

    fn skip_text(&mut self) -> Option<()> {
        let len = self.len()?;
        self.take(len).map(drop)
    }

    /// Moves past the next note without reading it: `None` at the end.
    fn skip(&mut self) -> Option<()> {
        let flags = self.take(FIXED)?[1];
        let count = self.len()?;
        let texts = usize::from(flags & HAS_TEXT != 0)
            + count
            + if flags & HAS_BACKFILL != 0 { 2 } else { 0 }
            + usize::from(flags & HAS_ON_BEHALF != 0);
        for _ in 0..texts {
            self.skip_text()?;
        }
        Some(())
    }

    fn text(&mut self) -> Option<&'a str> {
        let len = self.len()?;
        let bytes = self.take(len)?;
        // SAFETY: notes' bytes are only written by `write`, which wrote here
        // the bytes of a `str` after their length.
        Some(unsafe { std::str::from_utf8_unchecked(bytes) })
    }

    /// The next note, if any: `None` at the end.
    fn note(&mut self) -> Option<Note<'a>> {
        let fixed = self.take(FIXED)?;
        let kind = match fixed[0] {
            0 => NoteKind::Start,
            1 => NoteKind::Completion,
            _ => NoteKind::Retraction,
        };
        let flags = fixed[1];
        let on = if flags & HAS_ON != 0 {
            NaiveDate::from_num_days_from_ce_opt(i32::from_le_bytes(array(fixed, ON)?))
        } else {
            None
        };
        let seq = u64::from_le_bytes(array(fixed, SEQ)?);
        let recorded_at = DateTime::<Utc>::from_timestamp(
            i64::from_le_bytes(array(fixed, SECS)?),
            u32::from_le_bytes(array(fixed, NANOS)?),
        )?;
        let name = |at: usize| -> Option<Name> {
            let field = fixed.get(at..at + size_of::<Name>())?;
            // SAFETY: notes' bytes are only written by `write`, which wrote a
            // `Name` here (unaligned, so read unaligned); a `Name` is `Copy`,
            // and its string lives as long as the process.
            Some(unsafe { std::ptr::read_unaligned(field.as_ptr().cast::<Name>()) })
        };
        let recorded = Recorded {
            actor: name(ACTOR)?,
            role: name(ROLE)?,
            recorded_at,
            seq,
        };
        let actor_id = name(ACTOR_ID)?;
        let count = self.len()?;
        let text = if flags & HAS_TEXT != 0 {
            Some(self.text()?)
        } else {
            None
        };
        let evidence_start = self.bytes;
        for _ in 0..count {
            self.skip_text()?;
        }
        let evidence = Evidence {
            count,
            bytes: &evidence_start[..evidence_start.len() - self.bytes.len()],
        };
        let backfill = if flags & HAS_BACKFILL != 0 {
            Some(BackfillRef {
                act: self.text()?,
                reason: self.text()?,
                on_behalf_of: if flags & HAS_ON_BEHALF != 0 {
                    Some(self.text()?)
                } else {
                    None
                },
            })
        } else {
            None
        };
        Some(Note {
            kind,
            on,
            text,
            evidence,
            backfill,
            recorded,
            actor_id,
        })
    }
}

fn array<const N: usize>(bytes: &[u8], at: usize) -> Option<[u8; N]> {
    bytes.get(at..at + N)?.try_into().ok()
}

/// A phase's notes, oldest first.
#[derive(Clone)]
pub struct NotesIter<'a> {
    reader: Reader<'a>,
}

impl<'a> Iterator for NotesIter<'a> {
    type Item = Note<'a>;

    fn next(&mut self) -> Option<Note<'a>> {
        self.reader.note()
    }
}

impl Default for Notes {
    fn default() -> Self {
        Notes(Bytes::new(&[]))
    }
}

impl Clone for Notes {
    fn clone(&self) -> Self {
        Notes(self.0.clone())
    }
}

/// Equal notes are equal bytes: the encoding has one form, and equal names are
/// the same interned value.
impl PartialEq for Notes {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes() == other.0.as_bytes()
    }
}

impl Eq for Notes {}

impl fmt::Debug for Notes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

/// A [`Note`] as serialised, read back.
#[derive(Deserialize)]
struct NoteIn {
    kind: NoteKind,
    #[serde(with = "crate::name::days::opt")]
    on: Option<NaiveDate>,
    text: Option<String>,
    evidence: Vec<String>,
    backfill: Option<Backfill>,
    recorded: Recorded,
    #[serde(with = "crate::name::packed")]
    actor_id: Name,
}

impl Serialize for Notes {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

/// Written at once: one run of bytes for all the notes read.
impl<'de> Deserialize<'de> for Notes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut bytes = Vec::new();
        for n in Vec::<NoteIn>::deserialize(d)? {
            write(
                &mut bytes,
                &NewNote {
                    kind: n.kind,
                    on: n.on,
                    text: n.text.as_deref(),
                    evidence: &n.evidence,
                    backfill: n.backfill.as_ref(),
                    recorded: n.recorded,
                    actor_id: n.actor_id,
                },
            );
        }
        Ok(Notes(Bytes::new(&bytes)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::name;

    fn recorded(seq: u64) -> Recorded {
        Recorded {
            actor: name("Dott. Stefano Specchia"),
            role: name("manager"),
            recorded_at: DateTime::from_timestamp(1_650_000_000, 123_456_789).unwrap(),
            seq,
        }
    }

    fn date(d: &str) -> NaiveDate {
        d.parse().unwrap()
    }

    fn sample() -> (Vec<String>, Backfill) {
        (
            vec![
                "Prot. n. 12345 del 01/03/2022".into(),
                "Delibera G.C. n. 7".into(),
            ],
            Backfill {
                act: "Determinazione n. 12".into(),
                reason: "dati dal vecchio foglio".into(),
                on_behalf_of: Some("Dott.ssa Rossi".into()),
            },
        )
    }

    #[test]
    fn notes_read_back_as_written_whatever_their_fields() {
        let (evidence, backfill) = sample();
        let no_evidence: [String; 0] = [];
        let mut notes = Notes::default();
        assert!(notes.is_empty());
        assert_eq!(notes.len(), 0);
        let first = notes.push(NewNote {
            kind: NoteKind::Start,
            on: Some(date("2022-02-01")),
            text: Some("avviata con la Giunta — è così"),
            evidence: &no_evidence,
            backfill: None,
            recorded: recorded(7),
            actor_id: name("dott. stefano specchia"),
        });
        let second = notes.push(NewNote {
            kind: NoteKind::Completion,
            on: Some(date("2022-03-01")),
            text: None,
            evidence: &evidence,
            backfill: Some(&backfill),
            recorded: recorded(9),
            actor_id: name("specchia"),
        });
        let third = notes.push(NewNote {
            kind: NoteKind::Retraction,
            on: None,
            text: Some(""),
            evidence: &no_evidence,
            backfill: Some(&Backfill {
                on_behalf_of: None,
                ..backfill.clone()
            }),
            recorded: recorded(u64::MAX),
            actor_id: name("specchia"),
        });
        assert_eq!((first, second, third), (0, 1, 2));
        assert_eq!(notes.len(), 3);

        let read: Vec<Note<'_>> = notes.iter().collect();
        assert_eq!(read[0].kind, NoteKind::Start);
        assert_eq!(read[0].on, Some(date("2022-02-01")));
        assert_eq!(read[0].text, Some("avviata con la Giunta — è così"));
        assert!(read[0].evidence.is_empty());
        assert_eq!(read[0].backfill, None);
        assert_eq!(read[0].recorded, recorded(7));
        assert_eq!(read[0].actor_id, name("dott. stefano specchia"));

        assert_eq!(read[1].text, None);
        assert_eq!(read[1].evidence.len(), 2);
        assert_eq!(read[1].evidence.iter().collect::<Vec<_>>(), evidence);
        assert_eq!(read[1].backfill.unwrap().to_backfill(), backfill);
        assert_eq!(read[1].recorded.seq, 9);

        assert_eq!(read[2].on, None);
        assert_eq!(read[2].text, Some(""));
        assert_eq!(read[2].recorded.seq, u64::MAX);
        assert_eq!(read[2].backfill.unwrap().on_behalf_of, None);
        // Reached by skipping over the notes before, whatever they hold.
        assert_eq!(notes.get(1), Some(read[1]));
        assert_eq!(notes.get(2), Some(read[2]));
        assert_eq!(notes.get(3), None);
    }

    #[test]
    fn long_texts_and_many_references_keep_their_lengths() {
        let long = "è".repeat(70_000);
        let evidence: Vec<String> = (0..300).map(|i| format!("prot. {i}")).collect();
        let mut notes = Notes::default();
        notes.push(NewNote {
            kind: NoteKind::Completion,
            on: Some(date("2022-12-31")),
            text: Some(&long),
            evidence: &evidence,
            backfill: None,
            recorded: recorded(1),
            actor_id: name("x"),
        });
        let note = notes.get(0).unwrap();
        assert_eq!(note.text, Some(long.as_str()));
        assert_eq!(note.evidence.iter().collect::<Vec<_>>(), evidence);
    }

    #[test]
    fn notes_go_through_serde_as_the_fields_they_hold_and_compare_by_them() {
        let (evidence, backfill) = sample();
        let mut notes = Notes::default();
        for seq in 1..=3 {
            notes.push(NewNote {
                kind: NoteKind::Completion,
                on: Some(date("2022-03-01")),
                text: Some("ok"),
                evidence: &evidence,
                backfill: (seq == 2).then_some(&backfill),
                recorded: recorded(seq),
                actor_id: name("specchia"),
            });
        }
        let json = serde_json::to_value(&notes).unwrap();
        assert_eq!(json[1]["evidence"][1], "Delibera G.C. n. 7");
        assert_eq!(json[1]["backfill"]["on_behalf_of"], "Dott.ssa Rossi");
        assert_eq!(json[2]["recorded"]["seq"], 3);
        let back: Notes = serde_json::from_value(json).unwrap();
        assert_eq!(back, notes);
        let packed: Notes = rmp_serde::from_slice(&rmp_serde::to_vec(&notes).unwrap()).unwrap();
        assert_eq!(packed, notes);
        let mut other = notes.clone();
        assert_eq!(other, notes);
        other.push(NewNote {
            kind: NoteKind::Retraction,
            on: None,
            text: Some("errata"),
            evidence: &[],
            backfill: None,
            recorded: recorded(4),
            actor_id: name("specchia"),
        });
        assert_ne!(other, notes);
    }

    #[test]
    fn inside_on_disk_notes_are_kept_in_the_file_and_read_back_equal() {
        let (evidence, _) = sample();
        let note = NewNote {
            kind: NoteKind::Completion,
            on: Some(date("2022-03-01")),
            text: Some("relazione trasmessa"),
            evidence: &evidence,
            backfill: None,
            recorded: recorded(5),
            actor_id: name("specchia"),
        };
        let mut on_heap = Notes::default();
        on_heap.push(note);
        let mut on_disk = Notes::default();
        crate::text::on_disk(|| on_disk.push(note));
        assert!(!on_heap.is_on_disk());
        assert!(on_disk.is_on_disk());
        assert_eq!(on_disk, on_heap);
        assert_eq!(on_disk.get(0), on_heap.get(0));
    }
}
