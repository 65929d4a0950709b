//! Never answering the wrong question: `wait_id`, `in_reply_to`, and one reply to
//! many instances at once.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{eventually, TestApp};
use crate::sse_client::SseClient;

const T: Duration = Duration::from_secs(20);

fn waiting(app: &TestApp, id: &str, asks: &str) -> Value {
    eventually(T, &format!("{id} to ask {asks:?}"), || {
        let now = app.get(&format!("/api/instances/{id}")).json();
        (now["status"] == "awaiting_input" && now["prompt"].as_str().is_some_and(|p| p.contains(asks))).then_some(now)
    })
}

#[test]
fn a_reply_to_a_question_that_was_replaced_is_refused_and_types_nothing() {
    let app = TestApp::spawn();
    let agent = app.agent(
        "two-questions",
        &["bash", "-c", "read -p 'First? ' a; echo got-$a; read -p 'Second? ' b; echo got2-$b; sleep 30"],
        json!({}),
    );
    let id = app.instance(&agent, json!({}))["id"].as_str().expect("id").to_owned();
    let mut events = SseClient::open(&app, &format!("/api/events?instance_id={id}&types=instance.status"), &[]);
    let first = waiting(&app, &id, "First?");
    let w1 = first["wait_id"].as_str().expect("a waiting instance has a wait_id").to_owned();
    // Its instance.status event carries the same wait_id.
    let said = eventually(T, "the awaiting_input event", || {
        events.until("instance.status", T).into_iter().map(|e| e.json()).find(|e| e["status"] == "awaiting_input")
    });
    assert_eq!(said["wait_id"], w1.as_str(), "{said}");

    let r = app.post(&format!("/api/instances/{id}/messages"), &json!({"content": "one", "in_reply_to": w1}));
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(r.json()["delivered_at"].is_string(), "typed at once: {}", r.text);
    app.wait_output(&id, "got-one", T);

    // The same answer again: the instance has moved on to another question.
    let second = waiting(&app, &id, "Second?");
    let w2 = second["wait_id"].as_str().expect("wait_id").to_owned();
    assert_ne!(w1, w2, "each wait has its own id");
    let late = app.post(&format!("/api/instances/{id}/messages"), &json!({"content": "late", "in_reply_to": w1}));
    assert_eq!(late.status, 409, "{}", late.text);
    let error = &late.json()["error"];
    assert_eq!(error["code"], "moved_on", "{error}");
    assert_eq!(error["now"]["wait_id"], w2.as_str(), "{error}");
    assert!(error["now"]["prompt"].as_str().is_some_and(|p| p.contains("Second?")), "{error}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(!app.output(&id).contains("late"), "nothing was typed");
    let messages = app.get(&format!("/api/instances/{id}/messages")).json();
    assert!(messages.as_array().expect("list").iter().all(|m| m["content"] != "late"), "nor stored: {messages}");

    // Answering what it asks now works; an answer while it works is refused too.
    let r = app.post(&format!("/api/instances/{id}/messages"), &json!({"content": "two", "in_reply_to": w2}));
    assert_eq!(r.status, 201, "{}", r.text);
    app.wait_output(&id, "got2-two", T);
    let busy = app.wait_status(&id, "active", T);
    assert!(busy["wait_id"].is_null(), "no wait_id while it works: {busy}");
    let r = app.post(&format!("/api/instances/{id}/messages"), &json!({"content": "x", "in_reply_to": w2}));
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.json()["error"]["now"]["status"], "active", "{}", r.text);
    // A plain reply (no in_reply_to) is held as before.
    let r = app.post(&format!("/api/instances/{id}/messages"), &json!({"content": "held"}));
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(r.json()["delivered_at"].is_null());
    // An agent cannot answer a question.
    let r = app.post(
        &format!("/api/instances/{id}/messages"),
        &json!({"content": "x", "sender_type": "agent", "in_reply_to": w2}),
    );
    assert_eq!(r.status, 422, "{}", r.text);
}

#[test]
fn one_reply_answers_many_instances_each_on_its_own() {
    let app = TestApp::spawn();
    let deployer = app.agent(
        "deployer",
        &["bash", "-c", "read -p 'Deploy build 4812 to production? [y/N] ' a; echo deploying-$a; sleep 30"],
        json!({"max_concurrent_instances": 4}),
    );
    let ids: Vec<String> =
        (0..4).map(|_| app.instance(&deployer, json!({}))["id"].as_str().expect("id").to_owned()).collect();
    let asked: Vec<Value> = ids.iter().map(|id| waiting(&app, id, "Deploy build 4812")).collect();
    // The fourth one is answered first, by hand: its wait_id is stale in the batch.
    let r = app.post(
        &format!("/api/instances/{}/messages", ids[3]),
        &json!({"content": "n", "in_reply_to": asked[3]["wait_id"]}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let missing = uuid::Uuid::new_v4().to_string();
    let mut to: Vec<Value> =
        asked.iter().map(|i| json!({"instance_id": i["id"], "in_reply_to": i["wait_id"]})).collect();
    to.push(json!({"instance_id": missing}));
    let r = app.post("/api/messages/batch", &json!({"content": "y", "to": to}));
    assert_eq!(r.status, 200, "{}", r.text);
    let results = r.json()["results"].as_array().expect("results").clone();
    let statuses: Vec<u64> = results.iter().map(|r| r["status"].as_u64().expect("status")).collect();
    assert_eq!(statuses, vec![201, 201, 201, 409, 404], "{results:?}");
    assert_eq!(results[3]["error"]["code"], "moved_on");
    for id in &ids[..3] {
        app.wait_output(id, "deploying-y", T);
    }
    app.wait_output(&ids[3], "deploying-n", T);
    assert!(!app.output(&ids[3]).contains("deploying-y"));

    let r = app.post("/api/messages/batch", &json!({"content": "y", "to": []}));
    assert_eq!(r.status, 422, "{}", r.text);
    let twice = json!({"content": "y", "to": [{"instance_id": ids[0]}, {"instance_id": ids[0]}]});
    assert_eq!(app.post("/api/messages/batch", &twice).status, 422);
}
