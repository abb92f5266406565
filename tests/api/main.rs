//! The integration suite: one binary, the real server on port 0, a fresh database per test
//! (a temporary SQLite file, or a new PostgreSQL database when `TEST_DATABASE_URL` is set).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod abuse;
mod access_log;
mod auth;
mod core_loop;
mod crisis;
mod delivery;
mod demo;
mod disclosures;
mod email_change;
mod episodes;
mod erasure;
mod export;
mod foundation;
mod hardening;
mod helpers;
mod import;
mod input_hardening;
mod integrations;
mod lab;
mod mfa;
mod migrations;
mod patients;
mod processes;
mod receivers;
mod rules;
