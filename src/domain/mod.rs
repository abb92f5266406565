//! Domain types that cannot hold invalid values, and the risk engine: pure functions with no
//! I/O, so every rule can be tested at its thresholds without a database.

pub mod categories;
pub mod check_in;
pub mod crisis;
pub mod episode;
pub mod fhir;
pub mod part2;
pub mod policy;
pub mod risk;
pub mod validation;
