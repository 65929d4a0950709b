//! Bounded resources under abuse: an instance that writes output as fast as it can,
//! and clients that flood an instance's input. Server memory stays bounded and the
//! other instances keep answering.
//!
//! CI floods for 5 seconds; `SWITCHBOARD_FLOOD_SECS=60 cargo test --test api bounded -- --nocapture`
//! runs the minute-long version.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::{eventually, TestApp};

const T: Duration = Duration::from_secs(20);

fn rss_kib(pid: i32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[test]
fn an_output_flood_neither_grows_the_server_nor_slows_other_instances() {
    let secs: u64 = std::env::var("SWITCHBOARD_FLOOD_SECS").ok().and_then(|v| v.parse().ok()).unwrap_or(5);
    let app = TestApp::spawn();
    let flood = app.agent("flood", &["yes", "a line of output, written as fast as the terminal takes it"], json!({}));
    let shell = app.agent("neighbour", &["bash", "--norc", "-i"], json!({}));
    let neighbour = app.instance(&shell, json!({}))["id"].as_str().expect("id").to_owned();
    app.wait_status(&neighbour, "awaiting_input", T);
    let before = rss_kib(app.pid());
    let flooding = app.instance(&flood, json!({}))["id"].as_str().expect("id").to_owned();
    let until = Instant::now() + Duration::from_secs(secs);
    let (mut peak, mut slowest, mut rounds) = (before, Duration::ZERO, 0);
    while Instant::now() < until {
        rounds += 1;
        let sent = Instant::now();
        app.type_in(&neighbour, &format!("echo pong-{rounds}\n"));
        app.wait_output(&neighbour, &format!("pong-{rounds}\r\n"), T);
        slowest = slowest.max(sent.elapsed());
        assert_eq!(app.get("/healthz").status, 200);
        peak = peak.max(rss_kib(app.pid()));
        std::thread::sleep(Duration::from_millis(200));
    }
    let transcript = app.data_dir().join("transcripts").join(format!("{flooding}.log"));
    let written = std::fs::metadata(transcript).map_or(0, |m| m.len());
    println!(
        "{secs} s of flood ({} bytes of transcript): server RSS {before} KiB before, {peak} KiB at most; \
         {rounds} echoes from the neighbour, the slowest in {slowest:?}",
        written
    );
    assert!(peak < before + 64 * 1024, "memory stays bounded: {before} KiB before, {peak} KiB at most");
    let ended = app.put(&format!("/api/instances/{flooding}"), &json!({"status": "terminated"}));
    assert_eq!(ended.status, 200, "{}", ended.text);
}

#[test]
fn an_input_flood_is_refused_once_the_queue_is_full_and_costs_nothing_lasting() {
    let app = TestApp::spawn();
    let deaf = app.agent("deaf", &["sleep", "300"], json!({}));
    let reader = app.agent("reader", &["bash", "-c", "stty -echo; cat > /dev/null"], json!({}));
    let deaf = app.instance(&deaf, json!({}))["id"].as_str().expect("id").to_owned();
    let reader = app.instance(&reader, json!({}))["id"].as_str().expect("id").to_owned();
    app.wait_status(&deaf, "active", T);
    eventually(T, "the reader to run", || {
        (app.get(&format!("/api/instances/{reader}")).json()["pid"].is_number()).then_some(())
    });
    let before = rss_kib(app.pid());
    let chunk: String = "x".repeat(99).chars().chain(std::iter::once('\n')).cycle().take(64 * 1024).collect();
    let mut refused = None;
    for n in 0..64 {
        let r = app.post(&format!("/api/instances/{deaf}/input"), &json!({"data": chunk}));
        match r.status {
            202 => {}
            429 => {
                refused = Some((n, r.header("retry-after").map(str::to_owned)));
                break;
            }
            other => panic!("input {n}: {other} {}", r.text),
        }
    }
    let (n, retry) = refused.expect("a program that never reads gets 429 once its input queue is full");
    assert!(n >= 8, "about 1 MiB was queued first ({n} chunks of 64 KiB)");
    assert!(retry.is_some(), "429 says when to retry");
    for n in 0..64 {
        let r = app.post(&format!("/api/instances/{reader}/input"), &json!({"data": chunk}));
        assert_eq!(r.status, 202, "a program that reads takes everything (chunk {n}): {}", r.text);
    }
    let peak = rss_kib(app.pid());
    assert!(peak < before + 32 * 1024, "memory stays bounded: {before} KiB before, {peak} KiB after");
    let started = Instant::now();
    let ended = app.put(&format!("/api/instances/{deaf}"), &json!({"status": "terminated"}));
    assert_eq!(ended.status, 200, "{}", ended.text);
    println!(
        "input flood: refused after {n} chunks of 64 KiB; server RSS {before} → {peak} KiB; terminate took {:?}",
        started.elapsed()
    );
}
