#!/usr/bin/env bash
# PTY output rate through the server (into the transcript and terminal model, no
# viewer) against a bare program reading the same output from a PTY. Preliminary;
# the full benchmark is issue 7's.   Usage: bench/flood.sh [MB]
set -euo pipefail
cd "$(dirname "$0")/.."
MB=${1:-100}
cargo build --release -q
D=$(mktemp -d)
cat > "$D/flood.py" <<PY
import os
block = (b'x' * 1023 + b'\n') * 64
for _ in range($MB * 16):
    os.write(1, block)
PY
python3 - "$D/flood.py" <<'PY'
import os, pty, sys, time
pid, fd = pty.fork()
if pid == 0:
    os.execvp("python3", ["python3", sys.argv[1]])
t, n = time.time(), 0
while True:
    try:
        b = os.read(fd, 65536)
    except OSError:
        break
    if not b:
        break
    n += len(b)
print(f"bare reader: {n / 1e6:.0f} MB in {time.time() - t:.2f} s = {n / 1e6 / (time.time() - t):.1f} MB/s")
PY
TOKEN=bench-token-0123456789abcdef
./target/release/switchboard --bind 127.0.0.1:0 --data-dir "$D/data" --token $TOKEN > "$D/out" 2> "$D/err" &
SP=$!
trap 'kill -TERM $SP 2>/dev/null; wait $SP 2>/dev/null; rm -rf "$D"' EXIT
for _ in $(seq 1 100); do grep -q listening "$D/out" 2>/dev/null && break; sleep 0.1; done
API=$(head -1 "$D/out" | sed 's/.* //')
A="Authorization: Bearer $TOKEN"; J="Content-Type: application/json"
AG=$(curl -s -H "$A" -H "$J" -d "{\"name\":\"flood\",\"project_path\":\"$D\",\"command\":[\"python3\",\"$D/flood.py\"]}" \
  "$API/api/agents" | grep -o '"id":"[^"]*"' | head -1 | cut -d'"' -f4)
T0=$(date +%s%N)
IN=$(curl -s -H "$A" -H "$J" -d '{}' "$API/api/agents/$AG/instances" | grep -o '"id":"[^"]*"' | head -1 | cut -d'"' -f4)
until curl -s -H "$A" "$API/api/instances/$IN" | grep -q '"completed"'; do sleep 0.05; done
T1=$(date +%s%N)
L=$(stat -c %s "$D/data/transcripts/$IN.log")
MS=$(( (T1 - T0) / 1000000 ))
echo "switchboard: $(( L / 1000000 )) MB in $MS ms = $(( L / 1000 / MS )) MB/s"
