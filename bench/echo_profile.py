#!/usr/bin/env python3
"""Where a slow echo's time goes: keystroke → echo on SSE beside 100 instances printing
every 10 ms (as `run.py --only latency` measures it), recorded with the kernel's
scheduler events. For each echo it adds up, from `perf sched timehist`, how long the
threads that ran in its window waited for a CPU after being woken: the server's, the
echo's shell, this client, and the kernel's workers (which move every PTY's output to
its reader). Then it compares the fastest half of the echoes with the slowest.

    cargo build --release && python3 bench/echo_profile.py            # 1000 echoes
    python3 bench/echo_profile.py --samples 300 --pause 0.1           # printers every 100 ms

Needs `perf` and the right to record scheduler events (root, or
kernel.perf_event_paranoid ≤ -1). The recording's clock is CLOCK_MONOTONIC, the same
as this script's, so each echo's window can be found in it.
"""
import argparse
import bisect
import collections
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import Server, echo_times, pct, wait_status  # noqa: E402

ROLES = ["server", "echo shell", "client", "kernel workers"]
LINE = re.compile(r"\s*([\d.]+)\s+\[(\d+)\]\s+(.*?)\[(\d+)(?:/(\d+))?\]\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)")


def runs_of(path):
    """Each run of a thread: (started, comm, tid, pid, waited for a CPU), seconds."""
    out = subprocess.run(["perf", "sched", "timehist", "-i", path], capture_output=True, text=True, check=True).stdout
    runs = []
    for line in out.splitlines():
        m = LINE.match(line)
        if m:
            t, _, comm, tid, pid, _, delay, run = m.groups()
            runs.append((float(t) - float(run) / 1e3, comm.strip(), int(tid), int(pid or tid), float(delay) / 1e3))
    runs.sort()
    return runs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--pause", default="0.01", help="each printer's pause between lines, seconds")
    ap.add_argument("--no-record", action="store_true", help="the echoes alone, without the recording (which costs CPU)")
    args = ap.parse_args()
    if not args.no_record and not shutil.which("perf"):
        sys.exit("perf is missing (Debian: apt install linux-perf)")
    tmp = tempfile.mkdtemp()
    srv = Server(os.path.join(tmp, "data"))
    recording = os.path.join(tmp, "sched.data")
    try:
        printer = ["bash", "-c", f"exec 3<> <(:); while :; do echo $RANDOM$RANDOM; read -t {args.pause} -u 3; done"]
        busy = srv.agent("busy", printer)
        ids = [srv.call("POST", f"/api/agents/{busy}/instances", {})["id"] for _ in range(100)]
        wait_status(srv, ids, "active")
        agent = srv.agent("echo", ["bash", "--norc", "-i"])
        iid = srv.call("POST", f"/api/agents/{agent}/instances", {})["id"]
        wait_status(srv, [iid], "awaiting_input")
        time.sleep(1)
        if args.no_record:
            ms = sorted((seen - sent) / 1e6 for sent, seen in echo_times(srv, iid, args.samples))
            print(f"keystroke → echo beside 100 instances printing every {float(args.pause) * 1000:.0f} ms, not recorded: "
                  f"p50 {pct(ms, 50):.2f}, p99 {pct(ms, 99):.2f}, max {ms[-1]:.2f} ms ({len(ms)} echoes)")
            return
        perf = subprocess.Popen(["perf", "record", "-a", "-k", "CLOCK_MONOTONIC", "-o", recording,
                                 "-e", "sched:sched_switch", "-e", "sched:sched_wakeup", "-e", "sched:sched_wakeup_new",
                                 "-e", "sched:sched_migrate_task"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(2)
        times = echo_times(srv, iid, args.samples)
        perf.send_signal(signal.SIGINT)
        perf.wait()
    finally:
        srv.stop()
    runs = runs_of(recording)
    shutil.rmtree(tmp, ignore_errors=True)
    starts = [r[0] for r in runs]

    def window(sent, seen):
        return runs[bisect.bisect_left(starts, sent / 1e9):bisect.bisect_right(starts, seen / 1e9)]

    # The echo's shell: the bash that runs in (nearly) every echo's window.
    seen_in = collections.Counter()
    for sent, seen in times:
        seen_in.update({r[2] for r in window(sent, seen) if r[1].startswith("bash")})
    echo_shell = seen_in.most_common(1)[0][0]

    def role(r):
        if r[3] == srv.proc.pid:
            return "server"
        if r[2] == echo_shell:
            return "echo shell"
        if r[3] == os.getpid():
            return "client"
        if r[1].startswith("kworker"):
            return "kernel workers"
        return None

    rows = []
    for sent, seen in times:
        waited, ran = collections.Counter(), collections.Counter()
        others = 0
        for r in window(sent, seen):
            who = role(r)
            if who:
                waited[who] += r[4]
                ran[who] += 1
            else:
                others += 1
        rows.append(((seen - sent) / 1e6, waited, ran, others))
    rows.sort(key=lambda r: r[0])
    ms = [r[0] for r in rows]
    print(f"keystroke → echo beside 100 instances printing every {float(args.pause) * 1000:.0f} ms: "
          f"p50 {pct(ms, 50):.2f}, p99 {pct(ms, 99):.2f}, max {ms[-1]:.2f} ms ({len(ms)} echoes)")
    print("each echo's window: its threads' wait for a CPU after being woken, ms (their runs in the window)")
    print(f"| echoes | echo, median | {' | '.join(ROLES)} | all four | other programs' runs |")
    print(f"|---|---|{'---|' * len(ROLES)}---|---|")
    n = len(rows)
    for label, part in (("fastest half", rows[: n // 2]), ("all", rows), ("slowest 5 %", rows[-max(1, n // 20):]),
                        ("slowest 2 %", rows[-max(1, n // 50):])):
        cells = [f"{statistics.mean(r[1][k] for r in part) * 1e3:.2f} ({statistics.mean(r[2][k] for r in part):.1f})"
                 for k in ROLES]
        total = statistics.mean(sum(r[1].values()) for r in part) * 1e3
        others = statistics.mean(r[3] for r in part)
        print(f"| {label} | {statistics.median(r[0] for r in part):.2f} | {' | '.join(cells)} | {total:.2f} | {others:.0f} |")
    base = statistics.median(ms[: n // 2])
    slow = rows[-max(1, n // 50):]
    covered = sum(1 for r in slow if sum(r[1].values()) * 1e3 >= 0.5 * (r[0] - base))
    print(f"slowest 2 %: in {covered} of {len(slow)}, the wait for a CPU is at least half the echo's excess over "
          f"the fastest half's median ({base:.2f} ms)")


if __name__ == "__main__":
    main()
