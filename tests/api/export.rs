//! The patient's copy of their record (SPEC §10): one JSON document with everything held
//! about them, streamed in slices; staff on the care team and admins may export it too.

use serde_json::{json, Value};

use crate::helpers::{calm_with, local_day, spawn_app, Login, TestApp, SOWS_ITEMS};

const TZ: &str = "America/New_York";

async fn export(app: &TestApp, path: &str, who: &Login) -> (crate::helpers::Resp, Value) {
    let r = app.get(path, who.t()).await;
    let doc = if r.status == 200 {
        serde_json::from_str(&r.text).expect("the export is one JSON document")
    } else {
        Value::Null
    };
    (r, doc)
}

#[tokio::test]
async fn a_patient_downloads_every_check_in_alert_and_reader_of_their_record() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient(&counsellor).await;

    // 450 days of earlier history (more than two slices of 200), then today's own check-in
    // with a note, and an SOS.
    let history: Vec<Value> = (0..450)
        .map(|i| {
            let mut c = calm_with(json!({}));
            c["date"] = json!(local_day(TZ, -451 + i).to_string());
            c
        })
        .collect();
    for chunk in history.chunks(150) {
        app.post(
            &format!("/v1/patients/{}/check-ins/import", patient.id),
            counsellor.t(),
            &json!({"source": "OldCare EHR", "check_ins": chunk}),
        )
        .await
        .expect(201);
    }
    app.checkin(
        &patient,
        local_day(TZ, 0),
        &calm_with(json!({"note": "Slept at my sister's, felt safer"})),
    )
    .await
    .expect(201);
    app.post(
        "/v1/me/sos",
        patient.t(),
        &json!({"message": "need to talk"}),
    )
    .await
    .expect(202);
    // The counsellor reads the record: the export says so.
    app.get(&format!("/v1/patients/{}", patient.id), counsellor.t())
        .await
        .expect(200);

    let (r, doc) = export(&app, "/v1/me/export", &patient).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    assert!(r
        .header("content-disposition")
        .unwrap()
        .starts_with("attachment"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    assert_eq!(doc["format"], "aftercare-export/1");
    assert_eq!(doc["patient"]["id"], patient.id.as_str());
    assert!(!doc["patient"]["phase_history"]
        .as_array()
        .unwrap()
        .is_empty());

    let check_ins = doc["check_ins"].as_array().unwrap();
    assert_eq!(check_ins.len(), 451, "every check-in, across slices");
    let mut dates: Vec<&str> = check_ins
        .iter()
        .map(|c| c["date"].as_str().unwrap())
        .collect();
    assert_eq!(dates[0], local_day(TZ, 0).to_string(), "newest first");
    dates.dedup();
    assert_eq!(dates.len(), 451, "no check-in twice at a slice boundary");
    assert_eq!(check_ins[0]["note"], "Slept at my sister's, felt safer");

    let alerts = doc["alerts"].as_array().unwrap();
    assert!(!alerts.is_empty(), "the SOS alert");
    assert!(alerts
        .iter()
        .all(|a| a["history"].as_array().is_some_and(|h| !h.is_empty())));
    assert!(doc["consents"].is_array());
    assert!(doc["disclosures"].is_array());
    let readers = doc["access_log"].as_array().unwrap();
    assert!(
        readers
            .iter()
            .any(|e| e["reader"]["role"] == "counsellor"
                && e["what"] == "profile and treatment phase"),
        "{readers:?}"
    );
}

#[tokio::test]
async fn staff_export_within_reach_is_audited_and_others_get_404() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let other_counsellor = app.counsellor(&admin).await;
    let patient = app.patient(&counsellor).await;
    let elsewhere = app.admin().await;
    app.checkin(&patient, local_day(TZ, 0), &calm_with(json!({})))
        .await
        .expect(201);
    let path = format!("/v1/patients/{}/export", patient.id);

    let (r, doc) = export(&app, &path, &counsellor).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(doc["check_ins"].as_array().unwrap().len(), 1);
    let (r, _) = export(&app, &path, &admin).await;
    assert_eq!(r.status, 200, "{}", r.text);
    for outsider in [&other_counsellor, &elsewhere] {
        app.get(&path, outsider.t()).await.expect_problem(404);
    }
    app.get(&path, patient.t()).await.expect_problem(403);
    let r = app
        .get("/v1/me/export?format=xml", patient.t())
        .await
        .expect_problem(400);
    assert_eq!(r.error_fields(), vec!["format"]);

    // The patient sees who exported their record.
    let log = app.get("/v1/me/access-log", patient.t()).await.expect(200);
    let exported = log.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["what"] == "your complete record, exported")
        .count();
    assert_eq!(exported, 2, "{}", log.text);
}

/// The FHIR R4 validator's `PYTHONPATH`: `FHIR_VALIDATOR_PYTHONPATH` (CI installs it there),
/// else none when `fhir.resources` for R4 is importable already, else installed here once
/// with pip, as `.ci/run` does.
fn fhir_validator_pythonpath() -> Option<String> {
    if let Ok(path) = std::env::var("FHIR_VALIDATOR_PYTHONPATH") {
        return Some(path);
    }
    let importable = |pythonpath: Option<&str>| {
        let mut cmd = std::process::Command::new("python3");
        cmd.args([
            "-c",
            "import fhir.resources as f; assert f.__fhir_version__ == '4.0.1'",
        ]);
        if let Some(p) = pythonpath {
            cmd.env("PYTHONPATH", p);
        }
        cmd.output().is_ok_and(|o| o.status.success())
    };
    if importable(None) {
        return None;
    }
    let dir = format!("{}/fhir-validator", env!("CARGO_TARGET_TMPDIR"));
    if !importable(Some(&dir)) {
        let out = std::process::Command::new("python3")
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--upgrade",
                "--target",
                &dir,
            ])
            .args(["fhir.resources==6.4.0", "pydantic[email]>=1.10,<2"])
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "installing the FHIR validator: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Some(dir)
}

/// Runs tests/tools/fhir_validate.py on these resources; its verdict and what it said.
fn validate_fhir(resources: &[(&str, &Value)]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (name, r) in resources {
        let path = dir.path().join(format!("{name}.json"));
        std::fs::write(&path, serde_json::to_vec_pretty(r).unwrap()).unwrap();
        files.push(path);
    }
    let mut cmd = std::process::Command::new("python3");
    cmd.arg(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/tools/fhir_validate.py"
    ))
    .args(&files);
    if let Some(p) = fhir_validator_pythonpath() {
        cmd.env("PYTHONPATH", p);
    }
    let out = cmd.output().expect("python3 runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

#[tokio::test]
async fn the_fhir_export_is_a_valid_r4_bundle_answering_the_public_questionnaire() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient(&counsellor).await;

    // A consent to an app, an imported day and today's full check-in with a note.
    let integration = app
        .post(
            "/v1/organisation/integrations",
            admin.t(),
            &json!({"name": "Pharmacy <Reminders>", "description": "Reminders",
                    "scopes": ["medication.read", "wellbeing.read"],
                    "token_endpoint_auth_method": "client_secret_basic"}),
        )
        .await
        .expect(201);
    let consent = app
        .post(
            "/v1/me/consents",
            patient.t(),
            &json!({"integration_id": integration.body["id"], "categories": ["medication", "wellbeing"],
                    "purpose": "Reminders & nudges", "expires_on": local_day(TZ, 30).to_string()}),
        )
        .await
        .expect(201);
    let mut old = calm_with(json!({}));
    old["date"] = json!(local_day(TZ, -20).to_string());
    app.post(
        &format!("/v1/patients/{}/check-ins/import", patient.id),
        counsellor.t(),
        &json!({"source": "OldCare EHR", "check_ins": [old]}),
    )
    .await
    .expect(201);
    let sows: serde_json::Map<String, Value> = SOWS_ITEMS
        .iter()
        .map(|k| ((*k).to_owned(), json!(1)))
        .collect();
    app.checkin(
        &patient,
        local_day(TZ, 0),
        &calm_with(json!({
            "craving": 4, "anxiety": 3, "irritability": 2, "loneliness": 5,
            "triggers": ["stress", "people"], "used_substance": true, "substances": ["heroin"],
            "withdrawal": sows, "took_medication": true, "attended_support": false,
            "self_harm_thoughts": false, "note": "Slept at my sister's <safer>",
            "answered_at": chrono::Utc::now().to_rfc3339()
        })),
    )
    .await
    .expect(201);

    let r = app.get("/v1/me/export?format=fhir", patient.t()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/fhir+json"));
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let bundle: Value = serde_json::from_str(&r.text).expect("one JSON document");
    assert_eq!(bundle["resourceType"], "Bundle");
    assert_eq!(bundle["type"], "collection");
    let resources: Vec<&Value> = bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["resource"])
        .collect();
    let of = |kind: &str| -> Vec<&Value> {
        resources
            .iter()
            .copied()
            .filter(|r| r["resourceType"] == kind)
            .collect()
    };
    assert_eq!(of("Patient").len(), 1);
    assert_eq!(of("Patient")[0]["id"], patient.id.as_str());
    let consents = of("Consent");
    assert_eq!(consents.len(), 1);
    assert_eq!(consents[0]["id"], consent.body["id"]);
    assert_eq!(consents[0]["status"], "active");
    assert_eq!(
        consents[0]["provision"]["period"]["end"],
        local_day(TZ, 30).to_string()
    );
    let responses = of("QuestionnaireResponse");
    assert_eq!(responses.len(), 2, "one per check-in");
    let q_url = app.url("/fhir/Questionnaire/daily-check-in");
    assert!(responses
        .iter()
        .all(|qr| qr["questionnaire"] == q_url.as_str()
            && qr["status"] == "completed"
            && qr["subject"]["reference"] == format!("urn:uuid:{}", patient.id)));
    let note = responses[0]["item"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["linkId"] == "note")
        .expect("the note, the patient's own record");
    assert_eq!(
        note["answer"][0]["valueString"],
        "Slept at my sister's <safer>"
    );
    let observations = of("Observation");
    let coded = |code: &str| {
        observations
            .iter()
            .filter(|o| {
                o["code"]["coding"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|c| c["code"] == code)
            })
            .count()
    };
    assert_eq!(coded("93832-4"), 2, "sleep duration, LOINC, on both days");
    assert_eq!(coded("55411-3"), 2, "exercise duration, LOINC");
    assert_eq!(coded("withdrawal_score"), 1);
    assert!(observations
        .iter()
        .all(|o| o["status"] == "final" && o["category"][0]["coding"][0]["code"] == "survey"));

    // The questionnaire and the code system are public.
    let q = app.get("/fhir/Questionnaire/daily-check-in", None).await;
    assert_eq!(q.status, 200, "{}", q.text);
    assert!(q
        .header("content-type")
        .unwrap()
        .starts_with("application/fhir+json"));
    let questionnaire: Value = serde_json::from_str(&q.text).unwrap();
    assert_eq!(questionnaire["url"], q_url.as_str());
    let cs = app.get("/fhir/CodeSystem/daily-check-in", None).await;
    assert_eq!(cs.status, 200, "{}", cs.text);
    let code_system: Value = serde_json::from_str(&cs.text).unwrap();
    let categories = app.get("/fhir/CodeSystem/data-category", None).await;
    assert_eq!(categories.status, 200, "{}", categories.text);
    let categories: Value = serde_json::from_str(&categories.text).unwrap();
    app.get("/fhir/CodeSystem/nothing", None)
        .await
        .expect_problem(404);

    // Staff on the care team get the same form.
    let staff = app
        .get(
            &format!("/v1/patients/{}/export?format=fhir", patient.id),
            counsellor.t(),
        )
        .await;
    assert_eq!(staff.status, 200, "{}", staff.text);
    let staff_bundle: Value = serde_json::from_str(&staff.text).unwrap();
    assert_eq!(
        staff_bundle["entry"].as_array().unwrap().len(),
        resources.len()
    );

    let (valid, said) = validate_fhir(&[
        ("questionnaire", &questionnaire),
        ("bundle", &bundle),
        ("staff-bundle", &staff_bundle),
        ("code-system", &code_system),
        ("data-category", &categories),
    ]);
    assert!(valid, "the FHIR R4 validator refused the export: {said}");
    eprintln!("{said}");

    // And the validator does refuse what is not R4.
    let mut broken = bundle.clone();
    let obs = broken["entry"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|e| e["resource"]["resourceType"] == "Observation")
        .unwrap();
    obs["resource"]["status"] = json!("done");
    obs["resource"]["valueString"] = json!("two values");
    let (valid, said) = validate_fhir(&[("questionnaire", &questionnaire), ("broken", &broken)]);
    assert!(!valid, "a broken bundle passed: {said}");
}
