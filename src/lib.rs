//! Switchboard runs many command-line agents side by side, each in its own
//! pseudo-terminal, and lets people and programs watch and steer them over HTTP.
//!
//! # Layout
//! The service:
//! - [`config`]: settings from flags, environment, the TOML file and defaults.
//! - [`startup`]: `Application`, which binds, serves and shuts down.
//! - [`http`]: the route table, one file per resource, the guard, idempotency,
//!   the failure limiter, request accounting, and how a path is routed ([`http::route`]).
//! - [`domain`]: tasks, agents, instances, messages, webhooks and their validation.
//! - [`db`]: the two SQLite databases, their migrations and queries.
//! - [`error`]: the HTTP edge's error type.
//!
//! Instances and their terminals:
//! - [`actors`]: the registry (limits, the FIFO queue) and one actor per instance.
//! - [`pty`]: spawning, signalling and sweeping processes; [`contain`]: the helper
//!   that holds each instance in a PID namespace of its own.
//! - [`pty_stream`]: reading a PTY as a stream; [`screen`]: the terminal model;
//!   [`transcript`]: transcripts within a size on disk.
//! - [`detect`] and [`procfs`]: knowing from the kernel when a program waits.
//!
//! Events and the outside world:
//! - [`events`]: the bus that wakes followers of the event log (`db::events`).
//! - [`webhooks`]: the dispatcher of outbound webhooks and the signatures.
//! - [`metrics`]: Prometheus metrics.
//!
//! Security:
//! - [`auth`]: the API token and instance tokens; [`sessions`]: browser sessions
//!   and one-time sign-in codes; [`login_link`]: `switchboard login-link`.
//! - [`files`]: private files and a data directory others cannot read.

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
