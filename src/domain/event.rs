//! Events: one enum of kinds, and the payload of each kind. Every event is shaped
//! here when it is written ([`Payload`]) and read back through the same types where
//! its fields are used ([`Seen`]), so a change of shape is a compile error or a
//! reported failure, never a silently empty field.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::agent::Agent;
use super::instance::{Instance, InstanceStatus};
use super::integration::Approval;
use super::message::{Message, Sender};
use super::task::Task;

/// Every kind of event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    TaskCreated,
    TaskUpdated,
    TaskDeleted,
    AgentCreated,
    AgentUpdated,
    AgentDeleted,
    InstanceCreated,
    InstanceStatus,
    MessageCreated,
    ApprovalRequested,
    ApprovalDecided,
}

impl EventKind {
    /// Every kind, in the order clients see them listed.
    pub const ALL: [EventKind; 11] = [
        EventKind::TaskCreated,
        EventKind::TaskUpdated,
        EventKind::TaskDeleted,
        EventKind::AgentCreated,
        EventKind::AgentUpdated,
        EventKind::AgentDeleted,
        EventKind::InstanceCreated,
        EventKind::InstanceStatus,
        EventKind::MessageCreated,
        EventKind::ApprovalRequested,
        EventKind::ApprovalDecided,
    ];

    /// The stored and streamed name (`instance.status`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::TaskCreated => "task.created",
            EventKind::TaskUpdated => "task.updated",
            EventKind::TaskDeleted => "task.deleted",
            EventKind::AgentCreated => "agent.created",
            EventKind::AgentUpdated => "agent.updated",
            EventKind::AgentDeleted => "agent.deleted",
            EventKind::InstanceCreated => "instance.created",
            EventKind::InstanceStatus => "instance.status",
            EventKind::MessageCreated => "message.created",
            EventKind::ApprovalRequested => "approval.requested",
            EventKind::ApprovalDecided => "approval.decided",
        }
    }

    /// The kind a name stands for.
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Every name, for messages that list them.
    #[must_use]
    pub fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|k| k.as_str()).collect()
    }
}

/// The payload of `instance.status`, written and read as this one type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusChange {
    pub instance_id: Uuid,
    pub agent_id: Uuid,
    pub status: InstanceStatus,
    pub previous: InstanceStatus,
    pub reason: String,
    pub exit_code: Option<i32>,
    /// For `awaiting_input`: what the program asks.
    pub prompt: Option<String>,
    pub at: String,
    /// The instance's worktree (null when it runs in the agent's `project_path`).
    #[serde(default)]
    pub workspace: Option<super::instance::Workspace>,
    /// For `awaiting_input`: the id of this wait, which a reply may name
    /// (`in_reply_to`); a new one each time it starts waiting.
    #[serde(default)]
    pub wait_id: Option<String>,
    /// What the change was learnt from: `hook`, `agent`, `kernel`, `pattern`,
    /// `input` or `output` (null for starts and ends).
    #[serde(default)]
    pub source: Option<String>,
    /// For `awaiting_input`: the choices it offers (empty when it offers none).
    #[serde(default)]
    pub options: Vec<String>,
}

/// An event's payload as it is written: the variant decides the kind.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Payload<'a> {
    TaskCreated { task: &'a Task },
    TaskUpdated { task: &'a Task },
    TaskDeleted { id: i64 },
    AgentCreated { agent: &'a Agent },
    AgentUpdated { agent: &'a Agent },
    AgentDeleted { id: Uuid },
    InstanceCreated { instance: &'a Instance },
    InstanceStatus(&'a StatusChange),
    MessageCreated { message: &'a Message },
    ApprovalRequested { approval: &'a Approval },
    ApprovalDecided { approval: &'a Approval },
}

impl Payload<'_> {
    /// The kind of event this payload makes.
    #[must_use]
    pub fn kind(&self) -> EventKind {
        match self {
            Payload::TaskCreated { .. } => EventKind::TaskCreated,
            Payload::TaskUpdated { .. } => EventKind::TaskUpdated,
            Payload::TaskDeleted { .. } => EventKind::TaskDeleted,
            Payload::AgentCreated { .. } => EventKind::AgentCreated,
            Payload::AgentUpdated { .. } => EventKind::AgentUpdated,
            Payload::AgentDeleted { .. } => EventKind::AgentDeleted,
            Payload::InstanceCreated { .. } => EventKind::InstanceCreated,
            Payload::InstanceStatus(_) => EventKind::InstanceStatus,
            Payload::MessageCreated { .. } => EventKind::MessageCreated,
            Payload::ApprovalRequested { .. } => EventKind::ApprovalRequested,
            Payload::ApprovalDecided { .. } => EventKind::ApprovalDecided,
        }
    }

    /// The payload as one line of JSON.
    ///
    /// # Errors
    /// A value that cannot be serialised (not one of the domain types).
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }
}

/// The fields of a task event that readers use.
#[derive(Debug, Clone, Deserialize)]
pub struct TaskSeen {
    pub id: i64,
    pub title: String,
    pub status: String,
}

/// The fields of a message event that readers use.
#[derive(Debug, Clone, Deserialize)]
pub struct MessageSeen {
    pub agent_instance_id: Uuid,
    pub sender_type: Sender,
    pub content: String,
    pub requires_user_input: bool,
}

/// The fields of an instance event that readers use.
#[derive(Debug, Clone, Deserialize)]
pub struct InstanceSeen {
    pub id: Uuid,
}

/// A stored event read back, by kind.
#[derive(Debug, Clone)]
pub enum Seen {
    Task { kind: EventKind, task: TaskSeen },
    TaskDeleted { id: i64 },
    Agent { kind: EventKind },
    InstanceCreated { instance: InstanceSeen },
    InstanceStatus(Box<StatusChange>),
    MessageCreated { message: MessageSeen },
    Approval { kind: EventKind, approval: Box<Approval> },
}

impl Seen {
    /// Reads a stored payload of `kind`.
    ///
    /// # Errors
    /// The payload does not have the shape of its kind.
    pub fn read(kind: EventKind, data: &str) -> Result<Seen, serde_json::Error> {
        #[derive(Deserialize)]
        struct Wrapped<T> {
            #[serde(alias = "task", alias = "message", alias = "instance", alias = "approval")]
            inner: T,
        }
        #[derive(Deserialize)]
        struct Id<T> {
            id: T,
        }
        Ok(match kind {
            EventKind::TaskCreated | EventKind::TaskUpdated => {
                Seen::Task { kind, task: serde_json::from_str::<Wrapped<TaskSeen>>(data)?.inner }
            }
            EventKind::TaskDeleted => Seen::TaskDeleted { id: serde_json::from_str::<Id<i64>>(data)?.id },
            EventKind::AgentCreated | EventKind::AgentUpdated | EventKind::AgentDeleted => Seen::Agent { kind },
            EventKind::InstanceCreated => {
                Seen::InstanceCreated { instance: serde_json::from_str::<Wrapped<InstanceSeen>>(data)?.inner }
            }
            EventKind::InstanceStatus => Seen::InstanceStatus(Box::new(serde_json::from_str(data)?)),
            EventKind::MessageCreated => {
                Seen::MessageCreated { message: serde_json::from_str::<Wrapped<MessageSeen>>(data)?.inner }
            }
            EventKind::ApprovalRequested | EventKind::ApprovalDecided => {
                Seen::Approval { kind, approval: Box::new(serde_json::from_str::<Wrapped<Approval>>(data)?.inner) }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_one_name_that_parses_back() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EventKind::parse("instance.stat"), None);
        assert_eq!(EventKind::names().len(), 11);
    }

    #[test]
    fn a_status_change_is_written_and_read_as_one_type() {
        let change = StatusChange {
            instance_id: Uuid::new_v4(),
            agent_id: Uuid::new_v4(),
            status: InstanceStatus::AwaitingInput,
            previous: InstanceStatus::Active,
            reason: "waiting".into(),
            exit_code: None,
            prompt: Some("Deploy? [y/N]".into()),
            at: "2026-12-03T09:00:00.000Z".into(),
            workspace: None,
            wait_id: Some(Uuid::new_v4().to_string()),
            source: Some("kernel".into()),
            options: vec!["y".into(), "n".into()],
        };
        let payload = Payload::InstanceStatus(&change);
        assert_eq!(payload.kind(), EventKind::InstanceStatus);
        let json = payload.to_json().expect("json");
        let value: serde_json::Value = serde_json::from_str(&json).expect("value");
        assert_eq!(value["status"], "awaiting_input", "{json}");
        match Seen::read(EventKind::InstanceStatus, &json).expect("read") {
            Seen::InstanceStatus(back) => assert_eq!(*back, change),
            other => panic!("{other:?}"),
        }
        assert!(Seen::read(EventKind::InstanceStatus, r#"{"instance":1}"#).is_err(), "a wrong shape is an error");
        assert!(matches!(Seen::read(EventKind::TaskDeleted, r#"{"id":7}"#), Ok(Seen::TaskDeleted { id: 7 })));
    }
}
