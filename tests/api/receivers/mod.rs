//! Real receivers for what the server sends out: an HTTP listener for webhooks and an SMTP
//! listener for email, both on loopback TCP ports. They live with the tests so the shipped
//! library carries no test code; the library's own unit tests include them by path.

#![allow(dead_code)]

pub mod http;
pub mod smtp;
