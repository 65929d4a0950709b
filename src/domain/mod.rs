//! Domain types and their validation: what a task or an agent is, and what a
//! client may send to make or change one. Parsing here never touches the disk or
//! the database; a failure names the field at fault.

pub mod agent;
pub mod event;
pub mod input;
pub mod instance;
pub mod integration;
pub mod message;
pub mod runner;
pub mod settings;
pub mod state;
pub mod task;
pub mod webhook;

/// A field that failed validation, with a message for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    /// The field's name as the client wrote it (`settings.idle_ms`).
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl Invalid {
    /// A validation failure of `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Invalid { field: field.into(), message: message.into() }
    }
}

/// Deserializes a field that distinguishes "absent" (`None`) from `null` (`Some(None)`).
///
/// # Errors
/// Whatever the inner type's deserializer refuses.
pub fn double_option<'de, T, D>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    T: serde::Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    serde::Deserialize::deserialize(de).map(Some)
}

/// The current time as RFC 3339 UTC with milliseconds, the form every timestamp takes.
#[must_use]
pub fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
