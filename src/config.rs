//! Settings from `AFTERCARE_*` environment variables, validated once at start.
//!
//! Every problem is collected and reported together, each naming the variable and the
//! bad value, so an operator fixes a deployment in one pass rather than one error at a time.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Which database the process talks to, chosen by the scheme of `AFTERCARE_DATABASE_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// An embedded SQLite file at this path (relative to the working directory unless absolute).
    Sqlite(PathBuf),
    /// A PostgreSQL connection URL, passed to libpq as given.
    Postgres(String),
}

impl DatabaseUrl {
    /// Parses `sqlite://relative.db`, `sqlite:///absolute/path.db`, `postgres://…` or `postgresql://…`.
    pub fn parse(value: &str) -> Result<Self, String> {
        if let Some(rest) = value.strip_prefix("sqlite://") {
            if rest.is_empty() {
                return Err(
                    "the sqlite:// URL has no file path (try sqlite://aftercare.db)".into(),
                );
            }
            return Ok(Self::Sqlite(PathBuf::from(rest)));
        }
        if value.starts_with("postgres://") || value.starts_with("postgresql://") {
            return Ok(Self::Postgres(value.to_owned()));
        }
        Err("the scheme must be sqlite:// or postgres:// (postgresql://)".into())
    }

    /// A name for the backend, for logs and metrics; never the URL (it may hold a password).
    pub fn backend(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgres",
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log shippers.
    Json,
}

/// SMTP settings for alert notices by email.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    /// `smtp://host:port` (plain, for a local relay) or `smtps://user:pass@host[:port]`.
    pub url: String,
    /// The `From:` address.
    pub from: String,
}

/// All runtime settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to listen on (`AFTERCARE_BIND`, default `127.0.0.1:8080`); port 0 picks a free one.
    pub bind: SocketAddr,
    /// The database (`AFTERCARE_DATABASE_URL`, default `sqlite://aftercare.db`).
    pub database_url: DatabaseUrl,
    /// Maximum pooled connections (`AFTERCARE_DB_POOL_SIZE`, default 10).
    pub db_pool_size: u32,
    /// How long a request waits for a connection before answering 503 (`AFTERCARE_DB_TIMEOUT_MS`).
    pub db_timeout: Duration,
    /// Log format (`AFTERCARE_LOG_FORMAT`: `text` or `json`).
    pub log_format: LogFormat,
    /// Log filter (`AFTERCARE_LOG`, default `info`), in `tracing` env-filter syntax.
    pub log_filter: String,
    /// PEM file with the Ed25519 private key that signs access tokens (`AFTERCARE_JWT_PRIVATE_KEY_FILE`).
    pub jwt_private_key_file: Option<PathBuf>,
    /// Token issuer (`AFTERCARE_JWT_ISSUER`).
    pub jwt_issuer: String,
    /// Access-token lifetime (`AFTERCARE_ACCESS_TOKEN_TTL_SECS`, default 900).
    pub access_token_ttl: Duration,
    /// Refresh-token lifetime (`AFTERCARE_REFRESH_TOKEN_TTL_SECS`, default 30 days).
    pub refresh_token_ttl: Duration,
    /// Invitation lifetime (`AFTERCARE_INVITATION_TTL_HOURS`, default 168).
    pub invitation_ttl: Duration,
    /// Concurrent argon2 hashes allowed (`AFTERCARE_MAX_CONCURRENT_HASHES`, default: cores):
    /// the number of hashing threads, each holding one 19 MiB argon2 buffer.
    pub max_concurrent_hashes: usize,
    /// Sign-ins and password changes that may wait for a hashing thread
    /// (`AFTERCARE_HASH_QUEUE`, default 64); beyond it they are answered 503 at once.
    pub hash_queue: usize,
    /// How long a request's body may take to arrive, from its headers on
    /// (`AFTERCARE_BODY_TIMEOUT_MS`, default 10000); later is a 408 and the connection closes.
    pub body_timeout: Duration,
    /// PostgreSQL `statement_timeout` on every connection (`AFTERCARE_DB_STATEMENT_TIMEOUT_MS`,
    /// default 15000): no query runs longer.
    pub db_statement_timeout: Duration,
    /// PostgreSQL `lock_timeout` on every connection (`AFTERCARE_DB_LOCK_TIMEOUT_MS`, default
    /// 2000): a statement waiting longer for a row or table lock fails with 503 and
    /// `Retry-After` instead of holding its pooled connection.
    pub db_lock_timeout: Duration,
    /// Failed logins per account or address before throttling (`AFTERCARE_LOGIN_MAX_FAILURES`, default 5).
    pub login_max_failures: u32,
    /// Failed logins from one client address before throttling
    /// (`AFTERCARE_LOGIN_MAX_FAILURES_PER_ADDRESS`, default 20: clinics share networks).
    pub login_max_failures_per_address: u32,
    /// The throttling window (`AFTERCARE_LOGIN_WINDOW_SECS`, default 900).
    pub login_window: Duration,
    /// Reverse proxies whose `X-Forwarded-For` is believed (`AFTERCARE_TRUSTED_PROXIES`,
    /// comma-separated IP addresses; default none, so the TCP peer is the client).
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// How often the missed-check-in and escalation sweep runs (`AFTERCARE_SWEEP_INTERVAL_SECS`, default 300).
    pub sweep_interval: Duration,
    /// First retry delay for webhook and email deliveries (`AFTERCARE_DELIVERY_RETRY_BASE_MS`, default 5000).
    pub delivery_retry_base: Duration,
    /// Attempts before a delivery is dead-lettered (`AFTERCARE_DELIVERY_MAX_ATTEMPTS`, default 8).
    pub delivery_max_attempts: u32,
    /// Allow webhooks to private and loopback addresses (`AFTERCARE_WEBHOOK_ALLOW_PRIVATE_NETWORKS`).
    pub webhook_allow_private_networks: bool,
    /// SMTP for email notices (`AFTERCARE_SMTP_URL` and `AFTERCARE_SMTP_FROM`), off when unset.
    pub smtp: Option<SmtpSettings>,
    /// Where counsellors open the dashboard, used in email notices (`AFTERCARE_DASHBOARD_URL`).
    pub dashboard_url: String,
    /// The service's own public base URL (`AFTERCARE_PUBLIC_URL`, e.g.
    /// `https://aftercare.clinic.example`), as integrations reach it: the token endpoint's URL,
    /// which client assertions must name as their audience, and the discovery document's
    /// addresses. Unset: `http://` and the bound address.
    pub public_url: Option<String>,
    /// Run background workers in this process (`AFTERCARE_WORKERS`, default true).
    pub run_workers: bool,
    /// HTTP worker threads (`AFTERCARE_HTTP_WORKERS`, default: one per core).
    pub http_workers: usize,
}

/// One setting that could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingError {
    /// The environment variable.
    pub variable: &'static str,
    /// What is wrong and what would be accepted.
    pub message: String,
}

impl std::fmt::Display for SettingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.variable, self.message)
    }
}

/// All the settings that could not be used, reported together.
#[derive(Debug)]
pub struct SettingsError(pub Vec<SettingError>);

impl std::fmt::Display for SettingsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "invalid configuration:")?;
        for e in &self.0 {
            writeln!(f, "  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for SettingsError {}

struct Reader<'a> {
    get: &'a dyn Fn(&str) -> Option<String>,
    errors: Vec<SettingError>,
}

impl Reader<'_> {
    fn raw(&self, name: &str) -> Option<String> {
        (self.get)(name).filter(|v| !v.trim().is_empty())
    }

    fn string(&self, name: &'static str, default: &str) -> String {
        self.raw(name).unwrap_or_else(|| default.to_owned())
    }

    fn number<T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy>(
        &mut self,
        name: &'static str,
        default: T,
        min: T,
        max: T,
    ) -> T {
        let Some(raw) = self.raw(name) else {
            return default;
        };
        match raw.trim().parse::<T>() {
            Ok(v) if v >= min && v <= max => v,
            _ => {
                self.errors.push(SettingError {
                    variable: name,
                    message: format!("`{raw}` is not a whole number from {min} to {max}"),
                });
                default
            }
        }
    }

    /// A key file that exists, or can be created (its folder exists) — checked before anything
    /// touches the database.
    fn key_file(&mut self, name: &'static str) -> Option<PathBuf> {
        let path = PathBuf::from(self.raw(name)?);
        let folder = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if !path.is_file() && !folder.is_dir() {
            self.errors.push(SettingError {
                variable: name,
                message: format!(
                    "`{}` does not exist and its folder `{}` does not either",
                    path.display(),
                    folder.display()
                ),
            });
        }
        Some(path)
    }

    fn log_filter(&mut self, name: &'static str, default: &str) -> String {
        let value = self.string(name, default);
        if tracing_subscriber::EnvFilter::try_new(&value).is_err() {
            self.errors.push(SettingError {
                variable: name,
                message: format!(
                    "`{value}` is not a log filter (e.g. `info`, `warn`, `aftercare=debug,info`)"
                ),
            });
        }
        value
    }

    fn web_url(&mut self, name: &'static str, default: &str) -> String {
        let value = self.string(name, default);
        match url::Url::parse(&value) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            _ => self.errors.push(SettingError {
                variable: name,
                message: format!("`{value}` is not an http(s) URL"),
            }),
        }
        value
    }

    fn addresses(&mut self, name: &'static str) -> Vec<std::net::IpAddr> {
        let Some(raw) = self.raw(name) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part.parse() {
                Ok(ip) => out.push(ip),
                Err(_) => self.errors.push(SettingError {
                    variable: name,
                    message: format!("`{part}` is not an IP address (give a comma-separated list)"),
                }),
            }
        }
        out
    }

    fn boolean(&mut self, name: &'static str, default: bool) -> bool {
        let Some(raw) = self.raw(name) else {
            return default;
        };
        match raw.trim().to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => true,
            "0" | "false" | "no" | "off" => false,
            _ => {
                self.errors.push(SettingError {
                    variable: name,
                    message: format!("`{raw}` is not true or false"),
                });
                default
            }
        }
    }
}

impl Settings {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, SettingsError> {
        Self::from_vars(std::env::vars().collect())
    }

    /// Reads settings from these environment variables. An `AFTERCARE_*` variable that is
    /// not a setting is refused, naming it: a misspelt `AFTERCARE_DATABSE_URL` must not
    /// quietly leave a clinic on the embedded default.
    pub fn from_vars(vars: Vec<(String, String)>) -> Result<Self, SettingsError> {
        /// Read by the commands rather than the server.
        const OTHER_NAMES: [&str; 2] = ["AFTERCARE_ADMIN_PASSWORD", "AFTERCARE_LOAD_PASSWORD"];
        let env: std::collections::HashMap<String, String> = vars.into_iter().collect();
        let asked = std::cell::RefCell::new(std::collections::HashSet::new());
        let result = Self::from_lookup(&|name| {
            asked.borrow_mut().insert(name.to_owned());
            env.get(name).cloned()
        });
        let asked = asked.into_inner();
        let mut unknown: Vec<SettingError> = env
            .keys()
            .filter(|k| k.starts_with("AFTERCARE_"))
            .filter(|k| !asked.contains(k.as_str()) && !OTHER_NAMES.contains(&k.as_str()))
            .map(|k| SettingError {
                variable: "AFTERCARE_*",
                message: format!("`{k}` is not a setting (misspelt?); see the README's table"),
            })
            .collect();
        unknown.sort_by(|a, b| a.message.cmp(&b.message));
        match (result, unknown.is_empty()) {
            (r, true) => r,
            (Ok(_), false) => Err(SettingsError(unknown)),
            (Err(SettingsError(mut e)), false) => {
                e.append(&mut unknown);
                Err(SettingsError(e))
            }
        }
    }

    /// Reads settings through `get`, so tests can supply their own environment.
    pub fn from_lookup(get: &dyn Fn(&str) -> Option<String>) -> Result<Self, SettingsError> {
        let mut r = Reader {
            get,
            errors: Vec::new(),
        };

        let bind_raw = r.string("AFTERCARE_BIND", "127.0.0.1:8080");
        let bind = match bind_raw.parse::<SocketAddr>() {
            Ok(a) => a,
            Err(_) => {
                r.errors.push(SettingError {
                    variable: "AFTERCARE_BIND",
                    message: format!("`{bind_raw}` is not an address like 127.0.0.1:8080"),
                });
                SocketAddr::from(([127, 0, 0, 1], 8080))
            }
        };

        let db_raw = r.string("AFTERCARE_DATABASE_URL", "sqlite://aftercare.db");
        let database_url = match DatabaseUrl::parse(&db_raw) {
            Ok(u) => u,
            Err(why) => {
                r.errors.push(SettingError {
                    variable: "AFTERCARE_DATABASE_URL",
                    message: format!("`{}`: {why}", redact_url(&db_raw)),
                });
                DatabaseUrl::Sqlite(PathBuf::from("aftercare.db"))
            }
        };

        let log_raw = r.string("AFTERCARE_LOG_FORMAT", "text");
        let log_format = match log_raw.to_ascii_lowercase().as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            _ => {
                r.errors.push(SettingError {
                    variable: "AFTERCARE_LOG_FORMAT",
                    message: format!("`{log_raw}` is not `text` or `json`"),
                });
                LogFormat::Text
            }
        };

        let smtp = match (r.raw("AFTERCARE_SMTP_URL"), r.raw("AFTERCARE_SMTP_FROM")) {
            (None, None) => None,
            (Some(url), Some(from)) => {
                if !(url.starts_with("smtp://") || url.starts_with("smtps://")) {
                    r.errors.push(SettingError {
                        variable: "AFTERCARE_SMTP_URL",
                        message: format!(
                            "`{}` must start with smtp:// or smtps://",
                            redact_url(&url)
                        ),
                    });
                }
                if !from.contains('@') {
                    r.errors.push(SettingError {
                        variable: "AFTERCARE_SMTP_FROM",
                        message: format!("`{from}` is not an email address"),
                    });
                }
                Some(SmtpSettings { url, from })
            }
            (Some(_), None) => {
                r.errors.push(SettingError {
                    variable: "AFTERCARE_SMTP_FROM",
                    message: "is required when AFTERCARE_SMTP_URL is set".into(),
                });
                None
            }
            (None, Some(_)) => {
                r.errors.push(SettingError {
                    variable: "AFTERCARE_SMTP_URL",
                    message: "is required when AFTERCARE_SMTP_FROM is set".into(),
                });
                None
            }
        };

        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let settings = Settings {
            bind,
            database_url,
            db_pool_size: r.number("AFTERCARE_DB_POOL_SIZE", 10u32, 1, 200),
            db_timeout: Duration::from_millis(r.number(
                "AFTERCARE_DB_TIMEOUT_MS",
                5000u64,
                100,
                60_000,
            )),
            log_format,
            log_filter: r.log_filter("AFTERCARE_LOG", "info"),
            jwt_private_key_file: r.key_file("AFTERCARE_JWT_PRIVATE_KEY_FILE"),
            jwt_issuer: r.string("AFTERCARE_JWT_ISSUER", "aftercare"),
            access_token_ttl: Duration::from_secs(r.number(
                "AFTERCARE_ACCESS_TOKEN_TTL_SECS",
                900u64,
                60,
                3600,
            )),
            refresh_token_ttl: Duration::from_secs(r.number(
                "AFTERCARE_REFRESH_TOKEN_TTL_SECS",
                30 * 86_400u64,
                3600,
                90 * 86_400,
            )),
            invitation_ttl: Duration::from_secs(
                3600 * r.number("AFTERCARE_INVITATION_TTL_HOURS", 168u64, 1, 720),
            ),
            max_concurrent_hashes: r.number("AFTERCARE_MAX_CONCURRENT_HASHES", cores, 1, 64),
            hash_queue: r.number("AFTERCARE_HASH_QUEUE", 64usize, 1, 10_000),
            body_timeout: Duration::from_millis(r.number(
                "AFTERCARE_BODY_TIMEOUT_MS",
                10_000u64,
                100,
                300_000,
            )),
            db_statement_timeout: Duration::from_millis(r.number(
                "AFTERCARE_DB_STATEMENT_TIMEOUT_MS",
                15_000u64,
                100,
                3_600_000,
            )),
            db_lock_timeout: Duration::from_millis(r.number(
                "AFTERCARE_DB_LOCK_TIMEOUT_MS",
                2_000u64,
                10,
                600_000,
            )),
            login_max_failures: r.number("AFTERCARE_LOGIN_MAX_FAILURES", 5u32, 1, 100),
            login_max_failures_per_address: r.number(
                "AFTERCARE_LOGIN_MAX_FAILURES_PER_ADDRESS",
                20u32,
                1,
                10_000,
            ),
            trusted_proxies: r.addresses("AFTERCARE_TRUSTED_PROXIES"),
            login_window: Duration::from_secs(r.number(
                "AFTERCARE_LOGIN_WINDOW_SECS",
                900u64,
                1,
                86_400,
            )),
            sweep_interval: Duration::from_secs(r.number(
                "AFTERCARE_SWEEP_INTERVAL_SECS",
                300u64,
                1,
                86_400,
            )),
            delivery_retry_base: Duration::from_millis(r.number(
                "AFTERCARE_DELIVERY_RETRY_BASE_MS",
                5000u64,
                1,
                3_600_000,
            )),
            delivery_max_attempts: r.number("AFTERCARE_DELIVERY_MAX_ATTEMPTS", 8u32, 1, 30),
            webhook_allow_private_networks: r
                .boolean("AFTERCARE_WEBHOOK_ALLOW_PRIVATE_NETWORKS", false),
            smtp,
            dashboard_url: r.web_url("AFTERCARE_DASHBOARD_URL", "http://127.0.0.1:8080/docs/"),
            public_url: r
                .raw("AFTERCARE_PUBLIC_URL")
                .map(|_| r.web_url("AFTERCARE_PUBLIC_URL", ""))
                .map(|u| u.trim_end_matches('/').to_owned()),
            run_workers: r.boolean("AFTERCARE_WORKERS", true),
            http_workers: r.number("AFTERCARE_HTTP_WORKERS", cores, 1, 256),
        };
        if r.errors.is_empty() {
            Ok(settings)
        } else {
            Err(SettingsError(r.errors))
        }
    }
}

/// Hides a password in a URL before it is printed.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => raw.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(pairs: &[(&str, &str)]) -> Result<Settings, SettingsError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Settings::from_lookup(&move |k| map.get(k).cloned())
    }

    #[test]
    fn defaults_serve_sqlite_on_localhost_8080() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.bind.to_string(), "127.0.0.1:8080");
        assert_eq!(s.database_url, DatabaseUrl::Sqlite("aftercare.db".into()));
    }

    #[test]
    fn database_url_schemes() {
        assert_eq!(
            DatabaseUrl::parse("sqlite://x.db").unwrap(),
            DatabaseUrl::Sqlite("x.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///var/lib/a.db").unwrap(),
            DatabaseUrl::Sqlite("/var/lib/a.db".into())
        );
        assert!(matches!(
            DatabaseUrl::parse("postgresql://u@h/db"),
            Ok(DatabaseUrl::Postgres(_))
        ));
        assert!(DatabaseUrl::parse("mysql://u@h/db").is_err());
    }

    #[test]
    fn a_bad_scheme_names_the_variable_and_value_without_password() {
        let err = settings(&[("AFTERCARE_DATABASE_URL", "mysql://bob:secret@h/db")]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("AFTERCARE_DATABASE_URL"), "{text}");
        assert!(text.contains("mysql://bob:***@h/db"), "{text}");
        assert!(!text.contains("secret"), "{text}");
    }

    #[test]
    fn every_bad_setting_is_reported_together() {
        let err = settings(&[
            ("AFTERCARE_BIND", "nowhere"),
            ("AFTERCARE_DB_POOL_SIZE", "0"),
        ])
        .unwrap_err();
        assert_eq!(err.0.len(), 2);
    }

    #[test]
    fn a_key_file_in_a_missing_folder_is_refused_before_start() {
        let err = settings(&[(
            "AFTERCARE_JWT_PRIVATE_KEY_FILE",
            "/nonexistent-aftercare-folder/jwt.pem",
        )])
        .unwrap_err();
        assert_eq!(err.0[0].variable, "AFTERCARE_JWT_PRIVATE_KEY_FILE");
        let dir = std::env::temp_dir();
        let ok = settings(&[(
            "AFTERCARE_JWT_PRIVATE_KEY_FILE",
            dir.join("aftercare-new-key.pem").to_str().unwrap(),
        )]);
        assert!(ok.is_ok());
    }

    #[test]
    fn a_misspelt_setting_is_refused_by_name() {
        let vars = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let err = Settings::from_vars(vars(&[
            ("AFTERCARE_DATABSE_URL", "postgres://u@h/db"),
            ("AFTERCARE_ADMIN_PASSWORD", "kept-for-create-admin"),
            ("PATH", "/usr/bin"),
        ]))
        .unwrap_err();
        assert_eq!(err.0.len(), 1);
        assert!(err.0[0].message.contains("AFTERCARE_DATABSE_URL"), "{err}");
        assert!(Settings::from_vars(vars(&[
            ("AFTERCARE_DATABASE_URL", "postgres://u@h/db"),
            ("AFTERCARE_SMTP_URL", "smtp://127.0.0.1:2525"),
            ("AFTERCARE_SMTP_FROM", "alerts@example.org"),
        ]))
        .is_ok());
    }

    #[test]
    fn log_filter_dashboard_url_and_proxies_are_checked() {
        let err = settings(&[
            ("AFTERCARE_LOG", "aftercare=loud"),
            ("AFTERCARE_DASHBOARD_URL", "dashboard.example.org"),
            ("AFTERCARE_TRUSTED_PROXIES", "10.0.0.2, lb.internal"),
        ])
        .unwrap_err();
        let variables: Vec<&str> = err.0.iter().map(|e| e.variable).collect();
        assert_eq!(
            variables,
            [
                "AFTERCARE_LOG",
                "AFTERCARE_TRUSTED_PROXIES",
                "AFTERCARE_DASHBOARD_URL"
            ]
        );
        let ok = settings(&[
            ("AFTERCARE_LOG", "aftercare=debug,warn"),
            ("AFTERCARE_DASHBOARD_URL", "https://dash.example.org/"),
            ("AFTERCARE_TRUSTED_PROXIES", "10.0.0.2, ::1"),
        ])
        .unwrap();
        assert_eq!(ok.trusted_proxies.len(), 2);
    }
}
