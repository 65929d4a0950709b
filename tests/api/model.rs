//! A stand-in for the model API that coding-agent CLIs call, on 127.0.0.1, so the
//! real Claude Code CLI runs offline. It answers `POST /v1/messages` with Server-
//! Sent Events (or JSON when `stream` is false) and `/v1/messages/count_tokens`,
//! and records every conversation request it gets.
//!
//! Its script, for a request that offers tools: a prompt containing `make the
//! file` → a `Bash` call of `touch made-by-agent`; its result → "Finished: <what
//! the tool said>"; any other prompt → "Hello again.".
//!
//! Requests without tools (titles, summaries) get a short text.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

/// The stand-in, listening until dropped.
pub struct Model {
    pub port: u16,
    requests: Arc<Mutex<Vec<Value>>>,
}

impl Model {
    pub fn start() -> Self {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind model");
        let port = listener.local_addr().expect("addr").port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let seen = seen.clone();
                std::thread::spawn(move || serve(stream, &seen));
            }
        });
        Model { port, requests }
    }

    /// `ANTHROPIC_BASE_URL`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every conversation request (one that offered tools), oldest first.
    pub fn conversations(&self) -> Vec<Value> {
        self.requests.lock().expect("lock").clone()
    }
}

fn serve(stream: TcpStream, seen: &Mutex<Vec<Value>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
        let mut length = 0;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            if header == "\r\n" {
                break;
            }
            if let Some((k, v)) = header.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let (content_type, answer) = if path.contains("count_tokens") {
            ("application/json", json!({"input_tokens": 10}).to_string())
        } else if path.starts_with("/v1/messages") {
            let has_tools = request["tools"].as_array().is_some_and(|t| !t.is_empty());
            if has_tools {
                seen.lock().expect("lock").push(request.clone());
            }
            let (blocks, stop) = script(&request, has_tools);
            if request["stream"] == true {
                ("text/event-stream", events(&blocks, stop))
            } else {
                ("application/json", whole(&blocks, stop))
            }
        } else {
            ("application/json", "{}".to_owned())
        };
        let head =
            format!("HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n", answer.len());
        let stream = reader.get_mut();
        if stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(answer.as_bytes())).is_err() {
            return;
        }
    }
}

/// The reply's content blocks and stop reason.
fn script(request: &Value, has_tools: bool) -> (Vec<Value>, &'static str) {
    if !has_tools {
        return (vec![json!({"type": "text", "text": "A short answer."})], "end_turn");
    }
    // The CLI merges neighbouring messages of one role (tool results first), so
    // the script counts rather than reading the order: a prompt asking for the
    // file that no call answered yet gets a call; a turn with a tool result and no
    // answer yet gets "Finished"; any other prompt gets "Hello again.". Reminders the
    // CLI adds for the model are not prompts.
    let messages = request["messages"].as_array().cloned().unwrap_or_default();
    let parts = |role: &str| -> Vec<Value> {
        messages
            .iter()
            .filter(|m| m["role"] == role)
            .flat_map(|m| match &m["content"] {
                Value::String(text) => vec![json!({"type": "text", "text": text})],
                Value::Array(parts) => parts.clone(),
                _ => Vec::new(),
            })
            .collect()
    };
    let (user, assistant) = (parts("user"), parts("assistant"));
    let prompts: Vec<&str> = user
        .iter()
        .filter_map(|p| p["text"].as_str())
        .filter(|t| !t.trim_start().starts_with("<system-reminder>"))
        .collect();
    let calls = assistant.iter().filter(|p| p["type"] == "tool_use").count();
    let asked = prompts.iter().filter(|t| t.contains("make the file")).count();
    let answers = assistant
        .iter()
        .filter_map(|p| p["text"].as_str())
        .filter(|t| t.starts_with("Finished: ") || *t == "Hello again.")
        .count();
    if asked > calls {
        let call = json!({"type": "tool_use", "id": format!("toolu_{}", uuid::Uuid::new_v4().simple()), "name": "Bash",
            "input": {"command": "touch made-by-agent", "description": "Make the file"}});
        return (vec![json!({"type": "text", "text": "I will make the file."}), call], "tool_use");
    }
    let newest = prompts.last().copied().unwrap_or("");
    if answers < prompts.len() && newest.contains("make the file") {
        let result = user.iter().rfind(|p| p["type"] == "tool_result").cloned().unwrap_or(Value::Null);
        let said = match &result["content"] {
            Value::String(text) => text.clone(),
            Value::Array(items) => items.iter().filter_map(|i| i["text"].as_str()).collect::<Vec<_>>().join(" "),
            _ => String::new(),
        };
        let said = if said.trim().is_empty() { "the command ran".to_owned() } else { said };
        return (vec![json!({"type": "text", "text": format!("Finished: {said}")})], "end_turn");
    }
    (vec![json!({"type": "text", "text": "Hello again."})], "end_turn")
}

fn message(content: Vec<Value>, stop: Option<&str>) -> Value {
    json!({"id": "msg_standin", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": content, "stop_reason": stop, "stop_sequence": null,
        "usage": {"input_tokens": 10, "output_tokens": 5}})
}

fn whole(blocks: &[Value], stop: &str) -> String {
    message(blocks.to_vec(), Some(stop)).to_string()
}

fn events(blocks: &[Value], stop: &str) -> String {
    let mut out = String::new();
    let mut event = |name: &str, data: Value| out.push_str(&format!("event: {name}\ndata: {data}\n\n"));
    event("message_start", json!({"type": "message_start", "message": message(Vec::new(), None)}));
    for (i, block) in blocks.iter().enumerate() {
        if block["type"] == "tool_use" {
            let start = json!({"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}});
            event("content_block_start", json!({"type": "content_block_start", "index": i, "content_block": start}));
            let delta = json!({"type": "input_json_delta", "partial_json": block["input"].to_string()});
            event("content_block_delta", json!({"type": "content_block_delta", "index": i, "delta": delta}));
        } else {
            let start = json!({"type": "text", "text": ""});
            event("content_block_start", json!({"type": "content_block_start", "index": i, "content_block": start}));
            let delta = json!({"type": "text_delta", "text": block["text"]});
            event("content_block_delta", json!({"type": "content_block_delta", "index": i, "delta": delta}));
        }
        event("content_block_stop", json!({"type": "content_block_stop", "index": i}));
    }
    event(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": {"output_tokens": 5}}),
    );
    event("message_stop", json!({"type": "message_stop"}));
    out
}
