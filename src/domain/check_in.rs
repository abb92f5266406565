//! The daily check-in as the phone app sends it, and its validation (SPEC §3).

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::validation::FieldError;

/// What set off cravings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// Stress.
    Stress,
    /// Conflict with someone.
    Conflict,
    /// Loneliness.
    Loneliness,
    /// Boredom.
    Boredom,
    /// Physical pain.
    Pain,
    /// People associated with use.
    People,
    /// Places associated with use.
    Places,
    /// A celebration.
    Celebration,
    /// Withdrawal symptoms.
    Withdrawal,
    /// Something else.
    Other,
}

/// The 16 items of the Subjective Opiate Withdrawal Scale, each 0 (not at all) to 4
/// (extremely); every item is answered.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Sows {
    /// I feel anxious (0–4).
    #[schema(value_type = i64, required = true, minimum = 0, maximum = 4)]
    pub anxious: Option<i64>,
    /// I feel like yawning (0–4).
    #[schema(value_type = i64, required = true, minimum = 0, maximum = 4)]
    pub yawning: Option<i64>,
    /// I am perspiring (0–4).
    #[schema(value_type = i64, required = true, minimum = 0, maximum = 4)]
    pub perspiring: Option<i64>,
    /// My eyes are tearing (0–4).
    #[schema(value_type = i64, required = true, minimum = 0, maximum = 4)]
    pub eyes_tearing: Option<i64>,
    /// My nose is running (0–4).
    #[schema(value_type = i64, required = true, minimum = 0, maximum = 4)]
    pub nose_running: Option<i64>,
    /// I have goosebumps (0–4).
    #[schema(value_type = i64, required = true, minimum = 0, maximum = 4)]
    pub goosebumps: Option<i64>,
    /// I am shaking (0–4).
    #[schema(value_type = i64, required = true, minimum = 0, maximum = 4)]
    pub shaking: Option<i64>,
    /// I have hot flushes (0–4).
    #[schema(value_type = i64, required = true, minimum = 0, maximum = 4)]
    pub hot_flushes: Option<i64>,
    /// I have cold flushes (0–4).
    #[schema(value_type = i64, required = true, minimum = 0, maximum = 4)]
    pub cold_flushes: Option<i64>,
    /// My bones and muscles ache (0–4).
    #[schema(value_type = i64, required = true, minimum = 0, maximum = 4)]
    pub bones_aching: Option<i64>,
    /// I feel restless (0–4).
    #[schema(value_type = i64, required = true, minimum = 0, maximum = 4)]
    pub restless: Option<i64>,
    /// I feel nauseous (0–4).
    #[schema(value_type = i64, required = true, minimum = 0, maximum = 4)]
    pub nauseous: Option<i64>,
    /// I feel like vomiting (0–4).
    #[schema(value_type = i64, required = true, minimum = 0, maximum = 4)]
    pub vomiting: Option<i64>,
    /// My muscles twitch (0–4).
    #[schema(value_type = i64, required = true, minimum = 0, maximum = 4)]
    pub muscles_twitching: Option<i64>,
    /// I have stomach cramps (0–4).
    #[schema(value_type = i64, required = true, minimum = 0, maximum = 4)]
    pub stomach_cramps: Option<i64>,
    /// I feel like using now (0–4).
    #[schema(value_type = i64, required = true, minimum = 0, maximum = 4)]
    pub feel_like_using: Option<i64>,
}

impl Sows {
    fn items(&self) -> [(&'static str, Option<i64>); 16] {
        [
            ("anxious", self.anxious),
            ("yawning", self.yawning),
            ("perspiring", self.perspiring),
            ("eyes_tearing", self.eyes_tearing),
            ("nose_running", self.nose_running),
            ("goosebumps", self.goosebumps),
            ("shaking", self.shaking),
            ("hot_flushes", self.hot_flushes),
            ("cold_flushes", self.cold_flushes),
            ("bones_aching", self.bones_aching),
            ("restless", self.restless),
            ("nauseous", self.nauseous),
            ("vomiting", self.vomiting),
            ("muscles_twitching", self.muscles_twitching),
            ("stomach_cramps", self.stomach_cramps),
            ("feel_like_using", self.feel_like_using),
        ]
    }
}

/// One entry of `substances` in the OpenAPI document: what was used, as the patient names it
/// (1–40 characters, not only blanks). Documentation only; the body holds plain strings.
#[derive(Debug, Clone)]
pub struct Substance;

impl utoipa::PartialSchema for Substance {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "What was used, as the patient names it (1–40 characters, not only blanks).",
            ))
            .min_length(Some(1))
            .max_length(Some(40))
            .pattern(Some(
                r"[^\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]",
            ))
            .examples([serde_json::json!("heroin")])
            .into()
    }
}

impl ToSchema for Substance {}

/// The body of `PUT /v1/me/check-ins/{date}`. Unknown fields are refused: a typo in a health
/// record must not vanish.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "craving": 6,
    "mood": 4,
    "exercise_minutes": 20,
    "meals": 2,
    "used_substance": false,
    "sleep_hours": 5.5,
    "anxiety": 7,
    "irritability": 5,
    "loneliness": 8,
    "triggers": ["stress", "loneliness"],
    "took_medication": true,
    "attended_support": false,
    "self_harm_thoughts": false,
    "note": "Rough day at work; called my sponsor.",
    "answered_at": "2026-12-01T21:14:00Z"
}))]
pub struct CheckInInput {
    /// Required. Strongest urge to use today, 0 (none) to 10 (overwhelming).
    #[schema(value_type = i64, required = true, minimum = 0, maximum = 10)]
    pub craving: Option<i64>,
    /// Required. Mood, 0 (very low) to 10 (very good).
    #[schema(value_type = i64, required = true, minimum = 0, maximum = 10)]
    pub mood: Option<i64>,
    /// Required. Minutes of physical activity today, 0–1440.
    #[schema(value_type = i64, required = true, minimum = 0, maximum = 1440)]
    pub exercise_minutes: Option<i64>,
    /// Required. Meals eaten today, 0–10.
    #[schema(value_type = i64, required = true, minimum = 0, maximum = 10)]
    pub meals: Option<i64>,
    /// Required. Any use of opioids or other non-prescribed drugs since the last check-in.
    #[schema(value_type = bool, required = true)]
    pub used_substance: Option<bool>,
    /// What was used (at most 10, each 1–40 characters); only with `used_substance`.
    #[schema(value_type = Option<Vec<Substance>>, max_items = 10)]
    pub substances: Option<Vec<String>>,
    /// Last night's sleep in hours, 0–24, with at most one decimal place.
    #[schema(minimum = 0, maximum = 24)]
    pub sleep_hours: Option<f64>,
    /// Anxiety, 0–10.
    #[schema(minimum = 0, maximum = 10)]
    pub anxiety: Option<i64>,
    /// Irritability (the A of HALT), 0–10.
    #[schema(minimum = 0, maximum = 10)]
    pub irritability: Option<i64>,
    /// Loneliness (the L of HALT), 0–10.
    #[schema(minimum = 0, maximum = 10)]
    pub loneliness: Option<i64>,
    /// What set off cravings.
    pub triggers: Option<Vec<Trigger>>,
    /// Medication for opioid use disorder taken as prescribed; null when not prescribed.
    pub took_medication: Option<bool>,
    /// Went to a support group, NA meeting or therapy session.
    pub attended_support: Option<bool>,
    /// Subjective Opiate Withdrawal Scale (all 16 items, each 0–4), for the detox phase.
    pub withdrawal: Option<Sows>,
    /// Thoughts of harming or killing themselves.
    pub self_harm_thoughts: Option<bool>,
    /// Free text for the counsellor, at most 2000 characters.
    #[schema(max_length = 2000)]
    pub note: Option<String>,
    /// When the patient answered on the device (RFC 3339); at most a day ahead of the
    /// server's clock.
    pub answered_at: Option<DateTime<Utc>>,
}

/// A check-in whose every value is in range.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidCheckIn {
    /// 0–10.
    pub craving: i32,
    /// 0–10.
    pub mood: i32,
    /// 0–1440.
    pub exercise_minutes: i32,
    /// 0–10.
    pub meals: i32,
    /// Any use.
    pub used_substance: bool,
    /// What was used.
    pub substances: Vec<String>,
    /// Hours, one decimal.
    pub sleep_hours: Option<f64>,
    /// 0–10.
    pub anxiety: Option<i32>,
    /// 0–10.
    pub irritability: Option<i32>,
    /// 0–10.
    pub loneliness: Option<i32>,
    /// Distinct triggers.
    pub triggers: Vec<Trigger>,
    /// MOUD taken.
    pub took_medication: Option<bool>,
    /// Support attended.
    pub attended_support: Option<bool>,
    /// The SOWS items by key.
    pub withdrawal: Option<std::collections::BTreeMap<String, i32>>,
    /// SOWS total, 0–64.
    pub withdrawal_score: Option<i32>,
    /// Self-harm thoughts.
    pub self_harm_thoughts: Option<bool>,
    /// Note.
    pub note: Option<String>,
    /// Device time.
    pub answered_at: Option<DateTime<Utc>>,
}

fn range(
    errors: &mut Vec<FieldError>,
    field: &str,
    v: Option<i64>,
    min: i64,
    max: i64,
    required: bool,
) -> Option<i32> {
    match v {
        None if required => {
            errors.push(FieldError::new(field, "is required"));
            None
        }
        None => None,
        Some(x) if x < min || x > max => {
            errors.push(FieldError::new(
                field,
                format!("must be from {min} to {max}"),
            ));
            None
        }
        Some(x) => i32::try_from(x).ok(),
    }
}

/// How far ahead of the server's clock a device's `answered_at` may be: a phone's clock that is
/// off by hours is believable, one a day ahead is not a time the patient answered.
pub const ANSWERED_AT_MAX_AHEAD: TimeDelta = TimeDelta::days(1);

/// The longest note kept, in characters.
pub const NOTE_MAX_CHARS: usize = 2000;

impl CheckInInput {
    /// For a check-in reporting thoughts of self-harm, makes its free text fit instead of
    /// letting it refuse the check-in (which would lose the answer, the alert and the crisis
    /// lines): a note over [`NOTE_MAX_CHARS`] is cut to that length, and substances over 40
    /// characters are cut, blank ones dropped, more than 10 cut to the first 10. Returns what
    /// was changed, field by field; nothing for any other check-in (their free text is
    /// validated as usual, and a 422 lets the patient fix it).
    pub fn fit_free_text_of_a_safety_report(&mut self) -> Vec<FieldError> {
        let mut changed = Vec::new();
        if self.self_harm_thoughts != Some(true) {
            return changed;
        }
        if let Some(note) = &mut self.note {
            if note.chars().count() > NOTE_MAX_CHARS {
                *note = note.chars().take(NOTE_MAX_CHARS).collect();
                changed.push(FieldError::new(
                    "note",
                    format!("was longer than {NOTE_MAX_CHARS} characters; only the first {NOTE_MAX_CHARS} were kept"),
                ));
            }
        }
        if let Some(list) = &mut self.substances {
            let before = list.clone();
            list.retain(|s| !s.trim().is_empty());
            for s in list.iter_mut() {
                if s.trim().chars().count() > 40 {
                    *s = s.trim().chars().take(40).collect();
                }
            }
            list.truncate(10);
            if *list != before {
                changed.push(FieldError::new(
                    "substances",
                    "did not fit (at most 10 entries of 1 to 40 characters); blank entries were dropped, long ones cut to 40 characters and the list to 10",
                ));
            }
        }
        changed
    }

    /// Validates every field against the server's clock, reporting all errors at once.
    pub fn validate(self) -> Result<ValidCheckIn, Vec<FieldError>> {
        self.validate_at(Utc::now())
    }

    /// Validates every field, `now` being the server's time, reporting all errors at once.
    pub fn validate_at(self, now: DateTime<Utc>) -> Result<ValidCheckIn, Vec<FieldError>> {
        let mut e = Vec::new();
        if self
            .answered_at
            .is_some_and(|t| t > now + ANSWERED_AT_MAX_AHEAD)
        {
            e.push(FieldError::new(
                "answered_at",
                format!(
                    "is more than a day ahead of the server's time ({}); check the device's clock",
                    now.format("%Y-%m-%dT%H:%M:%SZ")
                ),
            ));
        }
        let craving = range(&mut e, "craving", self.craving, 0, 10, true);
        let mood = range(&mut e, "mood", self.mood, 0, 10, true);
        let exercise = range(
            &mut e,
            "exercise_minutes",
            self.exercise_minutes,
            0,
            1440,
            true,
        );
        let meals = range(&mut e, "meals", self.meals, 0, 10, true);
        if self.used_substance.is_none() {
            e.push(FieldError::new("used_substance", "is required"));
        }
        let used = self.used_substance.unwrap_or(false);
        let anxiety = range(&mut e, "anxiety", self.anxiety, 0, 10, false);
        let irritability = range(&mut e, "irritability", self.irritability, 0, 10, false);
        let loneliness = range(&mut e, "loneliness", self.loneliness, 0, 10, false);

        let mut substances = Vec::new();
        if let Some(list) = self.substances {
            if !list.is_empty() && !used {
                e.push(FieldError::new(
                    "substances",
                    "is only meaningful when used_substance is true",
                ));
            }
            if list.len() > 10 {
                e.push(FieldError::new("substances", "must have at most 10 items"));
            }
            for (i, s) in list.iter().enumerate() {
                let t = s.trim();
                if t.is_empty() || s.chars().count() > 40 {
                    e.push(FieldError::new(
                        format!("substances[{i}]"),
                        "must be 1 to 40 characters",
                    ));
                } else {
                    substances.push(t.to_owned());
                }
            }
        }

        let sleep_hours = match self.sleep_hours {
            Some(h) if !h.is_finite() || !(0.0..=24.0).contains(&h) => {
                e.push(FieldError::new("sleep_hours", "must be from 0 to 24"));
                None
            }
            // One decimal, as the contract says: 4.96 h is not silently made 5.0 h (which
            // would move it across the poor-sleep threshold).
            Some(h) if ((h * 10.0).round() - h * 10.0).abs() > 1e-6 => {
                e.push(FieldError::new(
                    "sleep_hours",
                    "must have at most one decimal place",
                ));
                None
            }
            Some(h) => Some((h * 10.0).round() / 10.0),
            None => None,
        };

        let mut triggers = self.triggers.unwrap_or_default();
        triggers.sort();
        triggers.dedup();

        let (withdrawal, withdrawal_score) = match self.withdrawal {
            None => (None, None),
            Some(sows) => {
                let mut map = std::collections::BTreeMap::new();
                for (key, v) in sows.items() {
                    if let Some(x) = range(&mut e, &format!("withdrawal.{key}"), v, 0, 4, true) {
                        map.insert(key.to_owned(), x);
                    }
                }
                if map.len() == 16 {
                    let total = map.values().sum();
                    (Some(map), Some(total))
                } else {
                    (None, None)
                }
            }
        };

        let note = match self.note {
            Some(n) if n.chars().count() > NOTE_MAX_CHARS => {
                e.push(FieldError::new(
                    "note",
                    format!("must be at most {NOTE_MAX_CHARS} characters"),
                ));
                None
            }
            Some(n) if n.trim().is_empty() => None,
            other => other,
        };

        match (craving, mood, exercise, meals) {
            (Some(craving), Some(mood), Some(exercise_minutes), Some(meals)) if e.is_empty() => {
                Ok(ValidCheckIn {
                    craving,
                    mood,
                    exercise_minutes,
                    meals,
                    used_substance: used,
                    substances,
                    sleep_hours,
                    anxiety,
                    irritability,
                    loneliness,
                    triggers,
                    took_medication: self.took_medication,
                    attended_support: self.attended_support,
                    withdrawal,
                    withdrawal_score,
                    self_harm_thoughts: self.self_harm_thoughts,
                    note,
                    answered_at: self.answered_at,
                })
            }
            _ => Err(e),
        }
    }
}

/// Whether a check-in date is accepted: from 7 days before the patient's local today up to
/// one day after it (travel across the date line). Returns whether it is late.
pub fn check_date_window(date: NaiveDate, patient_today: NaiveDate) -> Result<bool, FieldError> {
    if date < patient_today - TimeDelta::days(7) {
        return Err(FieldError::new(
            "date",
            format!("is more than 7 days before your local today ({patient_today}); check-ins can be sent up to 7 days late"),
        ));
    }
    if date > patient_today + TimeDelta::days(1) {
        return Err(FieldError::new(
            "date",
            format!("is in the future (your local today is {patient_today})"),
        ));
    }
    Ok(date < patient_today)
}

/// Where a stored check-in came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckInSource {
    /// Sent by the patient from the app.
    App,
    /// Imported by the care team from the clinic's earlier system.
    Import,
}

impl CheckInSource {
    /// The stored text form.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::App => "app",
            Self::Import => "import",
        }
    }

    /// Reads the stored text form; anything else is the app's (the column's default).
    pub fn parse(s: &str) -> Self {
        match s {
            "import" => Self::Import,
            _ => Self::App,
        }
    }
}

/// At most this many check-ins in one history import.
pub const IMPORT_MAX_CHECK_INS: usize = 5000;

/// The longest `source` label of a history import, in characters.
pub const IMPORT_SOURCE_MAX_CHARS: usize = 100;

/// One entry of a history import as read from the request: its `date` as sent, and its other
/// fields read into a check-in (or the error that stopped reading them, naming the field
/// within the entry, e.g. `cravings`).
#[derive(Debug, Clone)]
pub struct ImportDraft {
    /// The `date` member as sent, if any.
    pub date: Option<serde_json::Value>,
    /// The check-in fields.
    pub fields: Result<CheckInInput, FieldError>,
}

/// A validated history import.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidImport {
    /// The label of the clinic's earlier system, trimmed.
    pub source: String,
    /// The check-ins by date: distinct dates, oldest first.
    pub days: Vec<(NaiveDate, ValidCheckIn)>,
}

fn import_date(
    value: Option<&serde_json::Value>,
    patient_today: NaiveDate,
) -> Result<NaiveDate, String> {
    let raw = match value {
        None | Some(serde_json::Value::Null) => return Err("is required".into()),
        Some(serde_json::Value::String(s)) => s,
        Some(_) => return Err("must be a date like 2026-11-22".into()),
    };
    let date = NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map_err(|_| "must be a date like 2026-11-22".to_owned())?;
    if date > patient_today {
        return Err(format!(
            "is in the future (the patient's local today is {patient_today}); only history can be imported"
        ));
    }
    Ok(date)
}

/// Validates a history import exactly as live check-ins are validated (the same fields and
/// rules), except that any date up to the patient's local `patient_today` is accepted. Every
/// error is reported at once, each naming `check_ins[i].field`; a date may appear only once.
pub fn validate_import(
    source: &str,
    drafts: Vec<ImportDraft>,
    patient_today: NaiveDate,
) -> Result<ValidImport, Vec<FieldError>> {
    let mut errors = Vec::new();
    let label = source.trim();
    if label.is_empty() || source.chars().count() > IMPORT_SOURCE_MAX_CHARS {
        errors.push(FieldError::new(
            "source",
            format!("must be 1 to {IMPORT_SOURCE_MAX_CHARS} characters naming the system the history comes from"),
        ));
    }
    if drafts.is_empty() {
        errors.push(FieldError::new(
            "check_ins",
            "must hold at least one check-in",
        ));
        return Err(errors);
    }
    if drafts.len() > IMPORT_MAX_CHECK_INS {
        errors.push(FieldError::new(
            "check_ins",
            format!(
                "must hold at most {IMPORT_MAX_CHECK_INS} check-ins (this request has {}); send the history in several requests",
                drafts.len()
            ),
        ));
        return Err(errors);
    }
    let mut seen = std::collections::HashMap::with_capacity(drafts.len());
    let mut days = Vec::with_capacity(drafts.len());
    for (i, draft) in drafts.into_iter().enumerate() {
        let at = |field: &str| format!("check_ins[{i}].{field}");
        let date = match import_date(draft.date.as_ref(), patient_today) {
            Ok(d) => match seen.insert(d, i) {
                Some(first) => {
                    errors.push(FieldError::new(
                        at("date"),
                        format!("{d} appears more than once (also check_ins[{first}])"),
                    ));
                    seen.insert(d, first);
                    None
                }
                None => Some(d),
            },
            Err(message) => {
                errors.push(FieldError::new(at("date"), message));
                None
            }
        };
        let valid = match draft.fields {
            Err(e) => {
                errors.push(FieldError::new(at(&e.field), e.message));
                None
            }
            Ok(input) => match input.validate() {
                Ok(v) => Some(v),
                Err(es) => {
                    errors.extend(
                        es.into_iter()
                            .map(|e| FieldError::new(at(&e.field), e.message)),
                    );
                    None
                }
            },
        };
        if let (Some(d), Some(v)) = (date, valid) {
            days.push((d, v));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    days.sort_by_key(|(d, _)| *d);
    Ok(ValidImport {
        source: label.to_owned(),
        days,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> CheckInInput {
        serde_json::from_value(v).unwrap()
    }

    fn base() -> serde_json::Value {
        json!({"craving": 3, "mood": 6, "exercise_minutes": 20, "meals": 3, "used_substance": false})
    }

    fn fields(r: Result<ValidCheckIn, Vec<FieldError>>) -> Vec<String> {
        r.err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn a_safety_report_is_never_refused_for_its_free_text() {
        let mut v = base();
        v["self_harm_thoughts"] = json!(true);
        v["used_substance"] = json!(true);
        v["note"] = json!("x".repeat(2001));
        v["substances"] = json!([
            " ",
            "y".repeat(41),
            "a",
            "b",
            "c",
            "d",
            "e",
            "f",
            "g",
            "h",
            "i",
            "j"
        ]);
        let mut input = parse(v);
        let changed: Vec<String> = input
            .fit_free_text_of_a_safety_report()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(changed, vec!["note", "substances"]);
        let valid = input.validate().unwrap();
        assert_eq!(valid.note.unwrap().chars().count(), 2000);
        assert_eq!(valid.substances.len(), 10);
        assert_eq!(valid.substances[0], "y".repeat(40));

        // At the limit nothing is changed.
        let mut v = base();
        v["self_harm_thoughts"] = json!(true);
        v["note"] = json!("x".repeat(2000));
        assert!(parse(v).fit_free_text_of_a_safety_report().is_empty());

        // Any other check-in keeps its 422.
        let mut v = base();
        v["note"] = json!("x".repeat(2001));
        let mut input = parse(v);
        assert!(input.fit_free_text_of_a_safety_report().is_empty());
        assert_eq!(fields(input.validate()), vec!["note"]);
    }

    #[test]
    fn answered_at_may_be_up_to_a_day_ahead_of_the_server() {
        let now: DateTime<Utc> = "2026-12-02T10:00:00Z".parse().unwrap();
        let at = |t: &str| {
            let mut v = base();
            v["answered_at"] = json!(t);
            parse(v).validate_at(now)
        };
        assert!(at("2026-12-03T09:59:59Z").is_ok());
        assert!(at("2026-12-03T10:00:00Z").is_ok());
        assert_eq!(fields(at("2026-12-03T10:00:01Z")), vec!["answered_at"]);
        assert_eq!(fields(at("3000-01-01T00:00:00Z")), vec!["answered_at"]);
        assert!(at("2020-01-01T00:00:00Z").is_ok());
    }

    #[test]
    fn the_minimal_check_in_is_valid() {
        let v = parse(base()).validate().unwrap();
        assert_eq!(v.craving, 3);
        assert!(!v.used_substance);
    }

    #[test]
    fn every_missing_required_field_is_reported() {
        assert_eq!(
            fields(parse(json!({})).validate()),
            vec![
                "craving",
                "mood",
                "exercise_minutes",
                "meals",
                "used_substance"
            ]
        );
    }

    #[test]
    fn range_boundaries() {
        for (field, ok, bad) in [
            ("craving", 10, 11),
            ("mood", 0, -1),
            ("exercise_minutes", 1440, 1441),
            ("meals", 10, 11),
            ("anxiety", 10, 11),
            ("loneliness", 0, -1),
        ] {
            let mut v = base();
            v[field] = json!(ok);
            assert!(parse(v.clone()).validate().is_ok(), "{field}={ok}");
            v[field] = json!(bad);
            assert_eq!(fields(parse(v).validate()), vec![field], "{field}={bad}");
        }
        let mut v = base();
        v["sleep_hours"] = json!(24.0);
        assert_eq!(parse(v.clone()).validate().unwrap().sleep_hours, Some(24.0));
        v["sleep_hours"] = json!(7.3);
        assert_eq!(parse(v.clone()).validate().unwrap().sleep_hours, Some(7.3));
        v["sleep_hours"] = json!(4.96);
        assert_eq!(fields(parse(v.clone()).validate()), vec!["sleep_hours"]);
        v["sleep_hours"] = json!(24.1);
        assert_eq!(fields(parse(v).validate()), vec!["sleep_hours"]);
    }

    #[test]
    fn unknown_fields_are_refused() {
        let mut v = base();
        v["cravings"] = json!(3);
        assert!(serde_json::from_value::<CheckInInput>(v).is_err());
        let mut v = base();
        v["withdrawal"] = json!({"yawnin": 1});
        assert!(serde_json::from_value::<CheckInInput>(v).is_err());
    }

    #[test]
    fn sows_needs_all_items_in_range_and_is_totalled() {
        let keys = [
            "anxious",
            "yawning",
            "perspiring",
            "eyes_tearing",
            "nose_running",
            "goosebumps",
            "shaking",
            "hot_flushes",
            "cold_flushes",
            "bones_aching",
            "restless",
            "nauseous",
            "vomiting",
            "muscles_twitching",
            "stomach_cramps",
            "feel_like_using",
        ];
        let mut w = serde_json::Map::new();
        for k in keys {
            w.insert(k.into(), json!(2));
        }
        let mut v = base();
        v["withdrawal"] = json!(w.clone());
        assert_eq!(
            parse(v.clone()).validate().unwrap().withdrawal_score,
            Some(32)
        );
        w.insert("shaking".into(), json!(5));
        w.remove("yawning");
        v["withdrawal"] = json!(w);
        assert_eq!(
            fields(parse(v).validate()),
            vec!["withdrawal.yawning", "withdrawal.shaking"]
        );
    }

    #[test]
    fn substances_only_with_use_and_bounded() {
        let mut v = base();
        v["substances"] = json!(["heroin"]);
        assert_eq!(fields(parse(v.clone()).validate()), vec!["substances"]);
        v["used_substance"] = json!(true);
        assert!(parse(v.clone()).validate().is_ok());
        v["substances"] = json!(["x".repeat(41)]);
        assert_eq!(fields(parse(v).validate()), vec!["substances[0]"]);
    }

    #[test]
    fn date_window() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
        assert_eq!(check_date_window(today, today), Ok(false));
        assert_eq!(
            check_date_window(today - TimeDelta::days(7), today),
            Ok(true)
        );
        assert!(check_date_window(today - TimeDelta::days(8), today).is_err());
        assert_eq!(
            check_date_window(today + TimeDelta::days(1), today),
            Ok(false)
        );
        assert!(check_date_window(today + TimeDelta::days(2), today).is_err());
    }

    fn draft(date: &str, v: serde_json::Value) -> ImportDraft {
        ImportDraft {
            date: Some(json!(date)),
            fields: Ok(parse(v)),
        }
    }

    fn import_fields(r: Result<ValidImport, Vec<FieldError>>) -> Vec<String> {
        r.err()
            .unwrap_or_default()
            .into_iter()
            .map(|e| e.field)
            .collect()
    }

    #[test]
    fn an_import_accepts_any_past_date_up_to_today_and_sorts_by_date() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
        let v = validate_import(
            "  OldCare EHR ",
            vec![
                draft("2026-11-22", base()),
                draft("2019-02-03", base()),
                draft("2026-11-21", base()),
            ],
            today,
        )
        .unwrap();
        assert_eq!(v.source, "OldCare EHR");
        let dates: Vec<String> = v.days.iter().map(|(d, _)| d.to_string()).collect();
        assert_eq!(dates, vec!["2019-02-03", "2026-11-21", "2026-11-22"]);
        assert_eq!(
            import_fields(validate_import(
                "x",
                vec![draft("2026-11-23", base())],
                today
            )),
            vec!["check_ins[0].date"]
        );
    }

    #[test]
    fn import_errors_name_the_entry_and_are_all_collected() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
        let mut bad = base();
        bad["craving"] = json!(11);
        bad["mood"] = json!(-1);
        let drafts = vec![
            draft("2026-11-01", base()),
            draft("2026-11-02", bad),
            ImportDraft {
                date: None,
                fields: Err(FieldError::new("cravings", "is not a known field")),
            },
            draft("2026-11-01", base()),
            ImportDraft {
                date: Some(json!("01/11/2026")),
                fields: Ok(parse(base())),
            },
            ImportDraft {
                date: Some(json!(20261101)),
                fields: Ok(parse(json!({}))),
            },
        ];
        assert_eq!(
            import_fields(validate_import("", drafts, today)),
            vec![
                "source",
                "check_ins[1].craving",
                "check_ins[1].mood",
                "check_ins[2].date",
                "check_ins[2].cravings",
                "check_ins[3].date",
                "check_ins[4].date",
                "check_ins[5].date",
                "check_ins[5].craving",
                "check_ins[5].mood",
                "check_ins[5].exercise_minutes",
                "check_ins[5].meals",
                "check_ins[5].used_substance",
            ]
        );
    }

    #[test]
    fn an_import_holds_one_to_5000_check_ins_and_a_short_source() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
        let many = |n: usize| -> Vec<ImportDraft> {
            (0..n)
                .map(|i| draft(&(today - TimeDelta::days(i as i64)).to_string(), base()))
                .collect()
        };
        assert_eq!(
            validate_import("x", many(5000), today).unwrap().days.len(),
            5000
        );
        assert_eq!(
            import_fields(validate_import("x", many(5001), today)),
            vec!["check_ins"]
        );
        assert_eq!(
            import_fields(validate_import("x", Vec::new(), today)),
            vec!["check_ins"]
        );
        assert!(validate_import(&"é".repeat(100), many(1), today).is_ok());
        assert_eq!(
            import_fields(validate_import(&"é".repeat(101), many(1), today)),
            vec!["source"]
        );
        assert_eq!(
            import_fields(validate_import("   ", many(1), today)),
            vec!["source"]
        );
    }

    #[test]
    fn sources_read_back_as_stored() {
        for s in [CheckInSource::App, CheckInSource::Import] {
            assert_eq!(CheckInSource::parse(s.as_str()), s);
        }
    }
}
