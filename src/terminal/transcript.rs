//! Transcripts that stay within a size on disk while keeping their byte offsets.
//!
//! A transcript is append-only and its byte offsets are public (stream event ids,
//! `/output?offset=`), so it is never rewritten. When more than the cap is held,
//! the oldest part is deallocated in place (a hole punched with `fallocate`): the
//! file keeps its length and every later offset, and readers skip the hole with
//! `SEEK_DATA`, so they start at the oldest byte still kept.

use std::fs::File;
use std::os::fd::AsFd;

use tokio::io::{AsyncReadExt, AsyncSeekExt};

use nix::errno::Errno;
use nix::fcntl::{fallocate, FallocateFlags};
use nix::unistd::{lseek, Whence};

/// Holes are punched in whole blocks of this size, so the kept part starts on one.
const BLOCK: u64 = 4096;

/// Keeps one instance's transcript within `max` bytes on disk.
#[derive(Debug)]
pub struct Cap {
    max: Option<u64>,
    /// The first byte not yet deallocated.
    kept_from: u64,
}

impl Cap {
    /// No cap (before the transcript is opened).
    #[must_use]
    pub const fn unlimited() -> Self {
        Self { max: None, kept_from: 0 }
    }

    /// A cap of `max` bytes (`None`: unlimited) for a transcript of `len` bytes.
    #[must_use]
    pub fn new(max: Option<u64>, file: &File, len: u64) -> Self {
        Self { max, kept_from: data_start(file, 0, len) }
    }

    /// After an append that made the transcript `len` bytes long: once more than the
    /// cap is held, the oldest part goes, leaving about half the cap, so holes are
    /// punched once per half a cap of output. A file system that cannot punch holes
    /// turns the cap off for this transcript, with a warning.
    pub fn after_append(&mut self, file: &File, len: u64, instance: uuid::Uuid) {
        let Some(max) = self.max else { return };
        if len.saturating_sub(self.kept_from) <= max {
            return;
        }
        let to = (len - max / 2) / BLOCK * BLOCK;
        if to <= self.kept_from {
            return;
        }
        match punch(file, self.kept_from, to) {
            Ok(()) => self.kept_from = to,
            Err(e) => {
                tracing::warn!(%instance, error = %e, "cannot trim the transcript on this file system; it is not capped");
                self.max = None;
            }
        }
    }
}

fn punch(file: &File, from: u64, to: u64) -> nix::Result<()> {
    let offset = i64::try_from(from).map_err(|_| Errno::EFBIG)?;
    let len = i64::try_from(to - from).map_err(|_| Errno::EFBIG)?;
    fallocate(file.as_fd(), FallocateFlags::FALLOC_FL_PUNCH_HOLE | FallocateFlags::FALLOC_FL_KEEP_SIZE, offset, len)
}

/// The first byte at or after `offset` that is still kept: `offset` itself unless
/// it lies in the trimmed part; `len` when nothing is kept after it. The file's
/// position is left where it was.
#[must_use]
pub fn data_start(file: &impl AsFd, offset: u64, len: u64) -> u64 {
    if offset >= len {
        return offset;
    }
    let Ok(at) = i64::try_from(offset) else { return offset };
    let fd = file.as_fd();
    let Ok(position) = lseek(fd, 0, Whence::SeekCur) else { return offset };
    let found = match lseek(fd, at, Whence::SeekData) {
        Ok(found) => u64::try_from(found).unwrap_or(offset).max(offset),
        Err(Errno::ENXIO) => len,
        Err(_) => offset, // no SEEK_DATA here: nothing was trimmed either
    };
    if lseek(fd, position, Whence::SeekSet).is_err() {
        tracing::warn!("cannot restore a transcript reader's position");
    }
    found
}

/// Reads kept bytes from `at` (before `len`) into `buf`. Returns where they start,
/// which is past `at` when `at` was dropped, also when that happens during the read
/// (a reader far behind the writer), and how many were read (0: none left).
///
/// # Errors
/// A failed seek or read.
pub async fn read_kept(file: &mut tokio::fs::File, at: u64, len: u64, buf: &mut [u8]) -> std::io::Result<(u64, usize)> {
    let mut start = data_start(file, at, len);
    loop {
        if start >= len {
            return Ok((start, 0));
        }
        file.seek(std::io::SeekFrom::Start(start)).await?;
        let want = usize::try_from(len - start).unwrap_or(usize::MAX).min(buf.len());
        let n = file.read(&mut buf[..want]).await?;
        // Dropped while it was read, the part reads as zeros: go on from what is kept.
        let kept = data_start(file, start, len);
        if kept == start {
            return Ok((start, n));
        }
        start = kept;
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Seek, SeekFrom, Write};

    use super::*;

    fn written(total: usize) -> (tempfile::NamedTempFile, File) {
        let mut tmp = tempfile::NamedTempFile::new().expect("temp file");
        let line: Vec<u8> = (0..100u8).map(|i| b'a' + i % 26).chain(std::iter::once(b'\n')).collect();
        let mut left = total;
        while left > 0 {
            let n = left.min(line.len());
            tmp.write_all(&line[..n]).expect("write");
            left -= n;
        }
        let file = tmp.reopen().expect("reopen");
        (tmp, file)
    }

    fn allocated(file: &File) -> u64 {
        use std::os::unix::fs::MetadataExt;
        file.metadata().expect("metadata").blocks() * 512
    }

    #[test]
    fn the_oldest_part_goes_and_every_offset_stays() {
        let (_tmp, file) = written(1_000_000);
        let mut cap = Cap::new(Some(200_000), &file, 0);
        cap.after_append(&file, 1_000_000, uuid::Uuid::nil());
        let kept = cap.kept_from;
        assert_eq!(kept % BLOCK, 0);
        assert!((1_000_000 - kept) <= 200_000 && (1_000_000 - kept) >= 100_000, "{kept}");
        assert_eq!(file.metadata().expect("metadata").len(), 1_000_000, "the length stays");
        assert!(allocated(&file) <= 1_000_000 - kept + 2 * BLOCK, "{} bytes allocated", allocated(&file));

        assert_eq!(data_start(&file, 0, 1_000_000), kept, "a reader from 0 starts at the oldest kept byte");
        assert_eq!(data_start(&file, kept + 5, 1_000_000), kept + 5, "kept offsets are unchanged");
        let mut reader = &file;
        reader.seek(SeekFrom::Start(7)).expect("seek");
        let _ = data_start(&file, 0, 1_000_000);
        assert_eq!(reader.stream_position().expect("position"), 7, "a reader's position is left alone");
        let mut tail = Vec::new();
        let mut reader = &file;
        reader.seek(SeekFrom::Start(kept)).expect("seek");
        reader.read_to_end(&mut tail).expect("read");
        assert!(!tail.contains(&0), "what is kept is the real output");
        assert_eq!(tail.len() as u64, 1_000_000 - kept);
        assert_eq!(Cap::new(Some(200_000), &file, 1_000_000).kept_from, kept, "found again after a restart");
    }

    #[test]
    fn within_the_cap_or_without_one_nothing_goes() {
        let (_tmp, file) = written(300_000);
        let mut cap = Cap::new(Some(400_000), &file, 300_000);
        cap.after_append(&file, 300_000, uuid::Uuid::nil());
        let mut unlimited = Cap::new(None, &file, 300_000);
        unlimited.after_append(&file, 300_000, uuid::Uuid::nil());
        assert_eq!((cap.kept_from, unlimited.kept_from), (0, 0));
        assert_eq!(data_start(&file, 0, 300_000), 0);
        assert_eq!(data_start(&file, 300_000, 300_000), 300_000);
    }
}
