//! Soak: instances churn (start, print, wait, exit, get deleted) while event-stream
//! clients keep reconnecting; a line every interval reports errors, server memory,
//! open descriptors and the write-ahead log, and the end checks they stayed bounded.
//!
//! CI runs 20 seconds with 20 instances at a time. The long run:
//! `SWITCHBOARD_SOAK_SECS=1800 SWITCHBOARD_SOAK_INSTANCES=100 cargo test --release --test api soak -- --nocapture`

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{TestApp, TOKEN};
use crate::sse_client::{Next, SseClient};

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn status_kib(pid: i32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn fds(pid: i32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

#[test]
fn churning_instances_and_reconnecting_clients_stay_bounded() {
    let secs = env_number("SWITCHBOARD_SOAK_SECS", 20);
    let live = env_number("SWITCHBOARD_SOAK_INSTANCES", 20);
    let app = TestApp::spawn_with(&["--token", TOKEN, "--max-instances", &live.to_string()]);
    let dir = crate::helpers::project_dir(&app, "soak");
    let script = "echo started; for i in 1 2 3; do echo line $i; sleep 0.$((RANDOM % 5)); done";
    let agent = app.post(
        "/api/agents",
        &json!({"name": "churn", "project_path": dir, "command": ["bash", "-c", script],
                "settings": {"max_concurrent_instances": live}}),
    );
    assert_eq!(agent.status, 201, "{}", agent.text);
    let agent = agent.json()["id"].as_str().expect("id").to_owned();
    let pid = app.pid();
    let wal = app.data_dir().join("agents.db-wal");
    let stop = AtomicBool::new(false);
    let (errors, started, deleted, events) =
        (AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut samples = Vec::new();
    std::thread::scope(|s| {
        // Keep about `live` instances running; delete what ended.
        s.spawn(|| {
            while !stop.load(Ordering::SeqCst) {
                let running = app.get(&format!("/api/instances?agent_id={agent}&status=active&limit=1000"));
                let ended = app.get(&format!("/api/instances?agent_id={agent}&status=completed&limit=1000"));
                if running.status != 200 || ended.status != 200 {
                    errors.fetch_add(1, Ordering::SeqCst);
                    continue;
                }
                for instance in ended.json().as_array().into_iter().flatten() {
                    let id = instance["id"].as_str().unwrap_or_default();
                    match app.delete(&format!("/api/instances/{id}")).status {
                        204 | 404 => deleted.fetch_add(1, Ordering::SeqCst),
                        _ => errors.fetch_add(1, Ordering::SeqCst),
                    };
                }
                let missing = live.saturating_sub(running.json().as_array().map_or(0, |a| a.len() as u64));
                for _ in 0..missing {
                    match app.post(&format!("/api/agents/{agent}/instances"), &json!({})).status {
                        201 => started.fetch_add(1, Ordering::SeqCst),
                        _ => errors.fetch_add(1, Ordering::SeqCst),
                    };
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        // Clients that read a little of /api/events and reconnect, resuming.
        for _ in 0..4 {
            s.spawn(|| {
                let mut last: Option<String> = None;
                while !stop.load(Ordering::SeqCst) {
                    let headers: Vec<(&str, String)> = last.iter().map(|id| ("Last-Event-ID", id.clone())).collect();
                    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
                    let mut stream = SseClient::open(&app, "/api/events", &headers);
                    if stream.status != 200 {
                        errors.fetch_add(1, Ordering::SeqCst);
                        continue;
                    }
                    let until = Instant::now() + Duration::from_millis(500);
                    while Instant::now() < until {
                        match stream.next(Duration::from_millis(200)) {
                            Next::Event(event) if !event.event.is_empty() => {
                                if let Some(id) = event.id {
                                    last = Some(id);
                                }
                                events.fetch_add(1, Ordering::SeqCst);
                            }
                            Next::Closed => {
                                errors.fetch_add(1, Ordering::SeqCst);
                                break;
                            }
                            _ => {}
                        }
                    }
                    stream.close();
                }
            });
        }
        println!(
            "{:>6} {:>8} {:>8} {:>8} {:>7} {:>9} {:>5} {:>8}",
            "secs", "started", "deleted", "events", "errors", "rss KiB", "fds", "wal KiB"
        );
        let begun = Instant::now();
        while Instant::now() < deadline {
            std::thread::sleep(Duration::from_secs((secs / 10).clamp(1, 60)));
            let sample = (
                begun.elapsed().as_secs(),
                started.load(Ordering::SeqCst),
                deleted.load(Ordering::SeqCst),
                events.load(Ordering::SeqCst),
                errors.load(Ordering::SeqCst),
                status_kib(pid, "VmRSS:"),
                fds(pid),
                std::fs::metadata(&wal).map_or(0, |m| m.len() / 1024),
            );
            println!(
                "{:>6} {:>8} {:>8} {:>8} {:>7} {:>9} {:>5} {:>8}",
                sample.0, sample.1, sample.2, sample.3, sample.4, sample.5, sample.6, sample.7
            );
            samples.push(sample);
        }
        stop.store(true, Ordering::SeqCst);
    });
    let first = samples.first().expect("at least one sample");
    let last = samples.last().expect("at least one sample");
    assert_eq!(last.4, 0, "no request failed");
    assert!(last.1 > live, "instances kept churning: {} started", last.1);
    assert!(last.3 > 0, "the clients received events");
    let peak_rss = samples.iter().map(|s| s.5).max().unwrap_or(0);
    assert!(peak_rss < first.5 + 64 * 1024, "memory stays bounded: {} KiB at first, {peak_rss} KiB at most", first.5);
    let peak_fds = samples.iter().map(|s| s.6).max().unwrap_or(0);
    assert!(peak_fds < first.6 + 4 * usize::try_from(live).unwrap_or(0) + 64, "descriptors stay bounded: {peak_fds}");
    let peak_wal = samples.iter().map(|s| s.7).max().unwrap_or(0);
    assert!(peak_wal < 64 * 1024, "the write-ahead log is checkpointed: {peak_wal} KiB at most");
    assert!(status_kib(pid, "VmHWM:") > 0);
}
