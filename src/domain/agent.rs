//! Agents: a named command run in a project directory (its settings are in
//! [`super::settings`]).
//!
//! Validation of a project path touches the filesystem (it must exist and is
//! stored canonical), so [`NewAgent::validate`] and [`AgentPatch::validate`] are
//! called off the async workers, like the database work they precede.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::settings::{set, AgentSettings, SettingsPatch, SettingsRecord};
use super::Invalid;

/// Longest agent name.
pub const MAX_NAME_CHARS: usize = 64;

/// An agent as clients see it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Agent {
    pub id: Uuid,
    pub name: String,
    /// Canonical absolute path of an existing directory.
    pub project_path: String,
    pub description: String,
    /// argv, executed directly (never through a shell).
    pub command: Vec<String>,
    /// Extra environment variables for the instance's process.
    pub env: BTreeMap<String, String>,
    pub created_at: String,
    pub updated_at: String,
    pub settings: AgentSettings,
}

/// Body of `POST /api/agents`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAgent {
    /// A built-in template (`GET /api/presets`): its command and integration fill
    /// in what is not given.
    #[serde(default)]
    pub preset: Option<String>,
    /// 1–64 of letters, digits, `-`, `_`, `.`; unique.
    pub name: String,
    /// An existing directory (absolute path).
    pub project_path: String,
    #[serde(default)]
    pub description: String,
    /// argv array, default `["bash"]` (or the preset's).
    #[schema(value_type = Option<Vec<String>>)]
    pub command: Option<Value>,
    pub env: Option<BTreeMap<String, String>>,
    pub settings: Option<SettingsPatch>,
}

/// Body of `PUT /api/agents/:id`: only the given fields change; settings merge.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentPatch {
    pub name: Option<String>,
    pub project_path: Option<String>,
    pub description: Option<String>,
    #[schema(value_type = Option<Vec<String>>)]
    pub command: Option<Value>,
    pub env: Option<BTreeMap<String, String>>,
    pub settings: Option<SettingsPatch>,
}

/// The agent's own fields, as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct AgentRecord {
    pub name: String,
    pub project_path: String,
    pub description: String,
    pub command: Vec<String>,
    pub env: BTreeMap<String, String>,
}

/// A validated change to an agent.
#[derive(Debug, Default)]
pub struct AgentChange {
    pub name: Option<String>,
    pub project_path: Option<String>,
    pub description: Option<String>,
    pub command: Option<Vec<String>>,
    pub env: Option<BTreeMap<String, String>>,
    pub settings: Option<SettingsPatch>,
}

impl AgentRecord {
    /// Applies a validated change to the agent's own fields (settings are merged separately).
    pub fn apply(&mut self, change: &mut AgentChange) {
        set(&mut self.name, change.name.take());
        set(&mut self.project_path, change.project_path.take());
        set(&mut self.description, change.description.take());
        set(&mut self.command, change.command.take());
        set(&mut self.env, change.env.take());
    }
}

impl NewAgent {
    /// Validates every field; canonicalises the project path (touches the filesystem).
    ///
    /// # Errors
    /// The first invalid field.
    pub fn validate(self) -> Result<(AgentRecord, SettingsRecord), Invalid> {
        let command = match &self.command {
            Some(value) => parse_command(value)?,
            None => vec!["bash".to_owned()],
        };
        let env = self.env.unwrap_or_default();
        validate_env(&env)?;
        let mut settings = SettingsRecord::default();
        if let Some(patch) = self.settings {
            patch.validate()?;
            settings.apply(patch);
        }
        let record = AgentRecord {
            name: parse_name(&self.name)?,
            project_path: canonical_project_path(&self.project_path)?,
            description: self.description,
            command,
            env,
        };
        Ok((record, settings))
    }
}

impl AgentPatch {
    /// Validates every given field; canonicalises a new project path (touches the filesystem).
    ///
    /// # Errors
    /// The first invalid field.
    pub fn validate(self) -> Result<AgentChange, Invalid> {
        if let Some(env) = &self.env {
            validate_env(env)?;
        }
        if let Some(settings) = &self.settings {
            settings.validate()?;
        }
        Ok(AgentChange {
            name: self.name.as_deref().map(parse_name).transpose()?,
            project_path: self.project_path.as_deref().map(canonical_project_path).transpose()?,
            description: self.description,
            command: self.command.as_ref().map(parse_command).transpose()?,
            env: self.env,
            settings: self.settings,
        })
    }
}

/// Checks an agent name.
///
/// # Errors
/// Empty, too long, or a character other than letters, digits, `-`, `_`, `.`.
pub fn parse_name(name: &str) -> Result<String, Invalid> {
    let n = name.chars().count();
    if n == 0 || n > MAX_NAME_CHARS {
        return Err(Invalid::new("name", format!("must be 1 to {MAX_NAME_CHARS} characters, got {n}")));
    }
    if let Some(bad) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))) {
        return Err(Invalid::new("name", format!("may hold only letters, digits, '-', '_' and '.', not {bad:?}")));
    }
    Ok(name.to_owned())
}

/// Checks an argv array.
///
/// # Errors
/// Not an array of strings, empty, an empty program, or a NUL byte anywhere.
pub fn parse_command(value: &Value) -> Result<Vec<String>, Invalid> {
    let not_argv = || {
        Invalid::new(
            "command",
            "must be an argv array of strings, e.g. [\"bash\", \"-l\"]; a shell string is not accepted",
        )
    };
    let items = value.as_array().ok_or_else(not_argv)?;
    let argv: Vec<String> =
        items.iter().map(|v| v.as_str().map(str::to_owned)).collect::<Option<_>>().ok_or_else(not_argv)?;
    match argv.first() {
        None => return Err(Invalid::new("command", "must have at least one element: the program")),
        Some(program) if program.is_empty() => {
            return Err(Invalid::new("command", "the program (first element) is empty"))
        }
        Some(_) => {}
    }
    if argv.iter().any(|a| a.contains('\0')) {
        return Err(Invalid::new("command", "must not contain NUL bytes"));
    }
    Ok(argv)
}

/// Checks extra environment variables.
///
/// # Errors
/// An empty name, `=` or NUL in a name, NUL in a value, or a reserved `SWITCHBOARD_` name.
pub fn validate_env(env: &BTreeMap<String, String>) -> Result<(), Invalid> {
    for (key, value) in env {
        let field = || format!("env.{key}");
        if key.is_empty() || key.contains('=') || key.contains('\0') {
            return Err(Invalid::new("env", format!("invalid variable name {key:?}")));
        }
        if key.starts_with("SWITCHBOARD_") {
            return Err(Invalid::new(field(), "SWITCHBOARD_ variables are set by the server"));
        }
        if value.contains('\0') {
            return Err(Invalid::new(field(), "must not contain NUL bytes"));
        }
    }
    Ok(())
}

/// Resolves a project path to its canonical form: absolute, symlinks resolved, a directory.
///
/// # Errors
/// A relative path, a path that does not exist, is not a directory, or is not UTF-8.
pub fn canonical_project_path(raw: &str) -> Result<String, Invalid> {
    let field = "project_path";
    if raw.contains('\0') {
        return Err(Invalid::new(field, "must not contain NUL bytes"));
    }
    if let Some(c) = raw.chars().find(|c| c.is_control() || super::message::is_bidi_control(*c)) {
        return Err(Invalid::new(
            field,
            format!("must not hold control or text-direction characters (found U+{:04X})", c as u32),
        ));
    }
    let path = Path::new(raw);
    if !path.is_absolute() {
        return Err(Invalid::new(field, format!("must be an absolute path, got {raw:?}")));
    }
    let canonical = path.canonicalize().map_err(|e| Invalid::new(field, format!("{raw:?} cannot be resolved: {e}")))?;
    if !canonical.is_dir() {
        return Err(Invalid::new(field, format!("{raw:?} is not a directory")));
    }
    canonical.into_os_string().into_string().map_err(|_| Invalid::new(field, "must be valid UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_allow_only_the_safe_alphabet() {
        assert!(parse_name("claude-1.main_x").is_ok());
        for bad in ["", "has space", "slash/", "ünï", &"a".repeat(65)] {
            assert_eq!(parse_name(bad).expect_err(bad).field, "name");
        }
    }

    #[test]
    fn commands_must_be_argv_arrays() {
        assert_eq!(parse_command(&json!(["bash", "-l"])).expect("argv"), ["bash", "-l"]);
        for bad in [json!("bash -l"), json!([]), json!([""]), json!(["a", 1]), json!(["a\u{0}b"])] {
            assert!(parse_command(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn project_paths_are_canonical_directories() {
        let dir = tempfile::tempdir().expect("tempdir");
        let real = dir.path().join("real");
        std::fs::create_dir(&real).expect("mkdir");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&real, &link).expect("symlink");
        let canonical = real.canonicalize().expect("canon").to_string_lossy().into_owned();
        assert_eq!(canonical_project_path(&link.to_string_lossy()).expect("link"), canonical);
        let dotted = format!("{}/../real", real.display());
        assert_eq!(canonical_project_path(&dotted).expect("dots"), canonical);
        let file = dir.path().join("file");
        std::fs::write(&file, "x").expect("write");
        assert!(canonical_project_path(&file.to_string_lossy()).is_err());
        assert!(canonical_project_path("relative/dir").is_err());
        assert!(canonical_project_path("/definitely/not/here").is_err());
    }

    #[test]
    fn reserved_env_names_are_refused() {
        let env = BTreeMap::from([("SWITCHBOARD_TOKEN".to_owned(), "x".to_owned())]);
        assert_eq!(validate_env(&env).expect_err("reserved").field, "env.SWITCHBOARD_TOKEN");
    }
}
