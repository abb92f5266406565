//! Changing one's sign-in address when the server sends mail: the new address must be
//! confirmed with the code mailed to it, and a taken address learns the requester nothing.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{spawn_app_with, Resp, TestApp, PASSWORD};
use crate::receivers::smtp::{self, SmtpSink};

async fn app_with_mail() -> (TestApp, SmtpSink) {
    let sink = smtp::start().await;
    let url = sink.smtp_url();
    let app = spawn_app_with(&[
        ("AFTERCARE_SMTP_URL", url.as_str()),
        ("AFTERCARE_SMTP_FROM", "accounts@clinic.example"),
    ])
    .await;
    (app, sink)
}

/// The message whose `To:` header names `to`.
fn message_to<'a>(messages: &'a [String], to: &str) -> &'a str {
    messages
        .iter()
        .find(|m| {
            m.lines()
                .any(|l| l.to_ascii_lowercase().starts_with("to:") && l.to_lowercase().contains(to))
        })
        .unwrap_or_else(|| panic!("no message to {to} in {messages:#?}"))
}

/// The confirmation code (`abcd-efgh-ijkl-mnop`) in a message, if any.
fn code_in(message: &str) -> Option<String> {
    message
        .split_whitespace()
        .find(|w| {
            let parts: Vec<&str> = w.split('-').collect();
            parts.len() == 4
                && parts.iter().all(|p| {
                    p.len() == 4
                        && p.chars()
                            .all(|c| c.is_ascii_lowercase() || ('2'..='7').contains(&c))
                })
        })
        .map(str::to_owned)
}

async fn ask(app: &TestApp, token: Option<&str>, email: &str) -> Resp {
    app.patch(
        "/v1/me",
        token,
        &json!({"email": email, "current_password": PASSWORD}),
    )
    .await
}

async fn confirm(app: &TestApp, token: Option<&str>, code: &str) -> Resp {
    app.post("/v1/me/email/confirm", token, &json!({ "code": code }))
        .await
}

async fn login_status(app: &TestApp, email: &str) -> u16 {
    app.post(
        "/v1/auth/login",
        None,
        &json!({"email": email, "password": PASSWORD}),
    )
    .await
    .status
}

#[tokio::test]
async fn a_new_address_signs_in_only_once_the_code_mailed_to_it_is_entered() {
    let (app, sink) = app_with_mail().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;
    let patient = app.patient(&counsellor).await;
    // A patient of another organisation: the address a prober would test.
    let other_admin = app.admin().await;
    let other_counsellor = app.counsellor(&other_admin).await;
    let secret = app.patient(&other_counsellor).await;

    let taken = ask(&app, patient.t(), &secret.email).await.expect(202);
    let free = ask(&app, patient.t(), "New.Me@example.org")
        .await
        .expect(202);
    assert_eq!(taken.text, free.text, "taken and free answer alike");
    assert!(
        free.body["message"]
            .as_str()
            .unwrap()
            .contains("/v1/me/email/confirm"),
        "{}",
        free.text
    );

    let mails = sink.wait_for_messages(2, Duration::from_secs(10)).await;
    assert_eq!(mails.len(), 2, "{mails:#?}");
    let to_taken = message_to(&mails, &secret.email);
    assert!(to_taken.contains("already signs in with it"), "{to_taken}");
    assert_eq!(code_in(to_taken), None, "no code for a taken address");
    let to_new = message_to(&mails, "new.me@example.org");
    let code = code_in(to_new).expect("a code in the confirmation");
    for m in &mails {
        assert!(!m.contains(&patient.email), "the old address is not in {m}");
    }

    // Until confirmed, nothing changed.
    let me = app.get("/v1/me", patient.t()).await.expect(200);
    assert_eq!(me.body["email"], patient.email.as_str());
    assert_eq!(login_status(&app, &patient.email).await, 200);
    assert_eq!(login_status(&app, "new.me@example.org").await, 401);
    assert_eq!(login_status(&app, &secret.email).await, 200);

    // A wrong code changes nothing; the right one, typed in capitals, changes the address.
    let wrong = confirm(&app, patient.t(), "aaaa-bbbb-cccc-dddd")
        .await
        .expect_problem(422);
    assert_eq!(wrong.error_fields(), vec!["code"]);
    let me = confirm(&app, patient.t(), &code.to_uppercase())
        .await
        .expect(200);
    assert_eq!(me.body["email"], "new.me@example.org");
    assert_eq!(login_status(&app, "new.me@example.org").await, 200);
    assert_eq!(login_status(&app, &patient.email).await, 401);

    // The previous address is told, without the new one.
    let mails = sink.wait_for_messages(3, Duration::from_secs(10)).await;
    assert_eq!(mails.len(), 3, "{mails:#?}");
    let notice = message_to(&mails, &patient.email);
    assert!(notice.contains("has just been changed"), "{notice}");
    assert!(!notice.contains("new.me@example.org"), "{notice}");

    // A code works once.
    confirm(&app, patient.t(), &code).await.expect_problem(422);

    let events = app
        .get("/v1/organisation/audit-events?limit=200", admin.t())
        .await
        .expect(200);
    let actions: Vec<&str> = events.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .filter(|a| a.starts_with("account.email"))
        .collect();
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == "account.email_change_requested")
            .count(),
        2,
        "{actions:?}"
    );
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == "account.email_changed")
            .count(),
        1,
        "{actions:?}"
    );
}

#[tokio::test]
async fn a_confirmation_code_survives_only_a_few_wrong_tries_and_a_taken_address_has_none() {
    let (app, sink) = app_with_mail().await;
    let admin = app.admin().await;
    let counsellor = app.counsellor(&admin).await;

    // Asking for a taken address leaves nothing to confirm.
    ask(&app, counsellor.t(), &admin.email).await.expect(202);
    let mails = sink.wait_for_messages(1, Duration::from_secs(10)).await;
    assert_eq!(code_in(message_to(&mails, &admin.email)), None);
    confirm(&app, counsellor.t(), "aaaa-bbbb-cccc-dddd")
        .await
        .expect_problem(422);

    // Five wrong codes and the right one no longer works.
    ask(&app, counsellor.t(), "guessed@example.org")
        .await
        .expect(202);
    let mails = sink.wait_for_messages(2, Duration::from_secs(10)).await;
    let code = code_in(message_to(&mails, "guessed@example.org")).expect("a code");
    for _ in 0..5 {
        let r = confirm(&app, counsellor.t(), "aaaa-bbbb-cccc-dddd")
            .await
            .expect_problem(422);
        assert_eq!(r.error_fields(), vec!["code"]);
    }
    confirm(&app, counsellor.t(), &code)
        .await
        .expect_problem(422);
    let me = app.get("/v1/me", counsellor.t()).await.expect(200);
    assert_eq!(me.body["email"], counsellor.email.as_str());

    // Another account's code is not this one's; four wrong tries still leave the right one.
    ask(&app, counsellor.t(), "mine@example.org")
        .await
        .expect(202);
    let mails = sink.wait_for_messages(3, Duration::from_secs(10)).await;
    let code = code_in(message_to(&mails, "mine@example.org")).expect("a code");
    confirm(&app, admin.t(), &code).await.expect_problem(422);
    for _ in 0..4 {
        confirm(&app, counsellor.t(), "aaaa-bbbb-cccc-dddd")
            .await
            .expect_problem(422);
    }
    let me = confirm(&app, counsellor.t(), &code).await.expect(200);
    assert_eq!(me.body["email"], "mine@example.org");
}

#[tokio::test]
async fn an_address_that_cannot_be_mailed_changes_nothing() {
    // Nothing listens on this port: the message cannot be handed over.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("smtp://{}", closed.local_addr().unwrap());
    drop(closed);
    let app = spawn_app_with(&[
        ("AFTERCARE_SMTP_URL", url.as_str()),
        ("AFTERCARE_SMTP_FROM", "accounts@clinic.example"),
    ])
    .await;
    let admin = app.admin().await;
    let r = ask(&app, admin.t(), "elsewhere@example.org")
        .await
        .expect_problem(503);
    assert!(r.header("retry-after").is_some());
    let me = app.get("/v1/me", admin.t()).await.expect(200);
    assert_eq!(me.body["email"], admin.email.as_str());
    assert_eq!(login_status(&app, &admin.email).await, 200);
}
