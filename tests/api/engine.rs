//! A real container engine for the container-runner tests: Podman's Docker-
//! compatible service (with the `runc` runtime) on a private socket, with private
//! storage, and a small image imported from a root filesystem built here from
//! Debian's static busybox (no image registry is reachable). Started once per
//! test run; it ends with the test process (a watchdog), never for being idle: a
//! test may ask it something minutes after the one before.
//!
//! A second service can run in a PID namespace of its own and answer on TCP: its
//! containers' pids mean nothing to this machine's `/proc`, exactly as those of
//! an engine on another host. It is handed a listener this process already bound
//! (systemd's socket activation, which podman speaks), so no other test can take
//! its port between choosing it and listening on it.
#![allow(unsafe_code)] // pre_exec: the listener becomes the service's descriptor 3; kill of its group.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The test image: busybox's shell and tools.
pub const IMAGE: &str = "localhost/switchboard-test:busybox";
/// How long the service stays up without a request: for ever (`0`). With a timeout
/// it once ended in the middle of a run, between the container tests and the
/// browser test's container scenario 60 s later.
const IDLE_SECS: &str = "0";

pub struct Engine {
    /// The service: its watchdog ends it once this test process is gone.
    _service: std::process::Child,
    /// `unix:///tmp/…/engine.sock`, or `tcp://127.0.0.1:PORT`.
    pub endpoint: String,
}

/// The engine on a private socket, started on first use.
pub fn local() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| Engine::start("local", false))
}

/// An engine whose processes this machine cannot see: `tcp://127.0.0.1:PORT`, or
/// a Unix socket when its start on TCP failed.
pub fn unseen() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| Engine::start("unseen", true))
}

/// Where each engine's run root and libpod state go: /tmp itself, not `$TMPDIR`,
/// which may be long.
const SHORT: &str = "/tmp";

fn podman(dir: &Path, tmp: &Path) -> Command {
    let mut command = Command::new("podman");
    // The run root and libpod's state (liveness marker, exit files, events) are its
    // own, not /run's, which every rootful podman on the machine shares. Both under
    // the short directory in /tmp, wherever the checkout is: podman refuses a run root
    // longer than 50 bytes, and conmon's attach sockets, made beneath the libpod
    // state, have at most 107.
    command.arg("--root").arg(dir.join("root")).arg("--runroot").arg(tmp.join("run"));
    command.arg("--tmpdir").arg(tmp.join("libpod")).args([
        "--storage-driver",
        "vfs",
        "--runtime",
        "runc",
        "--cgroup-manager",
        "cgroupfs",
        "--events-backend",
        "file",
    ]);
    command
}

/// Removes what earlier test runs' engines of this `name` left (storage under
/// `CARGO_TARGET_TMPDIR`; run root and libpod state under /tmp), unless their test
/// process lives.
fn sweep(name: &str) {
    let prefix = format!("engine-{name}-");
    let short = format!("sb-{name}-");
    for parent in [PathBuf::from(env!("CARGO_TARGET_TMPDIR")), PathBuf::from(SHORT)] {
        for old in std::fs::read_dir(&parent).into_iter().flatten().flatten() {
            let file = old.file_name().to_string_lossy().into_owned();
            let Some(pid) = file.strip_prefix(&prefix).or_else(|| file.strip_prefix(&short)) else { continue };
            let pid = pid.split('-').next().unwrap_or_default();
            if !Path::new("/proc").join(pid).exists() || pid == std::process::id().to_string() {
                let _ = std::fs::remove_dir_all(old.path());
            }
        }
    }
}

impl Engine {
    /// Starts the engine, `hidden` in a PID namespace and answering on TCP. A start
    /// that fails is tried once more from scratch — a hidden one on a Unix socket
    /// then, which its clients reach the same way — and both failures are told when
    /// the second fails too.
    fn start(name: &str, hidden: bool) -> Engine {
        crate::helpers::message_last();
        for tool in ["podman", "runc", "unshare"] {
            let found = Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().expect("sh");
            assert!(found.status.success(), "{tool} is missing: the test command (tests/run) installs podman and runc");
        }
        // One engine is made at a time: podman's commands share state beyond their
        // storage (its locks in shared memory).
        static STARTING: Mutex<()> = Mutex::new(());
        let _one_at_a_time = STARTING.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        sweep(name);
        let mut failures = Vec::new();
        for attempt in 1..=2 {
            match Engine::try_start(name, attempt, hidden, hidden && attempt == 1) {
                Ok(engine) => return engine,
                Err(why) => {
                    eprintln!("the {name} engine, attempt {attempt}: {why}");
                    failures.push(format!("attempt {attempt}: {why}"));
                }
            }
        }
        panic!("the {name} engine did not start:\n{}", failures.join("\n"));
    }

    fn try_start(name: &str, attempt: u32, hidden: bool, tcp: bool) -> Result<Engine, String> {
        let id = format!("{}-{attempt}", std::process::id());
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("engine-{name}-{id}"));
        let tmp = Path::new(SHORT).join(format!("sb-{name}-{id}"));
        for made in [&dir, &tmp] {
            let _ = std::fs::remove_dir_all(made);
            std::fs::create_dir_all(made).map_err(|e| format!("{}: {e}", made.display()))?;
        }
        let tarball = root_filesystem(&dir);
        let imported = podman(&dir, &tmp).arg("import").arg("-q").arg(&tarball).arg(IMAGE).output();
        let imported = imported.map_err(|e| format!("podman import: {e}"))?;
        if !imported.status.success() {
            return Err(format!("podman import: {}", String::from_utf8_lossy(&imported.stderr)));
        }
        let listener = if tcp {
            Some(TcpListener::bind("127.0.0.1:0").map_err(|e| format!("a port for the engine: {e}"))?)
        } else {
            None
        };
        let inner = podman(&dir, &tmp);
        let mut podman_argv: Vec<String> = vec![inner.get_program().to_string_lossy().into_owned()];
        podman_argv.extend(inner.get_args().map(|a| a.to_string_lossy().into_owned()));
        podman_argv.extend(["--log-level", "info", "system", "service", "--time", IDLE_SECS].map(str::to_owned));
        let endpoint = match &listener {
            None => {
                let endpoint = format!("unix://{}", tmp.join("engine.sock").display());
                podman_argv.push(endpoint.clone());
                endpoint
            }
            Some(listener) => format!("tcp://127.0.0.1:{}", listener.local_addr().map_err(|e| e.to_string())?.port()),
        };
        let argv = if hidden {
            // In a PID namespace of its own, podman is pid 1 there: `$$` of the shell
            // that execs it is the pid socket activation names.
            let mut argv: Vec<String> =
                ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc", "sh", "-c"].map(str::to_owned).into();
            let activation = if listener.is_some() { "LISTEN_PID=$$ LISTEN_FDS=1 " } else { "" };
            argv.push(format!("{activation}exec \"$@\""));
            argv.push("podman".to_owned());
            argv.extend(podman_argv);
            argv
        } else {
            podman_argv
        };
        let log_path = dir.join("service.log");
        let log = std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
        // A watchdog ends the service once this test process is gone.
        let watchdog = format!(
            "\"$@\" & service=$!; while kill -0 {} 2>/dev/null && kill -0 $service 2>/dev/null; do sleep 1; done; \
             kill $service; sleep 1; kill -KILL $service 2>/dev/null",
            std::process::id()
        );
        let mut service = Command::new("sh");
        service
            .arg("-c")
            .arg(watchdog)
            .arg("engine")
            .args(&argv)
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(|e| e.to_string())?)
            .stderr(log)
            // Its own process group, so a failed start ends the service with it.
            .process_group(0)
            // Its working directory is the engine's own: conmon leaves an `oom` file
            // where it runs after a container's out-of-memory kill.
            .current_dir(&dir);
        let listening = listener.as_ref().map(AsRawFd::as_raw_fd);
        // SAFETY: dup2, fcntl and close_range are async-signal-safe. The service gets
        // standard input, output and error, the listener as descriptor 3 when it
        // has one, and nothing else this process inherited: every other descriptor
        // is marked close-on-exec (not closed, so that std's own report of a failed
        // exec still works). The copy dup2 makes has no close-on-exec; a listener
        // that is descriptor 3 already has its flag cleared instead.
        unsafe {
            service.pre_exec(move || {
                let keep = match listening {
                    Some(fd) => {
                        let done = if fd == 3 { libc::fcntl(3, libc::F_SETFD, 0) } else { libc::dup2(fd, 3) };
                        if done < 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        4
                    }
                    None => 3,
                };
                if libc::close_range(keep, libc::c_uint::MAX, libc::CLOSE_RANGE_CLOEXEC as libc::c_int) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut service = service.spawn().map_err(|e| format!("podman system service: {e}"))?;
        // The service holds its own copy now.
        drop(listener);
        let started = Instant::now();
        let deadline = started + Duration::from_secs(60);
        let log = || {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(12)..].join("\n")
        };
        loop {
            if Engine::answers(&endpoint) {
                break;
            }
            if let Ok(Some(status)) = service.try_wait() {
                return Err(format!("ended ({status}) before it answered; the end of its log:\n{}", log()));
            }
            if Instant::now() > deadline {
                if let Ok(group) = i32::try_from(service.id()) {
                    // SAFETY: kill(2) of the group this function just made.
                    unsafe { libc::kill(-group, libc::SIGKILL) };
                }
                let _ = service.wait();
                return Err(format!("did not answer in 60 s; the end of its log:\n{}", log()));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        eprintln!("the {name} engine answered after {:.1} s", started.elapsed().as_secs_f64());
        Ok(Engine { _service: service, endpoint })
    }

    /// Whether the engine at `endpoint` answers its ping.
    fn answers(endpoint: &str) -> bool {
        request(endpoint, "GET", "/_ping").is_some_and(|body| body == "OK")
    }

    /// One request to the engine's API; the body, when it answered.
    pub fn request(&self, method: &str, path: &str) -> Option<String> {
        request(&self.endpoint, method, path)
    }

    /// The names of the engine's containers, running or not.
    pub fn containers(&self) -> Vec<String> {
        let body = self.request("GET", "/v1.41/containers/json?all=true").expect("the engine answers");
        let list: Value = serde_json::from_str(&body).expect("container list");
        list.as_array()
            .expect("array")
            .iter()
            .flat_map(|c| c["Names"].as_array().cloned().unwrap_or_default())
            .filter_map(|n| n.as_str().map(|n| n.trim_start_matches('/').to_owned()))
            .collect()
    }

    /// Waits until the instance's container is gone from the engine.
    pub fn wait_removed(&self, instance: &str) {
        crate::helpers::eventually(Duration::from_secs(30), "the container to be removed", || {
            (!self.holds(instance)).then_some(())
        });
    }

    /// Whether the engine still holds the instance's container.
    pub fn holds(&self, instance: &str) -> bool {
        self.containers().contains(&format!("switchboard-{instance}"))
    }
}

/// One request to an engine's API; the body, when it answered.
fn request(endpoint: &str, method: &str, path: &str) -> Option<String> {
    let request = format!("{method} {path} HTTP/1.0\r\nHost: engine\r\n\r\n");
    let mut response = Vec::new();
    // A listener handed to a service that has not started yet (or has ended) takes
    // connections and never answers them.
    let patience = Some(Duration::from_secs(20));
    if let Some(socket) = endpoint.strip_prefix("unix://") {
        let mut stream = UnixStream::connect(socket).ok()?;
        stream.set_read_timeout(patience).ok()?;
        stream.write_all(request.as_bytes()).ok()?;
        stream.read_to_end(&mut response).ok()?;
    } else {
        let address = endpoint.strip_prefix("tcp://")?;
        let mut stream = std::net::TcpStream::connect(address).ok()?;
        stream.set_read_timeout(patience).ok()?;
        stream.write_all(request.as_bytes()).ok()?;
        stream.read_to_end(&mut response).ok()?;
    }
    let text = String::from_utf8_lossy(&response).into_owned();
    text.split_once("\r\n\r\n").map(|(_, body)| body.to_owned())
}

/// A tarball of a root filesystem: static busybox as the shell and its tools.
fn root_filesystem(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    for sub in ["bin", "tmp", "etc"] {
        std::fs::create_dir_all(root.join(sub)).expect("rootfs");
    }
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("busybox is missing: the test command (tests/run) installs Debian's busybox-static");
    let linked = Command::new("ldd").arg(busybox).output().expect("ldd");
    assert!(!linked.status.success(), "{busybox} is not static: the test command (tests/run) installs busybox-static");
    std::fs::copy(busybox, root.join("bin/busybox")).expect("copy busybox");
    for tool in [
        "sh", "cat", "echo", "ls", "sleep", "stty", "touch", "mkdir", "head", "tail", "sort", "tr", "seq", "yes",
        "sync",
    ] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(tool)).expect("symlink");
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").expect("passwd");
    let tarball = dir.join("rootfs.tar");
    let status = Command::new("tar").arg("-C").arg(&root).arg("-cf").arg(&tarball).arg(".").status().expect("tar");
    assert!(status.success(), "tar");
    tarball
}
