//! Writing to a PTY: input and the terminal's size. The writer holds a descriptor
//! of its own for the master side, registered with the reactor for writability
//! only, so that output never wakes it (see `reader`: a PTY read on the tick is out
//! of the reactor altogether).

use std::io;
use std::os::fd::OwnedFd;

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// The way into a PTY.
pub struct PtyWriter(AsyncFd<OwnedFd>);

impl PtyWriter {
    /// Writes to the master side `fd` (non-blocking; a descriptor of its own). Must
    /// be made on a thread with a reactor.
    ///
    /// # Errors
    /// The reactor refused the descriptor.
    #[allow(unsafe_code)] // AsyncFd's registration: every safe constructor is deprecated.
    pub fn new(fd: OwnedFd) -> io::Result<Self> {
        // SAFETY: the registration owns the descriptor, open until it is dropped.
        let registered = unsafe { AsyncFd::register_with_interest(fd, Interest::WRITABLE) };
        Ok(PtyWriter(registered.map_err(|e| e.into_parts().1)?))
    }

    /// Writes all of `bytes`, waiting while the program does not read.
    ///
    /// # Errors
    /// The terminal is gone.
    pub async fn write_all(&self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            let mut guard = self.0.writable().await?;
            // Every descriptor of the program's side is closed (the kernel's HUP,
            // which stays): what is written can never be read. The kernel may still
            // answer EAGAIN rather than EIO, and waiting for room again would return
            // at once, for ever.
            let closed = guard.ready().is_write_closed();
            match guard.try_io(|fd| Ok(rustix::io::write(fd.get_ref(), bytes)?)) {
                Ok(Ok(0)) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(Ok(n)) => bytes = &bytes[n..],
                Ok(Err(e)) => return Err(e),
                Err(_would_block) if closed => {
                    return Err(io::Error::new(
                        io::ErrorKind::BrokenPipe,
                        "the program's side of the terminal is closed",
                    ));
                }
                Err(_would_block) => {}
            }
        }
        Ok(())
    }

    /// Sets the terminal's size (the program gets `SIGWINCH`).
    ///
    /// # Errors
    /// The terminal is gone.
    pub fn resize(&self, rows: u16, cols: u16) -> io::Result<()> {
        set_size(self.0.get_ref(), rows, cols)
    }
}

/// Sets the size of the terminal whose master side is `fd`.
///
/// # Errors
/// The terminal is gone.
pub fn set_size(fd: &OwnedFd, rows: u16, cols: u16) -> io::Result<()> {
    let size = rustix::termios::Winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    Ok(rustix::termios::tcsetwinsize(fd, size)?)
}
