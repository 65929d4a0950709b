//! Reading a PTY as a stream of chunks without keeping a buffer per idle
//! instance: each read goes through a buffer on the stack and only the bytes
//! actually read are copied out.

use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::web::Bytes;
use futures_core::Stream;
use pty_process::OwnedReadPty;
use tokio::io::{AsyncRead, ReadBuf};

/// Largest chunk read at once.
const CHUNK: usize = 16 * 1024;

/// The output of a PTY; ends at EOF or on the first error (EIO: the child side closed).
pub struct PtyStream {
    reader: Option<OwnedReadPty>,
}

impl PtyStream {
    /// Streams `reader`.
    #[must_use]
    pub fn new(reader: OwnedReadPty) -> Self {
        PtyStream { reader: Some(reader) }
    }
}

impl Stream for PtyStream {
    type Item = io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(reader) = self.reader.as_mut() else { return Poll::Ready(None) };
        // Not zeroed first: that was a 16 KiB memset on every wake-up, also the ones
        // that find nothing to read. Only the bytes the read fills are looked at.
        let mut buf = [MaybeUninit::<u8>::uninit(); CHUNK];
        let mut read = ReadBuf::uninit(&mut buf);
        match Pin::new(reader).poll_read(cx, &mut read) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(())) if read.filled().is_empty() => {
                self.reader = None;
                Poll::Ready(None)
            }
            Poll::Ready(Ok(())) => Poll::Ready(Some(Ok(Bytes::copy_from_slice(read.filled())))),
            Poll::Ready(Err(e)) => {
                self.reader = None;
                Poll::Ready(Some(Err(e)))
            }
        }
    }
}
