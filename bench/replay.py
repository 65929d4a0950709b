#!/usr/bin/env python3
"""Plays a terminal recording (asciicast v2, as bench/record.py writes) to standard
output: at its recorded pace, over and over (agents working, spinners turning), or
as fast as it can until some megabytes are written.

    python3 bench/replay.py bench/recordings/claude-code.cast              # at pace, forever
    python3 bench/replay.py bench/recordings/claude-code.cast --from 7.5   # … starting 7.5 s in
    python3 bench/replay.py bench/recordings/claude-code.cast --fast --mb 100
"""
import argparse
import json
import os
import random
import time


def outputs(path):
    """[(seconds, bytes)] of the recording's output events."""
    with open(path, encoding="utf-8") as f:
        next(f)  # the header
        return [(t, data.encode()) for t, kind, data in map(json.loads, f) if kind == "o"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("recording")
    ap.add_argument("--fast", action="store_true", help="as fast as possible instead of at the recorded pace")
    ap.add_argument("--mb", type=float, default=100, help="with --fast: how much to write")
    ap.add_argument("--from", dest="start", default="0", help="at pace: start this many seconds in, or at a random point")
    a = ap.parse_args()
    events = outputs(a.recording)
    if a.fast:
        whole = b"".join(data for _, data in events)
        left = int(a.mb * 1e6)
        while left > 0:
            block = whole[:left]
            os.write(1, block)
            left -= len(block)
        return
    # At pace, looping with a one-second pause; each output at its time since the loop began.
    length = events[-1][0] + 1
    a.start = random.uniform(0, length) if a.start == "random" else float(a.start)
    begun = time.monotonic() - a.start % length
    while True:
        for t, data in events:
            if begun + t < time.monotonic() - 0.5 and a.start:
                continue  # before the starting point (first loop only)
            delay = begun + t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            os.write(1, data)
        a.start = 0
        begun += length


if __name__ == "__main__":
    main()
