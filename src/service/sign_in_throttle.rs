//! Sign-in throttling that counts only failures and never refuses a right password for
//! other people's mistakes.
//!
//! Three counters of failed password checks, each over the throttling window:
//!
//! - the **account** (`acct:<email>`): failures on it from anywhere;
//! - the **network** (`net:<address>`; an IPv6 client's /64, since one household or clinic
//!   gets a whole /64): failures from it on any account;
//! - the **pair** (`pair:<hash of email and network>`): failures on this account from this
//!   network.
//!
//! A failure is recorded after the password was checked and found wrong; a right password is
//! never counted. Before a password is checked (so before any argon2 time is spent) the
//! attempt is refused with 429 when:
//!
//! 1. the pair has reached the account limit: whoever is on this network has had their tries;
//! 2. unless the account has signed in from this network before (a *known* network, remembered
//!    30 days, as a hash): the account has reached its limit (it is under attack from
//!    elsewhere: the owner on their usual network still gets in, a stranger does not);
//! 3. unless known: the network has reached its limit and this account already failed from it
//!    (a throttled network gets one try per account, so a right password on the first try
//!    still works);
//! 4. unless known: the network has failed five times its limit (a network spraying guesses
//!    across accounts; a clinic behind one NAT does not fail a hundred times in a window).
//!
//! So a clinic behind one address keeps signing in while one of its users (or an attacker
//! among them) fails repeatedly, and an account under attack stays open to its owner from
//! where they usually sign in. Concurrent attempts on one account are checked one after
//! another within a process (a fair lock per account), so concurrent guesses cannot slip past
//! the account limit, while concurrent right passwords all succeed; concurrent guesses across
//! many accounts can pass the network limit by at most the password-hashing queue.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use chrono::{Duration as TimeDelta, NaiveDateTime};

use crate::error::ApiError;
use crate::state::AppState;
use crate::store::sessions::{self, ThrottleRow};
use crate::store::DbConnection;

/// How long a successful sign-in makes its network known to the account.
pub const KNOWN_NETWORK_DAYS: i64 = 30;
/// A network this many times over its limit is refused for every account it has not signed
/// in to before.
pub const NETWORK_BLOCK_FACTOR: i32 = 5;

/// The network a client address belongs to, for throttling: an IPv4 address itself, an IPv6
/// address's /64 (IPv4-mapped IPv6 counts as IPv4).
pub fn network_of(client: &str) -> String {
    match client.parse::<IpAddr>() {
        Ok(IpAddr::V4(v4)) => v4.to_string(),
        Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        Err(_) => client.to_owned(),
    }
}

/// The counters one attempt reads and writes.
#[derive(Debug, Clone)]
pub struct Keys {
    account: String,
    network: String,
    pair: String,
}

impl Keys {
    /// The keys for a (normalised) email signing in from a client address.
    pub fn new(email: &str, client: &str) -> Self {
        let network = network_of(client);
        let pair = crate::auth::tokens::hash_secret(&format!("{email}\n{network}"));
        Self {
            account: format!("acct:{email}"),
            network: format!("net:{network}"),
            pair: format!("pair:{pair}"),
        }
    }
}

/// The limits, from the settings.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Failures per account, and per account from one network.
    pub account: i32,
    /// Failures per network before it is throttled.
    pub network: i32,
    /// The window failures are counted over.
    pub window: TimeDelta,
}

impl Limits {
    /// The configured limits.
    pub fn of(state: &AppState) -> Self {
        let s = &state.settings;
        Self {
            account: i32::try_from(s.login_max_failures).unwrap_or(5),
            network: i32::try_from(s.login_max_failures_per_address).unwrap_or(20),
            window: TimeDelta::seconds(i64::try_from(s.login_window.as_secs()).unwrap_or(900)),
        }
    }
}

/// Failures a counter holds now, and seconds until its window ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Count {
    /// Failures in the current window (0 once the window is over).
    pub failures: i32,
    /// Seconds until the window (and any block) ends.
    pub resets_in: u64,
}

impl Count {
    fn of(row: Option<&ThrottleRow>, window: TimeDelta, now: NaiveDateTime) -> Self {
        let Some(row) = row else {
            return Self::default();
        };
        let end = row.window_started_at + window;
        let end = row.blocked_until.map_or(end, |b| b.max(end));
        if end <= now {
            return Self::default();
        }
        Self {
            failures: row.failures,
            resets_in: u64::try_from((end - now).num_seconds().max(1)).unwrap_or(1),
        }
    }
}

/// What the counters say about one attempt.
#[derive(Debug, Clone, Copy, Default)]
pub struct View {
    /// The account's failures from anywhere.
    pub account: Count,
    /// The network's failures on any account.
    pub network: Count,
    /// This account's failures from this network.
    pub pair: Count,
    /// Whether the account signed in from this network in the last [`KNOWN_NETWORK_DAYS`].
    pub known: bool,
}

/// Seconds to wait when the attempt must be refused before its password is checked.
pub fn refusal(view: &View, limits: &Limits) -> Option<u64> {
    if view.pair.failures >= limits.account {
        return Some(view.pair.resets_in);
    }
    if view.known {
        return None;
    }
    if view.account.failures >= limits.account {
        return Some(view.account.resets_in);
    }
    let network_blocked =
        view.network.failures >= limits.network.saturating_mul(NETWORK_BLOCK_FACTOR);
    let network_throttled = view.network.failures >= limits.network;
    if network_blocked || (network_throttled && view.pair.failures > 0) {
        return Some(view.network.resets_in);
    }
    None
}

/// Reads the counters (without locking or writing anything) and decides whether the attempt
/// may have its password checked; `Some(seconds)` when not.
pub fn check(
    conn: &mut DbConnection,
    keys: &Keys,
    limits: &Limits,
    now: NaiveDateTime,
) -> Result<Option<u64>, ApiError> {
    let count = |conn: &mut DbConnection, key: &str| -> Result<Count, ApiError> {
        Ok(Count::of(
            sessions::get_throttle(conn, key)?.as_ref(),
            limits.window,
            now,
        ))
    };
    let view = View {
        account: count(conn, &keys.account)?,
        network: count(conn, &keys.network)?,
        pair: count(conn, &keys.pair)?,
        known: sessions::network_known_since(conn, &keys.pair)?
            .is_some_and(|at| at > now - TimeDelta::days(KNOWN_NETWORK_DAYS)),
    };
    Ok(refusal(&view, limits))
}

/// Counts one failure on a counter row as [`sessions::lock_throttle`] returned it.
pub(super) fn bump(
    row: ThrottleRow,
    now: NaiveDateTime,
    window: TimeDelta,
    max: i32,
) -> ThrottleRow {
    let mut r = if row.window_started_at + window > now {
        row
    } else {
        ThrottleRow {
            failures: 0,
            window_started_at: now,
            blocked_until: None,
            ..row
        }
    };
    r.failures = r.failures.saturating_add(1);
    if r.failures >= max && r.blocked_until.is_none() {
        // Blocked until the window ends; never permanently.
        r.blocked_until = Some(now + window);
    }
    r
}

/// Records a wrong password on the account, the network and the pair, under the counters' row
/// locks (account first, then network, then pair: the same order everywhere, so two
/// attempts never deadlock).
pub fn record_failure(
    conn: &mut DbConnection,
    keys: &Keys,
    limits: &Limits,
    now: NaiveDateTime,
) -> Result<(), ApiError> {
    for (key, max) in [
        (&keys.account, limits.account),
        (&keys.network, limits.network),
        (&keys.pair, limits.account),
    ] {
        let row = sessions::lock_throttle(conn, key, now)?;
        sessions::put_throttle(conn, &bump(row, now, limits.window, max))?;
    }
    Ok(())
}

/// Records a right password: this network becomes known to the account and the pair's own
/// failures are forgotten. The account's and the network's counters are left alone, so the
/// owner's success does not reset an attacker's count elsewhere.
pub fn record_success(
    conn: &mut DbConnection,
    keys: &Keys,
    now: NaiveDateTime,
) -> Result<(), ApiError> {
    sessions::clear_throttle(conn, &keys.pair)?;
    sessions::remember_network(conn, &keys.pair, now)?;
    Ok(())
}

/// One fair lock per account, so a process checks one attempt on an account at a time.
#[derive(Clone, Default)]
pub struct AccountLocks {
    locks: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

/// An account's turn; dropping it lets the next attempt on the account go.
pub struct Turn {
    locks: AccountLocks,
    key: String,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl AccountLocks {
    /// Waits for the account's turn (first come, first served).
    pub async fn turn(&self, account: &str) -> Turn {
        let lock = {
            let mut map = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(account.to_owned()).or_default().clone()
        };
        Turn {
            locks: self.clone(),
            key: account.to_owned(),
            guard: Some(lock.lock_owned().await),
        }
    }

    /// Accounts with an attempt under way or waiting (for tests and metrics).
    pub fn len(&self) -> usize {
        self.locks.lock().map_or(0, |m| m.len())
    }

    /// Whether no attempt is under way.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        drop(self.guard.take());
        let mut map = self.locks.locks.lock().unwrap_or_else(|e| e.into_inner());
        // Only the map holds it: nobody is waiting, forget the account.
        if map
            .get(&self.key)
            .is_some_and(|l| Arc::strong_count(l) == 1)
        {
            map.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        account: 5,
        network: 20,
        window: TimeDelta::seconds(900),
    };

    fn count(failures: i32) -> Count {
        Count {
            failures,
            resets_in: 600,
        }
    }

    fn view(account: i32, network: i32, pair: i32, known: bool) -> View {
        View {
            account: count(account),
            network: count(network),
            pair: count(pair),
            known,
        }
    }

    #[test]
    fn the_pair_limit_applies_to_everyone() {
        assert_eq!(refusal(&view(4, 4, 4, true), &LIMITS), None);
        assert_eq!(refusal(&view(5, 5, 5, true), &LIMITS), Some(600));
        assert_eq!(refusal(&view(5, 5, 5, false), &LIMITS), Some(600));
    }

    #[test]
    fn an_account_under_attack_stays_open_from_its_known_network() {
        assert_eq!(refusal(&view(4, 0, 0, false), &LIMITS), None);
        assert_eq!(refusal(&view(5, 0, 0, false), &LIMITS), Some(600));
        assert_eq!(refusal(&view(500, 0, 0, true), &LIMITS), None);
    }

    #[test]
    fn a_throttled_network_gets_one_try_per_account() {
        // Just below the network limit: as many tries as the account allows.
        assert_eq!(refusal(&view(3, 19, 3, false), &LIMITS), None);
        // At it: a first try still goes through, a second does not.
        assert_eq!(refusal(&view(0, 20, 0, false), &LIMITS), None);
        assert_eq!(refusal(&view(1, 20, 1, false), &LIMITS), Some(600));
        // Failures from elsewhere do not use up this network's one try.
        assert_eq!(refusal(&view(3, 21, 0, false), &LIMITS), None);
        // Known networks are not held back by the network's count.
        assert_eq!(refusal(&view(1, 21, 1, true), &LIMITS), None);
    }

    #[test]
    fn a_spraying_network_is_refused_for_strangers_only() {
        assert_eq!(refusal(&view(0, 99, 0, false), &LIMITS), None);
        assert_eq!(refusal(&view(0, 100, 0, false), &LIMITS), Some(600));
        assert_eq!(refusal(&view(0, 100, 0, true), &LIMITS), None);
    }

    #[test]
    fn counts_end_with_their_window() {
        let now = chrono::DateTime::from_timestamp(1_800_000_000, 0)
            .unwrap()
            .naive_utc();
        let row = ThrottleRow {
            key: "k".into(),
            failures: 3,
            window_started_at: now - TimeDelta::seconds(899),
            blocked_until: None,
        };
        assert_eq!(Count::of(Some(&row), LIMITS.window, now).failures, 3);
        let over = ThrottleRow {
            window_started_at: now - TimeDelta::seconds(900),
            ..row
        };
        assert_eq!(Count::of(Some(&over), LIMITS.window, now).failures, 0);
    }

    #[test]
    fn networks_are_addresses_and_ipv6_slash_64s() {
        assert_eq!(network_of("203.0.113.9"), "203.0.113.9");
        assert_eq!(network_of("::ffff:203.0.113.9"), "203.0.113.9");
        assert_eq!(
            network_of("2001:db8:1:2:aaaa::1"),
            network_of("2001:db8:1:2:bbbb::9")
        );
        assert_ne!(network_of("2001:db8:1:2::1"), network_of("2001:db8:1:3::1"));
    }

    #[tokio::test]
    async fn one_attempt_per_account_at_a_time() {
        let locks = AccountLocks::default();
        let first = locks.turn("a@example.org").await;
        let other = locks.turn("b@example.org").await;
        let waiting = {
            let locks = locks.clone();
            tokio::spawn(async move {
                let _t = locks.turn("a@example.org").await;
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!waiting.is_finished());
        drop(first);
        waiting.await.unwrap();
        drop(other);
        assert!(locks.is_empty());
    }
}
