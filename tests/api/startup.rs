use std::time::Duration;

use crate::helpers::{start, wait_with_timeout, TestApp, TOKEN};

fn refused(args: &[&str], envs: &[(&str, &str)]) -> (i32, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut all: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    all.extend(["--data-dir".to_owned(), dir.path().join("data").to_string_lossy().into_owned()]);
    match start(&all, &dir.path().join("log"), envs) {
        Ok((mut child, lines)) => {
            let _ = child.kill();
            panic!("started although it should not: {lines:?}");
        }
        Err((status, log)) => (status.code().unwrap_or(-1), log),
    }
}

#[test]
fn no_auth_off_loopback_is_refused() {
    let (code, log) = refused(&["--bind", "0.0.0.0:0", "--no-auth", "--config", "/dev/null"], &[]);
    assert_eq!(code, 2);
    assert!(log.contains("loopback"), "{log}");
}

#[test]
fn a_public_bind_without_an_explicit_token_is_refused() {
    let (code, log) = refused(&["--bind", "0.0.0.0:0", "--config", "/dev/null"], &[]);
    assert_eq!(code, 2);
    assert!(log.contains("without a token"), "{log}");
}

#[test]
fn bad_configuration_is_refused_with_a_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("c.toml");
    std::fs::write(&file, "bind = \"127.0.0.1:0\"\nmax_instances = 3\n").expect("write");
    let (code, log) = refused(&["--config", file.to_str().expect("utf-8")], &[]);
    assert_eq!(code, 2);
    assert!(log.contains("max_instances"), "the unknown key is named: {log}");

    let (_, log) = refused(&["--config", "/no/such/file.toml"], &[]);
    assert!(log.contains("/no/such/file.toml"), "{log}");
    let (_, log) = refused(&["--bind", "nonsense", "--config", "/dev/null"], &[]);
    assert!(log.contains("invalid bind address"), "{log}");
    let (_, log) = refused(&["--bind", "127.0.0.1:0", "--token", "short", "--config", "/dev/null"], &[]);
    assert!(log.contains("at least 16"), "{log}");
}

#[test]
fn flags_beat_environment_beats_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let [from_file, from_env, from_flag] = ["file", "env", "flag"].map(|n| dir.path().join(n));
    let config = dir.path().join("c.toml");
    std::fs::write(&config, format!("bind = \"127.0.0.1:0\"\ndata_dir = {:?}\n", from_file)).expect("write");
    let config = config.to_string_lossy().into_owned();
    let env_dir = from_env.to_string_lossy().into_owned();
    let envs = [("SWITCHBOARD_DATA_DIR", env_dir.as_str()), ("SWITCHBOARD_TOKEN", TOKEN)];

    let run = |args: &[&str], envs: &[(&str, &str)]| {
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        let (mut child, lines) = start(&args, &dir.path().join("log"), envs).expect("starts");
        assert!(lines[0].starts_with("switchboard listening on http://127.0.0.1:"), "{lines:?}");
        let _ = child.kill();
        let _ = wait_with_timeout(&mut child, Duration::from_secs(10));
    };
    run(&["--config", &config], &[("SWITCHBOARD_TOKEN", TOKEN)]);
    assert!(from_file.join("agents.db").exists(), "file beats default");
    run(&["--config", &config], &envs);
    assert!(from_env.join("agents.db").exists(), "environment beats file");
    run(&["serve", "--config", &config, "--data-dir", from_flag.to_str().expect("utf-8")], &envs);
    assert!(from_flag.join("tasks.db").exists(), "flag beats environment");
    assert!(!from_env.join("token").exists() && !from_flag.join("token").exists(), "an explicit token is not written");
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let mut app = TestApp::spawn();
    assert_eq!(app.get("/healthz").status, 200);
    let status = app.stop();
    assert!(status.success(), "exit status {status}");
    assert!(app.log().contains("stopped"), "{}", app.log());
}

#[test]
fn metrics_count_requests_by_route() {
    let app = TestApp::spawn();
    assert_eq!(app.get("/api/tasks/123").status, 404);
    let metrics = app.get_with("/metrics", &[]);
    assert_eq!(metrics.status, 200);
    assert!(metrics.text.contains("# TYPE switchboard_http_requests counter"), "{}", metrics.text);
    assert!(
        metrics
            .text
            .contains(r#"switchboard_http_requests_total{method="GET",route="/api/tasks/{id}",status="404"} 1"#),
        "{}",
        metrics.text
    );
}
