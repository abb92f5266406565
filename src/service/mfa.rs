//! Staff second factor (SPEC §12): TOTP enrolment and confirmation, recovery codes, the
//! two-step sign-in, turning it off, and the organisation's `staff_mfa` setting.
//!
//! Wrong codes are counted on the same throttle as passwords ([`super::accounts`]'s counters,
//! under the key `mfa:<user id>`, with the per-account limit and window), under the counter's
//! row lock in the transaction that checks the code, so concurrent guesses queue. Only someone
//! who already gave the right password reaches that counter, so nobody else's failures can
//! lock a staff member out of their second step.

use chrono::{NaiveDateTime, TimeDelta};

use super::accounts::{count_attempt, session_for, signed_in, throttle_window, Session};
use super::audit;
use crate::auth::totp::{self, Code, Match};
use crate::auth::{tokens, Caller, Role};
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::accounts::{self as users, UserRow};
use crate::store::mfa::{self, ChallengeRow, RecoveryCodeRow, TotpRow};
use crate::store::{self, sessions, DbConnection};

/// How long an `mfa_token` stays valid.
pub const CHALLENGE_TTL: TimeDelta = TimeDelta::minutes(5);

/// The organisation's rule for staff second factors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StaffMfa {
    /// Staff may turn a second factor on.
    Optional,
    /// Counsellors and admins must have one; until they enrol they reach only their own
    /// account and its second-factor routes.
    Required,
}

impl StaffMfa {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Optional => "optional",
            Self::Required => "required",
        }
    }

    /// Parses the stored name (anything unknown reads as `optional`, the column's default).
    pub fn parse(s: &str) -> Self {
        if s == "required" {
            Self::Required
        } else {
            Self::Optional
        }
    }
}

fn staff_only(caller: &Caller) -> Result<(), ApiError> {
    caller.require(&[Role::Admin, Role::Counsellor])
}

fn mfa_key(user_id: &str) -> String {
    format!("mfa:{user_id}")
}

fn max_failures(state: &AppState) -> i32 {
    i32::try_from(state.settings.login_max_failures).unwrap_or(5)
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// Why a code was refused.
#[derive(Debug, Clone, Copy)]
enum Refused {
    Wrong,
    Replayed,
}

impl Refused {
    fn message(self) -> &'static str {
        match self {
            Self::Wrong => "is not a valid code from your authenticator app or a recovery code",
            Self::Replayed => "has already been used; wait for the next code from your app",
        }
    }
}

/// Which kind of code was accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Accepted {
    Totp,
    Recovery,
}

/// Checks a code for a confirmed credential and uses it up: a TOTP step is accepted once, a
/// recovery code once.
fn use_code(
    conn: &mut DbConnection,
    state: &AppState,
    row: &TotpRow,
    code: Option<&Code>,
    now: NaiveDateTime,
) -> Result<Result<Accepted, Refused>, ApiError> {
    match code {
        Some(Code::Totp(c)) => {
            // A secret sealed under an earlier signing key no longer opens: only recovery
            // codes work then (README: rotating the signing key).
            let Some(secret) = state.keys.sealer().open(&row.user_id, &row.secret_sealed) else {
                return Ok(Err(Refused::Wrong));
            };
            match totp::check(&secret, c, unix_now(), row.last_step) {
                Match::Fresh(step) => {
                    if mfa::claim_step(conn, &row.user_id, step)? {
                        Ok(Ok(Accepted::Totp))
                    } else {
                        Ok(Err(Refused::Replayed))
                    }
                }
                Match::Replayed => Ok(Err(Refused::Replayed)),
                Match::Wrong => Ok(Err(Refused::Wrong)),
            }
        }
        Some(Code::Recovery(c)) => {
            if mfa::use_recovery_code(conn, &row.user_id, &tokens::hash_secret(c), now)? {
                Ok(Ok(Accepted::Recovery))
            } else {
                Ok(Err(Refused::Wrong))
            }
        }
        None => Ok(Err(Refused::Wrong)),
    }
}

fn record_recovery_use(
    conn: &mut DbConnection,
    user: &UserRow,
    request_id: Option<&str>,
) -> Result<(), ApiError> {
    let left = mfa::recovery_codes_left(conn, &user.id)?;
    tracing::info!(recovery_codes_left = left, "a recovery code was used");
    audit::record_anonymous(
        conn,
        Some(&user.organisation_id),
        Some(&user.id),
        "mfa.recovery_code_used",
        "success",
        request_id,
    )?;
    Ok(())
}

/// In the sign-in transaction, after a right password: with a second factor on, opens a
/// two-step sign-in and returns its `mfa_token` (shown once, stored as a hash); `None` when
/// the account has no second factor and the password alone signs in.
pub(super) fn challenge(
    conn: &mut DbConnection,
    user: &UserRow,
    now: NaiveDateTime,
    request_id: Option<&str>,
) -> Result<Option<String>, ApiError> {
    if !mfa::totp_enabled(conn, &user.id)? {
        return Ok(None);
    }
    let token = tokens::random_token();
    mfa::insert_challenge(
        conn,
        &ChallengeRow {
            token_hash: tokens::hash_secret(&token),
            user_id: user.id.clone(),
            expires_at: now + CHALLENGE_TTL,
            used_at: None,
            created_at: now,
        },
    )?;
    audit::record_anonymous(
        conn,
        Some(&user.organisation_id),
        Some(&user.id),
        "auth.mfa_challenged",
        "success",
        request_id,
    )?;
    Ok(Some(token))
}

/// The second step of a sign-in.
pub struct SecondStep {
    /// The `mfa_token` from the first step.
    pub mfa_token: String,
    /// A TOTP code or a recovery code.
    pub code: String,
    /// Request id for the audit trail.
    pub request_id: Option<String>,
}

/// Completes a two-step sign-in: the `mfa_token` (unexpired, unused) and a code (a TOTP step
/// not used before, or an unused recovery code) give the session a password sign-in gives.
pub async fn complete_sign_in(state: &AppState, step: SecondStep) -> Result<Session, ApiError> {
    let hash = tokens::hash_secret(step.mfa_token.trim());
    let code = totp::parse_code(&step.code);
    let (st, window, max) = (state.clone(), throttle_window(state), max_failures(state));
    let request_id = step.request_id;
    let outcome = state
        .store
        .transaction(move |conn| -> Result<Result<_, ApiError>, ApiError> {
            let now = store::now();
            let expired = || {
                ApiError::Unauthorized(
                    "This sign-in has expired or was completed already; sign in again with \
                     your email and password."
                        .into(),
                )
            };
            let Some(ch) = mfa::find_challenge(conn, &hash)? else {
                return Ok(Err(expired()));
            };
            if ch.used_at.is_some() || ch.expires_at <= now {
                return Ok(Err(expired()));
            }
            let user = users::find_user(conn, &ch.user_id)?.filter(|u| !u.disabled);
            let row = mfa::find_totp(conn, &ch.user_id)?.filter(|r| r.confirmed_at.is_some());
            let (Some(user), Some(row)) = (user, row) else {
                return Ok(Err(expired()));
            };
            let key = mfa_key(&user.id);
            if let Some(secs) = count_attempt(conn, &[(&key, max)], window)? {
                return Ok(Err(ApiError::RateLimited {
                    retry_after_secs: secs,
                }));
            }
            match use_code(conn, &st, &row, code.as_ref(), now)? {
                Ok(kind) => {
                    // Lost a race with another use of this token: undo everything.
                    if !mfa::claim_challenge(conn, &hash, now)? {
                        return Err(expired());
                    }
                    sessions::clear_throttle(conn, &key)?;
                    if kind == Accepted::Recovery {
                        record_recovery_use(conn, &user, request_id.as_deref())?;
                    }
                    let refresh = signed_in(conn, &st, &user, request_id.as_deref(), now)?;
                    Ok(Ok((user, refresh)))
                }
                Err(why) => {
                    // Counted before the check; committed with this record.
                    audit::record_anonymous(
                        conn,
                        Some(&user.organisation_id),
                        Some(&user.id),
                        "auth.mfa_failed",
                        "failure",
                        request_id.as_deref(),
                    )?;
                    Ok(Err(ApiError::Unauthorized(format!(
                        "The code {}.",
                        why.message()
                    ))))
                }
            }
        })
        .await?;
    let (user, refresh) = outcome?;
    session_for(state, user, refresh)
}

/// Where a caller stands with their second factor.
#[derive(Debug, Clone)]
pub struct Status {
    /// A confirmed authenticator is on.
    pub totp_enabled: bool,
    /// An enrolment was started and not confirmed yet.
    pub enrolment_pending: bool,
    /// The organisation requires staff to have one (and the caller is staff).
    pub required: bool,
    /// Unused recovery codes.
    pub recovery_codes_left: i64,
}

/// The caller's second-factor status.
pub async fn status(state: &AppState, caller: &Caller) -> Result<Status, ApiError> {
    let c = caller.clone();
    state
        .store
        .run(move |conn| -> Result<Status, ApiError> {
            let row = mfa::find_totp(conn, &c.user_id)?;
            let required = c.role != Role::Patient
                && StaffMfa::parse(&mfa::staff_mfa(conn, &c.organisation_id)?)
                    == StaffMfa::Required;
            Ok(Status {
                totp_enabled: row.as_ref().is_some_and(|r| r.confirmed_at.is_some()),
                enrolment_pending: row.as_ref().is_some_and(|r| r.confirmed_at.is_none()),
                required,
                recovery_codes_left: mfa::recovery_codes_left(conn, &c.user_id)?,
            })
        })
        .await
}

/// A started enrolment: what the authenticator app needs.
#[derive(Debug, Clone)]
pub struct Enrolment {
    /// The secret, base32.
    pub secret: String,
    /// The `otpauth://` URI (for a QR code).
    pub otpauth_uri: String,
}

/// Starts (or restarts) TOTP enrolment: a new secret, pending until confirmed with a code.
/// Staff only; needs a recent sign-in; refused while a confirmed authenticator is on.
pub async fn begin(state: &AppState, caller: &Caller) -> Result<Enrolment, ApiError> {
    staff_only(caller)?;
    caller.require_recent_sign_in()?;
    let secret = totp::new_secret();
    let sealed = state
        .keys
        .sealer()
        .seal(&caller.user_id, &secret)
        .map_err(ApiError::Internal)?;
    let c = caller.clone();
    let email = state
        .store
        .transaction(move |conn| -> Result<String, ApiError> {
            let user = users::find_user(conn, &c.user_id)?.ok_or(ApiError::NotFound)?;
            if mfa::find_totp(conn, &c.user_id)?.is_some_and(|r| r.confirmed_at.is_some()) {
                return Err(ApiError::Conflict(
                    "A second factor is already on. To move to a new device, turn it off first \
                     (DELETE /v1/me/mfa/totp), then enrol again."
                        .into(),
                ));
            }
            mfa::put_pending_totp(
                conn,
                &TotpRow {
                    user_id: c.user_id.clone(),
                    secret_sealed: sealed,
                    confirmed_at: None,
                    last_step: None,
                    created_at: store::now(),
                },
            )?;
            audit::record(
                conn,
                &c,
                audit::Event::other("mfa.enrolment_started", "user", Some(&c.user_id)),
            )?;
            Ok(user.email)
        })
        .await?;
    Ok(Enrolment {
        secret: totp::base32(&secret),
        otpauth_uri: totp::otpauth_uri(&secret, &email).map_err(ApiError::internal)?,
    })
}

/// Confirms enrolment with a current code: the second factor is on from now, and the ten
/// recovery codes are returned (the only time they are shown; stored as hashes).
pub async fn confirm(
    state: &AppState,
    caller: &Caller,
    code: String,
) -> Result<Vec<String>, ApiError> {
    staff_only(caller)?;
    caller.require_recent_sign_in()?;
    let Some(Code::Totp(code)) = totp::parse_code(&code) else {
        return Err(ApiError::field(
            "code",
            "must be the 6-digit code your authenticator app shows",
        ));
    };
    let codes: Vec<String> = (0..totp::RECOVERY_CODES)
        .map(|_| totp::new_recovery_code())
        .collect();
    let (st, c, window, max) = (
        state.clone(),
        caller.clone(),
        throttle_window(state),
        max_failures(state),
    );
    let outcome = state
        .store
        .transaction(
            move |conn| -> Result<Result<Vec<String>, ApiError>, ApiError> {
                let now = store::now();
                let row = match mfa::find_totp(conn, &c.user_id)? {
                    None => {
                        return Err(ApiError::Conflict(
                            "No enrolment has been started: POST /v1/me/mfa/totp first.".into(),
                        ))
                    }
                    Some(r) if r.confirmed_at.is_some() => {
                        return Err(ApiError::Conflict(
                            "The second factor is already on.".into(),
                        ))
                    }
                    Some(r) => r,
                };
                let key = mfa_key(&c.user_id);
                if let Some(secs) = count_attempt(conn, &[(&key, max)], window)? {
                    return Ok(Err(ApiError::RateLimited {
                        retry_after_secs: secs,
                    }));
                }
                let secret = st
                    .keys
                    .sealer()
                    .open(&c.user_id, &row.secret_sealed)
                    .ok_or_else(|| {
                        ApiError::Conflict(
                            "This enrolment can no longer be confirmed; start again with POST \
                         /v1/me/mfa/totp."
                                .into(),
                        )
                    })?;
                let Match::Fresh(step) = totp::check(&secret, &code, unix_now(), None) else {
                    audit::record(
                        conn,
                        &c,
                        audit::Event {
                            action: "mfa.enrolment_failed",
                            patient_id: None,
                            target_type: Some("user"),
                            target_id: Some(&c.user_id),
                            outcome: "failure",
                        },
                    )?;
                    return Ok(Err(ApiError::field(
                        "code",
                        "is not the current code for this secret; check the app's clock and the \
                     secret, and try the next code",
                    )));
                };
                if !mfa::confirm_totp(conn, &c.user_id, step, now)? {
                    return Err(ApiError::Conflict(
                        "The second factor is already on.".into(),
                    ));
                }
                let rows: Vec<RecoveryCodeRow> = codes
                    .iter()
                    .map(|code| RecoveryCodeRow {
                        id: store::new_id(),
                        user_id: c.user_id.clone(),
                        code_hash: tokens::hash_secret(&code.replace('-', "")),
                        used_at: None,
                        created_at: now,
                    })
                    .collect();
                mfa::replace_recovery_codes(conn, &c.user_id, &rows)?;
                sessions::clear_throttle(conn, &key)?;
                audit::record(
                    conn,
                    &c,
                    audit::Event::other("mfa.enabled", "user", Some(&c.user_id)),
                )?;
                Ok(Ok(codes))
            },
        )
        .await?;
    outcome
}

/// Turns the second factor off. The request carries the password (so no recent sign-in is
/// needed) and a code — a TOTP code, or a recovery code when the device is lost. Both are
/// throttled: the password on the sign-in counter, the code on the second-factor counter.
pub async fn disable(
    state: &AppState,
    caller: &Caller,
    password: String,
    code: String,
) -> Result<(), ApiError> {
    staff_only(caller)?;
    let code = totp::parse_code(&code);
    if code.is_none() {
        return Err(ApiError::field(
            "code",
            "must be a 6-digit code from your authenticator app or a recovery code",
        ));
    }
    let id = caller.user_id.clone();
    let user = state
        .store
        .run(move |conn| -> Result<_, ApiError> {
            let user = users::find_user(conn, &id)?.ok_or(ApiError::NotFound)?;
            let on = mfa::totp_enabled(conn, &id)?;
            Ok((user, on))
        })
        .await?;
    let (user, on) = user;
    if !on {
        return Err(ApiError::Conflict("No second factor is on.".into()));
    }
    // The password, throttled on the account's sign-in counter as a password change is.
    let acct_key = format!("acct:{}", user.email);
    let (key, window, max) = (
        acct_key.clone(),
        throttle_window(state),
        max_failures(state),
    );
    if let Some(secs) = state
        .store
        .transaction(move |conn| count_attempt(conn, &[(&key, max)], window))
        .await?
    {
        return Err(ApiError::RateLimited {
            retry_after_secs: secs,
        });
    }
    let password_ok = state
        .hasher
        .verify(
            &crate::auth::password::account_source(&user.id),
            password,
            Some(user.password_hash.clone()),
        )
        .await?;
    let (st, c) = (state.clone(), caller.clone());
    let outcome = state
        .store
        .transaction(move |conn| -> Result<Result<(), ApiError>, ApiError> {
            let now = store::now();
            let failed = |conn: &mut DbConnection, c: &Caller| {
                audit::record(
                    conn,
                    c,
                    audit::Event {
                        action: "mfa.disable_failed",
                        patient_id: None,
                        target_type: Some("user"),
                        target_id: Some(&c.user_id),
                        outcome: "failure",
                    },
                )
            };
            if !password_ok {
                failed(conn, &c)?;
                return Ok(Err(ApiError::field("password", "is incorrect")));
            }
            sessions::clear_throttle(conn, &acct_key)?;
            let Some(row) = mfa::find_totp(conn, &c.user_id)?.filter(|r| r.confirmed_at.is_some())
            else {
                return Err(ApiError::Conflict("No second factor is on.".into()));
            };
            let key = mfa_key(&c.user_id);
            if let Some(secs) = count_attempt(conn, &[(&key, max)], window)? {
                return Ok(Err(ApiError::RateLimited {
                    retry_after_secs: secs,
                }));
            }
            match use_code(conn, &st, &row, code.as_ref(), now)? {
                Ok(kind) => {
                    if kind == Accepted::Recovery {
                        record_recovery_use(conn, &user, c.request_id.as_deref())?;
                    }
                    mfa::delete_totp(conn, &c.user_id)?;
                    sessions::clear_throttle(conn, &key)?;
                    audit::record(
                        conn,
                        &c,
                        audit::Event::other("mfa.disabled", "user", Some(&c.user_id)),
                    )?;
                    Ok(Ok(()))
                }
                Err(why) => {
                    failed(conn, &c)?;
                    Ok(Err(ApiError::field("code", why.message())))
                }
            }
        })
        .await?;
    outcome
}

/// The organisation's `staff_mfa` setting (admins).
pub async fn security(state: &AppState, caller: &Caller) -> Result<StaffMfa, ApiError> {
    caller.require(&[Role::Admin])?;
    let org = caller.organisation_id.clone();
    state
        .store
        .run(move |conn| -> Result<StaffMfa, ApiError> {
            Ok(StaffMfa::parse(&mfa::staff_mfa(conn, &org)?))
        })
        .await
}

/// Sets the organisation's `staff_mfa` setting (admins; a recent sign-in, since turning the
/// requirement off weakens every staff account).
pub async fn set_security(
    state: &AppState,
    caller: &Caller,
    value: StaffMfa,
) -> Result<StaffMfa, ApiError> {
    caller.require(&[Role::Admin])?;
    caller.require_recent_sign_in()?;
    let c = caller.clone();
    state
        .store
        .transaction(move |conn| -> Result<(), ApiError> {
            mfa::set_staff_mfa(conn, &c.organisation_id, value.as_str())?;
            audit::record(
                conn,
                &c,
                audit::Event::other(
                    "organisation.security_write",
                    "organisation",
                    Some(&c.organisation_id),
                ),
            )?;
            Ok(())
        })
        .await?;
    Ok(value)
}
