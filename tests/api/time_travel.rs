//! Time travel through the cache of objective streams: at every seq of a history
//! with several long, interleaved streams, and at record-time cuts, the answer
//! equals the full fold of the stream's prefix read from the store; also after
//! the streams grew, and when the budget evicts streams all the time.

use traguardo::commands::{ObjectiveCommand, RevisionRequest};
use traguardo_events::domain::RevisionChange;
use traguardo_events::model::objective_stream;
use traguardo_events::store::Until;
use traguardo_projections::Objective;

use crate::support::{d, manager_of, World};

pub(crate) const KEYS: [&str; 4] = ["2022-2250-A", "2022-2250-B", "2022-2250-C", "2022-2249-C"];

/// The plain answer: every event of the stream up to the cut, read and folded.
pub(crate) fn full_fold(w: &World, key: &str, until: Until) -> Option<Objective> {
    let events = w
        .app
        .store()
        .read_stream(&objective_stream(key), until)
        .unwrap();
    Objective::from_events(&events).unwrap()
}

pub(crate) fn head(w: &World) -> u64 {
    w.app.store().head().unwrap().seq
}

fn retract(w: &World, key: &str, phase: u32) {
    w.run(
        key,
        ObjectiveCommand::RetractCompletion {
            phase,
            reason: "registrata per errore".into(),
            backfill: None,
        },
        &manager_of(key),
    )
    .unwrap();
}

/// `rounds` days on which each of [`KEYS`] completes phase 1 and has it retracted
/// (two events a day each, streams interleaved in the log), starting on day
/// `first` of March 2022; a revision touching two objectives halfway.
pub(crate) fn grow(w: &World, first: u32, rounds: u32) {
    for day in first..first + rounds {
        let date = format!("2022-03-{day:02}");
        w.on(&date);
        for key in KEYS {
            w.complete(key, 1, &date).unwrap();
            retract(w, key, 1);
        }
        if day == first + rounds / 2 {
            w.revise(
                2022,
                RevisionRequest {
                    act: "D.G.C. n. 182 del 28/07/2022".into(),
                    act_date: Some(d(&date)),
                    reason: "rimodulazione".into(),
                    changes: KEYS[..2]
                        .iter()
                        .map(|key| RevisionChange::Deadline {
                            objective: (*key).into(),
                            phase: Some(1),
                            new_deadline: d("2022-09-30"),
                        })
                        .collect(),
                },
            )
            .unwrap();
        }
    }
}

/// A seeded database whose four objectives have about 25 events each.
fn history() -> World {
    let w = World::with_seed();
    grow(&w, 1, 12);
    w
}

/// [`history`] grown by ten more days: streams of 40 to 63 versions, with a
/// stream snapshot at version 32 written.
fn grown_history() -> World {
    let w = history();
    grow(&w, 13, 10);
    assert!(w
        .app
        .flush_stream_snapshots(std::time::Duration::from_secs(30)));
    w
}

/// The seq of version `version` of `key`'s stream.
fn seq_of(w: &World, key: &str, version: usize) -> u64 {
    w.app
        .store()
        .read_stream(&objective_stream(key), Until::End)
        .unwrap()[version - 1]
        .seq
}

fn assert_every_seq_equals_the_full_fold(w: &World, seqs: impl Iterator<Item = u64>) {
    for seq in seqs {
        for key in KEYS {
            assert_eq!(
                w.app.objective_as_of(key, Until::Seq(seq)).unwrap(),
                full_fold(w, key, Until::Seq(seq)),
                "{key} at seq {seq}"
            );
        }
    }
}

#[test]
fn time_travel_through_the_cache_equals_the_full_fold_at_every_seq() {
    let w = history();
    let head = head(&w);
    assert!(
        w.app
            .store()
            .stream_version(&objective_stream(KEYS[0]))
            .unwrap()
            > 20,
        "streams of more than twenty versions"
    );
    // From the head down (the first read of each stream caches it), then up.
    assert_every_seq_equals_the_full_fold(&w, (0..=head + 2).rev());
    assert_every_seq_equals_the_full_fold(&w, 0..=head);
    let stats = w.app.time_travel_stats();
    assert_eq!(stats.streams, KEYS.len());
    // Past the head the store is read every time (head + 2 first caches the
    // stream, head + 1 reads again); from the head down, memory answers.
    assert_eq!(stats.misses, KEYS.len() as u64 * 2);
    assert!(stats.hits >= KEYS.len() as u64 * (2 * head - 1));
    assert_eq!(stats.evictions, 0);
}

#[test]
fn the_cache_follows_streams_that_grew_after_they_were_read() {
    let w = history();
    let before = head(&w);
    // Read twice: each stream is cached whole, through this head.
    assert_every_seq_equals_the_full_fold(&w, [before, before].into_iter());
    grow(&w, 13, 10);
    assert!(w
        .app
        .flush_stream_snapshots(std::time::Duration::from_secs(30)));
    let after = head(&w);
    assert!(after > before + 40);
    // The new seqs are past what was cached: each stream reads what it lacks.
    // The streams passed version 32, where a stream snapshot was written: the
    // read at the head starts a stretch there, and the versions between the
    // first stretch and it are read once, by the first read among them.
    assert_every_seq_equals_the_full_fold(&w, (0..=after).rev());
    let stats = w.app.time_travel_stats();
    assert_eq!(stats.misses, KEYS.len() as u64 * 4);
    assert_eq!(stats.snapshots_used, KEYS.len() as u64);
    assert_eq!(stats.streams, KEYS.len());
}

#[test]
fn a_stream_is_cached_from_its_second_read_on() {
    let w = history();
    let head = head(&w);
    let at = |seq| w.app.objective_as_of(KEYS[0], Until::Seq(seq)).unwrap();
    let stats = || w.app.time_travel_stats();
    // The first read folds from the store and keeps nothing.
    assert_eq!(at(head), full_fold(&w, KEYS[0], Until::Seq(head)));
    let first = stats();
    assert_eq!(
        (first.misses, first.first_reads, first.streams, first.bytes),
        (1, 1, 0, 0)
    );
    // The second reads it again, whole, and keeps it.
    assert_eq!(at(head), full_fold(&w, KEYS[0], Until::Seq(head)));
    let second = stats();
    assert_eq!(
        (second.misses, second.first_reads, second.streams),
        (2, 1, 1)
    );
    assert!(second.bytes > 0);
    // From then on memory answers, down to version 1.
    for seq in (0..=head).rev() {
        assert_eq!(
            at(seq),
            full_fold(&w, KEYS[0], Until::Seq(seq)),
            "seq {seq}"
        );
    }
    let after = stats();
    assert_eq!((after.misses, after.hits), (2, head + 1));
    // Another stream's first read is again a first read.
    w.app.objective_as_of(KEYS[1], Until::Seq(head)).unwrap();
    assert_eq!(stats().first_reads, 2);
}

#[test]
fn a_stream_cached_whole_answers_every_seq_from_memory() {
    let w = grown_history();
    let head = head(&w);
    let at = |seq| w.app.objective_as_of(KEYS[0], Until::Seq(seq)).unwrap();
    let stats = || w.app.time_travel_stats();
    // Read twice at version 10 of a stream of 40 to 63 versions: the second
    // read caches it whole, and every seq through the head is then a hit,
    // below the snapshot at version 32 and above it.
    at(seq_of(&w, KEYS[0], 10));
    at(seq_of(&w, KEYS[0], 10));
    assert_eq!(stats().misses, 2);
    for seq in 0..=head {
        assert_eq!(
            at(seq),
            full_fold(&w, KEYS[0], Until::Seq(seq)),
            "seq {seq}"
        );
    }
    let after = stats();
    assert_eq!((after.misses, after.hits), (2, head + 1));
    assert_eq!(after.snapshots_used, 0, "read from version 1");
}

#[test]
fn a_miss_reads_on_to_the_next_snapshot_and_the_reads_up_to_it_hit() {
    let w = history();
    let key = KEYS[0];
    let cached = w
        .app
        .store()
        .stream_version(&objective_stream(key))
        .unwrap() as usize;
    assert!(cached < 30, "{cached}");
    let at = |seq| w.app.objective_as_of(key, Until::Seq(seq)).unwrap();
    let misses = || w.app.time_travel_stats().misses;
    // Cached whole, then grown past version 32 (a stream snapshot there).
    at(head(&w));
    at(head(&w));
    assert_eq!(misses(), 2);
    grow(&w, 13, 10);
    assert!(w
        .app
        .flush_stream_snapshots(std::time::Duration::from_secs(30)));
    let head = head(&w);
    let versions = w
        .app
        .store()
        .stream_version(&objective_stream(key))
        .unwrap();
    assert!(versions > 40 && versions < 64, "{versions}");
    let seq_of = |version| seq_of(&w, key, version);
    // A read past the cached versions, before 32: the store is read from
    // the last cached version through version 32, where the next stream
    // snapshot starts.
    at(seq_of(cached + 2));
    assert_eq!(misses(), 3);
    for seq in seq_of(cached + 1)..=seq_of(32) {
        assert_eq!(at(seq), full_fold(&w, key, Until::Seq(seq)), "seq {seq}");
    }
    assert_eq!(misses(), 3, "every seq through version 32 from memory");
    // Past version 32 one more miss reads the rest of the stream, which ends
    // before the next multiple of 32: the stretch then holds it through the head.
    for seq in seq_of(32) + 1..=head {
        assert_eq!(at(seq), full_fold(&w, key, Until::Seq(seq)), "seq {seq}");
    }
    assert_eq!(misses(), 4);
    // And below the cached versions, every seq from memory too.
    for seq in 0..=seq_of(cached) {
        assert_eq!(at(seq), full_fold(&w, key, Until::Seq(seq)), "seq {seq}");
    }
    assert_eq!(misses(), 4);
}

#[test]
fn a_full_cache_reads_no_further_than_the_cut() {
    let w = history();
    let at = |key, seq| w.app.objective_as_of(key, Until::Seq(seq)).unwrap();
    let misses = || w.app.time_travel_stats().misses;
    let cached = |key| {
        w.app
            .store()
            .stream_version(&objective_stream(key))
            .unwrap() as usize
    };
    let (zero, one) = (cached(KEYS[0]), cached(KEYS[1]));
    // Two streams cached whole, then grown past version 32.
    for key in &KEYS[..2] {
        at(key, head(&w));
        at(key, head(&w));
    }
    assert_eq!(misses(), 4);
    grow(&w, 13, 10);
    assert!(w
        .app
        .flush_stream_snapshots(std::time::Duration::from_secs(30)));
    let seq_of = |key, version| seq_of(&w, key, version);
    // With room, a read past what is cached reads on to version 32.
    at(KEYS[1], seq_of(KEYS[1], one + 2));
    at(KEYS[1], seq_of(KEYS[1], one + 3));
    assert_eq!(misses(), 5);
    // A budget the two streams fill to more than seven eighths: the cache is
    // full, so the store is read only up to the cut, and the next version's
    // seq misses again.
    let held = w.app.time_travel_stats().bytes;
    w.app.set_time_travel_budget(held + held / 8);
    at(KEYS[0], seq_of(KEYS[0], zero + 2));
    assert_eq!(misses(), 6);
    let next = seq_of(KEYS[0], zero + 3);
    assert_eq!(at(KEYS[0], next), full_fold(&w, KEYS[0], Until::Seq(next)));
    assert_eq!(misses(), 7, "read up to the cut only");
    assert_eq!(w.app.time_travel_stats().evictions, 0);
}

/// A stream read for the second time when the cache is full is read whole
/// all the same, and pushes out the stream read least recently: every read
/// of it is then answered from memory, where a stretch read to the cut
/// alone would miss again at the next seq.
#[test]
fn a_full_cache_still_reads_a_stream_whole_and_evicts_the_oldest() {
    let w = grown_history();
    let head = head(&w);
    let at = |key, seq| w.app.objective_as_of(key, Until::Seq(seq)).unwrap();
    let stats = || w.app.time_travel_stats();
    at(KEYS[1], head);
    at(KEYS[1], head);
    let held = stats().bytes;
    w.app.set_time_travel_budget(held + held / 8);
    at(KEYS[0], seq_of(&w, KEYS[0], 10));
    at(KEYS[0], seq_of(&w, KEYS[0], 10));
    let full = stats();
    assert_eq!((full.misses, full.evictions, full.streams), (4, 1, 1));
    for seq in 0..=head {
        assert_eq!(
            at(KEYS[0], seq),
            full_fold(&w, KEYS[0], Until::Seq(seq)),
            "seq {seq}"
        );
    }
    assert_eq!(stats().misses, 4, "every seq from memory");
}

/// [`history`] with 140 more measurements of `KEYS[0]`, one a day: a stream
/// past two checkpoints of the cache.
fn measured_history() -> World {
    let w = history();
    let measured = KEYS[0];
    for day in 0..140u32 {
        let on = d("2022-04-01") + chrono::Days::new(u64::from(day));
        w.on(&on.to_string());
        w.run(
            measured,
            ObjectiveCommand::RecordMeasurement(traguardo::commands::Measurement {
                indicator: "completezza-fasi-tempistica".into(),
                on,
                value: None,
                numerator: None,
                denominator: None,
                text: Some(format!(
                    "Fasi in linea con il cronoprogramma al giorno {day}"
                )),
                entry: traguardo::commands::Entry {
                    note: Some("Verificato con il responsabile del servizio".into()),
                    backfill: None,
                },
            }),
            &manager_of(measured),
        )
        .unwrap();
    }
    let versions = w
        .app
        .store()
        .stream_version(&objective_stream(measured))
        .unwrap();
    assert!(
        versions > 2 * traguardo::time_travel::CHECKPOINT_EVERY,
        "{versions}"
    );
    w
}

#[test]
fn reads_past_checkpoints_that_share_their_measurements_equal_the_full_fold() {
    let w = measured_history();
    let key = KEYS[0];
    let head = head(&w);
    let first = seq_of(&w, key, 1);
    // The first read keeps nothing, the second caches the stream whole; then
    // every seq folds from a checkpoint whose measurements the others share.
    for _ in 0..2 {
        w.app.objective_as_of(key, Until::Seq(head)).unwrap();
    }
    let misses = w.app.time_travel_stats().misses;
    for seq in (first - 1..=head).rev().chain(first..=head) {
        assert_eq!(
            w.app.objective_as_of(key, Until::Seq(seq)).unwrap(),
            full_fold(&w, key, Until::Seq(seq)),
            "{key} at seq {seq}"
        );
    }
    assert_eq!(
        w.app.time_travel_stats().misses,
        misses,
        "every seq from memory"
    );
}

/// What the cache counts for a stream it keeps, against the bytes the read
/// that kept it left allocated (counted by the test binary's allocator, on
/// this thread): the budget is of real memory, not of a guess off by a
/// factor. One stream of mostly measurements, past two checkpoints (their
/// measurements shared), and three of phases.
#[test]
fn the_cache_counts_about_the_bytes_a_stream_really_holds() {
    let w = measured_history();
    let head = head(&w);
    for key in KEYS {
        // The first read keeps nothing (and warms what a read warms once).
        w.app.objective_as_of(key, Until::Seq(head)).unwrap();
        let before = w.app.time_travel_stats().bytes;
        let held = allocation_counter::measure(|| {
            w.app.objective_as_of(key, Until::Seq(head)).unwrap();
        });
        let estimated = w.app.time_travel_stats().bytes - before;
        let real = usize::try_from(held.bytes_current).unwrap();
        let ratio = estimated as f64 / real as f64;
        assert!(
            (0.8..1.25).contains(&ratio),
            "{key}: estimated {estimated} bytes, held {real} ({ratio:.2}x)"
        );
    }
}

#[test]
fn after_eviction_time_travel_still_equals_the_full_fold() {
    let w = history();
    let head = head(&w);
    // The first read keeps nothing; the second caches the stream.
    for _ in 0..2 {
        w.app.objective_as_of(KEYS[0], Until::Seq(head)).unwrap();
    }
    let one_stream = w.app.time_travel_stats().bytes;
    assert!(one_stream > 0);
    // Room for about one and a half whole streams: reading the four in turn
    // evicts, and what is held never passes the budget.
    w.app.set_time_travel_budget(one_stream * 3 / 2);
    assert_every_seq_equals_the_full_fold(&w, (0..=head).rev());
    let stats = w.app.time_travel_stats();
    // Streams are evicted again and again, and an evicted stream is read once
    // more before it is cached again.
    assert!(stats.evictions > 2 * KEYS.len() as u64, "{stats:?}");
    assert!(stats.first_reads > stats.evictions / 2, "{stats:?}");
    assert!(stats.bytes <= one_stream * 3 / 2, "{stats:?}");
    // Turned off, every read goes to the store and the cache is left alone.
    w.app.set_time_travel_budget(0);
    let off = w.app.time_travel_stats();
    assert_eq!((off.streams, off.bytes), (0, 0));
    assert_every_seq_equals_the_full_fold(&w, 0..=head);
    let after = w.app.time_travel_stats();
    assert_eq!(
        (after.hits, after.misses, after.streams, after.bytes),
        (off.hits, off.misses, 0, 0)
    );
}

#[test]
fn as_of_cuts_through_the_cache_equal_the_full_fold() {
    let w = history();
    let events = w.app.store().read_all(0, 10_000).unwrap();
    let mut cuts: Vec<_> = events
        .iter()
        .flat_map(|e| {
            let t = e.recorded_at;
            [
                t - chrono::Duration::microseconds(1),
                t,
                t + chrono::Duration::hours(1),
            ]
        })
        .collect();
    cuts.dedup();
    for at in cuts {
        for key in KEYS {
            assert_eq!(
                w.app.objective_as_of(key, Until::RecordedAt(at)).unwrap(),
                full_fold(&w, key, Until::RecordedAt(at)),
                "{key} as of {at}"
            );
        }
    }
    assert!(w.app.time_travel_stats().hits > 0);
}

/// The Italian date of seq `seq`'s record time, read from the store.
fn recorded_on(app: &traguardo::App, seq: u64) -> chrono::NaiveDate {
    let at = app.recorded_at(seq).unwrap().expect("an event at that seq");
    traguardo_events::clock::local_date(&at)
}

/// Every seq of the log, read by time travel twice (the second from the
/// cache), is dated from memory: most lie between two events of the stream
/// recorded on different days, and the read model's days tell them.
fn assert_every_seq_is_dated_from_memory(app: &traguardo::App, head: u64) {
    let before = app.time_travel_stats().dates_read;
    for seq in 1..=head {
        let expected = recorded_on(app, seq);
        let (_, date) = app.time_travel(KEYS[0], Until::Seq(seq), None).unwrap();
        assert_eq!(date, expected, "seq {seq}");
        app.time_travel(KEYS[0], Until::Seq(seq), None).unwrap();
        let (_, date) = app
            .time_travel_cached(KEYS[0], Until::Seq(seq))
            .expect("cached")
            .unwrap();
        assert_eq!(date, Some(expected), "seq {seq} from the cache");
    }
    assert_eq!(
        app.time_travel_stats().dates_read,
        before,
        "no date read from the store"
    );
}

#[test]
fn a_seq_cut_is_dated_from_the_read_models_days_without_the_store() {
    let w = history();
    let head = head(&w);
    let days: std::collections::BTreeSet<_> = (1..=head).map(|s| recorded_on(&w.app, s)).collect();
    assert!(days.len() > 10, "a log of many days: {days:?}");
    assert_every_seq_is_dated_from_memory(&w.app, head);
    // Past the head the store is asked, and finds no event: today.
    let (_, date) = w
        .app
        .time_travel(KEYS[0], Until::Seq(head + 1), None)
        .unwrap();
    assert_eq!(date, w.app.today());
    assert_eq!(w.app.time_travel_stats().dates_read, 1);
}

#[test]
fn a_process_started_from_a_snapshot_dates_the_seqs_before_it_from_memory() {
    let w = history();
    let taken = w.app.take_snapshot().unwrap().expect("a snapshot");
    grow(&w, 13, 3);
    let head = head(&w);
    let restarted = traguardo::App::open(w.db(), w.clock.clone()).unwrap();
    assert_eq!(
        restarted.start(),
        &traguardo::snapshots::Start::FromSnapshot {
            seq: taken,
            events: head - taken
        }
    );
    assert_every_seq_is_dated_from_memory(&restarted, head);
    restarted.store().shutdown();
}
