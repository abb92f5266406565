//! A synthetic cohort: realistic multi-week histories of the kinds of patient a clinic sees,
//! each with its ground truth (when they lapsed, when the slide or silence before it began).
//! Seeded and deterministic: the same seed gives the same cohort.
//!
//! Archetypes:
//! - `steady`: small day-to-day variation, a rare missed day, no lapse.
//! - `noisy`: wider day-to-day noise, an occasional bad day and missed days, no lapse.
//! - `slide`: calm, then over 5–10 days craving creeps up while mood (and often sleep) falls,
//!   then use; afterwards a few rough days and a slow return to baseline.
//! - `quiet`: check-ins thin out over a week, then stop for 3–6 days; most come back reporting
//!   use, some come back without.
//! - `detox`: enrols in detox with a SOWS withdrawal score falling over the first one or two
//!   weeks, craving and sleep recovering with it, then treatment; no lapse.

use chrono::{NaiveDate, TimeDelta};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use super::replay::{Prior, ReplayPatient};
use crate::domain::policy::{Phase, RiskPolicy};
use crate::domain::risk::{DayRecord, PhaseSpan};

/// The kind of history a synthetic patient has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Archetype {
    /// Calm throughout.
    Steady,
    /// Noisy, occasional bad days, never lapses.
    Noisy,
    /// A slow slide over days, then a lapse.
    Slide,
    /// Check-ins thin out and stop before a lapse (or a return without one).
    Quiet,
    /// Withdrawal falling over the first weeks of detox.
    Detox,
}

impl Archetype {
    /// Every archetype.
    pub const ALL: [Archetype; 5] = [
        Self::Steady,
        Self::Noisy,
        Self::Slide,
        Self::Quiet,
        Self::Detox,
    ];

    /// The name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Steady => "steady",
            Self::Noisy => "noisy",
            Self::Slide => "slide",
            Self::Quiet => "quiet",
            Self::Detox => "detox",
        }
    }
}

/// A generated patient and what really happened to them.
#[derive(Debug, Clone)]
pub struct SyntheticPatient {
    /// The kind of history.
    pub archetype: Archetype,
    /// The patient's IANA timezone (dates below are local dates there).
    pub timezone: String,
    /// The history, with the default policy.
    pub history: ReplayPatient,
    /// Every date the patient used, oldest first (empty: never lapsed).
    pub lapses: Vec<NaiveDate>,
    /// The first day of the slide or silence that preceded the first lapse (for a quiet
    /// patient who came back without using, the first day of the silence).
    pub pre_lapse_from: Option<NaiveDate>,
}

impl SyntheticPatient {
    /// The first lapse.
    pub fn first_lapse(&self) -> Option<NaiveDate> {
        self.lapses.first().copied()
    }
}

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct CohortSpec {
    /// How many patients.
    pub patients: usize,
    /// Weeks of history each.
    pub weeks: u32,
    /// The seed.
    pub seed: u64,
    /// The first local date of every history (the enrolment date).
    pub start: NaiveDate,
}

impl Default for CohortSpec {
    fn default() -> Self {
        Self {
            patients: 200,
            weeks: 12,
            seed: 11,
            start: NaiveDate::from_ymd_opt(2026, 1, 5).unwrap_or_default(),
        }
    }
}

const TIMEZONES: [&str; 6] = [
    "America/New_York",
    "America/Los_Angeles",
    "Europe/London",
    "Europe/Berlin",
    "Australia/Sydney",
    "America/Chicago",
];

const SUBSTANCES: [&str; 4] = ["heroin", "fentanyl", "oxycodone", "benzodiazepines"];

/// The archetype of the `i`-th patient: a fixed mix (30 % steady, 25 % noisy, 20 % slide,
/// 15 % quiet, 10 % detox), shuffled by the seed.
fn archetype(rng: &mut StdRng) -> Archetype {
    match rng.gen_range(0..100) {
        0..=29 => Archetype::Steady,
        30..=54 => Archetype::Noisy,
        55..=74 => Archetype::Slide,
        75..=89 => Archetype::Quiet,
        _ => Archetype::Detox,
    }
}

/// Generates a cohort.
pub fn generate(spec: &CohortSpec) -> Vec<SyntheticPatient> {
    let mut rng = StdRng::seed_from_u64(spec.seed);
    (0..spec.patients)
        .map(|i| {
            let a = archetype(&mut rng);
            patient(&mut rng, i, a, spec)
        })
        .collect()
}

/// Generates one patient of a given archetype.
pub fn patient(rng: &mut StdRng, i: usize, a: Archetype, spec: &CohortSpec) -> SyntheticPatient {
    let mut g = Gen::new(rng, a, spec);
    let days = i64::from(spec.weeks.max(1)) * 7;
    match a {
        Archetype::Steady | Archetype::Noisy => g.calm_span(0, days),
        Archetype::Slide => g.slide(days),
        Archetype::Quiet => g.quiet(days),
        Archetype::Detox => g.detox(days),
    }
    let Gen {
        start,
        phases,
        records,
        lapses,
        pre_lapse_from,
        enrolment_last_use,
        ..
    } = g;
    SyntheticPatient {
        archetype: a,
        timezone: TIMEZONES[i % TIMEZONES.len()].to_string(),
        history: ReplayPatient {
            patient_id: format!("synthetic-{i:05}-{}", a.as_str()),
            policy: RiskPolicy::default(),
            phase_history: phases,
            enrolled_on: start,
            joined_on: start,
            enrolment_last_use,
            check_ins: records,
            prior: Prior::default(),
        },
        lapses,
        pre_lapse_from,
    }
}

/// A patient's own baseline.
struct Baseline {
    craving: f64,
    mood: f64,
    sleep: f64,
    meals: i32,
    /// Probability of exercising on a given day (0: does not exercise).
    exercise: f64,
    /// On medication for opioid use disorder.
    moud: bool,
    /// Answers the support question.
    support: bool,
    /// Day-to-day noise scale.
    noise: f64,
    /// Probability of skipping a day's check-in.
    skip: f64,
    /// Probability of a bad day.
    bad_day: f64,
}

struct Gen<'a> {
    rng: &'a mut StdRng,
    start: NaiveDate,
    base: Baseline,
    phases: Vec<PhaseSpan>,
    records: Vec<DayRecord>,
    lapses: Vec<NaiveDate>,
    pre_lapse_from: Option<NaiveDate>,
    enrolment_last_use: Option<NaiveDate>,
}

fn clamp10(x: f64) -> i32 {
    x.round().clamp(0.0, 10.0) as i32
}

fn hours(x: f64) -> f64 {
    (x.clamp(0.0, 24.0) * 10.0).round() / 10.0
}

impl<'a> Gen<'a> {
    fn new(rng: &'a mut StdRng, a: Archetype, spec: &CohortSpec) -> Self {
        let noisy = a == Archetype::Noisy;
        let base = Baseline {
            craving: rng.gen_range(0.5..3.0) + if noisy { 1.0 } else { 0.0 },
            mood: rng.gen_range(5.5..8.0),
            sleep: rng.gen_range(6.5..8.2),
            meals: rng.gen_range(2..=4),
            exercise: if rng.gen_bool(0.7) {
                rng.gen_range(0.5..0.9)
            } else {
                0.0
            },
            moud: rng.gen_bool(0.45),
            support: rng.gen_bool(0.6),
            noise: if noisy { 1.6 } else { 0.7 },
            skip: if noisy { 0.07 } else { 0.03 },
            bad_day: if noisy { 0.035 } else { 0.0 },
        };
        let start = spec.start;
        let (phases, last_use) = match a {
            Archetype::Detox => (
                vec![PhaseSpan {
                    phase: Phase::Detox,
                    started_on: start - TimeDelta::days(rng.gen_range(0..=2)),
                }],
                start - TimeDelta::days(1),
            ),
            _ => {
                let phase = if rng.gen_bool(0.5) {
                    Phase::Treatment
                } else {
                    Phase::Aftercare
                };
                let began = start - TimeDelta::days(rng.gen_range(20..=240));
                (
                    vec![PhaseSpan {
                        phase,
                        started_on: began,
                    }],
                    began - TimeDelta::days(rng.gen_range(5..=40)),
                )
            }
        };
        Self {
            rng,
            start,
            base,
            phases,
            records: Vec::new(),
            lapses: Vec::new(),
            pre_lapse_from: None,
            enrolment_last_use: Some(last_use),
        }
    }

    fn date(&self, day: i64) -> NaiveDate {
        self.start + TimeDelta::days(day)
    }

    fn in_aftercare(&self, day: i64) -> bool {
        let d = self.date(day);
        self.phases
            .iter()
            .rev()
            .find(|p| p.started_on <= d)
            .is_some_and(|p| p.phase == Phase::Aftercare)
    }

    fn noise(&mut self, scale: f64) -> f64 {
        // Roughly normal: the sum of three uniforms.
        let s: f64 = (0..3).map(|_| self.rng.gen_range(-1.0..1.0)).sum();
        s * scale / 1.7
    }

    /// A day around the baseline, shifted by `craving`, `mood` and `sleep` offsets.
    fn day(&mut self, day: i64, craving: f64, mood: f64, sleep: f64) -> DayRecord {
        let n = self.base.noise;
        let c = self.base.craving + craving + self.noise(n);
        let m = self.base.mood + mood + self.noise(n);
        let s = self.base.sleep + sleep + self.noise(n * 0.6);
        let strain = (-mood).max(craving).max(0.0);
        let exercise = if self
            .rng
            .gen_bool((self.base.exercise - strain * 0.08).clamp(0.0, 1.0))
        {
            self.rng.gen_range(15..=60)
        } else {
            0
        };
        let meals = (self.base.meals - i32::from(strain > 3.0 && self.rng.gen_bool(0.5))).max(1);
        let took_medication = self
            .base
            .moud
            .then(|| !self.rng.gen_bool((0.03 + strain * 0.05).min(0.6)));
        let attended_support = (self.base.support && self.in_aftercare(day))
            .then(|| self.rng.gen_bool((0.4 - strain * 0.05).clamp(0.05, 0.4)));
        let irritability = clamp10(2.0 + strain * 0.8 + self.noise(n));
        let loneliness = clamp10(2.5 + strain * 0.7 + self.noise(n));
        DayRecord {
            date: self.date(day),
            craving: clamp10(c),
            mood: clamp10(m),
            exercise_minutes: exercise,
            meals,
            used_substance: false,
            substances: Vec::new(),
            sleep_hours: Some(hours(s)),
            anxiety: Some(clamp10(3.0 + strain * 0.6 + self.noise(n))),
            irritability: Some(irritability),
            loneliness: Some(loneliness),
            took_medication,
            attended_support,
            withdrawal_score: None,
            self_harm_thoughts: Some(false),
        }
    }

    fn push(&mut self, r: DayRecord) {
        self.records.push(r);
    }

    /// Calm days `from..to`, with the baseline's missed days and bad days.
    fn calm_span(&mut self, from: i64, to: i64) {
        let mut d = from;
        while d < to {
            if self.rng.gen_bool(self.base.skip) {
                // Mostly a single missed day; now and then two.
                d += if self.rng.gen_bool(0.15) { 2 } else { 1 };
                continue;
            }
            let r = if self.rng.gen_bool(self.base.bad_day) {
                let c = self.rng.gen_range(4.5..6.5);
                self.day(d, c, -4.0, -2.0)
            } else {
                self.day(d, 0.0, 0.0, 0.0)
            };
            self.push(r);
            d += 1;
        }
    }

    /// A lapse on `day` and a few rough days after it; returns the day after them.
    fn lapse(&mut self, day: i64) -> i64 {
        let substance = SUBSTANCES[self.rng.gen_range(0..SUBSTANCES.len())].to_string();
        let uses = self.rng.gen_range(1..=2);
        for k in 0..uses {
            let mut r = self.day(day + k, 6.5, -4.0, -2.0);
            r.used_substance = true;
            r.substances = vec![substance.clone()];
            self.lapses.push(r.date);
            self.push(r);
        }
        // Recovery over a week or so.
        let back = self.rng.gen_range(5..=9);
        for k in 0..back {
            let f = 1.0 - f64::from(k + 1) / f64::from(back + 1);
            if self.rng.gen_bool(0.1) {
                continue;
            }
            let r = self.day(day + uses + i64::from(k), 4.0 * f, -3.0 * f, -1.5 * f);
            self.push(r);
        }
        day + uses + i64::from(back)
    }

    fn lapse_day(&mut self, days: i64) -> i64 {
        self.rng.gen_range(24..(days - 14).max(25))
    }

    fn slide(&mut self, days: i64) {
        let lapse = self.lapse_day(days);
        let len = self.rng.gen_range(5..=10);
        let from = lapse - len;
        self.calm_span(0, from);
        self.pre_lapse_from = Some(self.date(from));
        let craving_rise = self.rng.gen_range(4.0..6.5);
        let mood_fall = if self.rng.gen_bool(0.8) {
            self.rng.gen_range(3.0..4.5)
        } else {
            self.rng.gen_range(0.0..1.5)
        };
        let sleep_fall = if self.rng.gen_bool(0.7) {
            self.rng.gen_range(1.8..3.0)
        } else {
            self.rng.gen_range(0.0..0.8)
        };
        for k in 0..len {
            let f = (k + 1) as f64 / len as f64;
            if self.rng.gen_bool(0.05) {
                continue;
            }
            let r = self.day(from + k, craving_rise * f, -mood_fall * f, -sleep_fall * f);
            self.push(r);
        }
        let after = self.lapse(lapse);
        self.calm_span(after, days);
    }

    fn quiet(&mut self, days: i64) {
        let back = self.lapse_day(days);
        let silent = self.rng.gen_range(3..=6);
        let thin = self.rng.gen_range(5..=8);
        let from = back - silent - thin;
        self.calm_span(0, from);
        self.pre_lapse_from = Some(self.date(from));
        // Thinning out: every other day or so, a little lower each time; the last day before
        // the silence is always answered.
        for k in 0..thin {
            let f = (k + 1) as f64 / thin as f64;
            if k + 1 < thin && self.rng.gen_bool(0.45) {
                continue;
            }
            let r = self.day(from + k, 1.5 * f, -1.5 * f, -0.5 * f);
            self.push(r);
        }
        if self.rng.gen_bool(0.7) {
            let after = self.lapse(back);
            self.calm_span(after, days);
        } else {
            self.calm_span(back, days);
        }
    }

    fn detox(&mut self, days: i64) {
        let detox_days = self.rng.gen_range(7..=14);
        let sows0 = self.rng.gen_range(18.0..34.0);
        let tau: f64 = self.rng.gen_range(1.8..3.5);
        // Detox lasts until the withdrawal has mostly passed.
        let detox_days = detox_days.max((3.0 * tau).ceil() as i64 + 1);
        let craving0 = self.rng.gen_range(3.0..5.0);
        for k in 0..detox_days {
            let f = (-(k as f64) / tau).exp();
            let mut r = self.day(k, craving0 * f, -2.0 * f, -2.5 * f);
            r.withdrawal_score =
                Some((sows0 * f + self.noise(2.0) + 2.0).round().clamp(0.0, 64.0) as i32);
            self.push(r);
        }
        self.phases.push(PhaseSpan {
            phase: Phase::Treatment,
            started_on: self.date(detox_days),
        });
        self.calm_span(detox_days, days);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cohort(seed: u64) -> Vec<SyntheticPatient> {
        generate(&CohortSpec {
            seed,
            ..CohortSpec::default()
        })
    }

    #[test]
    fn the_same_seed_gives_the_same_cohort() {
        let a = cohort(7);
        let b = cohort(7);
        assert_eq!(a.len(), 200);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.history.check_ins, y.history.check_ins);
            assert_eq!(x.lapses, y.lapses);
        }
        let c = cohort(8);
        assert_ne!(
            a.iter()
                .map(|p| p.history.check_ins.len())
                .collect::<Vec<_>>(),
            c.iter()
                .map(|p| p.history.check_ins.len())
                .collect::<Vec<_>>()
        );
        // Every archetype is there.
        for k in Archetype::ALL {
            assert!(a.iter().filter(|p| p.archetype == k).count() >= 10, "{k:?}");
        }
    }

    #[test]
    fn histories_hold_valid_check_ins_and_their_ground_truth() {
        for p in cohort(11) {
            let h = &p.history;
            let end = h.enrolled_on + TimeDelta::days(12 * 7);
            assert!(h.check_ins.windows(2).all(|w| w[0].date < w[1].date));
            for r in &h.check_ins {
                assert!(r.date >= h.enrolled_on && r.date < end);
                assert!((0..=10).contains(&r.craving) && (0..=10).contains(&r.mood));
                assert!((0..=10).contains(&r.meals) && (0..=1440).contains(&r.exercise_minutes));
                let s = r.sleep_hours.unwrap_or(0.0);
                assert!((0.0..=24.0).contains(&s) && (s * 10.0 - (s * 10.0).round()).abs() < 1e-9);
                assert!(r.withdrawal_score.is_none_or(|w| (0..=64).contains(&w)));
                assert_eq!(r.used_substance, p.lapses.contains(&r.date));
                assert_eq!(r.used_substance, !r.substances.is_empty());
            }
            match p.archetype {
                Archetype::Steady | Archetype::Noisy | Archetype::Detox => {
                    assert!(p.lapses.is_empty() && p.pre_lapse_from.is_none());
                }
                Archetype::Slide => {
                    let (from, lapse) = (p.pre_lapse_from.unwrap(), p.first_lapse().unwrap());
                    assert!((5..=10).contains(&(lapse - from).num_days()));
                }
                Archetype::Quiet => {
                    let from = p.pre_lapse_from.unwrap();
                    // The longest gap after the thinning began is the silence: three days or
                    // more, and the lapse (if any) is the day they came back.
                    let gap = h
                        .check_ins
                        .windows(2)
                        .filter(|w| w[1].date > from)
                        .max_by_key(|w| w[1].date - w[0].date)
                        .unwrap();
                    assert!((gap[1].date - gap[0].date).num_days() >= 4);
                    if let Some(l) = p.first_lapse() {
                        assert_eq!(l, gap[1].date);
                    }
                }
            }
        }
    }

    #[test]
    fn a_slide_rises_and_falls_before_the_lapse() {
        let c = cohort(11);
        let p = c.iter().find(|p| p.archetype == Archetype::Slide).unwrap();
        let (from, lapse) = (p.pre_lapse_from.unwrap(), p.first_lapse().unwrap());
        let before: Vec<_> = p
            .history
            .check_ins
            .iter()
            .filter(|r| r.date < from)
            .collect();
        let slide: Vec<_> = p
            .history
            .check_ins
            .iter()
            .filter(|r| r.date >= from && r.date < lapse)
            .collect();
        let mean = |v: &[&DayRecord], f: fn(&DayRecord) -> f64| {
            v.iter().map(|r| f(r)).sum::<f64>() / v.len() as f64
        };
        let last3 = &slide[slide.len() - 3..];
        assert!(mean(last3, |r| r.craving.into()) >= mean(&before, |r| r.craving.into()) + 2.5);
        assert!(mean(last3, |r| r.mood.into()) < mean(&before, |r| r.mood.into()));
    }

    #[test]
    fn detox_withdrawal_falls_over_the_first_weeks() {
        let c = cohort(11);
        for p in c.iter().filter(|p| p.archetype == Archetype::Detox) {
            let sows: Vec<i32> = p
                .history
                .check_ins
                .iter()
                .filter_map(|r| r.withdrawal_score)
                .collect();
            assert!(sows.len() >= 5 && sows.len() <= 14, "{sows:?}");
            assert!(sows[0] >= 15, "{sows:?}");
            assert!(*sows.last().unwrap() <= 8, "{sows:?}");
            assert_eq!(p.history.phase_history[0].phase, Phase::Detox);
            assert_eq!(p.history.phase_history[1].phase, Phase::Treatment);
        }
    }
}
