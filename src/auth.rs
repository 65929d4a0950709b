//! The API token: where it comes from and how it is checked.
//!
//! The token is set by the operator or generated once (256 random bits) into
//! `DATA_DIR/token` with mode 0600 and reused. Browsers exchange it for a session
//! ([`crate::sessions`]). Every comparison is constant-time; nothing here logs a
//! secret.

use std::collections::HashMap;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::{Arc, PoisonError, RwLock};

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use uuid::Uuid;

use crate::config::MIN_TOKEN_LEN;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "switchboard_session";
const TOKEN_FILE: &str = "token";

/// Why the token could not be had.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The token file could not be read or written.
    #[error("token file {path}: {source}")]
    Io { path: String, source: std::io::Error },
    /// The token file holds something unusable.
    #[error("token file {0} holds no usable token (at least {MIN_TOKEN_LEN} characters); delete it to have a new one generated")]
    Unusable(String),
    /// The system's random source failed.
    #[error("cannot generate a token: {0}")]
    Random(String),
}

/// Checks credentials; `token == None` means authentication is off.
#[derive(Clone)]
pub struct Auth {
    token: Option<String>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth").field("enabled", &self.token.is_some()).finish_non_exhaustive()
    }
}

impl Auth {
    /// Authentication turned off (`--no-auth`).
    #[must_use]
    pub fn disabled() -> Self {
        Auth { token: None }
    }

    /// Uses `token`.
    #[must_use]
    pub fn with_token(token: String) -> Self {
        Auth { token: Some(token) }
    }

    /// Reads `DATA_DIR/token`, or generates it (mode 0600) when missing.
    ///
    /// # Errors
    /// The file cannot be read or created, or holds an unusable token.
    pub fn from_data_dir(data_dir: &Path) -> Result<Self, AuthError> {
        let path = data_dir.join(TOKEN_FILE);
        let shown = path.display().to_string();
        let io = |source| AuthError::Io { path: shown.clone(), source };
        match OpenOptions::new().write(true).create_new(true).mode(0o600).open(&path) {
            Ok(mut file) => {
                let token = generate()?;
                file.write_all(format!("{token}\n").as_bytes()).and_then(|()| file.sync_all()).map_err(io)?;
                return Ok(Auth::with_token(token));
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(e)),
        }
        let meta = fs::metadata(&path).map_err(io)?;
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(path = %shown, "token file was readable by others; restricting it to mode 0600");
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).map_err(io)?;
        }
        let token = fs::read_to_string(&path).map_err(io)?.trim().to_owned();
        if token.chars().count() < MIN_TOKEN_LEN || token.chars().any(char::is_whitespace) {
            return Err(AuthError::Unusable(shown));
        }
        Ok(Auth::with_token(token))
    }

    /// The token, when authentication is on (only for the start-up line).
    #[must_use]
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }

    /// Whether a presented bearer token is the token.
    #[must_use]
    pub fn accepts_token(&self, presented: &str) -> bool {
        self.token.as_deref().is_some_and(|t| ct_eq(t, presented))
    }

    /// Whether authentication is on.
    #[must_use]
    pub fn enabled(&self) -> bool {
        self.token.is_some()
    }
}

/// Tokens given to running instances (`SWITCHBOARD_INSTANCE_TOKEN`): each is valid
/// only for its own instance and only while it runs. Only their hashes are kept.
#[derive(Clone, Default)]
pub struct InstanceTokens(Arc<RwLock<HashMap<[u8; 32], Uuid>>>);

impl InstanceTokens {
    /// Creates a token for `instance`.
    ///
    /// # Errors
    /// The system's random source failed.
    pub fn issue(&self, instance: Uuid) -> Result<String, AuthError> {
        let token = format!("sbi_{}", generate()?);
        self.0.write().unwrap_or_else(PoisonError::into_inner).insert(digest(&token), instance);
        Ok(token)
    }

    /// Invalidates every token of `instance`.
    pub fn revoke(&self, instance: Uuid) {
        self.0.write().unwrap_or_else(PoisonError::into_inner).retain(|_, id| *id != instance);
    }

    /// The instance a presented token belongs to.
    #[must_use]
    pub fn lookup(&self, presented: &str) -> Option<Uuid> {
        self.0.read().unwrap_or_else(PoisonError::into_inner).get(&digest(presented)).copied()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Constant-time string equality (the length is not secret).
#[must_use]
pub fn ct_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

fn generate() -> Result<String, AuthError> {
    random_hex()
}

/// 256 random bits as hex.
///
/// # Errors
/// The system's random source failed.
pub fn random_hex() -> Result<String, AuthError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| AuthError::Random(e.to_string()))?;
    Ok(hex(&bytes))
}

/// Lower-case hex of `bytes`.
#[must_use]
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_token_is_private_and_reused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = Auth::from_data_dir(dir.path()).expect("generated");
        let token = first.token().expect("on").to_owned();
        assert_eq!(token.len(), 64, "256 bits as hex");
        let mode = fs::metadata(dir.path().join(TOKEN_FILE)).expect("file").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let again = Auth::from_data_dir(dir.path()).expect("reused");
        assert_eq!(again.token(), Some(token.as_str()));
    }

    #[test]
    fn tokens_are_checked_exactly() {
        let auth = Auth::with_token("0123456789abcdef-token".into());
        assert!(auth.accepts_token("0123456789abcdef-token"));
        assert!(!auth.accepts_token("0123456789abcdef-tokeN"));
        assert!(!Auth::disabled().accepts_token(""));
    }

    #[test]
    fn an_empty_token_file_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join(TOKEN_FILE), "\n").expect("write");
        assert!(matches!(Auth::from_data_dir(dir.path()), Err(AuthError::Unusable(_))));
    }
}
