//! `switchboard login-link`: asks the server running over this data directory for
//! a one-time sign-in link and prints it. The server's address is the one it
//! recorded in `DATA_DIR/url` at start; the token is the configured one or
//! `DATA_DIR/token`.

use std::io::Read;
use std::time::Duration;

use crate::config::Settings;
use crate::startup::URL_FILE;

/// The link, or why there is none.
///
/// # Errors
/// No server recorded or answering, no token, or the server's refusal.
pub fn fetch(settings: &Settings) -> Result<String, String> {
    let url_file = settings.data_dir.join(URL_FILE);
    let url = std::fs::read_to_string(&url_file).map_err(|e| {
        format!("no server address in {} ({e}); is the server running over this data directory?", url_file.display())
    })?;
    let url = url.trim();
    if settings.no_auth {
        return Err(format!("authentication is off (--no-auth): open {url}/ directly"));
    }
    let token = match &settings.token {
        Some(token) => token.clone(),
        None => {
            let path = settings.data_dir.join("token");
            std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read the token in {} ({e}); pass --token", path.display()))?
                .trim()
                .to_owned()
        }
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent
        .post(format!("{url}/api/login-links"))
        .header("Authorization", format!("Bearer {token}"))
        .send_empty()
        .map_err(|e| format!("no server answers at {url} ({e}); is it running?"))?;
    let status = response.status().as_u16();
    let mut body = String::new();
    let _ = response.body_mut().as_reader().take(64 * 1024).read_to_string(&mut body);
    if status != 201 {
        return Err(format!("the server at {url} refused ({status}): {}", body.trim()));
    }
    let link: serde_json::Value =
        serde_json::from_str(&body).map_err(|e| format!("unexpected answer ({e}): {body}"))?;
    link["url"].as_str().map(str::to_owned).ok_or_else(|| format!("unexpected answer: {body}"))
}
