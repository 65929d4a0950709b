//! The bodies POSTed to subscriptions: the standard envelope, or one line of text
//! for chat incoming webhooks (Slack, Mattermost, Discord's Slack-compatible URL).

use serde_json::{json, Value};

use crate::domain::event::{EventKind, Seen};
use crate::domain::instance::InstanceStatus;
use crate::domain::integration::{subject, Approval, ApprovalStatus};
use crate::domain::message::Sender;

/// `{"type", "id", "timestamp", "data"}`, the event's own payload as `data`.
#[must_use]
pub fn standard(kind: &str, seq: i64, at: &str, data: &Value) -> String {
    json!({ "type": kind, "id": seq.to_string(), "timestamp": at, "data": data }).to_string()
}

/// `{"text": …}`: who (the agent), which instance, what happened, and the prompt
/// when an instance waits for someone. `data` is the stored payload, read through
/// the event's own type ([`Seen`]).
#[must_use]
pub fn slack(kind: &str, agent_name: Option<&str>, data: &str) -> String {
    json!({ "text": slack_text(kind, agent_name, data) }).to_string()
}

fn slack_text(kind: &str, agent_name: Option<&str>, data: &str) -> String {
    let agent = agent_name.map_or_else(|| "an agent".to_owned(), |n| format!("*{}*", escape(n)));
    let seen = EventKind::parse(kind)
        .ok_or_else(|| "an unknown kind".to_owned())
        .and_then(|k| Seen::read(k, data).map_err(|e| e.to_string()));
    let seen = match seen {
        Ok(seen) => seen,
        Err(e) => {
            tracing::warn!(kind, error = %e, "an event that does not read as its kind");
            return format!("Switchboard event {}", escape(kind));
        }
    };
    match seen {
        Seen::InstanceStatus(change) => {
            let instance = short(&change.instance_id);
            if change.status == InstanceStatus::AwaitingInput {
                let prompt = change.prompt.as_deref().map(escape).filter(|p| !p.is_empty());
                let prompt = prompt.unwrap_or_else(|| "(no prompt text)".to_owned());
                return format!("{agent} needs you: {prompt}\n(instance `{instance}` is awaiting input)");
            }
            let mut line = format!("{agent} instance `{instance}` is now {}", change.status.as_str());
            if let Some(code) = change.exit_code {
                line.push_str(&format!(" (exit code {code})"));
            }
            if !change.reason.is_empty() {
                line.push_str(&format!(": {}", escape(&change.reason)));
            }
            line
        }
        Seen::InstanceCreated { instance } => format!("{agent} instance `{}` was created", short(&instance.id)),
        Seen::MessageCreated { message } => {
            let from = if message.sender_type == Sender::Agent { "the agent" } else { "a person" };
            let verb = if message.requires_user_input { "asks" } else { "says" };
            format!(
                "{agent} instance `{}`: {from} {verb}: {}",
                short(&message.agent_instance_id),
                clip(&escape(&message.content))
            )
        }
        Seen::Agent { kind: EventKind::AgentDeleted } => format!("{agent} was deleted"),
        Seen::Agent { kind } => format!("{agent} was {}", verb_of(kind)),
        Seen::Task { kind, task } => {
            format!(
                "Task #{} \"{}\" was {} (status {})",
                task.id,
                clip(&escape(&task.title)),
                verb_of(kind),
                escape(&task.status)
            )
        }
        Seen::TaskDeleted { id } => format!("Task #{id} was deleted"),
        Seen::Approval { kind, approval } => approval_text(&agent, kind, &approval),
    }
}

/// A permission request, and who decided it how.
fn approval_text(agent: &str, kind: EventKind, approval: &Approval) -> String {
    let instance = short(&approval.instance_id);
    let what = clip(&escape(&subject(&approval.tool_input)));
    let tool = escape(&approval.tool_name);
    if kind == EventKind::ApprovalRequested {
        return format!(
            "{agent} asks to use {tool}: `{what}`\nAllow or deny it: dashboard, `switchboard approve {instance}` \
             (or `--deny`), or POST /api/approvals/{} (instance `{instance}`)",
            approval.id
        );
    }
    let outcome = match approval.status {
        ApprovalStatus::Allowed => "allowed",
        ApprovalStatus::Denied => "denied",
        ApprovalStatus::Expired => "left to the agent's own prompt (nobody decided in time)",
        ApprovalStatus::Withdrawn => "withdrawn (answered in the terminal, or the instance moved on)",
        ApprovalStatus::Pending => "pending",
    };
    let by = approval.decided_by.as_deref().map(|b| format!(" by {}", escape(b))).unwrap_or_default();
    format!("{agent}: {tool} `{what}` was {outcome}{by} (instance `{instance}`)")
}

fn verb_of(kind: EventKind) -> &'static str {
    if kind.as_str().ends_with(".created") {
        "created"
    } else {
        "updated"
    }
}

/// The first 8 characters of an id, enough to tell instances apart in a chat.
fn short(id: &uuid::Uuid) -> String {
    id.to_string().chars().take(8).collect()
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
        let data = status_change("awaiting_input", None, "waiting", Some("Apply <these> changes & continue? [y/N]"));
        let body: Value = serde_json::from_str(&slack("instance.status", Some("reviewer"), &data)).expect("json");
        assert_eq!(
            body["text"],
            "*reviewer* needs you: Apply &lt;these&gt; changes &amp; continue? [y/N]\n(instance `0f8d3c2a` is awaiting input)"
        );
    }

    #[test]
    fn an_ending_names_the_status_and_exit_code() {
        let data = status_change("completed", Some(0), "", None);
        let body: Value = serde_json::from_str(&slack("instance.status", Some("ci"), &data)).expect("json");
        assert_eq!(body["text"], "*ci* instance `0f8d3c2a` is now completed (exit code 0)");
    }

    #[test]
    fn a_payload_of_another_shape_is_reported_not_read_as_empty() {
        let body: Value =
            serde_json::from_str(&slack("instance.status", Some("ci"), r#"{"instance": 1}"#)).expect("json");
        assert_eq!(body["text"], "Switchboard event instance.status");
    }

    fn status_change(status: &str, exit_code: Option<i32>, reason: &str, prompt: Option<&str>) -> String {
        json!({"instance_id": "0f8d3c2a-1111-4222-8333-444455556666", "agent_id": "1f8d3c2a-1111-4222-8333-444455556666",
               "status": status, "previous": "active", "reason": reason, "exit_code": exit_code, "prompt": prompt,
               "at": "2026-12-03T09:00:00.000Z"})
        .to_string()
    }
}
