//! The client's commands other than `attach`.

use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::http::{Client, Failure};
use super::render::Plain;
use super::{attach, ClientCommand, WaitFor};

const FINAL: [&str; 3] = ["completed", "error", "terminated"];

/// Runs one command.
pub fn run(command: ClientCommand, mut cli: clap::Command) -> Result<ExitCode, Failure> {
    match command {
        ClientCommand::Completions { shell } => {
            clap_complete::generate(shell, &mut cli, "switchboard", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        ClientCommand::Hook { kind, payload } => Ok(super::hook::report(kind, payload)),
        ClientCommand::Approve { target, id, deny, message } => {
            let client = Client::new(&target)?;
            let instance = client.instance(&id)?;
            let short: String = instance["id"].as_str().unwrap_or_default().chars().take(8).collect();
            let Some(approval) = instance["approval"]["id"].as_str() else {
                return Err(Failure::Other(format!("instance {short} has no pending permission request")));
            };
            let mut body = json!({"decision": if deny { "deny" } else { "allow" }});
            if let Some(message) = message {
                body["message"] = json!(message);
            }
            let decided = client.expect("POST", &format!("/api/approvals/{approval}"), Some(&body))?;
            println!(
                "{} {}: {}",
                decided["status"].as_str().unwrap_or_default(),
                short,
                decided["question"].as_str().unwrap_or_default()
            );
            Ok(ExitCode::SUCCESS)
        }
        ClientCommand::Ls { target, waiting, agent, json } => {
            ls(&Client::new(&target)?, waiting, agent.as_deref(), json)
        }
        ClientCommand::Attach { target, id, detach } => {
            let client = Client::new(&target)?;
            let instance = client.instance(&id)?;
            attach::attach(client, &instance, detach.byte)
        }
        ClientCommand::New { target, agent, prompt, attach: then_attach, detach } => {
            let client = Client::new(&target)?;
            let agent = client.agent(&agent)?;
            let mut body = json!({});
            if let Some(prompt) = prompt {
                body["prompt"] = json!(prompt);
            }
            let path = format!("/api/agents/{}/instances", agent["id"].as_str().unwrap_or_default());
            let instance = client.expect("POST", &path, Some(&body))?;
            if then_attach {
                return attach::attach(client, &instance, detach.byte);
            }
            println!("{}", instance["id"].as_str().unwrap_or_default());
            Ok(ExitCode::SUCCESS)
        }
        ClientCommand::Send { target, id, text, now, in_reply_to } => {
            let client = Client::new(&target)?;
            let instance = client.instance(&id)?;
            let mut body = json!({"content": text, "deliver": if now { "now" } else { "when_ready" }});
            if let Some(wait) = in_reply_to {
                body["in_reply_to"] = json!(wait);
            }
            let path = format!("/api/instances/{}/messages", instance["id"].as_str().unwrap_or_default());
            let message = client.expect("POST", &path, Some(&body))?;
            let when = if message["delivered_at"].is_null() { "held until it waits" } else { "typed" };
            println!("{} {when}", message["id"].as_str().unwrap_or_default());
            Ok(ExitCode::SUCCESS)
        }
        ClientCommand::Logs { target, id, follow, tail, plain } => {
            let client = Client::new(&target)?;
            let instance = client.instance(&id)?;
            logs(&client, instance["id"].as_str().unwrap_or_default(), follow, tail, plain)
        }
        ClientCommand::Stop { target, id } => {
            let client = Client::new(&target)?;
            let instance = client.instance(&id)?;
            let id = instance["id"].as_str().unwrap_or_default();
            let answer = client.call("PUT", &format!("/api/instances/{id}"), Some(&json!({"status": "terminated"})))?;
            let ended = match answer.status {
                200 => answer.body,
                // Already ended: say how.
                409 => client.expect("GET", &format!("/api/instances/{id}"), None)?,
                _ => return Err(super::http::refusal(&answer)),
            };
            println!("{} {}", short(id), status_with_reason(&ended));
            Ok(ExitCode::SUCCESS)
        }
        ClientCommand::Wait { target, id, state, timeout } => {
            let client = Client::new(&target)?;
            let instance = client.instance(&id)?;
            wait(&client, instance["id"].as_str().unwrap_or_default(), state, timeout.map(Duration::from_secs_f64))
        }
    }
}

fn short(id: &str) -> &str {
    &id[..8.min(id.len())]
}

fn status_with_reason(instance: &Value) -> String {
    let status = instance["status"].as_str().unwrap_or("?");
    match instance["status_reason"].as_str() {
        Some(reason) if !reason.is_empty() && reason != status => format!("{status} ({reason})"),
        _ => status.to_owned(),
    }
}

/// How long ago an RFC 3339 time was, in a few characters.
fn age(at: &Value) -> String {
    let Some(then) = at.as_str().and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()) else {
        return "-".into();
    };
    let secs = (chrono::Utc::now() - then.with_timezone(&chrono::Utc)).num_seconds().max(0);
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3599 => format!("{}m", secs / 60),
        3600..=86_399 => format!("{}h", secs / 3600),
        _ => format!("{}d", secs / 86_400),
    }
}

/// One line of text, at most `width` characters (control characters shown as spaces).
fn one_line(text: &str, width: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let flat: String = flat.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if flat.chars().count() <= width {
        flat
    } else {
        let cut: String = flat.chars().take(width.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

fn ls(client: &Client, waiting: bool, agent: Option<&str>, as_json: bool) -> Result<ExitCode, Failure> {
    let agents = client.all("/api/agents")?;
    let mut path = "/api/instances".to_owned();
    let mut query = Vec::new();
    if waiting {
        query.push("status=awaiting_input".to_owned());
    }
    if let Some(agent) = agent {
        let found = client.agent(agent)?;
        query.push(format!("agent_id={}", found["id"].as_str().unwrap_or_default()));
    }
    if !query.is_empty() {
        path = format!("{path}?{}", query.join("&"));
    }
    let mut instances = client.all(&path)?;
    let rank = |i: &Value| match i["status"].as_str() {
        Some("awaiting_input") => 0,
        Some("active") => 1,
        Some("idle") => 2,
        _ => 3,
    };
    // Waiting first (longest waiting first), then running, queued, ended (newest first).
    instances.sort_by(|a, b| {
        rank(a).cmp(&rank(b)).then_with(|| {
            let (x, y) = (a["last_activity_at"].as_str().unwrap_or(""), b["last_activity_at"].as_str().unwrap_or(""));
            if rank(a) == 0 {
                x.cmp(y)
            } else {
                y.cmp(x)
            }
        })
    });
    let mut out = std::io::stdout().lock();
    if as_json {
        let _ = writeln!(out, "{}", serde_json::to_string_pretty(&instances).unwrap_or_default());
        return Ok(ExitCode::SUCCESS);
    }
    if instances.is_empty() {
        let _ = writeln!(out, "no instances");
        return Ok(ExitCode::SUCCESS);
    }
    let name =
        |id: &Value| agents.iter().find(|a| a["id"] == *id).and_then(|a| a["name"].as_str()).unwrap_or("?").to_owned();
    let width: usize = std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()).unwrap_or(120);
    let _ = writeln!(out, "{:<8}  {:<16}  {:<30}  {:>4}  ASKS", "ID", "AGENT", "STATUS", "AGE");
    for i in &instances {
        let asks =
            if i["status"] == "awaiting_input" { i["prompt"].as_str().unwrap_or("(waiting for input)") } else { "" };
        let since = if i["status"] == "idle" { &i["last_activity_at"] } else { &i["started_at"] };
        let left = format!(
            "{:<8}  {:<16}  {:<30}  {:>4}  ",
            short(i["id"].as_str().unwrap_or_default()),
            one_line(&name(&i["agent_id"]), 16),
            one_line(&status_with_reason(i), 30),
            age(since)
        );
        let room = width.saturating_sub(left.chars().count()).max(20);
        let _ = writeln!(out, "{left}{}", one_line(asks, room).trim_end());
    }
    Ok(ExitCode::SUCCESS)
}

fn logs(client: &Client, id: &str, follow: bool, tail: Option<u64>, plain: bool) -> Result<ExitCode, Failure> {
    let path = format!("/api/instances/{id}/output");
    let mut offset = 0;
    if let Some(tail) = tail {
        let probe = client.call("GET", &format!("{path}?offset={}", u64::MAX / 2), None)?;
        let len: u64 = probe.header("X-Transcript-Length").and_then(|l| l.parse().ok()).unwrap_or(0);
        offset = len.saturating_sub(tail);
    }
    let mut render = Plain::default();
    let mut out = std::io::stdout().lock();
    loop {
        let answer = client.call("GET", &format!("{path}?offset={offset}"), None)?;
        if answer.status != 200 {
            return Err(Failure::Refused(format!("the server refused ({})", answer.status)));
        }
        if let Some(next) = answer.header("X-Transcript-Length").and_then(|l| l.parse().ok()) {
            offset = next;
        }
        let written =
            if plain { out.write_all(render.feed(&answer.text).as_bytes()) } else { out.write_all(&answer.text) };
        if written.and_then(|()| out.flush()).is_err() {
            return Ok(ExitCode::SUCCESS); // the reader went away (a pipe into head)
        }
        if !follow {
            break;
        }
        if answer.text.is_empty() {
            let now = client.expect("GET", &format!("/api/instances/{id}"), None)?;
            if FINAL.contains(&now["status"].as_str().unwrap_or("")) {
                // One last read: what it wrote before it ended.
                let rest = client.call("GET", &format!("{path}?offset={offset}"), None)?;
                let _ = out.write_all(&if plain { render.feed(&rest.text).into_bytes() } else { rest.text });
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    if plain {
        let rest = render.finish();
        if !rest.is_empty() {
            let _ = writeln!(out, "{rest}");
        }
    }
    let _ = out.flush();
    Ok(ExitCode::SUCCESS)
}

fn wait(client: &Client, id: &str, state: WaitFor, timeout: Option<Duration>) -> Result<ExitCode, Failure> {
    let started = Instant::now();
    loop {
        let now = client.expect("GET", &format!("/api/instances/{id}"), None)?;
        let status = now["status"].as_str().unwrap_or("");
        let ended = FINAL.contains(&status);
        let reached = match state {
            WaitFor::AwaitingInput => status == "awaiting_input",
            WaitFor::Ended => ended,
            WaitFor::Completed => status == "completed",
        };
        if reached {
            println!("{} {}", short(id), status_with_reason(&now));
            return Ok(ExitCode::SUCCESS);
        }
        if ended {
            return Err(Failure::Other(format!("{} ended {} instead", short(id), status_with_reason(&now))));
        }
        if timeout.is_some_and(|t| started.elapsed() >= t) {
            return Err(Failure::Other(format!(
                "{} is still {} after {:.0?}",
                short(id),
                status_with_reason(&now),
                started.elapsed()
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
