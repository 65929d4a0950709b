//! Codex CLI: its `notify` program, set with a config override on the command
//! line, is called with one JSON argument at the end of each turn.

use serde_json::Value;

use super::Action;

/// `notify=["<switchboard>", "hook", "codex"]`, for `-c`.
#[must_use]
pub fn notify_override(exe: &str) -> String {
    format!("notify={}", serde_json::json!([exe, "hook", "codex"]))
}

/// What a notify payload means.
#[must_use]
pub fn interpret(payload: &Value) -> Vec<Action> {
    let mut actions = Vec::new();
    if let Some(thread) = payload.get("thread-id").and_then(Value::as_str) {
        actions.push(Action::Session(thread.to_owned()));
    }
    if payload.get("type").and_then(Value::as_str) == Some("agent-turn-complete") {
        let last = payload.get("last-assistant-message").and_then(Value::as_str).map(str::to_owned);
        actions.push(Action::Waiting {
            reason: "hook: codex agent-turn-complete".into(),
            message: last.clone().filter(|m| !m.trim().is_empty()).map(|m| (m, Vec::new())),
            prompt: last.filter(|m| !m.trim().is_empty()),
        });
    }
    actions
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_finished_turn_waits_with_its_last_message() {
        let payload = json!({"type": "agent-turn-complete", "thread-id": "t-1", "turn-id": "9",
            "input-messages": ["fix it"], "last-assistant-message": "Fixed. Run the tests?"});
        let actions = interpret(&payload);
        assert_eq!(actions[0], Action::Session("t-1".into()));
        assert!(matches!(&actions[1], Action::Waiting { prompt: Some(p), .. } if p == "Fixed. Run the tests?"));
        assert!(interpret(&json!({"type": "something-else"})).is_empty());
        assert_eq!(notify_override("/x/sb"), r#"notify=["/x/sb","hook","codex"]"#);
    }
}
