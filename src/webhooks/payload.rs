//! The bodies POSTed to subscriptions: the standard envelope, or one line of text
//! for chat incoming webhooks (Slack, Mattermost, Discord's Slack-compatible URL).

use serde_json::{json, Value};

/// `{"type", "id", "timestamp", "data"}`, the event's own payload as `data`.
#[must_use]
pub fn standard(kind: &str, seq: i64, at: &str, data: &Value) -> String {
    json!({ "type": kind, "id": seq.to_string(), "timestamp": at, "data": data }).to_string()
}

/// `{"text": …}`: who (the agent), which instance, what happened, and the prompt
/// when an instance waits for someone.
#[must_use]
pub fn slack(kind: &str, agent_name: Option<&str>, data: &Value) -> String {
    json!({ "text": slack_text(kind, agent_name, data) }).to_string()
}

fn slack_text(kind: &str, agent_name: Option<&str>, data: &Value) -> String {
    let text = |v: &Value| v.as_str().map(escape).unwrap_or_default();
    let agent = agent_name.map_or_else(|| "an agent".to_owned(), |n| format!("*{}*", escape(n)));
    match kind {
        "instance.status" => {
            let instance = short(&data["instance_id"]);
            let status = text(&data["status"]);
            match status.as_str() {
                "awaiting_input" => {
                    let prompt = text(&data["prompt"]);
                    let prompt = if prompt.is_empty() { "(no prompt text)".to_owned() } else { prompt };
                    format!("{agent} needs you: {prompt}\n(instance `{instance}` is awaiting input)")
                }
                _ => {
                    let mut line = format!("{agent} instance `{instance}` is now {status}");
                    if let Some(code) = data["exit_code"].as_i64() {
                        line.push_str(&format!(" (exit code {code})"));
                    }
                    let reason = text(&data["reason"]);
                    if !reason.is_empty() {
                        line.push_str(&format!(": {reason}"));
                    }
                    line
                }
            }
        }
        "instance.created" => {
            format!("{agent} instance `{}` was created", short(&data["instance"]["id"]))
        }
        "message.created" => {
            let message = &data["message"];
            let from = if message["sender_type"] == "agent" { "the agent" } else { "a person" };
            let verb = if message["requires_user_input"] == true { "asks" } else { "says" };
            format!(
                "{agent} instance `{}`: {from} {verb}: {}",
                short(&message["agent_instance_id"]),
                clip(&text(&message["content"]))
            )
        }
        "agent.created" | "agent.updated" => format!("{agent} was {}", verb_of(kind)),
        "agent.deleted" => format!("{agent} was deleted"),
        "task.created" | "task.updated" => {
            let task = &data["task"];
            format!(
                "Task #{} \"{}\" was {} (status {})",
                task["id"],
                clip(&text(&task["title"])),
                verb_of(kind),
                text(&task["status"])
            )
        }
        "task.deleted" => format!("Task #{} was deleted", data["id"]),
        other => format!("Switchboard event {}", escape(other)),
    }
}

fn verb_of(kind: &str) -> &'static str {
    if kind.ends_with(".created") {
        "created"
    } else {
        "updated"
    }
}

/// The first 8 characters of an id, enough to tell instances apart in a chat.
fn short(id: &Value) -> String {
    id.as_str().map(|s| s.chars().take(8).collect()).unwrap_or_default()
}

fn clip(text: &str) -> String {
    const MAX: usize = 500;
    if text.chars().count() <= MAX {
        text.to_owned()
    } else {
        text.chars().take(MAX).chain(std::iter::once('…')).collect()
    }
}

/// Slack's three control characters in message text.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_envelope_carries_type_id_timestamp_and_data() {
        let body: Value =
            serde_json::from_str(&standard("task.deleted", 42, "2026-11-26T11:00:00.123Z", &json!({"id": 7})))
                .expect("json");
        assert_eq!(
            body,
            json!({"type": "task.deleted", "id": "42", "timestamp": "2026-11-26T11:00:00.123Z", "data": {"id": 7}})
        );
    }

    #[test]
    fn a_waiting_instance_reads_as_a_call_for_help() {
        let data = json!({"instance_id": "0f8d3c2a-1111-4222-8333-444455556666", "status": "awaiting_input",
                          "prompt": "Apply <these> changes & continue? [y/N]"});
        let body: Value = serde_json::from_str(&slack("instance.status", Some("reviewer"), &data)).expect("json");
        assert_eq!(
            body["text"],
            "*reviewer* needs you: Apply &lt;these&gt; changes &amp; continue? [y/N]\n(instance `0f8d3c2a` is awaiting input)"
        );
    }

    #[test]
    fn an_ending_names_the_status_and_exit_code() {
        let data = json!({"instance_id": "abcdef12-0000", "status": "completed", "exit_code": 0, "reason": null});
        let body: Value = serde_json::from_str(&slack("instance.status", Some("ci"), &data)).expect("json");
        assert_eq!(body["text"], "*ci* instance `abcdef12` is now completed (exit code 0)");
    }
}
