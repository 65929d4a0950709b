//! Tasks: the to-do list agents work through.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Invalid;

/// Longest title, in characters, after trimming.
pub const MAX_TITLE_CHARS: usize = 200;

/// Where a task stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    Pending,
    InProgress,
    Done,
    Failed,
}

/// How urgent a task is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Low,
    Medium,
    High,
}

macro_rules! text_enum {
    ($ty:ty, $field:literal, $($variant:ident = $text:literal),+) => {
        impl $ty {
            /// The stored and serialized form.
            #[must_use]
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $text),+ }
            }

            /// Parses the stored or query-string form.
            ///
            /// # Errors
            /// An unknown value, naming the accepted ones.
            pub fn parse(text: &str) -> Result<Self, Invalid> {
                match text {
                    $($text => Ok(Self::$variant),)+
                    other => Err(Invalid::new($field, format!(
                        "unknown value {other:?}; expected one of {}", [$($text),+].join(", ")))),
                }
            }
        }
    };
}

text_enum!(TaskStatus, "status", Pending = "pending", InProgress = "in_progress", Done = "done", Failed = "failed");
text_enum!(Priority, "priority", Low = "low", Medium = "medium", High = "high");

impl TaskStatus {
    /// Where a task stands while an instance works on it: in progress while the
    /// instance runs, done when it completes, failed when it errs or is ended.
    #[must_use]
    pub fn following(instance: super::instance::InstanceStatus) -> Self {
        use super::instance::InstanceStatus as I;
        match instance {
            I::Idle | I::Active | I::AwaitingInput => TaskStatus::InProgress,
            I::Completed => TaskStatus::Done,
            I::Error | I::Terminated => TaskStatus::Failed,
        }
    }
}

/// A task as clients see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Task {
    pub id: i64,
    pub title: String,
    pub description: String,
    pub status: TaskStatus,
    pub priority: Priority,
    /// RFC 3339 UTC with milliseconds.
    pub created_at: String,
    pub updated_at: String,
}

/// Body of `POST /api/tasks`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTask {
    /// 1–200 characters after trimming.
    pub title: String,
    #[serde(default)]
    pub description: String,
    pub status: Option<TaskStatus>,
    pub priority: Option<Priority>,
}

/// Body of `PUT /api/tasks/:id`: only the given fields change.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskPatch {
    pub title: Option<String>,
    pub description: Option<String>,
    pub status: Option<TaskStatus>,
    pub priority: Option<Priority>,
}

/// Checks and trims a title.
///
/// # Errors
/// Empty after trimming, or longer than [`MAX_TITLE_CHARS`].
pub fn parse_title(title: &str) -> Result<String, Invalid> {
    let trimmed = title.trim();
    let chars = trimmed.chars().count();
    if chars == 0 {
        return Err(Invalid::new("title", "must not be empty"));
    }
    if chars > MAX_TITLE_CHARS {
        return Err(Invalid::new("title", format!("must be at most {MAX_TITLE_CHARS} characters, got {chars}")));
    }
    Ok(trimmed.to_owned())
}

impl NewTask {
    /// Validates and normalises the new task.
    ///
    /// # Errors
    /// An invalid title.
    pub fn validate(mut self) -> Result<Self, Invalid> {
        self.title = parse_title(&self.title)?;
        Ok(self)
    }
}

impl TaskPatch {
    /// Validates and normalises the change.
    ///
    /// # Errors
    /// An invalid title.
    pub fn validate(mut self) -> Result<Self, Invalid> {
        if let Some(title) = &self.title {
            self.title = Some(parse_title(title)?);
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_are_trimmed_and_bounded() {
        assert_eq!(parse_title("  fix it \n").expect("ok"), "fix it");
        assert_eq!(parse_title("   ").expect_err("empty").field, "title");
        assert!(parse_title(&"é".repeat(200)).is_ok());
        assert!(parse_title(&"é".repeat(201)).is_err());
    }

    #[test]
    fn enums_round_trip_through_text() {
        for status in [TaskStatus::Pending, TaskStatus::InProgress, TaskStatus::Done, TaskStatus::Failed] {
            assert_eq!(TaskStatus::parse(status.as_str()), Ok(status));
        }
        assert!(Priority::parse("urgent").expect_err("unknown").message.contains("low, medium, high"));
    }
}
