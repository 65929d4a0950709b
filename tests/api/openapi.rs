use serde_json::Value;

use crate::helpers::TestApp;

#[test]
fn every_documented_operation_is_served() {
    let app = TestApp::spawn();
    let doc = app.get("/api/openapi.json");
    assert_eq!(doc.status, 200);
    let doc = doc.json();
    assert!(doc["openapi"].as_str().expect("version").starts_with("3."));
    let paths = doc["paths"].as_object().expect("paths");
    let mut operations = 0;
    for (path, item) in paths {
        for method in item.as_object().expect("item").keys() {
            let concrete = path.replace("{id}", "00000000-0000-4000-8000-000000000000");
            let body = serde_json::json!({});
            let streaming = path == "/api/events" || path.ends_with("/stream");
            if streaming {
                let stream = crate::sse_client::SseClient::open(&app, &concrete, &[]);
                assert!(stream.status == 200 || stream.status == 404, "{path}: {}", stream.status);
                stream.close();
                operations += 1;
                continue;
            }
            let r = match method.as_str() {
                "get" => app.get(&concrete),
                "post" => app.post(&concrete, &body),
                "put" => app.put(&concrete, &body),
                "delete" => app.delete(&concrete),
                other => panic!("unexpected method {other}"),
            };
            assert!(r.status < 500, "{method} {path}: {}", r.status);
            let unrouted =
                r.status == 404 && r.json()["error"]["message"].as_str().is_some_and(|m| m.starts_with("no route"));
            assert!(!unrouted, "{method} {path} is documented but not routed");
            operations += 1;
        }
    }
    let ids: Vec<&str> = paths
        .values()
        .flat_map(|i| i.as_object().expect("item").values())
        .filter_map(|op| op["operationId"].as_str())
        .collect();
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "operation ids are unique: {ids:?}");
    for required in [
        "/api/tasks",
        "/api/tasks/{id}",
        "/api/agents",
        "/api/agents/{id}",
        "/api/agents/{id}/instances",
        "/api/session",
        "/healthz",
    ] {
        assert!(paths.contains_key(required), "{required} is documented");
    }
    assert!(operations >= 16, "{operations}");
    assert!(matches!(doc["components"]["securitySchemes"]["bearer"]["scheme"], Value::String(ref s) if s == "bearer"));
}

#[test]
fn every_operation_is_in_the_api_reference_in_the_repository() {
    let app = TestApp::spawn();
    let doc = app.get("/api/openapi.json").json();
    let reference = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/api.md")).expect("docs/api.md");
    let mut missing = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let written = path.replace('{', ":").replace('}', "");
        for method in item.as_object().expect("item").keys() {
            let row = format!("| {} | {written}", method.to_uppercase());
            let listed = reference
                .lines()
                .any(|line| line.strip_prefix(&row).is_some_and(|rest| rest.starts_with([' ', '?', '|'])));
            if !listed {
                missing.push(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    assert!(missing.is_empty(), "docs/api.md lacks a table row for: {missing:?}");
}

#[test]
fn a_known_path_with_another_method_is_405_with_allow() {
    let app = TestApp::spawn();
    let wrong = app.raw_api("DELETE", "/api/tasks", "", b"");
    assert_eq!(wrong.status, 405, "{}", wrong.text);
    assert_eq!(wrong.header("allow"), Some("GET, POST"));
    assert_eq!(wrong.code(), "method_not_allowed");
    let patch = app.raw_api("PATCH", "/api/tasks/1", "", b"");
    assert_eq!((patch.status, patch.header("allow")), (405, Some("GET, PUT, DELETE")), "{}", patch.text);
    let health = app.raw_request("POST", "/healthz", "", b"");
    assert_eq!((health.status, health.header("allow")), (405, Some("GET")));
    assert_eq!(app.raw_api("GET", "/api/nothing-here", "", b"").status, 404);
    assert_eq!(app.raw_request("DELETE", "/api/tasks", "", b"").status, 401, "credentials are checked first");
}
