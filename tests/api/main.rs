//! Integration tests: each starts the real `switchboard` binary on 127.0.0.1:0
//! with its own temporary data directory and talks to it over HTTP.

#![allow(clippy::needless_pass_by_value, reason = "test helpers take json! literals by value, which reads best")]

mod agents;
mod bounded;
mod client;
mod containers;
mod crash;
mod dashboard;
mod detection;
mod engine;
mod events;
mod helpers;
mod hooks;
mod instances;
mod isolation;
mod messages;
mod model;
mod openapi;
mod probes;
mod processes;
mod real_agents;
mod receiver;
mod replies;
mod security;
mod soak;
mod sse_client;
mod startup;
mod storage;
mod streams;
mod tasks;
mod webhooks;
mod workspaces;
