//! The policy lab: replaying a policy over recorded (or synthetic) history through the very
//! engine and episode code the live path runs, and a synthetic cohort to measure it on.
//! Pure: no database, no clock.

pub mod cohort;
pub mod figures;
pub mod replay;
