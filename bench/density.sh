#!/usr/bin/env bash
# Server memory per idle instance: RSS growth over N `bash -i` instances, and the
# server's CPU while they all wait. Preliminary; the full benchmark is issue 7's.
# Usage: bench/density.sh [N]   (builds the release binary first)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-200}
cargo build --release -q
BIN=./target/release/switchboard
D=$(mktemp -d)
TOKEN=bench-token-0123456789abcdef
$BIN --bind 127.0.0.1:0 --data-dir "$D" --token $TOKEN --max-instances 2000 > "$D/out" 2> "$D/err" &
SP=$!
trap 'kill -TERM $SP 2>/dev/null; wait $SP 2>/dev/null; rm -rf "$D"' EXIT
for _ in $(seq 1 100); do grep -q listening "$D/out" 2>/dev/null && break; sleep 0.1; done
API=$(head -1 "$D/out" | sed 's/.* //')
A="Authorization: Bearer $TOKEN"; J="Content-Type: application/json"
AG=$(curl -s -H "$A" -H "$J" \
  -d '{"name":"sh","project_path":"/tmp","command":["bash","--norc","-i"],"settings":{"max_concurrent_instances":1000}}' \
  "$API/api/agents" | grep -o '"id":"[^"]*"' | head -1 | cut -d'"' -f4)
for _ in 1 2 3 4 5; do curl -s -o /dev/null -H "$A" -H "$J" -d '{}' "$API/api/agents/$AG/instances"; done
sleep 3
R0=$(awk '/VmRSS/{print $2}' /proc/$SP/status)
for _ in $(seq 1 "$N"); do curl -s -o /dev/null -H "$A" -H "$J" -d '{}' "$API/api/agents/$AG/instances"; done
sleep 5
R1=$(awk '/VmRSS/{print $2}' /proc/$SP/status)
W=$(curl -s -H "$A" "$API/api/instances?status=awaiting_input&limit=1000" | grep -o '"status"' | wc -l)
C0=$(awk '{print $14+$15}' /proc/$SP/stat); sleep 5; C1=$(awk '{print $14+$15}' /proc/$SP/stat)
echo "instances=$N waiting=$W rss_before=${R0}KiB rss_after=${R1}KiB per_instance=$(( (R1-R0)/N ))KiB idle_cpu_ticks_in_5s=$((C1-C0))"
