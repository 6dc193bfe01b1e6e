//! Mailwright's server: configuration, command line, HTTP API, web UI,
//! authentication, telemetry and startup. `server -> engine -> store,
//! providers -> domain`: handlers parse, call an engine service, render;
//! only authentication (`auth`) and startup (`app`, `cli`) use the store.

pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod demo;
pub mod demo_mailbox;
pub mod doctor;
pub mod http;
pub mod telemetry;
pub mod ui;

pub use app::Application;
pub use config::Config;
