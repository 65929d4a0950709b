//! The running program's terminal as the actor sees it: what runs it (a local
//! process or a container), how this machine's kernel sees it, and the way in.
//! One writer task per instance owns the write half (the PTY's, or the
//! container's attached stdin) and applies input and size changes in the order
//! they were asked, fed by a bounded queue; the actor never waits on it, and a
//! program that stops reading fills the queue, not memory.

use std::cell::Cell;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use super::InstanceError;
use crate::runner::container::Container;
use crate::runner::HostView;
use crate::terminal::reader::Pace;
use crate::terminal::writer::PtyWriter;

/// Most input bytes that may wait for a program that does not read.
const MAX_PENDING_INPUT: usize = 1024 * 1024;
/// Most writes and resizes that may wait (keystrokes are one write each).
const QUEUE: usize = 4096;

enum ToPty {
    Bytes(Vec<u8>),
    /// Rows and columns.
    Size((u16, u16)),
}

/// What runs the program.
pub(super) enum Runs {
    /// A process started on a PTY here (the containment helper, leader of its group).
    Local { pid: i32 },
    /// A container, through its engine.
    Container(Arc<Container>),
}

/// Where input and sizes go.
pub(super) enum Sink {
    Pty(PtyWriter),
    Container { input: Pin<Box<dyn AsyncWrite + Send>>, container: Arc<Container> },
}

impl Sink {
    async fn write_all(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Sink::Pty(pty) => pty.write_all(bytes).await,
            Sink::Container { input, .. } => {
                input.write_all(bytes).await?;
                input.flush().await
            }
        }
    }

    async fn resize(&mut self, size: (u16, u16)) -> Result<(), String> {
        let (rows, cols) = size;
        match self {
            Sink::Pty(pty) => pty.resize(rows, cols).map_err(|e| e.to_string()),
            Sink::Container { container, .. } => container.resize(rows, cols).await.map_err(|e| e.to_string()),
        }
    }
}

/// The program's terminal.
pub(super) struct Terminal {
    pub runs: Runs,
    /// Its session leader and terminal as this machine's kernel sees them (every
    /// local process; a container on an engine of this machine).
    pub host: Option<HostView>,
    way_in: WayIn,
    /// Input bytes queued and not yet written.
    pending: Rc<Cell<usize>>,
    /// A local PTY's reader: told when its output is awaited (typed input's echo).
    pace: Option<Pace>,
}

/// The writer task starts with the first input or resize: most instances sit idle
/// for long stretches, and a queue costs memory from the moment it exists.
enum WayIn {
    Unused(Sink),
    Open(mpsc::Sender<ToPty>),
    /// Only while the writer task is being started.
    Starting,
}

impl Terminal {
    pub fn new(runs: Runs, host: Option<HostView>, writer: Sink, pace: Option<Pace>) -> Self {
        Terminal { runs, host, way_in: WayIn::Unused(writer), pending: Rc::new(Cell::new(0)), pace }
    }

    /// The program's output is awaited now: read it at once for a while.
    pub fn hurry(&self) {
        if let Some(pace) = &self.pace {
            pace.hurry();
        }
    }

    /// Whether a local PTY holds output not read yet.
    pub fn output_waiting(&self) -> bool {
        self.pace.as_ref().is_some_and(Pace::output_waiting)
    }

    /// The container it runs in, when it does.
    pub fn container(&self) -> Option<Arc<Container>> {
        match &self.runs {
            Runs::Container(container) => Some(container.clone()),
            Runs::Local { .. } => None,
        }
    }

    /// The local process's pid (its process group and session).
    pub fn pid(&self) -> Option<i32> {
        match self.runs {
            Runs::Local { pid } => Some(pid),
            Runs::Container(_) => None,
        }
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
        // A person (or a program) awaits the echo.
        self.hurry();
        Ok(())
    }

    /// Queues a new size, after the input queued before it.
    pub fn resize(&mut self, cols: u16, rows: u16) -> Result<(), InstanceError> {
        self.send(ToPty::Size((rows, cols)))
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
fn start_writer(writer: Sink, written: Rc<Cell<usize>>) -> mpsc::Sender<ToPty> {
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
                    if let Err(e) = writer.resize(size).await {
                        tracing::debug!(error = %e, "resize not applied: the terminal is gone");
                    }
                }
            }
        }
    });
    queue
}
