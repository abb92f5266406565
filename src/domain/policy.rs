//! Risk policy: every rule by id with `enabled` and its parameters, plus escalation timers.
//! The organisation policy is complete; a patient's overrides have the same shape with any
//! subset of fields and are merged over it.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::validation::FieldError;

/// How urgent an alert is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Worth a look soon.
    Warning,
    /// Needs attention today.
    High,
    /// Needs attention now.
    Critical,
}

impl Severity {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "info" => Some(Self::Info),
            "warning" => Some(Self::Warning),
            "high" => Some(Self::High),
            "critical" => Some(Self::Critical),
            _ => None,
        }
    }
}

/// A treatment phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Medically managed withdrawal.
    Detox,
    /// Residential or outpatient therapy.
    Treatment,
    /// Sober living, outpatient counselling, support groups.
    Aftercare,
    /// Discharged from the programme.
    Discharged,
}

impl Phase {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Detox => "detox",
            Self::Treatment => "treatment",
            Self::Aftercare => "aftercare",
            Self::Discharged => "discharged",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "detox" => Some(Self::Detox),
            "treatment" => Some(Self::Treatment),
            "aftercare" => Some(Self::Aftercare),
            "discharged" => Some(Self::Discharged),
            _ => None,
        }
    }
}

/// The id of a risk rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuleId {
    /// Thoughts of self-harm reported.
    SelfHarm,
    /// The SOS button.
    Sos,
    /// Any use reported.
    SubstanceUse,
    /// Craving at or above the threshold.
    CravingHigh,
    /// Craving well above the patient's recent baseline.
    CravingRising,
    /// Severe withdrawal (SOWS).
    WithdrawalSevere,
    /// Low mood on consecutive days.
    MoodLow,
    /// Short sleep on consecutive days.
    SleepPoor,
    /// Skipped meals on consecutive days.
    MealsSkipped,
    /// Hungry, angry, lonely, tired at once.
    Halt,
    /// Stopped exercising.
    ExerciseLapsed,
    /// Medication for opioid use disorder missed on consecutive days.
    MedicationMissed,
    /// No support meetings for a while in aftercare.
    SupportDisengaged,
    /// A slow slide over a week: craving trending up, mood or sleep trending down.
    Slide,
    /// No check-ins for days.
    MissedCheckIns,
}

impl RuleId {
    /// Every rule.
    pub const ALL: [RuleId; 15] = [
        Self::SelfHarm,
        Self::Sos,
        Self::SubstanceUse,
        Self::CravingHigh,
        Self::CravingRising,
        Self::WithdrawalSevere,
        Self::MoodLow,
        Self::SleepPoor,
        Self::MealsSkipped,
        Self::Halt,
        Self::ExerciseLapsed,
        Self::MedicationMissed,
        Self::SupportDisengaged,
        Self::Slide,
        Self::MissedCheckIns,
    ];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SelfHarm => "self_harm",
            Self::Sos => "sos",
            Self::SubstanceUse => "substance_use",
            Self::CravingHigh => "craving_high",
            Self::CravingRising => "craving_rising",
            Self::WithdrawalSevere => "withdrawal_severe",
            Self::MoodLow => "mood_low",
            Self::SleepPoor => "sleep_poor",
            Self::MealsSkipped => "meals_skipped",
            Self::Halt => "halt",
            Self::ExerciseLapsed => "exercise_lapsed",
            Self::MedicationMissed => "medication_missed",
            Self::SupportDisengaged => "support_disengaged",
            Self::Slide => "slide",
            Self::MissedCheckIns => "missed_check_ins",
        }
    }

    /// Parses the wire name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// Declares a rule's settings struct and its all-optional override twin, with merge.
macro_rules! rule_settings {
    ($(#[$doc:meta])* $name:ident / $over:ident { $($(#[$fdoc:meta])* $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// Whether the rule runs.
            pub enabled: bool,
            $($(#[$fdoc])* pub $field: $ty,)*
        }

        #[doc = concat!("Overrides for [`", stringify!($name), "`]; omitted fields keep the organisation's value.")]
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $over {
            /// Whether the rule runs.
            #[serde(skip_serializing_if = "Option::is_none")]
            pub enabled: Option<bool>,
            $($(#[$fdoc])* #[serde(skip_serializing_if = "Option::is_none")] pub $field: Option<$ty>,)*
        }

        impl $name {
            fn merged(&self, o: &$over) -> Self {
                Self {
                    enabled: o.enabled.unwrap_or(self.enabled),
                    $($field: o.$field.clone().unwrap_or_else(|| self.$field.clone()),)*
                }
            }
        }
    };
}

rule_settings!(
    /// `self_harm` and `sos`: no parameters, and they cannot be disabled.
    Toggle / ToggleOverride {}
);
rule_settings!(
    /// `substance_use`.
    SubstanceUse / SubstanceUseOverride {
        /// Abstinent days before a use after which it is critical (lost tolerance).
        #[schema(minimum = 1, maximum = 365)]
        tolerance_loss_days: u32,
        /// Days after leaving detox during which a use is critical.
        #[schema(minimum = 0, maximum = 365)]
        post_detox_days: u32,
    }
);
rule_settings!(
    /// `craving_high`.
    CravingHigh / CravingHighOverride {
        /// Craving at or above this fires (0–10).
        #[schema(minimum = 1, maximum = 10)]
        threshold: u32,
        /// Consecutive days at or above the threshold that make it high.
        #[schema(minimum = 1, maximum = 14)]
        consecutive_days_for_high: u32,
    }
);
rule_settings!(
    /// `craving_rising`.
    CravingRising / CravingRisingOverride {
        /// Points above the baseline mean that fire.
        #[schema(minimum = 1, maximum = 10)]
        rise: u32,
        /// How many previous check-ins form the baseline.
        #[schema(minimum = 1, maximum = 14)]
        baseline_check_ins: u32,
        /// How far back (days) those check-ins may be.
        #[schema(minimum = 1, maximum = 30)]
        window_days: u32,
    }
);
rule_settings!(
    /// `withdrawal_severe`.
    WithdrawalSevere / WithdrawalSevereOverride {
        /// SOWS total at or above this fires (0–64).
        #[schema(minimum = 1, maximum = 64)]
        threshold: u32,
    }
);
rule_settings!(
    /// `mood_low` and `meals_skipped`: a value at most this on consecutive days.
    AtMostRun / AtMostRunOverride {
        /// The value at or below which a day counts.
        #[schema(minimum = 0, maximum = 9)]
        at_most: u32,
        /// Consecutive days needed.
        #[schema(minimum = 1, maximum = 30)]
        consecutive_days: u32,
    }
);
rule_settings!(
    /// `sleep_poor`.
    SleepPoor / SleepPoorOverride {
        /// Sleep below this many hours counts.
        #[schema(minimum = 0, maximum = 24)]
        below_hours: f64,
        /// Consecutive days needed.
        #[schema(minimum = 1, maximum = 30)]
        consecutive_days: u32,
    }
);
rule_settings!(
    /// `halt`: hungry, angry, lonely, tired.
    Halt / HaltOverride {
        /// How many of the four signals fire.
        #[schema(minimum = 1, maximum = 4)]
        signals: u32,
        /// Meals at or below this is hungry.
        #[schema(minimum = 0, maximum = 9)]
        hungry_meals_at_most: u32,
        /// Irritability at or above this is angry.
        #[schema(minimum = 1, maximum = 10)]
        angry_irritability_at_least: u32,
        /// Loneliness at or above this is lonely.
        #[schema(minimum = 1, maximum = 10)]
        lonely_loneliness_at_least: u32,
        /// Sleep below this is tired.
        #[schema(minimum = 0, maximum = 24)]
        tired_sleep_below_hours: f64,
    }
);
rule_settings!(
    /// `exercise_lapsed`.
    ExerciseLapsed / ExerciseLapsedOverride {
        /// Consecutive days with no exercise.
        #[schema(minimum = 1, maximum = 30)]
        consecutive_days: u32,
        /// How far back (days) earlier exercise counts.
        #[schema(minimum = 2, maximum = 60)]
        lookback_days: u32,
    }
);
rule_settings!(
    /// `medication_missed`.
    MedicationMissed / MedicationMissedOverride {
        /// Consecutive days medication was not taken.
        #[schema(minimum = 1, maximum = 30)]
        consecutive_days: u32,
    }
);
rule_settings!(
    /// `support_disengaged`.
    SupportDisengaged / SupportDisengagedOverride {
        /// The window in days.
        #[schema(minimum = 1, maximum = 60)]
        days: u32,
        /// Check-ins needed in the window for the silence to mean something.
        #[schema(minimum = 1, maximum = 60)]
        min_check_ins: u32,
    }
);
rule_settings!(
    /// `slide`: least-squares trends over the last check-ins, the slow slide no single day shows.
    Slide / SlideOverride {
        /// How many of the latest check-ins (today's included) the trend is fitted to.
        #[schema(minimum = 3, maximum = 30)]
        window_check_ins: u32,
        /// Those check-ins must all fall within this many local days ending today.
        #[schema(minimum = 3, maximum = 30)]
        window_days: u32,
        /// Craving rising by at least this many points across the window fires.
        #[schema(minimum = 1, maximum = 10)]
        craving_rise: u32,
        /// Mood falling by at least this many points across the window fires.
        #[schema(minimum = 1, maximum = 10)]
        mood_fall: u32,
        /// Sleep falling by at least this many hours across the window fires (read only when at
        /// least 5 of the window's check-ins, or all of a smaller window, give sleep_hours).
        #[schema(minimum = 0.5, maximum = 12)]
        sleep_fall_hours: f64,
    }
);
rule_settings!(
    /// `missed_check_ins`.
    MissedCheckIns / MissedCheckInsOverride {
        /// Missed local days for a warning.
        #[schema(minimum = 1, maximum = 30)]
        warning_after_days: u32,
        /// Missed local days for high.
        #[schema(minimum = 1, maximum = 60)]
        high_after_days: u32,
    }
);

/// Every rule's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// Thoughts of self-harm (critical; cannot be disabled).
    pub self_harm: Toggle,
    /// SOS (critical; cannot be disabled).
    pub sos: Toggle,
    /// Any use.
    pub substance_use: SubstanceUse,
    /// High craving.
    pub craving_high: CravingHigh,
    /// Rising craving.
    pub craving_rising: CravingRising,
    /// Severe withdrawal.
    pub withdrawal_severe: WithdrawalSevere,
    /// Low mood.
    pub mood_low: AtMostRun,
    /// Poor sleep.
    pub sleep_poor: SleepPoor,
    /// Skipped meals.
    pub meals_skipped: AtMostRun,
    /// HALT.
    pub halt: Halt,
    /// Exercise lapsed.
    pub exercise_lapsed: ExerciseLapsed,
    /// Medication missed.
    pub medication_missed: MedicationMissed,
    /// Support disengaged.
    pub support_disengaged: SupportDisengaged,
    /// The slow slide. A policy stored before this rule existed reads with its defaults.
    #[serde(default = "Slide::default_settings")]
    pub slide: Slide,
    /// Missed check-ins.
    pub missed_check_ins: MissedCheckIns,
}

/// Overrides of some rules' settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RulesOverride {
    /// Thoughts of self-harm.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub self_harm: Option<ToggleOverride>,
    /// SOS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sos: Option<ToggleOverride>,
    /// Any use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub substance_use: Option<SubstanceUseOverride>,
    /// High craving.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub craving_high: Option<CravingHighOverride>,
    /// Rising craving.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub craving_rising: Option<CravingRisingOverride>,
    /// Severe withdrawal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub withdrawal_severe: Option<WithdrawalSevereOverride>,
    /// Low mood.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mood_low: Option<AtMostRunOverride>,
    /// Poor sleep.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sleep_poor: Option<SleepPoorOverride>,
    /// Skipped meals.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meals_skipped: Option<AtMostRunOverride>,
    /// HALT.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub halt: Option<HaltOverride>,
    /// Exercise lapsed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exercise_lapsed: Option<ExerciseLapsedOverride>,
    /// Medication missed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub medication_missed: Option<MedicationMissedOverride>,
    /// Support disengaged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub support_disengaged: Option<SupportDisengagedOverride>,
    /// The slow slide.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slide: Option<SlideOverride>,
    /// Missed check-ins.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missed_check_ins: Option<MissedCheckInsOverride>,
}

/// A complete risk policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RiskPolicy {
    /// Every rule by id.
    pub rules: Rules,
    /// Minutes an open critical alert may wait for acknowledgement before it escalates.
    #[schema(minimum = 1, maximum = 10080)]
    pub escalate_critical_after_minutes: u32,
    /// Minutes an open high alert may wait for acknowledgement before it escalates.
    #[schema(minimum = 1, maximum = 10080)]
    pub escalate_high_after_minutes: u32,
}

/// A patient's overrides: any subset of a policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PolicyOverrides {
    /// Rule overrides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules: Option<RulesOverride>,
    /// Override of the critical escalation timer.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 10080)]
    pub escalate_critical_after_minutes: Option<u32>,
    /// Override of the high escalation timer.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 10080)]
    pub escalate_high_after_minutes: Option<u32>,
}

impl Default for RiskPolicy {
    fn default() -> Self {
        let on = Toggle { enabled: true };
        Self {
            rules: Rules {
                self_harm: on.clone(),
                sos: on,
                substance_use: SubstanceUse {
                    enabled: true,
                    tolerance_loss_days: 7,
                    post_detox_days: 30,
                },
                craving_high: CravingHigh {
                    enabled: true,
                    threshold: 8,
                    consecutive_days_for_high: 2,
                },
                craving_rising: CravingRising {
                    enabled: true,
                    rise: 3,
                    baseline_check_ins: 3,
                    window_days: 7,
                },
                withdrawal_severe: WithdrawalSevere {
                    enabled: true,
                    threshold: 21,
                },
                mood_low: AtMostRun {
                    enabled: true,
                    at_most: 2,
                    consecutive_days: 3,
                },
                sleep_poor: SleepPoor {
                    enabled: true,
                    below_hours: 5.0,
                    consecutive_days: 3,
                },
                meals_skipped: AtMostRun {
                    enabled: true,
                    at_most: 1,
                    consecutive_days: 2,
                },
                halt: Halt {
                    enabled: true,
                    signals: 3,
                    hungry_meals_at_most: 1,
                    angry_irritability_at_least: 7,
                    lonely_loneliness_at_least: 7,
                    tired_sleep_below_hours: 5.0,
                },
                exercise_lapsed: ExerciseLapsed {
                    enabled: true,
                    consecutive_days: 7,
                    lookback_days: 14,
                },
                medication_missed: MedicationMissed {
                    enabled: true,
                    consecutive_days: 2,
                },
                support_disengaged: SupportDisengaged {
                    enabled: true,
                    days: 14,
                    min_check_ins: 7,
                },
                slide: Slide::default_settings(),
                missed_check_ins: MissedCheckIns {
                    enabled: true,
                    warning_after_days: 2,
                    high_after_days: 4,
                },
            },
            escalate_critical_after_minutes: 15,
            escalate_high_after_minutes: 240,
        }
    }
}

impl Slide {
    /// The organisation default (SPEC §4).
    pub fn default_settings() -> Self {
        Self {
            enabled: true,
            window_check_ins: 7,
            window_days: 10,
            craving_rise: 3,
            mood_fall: 3,
            sleep_fall_hours: 2.0,
        }
    }
}

struct Check {
    errors: Vec<FieldError>,
}

impl Check {
    fn int(&mut self, field: &str, v: u32, min: u32, max: u32) {
        if v < min || v > max {
            self.errors.push(FieldError::new(
                field,
                format!("must be from {min} to {max}"),
            ));
        }
    }

    fn hours(&mut self, field: &str, v: f64) {
        if !(v.is_finite() && (0.0..=24.0).contains(&v)) {
            self.errors
                .push(FieldError::new(field, "must be from 0 to 24"));
        }
    }

    fn rule(&mut self, field: &str, cond: bool, message: &str) {
        if !cond {
            self.errors.push(FieldError::new(field, message));
        }
    }
}

impl RiskPolicy {
    /// Checks every threshold is in range and the safety rules are on; reports every error
    /// with its dotted field path.
    pub fn validate(&self) -> Result<(), Vec<FieldError>> {
        let r = &self.rules;
        let mut c = Check { errors: Vec::new() };
        c.rule(
            "rules.self_harm.enabled",
            r.self_harm.enabled,
            "self_harm can never be switched off",
        );
        c.rule(
            "rules.sos.enabled",
            r.sos.enabled,
            "sos can never be switched off",
        );
        c.int(
            "rules.substance_use.tolerance_loss_days",
            r.substance_use.tolerance_loss_days,
            1,
            365,
        );
        c.int(
            "rules.substance_use.post_detox_days",
            r.substance_use.post_detox_days,
            0,
            365,
        );
        c.int(
            "rules.craving_high.threshold",
            r.craving_high.threshold,
            1,
            10,
        );
        c.int(
            "rules.craving_high.consecutive_days_for_high",
            r.craving_high.consecutive_days_for_high,
            1,
            14,
        );
        c.int("rules.craving_rising.rise", r.craving_rising.rise, 1, 10);
        c.int(
            "rules.craving_rising.baseline_check_ins",
            r.craving_rising.baseline_check_ins,
            1,
            14,
        );
        c.int(
            "rules.craving_rising.window_days",
            r.craving_rising.window_days,
            1,
            30,
        );
        c.rule(
            "rules.craving_rising.window_days",
            r.craving_rising.window_days >= r.craving_rising.baseline_check_ins,
            "must be at least baseline_check_ins",
        );
        c.int(
            "rules.withdrawal_severe.threshold",
            r.withdrawal_severe.threshold,
            1,
            64,
        );
        c.int("rules.mood_low.at_most", r.mood_low.at_most, 0, 9);
        c.int(
            "rules.mood_low.consecutive_days",
            r.mood_low.consecutive_days,
            1,
            30,
        );
        c.hours("rules.sleep_poor.below_hours", r.sleep_poor.below_hours);
        c.int(
            "rules.sleep_poor.consecutive_days",
            r.sleep_poor.consecutive_days,
            1,
            30,
        );
        c.int("rules.meals_skipped.at_most", r.meals_skipped.at_most, 0, 9);
        c.int(
            "rules.meals_skipped.consecutive_days",
            r.meals_skipped.consecutive_days,
            1,
            30,
        );
        c.int("rules.halt.signals", r.halt.signals, 1, 4);
        c.int(
            "rules.halt.hungry_meals_at_most",
            r.halt.hungry_meals_at_most,
            0,
            9,
        );
        c.int(
            "rules.halt.angry_irritability_at_least",
            r.halt.angry_irritability_at_least,
            1,
            10,
        );
        c.int(
            "rules.halt.lonely_loneliness_at_least",
            r.halt.lonely_loneliness_at_least,
            1,
            10,
        );
        c.hours(
            "rules.halt.tired_sleep_below_hours",
            r.halt.tired_sleep_below_hours,
        );
        c.int(
            "rules.exercise_lapsed.consecutive_days",
            r.exercise_lapsed.consecutive_days,
            1,
            30,
        );
        c.int(
            "rules.exercise_lapsed.lookback_days",
            r.exercise_lapsed.lookback_days,
            2,
            60,
        );
        c.rule(
            "rules.exercise_lapsed.lookback_days",
            r.exercise_lapsed.lookback_days > r.exercise_lapsed.consecutive_days,
            "must be greater than consecutive_days",
        );
        c.int(
            "rules.medication_missed.consecutive_days",
            r.medication_missed.consecutive_days,
            1,
            30,
        );
        c.int(
            "rules.support_disengaged.days",
            r.support_disengaged.days,
            1,
            60,
        );
        c.int(
            "rules.support_disengaged.min_check_ins",
            r.support_disengaged.min_check_ins,
            1,
            60,
        );
        c.rule(
            "rules.support_disengaged.min_check_ins",
            r.support_disengaged.min_check_ins <= r.support_disengaged.days,
            "must be at most days",
        );
        c.int(
            "rules.slide.window_check_ins",
            r.slide.window_check_ins,
            3,
            30,
        );
        c.int("rules.slide.window_days", r.slide.window_days, 3, 30);
        c.rule(
            "rules.slide.window_days",
            r.slide.window_days >= r.slide.window_check_ins,
            "must be at least window_check_ins",
        );
        c.int("rules.slide.craving_rise", r.slide.craving_rise, 1, 10);
        c.int("rules.slide.mood_fall", r.slide.mood_fall, 1, 10);
        c.rule(
            "rules.slide.sleep_fall_hours",
            r.slide.sleep_fall_hours.is_finite()
                && (0.5..=12.0).contains(&r.slide.sleep_fall_hours),
            "must be from 0.5 to 12",
        );
        c.int(
            "rules.missed_check_ins.warning_after_days",
            r.missed_check_ins.warning_after_days,
            1,
            30,
        );
        c.int(
            "rules.missed_check_ins.high_after_days",
            r.missed_check_ins.high_after_days,
            1,
            60,
        );
        c.rule(
            "rules.missed_check_ins.high_after_days",
            r.missed_check_ins.high_after_days >= r.missed_check_ins.warning_after_days,
            "must be at least warning_after_days",
        );
        c.int(
            "escalate_critical_after_minutes",
            self.escalate_critical_after_minutes,
            1,
            10_080,
        );
        c.int(
            "escalate_high_after_minutes",
            self.escalate_high_after_minutes,
            1,
            10_080,
        );
        if c.errors.is_empty() {
            Ok(())
        } else {
            Err(c.errors)
        }
    }

    /// This policy with a patient's overrides laid over it.
    pub fn merged(&self, o: &PolicyOverrides) -> RiskPolicy {
        let r = &self.rules;
        let d = RulesOverride::default();
        let ov = o.rules.as_ref().unwrap_or(&d);
        macro_rules! m {
            ($f:ident) => {
                match &ov.$f {
                    Some(x) => r.$f.merged(x),
                    None => r.$f.clone(),
                }
            };
        }
        RiskPolicy {
            rules: Rules {
                self_harm: m!(self_harm),
                sos: m!(sos),
                substance_use: m!(substance_use),
                craving_high: m!(craving_high),
                craving_rising: m!(craving_rising),
                withdrawal_severe: m!(withdrawal_severe),
                mood_low: m!(mood_low),
                sleep_poor: m!(sleep_poor),
                meals_skipped: m!(meals_skipped),
                halt: m!(halt),
                exercise_lapsed: m!(exercise_lapsed),
                medication_missed: m!(medication_missed),
                support_disengaged: m!(support_disengaged),
                slide: m!(slide),
                missed_check_ins: m!(missed_check_ins),
            },
            escalate_critical_after_minutes: o
                .escalate_critical_after_minutes
                .unwrap_or(self.escalate_critical_after_minutes),
            escalate_high_after_minutes: o
                .escalate_high_after_minutes
                .unwrap_or(self.escalate_high_after_minutes),
        }
    }

    /// Days of history before a check-in's date that the engine reads for this policy: the
    /// widest window of any rule, so the read costs the same for a week or five years of data.
    pub fn history_window_days(&self) -> i64 {
        let r = &self.rules;
        [
            r.craving_high.consecutive_days_for_high,
            r.craving_rising.window_days,
            r.mood_low.consecutive_days,
            r.sleep_poor.consecutive_days,
            r.meals_skipped.consecutive_days,
            r.exercise_lapsed.lookback_days,
            r.medication_missed.consecutive_days,
            r.support_disengaged.days,
            r.slide.window_days,
        ]
        .into_iter()
        .map(i64::from)
        .max()
        .unwrap_or(14)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(r: Result<(), Vec<FieldError>>) -> Vec<String> {
        r.err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn the_default_is_the_spec_and_valid() {
        let p = RiskPolicy::default();
        assert!(p.validate().is_ok());
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["rules"]["craving_high"]["threshold"], 8);
        assert_eq!(json["rules"]["halt"]["tired_sleep_below_hours"], 5.0);
        assert_eq!(json["escalate_high_after_minutes"], 240);
        assert_eq!(json["rules"].as_object().unwrap().len(), 15);
        assert_eq!(
            json["rules"]["slide"],
            serde_json::json!({"enabled": true, "window_check_ins": 7, "window_days": 10,
                "craving_rise": 3, "mood_fall": 3, "sleep_fall_hours": 2.0})
        );
        let back: RiskPolicy = serde_json::from_value(json).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn safety_rules_cannot_be_switched_off() {
        let o: PolicyOverrides =
            serde_json::from_value(serde_json::json!({"rules": {"self_harm": {"enabled": false}, "sos": {"enabled": false}}}))
                .unwrap();
        let f = fields(RiskPolicy::default().merged(&o).validate());
        assert_eq!(f, vec!["rules.self_harm.enabled", "rules.sos.enabled"]);
    }

    #[test]
    fn thresholds_out_of_range_name_their_field() {
        let mut p = RiskPolicy::default();
        p.rules.craving_high.threshold = 11;
        p.rules.sleep_poor.below_hours = 25.0;
        p.escalate_critical_after_minutes = 0;
        assert_eq!(
            fields(p.validate()),
            vec![
                "rules.craving_high.threshold",
                "rules.sleep_poor.below_hours",
                "escalate_critical_after_minutes"
            ]
        );
        p = RiskPolicy::default();
        p.rules.craving_high.threshold = 10;
        assert!(p.validate().is_ok());
    }

    #[test]
    fn slide_settings_are_checked() {
        let mut p = RiskPolicy::default();
        p.rules.slide.window_check_ins = 2;
        p.rules.slide.sleep_fall_hours = 0.0;
        p.rules.slide.mood_fall = 11;
        assert_eq!(
            fields(p.validate()),
            vec![
                "rules.slide.window_check_ins",
                "rules.slide.mood_fall",
                "rules.slide.sleep_fall_hours"
            ]
        );
        p = RiskPolicy::default();
        p.rules.slide.window_check_ins = 12;
        assert_eq!(fields(p.validate()), vec!["rules.slide.window_days"]);
        p.rules.slide.window_days = 21;
        assert!(p.validate().is_ok());
        assert_eq!(p.history_window_days(), 21);
    }

    #[test]
    fn a_policy_stored_before_slide_existed_reads_with_its_defaults() {
        let mut json = serde_json::to_value(RiskPolicy::default()).unwrap();
        json["rules"]["craving_high"]["threshold"] = 7.into();
        json["rules"].as_object_mut().unwrap().remove("slide");
        let p: RiskPolicy = serde_json::from_value(json).unwrap();
        assert_eq!(p.rules.craving_high.threshold, 7, "the rest is kept");
        assert_eq!(p.rules.slide, Slide::default_settings());
    }

    #[test]
    fn unknown_rules_and_fields_are_refused() {
        assert!(serde_json::from_value::<PolicyOverrides>(
            serde_json::json!({"rules": {"craving_hihg": {}}})
        )
        .is_err());
        assert!(serde_json::from_value::<PolicyOverrides>(
            serde_json::json!({"rules": {"craving_high": {"treshold": 7}}})
        )
        .is_err());
    }

    #[test]
    fn overrides_merge_field_by_field() {
        let o: PolicyOverrides = serde_json::from_value(serde_json::json!({
            "rules": {"craving_high": {"threshold": 6}, "exercise_lapsed": {"enabled": false}},
            "escalate_high_after_minutes": 60
        }))
        .unwrap();
        let p = RiskPolicy::default().merged(&o);
        assert_eq!(p.rules.craving_high.threshold, 6);
        assert_eq!(p.rules.craving_high.consecutive_days_for_high, 2);
        assert!(!p.rules.exercise_lapsed.enabled);
        assert_eq!(p.escalate_high_after_minutes, 60);
        assert_eq!(p.escalate_critical_after_minutes, 15);
        assert_eq!(RiskPolicy::default().history_window_days(), 14);
    }
}
