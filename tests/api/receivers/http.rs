//! A tiny HTTP receiver for tests: records requests and answers with scripted statuses.
//!
//! It speaks just enough HTTP/1.1 for webhook deliveries: one request per connection, bodies
//! framed by `content-length` (chunked bodies are not supported), and `connection: close` on
//! every answer.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Largest request head accepted, to keep a misbehaving client from exhausting memory.
const MAX_HEAD: usize = 64 * 1024;
/// Largest request body accepted.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// One request as received by [`HttpSink`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    /// Request method, e.g. `POST`.
    pub method: String,
    /// Request target as sent, e.g. `/hook?x=1`.
    pub path: String,
    /// Headers in order of arrival, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Raw request body.
    pub body: Vec<u8>,
}

impl RecordedRequest {
    /// Value of the first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug)]
struct Script {
    statuses: VecDeque<u16>,
    fallback: u16,
}

/// A local HTTP server on `127.0.0.1` that records every request it receives.
///
/// Answers follow the scripted statuses in order, then the fallback status (200 unless changed).
/// `3xx` answers carry a `location` pointing back at the sink, so a client that wrongly follows
/// redirects shows up as an extra recorded request. The server stops when the sink is dropped.
#[derive(Debug)]
pub struct HttpSink {
    /// Address the sink listens on.
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<RecordedRequest>>>,
    script: Arc<Mutex<Script>>,
    task: JoinHandle<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in one connection task must not make the recorded requests unreadable.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl HttpSink {
    /// Starts a sink that answers 200 to everything; panics if it cannot bind.
    #[allow(clippy::expect_used)] // test helper: failing to bind should fail the test loudly
    pub async fn start() -> HttpSink {
        Self::try_start(Vec::new()).await.expect("bind HTTP sink")
    }

    /// Starts a sink that answers `statuses` in order, then 200; panics if it cannot bind.
    #[allow(clippy::expect_used)] // test helper: failing to bind should fail the test loudly
    pub async fn with_statuses(statuses: impl IntoIterator<Item = u16>) -> HttpSink {
        Self::try_start(statuses).await.expect("bind HTTP sink")
    }

    /// Starts a sink that answers `statuses` in order, then 200.
    pub async fn try_start(statuses: impl IntoIterator<Item = u16>) -> io::Result<HttpSink> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let requests = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(Script {
            statuses: statuses.into_iter().collect(),
            fallback: 200,
        }));
        let task = tokio::spawn(accept_loop(listener, requests.clone(), script.clone()));
        Ok(HttpSink {
            addr,
            requests,
            script,
            task,
        })
    }

    /// URL of `path` on this sink, e.g. `sink.url("/hook")`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Replaces the scripted statuses still to be answered.
    pub fn set_statuses(&self, statuses: impl IntoIterator<Item = u16>) {
        lock(&self.script).statuses = statuses.into_iter().collect();
    }

    /// Sets the status answered once the script is exhausted.
    pub fn set_fallback_status(&self, status: u16) {
        lock(&self.script).fallback = status;
    }

    /// Requests received so far.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.requests).clone()
    }

    /// Waits until at least `count` requests have arrived or `timeout` elapses, then returns
    /// what has been received (useful when a background worker does the sending).
    pub async fn wait_for_requests(&self, count: usize, timeout: Duration) -> Vec<RecordedRequest> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let got = self.requests();
            if got.len() >= count || tokio::time::Instant::now() >= deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for HttpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    requests: Arc<Mutex<Vec<RecordedRequest>>>,
    script: Arc<Mutex<Script>>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let requests = requests.clone();
        let script = script.clone();
        tokio::spawn(async move {
            // Errors only mean a client hung up mid-request; nothing to record.
            let _ = serve_one(stream, &requests, &script).await;
        });
    }
}

async fn serve_one(
    mut stream: TcpStream,
    requests: &Mutex<Vec<RecordedRequest>>,
    script: &Mutex<Script>,
) -> io::Result<()> {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(pos) = find(&buf, b"\r\n\r\n") {
            break pos;
        }
        if buf.len() > MAX_HEAD {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "head too large"));
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split_whitespace();
    let method = request_line.next().unwrap_or_default().to_owned();
    let path = request_line.next().unwrap_or_default().to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    if length > MAX_BODY {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "body too large"));
    }
    let mut body = buf.split_off(head_end + 4);
    while body.len() < length {
        let mut chunk = vec![0u8; length - body.len()];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);

    let status = {
        let mut script = lock(script);
        let fallback = script.fallback;
        script.statuses.pop_front().unwrap_or(fallback)
    };
    // Record before answering so a client that saw the answer always finds its request here.
    lock(requests).push(RecordedRequest {
        method,
        path,
        headers,
        body,
    });

    let location = if (300..400).contains(&status) {
        format!("location: http://{}/redirected\r\n", stream.local_addr()?)
    } else {
        String::new()
    };
    let response = format!(
        "HTTP/1.1 {status} {}\r\n{location}content-length: 0\r\nconnection: close\r\n\r\n",
        reason(status)
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        408 => "Request Timeout",
        410 => "Gone",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        _ => "Status",
    }
}
