//! Application services: one function per user action. Each runs inside one database
//! transaction, so an action and its audit record commit together or not at all.

pub mod access_log;
pub mod accounts;
pub mod admin;
pub mod alerts;
pub mod audit;
pub mod check_ins;
pub mod consents;
pub mod disclosures;
pub mod erasure;
pub mod export;
pub mod idempotency;
pub mod import;
pub mod integration_reads;
pub mod integration_webhooks;
pub mod integrations;
pub mod lab;
pub mod mfa;
pub mod oauth;
pub mod patients;
pub mod sign_in_throttle;
pub mod sweep;
