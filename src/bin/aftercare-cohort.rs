//! Generates a synthetic cohort, replays it with the default policy through the live engine
//! and episode code, and prints the figures issue 11 asks for, then times a replay of 1,000
//! patient-years.
//!
//! `aftercare-cohort [--patients N] [--weeks W] [--seed S] [--resolve-after DAYS]
//! [--without RULE]... [--no-timing]`

use std::time::Instant;

use aftercare::domain::policy::PolicyOverrides;
use aftercare::lab::cohort::{self, Archetype, CohortSpec};
use aftercare::lab::{figures, replay};

fn arg(args: &[String], name: &str) -> Option<u64> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut spec = CohortSpec::default();
    if let Some(n) = arg(&args, "--patients") {
        spec.patients = n as usize;
    }
    if let Some(w) = arg(&args, "--weeks") {
        spec.weeks = w as u32;
    }
    if let Some(s) = arg(&args, "--seed") {
        spec.seed = s;
    }
    let resolve = arg(&args, "--resolve-after").unwrap_or(1) as u32;

    let mut cohort = cohort::generate(&spec);
    // `--without RULE` (repeatable): replay with that rule switched off, to see what it adds.
    let without: Vec<&str> = args
        .iter()
        .zip(args.iter().skip(1))
        .filter(|(a, _)| a.as_str() == "--without")
        .map(|(_, r)| r.as_str())
        .collect();
    if !without.is_empty() {
        let rules: serde_json::Map<String, serde_json::Value> = without
            .iter()
            .map(|r| (r.to_string(), serde_json::json!({"enabled": false})))
            .collect();
        let overrides: PolicyOverrides =
            match serde_json::from_value(serde_json::json!({ "rules": rules })) {
                Ok(o) => o,
                Err(e) => {
                    eprintln!("--without: {e}");
                    std::process::exit(2);
                }
            };
        for p in &mut cohort {
            p.history.policy = p.history.policy.merged(&overrides);
        }
        println!("rules switched off: {}", without.join(", "));
    }
    println!(
        "cohort: {} patients x {} weeks, seed {}, alerts resolved {} day(s) after opening",
        spec.patients, spec.weeks, spec.seed, resolve
    );
    for a in Archetype::ALL {
        let n = cohort.iter().filter(|p| p.archetype == a).count();
        let lapsed = cohort
            .iter()
            .filter(|p| p.archetype == a && !p.lapses.is_empty())
            .count();
        println!("  {:<7} {n:>4} patients, {lapsed} lapsed", a.as_str());
    }
    let f = figures::measure(&cohort, resolve);
    println!();
    println!(
        "pre-lapse slides and silences flagged 1-7 days before the lapse: {}/{} = {:.1} %  (target >= 90 %)",
        f.flagged_early,
        f.pre_lapse_stretches,
        100.0 * f.flagged_share()
    );
    for (a, n, hit) in &f.flagged_by_archetype {
        println!("  {:<7} {hit}/{n}", a.as_str());
    }
    println!(
        "alerts per patient-week, never-lapse patients: {:.3} over {:.1} patient-weeks  (target <= 0.5)",
        f.never_lapse_alerts_per_patient_week, f.never_lapse_patient_weeks
    );
    println!(
        "alerts per bad stretch (slide/silence start to last use): {:.2} over {} stretches  (target 1)",
        f.alerts_per_bad_stretch, f.bad_stretches
    );
    println!(
        "  (distinct rules firing per bad stretch, i.e. alerts with one alert per rule: {:.2})",
        f.rules_per_bad_stretch
    );
    println!(
        "all patients: {} alerts over {:.1} patient-weeks = {:.3} per patient-week",
        f.replay.alerts.len(),
        f.replay.patient_weeks,
        f.replay.alerts_per_patient_week
    );
    println!();
    println!(
        "{:<20} {:>8} {:>8} {:>10} {:>8} {:>6} {:>8} {:>6}",
        "rule", "findings", "patients", "per p-week", "critical", "high", "warning", "info"
    );
    for (rule, s) in &f.replay.per_rule {
        println!(
            "{:<20} {:>8} {:>8} {:>10.3} {:>8} {:>6} {:>8} {:>6}",
            rule,
            s.findings,
            s.patients,
            s.per_patient_week,
            s.by_severity.critical,
            s.by_severity.high,
            s.by_severity.warning,
            s.by_severity.info
        );
    }

    if args.iter().any(|a| a == "--no-timing") {
        return;
    }
    // 1,000 patient-years: 1,000 patients x 52 weeks + 1 day.
    let big = cohort::generate(&CohortSpec {
        patients: 1000,
        weeks: 53,
        seed: spec.seed,
        start: spec.start,
    });
    let patients: Vec<_> = big.into_iter().map(|p| p.history).collect();
    let from = spec.start;
    let to = from + chrono::TimeDelta::days(364);
    let t = Instant::now();
    let r = replay::replay(&patients, from, to, resolve);
    let took = t.elapsed();
    println!();
    println!(
        "replay of 1,000 patient-years ({} check-ins, {} alerts): {:.2} s",
        patients.iter().map(|p| p.check_ins.len()).sum::<usize>(),
        r.alerts.len(),
        took.as_secs_f64()
    );
}
