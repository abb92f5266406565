//! API representations shared by several handlers, kept apart from database rows.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Role;
use crate::store::accounts::UserRow;

/// Whether `s` is an id as this API writes them: a UUID in lower-case hyphenated form (another
/// spelling of a UUID names nothing stored).
pub fn is_id(s: &str) -> bool {
    uuid::Uuid::try_parse(s).is_ok_and(|u| u.hyphenated().to_string() == s)
}

/// Stored UTC timestamps as RFC 3339 with `Z`.
pub fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

/// A user.
#[derive(Debug, Serialize, ToSchema)]
pub struct User {
    /// User id (UUID).
    #[schema(format = Uuid)]
    pub id: String,
    /// The organisation (clinic) the user belongs to.
    #[schema(format = Uuid)]
    pub organisation_id: String,
    /// `admin`, `counsellor` or `patient`.
    pub role: Role,
    /// Email address (lower case).
    #[schema(format = Email, max_length = 254)]
    pub email: String,
    /// Name shown to others (1–100 characters).
    #[schema(min_length = 1, max_length = 100)]
    pub display_name: String,
    /// IANA timezone; a patient's local dates are reckoned in it.
    #[schema(value_type = super::vocabulary::Timezone)]
    pub timezone: String,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
}

impl From<UserRow> for User {
    fn from(u: UserRow) -> Self {
        Self {
            id: u.id,
            organisation_id: u.organisation_id,
            role: Role::parse(&u.role).unwrap_or(Role::Patient),
            email: u.email,
            display_name: u.display_name,
            timezone: u.timezone,
            created_at: utc(u.created_at),
        }
    }
}

/// A user as an administrator sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ManagedUser {
    /// The user.
    #[serde(flatten)]
    pub user: User,
    /// Whether sign-in is disabled.
    pub disabled: bool,
}
