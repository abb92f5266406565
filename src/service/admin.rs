//! Operator actions run from the command line.

use crate::domain::validation::FieldError;
use crate::error::ApiError;
use crate::state::AppState;
use crate::store::accounts::{self, OrganisationRow, UserRow};
use crate::store::{self};

use super::accounts::{check_display_name, normalise_email};

/// Creates an organisation and its first admin; returns (organisation id, user id).
pub async fn create_admin(
    state: &AppState,
    organisation: &str,
    email: &str,
    password: String,
    default_policy_json: String,
) -> Result<(String, String), ApiError> {
    let mut errors = Vec::new();
    let org_name = check_display_name("organisation", organisation)
        .map_err(|e| errors.push(e))
        .ok();
    let email = normalise_email("email", email)
        .map_err(|e| errors.push(e))
        .ok();
    if let Err(e) = crate::auth::password::check_policy("password", &password, &[]) {
        errors.push(e);
    }
    let (Some(org_name), Some(email)) = (org_name, email) else {
        return Err(ApiError::Validation(errors));
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let hash = state.hasher.hash("command-line", password).await?;
    state
        .store
        .transaction(move |conn| -> Result<(String, String), ApiError> {
            if accounts::email_taken(conn, &email, None)? {
                return Err(ApiError::Validation(vec![FieldError::new(
                    "email",
                    "is already registered",
                )]));
            }
            let now = store::now();
            let org = OrganisationRow {
                id: store::new_id(),
                name: org_name,
                risk_policy: default_policy_json,
                crisis_resources: None,
                created_at: now,
            };
            accounts::insert_organisation(conn, &org)?;
            let user = UserRow {
                id: store::new_id(),
                organisation_id: org.id.clone(),
                role: "admin".into(),
                email,
                password_hash: hash,
                display_name: "Administrator".into(),
                timezone: "UTC".into(),
                disabled: false,
                created_at: now,
                updated_at: now,
                password_changed_at: now,
            };
            accounts::insert_user(conn, &user)?;
            super::audit::record_anonymous(
                conn,
                Some(&org.id),
                Some(&user.id),
                "organisation.created",
                "success",
                None,
            )?;
            Ok((org.id, user.id))
        })
        .await
}
