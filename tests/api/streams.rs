use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{eventually, TestApp};
use crate::sse_client::{output_of, read_then_resume, rest_until_closed, Next, SseClient};

const T: Duration = Duration::from_secs(20);

#[test]
fn a_viewer_sees_the_screen_then_output_and_status_live_and_end_last() {
    let app = TestApp::spawn();
    let script = "import time; print('ready'); x = input('reply> '); print('got ' + x); time.sleep(0.2)";
    let agent = app.agent("talker", &["python3", "-c", script], json!({}));
    let id = app.instance(&agent, json!({}))["id"].as_str().expect("id").to_owned();
    let mut view = SseClient::open(&app, &format!("/api/instances/{id}/stream"), &[]);
    let snapshot = view.expect(T);
    assert_eq!(snapshot.event, "snapshot");
    assert_eq!((snapshot.json()["cols"].as_i64(), snapshot.json()["rows"].as_i64()), (Some(120), Some(40)));

    let mut seen = view.until("status", T);
    while seen.last().map(|e| e.json()["status"].clone()) != Some(json!("awaiting_input")) {
        seen.extend(view.until("status", T));
    }
    let screen = snapshot.json()["data"].as_str().expect("data").to_owned() + &output_of(&seen);
    assert!(screen.contains("reply> "), "{screen:?}");
    assert!(seen.last().expect("status").json()["prompt"].as_str().expect("prompt").contains("reply>"));

    app.post(&format!("/api/instances/{id}/messages"), &json!({"content": "hello"}));
    let rest = rest_until_closed(&mut view);
    assert!(output_of(&rest).contains("got hello"), "{rest:?}");
    assert!(rest.iter().any(|e| e.event == "message" && e.json()["message"]["content"] == "hello"));
    let end = rest.last().expect("end");
    assert_eq!(end.event, "end", "end is the last event: {rest:?}");
    assert_eq!(end.json(), json!({"status": "completed", "exit_code": 0}));
    let final_status = &rest[rest.len() - 2];
    assert_eq!((final_status.event.as_str(), final_status.json()["status"].as_str()), ("status", Some("completed")));
}

#[test]
fn a_late_viewer_of_a_finished_instance_gets_its_last_screen() {
    let app = TestApp::spawn();
    let agent = app.agent("printer", &["bash", "-c", "printf 'line one\\nline two\\n'"], json!({}));
    let id = app.instance(&agent, json!({}))["id"].as_str().expect("id").to_owned();
    app.wait_status(&id, "completed", T);
    let mut view = SseClient::open(&app, &format!("/api/instances/{id}/stream"), &[]);
    let events = rest_until_closed(&mut view);
    let kinds: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(kinds, ["snapshot", "end"]);
    let screen = events[0].json()["data"].as_str().expect("data").to_owned();
    assert!(screen.contains("line one") && screen.contains("line two"), "{screen:?}");
    assert_eq!(events[1].json(), json!({"status": "completed", "exit_code": 0}));

    let mut tail = SseClient::open(&app, &format!("/api/instances/{id}/stream?tail=10"), &[]);
    let events = rest_until_closed(&mut tail);
    assert_eq!(output_of(&events), "line two\r\n", "the last 10 raw bytes instead of a snapshot");
}

#[test]
fn a_resumed_viewer_misses_and_repeats_no_byte() {
    let app = TestApp::spawn();
    let script = "for i in $(seq 1 60); do echo \"line $i\"; sleep 0.02; done";
    let agent = app.agent("counter", &["bash", "-c", script], json!({}));
    let id = app.instance(&agent, json!({}))["id"].as_str().expect("id").to_owned();
    // From byte 0: a few events, then drop the connection and resume.
    let (got, rest) = read_then_resume(&app, &id, 40);
    assert!(rest.iter().all(|e| e.event != "snapshot"), "a resumed stream does not start over");
    let transcript = app.output(&id);
    assert_eq!(output_of(&got) + &output_of(&rest), transcript, "resumed exactly where it stopped");
    assert!(transcript.contains("line 60"));
}

#[test]
fn output_never_splits_a_utf8_character() {
    let app = TestApp::spawn();
    // Writes multi-byte characters one byte at a time.
    let script = "import os, time\nfor ch in 'é€😀' * 20:\n    for b in ch.encode():\n        os.write(1, bytes([b])); time.sleep(0.002)";
    let agent = app.agent("bytes", &["python3", "-c", script], json!({}));
    let id = app.instance(&agent, json!({}))["id"].as_str().expect("id").to_owned();
    let mut view = SseClient::open(&app, &format!("/api/instances/{id}/stream?last_event_id=0:0"), &[]);
    let events = rest_until_closed(&mut view);
    let text = output_of(&events);
    assert!(!text.contains('\u{FFFD}'), "a character was split: {text:?}");
    assert_eq!(text, "é€😀".repeat(20));
    assert!(events.iter().filter(|e| e.event == "output").count() > 1, "it really arrived in pieces");
}

/// A `/proc/PID/status` field in KiB (`VmRSS`, `VmHWM` for the peak).
fn memory_kib(pid: i32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let line = status.lines().find(|l| l.starts_with(&format!("{field}:"))).expect(field);
    line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect(field)
}

#[test]
fn a_stalled_viewer_of_200_mb_costs_bounded_memory_and_nobody_else_waits() {
    let app = TestApp::spawn_with(&["--token", crate::helpers::TOKEN, "--max-instances", "8"]);
    let flood = "import os\nblock = (b'x' * 1023 + b'\\n') * 64\nfor _ in range(3200):\n    os.write(1, block)";
    let flooder = app.agent("flood", &["python3", "-c", flood], json!({}));
    let shell = app.agent("shell", &["bash", "--norc", "-i"], json!({}));
    let other = app.instance(&shell, json!({}))["id"].as_str().expect("id").to_owned();
    app.wait_status(&other, "awaiting_input", T);
    let mut watcher = SseClient::open(&app, &format!("/api/instances/{other}/stream"), &[]);
    assert_eq!(watcher.expect(T).event, "snapshot");
    let before = memory_kib(app.pid(), "VmRSS");

    let id = app.instance(&flooder, json!({}))["id"].as_str().expect("id").to_owned();
    // Opens the stream and never reads it.
    let stalled = SseClient::open(&app, &format!("/api/instances/{id}/stream?last_event_id=0:0"), &[]);
    for n in 0..5 {
        app.type_in(&other, &format!("echo ping-{n}\r"));
        eventually(T, "the other viewer's output", || match watcher.next(Duration::from_millis(100)) {
            Next::Event(e) if e.event == "output" && e.data.contains(&format!("ping-{n}")) => Some(()),
            _ => None,
        });
    }
    app.wait_status(&id, "completed", Duration::from_secs(120));
    let written = app
        .get(&format!("/api/instances/{id}/output?offset=999999999999"))
        .header("x-transcript-length")
        .map(str::to_owned);
    let peak = memory_kib(app.pid(), "VmHWM");
    stalled.close();
    assert!(
        written.and_then(|w| w.parse::<u64>().ok()).is_some_and(|w| w > 200_000_000),
        "the whole flood went to the transcript"
    );
    let growth_mib = peak.saturating_sub(before) / 1024;
    println!("stalled viewer of a 200 MB flood: server peak RSS grew {growth_mib} MiB ({before} KiB before, peak {peak} KiB)");
    assert!(growth_mib < 50, "server memory grew {growth_mib} MiB (peak {peak} KiB, before {before} KiB)");
}

#[test]
fn an_instance_stream_resumes_across_a_server_restart() {
    let app = TestApp::spawn();
    let agent = app.agent("long", &["bash", "-c", "echo first; sleep 60"], json!({}));
    let id = app.instance(&agent, json!({}))["id"].as_str().expect("id").to_owned();
    let mut view = SseClient::open(&app, &format!("/api/instances/{id}/stream?last_event_id=0:0"), &[]);
    let mut got = Vec::new();
    while !output_of(&got).contains("first") {
        got.push(view.expect(T));
    }
    let last_id = got.iter().rev().find_map(|e| e.id.clone()).expect("id");
    view.close();
    let app = app.restart();
    let mut resumed = SseClient::open(&app, &format!("/api/instances/{id}/stream"), &[("Last-Event-ID", &last_id)]);
    let rest = rest_until_closed(&mut resumed);
    let statuses: Vec<String> = rest
        .iter()
        .filter(|e| e.event == "status")
        .map(|e| e.json()["status"].as_str().expect("status").to_owned())
        .collect();
    assert!(statuses.contains(&"terminated".to_owned()), "the shutdown's status was replayed: {rest:?}");
    assert_eq!(rest.last().map(|e| e.event.as_str()), Some("end"));
    assert_eq!(output_of(&got) + &output_of(&rest), app.output(&id));
}

#[test]
fn running_a_task_drives_its_status() {
    let app = TestApp::spawn();
    let worker = app.agent("worker", &["bash", "-c", "read -r line; echo \"working on: $line\"; exit 0"], json!({}));
    let quitter = app.agent("quitter", &["bash", "-c", "read -r line; exit 1"], json!({}));
    let task = app.post("/api/tasks", &json!({"title": "Fix the bug", "description": ""})).json();
    let mut events = SseClient::open(&app, "/api/events?types=task.updated", &[]);
    let r = app.post(&format!("/api/tasks/{}/run", task["id"]), &json!({"agent_id": worker}));
    assert_eq!(r.status, 201, "{}", r.text);
    let instance = r.json();
    assert_eq!(instance["task_id"], task["id"]);
    let id = instance["id"].as_str().expect("id");
    app.wait_output(id, "working on: Fix the bug", T);
    let updates: Vec<String> =
        (0..2).map(|_| events.expect(T).json()["task"]["status"].as_str().expect("status").to_owned()).collect();
    assert_eq!(updates, ["in_progress", "done"]);
    assert_eq!(app.get(&format!("/api/tasks/{}", task["id"])).json()["status"], "done");

    let failing = app.post("/api/tasks", &json!({"title": "Doomed"})).json();
    let r = app.post(&format!("/api/tasks/{}/run", failing["id"]), &json!({"agent_id": quitter}));
    app.wait_status(r.json()["id"].as_str().expect("id"), "error", T);
    eventually(T, "the task to fail", || {
        (app.get(&format!("/api/tasks/{}", failing["id"])).json()["status"] == "failed").then_some(())
    });

    assert_eq!(app.post("/api/tasks/999/run", &json!({"agent_id": worker})).status, 404);
    let r = app
        .post(&format!("/api/tasks/{}/run", task["id"]), &json!({"agent_id": "00000000-0000-4000-8000-000000000000"}));
    assert_eq!((r.status, r.json()["error"]["field"].as_str()), (422, Some("agent_id")));
    let _ = Instant::now();
}
