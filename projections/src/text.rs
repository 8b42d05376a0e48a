//! The read model's free texts (managers' notes, descriptions, titles,
//! evidence), kept in a file rather than on the heap.
//!
//! Most of a large read model's memory was those texts: the log's own words,
//! which every read of an objective answers, each a heap allocation resident
//! for the life of the process. The live read model (a [`crate::Registry`]
//! marked by [`crate::Registry::keep_texts_on_disk`]) writes them instead into
//! one append-only file without a name, mapped into memory: next to the SQLite
//! database when the application says where ([`keep_in`]), else in the
//! temporary directory. The kernel keeps in its page cache the pages that reads
//! use, and may drop the others under memory pressure to read them back from
//! disk when they are asked for again; on the heap, they could never leave. A
//! [`Text`] so kept is a pointer into the mapping and a length: 16 bytes like
//! a boxed `str`, and no allocation.
//!
//! The file only grows: it holds every text the live read model kept (a read
//! model rebuilt in the same process writes its texts again), and it goes with
//! the process, having no name. Texts of short-lived folds (time travel,
//! reports, a year's registry) stay on the heap and are freed with them: a
//! thread keeps texts on disk only inside [`on_disk`]. When the file cannot be
//! made, mapped or grown (no space left on the device), texts stay on the heap,
//! with one warning: a fold never fails for want of it.
//!
//! Space is claimed with `fallocate` before it is written, so a full disk is an
//! error here and never a fault on a write to the mapping.

use std::cell::Cell;
use std::fmt;
use std::fs::File;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use memmap2::{MmapOptions, MmapRaw};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A free text: on the heap, or in the texts' file. Two words, like the boxed
/// `str` it replaces, and an `Option` of it too (the pointer is never null).
pub struct Text(Bytes);

/// Bytes kept where the thread keeps texts ([`on_disk`]): the storage of a
/// [`Text`], and of what the read model packs into bytes of its own (a phase's
/// notes, [`crate::notes`]). Two words.
///
/// On the heap they are an `Arc<[u8]>`, shared by their clones: a clone of a
/// folded objective (time travel clones one at every read) copies no text.
pub(crate) struct Bytes {
    /// The first byte: of an `Arc<[u8]>` these bytes hold a count of, or in
    /// the mapping of the texts' file (which lives as long as the process).
    ptr: NonNull<u8>,
    /// The length, with [`OWNED`] set when `ptr` is the data of an
    /// `Arc<[u8]>` (released when these bytes are dropped).
    len: usize,
}

/// The bit of [`Bytes::len`] that says the bytes are on the heap, counted.
const OWNED: usize = 1 << (usize::BITS - 1);

// SAFETY: `Bytes` are either a counted `Arc<[u8]>` (Send and Sync) or a shared
// reference to bytes that are never written again and never unmapped (a
// `&'static [u8]`, Send and Sync); they have no interior mutability.
unsafe impl Send for Bytes {}
// SAFETY: as above.
unsafe impl Sync for Bytes {}

/// The longest text kept in the file: longer ones stay on the heap.
const MAX_LEN: usize = u32::MAX as usize;

/// The address space mapped for the file, the first that the system grants
/// (a limit on the address space, `ulimit -v`, may refuse the larger): never
/// all of it resident, nor written; a text past it stays on the heap.
const RESERVED: [u64; 3] = [1 << 38, 1 << 34, 1 << 30];
/// The file is grown (its blocks allocated) by this much at a time.
const GROW: u64 = 32 << 20;
/// Each thread takes space in blocks of this, to write without a lock.
const BLOCK: u64 = 256 << 10;

/// Where the file is made, when the application said.
static DIR: OnceLock<PathBuf> = OnceLock::new();
/// The file, once a text was first kept (`None`: it could not be made).
static FILE: OnceLock<Option<TextFile>> = OnceLock::new();
/// Bytes of texts written to the file so far.
static WRITTEN: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Whether texts made on this thread go to the file.
    static ON_DISK: Cell<bool> = const { Cell::new(false) };
    /// This thread's block of the file: next free byte, end.
    static SPACE: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

struct TextFile {
    map: MmapRaw,
    // Kept open for `fallocate`; the mapping outlives nothing: both are static.
    file: File,
    space: Mutex<Space>,
}

struct Space {
    /// The next byte not handed to a thread.
    next: u64,
    /// Bytes allocated to the file.
    allocated: u64,
    /// Bytes mapped: the file never grows past them.
    reserved: u64,
    /// The file cannot grow any more: texts stay on the heap.
    full: bool,
}

/// Makes the texts' file in `dir` (the database's directory), if no text was
/// kept on disk yet in this process; else it changes nothing.
pub fn keep_in(dir: &Path) {
    let _ = DIR.set(dir.to_path_buf());
}

/// Runs `f` with the texts made on this thread kept in the file (when it can
/// be); what it returns may hold them.
pub fn on_disk<R>(f: impl FnOnce() -> R) -> R {
    on_disk_if(true, f)
}

/// Runs `f` with texts made on this thread kept in the file when `keep`, on
/// the heap otherwise: how a thread that works for another passes its choice.
pub fn on_disk_if<R>(keep: bool, f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            ON_DISK.with(|on| on.set(self.0));
        }
    }
    let _restore = Restore(ON_DISK.with(|on| on.replace(keep)));
    f()
}

/// Whether texts made on this thread now go to the file.
pub fn kept_on_disk() -> bool {
    ON_DISK.with(Cell::get)
}

/// Bytes of texts written to the file by this process.
pub fn bytes_on_disk() -> u64 {
    WRITTEN.load(Ordering::Relaxed)
}

impl Bytes {
    /// `bytes` kept in the file when this thread keeps texts on disk and the
    /// file can take them, else copied to the heap.
    pub(crate) fn new(bytes: &[u8]) -> Bytes {
        Bytes::keep(bytes).unwrap_or_else(|| Bytes::owned(Arc::from(bytes)))
    }

    /// Appends `more`: in place when these bytes are the last this thread
    /// wrote to the file and its block has room for `more` (as a phase's notes
    /// usually are when its next note comes: a replay writes an objective's
    /// events one after the other), else by copying both where the thread
    /// keeps texts. Whoever holds a clone of the bytes before keeps reading
    /// them as they were: bytes written to the file never change.
    pub(crate) fn extend(&mut self, more: &[u8]) {
        let len = self.as_bytes().len();
        if more.is_empty() {
            return;
        }
        let in_place = self.is_on_disk()
            && len + more.len() <= MAX_LEN
            && kept_on_disk()
            && FILE
                .get()
                .and_then(Option::as_ref)
                .is_some_and(|file| file.extend(self.ptr, len, more));
        if in_place {
            self.len += more.len();
            return;
        }
        // Else both are copied, once, where the thread keeps texts (clones
        // taken before keep the old bytes).
        let old = self.as_bytes();
        let grown = if kept_on_disk() {
            Bytes::keep(&[old, more].concat())
        } else {
            None
        };
        // (Collected from an iterator of known length: one allocation.)
        *self = grown.unwrap_or_else(|| Bytes::owned(old.iter().chain(more).copied().collect()));
    }

    /// Whether the bytes are in the file (not on the heap).
    pub(crate) fn is_on_disk(&self) -> bool {
        self.len & OWNED == 0
    }

    /// The bytes.
    pub(crate) fn as_bytes(&self) -> &[u8] {
        // SAFETY: `ptr` and the length are those of an `Arc<[u8]>` these bytes
        // hold a count of (`Bytes::owned`), released only when dropped, or of bytes copied
        // into the texts' file (`TextFile::keep`), whose mapping is never
        // unmapped (it lives in a static) and whose bytes are never written
        // again (space is handed out once) nor by another process (the file
        // has no name). The bytes were handed to this thread by whatever
        // published them (a lock, a channel, a join), which orders the copy
        // before this read.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len & !OWNED) }
    }

    /// Bytes that hold `bytes`' count.
    fn owned(bytes: Arc<[u8]>) -> Bytes {
        let len = bytes.len();
        let ptr = Arc::into_raw(bytes).cast::<u8>().cast_mut();
        Bytes {
            // SAFETY: `Arc::into_raw` never returns null.
            ptr: unsafe { NonNull::new_unchecked(ptr) },
            len: len | OWNED,
        }
    }

    /// The `Arc<[u8]>` behind bytes on the heap, as a raw slice pointer.
    fn counted(&self) -> *const [u8] {
        std::ptr::slice_from_raw_parts(self.ptr.as_ptr().cast_const(), self.len & !OWNED)
    }

    /// `bytes` copied into the file, when this thread keeps texts on disk and
    /// the file can take them.
    fn keep(bytes: &[u8]) -> Option<Bytes> {
        if bytes.is_empty() || bytes.len() > MAX_LEN || !kept_on_disk() {
            return None;
        }
        let file = FILE.get_or_init(TextFile::open).as_ref()?;
        let ptr = file.keep(bytes)?;
        Some(Bytes {
            ptr,
            len: bytes.len(),
        })
    }
}

impl Drop for Bytes {
    fn drop(&mut self) {
        if !self.is_on_disk() {
            // SAFETY: `ptr` and the length are those of the `Arc<[u8]>` that
            // `Bytes::owned` turned into a raw pointer; these bytes hold one
            // count of it (theirs, or the one their clone took), released once.
            drop(unsafe { Arc::from_raw(self.counted()) });
        }
    }
}

impl Clone for Bytes {
    fn clone(&self) -> Self {
        if !self.is_on_disk() {
            // SAFETY: the pointer is that of an `Arc<[u8]>` made by
            // `Bytes::owned`, alive while these bytes hold their count; the
            // clone holds the one taken here, released when it is dropped.
            unsafe { Arc::increment_strong_count(self.counted()) };
        }
        Bytes {
            ptr: self.ptr,
            len: self.len,
        }
    }
}

impl Text {
    /// Whether this text is in the file (not on the heap).
    pub fn is_on_disk(&self) -> bool {
        self.0.is_on_disk()
    }

    /// The text as a `str`.
    pub fn as_str(&self) -> &str {
        // SAFETY: a text's bytes are only ever made from a `str`
        // (`From<&str>`, `From<String>`), and never written again.
        unsafe { std::str::from_utf8_unchecked(self.0.as_bytes()) }
    }
}

impl Clone for Text {
    fn clone(&self) -> Self {
        Text(self.0.clone())
    }
}

impl TextFile {
    /// The file in the directory the application named, else (or when it
    /// cannot be made there) in the temporary directory.
    fn open() -> Option<TextFile> {
        let temp = std::env::temp_dir();
        let dirs = DIR.get().into_iter().chain([&temp]);
        for dir in dirs {
            match Self::create(dir) {
                Ok(file) => {
                    tracing::info!(dir = %dir.display(), "the read model's texts are kept in a file");
                    return Some(file);
                }
                Err(e) => tracing::warn!(
                    dir = %dir.display(),
                    error = %e,
                    "cannot keep the read model's texts in a file there"
                ),
            }
        }
        tracing::warn!("the read model's texts stay in memory");
        None
    }

    /// A file without a name in `dir`, mapped, its first stretch allocated
    /// (a file system without `fallocate` is refused here, not at a write).
    fn create(dir: &Path) -> std::io::Result<TextFile> {
        let file = tempfile::tempfile_in(dir)?;
        let mut mapped = Err(std::io::Error::other("no size to map"));
        for reserved in RESERVED {
            let len = usize::try_from(reserved).map_err(std::io::Error::other)?;
            mapped = MmapOptions::new()
                .len(len)
                .map_raw(&file)
                .map(|map| (map, reserved));
            if mapped.is_ok() {
                break;
            }
        }
        let (map, reserved) = mapped?;
        let text_file = TextFile {
            map,
            file,
            space: Mutex::new(Space {
                next: 0,
                allocated: 0,
                reserved,
                full: false,
            }),
        };
        text_file.grow_to(GROW)?;
        Ok(text_file)
    }

    /// Allocates the file's blocks up to `end`, from those already allocated.
    fn grow_to(&self, end: u64) -> std::io::Result<()> {
        let mut space = self.space.lock().unwrap_or_else(PoisonError::into_inner);
        Self::grow(&self.file, &mut space, end)
    }

    fn grow(file: &File, space: &mut Space, end: u64) -> std::io::Result<()> {
        let grown = end.div_ceil(GROW) * GROW;
        if grown > space.reserved {
            return Err(std::io::Error::other("the texts' file reached its mapping"));
        }
        if grown > space.allocated {
            rustix::fs::fallocate(
                file,
                rustix::fs::FallocateFlags::empty(),
                space.allocated,
                grown - space.allocated,
            )?;
            space.allocated = grown;
        }
        Ok(())
    }

    /// Copies `text` into the file: where its copy starts, or `None` when the
    /// file is full.
    fn keep(&self, text: &[u8]) -> Option<NonNull<u8>> {
        let len = text.len() as u64;
        let offset = SPACE.with(|space| {
            let (next, end) = space.get();
            if end - next >= len {
                space.set((next + len, end));
                return Some(next);
            }
            let size = len.max(BLOCK);
            let start = self.claim(size)?;
            space.set((start + len, start + size));
            Some(start)
        })?;
        let at = usize::try_from(offset).ok()?;
        // SAFETY: `[offset, offset + len)` lies in space claimed for this
        // thread alone (`claim` hands each byte out once, and it is allocated
        // to the file and inside the mapping), so nothing else reads or writes
        // it until the `Text` made from it is handed over.
        let start = unsafe {
            let start = self.map.as_mut_ptr().add(at);
            std::ptr::copy_nonoverlapping(text.as_ptr(), start, text.len());
            start
        };
        WRITTEN.fetch_add(len, Ordering::Relaxed);
        NonNull::new(start)
    }

    /// Writes `more` right after the `len` bytes at `start`, when they end
    /// where this thread's block of the file is next written and the block
    /// has room: whether it did.
    fn extend(&self, start: NonNull<u8>, len: usize, more: &[u8]) -> bool {
        let base = self.map.as_mut_ptr() as usize;
        let Some(offset) = (start.as_ptr() as usize).checked_sub(base) else {
            return false;
        };
        let ends_at = (offset + len) as u64;
        let extra = more.len() as u64;
        SPACE.with(|space| {
            let (next, end) = space.get();
            if next != ends_at || end - next < extra {
                return false;
            }
            let Ok(at) = usize::try_from(next) else {
                return false;
            };
            // SAFETY: `[next, next + extra)` lies in this thread's block,
            // claimed for it alone and not handed out yet (`keep` hands out
            // from `next` on), so nothing else reads or writes it; the bytes
            // before it are not written.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    more.as_ptr(),
                    self.map.as_mut_ptr().add(at),
                    more.len(),
                );
            }
            space.set((next + extra, end));
            WRITTEN.fetch_add(extra, Ordering::Relaxed);
            true
        })
    }

    /// `size` bytes of the file for one thread, allocated first.
    fn claim(&self, size: u64) -> Option<u64> {
        let mut space = self.space.lock().unwrap_or_else(PoisonError::into_inner);
        if space.full {
            return None;
        }
        let end = space.next + size;
        if let Err(e) = Self::grow(&self.file, &mut space, end) {
            tracing::warn!(error = %e, "the read model's texts' file cannot grow; new texts stay in memory");
            space.full = true;
            return None;
        }
        let start = space.next;
        space.next = end;
        Some(start)
    }
}

impl Deref for Text {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl From<&str> for Text {
    fn from(text: &str) -> Self {
        Text(Bytes::new(text.as_bytes()))
    }
}

impl From<String> for Text {
    fn from(text: String) -> Self {
        let bytes = text.as_bytes();
        Text(Bytes::keep(bytes).unwrap_or_else(|| Bytes::owned(Arc::from(bytes))))
    }
}

impl PartialEq for Text {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Text {}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Text {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = Text;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Text, E> {
                Ok(Text::from(text))
            }

            fn visit_string<E: serde::de::Error>(self, text: String) -> Result<Text, E> {
                Ok(Text::from(text))
            }
        }
        deserializer.deserialize_str(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_takes_two_words_wherever_it_is() {
        assert_eq!(
            std::mem::size_of::<Text>(),
            2 * std::mem::size_of::<usize>()
        );
    }

    #[test]
    fn outside_on_disk_a_text_stays_on_the_heap() {
        let text = Text::from("Avviata la ricognizione");
        assert!(!text.is_on_disk());
        assert_eq!(&*text, "Avviata la ricognizione");
    }

    #[test]
    fn a_clone_on_the_heap_shares_the_bytes_and_outlives_the_original() {
        let text = Text::from(String::from("Rilevazione dal gestionale"));
        let clone = text.clone();
        assert!(!clone.is_on_disk());
        assert_eq!(
            clone.as_str().as_ptr(),
            text.as_str().as_ptr(),
            "not copied"
        );
        let mut grown = clone.0.clone();
        drop(text);
        assert_eq!(clone.as_str(), "Rilevazione dal gestionale");
        // Extending one holder copies; the others read the bytes as they were.
        grown.extend(b" (ufficio tributi)");
        assert_eq!(
            grown.as_bytes(),
            b"Rilevazione dal gestionale (ufficio tributi)"
        );
        assert_ne!(grown.as_bytes().as_ptr(), clone.as_str().as_ptr());
        assert_eq!(clone.as_str(), "Rilevazione dal gestionale");
        drop(clone);
        assert_eq!(grown.as_bytes().len(), 44);
    }

    #[test]
    fn inside_on_disk_a_text_is_kept_in_the_file_and_reads_back_equal() {
        let texts: Vec<String> = (0..2_000)
            .map(|i| {
                format!(
                    "Nota n. {i}: attività «conclusa» — verifica {}",
                    "è".repeat(i % 97)
                )
            })
            .collect();
        let kept: Vec<Text> = on_disk(|| texts.iter().map(|t| Text::from(t.as_str())).collect());
        assert!(kept.iter().all(Text::is_on_disk));
        assert!(!kept_on_disk(), "on_disk restores the thread's choice");
        for (text, original) in kept.iter().zip(&texts) {
            assert_eq!(text.as_str(), original);
        }
        assert!(bytes_on_disk() >= texts.iter().map(|t| t.len() as u64).sum::<u64>());
        // Equal to the same text on the heap, and cloned as a handle.
        assert_eq!(kept[7], Text::from(texts[7].as_str()));
        let clone = kept[7].clone();
        assert!(clone.is_on_disk());
        assert_eq!(clone.as_str().as_ptr(), kept[7].as_str().as_ptr());
    }

    #[test]
    fn the_last_bytes_a_thread_wrote_are_extended_in_place_others_are_copied() {
        on_disk(|| {
            let mut last = Bytes::new(b"prima nota");
            let start = last.as_bytes().as_ptr();
            let before = last.clone();
            last.extend(b"; seconda");
            assert!(last.is_on_disk());
            assert_eq!(last.as_bytes(), b"prima nota; seconda");
            assert_eq!(last.as_bytes().as_ptr(), start, "extended where it was");
            assert_eq!(before.as_bytes(), b"prima nota", "a clone reads as before");

            // Once the thread wrote something else, it is copied.
            let other = Text::from("altro testo");
            last.extend(b"; terza");
            assert_eq!(last.as_bytes(), b"prima nota; seconda; terza");
            assert_ne!(last.as_bytes().as_ptr(), start);
            assert!(last.is_on_disk());
            assert_eq!(other.as_str(), "altro testo");
            assert_eq!(before.as_bytes(), b"prima nota");
        });
        // On the heap, the bytes are copied there.
        let mut heap = Bytes::new(b"a");
        heap.extend(b"b");
        heap.extend(b"");
        assert!(!heap.is_on_disk());
        assert_eq!(heap.as_bytes(), b"ab");
        let mut empty = Bytes::new(b"");
        empty.extend(b"c");
        assert_eq!(empty.as_bytes(), b"c");
    }

    #[test]
    fn texts_kept_on_many_threads_at_once_do_not_overlap() {
        let kept: Vec<Vec<(String, Text)>> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..4)
                .map(|t| {
                    scope.spawn(move || {
                        on_disk(|| {
                            // Enough to take several blocks per thread.
                            (0..3_000)
                                .map(|i| {
                                    let s = format!("{t}-{i}-{}", "x".repeat(i % 300));
                                    let text = Text::from(s.clone());
                                    (s, text)
                                })
                                .collect()
                        })
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).collect()
        });
        for (original, text) in kept.iter().flatten() {
            assert!(text.is_on_disk());
            assert_eq!(text.as_str(), original);
        }
    }

    #[test]
    fn a_file_that_cannot_be_made_or_grow_is_an_error_and_then_full() {
        let missing = std::env::temp_dir().join("traguardo-no-such-directory/deeper");
        assert!(TextFile::create(&missing).is_err());
        let dir = tempfile::tempdir().unwrap();
        let file = TextFile::create(dir.path()).unwrap();
        assert_eq!(
            file.file.metadata().unwrap().len(),
            GROW,
            "allocated up front"
        );
        assert!(file.claim(BLOCK).is_some());
        let reserved = file.space.lock().unwrap().reserved;
        assert!(file.grow_to(reserved + 1).is_err());
        // Past its mapping, a claim fails and the file stays full.
        file.space.lock().unwrap().next = reserved - BLOCK / 2;
        assert_eq!(file.claim(BLOCK), None);
        file.space.lock().unwrap().next = 0;
        assert_eq!(file.claim(16), None);
    }

    #[test]
    fn empty_texts_and_choices_inside_on_disk_if() {
        on_disk(|| {
            assert!(!Text::from("").is_on_disk());
            assert_eq!(Text::from(""), Text::from(String::new()));
            on_disk_if(false, || assert!(!Text::from("nota").is_on_disk()));
            assert!(kept_on_disk());
        });
    }

    #[test]
    fn a_text_goes_through_serde_as_its_plain_string_on_disk_or_not() {
        for keep in [false, true] {
            on_disk_if(keep, || {
                let text = Text::from("Fase «conclusa» il 30/06/2022");
                assert_eq!(text.is_on_disk(), keep);
                let json = serde_json::to_string(&text).unwrap();
                assert_eq!(json, "\"Fase «conclusa» il 30/06/2022\"");
                let back: Text = serde_json::from_str(&json).unwrap();
                assert_eq!((back.is_on_disk(), &back), (keep, &text));
                let packed = rmp_serde::to_vec(&text).unwrap();
                assert_eq!(rmp_serde::from_slice::<Text>(&packed).unwrap(), text);
            });
        }
    }
}
