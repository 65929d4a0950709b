use std::time::Duration;

use serde_json::json;

use crate::helpers::{eventually, TestApp};

const T: Duration = Duration::from_secs(15);

#[test]
fn a_shell_takes_raw_input_and_resizes_in_its_project_directory() {
    let app = TestApp::spawn();
    let agent = app.agent("sh", &["bash", "--norc", "--noprofile", "-i"], json!({}));
    let project = app.get(&format!("/api/agents/{agent}")).json()["project_path"].as_str().expect("path").to_owned();
    let instance = app.instance(&agent, json!({"env": {"GREETING": "hello-env"}, "cols": 100, "rows": 30}));
    let id = instance["id"].as_str().expect("id");
    assert_eq!(instance["status"], "active");
    assert!(instance["pid"].as_i64().is_some());
    assert_eq!((instance["cols"].as_i64(), instance["rows"].as_i64()), (Some(100), Some(30)));
    app.wait_status(id, "awaiting_input", T);

    app.type_in(id, "echo \"cwd=$(pwd) env=$GREETING term=$TERM id=$SWITCHBOARD_INSTANCE_ID\"; stty size\r");
    let out = app.wait_output(id, "30 100", T);
    assert!(out.contains(&format!("cwd={project} env=hello-env term=xterm-256color id={id}")), "{out}");

    let r = app.post(&format!("/api/instances/{id}/resize"), &json!({"cols": 77, "rows": 21}));
    assert_eq!(r.status, 204, "{}", r.text);
    let resized = app.get(&format!("/api/instances/{id}")).json();
    assert_eq!((resized["cols"].as_u64(), resized["rows"].as_u64()), (Some(77), Some(21)), "stored when answered");
    let r = app.post(&format!("/api/instances/{id}/input"), &json!({"keys": ["C-u"]}));
    assert_eq!(r.status, 202);
    app.type_in(id, "stty size\r");
    app.wait_output(id, "21 77", T);
    // A burst from several clients at once: each is answered once its size, or one
    // sent after it, is stored; the last stored is one of them.
    let sizes: Vec<(u64, u64)> = (0..8).map(|k| (60 + k, 20 + k)).collect();
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let sent: Vec<_> = sizes
            .iter()
            .map(|&(cols, rows)| {
                let app = &app;
                scope.spawn(move || {
                    app.post(&format!("/api/instances/{id}/resize"), &json!({"cols": cols, "rows": rows})).status
                })
            })
            .collect();
        sent.into_iter().map(|h| h.join().expect("resize")).collect()
    });
    assert!(statuses.iter().all(|s| *s == 204), "{statuses:?}");
    let now = app.get(&format!("/api/instances/{id}")).json();
    let stored = (now["cols"].as_u64().unwrap_or(0), now["rows"].as_u64().unwrap_or(0));
    assert!(sizes.contains(&stored), "{stored:?}");
    app.type_in(id, "stty size\r");
    app.wait_output(id, &format!("{} {}", stored.1, stored.0), T);

    let keys = app.post(&format!("/api/instances/{id}/input"), &json!({"keys": ["Enter", "Hyper"]}));
    assert_eq!(keys.status, 422);
    assert_eq!(keys.json()["error"]["field"], "keys[1]");
    for bad in [json!({"cols": 0, "rows": 10}), json!({"cols": 10, "rows": 1001})] {
        assert_eq!(app.post(&format!("/api/instances/{id}/resize"), &bad).status, 422, "{bad}");
    }
}

#[test]
fn the_server_secrets_never_reach_the_child() {
    let app = TestApp::spawn();
    let agent = app.agent("env", &["bash", "-c", "env; sleep 0.5"], json!({}));
    let id = app.instance(&agent, json!({}))["id"].as_str().expect("id").to_owned();
    app.wait_status(&id, "completed", T);
    let env = app.output(&id);
    assert!(env.contains("SWITCHBOARD_INSTANCE_TOKEN=sbi_"), "{env}");
    assert!(env.contains("SWITCHBOARD_URL=http://127.0.0.1:"), "{env}");
    assert!(!env.contains(crate::helpers::TOKEN), "the server token leaked into the child: {env}");
}

#[test]
fn exit_codes_decide_completed_or_error() {
    let app = TestApp::spawn();
    let ok = app.agent("ok", &["bash", "-c", "echo done"], json!({}));
    let three = app.agent("three", &["bash", "-c", "exit 3"], json!({}));
    let missing = app.agent("missing", &["/no/such/program-xyz"], json!({}));

    let done = app.instance(&ok, json!({}));
    let done = app.wait_status(done["id"].as_str().expect("id"), "completed", T);
    assert_eq!(done["exit_code"], 0);
    assert!(done["completed_at"].is_string());

    let failed = app.instance(&three, json!({}));
    let failed = app.wait_status(failed["id"].as_str().expect("id"), "error", T);
    assert_eq!(failed["exit_code"], 3);
    assert_eq!(failed["status_reason"], "exited with code 3");

    let not_started = app.instance(&missing, json!({}));
    assert_eq!(not_started["status"], "error", "the 201 answer already says it could not start");
    assert!(not_started["status_reason"].as_str().expect("reason").starts_with("spawn_failed"), "{not_started}");
    assert!(not_started["pid"].is_null());

    let id = done["id"].as_str().expect("id");
    let r = app.put(&format!("/api/instances/{id}"), &json!({"status": "terminated"}));
    assert_eq!((r.status, r.code().as_str()), (409, "illegal_transition"));
    assert_eq!(app.post(&format!("/api/instances/{id}/input"), &json!({"data": "x"})).status, 409);
    let r = app.put(&format!("/api/instances/{id}"), &json!({"status": "active"}));
    assert_eq!(r.status, 422);
}

#[test]
fn a_start_uses_the_agent_as_it_is_now() {
    let app = TestApp::spawn();
    let agent = app.agent("changing", &["bash", "-c", "echo first-$MODE"], json!({"max_concurrent_instances": 5}));
    let r = app.put(&format!("/api/agents/{agent}"), &json!({"env": {"MODE": "a"}}));
    assert_eq!(r.status, 200, "{}", r.text);
    let one = app.instance(&agent, json!({}));
    app.wait_output(one["id"].as_str().expect("id"), "first-a", T);

    // Changed between two starts: the second runs the new command, environment and settings.
    let r = app.put(
        &format!("/api/agents/{agent}"),
        &json!({"command": ["bash", "-c", "echo second-$MODE; exec sleep 60"], "env": {"MODE": "b"},
                "settings": {"max_concurrent_instances": 1}}),
    );
    assert_eq!(r.status, 200, "{}", r.text);
    app.wait_status(one["id"].as_str().expect("id"), "completed", T);
    let two = app.instance(&agent, json!({"queue": false}));
    app.wait_output(two["id"].as_str().expect("id"), "second-b", T);
    let r = app.post(&format!("/api/agents/{agent}/instances"), &json!({"queue": false}));
    assert_eq!(r.status, 429, "the new limit of one holds: {}", r.text);

    assert_eq!(app.delete(&format!("/api/agents/{agent}")).status, 204);
    let r = app.post(&format!("/api/agents/{agent}/instances"), &json!({}));
    assert_eq!(r.status, 404, "a deleted agent starts nothing: {}", r.text);
}

#[test]
fn a_limit_of_one_queues_the_second_which_starts_when_the_first_ends() {
    let app = TestApp::spawn();
    let agent = app.agent("one", &["bash", "--norc", "-i"], json!({"max_concurrent_instances": 1}));
    let first = app.instance(&agent, json!({}));
    let second = app.instance(&agent, json!({"prompt": "echo second-ran"}));
    let third = app.instance(&agent, json!({}));
    assert_eq!(first["status"], "active");
    assert_eq!((second["status"].as_str(), second["queue_position"].as_i64()), (Some("idle"), Some(1)));
    assert_eq!(third["queue_position"], 2);
    assert!(second["pid"].is_null());

    let refused = app.post(&format!("/api/agents/{agent}/instances"), &json!({"queue": false}));
    assert_eq!((refused.status, refused.code().as_str()), (429, "too_many_requests"));

    let queued = app.get(&format!("/api/instances?status=idle&agent_id={agent}")).json();
    assert_eq!(queued.as_array().map(Vec::len), Some(2));

    let (first, second) = (first["id"].as_str().expect("id"), second["id"].as_str().expect("id"));
    let r = app.put(&format!("/api/instances/{first}"), &json!({"status": "terminated"}));
    assert_eq!(r.json()["status"], "terminated");
    let running = app.wait_status(second, "awaiting_input", T);
    assert!(running["pid"].is_i64());
    app.wait_output(second, "second-ran", T);
    assert_eq!(app.get(&format!("/api/instances/{}", third["id"].as_str().expect("id"))).json()["queue_position"], 1);
}

#[test]
fn queued_instances_can_be_terminated_before_they_start() {
    let app = TestApp::spawn_with(&["--token", crate::helpers::TOKEN, "--max-instances", "1"]);
    let a = app.agent("a", &["sleep", "30"], json!({}));
    let b = app.agent("b", &["sleep", "30"], json!({}));
    app.instance(&a, json!({}));
    let queued = app.instance(&b, json!({}));
    assert_eq!(queued["status"], "idle", "the global limit queues across agents");
    let id = queued["id"].as_str().expect("id");
    let r = app.put(&format!("/api/instances/{id}"), &json!({"status": "terminated"}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["status"], "terminated");
    assert!(r.json()["queue_position"].is_null());
}

#[test]
fn the_transcript_is_readable_from_any_offset() {
    let app = TestApp::spawn();
    let agent = app.agent("printer", &["bash", "-c", "printf 'abcdefghij'"], json!({}));
    let id = app.instance(&agent, json!({}))["id"].as_str().expect("id").to_owned();
    app.wait_status(&id, "completed", T);
    let all = app.get(&format!("/api/instances/{id}/output"));
    assert_eq!(all.text, "abcdefghij");
    assert_eq!(all.header("x-transcript-length"), Some("10"));
    assert_eq!(app.get(&format!("/api/instances/{id}/output?offset=7")).text, "hij");
    assert_eq!(app.get(&format!("/api/instances/{id}/output?offset=99")).text, "");
    assert_eq!(app.get(&format!("/api/instances/{id}/output?offset=-1")).status, 422);

    assert_eq!(app.delete(&format!("/api/instances/{id}")).status, 204);
    assert_eq!(app.get(&format!("/api/instances/{id}")).status, 404);
    assert!(!app.data_dir().join(format!("transcripts/{id}.log")).exists(), "the transcript is removed");
    assert!(!app.data_dir().join(format!("transcripts/{id}.screen")).exists(), "and the last screen");
}

#[test]
fn instances_are_listed_and_filtered() {
    let app = TestApp::spawn();
    let a = app.agent("a", &["true"], json!({}));
    let b = app.agent("b", &["false"], json!({}));
    let ia = app.instance(&a, json!({}))["id"].as_str().expect("id").to_owned();
    let ib = app.instance(&b, json!({}))["id"].as_str().expect("id").to_owned();
    app.wait_status(&ia, "completed", T);
    app.wait_status(&ib, "error", T);
    let ids = |q: &str| -> Vec<String> {
        app.get(&format!("/api/instances{q}"))
            .json()
            .as_array()
            .expect("array")
            .iter()
            .map(|i| i["id"].as_str().expect("id").to_owned())
            .collect()
    };
    assert_eq!(ids(""), [ib.clone(), ia.clone()], "newest first");
    assert_eq!(ids("?status=completed"), [ia.as_str()]);
    assert_eq!(ids(&format!("?agent_id={b}")), [ib.as_str()]);
    assert_eq!(app.get(&format!("/api/agents/{a}/instances")).json()[0]["id"], ia);
    assert_eq!(app.get("/api/instances?status=sleeping").status, 422);
    assert_eq!(app.get("/api/instances?agent_id=nope").status, 422);
    eventually(T, "nothing left running", || {
        app.get("/api/instances?status=active").json().as_array().is_some_and(Vec::is_empty).then_some(())
    });
}

#[test]
fn auto_start_agents_start_at_boot() {
    let app = TestApp::spawn();
    let agent = app.agent("always", &["bash", "--norc", "-i"], json!({"auto_start": true}));
    assert_eq!(app.get(&format!("/api/agents/{agent}/instances")).json(), json!([]), "not at creation");
    let app = app.restart();
    let started = eventually(T, "an instance of the auto_start agent", || {
        let list = app.get(&format!("/api/agents/{agent}/instances")).json();
        list.as_array().filter(|l| l.len() == 1).map(|l| l[0].clone())
    });
    app.wait_status(started["id"].as_str().expect("id"), "awaiting_input", T);
}

#[test]
fn prompt_patterns_catch_prompts_the_kernel_cannot_see() {
    let app = TestApp::spawn();
    // Prints a question but never reads the terminal (an agent that polls a file, say).
    let script = "echo 'Apply these changes? [y/N]'; sleep 30";
    let agent =
        app.agent("asks", &["bash", "-c", script], json!({"prompt_patterns": ["\\[y/N\\]\\s*$"], "idle_ms": 200}));
    let plain = app.agent("plain", &["bash", "-c", script], json!({"idle_ms": 200}));
    let asks = app.instance(&agent, json!({}))["id"].as_str().expect("id").to_owned();
    let quiet = app.instance(&plain, json!({}))["id"].as_str().expect("id").to_owned();
    let waiting = app.wait_status(&asks, "awaiting_input", T);
    assert_eq!(waiting["status_reason"], "pattern: \\[y/N\\]\\s*$");
    assert_eq!(waiting["prompt"], "Apply these changes? [y/N]", "what it asks is part of the instance");
    let quiet = app.get(&format!("/api/instances/{quiet}")).json();
    assert_eq!(quiet["status"], "active", "no pattern, no prompt");
    assert!(quiet["prompt"].is_null());
}

#[test]
fn an_idempotency_key_makes_retries_safe() {
    let app = TestApp::spawn();
    let agent = app.agent("once", &["bash", "--norc", "-i"], json!({"max_concurrent_instances": 10}));
    let create = |key: &str| {
        app.raw_api(
            "POST",
            &format!("/api/agents/{agent}/instances"),
            &format!("Content-Type: application/json\r\nIdempotency-Key: {key}\r\n"),
            b"{}",
        )
    };
    let first = create("job-1");
    assert_eq!(first.status, 201, "{}", first.text);
    let again = create("job-1");
    assert_eq!(again.status, 201);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json()["id"], first.json()["id"], "the first answer, not a second instance");

    let racers: Vec<_> = (0..5)
        .map(|_| {
            let url = app.url(&format!("/api/agents/{agent}/instances"));
            std::thread::spawn(move || {
                let r = ureq::post(&url)
                    .header("Authorization", format!("Bearer {}", crate::helpers::TOKEN))
                    .header("Idempotency-Key", "job-2")
                    .config()
                    .http_status_as_error(false)
                    .build()
                    .send_json(json!({}))
                    .expect("post");
                r.status().as_u16()
            })
        })
        .collect();
    let statuses: Vec<u16> = racers.into_iter().map(|r| r.join().expect("racer")).collect();
    assert!(statuses.iter().all(|s| *s == 201 || *s == 409), "{statuses:?}");
    let listed = app.get(&format!("/api/agents/{agent}/instances")).json();
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "five concurrent repeats started one instance");

    let id = first.json()["id"].as_str().expect("id").to_owned();
    app.wait_status(&id, "awaiting_input", T);
    for _ in 0..2 {
        let r = app.raw_api(
            "POST",
            &format!("/api/instances/{id}/input"),
            "Content-Type: application/json\r\nIdempotency-Key: type-1\r\n",
            br#"{"data": "echo typed-$((40+2))\r"}"#,
        );
        assert_eq!(r.status, 202);
    }
    app.wait_output(&id, "typed-42", T);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(app.output(&id).matches("typed-42").count(), 1, "typed once");

    let path = format!("/api/agents/{agent}/instances");
    let headers = "Content-Type: application/json\r\nIdempotency-Key: k\r\n";
    let failed = app.raw_api("POST", &path, headers, br#"{"cols": 0}"#);
    assert_eq!(failed.status, 422);
    let retried = app.raw_api("POST", &path, headers, b"{}");
    assert_eq!(retried.status, 201, "a failed request leaves the key free");
}
