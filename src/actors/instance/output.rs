//! Output: read from the PTY as a stream attached to the actor, appended to the
//! transcript, fed to the terminal model and handed to live viewers.

use std::fs::File;
use std::io::Write as _;

use actix::prelude::*;
use actix_web::web::Bytes;
use tokio::sync::mpsc;

use super::{Chunk, InstanceActor};
use crate::domain::instance::InstanceStatus;
use crate::domain::state::Event;
use crate::terminal::transcript::Cap;

/// A read this long filled the terminal's buffer: more output is already waiting.
const FULL_READ: usize = crate::terminal::reader::FULL;
/// Most output gathered before it is written to the transcript and sent.
const GATHER_MAX: usize = 64 * 1024;
/// Longest time gathered output waits for more.
const GATHER_WAIT: std::time::Duration = std::time::Duration::from_millis(1);

/// Where output goes.
pub(super) struct Output {
    transcript: Option<File>,
    /// Bytes written to the transcript so far (the offset of the next output).
    pub len: u64,
    /// Keeps the transcript within `transcript_max_mb` on disk.
    cap: Cap,
    /// Output read but not yet written to the transcript nor sent to viewers:
    /// while a program prints as fast as it can, full reads are gathered so the
    /// write and the viewers' wake-up happen once per 64 KiB rather than per read.
    unsent: Vec<u8>,
    gather_timer: Option<SpawnHandle>,
    /// Live viewers' bounded queues; one that is full is dropped (it catches up
    /// from the transcript).
    viewers: Vec<mpsc::Sender<Chunk>>,
    /// Every process closed its side of the terminal: no more output will come.
    pub eof: bool,
}

impl Output {
    pub fn new() -> Self {
        Output {
            transcript: None,
            len: 0,
            cap: Cap::unlimited(),
            unsent: Vec::new(),
            gather_timer: None,
            viewers: Vec::new(),
            eof: false,
        }
    }

    /// Appends from now on to `transcript`, which holds `len` bytes already.
    pub fn open(&mut self, transcript: File, len: u64, max: Option<u64>) {
        self.cap = Cap::new(max, &transcript, len);
        self.len = len;
        self.transcript = Some(transcript);
    }

    /// A new viewer's queue; it gets every chunk sent from now on.
    pub fn watch(&mut self, queue: mpsc::Sender<Chunk>) {
        self.viewers.push(queue);
    }

    /// Appends output to the transcript, then hands it to the live viewers.
    fn send(&mut self, bytes: Bytes, instance: uuid::Uuid) {
        self.len += bytes.len() as u64;
        if let Some(file) = self.transcript.as_mut() {
            if let Err(e) = file.write_all(&bytes) {
                tracing::warn!(%instance, error = %e, "transcript write failed");
            }
            self.cap.after_append(file, self.len, instance);
        }
        if !self.viewers.is_empty() {
            let chunk = Chunk { bytes, end: self.len };
            self.viewers.retain(|viewer| viewer.try_send(chunk.clone()).is_ok());
        }
    }
}

impl InstanceActor {
    fn on_output(&mut self, bytes: &Bytes, ctx: &mut Context<Self>) {
        let more_waiting = bytes.len() >= FULL_READ;
        let output = &mut self.output;
        if output.unsent.is_empty() && !more_waiting {
            // The common case (an echo, a line, a prompt): out at once, no copy.
            output.send(bytes.clone(), self.id);
        } else {
            if output.unsent.is_empty() {
                // Room for the read that crosses `GATHER_MAX`, so it is not moved.
                output.unsent.reserve_exact(GATHER_MAX + crate::terminal::reader::CHUNK);
            }
            output.unsent.extend_from_slice(bytes);
            if !more_waiting || output.unsent.len() >= GATHER_MAX {
                self.flush_output(ctx);
            } else if output.gather_timer.is_none() {
                output.gather_timer = Some(ctx.run_later(GATHER_WAIT, |act, ctx| {
                    act.output.gather_timer = None;
                    act.flush_output(ctx);
                }));
            }
        }
        self.screen.feed(bytes);
        if self.status == InstanceStatus::AwaitingInput && self.output_resumes() {
            self.transition(Event::Resume, "output".into(), None, ctx);
        }
        self.output_seen(ctx);
    }

    /// Writes and sends whatever output was gathered.
    pub(super) fn flush_output(&mut self, ctx: &mut Context<Self>) {
        if let Some(timer) = self.output.gather_timer.take() {
            ctx.cancel_future(timer);
        }
        if !self.output.unsent.is_empty() {
            let bytes = Bytes::from(std::mem::take(&mut self.output.unsent));
            self.output.send(bytes, self.id);
        }
    }
}

impl StreamHandler<std::io::Result<Bytes>> for InstanceActor {
    fn handle(&mut self, item: std::io::Result<Bytes>, ctx: &mut Context<Self>) {
        match item {
            Ok(bytes) => self.on_output(&bytes, ctx),
            // EIO: every process closed its side of the terminal.
            Err(_) => self.output.eof = true,
        }
    }

    fn finished(&mut self, ctx: &mut Context<Self>) {
        // Unlike the default, output ending does not stop the actor: the exit
        // status may not be known yet.
        self.output.eof = true;
        self.flush_output(ctx);
        self.output_ended(ctx);
    }
}
