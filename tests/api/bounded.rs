//! Bounded resources under abuse: an instance that writes output as fast as it can,
//! and clients that flood an instance's input. Server memory stays bounded and the
//! other instances keep answering.
//!
//! CI floods for 5 seconds; `SWITCHBOARD_FLOOD_SECS=60 cargo test --test api bounded -- --nocapture`
//! runs the minute-long version.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::helpers::TestApp;
use crate::sse_client::SseClient;

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
    let meta = std::fs::metadata(transcript).expect("transcript");
    let on_disk = std::os::unix::fs::MetadataExt::blocks(&meta) * 512;
    println!(
        "{secs} s of flood ({} bytes of transcript, {on_disk} on disk): server RSS {before} KiB before, \
         {peak} KiB at most; {rounds} echoes from the neighbour, the slowest in {slowest:?}",
        meta.len()
    );
    assert!(on_disk <= 270 << 20, "the transcript stays within transcript_max_mb (256) on disk: {on_disk}");
    assert!(peak < before + 64 * 1024, "memory stays bounded: {before} KiB before, {peak} KiB at most");
    let ended = app.put(&format!("/api/instances/{flooding}"), &json!({"status": "terminated"}));
    assert_eq!(ended.status, 200, "{}", ended.text);
}

#[test]
fn an_input_flood_is_refused_once_the_queue_is_full_and_costs_nothing_lasting() {
    let app = TestApp::spawn();
    let deaf = app.agent("deaf", &["sleep", "300"], json!({}));
    let reader = app.agent("reader", &["bash", "-c", "stty -echo; echo reading; exec cat > /dev/null"], json!({}));
    let deaf = app.instance(&deaf, json!({}))["id"].as_str().expect("id").to_owned();
    let reader = app.instance(&reader, json!({}))["id"].as_str().expect("id").to_owned();
    app.wait_status(&deaf, "active", T);
    // Echo off before the flood: an echoed flood is a flood of output as well.
    app.wait_output(&reader, "reading", T);
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
    // A program that reads takes everything; on a loaded machine it may fall behind
    // for a moment, and a 429 then only asks to come back.
    let mut waits = 0;
    for n in 0..64 {
        loop {
            let r = app.post(&format!("/api/instances/{reader}/input"), &json!({"data": chunk}));
            if r.status == 429 && waits < 200 {
                waits += 1;
                std::thread::sleep(Duration::from_millis(25));
                continue;
            }
            assert_eq!(r.status, 202, "a program that reads takes everything (chunk {n}): {}", r.text);
            break;
        }
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

#[test]
fn a_transcript_keeps_its_newest_part_within_the_configured_size_and_its_offsets() {
    let app = TestApp::spawn_with_config("transcript_max_mb = 1\n");
    let agent = app.agent("chatty", &["bash", "-c", "seq 1 1000000; echo finished; exec sleep 60"], json!({}));
    let id = app.instance(&agent, json!({}))["id"].as_str().expect("id").to_owned();
    let kept = app.wait_output(&id, "finished\r\n", T);
    let path = app.data_dir().join("transcripts").join(format!("{id}.log"));
    let meta = std::fs::metadata(&path).expect("transcript");
    let on_disk = std::os::unix::fs::MetadataExt::blocks(&meta) * 512;
    println!("transcript: {} bytes written, {on_disk} bytes on disk, {} bytes served", meta.len(), kept.len());
    assert!(meta.len() > 6_800_000, "every byte offset stays: {}", meta.len());
    assert!(on_disk <= 1_300_000, "at most about 1 MiB on disk: {on_disk}");

    let whole = app.get(&format!("/api/instances/{id}/output"));
    let start: u64 = whole.header("x-transcript-start").expect("X-Transcript-Start").parse().expect("number");
    let len: u64 = whole.header("x-transcript-length").expect("X-Transcript-Length").parse().expect("number");
    assert_eq!(len, meta.len());
    assert!(start > 5_000_000, "reading from 0 starts at the oldest byte kept: {start}");
    assert_eq!(whole.text.len() as u64, len - start);
    assert!(!whole.text.contains('\0'), "no dropped bytes are served as zeros");
    assert!(whole.text.ends_with("999999\r\n1000000\r\nfinished\r\n"), "the newest output is all there");
    let later = app.get(&format!("/api/instances/{id}/output?offset={}", len - 10));
    assert_eq!(later.text, "finished\r\n", "a kept offset reads as before");
    assert_eq!(later.header("x-transcript-start"), Some((len - 10).to_string().as_str()));

    // A stream resumed from the very beginning continues at the oldest byte kept.
    let mut stream = SseClient::open(&app, &format!("/api/instances/{id}/stream"), &[("Last-Event-ID", "0:0")]);
    assert_eq!(stream.status, 200);
    let mut replayed = String::new();
    let mut first_offset = None;
    while !replayed.contains("finished") {
        let event = stream.expect(T);
        if event.event == "output" {
            let data = event.json()["data"].as_str().expect("data").to_owned();
            let end: u64 = event.id.as_deref().and_then(|i| i.split(':').next()?.parse().ok()).expect("OFFSET:SEQ id");
            first_offset.get_or_insert(end - data.len() as u64);
            replayed.push_str(&data);
        }
    }
    stream.close();
    assert_eq!(first_offset, Some(start), "the ids stay byte offsets");
    assert!(!replayed.contains('\0'));
    assert_eq!(replayed, whole.text);
}
