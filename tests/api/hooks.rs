//! Inbound triggers: `POST /api/hooks/agents/:name`, authorised by the agent's
//! trigger secret (Standard Webhooks or GitHub signatures), never by the API token.

use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

use crate::helpers::{Resp, TestApp};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
const GITHUB_SECRET: &str = "a shared secret for GitHub";

fn standard_signature(secret: &str, id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = base64::engine::general_purpose::STANDARD.decode(secret.trim_start_matches("whsec_")).expect("base64");
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("key");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes()))
}

fn github_signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(body);
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// POSTs a trigger without the API token, with these extra header lines.
fn post(app: &TestApp, name: &str, headers: &str, body: &[u8]) -> Resp {
    let headers = format!("Content-Type: application/json\r\n{headers}");
    app.raw_request("POST", &format!("/api/hooks/agents/{name}"), &headers, body)
}

fn signed(app: &TestApp, name: &str, id: &str, timestamp: i64, body: &[u8], signature_body: &[u8]) -> Resp {
    let signature = standard_signature(SECRET, id, timestamp, signature_body);
    let headers = format!("webhook-id: {id}\r\nwebhook-timestamp: {timestamp}\r\nwebhook-signature: {signature}\r\n");
    post(app, name, &headers, body)
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn instances_of(app: &TestApp, agent: &str) -> Vec<Value> {
    app.get(&format!("/api/agents/{agent}/instances")).json().as_array().expect("list").clone()
}

fn ci_agent(app: &TestApp) -> String {
    app.agent(
        "ci-fixer",
        &["bash", "-c", "read line; echo \"got: $line\"; sleep 30"],
        json!({ "trigger_secret": SECRET, "trigger_env": ["BRANCH"] }),
    )
}

#[test]
fn a_signed_trigger_starts_one_instance_and_a_repeat_gets_the_same_one() {
    let app = TestApp::spawn();
    let agent = ci_agent(&app);
    let body = br#"{"prompt": "fix the build", "env": {"BRANCH": "main"}}"#;
    let r = signed(&app, "ci-fixer", "msg_first", now(), body, body);
    assert_eq!(r.status, 202, "{}", r.text);
    let answer = r.json();
    let instance = answer["instance_id"].as_str().expect("instance id").to_owned();
    assert_eq!(answer["stream_url"], format!("http://127.0.0.1:{}/api/instances/{instance}/stream", app.port));
    let stored = app.get(&format!("/api/instances/{instance}")).json();
    assert_eq!(stored["agent_id"], agent.as_str(), "committed before the answer");
    app.wait_output(&instance, "got: fix the build", Duration::from_secs(20));

    let again = signed(&app, "ci-fixer", "msg_first", now(), body, body);
    assert_eq!(again.status, 202, "{}", again.text);
    assert_eq!(again.json()["instance_id"], instance.as_str());
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(instances_of(&app, &agent).len(), 1, "a repeat starts nothing");

    let other = signed(&app, "ci-fixer", "msg_second", now(), b"", b"");
    assert_eq!(other.status, 202, "an empty body is {{}}: {}", other.text);
    assert_ne!(other.json()["instance_id"], instance.as_str());
    assert_eq!(instances_of(&app, &agent).len(), 2);
}

#[test]
fn a_trigger_sets_only_the_variables_its_agent_allows() {
    let app = TestApp::spawn();
    let agent = app.agent(
        "ci-fixer",
        &["bash", "-c", "echo \"branch=$BRANCH preload=$LD_PRELOAD\"; sleep 30"],
        json!({ "trigger_secret": SECRET, "trigger_env": ["BRANCH"] }),
    );
    for (n, name) in ["LD_PRELOAD", "PATH", "BASH_FUNC_echo%%", "NODE_OPTIONS", "ANTHROPIC_BASE_URL"].iter().enumerate()
    {
        let body = json!({"env": {"BRANCH": "main", *name: "/tmp/evil"}}).to_string();
        let r = signed(&app, "ci-fixer", &format!("env{n}"), now(), body.as_bytes(), body.as_bytes());
        assert_eq!(r.status, 422, "{name}: {}", r.text);
        assert_eq!(r.json()["error"]["field"], format!("env.{name}"), "{}", r.text);
    }
    assert!(instances_of(&app, &agent).is_empty(), "nothing started");
    let body = br#"{"env": {"BRANCH": "release"}}"#;
    let r = signed(&app, "ci-fixer", "env-ok", now(), body, body);
    assert_eq!(r.status, 202, "{}", r.text);
    let instance = r.json()["instance_id"].as_str().expect("id").to_owned();
    app.wait_output(&instance, "branch=release preload=\r", Duration::from_secs(20));

    // An agent that allows nothing: any variable is refused.
    app.agent("strict", &["true"], json!({ "trigger_secret": SECRET }));
    let body = br#"{"env": {"BRANCH": "main"}}"#;
    assert_eq!(signed(&app, "strict", "strict-1", now(), body, body).status, 422);
    // Names are validated where they are set.
    let r =
        app.put(&format!("/api/agents/{agent}"), &json!({"settings": {"trigger_env": ["OK", "SWITCHBOARD_TOKEN"]}}));
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.json()["error"]["field"], "settings.trigger_env[1]");
}

#[test]
fn bad_signatures_changed_bodies_and_stale_timestamps_are_refused() {
    let app = TestApp::spawn();
    let agent = ci_agent(&app);
    app.agent("no-secret", &["true"], json!({}));
    let body = br#"{"prompt": "deploy"}"#;
    let wrong_secret = {
        let signature = standard_signature("whsec_c2VjcmV0LXRoYXQtaXMtbm90LXRoZS1hZ2VudHM=", "m1", now(), body);
        post(
            &app,
            "ci-fixer",
            &format!("webhook-id: m1\r\nwebhook-timestamp: {}\r\nwebhook-signature: {signature}\r\n", now()),
            body,
        )
    };
    let one_byte_changed = signed(&app, "ci-fixer", "m2", now(), br#"{"prompt": "deplox"}"#, body);
    let stale = signed(&app, "ci-fixer", "m3", now() - 301, body, body);
    let future = signed(&app, "ci-fixer", "m4", now() + 400, body, body);
    let unsigned = post(&app, "ci-fixer", "", body);
    let unknown_agent = signed(&app, "nobody", "m5", now(), body, body);
    let no_secret = signed(&app, "no-secret", "m6", now(), body, body);
    let token_is_not_enough = {
        let head = format!("Authorization: Bearer {}\r\n", crate::helpers::TOKEN);
        post(&app, "ci-fixer", &head, body)
    };
    for (what, r) in [
        ("wrong secret", &wrong_secret),
        ("one byte changed", &one_byte_changed),
        ("stale timestamp", &stale),
        ("future timestamp", &future),
        ("no signature", &unsigned),
        ("unknown agent", &unknown_agent),
        ("agent without a trigger secret", &no_secret),
        ("API token instead of a signature", &token_is_not_enough),
    ] {
        assert_eq!(r.status, 401, "{what}: {}", r.text);
        assert_eq!(r.code(), "unauthorized", "{what}");
        assert!(!r.text.contains(SECRET), "{what}");
    }
    assert!(stale.text.contains("5 minutes"), "{}", stale.text);
    // Which agents exist is not revealed: a wrong signature for a real agent and
    // any signature for an unknown one, or one without a secret, read the same.
    let message = |r: &Resp| r.json()["error"]["message"].clone();
    assert_eq!(message(&unknown_agent), message(&one_byte_changed));
    assert_eq!(message(&no_secret), message(&one_byte_changed));
    assert_eq!(message(&post(&app, "nobody", "", body)), message(&unsigned));
    assert!(instances_of(&app, &agent).is_empty(), "nothing started");
    assert!(!app.log().contains(SECRET), "the secret is never logged");
}

#[test]
fn five_concurrent_repeats_start_exactly_one_instance() {
    let app = TestApp::spawn();
    // Each run of the program leaves a line in its project directory: a repeat must
    // start no program at all, not even one ended at once.
    let agent = app.agent(
        "ci-fixer",
        &["bash", "-c", "echo ran >> runs; read line; sleep 30"],
        json!({ "trigger_secret": SECRET }),
    );
    let body = br#"{"prompt": "once"}"#;
    let ts = now();
    let answers: Vec<Resp> = std::thread::scope(|s| {
        let handles: Vec<_> =
            (0..5).map(|_| s.spawn(|| signed(&app, "ci-fixer", "msg_concurrent", ts, body, body))).collect();
        handles.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    let ids: Vec<Value> = answers
        .iter()
        .map(|r| {
            assert_eq!(r.status, 202, "{}", r.text);
            r.json()["instance_id"].clone()
        })
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert_eq!(instances_of(&app, &agent).len(), 1);
    let runs = app.root.path().join("project-ci-fixer/runs");
    crate::helpers::eventually(Duration::from_secs(20), "the program to run", || runs.exists().then_some(()));
    std::thread::sleep(Duration::from_millis(500));
    let runs = std::fs::read_to_string(runs).expect("runs");
    assert_eq!(runs, "ran\n", "the program ran once, for the one instance");
}

#[test]
fn github_signatures_are_accepted_and_its_payloads_tolerated() {
    let app = TestApp::spawn();
    let agent = app.agent("gh", &["bash", "-c", "sleep 30"], json!({ "trigger_secret": GITHUB_SECRET }));
    let payload = br#"{"ref": "refs/heads/main", "repository": {"full_name": "o/r"}, "prompt": "review the push"}"#;
    let headers = format!(
        "X-GitHub-Event: push\r\nX-GitHub-Delivery: 72d3162e-cc78-11e3-81ab-4c9367dc0958\r\nX-Hub-Signature-256: {}\r\n",
        github_signature(GITHUB_SECRET, payload)
    );
    let r = post(&app, "gh", &headers, payload);
    assert_eq!(r.status, 202, "{}", r.text);
    let instance = r.json()["instance_id"].clone();
    let messages = app.get(&format!("/api/instances/{}/messages", instance.as_str().expect("id"))).json();
    assert_eq!(messages[0]["content"], "review the push");
    let repeat = post(&app, "gh", &headers, payload);
    assert_eq!(repeat.json()["instance_id"], instance, "X-GitHub-Delivery identifies a repeat");
    let tampered = headers.replace("sha256=", "sha256=0");
    assert_eq!(post(&app, "gh", &tampered, payload).status, 401);
    assert_eq!(instances_of(&app, &agent).len(), 1);

    // Without a delivery id a captured delivery could be replayed for ever: refused.
    let no_delivery =
        format!("X-GitHub-Event: push\r\nX-Hub-Signature-256: {}\r\n", github_signature(GITHUB_SECRET, payload));
    let r = post(&app, "gh", &no_delivery, payload);
    assert_eq!(r.status, 401, "{}", r.text);
    assert!(r.text.contains("X-GitHub-Delivery"), "{}", r.text);
    // The delivery id is remembered across a restart: a replay starts nothing.
    let app = app.restart();
    let replay = post(&app, "gh", &headers, payload);
    assert_eq!(replay.json()["instance_id"], instance, "{}", replay.text);
    assert_eq!(instances_of(&app, &agent).len(), 1);
}

#[test]
fn a_well_signed_trigger_with_bad_fields_is_refused_without_starting_anything() {
    let app = TestApp::spawn();
    let agent = ci_agent(&app);
    let body = br#"{"prompt": "x", "unexpected": 1}"#;
    let r = signed(&app, "ci-fixer", "msg_bad_fields", now(), body, body);
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(r.text.contains("unexpected"), "{}", r.text);
    let body = br#"{"task_id": 424242}"#;
    let r = signed(&app, "ci-fixer", "msg_bad_task", now(), body, body);
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(instances_of(&app, &agent).is_empty());
    // The id was not used up: the corrected request goes through.
    let body = br#"{"prompt": "x"}"#;
    assert_eq!(signed(&app, "ci-fixer", "msg_bad_fields", now(), body, body).status, 202);
}

#[test]
fn repeated_failures_from_one_address_are_rate_limited() {
    let app = TestApp::spawn();
    ci_agent(&app);
    let body = br#"{}"#;
    for n in 0..10 {
        let r = signed(&app, "ci-fixer", &format!("guess{n}"), now(), body, b"something else");
        assert_eq!(r.status, 401, "attempt {n}: {}", r.text);
    }
    let limited = signed(&app, "ci-fixer", "guess-valid", now(), body, body);
    assert_eq!(limited.status, 429, "even a valid request waits: {}", limited.text);
    let retry: u64 = limited.header("retry-after").expect("Retry-After").parse().expect("seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    // Bad triggers never lock out a token holder on the same address.
    assert_eq!(app.get("/api/agents").status, 200);
    assert_eq!(app.get_with("/healthz", &[]).status, 200);
}
