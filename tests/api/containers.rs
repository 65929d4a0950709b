//! The container runner, against a real engine (Podman's Docker-compatible
//! service with runc, see `engine.rs`): an instance in a container answers,
//! resizes, waits, streams, resumes and ends like a local one, and its engine's
//! errors are named.

use std::time::Duration;

use serde_json::{json, Value};

use crate::engine::{self, IMAGE};
use crate::helpers::{eventually, TestApp};
use crate::sse_client::{output_of, read_then_resume};

const T: Duration = Duration::from_secs(30);

fn runner(engine: &engine::Engine) -> Value {
    json!({"kind": "container", "image": IMAGE, "engine": engine.endpoint, "network": "none"})
}

fn id_of(instance: &Value) -> String {
    instance["id"].as_str().expect("id").to_owned()
}

#[test]
fn a_shell_in_a_container_answers_resizes_waits_and_is_removed_when_it_ends() {
    let engine = engine::local();
    let app = TestApp::spawn();
    let agent = app.agent("boxed", &["/bin/sh"], json!({"runner": runner(engine)}));
    let project = app.get(&format!("/api/agents/{agent}")).json()["project_path"].as_str().expect("path").to_owned();
    let id = id_of(&app.instance(&agent, json!({})));

    // The kernel sees the shell read its terminal, as it would a local one.
    let waiting = app.wait_status(&id, "awaiting_input", T);
    assert_eq!(waiting["status_source"], "kernel", "{waiting}");
    assert!(waiting["status_reason"].as_str().expect("reason").starts_with("kernel:"), "{waiting}");
    assert_eq!(waiting["isolation"]["containment"], "container", "{waiting}");
    assert!(waiting["pid"].as_i64().is_some(), "its first process as this machine sees it: {waiting}");
    assert!(engine.holds(&id), "the engine runs it: {:?}", engine.containers());

    // Typed input reaches it, and its edits land in the workspace, mounted at its own path.
    app.type_in(&id, "echo made-$((6*7)) > from-the-container; pwd; stty size\n");
    app.wait_output(&id, "40 120", T);
    let made = std::fs::read_to_string(format!("{project}/from-the-container")).expect("the file it wrote");
    assert_eq!(made, "made-42\n");
    assert!(app.output(&id).contains(&format!("{project}\r\n")), "it works in the project's own path");

    // Its terminal follows a resize.
    let r = app.post(&format!("/api/instances/{id}/resize"), &json!({"cols": 100, "rows": 30}));
    assert_eq!(r.status, 204, "{}", r.text);
    app.type_in(&id, "stty size\n");
    app.wait_output(&id, "30 100", T);

    // A question inside it is detected, and a reply is typed into it.
    app.type_in(&id, "read -p 'Deploy now? ' answer; echo \"answer=$answer\"\n");
    let asked = eventually(T, "the question to be asked", || {
        let now = app.get(&format!("/api/instances/{id}")).json();
        (now["status"] == "awaiting_input" && now["prompt"].as_str().is_some_and(|p| p.ends_with("Deploy now?")))
            .then_some(now)
    });
    let r =
        app.post(&format!("/api/instances/{id}/messages"), &json!({"content": "yes", "in_reply_to": asked["wait_id"]}));
    assert_eq!(r.status, 201, "{}", r.text);
    app.wait_output(&id, "answer=yes", T);

    // Terminating ends it and removes its container.
    let r = app.put(&format!("/api/instances/{id}"), &json!({"status": "terminated"}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["status"], "terminated");
    engine.wait_removed(&id);
}

#[test]
fn a_containers_output_streams_resumes_and_its_exit_code_is_kept() {
    let engine = engine::local();
    let app = TestApp::spawn();
    let script = "for i in $(seq 1 60); do echo \"line $i\"; sleep 0.02; done; exit 3";
    let agent = app.agent("counter", &["/bin/sh", "-c", script], json!({"runner": runner(engine)}));
    let id = id_of(&app.instance(&agent, json!({})));
    // From byte 0: a few events, then drop the connection and resume.
    let (got, rest) = read_then_resume(&app, &id, 40);
    let transcript = app.output(&id);
    assert_eq!(output_of(&got) + &output_of(&rest), transcript, "resumed exactly where it stopped");
    assert!(transcript.contains("line 60\r\n"), "{transcript:?}");
    let end = rest.iter().find(|e| e.event == "end").expect("an end event");
    assert_eq!(end.json(), json!({"status": "error", "exit_code": 3}));
    let ended = app.wait_status(&id, "error", T);
    assert_eq!(ended["status_reason"], "exited with code 3");
    engine.wait_removed(&id);
}

#[test]
fn a_missing_image_and_an_unreachable_engine_are_named() {
    let engine = engine::local();
    let app = TestApp::spawn();
    let no_image = json!({"kind": "container", "image": "localhost/no-such-image:1", "engine": engine.endpoint});
    let agent = app.agent("no-image", &["/bin/sh"], json!({"runner": no_image}));
    let failed = app.instance(&agent, json!({}));
    assert_eq!(failed["status"], "error", "{failed}");
    let reason = failed["status_reason"].as_str().expect("reason");
    assert!(reason.starts_with("spawn_failed:") && reason.contains("localhost/no-such-image:1"), "{reason}");

    let gone = app.data_dir().join("no-engine.sock");
    let endpoint = format!("unix://{}", gone.display());
    let unreachable = json!({"kind": "container", "image": IMAGE, "engine": endpoint});
    let agent = app.agent("no-engine", &["/bin/sh"], json!({"runner": unreachable}));
    let failed = app.instance(&agent, json!({}));
    assert_eq!(failed["status"], "error", "{failed}");
    let reason = failed["status_reason"].as_str().expect("reason");
    assert!(reason.contains("unreachable") && reason.contains(&endpoint), "{reason}");

    // A malformed runner is refused when saved, and changes nothing.
    for (bad, field) in [
        (json!({"kind": "container"}), "settings.runner"),
        (json!({"kind": "container", "image": IMAGE, "engine": "ftp://host"}), "settings.runner.engine"),
        (json!({"kind": "container", "image": IMAGE, "mounts": ["relative:/x"]}), "settings.runner.mounts[0]"),
    ] {
        let r = app.put(&format!("/api/agents/{agent}"), &json!({"settings": {"runner": bad}}));
        assert_eq!(r.status, 422, "{bad}: {}", r.text);
        assert!(r.json()["error"]["field"].as_str().expect("field").starts_with(field), "{}", r.text);
    }
    let kept = app.get(&format!("/api/agents/{agent}")).json();
    let stored =
        json!({"kind": "container", "image": IMAGE, "engine": endpoint, "mounts": [], "network": null, "user": null});
    assert_eq!(kept["settings"]["runner"], stored);
}

#[test]
fn a_containers_limits_come_from_its_engine_and_its_memory_limit_ends_it() {
    let engine = engine::local();
    let app = TestApp::spawn();
    let limits = json!({"memory_mb": 32, "pids": 64});
    // One endless line: sort keeps it all in memory.
    let agent =
        app.agent("hog", &["/bin/sh", "-c", "sort /dev/zero"], json!({"runner": runner(engine), "limits": limits}));
    let id = id_of(&app.instance(&agent, json!({})));
    let ended = app.wait_status(&id, "error", T);
    assert_eq!(ended["status_reason"], "memory_limit", "{ended}");
    assert_eq!(ended["isolation"]["containment"], "container");
    assert_eq!(ended["isolation"]["limits"], "container");
    assert_eq!(ended["isolation"]["applied"]["memory_mb"], 32);
    assert_eq!(ended["isolation"]["unenforced"], json!([]));

    // A neighbour in a container of its own is untouched.
    let calm = app.agent("calm", &["/bin/sh", "-c", "echo calm; exit 0"], json!({"runner": runner(engine)}));
    let calm = id_of(&app.instance(&calm, json!({})));
    assert_eq!(app.wait_status(&calm, "completed", T)["exit_code"], 0);
}

#[test]
fn an_engine_whose_processes_this_machine_cannot_see_falls_back_to_prompt_patterns() {
    let engine = engine::unseen();
    let app = TestApp::spawn();
    let settings = json!({"runner": runner(engine), "prompt_patterns": ["Proceed\\?\\s*$"]});
    let agent = app.agent("far", &["/bin/sh", "-c", "read -p 'Proceed? ' a; echo \"did $a\""], settings);
    let id = id_of(&app.instance(&agent, json!({})));
    let started = app.get(&format!("/api/instances/{id}")).json();
    assert!(started["pid"].is_null(), "its pid means nothing here: {started}");
    let waiting = app.wait_status(&id, "awaiting_input", T);
    let reason = waiting["status_reason"].as_str().expect("reason");
    assert!(reason.starts_with("pattern: ") && reason.contains("no kernel signal"), "{reason}");
    let r = app.post(&format!("/api/instances/{id}/messages"), &json!({"content": "it"}));
    assert_eq!(r.status, 201, "{}", r.text);
    app.wait_output(&id, "did it", T);
    app.wait_status(&id, "completed", T);
    engine.wait_removed(&id);
}

#[test]
fn a_container_left_by_a_killed_server_is_removed_when_it_starts_again() {
    let engine = engine::local();
    let mut app = TestApp::spawn();
    let agent = app.agent("left", &["/bin/sh"], json!({"runner": runner(engine)}));
    let id = id_of(&app.instance(&agent, json!({})));
    app.wait_status(&id, "awaiting_input", T);
    app.kill9();
    assert!(engine.holds(&id), "nothing removed it yet");
    let app = app.start_again();
    let ended = app.wait_status(&id, "error", T);
    assert_eq!(ended["status_reason"], "server_restart");
    engine.wait_removed(&id);
}

#[test]
fn an_agent_in_a_container_asks_through_the_api_with_its_instance_token() {
    let engine = engine::local();
    let app = TestApp::spawn();
    // The server listens on this machine's loopback: the host's network reaches it.
    let runner = json!({"kind": "container", "image": IMAGE, "engine": engine.endpoint, "network": "host"});
    let ask = r#"wget -q -O- --header "Authorization: Bearer $SWITCHBOARD_INSTANCE_TOKEN" \
        --header 'Content-Type: application/json' \
        --post-data '{"content": "Merge the box branch?", "requires_user_input": true, "options": ["yes", "no"]}' \
        "$SWITCHBOARD_URL/api/instances/$SWITCHBOARD_INSTANCE_ID/messages" > /dev/null && read answer; echo "merge=$answer""#;
    let agent = app.agent("asker", &["/bin/sh", "-c", ask], json!({"runner": runner}));
    let id = id_of(&app.instance(&agent, json!({})));
    let asked = eventually(T, "the agent's own question", || {
        let now = app.get(&format!("/api/instances/{id}")).json();
        (now["status"] == "awaiting_input" && now["status_source"] == "agent").then_some(now)
    });
    assert_eq!(asked["prompt"], "Merge the box branch?");
    assert_eq!(asked["options"], json!(["yes", "no"]));
    let r =
        app.post(&format!("/api/instances/{id}/messages"), &json!({"content": "yes", "in_reply_to": asked["wait_id"]}));
    assert_eq!(r.status, 201, "{}", r.text);
    app.wait_output(&id, "merge=yes", T);
    assert_eq!(app.wait_status(&id, "completed", T)["exit_code"], 0);
}
