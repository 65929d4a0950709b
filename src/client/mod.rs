//! The terminal client: `switchboard ls`, `attach`, `new`, `send`, `logs`, `stop`,
//! `wait` and `completions`, talking to a server over its public HTTP API only
//! (the API the dashboard uses).
//!
//! It is synchronous (no runtime: plain threads and blocking HTTP), so it starts in
//! a few milliseconds. Every failure is one line on stderr and exit code 1; a
//! command line that does not parse is clap's message and exit code 2.

mod attach;
mod commands;
mod hook;
mod http;
mod render;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};

pub use http::{Client, Failure};

/// Where the server is, and who asks.
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// The server's URL
    #[arg(long, env = "SWITCHBOARD_URL", value_name = "URL", default_value = "http://127.0.0.1:7788")]
    pub url: String,
    /// API token [default: SWITCHBOARD_TOKEN; inside an instance its SWITCHBOARD_INSTANCE_TOKEN;
    /// else DATA_DIR/token of a local server]
    #[arg(long, env = "SWITCHBOARD_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Data directory of a local server, where its token is
    #[arg(long, env = "SWITCHBOARD_DATA_DIR", value_name = "DIR", default_value = "./data")]
    pub data_dir: PathBuf,
}

/// The key that leaves an attached instance running: `^\` (Ctrl-\, the default),
/// `^]`, any `^X`, or one character.
#[derive(Debug, Clone, Args)]
pub struct DetachKey {
    /// Key that detaches, e.g. `^\` or `^]`
    #[arg(long = "detach-key", value_name = "KEY", default_value = "^\\", value_parser = parse_detach_key)]
    pub byte: u8,
}

fn parse_detach_key(text: &str) -> Result<u8, String> {
    let bytes = text.as_bytes();
    match bytes {
        [b'^', c] if (b'@'..=b'_').contains(&c.to_ascii_uppercase()) => Ok(c.to_ascii_uppercase() - b'@'),
        [c] if c.is_ascii() => Ok(*c),
        _ => Err(format!("{text:?} is not a key: give ^X (a control key) or one ASCII character")),
    }
}

/// A state `wait` waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WaitFor {
    /// Waiting for input.
    #[value(name = "awaiting_input")]
    AwaitingInput,
    /// Ended, however it ended (`completed`, `error` or `terminated`).
    Ended,
    /// Ended with `completed`.
    Completed,
}

/// The client's subcommands.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// List instances: waiting ones first, then running, queued and ended
    Ls {
        #[command(flatten)]
        target: Target,
        /// Only those waiting for input
        #[arg(long)]
        waiting: bool,
        /// Only this agent's (name or id)
        #[arg(long, value_name = "NAME")]
        agent: Option<String>,
        /// Print the instances as JSON (for scripts)
        #[arg(long)]
        json: bool,
    },
    /// Your terminal in an instance's: type into it, watch it; the detach key leaves it running
    Attach {
        #[command(flatten)]
        target: Target,
        /// Instance id, or a unique prefix of it
        id: String,
        #[command(flatten)]
        detach: DetachKey,
    },
    /// Start an instance of an agent
    New {
        #[command(flatten)]
        target: Target,
        /// Agent name, or id
        agent: String,
        /// Typed (then Enter) once the program waits for input
        #[arg(long)]
        prompt: Option<String>,
        /// Attach to it at once
        #[arg(long)]
        attach: bool,
        #[command(flatten)]
        detach: DetachKey,
    },
    /// Send an instance a message: typed the next time it waits, or at once with --now
    Send {
        #[command(flatten)]
        target: Target,
        /// Instance id, or a unique prefix of it
        id: String,
        /// The message
        text: String,
        /// Type it at once, waiting or not
        #[arg(long)]
        now: bool,
        /// Only as the answer to this question (the instance's `wait_id`, as in `ls --json`):
        /// refused, and nothing typed, if the instance waits on something else by then
        #[arg(long, value_name = "WAIT_ID", conflicts_with = "now")]
        in_reply_to: Option<String>,
    },
    /// Print an instance's transcript
    Logs {
        #[command(flatten)]
        target: Target,
        /// Instance id, or a unique prefix of it
        id: String,
        /// Keep printing what it writes until it ends
        #[arg(short, long)]
        follow: bool,
        /// Only the last BYTES of it
        #[arg(long, value_name = "BYTES")]
        tail: Option<u64>,
        /// As text: escape sequences removed, overwritten lines as they ended up
        #[arg(long)]
        plain: bool,
    },
    /// End an instance (its whole process tree)
    Stop {
        #[command(flatten)]
        target: Target,
        /// Instance id, or a unique prefix of it
        id: String,
    },
    /// Wait until an instance reaches a state (exit 0), ends otherwise or times out (exit 1)
    Wait {
        #[command(flatten)]
        target: Target,
        /// Instance id, or a unique prefix of it
        id: String,
        /// The state to wait for
        #[arg(long = "for", value_enum, default_value = "ended")]
        state: WaitFor,
        /// Give up after this many seconds
        #[arg(long, value_name = "SECONDS")]
        timeout: Option<f64>,
    },
    /// Allow (or deny) the permission request an instance waits on
    Approve {
        #[command(flatten)]
        target: Target,
        /// Instance id, or a unique prefix of it
        id: String,
        /// Deny it instead
        #[arg(long)]
        deny: bool,
        /// Told to the agent with the decision (a denial's reason)
        #[arg(long, value_name = "TEXT")]
        message: Option<String>,
    },
    /// Report from inside an instance (agents' hooks and notify programs run this):
    /// reads the hook's JSON on stdin (claude), takes it as the last argument (codex),
    /// or none (aider); prints the server's answer for the agent
    Hook {
        /// Which agent reports
        #[arg(value_enum)]
        kind: hook::Kind,
        /// The payload, for agents that pass it as an argument (codex)
        payload: Option<String>,
    },
    /// Print shell completions: switchboard completions bash > /etc/bash_completion.d/switchboard
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },
}

/// Runs a client command; failures are one line on stderr and exit code 1.
#[must_use]
pub fn run(command: ClientCommand, cli: clap::Command) -> ExitCode {
    match commands::run(command, cli) {
        Ok(code) => code,
        Err(failure) => {
            eprintln!("switchboard: {failure}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detach_keys_parse() {
        assert_eq!(parse_detach_key("^\\"), Ok(0x1c));
        assert_eq!(parse_detach_key("^]"), Ok(0x1d));
        assert_eq!(parse_detach_key("^a"), Ok(1));
        assert_eq!(parse_detach_key("q"), Ok(b'q'));
        assert!(parse_detach_key("^").is_ok());
        assert!(parse_detach_key("ab").is_err());
    }
}
