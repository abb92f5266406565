//! The data categories of SPEC §9: the unit of a patient's consent and of an integration's
//! scopes (`<category>.read`). What each category covers is decided here and nowhere else.

use std::collections::BTreeSet;

/// A category of a patient's data that may be disclosed to an integration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Category {
    /// Craving, mood, sleep, exercise, meals, anxiety, irritability, loneliness, triggers.
    Wellbeing,
    /// Whether substances were used, which, and days since last use.
    SubstanceUse,
    /// The SOWS items and the withdrawal score.
    Withdrawal,
    /// Medication for opioid use disorder taken as prescribed.
    Medication,
    /// Attendance at support groups or therapy.
    Support,
    /// Thoughts of self-harm and SOS presses.
    Safety,
    /// Alerts: id, rule, severity, status, date and timestamps (never explanations or notes).
    Alerts,
    /// The treatment phase and its history.
    Phase,
}

/// Every category, in the order SPEC §9 lists them.
pub const ALL: [Category; 8] = [
    Category::Wellbeing,
    Category::SubstanceUse,
    Category::Withdrawal,
    Category::Medication,
    Category::Support,
    Category::Safety,
    Category::Alerts,
    Category::Phase,
];

impl Category {
    /// The category's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Wellbeing => "wellbeing",
            Self::SubstanceUse => "substance_use",
            Self::Withdrawal => "withdrawal",
            Self::Medication => "medication",
            Self::Support => "support",
            Self::Safety => "safety",
            Self::Alerts => "alerts",
            Self::Phase => "phase",
        }
    }

    /// Parses a category name.
    pub fn parse(s: &str) -> Option<Self> {
        ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The OAuth scope that grants reading this category.
    pub fn scope(self) -> String {
        format!("{}.read", self.as_str())
    }

    /// Parses a scope (`<category>.read`).
    pub fn from_scope(scope: &str) -> Option<Self> {
        scope.strip_suffix(".read").and_then(Self::parse)
    }

    /// What the category covers, in words a patient signing a consent understands.
    pub fn description(self) -> &'static str {
        match self {
            Self::Wellbeing => {
                "Your daily wellbeing answers: craving, mood, sleep, exercise, meals, anxiety, \
                 irritability, loneliness and what triggered cravings."
            }
            Self::SubstanceUse => {
                "Whether you reported using, what you used, and how many days since you last used."
            }
            Self::Withdrawal => "Your withdrawal symptom answers (SOWS) and their total score.",
            Self::Medication => {
                "Whether you took your medication for opioid use disorder as prescribed."
            }
            Self::Support => "Whether you went to a support group, a meeting or a therapy session.",
            Self::Safety => "Whether you reported thoughts of harming yourself in your check-ins.",
            Self::Alerts => {
                "Alerts your care team received about you: which pattern, how serious, its \
                 status and dates. Never the explanation, the evidence or anyone's notes."
            }
            Self::Phase => "Your current treatment phase and the day it started.",
        }
    }

    /// The check-in fields (as named on the wire, SPEC §3) this category covers. The `note`,
    /// a counselling note, is in no category: it never leaves for an integration.
    pub fn check_in_fields(self) -> &'static [&'static str] {
        match self {
            Self::Wellbeing => &[
                "craving",
                "mood",
                "sleep_hours",
                "exercise_minutes",
                "meals",
                "anxiety",
                "irritability",
                "loneliness",
                "triggers",
            ],
            Self::SubstanceUse => &["used_substance", "substances", "days_since_last_use"],
            Self::Withdrawal => &["withdrawal", "withdrawal_score"],
            Self::Medication => &["took_medication"],
            Self::Support => &["attended_support"],
            Self::Safety => &["self_harm_thoughts"],
            Self::Alerts | Self::Phase => &[],
        }
    }
}

/// Parses a list of category names, naming the first unknown one.
pub fn parse_list<'a>(
    names: impl IntoIterator<Item = &'a str>,
) -> Result<BTreeSet<Category>, String> {
    names
        .into_iter()
        .map(|n| Category::parse(n).ok_or_else(|| n.to_owned()))
        .collect()
}

/// The categories of a space-separated scope string; an unknown scope is named.
pub fn parse_scopes(scopes: &str) -> Result<BTreeSet<Category>, String> {
    scopes
        .split_whitespace()
        .map(|s| Category::from_scope(s).ok_or_else(|| s.to_owned()))
        .collect()
}

/// The space-separated scope string of a set of categories.
pub fn scope_string(categories: &BTreeSet<Category>) -> String {
    categories
        .iter()
        .map(|c| c.scope())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Comma-separated names, as stored.
pub fn stored(categories: &BTreeSet<Category>) -> String {
    categories
        .iter()
        .map(|c| c.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Reads a stored comma-separated list; names no longer known are skipped (a stored consent
/// never widens by being read).
pub fn from_stored(stored: &str) -> BTreeSet<Category> {
    stored
        .split(',')
        .filter_map(|s| Category::parse(s.trim()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_scopes_round_trip() {
        for c in ALL {
            assert_eq!(Category::parse(c.as_str()), Some(c));
            assert_eq!(Category::from_scope(&c.scope()), Some(c));
        }
        assert_eq!(Category::from_scope("wellbeing.write"), None);
        assert_eq!(Category::from_scope("wellbeing"), None);
    }

    #[test]
    fn scope_strings_name_the_unknown_scope() {
        let got = parse_scopes("alerts.read  phase.read").unwrap();
        assert_eq!(got, BTreeSet::from([Category::Alerts, Category::Phase]));
        assert_eq!(scope_string(&got), "alerts.read phase.read");
        assert_eq!(
            parse_scopes("alerts.read notes.read"),
            Err("notes.read".into())
        );
    }

    #[test]
    fn stored_lists_skip_what_is_no_longer_known() {
        let set = BTreeSet::from([Category::Safety, Category::Wellbeing]);
        assert_eq!(stored(&set), "wellbeing,safety");
        assert_eq!(from_stored("wellbeing,safety,retired"), set);
        assert!(from_stored("").is_empty());
    }

    #[test]
    fn the_note_is_in_no_category_and_every_field_in_at_most_one() {
        let mut seen = BTreeSet::new();
        for c in ALL {
            for f in c.check_in_fields() {
                assert_ne!(*f, "note");
                assert!(seen.insert(*f), "{f} is in two categories");
            }
        }
    }
}
