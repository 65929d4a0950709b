//! The terminal client, run as a user runs it: `switchboard attach` inside a real
//! pseudo-terminal (as a user's terminal would hold it), the other commands from a
//! script, against a real server.
#![allow(unsafe_code)] // pre_exec and ioctl: giving the client a controlling terminal of its own.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{eventually, TestApp, TOKEN};

const T: Duration = Duration::from_secs(20);
const BIN: &str = env!("CARGO_BIN_EXE_switchboard");

/// A client process in a pseudo-terminal of its own: what it draws is collected,
/// what is written to the terminal reaches it as keystrokes.
struct Terminal {
    master: File,
    child: Child,
    seen: Arc<Mutex<Vec<u8>>>,
}

fn set_size(fd: &impl AsRawFd, cols: u16, rows: u16) {
    let size = libc::winsize { ws_row: rows, ws_col: cols, ws_xpixel: 0, ws_ypixel: 0 };
    // SAFETY: TIOCSWINSZ reads the winsize it is given.
    let done = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &raw const size) };
    assert_eq!(done, 0, "TIOCSWINSZ");
}

impl Terminal {
    fn run(args: &[&str], cols: u16, rows: u16) -> Terminal {
        let pty = nix::pty::openpty(None, None).expect("openpty");
        set_size(&pty.master, cols, rows);
        let slave: OwnedFd = pty.slave;
        let mut command = Command::new(BIN);
        command
            .args(args)
            .stdin(Stdio::from(slave.try_clone().expect("dup")))
            .stdout(Stdio::from(slave.try_clone().expect("dup")))
            .stderr(Stdio::from(slave))
            .env_remove("SWITCHBOARD_URL")
            .env_remove("SWITCHBOARD_TOKEN");
        // SAFETY: setsid and ioctl are async-signal-safe.
        unsafe {
            use std::os::unix::process::CommandExt;
            command.pre_exec(|| {
                nix::unistd::setsid().map_err(std::io::Error::from)?;
                if libc::ioctl(0, libc::TIOCSCTTY, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn().expect("spawn the client");
        let master = File::from(pty.master);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let mut reader = master.try_clone().expect("dup");
        let sink = seen.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 65536];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().expect("seen").extend_from_slice(&buf[..n]);
            }
        });
        Terminal { master, child, seen }
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.seen.lock().expect("seen")).into_owned()
    }

    fn type_in(&mut self, text: &[u8]) {
        self.master.write_all(text).expect("type");
    }

    fn wait_for(&self, needle: &str) -> String {
        eventually(T, &format!("{needle:?} on the client's terminal"), || {
            let text = self.text();
            text.contains(needle).then_some(text)
        })
    }

    fn exit(&mut self) -> ExitStatus {
        eventually(T, "the client to exit", || self.child.try_wait().ok().flatten())
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client_args<'a>(url: &'a str, rest: &[&'a str]) -> Vec<&'a str> {
    let mut args = rest.to_vec();
    args.extend(["--url", url, "--token", TOKEN]);
    args
}

/// Runs a client command from a script: (exit code, stdout, stderr).
fn script(app: &TestApp, args: &[&str]) -> (i32, String, String) {
    let url = app.url("");
    let out = Command::new(BIN)
        .args(args)
        .env("SWITCHBOARD_URL", url.trim_end_matches('/'))
        .env("SWITCHBOARD_TOKEN", TOKEN)
        .env_remove("SWITCHBOARD_INSTANCE_TOKEN")
        .stdin(Stdio::null())
        .output()
        .expect("run the client");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn shell(app: &TestApp) -> String {
    let agent = app.agent("sh", &["bash", "--norc", "--noprofile", "-i"], json!({"max_concurrent_instances": 30}));
    let id = app.instance(&agent, json!({}))["id"].as_str().expect("id").to_owned();
    app.wait_status(&id, "awaiting_input", T);
    id
}

#[test]
fn attach_types_follows_the_size_detaches_and_attaches_again() {
    let app = TestApp::spawn();
    let url = app.url("");
    let url = url.trim_end_matches('/');
    let id = shell(&app);
    let mut term = Terminal::run(&client_args(url, &["attach", &id[..8]]), 80, 24);
    term.wait_for("bash-");
    term.type_in(b"echo hi-$((6*7))\r");
    term.wait_for("hi-42");
    let cooked = |term: &Terminal| {
        let mode = nix::sys::termios::tcgetattr(&term.master).expect("tcgetattr");
        mode.local_flags.contains(nix::sys::termios::LocalFlags::ICANON | nix::sys::termios::LocalFlags::ECHO)
    };
    assert!(!cooked(&term), "raw mode while attached");
    // The client sends its size as it attaches, beside the snapshot.
    eventually(T, "the instance to take our size", || {
        let attached = app.get(&format!("/api/instances/{id}")).json();
        ((attached["cols"].as_u64(), attached["rows"].as_u64()) == (Some(80), Some(24))).then_some(())
    });

    // The outer terminal is resized: the instance follows (SIGWINCH → /resize).
    set_size(&term.master, 100, 30);
    eventually(T, "the instance to follow the new size", || {
        let now = app.get(&format!("/api/instances/{id}")).json();
        (now["cols"] == 100 && now["rows"] == 30).then_some(())
    });
    term.type_in(b"stty size\r");
    term.wait_for("30 100");

    // Ctrl-\ detaches: the client exits 0, the instance runs on with its own size back.
    term.type_in(&[0x1c]);
    let status = term.exit();
    assert_eq!(status.code(), Some(0), "{}", term.text());
    assert!(term.text().contains("detached"), "{}", term.text());
    assert!(cooked(&term), "the terminal is given back as it was");
    // Still running: it settles back to waiting (the size change made the shell redraw).
    let after = app.wait_status(&id, "awaiting_input", T);
    assert_eq!((after["cols"].as_u64(), after["rows"].as_u64()), (Some(120), Some(40)), "its size given back");

    // Attached again (another detach key): the same screen, drawn at once.
    let mut again = Terminal::run(&client_args(url, &["attach", &id, "--detach-key", "^]"]), 80, 24);
    let screen = again.wait_for("hi-42");
    assert!(screen.contains("30 100"), "{screen}");
    again.type_in(&[0x1d]);
    assert_eq!(again.exit().code(), Some(0));
}

/// `text` without its CSI sequences (`ESC [` parameters, then a final letter).
fn without_control_sequences(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
            out.push(' ');
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn attach_resumes_at_the_exact_byte_after_the_server_restarts() {
    let mut app = TestApp::spawn();
    let url = app.url("");
    let url = url.trim_end_matches('/').to_owned();
    let printer = app.agent(
        "printer",
        &["bash", "-c", "for i in $(seq 1 100000); do echo line-$i; sleep 0.001; done"],
        json!({}),
    );
    let id = app.instance(&printer, json!({}))["id"].as_str().expect("id").to_owned();
    let mut term = Terminal::run(&client_args(&url, &["attach", &id]), 80, 24);
    term.wait_for("line-300\r\n");
    app.kill9();
    let app = app.start_again_on_same_port();
    // The instance died with the server; the client resumes, gets the rest, then the end.
    let status = term.exit();
    let seen = term.text();
    assert!(seen.contains("lost the connection"), "a one-line notice: {seen}");
    assert!(seen.contains("ended: error"), "{seen}");
    assert_eq!(status.code(), Some(1), "an instance that ended in error: {seen}");
    let transcript = app.output(&id);
    let last_written =
        transcript.lines().filter_map(|l| l.strip_prefix("line-")).next_back().expect("lines").trim().to_owned();
    // The screen is drawn first with cursor moves (`ESC [ row ; col H`), whose final
    // letter would otherwise be glued to the line that follows it.
    let numbers: Vec<u64> = without_control_sequences(&seen)
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .filter_map(|w| w.strip_prefix("line-")?.parse().ok())
        .collect();
    let first = numbers[0];
    let expected: Vec<u64> = (first..=last_written.parse().expect("number")).collect();
    assert_eq!(numbers, expected, "every line once, in order, up to the last the instance wrote");
}

#[test]
fn scripts_list_wait_send_and_read_logs() {
    let app = TestApp::spawn();
    let id = shell(&app);
    let asker = app.agent("asker", &["bash", "-c", "read -p 'Deploy build 4812? [y/N] ' a; echo answer=$a"], json!({}));
    let (code, out, err) = script(&app, &["new", "asker"]);
    assert_eq!(code, 0, "{err}");
    let asking = out.trim().to_owned();
    let (code, _, err) = script(&app, &["wait", &asking[..6], "--for", "awaiting_input", "--timeout", "10"]);
    assert_eq!(code, 0, "{err}");

    // ls --json: every instance, waiting ones first.
    let (code, out, err) = script(&app, &["ls", "--json"]);
    assert_eq!(code, 0, "{err}");
    let listed: Vec<Value> = serde_json::from_str(&out).expect("JSON");
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().any(|i| i["id"] == id));
    let (code, out, _) = script(&app, &["ls", "--waiting", "--agent", "asker"]);
    assert_eq!(code, 0);
    assert!(out.contains(&asking[..8]) && out.contains("Deploy build 4812? [y/N]"), "{out}");
    assert!(!out.contains(&id[..8]), "{out}");
    let _ = asker;

    // An answer naming a question it no longer waits on is refused in one line.
    let (code, _, err) = script(&app, &["send", &asking[..8], "y", "--in-reply-to", "not-this-one"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no longer waits on the question"), "{err}");
    let wait_id = app.get(&format!("/api/instances/{asking}")).json()["wait_id"].as_str().expect("wait_id").to_owned();
    let (code, _, err) = script(&app, &["send", &asking[..8], "y", "--in-reply-to", &wait_id]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = script(&app, &["wait", &asking, "--for", "completed", "--timeout", "10"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("completed"), "{out}");
    let (code, out, _) = script(&app, &["logs", &asking, "--plain"]);
    assert_eq!(code, 0);
    assert!(out.contains("answer=y"), "{out}");
    assert!(!out.contains('\u{1b}'), "no escape sequences: {out:?}");

    // wait gives up after its timeout, and says so.
    let started = Instant::now();
    let (code, _, err) = script(&app, &["wait", &id, "--for", "completed", "--timeout", "0.5"]);
    assert_eq!(code, 1);
    assert!(err.contains("still awaiting_input"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
    let (code, out, _) = script(&app, &["stop", &id[..8]]);
    assert_eq!(code, 0);
    assert!(out.contains("terminated"), "{out}");

    let (code, out, _) = script(&app, &["completions", "bash"]);
    assert_eq!(code, 0);
    assert!(out.contains("switchboard") && out.contains("attach"), "{out}");
}

#[test]
fn every_error_is_one_line_a_person_understands() {
    let app = TestApp::spawn();
    let agent = app.agent("many", &["sleep", "60"], json!({"max_concurrent_instances": 30}));
    let ids: Vec<String> =
        (0..20).map(|_| app.instance(&agent, json!({}))["id"].as_str().expect("id").to_owned()).collect();
    // Twenty ids: two of them share a first hex digit.
    let shared = ids
        .iter()
        .map(|i| &i[..1])
        .find(|p| ids.iter().filter(|i| i.starts_with(*p)).count() > 1)
        .expect("a shared prefix")
        .to_owned();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["ls".into(), "--url".into(), format!("http://127.0.0.1:{closed}")], "no server answers"),
        (vec!["ls".into(), "--token".into(), "wrong-token-0123456789".into()], "refused the token"),
        (vec!["attach".into(), "0123abcd".into()], "no instance matches"),
        (vec!["logs".into(), shared.clone()], "give more of the id"),
        (vec!["new".into(), "no-such-agent".into()], "no agent matches"),
    ];
    for (args, says) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, out, err) = script(&app, &args);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}: {out}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: one line: {err}");
        assert!(err.starts_with("switchboard: ") && err.contains(says), "{args:?}: {err}");
    }
    let (code, _, err) = script(&app, &["attach"]);
    assert_eq!(code, 2, "a command line that does not parse: {err}");
    // Attach needs a terminal.
    let (code, _, err) = script(&app, &["attach", &ids[0]]);
    assert_eq!(code, 1);
    assert!(err.contains("needs a terminal"), "{err}");
}
