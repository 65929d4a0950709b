//! The thread's ticker: the PTYs that only trickle output, out of the reactor, read
//! together every [`TICK`] in one wake-up (see the parent module).

use std::cell::{Cell, RefCell};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::rc::Rc;
use std::sync::OnceLock;
use std::task::{Poll, Waker};
use std::time::Instant;

use actix_web::web::Bytes;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::{read_once, QUIET_TICKS, TICK};

/// What the ticker read for a PTY and its reader has not taken yet.
pub(super) enum Got {
    Data(Bytes),
    End,
    Failed(io::Error),
}

/// A PTY read on the tick.
pub(super) struct Slot {
    fd: Rc<OwnedFd>,
    pub(super) got: RefCell<Option<Got>>,
    /// Ticks in a row that found nothing.
    pub(super) empty: Cell<u32>,
    pub(super) waker: RefCell<Option<Waker>>,
}

impl Slot {
    pub(super) fn new(fd: Rc<OwnedFd>) -> Self {
        Slot { fd, got: RefCell::new(None), empty: Cell::new(0), waker: RefCell::new(None) }
    }

    /// Whether the ticker should look at it: what the last read gave was taken.
    fn wants_reading(&self) -> bool {
        self.got.borrow().is_none()
    }

    /// Nothing to read this tick.
    fn nothing(&self) {
        let empty = self.empty.get() + 1;
        self.empty.set(empty);
        if empty == QUIET_TICKS {
            // The reader goes back to reading at once.
            self.wake();
        }
    }

    /// Something to read (or the end) this tick.
    fn read(&self) {
        let got = match read_once(&self.fd) {
            Ok(Some(bytes)) => Got::Data(bytes),
            Ok(None) => Got::End,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {
                return self.nothing();
            }
            Err(e) => Got::Failed(e),
        };
        self.empty.set(0);
        *self.got.borrow_mut() = Some(got);
        self.wake();
    }

    fn wake(&self) {
        if let Some(waker) = self.waker.borrow_mut().take() {
            waker.wake();
        }
    }
}

/// The PTYs of this thread read on the tick, and the task that reads them.
#[derive(Default)]
pub(super) struct Ticker {
    slots: RefCell<Vec<Rc<Slot>>>,
    /// The task, while no PTY is on the tick.
    idle: RefCell<Option<Waker>>,
    /// The task (made again should the thread's runtime have been replaced).
    task: RefCell<Option<tokio::task::JoinHandle<()>>>,
}

thread_local! {
    static TICKER: Rc<Ticker> = Rc::new(Ticker::default());
}

impl Ticker {
    pub(super) fn join(slot: Rc<Slot>) {
        TICKER.with(|ticker| {
            ticker.slots.borrow_mut().push(slot);
            let mut task = ticker.task.borrow_mut();
            if task.as_ref().is_none_or(tokio::task::JoinHandle::is_finished) {
                *task = Some(actix::spawn(Ticker::run(ticker.clone())));
            } else if let Some(waker) = ticker.idle.borrow_mut().take() {
                waker.wake();
            }
        });
    }

    pub(super) fn leave(slot: &Rc<Slot>) {
        TICKER.with(|ticker| ticker.slots.borrow_mut().retain(|s| !Rc::ptr_eq(s, slot)));
    }

    async fn run(ticker: Rc<Ticker>) {
        let mut slots = Vec::new();
        loop {
            std::future::poll_fn(|cx| {
                if ticker.slots.borrow().is_empty() {
                    *ticker.idle.borrow_mut() = Some(cx.waker().clone());
                    Poll::Pending
                } else {
                    Poll::Ready(())
                }
            })
            .await;
            tokio::time::sleep_until(next_tick()).await;
            // One poll(2) for all of them; only those with output are read.
            {
                let all = ticker.slots.borrow();
                let looked: Vec<&Rc<Slot>> = all.iter().filter(|slot| slot.wants_reading()).collect();
                let mut fds: Vec<PollFd<'_>> =
                    looked.iter().map(|slot| PollFd::new(slot.fd.as_fd(), PollFlags::POLLIN)).collect();
                let polled = poll(&mut fds, PollTimeout::ZERO);
                if let Err(e) = polled {
                    // Each is read instead (EAGAIN for those with nothing).
                    tracing::debug!(error = %e, "poll of the PTYs on the tick failed");
                }
                for (slot, fd) in looked.into_iter().zip(&fds) {
                    if polled.is_err() || fd.revents().is_some_and(|r| !r.is_empty()) {
                        slots.push(slot.clone());
                    } else {
                        slot.nothing();
                    }
                }
            }
            for slot in slots.drain(..) {
                slot.read();
            }
        }
    }
}

/// The next multiple of [`TICK`] since the first tick of the process: every
/// thread's ticker wakes at the same instants.
fn next_tick() -> tokio::time::Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    let ticks = epoch.elapsed().as_nanos() / TICK.as_nanos() + 1;
    let since = TICK.saturating_mul(u32::try_from(ticks).unwrap_or(u32::MAX));
    tokio::time::Instant::from_std(epoch + since)
}

/// How many PTYs this thread has on the tick.
#[cfg(test)]
pub(super) fn ticking() -> usize {
    TICKER.with(|ticker| ticker.slots.borrow().len())
}
