//! Building blocks for delivering alerts outside the API: signed webhooks and email.
//!
//! The background worker owns scheduling and persistence; these modules only know how to sign,
//! guard, send and back off.

pub mod backoff;
pub mod email;
pub mod signing;
pub mod ssrf;
pub mod testing_http;
pub mod testing_smtp;
pub mod webhook;
