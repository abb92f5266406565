//! Cursor pagination: `?limit=` (default 50, max 200) and an opaque `?cursor=`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::error::ApiError;

/// Default page size.
pub const DEFAULT_LIMIT: i64 = 50;
/// Largest page size.
pub const MAX_LIMIT: i64 = 200;

/// Paging parameters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]*$")]
    pub cursor: Option<String>,
}

impl PageParams {
    /// The page size, checked.
    pub fn limit(&self) -> Result<i64, ApiError> {
        match self.limit {
            None => Ok(DEFAULT_LIMIT),
            Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            Some(_) => Err(ApiError::BadQuery(vec![
                crate::domain::validation::FieldError::new("limit", "must be from 1 to 200"),
            ])),
        }
    }

    /// The decoded cursor position, if any.
    pub fn position(&self) -> Result<Option<String>, ApiError> {
        let Some(c) = &self.cursor else {
            return Ok(None);
        };
        URL_SAFE_NO_PAD
            .decode(c)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .map(Some)
            .ok_or_else(|| {
                ApiError::BadQuery(vec![crate::domain::validation::FieldError::new(
                    "cursor",
                    "is not a cursor this API gave out",
                )])
            })
    }
}

impl PageParams {
    /// The decoded cursor position as a date (pages of check-ins are keyed by date).
    pub fn date_position(&self) -> Result<Option<chrono::NaiveDate>, ApiError> {
        match self.position()? {
            None => Ok(None),
            Some(p) => p.parse().map(Some).map_err(|_| {
                ApiError::BadQuery(vec![crate::domain::validation::FieldError::new(
                    "cursor",
                    "is not a cursor this API gave out",
                )])
            }),
        }
    }
}

/// Encodes a position as an opaque cursor.
pub fn cursor(position: &str) -> String {
    URL_SAFE_NO_PAD.encode(position.as_bytes())
}

/// A page of results.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T: ToSchema> {
    /// The items.
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

impl<T: ToSchema> Page<T> {
    /// Builds a page from up to `limit + 1` loaded rows: the extra row only tells whether
    /// another page exists.
    pub fn from_rows<R>(
        mut rows: Vec<R>,
        limit: i64,
        position: impl Fn(&R) -> String,
        map: impl Fn(R) -> T,
    ) -> Self {
        let limit = usize::try_from(limit).unwrap_or(0);
        let more = rows.len() > limit;
        rows.truncate(limit);
        let next_cursor = if more {
            rows.last().map(|r| cursor(&position(r)))
        } else {
            None
        };
        Self {
            items: rows.into_iter().map(map).collect(),
            next_cursor,
        }
    }
}
