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

/// Most live parsers one thread keeps.
pub const LIVE_PER_THREAD: usize = 8;

struct Model {
    rows: u16,
    cols: u16,
    live: Option<Box<Parser>>,
    folded: Box<[u8]>,
    bracketed_paste: bool,
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
        Screen(Rc::new(RefCell::new(Model { rows, cols, live: None, folded: Box::default(), bracketed_paste: false })))
    }

    /// Runs `f` on a live parser, making one (and folding the oldest other) if needed.
    fn with_parser<T>(&self, f: impl FnOnce(&mut Parser) -> T) -> T {
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
            let mut parser = Parser::new(*rows, *cols, 0);
            parser.process(folded);
            Box::new(parser)
        });
        f(parser)
    }

    /// The size as (rows, cols).
    #[must_use]
    pub fn size(&self) -> (u16, u16) {
        let model = self.0.borrow();
        (model.rows, model.cols)
    }

    /// Feeds terminal output.
    pub fn feed(&mut self, bytes: &[u8]) {
        let paste = self.with_parser(|parser| {
            parser.process(bytes);
            parser.screen().bracketed_paste()
        });
        self.0.borrow_mut().bracketed_paste = paste;
    }

    /// Escape sequences that redraw the current screen from scratch.
    #[must_use]
    pub fn snapshot(&mut self) -> Vec<u8> {
        let model = self.0.borrow();
        match &model.live {
            Some(parser) => parser.screen().state_formatted(),
            None => model.folded.to_vec(),
        }
    }

    /// Folds the parser away; the screen is rebuilt on demand.
    pub fn fold(&mut self) {
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
        self.0.borrow().bracketed_paste
    }

    /// Changes the size.
    pub fn resize(&mut self, rows: u16, cols: u16) {
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
    use super::*;

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
    fn a_thread_keeps_only_a_few_live_parsers() {
        let mut screens: Vec<Screen> = (0..LIVE_PER_THREAD * 3).map(|_| Screen::new(4, 10)).collect();
        for (i, screen) in screens.iter_mut().enumerate() {
            screen.feed(format!("screen {i}").as_bytes());
        }
        assert_eq!(screens.iter().filter(|s| s.is_live()).count(), LIVE_PER_THREAD);
        assert!(screens.last().is_some_and(Screen::is_live), "the newest stays live");
        assert_eq!(screens[0].last_line(), "screen 0", "a folded one is rebuilt on demand");
    }
}
