//! Switchboard runs many command-line agents side by side, each in its own
//! pseudo-terminal, and lets people and programs watch and steer them over HTTP.
//!
//! # Layout
//! The service:
//! - [`config`]: settings from flags, environment, the TOML file and defaults.
//! - [`startup`]: `Application`, which binds, serves and shuts down.
//! - [`http`]: the route table and one file per resource; [`http::middleware`]
//!   (the guard, idempotency, request accounting, the failure limiter) and how a
//!   path is routed ([`http::route`]).
//! - [`domain`]: tasks, agents, instances, messages, webhooks, events and their
//!   validation.
//! - [`db`]: the two SQLite databases, their migrations and queries; [`db::run`]
//!   is how async code reaches them, [`db::signal`] says what was committed.
//! - [`error`]: the HTTP edge's error type, and every conversion into it.
//!
//! Instances and their terminals:
//! - [`actors`]: the registry (limits, the FIFO queue) and one actor per instance.
//! - [`terminal`]: spawning and signalling processes ([`terminal::pty`]), reading
//!   output, the terminal model ([`terminal::screen`]), transcripts, and knowing
//!   from the kernel when a program waits ([`terminal::waiting`]).
//! - [`contain`]: the helper each instance starts under: it joins the instance's cgroups,
//!   enters a PID namespace of its own and applies the sandbox.
//! - [`isolation`]: cgroups (containment, limits, usage) and the Landlock sandbox.
//! - [`workspace`]: a git worktree per instance, its changes, and removing it safely.
//! - [`words`]: finding the first byte of a kind eight bytes at a time (the output
//!   path's fast scans).
//!
//! Events and the outside world:
//! - [`events`]: following the event log ([`events::Follow`]) and the task relay.
//! - [`webhooks`]: the fan-out into the delivery queue, the dispatcher, the bodies
//!   and the signatures.
//! - [`metrics`]: Prometheus metrics.
//!
//! Security:
//! - [`auth`]: the API token and instance tokens; [`sessions`]: browser sessions
//!   and one-time sign-in codes; [`login_link`]: `switchboard login-link`.
//! - [`files`]: private files and a data directory others cannot read.

pub mod actors;
pub mod auth;
pub mod client;
pub mod config;
pub mod contain;
pub mod db;
pub mod domain;
pub mod error;
pub mod events;
pub mod files;
pub mod http;
pub mod integration;
pub mod isolation;
pub mod login_link;
pub mod metrics;
pub mod runner;
pub mod sessions;
pub mod startup;
pub mod terminal;
pub mod webhooks;
pub mod words;
pub mod workspace;
