//! Where an agent's instances run: a local process on a PTY (the default), or a
//! container through a Docker Engine API endpoint (Docker or Podman, on this
//! machine or another).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Invalid;

/// Most extra mounts a container runner may declare.
pub const MAX_MOUNTS: usize = 32;

/// Where an agent's instances run (`settings.runner`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Runner {
    /// A process of this server's machine, on a PTY of its own.
    #[default]
    Local,
    /// A container with a TTY, made through a Docker Engine API endpoint.
    Container(ContainerRunner),
}

/// A container runner's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContainerRunner {
    /// The image, as the engine names it (`debian:12`, `localhost/agent:1`). It must
    /// be on the engine already: the server pulls nothing.
    pub image: String,
    /// The engine's endpoint: `unix:///path/to.sock`, `tcp://host:port`,
    /// `http://host:port` or `ssh://user@host`. `null`: `DOCKER_HOST` of the
    /// server's environment, else `unix:///var/run/docker.sock`.
    #[serde(default)]
    pub engine: Option<String>,
    /// Extra bind mounts, `HOST_PATH:CONTAINER_PATH[:ro]`, both absolute. The
    /// instance's workspace is always mounted, at its own path.
    #[serde(default)]
    pub mounts: Vec<String>,
    /// The container's network: `none`, `host`, `bridge` or a network's name.
    /// `null`: the engine's default.
    #[serde(default)]
    pub network: Option<String>,
    /// The user the program runs as (`uid`, `uid:gid` or a name the image knows).
    /// `null`: the image's user.
    #[serde(default)]
    pub user: Option<String>,
}

/// One extra bind mount, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    pub host: String,
    pub container: String,
    pub read_only: bool,
}

impl Runner {
    /// Its name, as `isolation` and errors give it.
    #[must_use]
    pub fn kind(&self) -> &'static str {
        match self {
            Runner::Local => "local",
            Runner::Container(_) => "container",
        }
    }

    /// Checks a container runner's fields.
    ///
    /// # Errors
    /// The first field that is malformed, named.
    pub fn validate(&self) -> Result<(), Invalid> {
        let Runner::Container(c) = self else { return Ok(()) };
        let plain = |field: &str, value: &str, max: usize| {
            if value.is_empty() || value.len() > max || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
                Err(Invalid::new(
                    format!("settings.runner.{field}"),
                    format!("must be 1 to {max} characters without spaces or control characters"),
                ))
            } else {
                Ok(())
            }
        };
        plain("image", &c.image, 512)?;
        if let Some(engine) = &c.engine {
            plain("engine", engine, 1024)?;
            if !["unix:///", "tcp://", "http://", "ssh://"].iter().any(|scheme| engine.starts_with(scheme)) {
                return Err(Invalid::new(
                    "settings.runner.engine",
                    format!("{engine:?} must start with unix:///, tcp://, http:// or ssh://"),
                ));
            }
        }
        if let Some(network) = &c.network {
            plain("network", network, 255)?;
        }
        if let Some(user) = &c.user {
            plain("user", user, 255)?;
        }
        if c.mounts.len() > MAX_MOUNTS {
            return Err(Invalid::new("settings.runner.mounts", format!("at most {MAX_MOUNTS} mounts")));
        }
        for (i, mount) in c.mounts.iter().enumerate() {
            parse_mount(mount).map_err(|why| Invalid::new(format!("settings.runner.mounts[{i}]"), why))?;
        }
        Ok(())
    }
}

impl ContainerRunner {
    /// The extra mounts, parsed (they were checked when saved; a malformed one is left out).
    #[must_use]
    pub fn mounts(&self) -> Vec<Mount> {
        self.mounts.iter().filter_map(|m| parse_mount(m).ok()).collect()
    }
}

/// `HOST:CONTAINER[:ro|:rw]`, both absolute, no `..`.
fn parse_mount(text: &str) -> Result<Mount, String> {
    let parts: Vec<&str> = text.split(':').collect();
    let (host, container, read_only) = match parts.as_slice() {
        [host, container] => (*host, *container, false),
        [host, container, "ro"] => (*host, *container, true),
        [host, container, "rw"] => (*host, *container, false),
        _ => return Err(format!("{text:?} must be HOST_PATH:CONTAINER_PATH, optionally followed by :ro or :rw")),
    };
    for path in [host, container] {
        if !path.starts_with('/') || path.split('/').any(|part| part == "..") || path.contains('\0') {
            return Err(format!("{path:?} must be an absolute path without .."));
        }
    }
    Ok(Mount { host: host.to_owned(), container: container.to_owned(), read_only })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(json: serde_json::Value) -> Result<Runner, String> {
        let runner: Runner = serde_json::from_value(json).map_err(|e| e.to_string())?;
        runner.validate().map_err(|e| e.field)?;
        Ok(runner)
    }

    #[test]
    fn a_runner_is_local_or_a_checked_container() {
        assert_eq!(container(serde_json::json!({"kind": "local"})), Ok(Runner::Local));
        let Ok(Runner::Container(c)) = container(serde_json::json!({
            "kind": "container", "image": "debian:12", "engine": "tcp://10.0.0.2:2375",
            "mounts": ["/srv/cache:/cache:ro", "/srv/a:/a"], "network": "none", "user": "1000:1000"
        })) else {
            panic!("a valid container runner")
        };
        assert_eq!(c.mounts()[0], Mount { host: "/srv/cache".into(), container: "/cache".into(), read_only: true });
        assert!(!c.mounts()[1].read_only);
        assert!(container(serde_json::json!({"kind": "vm"})).is_err());
        assert!(container(serde_json::json!({"kind": "container"})).is_err(), "the image is required");
        assert!(container(serde_json::json!({"kind": "container", "image": "x", "colour": 1})).is_err());
        for (bad, field) in [
            (serde_json::json!({"kind": "container", "image": ""}), "settings.runner.image"),
            (serde_json::json!({"kind": "container", "image": "a b"}), "settings.runner.image"),
            (serde_json::json!({"kind": "container", "image": "x", "engine": "ftp://h"}), "settings.runner.engine"),
            (serde_json::json!({"kind": "container", "image": "x", "mounts": ["rel:/a"]}), "settings.runner.mounts[0]"),
            (
                serde_json::json!({"kind": "container", "image": "x", "mounts": ["/a:/b:rx"]}),
                "settings.runner.mounts[0]",
            ),
            (
                serde_json::json!({"kind": "container", "image": "x", "mounts": ["/a/../etc:/b"]}),
                "settings.runner.mounts[0]",
            ),
        ] {
            assert_eq!(container(bad.clone()), Err(field.to_owned()), "{bad}");
        }
    }
}
