//! `GET /api/instances/:id/stream`: one instance's terminal and its own events.
//!
//! Event ids are `OFFSET:SEQ`: the transcript bytes delivered so far and the
//! last instance event sent. A fresh connection starts with a `snapshot` of the
//! screen (or `?tail=` raw bytes); a resumed one replays the transcript from
//! OFFSET and the events after SEQ, so a reconnect — even across a server
//! restart — loses and repeats nothing. Live output comes from the instance
//! actor through a bounded queue; a viewer that falls behind is dropped by the
//! actor and catches up here from the transcript file, so a slow client costs
//! neither the instance nor anyone else, and memory stays bounded.

use std::sync::Arc;

use actix::Addr;
use actix_web::{get, web, HttpRequest, Responder};
use actix_web_lab::sse;
use serde::Deserialize;
use tokio::sync::mpsc;
use utoipa::IntoParams;
use uuid::Uuid;

use super::instances::{instance_id, load};
use super::sse::{event, last_event_id, respond};
use super::text::{complete_utf8, output_data};
use super::{blocking, AppState};
use crate::actors::instance::{Chunk, InstanceActor, Watch};
use crate::db::events::{self, Event, Filter};
use crate::domain::event::{EventKind, Seen};
use crate::domain::instance::Instance;
use crate::domain::state::is_final;
use crate::error::{AppError, ErrorBody};
use crate::events::Stopped;

/// Largest `output` event, in bytes.
const FRAME: usize = 64 * 1024;

/// Options of the instance stream.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Replay this many raw transcript bytes instead of a screen snapshot (0: nothing).
    #[param(value_type = Option<u64>)]
    pub tail: Option<String>,
    /// For clients that cannot set the `Last-Event-ID` header (`OFFSET:SEQ`).
    pub last_event_id: Option<String>,
}

fn parse_resume(id: &str) -> Result<(u64, i64), AppError> {
    let bad = || AppError::invalid("last_event_id", "must be OFFSET:SEQ as sent in this stream's ids");
    let (offset, seq) = id.trim().split_once(':').ok_or_else(bad)?;
    // Digits only: no sign, so no negative sequence number.
    if !seq.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    Ok((offset.parse().map_err(|_| bad())?, seq.parse().map_err(|_| bad())?))
}

/// The instance's screen, then its output and events, live; `end` last.
#[utoipa::path(operation_id = "instance_stream", tag = "instances", params(("id" = Uuid, Path), StreamQuery), responses(
    (status = 200, description = "snapshot, output, status, message, end", content_type = "text/event-stream"),
    (status = 404, description = "No such instance", body = ErrorBody),
    (status = 422, description = "Bad tail or Last-Event-ID", body = ErrorBody)))]
#[get("/api/instances/{id}/stream")]
pub async fn stream(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<StreamQuery>,
) -> Result<impl Responder, AppError> {
    let id = instance_id(&id)?;
    let resume = last_event_id(&req, query.last_event_id.as_deref()).map(|v| parse_resume(&v)).transpose()?;
    let tail = query
        .tail
        .as_deref()
        .map(|t| t.parse::<u64>().map_err(|_| AppError::invalid("tail", "must be a number of bytes")))
        .transpose()?;
    let instance = load(&state, id).await?;
    let (oldest, head) = blocking(&state.db.agents, |conn| Ok(events::bounds(conn)?)).await?;
    let (tx, rx) = mpsc::channel(16);
    let mut viewer =
        Viewer { state: state.into_inner(), id, tx, offset: 0, carry: Vec::new(), seq: head, chunks: None };
    if let Some((_, seq)) = resume {
        viewer.seq = seq;
        if seq + 1 < oldest || seq > head {
            let data = serde_json::json!({ "reason": "last_event_id_unknown", "oldest": oldest });
            let _ = viewer.tx.try_send(event("reset", viewer.id_now(), data.to_string()));
        }
    }
    actix_web::rt::spawn(async move { viewer.run(instance, resume.map(|r| r.0), tail).await });
    Ok(respond(rx))
}

struct Viewer {
    state: Arc<AppState>,
    id: Uuid,
    tx: mpsc::Sender<sse::Event>,
    /// Transcript bytes delivered to the client.
    offset: u64,
    /// Bytes after `offset` received but not sent (an incomplete UTF-8 sequence).
    carry: Vec<u8>,
    /// The last instance event sent (or skipped as older than the connection).
    seq: i64,
    chunks: Option<mpsc::Receiver<Chunk>>,
}

/// The client went away or the server stops: end the stream.
struct Gone;

impl Viewer {
    fn id_now(&self) -> String {
        format!("{}:{}", self.offset, self.seq)
    }

    async fn send(&self, kind: &str, data: String) -> Result<(), Gone> {
        self.tx.send(event(kind, self.id_now(), data)).await.map_err(|_| Gone)
    }

    fn actor(&self) -> Option<Addr<InstanceActor>> {
        self.state.shared.directory.get(self.id)
    }

    async fn run(mut self, instance: Instance, resume: Option<u64>, tail: Option<u64>) {
        let _ = self.start(instance, resume, tail).await;
    }

    async fn start(&mut self, instance: Instance, resume: Option<u64>, tail: Option<u64>) -> Result<(), Gone> {
        let status = instance.status;
        let fresh = resume.is_none() && tail.is_none();
        let watched = match self.actor() {
            Some(addr) => addr.send(Watch { snapshot: fresh }).await.ok().flatten(),
            None => None,
        };
        let live_from = match &watched {
            Some(w) => w.offset,
            None => self.transcript_len().await,
        };
        if let Some(from) = resume {
            self.offset = from.min(live_from);
        } else if let Some(tail) = tail {
            self.offset = live_from.saturating_sub(tail);
        } else {
            self.offset = live_from;
            let snapshot = match &watched {
                Some(w) => w.snapshot.clone(),
                None if is_final(status) => self.final_screen().await,
                None => None,
            };
            let (screen, cols, rows) = snapshot.unwrap_or_default();
            let data = serde_json::json!({ "data": String::from_utf8_lossy(&screen), "cols": cols, "rows": rows });
            self.send("snapshot", data.to_string()).await?;
        }
        self.catch_up(live_from).await?;
        self.chunks = watched.map(|w| w.chunks);
        // Already ended: whatever events are owed, then `end` at once.
        let ended = is_final(status).then(|| serde_json::json!({ "status": status, "exit_code": instance.exit_code }));
        self.follow(ended).await
    }

    async fn follow(&mut self, ended: Option<serde_json::Value>) -> Result<(), Gone> {
        let mine = Filter { instance_id: Some(self.id), ..Filter::default() };
        let mut log = self.state.shared.bus.follow(mine, self.seq);
        if let Some(end) = ended {
            // Already ended: whatever events are owed, then `end` at once.
            loop {
                let batch = log.unread().await.map_err(|_| Gone)?;
                if batch.is_empty() {
                    return self.finish(end).await;
                }
                if let Some(end) = self.send_events(batch).await? {
                    return self.finish(end).await;
                }
            }
        }
        loop {
            let tx = self.tx.clone();
            // Only the wait for a commit is raced with the output; the read after it
            // is not, so a steady flood of output cannot keep cancelling it.
            let step = tokio::select! {
                chunk = recv(&mut self.chunks) => Step::Output(chunk),
                committed = log.committed() => Step::Events(committed),
                () = tx.closed() => return Err(Gone),
            };
            match step {
                Step::Output(Some(chunk)) => self.output(chunk).await?,
                Step::Output(None) => self.reattach().await?,
                // The server stops: the client resumes.
                Step::Events(Err(_)) => return Err(Gone),
                Step::Events(Ok(())) => {
                    let batch = log.unread().await.map_err(|_| Gone)?;
                    if let Some(end) = self.send_events(batch).await? {
                        return self.finish(end).await;
                    }
                }
            }
        }
    }

    /// Sends this instance's new events; an event's output comes first. Returns the
    /// final status payload once the instance ended.
    async fn send_events(&mut self, batch: Vec<Event>) -> Result<Option<serde_json::Value>, Gone> {
        for e in batch {
            if let Some(at) = e.offset {
                self.catch_up(at).await?;
            }
            self.seq = e.seq;
            let kind = match EventKind::parse(&e.kind) {
                Some(EventKind::InstanceStatus) => "status",
                Some(EventKind::MessageCreated) => "message",
                _ => continue,
            };
            self.send(kind, e.data.clone()).await?;
            if kind == "status" {
                let change = match Seen::read(EventKind::InstanceStatus, &e.data) {
                    Ok(Seen::InstanceStatus(change)) => Some(change),
                    Ok(_) | Err(_) => {
                        tracing::warn!(seq = e.seq, "an instance.status event of another shape");
                        None
                    }
                };
                if let Some(change) = change.filter(|c| is_final(c.status)) {
                    return Ok(Some(serde_json::json!({ "status": change.status, "exit_code": change.exit_code })));
                }
                if self.chunks.is_none() {
                    self.reattach().await?;
                }
            }
        }
        Ok(None)
    }

    /// After the final status: the rest of the output, then `end`.
    async fn finish(&mut self, end: serde_json::Value) -> Result<(), Gone> {
        if let Some(mut chunks) = self.chunks.take() {
            // The actor stops right after storing the final status.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
                while chunks.recv().await.is_some() {}
            })
            .await;
        }
        let len = self.transcript_len().await;
        self.catch_up(len).await?;
        let data = serde_json::json!({ "status": end["status"], "exit_code": end["exit_code"] });
        self.send("end", data.to_string()).await
    }

    /// The viewer's queue closed: the instance ended, or this viewer fell behind
    /// and was dropped. Follow again from the transcript, if it still runs.
    async fn reattach(&mut self) -> Result<(), Gone> {
        self.chunks = None;
        let Some(addr) = self.actor() else { return Ok(()) };
        let Ok(Some(watched)) = addr.send(Watch { snapshot: false }).await else { return Ok(()) };
        self.catch_up(watched.offset).await?;
        self.chunks = Some(watched.chunks);
        Ok(())
    }

    /// Sends a live chunk (and whatever else is queued, up to a frame).
    async fn output(&mut self, first: Chunk) -> Result<(), Gone> {
        let mut pending = vec![first];
        let mut size = pending[0].bytes.len();
        while size < FRAME {
            match self.chunks.as_mut().map(mpsc::Receiver::try_recv) {
                Some(Ok(chunk)) => {
                    size += chunk.bytes.len();
                    pending.push(chunk);
                }
                _ => break,
            }
        }
        for chunk in pending {
            let received = self.offset + self.carry.len() as u64;
            let start = chunk.end - chunk.bytes.len() as u64;
            if chunk.end <= received {
                continue;
            }
            if start > received {
                // A gap (this viewer was dropped and re-added): fill it from the file.
                self.catch_up(start).await?;
            }
            let skip = usize::try_from(received.saturating_sub(start)).unwrap_or(0);
            self.carry.extend_from_slice(&chunk.bytes[skip.min(chunk.bytes.len())..]);
        }
        self.flush(false).await
    }

    /// Sends the complete UTF-8 part of `carry` as `output` events.
    async fn flush(&mut self, all: bool) -> Result<(), Gone> {
        while !self.carry.is_empty() {
            let cut = if all { self.carry.len() } else { complete_utf8(&self.carry) };
            let cut = cut.min(FRAME);
            if cut == 0 {
                return Ok(());
            }
            let data = output_data(&self.carry[..cut]);
            self.carry.drain(..cut);
            self.offset += cut as u64;
            self.send("output", data).await?;
        }
        Ok(())
    }

    /// Sends transcript bytes from `offset` up to `to`, read from the file.
    async fn catch_up(&mut self, to: u64) -> Result<(), Gone> {
        if to <= self.offset {
            return Ok(());
        }
        self.carry.clear();
        let Ok(mut file) = tokio::fs::File::open(self.state.shared.transcript(self.id)).await else { return Ok(()) };
        let mut buf = vec![0u8; FRAME];
        let mut at = self.offset;
        while at < to {
            let Ok((start, n)) = crate::terminal::transcript::read_kept(&mut file, at, to, &mut buf).await else {
                break;
            };
            if start != at {
                // Dropped by `transcript_max_mb`: skipped, and the ids stay byte offsets.
                self.carry.clear();
                self.offset = start;
            }
            if n == 0 {
                break;
            }
            at = start + n as u64;
            self.carry.extend_from_slice(&buf[..n]);
            self.flush(false).await?;
        }
        Ok(())
    }

    async fn transcript_len(&self) -> u64 {
        tokio::fs::metadata(self.state.shared.transcript(self.id)).await.map_or(0, |m| m.len())
    }

    async fn final_screen(&self) -> Option<(Vec<u8>, u16, u16)> {
        let raw = tokio::fs::read(self.state.shared.final_screen(self.id)).await.ok()?;
        let newline = raw.iter().position(|b| *b == b'\n')?;
        let header = std::str::from_utf8(&raw[..newline]).ok()?;
        let (cols, rows) = header.split_once(' ')?;
        Some((raw[newline + 1..].to_vec(), cols.parse().ok()?, rows.parse().ok()?))
    }
}

enum Step {
    Output(Option<Chunk>),
    Events(Result<(), Stopped>),
}

async fn recv(chunks: &mut Option<mpsc::Receiver<Chunk>>) -> Option<Chunk> {
    match chunks {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_ids_parse() {
        assert_eq!(parse_resume("120:7").ok(), Some((120, 7)));
        assert!(parse_resume("7").is_err());
        assert!(parse_resume("a:b").is_err());
        assert!(parse_resume("5:-9223372036854775808").is_err());
        assert!(parse_resume("5:-1").is_err());
        assert!(parse_resume("5:+1").is_err());
    }

    proptest::proptest! {
        #[test]
        fn every_id_this_stream_sends_parses_back(offset in proptest::prelude::any::<u64>(), seq in 0..=i64::MAX) {
            proptest::prop_assert_eq!(parse_resume(&format!("{offset}:{seq}")).ok(), Some((offset, seq)));
        }

        #[test]
        fn any_header_value_is_an_answer_not_a_panic(text in "\\PC{0,40}") {
            let _ = parse_resume(&text);
        }
    }
}
