//! aftercare: the server behind a recovery-support service for people leaving opioid
//! addiction treatment.
//!
//! Layers, outermost first:
//! - [`http`]: handlers only — extract, authorise, call the domain or the store, shape the
//!   response. [`error`] is the one place statuses and problem+json bodies are decided.
//! - [`auth`]: passwords, tokens, the authenticated-caller extractor, access policies.
//! - [`service`]: one function per user action, run inside one database transaction.
//! - [`domain`]: types that cannot hold invalid values, and the risk engine (pure).
//! - [`store`]: diesel over SQLite or PostgreSQL; one module per aggregate.
//! - [`delivery`]: the outbox worker, live stream hub, webhooks and email.
//!
//! [`startup`] wires them together; [`cli`] is what the binary runs.

pub mod auth;
pub mod cli;
pub mod config;
pub mod delivery;
pub mod demo;
pub mod domain;
pub mod error;
pub mod http;
pub mod lab;
pub mod metrics;
pub mod openapi;
pub mod service;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
