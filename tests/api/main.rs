//! Integration tests: each starts the real `switchboard` binary on 127.0.0.1:0
//! with its own temporary data directory and talks to it over HTTP.

mod agents;
mod helpers;
mod openapi;
mod security;
mod startup;
mod storage;
mod tasks;
