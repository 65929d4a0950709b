//! Workspaces: a git worktree per instance, its changes, and deletion that never
//! loses work unless told to. Every repository here is a real one made by `git`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{eventually, project_dir, TestApp};
use crate::sse_client::SseClient;

const WAIT: Duration = Duration::from_secs(20);

pub fn git(dir: &str, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .output()
        .expect("git");
    assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A repository with one commit of `shared.txt`.
fn repository(app: &TestApp, name: &str) -> String {
    let dir = project_dir(app, name);
    git(&dir, &["init", "-q", "-b", "main"]);
    std::fs::write(Path::new(&dir).join("shared.txt"), "original\n").expect("write");
    git(&dir, &["add", "shared.txt"]);
    git(&dir, &["commit", "-qm", "first"]);
    dir
}

/// A worktree agent in `repo` running `script` with git's identity set.
fn agent(app: &TestApp, name: &str, repo: &str, script: &str) -> String {
    let r = app.post(
        "/api/agents",
        &json!({
            "name": name, "project_path": repo, "command": ["sh", "-c", script],
            "env": {"GIT_AUTHOR_NAME": "a", "GIT_AUTHOR_EMAIL": "a@example.com",
                    "GIT_COMMITTER_NAME": "a", "GIT_COMMITTER_EMAIL": "a@example.com"},
            "settings": {"workspace": "worktree", "max_concurrent_instances": 4}
        }),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    r.json()["id"].as_str().expect("id").to_owned()
}

fn ended(app: &TestApp, id: &str) -> Value {
    app.wait_status(id, "completed", WAIT)
}

#[test]
fn two_instances_edit_the_same_file_in_their_own_worktrees() {
    let app = TestApp::spawn();
    let repo = repository(&app, "repo");
    let agent = agent(&app, "editor", &repo, "echo \"$WHO\" > shared.txt; cat shared.txt");
    let one = app.instance(&agent, json!({"env": {"WHO": "first"}}));
    let two = app.instance(&agent, json!({"env": {"WHO": "second"}}));
    let (one, two) = (ended(&app, one["id"].as_str().expect("id")), ended(&app, two["id"].as_str().expect("id")));
    let (p1, p2) = (one["workspace"]["path"].as_str().expect("path"), two["workspace"]["path"].as_str().expect("path"));
    assert_ne!(p1, p2);
    assert!(p1.starts_with(&app.data_dir().join("worktrees").display().to_string()), "{p1}");
    assert_eq!(std::fs::read_to_string(Path::new(p1).join("shared.txt")).expect("read"), "first\n");
    assert_eq!(std::fs::read_to_string(Path::new(p2).join("shared.txt")).expect("read"), "second\n");
    assert_eq!(std::fs::read_to_string(Path::new(&repo).join("shared.txt")).expect("read"), "original\n");
    let branch = one["workspace"]["branch"].as_str().expect("branch");
    assert!(branch.starts_with("switchboard/editor/"), "{branch}");
    assert_eq!(one["workspace"]["kind"], "worktree");
    assert_eq!(one["workspace"]["base_ref"], "HEAD");
    assert_eq!(
        one["workspace"]["base_commit"].as_str().map(str::trim),
        Some(git(&repo, &["rev-parse", "main"]).trim())
    );
    assert!(one["workspace"].get("repository").is_none(), "the repository is not shown twice");
    // The change is the instance's: the other one's diff shows only its own word.
    let changes = app.get(&format!("/api/instances/{}/changes", two["id"].as_str().expect("id"))).json();
    assert!(changes["diff"].as_str().expect("diff").contains("+second"), "{changes}");
    assert!(!changes["diff"].as_str().expect("diff").contains("first\n+"), "{changes}");
}

#[test]
fn changes_list_commits_edits_untracked_and_binary_files() {
    let app = TestApp::spawn();
    let repo = repository(&app, "repo");
    let script = "echo new > committed.txt && git add committed.txt && git commit -qm 'add committed' \
                  && echo more >> shared.txt && echo fresh > untracked.txt && printf 'a\\000b' > blob.bin";
    let agent = agent(&app, "changer", &repo, script);
    let id = app.instance(&agent, json!({}))["id"].as_str().expect("id").to_owned();
    ended(&app, &id);
    let changes = app.get(&format!("/api/instances/{id}/changes")).json();
    let file = |path: &str| {
        changes["files"].as_array().expect("files").iter().find(|f| f["path"] == path).cloned().unwrap_or(Value::Null)
    };
    assert_eq!(file("committed.txt")["status"], "added", "{changes}");
    assert_eq!(file("shared.txt")["status"], "modified");
    assert_eq!(
        (file("shared.txt")["additions"].as_u64(), file("shared.txt")["deletions"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(file("untracked.txt")["status"], "added");
    assert_eq!(file("blob.bin")["binary"], true);
    assert!(file("blob.bin")["additions"].is_null());
    assert_ne!(changes["head_commit"], changes["base_commit"], "the commit moved the branch");
    assert_eq!(changes["truncated"], false);
    let patch = app.get(&format!("/api/instances/{id}/changes?format=patch"));
    assert_eq!(patch.status, 200);
    assert!(patch.header("content-type").is_some_and(|t| t.starts_with("text/plain")));
    assert!(patch.text.contains("+more") && patch.text.contains("+fresh") && patch.text.contains("Binary files"));
    assert!(!patch.text.contains("a\0b"), "binary contents are not inlined");
    // The user's checkout is untouched: its index and files are as they were.
    assert_eq!(git(&repo, &["status", "--porcelain"]), "");
    let shared = app.agent("plain", &["true"], json!({}));
    let plain = app.instance(&shared, json!({}))["id"].as_str().expect("id").to_owned();
    let none = app.get(&format!("/api/instances/{plain}/changes"));
    assert_eq!((none.status, none.code()), (409, "no_workspace".to_owned()), "{}", none.text);
}

#[test]
fn deleting_never_loses_work_unless_told_to() {
    let app = TestApp::spawn();
    let repo = repository(&app, "repo");
    let dirty = agent(
        &app,
        "dirty",
        &repo,
        "echo wip > notes.txt && echo x > done.txt && git add done.txt && git commit -qm keep",
    );
    let id = app.instance(&dirty, json!({}))["id"].as_str().expect("id").to_owned();
    let instance = ended(&app, &id);
    let (path, branch) =
        (instance["workspace"]["path"].as_str().expect("path"), instance["workspace"]["branch"].as_str().expect("b"));
    let refused = app.delete(&format!("/api/instances/{id}"));
    assert_eq!((refused.status, refused.code()), (409, "workspace_dirty".to_owned()), "{}", refused.text);
    let lost = refused.json()["error"]["lost"][0]["items"].to_string();
    assert!(lost.contains("notes.txt") && lost.contains("keep"), "names the file and the commit: {lost}");
    assert!(Path::new(path).join("notes.txt").exists(), "nothing was removed");
    assert_eq!(app.get(&format!("/api/instances/{id}")).status, 200);
    // Deleting the agent follows the same rule.
    let agent_refused = app.delete(&format!("/api/agents/{dirty}"));
    assert_eq!(
        (agent_refused.status, agent_refused.code()),
        (409, "workspace_dirty".to_owned()),
        "{}",
        agent_refused.text
    );
    assert_eq!(app.get(&format!("/api/agents/{dirty}")).status, 200);

    let discarded = app.delete(&format!("/api/instances/{id}?discard=true"));
    assert_eq!(discarded.status, 204, "{}", discarded.text);
    assert!(!Path::new(path).exists());
    assert!(!git(&repo, &["worktree", "list"]).contains(path));
    assert_eq!(git(&repo, &["branch", "--list", branch]), "");

    // A clean instance leaves nothing behind.
    let clean = agent(&app, "clean", &repo, "cat shared.txt");
    // A spare worktree is made ahead, so a start does not wait for a checkout.
    let spare = app.data_dir().join("worktrees").join(".spare").join(&clean);
    eventually(WAIT, "the agent's spare worktree", || spare.join("shared.txt").exists().then_some(()));
    let id = app.instance(&clean, json!({}))["id"].as_str().expect("id").to_owned();
    let instance = ended(&app, &id);
    let (path, branch) =
        (instance["workspace"]["path"].as_str().expect("path"), instance["workspace"]["branch"].as_str().expect("b"));
    assert!(Path::new(path).exists());
    eventually(WAIT, "a new spare after the start took it", || spare.join("shared.txt").exists().then_some(()));
    assert_eq!(app.delete(&format!("/api/agents/{clean}")).status, 204);
    assert!(!Path::new(path).exists());
    assert!(!spare.exists(), "the agent's spare goes with it");
    assert!(!git(&repo, &["worktree", "list"]).contains(path));
    assert_eq!(git(&repo, &["branch", "--list", branch]), "");
}

#[test]
fn refusals_name_the_path_the_base_and_the_empty_repository() {
    let app = TestApp::spawn();
    let plain = project_dir(&app, "not-a-repo");
    let r =
        app.post("/api/agents", &json!({"name": "a", "project_path": plain, "settings": {"workspace": "worktree"}}));
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(r.json()["error"]["message"].as_str().expect("m").contains(&plain), "{}", r.text);
    let empty = project_dir(&app, "empty-repo");
    git(&empty, &["init", "-q"]);
    let r =
        app.post("/api/agents", &json!({"name": "b", "project_path": empty, "settings": {"workspace": "worktree"}}));
    assert_eq!(r.status, 422);
    assert!(r.text.contains("no commits"), "{}", r.text);
    let repo = repository(&app, "repo");
    let agent = agent(&app, "c", &repo, "true");
    let r = app.post(&format!("/api/agents/{agent}/instances"), &json!({"base": "no-such-branch"}));
    assert_eq!((r.status, r.json()["error"]["field"].clone()), (422, json!("base")), "{}", r.text);
    let r = app.post(&format!("/api/agents/{agent}/instances"), &json!({"base": "--upload-pack=x"}));
    assert_eq!(r.status, 422);
    // A base that exists: the branch starts there.
    git(&repo, &["branch", "older"]);
    std::fs::write(Path::new(&repo).join("later.txt"), "x").expect("write");
    git(&repo, &["add", "later.txt"]);
    git(&repo, &["commit", "-qm", "later"]);
    let id = app.instance(&agent, json!({"base": "older"}))["id"].as_str().expect("id").to_owned();
    let instance = ended(&app, &id);
    assert_eq!(instance["workspace"]["base_ref"], "older");
    assert!(!Path::new(instance["workspace"]["path"].as_str().expect("p")).join("later.txt").exists());
    let shared = app.agent("d", &["true"], json!({}));
    let r = app.post(&format!("/api/agents/{shared}/instances"), &json!({"base": "main"}));
    assert_eq!(r.status, 422, "a base needs a worktree agent: {}", r.text);
}

#[test]
fn a_queued_instance_gets_its_worktree_when_it_starts_and_events_carry_it() {
    let app = TestApp::spawn();
    let repo = repository(&app, "repo");
    let r = app.post(
        "/api/agents",
        &json!({"name": "q", "project_path": repo, "command": ["sh", "-c", "read line"],
                "settings": {"workspace": "worktree", "max_concurrent_instances": 1}}),
    );
    let agent = r.json()["id"].as_str().expect("id").to_owned();
    let first = app.instance(&agent, json!({}))["id"].as_str().expect("id").to_owned();
    app.wait_status(&first, "active", WAIT);
    let queued = app.instance(&agent, json!({}));
    assert_eq!(queued["status"], "idle");
    assert!(queued["workspace"]["base_commit"].is_null(), "planned, not made: {queued}");
    let planned = queued["workspace"]["path"].as_str().expect("path").to_owned();
    assert!(!Path::new(&planned).exists());
    let queued = queued["id"].as_str().expect("id").to_owned();
    app.type_in(&first, "\n");
    let started = app.wait_status(&queued, "active", WAIT);
    assert!(Path::new(&planned).is_dir());
    assert!(started["workspace"]["base_commit"].is_string());
    // Webhook receivers and event followers learn the branch from the events.
    let mut events = SseClient::open(&app, &format!("/api/events?last_event_id=0&instance_id={queued}"), &[]);
    let created = events.expect(WAIT);
    assert_eq!(created.event, "instance.created");
    assert_eq!(created.json()["instance"]["workspace"]["path"], planned.as_str());
    let active = events
        .until("instance.status", WAIT)
        .into_iter()
        .map(|e| e.json())
        .find(|e| e["status"] == "active")
        .expect("the active status event");
    assert_eq!(active["workspace"]["branch"], started["workspace"]["branch"], "{active}");
    assert_eq!(active["workspace"]["base_commit"], started["workspace"]["base_commit"]);
    events.close();
    let changes = app.get(&format!("/api/instances/{queued}/changes"));
    assert_eq!(changes.status, 200, "{}", changes.text);
    app.type_in(&queued, "\n");
    ended(&app, &queued);
}

#[test]
fn worktrees_survive_a_killed_server_and_orphans_are_reported() {
    let mut app = TestApp::spawn();
    let repo = repository(&app, "repo");
    let agent = agent(&app, "survivor", &repo, "echo kept > kept.txt; sleep 600");
    let id = app.instance(&agent, json!({}))["id"].as_str().expect("id").to_owned();
    let path = app.wait_status(&id, "active", WAIT)["workspace"]["path"].as_str().expect("path").to_owned();
    eventually(WAIT, "the file", || Path::new(&path).join("kept.txt").exists().then_some(()));
    app.kill9();
    let app = app.start_again();
    assert_eq!(app.get(&format!("/api/instances/{id}")).json()["status"], "error");
    assert!(Path::new(&path).join("kept.txt").exists(), "the worktree and its work are kept");
    assert!(git(&repo, &["worktree", "list"]).contains(&path));
    let changes = app.get(&format!("/api/instances/{id}/changes")).json();
    assert_eq!(changes["files"][0]["path"], "kept.txt", "{changes}");
    assert_eq!(app.get("/api/workspaces/orphans").json(), json!([]));

    // A worktree whose instance is gone (made by hand here) is an orphan.
    let stray = app.data_dir().join("worktrees").join("stray");
    git(&repo, &["worktree", "add", "-q", "-b", "stray-branch", &stray.display().to_string()]);
    let orphans = app.get("/api/workspaces/orphans").json();
    assert_eq!(orphans[0]["name"], "stray", "{orphans}");
    assert_eq!(orphans[0]["branch"], "stray-branch");
    assert_eq!(app.delete("/api/workspaces/orphans/stray").status, 204);
    assert!(!stray.exists());
    assert!(!git(&repo, &["worktree", "list"]).contains("stray"));
    assert!(git(&repo, &["branch", "--list", "stray-branch"]).contains("stray-branch"), "its branch is kept");
    assert_eq!(app.delete("/api/workspaces/orphans/stray").status, 404);
    assert_eq!(app.delete(&format!("/api/workspaces/orphans/{id}")).status, 404, "an instance's worktree is no orphan");
}
