//! Claude Code: hooks given per instance with `--settings` (they apply above the
//! user's and the project's settings and merge with their hooks; no file of the
//! user's is touched). Each hook runs this server's own binary, `switchboard hook
//! claude`, which posts the hook's JSON with the instance token from its
//! environment: a command hook rather than an `http` one because `SessionStart`
//! takes commands only, and because the token then never appears in the program's
//! argv (which other users of the machine can read).

use std::time::Duration;

use serde_json::{json, Value};

use super::{shell_quote, Action};
use crate::domain::integration::one_line;

/// Hook events Switchboard listens to.
const EVENTS: [&str; 7] =
    ["SessionStart", "UserPromptSubmit", "PreToolUse", "PostToolUse", "PermissionRequest", "Notification", "Stop"];

/// The `--settings` JSON: every event's hook runs `switchboard hook claude`; a
/// permission request may be held for `hold` (its hook's timeout is a little longer).
#[must_use]
pub fn settings(exe: &str, hold: Duration) -> Value {
    let command = format!("{} hook claude", shell_quote(exe));
    let mut hooks = serde_json::Map::new();
    for event in EVENTS {
        let timeout = if event == "PermissionRequest" { hold.as_secs() + 30 } else { 30 };
        let handler = json!({ "type": "command", "command": command, "timeout": timeout });
        let entry = if matches!(event, "PreToolUse" | "PostToolUse" | "PermissionRequest") {
            json!({ "matcher": "*", "hooks": [handler] })
        } else {
            json!({ "hooks": [handler] })
        };
        hooks.insert(event.to_owned(), json!([entry]));
    }
    json!({ "hooks": hooks })
}

fn text<'a>(payload: &'a Value, key: &str) -> Option<&'a str> {
    payload.get(key).and_then(Value::as_str).filter(|t| !t.trim().is_empty())
}

/// What a hook's JSON means.
#[must_use]
pub fn interpret(payload: &Value) -> Vec<Action> {
    let event = text(payload, "hook_event_name").unwrap_or("");
    let tool = text(payload, "tool_name").unwrap_or("");
    match event {
        "SessionStart" => {
            text(payload, "session_id").map(|id| vec![Action::Session(id.to_owned())]).unwrap_or_default()
        }
        "PreToolUse" if tool == "AskUserQuestion" => {
            let (prompt, options) = question(payload.get("tool_input").unwrap_or(&Value::Null));
            vec![Action::Waiting {
                reason: "hook: AskUserQuestion".into(),
                prompt: Some(prompt.clone()),
                message: Some((prompt, options)),
            }]
        }
        "UserPromptSubmit" | "PreToolUse" | "PostToolUse" => {
            let reason = if tool.is_empty() { format!("hook: {event}") } else { format!("hook: {event} {tool}") };
            vec![Action::Working { reason }]
        }
        "PermissionRequest" => vec![Action::Permission {
            tool_name: if tool.is_empty() { "unknown".to_owned() } else { tool.to_owned() },
            tool_input: payload.get("tool_input").cloned().unwrap_or(Value::Null),
        }],
        "Notification" => {
            let kind = text(payload, "notification_type").unwrap_or("notification");
            let said = text(payload, "message").unwrap_or("Claude Code needs your attention").to_owned();
            vec![Action::Waiting {
                reason: format!("hook: Notification {kind}"),
                prompt: Some(said.clone()),
                message: Some((said, Vec::new())),
            }]
        }
        "Stop" => {
            let last = text(payload, "last_assistant_message").map(str::to_owned);
            vec![Action::Waiting {
                reason: "hook: Stop".into(),
                prompt: last.clone().or_else(|| Some("Claude Code finished its turn".into())),
                message: last.map(|m| (m, Vec::new())),
            }]
        }
        _ => Vec::new(),
    }
}

/// The questions of an `AskUserQuestion` call, and the first one's choices.
fn question(input: &Value) -> (String, Vec<String>) {
    let questions = input.get("questions").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut lines = Vec::new();
    let mut options = Vec::new();
    for (i, q) in questions.iter().enumerate() {
        if let Some(text) = q.get("question").and_then(Value::as_str) {
            lines.push(one_line(text, 500));
        }
        if i == 0 {
            options = q
                .get("options")
                .and_then(Value::as_array)
                .map(|o| o.iter().filter_map(|o| o.get("label").and_then(Value::as_str).map(str::to_owned)).collect())
                .unwrap_or_default();
        }
    }
    let prompt = if lines.is_empty() { "Claude Code asks a question".to_owned() } else { lines.join("\n") };
    (prompt, options)
}

/// The hook's answer to a decided permission request.
#[must_use]
pub fn permission_answer(allow: bool, message: Option<&str>) -> Value {
    let mut decision = json!({ "behavior": if allow { "allow" } else { "deny" } });
    if let Some(message) = message.filter(|m| !m.is_empty()) {
        decision["message"] = json!(message);
    }
    json!({ "hookSpecificOutput": { "hookEventName": "PermissionRequest", "decision": decision } })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_settings_hook_every_event_with_the_binary_quoted() {
        let s = settings("/opt/sb dir/switchboard", Duration::from_secs(600));
        assert_eq!(s["hooks"]["PermissionRequest"][0]["hooks"][0]["timeout"], 630);
        assert_eq!(s["hooks"]["Stop"][0]["hooks"][0]["command"], "'/opt/sb dir/switchboard' hook claude");
        assert!(s["hooks"]["SessionStart"][0].get("matcher").is_none());
    }

    #[test]
    fn hooks_read_as_what_they_mean() {
        let stop = interpret(&json!({"hook_event_name": "Stop", "last_assistant_message": "Done."}));
        assert!(matches!(&stop[0], Action::Waiting { prompt: Some(p), .. } if p == "Done."));
        let pre = interpret(&json!({"hook_event_name": "PreToolUse", "tool_name": "Bash"}));
        assert_eq!(pre, vec![Action::Working { reason: "hook: PreToolUse Bash".into() }]);
        let ask = interpret(&json!({"hook_event_name": "PreToolUse", "tool_name": "AskUserQuestion",
            "tool_input": {"questions": [{"question": "Which database?", "options": [{"label": "Postgres"}, {"label": "SQLite"}]}]}}));
        assert!(
            matches!(&ask[0], Action::Waiting { message: Some((m, o)), .. } if m == "Which database?" && o.len() == 2)
        );
        assert_eq!(permission_answer(false, Some("no"))["hookSpecificOutput"]["decision"]["message"], "no");
    }
}
