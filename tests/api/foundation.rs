//! The service skeleton as an operator and a client meet it: health, metrics, error shapes,
//! the OpenAPI document.

use crate::helpers::spawn_app;

#[tokio::test]
async fn liveness_and_readiness_answer_ok() {
    let app = spawn_app().await;
    let live = app.get("/health/live", None).await.expect(200);
    assert_eq!(live.body["status"], "ok");
    let ready = app.get("/health/ready", None).await.expect(200);
    assert_eq!(ready.body["checks"]["database"], "ok");
}

#[tokio::test]
async fn unknown_route_is_a_problem_404() {
    let app = spawn_app().await;
    app.get("/v1/no-such-thing", None).await.expect_problem(404);
}

#[tokio::test]
async fn wrong_method_is_405_with_allow() {
    let app = spawn_app().await;
    let r = app
        .send("DELETE", "/health/live", None, None)
        .await
        .expect_problem(405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
}

#[tokio::test]
async fn request_id_is_echoed_or_made() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(app.url("/health/live"))
        .header("x-request-id", "trace-abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "trace-abc-123");
    let r = app
        .client
        .get(app.url("/health/live"))
        .send()
        .await
        .unwrap();
    assert!(r.headers()["x-request-id"].len() >= 32);
}

#[tokio::test]
async fn metrics_are_prometheus_text_with_route_labels() {
    let app = spawn_app().await;
    app.get("/health/live", None).await.expect(200);
    let r = app.get("/metrics", None).await.expect(200);
    assert!(r.header("content-type").unwrap().starts_with("text/plain"));
    assert!(r.text.contains("http_requests_total{"), "{}", r.text);
    assert!(r.text.contains("route=\"/health/live\""), "{}", r.text);
    assert!(
        r.text.contains("http_request_duration_seconds_bucket"),
        "{}",
        r.text
    );
    assert!(r.text.contains("db_pool_max_connections"), "{}", r.text);
    assert!(r.text.contains("deliveries_pending"), "{}", r.text);
}

#[tokio::test]
async fn openapi_is_served_and_docs_work_offline() {
    let app = spawn_app().await;
    let doc = app.get("/openapi.json", None).await.expect(200);
    assert_eq!(doc.body["info"]["title"], "aftercare");
    assert!(doc.body["paths"]["/health/ready"]["get"].is_object());
    let docs = app.get("/docs/", None).await.expect(200);
    assert!(docs.text.contains("swagger"), "{}", docs.text);
    // The UI's script is served by us, not fetched from a CDN.
    let js = app
        .get("/docs/swagger-ui-bundle.js", None)
        .await
        .expect(200);
    assert!(js.text.len() > 10_000);
    app.get("/docs", None).await.expect(308);
}

#[test]
fn committed_openapi_matches_the_code() {
    let generated = aftercare::openapi::document_json();
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi/openapi.json is out of date; regenerate it with:\n    cargo run -- openapi > openapi/openapi.json"
    );
}

#[tokio::test]
async fn readiness_is_503_when_the_database_is_gone() {
    let app = spawn_app().await;
    let Some((admin, name)) = app.pg.clone() else {
        // SQLite is a file inside the process: it cannot become unreachable while the
        // process holds it open. This behaviour is exercised on the PostgreSQL run.
        eprintln!("readiness_is_503_when_the_database_is_gone: PostgreSQL only");
        return;
    };
    app.get("/health/ready", None).await.expect(200);
    let user = app.admin().await;
    tokio::task::spawn_blocking(move || {
        use diesel::connection::SimpleConnection;
        use diesel::Connection;
        let mut conn = diesel::PgConnection::establish(&admin).unwrap();
        conn.batch_execute(&format!("DROP DATABASE {name} WITH (FORCE)"))
            .unwrap();
    })
    .await
    .unwrap();
    let started = std::time::Instant::now();
    let r = app.get("/health/ready", None).await.expect(503);
    assert_eq!(r.header("retry-after"), Some("5"));
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    // An API request answers 503 too, promptly, without internals.
    let started = std::time::Instant::now();
    let r = app.get("/v1/me", user.t()).await.expect_problem(503);
    assert!(r.header("retry-after").is_some());
    assert!(!r.text.contains("database \""), "{}", r.text);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

#[tokio::test]
async fn body_errors_are_problems_naming_the_field() {
    let app = spawn_app().await;
    let malformed = app
        .raw(
            "POST",
            "/v1/auth/login",
            Some("application/json"),
            b"{\"email\":".to_vec(),
        )
        .await
        .expect_problem(400);
    assert!(malformed.body["detail"]
        .as_str()
        .unwrap()
        .contains("not valid JSON"));
    app.raw(
        "POST",
        "/v1/auth/login",
        Some("text/plain"),
        b"hello".to_vec(),
    )
    .await
    .expect_problem(415);
    app.raw("POST", "/v1/auth/login", None, b"{}".to_vec())
        .await
        .expect_problem(415);
    let big = vec![b' '; 70 * 1024];
    app.raw("POST", "/v1/auth/login", Some("application/json"), big)
        .await
        .expect_problem(413);
    let unknown = app
        .raw(
            "POST",
            "/v1/auth/login",
            Some("application/json"),
            br#"{"email":"a@b.org","password":"x","remember_me":true}"#.to_vec(),
        )
        .await
        .expect_problem(422);
    assert_eq!(unknown.error_fields(), vec!["remember_me"]);
    let wrong_type = app
        .raw(
            "POST",
            "/v1/auth/login",
            Some("application/json"),
            br#"{"email":5,"password":"x"}"#.to_vec(),
        )
        .await
        .expect_problem(422);
    assert_eq!(wrong_type.error_fields(), vec!["email"]);
}

#[tokio::test]
async fn the_document_lists_the_errors_every_operation_can_answer() {
    let app = spawn_app().await;
    let doc = app.get("/openapi.json", None).await.expect(200).body;
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let responses = op["responses"].as_object().unwrap();
            let here = format!("{method} {path}");
            // Problems are described as what they are.
            for (code, r) in responses {
                if let Some(content) = r["content"].as_object() {
                    let problem = content
                        .values()
                        .any(|c| c["schema"]["$ref"] == "#/components/schemas/Problem");
                    if problem {
                        assert!(
                            content.contains_key("application/problem+json"),
                            "{here} {code}"
                        );
                    }
                }
            }
            if op.get("security").is_some() {
                assert!(responses.contains_key("401"), "{here} lacks 401");
            }
            if path == "/oauth/token" {
                // A form body; RFC 6749 §5.2 errors are 400 (and 401 for the client).
                for code in ["400", "401", "429"] {
                    assert!(responses.contains_key(code), "{here} lacks {code}");
                }
            } else if op.get("requestBody").is_some() {
                for code in ["400", "413", "415", "422"] {
                    assert!(responses.contains_key(code), "{here} lacks {code}");
                }
            }
            if path.starts_with("/v1/") {
                assert!(responses.contains_key("503"), "{here} lacks 503");
            }
            checked += 1;
        }
    }
    assert!(checked > 40, "{checked} operations");
}
