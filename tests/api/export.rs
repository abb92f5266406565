//! The patient's copy of their record (SPEC §10): one JSON document with everything held
//! about them, streamed in slices; staff on the care team and admins may export it too.

use serde_json::{json, Value};

use crate::helpers::{calm_with, local_day, spawn_app, Login, TestApp};

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
        .get("/v1/me/export?format=fhir", patient.t())
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
