//! The terminal model of one instance, kept small while it is quiet.
//!
//! A live `vt100` parser at 120×40 costs about 150 KiB, and memory the allocator
//! got back is rarely returned to the system, so the peak number of live parsers
//! is what counts. A screen is therefore *folded* into its `state_formatted()`
//! bytes (about 1–2 KiB) when it has been quiet for a moment, and each thread keeps
//! at most [`LIVE_PER_THREAD`] parsers: making one more live folds the one that
//! became live longest ago. A folded screen is rebuilt on demand (output,
//! a snapshot, the prompt text). Folding keeps contents, cursor and input modes;
//! a scroll region set by a full-screen program is not kept (it redraws anyway).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::{Rc, Weak};

use vt100::Parser;

mod guard;
mod skip;
use guard::guarded;
use skip::{scan, Seq};

/// Most live parsers one thread keeps.
pub const LIVE_PER_THREAD: usize = 8;

/// Output is parsed in batches of about this size.
const BATCH: usize = 256 * 1024;

/// The model is never smaller than this: `vt100` overflows drawing a wide character
/// in a one-column terminal and wrapping a line in a one-row one, and a child
/// process chooses what it prints. A one-column or one-row terminal is modelled two
/// wide or high.
const MIN_SIZE: u16 = 2;

struct Model {
    rows: u16,
    cols: u16,
    live: Option<Box<Parser>>,
    folded: Box<[u8]>,
    bracketed_paste: bool,
    /// Output not parsed yet.
    pending: Vec<u8>,
    /// Whether the output parsed so far left a scroll region set.
    region: bool,
    /// Whether it ended inside an escape sequence.
    seq: Seq,
}

impl Model {
    fn fold(&mut self) {
        if let Some(parser) = self.live.take() {
            self.folded = parser.screen().state_formatted().into_boxed_slice();
        }
    }
}

thread_local! {
    /// Screens of this thread with a live parser, oldest first.
    static LIVE: RefCell<VecDeque<Weak<RefCell<Model>>>> = const { RefCell::new(VecDeque::new()) };
}

/// A screen that is either live or folded.
pub struct Screen(Rc<RefCell<Model>>);

impl Screen {
    /// An empty screen of this size (nothing is allocated until output arrives).
    #[must_use]
    pub fn new(rows: u16, cols: u16) -> Self {
        Screen(Rc::new(RefCell::new(Model {
            rows: rows.max(MIN_SIZE),
            cols: cols.max(MIN_SIZE),
            live: None,
            folded: Box::default(),
            bracketed_paste: false,
            pending: Vec::new(),
            region: false,
            seq: Seq::Ground,
        })))
    }

    /// Runs `f` on a live parser that has seen all output, making one (and folding
    /// the oldest other) if needed.
    fn with_parser<T>(&self, f: impl FnMut(&mut Parser) -> T) -> T {
        self.parse_pending();
        self.with_live(f)
    }

    fn parse_pending(&self) {
        self.parse(false);
    }

    /// Parses the pending output. With `keep_tail`, output that ends in a skippable
    /// run keeps what follows the run pending instead: the next batch usually makes
    /// that tail skippable in turn, so a program printing lines as fast as it can
    /// costs a scan of its bytes rather than a parse of them.
    fn parse(&self, keep_tail: bool) {
        let mut pending = std::mem::take(&mut self.0.borrow_mut().pending);
        if pending.is_empty() {
            return;
        }
        let (rows, cols, region, seq) = {
            let model = self.0.borrow();
            (model.rows, model.cols, model.region, model.seq)
        };
        let scan = scan(&pending, rows, cols, seq, region);
        let tail = match &scan.skip {
            Some(skip) if keep_tail && pending.len() - skip.range.end < BATCH / 2 => Some(skip.range.end),
            _ => None,
        };
        let paste = self.with_live(|parser| {
            match &scan.skip {
                Some(skip) => {
                    parser.process(&pending[..skip.range.start]);
                    parser.process(&skip.replay);
                    if tail.is_none() {
                        parser.process(&pending[skip.range.end..]);
                    }
                }
                None => parser.process(&pending),
            }
            parser.screen().bracketed_paste()
        });
        // A skip ends outside any sequence and scroll region.
        let (parsed, region, seq) = match tail {
            Some(end) => (end, false, Seq::Ground),
            None => (pending.len(), scan.region, scan.seq),
        };
        pending.drain(..parsed);
        let mut model = self.0.borrow_mut();
        model.bracketed_paste = paste;
        model.region = region;
        model.seq = seq;
        model.pending = pending;
    }

    fn with_live<T>(&self, f: impl FnMut(&mut Parser) -> T) -> T {
        if self.0.borrow().live.is_none() {
            LIVE.with(|live| {
                let mut live = live.borrow_mut();
                live.retain(|w| w.strong_count() > 0 && w.upgrade().is_some_and(|m| m.borrow().live.is_some()));
                while live.len() >= LIVE_PER_THREAD {
                    if let Some(oldest) = live.pop_front().and_then(|w| w.upgrade()) {
                        oldest.borrow_mut().fold();
                    }
                }
                live.push_back(Rc::downgrade(&self.0));
            });
        }
        let mut model = self.0.borrow_mut();
        let Model { rows, cols, live, folded, .. } = &mut *model;
        let parser = live.get_or_insert_with(|| {
            let mut parser = Box::new(Parser::new(*rows, *cols, 0));
            guarded(&mut parser, |parser| parser.process(folded));
            parser
        });
        guarded(parser, f)
    }

    /// The size as (rows, cols) of the model (see [`MIN_SIZE`]).
    #[must_use]
    pub fn size(&self) -> (u16, u16) {
        let model = self.0.borrow();
        (model.rows, model.cols)
    }

    /// Feeds terminal output (parsed in batches; see `skippable`).
    pub fn feed(&mut self, bytes: &[u8]) {
        let full = {
            let mut model = self.0.borrow_mut();
            model.pending.extend_from_slice(bytes);
            model.pending.len() >= BATCH
        };
        if full {
            self.parse(true);
        }
    }

    /// Escape sequences that redraw the current screen from scratch.
    #[must_use]
    pub fn snapshot(&mut self) -> Vec<u8> {
        self.parse_pending();
        let model = self.0.borrow();
        match &model.live {
            Some(parser) => parser.screen().state_formatted(),
            None => model.folded.to_vec(),
        }
    }

    /// Folds the parser away; the screen is rebuilt on demand.
    pub fn fold(&mut self) {
        self.parse_pending();
        self.0.borrow_mut().fold();
    }

    /// Whether a parser is live.
    #[must_use]
    pub fn is_live(&self) -> bool {
        self.0.borrow().live.is_some()
    }

    /// Whether the program turned bracketed paste on.
    #[must_use]
    pub fn bracketed_paste(&self) -> bool {
        self.parse_pending();
        self.0.borrow().bracketed_paste
    }

    /// Changes the size.
    pub fn resize(&mut self, rows: u16, cols: u16) {
        let (rows, cols) = (rows.max(MIN_SIZE), cols.max(MIN_SIZE));
        self.with_parser(|parser| parser.screen_mut().set_size(rows, cols));
        let mut model = self.0.borrow_mut();
        model.rows = rows;
        model.cols = cols;
    }

    /// The non-empty lines of the screen, trailing spaces trimmed.
    fn lines(&mut self) -> Vec<String> {
        let cols = self.0.borrow().cols;
        self.with_parser(|parser| {
            parser.screen().rows(0, cols).map(|l| l.trim_end().to_owned()).filter(|l| !l.trim().is_empty()).collect()
        })
    }

    /// The last non-empty line (what prompt patterns are matched against).
    #[must_use]
    pub fn last_line(&mut self) -> String {
        self.lines().pop().unwrap_or_default()
    }

    /// The last non-empty lines, at most `max_chars` characters, ending at the bottom.
    #[must_use]
    pub fn tail_text(&mut self, max_chars: usize) -> String {
        let mut out: Vec<String> = Vec::new();
        let mut used = 0;
        for line in self.lines().into_iter().rev() {
            let n = line.chars().count() + usize::from(!out.is_empty());
            if used + n > max_chars {
                if out.is_empty() {
                    let skip = line.chars().count().saturating_sub(max_chars);
                    out.push(line.chars().skip(skip).collect());
                }
                break;
            }
            used += n;
            out.push(line);
        }
        out.reverse();
        out.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::skip::tests::contents;
    use super::*;
    use proptest::strategy::Strategy;

    #[test]
    fn folding_keeps_the_screen_and_modes() {
        let mut screen = Screen::new(5, 20);
        screen.feed(b"hello\r\n\x1b[31mred\x1b[0m\r\n\x1b[?2004h$ ");
        assert!(screen.bracketed_paste());
        let before = screen.snapshot();
        screen.fold();
        assert!(!screen.is_live());
        assert_eq!(screen.snapshot(), before);
        assert_eq!(screen.last_line(), "$");
        assert_eq!(screen.tail_text(100), "hello\nred\n$");
        assert_eq!(screen.tail_text(6), "red\n$");
        assert!(screen.bracketed_paste());
    }

    #[test]
    fn a_long_last_line_is_cut_from_the_left() {
        let mut screen = Screen::new(3, 40);
        screen.feed(b"abcdefghij");
        assert_eq!(screen.tail_text(4), "ghij");
    }

    #[test]
    fn a_flood_fed_in_pieces_ends_on_the_same_screen() {
        let mut flood = Vec::new();
        for i in 0..40_000 {
            if i % 997 == 0 {
                flood.extend_from_slice(b"\x1b[1;33m");
            }
            flood.extend_from_slice(format!("line {i} {}\r\n", "y".repeat(i % 200)).as_bytes());
            if i % 1999 == 0 {
                flood.extend_from_slice(b"\x1b[0m");
            }
        }
        flood.extend_from_slice(b"done> ");
        let mut full = Parser::new(24, 80, 0);
        full.process(&flood);
        let mut screen = Screen::new(24, 80);
        let (mut at, mut k) = (0, 0);
        while at < flood.len() {
            let n = (1000 + k * 7919 % 15000).min(flood.len() - at);
            screen.feed(&flood[at..at + n]);
            assert!(screen.0.borrow().pending.len() < BATCH + 16_000, "what waits to be parsed stays bounded");
            at += n;
            k += 1;
        }
        assert_eq!(screen.snapshot(), full.screen().state_formatted());
    }

    proptest::proptest! {
        #[test]
        fn skipping_never_changes_the_screen(
            before in proptest::collection::vec(proptest::sample::select(vec![
                "hello", "\x1b[2J", "\x1b[5;10H", "\x1b[2;3r", "\x1b[1;32m", "\r\n", "\n", "\x1b[?1049h", "wide 字", "\x1b[0m", "\t", "\x08",
            ]), 0..30),
            lines in proptest::collection::vec((0usize..200, proptest::bool::ANY, proptest::option::weighted(0.05, proptest::sample::select(vec!["\x1b[7m", "\x1b[H", "\x1b[3;5r", "\x1b[K", "\x1b]0;title", "\x07", "\x1b[1", "\r"]))), 0..300),
            cut in 0usize..100_000,
            after in "[a-z ]{0,20}",
            rows in 2u16..30,
            cols in 2u16..100,
        ) {
            let mut bytes: Vec<u8> = before.concat().into_bytes();
            bytes.extend_from_slice(b"first\r\n");
            for (len, crlf, escape) in &lines {
                if let Some(escape) = escape {
                    bytes.extend_from_slice(escape.as_bytes());
                }
                bytes.extend_from_slice("y".repeat(*len).as_bytes());
                bytes.extend_from_slice(if *crlf { b"\r\n" } else { b"\n" });
            }
            bytes.extend_from_slice(after.as_bytes());
            let mut full = Parser::new(rows, cols, 0);
            full.process(&bytes);
            // Parsed in two batches, cut anywhere (also inside a sequence or a title).
            let lazy = Screen::new(rows, cols);
            let cut = cut % (bytes.len() + 1);
            lazy.0.borrow_mut().pending = bytes[..cut].to_vec();
            lazy.parse_pending();
            lazy.0.borrow_mut().pending = bytes[cut..].to_vec();
            lazy.parse_pending();
            let model = lazy.0.borrow();
            let parser = model.live.as_ref().expect("parsed");
            proptest::prop_assert_eq!(contents(parser), contents(&full));
        }
    }

    #[test]
    fn a_wide_character_cut_by_a_resize_and_written_over_is_survived() {
        let mut screen = Screen::new(40, 120);
        screen.feed("top\r\n\x1b[2;119H字".as_bytes());
        let _ = screen.last_line();
        screen.resize(40, 119);
        screen.feed(b"\x1b[2;119Hx\r\nstill here");
        assert_eq!(screen.last_line(), "still here");
        let shown = String::from_utf8_lossy(&screen.snapshot()).into_owned();
        assert!(shown.contains("top") && shown.contains("x\r\nstill here"), "the screen before is kept: {shown:?}");
    }

    proptest::proptest! {
        /// A child process chooses what it prints and a client the size (1–1000 each):
        /// no output at any size may bring the model down.
        #[test]
        fn any_output_at_any_size_is_survived(
            pieces in proptest::collection::vec(proptest::prop_oneof![
                proptest::sample::select(vec![
                    "字", "e\u{301}", "\u{200b}", "🙂", "\x1b[2J", "\x1b[1;1H", "\x1b[999;999H", "\x1b[2;1r", "\x1b[L", "\x1b[M",
                    "\x1b[@", "\x1b[P", "\x1b[X", "\x1b[4h", "\x1b[?1049h", "\x1b[?1049l", "\x1b[?6h", "\x1bD", "\x1bM",
                    "\r\n", "\t", "\x08", "\x1b[S", "\x1b[T", "\x1b[10b", "\x1b[K", "\x1b[1K", "\x1b[J", "\x1b[1J", "\x1b[3g",
                ]).prop_map(|s| s.as_bytes().to_vec()),
                proptest::collection::vec(proptest::num::u8::ANY, 0..8),
            ], 0..60),
            sizes in proptest::collection::vec((1u16..4, 1u16..5), 1..4),
        ) {
            let (rows, cols) = sizes[0];
            let mut screen = Screen::new(rows, cols);
            for (i, piece) in pieces.iter().enumerate() {
                screen.feed(piece);
                if let Some(&(rows, cols)) = sizes.get(i % 7) {
                    screen.resize(rows, cols);
                }
                let _ = screen.snapshot();
            }
            let _ = screen.tail_text(100);
        }
    }

    /// The screen model's own speed on each shape of output that `bench/run.py`
    /// floods, one core, no I/O: `cargo test --release --lib parse_rate -- --ignored --nocapture`.
    #[test]
    #[ignore = "a benchmark: prints figures"]
    fn parse_rate() {
        let cast = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/bench/recordings/claude-code.cast"))
            .expect("bench/recordings/claude-code.cast");
        let tui: String = cast
            .lines()
            .skip(1)
            .filter_map(|l| serde_json::from_str::<(f64, String, String)>(l).ok())
            .filter(|(_, kind, _)| kind == "o")
            .map(|(_, _, data)| data)
            .collect();
        let shapes = [
            ("lines", "x".repeat(1023) + "\r\n"),
            ("one endless line", "x".repeat(65536)),
            (
                "ANSI-coloured lines",
                format!("\x1b[32m[ok]\x1b[0m {}\x1b[33mdone\x1b[0m\r\n", "\x1b[1;34mbuild\x1b[0m step ".repeat(40)),
            ),
            (
                "carriage-return progress bars",
                (0..560)
                    .map(|i| format!("\r[{}{}] {:3}%", "#".repeat(i % 100), " ".repeat(100 - i % 100), i % 100))
                    .collect(),
            ),
            ("a recorded Claude Code TUI", tui),
        ];
        for (name, block) in shapes {
            let total = 200 << 20;
            let mut screen = Screen::new(40, 120);
            let started = std::time::Instant::now();
            let mut fed = 0;
            while fed < total {
                for piece in block.as_bytes().chunks(4095) {
                    screen.feed(piece);
                    fed += piece.len();
                }
            }
            let _ = screen.snapshot();
            let secs = started.elapsed().as_secs_f64();
            let mut full = Parser::new(40, 120, 0);
            let started = std::time::Instant::now();
            for _ in 0..(20 << 20) / block.len() {
                full.process(block.as_bytes());
            }
            let parsed = ((20 << 20) / block.len() * block.len()) as f64 / started.elapsed().as_secs_f64() / 1e6;
            println!(
                "{name}: {:.0} MB/s through the screen model, {parsed:.0} MB/s parsed whole",
                fed as f64 / secs / 1e6
            );
        }
    }

    #[test]
    fn a_thread_keeps_only_a_few_live_parsers() {
        let mut screens: Vec<Screen> = (0..LIVE_PER_THREAD * 3).map(|_| Screen::new(4, 10)).collect();
        for (i, screen) in screens.iter_mut().enumerate() {
            screen.feed(format!("screen {i}").as_bytes());
            let _ = screen.last_line();
        }
        assert_eq!(screens.iter().filter(|s| s.is_live()).count(), LIVE_PER_THREAD);
        assert!(screens.last().is_some_and(Screen::is_live), "the newest stays live");
        assert_eq!(screens[0].last_line(), "screen 0", "a folded one is rebuilt on demand");
    }
}
