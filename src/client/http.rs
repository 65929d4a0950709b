//! The client's side of the HTTP API: requests, errors a person understands, and
//! ids given by a unique prefix.

use std::io::Read;
use std::time::Duration;

use serde_json::Value;
use uuid::Uuid;

use super::Target;

/// Why a command failed, as one line.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("no server answers at {url} ({reason}); start one with `switchboard`, or pass --url")]
    Unreachable { url: String, reason: String },
    #[error("the server at {url} refused the token (401); pass --token or SWITCHBOARD_TOKEN, or --data-dir of the local server")]
    BadToken { url: String },
    #[error("no token: pass --token or SWITCHBOARD_TOKEN, or --data-dir of a local server ({0})")]
    NoToken(String),
    #[error("no {kind} matches {given:?}")]
    Unknown { kind: &'static str, given: String },
    #[error("{given:?} matches {count} {kind}s ({examples}); give more of the id")]
    Ambiguous { kind: &'static str, given: String, count: usize, examples: String },
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Other(String),
}

/// A connection to one server.
pub struct Client {
    pub base: String,
    token: String,
    agent: ureq::Agent,
    /// For event streams: no overall timeout.
    streams: ureq::Agent,
}

/// An answer: its status and JSON body (null when empty or not JSON).
pub struct Answer {
    pub status: u16,
    pub body: Value,
    pub headers: Vec<(String, String)>,
    pub text: Vec<u8>,
}

impl Answer {
    /// A header's value.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

fn agent(timeout: Option<Duration>) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(timeout)
        .timeout_connect(Some(Duration::from_secs(5)))
        .http_status_as_error(false)
        .build()
        .into()
}

impl Client {
    /// A client for `target`, with the token from the flag or environment, the
    /// instance's own token inside an instance, or the local server's token file.
    ///
    /// # Errors
    /// No token anywhere.
    pub fn new(target: &Target) -> Result<Client, Failure> {
        let token = match (&target.token, std::env::var("SWITCHBOARD_INSTANCE_TOKEN")) {
            (Some(token), _) => token.clone(),
            (None, Ok(token)) if !token.is_empty() => token,
            _ => {
                let path = target.data_dir.join("token");
                std::fs::read_to_string(&path)
                    .map_err(|e| Failure::NoToken(format!("{}: {e}", path.display())))?
                    .trim()
                    .to_owned()
            }
        };
        Ok(Client {
            base: target.url.trim_end_matches('/').to_owned(),
            token,
            agent: agent(Some(Duration::from_secs(60))),
            streams: agent(None),
        })
    }

    /// Sends a request; 401 and unreachable servers are failures, any other status is
    /// the caller's to judge.
    ///
    /// # Errors
    /// The server cannot be reached, or refuses the token.
    pub fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Answer, Failure> {
        let url = format!("{}{path}", self.base);
        let auth = format!("Bearer {}", self.token);
        let sent = match (method, body) {
            ("GET", _) => self.agent.get(&url).header("Authorization", &auth).call(),
            ("DELETE", _) => self.agent.delete(&url).header("Authorization", &auth).call(),
            ("PUT", Some(body)) => self
                .agent
                .put(&url)
                .header("Authorization", &auth)
                .header("Content-Type", "application/json")
                .send(body.to_string()),
            (_, Some(body)) => self
                .agent
                .post(&url)
                .header("Authorization", &auth)
                .header("Content-Type", "application/json")
                .send(body.to_string()),
            (_, None) => self.agent.post(&url).header("Authorization", &auth).send_empty(),
        };
        let mut response = sent.map_err(|e| self.unreachable(&e))?;
        let status = response.status().as_u16();
        if status == 401 {
            return Err(Failure::BadToken { url: self.base.clone() });
        }
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
            .collect();
        let mut text = Vec::new();
        response
            .body_mut()
            .as_reader()
            .take(512 << 20)
            .read_to_end(&mut text)
            .map_err(|e| Failure::Other(format!("the answer from {} broke off: {e}", self.base)))?;
        let body = serde_json::from_slice(&text).unwrap_or(Value::Null);
        Ok(Answer { status, body, headers, text })
    }

    /// A request that must succeed (2xx); its JSON body.
    ///
    /// # Errors
    /// As [`Client::call`], or the server's refusal in its own words.
    pub fn expect(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, Failure> {
        let answer = self.call(method, path, body)?;
        if (200..300).contains(&answer.status) {
            Ok(answer.body)
        } else {
            Err(refusal(&answer))
        }
    }

    /// Opens an event stream (no overall timeout), resuming after `last` when given.
    ///
    /// # Errors
    /// As [`Client::call`], or a refusal.
    pub fn stream(&self, path: &str, last: Option<&str>) -> Result<impl Read + use<>, Failure> {
        let url = format!("{}{path}", self.base);
        let mut request = self
            .streams
            .get(&url)
            .header("Authorization", format!("Bearer {}", self.token))
            .header("Accept", "text/event-stream");
        if let Some(last) = last {
            request = request.header("Last-Event-ID", last);
        }
        let mut response = request.call().map_err(|e| self.unreachable(&e))?;
        match response.status().as_u16() {
            200 => Ok(response.into_body().into_reader()),
            401 => Err(Failure::BadToken { url: self.base.clone() }),
            status => {
                let mut text = Vec::new();
                let _ = response.body_mut().as_reader().take(64 << 10).read_to_end(&mut text);
                let body = serde_json::from_slice(&text).unwrap_or(Value::Null);
                Err(refusal(&Answer { status, body, headers: Vec::new(), text }))
            }
        }
    }

    fn unreachable(&self, e: &ureq::Error) -> Failure {
        let reason = match e {
            ureq::Error::Io(io) => io.to_string(),
            other => other.to_string(),
        };
        Failure::Unreachable { url: self.base.clone(), reason }
    }

    /// Every item of a paged list (`?limit=1000&offset=…`).
    ///
    /// # Errors
    /// As [`Client::expect`].
    pub fn all(&self, path: &str) -> Result<Vec<Value>, Failure> {
        let join = if path.contains('?') { '&' } else { '?' };
        let mut items = Vec::new();
        loop {
            let page = self.expect("GET", &format!("{path}{join}limit=1000&offset={}", items.len()), None)?;
            let page = page.as_array().cloned().unwrap_or_default();
            let n = page.len();
            items.extend(page);
            if n < 1000 {
                return Ok(items);
            }
        }
    }

    /// The instance an id or a unique id prefix names.
    ///
    /// # Errors
    /// None or several match; the server cannot be asked.
    pub fn instance(&self, given: &str) -> Result<Value, Failure> {
        if let Ok(id) = Uuid::parse_str(given) {
            let answer = self.call("GET", &format!("/api/instances/{id}"), None)?;
            return match answer.status {
                200 => Ok(answer.body),
                404 => Err(Failure::Unknown { kind: "instance", given: given.to_owned() }),
                _ => Err(refusal(&answer)),
            };
        }
        let prefix = given.to_ascii_lowercase();
        if prefix.is_empty() || !prefix.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            return Err(Failure::Unknown { kind: "instance", given: given.to_owned() });
        }
        let all = self.all("/api/instances")?;
        one(all, "instance", given, |i| i["id"].as_str().is_some_and(|id| id.starts_with(&prefix)))
    }

    /// The agent a name, an id or a unique id prefix names.
    ///
    /// # Errors
    /// None or several match; the server cannot be asked.
    pub fn agent(&self, given: &str) -> Result<Value, Failure> {
        let all = self.all("/api/agents")?;
        if let Some(agent) = all.iter().find(|a| a["name"] == given) {
            return Ok(agent.clone());
        }
        let prefix = given.to_ascii_lowercase();
        one(all, "agent", given, |a| a["id"].as_str().is_some_and(|id| !prefix.is_empty() && id.starts_with(&prefix)))
    }
}

fn one(items: Vec<Value>, kind: &'static str, given: &str, matches: impl Fn(&Value) -> bool) -> Result<Value, Failure> {
    let found: Vec<Value> = items.into_iter().filter(|i| matches(i)).collect();
    match found.len() {
        0 => Err(Failure::Unknown { kind, given: given.to_owned() }),
        1 => Ok(found.into_iter().next().unwrap_or(Value::Null)),
        count => {
            let shown: Vec<&str> =
                found.iter().take(4).filter_map(|i| i["id"].as_str()).map(|id| &id[..id.len().min(13)]).collect();
            let more = if count > 4 { ", …" } else { "" };
            Err(Failure::Ambiguous {
                kind,
                given: given.to_owned(),
                count,
                examples: format!("{}{more}", shown.join(", ")),
            })
        }
    }
}

/// The server's refusal in its own words.
pub(super) fn refusal(answer: &Answer) -> Failure {
    let message = answer.body["error"]["message"]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| String::from_utf8_lossy(&answer.text).chars().take(200).collect());
    Failure::Refused(format!("the server refused ({}): {message}", answer.status))
}
