//! `switchboard attach`: an instance's terminal in yours.
//!
//! The instance's stream draws its current screen, then its live output; what you
//! type goes to its `/input`; your terminal's size becomes its size (and its own is
//! given back when you detach). Three threads: the stream (this one), the keyboard,
//! and one that waits for signals. Whatever ends the session — the detach key, the
//! instance's end, a signal, a panic — restores your terminal first.
//!
//! A connection that drops is opened again with the last event id, so the output
//! resumes at the exact byte it stopped at (a server restart included); a one-line
//! notice says so.
#![allow(unsafe_code)] // ioctl(TIOCGWINSZ): the window size of your terminal.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::ExitCode;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, Signal};
use nix::sys::termios::{self, SetArg, Termios};
use serde_json::{json, Value};

use super::http::{Client, Failure};

/// Your terminal's settings before raw mode, restored on the way out.
static SAVED: Mutex<Option<Termios>> = Mutex::new(None);

/// Longest time keystrokes are retried while the server cannot be reached.
const INPUT_RETRY: Duration = Duration::from_secs(60);

struct Session {
    client: Client,
    id: String,
    /// The instance's size before it took yours, given back on detach.
    original: (u64, u64),
}

/// Attaches to `instance` until it ends (its exit code) or you detach (0).
///
/// # Errors
/// Not a terminal, or the instance cannot be reached to begin with.
pub fn attach(client: Client, instance: &Value, detach: u8) -> Result<ExitCode, Failure> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        return Err(Failure::Other("attach needs a terminal: stdin and stdout must be one".into()));
    }
    let id = instance["id"].as_str().unwrap_or_default().to_owned();
    let original = (instance["cols"].as_u64().unwrap_or(120), instance["rows"].as_u64().unwrap_or(40));
    let session = Arc::new(Session { client, id, original });
    // Signals are taken by one thread; block them before any thread starts.
    let mut signals = SigSet::empty();
    for sig in [Signal::SIGWINCH, Signal::SIGTERM, Signal::SIGHUP, Signal::SIGINT, Signal::SIGQUIT] {
        signals.add(sig);
    }
    signals.thread_block().map_err(|e| Failure::Other(format!("cannot take signals: {e}")))?;
    enter_raw_mode()?;
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        previous(info);
    }));
    follow_size(&session);
    let on_signal = session.clone();
    std::thread::spawn(move || loop {
        match signals.wait() {
            Ok(Signal::SIGWINCH) => follow_size(&on_signal),
            Ok(sig) => leave(&on_signal, 128 + sig as u8, &format!("{sig}; the instance runs on"), true),
            Err(_) => {}
        }
    });
    let typing = session.clone();
    std::thread::spawn(move || keyboard(&typing, detach));
    Ok(output(&session))
}

fn enter_raw_mode() -> Result<(), Failure> {
    let stdin = std::io::stdin();
    let saved =
        termios::tcgetattr(&stdin).map_err(|e| Failure::Other(format!("cannot read the terminal's mode: {e}")))?;
    let mut raw = saved.clone();
    termios::cfmakeraw(&mut raw);
    *SAVED.lock().unwrap_or_else(PoisonError::into_inner) = Some(saved);
    termios::tcsetattr(&stdin, SetArg::TCSAFLUSH, &raw).map_err(|e| Failure::Other(format!("cannot set raw mode: {e}")))
}

fn restore_terminal() {
    if let Some(saved) = SAVED.lock().unwrap_or_else(PoisonError::into_inner).take() {
        let _ = termios::tcsetattr(std::io::stdin(), SetArg::TCSAFLUSH, &saved);
    }
}

/// Restores your terminal, gives the instance its size back when it still runs,
/// says why, and exits.
fn leave(session: &Session, code: u8, why: &str, give_back: bool) -> ! {
    restore_terminal();
    if give_back {
        let (cols, rows) = session.original;
        let _ = session.client.call("POST", &resize_path(&session.id), Some(&json!({"cols": cols, "rows": rows})));
    }
    let mut out = std::io::stdout();
    let _ = write!(out, "\r\n[switchboard: {why}]\r\n");
    let _ = out.flush();
    std::process::exit(i32::from(code));
}

fn resize_path(id: &str) -> String {
    format!("/api/instances/{id}/resize")
}

/// Your terminal's size, as (cols, rows).
fn window_size() -> Option<(u16, u16)> {
    let mut size = libc::winsize { ws_row: 0, ws_col: 0, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCGWINSZ fills the winsize it is given.
    let done = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &raw mut size) };
    (done == 0 && size.ws_col > 0 && size.ws_row > 0).then_some((size.ws_col, size.ws_row))
}

fn follow_size(session: &Session) {
    if let Some((cols, rows)) = window_size() {
        let _ = session.client.call("POST", &resize_path(&session.id), Some(&json!({"cols": cols, "rows": rows})));
    }
}

/// What you type, to the instance, until the detach key.
fn keyboard(session: &Session, detach: u8) {
    let mut buf = [0u8; 4096];
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let n = match nix::unistd::read(std::io::stdin(), &mut buf) {
            Ok(0) => leave(session, 0, "your terminal closed; the instance runs on", true),
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => leave(session, 1, &format!("cannot read your terminal: {e}"), true),
        };
        let chunk = &buf[..n];
        let (typed, detached) = match chunk.iter().position(|b| *b == detach) {
            Some(at) => (&chunk[..at], true),
            None => (chunk, false),
        };
        pending.extend_from_slice(typed);
        // Whole UTF-8 characters only; a character split across reads waits for its end.
        let whole = match std::str::from_utf8(&pending) {
            Ok(text) => text.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => pending.len(),
        };
        if whole > 0 {
            let text = String::from_utf8_lossy(&pending[..whole]).into_owned();
            pending.drain(..whole);
            type_in(session, &text);
        }
        if detached {
            let id = &session.id[..8.min(session.id.len())];
            leave(session, 0, &format!("detached; the instance runs on (switchboard attach {id})"), true);
        }
    }
}

/// Sends keystrokes, in order, retrying while the server cannot be reached (a
/// restart) or asks to slow down.
fn type_in(session: &Session, text: &str) {
    let path = format!("/api/instances/{}/input", session.id);
    let body = json!({"data": text});
    let started = Instant::now();
    loop {
        match session.client.call("POST", &path, Some(&body)) {
            Ok(answer) if answer.status == 429 => {}
            Ok(_) => return, // typed, or the instance no longer runs (its end arrives on the stream)
            Err(Failure::Unreachable { .. }) if started.elapsed() < INPUT_RETRY => {}
            Err(_) => return,
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// One server-sent event.
#[derive(Default)]
struct Event {
    name: String,
    data: String,
    id: Option<String>,
}

/// The instance's screen and output, until it ends; resumes after a dropped connection.
fn output(session: &Session) -> ExitCode {
    let path = format!("/api/instances/{}/stream", session.id);
    let mut last: Option<String> = None;
    let mut lost = false;
    loop {
        match session.client.stream(&path, last.as_deref()) {
            Ok(stream) => {
                lost = false;
                let end = read_events(stream, &mut last);
                if let Some(end) = end {
                    let status = end["status"].as_str().unwrap_or("ended").to_owned();
                    let code = end["exit_code"].as_i64();
                    let shown = code.map(|c| format!(", exit code {c}")).unwrap_or_default();
                    let exit = code.and_then(|c| u8::try_from(c).ok()).unwrap_or(u8::from(status != "completed"));
                    let id = &session.id[..8.min(session.id.len())];
                    leave(session, exit, &format!("instance {id} ended: {status}{shown}"), false);
                }
            }
            Err(Failure::Unreachable { .. } | Failure::Other(_)) => {}
            Err(e) => leave(session, 1, &e.to_string(), false),
        }
        if !lost {
            lost = true;
            let mut out = std::io::stdout();
            let _ = write!(
                out,
                "\r\n[switchboard: lost the connection to {}; resuming where it stopped…]\r\n",
                session.client.base
            );
            let _ = out.flush();
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Writes the stream's terminal bytes to your terminal until it ends (its `end`
/// event) or breaks off (`None`); `last` follows the event ids.
fn read_events(stream: impl Read, last: &mut Option<String>) -> Option<Value> {
    let mut reader = BufReader::with_capacity(64 * 1024, stream);
    let mut out = std::io::stdout();
    let mut event = Event::default();
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        let text = line.trim_end_matches(['\r', '\n']);
        if text.is_empty() {
            let done = std::mem::take(&mut event);
            if let Some(id) = &done.id {
                *last = Some(id.clone());
            }
            match done.name.as_str() {
                "snapshot" | "output" => {
                    let data: Value = serde_json::from_str(&done.data).unwrap_or(Value::Null);
                    if let Some(bytes) = data["data"].as_str() {
                        let _ = out.write_all(bytes.as_bytes());
                        let _ = out.flush();
                    }
                }
                "end" => return Some(serde_json::from_str(&done.data).unwrap_or(Value::Null)),
                // Fell too far behind: the next connection starts from a fresh screen.
                "reset" => *last = None,
                _ => {}
            }
            continue;
        }
        if text.starts_with(':') {
            continue;
        }
        let (field, value) = text.split_once(':').map_or((text, ""), |(f, v)| (f, v.strip_prefix(' ').unwrap_or(v)));
        match field {
            "event" => event.name = value.to_owned(),
            "data" => {
                if !event.data.is_empty() {
                    event.data.push('\n');
                }
                event.data.push_str(value);
            }
            "id" => event.id = Some(value.to_owned()),
            _ => {}
        }
    }
}
