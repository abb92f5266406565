//! Invitations: admins invite counsellors and patients; counsellors invite patients to their
//! own care team.

use actix_web::{post, web, HttpResponse};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::IdempotentJson;
use super::types::utc;
use super::vocabulary::InvitationRole;
use crate::auth::Caller;
use crate::domain::policy::Phase;
use crate::error::{ApiError, Problem};
use crate::service::accounts::{self, EnrolmentDates, InvitationRequest};
use crate::state::AppState;

/// An invitation to create.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateInvitation {
    /// `patient` or `counsellor` (only admins invite counsellors).
    #[schema(value_type = InvitationRole)]
    pub role: String,
    /// If given, only this email can redeem the code.
    #[schema(format = Email, max_length = 254)]
    pub email: Option<String>,
    /// Patients only: the primary counsellor (counsellors always invite to their own team).
    #[schema(format = Uuid)]
    pub counsellor_id: Option<String>,
    /// Patients only: the starting phase (`detox`, `treatment`, `aftercare`, `discharged`;
    /// default `aftercare`).
    #[schema(value_type = Option<Phase>)]
    pub phase: Option<String>,
    /// Patients only: the date of last use before enrolment, if known; the abstinent streak
    /// counts from the day after it.
    pub last_use_date: Option<NaiveDate>,
    /// Patients only: the local date the starting phase began, if before enrolment (within
    /// the last year, not in the future; default: when detox ended, else the day they
    /// register). For `treatment` after detox, the day detox ended.
    pub phase_started_on: Option<NaiveDate>,
    /// Patients only, not for phase `detox`: the local date they left detox elsewhere, if
    /// before enrolment (within the last year, not after `phase_started_on`). The phase
    /// history then holds a detox span ending that day, and a use within the post-detox
    /// window counts as the overdose risk it is.
    pub detox_ended_on: Option<NaiveDate>,
}

/// A created invitation. The code is shown only here; it is stored as a hash.
#[derive(Debug, Serialize, ToSchema)]
pub struct Invitation {
    /// Invitation id.
    #[schema(format = Uuid)]
    pub id: String,
    /// The single-use code to give to the invitee.
    pub code: String,
    /// The role the invitee will have.
    #[schema(value_type = InvitationRole)]
    pub role: String,
    /// When the code stops working.
    pub expires_at: DateTime<Utc>,
}

/// Invite a counsellor or a patient.
#[utoipa::path(
    tag = "accounts",
    security(("bearer" = [])),
    request_body = CreateInvitation,
    params(("Idempotency-Key" = Option<String>, Header, pattern = r"^[!-~]{1,255}$", description = "Makes retries safe: the same key and body answer with the same invitation (under a new code, the earlier one no longer working) instead of creating another; the same key with another body is a 422")),
    responses(
        (status = 201, description = "Created; give the code to the invitee", body = Invitation),
        (status = 409, description = "Retried with the key of an invitation already redeemed", body = Problem),
        (status = 401, description = "Not signed in", body = Problem),
        (status = 403, description = "Patients cannot invite; counsellors cannot invite counsellors", body = Problem),
        (status = 422, description = "Invalid field", body = Problem),
    )
)]
#[post("/invitations")]
pub async fn create_invitation(
    state: web::Data<AppState>,
    caller: Caller,
    body: IdempotentJson<CreateInvitation>,
) -> Result<HttpResponse, ApiError> {
    let (b, key) = (body.body, body.key);
    let (row, code) = accounts::invite_with_dates(
        &state,
        &caller,
        InvitationRequest {
            role: b.role,
            email: b.email,
            counsellor_id: b.counsellor_id,
            phase: b.phase,
            last_use_date: b.last_use_date,
        },
        EnrolmentDates {
            phase_started_on: b.phase_started_on,
            detox_ended_on: b.detox_ended_on,
        },
        key,
    )
    .await?;
    Ok(HttpResponse::Created().json(Invitation {
        id: row.id,
        code,
        role: row.role,
        expires_at: utc(row.expires_at),
    }))
}
