//! `GET /eventi`: the log's progress as server-sent events for the pages of a
//! session (same origin, the session cookie instead of a token). Each event says
//! only its seq (`id`) and stream; the page then fetches itself again.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::Stream;

use super::session::SignedIn;
use crate::http::AppState;

/// The feed: from the head at connection time, one `avanzamento` event per new
/// event of the log (`data` is its stream), until the server stops.
pub async fn stream(
    State(state): State<AppState>,
    SignedIn(_viewer): SignedIn,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let head = state.app.store().watch_head();
    let cursor = head.borrow().seq;
    let feed = (state, head, cursor, Vec::<(u64, String)>::new());
    let stream = futures_util::stream::unfold(
        feed,
        |(state, mut head, mut cursor, mut buffer)| async move {
            loop {
                if *state.shutdown.borrow() {
                    return None;
                }
                if !buffer.is_empty() {
                    let (seq, stream) = buffer.remove(0);
                    cursor = seq;
                    let event = Event::default()
                        .id(seq.to_string())
                        .event("avanzamento")
                        .data(stream);
                    return Some((Ok(event), (state, head, cursor, buffer)));
                }
                head.borrow_and_update();
                let app = state.app.clone();
                let after = cursor;
                let page =
                    tokio::task::spawn_blocking(move || app.store().read_all(after, 256)).await;
                match page {
                    Ok(Ok(events)) if !events.is_empty() => {
                        buffer.extend(events.into_iter().map(|e| (e.seq, e.stream)));
                    }
                    Ok(Ok(_)) => {
                        let mut shutdown = state.shutdown.clone();
                        tokio::select! {
                            changed = head.changed() => if changed.is_err() { return None; },
                            _ = shutdown.changed() => return None,
                        }
                    }
                    _ => return None,
                }
            }
        },
    );
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}
