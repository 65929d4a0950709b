//! Reading a PTY as a stream of chunks, in one of two ways.
//!
//! An instance that prints now and then (an agent's spinner, a build's lines) would
//! wake its arbiter's thread for every output: about a thousand times a second for a
//! hundred busy agents, and most of the server's CPU while nobody watches them. So:
//! - **at once**: the PTY is registered with the thread's reactor and read as soon
//!   as output comes. A PTY starts so; returns to it after [`QUIET`] with nothing to
//!   read; stays so while output floods (a full read: more is waiting); and is read
//!   so for [`HURRIED`] after [`Pace::hurry`] (input was typed: a person awaits the
//!   echo; the program exited: its last output is awaited).
//! - **on the tick**: after a short read that follows a pause (a trickle, not a flood
//!   the reader has just caught up with), the PTY leaves the reactor and the thread's
//!   ticker reads it every [`TICK`], together with every other such PTY of the
//!   thread, in one wake-up. Output waits at most one tick.
//!
//! Each read goes through a buffer on the stack and only the bytes read are copied
//! out: an idle instance keeps no buffer.

use std::cell::{Cell, RefCell};
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use actix_web::web::Bytes;
use futures_core::Stream;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

mod tick;
use tick::{Got, Slot, Ticker};

/// Largest chunk read at once.
pub const CHUNK: usize = 16 * 1024;
/// A read this long took all the kernel hands out at once (`n_tty` gives at most
/// 4095 bytes per read): more output is waiting.
pub const FULL: usize = 4095;
/// How often the thread's ticker reads the PTYs on the tick.
pub const TICK: Duration = Duration::from_millis(50);
/// Nothing to read on the tick this long: the PTY is read at once again (an idle
/// program then costs no wake-up at all).
const QUIET: Duration = Duration::from_secs(1);
/// How long after [`Pace::hurry`] output is read at once.
const HURRIED: Duration = Duration::from_secs(2);
/// A short read this long after the one before is a trickle; sooner, the reader has
/// only caught up with a program that floods (whose next read is seldom full).
const TRICKLE_GAP: Duration = Duration::from_millis(5);

/// Empty ticks in [`QUIET`].
const QUIET_TICKS: u32 = (QUIET.as_millis() / TICK.as_millis()) as u32;

/// Tells a PTY's reader that its output is awaited now.
#[derive(Clone, Default)]
pub struct Pace(Rc<PaceState>);

#[derive(Default)]
struct PaceState {
    hurried: Cell<Option<Instant>>,
    /// The reader, while it waits for the tick.
    waker: RefCell<Option<Waker>>,
    /// The master side the reader reads, while it does.
    master: RefCell<Weak<OwnedFd>>,
}

impl Pace {
    /// Output is read at once for a while from now.
    pub fn hurry(&self) {
        self.0.hurried.set(Some(Instant::now()));
        if let Some(waker) = self.0.waker.borrow_mut().take() {
            waker.wake();
        }
    }

    /// Whether output waits in the PTY, not yet read: the kernel's own answer
    /// (its poll moves what the program wrote into the readable buffer first). A
    /// program seen waiting for input may have printed its question just before.
    #[must_use]
    pub fn output_waiting(&self) -> bool {
        use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
        let Some(fd) = self.0.master.borrow().upgrade() else { return false };
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        poll(&mut fds, PollTimeout::ZERO).is_ok_and(|ready| ready > 0)
            && fds[0].revents().is_some_and(|r| r.contains(PollFlags::POLLIN))
    }

    fn hurried(&self) -> bool {
        self.0.hurried.get().is_some_and(|at| at.elapsed() < HURRIED)
    }
}

/// The master side of the PTY, as the reactor holds it while it is read at once.
struct Master(Rc<OwnedFd>);

/// Registers the master side with this thread's reactor, for reading.
#[allow(unsafe_code)] // AsyncFd's registration: every safe constructor is deprecated.
fn register(fd: &Rc<OwnedFd>) -> io::Result<AsyncFd<Master>> {
    // SAFETY: `Master` holds the descriptor open (an `Rc` of its `OwnedFd`) for as
    // long as the registration lives, and always returns that same descriptor.
    unsafe { AsyncFd::register_with_interest(Master(fd.clone()), Interest::READABLE) }.map_err(|e| e.into_parts().1)
}

impl AsRawFd for Master {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// One read: bytes, or `None` at the end of the output.
fn read_once(fd: &OwnedFd) -> io::Result<Option<Bytes>> {
    // Not zeroed first: only the bytes the read fills are looked at.
    let mut buf = [MaybeUninit::<u8>::uninit(); CHUNK];
    let (filled, _) = rustix::io::read(fd.as_fd(), &mut buf)?;
    Ok((!filled.is_empty()).then(|| Bytes::copy_from_slice(filled)))
}

enum Mode {
    AtOnce(AsyncFd<Master>),
    OnTick(Rc<Slot>),
    Ended,
}

/// The output of a PTY; ends at EOF or on the first error (EIO: the child side closed).
pub struct PtyStream {
    fd: Rc<OwnedFd>,
    mode: Mode,
    pace: Pace,
    /// When the last output was read.
    last_read: Option<Instant>,
}

impl PtyStream {
    /// Streams the PTY's master side `fd` (non-blocking), paced by `pace`. Must be
    /// made on the thread that reads it, which has a reactor.
    ///
    /// # Errors
    /// The reactor refused the descriptor.
    pub fn new(fd: OwnedFd, pace: Pace) -> io::Result<Self> {
        let fd = Rc::new(fd);
        pace.0.master.replace(Rc::downgrade(&fd));
        let registered = register(&fd)?;
        Ok(PtyStream { fd, mode: Mode::AtOnce(registered), pace, last_read: None })
    }

    /// Back into the reactor; whether it took the PTY (else it stays on the tick).
    fn at_once(&mut self) -> bool {
        match register(&self.fd) {
            Ok(registered) => {
                if let Mode::OnTick(slot) = std::mem::replace(&mut self.mode, Mode::AtOnce(registered)) {
                    Ticker::leave(&slot);
                }
                true
            }
            Err(e) => {
                tracing::debug!(error = %e, "a PTY stays on the tick: the reactor refused it");
                false
            }
        }
    }

    /// Out of the reactor, onto this thread's tick.
    fn on_tick(&mut self) {
        let slot = Rc::new(Slot::new(self.fd.clone()));
        Ticker::join(slot.clone());
        // Dropping the registration takes the PTY out of the reactor.
        self.mode = Mode::OnTick(slot);
    }

    fn end(&mut self) {
        if let Mode::OnTick(slot) = std::mem::replace(&mut self.mode, Mode::Ended) {
            Ticker::leave(&slot);
        }
    }

    /// What a read gave, as the stream's next item.
    fn deliver(&mut self, read: io::Result<Option<Bytes>>) -> Poll<Option<io::Result<Bytes>>> {
        match read {
            Ok(Some(bytes)) => {
                let more_waiting = bytes.len() >= FULL;
                let now = Instant::now();
                let trickle = !more_waiting && self.last_read.is_none_or(|at| now - at >= TRICKLE_GAP);
                self.last_read = Some(now);
                match self.mode {
                    Mode::AtOnce(_) if trickle && !self.pace.hurried() => self.on_tick(),
                    Mode::OnTick(_) if more_waiting || self.pace.hurried() => {
                        self.at_once();
                    }
                    _ => {}
                }
                Poll::Ready(Some(Ok(bytes)))
            }
            Ok(None) => {
                self.end();
                Poll::Ready(None)
            }
            Err(e) => {
                self.end();
                Poll::Ready(Some(Err(e)))
            }
        }
    }
}

impl Drop for PtyStream {
    fn drop(&mut self) {
        self.end();
    }
}

impl Stream for PtyStream {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        loop {
            match &this.mode {
                Mode::Ended => return Poll::Ready(None),
                Mode::AtOnce(registered) => {
                    let mut guard = match registered.poll_read_ready(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Ok(guard)) => guard,
                        Poll::Ready(Err(e)) => return this.deliver(Err(e)),
                    };
                    match guard.try_io(|master| read_once(&master.get_ref().0)) {
                        Ok(read) => return this.deliver(read),
                        // Readiness was cleared: wait for the next.
                        Err(_would_block) => {}
                    }
                }
                Mode::OnTick(slot) => {
                    let slot = slot.clone();
                    let got = slot.got.borrow_mut().take();
                    match got {
                        Some(Got::Data(bytes)) => return this.deliver(Ok(Some(bytes))),
                        Some(Got::End) => return this.deliver(Ok(None)),
                        Some(Got::Failed(e)) => return this.deliver(Err(e)),
                        None => {
                            let wanted = this.pace.hurried() || slot.empty.get() >= QUIET_TICKS;
                            if wanted && this.at_once() {
                                continue;
                            }
                            *slot.waker.borrow_mut() = Some(cx.waker().clone());
                            *this.pace.0.waker.borrow_mut() = Some(cx.waker().clone());
                            return Poll::Pending;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use futures_util::StreamExt;

    use super::*;

    fn on_tick(stream: &PtyStream) -> bool {
        matches!(stream.mode, Mode::OnTick(_))
    }

    /// Polls once, as the actor's context would when woken.
    fn poll_once(stream: &mut PtyStream) -> Poll<Option<io::Result<Bytes>>> {
        Pin::new(stream).poll_next(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn trickles_and_floods_arrive_whole_and_in_order_each_read_its_way() {
        actix::System::new().block_on(async {
            let (pty, pts) = pty_process::open().expect("a pty");
            let master = OwnedFd::from(pty);
            let mut slave = std::fs::File::from(pts.as_fd().try_clone_to_owned().expect("dup"));
            drop(pts);
            let mut stream = PtyStream::new(master, Pace::default()).expect("registered");
            let mut expected = Vec::new();
            let mut got = Vec::new();

            // A trickle: short writes now and then.
            for i in 0..10 {
                let line = format!("short-{i};");
                slave.write_all(line.as_bytes()).expect("write");
                expected.extend_from_slice(line.as_bytes());
                while got.len() < expected.len() {
                    got.extend_from_slice(&stream.next().await.expect("output").expect("read"));
                }
                tokio::time::sleep(TRICKLE_GAP * 4).await;
            }
            assert!(on_tick(&stream), "a trickle is read on the tick");

            // A flood, written from another thread (the terminal holds a few KiB).
            let flood: Vec<u8> = (0..256 * 1024).map(|i| b'a' + (i % 26) as u8).collect();
            expected.extend_from_slice(&flood);
            let mut writer = slave.try_clone().expect("dup");
            let flooding = std::thread::spawn(move || writer.write_all(&flood).expect("flood"));
            let mut at_once = 0;
            while got.len() < expected.len() {
                got.extend_from_slice(&stream.next().await.expect("output").expect("read"));
                at_once += usize::from(!on_tick(&stream));
            }
            flooding.join().expect("flooded");
            assert!(at_once > 10, "a flood is read at once ({at_once} reads)");

            // A trickle again, then quiet for longer than QUIET: at once again (an idle
            // program costs no tick).
            tokio::time::sleep(TRICKLE_GAP * 4).await;
            slave.write_all(b"last;").expect("write");
            expected.extend_from_slice(b"last;");
            while got.len() < expected.len() {
                got.extend_from_slice(&stream.next().await.expect("output").expect("read"));
            }
            assert!(on_tick(&stream));
            tokio::time::sleep(QUIET + TICK * 4).await;
            assert!(poll_once(&mut stream).is_pending());
            assert!(!on_tick(&stream), "back in the reactor after {QUIET:?} of nothing");

            // Hurried (input typed), a short read leaves it at once.
            let pace = stream.pace.clone();
            pace.hurry();
            slave.write_all(b"echo;").expect("write");
            expected.extend_from_slice(b"echo;");
            while got.len() < expected.len() {
                got.extend_from_slice(&stream.next().await.expect("output").expect("read"));
            }
            assert!(!on_tick(&stream), "hurried: read at once");

            // The end: every slave descriptor closed.
            drop(slave);
            while let Some(Ok(bytes)) = stream.next().await {
                got.extend_from_slice(&bytes);
            }
            assert!(stream.next().await.is_none(), "ended");
            assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(&expected));
            assert_eq!(tick::ticking(), 0, "the ended stream left the tick");
        });
    }
}
