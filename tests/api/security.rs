use std::time::Duration;

use serde_json::json;

use crate::helpers::{TestApp, TOKEN};

#[test]
fn the_api_needs_the_token_but_health_and_the_shell_do_not() {
    let app = TestApp::spawn();
    let missing = app.get_with("/api/tasks", &[]);
    assert_eq!(missing.status, 401);
    assert_eq!(missing.code(), "unauthorized");
    assert_eq!(missing.header("www-authenticate"), Some("Bearer"));
    let wrong = app.get_with("/api/tasks", &[("Authorization", "Bearer wrong-token-wrong-token")]);
    assert_eq!(wrong.status, 401);
    assert!(!wrong.text.contains(TOKEN));
    let basic = app.get_with("/api/agents", &[("Authorization", "Basic dXNlcjpwYXNz")]);
    assert_eq!(basic.status, 401);
    assert_eq!(app.get_with("/api/openapi.json", &[]).status, 401);
    assert_eq!(app.get_with("/api/unknown", &[]).status, 401, "unknown API paths reveal nothing");

    assert_eq!(app.get_with("/healthz", &[]).json()["status"], "ok");
    let shell = app.get_with("/", &[]);
    assert_eq!(shell.status, 200);
    assert!(shell.header("content-type").unwrap_or("").starts_with("text/html"));
    assert_eq!(app.get("/api/tasks").status, 200);
}

#[test]
fn the_token_is_exchanged_for_a_strict_http_only_cookie() {
    let app = TestApp::spawn();
    let post = |token: &str| {
        app.raw_api(
            "POST",
            "/api/session",
            "Content-Type: application/json\r\n",
            json!({"token": token}).to_string().as_bytes(),
        )
    };
    let refused = post("not-the-token-at-all");
    assert_eq!(refused.status, 401);
    assert!(refused.header("set-cookie").is_none());

    let ok = post(TOKEN);
    assert_eq!(ok.status, 204, "{}", ok.text);
    let cookie = ok.header("set-cookie").expect("cookie set").to_owned();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Strict"), "{cookie}");
    assert!(!cookie.contains(TOKEN), "the cookie is not the token itself");
    let pair = cookie.split(';').next().expect("name=value");

    assert_eq!(app.get_with("/api/tasks", &[("Cookie", pair)]).status, 200);
    assert_eq!(app.get_with("/api/tasks", &[("Cookie", "switchboard_session=forged")]).status, 401);

    let out = app.raw_api("DELETE", "/api/session", "", b"");
    assert_eq!(out.status, 204);
    assert!(out.header("set-cookie").expect("removal").contains("Max-Age=0"));
}

#[test]
fn a_generated_token_is_kept_private_never_printed_and_reused() {
    use std::os::unix::fs::PermissionsExt;
    let app = TestApp::spawn_with(&[]);
    let token_file = app.data_dir().join("token");
    let mode = std::fs::metadata(&token_file).expect("token file").permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let token = app.token.clone().expect("token");
    assert!(token.len() >= 43, "at least 256 bits");
    // The printed address carries a one-time sign-in code, never the token.
    assert!(app.dashboard_line.contains("/#login=sbl_"), "{}", app.dashboard_line);
    assert!(!app.dashboard_line.contains(&token), "{}", app.dashboard_line);
    assert_eq!(app.get("/api/tasks").status, 200);
    assert!(!app.log().contains(&token), "the token is never logged");
    let app = app.restart();
    assert_eq!(app.token.as_deref(), Some(token.as_str()), "reused after restart");
    assert_eq!(app.get("/api/tasks").status, 200);
}

#[test]
fn no_auth_on_loopback_opens_the_api() {
    let app = TestApp::spawn_with(&["--no-auth"]);
    assert_eq!(app.get_with("/api/tasks", &[]).status, 200);
    assert!(!app.dashboard_line.contains("token="));
}

fn host(app: &TestApp, host: &str) -> u16 {
    app.raw(
        format!(
            "GET /api/tasks HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    )
    .status
}

#[test]
fn only_this_servers_own_host_names_are_answered() {
    let app = TestApp::spawn_with(&["--token", TOKEN, "--allow-host", "switchboard.internal"]);
    let p = app.port;
    for ok in [
        format!("127.0.0.1:{p}"),
        format!("localhost:{p}"),
        format!("LOCALHOST:{p}"),
        format!("[::1]:{p}"),
        format!("switchboard.internal:{p}"),
    ] {
        assert_eq!(host(&app, &ok), 200, "{ok}");
    }
    for bad in [
        "evil.example".to_owned(),
        format!("evil.example:{p}"),
        format!("localhost.evil.example:{p}"),
        format!("localhost:{}", p.wrapping_add(1)),
        "localhost".to_owned(),
        format!("127.0.0.1.nip.io:{p}"),
        format!("switchboard.internal.evil:{p}"),
    ] {
        assert_eq!(host(&app, &bad), 403, "{bad}");
    }
    let no_host = app.raw(format!("GET /healthz HTTP/1.0\r\nAuthorization: Bearer {TOKEN}\r\n\r\n").as_bytes());
    assert_eq!(no_host.status, 403, "a request without Host is refused");
    let healthz = app.raw(b"GET /healthz HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n");
    assert_eq!(healthz.status, 403, "open endpoints are protected from rebinding too");
}

#[test]
fn cross_origin_requests_are_refused_unless_configured() {
    let app = TestApp::spawn_with(&["--token", TOKEN, "--allow-origin", "http://tools.example:9000"]);
    let p = app.port;
    let origin = |o: &str| app.raw_api("GET", "/api/tasks", &format!("Origin: {o}\r\n"), b"").status;
    assert_eq!(origin(&format!("http://127.0.0.1:{p}")), 200, "same origin");
    assert_eq!(origin("http://tools.example:9000"), 200, "configured");
    for bad in [
        "null".to_owned(),
        "http://evil.example".to_owned(),
        format!("http://127.0.0.1:{}", p.wrapping_add(1)),
        format!("https://127.0.0.1:{p}"),
        format!("http://localhost.evil.example:{p}"),
        format!("http://localhost:{p}"),
    ] {
        assert_eq!(origin(&bad), 403, "{bad}");
    }
    let with_body = app.raw_api(
        "POST",
        "/api/tasks",
        "Origin: http://evil.example\r\nContent-Type: application/json\r\n",
        br#"{"title":"csrf"}"#,
    );
    assert_eq!(with_body.status, 403);
    assert_eq!(app.get("/api/tasks").json(), json!([]), "a refused cross-origin write changes nothing");
}

#[test]
fn bodies_must_be_json_and_at_most_one_mebibyte() {
    let app = TestApp::spawn();
    let post = |headers: &str, body: &[u8]| app.raw_api("POST", "/api/tasks", headers, body);
    let plain = post("Content-Type: text/plain\r\n", br#"{"title":"x"}"#);
    assert_eq!((plain.status, plain.code().as_str()), (415, "unsupported_media_type"));
    assert_eq!(post("", br#"{"title":"x"}"#).status, 415, "no content type");
    let json_ct = "Content-Type: application/json; charset=utf-8\r\n";
    assert_eq!(post(json_ct, br#"{"title":"x"}"#).status, 201, "parameters after the type are fine");

    let big = format!(r#"{{"title":"x","description":"{}"}}"#, "a".repeat(1024 * 1024));
    let r = post(json_ct, big.as_bytes());
    assert_eq!((r.status, r.code().as_str()), (413, "payload_too_large"));

    let mut chunked = format!(
        "POST /api/tasks HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        app.port
    )
    .into_bytes();
    chunked.extend_from_slice(format!("{:x}\r\n{big}\r\n0\r\n\r\n", big.len()).as_bytes());
    assert_eq!(app.raw(&chunked).status, 413, "a chunked body over the limit");
    assert_eq!(app.get("/api/tasks").json().as_array().map(Vec::len), Some(1));
}

#[test]
fn hostile_bodies_get_clear_client_errors_never_500() {
    let app = TestApp::spawn();
    let json_ct = "Content-Type: application/json\r\n";
    let deep = format!(
        r#"{{"name":"a","project_path":"/tmp","settings":{{"settings_json":{{"x":{}{}}}}}}}"#,
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("/api/tasks", b"{\"title\": ".to_vec(), 400),
        ("/api/tasks", b"\xff\xfe\x00garbage".to_vec(), 400),
        ("/api/tasks", b"{\"title\": \"a\x00b\"}".to_vec(), 400),
        ("/api/tasks", b"{\"title\": \"\xc3\x28\"}".to_vec(), 400),
        ("/api/tasks", b"[]".to_vec(), 422),
        ("/api/tasks", b"null".to_vec(), 422),
        ("/api/agents", deep.into_bytes(), 400),
        ("/api/agents", br#"{"name":"a\u0000b","project_path":"/tmp"}"#.to_vec(), 422),
        ("/api/agents", br#"{"name":"ok","project_path":"/tmp\u0000/x"}"#.to_vec(), 422),
    ];
    for (path, body, want) in cases {
        let r = app.raw_api("POST", path, json_ct, &body);
        assert_eq!(r.status, want, "{path} {:?}: {}", String::from_utf8_lossy(&body), r.text);
        assert!(r.code() == "malformed_json" || r.code() == "validation_failed", "{}", r.text);
    }
    let header = app.raw_api("GET", "/api/tasks", &format!("X-Big: {}\r\n", "a".repeat(64 * 1024)), b"");
    assert!(header.status < 500, "a 64 KiB header: {}", header.status);
    assert_eq!(app.get("/healthz").status, 200, "still serving");
}

#[test]
fn repeated_wrong_credentials_are_slowed_down() {
    let app = TestApp::spawn();
    let wrong = [("Authorization", "Bearer wrong-token-wrong-token")];
    for n in 0..5 {
        assert_eq!(app.get_with("/api/tasks", &wrong).status, 401, "attempt {n}");
    }
    for n in 0..4 {
        assert_eq!(app.get_with("/api/tasks", &[("Cookie", "switchboard_session=forged")]).status, 401, "cookie {n}");
    }
    let session = app.post("/api/session", &json!({"token": "not-the-token-at-all"}));
    assert_eq!(session.status, 401, "{}", session.text);
    // Ten failures from this address: everything that presents credentials now waits.
    let limited = app.get_with("/api/tasks", &wrong);
    assert_eq!(limited.status, 429, "{}", limited.text);
    let retry: u64 = limited.header("retry-after").expect("Retry-After").parse().expect("seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(app.get("/api/tasks").status, 429, "guessing stops: even the right token waits");
    assert_eq!(app.post("/api/session", &json!({"token": TOKEN})).status, 429);
    assert_eq!(app.get_with("/api/tasks", &[]).status, 401, "no credentials: nothing to slow down");
    assert_eq!(app.get_with("/healthz", &[]).status, 200);
    assert!(!app.log().contains("wrong-token-wrong-token"), "attempts are not logged with their token");
}

#[test]
fn event_streams_and_triggers_refuse_foreign_hosts_and_origins_too() {
    let app = TestApp::spawn();
    let agent = app.agent("watched", &["bash", "--norc", "-i"], json!({"trigger_secret": "a-trigger-secret-of-16+"}));
    let instance = app.instance(&agent, json!({}))["id"].as_str().expect("id").to_owned();
    let p = app.port;
    let paths = ["/api/events".to_owned(), format!("/api/instances/{instance}/stream")];
    for path in &paths {
        for (host, origin) in [
            (format!("evil.example:{p}"), None),
            (format!("localhost.evil.example:{p}"), None),
            (format!("127.0.0.1:{p}"), Some("null".to_owned())),
            (format!("127.0.0.1:{p}"), Some(format!("http://localhost:{}", p.wrapping_add(1)))),
            (format!("127.0.0.1:{p}"), Some(format!("https://127.0.0.1:{p}"))),
        ] {
            let origin_line = origin.as_ref().map(|o| format!("Origin: {o}\r\n")).unwrap_or_default();
            let r = app.raw(
                format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n{origin_line}Authorization: Bearer {TOKEN}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            );
            assert_eq!(r.status, 403, "{path} with Host {host} and Origin {origin:?}");
            assert!(!r.text.contains("event:"), "no event reaches a foreign page");
        }
    }
    let trigger = app.raw(
        format!("POST /api/hooks/agents/watched HTTP/1.1\r\nHost: 127.0.0.1:{p}\r\nOrigin: http://evil.example\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}")
            .as_bytes(),
    );
    assert_eq!(trigger.status, 403, "a page elsewhere cannot fire a trigger");
}

#[test]
fn shell_metacharacters_in_argv_are_plain_arguments() {
    let app = TestApp::spawn();
    let dir = crate::helpers::project_dir(&app, "meta");
    let args = ["$(touch sub)", "`touch tick`", "; touch semi", "| touch pipe", "&& touch and", "> redirected", "*"];
    let mut argv = vec!["echo"];
    argv.extend(args);
    let r = app.post("/api/agents", &json!({"name": "meta", "project_path": dir, "command": argv}));
    assert_eq!(r.status, 201, "{}", r.text);
    let agent = r.json()["id"].as_str().expect("id").to_owned();
    let id = app.instance(&agent, json!({}))["id"].as_str().expect("id").to_owned();
    app.wait_status(&id, "completed", std::time::Duration::from_secs(20));
    let out = app.output(&id);
    assert!(out.contains(&args.join(" ")), "echoed literally: {out:?}");
    let created: Vec<_> = std::fs::read_dir(&dir).expect("dir").collect();
    assert!(created.is_empty(), "no file was created: {created:?}");
}

#[test]
fn hostile_last_event_ids_get_a_reset_or_a_422_never_a_500() {
    let app = TestApp::spawn();
    let agent = app.agent("resumed", &["bash", "--norc", "-i"], json!({}));
    let instance = app.instance(&agent, json!({}))["id"].as_str().expect("id").to_owned();
    let values =
        ["-1", "99999999999999999999999", "1:2", "abc", "%00", "1 2", "0x10", "", " 7 ", "18446744073709551615:1"];
    for path in ["/api/events".to_owned(), format!("/api/instances/{instance}/stream")] {
        for value in values {
            let stream = crate::sse_client::SseClient::open(&app, &path, &[("Last-Event-ID", value)]);
            assert!([200, 422].contains(&stream.status), "{path} with Last-Event-ID {value:?}: {}", stream.status);
            stream.close();
        }
    }
    assert_eq!(app.get("/healthz").status, 200);
}

#[test]
fn files_are_private_whatever_the_umask_and_a_shared_data_directory_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).expect("exists").permissions().mode() & 0o7777;
    let root = tempfile::tempdir().expect("tempdir");
    let data = root.path().join("data");
    std::fs::create_dir(&data).expect("data dir");
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    // An old transcript left readable by others is tightened too.
    std::fs::create_dir(data.join("transcripts")).expect("transcripts");
    std::fs::write(data.join("transcripts/old.log"), b"secret output").expect("old transcript");
    std::fs::set_permissions(data.join("transcripts/old.log"), std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let app = TestApp::spawn_in(root, vec!["--token".into(), TOKEN.into()]);
    let agent = app.agent("umask", &["bash", "-c", "umask; touch made-here; sleep 30"], json!({}));
    let id = app.instance(&agent, json!({}))["id"].as_str().expect("id").to_owned();
    let out = app.wait_output(&id, "0022", Duration::from_secs(20));
    assert!(out.contains("0022"), "the instance keeps the umask the server was started with: {out}");
    let dir = app.data_dir();
    assert_eq!(mode(&dir), 0o700, "the data directory is tightened");
    for file in ["agents.db", "tasks.db", "agents.db-wal", "transcripts/old.log", &format!("transcripts/{id}.log")] {
        assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
    }
    assert_eq!(mode(&dir.join("transcripts")), 0o700);
    assert!(app.log().contains("readable by other users"), "{}", app.log());

    // A shared directory (sticky, like /tmp) is refused, with the reason.
    let (shared, logs) = (tempfile::tempdir().expect("tempdir"), tempfile::tempdir().expect("tempdir"));
    std::fs::set_permissions(shared.path(), std::fs::Permissions::from_mode(0o1777)).expect("chmod");
    let args: Vec<String> = ["--bind", "127.0.0.1:0", "--token", TOKEN, "--data-dir"]
        .iter()
        .map(|s| (*s).to_owned())
        .chain([shared.path().to_string_lossy().into_owned()])
        .collect();
    let (status, log) = crate::helpers::start(&args, &logs.path().join("refused.log"), &[]).expect_err("refused");
    assert!(!status.success());
    assert!(log.contains("shared directory"), "{log}");
}

#[test]
fn an_agent_of_the_same_user_cannot_read_the_servers_environment_or_memory() {
    use std::os::unix::fs::PermissionsExt;
    // The server runs as an ordinary user (nobody, when the tests run as root), with
    // its token in its environment, and so does the instance.
    let root = tempfile::tempdir().expect("tempdir");
    let root_is_root = nix::unistd::geteuid().is_root();
    let launcher: &[&str] =
        if root_is_root { &["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"] } else { &[] };
    if root_is_root {
        std::os::unix::fs::chown(root.path(), Some(65534), Some(65534)).expect("chown");
        std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o700)).expect("chmod");
    }
    let token = "env-token-0123456789abcdef-secret";
    let app = TestApp::spawn_launched(root, launcher, vec![], &[("SWITCHBOARD_TOKEN", token)]);
    assert_eq!(app.token.as_deref(), Some(token));
    let server = app.pid();
    let script = format!(
        "cat /proc/{server}/environ; echo environ=$?; head -c 16 /proc/{server}/mem; echo mem=$?; \
         ls /proc/{server}/fd; echo fd=$?; echo probe-done; sleep 30"
    );
    let agent = app.agent("snoop", &["bash", "-c", &script], json!({}));
    let instance = app.instance(&agent, json!({}));
    let id = instance["id"].as_str().expect("id").to_owned();
    let out = app.wait_output(&id, "probe-done", Duration::from_secs(20));
    assert!(!out.contains(token), "the token leaked: {out}");
    for what in ["environ", "mem", "fd"] {
        assert!(!out.contains(&format!("{what}=0")), "{what} was readable: {out}");
    }
    assert!(out.contains("Permission denied"), "{out}");
    let started = app.get(&format!("/api/instances/{id}")).json();
    // An ordinary user cannot make cgroups here; a PID namespace holds it.
    assert_eq!(started["isolation"]["containment"], "pidns", "an ordinary user is contained too: {started}");
}
