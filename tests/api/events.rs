use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{eventually, TestApp};
use crate::sse_client::{Next, SseClient};

const T: Duration = Duration::from_secs(20);

fn seq(e: &crate::sse_client::Event) -> i64 {
    e.id.as_deref().and_then(|i| i.parse().ok()).unwrap_or_else(|| panic!("numeric id expected: {e:?}"))
}

#[test]
fn every_change_is_an_event_in_order_with_its_payload() {
    let app = TestApp::spawn();
    let mut events = SseClient::open(&app, "/api/events", &[]);
    assert_eq!(events.status, 200);
    assert!(events.headers.iter().any(|(k, v)| k == "content-type" && v.starts_with("text/event-stream")));
    match events.next(T) {
        Next::Event(first) => assert_eq!(first.retry.as_deref(), Some("2000"), "retry comes first"),
        other => panic!("{other:?}"),
    }

    let task = app.post("/api/tasks", &json!({"title": "observe me"})).json();
    app.put(&format!("/api/tasks/{}", task["id"]), &json!({"priority": "high"}));
    app.delete(&format!("/api/tasks/{}", task["id"]));
    let agent = app.agent("watched", &["python3", "-c", "print(input('Name? ') + '!')"], json!({}));
    app.put(&format!("/api/agents/{agent}"), &json!({"description": "renamed"}));
    let instance = app.instance(&agent, json!({"prompt": "Ada"}));
    let id = instance["id"].as_str().expect("id").to_owned();
    app.wait_status(&id, "completed", T);
    app.delete(&format!("/api/agents/{agent}"));

    let got = events.until("agent.deleted", T);
    let kinds: Vec<&str> = got.iter().map(|e| e.event.as_str()).collect();
    let seqs: Vec<i64> = got.iter().map(seq).collect();
    assert!(seqs.windows(2).all(|w| w[1] > w[0]), "ids increase: {seqs:?}");
    assert_eq!(
        &kinds[..7],
        [
            "task.created",
            "task.updated",
            "task.deleted",
            "agent.created",
            "agent.updated",
            "instance.created",
            "message.created"
        ]
    );
    assert_eq!(got[0].json()["task"]["title"], "observe me");
    assert_eq!(got[1].json()["task"]["priority"], "high");
    assert_eq!(got[2].json(), json!({"id": task["id"]}));
    assert_eq!(got[4].json()["agent"]["description"], "renamed");
    assert_eq!(got[5].json()["instance"]["id"], id.as_str());
    assert_eq!(got[6].json()["message"]["content"], "Ada");

    let statuses: Vec<serde_json::Value> =
        got.iter().filter(|e| e.event == "instance.status").map(crate::sse_client::Event::json).collect();
    let path: Vec<&str> = statuses.iter().map(|s| s["status"].as_str().expect("status")).collect();
    assert_eq!(path, ["active", "awaiting_input", "active", "completed"], "{statuses:?}");
    let waiting = &statuses[1];
    assert_eq!(waiting["previous"], "active");
    assert_eq!(waiting["agent_id"], agent.as_str());
    assert_eq!(waiting["instance_id"], id.as_str());
    assert!(waiting["prompt"].as_str().expect("prompt").contains("Name?"), "{waiting}");
    assert!(waiting["reason"].as_str().expect("reason").starts_with("kernel:"));
    assert_eq!(statuses[3]["exit_code"], 0);
    assert!(statuses[3]["at"].as_str().expect("at").ends_with('Z'));
    assert_eq!(kinds.last(), Some(&"agent.deleted"));
}

#[test]
fn filters_select_agents_instances_and_types() {
    let app = TestApp::spawn();
    let a = app.agent("a", &["true"], json!({}));
    let b = app.agent("b", &["true"], json!({}));
    let mut only_b = SseClient::open(&app, &format!("/api/events?agent_id={b}&types=instance.status"), &[]);
    let ia = app.instance(&a, json!({}))["id"].as_str().expect("id").to_owned();
    app.wait_status(&ia, "completed", T);
    let ib = app.instance(&b, json!({}))["id"].as_str().expect("id").to_owned();
    let first = only_b.expect(T);
    assert_eq!((first.event.as_str(), first.json()["instance_id"].as_str()), ("instance.status", Some(ib.as_str())));
    assert_eq!(app.get("/api/events?types=instance.exploded").status, 422);
    assert_eq!(app.get("/api/events?agent_id=x").status, 422);
}

#[test]
fn a_client_resumes_from_an_id_in_the_middle_by_header_or_query() {
    let app = TestApp::spawn();
    let mut events = SseClient::open(&app, "/api/events", &[]);
    for n in 0..6 {
        app.post("/api/tasks", &json!({"title": format!("task {n}")}));
    }
    let all: Vec<_> = (0..6).map(|_| events.expect(T)).collect();
    events.close();
    let middle = all[2].id.clone().expect("id");
    let expected: Vec<String> = all[3..].iter().map(|e| e.data.clone()).collect();

    let mut by_header = SseClient::open(&app, "/api/events", &[("Last-Event-ID", &middle)]);
    let got: Vec<String> = (0..3).map(|_| by_header.expect(T).data).collect();
    assert_eq!(got, expected, "every event after the id, none before");
    assert!(matches!(
        by_header.next(Duration::from_millis(300)),
        Next::Timeout | Next::Event(crate::sse_client::Event { comment: Some(_), .. })
    ));

    let mut by_query = SseClient::open(&app, &format!("/api/events?last_event_id={middle}"), &[]);
    assert_eq!(by_query.expect(T).data, expected[0]);
    assert_eq!(app.get("/api/events?last_event_id=abc").status, 422);
}

#[test]
fn a_client_resumes_across_a_server_restart() {
    let app = TestApp::spawn();
    let mut events = SseClient::open(&app, "/api/events", &[]);
    app.post("/api/tasks", &json!({"title": "before 1"}));
    let last_seen = events.expect(T).id.expect("id");
    app.post("/api/tasks", &json!({"title": "before 2"}));
    events.close();
    let app = app.restart();
    app.post("/api/tasks", &json!({"title": "after"}));
    let mut resumed = SseClient::open(&app, "/api/events", &[("Last-Event-ID", &last_seen)]);
    let titles: Vec<String> =
        (0..2).map(|_| resumed.expect(T).json()["task"]["title"].as_str().expect("title").to_owned()).collect();
    assert_eq!(titles, ["before 2", "after"]);
}

#[test]
fn an_id_older_than_the_log_starts_with_reset() {
    let app = TestApp::spawn();
    app.post("/api/tasks", &json!({"title": "x"}));
    let mut events = SseClient::open(&app, "/api/events", &[("Last-Event-ID", "999999")]);
    let first = events.expect(T);
    assert_eq!(first.event, "reset");
    app.post("/api/tasks", &json!({"title": "y"}));
    assert_eq!(events.expect(T).json()["task"]["title"], "y", "then live");
}

#[test]
fn five_thousand_events_while_the_client_reconnects_every_250_ms_arrive_once_each() {
    let app = TestApp::spawn();
    let agent = app.agent("busy", &["true"], json!({}));
    let mut baseline = SseClient::open(&app, "/api/events", &[]);
    app.put(&format!("/api/agents/{agent}"), &json!({"description": "start"}));
    let start = seq(&baseline.expect(T));
    baseline.close();

    const TOTAL: usize = 5000;
    let producers: Vec<_> = (0..4)
        .map(|p| {
            let url = app.url(&format!("/api/agents/{agent}"));
            std::thread::spawn(move || {
                let client = ureq::Agent::new_with_defaults();
                for n in 0..TOTAL / 4 {
                    client
                        .put(&url)
                        .header("Authorization", format!("Bearer {}", crate::helpers::TOKEN))
                        .send_json(json!({"description": format!("{p}-{n}")}))
                        .expect("update");
                }
            })
        })
        .collect();

    let mut seen: Vec<i64> = Vec::new();
    let mut last = start.to_string();
    let mut reconnects = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    while seen.len() < TOTAL {
        assert!(Instant::now() < deadline, "only {} of {TOTAL} events arrived", seen.len());
        let mut client = SseClient::open(&app, "/api/events", &[("Last-Event-ID", &last)]);
        reconnects += 1;
        let until = Instant::now() + Duration::from_millis(250);
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            match client.next(left) {
                Next::Event(e) if e.event == "agent.updated" => {
                    last = e.id.clone().expect("id");
                    seen.push(seq(&e));
                }
                Next::Event(_) => {}
                _ => break,
            }
        }
        client.close();
    }
    for p in producers {
        p.join().expect("producer");
    }
    let expected: Vec<i64> = (start + 1..=start + TOTAL as i64).collect();
    assert_eq!(seen.len(), TOTAL, "no duplicates");
    assert_eq!(seen, expected, "no gaps, in order");
    assert!(reconnects > 4, "the client really reconnected ({reconnects} connections)");
}

#[test]
fn keep_alive_comments_arrive_on_a_quiet_stream() {
    let app = TestApp::spawn();
    let mut events = SseClient::open(&app, "/api/events", &[]);
    let mut comments = 0;
    let deadline = Instant::now() + Duration::from_secs(25);
    while comments < 2 && Instant::now() < deadline {
        if let Next::Event(e) = events.next(deadline.saturating_duration_since(Instant::now())) {
            if e.comment.as_deref() == Some("keep-alive") {
                comments += 1;
            }
        }
    }
    assert_eq!(comments, 2, "a keep-alive at the start and another within 15 s");
}

#[test]
fn streams_need_credentials_and_accept_the_session_cookie() {
    let app = TestApp::spawn();
    let refused = SseClient::open(&app, "/api/events", &[("Authorization", "Bearer wrong-wrong-wrong")]);
    assert_eq!(refused.status, 401);
    let login = app.raw_api(
        "POST",
        "/api/session",
        "Content-Type: application/json\r\n",
        json!({"token": crate::helpers::TOKEN}).to_string().as_bytes(),
    );
    let cookie = login.header("set-cookie").expect("cookie").split(';').next().expect("pair").to_owned();
    let mut browser = SseClient::open(
        &app,
        "/api/events",
        &[("Cookie", &cookie), ("Origin", &format!("http://127.0.0.1:{}", app.port))],
    );
    assert_eq!(browser.status, 200);
    app.post("/api/tasks", &json!({"title": "seen by the browser"}));
    assert_eq!(browser.expect(T).event, "task.created");
    let foreign = SseClient::open(&app, "/api/events", &[("Cookie", &cookie), ("Origin", "http://evil.example")]);
    assert_eq!(foreign.status, 403);
}

#[test]
fn open_streams_end_promptly_when_the_server_stops() {
    let mut app = TestApp::spawn();
    let agent = app.agent("idle", &["sleep", "60"], json!({}));
    let id = app.instance(&agent, json!({}))["id"].as_str().expect("id").to_owned();
    let mut events = SseClient::open(&app, "/api/events", &[]);
    let mut stream = SseClient::open(&app, &format!("/api/instances/{id}/stream"), &[]);
    assert_eq!(stream.expect(T).event, "snapshot");
    // `stop` allows 20 s; an open stream holding the server up would take 30.
    assert!(app.stop().success());
    let ended = |c: &mut SseClient| loop {
        match c.next(T) {
            Next::Closed => return true,
            Next::Timeout => return false,
            Next::Event(_) => {}
        }
    };
    assert!(ended(&mut events) && ended(&mut stream));
    eventually(T, "nothing left", || crate::helpers::marked(&id).is_empty().then_some(()));
}
