//! Crash safety: the server is killed with SIGKILL at a random moment while eight
//! clients write tasks, agents and messages. After each restart every write that
//! was answered 2xx is there, both databases pass `integrity_check` and
//! `foreign_key_check`, instances that were running are `error` (`server_restart`),
//! queued ones start, and webhook deliveries still pending go out.
//!
//! CI runs 3 rounds; `SWITCHBOARD_CRASH_ROUNDS=20 cargo test --test api crash -- --nocapture`
//! runs the long version.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rusqlite::Connection;
use serde_json::{json, Value};

use crate::helpers::{eventually, project_dir, TestApp, TOKEN};
use crate::receiver::Receiver;

const WAIT: Duration = Duration::from_secs(30);

/// What the clients were told was stored.
#[derive(Default)]
struct Acknowledged {
    tasks: Vec<i64>,
    agents: Vec<String>,
    messages: Vec<(String, String)>,
    instances: Vec<String>,
}

/// POSTs JSON; `Some(body)` only for a 2xx answer, `None` once the server is gone.
fn post(client: &ureq::Agent, port: u16, path: &str, body: &Value) -> Option<Result<Value, u16>> {
    let res = client
        .post(format!("http://127.0.0.1:{port}{path}"))
        .header("Authorization", format!("Bearer {TOKEN}"))
        .send_json(body);
    match res {
        Ok(mut r) if r.status().is_success() => Some(Ok(r.body_mut().read_json().ok()?)),
        Ok(r) => Some(Err(r.status().as_u16())),
        Err(_) => None,
    }
}

fn check_database(path: &std::path::Path) {
    let conn = Connection::open(path).expect("open");
    let ok: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).expect("integrity_check");
    assert_eq!(ok, "ok", "{}", path.display());
    let mut stmt = conn.prepare("PRAGMA foreign_key_check").expect("prepare");
    let broken = stmt.query_map([], |r| r.get::<_, String>(0)).expect("query").count();
    assert_eq!(broken, 0, "foreign keys of {}", path.display());
}

#[test]
fn killing_the_server_mid_write_loses_nothing_that_was_acknowledged() {
    let rounds: u32 = std::env::var("SWITCHBOARD_CRASH_ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(3);
    let receiver = Receiver::start();
    let mut app =
        TestApp::spawn_with_config("[webhooks]\nretry_schedule = [\"200ms\", \"500ms\", \"1s\", \"1s\", \"1s\"]\n");
    let hook = app.post("/api/webhooks", &json!({"url": receiver.url("/"), "events": ["task.created"]}));
    assert_eq!(hook.status, 201, "{}", hook.text);
    let dir = project_dir(&app, "crash");
    let mut acknowledged = Acknowledged::default();
    let mut seed = u64::from(std::process::id()) ^ 0x9e37_79b9_7f4a_7c15;
    for round in 0..rounds {
        // A running instance to write messages to, and one queued behind it.
        let worker = app
            .post("/api/agents", &json!({"name": format!("worker-{round}"), "project_path": dir, "command": ["cat"]}));
        assert_eq!(worker.status, 201, "{}", worker.text);
        let worker = worker.json()["id"].as_str().expect("id").to_owned();
        let running = app.instance(&worker, json!({}))["id"].as_str().expect("id").to_owned();
        app.wait_status(&running, "awaiting_input", WAIT);
        let queued = app.instance(&worker, json!({}));
        assert_eq!(queued["status"], "idle", "{queued}");
        let queued = queued["id"].as_str().expect("id").to_owned();
        // Started over and over while the server dies: each create acknowledged must be there.
        let starter = app.post(
            "/api/agents",
            &json!({"name": format!("starter-{round}"), "project_path": dir, "command": ["sleep", "600"],
                    "settings": {"max_concurrent_instances": 1000}}),
        );
        assert_eq!(starter.status, 201, "{}", starter.text);
        let starter = starter.json()["id"].as_str().expect("id").to_owned();

        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let kill_after = Duration::from_millis(100 + seed % 600);
        let port = app.port;
        let pid = nix::unistd::Pid::from_raw(app.pid());
        let dead = AtomicBool::new(false);
        let acked = Mutex::new(Acknowledged::default());
        std::thread::scope(|s| {
            for client in 0..9 {
                let (dead, acked, running, dir, starter) = (&dead, &acked, &running, &dir, &starter);
                s.spawn(move || {
                    let http: ureq::Agent = ureq::Agent::config_builder()
                        .http_status_as_error(false)
                        .timeout_global(Some(Duration::from_secs(10)))
                        .build()
                        .into();
                    for n in 0.. {
                        if dead.load(Ordering::SeqCst) {
                            break;
                        }
                        let answer = match client {
                            0..=3 => {
                                post(&http, port, "/api/tasks", &json!({"title": format!("r{round} c{client} n{n}")}))
                            }
                            4 | 5 => post(
                                &http,
                                port,
                                "/api/agents",
                                &json!({"name": format!("a-{round}-{client}-{n}"), "project_path": dir}),
                            ),
                            6 | 7 => post(
                                &http,
                                port,
                                &format!("/api/instances/{running}/messages"),
                                &json!({"content": format!("m{client}-{n}")}),
                            ),
                            _ => {
                                std::thread::sleep(Duration::from_millis(10));
                                post(&http, port, &format!("/api/agents/{starter}/instances"), &json!({}))
                            }
                        };
                        let Some(answer) = answer else { break };
                        let Ok(body) = answer else { continue };
                        let mut acked = acked.lock().expect("lock");
                        match client {
                            0..=3 => acked.tasks.push(body["id"].as_i64().expect("task id")),
                            4 | 5 => acked.agents.push(body["id"].as_str().expect("agent id").to_owned()),
                            6 | 7 => acked
                                .messages
                                .push((running.clone(), body["id"].as_str().expect("message id").to_owned())),
                            _ => acked.instances.push(body["id"].as_str().expect("instance id").to_owned()),
                        }
                    }
                });
            }
            std::thread::sleep(kill_after);
            nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).expect("SIGKILL");
            dead.store(true, Ordering::SeqCst);
        });
        app.kill9();
        app = app.start_again();
        let acked = acked.into_inner().expect("lock");
        println!(
            "round {round}: killed after {kill_after:?}; {} tasks, {} agents, {} messages, {} instances acknowledged",
            acked.tasks.len(),
            acked.agents.len(),
            acked.messages.len(),
            acked.instances.len()
        );
        acknowledged.tasks.extend(acked.tasks);
        acknowledged.agents.extend(acked.agents);
        acknowledged.messages.extend(acked.messages);
        acknowledged.instances.extend(acked.instances);

        for task in &acknowledged.tasks {
            assert_eq!(app.get(&format!("/api/tasks/{task}")).status, 200, "task {task} after round {round}");
        }
        for agent in &acknowledged.agents {
            assert_eq!(app.get(&format!("/api/agents/{agent}")).status, 200, "agent {agent} after round {round}");
        }
        for instance in &acknowledged.instances {
            let r = app.get(&format!("/api/instances/{instance}"));
            assert_eq!(r.status, 200, "instance {instance} after round {round}");
            assert!(r.json()["pid"].is_i64(), "instance {instance} was stored as started: {}", r.text);
        }
        let stored: HashSet<String> = app
            .get(&format!("/api/instances/{running}/messages?limit=1000"))
            .json()
            .as_array()
            .expect("list")
            .iter()
            .map(|m| m["id"].as_str().expect("id").to_owned())
            .collect();
        for (_, message) in acknowledged.messages.iter().filter(|(i, _)| *i == running) {
            assert!(stored.contains(message), "message {message} after round {round}");
        }
        for file in ["agents.db", "tasks.db"] {
            check_database(&app.data_dir().join(file));
        }
        let was_running = app.get(&format!("/api/instances/{running}")).json();
        assert_eq!(
            (was_running["status"].as_str(), was_running["status_reason"].as_str()),
            (Some("error"), Some("server_restart"))
        );
        app.wait_status(&queued, "awaiting_input", WAIT);
        let _ = app.put(&format!("/api/instances/{queued}"), &json!({"status": "terminated"}));
    }

    // Every acknowledged task's event reaches the receiver, however often the server died.
    let started = Instant::now();
    eventually(Duration::from_secs(60), "every acknowledged task delivered", || {
        let titles: HashSet<i64> =
            receiver.received().iter().filter_map(|r| r.json()["data"]["task"]["id"].as_i64()).collect();
        acknowledged.tasks.iter().all(|t| titles.contains(t)).then_some(())
    });
    println!(
        "{rounds} rounds: {} tasks, {} agents, {} messages, {} instances acknowledged and all present; deliveries complete {:?} after the last restart",
        acknowledged.tasks.len(),
        acknowledged.agents.len(),
        acknowledged.messages.len(),
        acknowledged.instances.len(),
        started.elapsed()
    );
}
