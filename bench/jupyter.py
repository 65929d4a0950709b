#!/usr/bin/env python3
"""The peer's side of bench/run.py: the same density, lifecycle, echo latency and
throughput measures against Jupyter Server's terminals (terminado: a PTY per
terminal behind REST and a WebSocket). Run by bench/run.py with the Python of a
virtual environment holding jupyter_server and websocket-client; prints its table
rows as JSON on stdout.

    target/venv-jupyter/bin/python bench/jupyter.py --instances 1000 --mb 100
"""
import argparse
import concurrent.futures
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

import websocket  # websocket-client

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import FLOOD, TICK, Measured, bare_rate, fleet_cpu, machine_ticks, pct, replay_script  # noqa: E402

TOKEN = "bench-token-0123456789abcdef"


def raise_open_files_limit():
    """As Switchboard does for itself: a PTY per terminal needs more than 1,024 descriptors."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Jupyter(Measured):
    def __init__(self, root):
        self.root = root
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter_server", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={self.port}",
             "--ServerApp.port_retries=0", f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}",
             "--ServerApp.terminado_settings=shell_command=['bash','--norc','-i']",
             "--ServerApp.log_level=WARN"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(root, "jupyter.log"), "w"),
            env={**os.environ, "JUPYTER_CONFIG_DIR": root, "JUPYTER_DATA_DIR": root, "JUPYTER_RUNTIME_DIR": root},
            preexec_fn=raise_open_files_limit)
        deadline = time.time() + 60
        while True:
            try:
                self.call("GET", "/api/status")
                break
            except OSError:
                if time.time() > deadline or self.proc.poll() is not None:
                    raise RuntimeError("Jupyter Server did not start; see " + os.path.join(root, "jupyter.log"))
                time.sleep(0.2)

    def call(self, method, path):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method,
                                     headers={"Authorization": f"token {TOKEN}"}, data=b"" if method == "POST" else None)
        with urllib.request.urlopen(req, timeout=60) as r:
            body = r.read()
        return json.loads(body) if body else None

    def terminal(self):
        return self.call("POST", "/api/terminals")["name"]

    def delete(self, name):
        self.call("DELETE", f"/api/terminals/{name}")

    def socket(self, name):
        ws = websocket.create_connection(f"ws://127.0.0.1:{self.port}/terminals/websocket/{name}",
                                         header=[f"Authorization: token {TOKEN}"], timeout=60)
        return ws


def stdout_until(ws, needle):
    """Reads `stdout` messages until one holds `needle`; returns the characters read."""
    got = 0
    while True:
        msg = json.loads(ws.recv())
        if msg[0] == "stdout":
            got += len(msg[1])
            if needle in msg[1]:
                return got


def density_and_lifecycle(jup, rows, n):
    time.sleep(1)
    base = jup.rss_kib()
    names = [jup.terminal() for _ in range(n)]
    time.sleep(10)  # every bash up and waiting
    rss = jup.rss_kib()
    ticks = jup.cpu_ticks()
    time.sleep(10)
    idle = jup.cpu_ticks() - ticks
    rows.append(("rss", f"server RSS per idle bash terminal at {n}", f"{(rss - base) / n:.1f} KiB"))
    rows.append(("idle_cpu", f"server CPU while {n} terminals idle, 10 s", f"{idle / TICK * 100 / 10:.2f} % ({idle} ticks)"))
    alone = []
    for _ in range(100):
        t = time.perf_counter()
        names.append(jup.terminal())
        alone.append((time.perf_counter() - t) * 1000)
        time.sleep(0.05)
    rows.append(("create", f"create (POST → 200), one at a time, {n} live, p50 / p99", f"{pct(alone, 50):.1f} / {pct(alone, 99):.1f} ms"))
    time.sleep(2)
    deletes = []
    for name in names[:100]:
        t = time.perf_counter()
        jup.delete(name)
        deletes.append((time.perf_counter() - t) * 1000)
    rows.append(("terminate", f"delete (DELETE → 204), {len(names)} live, p50 / p99", f"{pct(deletes, 50):.1f} / {pct(deletes, 99):.1f} ms"))
    with concurrent.futures.ThreadPoolExecutor(8) as pool:  # each takes about 100 ms
        list(pool.map(jup.delete, names[100:]))


def echo_latency(jup, samples=300):
    name = jup.terminal()
    ws = jup.socket(name)
    time.sleep(1)
    while True:  # drain the prompt
        ws.settimeout(0.5)
        try:
            ws.recv()
        except websocket.WebSocketTimeoutException:
            break
    ws.settimeout(60)
    times = []
    for k in range(samples):
        ch = "abcdefghij"[k % 10]
        t = time.perf_counter()
        ws.send(json.dumps(["stdin", ch]))
        stdout_until(ws, ch)
        times.append((time.perf_counter() - t) * 1000)
    ws.close()
    jup.delete(name)
    return f"{pct(times, 50):.2f} / {pct(times, 99):.2f} ms"


def latency(jup, rows):
    rows.append(("echo_idle", "keystroke (WebSocket) → echo, idle, p50 / p99", echo_latency(jup)))
    for pause in ("0.1", "0.01"):
        names = [jup.terminal() for _ in range(100)]
        for name in names:
            ws = jup.socket(name)
            ws.send(json.dumps(["stdin", f"exec 3<> <(:); while :; do echo $RANDOM$RANDOM; read -t {pause} -u 3; done\r"]))
            ws.close()
        time.sleep(2)
        before = machine_ticks()
        result = echo_latency(jup)
        idle, total = (a - b for a, b in zip(machine_ticks(), before))
        rows.append((f"echo_{pause}", f"… with 100 terminals printing every {float(pause) * 1000:.0f} ms", f"{result} (machine {100 * (1 - idle / total):.0f} % busy)"))
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            list(pool.map(jup.delete, names))


def throughput(jup, rows, mb, root, rounds=3):  # each run of 100 MB takes about 25 s here
    script = os.path.join(root, "flood.py")
    with open(script, "w") as f:
        f.write(FLOOD.format(mb=mb))
    bare, served = [], []
    for _ in range(rounds):
        bare.append(bare_rate(script))
        name = jup.terminal()
        ws = jup.socket(name)
        # The marker is made by the shell, so the echoed command line does not hold it.
        ws.send(json.dumps(["stdin", f"python3 {script}; echo FLOOD-$((1+1))-DONE\r"]))
        stdout_until(ws, "DONE")  # the echoed command line
        got, t = 0, None
        while True:
            msg = json.loads(ws.recv())
            if msg[0] != "stdout":
                continue
            if t is None and "x" in msg[1]:
                t = time.perf_counter()
            got += len(msg[1])
            if "FLOOD-2-DONE" in msg[1]:
                break
        served.append(got / (time.perf_counter() - t) / 1e6)
        ws.close()
        jup.delete(name)
    b, v = statistics.median(bare), statistics.median(served)
    ratio = statistics.median(x / y for x, y in zip(served, bare))
    rows.append(("throughput", f"{mb} MB PTY → WebSocket client, median of {rounds} alternated runs", f"{v:.1f} MB/s, {ratio:.2f} of a bare reader ({b:.1f} MB/s)"))


def replay_fleet(jup, rows, root, n=100, seconds=30):
    """As bench/run.py's: server CPU while `n` terminals replay the recorded TUI at its
    pace, nobody watching; then with a WebSocket viewer on every terminal."""
    script = replay_script(os.path.join(root, "replay-at-pace.py"), "--from", "random")
    names = [jup.terminal() for _ in range(n)]
    for name in names:
        ws = jup.socket(name)
        ws.send(json.dumps(["stdin", f"exec python3 {script}\r"]))
        ws.close()
    time.sleep(5)
    rows.append(("tui_fleet", f"server CPU, {n} terminals replaying the recorded TUI", fleet_cpu(jup, seconds)))
    viewers = [jup.socket(name) for name in names]
    stop = False

    def drain(ws):
        while not stop:
            try:
                ws.recv()
            except Exception:  # closed, or a timeout
                return
    for ws in viewers:
        threading.Thread(target=drain, args=(ws,), daemon=True).start()
    time.sleep(3)
    rows.append(("tui_fleet_viewed", "… with a WebSocket viewer on each", fleet_cpu(jup, seconds)))
    stop = True
    for ws in viewers:
        ws.close()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(jup.delete, names))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--instances", type=int, default=1000)
    ap.add_argument("--mb", type=int, default=100)
    ap.add_argument("--only", default="")
    a = ap.parse_args()

    def want(part):
        return not a.only or part in a.only.split(",")

    root = tempfile.mkdtemp(prefix="switchboard-bench-jupyter-")
    rows = []
    jup = Jupyter(root)
    try:
        if want("density"):
            density_and_lifecycle(jup, rows, a.instances)
        if want("latency"):
            latency(jup, rows)
        if want("throughput"):
            throughput(jup, rows, a.mb, root)
        if want("tui"):
            replay_fleet(jup, rows, root)
    finally:
        jup.stop()
        shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
