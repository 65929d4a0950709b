//! `TestApp`: a real server process on a free loopback port, and a small client.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

/// A token long enough for the server's rules.
pub const TOKEN: &str = "test-token-0123456789abcdef";
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// An HTTP answer.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub text: String,
}

impl Resp {
    /// The body as JSON (panics with the body when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    /// The error code of a JSON error body.
    pub fn code(&self) -> String {
        self.json()["error"]["code"].as_str().unwrap_or_default().to_owned()
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A running server.
pub struct TestApp {
    pub port: u16,
    pub root: TempDir,
    pub token: Option<String>,
    pub dashboard_line: String,
    args: Vec<String>,
    child: Option<Child>,
    agent: ureq::Agent,
}

/// Starts the binary with `args` (plus `--bind 127.0.0.1:0`); returns its first two
/// stdout lines, or its exit status and log when it refuses to start.
pub fn start(args: &[String], log: &Path, envs: &[(&str, &str)]) -> Result<(Child, [String; 2]), (ExitStatus, String)> {
    start_launched(&[], args, log, envs)
}

/// The environment that gives a server, and every instance it starts, a home of
/// its own at `home`: what a shell or git finds there is the test's, never the
/// machine user's rc files (a `.bashrc` that runs `pyenv rehash` waits a minute on a
/// lock that an instance ended mid-rehash left behind). Tools installed under the
/// real home keep working through their own variables.
fn own_home(home: &Path) -> Vec<(String, String)> {
    std::fs::create_dir_all(home).expect("test home");
    let gitconfig = "[user]\n\tname = Switchboard tests\n\temail = tests@switchboard.invalid\n";
    std::fs::write(home.join(".gitconfig"), gitconfig).expect("test .gitconfig");
    let mut vars = vec![("HOME".to_owned(), home.to_string_lossy().into_owned())];
    if let Some(real) = std::env::var_os("HOME").map(PathBuf::from) {
        for (var, dir) in [("PYENV_ROOT", ".pyenv"), ("CARGO_HOME", ".cargo"), ("RUSTUP_HOME", ".rustup")] {
            if std::env::var_os(var).is_none() && real.join(dir).is_dir() {
                vars.push((var.to_owned(), real.join(dir).to_string_lossy().into_owned()));
            }
        }
    }
    vars
}

/// Like [`start`], with the binary run by `launcher` (`["setpriv", …, "--"]`).
pub fn start_launched(
    launcher: &[&str],
    args: &[String],
    log: &Path,
    envs: &[(&str, &str)],
) -> Result<(Child, [String; 2]), (ExitStatus, String)> {
    message_last();
    let log_file = std::fs::File::create(log).expect("log file");
    let binary = env!("CARGO_BIN_EXE_switchboard");
    let mut cmd = match launcher.split_first() {
        Some((program, rest)) => {
            let mut cmd = Command::new(program);
            cmd.args(rest).arg(binary);
            cmd
        }
        None => Command::new(binary),
    };
    cmd.args(args).stdout(Stdio::piped()).stderr(log_file).stdin(Stdio::null());
    if !envs.iter().any(|(k, _)| *k == "HOME") {
        if let Some(home) = log.parent().map(|root| root.join("home")) {
            cmd.envs(own_home(&home));
        }
    }
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn switchboard");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().and_then(Result::ok);
        let second = lines.next().and_then(Result::ok);
        let _ = tx.send((first, second));
        for _ in lines {} // keep draining so the server never blocks on stdout
    });
    match rx.recv_timeout(START_TIMEOUT) {
        Ok((Some(first), Some(second))) => Ok((child, [first, second])),
        _ => {
            let status =
                wait_with_timeout(&mut child, Duration::from_secs(10)).expect("server neither started nor exited");
            Err((status, std::fs::read_to_string(log).unwrap_or_default()))
        }
    }
}

/// Makes a failing test's message also its last words: with `RUST_BACKTRACE` set (as
/// in CI), the backtrace follows the message and a log that keeps only the end of the
/// output would lose what failed. The message is repeated after it, cut to its last
/// 20 lines.
pub fn message_last() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let backtraces = std::env::var_os("RUST_BACKTRACE").is_some_and(|v| v != "0");
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            default(info);
            if !backtraces {
                return;
            }
            let payload = info.payload();
            let message = payload
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| payload.downcast_ref::<&str>().copied())
                .unwrap_or("(a panic without a message)");
            let lines: Vec<&str> = message.lines().collect();
            let tail = lines[lines.len().saturating_sub(20)..].join("\n");
            let place = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
            eprintln!("the panic above{place}, again after its backtrace:\n{tail}");
        }));
    });
}

/// Waits for a child to exit, killing it when the time is up.
pub fn wait_with_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

impl TestApp {
    /// A server with a fresh data directory and the test token.
    pub fn spawn() -> Self {
        Self::spawn_with(&["--token", TOKEN])
    }

    /// A server with a fresh data directory and extra `args`.
    pub fn spawn_with(args: &[&str]) -> Self {
        let root = tempfile::tempdir().expect("tempdir");
        Self::spawn_in(root, args.iter().map(|s| (*s).to_owned()).collect())
    }

    /// A server with the test token and this TOML config file.
    pub fn spawn_with_config(toml: &str) -> Self {
        let root = tempfile::tempdir().expect("tempdir");
        let config = root.path().join("config.toml");
        std::fs::write(&config, toml).expect("write config");
        let config = config.to_string_lossy().into_owned();
        Self::spawn_in(root, vec!["--token".into(), TOKEN.into(), "--config".into(), config])
    }

    /// A server over an existing directory (`root/data` is the data directory).
    pub fn spawn_in(root: TempDir, extra: Vec<String>) -> Self {
        Self::spawn_env(root, extra, &[])
    }

    /// Like [`TestApp::spawn_in`], with extra environment variables for the server.
    pub fn spawn_env(root: TempDir, extra: Vec<String>, envs: &[(&str, &str)]) -> Self {
        Self::spawn_launched(root, &[], extra, envs)
    }

    /// Like [`TestApp::spawn_env`], with the binary run by `launcher`.
    pub fn spawn_launched(root: TempDir, launcher: &[&str], extra: Vec<String>, envs: &[(&str, &str)]) -> Self {
        let data = root.path().join("data");
        let mut args = vec!["serve".to_owned()];
        if !extra.iter().any(|a| a == "--bind") {
            args.extend(["--bind".into(), "127.0.0.1:0".into()]);
        }
        args.push("--data-dir".into());
        args.push(data.to_string_lossy().into_owned());
        args.extend(extra.iter().cloned());
        let (child, [listening, dashboard]) =
            match start_launched(launcher, &args, &root.path().join("server.log"), envs) {
                Ok(started) => started,
                Err((status, log)) => panic!("server did not start ({status}):\n{log}"),
            };
        let port = listening
            .strip_prefix("switchboard listening on http://127.0.0.1:")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("unexpected first line {listening:?}"));
        let token = if extra.iter().any(|a| a == "--no-auth") {
            None
        } else {
            let from_env = envs.iter().find(|(k, _)| *k == "SWITCHBOARD_TOKEN").map(|(_, v)| (*v).to_owned());
            Some(extra.iter().position(|a| a == "--token").map_or_else(
                || {
                    from_env.unwrap_or_else(|| {
                        std::fs::read_to_string(data.join("token")).expect("token file").trim().to_owned()
                    })
                },
                |i| extra[i + 1].clone(),
            ))
        };
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        TestApp { port, root, token, dashboard_line: dashboard, args: extra, child: Some(child), agent }
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.root.path().join("data")
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.path().join("server.log")).unwrap_or_default()
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn finish(&self, result: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Resp {
        let mut res = result.expect("request completed");
        let status = res.status().as_u16();
        let headers = res.headers().iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_owned())).collect();
        let text = res.body_mut().read_to_string().expect("body");
        Resp { status, headers, text }
    }

    fn bearer(&self) -> String {
        format!("Bearer {}", self.token.as_deref().unwrap_or(""))
    }

    /// GET with the token.
    pub fn get(&self, path: &str) -> Resp {
        self.finish(self.agent.get(self.url(path)).header("Authorization", self.bearer()).call())
    }

    /// GET without credentials, with these headers.
    pub fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> Resp {
        let mut req = self.agent.get(self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.finish(req.call())
    }

    /// POST a JSON body with the token.
    pub fn post(&self, path: &str, body: &Value) -> Resp {
        self.finish(self.agent.post(self.url(path)).header("Authorization", self.bearer()).send_json(body))
    }

    /// PUT a JSON body with the token.
    pub fn put(&self, path: &str, body: &Value) -> Resp {
        self.finish(self.agent.put(self.url(path)).header("Authorization", self.bearer()).send_json(body))
    }

    /// DELETE with the token.
    pub fn delete(&self, path: &str) -> Resp {
        self.finish(self.agent.delete(self.url(path)).header("Authorization", self.bearer()).call())
    }

    /// Sends raw bytes as a request and reads the whole answer (for malformed requests).
    pub fn raw(&self, request: &[u8]) -> Resp {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect");
        stream.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
        stream.write_all(request).expect("write");
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer).into_owned();
        let (head, text) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
        let mut lines = head.lines();
        let status = lines.next().and_then(|l| l.split(' ').nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
        let headers =
            lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())).collect();
        Resp { status, headers, text: text.to_owned() }
    }

    /// A raw request with the test token, `Host` set right, and `Connection: close`.
    pub fn raw_api(&self, method: &str, path: &str, extra_headers: &str, body: &[u8]) -> Resp {
        self.raw_api_as(&self.bearer(), method, path, extra_headers, body)
    }

    /// A raw request with this `Authorization` value.
    pub fn raw_api_as(&self, authorization: &str, method: &str, path: &str, extra_headers: &str, body: &[u8]) -> Resp {
        self.raw_request(method, path, &format!("Authorization: {authorization}\r\n{extra_headers}"), body)
    }

    /// A raw request without credentials: `path` exactly as given, `Host` set right,
    /// `Connection: close`, and these extra header lines.
    pub fn raw_request(&self, method: &str, path: &str, extra_headers: &str, body: &[u8]) -> Resp {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\nConnection: close\r\n{extra_headers}\r\n",
            self.port,
            body.len()
        );
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(body);
        self.raw(&bytes)
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn stop(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
        wait_with_timeout(&mut child, Duration::from_secs(20)).expect("server exits after SIGTERM")
    }

    /// Stops the server (SIGTERM) and starts it again over the same data directory.
    pub fn restart(mut self) -> TestApp {
        assert!(self.stop().success());
        self.start_again()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Creates a directory under the app's root for use as a project path.
pub fn project_dir(app: &TestApp, name: &str) -> String {
    let dir = app.root.path().join(name);
    std::fs::create_dir_all(&dir).expect("mkdir");
    dir.canonicalize().expect("canonical").to_string_lossy().into_owned()
}

/// Polls `check` every 20 ms until it returns `Some`, or panics after `timeout`.
pub fn eventually<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out after {timeout:?} waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl TestApp {
    /// The server's process id.
    pub fn pid(&self) -> i32 {
        i32::try_from(self.child.as_ref().expect("running").id()).expect("pid")
    }

    /// Creates an agent running `argv` in a fresh project directory; returns its id.
    pub fn agent(&self, name: &str, argv: &[&str], settings: Value) -> String {
        let dir = project_dir(self, &format!("project-{name}"));
        let r = self.post(
            "/api/agents",
            &serde_json::json!({"name": name, "project_path": dir, "command": argv, "settings": settings}),
        );
        assert_eq!(r.status, 201, "{}", r.text);
        r.json()["id"].as_str().expect("id").to_owned()
    }

    /// Starts an instance of `agent`; returns the instance JSON.
    pub fn instance(&self, agent: &str, body: Value) -> Value {
        let r = self.post(&format!("/api/agents/{agent}/instances"), &body);
        assert_eq!(r.status, 201, "{}", r.text);
        r.json()
    }

    /// Waits until the instance's status is `status`; returns the instance.
    pub fn wait_status(&self, id: &str, status: &str, timeout: Duration) -> Value {
        eventually(timeout, &format!("instance {id} to be {status}"), || {
            let instance = self.get(&format!("/api/instances/{id}")).json();
            (instance["status"] == status).then_some(instance)
        })
    }

    /// The instance's transcript so far.
    pub fn output(&self, id: &str) -> String {
        self.get(&format!("/api/instances/{id}/output")).text
    }

    /// Waits until the transcript contains `needle`; returns the transcript.
    pub fn wait_output(&self, id: &str, needle: &str, timeout: Duration) -> String {
        eventually(timeout, &format!("{needle:?} in the output of {id}"), || {
            let text = self.output(id);
            text.contains(needle).then_some(text)
        })
    }

    /// Types raw data into an instance.
    pub fn type_in(&self, id: &str, data: &str) {
        let r = self.post(&format!("/api/instances/{id}/input"), &serde_json::json!({"data": data}));
        assert_eq!(r.status, 202, "{}", r.text);
    }

    /// Kills the server with SIGKILL and waits for it.
    pub fn kill9(&mut self) {
        let mut child = self.child.take().expect("running");
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Starts the server again over the same data directory and on the same port
    /// (after `stop` or `kill9`), as a restarted service would be.
    pub fn start_again_on_same_port(mut self) -> TestApp {
        let mut args = std::mem::take(&mut self.args);
        args.extend(["--bind".to_owned(), format!("127.0.0.1:{}", self.port)]);
        let root = std::mem::replace(&mut self.root, tempfile::tempdir().expect("tempdir"));
        TestApp::spawn_in(root, args)
    }

    /// Starts the server again over the same data directory (after `stop` or `kill9`).
    pub fn start_again(mut self) -> TestApp {
        let args = std::mem::take(&mut self.args);
        let root = std::mem::replace(&mut self.root, tempfile::tempdir().expect("tempdir"));
        TestApp::spawn_in(root, args)
    }
}

/// Live processes (not zombies) carrying an instance's marker.
pub fn marked(instance: &str) -> Vec<i32> {
    switchboard::terminal::pty::instance_processes(None, instance, &std::collections::HashSet::new())
}

/// Zombie children of a process.
pub fn zombies_of(parent: i32) -> Vec<i32> {
    use switchboard::terminal::procfs;
    procfs::pids()
        .into_iter()
        .filter(|p| procfs::stat(*p).is_some_and(|s| s.ppid == parent && s.state == 'Z'))
        .collect()
}
