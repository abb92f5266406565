//! Delivering alerts beyond the inbox: the outbox worker, the live-stream hub, signed
//! webhooks and email. The worker owns scheduling and persistence; the other modules only
//! know how to sign, guard, send and back off.

pub mod backoff;
pub mod email;
pub mod hub;
pub mod signing;
pub mod ssrf;
pub mod testing_http;
pub mod testing_smtp;
pub mod webhook;
pub mod worker;
