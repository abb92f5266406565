//! Who the caller is and what they may reach: passwords, tokens, the authenticated-caller
//! extractor, and the object-level access policy.

pub mod caller;
pub mod integration;
pub mod keyfile;
pub mod password;
pub mod policy;
pub mod tokens;
pub mod totp;

pub use caller::{Caller, Role};
pub use integration::IntegrationCaller;
