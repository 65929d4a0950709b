//! A real container engine for the container-runner tests: Podman's Docker-
//! compatible service (with the `runc` runtime) on a private socket, with private
//! storage, and a small image imported from a root filesystem built here from
//! Debian's static busybox (no image registry is reachable). Started once per
//! test run; the service exits by itself once idle.
//!
//! A second service can run in a PID namespace of its own and answer on TCP: its
//! containers' pids mean nothing to this machine's `/proc`, exactly as those of
//! an engine on another host.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

/// The test image: busybox's shell and tools.
pub const IMAGE: &str = "localhost/switchboard-test:busybox";
/// How long the service stays up without a request.
const IDLE_SECS: &str = "60";

pub struct Engine {
    /// The service: it exits by itself once idle, after the tests.
    _service: std::process::Child,
    dir: PathBuf,
    /// `unix:///…/engine.sock`.
    pub endpoint: String,
}

/// The engine on a private socket, started on first use.
pub fn local() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| Engine::start("local", None))
}

/// An engine whose processes this machine cannot see: `tcp://127.0.0.1:PORT`.
pub fn unseen() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
        Engine::start("unseen", Some(port))
    })
}

fn podman(dir: &Path) -> Command {
    let mut command = Command::new("podman");
    command.arg("--root").arg(dir.join("root")).arg("--runroot").arg(dir.join("run")).args([
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

impl Engine {
    fn start(name: &str, tcp_port: Option<u16>) -> Engine {
        for tool in ["podman", "runc"] {
            let found = Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().expect("sh");
            assert!(found.status.success(), "{tool} is missing: the test command (tests/run) installs podman and runc");
        }
        let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        // Earlier runs' storage.
        for old in std::fs::read_dir(&tmp).into_iter().flatten().flatten() {
            if old.file_name().to_string_lossy().starts_with(&format!("engine-{name}-")) {
                let _ = std::fs::remove_dir_all(old.path());
            }
        }
        let dir = tmp.join(format!("engine-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("engine dir");
        let tarball = root_filesystem(&dir);
        let imported = podman(&dir).arg("import").arg("-q").arg(&tarball).arg(IMAGE).output().expect("podman import");
        assert!(imported.status.success(), "podman import: {}", String::from_utf8_lossy(&imported.stderr));
        let socket = dir.join("engine.sock");
        let (listen, endpoint) = match tcp_port {
            None => (format!("unix://{}", socket.display()), format!("unix://{}", socket.display())),
            Some(port) => (format!("tcp://127.0.0.1:{port}"), format!("tcp://127.0.0.1:{port}")),
        };
        let log = std::fs::File::create(dir.join("service.log")).expect("log");
        let inner = podman(&dir);
        let mut argv: Vec<String> = match tcp_port {
            None => Vec::new(),
            Some(_) => ["unshare", "--pid", "--fork", "--kill-child", "--mount-proc"].map(str::to_owned).to_vec(),
        };
        argv.push(inner.get_program().to_string_lossy().into_owned());
        argv.extend(inner.get_args().map(|a| a.to_string_lossy().into_owned()));
        argv.extend(["system", "service", "--time", IDLE_SECS, &listen].map(str::to_owned));
        // A watchdog ends the service once this test process is gone (the service's
        // own idle timeout is not always kept).
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
            .stdout(log.try_clone().expect("log"))
            .stderr(log);
        let service = service.spawn().expect("podman system service");
        let engine = Engine { _service: service, dir, endpoint };
        let deadline = Instant::now() + Duration::from_secs(30);
        while engine.request("GET", "/_ping").is_none() {
            assert!(Instant::now() < deadline, "the engine did not answer: {}", engine.log());
            std::thread::sleep(Duration::from_millis(100));
        }
        engine
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("service.log")).unwrap_or_default()
    }

    /// One request to the engine's API; the body, when it answered.
    pub fn request(&self, method: &str, path: &str) -> Option<String> {
        let request = format!("{method} {path} HTTP/1.0\r\nHost: engine\r\n\r\n");
        let mut response = Vec::new();
        if let Some(socket) = self.endpoint.strip_prefix("unix://") {
            let mut stream = UnixStream::connect(socket).ok()?;
            stream.write_all(request.as_bytes()).ok()?;
            stream.read_to_end(&mut response).ok()?;
        } else {
            let address = self.endpoint.strip_prefix("tcp://")?;
            let mut stream = std::net::TcpStream::connect(address).ok()?;
            stream.write_all(request.as_bytes()).ok()?;
            stream.read_to_end(&mut response).ok()?;
        }
        let text = String::from_utf8_lossy(&response).into_owned();
        text.split_once("\r\n\r\n").map(|(_, body)| body.to_owned())
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
