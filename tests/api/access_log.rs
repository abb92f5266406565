//! "Who read my record": the patient's access log.

use serde_json::{json, Value};

use crate::helpers::{calm, calm_with, spawn_app, today};

const NEW_YORK: &str = "America/New_York";

#[tokio::test]
async fn a_patient_sees_who_read_their_record_what_and_when_newest_first() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient(&counsellor).await;
    let other = app.patient(&counsellor).await;
    let counsellor_name = app.get("/v1/me", counsellor.t()).await.expect(200).body["display_name"]
        .as_str()
        .unwrap()
        .to_owned();
    let admin_name = app.get("/v1/me", admin.t()).await.expect(200).body["display_name"]
        .as_str()
        .unwrap()
        .to_owned();
    let day = today(NEW_YORK);
    app.checkin(
        &patient,
        day,
        &calm_with(json!({"used_substance": true, "substances": ["heroin"]})),
    )
    .await
    .expect(201);
    app.checkin(&other, day, &calm()).await.expect(201);

    // The patient's own reads are not in their access log.
    app.get("/v1/me/summary", patient.t()).await.expect(200);
    let log = app.get("/v1/me/access-log", patient.t()).await.expect(200);
    assert_eq!(log.body["items"], json!([]), "{}", log.text);

    // Staff read the record in several ways.
    let id = &patient.id;
    app.get(&format!("/v1/patients/{id}/check-ins"), counsellor.t())
        .await
        .expect(200);
    app.get("/v1/patients", counsellor.t()).await.expect(200);
    app.get("/v1/alerts", counsellor.t()).await.expect(200);
    app.get(&format!("/v1/patients/{id}/summary"), admin.t())
        .await
        .expect(200);

    let log = app.get("/v1/me/access-log", patient.t()).await.expect(200);
    assert_eq!(log.header("cache-control"), Some("no-store"));
    let items = log.body["items"].as_array().unwrap();
    let seen: Vec<(String, String, String)> = items
        .iter()
        .map(|e| {
            (
                e["reader"]["name"].as_str().unwrap().to_owned(),
                e["reader"]["role"].as_str().unwrap().to_owned(),
                e["what"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: Vec<(String, String, String)> = [
        (&admin_name, "admin", "summary of recent check-ins"),
        (&counsellor_name, "counsellor", "alerts"),
        (
            &counsellor_name,
            "counsellor",
            "latest check-in, in the caseload",
        ),
        (&counsellor_name, "counsellor", "check-in history"),
    ]
    .iter()
    .map(|(n, r, w)| ((*n).clone(), (*r).to_owned(), (*w).to_owned()))
    .collect();
    assert_eq!(seen, expected, "{}", log.text);
    assert!(items.iter().all(|e| e["reader"]["type"] == "staff"));
    assert!(items
        .iter()
        .all(|e| e["at"].as_str().unwrap().ends_with('Z')));

    // The other patient was in the caseload only (their check-in raised no alert).
    let log = app.get("/v1/me/access-log", other.t()).await.expect(200);
    let whats: Vec<&str> = log.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["what"].as_str().unwrap())
        .collect();
    assert_eq!(whats, ["latest check-in, in the caseload"], "{}", log.text);

    // Paged, newest first.
    let page = app
        .get("/v1/me/access-log?limit=3", patient.t())
        .await
        .expect(200);
    assert_eq!(page.body["items"].as_array().unwrap().len(), 3);
    let cursor = page.body["next_cursor"].as_str().unwrap().to_owned();
    let rest = app
        .get(
            &format!("/v1/me/access-log?limit=3&cursor={cursor}"),
            patient.t(),
        )
        .await
        .expect(200);
    assert_eq!(rest.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(rest.body["next_cursor"], Value::Null);
    assert_eq!(rest.body["items"][0]["what"], "check-in history");

    // Staff have no access log of their own here.
    app.get("/v1/me/access-log", counsellor.t())
        .await
        .expect_problem(403);
    app.get("/v1/me/access-log", None).await.expect_problem(401);
}
