//! `sos`: the patient pressed the SOS button.

use super::Finding;
use crate::domain::policy::{RuleId, Severity};

/// The finding for an SOS press; the message, if any, is for the care team.
pub fn sos_finding(message: Option<&str>) -> Finding {
    let message = message.map(str::trim).filter(|m| !m.is_empty());
    Finding {
        rule: RuleId::Sos,
        severity: Severity::Critical,
        title: "SOS pressed".into(),
        explanation: match message {
            Some(_) => "The patient pressed SOS and left a message. Contact them now.".into(),
            None => "The patient pressed SOS. Contact them now.".into(),
        },
        evidence: serde_json::json!({"message": message}),
    }
}
