#!/usr/bin/env python3
"""Compares builds on one shape of flood, alternating them within one run (this VM's
speed changes from minute to minute, so builds measured apart cannot be compared).
For each round and build: a bare reader, then the served path; it prints the rates,
the ratio, and the server's and the SSE client's CPU per MB (the server's from
schedstat), then the medians.

    python3 bench/compare.py lines OLD_BINARY target/release/switchboard
    MB=50 ROUNDS=5 python3 bench/compare.py tui OLD NEW

Shapes: the keys of run.SHAPES, or `tui` (the recorded Claude Code TUI, replayed fast).
"""
import os
import shutil
import statistics
import sys
import tempfile

import run


def flood_script(shape, mb, into):
    if shape == "tui":
        return run.replay_script(os.path.join(into, "tui.py"), "--fast", "--mb", str(mb))
    path = os.path.join(into, "shape.py")
    with open(path, "w") as f:
        f.write(f"import os\nblock = {run.SHAPES[shape]}\nblock = (block * (65536 // len(block) + 1))[:65536]\n"
                f"for _ in range({mb} * 16):\n    os.write(1, block)\n")
    return path


def main():
    if len(sys.argv) < 3 or (sys.argv[1] not in run.SHAPES and sys.argv[1] != "tui"):
        sys.exit(f"usage: compare.py SHAPE BINARY...; shapes: {', '.join([*run.SHAPES, 'tui'])}")
    shape, binaries = sys.argv[1], sys.argv[2:]
    mb, rounds = int(os.environ.get("MB", "50")), int(os.environ.get("ROUNDS", "4"))
    tmp = tempfile.mkdtemp(prefix="switchboard-compare-")
    script = flood_script(shape, mb, tmp)
    builds = []
    try:
        for i, binary in enumerate(binaries):
            run.BIN = binary  # read by Server when it starts the process
            srv = run.Server(os.path.join(tmp, f"data{i}"))
            agent = srv.agent("flood", ["bash", "-c", f"sleep 0.5; exec python3 {script}"])
            builds.append((binary, srv, agent, []))
        for _ in range(rounds):
            for binary, srv, agent, results in builds:
                bare = run.bare_rate(script)
                window = run.Window(srv)
                served = run.served_rate(srv, agent, window)
                mbs = window.bytes / 1e6
                server, client = window.server * 1000 / mbs, window.client * 1000 / mbs
                results.append((served / bare, served, server, client))
                print(f"{binary}: bare {bare:.1f} MB/s, served {served:.1f} MB/s, ratio {served / bare:.2f}, "
                      f"server {server:.2f}, client {client:.2f} core-ms/MB", flush=True)
        for binary, _, _, results in builds:
            ratio, served, server, client = (statistics.median(r[k] for r in results) for k in range(4))
            print(f"== {binary}: median ratio {ratio:.2f}, served {served:.1f} MB/s, "
                  f"server {server:.2f}, client {client:.2f} core-ms/MB")
    finally:
        for _, srv, _, _ in builds:
            srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
