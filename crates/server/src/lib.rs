//! The Wristband auth service: the box office that checks a password once and stamps tokens
//! that every API service verifies alone.
//!
//! - [`config`]: typed, layered settings.
//! - [`domain`]: login, refresh rotation with reuse detection and a grace window, logout,
//!   users and password hashing, key material. No HTTP, no SQL.
//! - [`store`]: the [`store::Store`] trait and its SQLite and PostgreSQL implementations.
//! - [`http`]: the axum router, the extractors (among them the verified caller, a
//!   [`domain::Principal`]) and the single error-to-response mapping.
//! - [`startup`]: opening the store, the keys and the secrets for the server and the CLI's
//!   admin commands, and [`startup::App`], which binds a listener and serves until told to
//!   stop.
//! - [`metrics`]: Prometheus counters and latency histograms.
//! - [`outbound`]: the HTTP client of outgoing calls (back-channel logout POSTs).
//!
//! Imports run one way: `startup` → `http` → `domain` → `store`; `config`, `metrics` and
//! `outbound` import nothing of the crate.
//!
//! ```no_run
//! use std::sync::Arc;
//! use wristband_server::{config::Config, startup::App};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = Config::default();
//! config.listen = "127.0.0.1:0".parse()?;
//! config.data_dir = "./wristband-data".into();
//! let app = App::build(config, Arc::new(wristband_jose::SystemClock)).await?;
//! println!("listening on {}", app.local_addr());
//! app.run(async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```

#![forbid(unsafe_code)]

pub mod config;
pub mod domain;
pub mod http;
pub mod metrics;
pub mod outbound;
pub mod startup;
pub mod store;
