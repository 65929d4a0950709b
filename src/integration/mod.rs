//! Coding agents' own reports: the presets and where their programs are, the
//! command line that makes an agent's program report to Switchboard (hooks given
//! with its settings, a notify program), what each report means
//! ([`claude`], [`codex`], [`aider`]), and the permission requests held open for a
//! decision ([`Hooks::hold`]).

pub mod claude;
pub mod codex;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;
use uuid::Uuid;

use crate::domain::instance::Instance;
use crate::domain::integration::{Approval, Integration, Preset, PRESETS};

/// What a report from an agent's program means for its instance.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// The program's own session id (to resume it later).
    Session(String),
    /// It works (a prompt was submitted, a tool runs).
    Working { reason: String },
    /// It waits for someone: what it asks (`None`: the screen's last lines) and, when
    /// it said something, the agent message to record (with its choices).
    Waiting { reason: String, prompt: Option<String>, message: Option<(String, Vec<String>)> },
    /// It asks permission to use a tool; the answer goes back to it.
    Permission { tool_name: String, tool_input: serde_json::Value },
}

/// The integrations' shared state: the hook command, the hold time, the programs,
/// and the permission requests held open for a decision.
pub struct Hooks {
    /// This server's own binary, which agents run as their hook command.
    pub exe: PathBuf,
    /// How long a permission request is held for a decision.
    pub hold: Duration,
    programs: BTreeMap<String, PathBuf>,
    pending: Mutex<HashMap<Uuid, oneshot::Sender<Approval>>>,
}

/// Whether `name` is a built-in preset.
#[must_use]
pub fn is_preset(name: &str) -> bool {
    PRESETS.iter().any(|(preset, ..)| *preset == name)
}

impl Hooks {
    /// With the configured hold time and program paths (by preset name).
    #[must_use]
    pub fn new(exe: PathBuf, hold: Duration, programs: BTreeMap<String, PathBuf>) -> Self {
        Hooks { exe, hold, programs, pending: Mutex::new(HashMap::new()) }
    }

    /// Every preset, each with whether its program is found (on `search`, a `PATH`).
    #[must_use]
    pub fn presets(&self, search: Option<&std::ffi::OsStr>) -> Vec<Preset> {
        PRESETS
            .iter()
            .map(|(name, program, description, integration, gives)| {
                let configured = self.programs.get(*name);
                let found = match configured {
                    Some(path) => executable(path).then(|| path.clone()),
                    None => search.and_then(|s| on_path(program, s)),
                };
                let unavailable_reason = match (&found, configured) {
                    (Some(_), _) => None,
                    (None, Some(path)) => Some(format!("{} (configured in [agents.programs]) is not an executable file", path.display())),
                    (None, None) => Some(format!("{program} is not on the server's PATH; install it, or set its path under [agents.programs] in the config")),
                };
                // A configured path is run as given; a program on PATH by its name.
                let command = vec![configured.map_or_else(|| (*program).to_owned(), |p| p.display().to_string())];
                Preset {
                    name,
                    description,
                    command,
                    integration: *integration,
                    gives: *gives,
                    available: found.is_some(),
                    unavailable_reason,
                    program_path: found.map(|p| p.display().to_string()),
                }
            })
            .collect()
    }

    /// Holds a pending request open: the receiver gets it once decided.
    pub fn hold(&self, id: Uuid) -> oneshot::Receiver<Approval> {
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap_or_else(PoisonError::into_inner).insert(id, tx);
        rx
    }

    /// Hands a decision to the request's waiting hook, if it still waits.
    pub fn decided(&self, approval: Approval) {
        if let Some(tx) = self.pending.lock().unwrap_or_else(PoisonError::into_inner).remove(&approval.id) {
            let _ = tx.send(approval);
        }
    }

    /// Stops holding a request (it timed out, or its hook went away).
    pub fn forget(&self, id: Uuid) {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
    }
}

fn executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

fn on_path(program: &str, search: &std::ffi::OsStr) -> Option<PathBuf> {
    std::env::split_paths(search).map(|dir| dir.join(program)).find(|p| executable(p))
}

/// `text` quoted for a POSIX shell (hook commands are run by one).
#[must_use]
pub fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// The program's argv for an instance: the agent's command, plus what makes the
/// program report to Switchboard and continue a resumed session.
#[must_use]
pub fn argv(integration: Integration, command: &[String], instance: &Instance, hooks: &Hooks) -> Vec<String> {
    let mut argv = command.to_vec();
    let exe = hooks.exe.display().to_string();
    let session = instance.agent_session_id.as_deref();
    match integration {
        Integration::ClaudeCode => {
            match (session, instance.resumed_from) {
                (Some(id), Some(_)) => argv.extend(["--resume".to_owned(), id.to_owned()]),
                (Some(id), None) => argv.extend(["--session-id".to_owned(), id.to_owned()]),
                (None, _) => {}
            }
            argv.extend(["--settings".to_owned(), claude::settings(&exe, hooks.hold).to_string()]);
        }
        Integration::Codex => {
            if let (Some(id), Some(_)) = (session, instance.resumed_from) {
                argv.splice(1..1, ["resume".to_owned(), id.to_owned()]);
            }
            argv.extend(["-c".to_owned(), codex::notify_override(&exe)]);
        }
        Integration::Aider => {
            let command = format!("{} hook aider", shell_quote(&exe));
            argv.extend(["--notifications".to_owned(), "--notifications-command".to_owned(), command]);
        }
        Integration::Gemini | Integration::None => {}
    }
    argv
}

/// Why an ended instance cannot be resumed, if it cannot.
#[must_use]
pub fn cannot_resume(integration: Integration, instance: &Instance) -> Option<String> {
    let gives = PRESETS.iter().find(|p| p.3 == integration).map(|p| p.4);
    match gives {
        Some(g) if g.resume && integration != Integration::None => {}
        _ => {
            return Some(format!(
                "the agent's integration ({}) cannot continue a conversation; claude-code and codex can",
                integration.as_str()
            ))
        }
    }
    if instance.agent_session_id.is_none() {
        return Some("the instance never reported its session id, so there is no conversation to continue".into());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_quotes_and_spaces() {
        assert_eq!(shell_quote("/opt/my dir/switch'board"), r"'/opt/my dir/switch'\''board'");
    }

    #[test]
    fn a_missing_program_is_unavailable_with_the_reason() {
        let hooks = Hooks::new(PathBuf::from("/bin/true"), Duration::from_secs(60), BTreeMap::new());
        let presets = hooks.presets(Some(std::ffi::OsStr::new("/nonexistent")));
        let claude = presets.iter().find(|p| p.name == "claude-code").expect("listed");
        assert!(!claude.available);
        assert!(claude.unavailable_reason.as_deref().unwrap_or("").contains("claude is not on the server's PATH"));
        let found = hooks.presets(Some(std::ffi::OsStr::new("/usr/bin:/bin")));
        assert!(found.iter().find(|p| p.name == "shell").expect("shell").available);
    }
}
