use serde_json::json;

use crate::helpers::{project_dir, TestApp};

#[test]
fn an_agent_gets_defaults_and_inline_settings() {
    let app = TestApp::spawn();
    let dir = project_dir(&app, "proj");
    let r = app.post(
        "/api/agents",
        &json!({"name": "claude-1", "project_path": dir, "settings": {"auto_start": true, "idle_ms": 800, "prompt_patterns": ["\\$ $"]}}),
    );
    assert_eq!(r.status, 201, "{}", r.text);
    let agent = r.json();
    assert_eq!(agent["command"], json!(["bash"]));
    assert_eq!(agent["env"], json!({}));
    assert_eq!(agent["description"], "");
    assert_eq!(
        agent["settings"],
        json!({"auto_start": true, "notification_enabled": true, "max_concurrent_instances": 1,
               "prompt_patterns": ["\\$ $"], "idle_ms": 800, "settings_json": {}, "has_trigger_secret": false,
               "trigger_env": [], "workspace": "shared",
               "limits": {"memory_mb": null, "cpu_percent": null, "pids": null, "open_files": null},
               "sandbox": {"enabled": false, "writable": [], "network": true, "required": false},
               "integration": "none", "approvals": [], "runner": {"kind": "local"}})
    );
    let id = agent["id"].as_str().expect("id");
    assert_eq!(uuid::Uuid::parse_str(id).expect("uuid").get_version_num(), 4);
    assert_eq!(app.get(&format!("/api/agents/{id}")).json(), agent);
    assert_eq!(app.get("/api/agents").json(), json!([agent]));
    assert_eq!(app.get(&format!("/api/agents/{id}/instances")).json(), json!([]));
}

#[test]
fn project_paths_are_stored_canonical_and_must_be_existing_directories() {
    let app = TestApp::spawn();
    let real = project_dir(&app, "real");
    let link = app.root.path().join("link");
    std::os::unix::fs::symlink(&real, &link).expect("symlink");
    let via_link = app.post("/api/agents", &json!({"name": "a", "project_path": link}));
    assert_eq!(via_link.json()["project_path"], real, "symlinks are resolved");
    let dotted = app.post("/api/agents", &json!({"name": "b", "project_path": format!("{real}/../real/.")}));
    assert_eq!(dotted.json()["project_path"], real);

    let file = app.root.path().join("file.txt");
    std::fs::write(&file, "x").expect("write");
    let to_file = app.root.path().join("to-file");
    std::os::unix::fs::symlink(&file, &to_file).expect("symlink");
    let dangling = app.root.path().join("dangling");
    std::os::unix::fs::symlink(app.root.path().join("gone"), &dangling).expect("symlink");
    let looped = app.root.path().join("loop");
    std::os::unix::fs::symlink(&looped, &looped).expect("symlink");
    for bad in [
        json!("relative/path"),
        json!("/no/such/dir"),
        json!(file),
        json!(""),
        json!(to_file),
        json!(dangling),
        json!(looped),
        json!(format!("{real}/../../../../../../../../no-such-top-level-dir")),
    ] {
        let r = app.post("/api/agents", &json!({"name": "c", "project_path": bad}));
        assert_eq!(r.status, 422, "{bad}: {}", r.text);
        assert_eq!(r.json()["error"]["field"], "project_path");
    }
}

#[test]
fn re_pointing_a_symlink_later_does_not_move_an_agent() {
    let app = TestApp::spawn();
    let (first, second) = (project_dir(&app, "first"), project_dir(&app, "second"));
    let link = app.root.path().join("current");
    std::os::unix::fs::symlink(&first, &link).expect("symlink");
    let agent = app.post("/api/agents", &json!({"name": "pinned", "project_path": link, "command": ["pwd"]}));
    assert_eq!(agent.status, 201, "{}", agent.text);
    std::fs::remove_file(&link).expect("unlink");
    std::os::unix::fs::symlink(&second, &link).expect("re-point");
    let id = agent.json()["id"].as_str().expect("id").to_owned();
    let instance = app.instance(&id, json!({}))["id"].as_str().expect("id").to_owned();
    app.wait_status(&instance, "completed", std::time::Duration::from_secs(20));
    let out = app.output(&instance);
    assert!(out.contains(&first) && !out.contains(&second), "runs where it was created: {out:?}");
}

#[test]
fn invalid_agents_are_refused_with_the_field_named() {
    let app = TestApp::spawn();
    let dir = project_dir(&app, "p");
    let cases = [
        (json!({"name": "has space", "project_path": dir}), "name"),
        (json!({"name": "", "project_path": dir}), "name"),
        (json!({"name": "x".repeat(65), "project_path": dir}), "name"),
        (json!({"name": "ok", "project_path": dir, "command": "bash -l"}), "command"),
        (json!({"name": "ok", "project_path": dir, "command": []}), "command"),
        (json!({"name": "ok", "project_path": dir, "command": ["bash", 1]}), "command"),
        (json!({"name": "ok", "project_path": dir, "env": {"A": 1}}), "env.A"),
        (json!({"name": "ok", "project_path": dir, "env": {"SWITCHBOARD_TOKEN": "x"}}), "env.SWITCHBOARD_TOKEN"),
        (
            json!({"name": "ok", "project_path": dir, "settings": {"max_concurrent_instances": 0}}),
            "settings.max_concurrent_instances",
        ),
        (json!({"name": "ok", "project_path": dir, "settings": {"idle_ms": 5}}), "settings.idle_ms"),
        (
            json!({"name": "ok", "project_path": dir, "settings": {"prompt_patterns": ["("]}}),
            "settings.prompt_patterns[0]",
        ),
        (json!({"name": "ok", "project_path": dir, "settings": {"colour": 1}}), "colour"),
        (json!({"name": "ok", "project_path": dir, "settings": {"settings_json": [1]}}), "settings.settings_json"),
    ];
    for (body, field) in cases {
        let r = app.post("/api/agents", &body);
        assert_eq!(r.status, 422, "{body}: {}", r.text);
        let error = &r.json()["error"];
        assert_eq!(
            error["field"].as_str().map(|f| f.trim_start_matches("settings.")),
            Some(field.trim_start_matches("settings.")),
            "{body}: {}",
            r.text
        );
    }
    assert_eq!(app.get("/api/agents").json(), json!([]), "nothing was stored");
}

#[test]
fn names_are_unique() {
    let app = TestApp::spawn();
    let dir = project_dir(&app, "p");
    assert_eq!(app.post("/api/agents", &json!({"name": "twin", "project_path": dir})).status, 201);
    let r = app.post("/api/agents", &json!({"name": "twin", "project_path": dir}));
    assert_eq!(r.status, 409);
    assert_eq!(r.code(), "conflict");
    assert!(r.text.contains("twin"));

    let other = app.post("/api/agents", &json!({"name": "other", "project_path": dir})).json();
    let r = app.put(&format!("/api/agents/{}", other["id"].as_str().expect("id")), &json!({"name": "twin"}));
    assert_eq!(r.status, 409, "renaming onto a taken name");
    assert_eq!(app.get(&format!("/api/agents/{}", other["id"].as_str().expect("id"))).json()["name"], "other");
}

#[test]
fn partial_updates_change_only_given_fields_and_merge_settings() {
    let app = TestApp::spawn();
    let dir = project_dir(&app, "p");
    let dir2 = project_dir(&app, "p2");
    let agent = app
        .post(
            "/api/agents",
            &json!({"name": "a", "project_path": dir, "description": "d", "command": ["python3", "-q"],
                     "env": {"X": "1"}, "settings": {"idle_ms": 700, "max_concurrent_instances": 3}}),
        )
        .json();
    let path = format!("/api/agents/{}", agent["id"].as_str().expect("id"));

    let r = app.put(&path, &json!({"project_path": dir2, "settings": {"auto_start": true}}));
    assert_eq!(r.status, 200, "{}", r.text);
    let changed = r.json();
    assert_eq!(changed["project_path"], dir2);
    assert_eq!(changed["description"], "d");
    assert_eq!(changed["command"], json!(["python3", "-q"]));
    assert_eq!(changed["env"], json!({"X": "1"}));
    assert_eq!(changed["settings"]["auto_start"], true);
    assert_eq!(changed["settings"]["idle_ms"], 700, "settings merge");
    assert_eq!(changed["settings"]["max_concurrent_instances"], 3);

    let cleared = app.put(&path, &json!({"settings": {"idle_ms": null}})).json();
    assert_eq!(cleared["settings"]["idle_ms"], json!(null), "null resets to the default");
    assert_eq!(cleared["settings"]["auto_start"], true);

    let refused = app.put(&path, &json!({"command": "rm -rf /", "description": "new"}));
    assert_eq!(refused.status, 422);
    assert_eq!(app.get(&path).json()["description"], "d", "a refused update changes nothing");
}

#[test]
fn the_trigger_secret_is_write_only() {
    let app = TestApp::spawn();
    let dir = project_dir(&app, "p");
    let secret = "s3cret-trigger-value-42";
    let r = app.post("/api/agents", &json!({"name": "a", "project_path": dir, "settings": {"trigger_secret": secret}}));
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(!r.text.contains(secret));
    assert_eq!(r.json()["settings"]["has_trigger_secret"], true);
    let path = format!("/api/agents/{}", r.json()["id"].as_str().expect("id"));
    for text in [app.get(&path).text, app.get("/api/agents").text] {
        assert!(!text.contains(secret), "secret leaked: {text}");
    }
    let removed = app.put(&path, &json!({"settings": {"trigger_secret": null}})).json();
    assert_eq!(removed["settings"]["has_trigger_secret"], false);
    assert!(!app.log().contains(secret), "secret in the log");
}

#[test]
fn deleting_an_agent_removes_it() {
    let app = TestApp::spawn();
    let dir = project_dir(&app, "p");
    let id = app.post("/api/agents", &json!({"name": "gone", "project_path": dir})).json()["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(app.delete(&format!("/api/agents/{id}")).status, 204);
    assert_eq!(app.get(&format!("/api/agents/{id}")).status, 404);
    assert_eq!(app.get(&format!("/api/agents/{id}/instances")).status, 404);
    assert_eq!(app.delete(&format!("/api/agents/{id}")).status, 404);
    assert_eq!(app.get("/api/agents/not-a-uuid").status, 404);
    assert_eq!(
        app.post("/api/agents", &json!({"name": "gone", "project_path": dir})).status,
        201,
        "the name is free again"
    );
}
