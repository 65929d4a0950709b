//! Security probes, kept so the holes they found stay closed: every spelling of
//! every API path needs credentials, an instance token stays in its own instance
//! whatever the spelling, idempotency keys see through spellings, client-chosen
//! methods do not grow the metrics, sessions end on the server, and rotating
//! loopback source addresses does not get around the failure limit.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{Resp, TestApp, TOKEN};

/// Other spellings of `path` (which starts with `/api/`): percent escapes of
/// letters anywhere, double encoding, mixed case, doubled and trailing slashes,
/// dot segments.
fn spellings(path: &str) -> Vec<String> {
    let rest = path.strip_prefix("/api").expect("an API path");
    let escape_first = |segment: &str| match segment.chars().next() {
        Some(c) if c.is_ascii_alphanumeric() => format!("%{:02X}{}", c as u32, &segment[1..]),
        _ => segment.to_owned(),
    };
    let every_segment: Vec<String> = path.split('/').map(escape_first).collect();
    vec![
        path.to_owned(),
        format!("/%61pi{rest}"),
        format!("/a%70i{rest}"),
        format!("/%61%70%69{rest}"),
        format!("/%61%70%69{}", rest.replace('s', "%73")),
        every_segment.join("/"),
        format!("/%2561pi{rest}"),
        format!("/API{rest}"),
        format!("/Api{rest}"),
        format!("//api{rest}"),
        format!("/api/{rest}"),
        format!("{path}/"),
        format!("/api/.{rest}"),
        format!("/x/../api{rest}"),
        format!("/api/%2e{rest}"),
        format!("/api{rest}?x=1"),
        format!("/api%2F{}", rest.trim_start_matches('/')),
    ]
}

fn unauthenticated(app: &TestApp, method: &str, path: &str) -> Resp {
    let body = if method == "POST" || method == "PUT" { b"{}".as_slice() } else { b"" };
    app.raw_request(method, path, "Content-Type: application/json\r\n", body)
}

/// The answer of the default service: no handler ran.
fn unrouted(r: &Resp) -> bool {
    r.status == 404 && r.json()["error"]["message"].as_str().is_some_and(|m| m.starts_with("no route"))
}

#[test]
fn no_spelling_of_any_api_operation_reaches_a_handler_without_credentials() {
    let app = TestApp::spawn();
    let doc = app.get("/api/openapi.json").json();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        if !path.starts_with("/api/") {
            continue;
        }
        for (method, op) in item.as_object().expect("item") {
            // The session exchange and signed triggers are open by design (their
            // own checks are tested where they are).
            let open = op["security"]
                .as_array()
                .is_some_and(|s| s.iter().any(|r| r.as_object().is_some_and(serde_json::Map::is_empty)));
            if open {
                continue;
            }
            let concrete = path.replace("{id}", "00000000-0000-4000-8000-000000000000").replace("{name}", "ci");
            let method = method.to_uppercase();
            for spelling in spellings(&concrete) {
                let r = unauthenticated(&app, &method, &spelling);
                assert!(
                    r.status == 401 || unrouted(&r),
                    "{method} {spelling} (for {path}) answered {} without credentials: {}",
                    r.status,
                    r.text
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 400, "{checked} requests");
    // The spellings are live: with the token, the router serves them.
    for spelling in ["/%61pi/tasks", "/api/t%61sks", "/%61%70%69/agents"] {
        let r = app.get(spelling);
        assert_eq!(r.status, 200, "{spelling}: {}", r.text);
    }
    assert_eq!(unauthenticated(&app, "GET", "/%61pi/events?last_event_id=0").status, 401);
}

#[test]
fn an_instance_token_stays_in_its_own_instance_whatever_the_spelling() {
    let app = TestApp::spawn();
    // The instance calls the API with its own token over bash's /dev/tcp.
    let script = r#"
ask() {
  exec 3<>/dev/tcp/127.0.0.1/${SWITCHBOARD_URL##*:}
  printf '%s %s HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nAuthorization: Bearer %s\r\nContent-Length: 2\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n{}' \
    "$1" "$2" "${SWITCHBOARD_URL##*:}" "$SWITCHBOARD_INSTANCE_TOKEN" >&3
  read -r _ code _ <&3
  echo "$3=$code"
  exec 3<&-
}
ask GET /%61pi/tasks tasks
ask GET /%61pi/agents agents
ask POST /%61pi/instances/$SWITCHBOARD_INSTANCE_ID/input input
ask GET /%61pi/instances/$SWITCHBOARD_INSTANCE_ID own
ask GET /api/instances/${SWITCHBOARD_INSTANCE_ID^^} own-upper
echo probes-done
sleep 30
"#;
    let agent = app.agent("prober", &["bash", "-c", script], json!({}));
    let id = app.instance(&agent, json!({}))["id"].as_str().expect("id").to_owned();
    let out = app.wait_output(&id, "probes-done", Duration::from_secs(20));
    for (what, code) in [("tasks", 403), ("agents", 403), ("input", 403), ("own", 200), ("own-upper", 200)] {
        assert!(out.contains(&format!("{what}={code}")), "{what} should answer {code}: {out}");
    }
}

#[test]
fn an_idempotency_key_sees_through_another_spelling_of_the_path() {
    let app = TestApp::spawn();
    let agent = app.agent("typist", &["bash", "-c", "cat"], json!({}));
    let id = app.instance(&agent, json!({}))["id"].as_str().expect("id").to_owned();
    let send = |path: &str| {
        let body = br#"{"content": "only once"}"#;
        app.raw_api("POST", path, "Content-Type: application/json\r\nIdempotency-Key: k-1\r\n", body)
    };
    let first = send(&format!("/api/instances/{id}/messages"));
    assert_eq!(first.status, 201, "{}", first.text);
    let again = send(&format!("/%61pi/instances/{}/m%65ssages", id.to_uppercase()));
    assert_eq!(again.status, 201, "{}", again.text);
    assert_eq!(again.header("idempotent-replayed"), Some("true"), "{}", again.text);
    let messages = app.get(&format!("/api/instances/{id}/messages")).json();
    assert_eq!(messages.as_array().expect("list").len(), 1, "{messages}");
}

#[test]
fn client_chosen_methods_and_paths_do_not_grow_the_metrics() {
    let app = TestApp::spawn();
    let before = app.get_with("/metrics", &[]).text.len();
    for n in 0..200 {
        let method = format!("M{n}{}", "X".repeat(2000));
        let r = app.raw(
            format!("{method} /x{n}/y HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\n\r\n", app.port)
                .as_bytes(),
        );
        assert!(r.status == 404 || r.status == 405 || r.status == 400, "{}", r.status);
        app.get_with(&format!("/api/tasks/{n}"), &[]);
    }
    let metrics = app.get_with("/metrics", &[]).text;
    assert!(!metrics.contains("XXXX"), "a client's method is never a label");
    assert!(!metrics.contains("/x1/"), "a raw path is never a label");
    assert!(metrics.contains(r#"method="other""#), "{metrics}");
    assert!(metrics.len() < before + 20_000, "{} bytes after, {before} before", metrics.len());
}

fn sign_in(app: &TestApp) -> String {
    let r = app.raw_api(
        "POST",
        "/api/session",
        "Content-Type: application/json\r\n",
        json!({"token": TOKEN}).to_string().as_bytes(),
    );
    assert_eq!(r.status, 204, "{}", r.text);
    r.header("set-cookie").expect("cookie").split(';').next().expect("pair").to_owned()
}

#[test]
fn signing_out_ends_the_session_on_the_server_and_all_can_end_at_once() {
    let app = TestApp::spawn();
    let first = sign_in(&app);
    let second = sign_in(&app);
    assert_ne!(first, second, "each sign-in is a session of its own");
    let with = |cookie: &str| app.get_with("/api/tasks", &[("Cookie", cookie)]).status;
    assert_eq!(with(&first), 200);

    // Signing out ends that session: a copy of the cookie kept elsewhere stops working.
    let out = app.raw_request("DELETE", "/api/session", &format!("Cookie: {first}\r\n"), b"");
    assert_eq!(out.status, 204, "{}", out.text);
    assert_eq!(with(&first), 401);
    assert_eq!(with(&second), 200, "other sessions go on");
    let status = app.get_with("/api/session", &[("Cookie", first.as_str())]).json();
    assert_eq!(status["signed_in"], false);

    // Sessions outlive a restart, and all of them can be ended at once.
    let third = sign_in(&app);
    let app = app.restart();
    assert_eq!(app.get_with("/api/tasks", &[("Cookie", second.as_str())]).status, 200);
    let ended = app.delete("/api/sessions");
    assert_eq!(ended.status, 200, "{}", ended.text);
    assert_eq!(ended.json()["ended"], 2);
    for cookie in [&second, &third] {
        assert_eq!(app.get_with("/api/tasks", &[("Cookie", cookie.as_str())]).status, 401);
    }
    let anonymous = app.raw_request("DELETE", "/api/sessions", "", b"");
    assert_eq!(anonymous.status, 401, "ending every session needs credentials");
}

/// Sends a request from `source` (a loopback address of 127.0.0.0/8) with python3,
/// which can bind the source address; returns the status.
fn from_source(app: &TestApp, source: &str, path: &str, authorization: &str) -> u16 {
    let program = format!(
        "import socket\ns=socket.socket()\ns.bind(('{source}',0))\ns.connect(('127.0.0.1',{port}))\n\
         s.sendall(b'GET {path} HTTP/1.1\\r\\nHost: 127.0.0.1:{port}\\r\\nAuthorization: {authorization}\\r\\nConnection: close\\r\\n\\r\\n')\n\
         print(s.recv(64).split(b' ')[1].decode())",
        port = app.port
    );
    let out = std::process::Command::new("python3").args(["-c", &program]).output().expect("python3");
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or_else(|_| panic!("{out:?}"))
}

#[test]
fn rotating_loopback_source_addresses_does_not_get_around_the_failure_limit() {
    let app = TestApp::spawn();
    for n in 0..10 {
        let status = from_source(&app, &format!("127.0.0.{}", n + 2), "/api/tasks", "Bearer wrong-token-wrong-token");
        assert_eq!(status, 401, "attempt {n}");
    }
    assert_eq!(from_source(&app, "127.0.0.77", "/api/tasks", "Bearer another-wrong-token"), 429);
}

#[test]
fn a_negative_resume_position_is_refused() {
    let app = TestApp::spawn();
    let agent = app.agent("resumer", &["bash", "-c", "sleep 30"], json!({}));
    let id = app.instance(&agent, json!({}))["id"].as_str().expect("id").to_owned();
    for bad in ["5:-9223372036854775808", "0:-1", "-1:0", "5:+3"] {
        let r = app.get(&format!("/api/instances/{id}/stream?last_event_id={bad}"));
        assert_eq!(r.status, 422, "{bad}: {}", r.text);
    }
}

#[test]
fn a_webhook_may_not_call_this_server() {
    let app = TestApp::spawn();
    for url in [
        format!("http://127.0.0.1:{}/api/tasks", app.port),
        format!("http://localhost:{}/", app.port),
        format!("http://127.1.2.3:{}/", app.port),
        format!("http://[::1]:{}/", app.port),
    ] {
        let r = app.post("/api/webhooks", &json!({"url": url}));
        assert_eq!(r.status, 422, "{url}: {}", r.text);
        assert_eq!(r.json()["error"]["field"], "url");
    }
    let elsewhere =
        app.post("/api/webhooks", &json!({"url": format!("http://127.0.0.1:{}/", app.port.wrapping_add(1).max(1))}));
    assert_eq!(elsewhere.status, 201, "{}", elsewhere.text);
    let id = elsewhere.json()["id"].as_str().expect("id").to_owned();
    let moved = app.put(&format!("/api/webhooks/{id}"), &json!({"url": format!("http://localhost:{}/x", app.port)}));
    assert_eq!(moved.status, 422, "{}", moved.text);
}
