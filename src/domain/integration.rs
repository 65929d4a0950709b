//! Coding agents as Switchboard knows them: the built-in presets (argv, integration,
//! what each gives), the integration an agent's instances get, the approval rules an
//! agent may set, and approvals themselves.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::Invalid;

/// How Switchboard hears from an agent's program beyond its terminal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Integration {
    /// The terminal only (the kernel signal and prompt patterns).
    #[default]
    None,
    /// Claude Code: hooks given with `--settings`, a session id chosen by Switchboard.
    ClaudeCode,
    /// Codex CLI: its `notify` program.
    Codex,
    /// Gemini CLI: the terminal (its hooks need its settings files edited).
    Gemini,
    /// Aider: its `--notifications-command`.
    Aider,
}

impl Integration {
    /// The stored form.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Integration::None => "none",
            Integration::ClaudeCode => "claude-code",
            Integration::Codex => "codex",
            Integration::Gemini => "gemini",
            Integration::Aider => "aider",
        }
    }

    /// Parses the stored form.
    ///
    /// # Errors
    /// Any other text.
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        [Integration::None, Integration::ClaudeCode, Integration::Codex, Integration::Gemini, Integration::Aider]
            .into_iter()
            .find(|i| i.as_str() == text)
            .ok_or_else(|| {
                Invalid::new(
                    "settings.integration",
                    format!("unknown value {text:?}; expected none, claude-code, codex, gemini or aider"),
                )
            })
    }

    /// The `switchboard hook` subcommand argument for this integration.
    #[must_use]
    pub fn hook_name(self) -> Option<&'static str> {
        match self {
            Integration::ClaudeCode => Some("claude"),
            Integration::Codex => Some("codex"),
            Integration::Aider => Some("aider"),
            Integration::Gemini | Integration::None => None,
        }
    }
}

/// A built-in agent template.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Preset {
    /// `claude-code`, `codex`, `gemini`, `aider` or `shell`.
    pub name: &'static str,
    pub description: &'static str,
    /// The command an agent made from it runs (the program first).
    pub command: Vec<String>,
    pub integration: Integration,
    /// What the integration gives.
    pub gives: Gives,
    /// Whether the program was found (on `PATH`, or at the configured path).
    pub available: bool,
    /// Why not, when it is not.
    pub unavailable_reason: Option<String>,
    /// Where the program was found.
    pub program_path: Option<String>,
}

/// What a preset's integration tells Switchboard.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
pub struct Gives {
    /// The agent's own words when it waits (not the screen's last lines).
    pub exact_question: bool,
    /// Permission requests held for a decision from the API, the dashboard or a rule.
    pub approvals: bool,
    /// `POST /api/instances/:id/resume` continues the conversation.
    pub resume: bool,
    /// Where `awaiting_input` comes from: `hook`, `notify` or `kernel`.
    pub detection: &'static str,
}

/// The built-in presets, each with the program it runs.
pub const PRESETS: [(&str, &str, &str, Integration, Gives); 5] = [
    (
        "claude-code",
        "claude",
        "Claude Code: hooks report each question, permission request and turn's end; approvals and resume",
        Integration::ClaudeCode,
        Gives { exact_question: true, approvals: true, resume: true, detection: "hook" },
    ),
    (
        "codex",
        "codex",
        "Codex CLI: its notify program reports each turn's end with the last message; resume",
        Integration::Codex,
        Gives { exact_question: true, approvals: false, resume: true, detection: "notify" },
    ),
    (
        "gemini",
        "gemini",
        "Gemini CLI: the terminal signal (its hooks need its own settings files edited)",
        Integration::Gemini,
        Gives { exact_question: false, approvals: false, resume: false, detection: "kernel" },
    ),
    (
        "aider",
        "aider",
        "Aider: its notifications command reports when it waits",
        Integration::Aider,
        Gives { exact_question: false, approvals: false, resume: false, detection: "notify" },
    ),
    (
        "shell",
        "bash",
        "An interactive shell",
        Integration::None,
        Gives { exact_question: false, approvals: false, resume: false, detection: "kernel" },
    ),
];

/// What a rule or a person decides about a permission request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Allow,
    Deny,
}

/// Most approval rules an agent may have.
pub const MAX_RULES: usize = 64;

/// An agent's rule: requests for `tool` whose input matches `match` are decided at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRule {
    /// The tool's name as the agent gives it (`Bash`, `Edit`, …); `*` for any.
    pub tool: String,
    /// A regular expression matched against the request's command (for `Bash`), or
    /// its file path, or else its whole input as JSON; absent: any request of the tool.
    #[serde(default, rename = "match")]
    pub pattern: Option<String>,
    pub decision: Decision,
}

impl ApprovalRule {
    /// Checks a list of rules.
    ///
    /// # Errors
    /// Too many rules, an empty tool, or a pattern that is not a regular expression.
    pub fn validate_all(rules: &[ApprovalRule]) -> Result<(), Invalid> {
        if rules.len() > MAX_RULES {
            return Err(Invalid::new("settings.approvals", format!("at most {MAX_RULES} rules")));
        }
        for (i, rule) in rules.iter().enumerate() {
            if rule.tool.trim().is_empty() || rule.tool.len() > 200 {
                return Err(Invalid::new(format!("settings.approvals[{i}].tool"), "must be a tool name or *"));
            }
            if let Some(pattern) = &rule.pattern {
                regex::RegexBuilder::new(pattern).size_limit(1 << 20).build().map_err(|e| {
                    Invalid::new(
                        format!("settings.approvals[{i}].match"),
                        format!("not a valid regular expression: {e}"),
                    )
                })?;
            }
        }
        Ok(())
    }

    /// Whether this rule decides a request of `tool` with `input`.
    #[must_use]
    pub fn matches(&self, tool: &str, input: &Value) -> bool {
        if self.tool != "*" && self.tool != tool {
            return false;
        }
        let Some(pattern) = &self.pattern else { return true };
        let Ok(re) = regex::RegexBuilder::new(pattern).size_limit(1 << 20).build() else { return false };
        re.is_match(&subject(input))
    }
}

/// What a request is about, in one line: a command, a file path, or the input as JSON.
#[must_use]
pub fn subject(input: &Value) -> String {
    for key in ["command", "file_path", "path", "url", "pattern"] {
        if let Some(text) = input.get(key).and_then(Value::as_str) {
            return text.to_owned();
        }
    }
    input.to_string()
}

/// Where a permission request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    /// Held: the agent's hook waits for a decision.
    Pending,
    Allowed,
    Denied,
    /// Nobody decided within the hold time; the agent's own prompt decides.
    Expired,
    /// The agent moved on without it (answered in its terminal, or it ended).
    Withdrawn,
}

impl ApprovalStatus {
    /// The stored form.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Allowed => "allowed",
            ApprovalStatus::Denied => "denied",
            ApprovalStatus::Expired => "expired",
            ApprovalStatus::Withdrawn => "withdrawn",
        }
    }

    /// Parses the stored form.
    ///
    /// # Errors
    /// Any other text.
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        [
            ApprovalStatus::Pending,
            ApprovalStatus::Allowed,
            ApprovalStatus::Denied,
            ApprovalStatus::Expired,
            ApprovalStatus::Withdrawn,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
        .ok_or_else(|| Invalid::new("status", format!("unknown approval status {text:?}")))
    }
}

/// A permission request an agent made, and what became of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Approval {
    pub id: Uuid,
    pub instance_id: Uuid,
    pub agent_id: Uuid,
    /// The tool the agent wants to use (`Bash`, `Edit`, …).
    pub tool_name: String,
    /// The tool's input as the agent gave it.
    #[schema(value_type = Object)]
    pub tool_input: Value,
    /// The request as a person reads it: `Allow Bash: touch made-by-agent?`.
    pub question: String,
    pub status: ApprovalStatus,
    /// Who decided: `user`, `rule <n>: <tool> <match>`, `timeout`, or `agent` (withdrawn).
    pub decided_by: Option<String>,
    /// The message given with the decision (a denial's reason reaches the agent).
    pub message: Option<String>,
    pub created_at: String,
    pub decided_at: Option<String>,
}

impl Approval {
    /// A new pending request.
    #[must_use]
    pub fn new(instance_id: Uuid, agent_id: Uuid, tool_name: &str, tool_input: Value) -> Self {
        let question = format!("Allow {tool_name}: {}?", one_line(&subject(&tool_input), 300));
        Approval {
            id: Uuid::new_v4(),
            instance_id,
            agent_id,
            tool_name: tool_name.to_owned(),
            tool_input,
            question,
            status: ApprovalStatus::Pending,
            decided_by: None,
            message: None,
            created_at: super::now(),
            decided_at: None,
        }
    }
}

/// `text` on one line, at most `max` characters (an ellipsis marks a cut).
#[must_use]
pub fn one_line(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        flat
    } else {
        let mut cut: String = flat.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rules_match_the_tool_and_the_command() {
        let rule = ApprovalRule {
            tool: "Bash".into(),
            pattern: Some("^npm (test|run lint)".into()),
            decision: Decision::Allow,
        };
        assert!(rule.matches("Bash", &json!({"command": "npm test"})));
        assert!(!rule.matches("Bash", &json!({"command": "rm -rf / && npm test"})));
        assert!(!rule.matches("Edit", &json!({"command": "npm test"})));
        let any = ApprovalRule { tool: "*".into(), pattern: None, decision: Decision::Deny };
        assert!(any.matches("Write", &json!({"file_path": "/etc/passwd"})));
        let bad = [ApprovalRule { tool: "Bash".into(), pattern: Some("(".into()), decision: Decision::Allow }];
        assert_eq!(ApprovalRule::validate_all(&bad).expect_err("regex").field, "settings.approvals[0].match");
    }

    #[test]
    fn a_question_names_the_tool_and_what_it_would_do() {
        let a = Approval::new(Uuid::new_v4(), Uuid::new_v4(), "Bash", json!({"command": "touch\n made-by-agent"}));
        assert_eq!(a.question, "Allow Bash: touch made-by-agent?");
        let w =
            Approval::new(Uuid::new_v4(), Uuid::new_v4(), "Write", json!({"file_path": "/w/a.txt", "content": "x"}));
        assert_eq!(w.question, "Allow Write: /w/a.txt?");
        assert_eq!(Integration::parse("claude-code"), Ok(Integration::ClaudeCode));
        assert!(Integration::parse("claude").is_err());
    }
}
