//! Email notices over SMTP.
//!
//! Email crosses systems we do not control, so notices carry no clinical detail: no patient,
//! rule, values or free text. They only say that an alert needs attention and where to look.

use std::fmt;
use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use url::{Host, Url};

/// Limit on each SMTP network operation (connect, each command and response).
pub const SMTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Limit on a whole send, so a server that answers slowly to every command cannot hold a
/// worker for many multiples of [`SMTP_TIMEOUT`].
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends alert notices through one SMTP server.
#[derive(Clone)]
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// Scheme, host, port and TLS mode, for diagnostics; never the credentials.
    endpoint: String,
}

impl fmt::Debug for Mailer {
    // Hand-written so credentials held by the transport can never end up in logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailer")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TlsMode {
    /// Plain SMTP, for a relay on the local host or network.
    None,
    /// STARTTLS, refusing to continue if the server does not offer it.
    StartTls,
    /// TLS from the first byte (SMTPS).
    Implicit,
}

impl Mailer {
    /// Builds a mailer from an SMTP URL and a From address.
    ///
    /// Accepted URLs:
    /// - `smtp://host[:port]` — plain SMTP (port 25), for a local relay;
    /// - `smtp://[user:pass@]host[:port]?tls=starttls` — STARTTLS required (port 587);
    /// - `smtps://[user:pass@]host[:port]` — implicit TLS (port 465).
    ///
    /// Credentials must be percent-encoded and are refused without TLS.
    /// No connection is made here; errors never include the password.
    pub fn new(smtp_url: &str, from: &str) -> Result<Mailer, String> {
        let url =
            Url::parse(smtp_url).map_err(|_| "The SMTP URL is not a valid URL.".to_owned())?;
        let mut tls_param = None;
        for (key, value) in url.query_pairs() {
            match (key.as_ref(), tls_param) {
                ("tls", None) => tls_param = Some(value.to_ascii_lowercase()),
                _ => return Err("The SMTP URL has an unsupported query parameter.".to_owned()),
            }
        }
        let mode =
            match (url.scheme(), tls_param.as_deref()) {
                ("smtp", None) => TlsMode::None,
                // "required" is lettre's spelling of the same thing.
                ("smtp", Some("starttls" | "required")) => TlsMode::StartTls,
                ("smtps", None) => TlsMode::Implicit,
                ("smtp" | "smtps", Some(_)) => return Err(
                    "The SMTP URL's tls parameter must be \"starttls\" (and only with smtp://)."
                        .to_owned(),
                ),
                _ => return Err("The SMTP URL must use smtp:// or smtps://.".to_owned()),
            };
        if !matches!(url.path(), "" | "/") || url.fragment().is_some() {
            return Err("The SMTP URL must not have a path.".to_owned());
        }
        let host = match url.host() {
            Some(Host::Domain(name)) => name.to_owned(),
            Some(Host::Ipv4(ip)) => ip.to_string(),
            Some(Host::Ipv6(ip)) => ip.to_string(),
            None => return Err("The SMTP URL must include a host.".to_owned()),
        };
        let port = url.port().unwrap_or(match mode {
            TlsMode::None => 25,
            TlsMode::StartTls => 587,
            TlsMode::Implicit => 465,
        });
        let credentials = if url.username().is_empty() && url.password().is_none() {
            None
        } else {
            if mode == TlsMode::None {
                return Err(
                    "Refusing to send SMTP credentials without TLS; use smtps:// or ?tls=starttls."
                        .to_owned(),
                );
            }
            let user = percent_decode(url.username()).ok_or_else(|| {
                "The SMTP user name is not valid percent-encoded UTF-8.".to_owned()
            })?;
            let password = percent_decode(url.password().unwrap_or_default()).ok_or_else(|| {
                "The SMTP password is not valid percent-encoded UTF-8.".to_owned()
            })?;
            Some(Credentials::new(user, password))
        };
        let from: Mailbox = from
            .parse()
            .map_err(|_| "The From address is not a valid email address.".to_owned())?;

        let tls = match mode {
            TlsMode::None => Tls::None,
            TlsMode::StartTls | TlsMode::Implicit => {
                let params = TlsParameters::new(host.clone())
                    .map_err(|e| format!("Could not set up TLS for SMTP: {e}"))?;
                if mode == TlsMode::StartTls {
                    Tls::Required(params)
                } else {
                    Tls::Wrapper(params)
                }
            }
        };
        // builder_dangerous only means "no TLS preset"; TLS is set explicitly just below.
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.as_str())
            .port(port)
            .tls(tls)
            .timeout(Some(SMTP_TIMEOUT));
        if let Some(credentials) = credentials {
            builder = builder.credentials(credentials);
        }
        let mode_name = match mode {
            TlsMode::None => "plain",
            TlsMode::StartTls => "starttls",
            TlsMode::Implicit => "implicit-tls",
        };
        Ok(Mailer {
            transport: builder.build(),
            from,
            endpoint: format!(
                "{}://{}:{port} ({mode_name})",
                url.scheme(),
                url.host_str().unwrap_or_default()
            ),
        })
    }

    /// Sends a plain-text notice (an alert notice, an address confirmation) to one recipient.
    ///
    /// Errors are short sentences without the recipient address or message content.
    pub async fn send_notice(
        &self,
        to: &str,
        subject: &str,
        body_text: &str,
    ) -> Result<(), String> {
        let to: Mailbox = to
            .parse()
            .map_err(|_| "The recipient is not a valid email address.".to_owned())?;
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body_text.to_owned())
            .map_err(|e| format!("Could not build the email: {e}"))?;
        match tokio::time::timeout(SEND_TIMEOUT, self.transport.send(message)).await {
            Ok(Ok(_)) => {
                tracing::debug!(endpoint = %self.endpoint, "notice sent");
                Ok(())
            }
            Ok(Err(e)) => {
                let kind = if e.is_permanent() {
                    "permanently"
                } else {
                    "temporarily"
                };
                Err(format!(
                    "The SMTP server {kind} refused or failed the message: {e}"
                ))
            }
            Err(_) => Err("Sending the email timed out.".to_owned()),
        }
    }
}

/// Decodes `%XX` escapes as used in URL user info; `None` if the result is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = bytes
            .get(i + 1..i + 3)
            .filter(|_| bytes[i] == b'%')
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// Width at which notice paragraphs are wrapped.
const WRAP_WIDTH: usize = 72;

/// Greedy word wrap of one paragraph at [`WRAP_WIDTH`] columns.
fn wrap(paragraph: &str) -> String {
    let mut out = String::with_capacity(paragraph.len() + 8);
    let mut column = 0;
    for word in paragraph.split_whitespace() {
        if column > 0 && column + 1 + word.len() > WRAP_WIDTH {
            out.push('\n');
            column = 0;
        } else if column > 0 {
            out.push(' ');
            column += 1;
        }
        out.push_str(word);
        column += word.len();
    }
    out
}

/// Subject and body of the message asking the owner of a new sign-in address to confirm it.
///
/// It names no clinic, patient or person: only the product, the code and what to do with it.
pub fn email_confirmation_text(code: &str, valid_hours: i64) -> (String, String) {
    let body = [
        wrap(
            "Someone - we hope you - asked to make this the address they sign in to aftercare \
             with. To confirm, enter this code where you asked for the change:",
        ),
        format!("    {code}"),
        wrap(&format!(
            "The code works for {valid_hours} hours. Until it is entered, the account keeps \
             signing in with its current address."
        )),
        wrap("If you did not ask for this, ignore this message: nothing changes."),
    ]
    .join("\n\n");
    (
        "aftercare: confirm your new sign-in address".to_owned(),
        body,
    )
}

/// Subject and body of the message to an address asked for by another account, when an
/// account already signs in with it. Only the address's owner reads it.
pub fn email_already_in_use_text() -> (String, String) {
    let body = [
        wrap(
            "Someone asked to make this the address they sign in to aftercare with, but an \
             account already signs in with it, so nothing was changed.",
        ),
        wrap(
            "If that was you, keep signing in with this address as before. If it was not, you \
             can ignore this message.",
        ),
    ]
    .join("\n\n");
    ("aftercare: a request to use this address".to_owned(), body)
}

/// Subject and body of the message to an account's previous address once a change of
/// address is confirmed.
pub fn email_changed_text() -> (String, String) {
    let body = [
        wrap(
            "The address this aftercare account signs in with has just been changed, and \
             this address no longer signs in.",
        ),
        wrap("If you did not make this change, contact your clinic straight away."),
    ]
    .join("\n\n");
    (
        "aftercare: your sign-in address was changed".to_owned(),
        body,
    )
}

/// Subject and body of an alert email: severity and escalation only, no clinical detail.
///
/// `severity` is reduced to ASCII letters so nothing unexpected can reach the subject line.
pub fn alert_notice_text(severity: &str, escalated: bool, dashboard_url: &str) -> (String, String) {
    let mut severity: String = severity
        .chars()
        .filter(char::is_ascii_alphabetic)
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if severity.is_empty() {
        severity.push_str("new");
    }
    let article = if severity.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    let (subject, opening) = if escalated {
        (
            format!("aftercare: an unacknowledged {severity} alert has been escalated"),
            format!(
                "{article} {severity} alert in aftercare was not acknowledged in time and has been \
                 escalated to the care team and the organisation's administrators."
            ),
        )
    } else {
        (
            format!("aftercare: {article} {severity} alert needs your attention"),
            format!("{article} {severity} alert in aftercare needs your attention."),
        )
    };
    let mut opening = opening;
    // Capitalise the sentence start ("A high alert ..."); severity words are ASCII.
    if let Some(first) = opening.get_mut(0..1) {
        first.make_ascii_uppercase();
    }
    // Wrapped so the body stays 7-bit and readable as sent, rather than quoted-printable.
    let body = format!(
        "{}\n\n{}\n\n{dashboard_url}\n\n{}\n",
        wrap(&opening),
        wrap("For privacy, this email contains no details. Please sign in to review the alert:"),
        wrap("This is an automated message from aftercare; replies are not read."),
    );
    (subject, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::testing_smtp;

    /// Words that would suggest clinical detail leaked into a notice.
    const CLINICAL_WORDS: &[&str] = &[
        "patient", "relapse", "craving", "mood", "sleep", "check-in", "checkin", "score", "rule",
        "drink", "alcohol", "drug", "use", "value", "note", "diagnos",
    ];

    fn unfold(message: &str) -> String {
        message.replace("\r\n ", " ").replace("\r\n\t", " ")
    }

    fn assert_no_clinical_words(text: &str) {
        let lower = text.to_lowercase();
        for word in CLINICAL_WORDS {
            let found = lower
                .split(|c: char| !c.is_ascii_alphanumeric() && c != '-')
                .any(|token| token.starts_with(word));
            assert!(!found, "clinical word {word:?} in {text:?}");
        }
    }

    #[test]
    fn notice_texts() {
        let (subject, body) = alert_notice_text("high", false, "https://app.example.org/alerts/a1");
        assert_eq!(subject, "aftercare: a high alert needs your attention");
        assert!(body.starts_with("A high alert in aftercare needs your attention."));
        assert!(body.contains("https://app.example.org/alerts/a1"));
        assert_no_clinical_words(&subject);
        assert_no_clinical_words(&body);

        let (subject, body) = alert_notice_text("critical", true, "https://app.example.org/");
        assert_eq!(
            subject,
            "aftercare: an unacknowledged critical alert has been escalated"
        );
        assert!(body.starts_with("A critical alert in aftercare was not acknowledged in time"));
        assert_no_clinical_words(&subject);
        assert_no_clinical_words(&body);

        for line in body.lines() {
            assert!(line.len() <= WRAP_WIDTH, "{line:?}");
        }

        let (subject, _) = alert_notice_text("Elevated\r\nBcc: x@example.org", false, "https://x/");
        assert_eq!(
            subject,
            "aftercare: an elevatedbccxexampleorg alert needs your attention"
        );
        let (subject, _) = alert_notice_text("", false, "https://x/");
        assert_eq!(subject, "aftercare: a new alert needs your attention");
    }

    #[test]
    fn url_forms() {
        let from = "aftercare <alerts@example.org>";
        for ok in [
            "smtp://localhost",
            "smtp://127.0.0.1:2525",
            "smtp://[::1]:2525",
            "smtp://mail.example.org?tls=starttls",
            "smtp://user:p%40ss@mail.example.org:587?tls=starttls",
            "smtp://mail.example.org?tls=required",
            "smtps://user:pass@mail.example.org",
            "smtps://mail.example.org:4650/",
        ] {
            assert!(Mailer::new(ok, from).is_ok(), "{ok} should be accepted");
        }
        for bad in [
            "http://mail.example.org",
            "mail.example.org:25",
            "smtp://",
            "smtp://user:hunter2@mail.example.org",
            "smtp://mail.example.org?tls=opportunistic",
            "smtps://mail.example.org?tls=starttls",
            "smtp://mail.example.org?foo=bar",
            "smtp://mail.example.org/helo-name",
        ] {
            let err = Mailer::new(bad, from).unwrap_err();
            assert!(!err.contains("hunter2"), "{err}");
            assert!(err.ends_with('.'), "{err}");
        }
        assert!(Mailer::new("smtp://localhost", "not an address").is_err());
    }

    #[test]
    fn debug_hides_credentials() {
        let mailer = Mailer::new("smtps://user:hunter2@mail.example.org", "a@example.org").unwrap();
        let shown = format!("{mailer:?}");
        assert!(shown.contains("mail.example.org:465"), "{shown}");
        assert!(
            !shown.contains("hunter2") && !shown.contains("user"),
            "{shown}"
        );
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("p%40ss%2Fw%3a").as_deref(), Some("p@ss/w:"));
        assert_eq!(percent_decode("100%").as_deref(), Some("100%"));
        assert_eq!(percent_decode("%zz").as_deref(), Some("%zz"));
        assert_eq!(percent_decode("%C3%A9").as_deref(), Some("é"));
        assert_eq!(percent_decode("%FF"), None);
    }

    #[tokio::test]
    async fn sends_a_notice_through_real_smtp() {
        let sink = testing_smtp::start().await;
        let mailer = Mailer::new(&sink.smtp_url(), "aftercare <alerts@example.org>").unwrap();
        let (subject, body) =
            alert_notice_text("critical", true, "https://app.example.org/alerts/0190");
        mailer
            .send_notice("Counsellor <counsellor@example.org>", &subject, &body)
            .await
            .unwrap();

        let messages = sink.messages();
        assert_eq!(messages.len(), 1);
        let message = unfold(&messages[0]);
        assert!(
            message.contains("To: \"Counsellor\" <counsellor@example.org>")
                || message.contains("To: Counsellor <counsellor@example.org>"),
            "{message}"
        );
        assert!(
            message.contains("From: aftercare <alerts@example.org>"),
            "{message}"
        );
        assert!(
            message.contains(&format!("Subject: {subject}")),
            "{message}"
        );
        assert!(message.contains("Content-Type: text/plain"), "{message}");
        assert!(!message.contains("quoted-printable"), "{message}");
        let (_, received_body) = message.split_once("\r\n\r\n").unwrap();
        assert_eq!(
            received_body.replace("\r\n", "\n").trim_end(),
            body.trim_end()
        );
        assert_no_clinical_words(received_body);
    }

    #[tokio::test]
    async fn bad_recipient_is_an_error_without_the_address() {
        let sink = testing_smtp::start().await;
        let mailer = Mailer::new(&sink.smtp_url(), "alerts@example.org").unwrap();
        let err = mailer
            .send_notice("not-an-address", "s", "b")
            .await
            .unwrap_err();
        assert!(!err.contains("not-an-address"));
        assert!(sink.messages().is_empty());
    }

    #[tokio::test]
    async fn unreachable_server_is_an_error() {
        let port = {
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
                .await
                .unwrap();
            listener.local_addr().unwrap().port()
        };
        let mailer =
            Mailer::new(&format!("smtp://127.0.0.1:{port}"), "alerts@example.org").unwrap();
        assert!(mailer.send_notice("a@example.org", "s", "b").await.is_err());
    }
}
