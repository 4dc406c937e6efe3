//! A guard in front of the HTTP server for the one refusal hyper makes on its own: a request
//! line over 65,534 bytes, which hyper answers with a bare 414 before any handler runs. The
//! guard follows each connection's byte stream (request heads, and bodies by their
//! `Content-Length`) and, when a request line grows past [`REQUEST_LINE_BYTES_MAX`], writes
//! the API's JSON 414 itself and closes the connection (after a lingering read of what the
//! client still sends, so a reset cannot destroy the refusal), so every refusal has the documented
//! `{code, message}` shape. A connection that sends a chunked body is no longer followed
//! (its later requests meet hyper's own limit); the API takes only JSON bodies with a length.

use std::{
    future::Future,
    io,
    pin::Pin,
    task::{ready, Context, Poll},
};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The longest request line the guard lets through: well above the API's own 8 KiB limit on
/// targets (answered by a handler) and below hyper's 65,534.
pub const REQUEST_LINE_BYTES_MAX: usize = 32 * 1024;

/// The longest header line the guard reads to find `Content-Length`; a longer one (which
/// hyper refuses anyway) ends the following of the connection.
const HEADER_LINE_BYTES_MAX: usize = 8 * 1024;

/// Where a connection's byte stream is.
#[derive(Debug, PartialEq, Eq)]
enum Position {
    /// In the request line, this many bytes into it.
    RequestLine(usize),
    /// In the header lines: the current line so far, and the body length seen.
    Headers { line: Vec<u8>, length: u64 },
    /// In a body, with this many bytes left.
    Body(u64),
    /// No longer followed (a chunked body, an unreadable head).
    Unfollowed,
}

/// What the scanner found in a chunk of bytes.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Pass,
    /// A request line longer than [`REQUEST_LINE_BYTES_MAX`].
    LineTooLong,
}

/// Follows HTTP/1.1 requests byte by byte, as much as the guard needs.
#[derive(Debug)]
struct Scanner {
    at: Position,
}

impl Scanner {
    fn new() -> Scanner {
        Scanner {
            at: Position::RequestLine(0),
        }
    }

    /// Whether a request has begun and not ended (or the stream is no longer followed, so
    /// whether it has ended is not known).
    fn mid_request(&self) -> bool {
        !matches!(self.at, Position::RequestLine(0))
    }

    fn scan(&mut self, mut bytes: &[u8]) -> Verdict {
        while !bytes.is_empty() {
            match &mut self.at {
                Position::Unfollowed => return Verdict::Pass,
                Position::Body(left) => {
                    let n = usize::try_from(*left)
                        .unwrap_or(usize::MAX)
                        .min(bytes.len());
                    *left -= n as u64;
                    bytes = &bytes[n..];
                    if *left == 0 {
                        self.at = Position::RequestLine(0);
                    }
                }
                Position::RequestLine(len) => {
                    let end = bytes.iter().position(|&b| b == b'\n');
                    let taken = end.map_or(bytes.len(), |i| i + 1);
                    *len += taken;
                    if *len > REQUEST_LINE_BYTES_MAX {
                        return Verdict::LineTooLong;
                    }
                    bytes = &bytes[taken..];
                    if end.is_some() {
                        // Empty lines before a request line are allowed and skipped.
                        self.at = if *len <= 2 {
                            Position::RequestLine(0)
                        } else {
                            Position::Headers {
                                line: Vec::new(),
                                length: 0,
                            }
                        };
                    }
                }
                Position::Headers { line, length } => {
                    let end = bytes.iter().position(|&b| b == b'\n');
                    let taken = end.map_or(bytes.len(), |i| i + 1);
                    line.extend_from_slice(&bytes[..taken]);
                    bytes = &bytes[taken..];
                    if line.len() > HEADER_LINE_BYTES_MAX {
                        self.at = Position::Unfollowed;
                        continue;
                    }
                    if end.is_none() {
                        continue;
                    }
                    let text = String::from_utf8_lossy(line).trim().to_ascii_lowercase();
                    line.clear();
                    if text.is_empty() {
                        let body = *length;
                        self.at = if body > 0 {
                            Position::Body(body)
                        } else {
                            Position::RequestLine(0)
                        };
                    } else if let Some(v) = text.strip_prefix("content-length:") {
                        match v.trim().parse::<u64>() {
                            Ok(n) => *length = n,
                            Err(_) => self.at = Position::Unfollowed,
                        }
                    } else if text.starts_with("transfer-encoding:") {
                        self.at = Position::Unfollowed;
                    }
                }
            }
        }
        Verdict::Pass
    }
}

/// The JSON 414 the guard writes.
fn refusal() -> Vec<u8> {
    let body = serde_json::json!({
        "code": "uri_too_long",
        "message": format!(
            "the request line is longer than {REQUEST_LINE_BYTES_MAX} bytes; request targets of at most {} bytes are read",
            super::URI_BYTES_MAX
        ),
    })
    .to_string();
    format!(
        "HTTP/1.1 414 URI Too Long\r\ncontent-type: application/json\r\ncache-control: no-store\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// After the refusal, how long and how many bytes the guard keeps reading (and dropping)
/// what the client still sends: closing a socket with unread input makes the kernel reset
/// the connection, and a reset can destroy the refusal before the client reads it (the
/// "lingering close" of HTTP servers).
const LINGER: std::time::Duration = std::time::Duration::from_secs(2);
const LINGER_BYTES_MAX: usize = 1024 * 1024;

/// The refusal being written, then the input drained until the client closes.
#[derive(Debug)]
enum Refusing {
    Writing {
        response: Vec<u8>,
        written: usize,
    },
    Draining {
        left: usize,
        until: Pin<Box<tokio::time::Sleep>>,
    },
}

/// How long a client has to send a whole request (its line, its headers and its body,
/// at most the API's body limit) from its first byte: a client that sends slowly (a byte
/// now and then) cannot hold one of the API's places for longer. A connection that is no
/// longer followed (a chunked body) is closed this long after that request began.
pub const REQUEST_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The most connections the API holds open at once; more wait in the kernel's queue until
/// one closes, so that the API's connections never take the file descriptors the store
/// and the peer-to-peer network need.
pub const CONNECTIONS_MAX: usize = 2048;

/// A connection with the guard in front of its reads.
#[derive(Debug)]
pub struct Guarded<T> {
    inner: T,
    scanner: Scanner,
    refusing: Option<Refusing>,
    /// How long a request may take to arrive ([`REQUEST_READ_TIMEOUT`]).
    read_timeout: std::time::Duration,
    /// When the request under way must have arrived whole.
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    /// The connection's place among [`CONNECTIONS_MAX`], given back when it closes.
    _place: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl<T> Guarded<T> {
    pub fn new(inner: T) -> Guarded<T> {
        Guarded {
            inner,
            scanner: Scanner::new(),
            refusing: None,
            read_timeout: REQUEST_READ_TIMEOUT,
            deadline: None,
            _place: None,
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for Guarded<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            match &mut this.refusing {
                // Write the refusal, then end the stream: hyper sees the connection close
                // before the request line ends, and answers nothing itself.
                Some(Refusing::Writing { response, written }) => {
                    while *written < response.len() {
                        let n = ready!(
                            Pin::new(&mut this.inner).poll_write(cx, &response[*written..])
                        )?;
                        if n == 0 {
                            return Poll::Ready(Ok(()));
                        }
                        *written += n;
                    }
                    ready!(Pin::new(&mut this.inner).poll_shutdown(cx))?;
                    this.refusing = Some(Refusing::Draining {
                        left: LINGER_BYTES_MAX,
                        until: Box::pin(tokio::time::sleep(LINGER)),
                    });
                }
                Some(Refusing::Draining { left, until }) => {
                    if until.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Ok(()));
                    }
                    let mut scratch = [0u8; 4096];
                    let mut sink = ReadBuf::new(&mut scratch);
                    ready!(Pin::new(&mut this.inner).poll_read(cx, &mut sink))?;
                    let n = sink.filled().len();
                    if n == 0 || n >= *left {
                        return Poll::Ready(Ok(()));
                    }
                    *left -= n;
                }
                None => {
                    if let Some(deadline) = &mut this.deadline {
                        if deadline.as_mut().poll(cx).is_ready() {
                            return Poll::Ready(Err(io::Error::new(
                                io::ErrorKind::TimedOut,
                                "the request did not arrive whole in time",
                            )));
                        }
                    }
                    let before = buf.filled().len();
                    ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
                    let verdict = this.scanner.scan(&buf.filled()[before..]);
                    if !this.scanner.mid_request() {
                        this.deadline = None;
                    } else if this.deadline.is_none() {
                        this.deadline = Some(Box::pin(tokio::time::sleep(this.read_timeout)));
                    }
                    match verdict {
                        Verdict::Pass => return Poll::Ready(Ok(())),
                        Verdict::LineTooLong => {
                            buf.set_filled(before);
                            this.refusing = Some(Refusing::Writing {
                                response: refusal(),
                                written: 0,
                            });
                        }
                    }
                }
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Guarded<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The API's listener: TCP connections, each behind a [`Guarded`], at most
/// [`CONNECTIONS_MAX`] at once.
#[derive(Debug)]
pub struct GuardedListener {
    listener: tokio::net::TcpListener,
    places: std::sync::Arc<tokio::sync::Semaphore>,
}

impl GuardedListener {
    pub fn new(listener: tokio::net::TcpListener) -> GuardedListener {
        GuardedListener {
            listener,
            places: std::sync::Arc::new(tokio::sync::Semaphore::new(CONNECTIONS_MAX)),
        }
    }
}

impl axum::serve::Listener for GuardedListener {
    type Io = Guarded<tokio::net::TcpStream>;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        // A place first: while all are taken, new connections wait in the kernel's queue.
        let place = self.places.clone().acquire_owned().await.ok();
        let (io, addr) = axum::serve::Listener::accept(&mut self.listener).await;
        let mut guarded = Guarded::new(io);
        guarded._place = place;
        (guarded, addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        axum::serve::Listener::local_addr(&self.listener)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_sent_too_slowly_is_cut_off_and_an_idle_connection_is_not() {
        use std::time::Duration;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut client, server) = tokio::io::duplex(4096);
        let mut guarded = Guarded::new(server);
        guarded.read_timeout = Duration::from_millis(300);
        let mut buf = [0u8; 256];
        // Idle between requests (as under an event stream): waits, with no deadline.
        let idle = tokio::time::timeout(Duration::from_secs(1), guarded.read(&mut buf)).await;
        assert!(idle.is_err(), "an idle connection is left open");
        // A whole request in time passes, and the connection is idle again after it.
        let get = b"GET /status HTTP/1.1\r\nhost: x\r\n\r\n";
        client.write_all(get).await.unwrap();
        let n = guarded.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], get);
        let idle = tokio::time::timeout(Duration::from_secs(1), guarded.read(&mut buf)).await;
        assert!(idle.is_err(), "no deadline between requests");
        // A request begun and not finished is cut off at its deadline.
        client
            .write_all(b"POST /txs HTTP/1.1\r\nContent-Length: 10\r\n\r\n{\"tx\"")
            .await
            .unwrap();
        assert!(guarded.read(&mut buf).await.unwrap() > 0);
        let cut = tokio::time::timeout(Duration::from_secs(10), guarded.read(&mut buf))
            .await
            .expect("the deadline ends the read");
        assert_eq!(cut.unwrap_err().kind(), io::ErrorKind::TimedOut);
    }

    fn scan_in_chunks(bytes: &[u8], chunk: usize) -> Vec<Verdict> {
        let mut s = Scanner::new();
        bytes.chunks(chunk).map(|c| s.scan(c)).collect()
    }

    #[test]
    fn requests_with_bodies_and_keep_alive_pass_and_a_long_line_is_caught_anywhere() {
        let body = "{\"tx\":\"00\"}";
        let post = format!(
            "POST /txs HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let get = "GET /status HTTP/1.1\r\nhost: x\r\n\r\n";
        let long = format!(
            "GET /{} HTTP/1.1\r\n\r\n",
            "a".repeat(REQUEST_LINE_BYTES_MAX)
        );
        for chunk in [1, 7, 1024, usize::MAX] {
            // A body full of newlines is skipped by its length, not read as heads.
            let stream = format!("\r\n{post}{get}{post}{get}");
            let verdicts = scan_in_chunks(stream.as_bytes(), chunk.min(stream.len()));
            assert!(
                verdicts.iter().all(|v| *v == Verdict::Pass),
                "chunk {chunk}"
            );
            let stream = format!("{get}{post}{long}");
            let verdicts = scan_in_chunks(stream.as_bytes(), chunk.min(stream.len()));
            assert_eq!(
                verdicts.last(),
                Some(&Verdict::LineTooLong),
                "chunk {chunk}"
            );
        }
        // A body that holds a long line is a body.
        let big = "x".repeat(REQUEST_LINE_BYTES_MAX * 2);
        let stream = format!(
            "POST /txs HTTP/1.1\r\ncontent-length: {}\r\n\r\n{big}{get}",
            big.len()
        );
        assert!(scan_in_chunks(stream.as_bytes(), 4096)
            .iter()
            .all(|v| *v == Verdict::Pass));
    }

    #[test]
    fn a_chunked_body_ends_the_following() {
        let stream = format!(
            "POST /txs HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\nGET /{} HTTP/1.1\r\n",
            "a".repeat(REQUEST_LINE_BYTES_MAX + 1)
        );
        assert!(scan_in_chunks(stream.as_bytes(), 100)
            .iter()
            .all(|v| *v == Verdict::Pass));
    }
}
