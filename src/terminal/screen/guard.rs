//! Calls into `vt100` that survive its panics.
//!
//! `vt100` panics on a few inputs: a wide character left in the last column (by a
//! narrower resize, or pushed there by an insert) and then written over, and
//! arithmetic that overflows in a one-row or one-column terminal. A child process
//! chooses what it prints, so every call into a parser is guarded: a panic rebuilds
//! the parser from what it showed and tries once more, then from an empty screen.
//! The retry applies the whole call again, so output before the failing byte may be
//! drawn twice; the program's next redraw puts the screen right. The panic is
//! logged as a warning, not printed as a crash.

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;

use vt100::Parser;

thread_local! {
    /// Whether a panic on this thread is caught by [`guarded`] (and so not printed).
    static CAUGHT: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` on `parser`, rebuilding the parser when `vt100` panics (see the module's
/// comment).
///
/// # Panics
/// Only if `f` panics on an empty parser too, which no output of a child can cause.
pub(super) fn guarded<T>(parser: &mut Parser, mut f: impl FnMut(&mut Parser) -> T) -> T {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !CAUGHT.get() {
                previous(info);
            }
        }));
    });
    for attempt in 0.. {
        let panic = match caught(|| f(parser)) {
            Ok(value) => return value,
            Err(panic) => panic,
        };
        if attempt == 2 {
            std::panic::resume_unwind(panic);
        }
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        let (rows, cols) = parser.screen().size();
        let mut fresh = Parser::new(rows, cols, 0);
        // First from what it showed; if that fails too, from nothing.
        let kept = attempt == 0 && caught(|| fresh.process(&parser.screen().state_formatted())).is_ok();
        if !kept {
            fresh = Parser::new(rows, cols, 0);
        }
        tracing::warn!(%message, kept_screen = kept, "the terminal model failed on the output; rebuilt it");
        *parser = fresh;
    }
    unreachable!("the third attempt returns or panics")
}

fn caught<T>(f: impl FnOnce() -> T) -> std::thread::Result<T> {
    CAUGHT.set(true);
    let result = catch_unwind(AssertUnwindSafe(f));
    CAUGHT.set(false);
    result
}
