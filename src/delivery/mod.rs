//! Delivering alerts beyond the inbox: the outbox worker, the live-stream hub, signed
//! webhooks and email. The worker owns scheduling and persistence; the other modules only
//! know how to sign, guard, send and back off.

pub mod backoff;
pub mod email;
pub mod hub;
pub mod signing;
pub mod ssrf;
pub mod webhook;
pub mod worker;

// The tests' real HTTP and SMTP receivers live under tests/ so the library ships without
// them; the unit tests here include them by path.
#[cfg(test)]
#[allow(dead_code)]
#[path = "../../tests/api/receivers/http.rs"]
mod testing_http;
#[cfg(test)]
#[allow(dead_code)]
#[path = "../../tests/api/receivers/smtp.rs"]
mod testing_smtp;
