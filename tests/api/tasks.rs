use serde_json::json;

use crate::helpers::TestApp;

#[test]
fn a_task_is_created_read_listed_updated_and_deleted() {
    let app = TestApp::spawn();
    let created = app.post("/api/tasks", &json!({"title": "  Write the README  ", "description": "with examples"}));
    assert_eq!(created.status, 201, "{}", created.text);
    let task = created.json();
    assert_eq!(task["title"], "Write the README", "title is trimmed");
    assert_eq!(task["status"], "pending");
    assert_eq!(task["priority"], "medium");
    assert!(task["created_at"].as_str().expect("ts").ends_with('Z'));
    let id = task["id"].as_i64().expect("integer id");

    assert_eq!(app.get(&format!("/api/tasks/{id}")).json(), task);

    std::thread::sleep(std::time::Duration::from_millis(5));
    let updated = app.put(&format!("/api/tasks/{id}"), &json!({"status": "in_progress"}));
    assert_eq!(updated.status, 200, "{}", updated.text);
    let updated = updated.json();
    assert_eq!(updated["status"], "in_progress");
    assert_eq!(updated["title"], "Write the README", "fields not given are unchanged");
    assert_eq!(updated["description"], "with examples");
    assert!(updated["updated_at"].as_str() > task["updated_at"].as_str(), "updated_at moves");
    assert_eq!(updated["created_at"], task["created_at"]);

    assert_eq!(app.delete(&format!("/api/tasks/{id}")).status, 204);
    assert_eq!(app.get(&format!("/api/tasks/{id}")).status, 404);
    assert_eq!(app.delete(&format!("/api/tasks/{id}")).status, 404);
}

#[test]
fn task_lists_are_newest_first_filtered_and_paged() {
    let app = TestApp::spawn();
    for (title, priority, status) in [("a", "low", "pending"), ("b", "high", "done"), ("c", "high", "pending")] {
        let r = app.post("/api/tasks", &json!({"title": title, "priority": priority, "status": status}));
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let titles = |path: &str| -> Vec<String> {
        let r = app.get(path);
        assert_eq!(r.status, 200, "{path}: {}", r.text);
        r.json().as_array().expect("array").iter().map(|t| t["title"].as_str().expect("title").to_owned()).collect()
    };
    assert_eq!(titles("/api/tasks"), ["c", "b", "a"]);
    assert_eq!(titles("/api/tasks?priority=high"), ["c", "b"]);
    assert_eq!(titles("/api/tasks?priority=high&status=pending"), ["c"]);
    assert_eq!(titles("/api/tasks?limit=1&offset=1"), ["b"]);
    assert_eq!(titles("/api/tasks?offset=5"), Vec::<String>::new());

    for bad in [
        "/api/tasks?status=later",
        "/api/tasks?priority=urgent",
        "/api/tasks?limit=0",
        "/api/tasks?limit=1001",
        "/api/tasks?offset=-1",
    ] {
        let r = app.get(bad);
        assert_eq!(r.status, 422, "{bad}: {}", r.text);
        assert_eq!(r.code(), "validation_failed");
    }
}

#[test]
fn invalid_tasks_are_refused_with_the_field_named_and_nothing_changes() {
    let app = TestApp::spawn();
    let cases = [
        (json!({"title": "   "}), "title"),
        (json!({"title": "x".repeat(201)}), "title"),
        (json!({"description": "no title"}), "title"),
        (json!({"title": 7}), "title"),
        (json!({"title": "ok", "priority": "urgent"}), "priority"),
        (json!({"title": "ok", "status": "finished"}), "status"),
        (json!({"title": "ok", "owner": "me"}), "owner"),
    ];
    for (body, field) in cases {
        let r = app.post("/api/tasks", &body);
        assert_eq!(r.status, 422, "{body}: {}", r.text);
        assert_eq!(r.json()["error"]["field"], field, "{body}: {}", r.text);
        assert!(r.json()["error"]["message"].as_str().expect("message").contains(field));
    }
    assert_eq!(app.get("/api/tasks").json(), json!([]), "nothing was stored");

    let id = app.post("/api/tasks", &json!({"title": "keep"})).json()["id"].clone();
    let r = app.put(&format!("/api/tasks/{id}"), &json!({"title": "", "status": "done"}));
    assert_eq!(r.status, 422);
    let task = app.get(&format!("/api/tasks/{id}")).json();
    assert_eq!(
        (task["title"].as_str(), task["status"].as_str()),
        (Some("keep"), Some("pending")),
        "a refused update changes nothing"
    );
}

#[test]
fn unknown_and_malformed_task_ids_are_not_found() {
    let app = TestApp::spawn();
    for path in ["/api/tasks/999", "/api/tasks/abc", "/api/tasks/1.5"] {
        let r = app.get(path);
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.code(), "not_found");
    }
    assert_eq!(app.put("/api/tasks/999", &json!({"title": "x"})).status, 404);
}

#[test]
fn ending_many_task_bound_instances_at_once_stores_every_task_promptly() {
    // Forty instances, each working on a task, all ended at once by SIGTERM: every
    // end moves its task, which needs both databases. The pools hold 8 connections
    // each; nothing may wait for a second connection while holding one.
    let mut app = TestApp::spawn();
    let dir = crate::helpers::project_dir(&app, "workers");
    let agent = app.post(
        "/api/agents",
        &json!({"name": "worker", "project_path": dir, "command": ["sleep", "300"], "settings": {"max_concurrent_instances": 40}}),
    );
    let agent = agent.json()["id"].as_str().expect("agent").to_owned();
    let tasks: Vec<i64> = (0..40)
        .map(|n| {
            let task =
                app.post("/api/tasks", &json!({"title": format!("task {n}")})).json()["id"].as_i64().expect("id");
            let run = app.post(&format!("/api/tasks/{task}/run"), &json!({"agent_id": agent}));
            assert_eq!(run.status, 201, "{}", run.text);
            task
        })
        .collect();
    assert!(app.stop().success(), "the server stops within the helper's 20 s");
    let app = app.start_again();
    for task in tasks {
        assert_eq!(app.get(&format!("/api/tasks/{task}")).json()["status"], "failed", "task {task}");
    }
}
