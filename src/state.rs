//! What every handler and worker shares.

use std::sync::Arc;

use crate::config::Settings;
use crate::store::Store;

/// Shared application state, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// Validated settings.
    pub settings: Arc<Settings>,
}
