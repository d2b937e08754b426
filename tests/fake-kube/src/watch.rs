//! Watches: a streamed response of one JSON event per line, fed from the store's history.
//!
//! A watch from resource version R first replays every retained change after R (so a change
//! made between a client's list and its watch is never lost), then follows new ones. The store
//! only bumps a `tokio::sync::watch` counter when it changes; each watch task wakes on it and
//! reads the history itself, so a slow client delays nobody and misses nothing, unless it
//! falls so far behind that the history has moved past it: then it gets 410 Expired, as from a
//! real server.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Response, header};
use http_body_util::{BodyExt as _, StreamBody};
use hyper::body::Frame;
use serde_json::json;
use tokio::sync::mpsc;

use crate::Shared;
use crate::api::{Body, status_body};
use crate::registry::ResourceDef;
use crate::selector::Selector;
use crate::store::{Change, EventType, Expired, State, Stored};

/// How often a watch that allows bookmarks gets one (real servers: about once a minute).
const BOOKMARK_EVERY: Duration = Duration::from_secs(60);

/// Where a watch starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Start {
    /// No resource version (or "0"): ADDED for every current object, then changes.
    Now,
    /// Every change after this resource version.
    After(u64),
}

/// A parsed watch request.
pub(crate) struct WatchRequest {
    /// The watched type.
    pub(crate) def: ResourceDef,
    /// The version the objects are sent at.
    pub(crate) version: String,
    /// Only this namespace's objects, if set.
    pub(crate) namespace: Option<String>,
    /// Only the objects that match.
    pub(crate) selector: Selector,
    /// Where to start.
    pub(crate) start: Start,
    /// When the server ends the stream.
    pub(crate) timeout: Duration,
    /// `allowWatchBookmarks=true`.
    pub(crate) bookmarks: bool,
    /// `sendInitialEvents=true`: the current objects, then a bookmark marking their end.
    pub(crate) initial_events: bool,
    /// Its resource version counts as compacted away, whatever it is.
    pub(crate) expired: bool,
}

/// One line of a watch stream.
fn event_line(event: &str, object: &[u8]) -> Bytes {
    let mut line = Vec::with_capacity(object.len() + 32);
    line.extend_from_slice(br#"{"type":""#);
    line.extend_from_slice(event.as_bytes());
    line.extend_from_slice(br#"","object":"#);
    line.extend_from_slice(object);
    line.extend_from_slice(b"}\n");
    Bytes::from(line)
}

fn expired_line(requested: u64, gone: Expired) -> Bytes {
    let status = status_body(
        410,
        "Expired",
        &format!("too old resource version: {requested} ({})", gone.oldest),
        None,
    );
    event_line("ERROR", &status)
}

impl WatchRequest {
    /// How a change looks to this watch, if it sees it at all. With a selector, an object
    /// that starts matching is ADDED and one that stops matching is DELETED, as real watches
    /// report them.
    fn event<'c>(&self, change: &'c Change) -> Option<(EventType, &'c Arc<Stored>)> {
        let (group, plural) = &change.key.ty;
        if *group != self.def.group
            || *plural != self.def.plural
            || self
                .namespace
                .as_ref()
                .is_some_and(|ns| *ns != change.key.name.0)
        {
            return None;
        }
        let event = if self.selector.is_empty() {
            change.event
        } else {
            let now = self.selector.matches(&change.object.value);
            let before = change
                .previous
                .as_ref()
                .is_some_and(|p| self.selector.matches(&p.value));
            match (change.event, before, now) {
                (EventType::Added, _, true) => EventType::Added,
                (EventType::Modified, true, true) => EventType::Modified,
                (EventType::Modified, false, true) => EventType::Added,
                (EventType::Modified, true, false) => EventType::Deleted,
                (EventType::Deleted, true, _) => EventType::Deleted,
                _ => return None,
            }
        };
        Some((event, &change.object))
    }

    fn line(&self, event: EventType, object: &Stored) -> Bytes {
        event_line(
            event.as_str(),
            &object.json_at(&self.def.group_version(&self.version)),
        )
    }

    fn bookmark(&self, rv: u64, initial_events_end: bool) -> Bytes {
        let mut object = json!({
            "kind": self.def.kind,
            "apiVersion": self.def.group_version(&self.version),
            "metadata": {"resourceVersion": rv.to_string(), "creationTimestamp": null}
        });
        if initial_events_end {
            object["metadata"]["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        event_line("BOOKMARK", object.to_string().as_bytes())
    }

    /// The events after `after`, and the resource version they bring the watch to; read under
    /// the lock, serialised after it.
    fn catch_up(&self, state: &State, after: u64) -> Result<(Vec<Bytes>, u64), Expired> {
        let events: Vec<(EventType, Arc<Stored>)> = state
            .changes_after(after)?
            .filter_map(|c| self.event(c).map(|(e, o)| (e, o.clone())))
            .collect();
        let rv = state.resource_version();
        Ok((events.iter().map(|(e, o)| self.line(*e, o)).collect(), rv))
    }

    /// The first lines of the stream and the resource version they bring it to.
    fn first(&self, state: &State) -> Result<(Vec<Bytes>, u64), (u64, Expired)> {
        if self.expired {
            let requested = match self.start {
                Start::After(rv) => rv,
                Start::Now => 0,
            };
            let oldest = state.resource_version();
            return Err((requested, Expired { oldest }));
        }
        match self.start {
            Start::After(rv) => self.catch_up(state, rv).map_err(|e| (rv, e)),
            Start::Now => {
                let current = state
                    .list(
                        &self.def,
                        self.namespace.as_deref(),
                        None,
                        None,
                        usize::MAX,
                        |o| self.selector.matches(o),
                    )
                    .map(|page| page.items)
                    .unwrap_or_default();
                let rv = state.resource_version();
                let mut lines: Vec<Bytes> = current
                    .iter()
                    .map(|o| self.line(EventType::Added, o))
                    .collect();
                if self.initial_events {
                    lines.push(self.bookmark(rv, true));
                }
                Ok((lines, rv))
            }
        }
    }
}

/// Starts the watch and returns its streamed response.
pub(crate) fn watch(shared: &Arc<Shared>, req: WatchRequest) -> Response<Body> {
    let (tx, rx) = mpsc::channel::<Bytes>(64);
    let shared = shared.clone();
    tokio::spawn(async move {
        let cancel = shared.cancel.clone();
        // The resource version sent up to; 0 until the first read.
        let mut seen = 0;
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(req.timeout) => {}
            () = follow(&shared, &req, &tx, &mut seen) => return,
        }
        // Real servers end a watch that allows bookmarks with one, so the client can resume
        // from there. Dropped if the client is not keeping up: bookmarks are best-effort.
        if req.bookmarks && seen > 0 {
            let _ = tx.try_send(req.bookmark(seen, false));
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|b| (Ok::<_, Infallible>(Frame::data(b)), rx))
    });
    let mut r = Response::new(StreamBody::new(stream).boxed());
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r
}

/// Sends the watch's events until the client goes away or its version expires; `seen` is the
/// resource version sent up to.
async fn follow(shared: &Shared, req: &WatchRequest, tx: &mpsc::Sender<Bytes>, seen: &mut u64) {
    // Subscribe before the first read, so no change falls between them.
    let mut latest = shared.state().subscribe();
    let first = req.first(&shared.state());
    let lines = match first {
        Ok((lines, rv)) => {
            *seen = rv;
            lines
        }
        Err((requested, gone)) => {
            let _ = tx.send(expired_line(requested, gone)).await;
            return;
        }
    };
    for line in lines {
        if tx.send(line).await.is_err() {
            return;
        }
    }
    let mut bookmarks =
        tokio::time::interval_at(tokio::time::Instant::now() + BOOKMARK_EVERY, BOOKMARK_EVERY);
    loop {
        tokio::select! {
            () = tx.closed() => return,
            _ = bookmarks.tick(), if req.bookmarks => {
                if tx.send(req.bookmark(*seen, false)).await.is_err() {
                    return;
                }
                continue;
            }
            changed = latest.changed() => if changed.is_err() {
                return;
            },
        }
        let caught_up = req.catch_up(&shared.state(), *seen);
        match caught_up {
            Ok((lines, rv)) => {
                *seen = rv;
                for line in lines {
                    if tx.send(line).await.is_err() {
                        return;
                    }
                }
            }
            Err(gone) => {
                let _ = tx.send(expired_line(*seen, gone)).await;
                return;
            }
        }
    }
}
