//! Browser sessions: a random id given out as an HttpOnly cookie in exchange for
//! the token, with an expiry checked here on every request. Signing out ends the
//! session; `DELETE /api/sessions` ends every one at once; changing the token ends
//! them all too (each is tied to the token it was made with). Only SHA-256 hashes
//! of ids are kept — in memory for the check, in `agents.db` so that sessions
//! outlive a restart.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use rusqlite::Connection;
use sha2::{Digest, Sha256};

use crate::auth::{hex, random_hex, AuthError};
use crate::db::sessions::{self, SessionRow};
use crate::db::DbError;

/// How long a session lasts.
pub const SESSION_DAYS: i64 = 30;
const PREFIX: &str = "sbs_";

/// Why a session could not be made or ended.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Random(#[from] AuthError),
}

/// The live sessions.
pub struct Sessions {
    token_tag: String,
    live: RwLock<HashMap<String, DateTime<Utc>>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions").finish_non_exhaustive()
    }
}

impl Sessions {
    /// Loads the sessions made with `token` (`None`: authentication is off, and
    /// no session is ever needed or accepted), dropping expired ones and those of
    /// any other token.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn load(conn: &Connection, token: Option<&str>) -> Result<Self, DbError> {
        let token_tag = token.map_or_else(String::new, tag_of);
        let mut live = HashMap::new();
        if token.is_some() {
            for SessionRow { id_hash, expires_at } in sessions::load(conn, &token_tag)? {
                if let Ok(at) = DateTime::parse_from_rfc3339(&expires_at) {
                    live.insert(id_hash, at.with_timezone(&Utc));
                }
            }
        }
        Ok(Sessions { token_tag, live: RwLock::new(live) })
    }

    /// Starts a session; returns the cookie value.
    ///
    /// # Errors
    /// The random source or SQLite failed.
    pub fn start(&self, conn: &Connection) -> Result<String, SessionError> {
        let id = format!("{PREFIX}{}", random_hex()?);
        let expires = Utc::now() + chrono::Duration::days(SESSION_DAYS);
        let row =
            SessionRow { id_hash: hash(&id), expires_at: expires.to_rfc3339_opts(chrono::SecondsFormat::Millis, true) };
        sessions::insert(conn, &row, &self.token_tag)?;
        let mut live = self.live.write().unwrap_or_else(PoisonError::into_inner);
        // Expired sessions go as new ones come, so neither the map nor the table grows
        // with sessions nobody ends.
        let now = Utc::now();
        live.retain(|_, expires| *expires > now);
        live.insert(row.id_hash, expires);
        Ok(id)
    }

    /// Whether a presented cookie value is a live, unexpired session.
    #[must_use]
    pub fn accepts(&self, presented: &str) -> bool {
        if !presented.starts_with(PREFIX) {
            return false;
        }
        let live = self.live.read().unwrap_or_else(PoisonError::into_inner);
        live.get(&hash(presented)).is_some_and(|expires| *expires > Utc::now())
    }

    /// Ends the session a cookie names; whether it was live.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn end(&self, conn: &Connection, presented: &str) -> Result<bool, DbError> {
        let id_hash = hash(presented);
        let was = self.live.write().unwrap_or_else(PoisonError::into_inner).remove(&id_hash).is_some();
        sessions::delete(conn, &id_hash)?;
        Ok(was)
    }

    /// Ends every session; how many were live.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn end_all(&self, conn: &Connection) -> Result<usize, DbError> {
        let mut live = self.live.write().unwrap_or_else(PoisonError::into_inner);
        let now = Utc::now();
        let count = live.values().filter(|expires| **expires > now).count();
        live.clear();
        sessions::delete_all(conn)?;
        Ok(count)
    }
}

fn hash(id: &str) -> String {
    hex(&Sha256::digest(id.as_bytes()))
}

/// What ties a session to the token it was made with (never the token itself).
fn tag_of(token: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(token.as_bytes()).unwrap_or_else(|_| unreachable!());
    mac.update(b"switchboard session v2");
    hex(&mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db() -> Connection {
        let mut conn = Connection::open_in_memory().expect("sqlite");
        crate::db::migrate(&mut conn, crate::db::AGENTS_MIGRATIONS, "agents.db").expect("migrated");
        conn
    }

    #[test]
    fn a_session_lives_until_ended_and_belongs_to_its_token() {
        let conn = db();
        let sessions = Sessions::load(&conn, Some("token-one-0123456789")).expect("loaded");
        let a = sessions.start(&conn).expect("a");
        let b = sessions.start(&conn).expect("b");
        assert!(sessions.accepts(&a) && sessions.accepts(&b));
        assert!(!sessions.accepts("sbs_forged"));
        assert!(sessions.end(&conn, &a).expect("ended"));
        assert!(!sessions.accepts(&a) && sessions.accepts(&b));

        let reloaded = Sessions::load(&conn, Some("token-one-0123456789")).expect("reloaded");
        assert!(!reloaded.accepts(&a) && reloaded.accepts(&b), "kept across a restart");
        let other_token = Sessions::load(&conn, Some("token-two-0123456789")).expect("other");
        assert!(!other_token.accepts(&b), "a new token ends every session");
    }

    #[test]
    fn every_session_ends_at_once() {
        let conn = db();
        let sessions = Sessions::load(&conn, Some("token-one-0123456789")).expect("loaded");
        let ids: Vec<String> = (0..3).map(|_| sessions.start(&conn).expect("started")).collect();
        assert_eq!(sessions.end_all(&conn).expect("ended"), 3);
        assert!(ids.iter().all(|id| !sessions.accepts(id)));
        let reloaded = Sessions::load(&conn, Some("token-one-0123456789")).expect("reloaded");
        assert!(ids.iter().all(|id| !reloaded.accepts(id)));
    }
}

/// How long a sign-in link works.
pub const LOGIN_LINK_MINUTES: i64 = 10;
/// Sign-in links outstanding at most (the oldest goes first).
const MAX_LOGIN_CODES: usize = 100;
const LOGIN_PREFIX: &str = "sbl_";

/// One-time sign-in codes: the dashboard address the server prints carries one
/// (`/#login=CODE`) instead of the token, so browser history, synced sessions and
/// address-bar suggestions never hold a long-lived secret. A code works once, for
/// [`LOGIN_LINK_MINUTES`]; only hashes are kept, in memory (a restart prints a new one).
#[derive(Default)]
pub struct LoginCodes(std::sync::Mutex<Vec<(String, DateTime<Utc>)>>);

impl std::fmt::Debug for LoginCodes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoginCodes").finish_non_exhaustive()
    }
}

impl LoginCodes {
    /// A new code and when it expires.
    ///
    /// # Errors
    /// The random source failed.
    pub fn mint(&self) -> Result<(String, DateTime<Utc>), AuthError> {
        let code = format!("{LOGIN_PREFIX}{}", random_hex()?);
        let expires = Utc::now() + chrono::Duration::minutes(LOGIN_LINK_MINUTES);
        let mut codes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Utc::now();
        codes.retain(|(_, at)| *at > now);
        if codes.len() >= MAX_LOGIN_CODES {
            codes.remove(0);
        }
        codes.push((hash(&code), expires));
        Ok((code, expires))
    }

    /// Whether `presented` is a live code; it is used up either way.
    #[must_use]
    pub fn redeem(&self, presented: &str) -> bool {
        if !presented.starts_with(LOGIN_PREFIX) {
            return false;
        }
        let wanted = hash(presented);
        let mut codes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(at) = codes.iter().position(|(h, _)| crate::auth::ct_eq(h, &wanted)) else { return false };
        let (_, expires) = codes.remove(at);
        expires > Utc::now()
    }
}

#[cfg(test)]
mod login_tests {
    use super::*;

    #[test]
    fn a_sign_in_code_works_once() {
        let codes = LoginCodes::default();
        let (code, expires) = codes.mint().expect("minted");
        assert!(expires > Utc::now() + chrono::Duration::minutes(9));
        assert!(!codes.redeem("sbl_forged"));
        assert!(codes.redeem(&code));
        assert!(!codes.redeem(&code), "used up");
        let many: Vec<String> = (0..150).map(|_| codes.mint().expect("minted").0).collect();
        assert!(!codes.redeem(&many[0]), "the oldest went when too many were outstanding");
        assert!(codes.redeem(&many[149]));
    }
}
