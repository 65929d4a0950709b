//! Messages between people and agents, attached to an instance.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::Invalid;

/// Largest message content, in bytes.
pub const MAX_CONTENT_BYTES: usize = 256 * 1024;
/// Longest question an agent may ask (`requires_user_input`), in characters and lines:
/// it is shown in banners, lists and notifications.
pub const MAX_QUESTION_CHARS: usize = 4000;
/// See [`MAX_QUESTION_CHARS`].
pub const MAX_QUESTION_LINES: usize = 40;
/// Most options a question may offer, and the longest option in characters.
pub const MAX_OPTIONS: usize = 20;
/// See [`MAX_OPTIONS`].
pub const MAX_OPTION_CHARS: usize = 200;

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
    /// A user's reply to one question: the instance's `wait_id` when the question was
    /// read. If the instance no longer waits on it (a newer question, or not waiting),
    /// nothing is typed and the answer is 409 with the current prompt and `wait_id`.
    #[serde(default)]
    pub in_reply_to: Option<String>,
}

impl NewMessage {
    /// Checks the content and options.
    ///
    /// # Errors
    /// Empty or oversized content, NUL bytes, options on a user message, a question
    /// longer than [`MAX_QUESTION_CHARS`] or [`MAX_QUESTION_LINES`], options that are
    /// too many, too long, or hold control characters (what a button types must be
    /// what it shows).
    pub fn validate(&self, sender: Sender) -> Result<(), Invalid> {
        if self.content.is_empty() {
            return Err(Invalid::new("content", "must not be empty"));
        }
        if sender == Sender::Agent && self.in_reply_to.is_some() {
            return Err(Invalid::new("in_reply_to", "only a user's reply answers a question"));
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
        if self.requires_user_input {
            let (chars, lines) = (self.content.chars().count(), self.content.lines().count());
            if chars > MAX_QUESTION_CHARS || lines > MAX_QUESTION_LINES {
                return Err(Invalid::new(
                    "content",
                    format!(
                        "a question (requires_user_input) must be at most {MAX_QUESTION_CHARS} characters and \
                         {MAX_QUESTION_LINES} lines, got {chars} and {lines}; post the detail as a message of its own"
                    ),
                ));
            }
        }
        if self.options.len() > MAX_OPTIONS {
            return Err(Invalid::new("options", format!("at most {MAX_OPTIONS} options")));
        }
        for (i, option) in self.options.iter().enumerate() {
            let n = option.chars().count();
            if n == 0 || n > MAX_OPTION_CHARS {
                return Err(Invalid::new(
                    format!("options[{i}]"),
                    format!("must be 1 to {MAX_OPTION_CHARS} characters"),
                ));
            }
            if let Some(c) = option.chars().find(|c| c.is_control() || is_bidi_control(*c)) {
                return Err(Invalid::new(
                    format!("options[{i}]"),
                    format!(
                        "must not hold control or direction characters (found U+{:04X}): it is typed as shown",
                        c as u32
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// Whether `c` changes the direction of the text around it (the embeddings,
/// overrides and isolates of Unicode's bidirectional algorithm), which can make
/// `txt.exe` read as `exe.txt`.
#[must_use]
pub fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// The bytes that type a reply: the content then Enter; several lines go in as
/// one bracketed paste when the program turned bracketed paste on. Paste markers
/// inside the content are removed, so the paste cannot be ended early and the rest
/// arrive as keystrokes.
#[must_use]
pub fn typed(content: &str, bracketed_paste: bool) -> Vec<u8> {
    let body = content.trim_end_matches(['\r', '\n']);
    let mut out = Vec::with_capacity(body.len() + 16);
    if bracketed_paste && body.contains('\n') {
        out.extend_from_slice(b"\x1b[200~");
        out.extend_from_slice(without_paste_markers(body).as_bytes());
        out.extend_from_slice(b"\x1b[201~");
    } else {
        out.extend_from_slice(body.replace('\n', "\r").as_bytes());
    }
    out.push(b'\r');
    out
}

/// `text` without bracketed-paste start and end markers, however they nest
/// (removing one may join the pieces of another: `\x1b[20\x1b[201~1~`).
#[must_use]
pub fn without_paste_markers(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains("\x1b[20") {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = text.to_owned();
    while out.contains("\x1b[200~") || out.contains("\x1b[201~") {
        out = out.replace("\x1b[200~", "").replace("\x1b[201~", "");
    }
    std::borrow::Cow::Owned(out)
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

    #[test]
    fn a_paste_cannot_be_ended_early_from_inside() {
        let hostile = "a\nb\x1b[201~\recho pwned\x1b[20\x1b[201~1~x";
        let bytes = typed(hostile, true);
        let text = String::from_utf8(bytes).expect("utf-8");
        assert!(text.starts_with("\x1b[200~"));
        assert_eq!(text.matches("\x1b[201~").count(), 1, "{text:?}");
        assert!(text.ends_with("\x1b[201~\r"), "{text:?}");
    }

    fn agent_question(content: &str, options: &[&str]) -> NewMessage {
        serde_json::from_value(serde_json::json!({
            "content": content, "requires_user_input": true, "options": options,
        }))
        .expect("a message")
    }

    #[test]
    fn questions_and_options_are_bounded_and_options_type_what_they_show() {
        assert!(agent_question("Deploy?", &["yes", "no"]).validate(Sender::Agent).is_ok());
        let long = "line\n".repeat(10_000);
        let refused = agent_question(&long, &[]).validate(Sender::Agent).expect_err("too long");
        assert!(refused.message.contains("40 lines"), "{}", refused.message);
        for bad in ["No\u{7f}\u{7f}yes", "No\u{15}yes", "yes\nrm -rf ~", "ok\u{1b}[201~", "txt\u{202e}exe"] {
            let refused = agent_question("Pick", &["fine", bad]).validate(Sender::Agent).expect_err(bad);
            assert_eq!(refused.field, "options[1]", "{bad:?}");
        }
        let wide = "x".repeat(MAX_OPTION_CHARS + 1);
        assert_eq!(agent_question("Pick", &[&wide]).validate(Sender::Agent).expect_err("wide").field, "options[0]");
    }
}
