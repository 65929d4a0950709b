#!/usr/bin/env python3
"""Records a coding agent's full-screen terminal output, with its timing, as an
asciicast v2 file (https://docs.asciinema.org/manual/asciicast/v2/), for the
benchmark's recorded-TUI shape (bench/replay.py plays it back).

The real Claude Code CLI (tests/agents, installed by `bash tests/run`) runs in a
120×40 PTY against a model stand-in on 127.0.0.1 that thinks for a few seconds and
then streams a long answer a few words at a time, with a tool call in between: the
spinner turns, the elapsed time and token count tick, text streams in, a command
runs. Nothing leaves the machine.

    python3 bench/record.py bench/recordings/claude-code.cast
"""
import codecs
import http.server
import json
import os
import pty
import select
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLAUDE = os.path.join(ROOT, "tests", "agents", "node_modules", ".bin", "claude")
ROWS, COLS = 40, 120
ANSWERED = threading.Event()  # the stand-in has streamed its last answer

ANSWER = (
    "I looked through the project. Here is what I found and what I changed.\n\n"
    "## The flaky test\n\n"
    "The test `streams_resume_after_restart` fails about one run in twenty. It reads the "
    "event stream, drops the connection, and resumes with `Last-Event-ID`. The server "
    "writes the event row and wakes the follower in two steps, so a client that resumes "
    "between them misses nothing but waits a full poll interval, and the test's timeout "
    "is shorter than that interval on a loaded machine.\n\n"
    "## The fix\n\n"
    "1. The follower is woken by the commit hook itself, so there is no interval at all.\n"
    "2. The test waits on the event it needs instead of a fixed sleep.\n"
    "3. A new test resumes at every position of a 1,000-event log and checks that no "
    "event is lost or repeated.\n\n"
    "```rust\n"
    "let resumed = client.resume(last_id).await?;\n"
    "assert_eq!(resumed.first().map(|e| e.id), Some(last_id + 1));\n"
    "```\n\n"
    "All 214 tests pass now, three times in a row, and the suite is 4 seconds faster "
    "because the fixed sleeps are gone. Shall I also look at the two slow webhook tests?"
)


def sse(events):
    return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events).encode()


def message(stop=None, content=()):
    return {"id": f"msg_{uuid.uuid4().hex}", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
            "content": list(content), "stop_reason": stop, "stop_sequence": None,
            "usage": {"input_tokens": 1200, "output_tokens": 1}}


class Model(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # the answer ends when the connection closes

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))) or b"{}")
        if "count_tokens" in self.path:
            return self.json({"input_tokens": 1200})
        if not self.path.startswith("/v1/messages"):
            return self.json({})
        tools = bool(body.get("tools"))
        results = [p for m in body.get("messages", []) if m["role"] == "user" and isinstance(m["content"], list)
                   for p in m["content"] if p.get("type") == "tool_result"]
        if not tools:
            blocks, stop, pace = [{"type": "text", "text": "Fix the flaky stream test"}], "end_turn", 0
        elif not results:
            call = {"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex}", "name": "Bash",
                    "input": {"command": "ls -la && sleep 3", "description": "List the project"}}
            blocks, stop, pace = [{"type": "text", "text": "Let me look at the project first."}, call], "tool_use", 4
        else:
            blocks, stop, pace = [{"type": "text", "text": ANSWER}], "end_turn", 6
        if not body.get("stream"):
            return self.json(message(stop, blocks))
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.end_headers()
        self.wfile.write(sse([("message_start", {"type": "message_start", "message": message()})]))
        self.wfile.flush()
        time.sleep(pace)  # thinking: the spinner turns
        for i, block in enumerate(blocks):
            if block["type"] == "tool_use":
                start = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
                deltas = [{"type": "input_json_delta", "partial_json": json.dumps(block["input"])}]
            else:
                start = {"type": "text", "text": ""}
                words = block["text"].split(" ")
                deltas = [{"type": "text_delta", "text": " ".join(words[j:j + 3]) + " "} for j in range(0, len(words), 3)]
            self.wfile.write(sse([("content_block_start", {"type": "content_block_start", "index": i, "content_block": start})]))
            for delta in deltas:
                self.wfile.write(sse([("content_block_delta", {"type": "content_block_delta", "index": i, "delta": delta})]))
                self.wfile.flush()
                time.sleep(0.15)
            self.wfile.write(sse([("content_block_stop", {"type": "content_block_stop", "index": i})]))
        self.wfile.write(sse([("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": None},
                                                  "usage": {"output_tokens": 420}}),
                              ("message_stop", {"type": "message_stop"})]))
        self.wfile.flush()
        if results:
            ANSWERED.set()

    def do_GET(self):
        self.json({})

    def json(self, value):
        data = json.dumps(value).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    if not os.access(CLAUDE, os.X_OK):
        sys.exit(f"{CLAUDE} is missing: npm ci --prefix tests/agents")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Model)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    work = tempfile.mkdtemp(prefix="switchboard-record-")
    project, home = os.path.join(work, "project"), os.path.join(work, "home")
    os.makedirs(project)
    os.makedirs(home)
    for name in ("README.md", "Cargo.toml", "main.rs"):
        open(os.path.join(project, name), "w").write("example\n")
    key = f"sk-ant-api03-{uuid.uuid4().hex}"
    with open(os.path.join(home, ".claude.json"), "w") as f:
        json.dump({"hasCompletedOnboarding": True, "customApiKeyResponses": {"approved": [key[-20:]], "rejected": []},
                   "projects": {project: {"hasTrustDialogAccepted": True}}}, f)
    env = {"PATH": os.environ["PATH"], "HOME": home, "TERM": "xterm-256color", "LANG": "C.UTF-8",
           "ANTHROPIC_API_KEY": key, "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{server.server_port}",
           "DISABLE_AUTOUPDATER": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(project)
        import fcntl, struct, termios  # noqa: E401
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
        os.execve(CLAUDE, [CLAUDE, "--allowedTools", "Bash"], env)
    events, start, answered_at = [], time.monotonic(), None
    last_output, typed = time.monotonic(), 0
    try:
        # Until the CLI has shown the whole answer (5 s after the stand-in sent its end), or two minutes.
        while time.monotonic() - start < 120 and (answered_at is None or time.monotonic() - answered_at < 5):
            ready, _, _ = select.select([fd], [], [], 0.2)
            now = time.monotonic()
            if ready:
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    break
                if not data:
                    break
                events.append((now - start, data))
                last_output = now
            # Once the CLI is ready (quiet for a second), the prompt is typed as a person would.
            if typed < 2 and now - last_output > 1.0:
                os.write(fd, b"Find and fix the flaky stream test" if typed == 0 else b"\r")
                typed += 1
                last_output = now
            if answered_at is None and ANSWERED.is_set():
                answered_at = now
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        server.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    if answered_at is None:
        sys.exit("the CLI did not show the whole answer within two minutes")
    with open(sys.argv[1], "w") as f:
        f.write(json.dumps({"version": 2, "width": COLS, "height": ROWS, "timestamp": int(time.time()),
                            "env": {"TERM": "xterm-256color"}, "title": "Claude Code CLI, recorded by bench/record.py"}) + "\n")
        decoder = codecs.getincrementaldecoder("utf-8")("replace")  # a read may end inside a character
        for t, data in events:
            text = decoder.decode(data)
            if text:
                f.write(json.dumps([round(t, 6), "o", text], ensure_ascii=False) + "\n")
    total = sum(len(d) for _, d in events)
    print(f"{len(events)} outputs, {total} bytes over {events[-1][0]:.1f} s → {sys.argv[1]}")


if __name__ == "__main__":
    main()
