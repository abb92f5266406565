//! Accounts and sessions: registration by invitation, sign-in with throttling, refresh-token
//! rotation with reuse detection, password changes, invitations and care teams.

use chrono::{Duration as TimeDelta, NaiveDate, NaiveDateTime};

use crate::auth::{password, tokens, totp, Caller, Role};
use crate::delivery::email::{self, Mailer};
use crate::domain::validation::FieldError;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::accounts::{self, UserRow};
use crate::store::invitations::{self, InvitationRow};
use crate::store::patients::{self, CareTeamRow, PatientRow, PhaseChangeRow};
use crate::store::sessions::{self, RefreshTokenRow, ThrottleRow};
use crate::store::{self, DbConnection};

use super::audit;
use super::sign_in_throttle as throttle;

/// The phases a patient can be in.
pub const PHASES: [&str; 4] = ["detox", "treatment", "aftercare", "discharged"];

/// Normalises and checks an email address.
pub fn normalise_email(field: &str, raw: &str) -> Result<String, FieldError> {
    let email = raw.trim().to_lowercase();
    let valid = email.len() <= 254
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        && !email.chars().any(char::is_whitespace);
    if valid {
        Ok(email)
    } else {
        Err(FieldError::new(field, "is not a valid email address"))
    }
}

/// Checks a display name.
pub fn check_display_name(field: &str, raw: &str) -> Result<String, FieldError> {
    let name = raw.trim();
    // The length limit is on what was sent, as the document states it.
    if name.is_empty() || raw.chars().count() > 100 || name.chars().any(char::is_control) {
        Err(FieldError::new(
            field,
            "must be 1 to 100 printable characters",
        ))
    } else {
        Ok(name.to_owned())
    }
}

/// Checks an IANA timezone name.
pub fn check_timezone(field: &str, raw: &str) -> Result<String, FieldError> {
    raw.parse::<chrono_tz::Tz>()
        .map(|tz| tz.name().to_owned())
        .map_err(|_| {
            FieldError::new(
                field,
                "is not a known IANA timezone (e.g. America/New_York)",
            )
        })
}

fn collect<T>(errors: &mut Vec<FieldError>, r: Result<T, FieldError>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            errors.push(e);
            None
        }
    }
}

/// A signed-in session: what login, refresh and registration return.
#[derive(Debug)]
pub struct Session {
    /// The access token.
    pub access_token: String,
    /// Seconds until it expires.
    pub expires_in: i64,
    /// The new refresh token (shown once).
    pub refresh_token: String,
    /// The user.
    pub user: UserRow,
}

/// A completed sign-in (password, and the second factor where it is on): a new session,
/// audited as `auth.login`.
pub(super) fn signed_in(
    conn: &mut DbConnection,
    state: &AppState,
    user: &UserRow,
    request_id: Option<&str>,
    now: NaiveDateTime,
) -> Result<NewRefresh, ApiError> {
    let refresh = new_refresh(conn, state, &user.id, &store::new_id(), now)?;
    audit::record_anonymous(
        conn,
        Some(&user.organisation_id),
        Some(&user.id),
        "auth.login",
        "success",
        request_id,
    )?;
    Ok(refresh)
}

pub(super) fn new_refresh(
    conn: &mut DbConnection,
    state: &AppState,
    user_id: &str,
    family_id: &str,
    now: NaiveDateTime,
) -> Result<NewRefresh, ApiError> {
    let token = tokens::random_token();
    let ttl = TimeDelta::seconds(
        i64::try_from(state.settings.refresh_token_ttl.as_secs()).unwrap_or(86_400),
    );
    // A new family is a new sign-in; a refresh keeps its family's sign-in time.
    let authenticated_at = sessions::family_signed_in_at(conn, family_id)?.unwrap_or(Some(now));
    sessions::insert_refresh(
        conn,
        &RefreshTokenRow {
            id: store::new_id(),
            family_id: family_id.to_owned(),
            user_id: user_id.to_owned(),
            token_hash: tokens::hash_secret(&token),
            expires_at: now + ttl,
            used_at: None,
            revoked_at: None,
            created_at: now,
            authenticated_at,
        },
    )?;
    Ok(NewRefresh {
        token,
        session_id: family_id.to_owned(),
    })
}

/// A refresh token just issued, and the session (token family) it belongs to.
pub(super) struct NewRefresh {
    token: String,
    session_id: String,
}

pub(super) fn session_for(
    state: &AppState,
    user: UserRow,
    refresh: NewRefresh,
) -> Result<Session, ApiError> {
    let ttl = i64::try_from(state.settings.access_token_ttl.as_secs()).unwrap_or(900);
    let access_token = state
        .keys
        .issue(
            &user.id,
            &user.organisation_id,
            &user.role,
            &refresh.session_id,
            ttl,
        )
        .map_err(ApiError::Internal)?;
    Ok(Session {
        access_token,
        expires_in: ttl,
        refresh_token: refresh.token,
        user,
    })
}

/// Registration input.
pub struct Registration {
    /// The invitation code.
    pub invitation_code: String,
    /// Email.
    pub email: String,
    /// Password.
    pub password: String,
    /// Display name.
    pub display_name: String,
    /// IANA timezone.
    pub timezone: String,
}

/// Redeems an invitation: creates the user (and, for patients, their record and care team).
///
/// With an idempotency key, a retry of a registration whose response was lost (same key, same
/// body) signs the account it created in again, if the password still matches, instead of
/// failing on the now-used code. Keys are scoped to the invitation code.
pub async fn register(
    state: &AppState,
    input: Registration,
    key: Option<super::idempotency::Key>,
    request_id: Option<String>,
) -> Result<Session, ApiError> {
    let scope = format!(
        "register:{}",
        tokens::hash_secret(input.invitation_code.trim())
    );
    // The remembered request hash must not be a fast hash of the password (one could guess
    // it from the database): hash the other fields; a replay checks the password with argon2.
    let key = key.map(|k| super::idempotency::Key {
        request_hash: tokens::hash_secret(
            &serde_json::json!([
                input.email,
                input.display_name,
                input.timezone,
                input.invitation_code
            ])
            .to_string(),
        ),
        ..k
    });
    if let Some(k) = key.clone() {
        let sc = scope.clone();
        let first = state
            .store
            .run(move |conn| super::idempotency::replay(conn, &sc, &k))
            .await?;
        if let Some(first) = first {
            return sign_in_again(state, &first, input.password, request_id).await;
        }
    }
    let mut errors = Vec::new();
    let email = collect(&mut errors, normalise_email("email", &input.email));
    let display_name = collect(
        &mut errors,
        check_display_name("display_name", &input.display_name),
    );
    let timezone = collect(&mut errors, check_timezone("timezone", &input.timezone));
    let context = [
        input.email.split('@').next().unwrap_or(""),
        input.display_name.as_str(),
    ];
    collect(
        &mut errors,
        crate::auth::password::check_policy("password", &input.password, &context),
    );
    if input.invitation_code.trim().is_empty() {
        errors.push(FieldError::new("invitation_code", "is required"));
    }
    let (Some(email), Some(display_name), Some(timezone)) = (email, display_name, timezone) else {
        return Err(ApiError::Validation(errors));
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let code_hash = tokens::hash_secret(input.invitation_code.trim());
    // Refuse a wrong code before spending a password hash on it: a cheap request must not buy
    // an expensive one. The transaction below checks the code again.
    let probe = code_hash.clone();
    let usable = state
        .store
        .run(move |conn| -> Result<bool, ApiError> {
            let now = store::now();
            Ok(invitations::find_by_code_hash(conn, &probe)?
                .is_some_and(|inv| inv.used_at.is_none() && inv.expires_at > now))
        })
        .await?;
    if !usable {
        return Err(ApiError::field(
            "invitation_code",
            "is not valid, has expired or was already used",
        ));
    }
    // One source for every registration: each needs a valid invitation code first.
    let hash = state.hasher.hash("registration", input.password).await?;
    let st = state.clone();
    let (user, refresh) = state
        .store
        .transaction(move |conn| -> Result<_, ApiError> {
            let now = store::now();
            let bad_code = || {
                ApiError::field(
                    "invitation_code",
                    "is not valid, has expired or was already used",
                )
            };
            let inv = invitations::find_by_code_hash(conn, &code_hash)?.ok_or_else(bad_code)?;
            if inv.used_at.is_some() || inv.expires_at <= now {
                return Err(bad_code());
            }
            if inv.email.as_deref().is_some_and(|e| e != email) {
                return Err(ApiError::field("email", "does not match the invitation"));
            }
            if accounts::email_taken(conn, &email, None)? {
                return Err(ApiError::Conflict(
                    "An account with this email already exists.".into(),
                ));
            }
            let user = UserRow {
                id: store::new_id(),
                organisation_id: inv.organisation_id.clone(),
                role: inv.role.clone(),
                email,
                password_hash: hash,
                display_name,
                timezone: timezone.clone(),
                disabled: false,
                created_at: now,
                updated_at: now,
                password_changed_at: now,
            };
            accounts::insert_user(conn, &user)?;
            if inv.role == "patient" {
                enrol_patient(conn, &inv, &user, now)?;
            }
            if !invitations::redeem(conn, &inv.id, &user.id, now)? {
                return Err(bad_code());
            }
            let refresh = new_refresh(conn, &st, &user.id, &store::new_id(), now)?;
            audit::record_anonymous(
                conn,
                Some(&user.organisation_id),
                Some(&user.id),
                "account.registered",
                "success",
                request_id.as_deref(),
            )?;
            if let Some(k) = &key {
                let first = serde_json::json!({ "user_id": user.id }).to_string();
                super::idempotency::remember(conn, &scope, k, 201, &first)?;
            }
            Ok((user, refresh))
        })
        .await?;
    session_for(state, user, refresh)
}

/// A retried registration: a new session for the account the first request created, if the
/// password (the same body, so the same password) still opens it.
async fn sign_in_again(
    state: &AppState,
    first: &str,
    password: String,
    request_id: Option<String>,
) -> Result<Session, ApiError> {
    let used = || {
        ApiError::field(
            "invitation_code",
            "is not valid, has expired or was already used",
        )
    };
    let user_id = serde_json::from_str::<serde_json::Value>(first)
        .ok()
        .and_then(|v| v["user_id"].as_str().map(str::to_owned))
        .ok_or_else(used)?;
    let user = state
        .store
        .run(move |conn| accounts::find_user(conn, &user_id).map_err(ApiError::from))
        .await?
        .filter(|u| !u.disabled)
        .ok_or_else(used)?;
    if !state
        .hasher
        .verify(
            &password::account_source(&user.id),
            password,
            Some(user.password_hash.clone()),
        )
        .await?
    {
        return Err(used());
    }
    let st = state.clone();
    let (user, refresh) = state
        .store
        .transaction(move |conn| -> Result<_, ApiError> {
            let refresh = new_refresh(conn, &st, &user.id, &store::new_id(), store::now())?;
            audit::record_anonymous(
                conn,
                Some(&user.organisation_id),
                Some(&user.id),
                "auth.login",
                "success",
                request_id.as_deref(),
            )?;
            Ok((user, refresh))
        })
        .await?;
    session_for(state, user, refresh)
}

fn local_today(timezone: &str) -> NaiveDate {
    let tz: chrono_tz::Tz = timezone.parse().unwrap_or(chrono_tz::UTC);
    chrono::Utc::now().with_timezone(&tz).date_naive()
}

fn enrol_patient(
    conn: &mut DbConnection,
    inv: &InvitationRow,
    user: &UserRow,
    now: NaiveDateTime,
) -> Result<(), ApiError> {
    let today = local_today(&user.timezone);
    let phase = inv.phase.clone().unwrap_or_else(|| "aftercare".into());
    let history =
        super::patients::enrolment_history(&phase, inv.phase_started_on, inv.detox_ended_on, today);
    // The history is read back ordered by start date, then by when it was recorded: spans
    // starting the same day (detox ended, treatment began) keep their order by being
    // recorded a millisecond apart.
    let mut spans = history
        .into_iter()
        .enumerate()
        .map(|(i, (phase, started_on))| {
            let back = i64::try_from(i).unwrap_or(0) - 3;
            PhaseChangeRow {
                id: store::new_id(),
                patient_id: user.id.clone(),
                phase,
                started_on,
                changed_by: Some(inv.created_by.clone()),
                created_at: now + TimeDelta::milliseconds(back),
            }
        });
    let Some(first) = spans.next() else {
        return Err(ApiError::internal("an enrolment history is never empty"));
    };
    patients::insert(
        conn,
        &PatientRow {
            user_id: user.id.clone(),
            organisation_id: user.organisation_id.clone(),
            phase: first.phase.clone(),
            phase_started_on: first.started_on,
            enrolment_last_use_on: inv.last_use_on,
            risk_overrides: None,
            first_check_in_on: None,
            last_check_in_on: None,
            last_use_on: None,
            missed_check_due_at: None,
            created_at: now,
            country: None,
            closed_at: None,
            closed_by: None,
            erasure_due_at: None,
            erased_at: None,
        },
        &first,
    )?;
    for span in spans {
        patients::change_phase(conn, &span)?;
    }
    // Silence is a signal from the first day: schedule the missed-check-in review.
    let org = accounts::find_organisation(conn, &user.organisation_id)?;
    let policy = super::check_ins::organisation_policy(&org);
    patients::set_missed_due(
        conn,
        &user.id,
        super::check_ins::missed_due(&user.timezone, today, &policy),
    )?;
    if let Some(counsellor) = &inv.counsellor_id {
        patients::add_care_team_member(
            conn,
            &CareTeamRow {
                patient_id: user.id.clone(),
                counsellor_id: counsellor.clone(),
                is_primary: true,
                added_at: now,
            },
        )?;
    }
    Ok(())
}

/// Where a login attempt comes from, for throttling.
pub struct LoginAttempt {
    /// Email as typed.
    pub email: String,
    /// Password as typed.
    pub password: String,
    /// The client's address.
    pub client_ip: String,
    /// Request id for the audit trail.
    pub request_id: Option<String>,
}

fn blocked_for(row: &ThrottleRow, now: NaiveDateTime) -> Option<u64> {
    let until = row.blocked_until?;
    (until > now).then(|| u64::try_from((until - now).num_seconds().max(1)).unwrap_or(1))
}

/// Counts a password attempt against each (key, limit) before the password is checked, under
/// the counters' row locks; returns the seconds to wait instead when any key is blocked (and
/// then counts nothing). Keys are locked in the order given: callers always give the account
/// first, so two attempts never deadlock.
pub(super) fn count_attempt(
    conn: &mut DbConnection,
    keys: &[(&str, i32)],
    window: TimeDelta,
) -> Result<Option<u64>, ApiError> {
    let now = store::now();
    let mut rows = Vec::with_capacity(keys.len());
    for (key, max) in keys {
        rows.push((sessions::lock_throttle(conn, key, now)?, *max));
    }
    let retry = rows.iter().filter_map(|(r, _)| blocked_for(r, now)).max();
    if retry.is_none() {
        for (row, max) in rows {
            sessions::put_throttle(conn, &throttle::bump(row, now, window, max))?;
        }
    }
    Ok(retry)
}

pub(super) fn throttle_window(state: &AppState) -> TimeDelta {
    TimeDelta::seconds(i64::try_from(state.settings.login_window.as_secs()).unwrap_or(900))
}

/// Signs in: throttled on failures per account, per network and per account and network
/// (see [`sign_in_throttle`](super::sign_in_throttle)), identically for unknown accounts.
///
/// Attempts on one account are checked one at a time in this process; only a wrong password
/// is counted, after it was checked, so right passwords are never refused for their number.
pub async fn login(state: &AppState, attempt: LoginAttempt) -> Result<Session, ApiError> {
    let email = attempt.email.trim().to_lowercase();
    let keys = throttle::Keys::new(&email, &attempt.client_ip);
    let limits = throttle::Limits::of(state);
    let _turn = state.sign_in_turns.turn(&email).await;

    let (k, em) = (keys.clone(), email.clone());
    let (user, retry) = state
        .store
        .run(move |conn| -> Result<_, ApiError> {
            let retry = throttle::check(conn, &k, &limits, store::now())?;
            Ok((accounts::find_user_by_email(conn, &em)?, retry))
        })
        .await?;
    if let Some(secs) = retry {
        return Err(ApiError::RateLimited {
            retry_after_secs: secs,
        });
    }
    let usable = user.as_ref().filter(|u| !u.disabled);
    let ok = state
        .hasher
        .verify(
            &password::network_source(&attempt.client_ip),
            attempt.password,
            usable.map(|u| u.password_hash.clone()),
        )
        .await?;
    let st = state.clone();
    let request_id = attempt.request_id;
    let result = state
        .store
        .transaction(
            move |conn| -> Result<Result<(UserRow, NewRefresh), Option<String>>, ApiError> {
                let now = store::now();
                match user.filter(|u| ok && !u.disabled) {
                    Some(user) => {
                        throttle::record_success(conn, &keys, now)?;
                        // With a second factor on, the password opens only the second step.
                        if let Some(token) =
                            super::mfa::challenge(conn, &user, now, request_id.as_deref())?
                        {
                            return Ok(Err(Some(token)));
                        }
                        let refresh = signed_in(conn, &st, &user, request_id.as_deref(), now)?;
                        Ok(Ok((user, refresh)))
                    }
                    None => {
                        throttle::record_failure(conn, &keys, &limits, now)?;
                        let known = accounts::find_user_by_email(conn, &email)?;
                        audit::record_anonymous(
                            conn,
                            known.as_ref().map(|u| u.organisation_id.as_str()),
                            known.as_ref().map(|u| u.id.as_str()),
                            "auth.login_failed",
                            "failure",
                            request_id.as_deref(),
                        )?;
                        Ok(Err(None))
                    }
                }
            },
        )
        .await?;
    match result {
        Ok((user, refresh)) => session_for(state, user, refresh),
        Err(Some(mfa_token)) => Err(ApiError::MfaRequired { mfa_token }),
        Err(None) => Err(ApiError::Unauthorized(
            "The email or password is incorrect.".into(),
        )),
    }
}

/// Rotates a refresh token. Presenting an already-used token revokes its whole family: it was
/// copied, and the thief and the owner must both sign in again.
pub async fn refresh(
    state: &AppState,
    token: String,
    request_id: Option<String>,
) -> Result<Session, ApiError> {
    let hash = tokens::hash_secret(token.trim());
    let st = state.clone();
    let outcome = state
        .store
        .transaction(
            move |conn| -> Result<Result<(UserRow, NewRefresh), &'static str>, ApiError> {
                let now = store::now();
                let Some(row) = sessions::find_refresh(conn, &hash)? else {
                    return Ok(Err("unknown"));
                };
                if row.revoked_at.is_some() {
                    return Ok(Err("revoked"));
                }
                let user = accounts::find_user(conn, &row.user_id)?;
                let reused = row.used_at.is_some() || !sessions::claim_refresh(conn, &row.id, now)?;
                if reused {
                    sessions::revoke_family(conn, &row.family_id, now)?;
                    audit::record_anonymous(
                        conn,
                        user.as_ref().map(|u| u.organisation_id.as_str()),
                        Some(&row.user_id),
                        "auth.refresh_reuse",
                        "denied",
                        request_id.as_deref(),
                    )?;
                    return Ok(Err("reused"));
                }
                if row.expires_at <= now {
                    return Ok(Err("expired"));
                }
                let Some(user) = user.filter(|u| !u.disabled) else {
                    return Ok(Err("disabled"));
                };
                let next = new_refresh(conn, &st, &user.id, &row.family_id, now)?;
                Ok(Ok((user, next)))
            },
        )
        .await?;
    match outcome {
        Ok((user, next)) => session_for(state, user, next),
        Err(_) => Err(ApiError::Unauthorized(
            "The refresh token is not valid; sign in again.".into(),
        )),
    }
}

/// Ends the session the refresh token belongs to.
pub async fn logout(state: &AppState, token: String) -> Result<(), ApiError> {
    let hash = tokens::hash_secret(token.trim());
    state
        .store
        .transaction(move |conn| -> Result<(), ApiError> {
            if let Some(row) = sessions::find_refresh(conn, &hash)? {
                sessions::revoke_family(conn, &row.family_id, store::now())?;
            }
            Ok(())
        })
        .await
}

/// Checks the signed-in user's current password before a sensitive change. Guessing it with a
/// stolen access token is throttled like a sign-in, on the same counters: a wrong guess counts
/// against the account from this network, is audited as `failed_action` and is a 422 on
/// `field`. Returns the throttle keys, for the caller to clear on success.
pub async fn check_current_password(
    state: &AppState,
    caller: &Caller,
    user: &UserRow,
    password: String,
    (field, failed_action): (&'static str, &'static str),
    client_ip: &str,
) -> Result<throttle::Keys, ApiError> {
    let keys = throttle::Keys::new(&user.email, client_ip);
    let limits = throttle::Limits::of(state);
    let _turn = state.sign_in_turns.turn(&user.email).await;
    let k = keys.clone();
    let retry = state
        .store
        .run(move |conn| throttle::check(conn, &k, &limits, store::now()))
        .await?;
    if let Some(secs) = retry {
        return Err(ApiError::RateLimited {
            retry_after_secs: secs,
        });
    }
    if !state
        .hasher
        .verify(
            &password::account_source(&user.id),
            password,
            Some(user.password_hash.clone()),
        )
        .await?
    {
        let (c, k) = (caller.clone(), keys.clone());
        state
            .store
            .transaction(move |conn| -> Result<(), ApiError> {
                throttle::record_failure(conn, &k, &limits, store::now())?;
                audit::record(
                    conn,
                    &c,
                    audit::Event {
                        action: failed_action,
                        patient_id: None,
                        target_type: Some("user"),
                        target_id: Some(&c.user_id),
                        outcome: "failure",
                    },
                )?;
                Ok(())
            })
            .await?;
        return Err(ApiError::field(field, "is incorrect"));
    }
    Ok(keys)
}

/// The caller's own user row.
pub(crate) async fn caller_user(state: &AppState, caller: &Caller) -> Result<UserRow, ApiError> {
    let id = caller.user_id.clone();
    state
        .store
        .run(move |conn| accounts::find_user(conn, &id).map_err(ApiError::from))
        .await?
        .ok_or(ApiError::NotFound)
}

/// Changes the caller's password and ends every session.
pub async fn change_password(
    state: &AppState,
    caller: &Caller,
    current: String,
    new: String,
    client_ip: &str,
) -> Result<(), ApiError> {
    let user = caller_user(state, caller).await?;
    let context = [
        user.email.split('@').next().unwrap_or(""),
        user.display_name.as_str(),
    ];
    crate::auth::password::check_policy("new_password", &new, &context)
        .map_err(|e| ApiError::Validation(vec![e]))?;
    let keys = check_current_password(
        state,
        caller,
        &user,
        current,
        ("current_password", "account.password_change_failed"),
        client_ip,
    )
    .await?;
    let hash = state
        .hasher
        .hash(&password::account_source(&user.id), new)
        .await?;
    let caller = caller.clone();
    state
        .store
        .transaction(move |conn| -> Result<(), ApiError> {
            let now = store::now();
            throttle::record_success(conn, &keys, now)?;
            accounts::set_password(conn, &caller.user_id, &hash, now)?;
            sessions::revoke_user(conn, &caller.user_id, now)?;
            audit::record(
                conn,
                &caller,
                audit::Event::other("account.password_changed", "user", Some(&caller.user_id)),
            )?;
            Ok(())
        })
        .await
}

/// How many email changes an account may ask for per throttle window
/// (`AFTERCARE_LOGIN_WINDOW_SECS`), right password or not: each answer is the same whether or
/// not the address has an account, and this bounds how many addresses one account can try.
pub const EMAIL_CHANGES_PER_WINDOW: i32 = 5;

/// How long the code mailed to a new address works.
pub const EMAIL_CONFIRMATION_HOURS: i64 = 24;

/// Wrong codes a pending email change survives; the next request must start again.
pub const EMAIL_CONFIRMATION_TRIES: i32 = 5;

/// What became of an email change that was asked for correctly. The same for a free address
/// and a taken one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailChange {
    /// No mail is configured: the address changed at once if it was free.
    Applied,
    /// A message went to the new address: a code to confirm it (`confirm_email`) when it is
    /// free, a note that it already has an account when it is not.
    ConfirmationSent,
}

/// The mailer for messages to people (address confirmations), when SMTP is configured.
fn mailer(state: &AppState) -> Result<Option<Mailer>, ApiError> {
    state
        .settings
        .smtp
        .as_ref()
        .map(|s| Mailer::new(&s.url, &s.from).map_err(ApiError::internal))
        .transpose()
}

/// Changes the caller's sign-in address after checking their current password.
///
/// With SMTP configured the new address must be confirmed: a code is mailed to it (or, when
/// another account signs in with it, a note saying so) and nothing changes until
/// [`confirm_email`]. Without, the address changes at once if no other account has it.
///
/// Whether the address was free is never told: taken or not, the answer is the same and the
/// audit record is the same `account.email_change_requested`. A wrong password is a 422 on
/// `current_password` counted on the account's sign-in throttle (as for a password change);
/// every attempt counts against [`EMAIL_CHANGES_PER_WINDOW`].
pub async fn change_email(
    state: &AppState,
    caller: &Caller,
    current_password: String,
    new_email: String,
) -> Result<EmailChange, ApiError> {
    let mailer = mailer(state)?;
    let user = caller_user(state, caller).await?;
    let acct_key = format!("acct:{}", user.email);
    let email_key = format!("email-change:{}", user.id);
    let (keys, window) = ((acct_key.clone(), email_key), throttle_window(state));
    let max = i32::try_from(state.settings.login_max_failures).unwrap_or(5);
    let retry = state
        .store
        .transaction(move |conn| {
            count_attempt(
                conn,
                &[(&keys.0, max), (&keys.1, EMAIL_CHANGES_PER_WINDOW)],
                window,
            )
        })
        .await?;
    if let Some(secs) = retry {
        return Err(ApiError::RateLimited {
            retry_after_secs: secs,
        });
    }
    if !state
        .hasher
        .verify(
            &password::account_source(&user.id),
            current_password,
            Some(user.password_hash.clone()),
        )
        .await?
    {
        let c = caller.clone();
        state
            .store
            .run(move |conn| -> Result<(), ApiError> {
                audit::record(
                    conn,
                    &c,
                    own_account_event(&c, "account.email_change_failed", "failure"),
                )?;
                Ok(())
            })
            .await?;
        return Err(ApiError::field("current_password", "is incorrect"));
    }
    match mailer {
        None => {
            change_email_at_once(state, caller, acct_key, new_email).await?;
            Ok(EmailChange::Applied)
        }
        Some(mailer) => {
            mail_email_confirmation(state, caller, &mailer, acct_key, new_email).await?;
            Ok(EmailChange::ConfirmationSent)
        }
    }
}

/// The audit event of a change to the caller's own account.
fn own_account_event<'a>(
    c: &'a Caller,
    action: &'static str,
    outcome: &'static str,
) -> audit::Event<'a> {
    audit::Event {
        action,
        patient_id: (c.role == Role::Patient).then_some(c.user_id.as_str()),
        target_type: Some("user"),
        target_id: Some(&c.user_id),
        outcome,
    }
}

/// Without mail: the address changes now if it is free.
async fn change_email_at_once(
    state: &AppState,
    caller: &Caller,
    acct_key: String,
    new_email: String,
) -> Result<(), ApiError> {
    let c = caller.clone();
    let changed = state
        .store
        .transaction(move |conn| -> Result<(), ApiError> {
            sessions::clear_throttle(conn, &acct_key)?;
            if !accounts::email_taken(conn, &new_email, Some(&c.user_id))? {
                accounts::update_user(
                    conn,
                    &c.user_id,
                    &accounts::UserChanges {
                        email: Some(new_email),
                        updated_at: Some(store::now()),
                        ..Default::default()
                    },
                )?;
            }
            Ok(())
        })
        .await;
    match changed {
        // Another account took the address between the check and the write: the same as
        // taken before.
        Ok(()) | Err(ApiError::Conflict(_)) => {}
        Err(e) => return Err(e),
    }
    let c = caller.clone();
    state
        .store
        .run(move |conn| -> Result<(), ApiError> {
            audit::record(
                conn,
                &c,
                own_account_event(&c, "account.email_change_requested", "success"),
            )?;
            Ok(())
        })
        .await
}

/// With mail: a free address gets a code to confirm it (kept as a hash, replacing any earlier
/// pending change), a taken one a note that it already has an account. The answer waits for
/// the message to be handed to the SMTP server; if it cannot be, nothing is left pending.
async fn mail_email_confirmation(
    state: &AppState,
    caller: &Caller,
    mailer: &Mailer,
    acct_key: String,
    new_email: String,
) -> Result<(), ApiError> {
    let code = totp::new_typed_code();
    let key = totp::typed_code_key(&code).ok_or_else(|| ApiError::internal("unreadable code"))?;
    let c = caller.clone();
    let to = new_email.clone();
    let taken = state
        .store
        .transaction(move |conn| -> Result<bool, ApiError> {
            sessions::clear_throttle(conn, &acct_key)?;
            let taken = accounts::email_taken(conn, &to, Some(&c.user_id))?;
            if taken {
                accounts::drop_email_change(conn, &c.user_id)?;
            } else {
                let now = store::now();
                accounts::put_email_change(
                    conn,
                    &accounts::EmailChangeRow {
                        user_id: c.user_id.clone(),
                        new_email: to,
                        code_hash: tokens::hash_secret(&key),
                        attempts: 0,
                        expires_at: now + TimeDelta::hours(EMAIL_CONFIRMATION_HOURS),
                        created_at: now,
                    },
                )?;
            }
            audit::record(
                conn,
                &c,
                own_account_event(&c, "account.email_change_requested", "success"),
            )?;
            Ok(taken)
        })
        .await?;
    let (subject, body) = if taken {
        email::email_already_in_use_text()
    } else {
        email::email_confirmation_text(&code, EMAIL_CONFIRMATION_HOURS)
    };
    if let Err(e) = mailer.send_notice(&new_email, &subject, &body).await {
        tracing::warn!(error = %e, "could not send an address confirmation");
        let id = caller.user_id.clone();
        let dropped = state
            .store
            .run(move |conn| accounts::drop_email_change(conn, &id).map_err(ApiError::from))
            .await;
        if let Err(e) = dropped {
            tracing::warn!(error = %e, "could not drop an unsent email change");
        }
        return Err(ApiError::MailUnavailable);
    }
    Ok(())
}

/// Why a confirmation code did not change the address.
enum Confirmation {
    Changed { previous: String },
    WrongCode,
    Taken,
}

/// Confirms a pending email change with the code mailed to the new address: the account signs
/// in with that address from now on, and its previous address is told. A wrong or expired
/// code is a 422 on `code`, and after [`EMAIL_CONFIRMATION_TRIES`] wrong ones the change is
/// dropped; an address another account took meanwhile is a 409.
pub async fn confirm_email(state: &AppState, caller: &Caller, code: &str) -> Result<(), ApiError> {
    let wrong = || ApiError::field("code", "is not the code we sent, or has expired");
    let hash = totp::typed_code_key(code).map(|k| tokens::hash_secret(&k));
    let c = caller.clone();
    let outcome = state
        .store
        .transaction(move |conn| -> Result<Confirmation, ApiError> {
            let now = store::now();
            let pending = accounts::find_email_change(conn, &c.user_id)?;
            let row = match pending.filter(|r| r.expires_at > now) {
                Some(r) if hash.as_deref() == Some(r.code_hash.as_str()) => r,
                wrong => {
                    match wrong {
                        Some(r) if r.attempts + 1 < EMAIL_CONFIRMATION_TRIES => {
                            accounts::count_email_change_attempt(conn, &c.user_id)?
                        }
                        // Expired, out of tries, or nothing waiting.
                        _ => accounts::drop_email_change(conn, &c.user_id)?,
                    }
                    audit::record(
                        conn,
                        &c,
                        own_account_event(&c, "account.email_change_failed", "failure"),
                    )?;
                    return Ok(Confirmation::WrongCode);
                }
            };
            accounts::drop_email_change(conn, &c.user_id)?;
            if accounts::email_taken(conn, &row.new_email, Some(&c.user_id))? {
                return Ok(Confirmation::Taken);
            }
            let previous = accounts::find_user(conn, &c.user_id)?
                .ok_or(ApiError::NotFound)?
                .email;
            accounts::update_user(
                conn,
                &c.user_id,
                &accounts::UserChanges {
                    email: Some(row.new_email),
                    updated_at: Some(now),
                    ..Default::default()
                },
            )?;
            audit::record(
                conn,
                &c,
                own_account_event(&c, "account.email_changed", "success"),
            )?;
            Ok(Confirmation::Changed { previous })
        })
        .await;
    let taken = || {
        ApiError::Conflict(
            "Another account signs in with this address now; nothing was changed.".into(),
        )
    };
    match outcome {
        Ok(Confirmation::Changed { previous }) => {
            if let Some(mailer) = mailer(state)? {
                let (subject, body) = email::email_changed_text();
                if let Err(e) = mailer.send_notice(&previous, &subject, &body).await {
                    tracing::warn!(error = %e, "could not tell the previous address of its change");
                }
            }
            Ok(())
        }
        Ok(Confirmation::WrongCode) => Err(wrong()),
        Ok(Confirmation::Taken) | Err(ApiError::Conflict(_)) => Err(taken()),
        Err(e) => Err(e),
    }
}

/// An invitation request.
pub struct InvitationRequest {
    /// `patient` or `counsellor`.
    pub role: String,
    /// Restrict redemption to this email.
    pub email: Option<String>,
    /// For patients: the primary counsellor.
    pub counsellor_id: Option<String>,
    /// For patients: the starting phase.
    pub phase: Option<String>,
    /// For patients: the last use before enrolment, if known.
    pub last_use_date: Option<NaiveDate>,
}

/// For patient invitations: phase dates from before enrolment.
#[derive(Debug, Clone, Copy, Default)]
pub struct EnrolmentDates {
    /// When the starting phase began.
    pub phase_started_on: Option<NaiveDate>,
    /// When they left detox.
    pub detox_ended_on: Option<NaiveDate>,
}

/// Creates an invitation and returns it with its code (the only time the code is shown).
///
/// With an idempotency key, a retry (same key, same body) does not create a second
/// invitation: it answers with the first one under a fresh code, and the code the lost
/// response carried stops working (codes are kept only as hashes, so the first cannot be
/// shown again).
pub async fn invite(
    state: &AppState,
    caller: &Caller,
    req: InvitationRequest,
    key: Option<super::idempotency::Key>,
) -> Result<(InvitationRow, String), ApiError> {
    invite_with_dates(state, caller, req, EnrolmentDates::default(), key).await
}

/// [`invite`], with the phase dates of a patient who enrols after their phase began or after
/// leaving detox elsewhere.
pub async fn invite_with_dates(
    state: &AppState,
    caller: &Caller,
    req: InvitationRequest,
    dates: EnrolmentDates,
    key: Option<super::idempotency::Key>,
) -> Result<(InvitationRow, String), ApiError> {
    caller.require(&[Role::Admin, Role::Counsellor])?;
    let mut errors = Vec::new();
    let role = match req.role.as_str() {
        "patient" => "patient",
        "counsellor" if caller.role == Role::Admin => "counsellor",
        "counsellor" => return Err(ApiError::Forbidden),
        _ => {
            errors.push(FieldError::new("role", "must be patient or counsellor"));
            "patient"
        }
    };
    let email = req
        .email
        .as_deref()
        .and_then(|e| collect(&mut errors, normalise_email("email", e)));
    if let Some(p) = &req.phase {
        if role != "patient" {
            errors.push(FieldError::new(
                "phase",
                "applies only to patient invitations",
            ));
        } else if !PHASES.contains(&p.as_str()) {
            errors.push(FieldError::new(
                "phase",
                "must be detox, treatment, aftercare or discharged",
            ));
        }
    }
    if role != "patient" && (req.counsellor_id.is_some() || req.last_use_date.is_some()) {
        errors.push(FieldError::new(
            "counsellor_id",
            "applies only to patient invitations",
        ));
    }
    if let Some(d) = req.last_use_date {
        if d > local_today(&caller.timezone) + TimeDelta::days(1) {
            errors.push(FieldError::new(
                "last_use_date",
                "must not be in the future",
            ));
        }
    }
    if role == "patient" {
        let phase = req.phase.as_deref().unwrap_or("aftercare");
        errors.extend(super::patients::check_enrolment_dates(
            phase,
            dates.phase_started_on,
            dates.detox_ended_on,
            local_today(&caller.timezone),
        ));
    } else {
        for (field, given) in [
            ("phase_started_on", dates.phase_started_on.is_some()),
            ("detox_ended_on", dates.detox_ended_on.is_some()),
        ] {
            if given {
                errors.push(FieldError::new(
                    field,
                    "applies only to patient invitations",
                ));
            }
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let counsellor_id = match (caller.role, req.counsellor_id) {
        (Role::Counsellor, Some(id)) if id != caller.user_id => {
            return Err(ApiError::field(
                "counsellor_id",
                "counsellors invite patients to their own care team",
            ));
        }
        (Role::Counsellor, _) => Some(caller.user_id.clone()),
        (_, other) => other,
    };
    let code = tokens::random_token();
    let ttl = TimeDelta::seconds(
        i64::try_from(state.settings.invitation_ttl.as_secs()).unwrap_or(604_800),
    );
    let caller = caller.clone();
    let code_hash = tokens::hash_secret(&code);
    let row = state
        .store
        .transaction(move |conn| -> Result<InvitationRow, ApiError> {
            if let Some(k) = &key {
                if let Some(first) = super::idempotency::replay(conn, &caller.user_id, k)? {
                    return reissue(conn, &caller, &first, &code_hash);
                }
            }
            if let Some(cid) = &counsellor_id {
                let ok = accounts::find_user(conn, cid)?.is_some_and(|u| {
                    u.role == "counsellor"
                        && u.organisation_id == caller.organisation_id
                        && !u.disabled
                });
                if !ok {
                    return Err(ApiError::field(
                        "counsellor_id",
                        "is not a counsellor in your organisation",
                    ));
                }
            }
            let now = store::now();
            let row = InvitationRow {
                id: store::new_id(),
                organisation_id: caller.organisation_id.clone(),
                code_hash,
                role: role.to_owned(),
                email,
                counsellor_id,
                phase: req.phase,
                last_use_on: req.last_use_date,
                created_by: caller.user_id.clone(),
                expires_at: now + ttl,
                used_at: None,
                used_by: None,
                created_at: now,
                phase_started_on: dates.phase_started_on,
                detox_ended_on: dates.detox_ended_on,
            };
            invitations::insert(conn, &row)?;
            audit::record(
                conn,
                &caller,
                audit::Event::other("invitation.created", "invitation", Some(&row.id)),
            )?;
            if let Some(k) = &key {
                let first = serde_json::json!({ "invitation_id": row.id }).to_string();
                super::idempotency::remember(conn, &caller.user_id, k, 201, &first)?;
            }
            Ok(row)
        })
        .await?;
    Ok((row, code))
}

/// The invitation a retried request created the first time, under a new code.
fn reissue(
    conn: &mut DbConnection,
    caller: &Caller,
    first: &str,
    code_hash: &str,
) -> Result<InvitationRow, ApiError> {
    let id = serde_json::from_str::<serde_json::Value>(first)
        .ok()
        .and_then(|v| v["invitation_id"].as_str().map(str::to_owned))
        .ok_or_else(|| ApiError::internal("unreadable remembered invitation response"))?;
    let row = invitations::find(conn, &id)?.ok_or(ApiError::NotFound)?;
    if !invitations::replace_code(conn, &id, code_hash)? {
        return Err(ApiError::Conflict(
            "The invitation this Idempotency-Key created has already been redeemed.".into(),
        ));
    }
    audit::record(
        conn,
        caller,
        audit::Event::other("invitation.reissued", "invitation", Some(&id)),
    )?;
    Ok(InvitationRow {
        code_hash: code_hash.to_owned(),
        ..row
    })
}

/// Replaces a patient's care team (admins only).
pub async fn set_care_team(
    state: &AppState,
    caller: &Caller,
    patient_id: String,
    counsellor_ids: Vec<String>,
    primary: Option<String>,
) -> Result<Vec<CareTeamRow>, ApiError> {
    caller.require(&[Role::Admin])?;
    let mut ids = counsellor_ids;
    ids.sort();
    ids.dedup();
    if let Some(p) = &primary {
        if !ids.contains(p) {
            return Err(ApiError::field(
                "primary_counsellor_id",
                "must be one of counsellor_ids",
            ));
        }
    }
    let caller = caller.clone();
    state
        .store
        .transaction(move |conn| -> Result<Vec<CareTeamRow>, ApiError> {
            crate::auth::policy::writable_patient(conn, &caller, &patient_id)?;
            let mut errors = Vec::new();
            for (i, id) in ids.iter().enumerate() {
                match accounts::find_user(conn, id)? {
                    Some(u)
                        if u.role == "counsellor"
                            && u.organisation_id == caller.organisation_id =>
                    {
                        // A disabled account reads no alerts: a team of them watches nobody.
                        if u.disabled {
                            errors.push(FieldError::new(
                                format!("counsellor_ids[{i}]"),
                                "is a disabled account",
                            ));
                        }
                    }
                    _ => errors.push(FieldError::new(
                        format!("counsellor_ids[{i}]"),
                        "is not a counsellor in your organisation",
                    )),
                }
            }
            if !errors.is_empty() {
                return Err(ApiError::Validation(errors));
            }
            let now = store::now();
            let primary = primary.or_else(|| ids.first().cloned());
            let members: Vec<CareTeamRow> = ids
                .iter()
                .map(|id| CareTeamRow {
                    patient_id: patient_id.clone(),
                    counsellor_id: id.clone(),
                    is_primary: Some(id) == primary.as_ref(),
                    added_at: now,
                })
                .collect();
            patients::replace_care_team(conn, &patient_id, &members)?;
            audit::record(
                conn,
                &caller,
                audit::Event::patient("care_team.write", &patient_id, "patient", Some(&patient_id)),
            )?;
            Ok(members)
        })
        .await
}
