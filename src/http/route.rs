//! What the router will serve for a request, read the way the router reads it.
//!
//! The router matches the percent-decoded path (`/%61pi/tasks` is `/api/tasks` to
//! it), so every decision about a request — whether it needs credentials, what an
//! instance token may reach, the scope of an idempotency key, the metrics label —
//! is made on that same decoded path and on the pattern of the resource it matches,
//! never on the raw path as sent. A spelling the router does not serve (`/API/…`,
//! `//api/…`, dot segments) matches no pattern and reaches no handler.

use actix_web::{HttpMessage, HttpRequest};
use uuid::Uuid;

/// The path the router matches and the pattern of the resource that matches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routed {
    /// The percent-decoded path (`%2F`, `%25` and `+` stay encoded, as for the router).
    pub path: String,
    /// The matched resource's pattern (`/api/instances/{id}`), when one matches.
    pub pattern: Option<String>,
}

impl Routed {
    /// What the router will make of `req` (worked out once per request).
    #[must_use]
    pub fn of(req: &HttpRequest) -> Self {
        if let Some(routed) = req.extensions().get::<Routed>() {
            return routed.clone();
        }
        let path = req.match_info().as_str().to_owned();
        let pattern = req.resource_map().match_pattern(&path);
        let routed = Routed { path, pattern };
        req.extensions_mut().insert(routed.clone());
        routed
    }

    /// Whether the request is for the API (`/api` and everything under it).
    #[must_use]
    pub fn is_api(&self) -> bool {
        self.path == "/api" || self.path.starts_with("/api/")
    }

    /// Whether the matched pattern is `pattern`.
    #[must_use]
    pub fn is(&self, pattern: &str) -> bool {
        self.pattern.as_deref() == Some(pattern)
    }

    /// The `n`th segment of the path (0 is the one after the leading slash).
    #[must_use]
    pub fn segment(&self, n: usize) -> Option<&str> {
        self.path.strip_prefix('/')?.split('/').nth(n)
    }

    /// The path with every segment that is an id in any of its spellings written
    /// the one way (`{…}`, upper case and unhyphenated UUIDs name the same
    /// instance to the handlers).
    #[must_use]
    pub fn canonical_path(&self) -> String {
        self.path
            .split('/')
            .map(|segment| Uuid::parse_str(segment).map_or_else(|_| segment.to_owned(), |id| id.to_string()))
            .collect::<Vec<_>>()
            .join("/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn routed(path: &str, pattern: Option<&str>) -> Routed {
        Routed { path: path.into(), pattern: pattern.map(str::to_owned) }
    }

    #[test]
    fn ids_in_any_spelling_make_one_canonical_path() {
        let id = Uuid::new_v4();
        let upper = format!("/api/instances/{}/input", id.to_string().to_uppercase());
        let simple = format!("/api/instances/{}/input", id.simple());
        let want = format!("/api/instances/{id}/input");
        assert_eq!(routed(&upper, None).canonical_path(), want);
        assert_eq!(routed(&simple, None).canonical_path(), want);
        assert_eq!(routed("/api/tasks/7/run", None).canonical_path(), "/api/tasks/7/run");
    }

    #[test]
    fn the_api_is_the_decoded_prefix() {
        assert!(routed("/api", None).is_api());
        assert!(routed("/api/tasks", None).is_api());
        assert!(!routed("/apix", None).is_api());
        assert!(!routed("/API/tasks", None).is_api());
        assert_eq!(routed("/api/instances/x/input", None).segment(2), Some("x"));
    }
}
