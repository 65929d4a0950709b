use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{eventually, TestApp};

const T: Duration = Duration::from_secs(15);

fn python_prompt(app: &TestApp, name: &str) -> String {
    let script = "import time; time.sleep(1.0); x = input('Your name? '); print('Hello, ' + x + '!'); time.sleep(30)";
    app.agent(name, &["python3", "-c", script], json!({}))
}

#[test]
fn a_python_prompt_is_detected_and_answered_by_a_message() {
    let app = TestApp::spawn();
    let agent = python_prompt(&app, "py");
    let id = app.instance(&agent, json!({}))["id"].as_str().expect("id").to_owned();
    let waiting = app.wait_status(&id, "awaiting_input", T);
    assert_eq!(waiting["status_reason"], "kernel: read on the terminal");

    let r = app.post(&format!("/api/instances/{id}/messages"), &json!({"content": "Ada"}));
    assert_eq!(r.status, 201, "{}", r.text);
    let message = r.json();
    assert_eq!(message["sender_type"], "user");
    assert!(message["delivered_at"].is_string(), "typed at once because the program waits: {message}");
    app.wait_output(&id, "Hello, Ada!", T);
    // The output moves it back to active (the status is stored just after the bytes),
    // and a program that then sleeps is not taken for waiting once it is quiet.
    app.wait_status(&id, "active", T);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let status = app.get(&format!("/api/instances/{id}")).json()["status"].clone();
    assert_eq!(status, "active", "a sleeping program is not waiting");
}

#[test]
fn a_message_sent_while_busy_is_held_until_the_prompt_appears() {
    let app = TestApp::spawn();
    let agent = python_prompt(&app, "py");
    let id = app.instance(&agent, json!({}))["id"].as_str().expect("id").to_owned();
    let r = app.post(&format!("/api/instances/{id}/messages"), &json!({"content": "Grace"}));
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(r.json()["delivered_at"].is_null(), "held while the program sleeps");
    app.wait_output(&id, "Hello, Grace!", T);
    // The delivery is stored right after the typing, off the instance's thread.
    eventually(T, "the delivery to be recorded", || {
        let messages = app.get(&format!("/api/instances/{id}/messages")).json();
        messages[0]["delivered_at"].is_string().then_some(())
    });
}

/// A prompt given with the start (a task's, a trigger's) reaches the program
/// however its start goes: in a helper made ready, in one of its own, or slowly
/// (cgroup limits to set up), each handed over while the program is still starting.
#[test]
fn a_prompt_given_at_start_is_typed_however_the_program_starts() {
    let app = TestApp::spawn();
    let quick = app.agent("quick", &["bash", "--norc", "-i"], json!({"max_concurrent_instances": 20}));
    let limited = app.agent(
        "limited",
        &["bash", "--norc", "-i"],
        json!({"max_concurrent_instances": 20, "limits": {"pids": 64, "memory_mb": 256}}),
    );
    let mut started = Vec::new();
    for round in 0..8 {
        for agent in [&quick, &limited] {
            let word = format!("typed-{round}-{}", started.len());
            let instance = app.instance(agent, json!({"prompt": format!("echo {word}")}));
            started.push((instance["id"].as_str().expect("id").to_owned(), word));
        }
    }
    for (id, word) in &started {
        // The typed command, then what it printed.
        let text = eventually(T, &format!("{word} typed and run in {id}"), || {
            let text = app.output(id);
            (text.matches(word.as_str()).count() >= 2).then_some(text)
        });
        assert_eq!(text.matches(&format!("echo {word}")).count(), 1, "typed once: {text}");
    }
}

/// A raw-mode program that turns bracketed paste on and reports each submit (Enter
/// outside a paste).
const PASTE_PROGRAM: &str = include_str!("../programs/bracketed_paste.py");

#[test]
fn a_multi_line_reply_is_submitted_once_as_a_bracketed_paste() {
    let app = TestApp::spawn();
    let agent = app.agent("paste", &["python3", "-c", PASTE_PROGRAM], json!({}));
    let id = app.instance(&agent, json!({}))["id"].as_str().expect("id").to_owned();
    app.wait_status(&id, "awaiting_input", T);
    let r = app.post(&format!("/api/instances/{id}/messages"), &json!({"content": "first line\nsecond line\nthird"}));
    assert_eq!(r.status, 201, "{}", r.text);
    let out = app.wait_output(&id, "SUBMIT 1", T);
    assert!(out.contains("first line<NL>second line<NL>third\r\nSUBMIT 1"), "{out:?}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(!app.output(&id).contains("SUBMIT 2"), "submitted once, not line by line");
}

#[test]
fn a_reply_cannot_end_its_own_paste_and_type_the_rest_as_keys() {
    let app = TestApp::spawn();
    let agent = app.agent("paste", &["python3", "-c", PASTE_PROGRAM], json!({}));
    let id = app.instance(&agent, json!({}))["id"].as_str().expect("id").to_owned();
    app.wait_status(&id, "awaiting_input", T);
    let hostile = "a\nb\u{1b}[201~\recho pwned\u{1b}[20\u{1b}[201~1~";
    let r = app.post(&format!("/api/instances/{id}/messages"), &json!({"content": hostile}));
    assert_eq!(r.status, 201, "{}", r.text);
    let out = app.wait_output(&id, "SUBMIT 1", T);
    assert!(out.contains("pwned\r\nSUBMIT 1"), "everything arrived inside one paste, then one Enter: {out:?}");
    std::thread::sleep(Duration::from_millis(300));
    assert!(!app.output(&id).contains("SUBMIT 2"), "nothing was typed as keys after an early paste end");
}

#[test]
fn options_type_what_they_show_and_questions_are_bounded() {
    let app = TestApp::spawn();
    let agent = app.agent("asker", &["sleep", "30"], json!({}));
    let id = app.instance(&agent, json!({}))["id"].as_str().expect("id").to_owned();
    let ask = |content: &str, options: &[&str]| {
        app.post(
            &format!("/api/instances/{id}/messages"),
            &json!({"sender_type": "agent", "content": content, "requires_user_input": true, "options": options}),
        )
    };
    for option in ["No\u{7f}\u{7f}yes", "No\u{15}yes", "yes\nrm -rf ~", "a\u{1b}[201~", "txt\u{202e}exe"] {
        let r = ask("Proceed?", &["no", option]);
        assert_eq!(r.status, 422, "{option:?}: {}", r.text);
        assert_eq!(r.json()["error"]["field"], "options[1]");
    }
    let r = ask(&"a line\n".repeat(10_000), &[]);
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(r.text.contains("40 lines"), "the limit is named: {}", r.text);
    assert_eq!(ask("Proceed?", &["yes", "no"]).status, 201);
    assert_eq!(app.get(&format!("/api/instances/{id}/messages")).json().as_array().map(Vec::len), Some(1));
}

#[test]
fn agents_ask_and_finish_with_their_instance_token_which_reaches_nothing_else() {
    let app = TestApp::spawn();
    // The agent prints its token so the test can act as the agent.
    let agent = app.agent("asker", &["bash", "-c", "echo TOKEN=$SWITCHBOARD_INSTANCE_TOKEN; sleep 60"], json!({}));
    let other = app.agent("other", &["sleep", "60"], json!({}));
    let id = app.instance(&agent, json!({}))["id"].as_str().expect("id").to_owned();
    let other_id = app.instance(&other, json!({}))["id"].as_str().expect("id").to_owned();
    let out = app.wait_output(&id, "TOKEN=sbi_", T);
    let token = out.split("TOKEN=").nth(1).and_then(|t| t.split_whitespace().next()).expect("token").to_owned();
    let bearer = format!("Bearer {token}");
    let auth = [("Authorization", bearer.as_str())];

    assert_eq!(app.get_with(&format!("/api/instances/{id}"), &auth).status, 200);
    assert_eq!(app.get_with("/api/tasks", &auth).status, 403, "the instance token does not reach tasks");
    assert_eq!(app.get_with("/api/agents", &auth).status, 403);
    assert_eq!(app.get_with(&format!("/api/instances/{other_id}"), &auth).status, 403, "nor other instances");

    let ask = |body: &str| {
        app.raw_api_as(
            &bearer,
            "POST",
            &format!("/api/instances/{id}/messages"),
            "Content-Type: application/json\r\n",
            body.as_bytes(),
        )
    };
    let asked = ask(r#"{"content": "Deploy to production?", "requires_user_input": true, "options": ["yes", "no"]}"#);
    assert_eq!(asked.status, 201, "{}", asked.text);
    assert_eq!(asked.json()["sender_type"], "agent", "an instance token posts agent messages");
    assert_eq!(asked.json()["options"], json!(["yes", "no"]));
    let waiting = app.wait_status(&id, "awaiting_input", T);
    assert_eq!(waiting["status_reason"], "agent_message");
    assert_eq!(waiting["status_source"], "agent");
    assert_eq!(waiting["options"], json!(["yes", "no"]), "the question's choices are the instance's");
    assert_eq!(ask(r#"{"content": "x", "sender_type": "user"}"#).status, 403);

    let done = app.raw_api_as(&bearer, "POST", &format!("/api/instances/{id}/complete"), "", b"");
    assert_eq!(done.status, 200, "{}", done.text);
    assert_eq!(done.json()["status"], "completed");
    assert_eq!(done.json()["status_reason"], "agent_complete");
    assert_eq!(app.get_with(&format!("/api/instances/{id}"), &auth).status, 401, "the token dies with its instance");
}

#[test]
fn messages_long_poll_until_a_newer_one_exists() {
    let app = TestApp::spawn();
    let agent = app.agent("poll", &["sleep", "60"], json!({}));
    let id = app.instance(&agent, json!({}))["id"].as_str().expect("id").to_owned();
    let first =
        app.post(&format!("/api/instances/{id}/messages"), &json!({"content": "note", "sender_type": "agent"})).json();
    let first_id = first["id"].as_str().expect("id").to_owned();

    let started = Instant::now();
    let empty = app.get(&format!("/api/instances/{id}/messages?after={first_id}&wait=1"));
    assert_eq!(empty.json(), json!([]));
    assert!(started.elapsed() >= Duration::from_millis(900), "held for the wait");

    let poster = {
        let url = app.url(&format!("/api/instances/{id}/messages"));
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            ureq::post(&url)
                .header("Authorization", format!("Bearer {}", crate::helpers::TOKEN))
                .send_json(json!({"content": "later", "sender_type": "agent"}))
                .expect("post")
                .status()
                .as_u16()
        })
    };
    let started = Instant::now();
    let got = app.get(&format!("/api/instances/{id}/messages?after={first_id}&wait=30")).json();
    assert_eq!(got[0]["content"], "later");
    assert!(started.elapsed() < Duration::from_secs(10), "answered when the message came, not at the end of the wait");
    assert_eq!(poster.join().expect("poster"), 201);

    assert_eq!(app.get(&format!("/api/instances/{id}/messages?wait=61")).status, 422);
    assert_eq!(app.get(&format!("/api/instances/{id}/messages?after=nope")).status, 422);
    eventually(T, "all messages listed", || {
        let all = app.get(&format!("/api/instances/{id}/messages")).json();
        (all.as_array().map(Vec::len) == Some(2)).then_some(())
    });
}

#[test]
fn messages_to_ended_instances_are_refused() {
    let app = TestApp::spawn();
    let agent = app.agent("quick", &["true"], json!({}));
    let id = app.instance(&agent, json!({}))["id"].as_str().expect("id").to_owned();
    app.wait_status(&id, "completed", T);
    let r = app.post(&format!("/api/instances/{id}/messages"), &json!({"content": "too late"}));
    assert_eq!((r.status, r.code().as_str()), (409, "not_running"));
    let r = app.post(&format!("/api/instances/{id}/messages"), &json!({"content": ""}));
    assert_eq!(r.status, 422);
}
