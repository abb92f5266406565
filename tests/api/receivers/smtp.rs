//! A tiny SMTP server for tests: accepts every message and keeps its DATA.
//!
//! It speaks just enough plain SMTP for `lettre`: greeting, EHLO/HELO, MAIL, RCPT, DATA (with
//! dot-unstuffing), RSET, NOOP and QUIT. No TLS, no AUTH, no extensions.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Largest message accepted, to keep a misbehaving client from exhausting memory.
const MAX_MESSAGE: usize = 4 * 1024 * 1024;

/// A local SMTP server on `127.0.0.1` that records the content of every message it accepts.
///
/// The server stops when the sink is dropped.
#[derive(Debug)]
pub struct SmtpSink {
    /// Address the sink listens on.
    pub addr: SocketAddr,
    messages: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in one connection task must not make the captured messages unreadable.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Starts an [`SmtpSink`]; panics if it cannot bind.
#[allow(clippy::expect_used)] // test helper: failing to bind should fail the test loudly
pub async fn start() -> SmtpSink {
    SmtpSink::try_start().await.expect("bind SMTP sink")
}

impl SmtpSink {
    /// Starts a sink on an ephemeral port.
    pub async fn try_start() -> io::Result<SmtpSink> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let messages = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn(accept_loop(listener, messages.clone()));
        Ok(SmtpSink {
            addr,
            messages,
            task,
        })
    }

    /// Plain-SMTP URL for `aftercare::delivery::email::Mailer::new`.
    pub fn smtp_url(&self) -> String {
        format!("smtp://{}", self.addr)
    }

    /// Messages received so far: headers and body as sent, CRLF line endings, dot-unstuffed.
    pub fn messages(&self) -> Vec<String> {
        lock(&self.messages).clone()
    }

    /// Waits until at least `count` messages have arrived or `timeout` elapses, then returns
    /// what has been received (useful when a background worker does the sending).
    pub async fn wait_for_messages(&self, count: usize, timeout: Duration) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let got = self.messages();
            if got.len() >= count || tokio::time::Instant::now() >= deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, messages: Arc<Mutex<Vec<String>>>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let messages = messages.clone();
        tokio::spawn(async move {
            // Errors only mean the client hung up; nothing to record.
            let _ = serve(stream, &messages).await;
        });
    }
}

async fn serve(stream: TcpStream, messages: &Mutex<Vec<String>>) -> io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    write.write_all(b"220 aftercare-test ESMTP\r\n").await?;
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let command = String::from_utf8_lossy(&line).to_ascii_uppercase();
        let verb = command.split_whitespace().next().unwrap_or_default();
        let reply: &[u8] = match verb {
            "EHLO" | "HELO" => b"250 aftercare-test\r\n",
            "MAIL" | "RCPT" | "RSET" | "NOOP" => b"250 OK\r\n",
            "DATA" => {
                write
                    .write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")
                    .await?;
                let message = read_data(&mut reader).await?;
                lock(messages).push(message);
                b"250 OK: queued\r\n"
            }
            "QUIT" => {
                write.write_all(b"221 Bye\r\n").await?;
                return write.shutdown().await;
            }
            _ => b"502 Command not implemented\r\n",
        };
        write.write_all(reply).await?;
    }
}

async fn read_data<R: tokio::io::AsyncBufRead + Unpin>(reader: &mut R) -> io::Result<String> {
    let mut data = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line).await? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if line == b".\r\n" || line == b".\n" {
            return Ok(String::from_utf8_lossy(&data).into_owned());
        }
        // RFC 5321 §4.5.2: a leading dot was doubled by the client.
        let content = line.strip_prefix(b".").unwrap_or(&line);
        data.extend_from_slice(content);
        if data.len() > MAX_MESSAGE {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "message too large",
            ));
        }
    }
}
