//! Skipping output that cannot show: while a program floods its terminal, most of
//! what it prints scrolls away before anyone looks, so a run of plain lines with
//! enough line feeds after it need not be parsed at all.

/// Whether a byte of plain text: printable ASCII, or CR, LF, VT, FF, tab, backspace.
/// Such bytes move the cursor and print, but change no mode, colour or charset.
fn plain(b: u8) -> bool {
    matches!(b, 0x08..=0x0D | 0x20..=0x7E)
}

/// Where the first byte that is not plain text is, looking at eight bytes at a
/// time: a word with no control byte, DEL or byte above 0x7F is all printable.
fn not_plain(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut words = bytes.chunks_exact(8);
    let mut at = 0;
    for word in &mut words {
        // A failed conversion (it cannot fail) gives 0, which is checked byte by byte.
        let x = <[u8; 8]>::try_from(word).map_or(0, u64::from_le_bytes);
        let control = x.wrapping_sub(ONES * 0x20) & !x & HIGH;
        let del = (x ^ (ONES * 0x7F)).wrapping_sub(ONES) & !(x ^ (ONES * 0x7F)) & HIGH;
        if (control | del | (x & HIGH)) != 0 {
            if let Some(p) = word.iter().position(|b| !plain(*b)) {
                return Some(at + p);
            }
        }
        at += 8;
    }
    words.remainder().iter().position(|b| !plain(*b)).map(|p| at + p)
}

/// Whether a scroll region is set after `bytes`, given whether one was before:
/// follows DECSTBM (`CSI top;bottom r`), and RIS and DECSTR, which clear it.
pub(super) fn region_after(mut active: bool, bytes: &[u8], rows: u16) -> bool {
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

/// The range of `batch` that cannot affect the screen once the rest is parsed: a
/// run of plain text followed by at least `2 × rows` line feeds before any other
/// kind of byte, with no scroll region set, so that every visible row is made by
/// scrolling, from later bytes. The run starts after the first line (a control
/// sequence cut by a read is completed there; they do not span line ends) and
/// after the line of any control sequence, and ends with CR LF, so the next byte
/// starts at column 0 either way.
pub(super) fn skippable(batch: &[u8], rows: u16, region_before: bool) -> Option<std::ops::Range<usize>> {
    let crlf = |from: usize, to: usize| batch[from..to].windows(2).position(|w| w == b"\r\n").map(|p| from + p + 2);
    let first_line = crlf(0, batch.len())?;
    let needed = 2 * usize::from(rows);
    let mut best: Option<std::ops::Range<usize>> = None;
    let mut segment_start = first_line;
    while segment_start < batch.len() {
        let segment_end = not_plain(&batch[segment_start..]).map_or(batch.len(), |p| segment_start + p);
        // Within this plain segment: the last CR LF that leaves `needed` feeds after it.
        let mut feeds = 0;
        let mut end = None;
        for i in (segment_start..segment_end).rev() {
            if batch[i] == b'\n' {
                if feeds >= needed && i > segment_start && batch[i - 1] == b'\r' {
                    end = Some(i + 1);
                    break;
                }
                feeds += 1;
            }
        }
        let start = if segment_start == first_line { Some(segment_start) } else { crlf(segment_start, segment_end) };
        if let (Some(start), Some(end)) = (start, end) {
            let longer = best.as_ref().is_none_or(|b| end.saturating_sub(start) > b.len());
            if end > start && longer && !region_after(region_before, &batch[..start], rows) {
                best = Some(start..end);
            }
        }
        segment_start = segment_end + 1;
    }
    best
}
#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use vt100::Parser;

    pub(in crate::terminal::screen) fn contents(parser: &Parser) -> (String, (u16, u16)) {
        (parser.screen().contents(), parser.screen().cursor_position())
    }

    #[test]
    fn a_flood_of_plain_text_skips_what_scrolls_away() {
        let mut flood = b"\x1b[31mred start\r\n".to_vec();
        for i in 0..5000 {
            flood.extend_from_slice(format!("line {i} {}\r\n", "x".repeat(i % 300)).as_bytes());
        }
        flood.extend_from_slice(b"\x1b[0mprompt> ");
        let run = skippable(&flood, 24, false).expect("a plain run");
        assert!(run.len() > flood.len() * 9 / 10, "most of it is skipped");
        let mut full = Parser::new(24, 80, 0);
        full.process(&flood);
        let mut skipped = Parser::new(24, 80, 0);
        skipped.process(&flood[..run.start]);
        skipped.process(&flood[run.end..]);
        assert_eq!(contents(&skipped), contents(&full));
        assert_eq!(skipped.screen().state_formatted(), full.screen().state_formatted());
    }

    #[test]
    fn escapes_in_the_run_or_a_cut_sequence_prevent_skipping() {
        let lines = "a\r\n".repeat(200);
        assert!(skippable(format!("x\r\n{lines}\x1b[1m{lines}").as_bytes(), 10, false).is_some(), "around the escape");
        assert!(skippable(format!("x\r\n{lines}\x1b[1m").as_bytes(), 100, false).is_none(), "too few feeds before it");
        assert!(skippable(format!("x\r\n{lines}").as_bytes(), 10, true).is_none(), "a scroll region is set");
        assert!(skippable(format!("x\r\n\x1b[2;5r\r\n{lines}").as_bytes(), 10, false).is_none(), "set in this batch");
        assert!(skippable(format!("x\r\n\x1b[r\r\n{lines}").as_bytes(), 10, true).is_some(), "cleared in this batch");
        assert!(skippable(lines.as_bytes(), 200, false).is_none(), "too few line feeds after it");
    }

    proptest::proptest! {
        #[test]
        fn the_word_at_a_time_scan_finds_the_first_byte_that_is_not_plain(
            bytes in proptest::collection::vec(proptest::prop_oneof![0x20u8..0x7F, proptest::num::u8::ANY], 0..100),
        ) {
            proptest::prop_assert_eq!(not_plain(&bytes), bytes.iter().position(|b| !plain(*b)));
        }
    }
}
