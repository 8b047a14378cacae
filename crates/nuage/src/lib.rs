//! The `nuage` program: configuration, start-up, telemetry and the command
//! line. `main` only parses the command line and calls in here.

pub mod cli;
pub mod client;
pub mod config;
pub mod listener;
pub mod proxies;
pub mod server;
pub mod telemetry;
pub mod tender_cli;
pub mod tls;
