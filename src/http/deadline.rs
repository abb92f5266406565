//! A read deadline on request bodies.
//!
//! actix's `client_request_timeout` bounds only the wait for the request head; a client that
//! sends headers and then one byte of its body every minute (or nothing) would otherwise hold
//! a socket and a descriptor for as long as it likes. This middleware gives every body
//! [`Settings::body_timeout`](crate::config::Settings::body_timeout) from when its request was
//! dispatched; a body still incomplete then fails to read, which the JSON extractors answer
//! with 408 and a closed connection.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::web::{self, Bytes};
use actix_web::HttpMessage;
use futures_util::Stream;

/// Whether a body read failed because its deadline passed.
pub fn is_timeout(e: &PayloadError) -> bool {
    matches!(e, PayloadError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut)
}

/// A body stream that fails once its deadline has passed, even if bytes keep trickling in.
struct Deadline {
    inner: Payload,
    sleep: Pin<Box<tokio::time::Sleep>>,
    expired: bool,
}

impl Stream for Deadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.expired {
            return Poll::Ready(None);
        }
        if self.sleep.as_mut().poll(cx).is_ready() {
            self.expired = true;
            return Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the request body did not arrive in time",
            )))));
        }
        Pin::new(&mut self.inner).poll_next(cx)
    }
}

/// Puts the configured read deadline on the request's body, if it has one.
pub async fn body_deadline(
    mut req: ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let limit = req
        .app_data::<web::Data<crate::state::AppState>>()
        .map_or(Duration::from_secs(10), |s| s.settings.body_timeout);
    let payload = req.take_payload();
    if matches!(payload, Payload::None) {
        req.set_payload(payload);
    } else {
        let timed = Deadline {
            inner: payload,
            sleep: Box::pin(tokio::time::sleep(limit)),
            expired: false,
        };
        req.set_payload(Payload::Stream {
            payload: Box::pin(timed),
        });
    }
    next.call(req).await
}
