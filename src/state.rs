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
    /// The public base URL, without a trailing slash: `AFTERCARE_PUBLIC_URL`, or `http://` and
    /// the address bound (known once the listener is bound).
    pub public_url: Arc<std::sync::OnceLock<String>>,
}

impl AppState {
    /// The public base URL (no trailing slash): `AFTERCARE_PUBLIC_URL`, else `http://` and the
    /// bound address.
    pub fn public_url(&self) -> String {
        self.public_url
            .get()
            .cloned()
            .or_else(|| self.settings.public_url.clone())
            .unwrap_or_else(|| format!("http://{}", self.settings.bind))
    }

    /// The OAuth token endpoint's URL, the audience client assertions must name.
    pub fn token_url(&self) -> String {
        format!("{}/oauth/token", self.public_url())
    }
}
