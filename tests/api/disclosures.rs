//! The accounting of disclosures: an emergency disclosure recorded by staff reaches the
//! patient's accounting; reads of it are in the patient's access log.

use serde_json::{json, Value};

use crate::helpers::spawn_app;

#[tokio::test]
async fn an_emergency_disclosure_is_in_the_patients_accounting_with_every_element() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient(&counsellor).await;
    let id = &patient.id;
    let name = app.get("/v1/me", counsellor.t()).await.expect(200).body["display_name"]
        .as_str()
        .unwrap()
        .to_owned();

    let empty = app.get("/v1/me/disclosures", patient.t()).await.expect(200);
    assert_eq!(empty.body["items"], json!([]));

    let path = format!("/v1/patients/{id}/emergency-disclosures");
    let made = app
        .post(
            &path,
            counsellor.t(),
            &json!({
                "recipient_name": "Dr Okafor",
                "recipient_affiliation": "St Mary's emergency department",
                "nature": "Substances used in the last 48 hours, for a suspected overdose"
            }),
        )
        .await
        .expect(201);
    assert_eq!(made.body["type"], "emergency");
    assert_eq!(made.body["recorded_by"]["name"], name.as_str());

    let mine = app.get("/v1/me/disclosures", patient.t()).await.expect(200);
    assert_eq!(mine.header("cache-control"), Some("no-store"));
    let items = mine.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", mine.text);
    let d = &items[0];
    assert_eq!(d["id"], made.body["id"]);
    assert_eq!(d["type"], "emergency");
    assert_eq!(d["recipient"]["name"], "Dr Okafor");
    assert_eq!(
        d["recipient"]["affiliation"],
        "St Mary's emergency department"
    );
    assert_eq!(
        d["nature"],
        "Substances used in the last 48 hours, for a suspected overdose"
    );
    assert_eq!(d["recorded_by"]["id"], counsellor.id.as_str());
    assert!(d["disclosed_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(d["consent_id"], Value::Null);

    // The care team reads the same accounting, and that read is in the patient's access log.
    let staff = app
        .get(&format!("/v1/patients/{id}/disclosures"), admin.t())
        .await
        .expect(200);
    assert_eq!(staff.body["items"][0]["id"], made.body["id"]);
    let log = app.get("/v1/me/access-log", patient.t()).await.expect(200);
    assert_eq!(log.body["items"][0]["what"], "accounting of disclosures");
    assert_eq!(log.body["items"][0]["reader"]["role"], "admin");

    // Another patient's accounting is untouched.
    let other = app.patient(&counsellor).await;
    let theirs = app.get("/v1/me/disclosures", other.t()).await.expect(200);
    assert_eq!(theirs.body["items"], json!([]));
}

#[tokio::test]
async fn an_emergency_disclosure_needs_every_element_and_staff() {
    let app = spawn_app().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient(&counsellor).await;
    let path = format!("/v1/patients/{}/emergency-disclosures", patient.id);

    let r = app
        .post(
            &path,
            counsellor.t(),
            &json!({"recipient_name": " ", "recipient_affiliation": "ED", "nature": "x"}),
        )
        .await
        .expect_problem(422);
    assert_eq!(r.error_fields(), ["recipient_name"]);
    let r = app
        .post(
            &path,
            counsellor.t(),
            &json!({"recipient_name": "A", "recipient_affiliation": "ED"}),
        )
        .await
        .expect_problem(422);
    assert!(r.text.contains("nature"), "{}", r.text);
    let r = app
        .post(
            &path,
            counsellor.t(),
            &json!({"recipient_name": "A", "recipient_affiliation": "ED", "nature": "x",
                    "diagnosis": "opioid use disorder"}),
        )
        .await
        .expect_problem(422);
    assert!(r.text.contains("diagnosis"), "{}", r.text);
    // A patient neither records one nor reads staff routes.
    app.post(
        &path,
        patient.t(),
        &json!({"recipient_name": "A", "recipient_affiliation": "ED", "nature": "x"}),
    )
    .await
    .expect_problem(403);
    app.get("/v1/me/disclosures", counsellor.t())
        .await
        .expect_problem(403);
    // Nothing was recorded by the refused attempts.
    let mine = app.get("/v1/me/disclosures", patient.t()).await.expect(200);
    assert_eq!(mine.body["items"], json!([]));
}
