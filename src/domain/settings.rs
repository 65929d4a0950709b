//! Agent settings: what is stored (trigger secret included), what clients see,
//! and the partial changes they send, merged key by key.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::integration::{ApprovalRule, Integration};
use super::runner::Runner;
use super::{double_option, Invalid};

/// Quiet period before a program counts as waiting, when the agent sets none.
pub const DEFAULT_IDLE_MS: u32 = 400;
/// Most prompt patterns an agent may have.
pub const MAX_PROMPT_PATTERNS: usize = 32;
/// Most variables an agent may let its triggers set.
pub const MAX_TRIGGER_ENV: usize = 64;

/// Where an agent's instances work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WorkspaceKind {
    /// In the agent's `project_path`, all of them together.
    #[default]
    Shared,
    /// Each in a git worktree of its own, on a branch of its own.
    Worktree,
}

impl WorkspaceKind {
    /// The stored form.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            WorkspaceKind::Shared => "shared",
            WorkspaceKind::Worktree => "worktree",
        }
    }

    /// Parses the stored form.
    ///
    /// # Errors
    /// Any other text.
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        match text {
            "shared" => Ok(WorkspaceKind::Shared),
            "worktree" => Ok(WorkspaceKind::Worktree),
            other => {
                Err(Invalid::new("settings.workspace", format!("unknown value {other:?}; expected shared or worktree")))
            }
        }
    }
}

/// Resource limits on an instance's whole process tree; each is optional (`null`:
/// the server's default from `[limits]`, or none).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Memory of all its processes together, in MiB (16–1048576).
    #[serde(default)]
    pub memory_mb: Option<u64>,
    /// CPU time as a share of one core, in percent (1–100000; 200 = two cores).
    #[serde(default)]
    pub cpu_percent: Option<u32>,
    /// Processes and threads at once (8–1000000).
    #[serde(default)]
    pub pids: Option<u32>,
    /// Open files per process (16–1048576).
    #[serde(default)]
    pub open_files: Option<u64>,
}

impl Limits {
    /// These limits, with `defaults` where none is set.
    #[must_use]
    pub fn or(self, defaults: Limits) -> Limits {
        Limits {
            memory_mb: self.memory_mb.or(defaults.memory_mb),
            cpu_percent: self.cpu_percent.or(defaults.cpu_percent),
            pids: self.pids.or(defaults.pids),
            open_files: self.open_files.or(defaults.open_files),
        }
    }

    /// The limits set that only a cgroup can hold for a whole process tree
    /// (`memory_mb`, `cpu_percent`, `pids`), by name.
    #[must_use]
    pub fn tree_wide(&self) -> Vec<&'static str> {
        [self.memory_mb.map(|_| "memory_mb"), self.cpu_percent.map(|_| "cpu_percent"), self.pids.map(|_| "pids")]
            .into_iter()
            .flatten()
            .collect()
    }

    /// Whether none is set.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == Limits::default()
    }

    /// Checks each given limit's range; `field` prefixes the names in errors.
    ///
    /// # Errors
    /// The first limit out of range.
    pub fn validate(&self, field: &str) -> Result<(), Invalid> {
        let check = |name: &str, value: Option<u64>, low: u64, high: u64| match value {
            Some(v) if !(low..=high).contains(&v) => {
                Err(Invalid::new(format!("{field}.{name}"), format!("must be from {low} to {high}, or null")))
            }
            _ => Ok(()),
        };
        check("memory_mb", self.memory_mb, 16, 1 << 20)?;
        check("cpu_percent", self.cpu_percent.map(u64::from), 1, 100_000)?;
        check("pids", self.pids.map(u64::from), 8, 1_000_000)?;
        check("open_files", self.open_files, 16, 1 << 20)
    }
}

/// Most extra writable paths a sandbox may declare.
pub const MAX_WRITABLE: usize = 64;

/// The filesystem and network sandbox of an agent's instances (Landlock).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Sandbox {
    /// Off by default.
    #[serde(default)]
    pub enabled: bool,
    /// Extra paths the instance may write besides its workspace and private
    /// temporary directory: absolute, or `~/…` for the instance's `HOME`.
    #[serde(default)]
    pub writable: Vec<String>,
    /// `false` refuses TCP connections and binds, except connections to this server.
    #[serde(default = "yes")]
    pub network: bool,
    /// `true`: an instance does not start where the kernel cannot sandbox it.
    #[serde(default)]
    pub required: bool,
}

fn yes() -> bool {
    true
}

impl Default for Sandbox {
    fn default() -> Self {
        Sandbox { enabled: false, writable: Vec::new(), network: true, required: false }
    }
}

impl Sandbox {
    /// Checks the writable paths.
    ///
    /// # Errors
    /// Too many paths, or one that is neither absolute nor `~/…`.
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.writable.len() > MAX_WRITABLE {
            return Err(Invalid::new("settings.sandbox.writable", format!("at most {MAX_WRITABLE} paths")));
        }
        for (i, path) in self.writable.iter().enumerate() {
            let field = || format!("settings.sandbox.writable[{i}]");
            if path.contains('\0') || path.len() > 4096 {
                return Err(Invalid::new(field(), "must be a path without NUL bytes, at most 4096 bytes"));
            }
            if !(path.starts_with('/') || path.starts_with("~/")) {
                return Err(Invalid::new(field(), format!("{path:?} must be absolute or start with ~/")));
            }
            if path.split('/').any(|part| part == "..") {
                return Err(Invalid::new(field(), format!("{path:?} must not contain ..")));
            }
        }
        Ok(())
    }
}

/// An agent's settings as clients see them (the trigger secret is write-only).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct AgentSettings {
    pub auto_start: bool,
    pub notification_enabled: bool,
    pub max_concurrent_instances: u32,
    /// Regular expressions matched against the last screen line.
    pub prompt_patterns: Vec<String>,
    /// Quiet period before an instance counts as waiting; `null` means the default (400 ms).
    pub idle_ms: Option<u32>,
    #[schema(value_type = Object)]
    pub settings_json: Map<String, Value>,
    pub has_trigger_secret: bool,
    /// Environment variables a signed trigger may set (none unless listed).
    pub trigger_env: Vec<String>,
    /// `shared` (the default: instances run in `project_path`) or `worktree` (each
    /// in a git worktree of its own).
    pub workspace: WorkspaceKind,
    /// Resource limits on each instance's process tree (unset ones: the server's defaults).
    pub limits: Limits,
    /// The filesystem and network sandbox.
    pub sandbox: Sandbox,
    /// How Switchboard hears from the program beyond its terminal (set by a preset).
    pub integration: Integration,
    /// Rules that decide permission requests at once, first match wins.
    pub approvals: Vec<ApprovalRule>,
    /// Where its instances run: `{"kind": "local"}` (the default) or a container.
    pub runner: Runner,
}

/// The stored settings, trigger secret included.
#[derive(Debug, Clone, PartialEq)]
pub struct SettingsRecord {
    pub auto_start: bool,
    pub notification_enabled: bool,
    pub max_concurrent_instances: u32,
    pub prompt_patterns: Vec<String>,
    pub idle_ms: Option<u32>,
    pub settings_json: Map<String, Value>,
    pub trigger_secret: Option<String>,
    pub trigger_env: Vec<String>,
    pub workspace: WorkspaceKind,
    pub limits: Limits,
    pub sandbox: Sandbox,
    pub integration: Integration,
    pub approvals: Vec<ApprovalRule>,
    pub runner: Runner,
}

impl Default for SettingsRecord {
    fn default() -> Self {
        SettingsRecord {
            auto_start: false,
            notification_enabled: true,
            max_concurrent_instances: 1,
            prompt_patterns: Vec::new(),
            idle_ms: None,
            settings_json: Map::new(),
            trigger_secret: None,
            trigger_env: Vec::new(),
            workspace: WorkspaceKind::Shared,
            limits: Limits::default(),
            sandbox: Sandbox::default(),
            integration: Integration::None,
            approvals: Vec::new(),
            runner: Runner::Local,
        }
    }
}

impl SettingsRecord {
    /// Merges a validated patch: only given keys change.
    pub fn apply(&mut self, patch: SettingsPatch) {
        let SettingsPatch {
            auto_start,
            notification_enabled,
            max_concurrent_instances,
            prompt_patterns,
            idle_ms,
            settings_json,
            trigger_secret,
            trigger_env,
            workspace,
            limits,
            sandbox,
            integration,
            approvals,
            runner,
        } = patch;
        set(&mut self.auto_start, auto_start);
        set(&mut self.notification_enabled, notification_enabled);
        set(&mut self.max_concurrent_instances, max_concurrent_instances);
        set(&mut self.prompt_patterns, prompt_patterns);
        set(&mut self.idle_ms, idle_ms);
        set(&mut self.settings_json, settings_json);
        set(&mut self.trigger_secret, trigger_secret);
        set(&mut self.trigger_env, trigger_env);
        set(&mut self.workspace, workspace);
        set(&mut self.limits, limits);
        set(&mut self.sandbox, sandbox);
        set(&mut self.integration, integration);
        set(&mut self.approvals, approvals);
        set(&mut self.runner, runner);
    }

    /// Refuses trigger variables the agent does not allow.
    ///
    /// # Errors
    /// The first variable not in `trigger_env`, named.
    pub fn check_trigger_env<'a>(&self, names: impl IntoIterator<Item = &'a String>) -> Result<(), Invalid> {
        match names.into_iter().find(|name| !self.trigger_env.contains(name)) {
            Some(name) => Err(Invalid::new(
                format!("env.{name}"),
                "a trigger may set only the variables named in the agent's settings.trigger_env",
            )),
            None => Ok(()),
        }
    }

    /// What clients may see.
    #[must_use]
    pub fn public(&self) -> AgentSettings {
        AgentSettings {
            auto_start: self.auto_start,
            notification_enabled: self.notification_enabled,
            max_concurrent_instances: self.max_concurrent_instances,
            prompt_patterns: self.prompt_patterns.clone(),
            idle_ms: self.idle_ms,
            settings_json: self.settings_json.clone(),
            has_trigger_secret: self.trigger_secret.is_some(),
            trigger_env: self.trigger_env.clone(),
            workspace: self.workspace,
            limits: self.limits,
            sandbox: self.sandbox.clone(),
            integration: self.integration,
            approvals: self.approvals.clone(),
            runner: self.runner.clone(),
        }
    }
}

/// Replaces `slot` when a value is given.
pub(super) fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *slot = value;
    }
}

/// Settings as a client sends them: every key optional, merged into what is stored.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsPatch {
    pub auto_start: Option<bool>,
    pub notification_enabled: Option<bool>,
    /// 1–1000.
    pub max_concurrent_instances: Option<u32>,
    pub prompt_patterns: Option<Vec<String>>,
    /// 50–60000, or `null` for the default.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<u32>)]
    pub idle_ms: Option<Option<u32>>,
    #[schema(value_type = Option<Object>)]
    pub settings_json: Option<Map<String, Value>>,
    /// Write-only, 16–512 characters, or `null` to remove it.
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub trigger_secret: Option<Option<String>>,
    /// Names of the environment variables a signed trigger may set, at most 64
    /// (not `SWITCHBOARD_*`); empty by default.
    pub trigger_env: Option<Vec<String>>,
    /// `shared` or `worktree` (needs a git repository with a commit as `project_path`).
    pub workspace: Option<WorkspaceKind>,
    /// Replaces the limits as a whole: `{memory_mb, cpu_percent, pids, open_files}`,
    /// each optional.
    pub limits: Option<Limits>,
    /// Replaces the sandbox as a whole: `{enabled, writable, network, required}`.
    pub sandbox: Option<Sandbox>,
    /// `none`, `claude-code`, `codex`, `gemini` or `aider` (a preset sets it).
    pub integration: Option<Integration>,
    /// Replaces the rules as a whole: `[{tool, match?, decision}]`, at most 64.
    pub approvals: Option<Vec<ApprovalRule>>,
    /// Replaces the runner as a whole: `{"kind": "local"}` or `{"kind": "container",
    /// image, engine?, mounts?, network?, user?}`.
    pub runner: Option<Runner>,
}

impl SettingsPatch {
    /// Checks every given key.
    ///
    /// # Errors
    /// The first key out of range, or a prompt pattern that is not a valid regular expression.
    pub fn validate(&self) -> Result<(), Invalid> {
        if let Some(n) = self.max_concurrent_instances {
            if !(1..=1000).contains(&n) {
                return Err(Invalid::new("settings.max_concurrent_instances", "must be from 1 to 1000"));
            }
        }
        if let Some(Some(ms)) = self.idle_ms {
            if !(50..=60_000).contains(&ms) {
                return Err(Invalid::new("settings.idle_ms", "must be from 50 to 60000, or null for the default"));
            }
        }
        if let Some(patterns) = &self.prompt_patterns {
            validate_patterns(patterns)?;
        }
        if let Some(names) = &self.trigger_env {
            validate_trigger_env(names)?;
        }
        if let Some(limits) = &self.limits {
            limits.validate("settings.limits")?;
        }
        if let Some(sandbox) = &self.sandbox {
            sandbox.validate()?;
        }
        if let Some(rules) = &self.approvals {
            ApprovalRule::validate_all(rules)?;
        }
        if let Some(runner) = &self.runner {
            runner.validate()?;
        }
        if let Some(Some(secret)) = &self.trigger_secret {
            let n = secret.chars().count();
            if !(16..=512).contains(&n) || secret.chars().any(char::is_control) {
                return Err(Invalid::new(
                    "settings.trigger_secret",
                    "must be 16 to 512 characters without control characters",
                ));
            }
        }
        Ok(())
    }
}

fn validate_trigger_env(names: &[String]) -> Result<(), Invalid> {
    if names.len() > MAX_TRIGGER_ENV {
        return Err(Invalid::new("settings.trigger_env", format!("at most {MAX_TRIGGER_ENV} names")));
    }
    for (i, name) in names.iter().enumerate() {
        let field = || format!("settings.trigger_env[{i}]");
        let valid = !name.is_empty()
            && name.len() <= 255
            && !name.starts_with(|c: char| c.is_ascii_digit())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(Invalid::new(field(), format!("{name:?} is not a variable name (letters, digits, _)")));
        }
        if name.starts_with("SWITCHBOARD_") {
            return Err(Invalid::new(field(), "SWITCHBOARD_ variables are set by the server"));
        }
    }
    Ok(())
}

fn validate_patterns(patterns: &[String]) -> Result<(), Invalid> {
    if patterns.len() > MAX_PROMPT_PATTERNS {
        return Err(Invalid::new("settings.prompt_patterns", format!("at most {MAX_PROMPT_PATTERNS} patterns")));
    }
    for (i, pattern) in patterns.iter().enumerate() {
        regex::RegexBuilder::new(pattern).size_limit(1 << 20).build().map_err(|e| {
            Invalid::new(format!("settings.prompt_patterns[{i}]"), format!("not a valid regular expression: {e}"))
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_merge_only_given_keys() {
        let mut s = SettingsRecord { idle_ms: Some(900), ..SettingsRecord::default() };
        s.apply(SettingsPatch { auto_start: Some(true), ..SettingsPatch::default() });
        assert!(s.auto_start);
        assert_eq!(s.idle_ms, Some(900));
        s.apply(SettingsPatch { idle_ms: Some(None), ..SettingsPatch::default() });
        assert_eq!(s.idle_ms, None);
    }

    #[test]
    fn settings_ranges_and_patterns_are_checked() {
        let bad_regex = SettingsPatch { prompt_patterns: Some(vec!["ok".into(), "(".into()]), ..Default::default() };
        assert_eq!(bad_regex.validate().expect_err("regex").field, "settings.prompt_patterns[1]");
        let zero = SettingsPatch { max_concurrent_instances: Some(0), ..Default::default() };
        assert!(zero.validate().is_err());
        let short = SettingsPatch { trigger_secret: Some(Some("short".into())), ..Default::default() };
        assert!(short.validate().is_err());
        for bad in ["BASH_FUNC_x%%", "LD PRELOAD", "", "1X", "SWITCHBOARD_TOKEN"] {
            let patch = SettingsPatch { trigger_env: Some(vec!["TICKET".into(), bad.into()]), ..Default::default() };
            assert_eq!(patch.validate().expect_err(bad).field, "settings.trigger_env[1]", "{bad}");
        }
    }

    #[test]
    fn triggers_set_only_the_variables_the_agent_allows() {
        let s = SettingsRecord { trigger_env: vec!["TICKET".into()], ..SettingsRecord::default() };
        assert!(s.check_trigger_env(&["TICKET".to_owned()]).is_ok());
        let refused = s.check_trigger_env(&["TICKET".to_owned(), "LD_PRELOAD".to_owned()]).expect_err("refused");
        assert_eq!(refused.field, "env.LD_PRELOAD");
        assert!(SettingsRecord::default().check_trigger_env(&["PATH".to_owned()]).is_err());
    }
}
