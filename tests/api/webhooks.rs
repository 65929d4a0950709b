//! Outbound webhooks, delivered to a real receiver on 127.0.0.1: signatures,
//! filters, retries with the same `webhook-id`, durability across a crash,
//! `410 Gone`, redelivery by hand, isolation from a dead receiver, chat format.

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{eventually, TestApp};
use crate::receiver::{Received, Receiver};

const WAIT: Duration = Duration::from_secs(20);

/// Fast retries, so that a test sees the whole schedule.
const FAST: &str = "[webhooks]\nretry_schedule = [\"100ms\", \"100ms\", \"100ms\"]\n";

fn subscribe(app: &TestApp, body: Value) -> Value {
    let r = app.post("/api/webhooks", &body);
    assert_eq!(r.status, 201, "{}", r.text);
    r.json()
}

fn task(app: &TestApp, title: &str) -> i64 {
    let r = app.post("/api/tasks", &json!({ "title": title }));
    assert_eq!(r.status, 201, "{}", r.text);
    r.json()["id"].as_i64().expect("task id")
}

fn attempts(app: &TestApp, webhook: &str) -> Vec<Value> {
    let r = app.get(&format!("/api/webhooks/{webhook}/deliveries"));
    assert_eq!(r.status, 200, "{}", r.text);
    r.json().as_array().expect("list").clone()
}

#[test]
fn deliveries_are_signed_and_respect_type_and_agent_filters() {
    let app = TestApp::spawn();
    let (all, filtered) = (Receiver::start(), Receiver::start());
    let everything = subscribe(&app, json!({ "url": all.url("/all"), "events": ["*"] }));
    let a = app.agent("wanted", &["bash", "-c", "exit 3"], json!({}));
    let b = app.agent("other", &["bash", "-c", "exit 4"], json!({}));
    let only_a = subscribe(
        &app,
        json!({ "url": filtered.url("/a"), "events": ["instance.status"], "agent_id": a, "description": "A's statuses" }),
    );
    let secret = only_a["secret"].as_str().expect("secret shown once").to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert_eq!(only_a["events"], json!(["instance.status"]));
    for shown in
        [app.get(&format!("/api/webhooks/{}", only_a["id"].as_str().expect("id"))).text, app.get("/api/webhooks").text]
    {
        assert!(!shown.contains(&secret) && !shown.contains("\"secret\""), "{shown}");
    }

    let ia = app.instance(&a, json!({}))["id"].as_str().expect("id").to_owned();
    let ib = app.instance(&b, json!({}))["id"].as_str().expect("id").to_owned();
    app.wait_status(&ia, "error", WAIT);
    app.wait_status(&ib, "error", WAIT);
    task(&app, "not for A's subscription");

    // A's subscription: exactly A's status changes (active, then error with exit code 3).
    let got = eventually(WAIT, "A's two status changes", || {
        let got = filtered.received();
        (got.len() >= 2 && got.iter().any(|r| r.json()["data"]["status"] == "error")).then_some(got)
    });
    for request in &got {
        assert!(request.signed_with(&secret), "signature verifies: {:?}", request.headers);
        assert_eq!(request.header("content-type"), "application/json");
        let body = request.json();
        assert_eq!(body["type"], "instance.status");
        assert_eq!(body["data"]["agent_id"], a.as_str());
        assert_eq!(body["data"]["instance_id"], ia.as_str());
        assert!(body["id"].as_str().is_some_and(|id| id.parse::<i64>().is_ok()), "{body}");
        assert!(body["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')), "{body}");
        let ts: i64 = request.header("webhook-timestamp").parse().expect("unix seconds");
        assert!((chrono::Utc::now().timestamp() - ts).abs() < 60);
    }
    let last = got.iter().map(Received::json).find(|b| b["data"]["status"] == "error").expect("error status");
    assert_eq!(last["data"]["exit_code"], 3);

    // The catch-all subscription: every kind of event, each with its own webhook-id.
    let got = eventually(WAIT, "the task event on the catch-all", || {
        let got = all.received();
        got.iter().any(|r| r.json()["type"] == "task.created").then_some(got)
    });
    let kinds: HashSet<String> = got.iter().map(|r| r.json()["type"].as_str().expect("type").to_owned()).collect();
    for kind in ["agent.created", "instance.created", "instance.status", "task.created"] {
        assert!(kinds.contains(kind), "{kind} in {kinds:?}");
    }
    assert!(got.iter().any(|r| r.json()["data"]["instance_id"] == ib.as_str()), "B's events reach the catch-all");
    let ids: HashSet<&str> = got.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(ids.len(), got.len(), "one webhook-id per delivery");
    let every = everything["secret"].as_str().expect("secret");
    assert!(got.iter().all(|r| r.signed_with(every)));
    assert!(filtered.received().iter().all(|r| r.json()["data"]["agent_id"] == a.as_str()));
    assert!(!app.log().contains(&secret), "secrets never reach the log");
}

#[test]
fn a_given_secret_signs_as_the_specifications_known_answer_says() {
    // The Standard Webhooks specification's example: the receiver's own check accepts
    // it, and refuses it after a one-byte change, so it can be trusted below.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let headers = [
        ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
        ("webhook-timestamp", "1614265330"),
        ("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="),
    ];
    let vector = Received {
        headers: headers.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
        body: br#"{"test": 2432232314}"#.to_vec(),
    };
    assert!(vector.signed_with(SECRET));
    assert!(!Received { body: br#"{"test": 2432232315}"#.to_vec(), ..vector.clone() }.signed_with(SECRET));

    let app = TestApp::spawn();
    let receiver = Receiver::start();
    let made = subscribe(&app, json!({ "url": receiver.url("/"), "events": ["task.*"], "secret": SECRET }));
    assert_eq!(made["secret"], SECRET, "a given secret is kept as given");
    task(&app, "signed with the given secret");
    let got = receiver.wait_for(1, WAIT);
    assert!(got[0].signed_with(SECRET), "{:?}", got[0].headers);
    assert!(!got[0].signed_with("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSx"), "another secret does not verify it");
}

#[test]
fn failed_attempts_are_retried_with_the_same_webhook_id_then_given_up() {
    let app = TestApp::spawn_with_config(FAST);
    let receiver = Receiver::start();
    receiver.answer(&[500, 503]);
    let hook = subscribe(&app, json!({ "url": receiver.url("/"), "events": ["task.created"] }));
    let id = hook["id"].as_str().expect("id");
    let secret = hook["secret"].as_str().expect("secret");
    task(&app, "retry me");
    let got = receiver.wait_for(3, WAIT);
    assert_eq!(got.len(), 3);
    let first = got[0].header("webhook-id");
    assert!(got.iter().all(|r| r.header("webhook-id") == first), "the same webhook-id on every attempt");
    assert!(got.iter().all(|r| r.signed_with(secret)), "each attempt signed afresh");
    assert!(got.iter().all(|r| r.body == got[0].body), "the same body");

    let log = eventually(WAIT, "three attempts in the log", || {
        let log = attempts(&app, id);
        (log.len() == 3 && log[0]["delivery_state"] == "delivered").then_some(log)
    });
    let codes: Vec<&Value> = log.iter().map(|a| &a["status_code"]).collect();
    assert_eq!(codes, [&json!(200), &json!(503), &json!(500)], "newest first");
    assert_eq!(log.iter().map(|a| a["attempt"].as_i64().expect("n")).collect::<Vec<_>>(), [3, 2, 1]);
    assert!(log.iter().all(|a| a["delivery_id"] == first));
    assert!(log[2]["error"].as_str().is_some_and(|e| e.contains("500")), "{}", log[2]);
    assert!(log[0]["error"].is_null());
    assert!(log.iter().all(|a| a["duration_ms"].is_u64() && a["at"].is_string() && a["event_id"].is_i64()));

    // A receiver that keeps failing: four attempts (the first and three retries), then failed.
    receiver.answer(&[500, 500, 500, 500, 500]);
    task(&app, "never accepted");
    let log = eventually(WAIT, "the delivery to fail for good", || {
        let log = attempts(&app, id);
        (log.len() == 7 && log[0]["delivery_state"] == "failed").then_some(log)
    });
    assert_eq!(log[0]["attempt"], 4);
    assert_eq!(receiver.received().len(), 7);
    assert_eq!(app.get(&format!("/api/webhooks/{id}")).json()["pending_deliveries"], 0);
}

#[test]
fn a_delivery_survives_a_server_crash_while_its_receiver_is_down() {
    let root_config = "[webhooks]\nretry_schedule = [\"300ms\", \"300ms\", \"300ms\", \"300ms\", \"300ms\", \"300ms\", \"300ms\", \"300ms\", \"300ms\", \"300ms\"]\n";
    let mut app = TestApp::spawn_with_config(root_config);
    let port = {
        let down = Receiver::start();
        down.port
    };
    eventually(WAIT, "the receiver's port to close", || {
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err().then_some(())
    });
    let hook = subscribe(&app, json!({ "url": format!("http://127.0.0.1:{port}/hook"), "events": ["task.created"] }));
    let id = hook["id"].as_str().expect("id").to_owned();
    let secret = hook["secret"].as_str().expect("secret").to_owned();
    task(&app, "deliver me later");
    let log = eventually(WAIT, "a failed attempt", || {
        let log = attempts(&app, &id);
        (!log.is_empty()).then_some(log)
    });
    assert!(log[0]["status_code"].is_null() && log[0]["error"].is_string(), "{}", log[0]);
    let delivery = log[0]["delivery_id"].as_str().expect("delivery").to_owned();

    app.kill9();
    let receiver = Receiver::on(port);
    let app = app.start_again();
    let got = receiver.wait_for(1, WAIT);
    assert_eq!(got[0].header("webhook-id"), delivery, "the same delivery, after the crash");
    assert!(got[0].signed_with(&secret));
    assert_eq!(got[0].json()["data"]["task"]["title"], "deliver me later");
    eventually(WAIT, "the delivery to be marked delivered", || {
        let log = attempts(&app, &id);
        (log[0]["delivery_state"] == "delivered").then_some(())
    });
}

#[test]
fn gone_turns_the_subscription_off_until_it_is_turned_on_again() {
    let app = TestApp::spawn_with_config(FAST);
    let (gone, witness) = (Receiver::start(), Receiver::start());
    gone.answer(&[410]);
    let hook = subscribe(&app, json!({ "url": gone.url("/"), "events": ["task.*"] }));
    let id = hook["id"].as_str().expect("id");
    subscribe(&app, json!({ "url": witness.url("/"), "events": ["task.*"] }));
    task(&app, "first");
    let off = eventually(WAIT, "the subscription to be turned off", || {
        let hook = app.get(&format!("/api/webhooks/{id}")).json();
        (hook["active"] == false).then_some(hook)
    });
    assert!(off["disabled_reason"].as_str().is_some_and(|r| r.contains("410")), "{off}");
    assert_eq!(attempts(&app, id)[0]["delivery_state"], "failed");

    task(&app, "second");
    // The other subscription got both; by then the turned-off one would have been sent the second.
    witness.wait_for(2, WAIT);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(gone.received().len(), 1, "nothing more after 410");

    let on = app.put(&format!("/api/webhooks/{id}"), &json!({ "active": true }));
    assert_eq!(on.status, 200, "{}", on.text);
    assert_eq!(on.json()["active"], true);
    assert!(on.json()["disabled_reason"].is_null());
    task(&app, "third");
    let got = gone.wait_for(2, WAIT);
    assert_eq!(got[1].json()["data"]["task"]["title"], "third");
}

#[test]
fn an_event_can_be_redelivered_by_hand() {
    let app = TestApp::spawn();
    let receiver = Receiver::start();
    task(&app, "before the subscription");
    let hook = subscribe(&app, json!({ "url": receiver.url("/"), "events": ["task.created"] }));
    let id = hook["id"].as_str().expect("id");
    task(&app, "again");
    let first = receiver.wait_for(1, WAIT)[0].clone();
    let event_id: i64 = first.json()["id"].as_str().expect("id").parse().expect("number");

    let r = app.post(&format!("/api/webhooks/{id}/redeliver"), &json!({ "event_id": event_id }));
    assert_eq!(r.status, 202, "{}", r.text);
    let got = receiver.wait_for(2, WAIT);
    assert_eq!(got[1].header("webhook-id"), first.header("webhook-id"));
    assert_eq!(got[1].body, first.body);

    // An event from before the subscription existed is sent from the event log
    // (on this fresh server it is the one just before).
    let r = app.post(&format!("/api/webhooks/{id}/redeliver"), &json!({ "event_id": event_id - 1 }));
    assert_eq!(r.status, 202, "{}", r.text);
    let got = receiver.wait_for(3, WAIT);
    assert_eq!(got[2].json()["data"]["task"]["title"], "before the subscription");
    assert_ne!(got[2].header("webhook-id"), first.header("webhook-id"));
    let missing = app.post(&format!("/api/webhooks/{id}/redeliver"), &json!({ "event_id": 999_999 }));
    assert_eq!(missing.status, 404, "{}", missing.text);
    let unknown = app.post("/api/webhooks/00000000-0000-4000-8000-000000000000/redeliver", &json!({ "event_id": 1 }));
    assert_eq!(unknown.status, 404);
    let log = eventually(WAIT, "both attempts in the log", || {
        let log = attempts(&app, id);
        (log.len() == 3).then_some(log)
    });
    let again: Vec<i64> =
        log.iter().filter(|a| a["event_id"] == event_id).map(|a| a["attempt"].as_i64().expect("n")).collect();
    assert_eq!(again, [2, 1], "the redelivery is the delivery's second attempt");
}

#[test]
fn a_redelivery_asked_for_while_the_attempt_is_in_flight_is_still_made() {
    let app = TestApp::spawn();
    let receiver = Receiver::start();
    receiver.slow(Duration::from_millis(700));
    let hook = subscribe(&app, json!({ "url": receiver.url("/"), "events": ["task.created"] }));
    let id = hook["id"].as_str().expect("id");
    task(&app, "slow");
    // The request has arrived; its answer (a success) is still 700 ms away.
    let first = receiver.wait_for(1, WAIT)[0].clone();
    let event_id: i64 = first.json()["id"].as_str().expect("id").parse().expect("number");
    let r = app.post(&format!("/api/webhooks/{id}/redeliver"), &json!({ "event_id": event_id }));
    assert_eq!(r.status, 202, "{}", r.text);
    let got = receiver.wait_for(2, WAIT);
    assert_eq!(got[1].header("webhook-id"), first.header("webhook-id"));
    let log = eventually(WAIT, "both attempts logged as delivered", || {
        let log = attempts(&app, id);
        (log.len() == 2 && log.iter().all(|a| a["status_code"] == 200)).then_some(log)
    });
    let numbers: Vec<i64> = log.iter().map(|a| a["attempt"].as_i64().expect("n")).collect();
    assert_eq!(numbers, [2, 1]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(receiver.received().len(), 2, "sent twice, not more");
}

#[test]
fn a_receiver_that_never_answers_does_not_delay_the_others() {
    let app = TestApp::spawn_with_config("[webhooks]\ntimeout = \"2s\"\nretry_schedule = [\"100ms\"]\n");
    let (stuck, fast) = (Receiver::start(), Receiver::start());
    stuck.hang();
    let hook = subscribe(&app, json!({ "url": stuck.url("/"), "events": ["task.created"] }));
    subscribe(&app, json!({ "url": fast.url("/"), "events": ["task.created"] }));
    for n in 0..3 {
        task(&app, &format!("task {n}"));
    }
    // The stuck receiver holds its first request for the whole timeout; the other
    // one gets all three meanwhile.
    fast.wait_for(3, Duration::from_millis(1500));
    assert_eq!(stuck.received().len(), 1, "one attempt at a time per subscription");

    // The attempt is given up at the timeout, logged, and made again with the same
    // id (after the other two, which were due first).
    let first_id = stuck.received()[0].header("webhook-id").to_owned();
    eventually(WAIT, "the timed-out delivery made again", || {
        (stuck.received().iter().filter(|r| r.header("webhook-id") == first_id).count() == 2).then_some(())
    });
    let log = attempts(&app, hook["id"].as_str().expect("id"));
    let first = log.iter().find(|a| a["attempt"] == 1).expect("first attempt logged");
    assert_eq!(first["status_code"], Value::Null, "{first}");
    assert!(first["error"].as_str().is_some_and(|e| !e.is_empty()), "{first}");
    let took = first["duration_ms"].as_u64().expect("duration_ms");
    assert!((1900..10_000).contains(&took), "cut off at the 2 s timeout: {took} ms");
}

#[test]
fn the_slack_format_says_who_needs_you_and_why() {
    let app = TestApp::spawn();
    let chat = Receiver::start();
    let agent = app.agent(
        "deployer",
        &["bash", "-c", "read -p 'Deploy to production? [y/N] ' answer; echo $answer"],
        json!({}),
    );
    subscribe(&app, json!({ "url": chat.url("/services/T0/B0/x"), "events": ["instance.status"], "format": "slack" }));
    let instance = app.instance(&agent, json!({}))["id"].as_str().expect("id").to_owned();
    app.wait_status(&instance, "awaiting_input", WAIT);
    let got = eventually(WAIT, "the awaiting_input message", || {
        chat.received().into_iter().find(|r| r.json()["text"].as_str().is_some_and(|t| t.contains("needs you")))
    });
    let body = got.json();
    assert_eq!(body.as_object().expect("object").len(), 1, "only text: {body}");
    let text = body["text"].as_str().expect("text");
    assert!(text.starts_with("*deployer* needs you: "), "{text}");
    assert!(text.contains("Deploy to production? [y/N]"), "{text}");
    assert!(text.contains(&instance[..8]), "{text}");
}

#[test]
fn subscriptions_are_validated_and_managed() {
    let app = TestApp::spawn();
    let cases = [
        (json!({ "url": "ftp://example.com/" }), "url"),
        (json!({ "url": "not a url" }), "url"),
        (json!({ "url": "http://127.0.0.1:9/", "events": ["instance.stat"] }), "events"),
        (json!({ "url": "http://127.0.0.1:9/", "events": [] }), "events"),
        (json!({ "url": "http://127.0.0.1:9/", "secret": "short" }), "secret"),
        (json!({ "url": "http://127.0.0.1:9/", "format": "teams" }), "format"),
        (json!({ "url": "http://127.0.0.1:9/", "agent_id": "00000000-0000-4000-8000-000000000000" }), "agent_id"),
    ];
    for (body, field) in cases {
        let r = app.post("/api/webhooks", &body);
        assert_eq!(r.status, 422, "{body}: {}", r.text);
        assert!(r.json()["error"]["message"].as_str().expect("message").starts_with(field), "{}", r.text);
    }
    assert!(app.get("/api/webhooks").json().as_array().expect("list").is_empty(), "nothing was created");

    let given = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let hook = subscribe(&app, json!({ "url": "http://127.0.0.1:9/", "secret": given, "active": false }));
    assert_eq!(hook["secret"], given);
    assert_eq!(hook["events"], json!(["*"]));
    assert_eq!((hook["active"].clone(), hook["format"].clone()), (json!(false), json!("standard")));
    let id = hook["id"].as_str().expect("id");
    let changed =
        app.put(&format!("/api/webhooks/{id}"), &json!({ "events": ["message.created"], "secret": "generate" }));
    assert_eq!(changed.status, 200, "{}", changed.text);
    let fresh = changed.json()["secret"].as_str().expect("new secret shown once").to_owned();
    assert_ne!(fresh, given);
    assert_eq!(changed.json()["events"], json!(["message.created"]));
    assert!(app.get(&format!("/api/webhooks/{id}")).json().get("secret").is_none());
    assert_eq!(app.put(&format!("/api/webhooks/{id}"), &json!({ "url": "gopher://x" })).status, 422);
    assert_eq!(app.post(&format!("/api/webhooks/{id}/redeliver"), &json!({ "event_id": 1 })).status, 409, "inactive");
    assert_eq!(app.delete(&format!("/api/webhooks/{id}")).status, 204);
    assert_eq!(app.get(&format!("/api/webhooks/{id}")).status, 404);
    assert_eq!(app.get(&format!("/api/webhooks/{id}/deliveries")).status, 404);
    assert_eq!(app.delete(&format!("/api/webhooks/{id}")).status, 404);
}
