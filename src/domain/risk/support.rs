//! What the patient sees at once: short supportive messages for what fired, and crisis
//! resources when it matters. This never waits for a counsellor.

use serde::Serialize;
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

fn message(f: &Finding) -> &'static str {
    match f.rule {
        RuleId::SelfHarm => "Thank you for telling us. You matter, and you don't have to carry this alone — please reach out to one of the crisis lines below right now. Your care team has been told.",
        RuleId::Sos => "Your care team has been told. If you are in danger right now, call your local emergency number — it is listed below.",
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
        RuleId::Slide => "The last week seems to have been getting harder, a little each day. That is worth noticing early: tell your counsellor how things are going, and lean on the people and routines that help you.",
        RuleId::MissedCheckIns => "We missed you. Checking in helps your team support you.",
    }
}

/// Whether a rule's message still fits on a crisis screen. A nudge about meals, meetings,
/// exercise or sleep reads as if nobody listened when shown beside self-harm thoughts, an SOS
/// or a dangerous lapse; what speaks to the crisis itself (and to cravings, withdrawal and low
/// mood, which are part of it) stays.
fn fits_beside_crisis(rule: RuleId) -> bool {
    match rule {
        RuleId::SelfHarm
        | RuleId::Sos
        | RuleId::SubstanceUse
        | RuleId::CravingHigh
        | RuleId::CravingRising
        | RuleId::WithdrawalSevere
        | RuleId::MoodLow => true,
        RuleId::SleepPoor
        | RuleId::MealsSkipped
        | RuleId::Halt
        | RuleId::ExerciseLapsed
        | RuleId::MedicationMissed
        | RuleId::SupportDisengaged
        | RuleId::Slide
        | RuleId::MissedCheckIns => false,
    }
}

/// One message per rule that fired. In a crisis (see [`needs_crisis_resources`]) the crisis
/// messages come first and nudges that would read oddly beside them are left out.
pub fn support_messages(findings: &[Finding]) -> Vec<SupportMessage> {
    let crisis = needs_crisis_resources(findings);
    let mut ordered: Vec<&Finding> = findings
        .iter()
        .filter(|f| !crisis || fits_beside_crisis(f.rule))
        .collect();
    if crisis {
        // Stable: the crisis findings first, the rest in the engine's order.
        ordered.sort_by_key(|f| !is_crisis(f));
    }
    let mut out: Vec<SupportMessage> = Vec::new();
    for f in ordered {
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

fn is_crisis(f: &Finding) -> bool {
    matches!(f.rule, RuleId::SelfHarm | RuleId::Sos)
        || (f.rule == RuleId::SubstanceUse && f.severity == Severity::Critical)
}

/// Whether the crisis resources must be shown now: self-harm, SOS, or critical use.
pub fn needs_crisis_resources(findings: &[Finding]) -> bool {
    findings.iter().any(is_crisis)
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
    }

    fn finding(rule: RuleId, severity: Severity) -> Finding {
        Finding {
            rule,
            severity,
            title: String::new(),
            explanation: String::new(),
            evidence: serde_json::json!({}),
        }
    }

    fn rules(findings: &[Finding]) -> Vec<RuleId> {
        support_messages(findings)
            .into_iter()
            .map(|m| m.rule)
            .collect()
    }

    #[test]
    fn nudges_are_left_out_beside_a_crisis() {
        let nudges = [
            finding(RuleId::SupportDisengaged, Severity::Info),
            finding(RuleId::ExerciseLapsed, Severity::Info),
            finding(RuleId::MealsSkipped, Severity::Warning),
            finding(RuleId::CravingHigh, Severity::Warning),
        ];
        assert_eq!(
            rules(&nudges),
            vec![
                RuleId::SupportDisengaged,
                RuleId::ExerciseLapsed,
                RuleId::MealsSkipped,
                RuleId::CravingHigh
            ],
            "no crisis: every message"
        );
        for crisis in [
            finding(RuleId::SelfHarm, Severity::Critical),
            finding(RuleId::Sos, Severity::Critical),
            finding(RuleId::SubstanceUse, Severity::Critical),
        ] {
            let mut all = nudges.to_vec();
            all.push(crisis.clone());
            assert_eq!(
                rules(&all),
                vec![crisis.rule, RuleId::CravingHigh],
                "{:?}",
                crisis.rule
            );
        }
        // A lapse that is high, not critical, is not a crisis screen: the nudges stay.
        let mut all = nudges.to_vec();
        all.push(finding(RuleId::SubstanceUse, Severity::High));
        assert_eq!(rules(&all).len(), 5);
    }

    #[test]
    fn no_message_names_a_country_specific_number() {
        for rule in RuleId::ALL {
            for severity in [Severity::High, Severity::Critical] {
                let m = message(&finding(rule, severity));
                for number in ["911", "988", "999", "112", "000", "111"] {
                    assert!(!m.contains(number), "{rule:?}: {m}");
                }
            }
        }
    }
}
