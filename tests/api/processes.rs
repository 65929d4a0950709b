use std::time::Duration;

use rusqlite::Connection;
use serde_json::json;

use crate::helpers::{eventually, marked, zombies_of, TestApp};

const T: Duration = Duration::from_secs(20);

/// A shell with a background job, a grandchild in its own session (setsid), and
/// one that ignores SIGHUP and SIGTERM.
const FAMILY: &str = "sleep 300 & setsid sleep 301 & (trap '' HUP TERM; sleep 302) & echo family-ready; wait";

#[test]
fn terminating_leaves_no_process_behind_not_even_setsid_grandchildren() {
    let app = TestApp::spawn_with(&["--token", crate::helpers::TOKEN, "--config", "/dev/null"]);
    let agent = app.agent("family", &["bash", "-c", FAMILY], json!({}));
    let id = app.instance(&agent, json!({}))["id"].as_str().expect("id").to_owned();
    app.wait_output(&id, "family-ready", T);
    eventually(T, "the whole family running", || (marked(&id).len() >= 4).then_some(()));

    let r = app.put(&format!("/api/instances/{id}"), &json!({"status": "terminated"}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["status"], "terminated");
    assert_eq!(r.json()["status_reason"], "user");
    assert_eq!(marked(&id), Vec::<i32>::new(), "the answer comes once every process is gone");
    assert_eq!(zombies_of(app.pid()), Vec::<i32>::new());
}

#[test]
fn deleting_an_agent_terminates_its_instances_first() {
    let app = TestApp::spawn();
    let agent = app.agent("doomed", &["bash", "-c", FAMILY], json!({"max_concurrent_instances": 2}));
    let ids: Vec<String> =
        (0..2).map(|_| app.instance(&agent, json!({}))["id"].as_str().expect("id").to_owned()).collect();
    for id in &ids {
        app.wait_output(id, "family-ready", T);
    }
    assert_eq!(app.delete(&format!("/api/agents/{agent}")).status, 204);
    for id in &ids {
        assert_eq!(marked(id), Vec::<i32>::new());
        assert_eq!(app.get(&format!("/api/instances/{id}")).status, 404, "instances go with the agent");
        for file in [format!("{id}.log"), format!("{id}.screen")] {
            assert!(!app.data_dir().join("transcripts").join(&file).exists(), "{file} stays behind");
        }
    }
}

#[test]
fn a_killed_server_leaves_no_child_and_the_restart_marks_and_sweeps() {
    let mut app = TestApp::spawn();
    let agent = app.agent("orphan", &["bash", "-c", FAMILY], json!({}));
    let id = app.instance(&agent, json!({}))["id"].as_str().expect("id").to_owned();
    app.wait_output(&id, "family-ready", T);
    let shell = app.get(&format!("/api/instances/{id}")).json()["pid"].as_i64().expect("pid") as i32;

    let plain_job =
        eventually(T, "the plain background job", || marked(&id).into_iter().find(|pid| cmdline(*pid) == "sleep 300"));

    app.kill9();
    let dead = |pid: i32| switchboard::terminal::procfs::stat(pid).is_none_or(|s| s.state == 'Z');
    eventually(T, "the shell to die with the server (parent-death signal)", || dead(shell).then_some(()));
    eventually(T, "its plain job to die with it", || dead(plain_job).then_some(()));
    // Even what ignores SIGHUP or left the session dies with the instance's PID
    // namespace; the restart still sweeps by marker where no namespace was had.
    eventually(T, "every process of the instance to die with the server", || marked(&id).is_empty().then_some(()));

    let app = app.start_again();
    let instance = app.get(&format!("/api/instances/{id}")).json();
    assert_eq!(
        (instance["status"].as_str(), instance["status_reason"].as_str()),
        (Some("error"), Some("server_restart"))
    );
    assert_eq!(marked(&id), Vec::<i32>::new(), "the restart sweeps what escaped");
}

#[test]
fn sigterm_ends_every_instance_marks_them_terminated_and_exits_zero() {
    let mut app = TestApp::spawn();
    let agent = app.agent("many", &["bash", "-c", FAMILY], json!({"max_concurrent_instances": 3}));
    let ids: Vec<String> =
        (0..4).map(|_| app.instance(&agent, json!({}))["id"].as_str().expect("id").to_owned()).collect();
    for id in &ids[..3] {
        app.wait_output(id, "family-ready", T);
    }
    let status = app.stop();
    assert!(status.success(), "exit status {status}");
    let conn = Connection::open(app.data_dir().join("agents.db")).expect("open");
    for id in &ids {
        let (state, reason): (String, String) = conn
            .query_row("SELECT status, status_reason FROM agent_instances WHERE id = ?1", [id], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .expect("row");
        assert_eq!((state.as_str(), reason.as_str()), ("terminated", "server_shutdown"), "{id}");
        assert_eq!(marked(id), Vec::<i32>::new());
    }
}

#[test]
fn two_hundred_instant_exits_leave_no_zombie() {
    let app = TestApp::spawn_with(&["--token", crate::helpers::TOKEN, "--max-instances", "200"]);
    let agent = app.agent("blink", &["true"], json!({"max_concurrent_instances": 200}));
    for _ in 0..200 {
        app.instance(&agent, json!({}));
    }
    eventually(Duration::from_secs(60), "200 completed instances", || {
        let done = app.get(&format!("/api/instances?agent_id={agent}&status=completed&limit=1000")).json();
        (done.as_array().map(Vec::len) == Some(200)).then_some(())
    });
    assert_eq!(zombies_of(app.pid()), Vec::<i32>::new());
}

#[test]
fn sleeping_and_computing_programs_are_never_waiting() {
    let app = TestApp::spawn();
    let sleeper = app.agent("sleeper", &["sleep", "30"], json!({"idle_ms": 100}));
    let spinner = app.agent("spinner", &["python3", "-c", "while True: pass"], json!({"idle_ms": 100}));
    let ids = [app.instance(&sleeper, json!({})), app.instance(&spinner, json!({}))]
        .map(|i| i["id"].as_str().expect("id").to_owned());
    std::thread::sleep(Duration::from_millis(1500));
    for id in &ids {
        assert_eq!(app.get(&format!("/api/instances/{id}")).json()["status"], "active");
        assert!(!app.log().contains(&format!("instance={id} from=\"active\" to=\"awaiting_input\"")), "{}", app.log());
    }
}

/// A family that hides from every older sweep: a background job, one in its own
/// session with a cleared environment (no marker), and one that ignores SIGHUP and
/// SIGTERM with a cleared environment; `tag` makes its sleeps this test's own.
fn escaping_family(tag: u32, then: &str) -> String {
    format!(
        "sleep {tag}1 & setsid env -i sleep {tag}2 & (trap '' HUP TERM; exec env -i sleep {tag}3) & \
         sleep 0.3; echo escapes-ready; {then}"
    )
}

/// Live processes whose command line is one of the family's sleeps.
fn family_of(tag: u32) -> Vec<i32> {
    let names: Vec<String> = (1..=3).map(|n| format!("sleep {tag}{n}")).collect();
    switchboard::terminal::procfs::pids()
        .into_iter()
        .filter(|pid| {
            names.contains(&cmdline(*pid)) && switchboard::terminal::procfs::stat(*pid).is_some_and(|s| s.state != 'Z')
        })
        .collect()
}

fn family_running(app: &TestApp, agent: &str, tag: u32) -> String {
    let instance = app.instance(agent, json!({}));
    let id = instance["id"].as_str().expect("id").to_owned();
    app.wait_output(&id, "escapes-ready", T);
    eventually(T, "the whole family running", || (family_of(tag).len() == 3).then_some(()));
    let started = app.get(&format!("/api/instances/{id}")).json();
    // Held by a cgroup of its own where the server can make one (as root here), and
    // by a PID namespace in any case.
    let expected = if nix::unistd::geteuid().is_root() { "cgroup" } else { "pidns" };
    assert_eq!(started["isolation"]["containment"], expected, "{started}");
    id
}

#[test]
fn nothing_an_instance_starts_outlives_it_however_it_hides() {
    let mut app = TestApp::spawn();
    // Terminated through the API.
    let terminated = app.agent("terminated", &["bash", "-c", &escaping_family(8101, "wait")], json!({}));
    let id = family_running(&app, &terminated, 8101);
    let r = app.put(&format!("/api/instances/{id}"), &json!({"status": "terminated"}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(family_of(8101), Vec::<i32>::new(), "the answer comes once every process is gone");

    // The command exits by itself, leaving its family behind.
    let exits = app.agent("exits", &["bash", "-c", &escaping_family(8102, "sleep 0.5; exit 4")], json!({}));
    let id = family_running(&app, &exits, 8102);
    let ended = app.wait_status(&id, "error", T);
    assert_eq!(ended["exit_code"], 4, "the command's own exit code: {ended}");
    assert_eq!(family_of(8102), Vec::<i32>::new());

    // Killed by a signal: reported as the command's own signal.
    let killed = app.agent("killed", &["bash", "-c", "echo up; kill -KILL $$"], json!({}));
    let id = app.instance(&killed, json!({}))["id"].as_str().expect("id").to_owned();
    let ended = app.wait_status(&id, "error", T);
    assert_eq!(ended["exit_signal"], 9, "{ended}");

    // The server is SIGKILLed: nothing can ask anything to end, and still nothing stays.
    let orphaned = app.agent("orphaned", &["bash", "-c", &escaping_family(8103, "wait")], json!({}));
    family_running(&app, &orphaned, 8103);
    app.kill9();
    eventually(T, "the family to die with the server", || family_of(8103).is_empty().then_some(()));

    // The server is stopped with SIGTERM.
    let mut app = app.start_again();
    let stopped = app.agent("stopped", &["bash", "-c", &escaping_family(8104, "wait")], json!({}));
    family_running(&app, &stopped, 8104);
    assert!(app.stop().success());
    assert_eq!(family_of(8104), Vec::<i32>::new());
}

#[test]
fn the_terminal_still_interrupts_the_command_and_a_missing_program_is_an_error() {
    let app = TestApp::spawn();
    let shell = app.agent(
        "interruptible",
        &["bash", "-c", "trap 'echo got-int; exit 7' INT; echo armed; sleep 30 & wait"],
        json!({}),
    );
    let id = app.instance(&shell, json!({}))["id"].as_str().expect("id").to_owned();
    app.wait_output(&id, "armed", T);
    app.type_in(&id, "\u{3}");
    app.wait_output(&id, "got-int", T);
    let ended = app.wait_status(&id, "error", T);
    assert_eq!(ended["exit_code"], 7, "{ended}");

    let missing = app.agent("missing", &["no-such-program-anywhere"], json!({}));
    let r = app.post(&format!("/api/agents/{missing}/instances"), &json!({}));
    let id = r.json()["id"].as_str().expect("id").to_owned();
    let failed = app.wait_status(&id, "error", T);
    assert!(failed["status_reason"].as_str().is_some_and(|r| r.contains("No such file")), "{failed}");
}

fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| String::from_utf8_lossy(&raw).trim_end_matches('\0').replace('\0', " "))
        .unwrap_or_default()
}

/// Open descriptors, leaving out the SQLite files: the connection pools grow
/// under load (up to 8 connections, 3 descriptors each) and keep idle connections
/// for minutes, which is not a leak. PTYs, transcripts, sockets and pipes all count.
fn open_fds(pid: i32) -> usize {
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return 0 };
    dir.filter_map(Result::ok)
        .filter(|fd| {
            let target = std::fs::read_link(fd.path()).unwrap_or_default();
            let name = target.to_string_lossy();
            !(name.ends_with(".db") || name.ends_with(".db-wal") || name.ends_with(".db-shm"))
        })
        .count()
}

#[test]
fn file_descriptors_return_to_baseline_after_500_instance_lifecycles() {
    let app = TestApp::spawn_with(&["--token", crate::helpers::TOKEN, "--max-instances", "50"]);
    let agent = app.agent("churn", &["bash", "-c", "echo $$"], json!({"max_concurrent_instances": 50}));
    let run = |n: usize| {
        let before = app.get(&format!("/api/instances?agent_id={agent}&status=completed&limit=1000")).json();
        let start = before.as_array().map_or(0, Vec::len);
        for _ in 0..n {
            app.instance(&agent, json!({}));
        }
        eventually(Duration::from_secs(120), &format!("{n} more completed instances"), || {
            let done = app.get(&format!("/api/instances?agent_id={agent}&status=completed&limit=1000")).json();
            (done.as_array().map(Vec::len) == Some(start + n)).then_some(())
        });
    };
    // The spare helpers (each holds its terminal, channel and pidfd) are counted at
    // both ends, once both are made.
    let spares_ready = || {
        eventually(T, "the spare helpers made", || (spare_helpers(&app, &[]).len() == 2).then_some(()));
    };
    run(20); // warm up: database connections, arbiters, caches
    spares_ready();
    let baseline = open_fds(app.pid());
    run(500);
    spares_ready();
    let after = eventually(T, "descriptors back to the baseline", || {
        let now = open_fds(app.pid());
        (now <= baseline + 2).then_some(now)
    });
    assert!(after <= baseline + 2, "{after} open descriptors, {baseline} before");
    assert_eq!(zombies_of(app.pid()), Vec::<i32>::new());
}

#[test]
fn no_instance_starts_while_its_agent_is_being_deleted() {
    // The instance ignores SIGHUP and SIGTERM, so deleting its agent takes the grace
    // period (2 s here): a window in which a new instance of the agent is asked for.
    let app = TestApp::spawn_with_config("shutdown_grace_secs = 2\n");
    let agent = app.agent(
        "stubborn",
        &["bash", "-c", "trap '' HUP TERM; echo up; sleep 300"],
        json!({"max_concurrent_instances": 5}),
    );
    let first = app.instance(&agent, json!({}))["id"].as_str().expect("id").to_owned();
    app.wait_output(&first, "up", T);
    std::thread::scope(|s| {
        let deleting = s.spawn(|| app.delete(&format!("/api/agents/{agent}")));
        std::thread::sleep(Duration::from_millis(500));
        let late = app.post(&format!("/api/agents/{agent}/instances"), &json!({}));
        assert_eq!(late.status, 404, "no instance of an agent being deleted: {}", late.text);
        assert_eq!(deleting.join().expect("delete").status, 204);
    });
    let rows = app.get("/api/instances").json();
    assert_eq!(rows.as_array().map(Vec::len), Some(0), "{rows}");
    assert_eq!(marked(&first), Vec::<i32>::new());
}

/// The helper each instance runs under is `switchboard-contain`, beside the server's
/// binary; where it is missing (a server binary copied alone), the server's own
/// binary serves as `switchboard __contain`, with the same containment.
#[test]
fn the_helper_is_its_own_small_binary_and_the_servers_serves_where_it_is_missing() {
    let helper_of = |app: &TestApp| {
        let agent = app.agent("helped", &["bash", "-c", FAMILY], json!({}));
        let id = app.instance(&agent, json!({}))["id"].as_str().expect("id").to_owned();
        app.wait_output(&id, "family-ready", T);
        let instance = app.get(&format!("/api/instances/{id}")).json();
        assert_eq!(instance["isolation"]["containment"], "cgroup", "{instance}");
        let leader = instance["pid"].as_i64().expect("pid") as i32;
        let args: Vec<String> = std::fs::read(format!("/proc/{leader}/cmdline"))
            .expect("the helper's cmdline")
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let r = app.put(&format!("/api/instances/{id}"), &json!({"status": "terminated"}));
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(marked(&id), Vec::<i32>::new(), "nothing of the instance is left");
        args
    };

    let app = TestApp::spawn();
    let args = helper_of(&app);
    assert!(args[0].ends_with("/switchboard-contain"), "{args:?}");
    assert_eq!(args[1], "--report-fd", "{args:?}");
    drop(app);

    // The server's binary alone in a directory (a hard link, or a copy across
    // file systems), run through a shell that execs it from there.
    let alone = tempfile::tempdir().expect("tempdir");
    let copy = alone.path().join("switchboard");
    let built = env!("CARGO_BIN_EXE_switchboard");
    std::fs::hard_link(built, &copy).or_else(|_| std::fs::copy(built, &copy).map(|_| ())).expect("the binary alone");
    let copy = copy.to_string_lossy().into_owned();
    let root = tempfile::tempdir().expect("tempdir");
    let app = TestApp::spawn_launched(
        root,
        &["sh", "-c", "shift; exec \"$0\" \"$@\"", &copy],
        vec!["--token".into(), crate::helpers::TOKEN.into()],
        &[],
    );
    let args = helper_of(&app);
    assert_eq!((args[0].as_str(), args[1].as_str()), ("/proc/self/exe", "__contain"), "{args:?}");
}

/// The helper, started as the server starts it, with the report channel held by
/// this test: it makes itself ready and runs nothing until it gets its command;
/// nothing at all when the channel closes without one (the server does so when the
/// instance's row could not be stored, and to spare helpers it no longer needs);
/// the command runs where and with the environment it was sent (none of the
/// helper's); a working directory that is not there and a garbled command are
/// reported, not run.
#[test]
fn the_helper_runs_only_the_command_it_is_sent_where_and_as_it_is_sent() {
    use std::io::{Read, Write};
    use std::os::fd::OwnedFd;
    use std::process::{Command, Stdio};

    let dir = tempfile::tempdir().expect("tempdir");
    let start = || {
        let pty = nix::pty::openpty(None, None).expect("a terminal");
        let (ours, theirs) = std::os::unix::net::UnixStream::pair().expect("socket pair");
        let child = Command::new(env!("CARGO_BIN_EXE_switchboard-contain"))
            .args(["--report-fd", "2", "--session", &std::process::id().to_string(), "--umask", "022"])
            .current_dir("/")
            .env_clear()
            .env("HELPERS_OWN", "not for the command")
            .stdin(Stdio::from(pty.slave.try_clone().expect("dup")))
            .stdout(Stdio::from(pty.slave))
            .stderr(Stdio::from(OwnedFd::from(theirs)))
            .spawn()
            .expect("the helper");
        (child, ours, pty.master)
    };
    let send = |ours: &mut std::os::unix::net::UnixStream, text: &[u8]| {
        ours.write_all(text).expect("the command");
        ours.shutdown(std::net::Shutdown::Write).expect("the end of the command");
        let mut report = String::new();
        ours.read_to_string(&mut report).expect("the report");
        // It said it was ready (and what it was granted) before it took the command.
        let (ready, rest) = report.split_once('\n').expect("two lines");
        assert!(ready.starts_with("ready "), "{report:?}");
        rest.to_owned()
    };
    let command = |cwd: &std::path::Path, mark: &str| {
        json!({
            "argv": ["sh", "-c", format!("echo \"$PWD $GREETING ${{HELPERS_OWN-unset}}\" > {mark}")],
            "cwd": cwd,
            "env": {"PATH": std::env::var("PATH").unwrap_or_default(), "GREETING": "hello"},
        })
        .to_string()
    };

    // Without a command, it says it is ready, waits, and runs nothing.
    let (mut child, mut ours, _master) = start();
    let mut ready = [0u8; 64];
    let n = ours.read(&mut ready).expect("its readiness");
    let ready = String::from_utf8_lossy(&ready[..n]).into_owned();
    assert!(ready.starts_with("ready pid_namespace ") && ready.ends_with('\n'), "{ready:?}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(child.try_wait().expect("wait").is_none(), "it waits for its command");
    drop(ours);
    let status = crate::helpers::wait_with_timeout(&mut child, Duration::from_secs(10)).expect("it ends");
    assert_eq!(status.code(), Some(127), "{status}");
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0, "nothing ran without a command");

    // With one, the command runs in its directory with its environment alone.
    let (mut child, mut ours, _master) = start();
    let report = send(&mut ours, command(dir.path(), "once").as_bytes());
    assert_eq!(report, "", "the channel closes with the exec, with nothing more said");
    let status = crate::helpers::wait_with_timeout(&mut child, Duration::from_secs(10)).expect("it ends");
    assert!(status.success(), "{status}");
    let written = std::fs::read_to_string(dir.path().join("once")).expect("the command ran");
    assert_eq!(written.trim(), format!("{} hello unset", dir.path().display()));

    // A directory that is not there, and a command that does not parse: reported.
    let (mut child, mut ours, _master) = start();
    let report = send(&mut ours, command(&dir.path().join("gone"), "never").as_bytes());
    assert_eq!(report.trim(), "cwd 2");
    crate::helpers::wait_with_timeout(&mut child, Duration::from_secs(10)).expect("it ends");
    let (mut child, mut ours, _master) = start();
    let report = send(&mut ours, b"{\"argv\": ");
    assert_eq!(report.trim(), "err 22");
    crate::helpers::wait_with_timeout(&mut child, Duration::from_secs(10)).expect("it ends");
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 1, "only the one command ran");
}

/// The server's children that are containment helpers of no running instance:
/// the helpers it keeps ready.
fn spare_helpers(app: &TestApp, running: &[i32]) -> Vec<i32> {
    use switchboard::terminal::procfs;
    procfs::pids()
        .into_iter()
        .filter(|p| !running.contains(p))
        .filter(|p| procfs::stat(*p).is_some_and(|s| s.ppid == app.pid() && s.state != 'Z'))
        .filter(|p| cmdline(*p).starts_with(env!("CARGO_BIN_EXE_switchboard-contain")))
        .collect()
}

/// Helpers are kept ready ahead of need, and an instance that needs nothing of
/// its own from its helper starts in one: it still gets its own directory,
/// environment, size and cgroup. A ready helper that was killed is passed over; a
/// project directory that is gone is named; none is left once the server stops;
/// `[isolation] spare_helpers = 0` keeps none.
#[test]
fn instances_start_in_helpers_made_ready_and_get_their_own_everything() {
    let mut app = TestApp::spawn();
    let script = "echo \"in $PWD as $GREETING\"; stty size; sleep 600";
    let agent = app.agent("ready", &["bash", "-c", script], json!({"max_concurrent_instances": 10}));
    let project = app.get(&format!("/api/agents/{agent}")).json()["project_path"].as_str().expect("path").to_owned();
    let start = |greeting: &str, rows: u16, cols: u16| {
        let body = json!({"env": {"GREETING": greeting}, "rows": rows, "cols": cols});
        let instance = app.instance(&agent, body);
        let id = instance["id"].as_str().expect("id").to_owned();
        let shown = app.wait_output(&id, &format!("{rows} {cols}"), T);
        assert!(shown.contains(&format!("in {project} as {greeting}")), "{shown}");
        assert_eq!(instance["isolation"]["containment"], "cgroup", "{instance}");
        (id, instance["pid"].as_i64().expect("pid") as i32)
    };
    let mut running = vec![start("first", 30, 100).1];
    let ready = eventually(T, "two helpers ready", || {
        let ready = spare_helpers(&app, &running);
        (ready.len() == 2).then_some(ready)
    });
    let (second, pid) = start("second", 27, 91);
    assert!(ready.contains(&pid), "the instance started in a ready helper: {pid} not in {ready:?}");
    running.push(pid);
    // Its start is stored with its row: created, then started, one after the other.
    let replay = [("Last-Event-ID", "0")];
    let mut events = crate::sse_client::SseClient::open(&app, &format!("/api/events?instance_id={second}"), &replay);
    let got = events.until("instance.status", T);
    let ours: Vec<_> = got.iter().filter(|e| e.event.starts_with("instance.")).collect();
    let seq = |e: &crate::sse_client::Event| e.id.as_deref().and_then(|i| i.parse::<i64>().ok()).expect("seq");
    assert_eq!(ours[0].event, "instance.created");
    assert_eq!(ours[0].json()["instance"]["status"], "idle", "{:?}", ours[0]);
    let started = ours[1].json();
    assert_eq!((started["previous"].as_str(), started["status"].as_str()), (Some("idle"), Some("active")));
    assert_eq!(started["reason"], "started");
    assert_eq!(seq(ours[1]), seq(ours[0]) + 1, "nothing between: {got:?}");
    events.close();
    let stored = app.get(&format!("/api/instances/{second}")).json();
    assert_eq!(stored["pid"], pid, "{stored}");
    assert!(stored["started_at"].is_string(), "{stored}");
    let usage = app.get(&format!("/api/instances/{second}")).json()["usage"].clone();
    assert!(usage["pids"].as_u64().is_some_and(|n| n >= 2), "its cgroup holds its init and command: {usage}");

    // A ready helper killed from outside is passed over.
    let left = eventually(T, "the helpers made ready again", || {
        let ready = spare_helpers(&app, &running);
        (ready.len() == 2).then_some(ready)
    });
    for pid in &left {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid), nix::sys::signal::Signal::SIGKILL).expect("kill");
    }
    // Dead (a zombie until the server notices), as a helper killed a while ago is:
    // on a busy machine a killed process takes a moment to get the CPU to exit.
    let dead = |pid: &i32| switchboard::terminal::procfs::stat(*pid).is_none_or(|s| s.state == 'Z');
    eventually(T, "the killed helpers dead", || left.iter().all(dead).then_some(()));
    let (_, pid) = start("third", 24, 80);
    assert!(!left.contains(&pid), "a killed helper is not used");
    running.push(pid);

    // A project directory that is gone: the start fails and says where.
    eventually(T, "a helper ready", || (!spare_helpers(&app, &running).is_empty()).then_some(()));
    std::fs::remove_dir_all(&project).expect("remove the project");
    let id = app.instance(&agent, json!({}))["id"].as_str().expect("id").to_owned();
    let failed = app.wait_status(&id, "error", T);
    let reason = failed["status_reason"].as_str().unwrap_or_default();
    assert!(reason.contains(&format!("its working directory {project}: No such file")), "{failed}");

    let ready = spare_helpers(&app, &running);
    assert!(app.stop().success());
    // Killed as the server ends (a spare begun just before may die with its thread,
    // a moment later): gone, or a zombie until its new parent reaps it.
    let alive = |pid: &i32| switchboard::terminal::procfs::stat(*pid).is_some_and(|s| s.state != 'Z');
    let outlived = || ready.iter().chain(&running).copied().filter(alive).collect::<Vec<i32>>();
    let deadline = std::time::Instant::now() + T;
    while !outlived().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(outlived(), Vec::<i32>::new(), "outlived the server");

    let app = TestApp::spawn_with_config("[isolation]\nspare_helpers = 0\n");
    let agent = app.agent("unready", &["bash", "-c", "echo started; sleep 600"], json!({}));
    let instance = app.instance(&agent, json!({}));
    app.wait_output(instance["id"].as_str().expect("id"), "started", T);
    std::thread::sleep(Duration::from_millis(500));
    let running = [instance["pid"].as_i64().expect("pid") as i32];
    assert_eq!(spare_helpers(&app, &running), Vec::<i32>::new(), "none kept ready");
}
