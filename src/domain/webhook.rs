//! Outbound webhook subscriptions: what a client may send to make or change one,
//! what it sees, and which events a subscription wants.

use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use super::event::EventKind;
use super::{double_option, Invalid};

/// Longest accepted URL.
pub const MAX_URL_LEN: usize = 2048;
/// Most entries in `events`.
pub const MAX_PATTERNS: usize = 64;
/// Longest description.
pub const MAX_DESCRIPTION_CHARS: usize = 500;
/// Prefix of Standard Webhooks secrets.
pub const SECRET_PREFIX: &str = "whsec_";

/// The body a subscription receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// `{"type", "id", "timestamp", "data"}`.
    Standard,
    /// `{"text": …}` for chat incoming webhooks.
    Slack,
}

impl Format {
    /// The stored name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Standard => "standard",
            Format::Slack => "slack",
        }
    }

    /// Parses a stored or requested name.
    ///
    /// # Errors
    /// Anything but `standard` or `slack`.
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        match text {
            "standard" => Ok(Format::Standard),
            "slack" => Ok(Format::Slack),
            _ => Err(Invalid::new("format", "must be \"standard\" or \"slack\"")),
        }
    }
}

/// A subscription as clients see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Webhook {
    pub id: Uuid,
    pub url: String,
    /// Event types, `prefix.*`, or `*`.
    pub events: Vec<String>,
    /// Only this agent's events, when set.
    pub agent_id: Option<Uuid>,
    pub active: bool,
    pub format: Format,
    pub description: String,
    /// Why the server turned the subscription off (a `410 Gone` answer), if it did.
    pub disabled_reason: Option<String>,
    /// Deliveries still queued.
    pub pending_deliveries: u64,
    pub created_at: String,
    pub updated_at: String,
    /// The signing secret: only in the answer that created or replaced it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

/// Body of `POST /api/webhooks`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// `http://` or `https://` address that receives the POSTs.
    pub url: String,
    /// Event types, `prefix.*` (e.g. `instance.*`) or `*`; default `["*"]`.
    pub events: Option<Vec<String>>,
    /// Only this agent's events.
    pub agent_id: Option<String>,
    /// A Standard Webhooks secret (`whsec_` + base64 of 24–64 bytes); generated when absent.
    pub secret: Option<String>,
    /// Default true.
    pub active: Option<bool>,
    /// `standard` (default) or `slack`.
    pub format: Option<String>,
    #[serde(default)]
    pub description: String,
}

/// Body of `PUT /api/webhooks/:id`: only the given fields change.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookPatch {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    /// A UUID, or `null` for every agent.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub agent_id: Option<Option<String>>,
    /// A new secret, or `"generate"` for a fresh one (returned in this answer only).
    pub secret: Option<String>,
    /// Turning a subscription back on clears `disabled_reason`.
    pub active: Option<bool>,
    pub format: Option<String>,
    pub description: Option<String>,
}

/// A subscription's own fields, validated.
#[derive(Debug, Clone)]
pub struct WebhookRecord {
    pub url: String,
    pub events: Vec<String>,
    pub agent_id: Option<Uuid>,
    pub secret: String,
    pub active: bool,
    pub format: Format,
    pub description: String,
}

/// A validated change.
#[derive(Debug, Default)]
pub struct WebhookChange {
    pub url: Option<String>,
    pub events: Option<Vec<String>>,
    pub agent_id: Option<Option<Uuid>>,
    pub secret: Option<String>,
    pub active: Option<bool>,
    pub format: Option<Format>,
    pub description: Option<String>,
}

impl NewWebhook {
    /// Checks every field; generates a secret when none was given.
    ///
    /// # Errors
    /// The first invalid field.
    pub fn validate(self) -> Result<WebhookRecord, Invalid> {
        Ok(WebhookRecord {
            url: validate_url(&self.url)?,
            events: validate_events(self.events.unwrap_or_else(|| vec!["*".to_owned()]))?,
            agent_id: self.agent_id.as_deref().map(parse_agent_id).transpose()?,
            secret: match self.secret {
                Some(secret) => validate_secret(&secret)?,
                None => generate_secret(),
            },
            active: self.active.unwrap_or(true),
            format: self.format.as_deref().map_or(Ok(Format::Standard), Format::parse)?,
            description: validate_description(self.description)?,
        })
    }
}

impl WebhookPatch {
    /// Checks every given field.
    ///
    /// # Errors
    /// The first invalid field.
    pub fn validate(self) -> Result<WebhookChange, Invalid> {
        Ok(WebhookChange {
            url: self.url.as_deref().map(validate_url).transpose()?,
            events: self.events.map(validate_events).transpose()?,
            agent_id: self.agent_id.map(|a| a.as_deref().map(parse_agent_id).transpose()).transpose()?,
            secret: self
                .secret
                .map(|s| if s == "generate" { Ok(generate_secret()) } else { validate_secret(&s) })
                .transpose()?,
            active: self.active,
            format: self.format.as_deref().map(Format::parse).transpose()?,
            description: self.description.map(validate_description).transpose()?,
        })
    }
}

fn parse_agent_id(text: &str) -> Result<Uuid, Invalid> {
    Uuid::parse_str(text).map_err(|_| Invalid::new("agent_id", "must be an agent's id (a UUID)"))
}

fn validate_url(url: &str) -> Result<String, Invalid> {
    let invalid = |why: &str| Invalid::new("url", why.to_owned());
    if url.len() > MAX_URL_LEN || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid("must be at most 2048 characters without spaces"));
    }
    let uri: actix_web::http::Uri = url.parse().map_err(|_| invalid("is not a valid URL"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) {
        return Err(invalid("must start with http:// or https://"));
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(invalid("must name a host"));
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) {
        return Err(invalid("must not carry a user name or password"));
    }
    Ok(url.to_owned())
}

fn validate_events(events: Vec<String>) -> Result<Vec<String>, Invalid> {
    if events.is_empty() || events.len() > MAX_PATTERNS {
        return Err(Invalid::new("events", format!("must list 1 to {MAX_PATTERNS} event types, or [\"*\"]")));
    }
    for pattern in &events {
        let known = pattern == "*"
            || EventKind::parse(pattern).is_some()
            || pattern
                .strip_suffix(".*")
                .is_some_and(|prefix| EventKind::ALL.iter().any(|k| k.as_str().split('.').next() == Some(prefix)));
        if !known {
            return Err(Invalid::new(
                "events",
                format!(
                    "unknown event type {pattern:?}; known: {}, a prefix such as \"instance.*\", or \"*\"",
                    EventKind::names().join(", ")
                ),
            ));
        }
    }
    Ok(events)
}

fn validate_description(text: String) -> Result<String, Invalid> {
    if text.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(Invalid::new("description", format!("must be at most {MAX_DESCRIPTION_CHARS} characters")));
    }
    Ok(text)
}

fn validate_secret(secret: &str) -> Result<String, Invalid> {
    let key =
        secret.strip_prefix(SECRET_PREFIX).and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok());
    match key {
        Some(key) if (24..=64).contains(&key.len()) => Ok(secret.to_owned()),
        _ => Err(Invalid::new("secret", "must be \"whsec_\" followed by the base64 of 24 to 64 random bytes")),
    }
}

/// A fresh Standard Webhooks secret: `whsec_` and the base64 of 32 random bytes.
#[must_use]
pub fn generate_secret() -> String {
    let mut key = [0u8; 32];
    // The operating system's generator does not fail on Linux once booted; a zero
    // key would still be refused by nobody, so fall back to a UUID's randomness.
    if getrandom::fill(&mut key).is_err() {
        key[..16].copy_from_slice(Uuid::new_v4().as_bytes());
        key[16..].copy_from_slice(Uuid::new_v4().as_bytes());
    }
    format!("{SECRET_PREFIX}{}", base64::engine::general_purpose::STANDARD.encode(key))
}

/// Whether an event of `kind` matches one of the subscription's `patterns`.
#[must_use]
pub fn wants(patterns: &[String], kind: &str) -> bool {
    patterns.iter().any(|p| {
        p == "*" || p == kind || p.strip_suffix(".*").is_some_and(|prefix| kind.split('.').next() == Some(prefix))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn patterns_match_exact_types_prefixes_and_everything() {
        assert!(wants(&strings(&["*"]), "task.created"));
        assert!(wants(&strings(&["instance.status"]), "instance.status"));
        assert!(!wants(&strings(&["instance.status"]), "instance.created"));
        assert!(wants(&strings(&["instance.*"]), "instance.created"));
        assert!(!wants(&strings(&["instance.*"]), "message.created"));
        assert!(!wants(&strings(&["inst.*"]), "instance.created"));
    }

    #[test]
    fn only_known_event_types_are_accepted() {
        assert!(validate_events(strings(&["instance.*", "task.created", "*"])).is_ok());
        assert!(validate_events(strings(&["instance.stat"])).is_err());
        assert!(validate_events(strings(&["foo.*"])).is_err());
        assert!(validate_events(Vec::new()).is_err());
    }

    #[test]
    fn urls_must_be_http_with_a_host() {
        assert!(validate_url("http://127.0.0.1:9/hook").is_ok());
        assert!(validate_url("https://hooks.slack.com/services/T/B/X").is_ok());
        for bad in ["ftp://x/", "http://", "/relative", "http://a b/", "http://user:pw@host/", "nonsense"] {
            assert!(validate_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_are_standard_webhooks_secrets() {
        let generated = generate_secret();
        assert!(validate_secret(&generated).is_ok());
        assert_ne!(generated, generate_secret());
        assert!(validate_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_ok());
        assert!(validate_secret("whsec_c2hvcnQ=").is_err());
        assert!(validate_secret("plain-text-secret-long-enough").is_err());
        assert!(validate_secret("whsec_not base64!").is_err());
    }
}
