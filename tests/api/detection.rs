//! The detection corpus: real interactive and non-interactive programs run side by
//! side; prints precision, recall and detection delay, and asserts that nothing
//! that only sleeps, computes or waits on something other than the terminal is
//! ever reported as waiting for input. The figures are also written to
//! `target/tmp/detection-corpus.txt`.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{TestApp, TOKEN};

/// How long every program is watched.
const WATCH: Duration = Duration::from_secs(5);

struct Case {
    name: &'static str,
    argv: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
    /// For interactive programs: text that shows the prompt is on screen ("" = at start).
    prompt: Option<&'static str>,
}

const fn waits(name: &'static str, argv: &'static [&'static str], prompt: &'static str) -> Case {
    Case { name, argv, env: &[], prompt: Some(prompt) }
}

const fn works(name: &'static str, argv: &'static [&'static str]) -> Case {
    Case { name, argv, env: &[], prompt: None }
}

const CURSES: &str =
    "import curses\ncurses.wrapper(lambda s: (s.addstr(0, 0, 'Press any key'), s.refresh(), s.getch()))";
const SPINNER: &str =
    "import sys, time\nwhile True:\n    sys.stdout.write('\\r' + '|/-\\\\'[int(time.time() * 10) % 4]); sys.stdout.flush(); time.sleep(0.1)";
const GIT_COMMIT: &str =
    "git init -q repo && cd repo && git -c user.name=t -c user.email=t@example.com commit --allow-empty";

const CORPUS: &[Case] = &[
    waits("python input()", &["python3", "-c", "input('name? ')"], "name? "),
    waits("python REPL", &["python3", "-q", "-i"], ">>> "),
    waits("node REPL", &["node"], "more information"),
    waits("bash read -p", &["bash", "-c", "read -p 'continue? ' answer"], "continue? "),
    waits("bash -i prompt", &["bash", "--norc", "--noprofile", "-i"], "bash-"),
    waits("sqlite3 shell", &["sqlite3"], "sqlite> "),
    waits("bc", &["bc"], "warranty"),
    waits("cat", &["cat"], ""),
    waits("less (full screen)", &["less", "/etc/os-release"], "(END)"),
    waits("vim (full screen)", &["vim", "-u", "NONE", "-N", "notes.txt"], "~"),
    Case {
        name: "git commit editor",
        argv: &["bash", "-c", GIT_COMMIT],
        env: &[("GIT_EDITOR", "vim -u NONE -N")],
        prompt: Some("commit message"),
    },
    waits("getpass (/dev/tty)", &["python3", "-c", "import getpass; getpass.getpass('Password: ')"], "Password: "),
    waits("ssh-keygen passphrase", &["ssh-keygen", "-q", "-t", "ed25519", "-f", "key"], "passphrase"),
    waits("curses getch", &["python3", "-c", CURSES], "Press any key"),
    waits("ed", &["ed", "-p", "ed> "], "ed> "),
    waits("perl <STDIN>", &["perl", "-e", "print 'ok? '; my $x = <STDIN>;"], "ok? "),
    works("sleep 30", &["sleep", "30"]),
    works("busy loop", &["python3", "-c", "while True: pass"]),
    works("build with pauses", &["bash", "-c", "for i in $(seq 1 20); do echo compiling unit $i; sleep 0.6; done"]),
    works("long output then sleep", &["bash", "-c", "seq 1 500000; sleep 30"]),
    works("spinner", &["python3", "-c", SPINNER]),
    works("node timer", &["node", "-e", "setInterval(() => {}, 1000)"]),
    works("asyncio sleep", &["python3", "-c", "import asyncio; asyncio.run(asyncio.sleep(30))"]),
    works("FIFO open", &["python3", "-c", "import os; os.mkfifo('f'); open('f').read()"]),
    works("pipe read", &["python3", "-c", "import os; r, w = os.pipe(); os.read(r, 1)"]),
    works(
        "socket accept",
        &["python3", "-c", "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); s.accept()"],
    ),
];

struct Outcome {
    name: &'static str,
    interactive: bool,
    id: String,
    /// Prompt visible → awaiting_input, as seen by a client polling every 25 ms.
    delay: Option<Duration>,
    reason: String,
    false_positive: bool,
}

fn watch(app: &TestApp, case: &Case, index: usize) -> Outcome {
    let env: serde_json::Map<String, serde_json::Value> =
        case.env.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect();
    let name = format!("corpus-{index}");
    let dir = crate::helpers::project_dir(app, &name);
    let agent =
        app.post("/api/agents", &json!({"name": name, "project_path": dir, "command": case.argv, "env": env})).json();
    let instance = app.instance(agent["id"].as_str().expect("agent id"), json!({}));
    let id = instance["id"].as_str().expect("id").to_owned();
    let started = Instant::now();
    let (mut seen, mut delay, mut reason) = (None, None, String::new());
    while started.elapsed() < WATCH && delay.is_none() {
        if let Some(prompt) = case.prompt {
            if seen.is_none() && (prompt.is_empty() || app.output(&id).contains(prompt)) {
                seen = Some(Instant::now());
            }
        }
        let now = app.get(&format!("/api/instances/{id}")).json();
        if now["status"] == "awaiting_input" {
            delay = Some(seen.map_or(Duration::ZERO, |s| s.elapsed()));
            reason = now["status_reason"].as_str().unwrap_or_default().to_owned();
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    if case.prompt.is_none() {
        std::thread::sleep(WATCH.saturating_sub(started.elapsed()));
    }
    let false_positive =
        case.prompt.is_none() && app.log().contains(&format!("instance={id} from=\"active\" to=\"awaiting_input\""));
    Outcome { name: case.name, interactive: case.prompt.is_some(), id, delay, reason, false_positive }
}

#[test]
fn detection_corpus_has_no_false_positives_and_reports_its_figures() {
    let args = ["--token", TOKEN, "--max-instances", "64"].map(str::to_owned).to_vec();
    let root = tempfile::tempdir().expect("tempdir");
    let app = TestApp::spawn_env(root, args, &[("RUST_LOG", "info,switchboard::actors::instance=debug")]);
    let outcomes: Vec<Outcome> = std::thread::scope(|scope| {
        let app = &app;
        let handles: Vec<_> =
            CORPUS.iter().enumerate().map(|(i, case)| scope.spawn(move || watch(app, case, i))).collect();
        handles.into_iter().map(|h| h.join().expect("watcher")).collect()
    });

    let log = app.log();
    // Server side: how long output had been quiet when the program was found waiting
    // (the prompt's last byte → awaiting_input).
    let quiet_ms = |id: &str| -> Option<u64> {
        let at = log.find(&format!("waiting detected instance={id} quiet_ms="))?;
        let rest = &log[at..];
        rest.split("quiet_ms=").nth(1)?.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
    };
    let mut report = String::from("program                    expected  detected  server   client   reason\n");
    for o in &outcomes {
        let detected = o.delay.is_some() || o.false_positive;
        let server = quiet_ms(&o.id).filter(|_| detected).map_or("-".to_owned(), |ms| format!("{ms} ms"));
        let client = o.delay.map_or("-".to_owned(), |d| format!("{} ms", d.as_millis()));
        let expected = if o.interactive { "waiting" } else { "working" };
        let shown = if detected { "waiting" } else { "-" };
        let _ = writeln!(report, "{:<26} {expected:<9} {shown:<9} {server:<8} {client:<8} {}", o.name, o.reason);
    }
    let interactive: Vec<&Outcome> = outcomes.iter().filter(|o| o.interactive).collect();
    let true_positives = interactive.iter().filter(|o| o.delay.is_some()).count();
    let false_positives = outcomes.iter().filter(|o| o.false_positive).count();
    let mut server: Vec<u64> =
        interactive.iter().filter(|o| o.delay.is_some()).filter_map(|o| quiet_ms(&o.id)).collect();
    server.sort_unstable();
    let precision = true_positives as f64 / (true_positives + false_positives).max(1) as f64;
    let recall = true_positives as f64 / interactive.len() as f64;
    let pick = |q: f64| server.get(((server.len() as f64 - 1.0) * q).round() as usize).copied().unwrap_or(0);
    let _ = writeln!(
        report,
        "\n{} programs ({} interactive, run at once on this machine): precision {precision:.2}, recall {recall:.2} ({true_positives}/{}), false positives {false_positives}\ndelay from the prompt's last output byte to awaiting_input (server side, idle_ms 400): median {} ms, max {} ms",
        outcomes.len(),
        interactive.len(),
        interactive.len(),
        pick(0.5),
        pick(1.0),
    );
    println!("{report}");
    let _ = std::fs::write(std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("detection-corpus.txt"), &report);

    assert_eq!(false_positives, 0, "programs that do not wait were reported waiting:\n{report}");
    assert!(recall >= 0.85, "too many prompts missed:\n{report}");
}
