//! The running program's terminal as the actor sees it: its process, its device,
//! and the way in. One writer task per instance owns the PTY's write half and
//! applies input and size changes in the order they were asked, fed by a bounded
//! queue; the actor never waits on it, and a program that stops reading fills the
//! queue, not memory.

use std::cell::Cell;
use std::rc::Rc;

use pty_process::OwnedWritePty;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::InstanceError;

/// Most input bytes that may wait for a program that does not read.
const MAX_PENDING_INPUT: usize = 1024 * 1024;
/// Most writes and resizes that may wait (keystrokes are one write each).
const QUEUE: usize = 4096;

enum ToPty {
    Bytes(Vec<u8>),
    Size(pty_process::Size),
}

/// The program's terminal.
pub(super) struct Terminal {
    /// The process started on it (the containment helper, leader of its group).
    pub pid: i32,
    /// `/dev/pts/N`: how the child's side appears in `/proc/*/fd`.
    pub pts: String,
    way_in: WayIn,
    /// Input bytes queued and not yet written.
    pending: Rc<Cell<usize>>,
}

/// The writer task starts with the first input or resize: most instances sit idle
/// for long stretches, and a queue costs memory from the moment it exists.
enum WayIn {
    Unused(OwnedWritePty),
    Open(mpsc::Sender<ToPty>),
    /// Only while the writer task is being started.
    Starting,
}

impl Terminal {
    pub fn new(pid: i32, pts: String, writer: OwnedWritePty) -> Self {
        Terminal { pid, pts, way_in: WayIn::Unused(writer), pending: Rc::new(Cell::new(0)) }
    }

    /// Queues bytes to type, after everything queued before.
    pub fn write(&mut self, bytes: Vec<u8>) -> Result<(), InstanceError> {
        let pending = self.pending.get();
        if pending + bytes.len() > MAX_PENDING_INPUT {
            return Err(InstanceError::InputFull(pending));
        }
        let len = bytes.len();
        self.send(ToPty::Bytes(bytes))?;
        self.pending.set(pending + len);
        Ok(())
    }

    /// Queues a new size, after the input queued before it.
    pub fn resize(&mut self, cols: u16, rows: u16) -> Result<(), InstanceError> {
        self.send(ToPty::Size(pty_process::Size::new(rows, cols)))
    }

    fn send(&mut self, item: ToPty) -> Result<(), InstanceError> {
        let queue = self.queue()?;
        queue.try_send(item).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => InstanceError::InputFull(self.pending.get()),
            mpsc::error::TrySendError::Closed(_) => InstanceError::NotRunning("ending"),
        })
    }

    /// The writer task's queue, started on the current arbiter the first time.
    fn queue(&mut self) -> Result<&mpsc::Sender<ToPty>, InstanceError> {
        if let WayIn::Unused(_) = self.way_in {
            let WayIn::Unused(writer) = std::mem::replace(&mut self.way_in, WayIn::Starting) else {
                return Err(InstanceError::NotRunning("ending"));
            };
            self.way_in = WayIn::Open(start_writer(writer, self.pending.clone()));
        }
        match &self.way_in {
            WayIn::Open(queue) => Ok(queue),
            WayIn::Unused(_) | WayIn::Starting => Err(InstanceError::NotRunning("ending")),
        }
    }
}

/// One task that owns the write half and applies what is queued, in order.
fn start_writer(writer: OwnedWritePty, written: Rc<Cell<usize>>) -> mpsc::Sender<ToPty> {
    let (queue, mut rx) = mpsc::channel(QUEUE);
    actix::spawn(async move {
        let mut writer = writer;
        while let Some(item) = rx.recv().await {
            match item {
                ToPty::Bytes(bytes) => {
                    if let Err(e) = writer.write_all(&bytes).await {
                        tracing::debug!(error = %e, "input not written: the terminal is gone");
                    }
                    written.set(written.get().saturating_sub(bytes.len()));
                }
                ToPty::Size(size) => {
                    if let Err(e) = writer.resize(size) {
                        tracing::debug!(error = %e, "resize not applied: the terminal is gone");
                    }
                }
            }
        }
    });
    queue
}
