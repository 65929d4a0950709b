//! A streaming Server-Sent Events client over a raw socket, so tests can read
//! with deadlines, stall on purpose, and drop connections at will.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::TestApp;

/// One SSE message (`comment` set for `: …` lines).
#[derive(Debug, Clone, Default)]
pub struct Event {
    pub id: Option<String>,
    pub event: String,
    pub data: String,
    pub comment: Option<String>,
    pub retry: Option<String>,
}

impl Event {
    /// `data` as JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("event data is not JSON ({e}): {}", self.data))
    }
}

/// What reading the next event gave.
#[derive(Debug)]
pub enum Next {
    Event(Event),
    /// The server closed the stream.
    Closed,
    /// Nothing within the deadline.
    Timeout,
}

/// Decodes `Transfer-Encoding: chunked`.
struct Chunked<R> {
    inner: R,
    left: usize,
    done: bool,
}

impl<R: BufRead> Read for Chunked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        if self.left == 0 {
            let mut line = String::new();
            if self.inner.read_line(&mut line)? == 0 {
                self.done = true;
                return Ok(0);
            }
            if line.trim().is_empty() {
                line.clear();
                if self.inner.read_line(&mut line)? == 0 {
                    self.done = true;
                    return Ok(0);
                }
            }
            self.left = usize::from_str_radix(line.trim(), 16)
                .map_err(|e| io::Error::other(format!("chunk size {line:?}: {e}")))?;
            if self.left == 0 {
                self.done = true;
                return Ok(0);
            }
        }
        let want = buf.len().min(self.left);
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n;
        Ok(n)
    }
}

/// An open event stream.
pub struct SseClient {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    socket: TcpStream,
    lines: Option<BufReader<Chunked<BufReader<TcpStream>>>>,
    line: String,
}

impl SseClient {
    /// Opens `path` with the test token and these extra headers.
    pub fn open(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> SseClient {
        let token = app.token.clone().unwrap_or_default();
        let mut request =
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAccept: text/event-stream\r\n", app.port);
        if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("authorization") || k.eq_ignore_ascii_case("cookie")) {
            request.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        for (k, v) in headers {
            request.push_str(&format!("{k}: {v}\r\n"));
        }
        request.push_str("\r\n");
        let mut socket = TcpStream::connect(("127.0.0.1", app.port)).expect("connect");
        socket.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
        socket.write_all(request.as_bytes()).expect("send");
        let mut reader = BufReader::new(socket.try_clone().expect("clone"));
        let mut status_line = String::new();
        reader.read_line(&mut status_line).expect("status line");
        let status = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
        let mut headers = Vec::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).expect("header");
            if line.trim().is_empty() {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
        let chunked = headers.iter().any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
        let lines = chunked.then(|| BufReader::new(Chunked { inner: reader, left: 0, done: false }));
        SseClient { status, headers, socket, lines, line: String::new() }
    }

    /// The next event or comment, waiting at most `timeout`.
    pub fn next(&mut self, timeout: Duration) -> Next {
        let deadline = Instant::now() + timeout;
        let Some(lines) = self.lines.as_mut() else { return Next::Closed };
        let mut event = Event::default();
        let mut any = false;
        loop {
            let left = deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
            let _ = self.socket.set_read_timeout(Some(left));
            match lines.read_line(&mut self.line) {
                Ok(0) => return Next::Closed,
                Ok(_) => {}
                Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
                    return Next::Timeout
                }
                Err(_) => return Next::Closed,
            }
            if !self.line.ends_with('\n') {
                continue;
            }
            let line = std::mem::take(&mut self.line);
            let line = line.trim_end_matches(['\r', '\n']);
            if line.is_empty() {
                if any {
                    return Next::Event(event);
                }
                continue;
            }
            any = true;
            let (field, value) = line.split_once(':').unwrap_or((line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value).to_owned();
            match field {
                "" => event.comment = Some(value),
                "id" => event.id = Some(value),
                "event" => event.event = value,
                "data" => event.data.push_str(&value),
                "retry" => event.retry = Some(value),
                _ => {}
            }
        }
    }

    /// The next data event (comments and retry lines skipped); panics on close or timeout.
    pub fn expect(&mut self, timeout: Duration) -> Event {
        let deadline = Instant::now() + timeout;
        loop {
            match self.next(deadline.saturating_duration_since(Instant::now())) {
                Next::Event(e) if e.comment.is_none() && e.retry.is_none() => return e,
                Next::Event(_) => {}
                other => panic!("expected an event, got {other:?}"),
            }
        }
    }

    /// Data events until one of type `kind` (included); panics on close or timeout.
    pub fn until(&mut self, kind: &str, timeout: Duration) -> Vec<Event> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        loop {
            let e = self.expect(deadline.saturating_duration_since(Instant::now()));
            let done = e.event == kind;
            seen.push(e);
            if done {
                return seen;
            }
        }
    }

    /// Closes the connection.
    pub fn close(self) {
        let _ = self.socket.shutdown(Shutdown::Both);
    }
}

/// The `output` events' bytes, joined.
pub fn output_of(events: &[Event]) -> String {
    events.iter().filter(|e| e.event == "output").map(|e| e.json()["data"].as_str().expect("data").to_owned()).collect()
}

/// Every event until the server closes the stream (comments and `retry` left out).
pub fn rest_until_closed(client: &mut SseClient) -> Vec<Event> {
    let mut events = Vec::new();
    loop {
        match client.next(std::time::Duration::from_secs(30)) {
            Next::Event(e) if e.comment.is_none() && e.retry.is_none() => events.push(e),
            Next::Event(_) => {}
            Next::Closed => return events,
            Next::Timeout => panic!("the stream neither ended nor closed: {events:?}"),
        }
    }
}

/// Reads an instance's stream from byte 0 until at least `bytes` of output came,
/// drops the connection, and resumes with `Last-Event-ID`: the events before the
/// drop, and every event after the resume until the stream closes.
pub fn read_then_resume(app: &TestApp, id: &str, bytes: usize) -> (Vec<Event>, Vec<Event>) {
    let timeout = Duration::from_secs(30);
    let mut first = SseClient::open(app, &format!("/api/instances/{id}/stream?last_event_id=0:0"), &[]);
    let mut got = Vec::new();
    while output_of(&got).len() < bytes {
        got.push(first.expect(timeout));
    }
    let last_id = got.iter().rev().find_map(|e| e.id.clone()).expect("an id");
    first.close();
    let mut second = SseClient::open(app, &format!("/api/instances/{id}/stream"), &[("Last-Event-ID", &last_id)]);
    let rest = rest_until_closed(&mut second);
    (got, rest)
}
