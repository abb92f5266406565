//! What every handler and worker shares.

use std::sync::Arc;

use crate::auth::password::Hasher;
use crate::auth::tokens::Keys;
use crate::config::Settings;
use crate::store::Store;

/// Shared application state, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// Validated settings.
    pub settings: Arc<Settings>,
    /// The token-signing key.
    pub keys: Arc<Keys>,
    /// Password hashing, capped in concurrency.
    pub hasher: Hasher,
    /// One sign-in attempt per account at a time, so guesses are counted one by one.
    pub sign_in_turns: crate::service::sign_in_throttle::AccountLocks,
    /// Live alert events for this process's streams.
    pub hub: crate::delivery::hub::Hub,
}
