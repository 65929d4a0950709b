//! Skipping output that cannot show: while a program floods its terminal, most of
//! what it prints is scrolled away or overwritten before anyone looks, so it need
//! not be parsed cell by cell.
//!
//! Between the escape sequences that change anything but colours, a batch is made
//! of *segments*: printable ASCII, CR, LF, VT, FF, BS, tab and SGR (colour)
//! sequences, whose effect on the cursor is simple enough to follow here. A first
//! pass finds the segments and only counts their CRs, LFs and printable bytes; a
//! segment that could hold a skip by those counts (a full-screen program's output is
//! mostly sequences back to back and short segments, which cannot) is then read
//! closely. Within it, the longest stretch is found that leaves the cursor
//! where it found it and whose every cell is redrawn by later bytes of the same
//! segment, either
//! - because at least `2 × rows` line feeds or wraps follow it, so every visible
//!   row is made by scrolling, from later bytes (lines, long lines, wrapping
//!   progress bars), or
//! - because it stays on one row and the text written after it on that row from
//!   column 0 is at least as long (progress bars redrawn with a carriage return).
//!
//! The stretch is replaced by the SGR sequences it ended with (from its last
//! reset), so colours after it are as they would have been.

use std::ops::Range;

mod segment;
use segment::{KEPT_POINTS, SEGMENT};

/// What the parser is in the middle of, as far as this scan can tell. It follows
/// `vte`'s state machine for ASCII bytes, and errs towards "inside a sequence" for
/// others: only `Ground` is relied upon.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum Seq {
    #[default]
    Ground,
    Escape,
    EscapeIntermediate,
    Csi,
    /// An OSC string (ends with BEL).
    Osc,
    /// A DCS, SOS, PM or APC string.
    Str,
}

const ESC: u8 = 0x1b;

impl Seq {
    /// The state after `b`, which is not read in `Ground`.
    fn step(self, b: u8) -> Seq {
        match (self, b) {
            (_, ESC) => Seq::Escape,
            (_, 0x18 | 0x1a) => Seq::Ground,
            (Seq::Escape, 0x20..=0x2f) => Seq::EscapeIntermediate,
            (Seq::Escape, b'[') => Seq::Csi,
            (Seq::Escape, b']') => Seq::Osc,
            (Seq::Escape, b'P' | b'X' | b'^' | b'_') => Seq::Str,
            (Seq::Escape | Seq::EscapeIntermediate, 0x30..=0x7e) | (Seq::Csi, 0x40..=0x7e) | (Seq::Osc, 0x07) => {
                Seq::Ground
            }
            (state, _) => state,
        }
    }
}

/// A stretch of a batch that need not be parsed, and the bytes that stand in for it.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Skip {
    pub range: Range<usize>,
    pub replay: Vec<u8>,
}

/// What a scan found: the longest skip, and the parser's state after the batch.
#[derive(Debug)]
pub(super) struct Scan {
    pub skip: Option<Skip>,
    pub seq: Seq,
    pub region: bool,
}

/// The length of the run of printable ASCII at the start of `bytes`, looking at
/// eight bytes at a time.
fn printable_len(bytes: &[u8]) -> usize {
    use crate::words::{below, equal, high, position};
    let unprintable = |b: u8| !(0x20..=0x7e).contains(&b);
    position(bytes, |x| below(x, 0x20) | equal(x, 0x7f) | high(x), unprintable).unwrap_or(bytes.len())
}

/// The length of a complete CSI sequence at the start of `bytes` (`ESC [`, parameter
/// and intermediate bytes, a final byte), or `None` when it is not one, is cut off by
/// the end of `bytes`, or holds a byte the parser would act on inside it (a control).
fn csi_len(bytes: &[u8]) -> Option<usize> {
    let rest = bytes.strip_prefix(b"\x1b[")?;
    let params = rest.iter().position(|b| !(0x20..=0x3f).contains(b))?;
    (0x40..=0x7e).contains(&rest[params]).then_some(params + 3)
}

/// An SGR sequence (`CSI [0-9;:]* m`) at the start of `bytes`: its length, and
/// whether it begins by resetting every attribute (no parameter, or a first one of 0).
fn sgr(bytes: &[u8]) -> Option<(usize, bool)> {
    let params = bytes.strip_prefix(b"\x1b[")?;
    let len = params.iter().take_while(|b| b.is_ascii_digit() || **b == b';' || **b == b':').count();
    if params.get(len) != Some(&b'm') {
        return None;
    }
    let first = params[..len].split(|b| *b == b';').next().unwrap_or_default();
    Some((len + 3, first.iter().all(|b| *b == b'0')))
}

/// Scans `batch`, which the parser meets in state `seq` with a scroll region set or
/// not, for the longest stretch it need not parse (see the module's comment).
pub(super) fn scan(batch: &[u8], rows: u16, cols: u16, mut seq: Seq, mut region: bool) -> Scan {
    let cols = cols.max(1);
    let mut best: Option<Skip> = None;
    let mut seg = SEGMENT.take();
    // A first pass finds the segments and counts what could make one worth a closer
    // look; most of a full-screen program's output is sequences back to back and
    // short segments, which are not looked at twice.
    let mut sketch = Sketch::default();
    if seq == Seq::Ground {
        sketch.start = Some(0);
    }
    // Where the escape sequence being read began, when in this batch.
    let mut began: Option<usize> = None;
    let mut end = |sketch: &mut Sketch, at: usize, region: bool, best: &mut Option<Skip>| {
        let sketch = std::mem::take(sketch);
        let Some(from) = sketch.start else { return };
        let len = at - from;
        let than = best.as_ref().map_or(0, |b| b.range.len());
        let need = 2 * u32::from(rows);
        let worth = len > than.max(usize::from(cols))
            && (sketch.cr >= 2 || sketch.lf >= need || sketch.printable >= usize::from(cols) * need as usize);
        if worth {
            seg.read(batch, from..at, region, cols);
            if let Some(skip) = seg.best(batch, rows, cols, than) {
                *best = Some(skip);
            }
        }
    };
    let mut i = 0;
    while i < batch.len() {
        let b = batch[i];
        if seq != Seq::Ground {
            if b == ESC {
                began = Some(i);
            }
            seq = seq.step(b);
            i += 1;
            if seq == Seq::Ground {
                // Only DECSTBM, DECSTR and RIS change the scroll region.
                if matches!(b, b'r' | b'p' | b'c') {
                    region = match began {
                        Some(from) => region_after(region, &batch[from..i], rows),
                        // Its start was in an earlier batch: a region may have been set.
                        None => true,
                    };
                }
                began = None;
            }
            continue;
        }
        let step = match b {
            0x20..=0x7e => {
                let len = printable_len(&batch[i..]);
                sketch.printable += len;
                len
            }
            b'\r' => {
                sketch.cr += 1;
                1
            }
            0x0a..=0x0c => {
                sketch.lf += 1;
                1
            }
            0x08 | 0x09 => 1,
            ESC => match sgr(&batch[i..]) {
                Some((len, _)) => len,
                None => {
                    end(&mut sketch, i, region, &mut best);
                    // A whole CSI sequence at once (most of a full-screen program's
                    // output); anything unusual inside one goes byte by byte below.
                    if let Some(len) = csi_len(&batch[i..]) {
                        if matches!(batch[i + len - 1], b'r' | b'p') {
                            region = region_after(region, &batch[i..i + len], rows);
                        }
                        i += len;
                        continue;
                    }
                    began = Some(i);
                    seq = Seq::Escape;
                    i += 1;
                    continue;
                }
            },
            // UTF-8 (in ground, vte reads it as text) ends the segment, all of it.
            0x80.. => {
                end(&mut sketch, i, region, &mut best);
                i += batch[i..].iter().position(|b| *b < 0x80).unwrap_or(batch.len() - i);
                continue;
            }
            // Anything else (another control, DEL) ends the segment.
            _ => {
                end(&mut sketch, i, region, &mut best);
                i += 1;
                continue;
            }
        };
        sketch.start.get_or_insert(i);
        i += step;
    }
    end(&mut sketch, batch.len(), region, &mut best);
    seg.keep_at_most(KEPT_POINTS);
    SEGMENT.set(seg);
    Scan { skip: best, seq, region }
}

/// What the first pass counts of a segment.
#[derive(Default)]
struct Sketch {
    start: Option<usize>,
    cr: u32,
    lf: u32,
    printable: usize,
}

/// Whether a scroll region is set after `bytes`, given whether one was before:
/// follows DECSTBM (`CSI top;bottom r`), and RIS and DECSTR, which clear it.
pub(super) fn region_after(mut active: bool, bytes: &[u8], rows: u16) -> bool {
    // A control inside a sequence is carried out by the parser and is no part of the
    // sequence (`ESC [ 3 CR r` sets a region); DEL and bytes above it are ignored
    // there (`vte`). CAN and SUB cancel the sequence: they stay, and then it reads as
    // nothing.
    let inside = |b: u8| (b < 0x20 && !matches!(b, 0x18 | 0x1a | 0x1b)) || b >= 0x7f;
    let kept: Vec<u8>;
    let bytes = if bytes.iter().any(|b| inside(*b)) {
        kept = bytes.iter().copied().filter(|b| !inside(*b)).collect();
        &kept[..]
    } else {
        bytes
    };
    let mut i = 0;
    while let Some(at) = memchr::memchr(0x1b, &bytes[i..]) {
        let rest = &bytes[i + at + 1..];
        if rest.first() == Some(&b'c') || rest.starts_with(b"[!p") {
            active = false;
        } else if let Some(params) = rest.strip_prefix(b"[") {
            let len = params.iter().take_while(|b| b.is_ascii_digit() || **b == b';').count();
            if params.get(len) == Some(&b'r') {
                let text = String::from_utf8_lossy(&params[..len]);
                let full = format!("1;{rows}");
                active = !(text.is_empty() || text == ";" || text == "1" || text == full);
            }
        }
        i += at + 1;
    }
    active
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use vt100::Parser;

    pub(in crate::terminal::screen) fn contents(parser: &Parser) -> (String, (u16, u16)) {
        (parser.screen().contents(), parser.screen().cursor_position())
    }

    /// The screen after `bytes` parsed whole, and after them parsed with the skip
    /// the scan finds (which must be the same), and how much was skipped.
    fn both(bytes: &[u8], rows: u16, cols: u16) -> (String, String, usize) {
        let mut full = Parser::new(rows, cols, 0);
        full.process(bytes);
        let mut skipped = Parser::new(rows, cols, 0);
        let scan = scan(bytes, rows, cols, Seq::Ground, false);
        let len = match &scan.skip {
            Some(skip) => {
                skipped.process(&bytes[..skip.range.start]);
                skipped.process(&skip.replay);
                skipped.process(&bytes[skip.range.end..]);
                skip.range.len()
            }
            None => {
                skipped.process(bytes);
                0
            }
        };
        let show = |p: &Parser| format!("{:?} {:?}", contents(p), p.screen().state_formatted());
        (show(&full), show(&skipped), len)
    }

    #[test]
    fn a_flood_of_plain_text_skips_what_scrolls_away() {
        let mut flood = b"\x1b[31mred start\r\n".to_vec();
        for i in 0..5000 {
            flood.extend_from_slice(format!("line {i} {}\r\n", "x".repeat(i % 300)).as_bytes());
        }
        flood.extend_from_slice(b"\x1b[0mprompt> ");
        let (full, skipped, len) = both(&flood, 24, 80);
        assert!(len > flood.len() * 9 / 10, "most of it is skipped");
        assert_eq!(skipped, full);
    }

    #[test]
    fn each_shape_of_flood_is_mostly_skipped() {
        let ansi = "\x1b[32m[ok]\x1b[0m \x1b[1;34mbuild\x1b[0m step \x1b[33mdone\x1b[0m\r\n".repeat(2000);
        let progress: String = (0..3000)
            .map(|i| format!("\r[{}{}] {:3}%", "#".repeat(i % 100), " ".repeat(100 - i % 100), i % 100))
            .collect();
        let shapes = [
            ("one endless line", "x".repeat(200_000)),
            ("coloured lines", ansi),
            ("progress bars on one row", progress.clone()),
            ("progress bars that wrap", progress),
        ];
        for (i, (name, text)) in shapes.iter().enumerate() {
            let cols = if i == 3 { 80 } else { 120 };
            let (full, skipped, len) = both(text.as_bytes(), 40, cols);
            assert!(len > text.len() * 8 / 10, "{name}: {len} of {} skipped", text.len());
            assert_eq!(skipped, full, "{name}");
        }
    }

    #[test]
    fn the_colour_a_skip_ends_with_is_kept() {
        let text =
            format!("\r\n{}\x1b[0;1m\x1b[31m{}\r\n{}", "a\r\n".repeat(100), "b\r\n".repeat(100), "c\r\n".repeat(30));
        let scan = scan(text.as_bytes(), 10, 20, Seq::Ground, false);
        let skip = scan.skip.expect("a skip");
        assert_eq!(skip.replay, b"\x1b[0;1m\x1b[31m", "from the last reset");
        let (full, skipped, _) = both(text.as_bytes(), 10, 20);
        assert_eq!(skipped, full);
    }

    #[test]
    fn escapes_a_scroll_region_or_a_string_prevent_skipping() {
        let lines = "a\r\n".repeat(200);
        let skips =
            |text: &str, rows: u16, seq: Seq, region: bool| scan(text.as_bytes(), rows, 80, seq, region).skip.is_some();
        assert!(skips(&format!("x\r\n{lines}\x1b[1H{lines}"), 10, Seq::Ground, false), "around the escape");
        assert!(!skips(&format!("x\r\n{lines}\x1b[1H"), 101, Seq::Ground, false), "too few feeds before it");
        assert!(!skips(&format!("x\r\n{lines}"), 10, Seq::Ground, true), "a scroll region is set");
        assert!(!skips(&format!("x\r\n\x1b[2;5r\r\n{lines}"), 10, Seq::Ground, false), "set in this batch");
        assert!(!skips(&format!("x\r\n\x1b[2;5\rr\r\n{lines}"), 10, Seq::Ground, false), "set with a control inside");
        assert!(skips(&format!("x\r\n\x1b[2;5\x18r\r\n{lines}"), 10, Seq::Ground, false), "a cancelled one");
        assert!(!skips(&format!("x\r\n\x1b[2;5\u{e9}r\r\n{lines}"), 10, Seq::Ground, false), "set with UTF-8 inside");
        assert!(skips(&format!("x\r\n\x1b[r\r\n{lines}"), 10, Seq::Ground, true), "cleared in this batch");
        assert!(!skips(&lines, 200, Seq::Ground, false), "too few line feeds after it");
        let title = "x".repeat(50_000);
        assert!(!skips(&title, 10, Seq::Osc, false), "inside a title");
        assert!(!skips(&format!("\x1b]0;{title}"), 10, Seq::Ground, false), "a title begun in this batch");
        assert!(skips(&format!("\x1b]0;t\x07{title}"), 10, Seq::Ground, false), "after a title");
        let after = scan(b"ab\x1b]0;tit", 10, 80, Seq::Ground, false);
        assert_eq!(after.seq, Seq::Osc, "a title cut by the batch's end");
    }

    proptest::proptest! {
        #[test]
        fn the_word_at_a_time_scan_finds_the_end_of_printable_text(
            bytes in proptest::collection::vec(proptest::prop_oneof![0x20u8..0x7F, proptest::num::u8::ANY], 0..100),
        ) {
            proptest::prop_assert_eq!(printable_len(&bytes), bytes.iter().position(|b| !(0x20..=0x7e).contains(b)).unwrap_or(bytes.len()));
        }

        #[test]
        fn skipping_never_changes_the_screen(
            before in proptest::collection::vec(proptest::sample::select(vec![
                &b"hello"[..], b"\x1b[2J", b"\x1b[5;10H", b"\x1b[2;3r", b"\x1b[1;32m", b"\r\n", b"\n", b"\x1b[?1049h",
                "wide \u{5b57}".as_bytes(), b"\x1b[0m", b"\t", b"\x08", b"\x1b]0;ti", b"\x1b[3", b"\xc3", b"\x1bP1", b"\x07",
            ]), 0..6),
            parts in proptest::collection::vec((0usize..12, 0usize..150, 0u8..26), 0..400),
            rows in 2u16..12,
            cols in 2u16..40,
        ) {
            let mut bytes: Vec<u8> = before.concat();
            for (kind, len, letter) in parts {
                let run = || std::iter::repeat_n(b'a' + letter, len);
                match kind {
                    0..=3 => bytes.extend(run()),
                    4 => bytes.push(b'\r'),
                    5 => bytes.extend_from_slice(b"\r\n"),
                    6 => bytes.push(b"\n\x0b\x0c\x08\t"[len % 5]),
                    7 => bytes.extend_from_slice([&b"\x1b[1;31m"[..], b"\x1b[0m", b"\x1b[m", b"\x1b[;4m", b"\x1b[38;5;0m", b"\x1b[7m"][len % 6]),
                    8 => {
                        bytes.push(b'\r');
                        bytes.extend(run());
                    }
                    9 if len % 8 == 0 => bytes.extend_from_slice([&b"\x1b[H"[..], b"\x1b[K", b"\x1b[3;5r", b"\x1b[r", b"\x1b]0;t\x07", "é".as_bytes(), b"\x1b[?7l", b"\x1b[4h"][len / 8 % 8]),
                    _ => bytes.extend_from_slice(b"\r\n"),
                }
            }
            let (full, skipped, _) = both(&bytes, rows, cols);
            proptest::prop_assert_eq!(skipped, full);
        }
    }
}
