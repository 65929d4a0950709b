//! Limits, containment and the sandbox, through real instances: a memory hog
//! ended by the kernel, a fork loop stopped at its pids limit, a sandboxed shell
//! that cannot write outside its workspace or read the server's data, an instance
//! without network that still reaches the server.
//!
//! The tests run as root on hosts with cgroup v1 controllers and Landlock (as CI
//! does); a kernel feature that is missing makes a test print why and skip.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::helpers::{eventually, TestApp};

const T: Duration = Duration::from_secs(20);
const PYTHON: &str = "/usr/bin/python3";

/// Why this host cannot run a test that needs cgroups, if it cannot.
fn no_cgroups() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("cgroups need root here (no delegated cgroup)".into());
    }
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let has = |c: &str| text.lines().any(|l| l.split(':').nth(1).is_some_and(|cs| cs.split(',').any(|x| x == c)));
    (!(has("memory") && has("pids"))).then(|| "no memory and pids cgroup controllers".into())
}

/// Why this kernel cannot sandbox, if it cannot.
fn no_landlock() -> Option<String> {
    let lsms = std::fs::read_to_string("/sys/kernel/security/lsm").unwrap_or_default();
    (!lsms.split(',').any(|l| l.trim() == "landlock")).then(|| format!("Landlock is not enabled (LSMs: {lsms:?})"))
}

fn skip(reason: Option<String>) -> bool {
    if let Some(reason) = reason {
        eprintln!("skipped: {reason}");
        return true;
    }
    false
}

fn instance(app: &TestApp, agent: &str) -> String {
    app.instance(agent, json!({}))["id"].as_str().expect("id").to_owned()
}

fn get(app: &TestApp, id: &str) -> Value {
    app.get(&format!("/api/instances/{id}")).json()
}

/// Types `echo <mark>` and waits for its answer; returns how long it took.
fn echo(app: &TestApp, id: &str, mark: &str) -> Duration {
    let asked = Instant::now();
    app.type_in(id, &format!("echo {mark}-$((6*7))\n"));
    app.wait_output(id, &format!("{mark}-42"), T);
    asked.elapsed()
}

#[test]
fn an_instance_over_its_memory_limit_ends_memory_limit_and_its_neighbour_keeps_answering() {
    if skip(no_cgroups()) {
        return;
    }
    let app = TestApp::spawn();
    let shell = app.agent("neighbour", &["bash", "--norc", "--noprofile"], json!({}));
    let neighbour = instance(&app, &shell);
    app.wait_status(&neighbour, "awaiting_input", T);
    let quiet: Vec<Duration> = (0..5).map(|i| echo(&app, &neighbour, &format!("quiet{i}"))).collect();

    let script = "import time\nchunks = []\nwhile True:\n    chunks.append(bytearray(1 << 20))\n";
    let hog = app.agent("hog", &[PYTHON, "-c", script], json!({"limits": {"memory_mb": 64}}));
    let id = instance(&app, &hog);
    let mut busy = Vec::new();
    let mut n = 0;
    let ended = loop {
        busy.push(echo(&app, &neighbour, &format!("busy{n}")));
        n += 1;
        let now = get(&app, &id);
        if now["status"] == "error" || n > 200 {
            break now;
        }
    };
    eprintln!("neighbour echo while quiet: {quiet:?}; while the hog allocated: {busy:?}");
    assert_eq!(ended["status"], "error", "{ended}");
    assert_eq!(ended["status_reason"], "memory_limit", "{ended}");
    assert_eq!(ended["exit_signal"], 9, "the kernel killed it: {ended}");
    let isolation = &ended["isolation"];
    assert!(isolation["limits"] == "cgroup-v1" || isolation["limits"] == "cgroup-v2", "{isolation}");
    assert_eq!(isolation["containment"], "cgroup", "{isolation}");
    assert_eq!(isolation["applied"]["memory_mb"], 64, "{isolation}");
    assert!(ended["usage"]["cpu_seconds"].as_f64().is_some_and(|s| s > 0.0), "usage at the end: {ended}");
    // The neighbour answered every echo while the hog ran, and is still running.
    let running = app.wait_status(&neighbour, "awaiting_input", T);
    let memory = running["usage"]["memory_bytes"].as_u64().expect("memory");
    assert!(memory > 0 && memory < 64 << 20, "a shell's memory, counted from its cgroup: {running}");
}

#[test]
fn a_fork_loop_stops_at_its_pids_limit_and_the_server_stays_responsive() {
    if skip(no_cgroups()) {
        return;
    }
    let app = TestApp::spawn();
    let script = "import os, time\nn = 0\ntry:\n    while n < 2000:\n        if os.fork() == 0:\n            \
                  time.sleep(120)\n            os._exit(0)\n        n += 1\nexcept OSError as e:\n    \
                  print('stopped-at', n, 'errno', e.errno, flush=True)\ntime.sleep(120)\n";
    let bomb = app.agent("forker", &[PYTHON, "-c", script], json!({"limits": {"pids": 40}}));
    let id = instance(&app, &bomb);
    // The whole line: a terminal may hand it over in two reads.
    let out = eventually(T, "the fork loop's last line", || {
        let out = app.output(&id);
        out.split("stopped-at").nth(1).is_some_and(|rest| rest.contains('\n')).then_some(out)
    });
    let forked: u32 = out
        .split("stopped-at ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .expect("a count");
    assert!(forked < 40, "stopped below the limit: {out}");
    assert!(out.contains("errno 11"), "fork failed with EAGAIN: {out}");
    let started = Instant::now();
    let health = app.get("/healthz");
    eprintln!("forked {forked} children before the limit; /api/health answered in {:?}", started.elapsed());
    assert_eq!(health.status, 200);
    let running = get(&app, &id);
    let pids = running["usage"]["pids"].as_u64().expect("pids");
    assert!(pids <= 40 && pids >= u64::from(forked), "{running}");
    // Terminated: every child goes with it.
    let r = app.put(&format!("/api/instances/{id}"), &json!({"status": "terminated"}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(crate::helpers::marked(&id).is_empty(), "children survive: {:?}", crate::helpers::marked(&id));
}

#[test]
fn cpu_and_open_files_limits_hold_and_server_defaults_apply() {
    if skip(no_cgroups()) {
        return;
    }
    let app = TestApp::spawn_with_config("[limits]\nopen_files = 123\n");
    let script = "import time, resource\nprint('nofile', resource.getrlimit(resource.RLIMIT_NOFILE)[0])\nt = \
                  time.time()\nwhile time.time() - t < 2:\n    pass\nprint('spun', flush=True)\ntime.sleep(60)\n";
    let spinner = app.agent("spinner", &[PYTHON, "-c", script], json!({"limits": {"cpu_percent": 20}}));
    let id = instance(&app, &spinner);
    let out = app.wait_output(&id, "spun", T);
    assert!(out.contains("nofile 123"), "the server's default open-files limit: {out}");
    let running = get(&app, &id);
    let cpu = running["usage"]["cpu_seconds"].as_f64().expect("cpu");
    eprintln!("two seconds of spinning at cpu_percent 20 used {cpu:.2} s of CPU");
    assert!(cpu < 1.0, "the CPU limit held it to about a fifth of the time: {running}");
    let isolation = &running["isolation"];
    assert_eq!(isolation["applied"], json!({"memory_mb": null, "cpu_percent": 20, "pids": null, "open_files": 123}));
    assert_eq!(isolation["unenforced"], json!([]));

    // Without limits: held all the same, nothing limited.
    let plain = app.agent("plain", &["sleep", "60"], json!({}));
    let id = instance(&app, &plain);
    let isolation = eventually(T, "started", || {
        let now = get(&app, &id);
        now["isolation"].is_object().then(|| now["isolation"].clone())
    });
    assert_eq!(isolation["containment"], "cgroup", "{isolation}");
    assert_eq!(isolation["limits"], "rlimit", "only the open-files default applies: {isolation}");
    assert_eq!(isolation["sandbox"], "none", "{isolation}");

    // Bad limits change nothing.
    let r = app.put(&format!("/api/agents/{plain}"), &json!({"settings": {"limits": {"memory_mb": 1}}}));
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.json()["error"]["field"], "settings.limits.memory_mb", "{}", r.text);
    let r = app.put(&format!("/api/agents/{plain}"), &json!({"settings": {"limits": {"memory": 100}}}));
    assert_eq!(r.status, 422, "{}", r.text);
}

#[test]
fn a_sandboxed_instance_writes_only_where_it_may_and_cannot_read_the_data_directory() {
    if skip(no_landlock()) {
        return;
    }
    // A generated token, so that DATA_DIR/token exists.
    let app = TestApp::spawn_with(&[]);
    let data = app.data_dir();
    assert!(data.join("token").is_file());
    let extra = crate::helpers::project_dir(&app, "agent-state");
    let outside = crate::helpers::project_dir(&app, "elsewhere");
    let script = format!(
        "try() {{ if \"$@\" 2>/dev/null; then echo \"$1:ok\"; else echo \"$1:refused\"; fi; }}; \
         try touch inside-file; try cat {data}/token; try ls {data}; try touch {outside}/x; \
         try touch {extra}/state; try touch \"$TMPDIR/t\"; try ls /dev/pts; echo tmp=$TMPDIR; echo probe-done; sleep 60",
        data = data.display(),
    );
    let settings = json!({"sandbox": {"enabled": true, "writable": [extra]}});
    let agent = app.agent("boxed", &["bash", "-c", &script], settings);
    let id = instance(&app, &agent);
    let out = app.wait_output(&id, "probe-done", T);
    let result = |what: &str| -> String {
        out.lines()
            .find_map(|l| l.trim().strip_prefix(&format!("{what}:")).map(str::to_owned))
            .unwrap_or_else(|| panic!("{what} not probed: {out}"))
    };
    // Its workspace, its temporary directory and the declared path: yes.
    assert_eq!(result("touch"), "ok", "{out}");
    let instance = get(&app, &id);
    let project = instance["project_path"].as_str().expect("project");
    assert!(std::path::Path::new(project).join("inside-file").is_file(), "{out}");
    assert!(std::path::Path::new(&extra).join("state").is_file(), "{out}");
    assert!(!std::path::Path::new(&outside).join("x").exists(), "{out}");
    let tmp = out.lines().find_map(|l| l.trim().strip_prefix("tmp=")).expect("TMPDIR").to_owned();
    assert!(std::path::Path::new(&tmp).join("t").is_file(), "{out}");
    // The server's data (the token) and the other terminals: no.
    assert_eq!(result("cat"), "refused", "{out}");
    assert_eq!(result("ls"), "refused", "{out}");
    assert!(!out.contains(&std::fs::read_to_string(data.join("token")).expect("token").trim().to_owned()));
    assert_eq!(instance["isolation"]["sandbox"], "landlock", "{instance}");
    // A sandbox that would have to grant the data directory is refused, naming why.
    let root = app.root.path().to_string_lossy().into_owned();
    let holding = app.post(
        "/api/agents",
        &json!({"name": "too-wide", "project_path": root, "settings": {"sandbox": {"enabled": true}}}),
    );
    assert_eq!(holding.status, 422, "{}", holding.text);
    assert_eq!(holding.json()["error"]["field"], "settings.sandbox.enabled", "{}", holding.text);
    assert!(holding.text.contains("data directory"), "{}", holding.text);
    let wide = app
        .put(&format!("/api/agents/{agent}"), &json!({"settings": {"sandbox": {"enabled": true, "writable": [root]}}}));
    assert_eq!(wide.status, 422, "{}", wide.text);
    assert_eq!(wide.json()["error"]["field"], "settings.sandbox.writable[0]", "{}", wide.text);
    // The private temporary directory goes with the instance.
    let r = app.delete(&format!("/api/instances/{id}"));
    assert_eq!(r.status, 204, "{}", r.text);
    assert!(!std::path::Path::new(&tmp).exists(), "{tmp} was left behind");
}

#[test]
fn an_instance_without_network_reaches_only_the_server() {
    if skip(no_landlock()) {
        return;
    }
    let app = TestApp::spawn();
    let other = std::net::TcpListener::bind("127.0.0.1:0").expect("listener");
    let other_port = other.local_addr().expect("addr").port();
    let script = format!(
        "import os, socket\nfor name, port in (('server', {server}), ('other', {other_port})):\n    s = \
         socket.socket()\n    try:\n        s.connect(('127.0.0.1', port))\n        print(name, 'connected')\n    \
         except OSError as e:\n        print(name, 'refused', e.errno)\ns = socket.socket()\ntry:\n    \
         s.bind(('127.0.0.1', 0))\n    s.listen()\n    print('listen ok')\nexcept OSError as e:\n    print('listen \
         refused', e.errno)\nprint('probe-done', flush=True)\nimport time\ntime.sleep(60)\n",
        server = app.port,
    );
    for (name, network) in [("offline", false), ("online", true)] {
        let settings = json!({"sandbox": {"enabled": true, "network": network}});
        let agent = app.agent(name, &[PYTHON, "-c", &script], settings);
        let id = instance(&app, &agent);
        let out = app.wait_output(&id, "probe-done", T);
        assert!(out.contains("server connected"), "{name}: {out}");
        if network {
            assert!(out.contains("other connected") && out.contains("listen ok"), "{name}: {out}");
        } else {
            assert!(out.contains("other refused 13"), "{name}: {out}");
            assert!(out.contains("listen refused 13"), "{name}: {out}");
        }
    }
    drop(other);
}

#[test]
fn without_cgroups_memory_is_limited_per_process_and_said_so() {
    use std::os::unix::fs::PermissionsExt;
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to run the server as another user");
        return;
    }
    // The server as an ordinary user: it may make no cgroup here.
    let root = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::chown(root.path(), Some(65534), Some(65534)).expect("chown");
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let launcher = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"];
    let app = TestApp::spawn_launched(root, &launcher, vec!["--token".into(), crate::helpers::TOKEN.into()], &[]);
    let script = "try:\n    b = bytearray(200 << 20)\n    print('allocated')\nexcept MemoryError:\n    \
                  print('memory-error', flush=True)\nimport time\ntime.sleep(60)\n";
    let agent = app.agent("rlimited", &[PYTHON, "-c", script], json!({"limits": {"memory_mb": 64, "pids": 50}}));
    let id = instance(&app, &agent);
    let out = app.wait_output(&id, "memory-error", T);
    assert!(!out.contains("allocated"), "{out}");
    let running = get(&app, &id);
    let isolation = &running["isolation"];
    assert_eq!(isolation["containment"], "pidns", "{isolation}");
    assert_eq!(isolation["limits"], "rlimit", "{isolation}");
    assert_eq!(isolation["unenforced"], json!(["pids"]), "never silently pretend: {isolation}");
    assert!(running["usage"]["memory_bytes"].as_u64().is_some_and(|m| m > 0), "usage from /proc: {running}");
}

#[test]
fn a_sandboxed_instance_in_its_worktree_commits_while_the_data_directory_stays_closed() {
    if skip(no_landlock()) {
        return;
    }
    // The worktree lies inside the data directory (DATA_DIR/worktrees), which the
    // sandbox hides: the instance's own worktree is opened to it, nothing else.
    let app = TestApp::spawn_with(&[]);
    let repo = crate::helpers::project_dir(&app, "repo");
    let git = |args: &[&str]| crate::workspaces::git(&repo, args);
    git(&["init", "-q", "-b", "main"]);
    std::fs::write(std::path::Path::new(&repo).join("a.txt"), "one\n").expect("write");
    git(&["add", "a.txt"]);
    git(&["commit", "-qm", "first"]);
    let data = app.data_dir();
    let script = format!(
        "echo two > a.txt && git commit -qam second && echo committed; cat {}/token || echo token-refused; \
         ls {}/worktrees >/dev/null 2>&1 || echo others-refused; echo probe-done; sleep 60",
        data.display(),
        data.display()
    );
    let r = app.post(
        "/api/agents",
        &json!({"name": "boxed-tree", "project_path": repo, "command": ["sh", "-c", script],
                "env": {"GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@example.com",
                        "GIT_COMMITTER_NAME": "a", "GIT_COMMITTER_EMAIL": "a@example.com"},
                "settings": {"workspace": "worktree", "sandbox": {"enabled": true}}}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let id = instance(&app, r.json()["id"].as_str().expect("id"));
    let out = app.wait_output(&id, "probe-done", T);
    assert!(out.contains("committed"), "{out}");
    assert!(out.contains("token-refused") && out.contains("others-refused"), "{out}");
    let branch = get(&app, &id)["workspace"]["branch"].as_str().expect("branch").to_owned();
    assert_eq!(git(&["log", "-1", "--format=%s", &branch]).trim(), "second", "the commit is in the repository");
}

#[test]
fn metrics_total_usage_per_agent_and_a_killed_servers_cgroups_are_swept() {
    if skip(no_cgroups()) {
        return;
    }
    let mut app = TestApp::spawn();
    let agent = app.agent("metered", &["sleep", "600"], json!({"max_concurrent_instances": 2}));
    let first = instance(&app, &agent);
    let second = instance(&app, &agent);
    for id in [&first, &second] {
        eventually(T, "started", || get(&app, id)["usage"].is_object().then_some(()));
    }
    let metrics = app.get("/metrics").text;
    let processes = metrics
        .lines()
        .find(|l| l.starts_with("switchboard_agent_processes{agent=\"metered\"}"))
        .unwrap_or_else(|| panic!("no per-agent line: {metrics}"));
    let n: u64 = processes.rsplit(' ').next().and_then(|v| v.parse().ok()).expect("a number");
    assert!(n >= 2, "both instances' processes: {processes}");
    assert!(metrics.contains("switchboard_agent_memory_bytes{agent=\"metered\"}"), "{metrics}");
    assert!(!metrics.contains(&first), "no instance label: {metrics}");

    // A server killed with SIGKILL leaves its cgroups; the next start sweeps them.
    let old = app.pid();
    app.kill9();
    let leftover = |pid: i32| {
        ["unified", "pids", "cpuacct"]
            .iter()
            .map(|h| std::path::PathBuf::from(format!("/sys/fs/cgroup/{h}/switchboard-{pid}")))
            .filter(|p| p.exists())
            .collect::<Vec<_>>()
    };
    let app = app.start_again();
    eventually(T, "the killed server's cgroups swept", || leftover(old).is_empty().then_some(()));
    assert!(app.get("/healthz").status == 200);
}
