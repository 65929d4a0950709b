#!/usr/bin/env bash
# Fuzzes the HTTP API from its own OpenAPI document with schemathesis (from PyPI, in a
# virtual environment under target/) and fails on any 5xx answer or crash.
#
#   bash tests/fuzz/schemathesis.sh            # quick: 25 examples per operation
#   EXAMPLES=500 bash tests/fuzz/schemathesis.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
EXAMPLES="${EXAMPLES:-25}"
venv=target/venv-schemathesis
if [ ! -x "$venv/bin/st" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'schemathesis>=4,<5'
fi
cargo build --quiet --bin switchboard
data=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$data"' EXIT
token=fuzz-token-0123456789abcdef
mkdir -p "$data/project"
# The fuzzer sends wrong credentials on purpose; the failed-auth limit would answer
# everything after that with 429 and hide the rest of the API from it.
printf '[auth]\nmax_failures_per_minute = 0\n' > "$data/config.toml"
target/debug/switchboard --bind 127.0.0.1:0 --data-dir "$data/db" --token "$token" --config "$data/config.toml" \
  > "$data/out" 2> "$data/log" &
pid=$!
for _ in $(seq 100); do grep -q listening "$data/out" 2>/dev/null && break; sleep 0.1; done
url=$(head -1 "$data/out" | sed 's/switchboard listening on //')
# Something to act on: an agent (whose instances the fuzzer may start) and a task.
curl -sf -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
  -d "{\"name\": \"fuzzed\", \"project_path\": \"$data/project\", \"command\": [\"cat\"]}" "$url/api/agents" > /dev/null
curl -sf -H "Authorization: Bearer $token" -H 'Content-Type: application/json' -d '{"title": "fuzzed"}' "$url/api/tasks" > /dev/null
# The request timeout is above the 60 s a message long poll (`wait`) may hold.
"$venv/bin/st" --no-color run "$url/api/openapi.json" \
  --header "Authorization: Bearer $token" \
  --checks not_a_server_error \
  --max-examples "$EXAMPLES" \
  --exclude-path-regex '/stream$|/api/events$' \
  --request-timeout 65
if grep -q "panicked" "$data/log"; then
  echo "the server panicked:"; grep -B2 -A5 panicked "$data/log"; exit 1
fi
echo "schemathesis: no server errors ($EXAMPLES examples per operation)"
