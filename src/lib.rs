//! Switchboard runs many command-line agents side by side, each in its own
//! pseudo-terminal, and lets people and programs watch and steer them over HTTP.
//!
//! # Layout
//! - [`config`]: settings from flags, environment, the TOML file and defaults.
//! - [`startup`]: `Application`, which binds, serves and shuts down.
//! - [`http`]: the route table, one file per resource, the security guard.
//! - [`domain`]: tasks, agents, instances and their validation.
//! - [`db`]: the two SQLite databases, their migrations and queries.
//! - [`auth`]: the API token and instance tokens; [`sessions`]: browser sessions.
//! - [`webhooks`]: the dispatcher of outbound webhooks and the signatures.
//! - [`metrics`]: Prometheus metrics.
//! - [`error`]: the HTTP edge's error type.

pub mod actors;
pub mod auth;
pub mod config;
pub mod contain;
pub mod db;
pub mod detect;
pub mod domain;
pub mod error;
pub mod events;
pub mod files;
pub mod http;
pub mod login_link;
pub mod metrics;
pub mod procfs;
pub mod pty;
pub mod pty_stream;
pub mod screen;
pub mod sessions;
pub mod startup;
pub mod transcript;
pub mod webhooks;
