//! Mailwright's server: configuration, command line, HTTP API, telemetry and
//! startup. `server -> engine -> store, providers -> domain`.

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod demo;
pub mod http;
pub mod telemetry;
pub mod ui;

pub use app::Application;
pub use config::Config;
