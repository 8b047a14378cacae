//! The `nuage` program: configuration, start-up, telemetry and the command
//! line. `main` only parses the command line and calls in here.

pub mod cli;
pub mod config;
pub mod hooks;
pub mod jobs;
pub mod listener;
pub mod proxies;
pub mod server;
pub mod telemetry;
pub mod tls;
