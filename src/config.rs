//! Settings: defaults in code < TOML file < environment < command-line flags.
//!
//! The command line and the environment are read by clap (each flag names its
//! variable); the TOML file is read here and may only hold known keys, so a typo
//! in a key stops the start with a message instead of being ignored.

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde::Deserialize;

/// Where the config file is looked for when none is named.
pub const DEFAULT_CONFIG_PATH: &str = "config/default.toml";
/// The default listening address: loopback only.
pub const DEFAULT_BIND: &str = "127.0.0.1:7788";
/// Shortest token accepted from the operator.
pub const MIN_TOKEN_LEN: usize = 16;

/// The `switchboard` command line.
#[derive(Debug, Parser)]
#[command(name = "switchboard", version, about, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Flags for `serve`, also accepted without the subcommand.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the service (the default).
    Serve(ServeArgs),
    /// Print a fresh one-time sign-in link for the dashboard of the server running
    /// over this data directory (it works once, for 10 minutes).
    LoginLink(ServeArgs),
    /// The terminal client's commands (ls, attach, new, send, logs, stop, wait, completions).
    #[command(flatten)]
    Client(crate::client::ClientCommand),
}

impl Cli {
    /// The subcommand and its flags; `serve` when none was named.
    #[must_use]
    pub fn into_command(self) -> Command {
        self.command.unwrap_or(Command::Serve(self.serve))
    }
}

/// Flags of `switchboard serve`; each one may also come from its environment variable.
#[derive(Debug, Default, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port) [default: 127.0.0.1:7788]
    #[arg(long, env = "SWITCHBOARD_BIND", value_name = "ADDR")]
    pub bind: Option<String>,
    /// Directory for tasks.db, agents.db, transcripts and the token [default: ./data]
    #[arg(long, env = "SWITCHBOARD_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// TOML config file [default: config/default.toml if present]
    #[arg(long, env = "SWITCHBOARD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Global limit of running instances [default: 64]
    #[arg(long, env = "SWITCHBOARD_MAX_INSTANCES", value_name = "N")]
    pub max_instances: Option<usize>,
    /// API token (default: generated once into DATA_DIR/token)
    #[arg(long, env = "SWITCHBOARD_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Turn the token off (refused unless the bind address is loopback)
    #[arg(long, env = "SWITCHBOARD_NO_AUTH")]
    pub no_auth: bool,
    /// Extra accepted Host header value, e.g. `myhost:7788` (repeatable)
    #[arg(long = "allow-host", env = "SWITCHBOARD_ALLOWED_HOSTS", value_delimiter = ',', value_name = "HOST")]
    pub allowed_hosts: Vec<String>,
    /// Extra accepted Origin, e.g. `http://myhost:7788` (repeatable)
    #[arg(long = "allow-origin", env = "SWITCHBOARD_ALLOWED_ORIGINS", value_delimiter = ',', value_name = "ORIGIN")]
    pub allowed_origins: Vec<String>,
}

/// The config file's shape; every key is optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    bind: Option<String>,
    data_dir: Option<PathBuf>,
    max_concurrent_instances: Option<usize>,
    shutdown_grace_secs: Option<u64>,
    transcript_max_mb: Option<u64>,
    worktrees_dir: Option<PathBuf>,
    allowed_hosts: Option<Vec<String>>,
    allowed_origins: Option<Vec<String>>,
    #[serde(default)]
    auth: FileAuth,
    #[serde(default)]
    events: FileEvents,
    #[serde(default)]
    webhooks: FileWebhooks,
    #[serde(default)]
    limits: crate::domain::settings::Limits,
    #[serde(default)]
    isolation: FileIsolation,
    #[serde(default)]
    agents: FileAgents,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAgents {
    approval_hold: Option<String>,
    programs: Option<std::collections::BTreeMap<String, PathBuf>>,
}

/// How long a permission request is held for a decision before the agent's own
/// prompt decides.
pub const DEFAULT_APPROVAL_HOLD: &str = "10m";

/// Containment helpers kept ready ahead of need.
pub const DEFAULT_SPARE_HELPERS: usize = 2;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileIsolation {
    cgroups: Option<bool>,
    spare_helpers: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileWebhooks {
    retry_schedule: Option<Vec<String>>,
    timeout: Option<String>,
}

/// Most of one transcript kept on disk, in MiB (0: unlimited).
pub const DEFAULT_TRANSCRIPT_MAX_MB: u64 = 256;

/// Waits before each retry of a webhook delivery (docs/api.md).
pub const DEFAULT_RETRY_SCHEDULE: &[&str] = &["1s", "5s", "30s", "2m", "10m", "30m", "1h"];
/// How long a webhook receiver has to answer.
pub const DEFAULT_WEBHOOK_TIMEOUT: &str = "10s";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEvents {
    keep: Option<u64>,
    max_age_days: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAuth {
    token: Option<String>,
    no_auth: Option<bool>,
    max_failures_per_minute: Option<u32>,
}

/// The resolved settings the service runs with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to listen on.
    pub bind: SocketAddr,
    /// Directory holding the databases, transcripts and the token file.
    pub data_dir: PathBuf,
    /// Global limit of running instances.
    pub max_concurrent_instances: usize,
    /// Grace period between SIGTERM and SIGKILL when ending instances.
    pub shutdown_grace_secs: u64,
    /// Most bytes of one transcript kept on disk (`None`: unlimited).
    pub transcript_max: Option<u64>,
    /// Where instances' git worktrees are made (default `DATA_DIR/worktrees`).
    pub worktrees_dir: PathBuf,
    /// A token set by the operator (flag, env or file); `None` means generate or reuse one.
    pub token: Option<String>,
    /// Whether the token check is off.
    pub no_auth: bool,
    /// Failed authentication attempts per address and minute before 429 (0: no limit).
    pub auth_max_failures: u32,
    /// Extra accepted Host header values.
    pub allowed_hosts: Vec<String>,
    /// Extra accepted Origin header values.
    pub allowed_origins: Vec<String>,
    /// Events always kept, however old.
    pub events_keep: u64,
    /// Events always kept, however many.
    pub events_max_age: std::time::Duration,
    /// Waits before each retry of a webhook delivery.
    pub webhook_retry_schedule: Vec<Duration>,
    /// How long a webhook receiver has to answer.
    pub webhook_timeout: Duration,
    /// Limits for agents that set none (`[limits]`).
    pub limits: crate::domain::settings::Limits,
    /// Whether instances get cgroups where the server can make them (`[isolation]`).
    pub cgroups: bool,
    /// Containment helpers kept ready ahead of need (`[isolation] spare_helpers`).
    pub spare_helpers: usize,
    /// How long a permission request is held for a decision (`[agents] approval_hold`).
    pub approval_hold: Duration,
    /// Where presets' programs are, by preset name, when not on `PATH` (`[agents.programs]`).
    pub programs: std::collections::BTreeMap<String, PathBuf>,
}

/// Why the settings could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    /// The config file is not valid TOML or has unknown keys.
    #[error("invalid config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    /// A value is out of range or contradicts another.
    #[error("{0}")]
    Invalid(String),
}

impl Settings {
    /// Resolves the settings from flags/environment (`args`) and the config file.
    ///
    /// # Errors
    /// A named config file that is missing, a malformed file, an unknown key, an
    /// unparsable bind address, a too-short token, or an unsafe combination
    /// (`--no-auth` or no explicit token on a non-loopback address).
    pub fn load(args: ServeArgs) -> Result<Self, ConfigError> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None if Path::new(DEFAULT_CONFIG_PATH).is_file() => read_file(Path::new(DEFAULT_CONFIG_PATH))?,
            None => FileSettings::default(),
        };
        let bind_text = args.bind.or(file.bind).unwrap_or_else(|| DEFAULT_BIND.to_owned());
        let data_dir = args.data_dir.or(file.data_dir).unwrap_or_else(|| PathBuf::from("./data"));
        let settings = Settings {
            bind: parse_bind(&bind_text)?,
            worktrees_dir: file.worktrees_dir.unwrap_or_else(|| data_dir.join("worktrees")),
            data_dir,
            max_concurrent_instances: args.max_instances.or(file.max_concurrent_instances).unwrap_or(64),
            shutdown_grace_secs: file.shutdown_grace_secs.unwrap_or(5),
            transcript_max: match file.transcript_max_mb.unwrap_or(DEFAULT_TRANSCRIPT_MAX_MB) {
                0 => None,
                mb => Some(mb.saturating_mul(1024 * 1024)),
            },
            token: args.token.or(file.auth.token),
            no_auth: args.no_auth || file.auth.no_auth.unwrap_or(false),
            auth_max_failures: file.auth.max_failures_per_minute.unwrap_or(10),
            allowed_hosts: pick(args.allowed_hosts, file.allowed_hosts),
            allowed_origins: pick(args.allowed_origins, file.allowed_origins),
            events_keep: file.events.keep.unwrap_or(100_000),
            events_max_age: std::time::Duration::from_secs(86_400 * file.events.max_age_days.unwrap_or(7)),
            webhook_retry_schedule: match file.webhooks.retry_schedule {
                Some(list) => list.iter().map(|t| duration("webhooks.retry_schedule", t)).collect::<Result<_, _>>()?,
                None => DEFAULT_RETRY_SCHEDULE
                    .iter()
                    .map(|t| duration("webhooks.retry_schedule", t))
                    .collect::<Result<_, _>>()?,
            },
            webhook_timeout: duration(
                "webhooks.timeout",
                file.webhooks.timeout.as_deref().unwrap_or(DEFAULT_WEBHOOK_TIMEOUT),
            )?,
            limits: file.limits,
            cgroups: file.isolation.cgroups.unwrap_or(true),
            spare_helpers: file.isolation.spare_helpers.unwrap_or(DEFAULT_SPARE_HELPERS),
            approval_hold: duration(
                "agents.approval_hold",
                file.agents.approval_hold.as_deref().unwrap_or(DEFAULT_APPROVAL_HOLD),
            )?,
            programs: file.agents.programs.unwrap_or_default(),
        };
        settings.check()?;
        Ok(settings)
    }

    fn check(&self) -> Result<(), ConfigError> {
        self.limits.validate("limits").map_err(|e| ConfigError::Invalid(format!("{}: {}", e.field, e.message)))?;
        if self.max_concurrent_instances == 0 {
            return Err(ConfigError::Invalid("max_concurrent_instances must be at least 1".into()));
        }
        if self.webhook_retry_schedule.len() > 50
            || self.webhook_retry_schedule.iter().any(|d| *d > Duration::from_secs(30 * 86_400))
        {
            return Err(ConfigError::Invalid(
                "webhooks.retry_schedule must have at most 50 waits of at most 30 days each".into(),
            ));
        }
        if !(Duration::from_millis(100)..=Duration::from_secs(300)).contains(&self.webhook_timeout) {
            return Err(ConfigError::Invalid("webhooks.timeout must be from 100ms to 5m".into()));
        }
        if self.transcript_max.is_some_and(|max| max > 1 << 50) {
            return Err(ConfigError::Invalid("transcript_max_mb must be at most 1073741824 (1 PiB)".into()));
        }
        if self.spare_helpers > 16 {
            return Err(ConfigError::Invalid("isolation.spare_helpers must be at most 16".into()));
        }
        if !(Duration::from_secs(1)..=Duration::from_secs(86_400)).contains(&self.approval_hold) {
            return Err(ConfigError::Invalid("agents.approval_hold must be from 1s to 24h".into()));
        }
        if let Some(name) = self.programs.keys().find(|n| !crate::integration::is_preset(n)) {
            return Err(ConfigError::Invalid(format!(
                "agents.programs: {name:?} is not a preset (claude-code, codex, gemini, aider, shell)"
            )));
        }
        if self.shutdown_grace_secs > 300 {
            return Err(ConfigError::Invalid("shutdown_grace_secs must be at most 300".into()));
        }
        if let Some(token) = &self.token {
            if token.chars().count() < MIN_TOKEN_LEN || token.chars().any(char::is_whitespace) {
                return Err(ConfigError::Invalid(format!(
                    "the token must be at least {MIN_TOKEN_LEN} characters without spaces"
                )));
            }
        }
        let loopback = self.bind.ip().is_loopback();
        if self.no_auth && !loopback {
            return Err(ConfigError::Invalid(format!(
                "refusing --no-auth on {}: turning the token off is only allowed on a loopback address",
                self.bind
            )));
        }
        if !loopback && !self.no_auth && self.token.is_none() {
            return Err(ConfigError::Invalid(format!(
                "refusing to listen on {} without a token: anyone who reaches it could run commands \
                 on this machine; set --token, SWITCHBOARD_TOKEN or auth.token, or bind to 127.0.0.1",
                self.bind
            )));
        }
        Ok(())
    }
}

/// A human duration such as `500ms`, `30s`, `2m` or `1h`.
fn duration(key: &str, text: &str) -> Result<Duration, ConfigError> {
    humantime::parse_duration(text)
        .map_err(|e| ConfigError::Invalid(format!("{key}: {text:?} is not a duration like \"30s\" or \"2m\": {e}")))
}

fn pick(from_args: Vec<String>, from_file: Option<Vec<String>>) -> Vec<String> {
    if from_args.is_empty() {
        from_file.unwrap_or_default()
    } else {
        from_args
    }
}

fn read_file(path: &Path) -> Result<FileSettings, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
    parse_file(&text).map_err(|message| ConfigError::Parse { path: path.to_owned(), message })
}

fn parse_file(text: &str) -> Result<FileSettings, String> {
    toml::from_str(text).map_err(|e| e.to_string())
}

/// Parses `IP:PORT` or `NAME:PORT` (resolved, first address wins).
///
/// # Errors
/// A value without a port or a name that does not resolve.
pub fn parse_bind(text: &str) -> Result<SocketAddr, ConfigError> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let invalid =
        || ConfigError::Invalid(format!("invalid bind address {text:?}: expected IP:PORT, e.g. {DEFAULT_BIND}"));
    if !text.contains(':') {
        return Err(invalid());
    }
    text.to_socket_addrs().map_err(|_| invalid())?.next().ok_or_else(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_config_file_matches_the_defaults_in_code() {
        let text = include_str!("../config/default.toml");
        let file = parse_file(text).expect("config/default.toml parses");
        assert_eq!(file.bind.as_deref(), Some(DEFAULT_BIND));
        assert_eq!(file.data_dir, Some(PathBuf::from("./data")));
        assert_eq!(file.max_concurrent_instances, Some(64));
        assert_eq!(file.shutdown_grace_secs, Some(5));
        assert_eq!(file.transcript_max_mb, Some(DEFAULT_TRANSCRIPT_MAX_MB));
        assert_eq!(file.auth.token, None);
        assert_eq!(file.auth.no_auth, Some(false));
        assert_eq!(file.auth.max_failures_per_minute, Some(10));
        assert_eq!((file.events.keep, file.events.max_age_days), (Some(100_000), Some(7)));
        let schedule: Vec<&str> = DEFAULT_RETRY_SCHEDULE.to_vec();
        assert_eq!(
            file.webhooks.retry_schedule.as_deref().map(|s| s.iter().map(String::as_str).collect()),
            Some(schedule)
        );
        assert_eq!(file.webhooks.timeout.as_deref(), Some(DEFAULT_WEBHOOK_TIMEOUT));
        assert_eq!((file.isolation.cgroups, file.isolation.spare_helpers), (Some(true), Some(DEFAULT_SPARE_HELPERS)));
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = parse_file("bnd = \"127.0.0.1:1\"").expect_err("refused");
        assert!(err.contains("bnd"), "{err}");
    }

    #[test]
    fn the_transcript_limit_is_in_mebibytes_and_zero_turns_it_off() {
        let dir = tempfile::tempdir().expect("tempdir");
        let load = |text: &str| {
            let path = dir.path().join("c.toml");
            std::fs::write(&path, text).expect("write");
            Settings::load(ServeArgs { config: Some(path), ..ServeArgs::default() })
        };
        assert_eq!(load("").expect("loads").transcript_max, Some(256 << 20));
        assert_eq!(load("transcript_max_mb = 3").expect("loads").transcript_max, Some(3 << 20));
        assert_eq!(load("transcript_max_mb = 0").expect("loads").transcript_max, None);
        let err = load("transcript_max_mb = 18446744073709551615").expect_err("refused");
        assert!(err.to_string().contains("transcript_max_mb"), "{err}");
        assert_eq!(load("[isolation]\nspare_helpers = 0").expect("loads").spare_helpers, 0);
        let err = load("[isolation]\nspare_helpers = 17").expect_err("refused");
        assert!(err.to_string().contains("isolation.spare_helpers must be at most 16"), "{err}");
    }

    #[test]
    fn flags_win_over_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "bind = \"127.0.0.1:1\"\nmax_concurrent_instances = 3\n").expect("write");
        let args = ServeArgs { config: Some(path), bind: Some("127.0.0.1:2".into()), ..ServeArgs::default() };
        let settings = Settings::load(args).expect("loads");
        assert_eq!(settings.bind.port(), 2);
        assert_eq!(settings.max_concurrent_instances, 3);
    }

    #[test]
    fn non_loopback_needs_an_explicit_token_and_never_no_auth() {
        let open =
            ServeArgs { bind: Some("0.0.0.0:0".into()), config: Some("/dev/null".into()), ..ServeArgs::default() };
        assert!(Settings::load(open.clone()).is_err());
        let no_auth = ServeArgs { no_auth: true, ..open.clone() };
        assert!(Settings::load(no_auth).is_err());
        let with_token = ServeArgs { token: Some("a-long-enough-token".into()), ..open };
        assert!(Settings::load(with_token).is_ok());
    }

    #[test]
    fn webhook_durations_parse_or_explain() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, "[webhooks]\nretry_schedule = [\"200ms\", \"2m\"]\ntimeout = \"3s\"\n").expect("write");
        let settings = Settings::load(ServeArgs { config: Some(path.clone()), ..ServeArgs::default() }).expect("loads");
        assert_eq!(settings.webhook_retry_schedule, [Duration::from_millis(200), Duration::from_secs(120)]);
        assert_eq!(settings.webhook_timeout, Duration::from_secs(3));
        std::fs::write(&path, "[webhooks]\nretry_schedule = [\"soon\"]\n").expect("write");
        let err = Settings::load(ServeArgs { config: Some(path), ..ServeArgs::default() }).expect_err("refused");
        assert!(err.to_string().contains("webhooks.retry_schedule"), "{err}");
    }

    proptest::proptest! {
        #[test]
        fn any_config_text_is_parsed_or_explained(text in "\\PC{0,200}") {
            let _ = parse_file(&text);
        }

        #[test]
        fn retry_waits_parse_in_every_unit(n in 0u64..100_000, unit in 0usize..4) {
            let (suffix, ms) = [("ms", 1), ("s", 1_000), ("m", 60_000), ("h", 3_600_000)][unit];
            let parsed = duration("webhooks.retry_schedule", &format!("{n}{suffix}"));
            proptest::prop_assert_eq!(parsed.ok(), Some(Duration::from_millis(n * ms)));
        }
    }

    #[test]
    fn bind_addresses_parse_or_explain() {
        assert_eq!(parse_bind("[::1]:80").expect("v6").port(), 80);
        assert!(parse_bind("localhost:9").expect("name").ip().is_loopback());
        assert!(parse_bind("7788").is_err());
    }
}
