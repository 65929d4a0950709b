//! Messages between people and agents, attached to an instance.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::Invalid;

/// Largest message content, in bytes.
pub const MAX_CONTENT_BYTES: usize = 256 * 1024;

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Sender {
    User,
    Agent,
}

impl Sender {
    /// The stored form.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Sender::User => "user",
            Sender::Agent => "agent",
        }
    }

    /// Parses the stored form.
    ///
    /// # Errors
    /// An unknown value.
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        match text {
            "user" => Ok(Sender::User),
            "agent" => Ok(Sender::Agent),
            other => Err(Invalid::new("sender_type", format!("unknown value {other:?}; expected user or agent"))),
        }
    }
}

/// When a user message is typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// Held while the agent is busy; typed the next time it waits.
    #[default]
    WhenReady,
    /// Typed at once.
    Now,
}

/// A message as clients see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Message {
    pub id: Uuid,
    pub agent_instance_id: Uuid,
    pub sender_type: Sender,
    pub content: String,
    pub requires_user_input: bool,
    /// Answers the agent offers (agent questions only).
    pub options: Vec<String>,
    pub created_at: String,
    /// When it was typed into the terminal; null while held.
    pub delivered_at: Option<String>,
}

/// Body of `POST /api/instances/:id/messages`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    pub content: String,
    /// Default: `user`, or `agent` with the instance's own token.
    pub sender_type: Option<Sender>,
    #[serde(default)]
    pub requires_user_input: bool,
    #[serde(default)]
    pub options: Vec<String>,
    #[serde(default)]
    pub deliver: Delivery,
}

impl NewMessage {
    /// Checks the content and options.
    ///
    /// # Errors
    /// Empty or oversized content, NUL bytes, options on a user message.
    pub fn validate(&self, sender: Sender) -> Result<(), Invalid> {
        if self.content.is_empty() {
            return Err(Invalid::new("content", "must not be empty"));
        }
        if self.content.len() > MAX_CONTENT_BYTES {
            return Err(Invalid::new("content", format!("must be at most {MAX_CONTENT_BYTES} bytes")));
        }
        if self.content.contains('\0') {
            return Err(Invalid::new("content", "must not contain NUL bytes"));
        }
        if sender == Sender::User && (self.requires_user_input || !self.options.is_empty()) {
            return Err(Invalid::new("sender_type", "requires_user_input and options belong to agent messages"));
        }
        if self.options.len() > 20 || self.options.iter().any(|o| o.is_empty() || o.len() > 1000) {
            return Err(Invalid::new("options", "at most 20 options of 1 to 1000 bytes"));
        }
        Ok(())
    }
}

/// The bytes that type a reply: the content then Enter; several lines go in as
/// one bracketed paste when the program turned bracketed paste on.
#[must_use]
pub fn typed(content: &str, bracketed_paste: bool) -> Vec<u8> {
    let body = content.trim_end_matches(['\r', '\n']);
    let mut out = Vec::with_capacity(body.len() + 16);
    if bracketed_paste && body.contains('\n') {
        out.extend_from_slice(b"\x1b[200~");
        out.extend_from_slice(body.as_bytes());
        out.extend_from_slice(b"\x1b[201~");
    } else {
        out.extend_from_slice(body.replace('\n', "\r").as_bytes());
    }
    out.push(b'\r');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_end_with_enter_and_multi_line_ones_are_pasted() {
        assert_eq!(typed("yes\n", false), b"yes\r");
        assert_eq!(typed("a\nb", true), b"\x1b[200~a\nb\x1b[201~\r");
        assert_eq!(typed("a\nb", false), b"a\rb\r");
        assert_eq!(typed("one line", true), b"one line\r");
    }
}
