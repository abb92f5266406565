//! `Idempotency-Key` for creating POSTs: the same key with the same body returns the first
//! response again; the same key with another body is refused. The key is checked and the
//! response remembered inside the action's own transaction, so a retry after a lost response
//! can never perform the action twice.

use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::store::idempotency::{self, IdempotencyRow};
use crate::store::{self, DbConnection};

/// How long a key is remembered.
pub const RETENTION_HOURS: i64 = 24;

/// A request's key and the hash of what it asked for.
#[derive(Debug, Clone)]
pub struct Key {
    /// The client's key.
    pub key: String,
    /// SHA-256 of the request body.
    pub request_hash: String,
}

impl Key {
    /// Reads the header value; keys are 1–255 visible ASCII characters.
    pub fn parse(header: Option<&str>, body: &[u8]) -> Result<Option<Self>, ApiError> {
        let Some(raw) = header else { return Ok(None) };
        let key = raw.trim();
        if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ApiError::field(
                "Idempotency-Key",
                "must be 1 to 255 visible ASCII characters",
            ));
        }
        let request_hash = Sha256::digest(body)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Some(Self {
            key: key.to_owned(),
            request_hash,
        }))
    }
}

/// The remembered body for this key, if the request was seen before.
pub fn replay(
    conn: &mut DbConnection,
    user_id: &str,
    key: &Key,
) -> Result<Option<String>, ApiError> {
    let cutoff = store::now() - chrono::TimeDelta::hours(RETENTION_HOURS);
    match idempotency::find(conn, user_id, &key.key)? {
        Some(row) if row.created_at >= cutoff => {
            if row.request_hash == key.request_hash {
                Ok(Some(row.body))
            } else {
                Err(ApiError::field(
                    "Idempotency-Key",
                    "was already used with a different request body",
                ))
            }
        }
        _ => Ok(None),
    }
}

/// Remembers the response of a request performed under this key.
pub fn remember(
    conn: &mut DbConnection,
    user_id: &str,
    key: &Key,
    status: u16,
    body: &str,
) -> Result<(), ApiError> {
    let now = store::now();
    // An expired row of the same key would block the insert.
    idempotency::purge(conn, now - chrono::TimeDelta::hours(RETENTION_HOURS))?;
    idempotency::insert(
        conn,
        &IdempotencyRow {
            user_id: user_id.to_owned(),
            key: key.key.clone(),
            request_hash: key.request_hash.clone(),
            status: i32::from(status),
            body: body.to_owned(),
            created_at: now,
        },
    )?;
    Ok(())
}
