//! `switchboard hook KIND`: what an agent's hook or notify program runs inside an
//! instance. It posts the report to the instance's server with the instance's own
//! token (from the environment the instance was given) and prints the server's
//! answer for the agent. It never blocks the agent: whatever goes wrong is one line
//! on stderr and exit code 1, which agents treat as a hook that said nothing (never
//! 2, which Claude Code reads as "block").

use std::io::Read;
use std::process::ExitCode;

use clap::ValueEnum;
use serde_json::Value;

/// Which agent reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// Claude Code's hooks (JSON on stdin)
    Claude,
    /// Codex CLI's notify program (JSON as the last argument)
    Codex,
    /// Aider's notifications command (no payload)
    Aider,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Claude => "claude",
            Kind::Codex => "codex",
            Kind::Aider => "aider",
        }
    }
}

/// Most bytes of a hook's JSON read from stdin.
const MAX_INPUT: u64 = 16 << 20;

/// Posts the report; prints the answer.
pub fn report(kind: Kind, argument: Option<String>) -> ExitCode {
    match send(kind, argument) {
        Ok(answer) => {
            // A held request's answer comes after white space that kept its connection checked.
            let answer = answer.trim();
            if !answer.is_empty() && answer != "{}" {
                println!("{answer}");
            }
            ExitCode::SUCCESS
        }
        Err(why) => {
            eprintln!("switchboard hook {}: {why}", kind.name());
            ExitCode::FAILURE
        }
    }
}

fn send(kind: Kind, argument: Option<String>) -> Result<String, String> {
    let var =
        |name: &str| std::env::var(name).map_err(|_| format!("{name} is not set (run inside a Switchboard instance)"));
    let (url, id, token) =
        (var("SWITCHBOARD_URL")?, var("SWITCHBOARD_INSTANCE_ID")?, var("SWITCHBOARD_INSTANCE_TOKEN")?);
    let body = match kind {
        Kind::Claude => {
            let mut text = Vec::new();
            std::io::stdin().take(MAX_INPUT).read_to_end(&mut text).map_err(|e| format!("cannot read stdin: {e}"))?;
            let mut payload: Value = serde_json::from_slice(&text).map_err(|e| format!("stdin is not JSON: {e}"))?;
            // What a tool returned can be large and is not needed to know the state.
            if let Some(fields) = payload.as_object_mut() {
                fields.remove("tool_response");
            }
            payload.to_string()
        }
        Kind::Codex => argument.unwrap_or_default(),
        Kind::Aider => String::new(),
    };
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let address = format!("{}/api/instances/{id}/hooks/{}", url.trim_end_matches('/'), kind.name());
    let mut response = agent
        .post(&address)
        .header("Authorization", &format!("Bearer {token}"))
        .header("Content-Type", "application/json")
        .send(body)
        .map_err(|e| format!("cannot reach {url}: {e}"))?;
    let status = response.status().as_u16();
    let mut answer = String::new();
    response.body_mut().as_reader().take(1 << 20).read_to_string(&mut answer).map_err(|e| e.to_string())?;
    if status != 200 {
        return Err(format!("the server answered {status}: {}", answer.trim()));
    }
    Ok(answer)
}
