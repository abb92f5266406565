//! Signed webhook delivery (Standard Webhooks headers) with an SSRF guard and DNS pinning.

use std::error::Error as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use reqwest::header::CONTENT_TYPE;
use serde::{Deserialize, Serialize};
use url::{Host, Url};

use super::signing;
use super::ssrf::{self, GuardError};

/// `User-Agent` sent with every delivery.
pub const USER_AGENT: &str = concat!("aftercare-webhooks/", env!("CARGO_PKG_VERSION"));

/// Default limit on establishing the TCP (and TLS) connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Default limit on the whole request, from connecting to receiving the response head.
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(10);

/// What the caller should do after a delivery attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The receiver answered 2xx.
    Delivered,
    /// A transient failure: timeout, connection or DNS error, 5xx, 408, 429, or 3xx (redirects
    /// are not followed, and the receiver may fix its URL).
    Retry,
    /// The receiver answered 410 Gone: stop delivering and disable the webhook.
    Gone,
    /// The URL was refused by the SSRF guard at delivery time: do not retry.
    Refused,
    /// Any other failure, chiefly other 4xx answers.
    ///
    /// Retried like [`Verdict::Retry`]: a 401/404 usually means the receiver is being
    /// redeployed or its auth is misconfigured, which an admin can fix within the retry window;
    /// the attempt cap still bounds the cost. Kept apart from `Retry` so admins can tell a
    /// receiver that rejects us from one that is down.
    Failed,
}

impl Verdict {
    /// Whether the delivery should be attempted again (subject to the attempt cap).
    pub fn should_retry(self) -> bool {
        matches!(self, Verdict::Retry | Verdict::Failed)
    }

    /// Stable lower-case name, e.g. for storage or metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Delivered => "delivered",
            Verdict::Retry => "retry",
            Verdict::Gone => "gone",
            Verdict::Refused => "refused",
            Verdict::Failed => "failed",
        }
    }
}

/// Result of one delivery attempt, suitable for recording in the delivery log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendOutcome {
    /// HTTP status answered by the receiver, if it answered.
    pub status: Option<u16>,
    /// Short description of what went wrong; never contains the URL, secrets or the body.
    pub error: Option<String>,
    /// Wall-clock duration of the attempt, including DNS resolution.
    pub duration_ms: u64,
    /// What the caller should do next.
    pub verdict: Verdict,
}

/// Sends signed webhook deliveries.
///
/// A `reqwest::Client` is built per delivery rather than shared: DNS pinning
/// (`resolve_to_addrs`) is fixed when a client is built, and a shared connection pool could
/// reuse a connection to an address that was never checked for this delivery. Webhook volume is
/// low, so the lost connection reuse costs little.
#[derive(Debug, Clone)]
pub struct WebhookClient {
    connect_timeout: Duration,
    timeout: Duration,
}

impl Default for WebhookClient {
    fn default() -> Self {
        Self::new()
    }
}

impl WebhookClient {
    /// A client with the default timeouts (5 s connect, 10 s total).
    pub fn new() -> Self {
        Self::with_timeouts(CONNECT_TIMEOUT, TOTAL_TIMEOUT)
    }

    /// A client with custom timeouts (tests use short ones).
    pub fn with_timeouts(connect_timeout: Duration, timeout: Duration) -> Self {
        WebhookClient {
            connect_timeout,
            timeout,
        }
    }

    /// Delivers `body` (JSON) to `url`, signed with `secret`, and reports what happened.
    ///
    /// The URL is checked and its host resolved through the SSRF guard first; the connection is
    /// then pinned to exactly the addresses that passed, so a DNS answer that changes between
    /// check and connect (rebinding) cannot redirect the request.
    pub async fn send(
        &self,
        url: &str,
        secret: &str,
        msg_id: &str,
        body: &[u8],
        allow_private: bool,
    ) -> SendOutcome {
        let started = Instant::now();
        let (status, error, verdict) = self
            .guarded_send(url, secret, msg_id, body, allow_private)
            .await;
        let outcome = SendOutcome {
            status,
            error,
            duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            verdict,
        };
        tracing::debug!(
            msg_id,
            status = outcome.status,
            verdict = outcome.verdict.as_str(),
            duration_ms = outcome.duration_ms,
            "webhook delivery attempt"
        );
        outcome
    }

    async fn guarded_send(
        &self,
        url: &str,
        secret: &str,
        msg_id: &str,
        body: &[u8],
        allow_private: bool,
    ) -> (Option<u16>, Option<String>, Verdict) {
        let parsed = match ssrf::check_url_syntax(url, allow_private) {
            Ok(parsed) => parsed,
            Err(reason) => return (None, Some(reason), Verdict::Refused),
        };
        let addrs = match ssrf::resolve_guarded(&parsed, allow_private).await {
            Ok(addrs) => addrs,
            Err(GuardError::Refused(reason)) => return (None, Some(reason), Verdict::Refused),
            Err(GuardError::Lookup(reason)) => return (None, Some(reason), Verdict::Retry),
        };
        let timestamp = chrono::Utc::now().timestamp();
        let signature = match signing::sign(secret, msg_id, timestamp, body) {
            Ok(signature) => signature,
            // Our secrets are generated, so this means corrupted storage; retrying gives an
            // admin the chance to rotate the secret before the delivery is dead-lettered.
            Err(e) => return (None, Some(e.to_string()), Verdict::Failed),
        };
        self.send_pinned(&parsed, &addrs, msg_id, timestamp, &signature, body)
            .await
    }

    /// Sends to `url`, connecting only to `addrs` (already checked by the caller).
    async fn send_pinned(
        &self,
        url: &Url,
        addrs: &[SocketAddr],
        msg_id: &str,
        timestamp: i64,
        signature: &str,
        body: &[u8],
    ) -> (Option<u16>, Option<String>, Verdict) {
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout)
            .user_agent(USER_AGENT)
            // A proxy from the environment would do its own DNS lookup and defeat the pinning.
            .no_proxy()
            .pool_max_idle_per_host(0);
        // IP-literal hosts are never resolved, so only names need pinning.
        if let Some(Host::Domain(name)) = url.host() {
            builder = builder.resolve_to_addrs(name, addrs);
        }
        let client = match builder.build() {
            Ok(client) => client,
            Err(e) => return (None, Some(describe(e)), Verdict::Retry),
        };
        let result = client
            .post(url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header("webhook-id", msg_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body.to_vec())
            .send()
            .await;
        match result {
            // The response body is deliberately not read: we have no use for it and it is
            // receiver-controlled.
            Ok(response) => {
                let status = response.status().as_u16();
                let verdict = classify(status);
                let error = match verdict {
                    Verdict::Delivered => None,
                    _ if (300..400).contains(&status) => Some(format!(
                        "The receiver answered {status}; redirects are not followed."
                    )),
                    _ => Some(format!("The receiver answered {status}.")),
                };
                (Some(status), error, verdict)
            }
            Err(e) if e.is_builder() => (None, Some(describe(e)), Verdict::Failed),
            Err(e) => (None, Some(describe(e)), Verdict::Retry),
        }
    }
}

/// Maps an HTTP status to a verdict.
fn classify(status: u16) -> Verdict {
    match status {
        200..=299 => Verdict::Delivered,
        410 => Verdict::Gone,
        408 | 429 => Verdict::Retry,
        300..=399 | 500..=599 => Verdict::Retry,
        _ => Verdict::Failed,
    }
}

/// Describes a transport error without the URL, which may carry tokens in its query.
fn describe(err: reqwest::Error) -> String {
    let err = err.without_url();
    if err.is_timeout() {
        return "The request timed out.".to_owned();
    }
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        // Error layers often repeat their cause in their own message.
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::testing_http::HttpSink;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const BODY: &[u8] =
        br#"{"type":"alert.created","timestamp":"2024-01-01T00:00:00Z","data":{"alert_id":"a1"}}"#;

    fn fast_client() -> WebhookClient {
        WebhookClient::with_timeouts(Duration::from_secs(2), Duration::from_secs(2))
    }

    #[tokio::test]
    async fn delivers_with_valid_standard_webhooks_headers() {
        let sink = HttpSink::start().await;
        let before = chrono::Utc::now().timestamp();
        let outcome = fast_client()
            .send(&sink.url("/hook?x=1"), SECRET, "msg_1", BODY, true)
            .await;
        assert_eq!(outcome.verdict, Verdict::Delivered, "{outcome:?}");
        assert_eq!(outcome.status, Some(200));
        assert_eq!(outcome.error, None);

        let requests = sink.requests();
        assert_eq!(requests.len(), 1);
        let req = &requests[0];
        assert_eq!(req.method, "POST");
        assert_eq!(req.path, "/hook?x=1");
        assert_eq!(req.body, BODY);
        assert_eq!(req.header("content-type"), Some("application/json"));
        assert_eq!(req.header("user-agent"), Some(USER_AGENT));
        assert!(USER_AGENT.starts_with("aftercare-webhooks/"));
        assert_eq!(req.header("webhook-id"), Some("msg_1"));
        let timestamp: i64 = req.header("webhook-timestamp").unwrap().parse().unwrap();
        assert!((before..=before + 5).contains(&timestamp));
        let signature = req.header("webhook-signature").unwrap();
        assert!(signing::verify(
            SECRET, "msg_1", timestamp, &req.body, signature
        ));
        assert!(!signing::verify(
            SECRET, "msg_2", timestamp, &req.body, signature
        ));
    }

    #[tokio::test]
    async fn statuses_map_to_verdicts() {
        let cases = [
            (201, Verdict::Delivered),
            (204, Verdict::Delivered),
            (500, Verdict::Retry),
            (503, Verdict::Retry),
            (429, Verdict::Retry),
            (408, Verdict::Retry),
            (410, Verdict::Gone),
            (400, Verdict::Failed),
            (401, Verdict::Failed),
            (404, Verdict::Failed),
        ];
        let sink = HttpSink::with_statuses(cases.iter().map(|(s, _)| *s)).await;
        let client = fast_client();
        for (status, verdict) in cases {
            let outcome = client.send(&sink.url("/"), SECRET, "msg", BODY, true).await;
            assert_eq!(outcome.status, Some(status));
            assert_eq!(outcome.verdict, verdict, "status {status}");
            assert_eq!(outcome.error.is_some(), verdict != Verdict::Delivered);
        }
    }

    #[tokio::test]
    async fn redirects_are_not_followed() {
        for status in [301, 302, 307, 308] {
            let sink = HttpSink::with_statuses([status]).await;
            let outcome = fast_client()
                .send(&sink.url("/hook"), SECRET, "msg", BODY, true)
                .await;
            assert_eq!(outcome.status, Some(status));
            assert_eq!(outcome.verdict, Verdict::Retry);
            // Give a wrongly followed redirect time to arrive before counting.
            tokio::time::sleep(Duration::from_millis(100)).await;
            let requests = sink.requests();
            assert_eq!(requests.len(), 1);
            assert_eq!(requests[0].path, "/hook");
        }
    }

    #[tokio::test]
    async fn scripted_failures_then_success() {
        let sink = HttpSink::with_statuses([503, 500]).await;
        let client = fast_client();
        let verdicts: Vec<Verdict> = {
            let mut v = Vec::new();
            for _ in 0..3 {
                v.push(
                    client
                        .send(&sink.url("/"), SECRET, "msg", BODY, true)
                        .await
                        .verdict,
                );
            }
            v
        };
        assert_eq!(
            verdicts,
            [Verdict::Retry, Verdict::Retry, Verdict::Delivered]
        );
        assert_eq!(sink.requests().len(), 3);
    }

    #[tokio::test]
    async fn loopback_is_refused_unless_private_allowed() {
        let sink = HttpSink::start().await;
        for url in [
            sink.url("/"),
            format!("http://localhost:{}/", sink.addr.port()),
        ] {
            let outcome = fast_client().send(&url, SECRET, "msg", BODY, false).await;
            assert_eq!(outcome.verdict, Verdict::Refused, "{url}");
            assert_eq!(outcome.status, None);
            assert!(outcome.error.is_some());
        }
        assert!(sink.requests().is_empty());

        let url = format!("http://localhost:{}/", sink.addr.port());
        let outcome = fast_client().send(&url, SECRET, "msg", BODY, true).await;
        assert_eq!(outcome.verdict, Verdict::Delivered, "{outcome:?}");
        assert_eq!(sink.requests().len(), 1);
    }

    #[tokio::test]
    async fn bad_urls_are_refused() {
        for url in ["ftp://example.com/", "not a url", "http://user:pw@8.8.8.8/"] {
            let outcome = fast_client().send(url, SECRET, "msg", BODY, true).await;
            assert_eq!(outcome.verdict, Verdict::Refused, "{url}");
            assert!(!outcome.error.unwrap_or_default().contains("pw"));
        }
    }

    #[tokio::test]
    async fn unresolvable_host_is_retried() {
        let outcome = fast_client()
            .send(
                "https://no-such-host.invalid/hook",
                SECRET,
                "msg",
                BODY,
                false,
            )
            .await;
        assert_eq!(outcome.verdict, Verdict::Retry);
        assert_eq!(outcome.status, None);
    }

    #[tokio::test]
    async fn connection_errors_are_retried_without_leaking_the_url() {
        // Bind then drop to find a port nobody listens on.
        let port = {
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
                .await
                .unwrap();
            listener.local_addr().unwrap().port()
        };
        let url = format!("http://127.0.0.1:{port}/hook?token=s3cret-token");
        let outcome = fast_client().send(&url, SECRET, "msg", BODY, true).await;
        assert_eq!(outcome.verdict, Verdict::Retry);
        assert_eq!(outcome.status, None);
        let error = outcome.error.unwrap();
        assert!(!error.contains("s3cret-token"), "{error}");
        assert!(!error.contains("/hook"), "{error}");
    }

    #[tokio::test]
    async fn timeouts_are_retried() {
        // Accepts connections but never answers.
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let holder = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((stream, _)) = listener.accept().await {
                held.push(stream);
            }
        });
        let client =
            WebhookClient::with_timeouts(Duration::from_secs(1), Duration::from_millis(300));
        let url = format!("http://{addr}/hook?token=s3cret-token");
        let outcome = client.send(&url, SECRET, "msg", BODY, true).await;
        assert_eq!(outcome.verdict, Verdict::Retry);
        assert_eq!(outcome.error.as_deref(), Some("The request timed out."));
        assert!(outcome.duration_ms >= 300);
        holder.abort();
    }

    #[tokio::test]
    async fn connection_is_pinned_to_the_checked_addresses() {
        // The name does not exist in DNS: the request can only arrive if the pinned address is
        // used instead of a fresh lookup.
        let sink = HttpSink::start().await;
        let url = Url::parse(&format!(
            "http://receiver.example.test:{}/pinned",
            sink.addr.port()
        ))
        .unwrap();
        let (status, error, verdict) = fast_client()
            .send_pinned(&url, &[sink.addr], "msg", 1, "v1,x", BODY)
            .await;
        assert_eq!(
            (status, error, verdict),
            (Some(200), None, Verdict::Delivered)
        );
        let requests = sink.requests();
        assert_eq!(requests.len(), 1);
        assert_eq!(
            requests[0].header("host"),
            Some(format!("receiver.example.test:{}", sink.addr.port()).as_str())
        );
    }

    #[test]
    fn classification_edges() {
        assert_eq!(classify(200), Verdict::Delivered);
        assert_eq!(classify(299), Verdict::Delivered);
        assert_eq!(classify(300), Verdict::Retry);
        assert_eq!(classify(399), Verdict::Retry);
        assert_eq!(classify(499), Verdict::Failed);
        assert_eq!(classify(599), Verdict::Retry);
        assert_eq!(classify(600), Verdict::Failed);
        assert!(Verdict::Failed.should_retry() && Verdict::Retry.should_retry());
        assert!(!Verdict::Gone.should_retry() && !Verdict::Refused.should_retry());
        assert!(!Verdict::Delivered.should_retry());
        assert_eq!(serde_json::to_string(&Verdict::Gone).unwrap(), "\"gone\"");
    }
}
