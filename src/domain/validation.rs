//! Field-level validation errors, reported to clients in problem+json `errors`.

use serde::Serialize;
use utoipa::ToSchema;

/// One invalid field and why.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct FieldError {
    /// The field's path in the request, dotted (e.g. `rules.craving_high.threshold`).
    pub field: String,
    /// What is wrong, for a person to read.
    pub message: String,
}

impl FieldError {
    /// Builds a field error.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}
