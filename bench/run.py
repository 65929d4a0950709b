#!/usr/bin/env python3
"""Switchboard's benchmark: starts the release server on a free port with a fresh data
directory and prints one table (standard library only).

    cargo build --release && python3 bench/run.py            # everything
    python3 bench/run.py --instances 200 --only density      # a part, smaller
    python3 bench/run.py --no-peer --only containers         # the container runner (needs podman, runc, busybox-static)
    python3 bench/run.py --json target/bench.json            # also every figure as JSON, to compare runs

Measured: density (server RSS per idle `bash` instance, idle CPU), lifecycle (create and
terminate), switching (stream connect to snapshot), keystroke echo latency (idle and with
100 instances producing output), throughput (PTY to SSE client, against a bare PTY
reader), detection delay and false positives, SQLite message write rate under 16
clients, worktree creation, what containment, limits and the sandbox cost per instance
(create time and memory), and start-up with 100,000 stored messages and 10,000 instances.
"""
import argparse
import http.client
import json
import os
import pty
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# SWITCHBOARD_BENCH_BIN: another build to measure (an earlier one, to compare).
BIN = os.environ.get("SWITCHBOARD_BENCH_BIN") or os.path.join(ROOT, "target", "release", "switchboard")
TOKEN = "bench-token-0123456789abcdef"
TICK = os.sysconf("SC_CLK_TCK")


def machine_ticks():
    """(idle, total) CPU ticks of the whole machine so far."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return fields[3] + fields[4], sum(fields)


def machine_busy():
    """Busy CPU ticks of the whole machine so far (every process and the kernel)."""
    idle, total = machine_ticks()
    return total - idle


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


class Measured:
    """A server process under measurement (`self.proc`)."""

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))

    def cpu_ticks(self):
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])

    def cpu_ns(self):
        """CPU time of the threads living now, in nanoseconds (schedstat: finer than ticks)."""
        total, tasks = 0, f"/proc/{self.proc.pid}/task"
        for task in os.listdir(tasks):
            try:
                with open(f"{tasks}/{task}/schedstat") as f:
                    total += int(f.read().split()[0])
            except OSError:
                pass  # the thread ended
        return total

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Server(Measured):
    def __init__(self, data, max_instances=1200, config=None):
        self.data = data
        extra = []
        if config is not None:
            path = data + ".toml"
            with open(path, "w") as f:
                f.write(config)
            extra = ["--config", path]
        self.proc = subprocess.Popen(
            [BIN, "--bind", "127.0.0.1:0", "--data-dir", data, "--token", TOKEN, "--max-instances", str(max_instances), *extra],
            stdout=subprocess.PIPE, stderr=open(os.path.join(data + ".log"), "a"), text=True)
        self.started = time.perf_counter()
        line = self.proc.stdout.readline()
        self.ready = time.perf_counter() - self.started
        self.port = int(line.rsplit(":", 1)[1])
        self.proc.stdout.readline()
        threading.Thread(target=lambda: [None for _ in self.proc.stdout], daemon=True).start()

    def conn(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)

    def call(self, method, path, body=None, conn=None):
        c = conn or self.conn()
        headers = {"Authorization": f"Bearer {TOKEN}"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        payload = json.dumps(body) if body is not None else None
        try:
            c.request(method, path, body=payload, headers=headers)
            r = c.getresponse()
        except (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected):
            c.close()  # the server ended an idle kept-alive connection: open it again
            c.request(method, path, body=payload, headers=headers)
            r = c.getresponse()
        text = r.read()
        if conn is None:
            c.close()
        if r.status >= 300:
            raise RuntimeError(f"{method} {path}: {r.status} {text[:200]!r}")
        return json.loads(text) if text else None

    def agent(self, name, command, project=None, **settings):
        body = {"name": name, "project_path": project or self.data, "command": command,
                "settings": {"max_concurrent_instances": 1000, **settings}}
        return self.call("POST", "/api/agents", body)["id"]


class Stream:
    """A raw SSE client (chunked encoding) that yields (event, data) pairs, `data` as
    the bytes of its `data:` lines. It runs on the same two cores as the server it
    measures, so it copies each byte as few times as it can: one copy out of the
    chunked body, one out of the event, then the JSON decoder's own."""

    def __init__(self, port, path):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAuthorization: Bearer {TOKEN}\r\n"
                          f"Accept: text/event-stream\r\n\r\n".encode())
        raw = b""
        while b"\r\n\r\n" not in raw:
            raw += self.sock.recv(65536)
        self.raw = bytearray(raw.split(b"\r\n\r\n", 1)[1])
        self.received = bytearray(1 << 20)
        self.buf = bytearray()
        self.pos = 0

    def _fill(self):
        """Moves every complete chunk of the body into `buf`, receiving until there is one."""
        raw = self.raw
        while True:
            p = 0
            while True:
                nl = raw.find(b"\r\n", p)
                if nl < 0:
                    break
                size = int(raw[p:nl], 16)
                if size == 0:  # the end of the body: what came before it first
                    if p:
                        break
                    raise EOFError
                if len(raw) < nl + 2 + size + 2:
                    break
                with memoryview(raw) as body:
                    self.buf += body[nl + 2:nl + 2 + size]
                p = nl + 2 + size + 2
            if p:
                del raw[:p]
                return
            n = self.sock.recv_into(self.received)
            if not n:
                raise EOFError
            with memoryview(self.received) as received:
                raw += received[:n]

    def events(self):
        while True:
            buf = self.buf
            end = buf.find(b"\n\n", self.pos)
            if end < 0:
                del buf[:self.pos]
                self.pos = 0
                self._fill()
                continue
            kind, data, i = "message", [], self.pos
            self.pos = end + 2
            while i < end:
                nl = buf.find(b"\n", i, end)
                nl = end if nl < 0 else nl
                if buf.startswith(b"data:", i):
                    at = i + 6 if buf.startswith(b" ", i + 5) else i + 5
                    with memoryview(buf) as view:
                        data.append(bytes(view[at:nl]))
                elif buf.startswith(b"event:", i):
                    kind = buf[i + 6:nl].decode().strip()
                i = nl + 1
            if data:
                yield kind, data[0] if len(data) == 1 else b"\n".join(data)

    def close(self):
        self.sock.close()


def wait_status(srv, ids, status, timeout=300):
    deadline = time.time() + timeout
    pending = set(ids)
    while pending and time.time() < deadline:
        listed = srv.call("GET", f"/api/instances?status={status}&limit=1000")
        pending -= {i["id"] for i in listed}
        if 0 < len(pending) <= 200 and len(listed) == 1000:  # the list stops at 1,000
            pending = {i for i in pending if srv.call("GET", f"/api/instances/{i}")["status"] != status}
        if pending:
            time.sleep(0.2)
    if pending:
        raise RuntimeError(f"{len(pending)} instances never became {status}")


def density_and_lifecycle(srv, rows, n):
    agent = srv.agent("density", ["bash", "--norc", "-i"])
    time.sleep(1)
    base = srv.rss_kib()
    conn = srv.conn()
    ids, creates = [], []
    for _ in range(n):
        t = time.perf_counter()
        ids.append(srv.call("POST", f"/api/agents/{agent}/instances", {}, conn)["id"])
        creates.append((time.perf_counter() - t) * 1000)
    wait_status(srv, ids, "awaiting_input")
    time.sleep(3)
    rss = srv.rss_kib()
    ticks = srv.cpu_ticks()
    time.sleep(10)
    idle = srv.cpu_ticks() - ticks
    rows.append(("density", f"server RSS per idle bash instance at {n}", f"{(rss - base) / n:.1f} KiB", "< 32 KiB", "rss"))
    rows.append(("density", f"server CPU while {n} instances idle, 10 s", f"{idle / TICK * 100 / 10:.2f} % ({idle} ticks)", "0", "idle_cpu"))
    # One at a time, each after the last one's program is up: what a person or a
    # script starting an agent sees. (Back to back, each create also competes with
    # the start-up of the bash processes before it on two cores.)
    alone, more = [], srv.agent("density-more", ["bash", "--norc", "-i"])
    for _ in range(100):
        t = time.perf_counter()
        iid = srv.call("POST", f"/api/agents/{more}/instances", {}, conn)["id"]
        alone.append((time.perf_counter() - t) * 1000)
        ids.append(iid)
        time.sleep(0.05)
    rows.append(("lifecycle", f"create (POST → 201, child running), one at a time, {n} live, p50 / p99", f"{pct(alone, 50):.1f} / {pct(alone, 99):.1f} ms", "< 5 ms", "create"))
    rows.append(("lifecycle", f"… {n} back to back from none, p50 / p99", f"{pct(creates, 50):.1f} / {pct(creates, 99):.1f} ms", ""))
    wait_status(srv, ids, "awaiting_input")
    return ids, conn


def switching(srv, rows, ids):
    times = []
    for iid in ids[:200]:
        t = time.perf_counter()
        s = Stream(srv.port, f"/api/instances/{iid}/stream")
        for kind, _ in s.events():
            if kind == "snapshot":
                break
        times.append((time.perf_counter() - t) * 1000)
        s.close()
    rows.append(("switching", "stream connect → snapshot, p50 / p99", f"{pct(times, 50):.2f} / {pct(times, 99):.2f} ms", "< 20 ms"))


def terminate(srv, rows, ids, conn):
    conn = srv.conn()
    times = []
    for iid in ids[:100]:
        t = time.perf_counter()
        srv.call("PUT", f"/api/instances/{iid}", {"status": "terminated"}, conn)
        times.append((time.perf_counter() - t) * 1000)
    rows.append(("lifecycle", f"terminate (whole process group gone), {len(ids)} live, p50 / p99", f"{pct(times, 50):.1f} / {pct(times, 99):.1f} ms", "< 20 ms", "terminate"))
    for iid in ids[100:]:
        srv.call("PUT", f"/api/instances/{iid}", {"status": "terminated"}, conn)


def echo_latency(srv, label, samples=300, command=("bash", "--norc", "-i"), **settings):
    agent = srv.agent(f"echo-{uuid.uuid4().hex[:6]}", list(command), **settings)
    iid = srv.call("POST", f"/api/agents/{agent}/instances", {})["id"]
    wait_status(srv, [iid], "awaiting_input")
    times = [(seen - sent) / 1e6 for sent, seen in echo_times(srv, iid, samples)]
    return f"{pct(times, 50):.2f} / {pct(times, 99):.2f} ms"


def echo_times(srv, iid, samples):
    """(sent, seen) of each keystroke typed into the instance and its echo on the SSE
    stream, in CLOCK_MONOTONIC nanoseconds."""
    s = Stream(srv.port, f"/api/instances/{iid}/stream?tail=0")
    events = s.events()
    conn = srv.conn()
    times = []
    for k in range(samples):
        ch = "abcdefghij"[k % 10]
        sent = time.monotonic_ns()
        srv.call("POST", f"/api/instances/{iid}/input", {"data": ch}, conn)
        for kind, data in events:
            if kind == "output" and ch in json.loads(data)["data"]:
                break
        times.append((sent, time.monotonic_ns()))
    s.close()
    return times


def pty_echo(argv, samples=300, env=None):
    """Keystroke → echo as seen on the master side of a PTY that runs `argv`: a user's
    terminal. Returns the times in ms."""
    import select
    master, slave = os.openpty()
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                            env={**os.environ, **(env or {})})
    os.close(slave)
    def read_until(*needles, timeout=20):
        seen = b""
        deadline = time.time() + timeout
        while not any(n in seen for n in needles):
            ready, _, _ = select.select([master], [], [], max(0, deadline - time.time()))
            if not ready:
                raise RuntimeError(f"no {needles!r} from {argv[0]}: {seen[-200:]!r}")
            seen += os.read(master, 65536)
        return seen
    read_until(b"$ ", b"# ")  # the prompt (an ordinary user's, or root's)
    times = []
    for k in range(samples):
        if k % 50 == 49:  # keep the line short: erase it and let the redraw pass
            os.write(master, b"\x15")
            time.sleep(0.05)
            while select.select([master], [], [], 0.05)[0]:
                os.read(master, 65536)
        ch = b"abcdefghij"[k % 10:k % 10 + 1]
        t = time.perf_counter()
        os.write(master, ch)
        read_until(ch)
        times.append((time.perf_counter() - t) * 1000)
    proc.kill()
    proc.wait()
    os.close(master)
    return times


def attach_latency(srv, rows):
    """`switchboard attach` in a PTY, as a user runs it, against bash in a PTY of its
    own (a local shell): the keystroke to its echo on the user's terminal."""
    agent = srv.agent("attach-echo", ["bash", "--norc", "-i"])
    iid = srv.call("POST", f"/api/agents/{agent}/instances", {})["id"]
    wait_status(srv, [iid], "awaiting_input")
    attached = pty_echo([BIN, "attach", iid, "--url", f"http://127.0.0.1:{srv.port}", "--token", TOKEN])
    local = pty_echo(["bash", "--norc", "-i"], env={"PS1": "$ "})
    rows.append(("latency", "keystroke → echo through `switchboard attach`, p50 / p99",
                 f"{pct(attached, 50):.2f} / {pct(attached, 99):.2f} ms", "", "echo_attach"))
    rows.append(("latency", "… a local shell in a PTY of its own, p50 / p99",
                 f"{pct(local, 50):.2f} / {pct(local, 99):.2f} ms", "", "echo_local"))
    srv.call("PUT", f"/api/instances/{iid}", {"status": "terminated"})


def latency(srv, rows):
    attach_latency(srv, rows)
    rows.append(("latency", "keystroke → echo on SSE, idle, p50 / p99", echo_latency(srv, "idle"), "< 1.0 / 1.5 ms", "echo_idle"))
    # Print without forking: `read -t` on a pipe that never has data is the pause.
    for pause in ("0.1", "0.01"):
        printer = ["bash", "-c", f"exec 3<> <(:); while :; do echo $RANDOM$RANDOM; read -t {pause} -u 3; done"]
        busy = srv.agent(f"busy-{pause}", printer)
        ids = [srv.call("POST", f"/api/agents/{busy}/instances", {})["id"] for _ in range(100)]
        wait_status(srv, ids, "active")
        time.sleep(1)
        before = machine_ticks()
        result = echo_latency(srv, "busy")
        idle, total = (a - b for a, b in zip(machine_ticks(), before))
        busy_share = 100 * (1 - idle / total)
        rows.append(("latency", f"… with 100 instances printing every {float(pause) * 1000:.0f} ms", f"{result} (machine {busy_share:.0f} % busy)", "< 1.0 / 1.5 ms", f"echo_{pause}"))
        for iid in ids:
            srv.call("PUT", f"/api/instances/{iid}", {"status": "terminated"})
        wait_status(srv, ids, "terminated")
        rows.append(("latency", "… the floor: a local shell beside the same 100 printers in PTYs of their own, no server",
                     printers_floor(printer, 100), "", f"echo_{pause}_floor"))


def printers_floor(argv, n):
    """A local shell's keystroke → echo beside `n` printers that run in PTYs of their
    own, drained by this script every 50 ms (one poll for all, as the server's tick
    reads trickling output): what the printers and the kernel leave of two cores to
    an echo, with no server in the way. p50 / p99 and how busy the machine was."""
    import select
    printers = []
    for _ in range(n):
        master, slave = os.openpty()
        os.set_blocking(master, False)
        printers.append((subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True), master))
        os.close(slave)
    stop = threading.Event()
    def drain():
        poller = select.poll()
        for _, master in printers:
            poller.register(master, select.POLLIN)
        while not stop.wait(0.05):
            for fd, _ in poller.poll(0):
                try:
                    os.read(fd, 65536)
                except OSError:
                    pass
    drainer = threading.Thread(target=drain, daemon=True)
    drainer.start()
    try:
        time.sleep(1)
        before = machine_ticks()
        times = pty_echo(["bash", "--norc", "-i"], env={"PS1": "$ "})
        idle, total = (a - b for a, b in zip(machine_ticks(), before))
        return f"{pct(times, 50):.2f} / {pct(times, 99):.2f} ms (machine {100 * (1 - idle / total):.0f} % busy)"
    finally:
        stop.set()
        drainer.join()
        for proc, master in printers:
            proc.kill()
            proc.wait()
            os.close(master)


def container_engine(tmp):
    """Podman's Docker-compatible service (runc) on a private socket and storage, with
    an image of a static busybox, as the tests make it; None when podman is missing."""
    busybox = "/bin/busybox"
    if not (shutil.which("podman") and shutil.which("runc") and os.path.exists(busybox)):
        return None
    if subprocess.run(["ldd", busybox], capture_output=True).returncode == 0:
        return None  # not static
    base = os.path.join(tmp, "engine")
    root = os.path.join(base, "rootfs")
    os.makedirs(os.path.join(root, "bin"))
    shutil.copy(busybox, os.path.join(root, "bin", "busybox"))
    os.symlink("busybox", os.path.join(root, "bin", "sh"))
    podman = ["podman", "--root", os.path.join(base, "root"), "--runroot", os.path.join(base, "run"), "--storage-driver", "vfs",
              "--runtime", "runc", "--cgroup-manager", "cgroupfs", "--events-backend", "file"]
    tar = os.path.join(base, "rootfs.tar")
    subprocess.run(["tar", "-C", root, "-cf", tar, "."], check=True)
    subprocess.run([*podman, "import", "-q", tar, "localhost/switchboard-bench:busybox"], check=True, capture_output=True)
    sock = os.path.join(base, "engine.sock")
    service = subprocess.Popen([*podman, "system", "service", "--time", "0", f"unix://{sock}"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        if os.path.exists(sock):
            break
        time.sleep(0.1)
    return service, {"kind": "container", "image": "localhost/switchboard-bench:busybox", "engine": f"unix://{sock}", "network": "none"}


def containers(srv, rows, tmp, n=30):
    """The container runner against a local engine: what starting and ending an
    instance in a container costs, and typing into one."""
    engine = container_engine(tmp)
    if engine is None:
        rows.append(("containers", "(skipped: podman, runc and a static /bin/busybox are needed)", "", ""))
        return
    service, runner = engine
    try:
        agent = srv.agent("boxed", ["/bin/sh"], runner=runner)
        created, ended = [], []
        for _ in range(n):
            t = time.perf_counter()
            iid = srv.call("POST", f"/api/agents/{agent}/instances", {})["id"]
            created.append((time.perf_counter() - t) * 1000)
            wait_status(srv, [iid], "awaiting_input")
            t = time.perf_counter()
            srv.call("PUT", f"/api/instances/{iid}", {"status": "terminated"})
            ended.append((time.perf_counter() - t) * 1000)
        rows.append(("containers", "create in a container (POST → 201, attached and running), p50 / p99",
                     f"{pct(created, 50):.0f} / {pct(created, 99):.0f} ms", ""))
        rows.append(("containers", "terminate (container gone), p50 / p99", f"{pct(ended, 50):.0f} / {pct(ended, 99):.0f} ms", ""))
        rows.append(("containers", "keystroke → echo on SSE, a shell in a container, p50 / p99",
                     echo_latency(srv, "container", command=["/bin/sh"], runner=runner), "< 1.0 / 1.5 ms"))
    finally:
        # End what runs in the engine before the engine itself.
        for instance in srv.call("GET", "/api/instances?limit=1000"):
            if instance["status"] in ("active", "awaiting_input"):
                srv.call("PUT", f"/api/instances/{instance['id']}", {"status": "terminated"})
        service.terminate()
        service.wait()


def hooks(srv, rows, n=200):
    """What a coding agent waits for on each of its hooks: `switchboard hook claude` as
    Claude Code runs it (a process, a request, the instance told), the request alone,
    and a held permission request from a person's decision to the hook's answer."""
    agent = srv.agent("hooked", ["bash", "-c", "echo token=$SWITCHBOARD_INSTANCE_TOKEN; exec bash"], integration="claude-code")
    iid = srv.call("POST", f"/api/agents/{agent}/instances", {})["id"]
    wait_status(srv, [iid], "awaiting_input")
    c = srv.conn()
    c.request("GET", f"/api/instances/{iid}/output", headers={"Authorization": f"Bearer {TOKEN}"})
    out = c.getresponse().read().decode()
    token = out.split("token=", 1)[1].split()[0]
    env = {**os.environ, "SWITCHBOARD_URL": f"http://127.0.0.1:{srv.port}", "SWITCHBOARD_INSTANCE_ID": iid,
           "SWITCHBOARD_INSTANCE_TOKEN": token}
    pre = json.dumps({"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"command": "npm test"}})
    spawned, direct = [], []
    for _ in range(n):
        t = time.perf_counter()
        subprocess.run([BIN, "hook", "claude"], input=pre, env=env, capture_output=True, text=True, check=True)
        spawned.append((time.perf_counter() - t) * 1000)
    keep = srv.conn()
    for _ in range(n):
        t = time.perf_counter()
        srv.call("POST", f"/api/instances/{iid}/hooks/claude", json.loads(pre), conn=keep)
        direct.append((time.perf_counter() - t) * 1000)
    decided = []
    ask = json.dumps({"hook_event_name": "PermissionRequest", "tool_name": "Bash", "tool_input": {"command": "make"}})
    for _ in range(20):
        hook = subprocess.Popen([BIN, "hook", "claude"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, text=True)
        hook.stdin.write(ask)
        hook.stdin.close()
        while True:
            approval = srv.call("GET", f"/api/instances/{iid}", conn=keep).get("approval")
            if approval:
                break
            time.sleep(0.005)
        t = time.perf_counter()
        srv.call("POST", f"/api/approvals/{approval['id']}", {"decision": "allow"}, conn=keep)
        answer = hook.stdout.read()
        hook.wait()
        decided.append((time.perf_counter() - t) * 1000)
        assert '"allow"' in answer, answer
    rows.append(("hooks", "a hook as Claude Code runs it (`switchboard hook claude`), p50 / p99",
                 f"{pct(spawned, 50):.2f} / {pct(spawned, 99):.2f} ms", "", "hook_spawned"))
    rows.append(("hooks", "… the report alone (POST …/hooks/claude), p50 / p99",
                 f"{pct(direct, 50):.2f} / {pct(direct, 99):.2f} ms", "", "hook_direct"))
    rows.append(("hooks", "a decision (POST /api/approvals/:id) → the held hook's answer, p50 / max",
                 f"{pct(decided, 50):.2f} / {max(decided):.2f} ms", "", "hook_decided"))
    srv.call("PUT", f"/api/instances/{iid}", {"status": "terminated"})


FLOOD = "import os\nblock = (b'x' * 1023 + b'\\n') * 64\nfor _ in range({mb} * 16):\n    os.write(1, block)\n"


class Window:
    """The stretch in which a flood's bytes flow, from the first chunk received to the
    last: its rate, and the CPU that the whole machine, the server and this process
    (the reader or SSE client) used in it. Bytes of the first chunk came before it
    opened, so they are not counted."""

    def __init__(self, srv=None):
        self.srv, self.start, self.bytes = srv, None, 0

    def got(self, n):
        if self.start is None:
            self.start = (time.perf_counter(), machine_busy(), self.srv.cpu_ns() if self.srv else 0, time.process_time())
        else:
            self.bytes += n

    def close(self):
        """MB/s in the window; sets the core-seconds each party used in it."""
        t, machine, server, client = self.start
        self.seconds = time.perf_counter() - t
        self.machine = (machine_busy() - machine) / TICK
        self.server = (self.srv.cpu_ns() - server) / 1e9 if self.srv else 0
        self.client = time.process_time() - client
        return self.bytes / self.seconds / 1e6


def bare_rate(script, window=None):
    """MB/s at which a bare program reads the flood from a PTY of its own."""
    window = window or Window()
    pid, fd = pty.fork()
    if pid == 0:
        os.execvp("python3", ["python3", script])
    while True:
        try:
            b = os.read(fd, 65536)
        except OSError:
            break
        if not b:
            break
        window.got(len(b))
    rate = window.close()
    os.waitpid(pid, 0)
    os.close(fd)
    return rate


def served_rate(srv, agent, window=None):
    """MB/s of terminal output an SSE client receives while an instance prints the flood."""
    window = window or Window(srv)
    iid = srv.call("POST", f"/api/agents/{agent}/instances", {})["id"]
    s = Stream(srv.port, f"/api/instances/{iid}/stream?tail=0")
    for kind, data in s.events():
        if kind == "output":
            text = json.loads(data)["data"]
            window.got(len(text) if text.isascii() else len(text.encode()))  # bytes, as the bare reader counts
        elif kind == "end":
            break
    rate = window.close()
    s.close()
    return rate


class Budget:
    """Where the CPU goes while a flood's bytes flow (see `Window`): the whole
    machine's busy time per MB in the bare run and in the served one, the server's
    and the client's shares of the served one, and how many cores each run kept
    busy. The ratio to the bare reader is the product of two factors: what the
    bare path costs per MB over what the served path costs (cost ratio), and how
    busy the served run kept the cores over how busy the bare run did."""

    def __init__(self):
        self.bare, self.served = [], []

    def measure(self, into, run, srv=None):
        window = Window(srv)
        rate = run(window)
        into.append(window)
        return rate

    def text(self, bare_rate):
        m = statistics.median
        per_mb = lambda runs, part: m(getattr(w, part) * 1000 / (w.bytes / 1e6) for w in runs)  # core-ms per MB
        busy = lambda runs: m(w.machine / w.seconds for w in runs)
        bare, served = per_mb(self.bare, "machine"), per_mb(self.served, "machine")
        ceiling = os.cpu_count() * 1000 / served / bare_rate
        return (f"bare {bare:.1f}, served {served:.1f} core-ms/MB (server {per_mb(self.served, 'server'):.1f}, "
                f"client {per_mb(self.served, 'client'):.1f}), cost ratio {bare / served:.2f}; cores busy: bare "
                f"{busy(self.bare):.2f}, served {busy(self.served):.2f}; {os.cpu_count()} cores carry at most "
                f"{ceiling:.2f} of the bare reader")


def against_bare(srv, name, script, rounds, budget=None):
    """(served MB/s, ratio to a bare reader, bare MB/s), medians of alternated runs;
    with `budget`, the CPU each run used is added to it."""
    agent = srv.agent(name, ["bash", "-c", f"sleep 0.5; exec python3 {script}"])
    # Alternated, so both see the same machine; this one varies from run to run.
    bare, served = [], []
    for _ in range(rounds):
        if budget:
            bare.append(budget.measure(budget.bare, lambda w: bare_rate(script, w)))
            served.append(budget.measure(budget.served, lambda w: served_rate(srv, agent, w), srv))
        else:
            bare.append(bare_rate(script))
            served.append(served_rate(srv, agent))
    ratio = statistics.median(x / y for x, y in zip(served, bare))
    return statistics.median(served), ratio, statistics.median(bare)


def throughput(srv, rows, mb, rounds=5):
    script = os.path.join(srv.data, "flood.py")
    with open(script, "w") as f:
        f.write(FLOOD.format(mb=mb))
    v, ratio, b = against_bare(srv, "flood", script, rounds)
    rows.append(("throughput", f"{mb} MB PTY → SSE client, median of {rounds} alternated runs", f"{v:.1f} MB/s, {ratio:.2f} of a bare reader ({b:.1f} MB/s)", "≥ 0.8", "throughput"))
    return b


# One 64 KiB block of each shape of output, written over and over (issue: throughput
# depends on the shape). Each is measured against a bare reader of the same bytes.
SHAPES = {
    "lines": "(b'x' * 1023 + b'\\n') * 64",
    "one endless line": "b'x' * 65536",
    "ANSI-coloured lines": "(b'\\x1b[32m[ok]\\x1b[0m ' + b'\\x1b[1;34mbuild\\x1b[0m step ' * 40 + b'\\x1b[33mdone\\x1b[0m\\r\\n') * 64",
    "carriage-return progress bars": "b''.join(b'\\r[' + b'#' * (i % 100) + b' ' * (100 - i % 100) + b'] %3d%%' % (i % 100) for i in range(560))",
}


RECORDING = os.path.join(ROOT, "bench", "recordings", "claude-code.cast")


def replay_script(path, *args):
    """A Python file that runs bench/replay.py on the recording with `args`."""
    with open(path, "w") as f:
        f.write(f"import sys\nsys.path.insert(0, {os.path.join(ROOT, 'bench')!r})\nimport replay\n"
                f"sys.argv = ['replay.py', {RECORDING!r}, *{list(args)!r}]\nreplay.main()\n")
    return path


def throughput_shapes(srv, rows, mb, rounds=3):
    scripts = []
    for name, block in SHAPES.items():
        script = os.path.join(srv.data, f"shape-{len(name)}.py")
        with open(script, "w") as f:
            f.write(f"import os\nblock = {block}\nblock = (block * (65536 // len(block) + 1))[:65536]\n"
                    f"for _ in range({mb} * 16):\n    os.write(1, block)\n")
        scripts.append((name, script, f"shape-{name}", f"{mb} MB of {name}, median of {rounds}"))
    # (e): a coding agent's full-screen TUI (bench/recordings, made by bench/record.py), as fast as it can go.
    script = replay_script(os.path.join(srv.data, "shape-tui.py"), "--fast", "--mb", str(mb))
    scripts.append(("tui", script, "shape-tui", f"{mb} MB of a recorded Claude Code TUI replayed fast, median of {rounds}"))
    for name, script, key, measure in scripts:
        budget = Budget()
        v, ratio, b = against_bare(srv, f"shape-{len(name)}", script, rounds, budget)
        rows.append(("shapes", measure, f"{v:.1f} MB/s, {ratio:.2f} of a bare reader ({b:.1f} MB/s)", "≥ 0.8", key))
        rows.append(("shapes", "… CPU per MB, all processes and the kernel; the ceiling it sets",
                     budget.text(b), "", f"{key}-cpu"))


def replay_fleet(srv, rows, n=100, seconds=30):
    """Server CPU while `n` instances each replay the recorded TUI at its own pace, from
    a random point of it (so their spinners do not turn in step), nobody watching; then
    the same with an SSE viewer on every instance."""
    script = replay_script(os.path.join(srv.data, "replay-at-pace.py"), "--from", "random")
    agent = srv.agent("tui-fleet", ["python3", script])
    ids = [srv.call("POST", f"/api/agents/{agent}/instances", {})["id"] for _ in range(n)]
    time.sleep(5)  # every replay started and its screen drawn
    rows.append(("tui_fleet", f"server CPU, {n} instances replaying the recorded TUI at its pace, {seconds} s",
                 fleet_cpu(srv, seconds), "< 5 %", "tui_fleet"))
    viewers = [Stream(srv.port, f"/api/instances/{iid}/stream") for iid in ids]
    drains = [threading.Thread(target=drain, args=(v,), daemon=True) for v in viewers]
    for d in drains:
        d.start()
    time.sleep(3)
    rows.append(("tui_fleet", "… with an SSE viewer on each instance", fleet_cpu(srv, seconds), "", "tui_fleet_viewed"))
    for v in viewers:
        v.close()
    for iid in ids:
        srv.call("PUT", f"/api/instances/{iid}", {"status": "terminated"})


def drain(stream):
    try:
        for _ in stream.events():
            pass
    except (OSError, EOFError):
        pass  # closed


def fleet_cpu(srv, seconds):
    before, machine = srv.cpu_ticks(), machine_ticks()
    time.sleep(seconds)
    used = srv.cpu_ticks() - before
    idle, total = (a - b for a, b in zip(machine_ticks(), machine))
    return f"{used / TICK * 100 / seconds:.2f} % of a core (machine {100 * (1 - idle / total):.0f} % busy)"


def detection(srv, rows):
    asks = srv.agent("asks", ["bash", "-c", "sleep 1; read -r -p 'Continue? [y/N] ' x"])
    quiet = srv.agent("quiet", ["bash", "-c", "sleep 8"])
    busy = srv.agent("spin", ["bash", "-c", "end=$((SECONDS+8)); while [ $SECONDS -lt $end ]; do :; done"])
    delays = []
    for _ in range(10):
        iid = srv.call("POST", f"/api/agents/{asks}/instances", {})["id"]
        s = Stream(srv.port, f"/api/instances/{iid}/stream?tail=0")
        seen = None
        for kind, data in s.events():
            if kind == "output" and "Continue?" in json.loads(data)["data"]:
                seen = time.perf_counter()
            elif kind == "status" and json.loads(data)["status"] == "awaiting_input" and seen:
                delays.append((time.perf_counter() - seen) * 1000)
                break
        s.close()
        srv.call("PUT", f"/api/instances/{iid}", {"status": "terminated"})
    others = [srv.call("POST", f"/api/agents/{a}/instances", {})["id"] for a in (quiet, busy) for _ in range(3)]
    time.sleep(7)
    false = sum(srv.call("GET", f"/api/instances/{i}")["status"] == "awaiting_input" for i in others)
    rows.append(("detection", "prompt on the stream → awaiting_input, p50 / max", f"{pct(delays, 50):.0f} / {max(delays):.0f} ms", "< 500 ms"))
    rows.append(("detection", "false positives among 3 sleeping + 3 computing", str(false), "0"))


def write_rate(srv, rows, seconds=10, clients=16):
    agent = srv.agent("inbox", ["cat"])
    iid = srv.call("POST", f"/api/agents/{agent}/instances", {})["id"]
    wait_status(srv, [iid], "awaiting_input")
    counts = [0] * clients
    stop = time.time() + seconds

    def client(k):
        conn = srv.conn()
        while time.time() < stop:
            srv.call("POST", f"/api/instances/{iid}/messages", {"content": f"note {k}", "deliver": "when_ready"}, conn)
            counts[k] += 1

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows.append(("sqlite", f"messages stored per second, {clients} clients", f"{sum(counts) / seconds:.0f} /s", ""))


def du_kib(path):
    return int(subprocess.run(["du", "-sk", path], capture_output=True, text=True, check=True).stdout.split()[0])


def workspaces(srv, rows, tmp, files=20000, n=10):
    """A repository of 20,000 small files (a mid-sized project); each instance of a
    worktree agent gets `git worktree add` when it starts. Measured: create → active
    (the worktree made, the program running) against the same for a shared agent,
    and the disk one worktree takes (its checkout plus git's bookkeeping for it)."""
    repo = os.path.join(tmp, "repo")
    for d in range(files // 100):
        os.makedirs(os.path.join(repo, f"src/m{d}"), exist_ok=True)
        for f in range(100):
            with open(os.path.join(repo, f"src/m{d}/f{f}.txt"), "w") as out:
                out.write(f"module {d} file {f}\n" * 20)
    env = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.com",
           "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@example.com"}
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "files"]):
        subprocess.run(["git", "-C", repo, *args], check=True, env=env)
    repo_kib = du_kib(repo) - du_kib(os.path.join(repo, ".git"))
    spares = os.path.join(srv.data, "worktrees", ".spare")
    def started(agent, spare):
        times, ids = [], []
        for _ in range(n):
            if spare:  # starts further apart than one checkout: the spare is ready
                deadline = time.time() + 120
                while not os.path.isdir(os.path.join(spares, agent)) and time.time() < deadline:
                    time.sleep(0.05)
            t = time.perf_counter()
            iid = srv.call("POST", f"/api/agents/{agent}/instances", {})["id"]
            while srv.call("GET", f"/api/instances/{iid}")["status"] != "completed":
                time.sleep(0.002)
            times.append((time.perf_counter() - t) * 1000)
            ids.append(iid)
        return times, ids
    shared, _ = started(srv.agent("ws-shared", ["true"], project=repo), False)
    worktree, ids = started(srv.agent("ws-worktree", ["true"], project=repo, workspace="worktree"), True)
    # Without a spare (starts back to back): the whole checkout, as the server runs it.
    cold = []
    for i in range(3):
        t = time.perf_counter()
        subprocess.run(["git", "-C", repo, "-c", "checkout.workers=0", "worktree", "add", "-q", "-b", f"cold{i}",
                        os.path.join(tmp, f"cold{i}"), "HEAD"], check=True)
        cold.append((time.perf_counter() - t) * 1000)
    one = srv.call("GET", f"/api/instances/{ids[0]}")["workspace"]["path"]
    with open(os.path.join(one, ".git")) as f:
        admin = f.read().split("gitdir:", 1)[1].strip()  # git's bookkeeping for it (its index)
    disk = du_kib(one) + (du_kib(admin) if os.path.isdir(admin) else 0)
    extra = [w - s for w, s in zip(sorted(worktree), sorted(shared))]
    rows.append(("workspace", f"create → ended, worktree agent on {files:,} files, spare ready, p50 / max",
                 f"{pct(worktree, 50):.0f} / {max(worktree):.0f} ms (+{pct(extra, 50):.0f} ms over shared)", "< 1 s", "worktree_create"))
    rows.append(("workspace", "… no spare ready (a full checkout), median of 3",
                 f"{statistics.median(cold):.0f} ms", "", "worktree_cold"))
    rows.append(("workspace", f"disk per worktree (the checkout is {repo_kib / 1024:.1f} MiB of files)",
                 f"{disk / 1024:.1f} MiB", "", "worktree_disk"))


def used_kib():
    """Memory in use on the machine (MemTotal - MemAvailable), and slab + per-CPU
    kernel memory (where cgroups' own bookkeeping lives)."""
    with open("/proc/meminfo") as f:
        m = {l.split(":")[0]: int(l.split()[1]) for l in f}
    return m["MemTotal"] - m["MemAvailable"], m["Slab"] + m.get("Percpu", 0)


def isolation(rows, tmp, n=100, creates=50):
    """What containment, limits and the sandbox cost per instance: create time (one at
    a time, as in the lifecycle row) and the machine's memory per idle `bash`
    instance (helper, namespace init and bash, plus the kernel's cgroup bookkeeping),
    for the same agent under five settings."""
    limits = {"memory_mb": 1024, "pids": 256, "cpu_percent": 100}
    variants = [
        ("PID namespace only ([isolation] cgroups = false)", "[isolation]\ncgroups = false\n", {}, "iso_none"),
        ("+ a cgroup, no spare helpers ([isolation] spare_helpers = 0)", "[isolation]\nspare_helpers = 0\n", {},
         "iso_cgroup_unready"),
        ("+ a cgroup per instance (the default: started in a spare helper)", None, {}, "iso_cgroup"),
        ("+ memory, pids and cpu limits", None, {"limits": limits}, "iso_limits"),
        ("+ the Landlock sandbox", None, {"limits": limits, "sandbox": {"enabled": True}}, "iso_sandbox"),
    ]
    for k, (label, config, settings, key) in enumerate(variants):
        srv = Server(os.path.join(tmp, f"iso{k}"), config=config)
        # A project of its own: a sandbox may not hold the server's data directory.
        project = os.path.join(tmp, f"iso{k}-project")
        os.makedirs(project, exist_ok=True)
        try:
            agent = srv.agent("iso", ["bash", "--norc", "-i"], project, **settings)
            conn = srv.conn()
            times, ids = [], []
            for _ in range(creates):
                t = time.perf_counter()
                ids.append(srv.call("POST", f"/api/agents/{agent}/instances", {}, conn)["id"])
                times.append((time.perf_counter() - t) * 1000)
                time.sleep(0.05)
            wait_status(srv, ids, "awaiting_input")
            isolated = srv.call("GET", f"/api/instances/{ids[0]}")["isolation"]
            for i in ids:
                srv.call("PUT", f"/api/instances/{i}", {"status": "terminated"}, conn)
            time.sleep(2)
            before, kernel_before = used_kib()
            ids = [srv.call("POST", f"/api/agents/{agent}/instances", {}, conn)["id"] for _ in range(n)]
            wait_status(srv, ids, "awaiting_input")
            time.sleep(2)
            after, kernel_after = used_kib()
            helpers = helper_pss_kib(srv)
            for i in ids:
                srv.call("PUT", f"/api/instances/{i}", {"status": "terminated"}, conn)
            shown = f"{isolated['containment']}, {isolated['limits']}, {isolated['sandbox']}"
            rows.append(("isolation", f"{label}: create p50 / p99 ({shown})",
                         f"{pct(times, 50):.1f} / {pct(times, 99):.1f} ms", "", key + "_create"))
            rows.append(("isolation", f"… machine memory per idle bash instance at {n} (kernel slab + per-CPU)",
                         f"{(after - before) / n:.0f} KiB ({(kernel_after - kernel_before) / n:.0f} KiB)", "", key + "_memory"))
            rows.append(("isolation", "… its helper and init (Pss, smaps_rollup), per instance",
                         f"{helpers:.0f} KiB", "", key + "_helpers"))
        finally:
            srv.stop()


def helper_pss_kib(srv):
    """The proportional memory (Pss) of each instance's two helper processes — the
    helper, the server's child, and the namespace's init — averaged per instance. A
    steadier measure than the machine's available memory, which moves with the page
    cache."""
    def pss(pid):
        try:
            with open(f"/proc/{pid}/smaps_rollup") as f:
                return next((int(l.split()[1]) for l in f if l.startswith("Pss:")), 0)
        except OSError:
            return 0
    def children(pid):
        found = []
        for task in os.listdir(f"/proc/{pid}/task"):  # each thread's own children
            try:
                with open(f"/proc/{pid}/task/{task}/children") as f:
                    found += [int(c) for c in f.read().split()]
            except OSError:
                pass
        return found
    helpers = children(srv.proc.pid)
    total = sum(pss(h) + sum(pss(i) for i in children(h)) for h in helpers)
    return total / max(len(helpers), 1)


def startup(rows, tmp):
    data = os.path.join(tmp, "big")
    srv = Server(data)
    agent = srv.agent("history", ["true"])
    srv.stop()
    db = sqlite3.connect(os.path.join(data, "agents.db"))
    now = "2026-11-26T00:00:00.000Z"
    instances = [str(uuid.uuid4()) for _ in range(10_000)]
    db.executemany("INSERT INTO agent_instances (id, agent_id, status, project_path, cols, rows, env, created_at) "
                   "VALUES (?, ?, 'completed', ?, 120, 40, '{}', ?)", [(i, agent, data, now) for i in instances])
    db.executemany("INSERT INTO agent_messages (id, agent_instance_id, sender_type, content, requires_user_input, options, created_at) "
                   "VALUES (?, ?, 'user', 'a stored message of ordinary length', 0, '[]', ?)",
                   [(str(uuid.uuid4()), instances[k % 10_000], now) for k in range(100_000)])
    db.commit()
    db.close()
    times = []
    for _ in range(3):
        srv = Server(data)
        conn = srv.conn()
        while True:
            try:
                conn.request("GET", "/healthz")
                conn.getresponse().read()
                break
            except OSError:
                conn = srv.conn()
        times.append((time.perf_counter() - srv.started) * 1000)
        srv.stop()
    rows.append(("start-up", "to serving, 100,000 messages + 10,000 instances, median of 3", f"{statistics.median(times):.0f} ms", "< 100 ms"))


PEER_VENV = os.path.join(ROOT, "target", "venv-jupyter")


def peer(a):
    """Runs bench/jupyter.py (same measures against Jupyter Server's terminals) in a
    virtual environment made on first use; its rows by key, or None."""
    python = os.path.join(PEER_VENV, "bin", "python")
    if not os.path.exists(python):
        print("… installing Jupyter Server into target/venv-jupyter", file=sys.stderr, flush=True)
        made = subprocess.run([sys.executable, "-m", "venv", PEER_VENV]).returncode == 0 and subprocess.run(
            [os.path.join(PEER_VENV, "bin", "pip"), "install", "--quiet", "--disable-pip-version-check",
             "jupyter_server>=2,<3", "websocket-client>=1,<2"]).returncode == 0
        if not made:
            shutil.rmtree(PEER_VENV, ignore_errors=True)
            print("cannot install Jupyter Server; the peer column stays empty", file=sys.stderr)
            return None
    parts = [p for p in (a.only.split(",") if a.only else ["density", "latency", "throughput", "tui"]) if p in ("density", "latency", "throughput", "tui")]
    if not parts:
        return None
    print("… the same against Jupyter Server terminals", file=sys.stderr, flush=True)
    done = subprocess.run([python, os.path.join(ROOT, "bench", "jupyter.py"), "--instances", str(a.instances),
                           "--mb", str(a.mb), "--only", ",".join(parts)], stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        print("the Jupyter run failed; the peer column stays empty", file=sys.stderr)
        return None
    return {key: result for key, _, result in json.loads(done.stdout)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--instances", type=int, default=1000)
    ap.add_argument("--mb", type=int, default=100)
    ap.add_argument("--only", default="")
    ap.add_argument("--no-peer", action="store_true", help="skip the Jupyter Server side")
    ap.add_argument("--json", metavar="FILE", help="also write every figure to FILE (JSON), to compare runs")
    a = ap.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped"))  # so the server is stopped too
    if not os.path.exists(BIN):
        sys.exit("build first: cargo build --release")
    tmp = tempfile.mkdtemp(prefix="switchboard-bench-")
    rows = []
    def want(part):
        if a.only and part not in a.only.split(","):
            return False
        print(f"… {part}", file=sys.stderr, flush=True)
        return True
    srv = None
    try:
        srv = Server(os.path.join(tmp, "data"))
        try:
            if want("density"):
                ids, conn = density_and_lifecycle(srv, rows, a.instances)
                switching(srv, rows, ids)
                terminate(srv, rows, ids, conn)
            if want("latency"):
                latency(srv, rows)
            if want("throughput"):
                throughput(srv, rows, a.mb)
            if want("shapes"):
                throughput_shapes(srv, rows, a.mb)
            if want("tui"):
                replay_fleet(srv, rows)
            if want("detection"):
                detection(srv, rows)
            if want("sqlite"):
                write_rate(srv, rows)
            if want("workspace"):
                workspaces(srv, rows, tmp)
            if want("hooks"):
                hooks(srv, rows)
            if want("containers"):
                containers(srv, rows, tmp)
        finally:
            srv.stop()
        if want("isolation"):
            isolation(rows, tmp)
        if want("startup"):
            startup(rows, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    theirs = {} if a.no_peer else (peer(a) or {})
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"\nSwitchboard {subprocess.run([BIN, '--version'], capture_output=True, text=True).stdout.strip()} on {os.cpu_count()} cores ({cpu})\n")
    print(f"| {'what':<10} | {'measure':<70} | {'Switchboard':<46} | {'Jupyter Server terminals':<46} | {'target':<14} |")
    print(f"|{'-' * 12}|{'-' * 72}|{'-' * 48}|{'-' * 48}|{'-' * 16}|")
    for part, measure, result, target, *key in rows:
        other = theirs.get(key[0], "") if key else ""
        print(f"| {part:<10} | {measure:<70} | {result:<46} | {other:<46} | {target:<14} |")
    if a.json:
        version = subprocess.run([BIN, "--version"], capture_output=True, text=True).stdout.strip()
        commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
        figures = [{"part": part, "measure": measure, "switchboard": result, "peer": theirs.get(key[0]) if key else None,
                    "target": target or None, "key": key[0] if key else None}
                   for part, measure, result, target, *key in rows]
        with open(a.json, "w") as f:
            json.dump({"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "binary": BIN, "version": version,
                       "commit": commit, "cores": os.cpu_count(), "cpu": cpu, "args": vars(a), "figures": figures}, f, indent=1)
        print(f"\nfigures written to {a.json}")


if __name__ == "__main__":
    main()
