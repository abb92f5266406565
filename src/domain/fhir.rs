//! The FHIR R4 (4.0.1) form of a patient's record (SPEC §10): the daily check-in as a
//! `Questionnaire`, each check-in as a `QuestionnaireResponse` and `Observation`s, the patient
//! as a `Patient`, each consent as a `Consent`; and the local `CodeSystem`s for what has no
//! standard code.
//!
//! Every check-in field is mapped in one table, [`CHECK_IN`]: its item in the questionnaire
//! (the `linkId` is the field's name), its value type, and whether it also becomes an
//! `Observation`, coded with LOINC where LOINC has a code for the same measure (sleep duration
//! 93832-4, exercise duration 55411-3) and always with the local code system
//! [`check_in_system`] (`{public_url}/fhir/CodeSystem/daily-check-in`), whose codes are the
//! field names. No LOINC code is claimed where the question is not the one LOINC describes
//! (PHQ-9 item 9 asks about the last two weeks, not today; SOWS has no LOINC panel we could
//! vouch for), so those fields carry the local code only.
//!
//! The functions here are pure: they take the API's own JSON views (the check-in of
//! `GET /v1/me/check-ins`, the consent of `GET /v1/me/consents`) and the service's public URL,
//! and give FHIR JSON.

use serde_json::{json, Map, Value};

/// The id of the daily check-in `Questionnaire` and of its `CodeSystem`.
pub const DAILY_CHECK_IN: &str = "daily-check-in";
/// The id of the `CodeSystem` of data categories (the unit of consent).
pub const DATA_CATEGORY: &str = "data-category";
/// The media type of every FHIR answer.
pub const MEDIA_TYPE: &str = "application/fhir+json";

const LOINC: &str = "http://loinc.org";
const UCUM: &str = "http://unitsofmeasure.org";
const OBSERVATION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
const EXT_MIN: &str = "http://hl7.org/fhir/StructureDefinition/minValue";
const EXT_MAX: &str = "http://hl7.org/fhir/StructureDefinition/maxValue";
const PART2_URI: &str = "https://www.ecfr.gov/current/title-42/chapter-I/subchapter-A/part-2";

/// How a check-in field is answered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    /// The check-in's local date (`valueDate`).
    Date,
    /// An integer in a range (`valueInteger`).
    Integer(i64, i64),
    /// A decimal in a range (`valueDecimal`; `valueQuantity` in its `Observation`).
    Decimal(f64, f64),
    /// Yes or no (`valueBoolean`).
    Boolean,
    /// Free text (`valueString`, item type `text`).
    Text,
    /// A list of short strings (item type `string`, repeating).
    Strings,
    /// A list of [`TRIGGERS`] (item type `choice`, repeating, `valueCoding`).
    Triggers,
    /// The 16 [`SOWS`] items (an item of type `group`).
    Withdrawal,
}

/// One check-in field and its FHIR form.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// The field's name in the API; the item's `linkId` and its code in [`check_in_system`].
    pub name: &'static str,
    /// The question, as the item's `text` and the code's display.
    pub text: &'static str,
    /// How it is answered.
    pub kind: Kind,
    /// Every check-in answers it.
    pub required: bool,
    /// The LOINC code and display, where LOINC has one for this measure.
    pub loinc: Option<(&'static str, &'static str)>,
    /// The UCUM unit of its `Observation`'s `valueQuantity`.
    pub unit: Option<&'static str>,
    /// Whether it also becomes an `Observation`.
    pub observation: bool,
}

const fn field(name: &'static str, text: &'static str, kind: Kind, required: bool) -> Field {
    Field {
        name,
        text,
        kind,
        required,
        loinc: None,
        unit: None,
        observation: false,
    }
}

const fn observed(f: Field) -> Field {
    Field {
        observation: true,
        ..f
    }
}

/// Every check-in field, in the questionnaire's order (SPEC §3; `date` is the path's).
pub const CHECK_IN: &[Field] = &[
    field("date", "The day this check-in is for", Kind::Date, true),
    observed(field(
        "craving",
        "Strongest urge to use today (0 none, 10 overwhelming)",
        Kind::Integer(0, 10),
        true,
    )),
    observed(field(
        "mood",
        "Mood today (0 very low, 10 very good)",
        Kind::Integer(0, 10),
        true,
    )),
    Field {
        loinc: Some(("55411-3", "Exercise duration")),
        unit: Some("min"),
        ..observed(field(
            "exercise_minutes",
            "Minutes of physical activity today",
            Kind::Integer(0, 1440),
            true,
        ))
    },
    observed(field(
        "meals",
        "Meals eaten today",
        Kind::Integer(0, 10),
        true,
    )),
    observed(field(
        "used_substance",
        "Any use of opioids or other non-prescribed drugs since the last check-in",
        Kind::Boolean,
        true,
    )),
    field("substances", "What was used", Kind::Strings, false),
    Field {
        loinc: Some(("93832-4", "Sleep duration")),
        unit: Some("h"),
        ..observed(field(
            "sleep_hours",
            "Hours of sleep last night",
            Kind::Decimal(0.0, 24.0),
            false,
        ))
    },
    observed(field(
        "anxiety",
        "Anxiety today (0 none, 10 extreme)",
        Kind::Integer(0, 10),
        false,
    )),
    observed(field(
        "irritability",
        "Irritability today (0 none, 10 extreme)",
        Kind::Integer(0, 10),
        false,
    )),
    observed(field(
        "loneliness",
        "Loneliness today (0 none, 10 extreme)",
        Kind::Integer(0, 10),
        false,
    )),
    field("triggers", "What set off cravings", Kind::Triggers, false),
    observed(field(
        "took_medication",
        "Medication for opioid use disorder taken as prescribed (unanswered: not prescribed)",
        Kind::Boolean,
        false,
    )),
    observed(field(
        "attended_support",
        "Went to a support group, NA meeting or therapy session",
        Kind::Boolean,
        false,
    )),
    field(
        "withdrawal",
        "Subjective Opiate Withdrawal Scale (SOWS), each item 0 not at all to 4 extremely",
        Kind::Withdrawal,
        false,
    ),
    observed(field(
        "withdrawal_score",
        "SOWS total (0-64), calculated from the items",
        Kind::Integer(0, 64),
        false,
    )),
    observed(field(
        "self_harm_thoughts",
        "Thoughts of harming or killing yourself",
        Kind::Boolean,
        false,
    )),
    field("note", "A note for your counsellor", Kind::Text, false),
];

/// The SOWS items: key (code `withdrawal.<key>`) and statement.
pub const SOWS: [(&str, &str); 16] = [
    ("anxious", "I feel anxious"),
    ("yawning", "I feel like yawning"),
    ("perspiring", "I am perspiring"),
    ("eyes_tearing", "My eyes are tearing"),
    ("nose_running", "My nose is running"),
    ("goosebumps", "I have goosebumps"),
    ("shaking", "I am shaking"),
    ("hot_flushes", "I have hot flushes"),
    ("cold_flushes", "I have cold flushes"),
    ("bones_aching", "My bones and muscles ache"),
    ("restless", "I feel restless"),
    ("nauseous", "I feel nauseous"),
    ("vomiting", "I feel like vomiting"),
    ("muscles_twitching", "My muscles twitch"),
    ("stomach_cramps", "I have stomach cramps"),
    ("feel_like_using", "I feel like using now"),
];

/// The triggers (code `trigger.<value>`) and their displays.
pub const TRIGGERS: [(&str, &str); 10] = [
    ("stress", "Stress"),
    ("conflict", "Conflict with someone"),
    ("loneliness", "Loneliness"),
    ("boredom", "Boredom"),
    ("pain", "Physical pain"),
    ("people", "People associated with use"),
    ("places", "Places associated with use"),
    ("celebration", "A celebration"),
    ("withdrawal", "Withdrawal symptoms"),
    ("other", "Something else"),
];

/// The canonical URL of the daily check-in `Questionnaire`.
pub fn questionnaire_url(base: &str) -> String {
    format!("{base}/fhir/Questionnaire/{DAILY_CHECK_IN}")
}

/// The URL of the local `CodeSystem` of check-in codes.
pub fn check_in_system(base: &str) -> String {
    format!("{base}/fhir/CodeSystem/{DAILY_CHECK_IN}")
}

/// The URL of the local `CodeSystem` of data categories.
pub fn category_system(base: &str) -> String {
    format!("{base}/fhir/CodeSystem/{DATA_CATEGORY}")
}

fn coding(system: &str, code: &str, display: &str) -> Value {
    json!({"system": system, "code": code, "display": display})
}

fn field_codings(base: &str, f: &Field) -> Vec<Value> {
    let mut codings = Vec::new();
    if let Some((code, display)) = f.loinc {
        codings.push(coding(LOINC, code, display));
    }
    codings.push(coding(&check_in_system(base), f.name, f.text));
    codings
}

fn integer_range(lo: i64, hi: i64) -> Value {
    json!([{"url": EXT_MIN, "valueInteger": lo}, {"url": EXT_MAX, "valueInteger": hi}])
}

fn item_type(kind: Kind) -> &'static str {
    match kind {
        Kind::Date => "date",
        Kind::Integer(..) => "integer",
        Kind::Decimal(..) => "decimal",
        Kind::Boolean => "boolean",
        Kind::Text => "text",
        Kind::Strings => "string",
        Kind::Triggers => "choice",
        Kind::Withdrawal => "group",
    }
}

/// The daily check-in `Questionnaire`.
pub fn questionnaire(base: &str) -> Value {
    let system = check_in_system(base);
    let items: Vec<Value> = CHECK_IN
        .iter()
        .map(|f| {
            let mut item = Map::new();
            item.insert("linkId".into(), json!(f.name));
            item.insert("code".into(), json!(field_codings(base, f)));
            item.insert("text".into(), json!(f.text));
            item.insert("type".into(), json!(item_type(f.kind)));
            item.insert("required".into(), json!(f.required));
            match f.kind {
                Kind::Integer(lo, hi) => {
                    item.insert("extension".into(), integer_range(lo, hi));
                }
                Kind::Decimal(lo, hi) => {
                    item.insert(
                        "extension".into(),
                        json!([{"url": EXT_MIN, "valueDecimal": lo},
                               {"url": EXT_MAX, "valueDecimal": hi}]),
                    );
                }
                Kind::Strings => {
                    item.insert("repeats".into(), json!(true));
                    item.insert("maxLength".into(), json!(40));
                    item.insert(
                        "enableWhen".into(),
                        json!([{"question": "used_substance", "operator": "=",
                                "answerBoolean": true}]),
                    );
                }
                Kind::Text => {
                    item.insert("maxLength".into(), json!(2000));
                }
                Kind::Triggers => {
                    item.insert("repeats".into(), json!(true));
                    let options: Vec<Value> = TRIGGERS
                        .iter()
                        .map(|(t, d)| json!({"valueCoding": coding(&system, &format!("trigger.{t}"), d)}))
                        .collect();
                    item.insert("answerOption".into(), json!(options));
                }
                Kind::Withdrawal => {
                    let sub: Vec<Value> = SOWS
                        .iter()
                        .map(|(k, t)| {
                            let code = format!("withdrawal.{k}");
                            json!({"linkId": code, "code": [coding(&system, &code, t)],
                                   "text": t, "type": "integer", "required": true,
                                   "extension": integer_range(0, 4)})
                        })
                        .collect();
                    item.insert("item".into(), json!(sub));
                }
                Kind::Date | Kind::Boolean => {}
            }
            if f.name == "withdrawal_score" {
                item.insert("readOnly".into(), json!(true));
            }
            Value::Object(item)
        })
        .collect();
    json!({
        "resourceType": "Questionnaire",
        "id": DAILY_CHECK_IN,
        "url": questionnaire_url(base),
        "version": "1",
        "name": "DailyCheckIn",
        "title": "Daily check-in",
        "status": "active",
        "subjectType": ["Patient"],
        "publisher": "aftercare",
        "description": "The daily check-in a patient in recovery from opioid use answers in the aftercare app: craving, mood, activity, sleep, use, medication, support, withdrawal (SOWS) and safety.",
        "item": items,
    })
}

/// The local `CodeSystem` with this id (`daily-check-in` or `data-category`), if there is one.
pub fn code_system(base: &str, id: &str) -> Option<Value> {
    let (url, name, title, description, concepts) = match id {
        DAILY_CHECK_IN => {
            let mut concepts: Vec<Value> = CHECK_IN
                .iter()
                .map(|f| json!({"code": f.name, "display": f.text}))
                .collect();
            concepts.extend(SOWS.iter().map(
                |(k, t)| json!({"code": format!("withdrawal.{k}"), "display": format!("SOWS: {t}")}),
            ));
            concepts.extend(TRIGGERS.iter().map(
                |(t, d)| json!({"code": format!("trigger.{t}"), "display": format!("Trigger: {d}")}),
            ));
            (
                check_in_system(base),
                "DailyCheckInCodes",
                "aftercare daily check-in codes",
                "The questions of the aftercare daily check-in (codes are the API's field names), the SOWS items (withdrawal.<item>) and the craving triggers (trigger.<trigger>).",
                concepts,
            )
        }
        DATA_CATEGORY => (
            category_system(base),
            "DataCategories",
            "aftercare data categories",
            "The categories of a patient's data that a patient consents to disclose to an integration (42 CFR Part 2).",
            crate::domain::categories::ALL
                .iter()
                .map(|c| json!({"code": c.as_str(), "display": c.as_str(), "definition": c.description()}))
                .collect(),
        ),
        _ => return None,
    };
    Some(json!({
        "resourceType": "CodeSystem",
        "id": id,
        "url": url,
        "version": "1",
        "name": name,
        "title": title,
        "status": "active",
        "publisher": "aftercare",
        "description": description,
        "caseSensitive": true,
        "content": "complete",
        "count": concepts.len(),
        "concept": concepts,
    }))
}

/// A reference to a resource in the same bundle by its `fullUrl`.
fn reference(id: &str) -> Value {
    json!({"reference": format!("urn:uuid:{id}")})
}

/// A bundle entry.
pub fn entry(resource: Value) -> Value {
    let id = resource["id"].as_str().unwrap_or_default().to_owned();
    json!({"fullUrl": format!("urn:uuid:{id}"), "resource": resource})
}

/// The patient.
pub fn patient(
    id: &str,
    display_name: &str,
    email: &str,
    country: Option<&str>,
    care_team: &[&str],
) -> Value {
    let mut p = json!({
        "resourceType": "Patient",
        "id": id,
        "name": [{"text": display_name}],
        "telecom": [{"system": "email", "value": email}],
    });
    if let Some(c) = country {
        p["address"] = json!([{"country": c}]);
    }
    if !care_team.is_empty() {
        p["generalPractitioner"] = care_team.iter().map(|n| json!({"display": n})).collect();
    }
    p
}

fn present(v: &Value) -> bool {
    !(v.is_null() || v.as_array().is_some_and(|a| a.is_empty()))
}

/// The answers of one item.
fn answers(base: &str, f: &Field, v: &Value) -> Vec<Value> {
    let system = check_in_system(base);
    match f.kind {
        Kind::Date => vec![json!({"valueDate": v})],
        Kind::Integer(..) => vec![json!({"valueInteger": v})],
        Kind::Decimal(..) => vec![json!({"valueDecimal": v})],
        Kind::Boolean => vec![json!({"valueBoolean": v})],
        Kind::Text => vec![json!({"valueString": v})],
        Kind::Strings => v
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| json!({"valueString": s}))
            .collect(),
        Kind::Triggers => v
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(|t| {
                let display = TRIGGERS.iter().find(|(k, _)| *k == t).map_or(t, |(_, d)| d);
                json!({"valueCoding": coding(&system, &format!("trigger.{t}"), display)})
            })
            .collect(),
        Kind::Withdrawal => Vec::new(),
    }
}

fn sows_answers(v: &Value) -> impl Iterator<Item = (&'static str, &'static str, &Value)> {
    SOWS.iter()
        .filter_map(move |(k, t)| v.get(*k).filter(|a| a.is_i64()).map(|a| (*k, *t, a)))
}

fn question_item(base: &str, f: &Field, v: &Value) -> Value {
    if f.kind == Kind::Withdrawal {
        let items: Vec<Value> = sows_answers(v)
            .map(|(k, t, a)| {
                json!({"linkId": format!("withdrawal.{k}"), "text": t,
                       "answer": [{"valueInteger": a}]})
            })
            .collect();
        return json!({"linkId": f.name, "text": f.text, "item": items});
    }
    json!({"linkId": f.name, "text": f.text, "answer": answers(base, f, v)})
}

fn observation_value(f: &Field, v: &Value) -> (&'static str, Value) {
    match (f.kind, f.unit) {
        (Kind::Decimal(..) | Kind::Integer(..), Some(unit)) => (
            "valueQuantity",
            json!({"value": v, "unit": unit, "system": UCUM, "code": unit}),
        ),
        (Kind::Boolean, _) => ("valueBoolean", v.clone()),
        (Kind::Decimal(..), None) => ("valueQuantity", json!({ "value": v })),
        _ => ("valueInteger", v.clone()),
    }
}

/// A check-in (the API's JSON view) as bundle entries: its `QuestionnaireResponse`, then an
/// `Observation` for each coded field it answers. `ids` gives each `Observation` its id.
pub fn check_in_entries(
    base: &str,
    patient_id: &str,
    check_in: &Value,
    check_in_id: &str,
    mut ids: impl FnMut() -> String,
) -> Vec<Value> {
    let date = &check_in["date"];
    let authored = if present(&check_in["answered_at"]) {
        &check_in["answered_at"]
    } else {
        &check_in["received_at"]
    };
    let items: Vec<Value> = CHECK_IN
        .iter()
        .filter(|f| present(&check_in[f.name]))
        .map(|f| question_item(base, f, &check_in[f.name]))
        .collect();
    let response = json!({
        "resourceType": "QuestionnaireResponse",
        "id": check_in_id,
        "meta": {
            "versionId": check_in["version"].to_string(),
            "lastUpdated": check_in["updated_at"],
        },
        "questionnaire": questionnaire_url(base),
        "status": "completed",
        "subject": reference(patient_id),
        "authored": authored,
        "item": items,
    });
    let mut entries = vec![entry(response)];
    let category = json!([{"coding": [coding(OBSERVATION_CATEGORY, "survey", "Survey")]}]);
    for f in CHECK_IN.iter().filter(|f| f.observation) {
        let v = &check_in[f.name];
        if !present(v) {
            continue;
        }
        let (key, value) = observation_value(f, v);
        let mut obs = json!({
            "resourceType": "Observation",
            "id": ids(),
            "status": "final",
            "category": category,
            "code": {"coding": field_codings(base, f), "text": f.text},
            "subject": reference(patient_id),
            "effectiveDateTime": date,
            "issued": check_in["received_at"],
            "derivedFrom": [reference(check_in_id)],
        });
        obs[key] = value;
        if f.name == "withdrawal_score" {
            let system = check_in_system(base);
            let components: Vec<Value> = sows_answers(&check_in["withdrawal"])
                .map(|(k, t, a)| {
                    json!({"code": {"coding": [coding(&system, &format!("withdrawal.{k}"), t)]},
                           "valueInteger": a})
                })
                .collect();
            if !components.is_empty() {
                obs["component"] = json!(components);
            }
        }
        entries.push(entry(obs));
    }
    entries
}

fn xml_escaped(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A consent record (the API's JSON view) as a `Consent`: active while it holds, inactive once
/// revoked or expired; a permit to disclose the consented categories to the recipient, from
/// signing to `expires_on`.
pub fn consent(base: &str, patient_id: &str, c: &Value) -> Value {
    let status = if c["status"] == "active" {
        "active"
    } else {
        "inactive"
    };
    let categories: Vec<Value> = c["categories"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|cat| {
            json!({"coding": [{"system": category_system(base), "code": cat["category"],
                               "display": cat["category"]}],
                   "text": cat["description"]})
        })
        .collect();
    let mut period = json!({"start": c["signed_at"]});
    if present(&c["expires_on"]) {
        period["end"] = c["expires_on"].clone();
    }
    let text = |k: &str| xml_escaped(c[k].as_str().unwrap_or_default());
    let div = format!(
        "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>{} may disclose to {}, for this purpose: {}.</p><p>{}</p></div>",
        text("disclosing_organisation"),
        text("recipient"),
        text("purpose"),
        text("revocation"),
    );
    json!({
        "resourceType": "Consent",
        "id": c["id"],
        "text": {"status": "generated", "div": div},
        "status": status,
        "scope": {"coding": [coding("http://terminology.hl7.org/CodeSystem/consentscope",
                                    "patient-privacy", "Privacy Consent")]},
        "category": [{"coding": [coding(LOINC, "59284-0", "Consent Document")]}],
        "patient": reference(patient_id),
        "dateTime": c["signed_at"],
        "performer": [reference(patient_id)],
        "organization": [{"display": c["disclosing_organisation"]}],
        "policy": [{"uri": PART2_URI}],
        "provision": {
            "type": "permit",
            "period": period,
            "actor": [{
                "role": {"coding": [coding("http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                                           "IRCP", "information recipient")]},
                "reference": {"display": c["recipient"]},
            }],
            "action": [{"coding": [coding("http://terminology.hl7.org/CodeSystem/consentaction",
                                          "disclose", "Disclose")]}],
            "code": categories,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "https://care.example.org";

    fn full_check_in() -> Value {
        json!({
            "date": "2026-11-30", "craving": 7, "mood": 3, "exercise_minutes": 20, "meals": 2,
            "used_substance": true, "substances": ["heroin"], "sleep_hours": 5.5,
            "anxiety": 6, "irritability": 4, "loneliness": 8, "triggers": ["stress", "people"],
            "took_medication": false, "attended_support": true,
            "withdrawal": {"anxious": 2, "yawning": 1, "perspiring": 0, "eyes_tearing": 0,
                "nose_running": 1, "goosebumps": 0, "shaking": 2, "hot_flushes": 0,
                "cold_flushes": 1, "bones_aching": 3, "restless": 2, "nauseous": 1,
                "vomiting": 0, "muscles_twitching": 1, "stomach_cramps": 0,
                "feel_like_using": 4},
            "withdrawal_score": 18, "self_harm_thoughts": false, "note": "Hard day <really>",
            "answered_at": null, "received_at": "2026-11-30T21:00:00Z",
            "updated_at": "2026-11-30T21:05:00Z", "version": 2, "late": false,
            "source": "app", "imported_from": null
        })
    }

    fn entries(c: &Value) -> Vec<Value> {
        let mut n = 0;
        check_in_entries(BASE, "p1", c, "c1", || {
            n += 1;
            format!("o{n}")
        })
    }

    #[test]
    fn every_check_in_field_of_spec_section_3_is_in_the_table_once() {
        let spec = [
            "craving",
            "mood",
            "exercise_minutes",
            "meals",
            "used_substance",
            "substances",
            "sleep_hours",
            "anxiety",
            "irritability",
            "loneliness",
            "triggers",
            "took_medication",
            "attended_support",
            "withdrawal",
            "withdrawal_score",
            "self_harm_thoughts",
            "note",
        ];
        for name in spec {
            assert_eq!(
                CHECK_IN.iter().filter(|f| f.name == name).count(),
                1,
                "{name}"
            );
        }
        assert_eq!(CHECK_IN.len(), spec.len() + 1, "and the date");
    }

    #[test]
    fn loinc_codes_only_where_loinc_has_the_measure() {
        let loinc: Vec<_> = CHECK_IN
            .iter()
            .filter_map(|f| f.loinc.map(|(c, _)| (f.name, c)))
            .collect();
        assert_eq!(
            loinc,
            vec![("exercise_minutes", "55411-3"), ("sleep_hours", "93832-4")]
        );
    }

    #[test]
    fn triggers_and_sows_items_are_the_apps_own() {
        for (t, _) in TRIGGERS {
            serde_json::from_value::<crate::domain::check_in::Trigger>(json!(t)).unwrap();
        }
        let mut all = serde_json::Map::new();
        for (k, _) in SOWS {
            all.insert(k.into(), json!(0));
        }
        serde_json::from_value::<crate::domain::check_in::Sows>(Value::Object(all)).unwrap();
    }

    #[test]
    fn questionnaire_items_are_the_fields_with_ranges_and_codes() {
        let q = questionnaire(BASE);
        assert_eq!(
            q["url"],
            format!("{BASE}/fhir/Questionnaire/daily-check-in")
        );
        let items = q["item"].as_array().unwrap();
        let ids: Vec<&str> = items
            .iter()
            .map(|i| i["linkId"].as_str().unwrap())
            .collect();
        let names: Vec<&str> = CHECK_IN.iter().map(|f| f.name).collect();
        assert_eq!(ids, names);
        let sleep = &items[ids.iter().position(|i| *i == "sleep_hours").unwrap()];
        assert_eq!(sleep["type"], "decimal");
        assert_eq!(sleep["code"][0]["code"], "93832-4");
        assert_eq!(sleep["code"][0]["system"], LOINC);
        assert_eq!(sleep["code"][1]["system"], check_in_system(BASE));
        let craving = &items[1];
        assert_eq!(craving["required"], true);
        assert_eq!(craving["extension"][1]["valueInteger"], 10);
        let sows = &items[ids.iter().position(|i| *i == "withdrawal").unwrap()];
        assert_eq!(sows["type"], "group");
        assert_eq!(sows["item"].as_array().unwrap().len(), 16);
    }

    #[test]
    fn a_check_in_is_one_response_and_an_observation_per_answered_coded_field() {
        let e = entries(&full_check_in());
        let qr = &e[0]["resource"];
        assert_eq!(qr["resourceType"], "QuestionnaireResponse");
        assert_eq!(qr["questionnaire"], questionnaire_url(BASE));
        assert_eq!(qr["status"], "completed");
        assert_eq!(qr["subject"]["reference"], "urn:uuid:p1");
        assert_eq!(
            qr["authored"], "2026-11-30T21:00:00Z",
            "received, not answered"
        );
        assert_eq!(qr["meta"]["versionId"], "2");
        let items = qr["item"].as_array().unwrap();
        assert_eq!(items.len(), CHECK_IN.len(), "every field answered");
        let note = items.iter().find(|i| i["linkId"] == "note").unwrap();
        assert_eq!(note["answer"][0]["valueString"], "Hard day <really>");
        let triggers = items.iter().find(|i| i["linkId"] == "triggers").unwrap();
        assert_eq!(
            triggers["answer"][1]["valueCoding"]["code"],
            "trigger.people"
        );
        let sows = items.iter().find(|i| i["linkId"] == "withdrawal").unwrap();
        assert!(sows.get("answer").is_none());
        assert_eq!(sows["item"].as_array().unwrap().len(), 16);

        let observations: Vec<&Value> = e[1..].iter().map(|x| &x["resource"]).collect();
        assert_eq!(
            observations.len(),
            CHECK_IN.iter().filter(|f| f.observation).count()
        );
        for o in &observations {
            assert_eq!(o["status"], "final");
            assert_eq!(o["category"][0]["coding"][0]["code"], "survey");
            assert_eq!(o["effectiveDateTime"], "2026-11-30");
            assert_eq!(o["derivedFrom"][0]["reference"], "urn:uuid:c1");
        }
        let by_code = |c: &str| {
            *observations
                .iter()
                .find(|o| o["code"]["coding"][0]["code"] == c)
                .unwrap()
        };
        assert_eq!(by_code("93832-4")["valueQuantity"]["value"], 5.5);
        assert_eq!(by_code("93832-4")["valueQuantity"]["code"], "h");
        assert_eq!(by_code("55411-3")["valueQuantity"]["code"], "min");
        assert_eq!(by_code("craving")["valueInteger"], 7);
        assert_eq!(by_code("used_substance")["valueBoolean"], true);
        let score = by_code("withdrawal_score");
        assert_eq!(score["valueInteger"], 18);
        assert_eq!(score["component"].as_array().unwrap().len(), 16);
        assert_eq!(e[1]["fullUrl"], "urn:uuid:o1");
    }

    #[test]
    fn unanswered_fields_have_neither_item_nor_observation() {
        let mut c = full_check_in();
        for k in [
            "sleep_hours",
            "withdrawal",
            "withdrawal_score",
            "took_medication",
        ] {
            c[k] = Value::Null;
        }
        c["substances"] = json!([]);
        c["answered_at"] = json!("2026-11-30T20:59:00Z");
        let e = entries(&c);
        let qr = &e[0]["resource"];
        assert_eq!(qr["authored"], "2026-11-30T20:59:00Z");
        let ids: Vec<&str> = qr["item"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["linkId"].as_str().unwrap())
            .collect();
        for k in [
            "sleep_hours",
            "withdrawal",
            "withdrawal_score",
            "took_medication",
            "substances",
        ] {
            assert!(!ids.contains(&k), "{k}");
        }
        assert_eq!(
            e.len() - 1,
            CHECK_IN.iter().filter(|f| f.observation).count() - 3
        );
    }

    #[test]
    fn a_consent_permits_disclosing_its_categories_until_it_expires() {
        let c = json!({
            "id": "k1", "status": "revoked", "recipient": "Pharmacy <Reminders>",
            "disclosing_organisation": "Clinic & Co", "purpose": "Reminders",
            "categories": [{"category": "medication", "description": "Medication taken"}],
            "expires_on": "2027-01-31", "signed_at": "2026-11-01T10:00:00Z",
            "revocation": "Revoke in the app.",
        });
        let r = consent(BASE, "p1", &c);
        assert_eq!(r["status"], "inactive");
        assert_eq!(r["patient"]["reference"], "urn:uuid:p1");
        assert_eq!(r["provision"]["period"]["end"], "2027-01-31");
        assert_eq!(r["provision"]["code"][0]["coding"][0]["code"], "medication");
        assert_eq!(
            r["provision"]["actor"][0]["reference"]["display"],
            "Pharmacy <Reminders>"
        );
        let div = r["text"]["div"].as_str().unwrap();
        assert!(div.contains("Clinic &amp; Co") && div.contains("Pharmacy &lt;Reminders&gt;"));
        let mut active = c.clone();
        active["status"] = json!("active");
        active["expires_on"] = Value::Null;
        let r = consent(BASE, "p1", &active);
        assert_eq!(r["status"], "active");
        assert!(r["provision"]["period"].get("end").is_none());
    }

    #[test]
    fn code_systems_hold_every_code_used() {
        let cs = code_system(BASE, DAILY_CHECK_IN).unwrap();
        let codes: Vec<&str> = cs["concept"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["code"].as_str().unwrap())
            .collect();
        assert_eq!(cs["count"], codes.len());
        for f in CHECK_IN {
            assert!(codes.contains(&f.name));
        }
        assert!(codes.contains(&"withdrawal.feel_like_using"));
        assert!(codes.contains(&"trigger.celebration"));
        let cats = code_system(BASE, DATA_CATEGORY).unwrap();
        assert_eq!(cats["concept"].as_array().unwrap().len(), 8);
        assert!(code_system(BASE, "other").is_none());
    }
}
