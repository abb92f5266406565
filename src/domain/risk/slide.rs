//! `slide`: the slow slide that no single-day threshold sees. Over the patient's last
//! `window_check_ins` check-ins (today's included), all within `window_days` local days ending
//! today, a least-squares line is fitted to craving, mood and sleep (x = the day, by date, so a
//! skipped day counts as a day) and its change across the days spanned is compared with the
//! thresholds: craving rising by `craving_rise`, mood falling by `mood_fall`, sleep falling by
//! `sleep_fall_hours`. One series sliding is a warning; two or more together are high.
//!
//! Sleep is optional in a check-in, so its line is fitted to the check-ins of the window that
//! answered it, across the days those span, and only when at least [`MIN_SLEEP_POINTS`] of them
//! did (or all of the window, when the window is smaller): two or three answers make a line
//! out of noise.

use chrono::{NaiveDate, TimeDelta};
use serde_json::json;

use super::{DayRecord, Days, Finding};
use crate::domain::policy::{RuleId, Severity, Slide};

/// Check-ins with `sleep_hours` a window needs before sleep's trend is read.
pub const MIN_SLEEP_POINTS: usize = 5;

/// Below this, a fitted change that "reaches" a threshold is rounding noise, not a miss.
const EPSILON: f64 = 1e-9;

/// The least-squares line through `(day, value)` points: its change across the days they span
/// (slope × (last day − first day)). `None` with fewer than two distinct days.
pub(crate) fn fitted_change(points: &[(NaiveDate, f64)]) -> Option<f64> {
    let first = points.first()?.0;
    let xs: Vec<f64> = points
        .iter()
        .map(|(d, _)| (*d - first).num_days() as f64)
        .collect();
    let n = points.len() as f64;
    let mean_x = xs.iter().sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = xs.iter().map(|x| (x - mean_x).powi(2)).sum();
    if sxx <= 0.0 {
        return None;
    }
    let sxy: f64 = xs
        .iter()
        .zip(points)
        .map(|(x, p)| (x - mean_x) * (p.1 - mean_y))
        .sum();
    let span = xs.iter().copied().fold(0.0, f64::max);
    Some(sxy / sxx * span)
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

/// One series' fitted change, for the evidence and the explanation.
struct Trend {
    key: &'static str,
    change: Option<f64>,
    points: usize,
    /// The threshold, in the direction that counts (craving up, mood and sleep down).
    threshold: f64,
    rising: bool,
}

impl Trend {
    fn slides(&self) -> bool {
        match self.change {
            Some(c) if self.rising => c >= self.threshold - EPSILON,
            Some(c) => -c >= self.threshold - EPSILON,
            None => false,
        }
    }

    fn evidence(&self) -> serde_json::Value {
        json!({
            "change": self.change.map(round2),
            "check_ins": self.points,
            "threshold": if self.rising { self.threshold } else { -self.threshold },
            "slides": self.slides(),
        })
    }

    fn sentence(&self) -> Option<String> {
        let c = self.change.filter(|_| self.slides())?;
        Some(match self.key {
            "craving" => format!("craving rose by {:.1} points", c),
            "mood" => format!("mood fell by {:.1} points", -c),
            _ => format!("sleep fell by {:.1} hours a night", -c),
        })
    }
}

pub(super) fn check(d: &DayRecord, days: &Days<'_>, p: &Slide) -> Option<Finding> {
    let n = usize::try_from(p.window_check_ins).ok()?;
    if n < 2 {
        return None;
    }
    let from = d.date - TimeDelta::days(i64::from(p.window_days.max(1)) - 1);
    let in_window = days.between(from, d.date);
    if in_window.len() < n {
        return None;
    }
    let window = &in_window[in_window.len() - n..];
    let series = |f: &dyn Fn(&DayRecord) -> Option<f64>| -> Vec<(NaiveDate, f64)> {
        window
            .iter()
            .filter_map(|r| f(r).map(|v| (r.date, v)))
            .collect()
    };
    let craving = series(&|r| Some(f64::from(r.craving)));
    let mood = series(&|r| Some(f64::from(r.mood)));
    let sleep = series(&|r| r.sleep_hours);
    let sleep_needed = MIN_SLEEP_POINTS.min(n);
    let trends = [
        Trend {
            key: "craving",
            change: fitted_change(&craving),
            points: craving.len(),
            threshold: f64::from(p.craving_rise),
            rising: true,
        },
        Trend {
            key: "mood",
            change: fitted_change(&mood),
            points: mood.len(),
            threshold: f64::from(p.mood_fall),
            rising: false,
        },
        Trend {
            key: "sleep_hours",
            change: (sleep.len() >= sleep_needed)
                .then(|| fitted_change(&sleep))
                .flatten(),
            points: sleep.len(),
            threshold: p.sleep_fall_hours,
            rising: false,
        },
    ];
    let sliding: Vec<String> = trends.iter().filter_map(Trend::sentence).collect();
    if sliding.is_empty() {
        return None;
    }
    let severity = if sliding.len() >= 2 {
        Severity::High
    } else {
        Severity::Warning
    };
    let first = window.first()?.date;
    let list = match sliding.as_slice() {
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {}", init.join(", "), last),
        [] => String::new(),
    };
    let mut explained = list;
    if let Some(c) = explained.get_mut(0..1) {
        c.make_ascii_uppercase();
    }
    Some(Finding {
        rule: RuleId::Slide,
        severity,
        title: if sliding.len() >= 2 {
            "Sliding on several fronts".into()
        } else {
            "A slow slide".into()
        },
        explanation: format!(
            "{explained} across the last {n} check-ins ({first} to {}), by the trend line through them — a slow slide that no single day's answers would flag.",
            d.date
        ),
        evidence: json!({
            "from": first,
            "to": d.date,
            "check_ins": window.iter().map(|r| json!({
                "date": r.date, "craving": r.craving, "mood": r.mood, "sleep_hours": r.sleep_hours,
            })).collect::<Vec<_>>(),
            "trends": {
                "craving": trends[0].evidence(),
                "mood": trends[1].evidence(),
                "sleep_hours": trends[2].evidence(),
            },
            "window_check_ins": p.window_check_ins,
            "window_days": p.window_days,
            "sleep_check_ins_needed": sleep_needed,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use crate::domain::policy::{RiskPolicy, RuleId, Severity};

    /// Seven consecutive check-ins (days 1–7) with these cravings and moods; calm sleep.
    fn week(craving: [i32; 7], mood: [i32; 7]) -> Vec<DayRecord> {
        (0..7)
            .map(|i| {
                with(i as u32 + 1, |d| {
                    d.craving = craving[i];
                    d.mood = mood[i];
                })
            })
            .collect()
    }

    const FLAT_CRAVING: [i32; 7] = [2; 7];
    const FLAT_MOOD: [i32; 7] = [6; 7];
    // Least squares over x = 0..6 (Σ(x−3)² = 28): change = 6·Σ(x−3)y / 28.
    // Σ(x−3)y = 13, 14, 15 → a change of 2.79, exactly 3, 3.21.
    const CRAVING_BELOW: [i32; 7] = [2, 2, 4, 3, 4, 4, 5];
    const CRAVING_AT: [i32; 7] = [2, 2, 3, 3, 4, 4, 5];
    const CRAVING_ABOVE: [i32; 7] = [2, 2, 3, 3, 5, 4, 5];
    const MOOD_BELOW: [i32; 7] = [8, 8, 6, 7, 6, 6, 5];
    const MOOD_AT: [i32; 7] = [8, 8, 7, 7, 6, 6, 5];
    const MOOD_ABOVE: [i32; 7] = [8, 8, 7, 7, 5, 6, 5];

    fn slide(records: &[DayRecord]) -> Option<Severity> {
        fired(records, RuleId::Slide)
    }

    fn finding(records: &[DayRecord]) -> Finding {
        eval(records, &Default::default(), &RiskPolicy::default())
            .into_iter()
            .find(|f| f.rule == RuleId::Slide)
            .expect("slide fired")
    }

    #[test]
    fn the_fit_is_by_date_and_spans_the_days() {
        let d = |n| date(n);
        assert_eq!(fitted_change(&[(d(1), 2.0), (d(2), 3.0)]), Some(1.0));
        // A skipped day is a day: 2 → 4 over three days is still +2, by date not by index.
        let c = fitted_change(&[(d(1), 2.0), (d(2), 2.5), (d(4), 3.5)]).unwrap();
        assert!((c - 1.5).abs() < 1e-9, "{c}");
        assert_eq!(fitted_change(&[(d(1), 2.0)]), None);
    }

    #[test]
    fn craving_rising_by_three_across_the_week() {
        assert_eq!(slide(&week(CRAVING_BELOW, FLAT_MOOD)), None);
        assert_eq!(slide(&week(CRAVING_AT, FLAT_MOOD)), Some(Severity::Warning));
        assert_eq!(
            slide(&week(CRAVING_ABOVE, FLAT_MOOD)),
            Some(Severity::Warning)
        );
    }

    #[test]
    fn mood_falling_by_three_across_the_week() {
        assert_eq!(slide(&week(FLAT_CRAVING, MOOD_BELOW)), None);
        assert_eq!(slide(&week(FLAT_CRAVING, MOOD_AT)), Some(Severity::Warning));
        assert_eq!(
            slide(&week(FLAT_CRAVING, MOOD_ABOVE)),
            Some(Severity::Warning)
        );
        // Mood rising is recovery, not a slide.
        let mut up = MOOD_AT;
        up.reverse();
        assert_eq!(slide(&week(FLAT_CRAVING, up)), None);
    }

    /// Sleep answered on the last five days (x = 2..6, Σ(x−4)² = 10): 8, 7.5, 7, 6.5 and then
    /// `last` — 6.1, 6.0, 5.9 give a fitted fall of 1.92, exactly 2, 2.08 hours.
    fn sleeping(last: f64) -> Vec<DayRecord> {
        let mut w = week(FLAT_CRAVING, FLAT_MOOD);
        let hours = [
            None,
            None,
            Some(8.0),
            Some(7.5),
            Some(7.0),
            Some(6.5),
            Some(last),
        ];
        for (r, h) in w.iter_mut().zip(hours) {
            r.sleep_hours = h;
        }
        w
    }

    #[test]
    fn sleep_falling_by_two_hours_across_the_nights_answered() {
        assert_eq!(slide(&sleeping(6.1)), None);
        assert_eq!(slide(&sleeping(6.0)), Some(Severity::Warning));
        assert_eq!(slide(&sleeping(5.9)), Some(Severity::Warning));
        let t = &finding(&sleeping(6.0)).evidence["trends"]["sleep_hours"];
        assert_eq!(t["change"], -2.0);
        assert_eq!(t["check_ins"], 5);
    }

    #[test]
    fn sleep_needs_five_answers() {
        let mut w = sleeping(4.0);
        w[2].sleep_hours = None;
        assert_eq!(slide(&w), None, "four answers are not a trend");
    }

    #[test]
    fn two_series_together_are_high() {
        assert_eq!(slide(&week(CRAVING_AT, MOOD_AT)), Some(Severity::High));
        let f = finding(&week(CRAVING_AT, MOOD_AT));
        assert!(
            f.explanation
                .contains("Craving rose by 3.0 points and mood fell by 3.0 points"),
            "{}",
            f.explanation
        );
        assert!(f.explanation.contains(&date(1).to_string()));
        assert!(f.explanation.contains(&date(7).to_string()));
        assert_eq!(f.evidence["trends"]["craving"]["change"], 3.0);
        assert_eq!(f.evidence["trends"]["craving"]["threshold"], 3.0);
        assert_eq!(f.evidence["trends"]["mood"]["threshold"], -3.0);
        assert_eq!(f.evidence["trends"]["sleep_hours"]["slides"], false);
        assert_eq!(f.evidence["check_ins"].as_array().unwrap().len(), 7);
        assert_eq!(f.evidence["check_ins"][6]["craving"], 5);
    }

    #[test]
    fn needs_seven_check_ins() {
        let w = week([1, 2, 3, 4, 5, 6, 7], FLAT_MOOD);
        assert_eq!(slide(&w[1..]), None, "six check-ins");
        assert_eq!(slide(&w), Some(Severity::Warning));
    }

    #[test]
    fn only_check_ins_within_ten_days_count() {
        // Seven check-ins, the first eleven days before the last: outside the window.
        let mut w = week([1, 2, 3, 4, 5, 6, 7], FLAT_MOOD);
        for (i, r) in w.iter_mut().enumerate() {
            r.date = date(if i == 0 { 1 } else { i as u32 + 6 });
        }
        assert_eq!(w[6].date, date(12));
        assert_eq!(slide(&w), None, "day 1 is 11 days before day 12");
        // Spread over exactly ten days (days 3..12), they do.
        w[0].date = date(3);
        assert_eq!(slide(&w), Some(Severity::Warning));
    }

    #[test]
    fn the_latest_seven_are_read_when_there_are_more() {
        // A fall long ago, then a steady week: only the steady week counts.
        let mut w: Vec<DayRecord> = (1..=3).map(|n| with(n, |d| d.mood = 9)).collect();
        w.extend((4..=10).map(day));
        assert_eq!(slide(&w), None);
    }

    #[test]
    fn a_calm_week_does_not_slide() {
        let w: Vec<DayRecord> = (1..=14).map(day).collect();
        assert_eq!(slide(&w), None);
    }
}
