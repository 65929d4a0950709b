//! Coding agents, first class: presets, the real Claude Code CLI reporting through
//! its hooks (run offline against the model stand-in in `model.rs`), permission
//! requests decided through the API or by rules, resume; and the other agents'
//! reports fed to `switchboard hook` as their programs would.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{project_dir, TestApp};
use crate::model::Model;
use crate::receiver::Receiver;
use crate::sse_client::SseClient;

const WAIT: Duration = Duration::from_secs(60);

/// The Claude Code CLI pinned in tests/agents/package-lock.json (`bash tests/run`
/// installs it).
fn claude() -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/agents/node_modules/.bin/claude");
    assert!(path.exists(), "{} is missing: run `bash tests/run`, which installs it with npm ci", path.display());
    path
}

/// A home for the CLI: onboarding done, the stand-in's key approved, the project trusted.
fn claude_home(app: &TestApp, project: &str, key: &str) -> String {
    let home = project_dir(app, "home");
    let tail: String = key.chars().skip(key.len() - 20).collect();
    let state = json!({"hasCompletedOnboarding": true, "customApiKeyResponses": {"approved": [tail], "rejected": []},
        "projects": {project: {"hasTrustDialogAccepted": true}}});
    std::fs::write(Path::new(&home).join(".claude.json"), state.to_string()).expect("write .claude.json");
    home
}

fn config(claude: &Path) -> String {
    format!("[agents]\napproval_hold = \"90s\"\n[agents.programs]\nclaude-code = {:?}\n", claude.display().to_string())
}

fn instance(app: &TestApp, id: &str) -> Value {
    app.get(&format!("/api/instances/{id}")).json()
}

/// Waits until the instance waits with a prompt that satisfies `check`.
fn waits_with(app: &TestApp, id: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    until(app, id, what, |i| i["status"] == "awaiting_input" && check(i))
}

/// Waits until the instance satisfies `check`; on a timeout, says what it shows.
fn until(app: &TestApp, id: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let i = instance(app, id);
        if check(&i) {
            return i;
        }
        if std::time::Instant::now() > deadline {
            let screen = app.get(&format!("/api/instances/{id}/output?format=text")).text;
            let tail: String = screen.chars().rev().take(3000).collect::<Vec<_>>().into_iter().rev().collect();
            let approvals = app.get(&format!("/api/instances/{id}/approvals")).text;
            panic!(
                "timed out waiting for {what}; the instance: {i}\nits requests: {approvals}\nits screen:\n{tail}\nserver log:\n{}",
                app.log()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn say(app: &TestApp, id: &str, text: &str) {
    let r = app.post(&format!("/api/instances/{id}/messages"), &json!({"content": text}));
    assert_eq!(r.status, 201, "{}", r.text);
}

#[test]
fn claude_code_asks_exactly_is_approved_from_anywhere_and_resumes() {
    let claude = claude();
    let app = TestApp::spawn_with_config(&config(&claude));
    let model = Model::start();
    let project = project_dir(&app, "project");
    let key = format!("sk-ant-api03-{}", uuid::Uuid::new_v4().simple());
    let home = claude_home(&app, &project, &key);
    let slack = Receiver::start();
    let r =
        app.post("/api/webhooks", &json!({"url": slack.url("/"), "format": "slack", "events": ["approval.requested"]}));
    assert_eq!(r.status, 201, "{}", r.text);

    let presets = app.get("/api/presets").json();
    let preset = presets.as_array().expect("list").iter().find(|p| p["name"] == "claude-code").expect("listed").clone();
    assert_eq!(preset["available"], true, "{preset}");
    assert_eq!(preset["gives"]["approvals"], true);

    let r = app.post(
        "/api/agents",
        &json!({"preset": "claude-code", "name": "claude", "project_path": project,
            "command": [claude.display().to_string(), "--permission-mode", "default"],
            "env": {"HOME": home, "ANTHROPIC_API_KEY": key, "ANTHROPIC_BASE_URL": model.url(),
                "DISABLE_AUTOUPDATER": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let agent = r.json();
    assert_eq!(agent["settings"]["integration"], "claude-code");
    let agent_id = agent["id"].as_str().expect("id").to_owned();
    let started = app.instance(&agent_id, json!({"prompt": "make the file"}));
    let id = started["id"].as_str().expect("id").to_owned();
    let session = started["agent_session_id"].as_str().expect("a session id chosen for it").to_owned();

    // The exact question, from the hook, held for a decision.
    let asked = waits_with(&app, &id, "the permission request", |i| !i["approval"].is_null());
    assert_eq!(asked["status_source"], "hook", "{asked}");
    assert_eq!(asked["prompt"], "Allow Bash: touch made-by-agent?");
    assert_eq!(asked["approval"]["tool_input"]["command"], "touch made-by-agent");
    assert_eq!(asked["options"], json!(["allow", "deny"]));
    let made = Path::new(&project).join("made-by-agent");
    assert!(!made.exists(), "nothing runs before the decision");
    let told = slack.wait_for(1, WAIT);
    let text = told[0].json()["text"].as_str().unwrap_or_default().to_owned();
    assert!(text.contains("*claude* asks to use Bash: `touch made-by-agent`"), "{text}");

    let approval = asked["approval"]["id"].as_str().expect("id").to_owned();
    let r = app.post(&format!("/api/approvals/{approval}"), &json!({"decision": "allow"}));
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["decided_by"], "user");
    let again = app.post(&format!("/api/approvals/{approval}"), &json!({"decision": "deny"}));
    assert_eq!(again.status, 409, "{}", again.text);
    assert_eq!(again.code(), "already_decided");

    until(&app, &id, "the approved command to run", |_| made.exists());
    let finished = |i: &Value| i["prompt"].as_str().is_some_and(|p| p.starts_with("Finished: "));
    let done = waits_with(&app, &id, "the end of the turn", finished);
    let last = done["prompt"].as_str().expect("prompt").to_owned();
    assert_eq!(done["status_source"], "hook");
    assert!(done["approval"].is_null());
    assert_eq!(done["options"], json!([]));
    let messages = app.get(&format!("/api/instances/{id}/messages")).json();
    assert!(
        messages.as_array().expect("list").iter().any(|m| m["sender_type"] == "agent" && m["content"] == last.as_str()),
        "{messages}"
    );
    assert_eq!(instance(&app, &id)["agent_session_id"], session.as_str(), "SessionStart reports the chosen id");

    // A rule decides at once: the instance never waits on the request.
    let rules = json!({"settings": {"approvals": [{"tool": "Bash", "match": "^touch ", "decision": "allow"}]}});
    assert_eq!(app.put(&format!("/api/agents/{agent_id}"), &rules).status, 200);
    std::fs::remove_file(&made).expect("rm");
    let mut events = SseClient::open(&app, &format!("/api/events?instance_id={id}&types=instance.status"), &[]);
    say(&app, &id, "make the file again");
    until(&app, &id, "the rule-approved command to run", |_| made.exists());
    let log = app.get(&format!("/api/instances/{id}/approvals")).json();
    assert_eq!(log[0]["status"], "allowed", "{log}");
    assert_eq!(log[0]["decided_by"], "rule 1: Bash ^touch ");
    waits_with(&app, &id, "the second turn's end", finished);
    let mut reasons = Vec::new();
    while reasons.last().is_none_or(|r: &String| r != "hook: Stop") {
        reasons.push(events.expect(WAIT).json()["reason"].as_str().unwrap_or_default().to_owned());
    }
    assert!(
        !reasons.iter().any(|r| r.contains("PermissionRequest")),
        "it never waited on the rule's request: {reasons:?}"
    );
    events.close();

    // A denial, with its reason, is reported back to the model.
    assert_eq!(app.put(&format!("/api/agents/{agent_id}"), &json!({"settings": {"approvals": []}})).status, 200);
    std::fs::remove_file(&made).expect("rm");
    say(&app, &id, "make the file once more");
    let asked = waits_with(&app, &id, "the third request", |i| !i["approval"].is_null());
    let approval = asked["approval"]["id"].as_str().expect("id").to_owned();
    let r = app.post(&format!("/api/approvals/{approval}"), &json!({"decision": "deny", "message": "not on a Friday"}));
    assert_eq!(r.status, 200, "{}", r.text);
    waits_with(&app, &id, "the denied turn's end", |i| {
        i["prompt"].as_str().is_some_and(|p| p.contains("not on a Friday"))
    });
    assert!(!made.exists(), "a denied command does not run");
    let denied = model.conversations().iter().any(|c| {
        c["messages"].to_string().contains("not on a Friday") && c["messages"].to_string().contains("tool_result")
    });
    assert!(denied, "the model is told of the denial and its reason");

    // Resume: a new instance continues the same conversation.
    let r = app.put(&format!("/api/instances/{id}"), &json!({"status": "terminated"}));
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app.post(&format!("/api/instances/{id}/resume"), &json!({}));
    assert_eq!(r.status, 201, "{}", r.text);
    let resumed = r.json();
    let new_id = resumed["id"].as_str().expect("id").to_owned();
    assert_eq!(resumed["resumed_from"], id.as_str());
    assert_eq!(resumed["agent_session_id"], session.as_str());
    let before = model.conversations().len();
    let r = app.post(&format!("/api/instances/{new_id}/messages"), &json!({"content": "say hello"}));
    assert_eq!(r.status, 201, "{}", r.text);
    waits_with(&app, &new_id, "the resumed turn's end", |i| i["prompt"] == "Hello again.");
    let history =
        model.conversations()[before..].iter().any(|c| c["messages"].to_string().contains("make the file once more"));
    assert!(history, "the resumed conversation carries what was said before");
    assert_eq!(instance(&app, &new_id)["agent_session_id"], session.as_str());
}

#[test]
fn presets_fill_in_agents_and_say_what_is_missing() {
    let app = TestApp::spawn_with_config("[agents.programs]\ncodex = \"/nonexistent/codex\"\n");
    let presets = app.get("/api/presets").json();
    let names: Vec<&str> = presets.as_array().expect("list").iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(names, ["claude-code", "codex", "gemini", "aider", "shell"]);
    let codex = presets.as_array().expect("list").iter().find(|p| p["name"] == "codex").expect("codex").clone();
    assert_eq!(codex["available"], false);
    assert!(codex["unavailable_reason"].as_str().unwrap_or("").contains("/nonexistent/codex"), "{codex}");

    let project = project_dir(&app, "p");
    let r = app.post("/api/agents", &json!({"preset": "codex", "name": "c", "project_path": project}));
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(r.text.contains("codex is unavailable"), "{}", r.text);
    let r = app.post("/api/agents", &json!({"preset": "nope", "name": "n", "project_path": project}));
    assert_eq!(r.status, 422);
    assert_eq!(app.get("/api/agents").json().as_array().map(Vec::len), Some(0), "nothing was made");

    let r = app.post("/api/agents", &json!({"preset": "shell", "name": "sh", "project_path": project}));
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.json()["command"], json!(["bash"]));
    assert_eq!(r.json()["settings"]["integration"], "none");
    let id = r.json()["id"].as_str().expect("id").to_owned();
    let shell = app.instance(&id, json!({}));
    let sid = shell["id"].as_str().expect("id");
    app.wait_status(sid, "awaiting_input", WAIT);
    let r = app.put(&format!("/api/instances/{sid}"), &json!({"status": "terminated"}));
    assert_eq!(r.status, 200);
    let r = app.post(&format!("/api/instances/{sid}/resume"), &json!({}));
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.code(), "cannot_resume");
}

/// A stand-in for an agent's program: a shell that prints its instance token, then
/// runs something quiet (the agent at work). The instance, busy.
fn stand_in(app: &TestApp, name: &str, integration: &str) -> (Value, String) {
    let program = ["bash", "-c", "echo token=$SWITCHBOARD_INSTANCE_TOKEN; exec bash"];
    let agent = app.agent(name, &program, json!({"integration": integration}));
    let started = app.instance(&agent, json!({}));
    let id = started["id"].as_str().expect("id").to_owned();
    app.wait_status(&id, "awaiting_input", WAIT);
    app.type_in(&id, "sleep 120\r");
    app.wait_status(&id, "active", WAIT);
    (started, id)
}

/// Runs `switchboard hook KIND` as an instance's hook would, with its environment.
fn hook(app: &TestApp, instance: &Value, kind: &str, stdin: &str, argument: Option<&str>) -> (bool, String) {
    let token = app.wait_output_token(instance);
    let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
    command.args(["hook", kind]).args(argument);
    command
        .env("SWITCHBOARD_URL", app.url(""))
        .env("SWITCHBOARD_INSTANCE_ID", instance["id"].as_str().expect("id"))
        .env("SWITCHBOARD_INSTANCE_TOKEN", token)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("hook");
    std::io::Write::write_all(child.stdin.as_mut().expect("stdin"), stdin.as_bytes()).expect("write");
    let out = child.wait_with_output().expect("hook ran");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr))
}

#[test]
fn codex_and_aider_reports_reach_the_instance_through_switchboard_hook() {
    let app = TestApp::spawn();
    let (c, cid) = stand_in(&app, "codex", "codex");
    let payload = json!({"type": "agent-turn-complete", "thread-id": "thread-42", "turn-id": "1",
        "input-messages": ["fix the bug"], "last-assistant-message": "Fixed the bug. Shall I run the tests?"});
    let (ok, said) = hook(&app, &c, "codex", "", Some(&payload.to_string()));
    assert!(ok, "{said}");
    let now = waits_with(&app, &cid, "the codex turn's end", |_| true);
    assert_eq!(now["status_source"], "hook");
    assert_eq!(now["prompt"], "Fixed the bug. Shall I run the tests?");
    assert_eq!(now["agent_session_id"], "thread-42");

    let (a, aid) = stand_in(&app, "aider", "aider");
    let (ok, said) = hook(&app, &a, "aider", "", None);
    assert!(ok, "{said}");
    let now = waits_with(&app, &aid, "aider's notification", |_| true);
    assert_eq!(now["status_reason"], "hook: aider notification");

    // A report to another instance with this token is refused; so is deciding one's own request.
    let wrong = json!({"id": cid, });
    let mut forged = a.clone();
    forged["id"] = wrong["id"].clone();
    let (ok, said) = hook_with_token(&app, &forged, &app.wait_output_token(&a), "aider");
    assert!(!ok && said.contains("403"), "{said}");
}

fn hook_with_token(app: &TestApp, instance: &Value, token: &str, kind: &str) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["hook", kind])
        .env("SWITCHBOARD_URL", app.url(""))
        .env("SWITCHBOARD_INSTANCE_ID", instance["id"].as_str().expect("id"))
        .env("SWITCHBOARD_INSTANCE_TOKEN", token)
        .stdin(Stdio::null())
        .output()
        .expect("hook ran");
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

impl TestApp {
    /// The instance token a stand-in printed as `token=…`.
    fn wait_output_token(&self, instance: &Value) -> String {
        let id = instance["id"].as_str().expect("id");
        let text = self.wait_output(id, "token=sbi_", WAIT);
        let start = text.find("token=sbi_").expect("token") + "token=".len();
        text[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_').collect()
    }
}

/// A hook held open by the server, as the agent's hook process is while it waits.
struct HeldHook(std::process::Child);

impl HeldHook {
    fn start(app: &TestApp, instance: &Value, token: &str, payload: &Value) -> HeldHook {
        let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["hook", "claude"])
            .env("SWITCHBOARD_URL", app.url(""))
            .env("SWITCHBOARD_INSTANCE_ID", instance["id"].as_str().expect("id"))
            .env("SWITCHBOARD_INSTANCE_TOKEN", token)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("hook");
        let mut stdin = child.stdin.take().expect("stdin");
        std::io::Write::write_all(&mut stdin, payload.to_string().as_bytes()).expect("write");
        drop(stdin);
        HeldHook(child)
    }

    /// What the hook printed for the agent, once it exits (it must, within `WAIT`).
    fn answer(mut self) -> (bool, String) {
        let deadline = std::time::Instant::now() + WAIT;
        while self.0.try_wait().expect("wait").is_none() {
            assert!(std::time::Instant::now() < deadline, "the hook never returned");
            std::thread::sleep(Duration::from_millis(20));
        }
        let status = self.0.wait().expect("status");
        let mut printed = String::new();
        if let Some(mut stdout) = self.0.stdout.take() {
            std::io::Read::read_to_string(&mut stdout, &mut printed).expect("stdout");
        }
        (status.success(), printed)
    }
}

impl Drop for HeldHook {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn permission(command: &str) -> Value {
    json!({"hook_event_name": "PermissionRequest", "session_id": "s-1", "tool_name": "Bash", "tool_input": {"command": command}})
}

#[test]
fn a_held_request_expires_or_is_withdrawn_and_only_people_decide_it() {
    let app = TestApp::spawn_with_config("[agents]\napproval_hold = \"5s\"\n");
    let (started, id) = stand_in(&app, "asker", "claude-code");
    let token = app.wait_output_token(&started);

    // Nobody decides: after the hold, the hook answers nothing (the agent's own prompt
    // decides) and the instance still waits.
    let hook = HeldHook::start(&app, &started, &token, &permission("make deploy"));
    let asked = waits_with(&app, &id, "the request", |i| !i["approval"].is_null());
    let approval = asked["approval"]["id"].as_str().expect("id").to_owned();
    let own = app.raw_api_as(
        &format!("Bearer {token}"),
        "POST",
        &format!("/api/approvals/{approval}"),
        "Content-Type: application/json\r\n",
        br#"{"decision": "allow"}"#,
    );
    assert_eq!(own.status, 403, "an instance does not decide its own requests: {}", own.text);
    let (ok, printed) = hook.answer();
    assert!(ok && printed.trim().is_empty(), "an expired request answers nothing: {printed:?}");
    let log = app.get(&format!("/api/instances/{id}/approvals")).json();
    assert_eq!((log[0]["status"].as_str(), log[0]["decided_by"].as_str()), (Some("expired"), Some("timeout")), "{log}");
    assert_eq!(instance(&app, &id)["status"], "awaiting_input");

    // The hook goes away undecided (the person answered in the terminal): withdrawn.
    let hook = HeldHook::start(&app, &started, &token, &permission("make clean"));
    until(&app, &id, "the second request", |i| i["approval"]["tool_input"]["command"] == "make clean");
    drop(hook);
    until(&app, &id, "the request withdrawn", |i| i["approval"].is_null());
    let log = app.get(&format!("/api/instances/{id}/approvals?status=withdrawn")).json();
    assert_eq!(log[0]["tool_input"]["command"], "make clean", "{log}");

    // Decided from a terminal with the client: the hook gets the denial and its reason.
    let hook = HeldHook::start(&app, &started, &token, &permission("rm -rf build"));
    until(&app, &id, "the third request", |i| i["approval"]["tool_input"]["command"] == "rm -rf build");
    let short: String = id.chars().take(8).collect();
    let out = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args([
            "approve",
            &short,
            "--deny",
            "--message",
            "not the build dir",
            "--url",
            &app.url(""),
            "--token",
            crate::helpers::TOKEN,
        ])
        .env_remove("SWITCHBOARD_INSTANCE_TOKEN")
        .output()
        .expect("client");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("denied "), "{}", String::from_utf8_lossy(&out.stdout));
    let (ok, printed) = hook.answer();
    assert!(ok, "{printed}");
    let answer: Value = serde_json::from_str(printed.trim()).expect("JSON for the agent");
    assert_eq!(
        answer["hookSpecificOutput"],
        json!({"hookEventName": "PermissionRequest", "decision": {"behavior": "deny", "message": "not the build dir"}})
    );
    let again = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["approve", &short, "--url", &app.url(""), "--token", crate::helpers::TOKEN])
        .output()
        .expect("client");
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("no pending permission request"));
}

#[test]
fn a_turns_last_message_is_not_replaced_by_a_later_idle_reminder() {
    let app = TestApp::spawn();
    let (started, id) = stand_in(&app, "turns", "claude-code");
    let stop = json!({"hook_event_name": "Stop", "last_assistant_message": "Refactored the parser; 3 tests fail."});
    let (ok, said) = hook(&app, &started, "claude", &stop.to_string(), None);
    assert!(ok, "{said}");
    waits_with(&app, &id, "the end of the turn", |i| i["prompt"] == "Refactored the parser; 3 tests fail.");
    let idle = json!({"hook_event_name": "Notification", "notification_type": "idle_prompt", "message": "Claude is waiting for your input"});
    let (ok, said) = hook(&app, &started, "claude", &idle.to_string(), None);
    assert!(ok, "{said}");
    std::thread::sleep(Duration::from_millis(600));
    assert_eq!(instance(&app, &id)["prompt"], "Refactored the parser; 3 tests fail.");
    // A question of its own is new, though: a new wait with its own id.
    let before = instance(&app, &id)["wait_id"].clone();
    let ask = json!({"hook_event_name": "Notification", "notification_type": "elicitation_dialog", "message": "Which branch should I use?"});
    let (ok, said) = hook(&app, &started, "claude", &ask.to_string(), None);
    assert!(ok, "{said}");
    let now = waits_with(&app, &id, "the new question", |i| i["prompt"] == "Which branch should I use?");
    assert_ne!(now["wait_id"], before);
}

#[test]
fn a_hook_that_said_it_works_is_outlasted_by_a_long_still_screen() {
    let app = TestApp::spawn();
    let program = ["bash", "-c", "echo token=$SWITCHBOARD_INSTANCE_TOKEN; exec bash"];
    let agent = app.agent("still", &program, json!({"integration": "claude-code"}));
    let started = app.instance(&agent, json!({}));
    let id = started["id"].as_str().expect("id").to_owned();
    app.wait_status(&id, "awaiting_input", WAIT);
    app.type_in(&id, "sleep 2; echo back\r");
    app.wait_status(&id, "active", WAIT);
    let pre = json!({"hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"command": "sleep 2"}});
    let (ok, said) = hook(&app, &started, "claude", &pre.to_string(), None);
    assert!(ok, "{said}");
    // The program goes back to its prompt without a hook saying so (as when a hook
    // cannot reach the server): while the screen is still only briefly, the hook's
    // word stands; after 20 s of stillness the kernel's does.
    app.wait_output(&id, "back", WAIT);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(instance(&app, &id)["status"], "active", "the hook said it works");
    let waiting = until(&app, &id, "the kernel's word after a still screen", |i| i["status"] == "awaiting_input");
    assert_eq!(waiting["status_source"], "kernel", "{waiting}");
}
