//! `aftercare demo`: a fresh database becomes a clinic a newcomer can sign in to.

use std::collections::HashSet;

use crate::helpers::spawn_app;

fn rank(severity: &serde_json::Value) -> u8 {
    match severity.as_str() {
        Some("critical") => 4,
        Some("high") => 3,
        Some("warning") => 2,
        Some("info") => 1,
        _ => 0,
    }
}

#[tokio::test]
async fn the_demo_clinic_shows_the_whole_loop() {
    let app = spawn_app().await;
    let report = aftercare::demo::run(&app.state).await.expect("demo runs");
    assert_eq!(report.accounts.len(), 1 + 2 + 12);
    assert!(report.check_ins > 200, "check-ins: {}", report.check_ins);
    assert!(report.open_alerts > 0 && report.alerts >= report.open_alerts);

    // Every printed login works with the printed password.
    let admin = app
        .login(aftercare::demo::ADMIN_EMAIL, aftercare::demo::PASSWORD)
        .await;
    let counsellor = &report.accounts[1];
    assert_eq!(counsellor.role, "counsellor");
    app.login(&counsellor.email, aftercare::demo::PASSWORD)
        .await;

    // The caseload: twelve patients, riskiest first.
    let r = app
        .get("/v1/patients?limit=200", admin.t())
        .await
        .expect(200);
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 12, "{}", r.text);
    assert_eq!(items[0]["highest_open_severity"], "critical", "{}", r.text);
    let ranks: Vec<u8> = items
        .iter()
        .map(|i| rank(&i["highest_open_severity"]))
        .collect();
    assert!(ranks.windows(2).all(|w| w[0] >= w[1]), "{ranks:?}");
    let phases: HashSet<&str> = items.iter().filter_map(|i| i["phase"].as_str()).collect();
    for phase in ["detox", "treatment", "aftercare", "discharged"] {
        assert!(phases.contains(phase), "no {phase} patient: {phases:?}");
    }

    // The alerts the stories are about are open.
    let r = app
        .get("/v1/alerts?status=open&limit=200", admin.t())
        .await
        .expect(200);
    // Episodes: one open alert per patient, and a bad stretch holds several rules.
    let items = r.body["items"].as_array().unwrap();
    let patients: HashSet<&str> = items
        .iter()
        .map(|a| a["patient_id"].as_str().unwrap())
        .collect();
    assert_eq!(patients.len(), items.len(), "one open alert per patient");
    assert!(
        items
            .iter()
            .any(|a| a["findings"].as_array().unwrap().len() >= 3),
        "some episode holds three or more rules"
    );
    let open: HashSet<(String, String)> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|a| a["findings"].as_array().unwrap().iter())
        .map(|f| {
            (
                f["rule"].as_str().unwrap().to_owned(),
                f["severity"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for (rule, severity) in [
        ("substance_use", "critical"),
        ("self_harm", "critical"),
        ("sos", "critical"),
        ("missed_check_ins", "high"),
    ] {
        assert!(
            open.contains(&(rule.to_owned(), severity.to_owned())),
            "no open {severity} {rule} finding in {open:?}"
        );
    }
    // The sliding patient's slow slide is flagged by `slide`, inside the same episode as the
    // rest of their bad stretch.
    for rule in [
        "slide",
        "craving_high",
        "mood_low",
        "sleep_poor",
        "meals_skipped",
        "halt",
    ] {
        assert!(
            open.iter().any(|(r, _)| r == rule),
            "no open {rule} finding in {open:?}"
        );
    }

    // Some older alerts were followed up and resolved by a counsellor.
    let r = app
        .get("/v1/alerts?status=resolved&limit=200", admin.t())
        .await
        .expect(200);
    assert!(
        !r.body["items"].as_array().unwrap().is_empty(),
        "{}",
        r.text
    );

    // The history reads as it happened: alerts carry the day they fired, and check-ins sent
    // on their own day are not late.
    let yesterday = chrono::Utc::now() - chrono::TimeDelta::days(1);
    let fired: Vec<chrono::DateTime<chrono::Utc>> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["created_at"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(fired.iter().all(|t| *t < yesterday), "{fired:?}");
    let patient = report
        .accounts
        .iter()
        .find(|a| a.role == "patient")
        .unwrap();
    let me = app.login(&patient.email, aftercare::demo::PASSWORD).await;
    let history = app
        .get("/v1/me/check-ins?limit=200", me.t())
        .await
        .expect(200);
    let items = history.body["items"].as_array().unwrap();
    assert!(items.len() > 7, "{}", history.text);
    assert!(items.iter().all(|c| c["late"] == false), "{}", history.text);

    // One counsellor signs in with a second factor: the printed secret gives the codes.
    let mfa = report
        .accounts
        .iter()
        .find(|a| a.totp_secret.is_some())
        .expect("a counsellor with a second factor");
    assert_eq!(mfa.role, "counsellor");
    let secret_b32 = mfa.totp_secret.clone().unwrap();
    let printed = aftercare::demo::render(&report);
    assert!(
        printed.contains(&format!("oathtool --totp -b {secret_b32}")),
        "{printed}"
    );

    // The connected app takes a token with the printed credentials and sees the one patient
    // who consented.
    let (_, client_id, client_secret, patient) = report.integration.clone().expect("a demo app");
    assert!(printed.contains(&client_secret), "{printed}");
    let token: serde_json::Value = app
        .client
        .post(app.url("/oauth/token"))
        .basic_auth(&client_id, Some(&client_secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed = app
        .get("/v1/integration/patients", token["access_token"].as_str())
        .await
        .expect(200);
    let names: Vec<&str> = listed.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["display_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [patient.as_str()]);
    let r = app
        .post(
            "/v1/auth/login",
            None,
            &serde_json::json!({"email": mfa.email, "password": aftercare::demo::PASSWORD}),
        )
        .await
        .expect_problem(401);
    let token = r.body["mfa_token"].as_str().unwrap().to_owned();
    let secret = aftercare::auth::totp::from_base32(&secret_b32).unwrap();
    // The demo confirmed with the current code; the app's next one signs in.
    let step = aftercare::auth::totp::step_of(chrono::Utc::now().timestamp()) + 1;
    let code = aftercare::auth::totp::code_at(&secret, step).unwrap();
    let r = app
        .post(
            "/v1/auth/mfa",
            None,
            &serde_json::json!({"mfa_token": token, "code": code}),
        )
        .await
        .expect(200);
    let token = r.body["access_token"].as_str().unwrap();
    app.get("/v1/patients", Some(token)).await.expect(200);

    // A second run refuses: the database is no longer empty.
    let err = aftercare::demo::run(&app.state)
        .await
        .expect_err("refuses a non-empty database");
    assert!(err.to_string().contains("empty database"), "{err}");
}
