//! What the patient sees at once: short supportive messages for what fired, and crisis
//! resources when it matters. This never waits for a counsellor.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Finding;
use crate::domain::policy::{RuleId, Severity};

/// A supportive message for the patient.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct SupportMessage {
    /// The rule the message answers.
    pub rule: RuleId,
    /// The message.
    pub message: String,
}

/// Somewhere to turn in a crisis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CrisisResource {
    /// Name, e.g. "988 Suicide & Crisis Lifeline".
    pub name: String,
    /// How to reach it, e.g. "Call or text 988".
    pub contact: String,
    /// What it is for.
    pub description: String,
}

fn message(f: &Finding) -> &'static str {
    match f.rule {
        RuleId::SelfHarm => "Thank you for telling us. You matter, and you don't have to carry this alone — please reach out to one of the crisis lines below right now. Your care team has been told.",
        RuleId::Sos => "Help is on the way: your care team has been alerted. If you are in danger, call 911 now.",
        RuleId::SubstanceUse if f.severity == Severity::Critical => "Your tolerance is lower than it was — the same amount can now cause an overdose. Please don't use alone, keep naloxone close, and start low. Your counsellor has been told; there is no shame in talking to them.",
        RuleId::SubstanceUse => "A lapse doesn't erase your progress. Please don't use alone and keep naloxone with you. Your counsellor has been told and will want to help, not judge.",
        RuleId::CravingHigh | RuleId::CravingRising => "Cravings rise and fall like waves. Try to wait 15 minutes, breathe slowly, call someone on your support list, or get moving — it will pass.",
        RuleId::WithdrawalSevere => "Withdrawal this strong is hard. Drink water, rest, and tell your care team — they can help with the symptoms.",
        RuleId::MoodLow => "Low days are part of recovery, but you don't have to sit with them alone. Reach out to someone you trust today.",
        RuleId::SleepPoor => "Poor sleep makes everything harder. Try a regular bedtime, no screens for the last hour, and tell your counsellor if it continues.",
        RuleId::MealsSkipped => "Your body needs fuel to heal. Even something small and simple counts — try to eat something soon.",
        RuleId::Halt => "Hungry, angry, lonely, tired: you're carrying a lot today. Pick one you can change now — eat something, call someone, or rest.",
        RuleId::ExerciseLapsed => "A short walk counts. Moving for even ten minutes can lift your mood and ease cravings.",
        RuleId::MedicationMissed => "Your medication protects you. If something is getting in the way of taking it, your counsellor can help sort it out.",
        RuleId::SupportDisengaged => "It's been a while since your last meeting. Connection is one of the strongest protections in recovery — is there a group you could join this week?",
        RuleId::MissedCheckIns => "We missed you. Checking in helps your team support you.",
    }
}

/// One message per rule that fired.
pub fn support_messages(findings: &[Finding]) -> Vec<SupportMessage> {
    let mut out: Vec<SupportMessage> = Vec::new();
    for f in findings {
        if out.iter().any(|m| m.rule == f.rule) {
            continue;
        }
        out.push(SupportMessage {
            rule: f.rule,
            message: message(f).to_owned(),
        });
    }
    out
}

/// Whether the crisis resources must be shown now: self-harm, SOS, or critical use.
pub fn needs_crisis_resources(findings: &[Finding]) -> bool {
    findings.iter().any(|f| {
        matches!(f.rule, RuleId::SelfHarm | RuleId::Sos)
            || (f.rule == RuleId::SubstanceUse && f.severity == Severity::Critical)
    })
}

/// The default crisis resources (United States).
pub fn default_crisis_resources() -> Vec<CrisisResource> {
    vec![
        CrisisResource {
            name: "988 Suicide & Crisis Lifeline".into(),
            contact: "Call or text 988".into(),
            description: "Free, confidential support 24/7 for anyone in emotional distress or a suicidal crisis.".into(),
        },
        CrisisResource {
            name: "Emergency services".into(),
            contact: "Call 911".into(),
            description: "If you or someone near you is in immediate danger or may be overdosing.".into(),
        },
        CrisisResource {
            name: "Naloxone and never use alone".into(),
            contact: "Never Use Alone hotline: 800-484-3731".into(),
            description: "Keep naloxone (Narcan) with you and never use alone: the hotline stays on the line and sends help if you stop responding.".into(),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::risk::sos_finding;

    #[test]
    fn crisis_resources_for_sos_self_harm_and_critical_use_only() {
        assert!(needs_crisis_resources(&[sos_finding(None)]));
        let mut f = sos_finding(None);
        f.rule = RuleId::SubstanceUse;
        assert!(needs_crisis_resources(&[f.clone()]));
        f.severity = Severity::High;
        assert!(!needs_crisis_resources(&[f.clone()]));
        assert_eq!(support_messages(&[f.clone(), f]).len(), 1);
        assert_eq!(default_crisis_resources()[0].contact, "Call or text 988");
    }
}
