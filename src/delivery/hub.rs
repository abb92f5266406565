//! The live-stream hub: one task per process tails the committed alert feed and fans events
//! out to this process's open streams. The feed is a table, so an alert raised by any process
//! on the same database reaches streams held by every process.

use std::collections::HashMap;
use std::time::Duration;

use chrono::TimeDelta;
use tokio::sync::broadcast;

use crate::error::ApiError;
use crate::store::{self, deliveries, Store};

/// How often the feed is read.
pub const POLL: Duration = Duration::from_millis(200);
/// How far back each read looks: longer than any transaction between taking a sequence number
/// and committing, so an event that commits late is still seen (duplicates are dropped by
/// sequence number).
const LOOKBACK: TimeDelta = TimeDelta::seconds(30);

/// One committed alert event.
#[derive(Debug, Clone)]
pub struct FeedEvent {
    /// Feed sequence number.
    pub seq: i64,
    /// The organisation.
    pub organisation_id: String,
    /// The alert.
    pub alert_id: String,
    /// `alert.created`, `alert.updated` or `alert.escalated`.
    pub event_type: String,
}

/// Fans feed events out to subscribers.
#[derive(Clone)]
pub struct Hub {
    tx: broadcast::Sender<FeedEvent>,
    closing: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
}

impl Default for Hub {
    fn default() -> Self {
        Self::new()
    }
}

impl Hub {
    /// A hub with room for bursts.
    pub fn new() -> Self {
        let (tx, _) = broadcast::channel(1024);
        let (closing, _) = tokio::sync::watch::channel(false);
        Self {
            tx,
            closing: std::sync::Arc::new(closing),
        }
    }

    /// Tells this process's live streams to end (the process is shutting down): their
    /// clients reconnect, to another process or to this one restarted, and resume.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Resolves once [`Hub::close`] was called.
    pub async fn closed(&self) {
        let mut rx = self.closing.subscribe();
        // An error means the sender is gone, which cannot happen while `self` lives.
        let _ = rx.wait_for(|closing| *closing).await;
    }

    /// A new subscription.
    pub fn subscribe(&self) -> broadcast::Receiver<FeedEvent> {
        self.tx.subscribe()
    }

    /// Tails the feed until the process stops.
    pub async fn run(self, store: Store) {
        let mut seen: HashMap<i64, chrono::NaiveDateTime> = HashMap::new();
        let mut primed = false;
        loop {
            let since = store::now() - LOOKBACK;
            let rows = store
                .run(move |conn| deliveries::feed_since(conn, since).map_err(ApiError::from))
                .await;
            match rows {
                Ok(rows) => {
                    let now = store::now();
                    for (seq, organisation_id, alert_id, event_type) in rows {
                        if seen.insert(seq, now).is_some() {
                            continue;
                        }
                        // Events from before this process started are history, not news.
                        if primed {
                            let _ = self.tx.send(FeedEvent {
                                seq,
                                organisation_id,
                                alert_id,
                                event_type,
                            });
                        }
                    }
                    primed = true;
                    seen.retain(|_, at| *at > since - LOOKBACK);
                }
                Err(e) => tracing::warn!(error = %e, "reading the alert feed failed; will retry"),
            }
            tokio::time::sleep(POLL).await;
        }
    }
}
