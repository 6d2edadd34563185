//! [`ResponseFraming`]: finds where each HTTP/1.1 response on a connection ends, so that a
//! response whose body ends only when the server closes the connection can be read whole by awc.
//!
//! Why: actix-http's client decoder reads a body "until the connection closes" only for
//! HTTP/1.0 responses; an HTTP/1.1 response with neither `Content-Length` nor chunked
//! `Transfer-Encoding` — which HTTP/1.1 allows, and Django's development server sends — is read
//! as an empty body (actix/actix-web issue 2287). This watcher sees the response bytes before awc
//! does and marks such a response's status line `HTTP/1.0`: the same length, rewritten in place,
//! and exactly the framing the server used (read to EOF, then close the connection).
//!
//! To know which bytes start a response on a kept-alive connection it follows each response to
//! its end: a `Content-Length` body is counted, a chunked one parsed. The head is held back
//! until it is complete (at most [`MAX_HEAD_BYTES`]). Interim `1xx` heads (but `101`) are
//! dropped: the client sees only the final answer. Anything it cannot follow makes it step
//! aside for the rest of the connection ([`ResponseFraming::feed`] then passes bytes unchanged):
//! at worst awc's own behaviour, never changed bytes. Pure; the connection wrapper is in
//! [`super::connector`].

/// Longest response head held back while it arrives.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// Where the watcher is in the connection's byte stream.
#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    /// No request written since the last response ended: bytes now are not a response.
    Idle,
    /// A request was written; the bytes held are the start of its response head.
    Head,
    /// This many body bytes of a `Content-Length` response remain.
    Counted(u64),
    /// Inside a chunked body.
    Chunked(Chunk),
    /// Passing everything through unchanged until the connection closes: a close-delimited
    /// body, or something the watcher could not follow.
    Through,
}

/// Where a chunked body's parser is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Chunk {
    /// Reading a chunk-size line (the bytes so far, bounded).
    Size(Vec<u8>),
    /// This many data bytes of a chunk remain.
    Data(u64),
    /// The CR LF after a chunk's data (bytes of it still expected).
    DataEnd(u8),
    /// Trailer lines after the last chunk; the current line's bytes so far.
    Trailer(Vec<u8>),
}

/// Follows the responses of one HTTP/1.1 connection (see the module docs).
#[derive(Debug)]
pub struct ResponseFraming {
    state: State,
    /// The response head being collected.
    held: Vec<u8>,
}

impl Default for ResponseFraming {
    fn default() -> Self {
        ResponseFraming::new()
    }
}

impl ResponseFraming {
    pub fn new() -> ResponseFraming {
        ResponseFraming {
            state: State::Idle,
            held: Vec::new(),
        }
    }

    /// A passive watcher: every byte passes unchanged (for connections it must not touch).
    pub fn passthrough() -> ResponseFraming {
        ResponseFraming {
            state: State::Through,
            held: Vec::new(),
        }
    }

    /// The client wrote request bytes: a response is expected.
    pub fn request_written(&mut self) {
        if self.state == State::Idle {
            self.state = State::Head;
        }
    }

    /// Takes bytes read from the server and appends to `out` what may be given to the client
    /// now (a response head is held until complete, then released, rewritten if need be).
    pub fn feed(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        while !input.is_empty() {
            match &mut self.state {
                State::Idle | State::Through => {
                    out.extend_from_slice(input);
                    return;
                }
                State::Head => {
                    let searched_from = self.held.len().saturating_sub(3);
                    self.held.extend_from_slice(input);
                    let Some(end) = find(&self.held[searched_from..], b"\r\n\r\n") else {
                        if self.held.len() > MAX_HEAD_BYTES {
                            self.step_aside(out);
                        }
                        return;
                    };
                    let head_len = searched_from + end + 4;
                    let mut held = std::mem::take(&mut self.held);
                    let rest = held.split_off(head_len);
                    match self.on_head(&mut held) {
                        // An interim answer (100 Continue, 103 Early Hints) is not given to
                        // the client: awc would take it for the final one.
                        Some(()) if self.state == State::Head => {}
                        Some(()) => out.extend_from_slice(&held),
                        None => {
                            self.held = held;
                            self.step_aside(out);
                        }
                    }
                    // The rest is body (or the next response): go round with it.
                    self.feed(&rest, out);
                    return;
                }
                State::Counted(remaining) => {
                    let n = (*remaining).min(input.len() as u64) as usize;
                    out.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    *remaining -= n as u64;
                    if *remaining == 0 {
                        self.state = State::Idle;
                    }
                }
                State::Chunked(chunk) => {
                    let Some(used) = step_chunked(chunk, input) else {
                        self.state = State::Through;
                        continue;
                    };
                    out.extend_from_slice(&input[..used.consumed]);
                    input = &input[used.consumed..];
                    if used.body_done {
                        self.state = State::Idle;
                    }
                }
            }
        }
    }

    /// The server closed the connection: whatever is held is released as it is.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.held);
        self.state = State::Through;
    }

    /// Gives up following this connection: releases what is held, passes everything after.
    fn step_aside(&mut self, out: &mut Vec<u8>) {
        out.append(&mut self.held);
        self.state = State::Through;
    }

    /// Decides the framing of a complete response head (rewriting its version if it is
    /// close-delimited); `None` if the head cannot be parsed.
    fn on_head(&mut self, head: &mut [u8]) -> Option<()> {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(head) {
            Ok(httparse::Status::Complete(_)) => {}
            _ => return None,
        }
        let (version, status) = (response.version?, response.code?);
        let mut content_length = None;
        let mut chunked = false;
        for header in response.headers.iter() {
            if header.name.eq_ignore_ascii_case("content-length") {
                let text = std::str::from_utf8(header.value).ok()?;
                content_length = Some(text.trim().parse::<u64>().ok()?);
            } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
                let text = std::str::from_utf8(header.value).ok()?;
                chunked = text
                    .rsplit(',')
                    .next()
                    .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"));
            }
        }
        self.state = match status {
            101 => State::Through,
            100..=199 => State::Head,
            204 | 304 => State::Idle,
            _ if chunked && version == 1 => State::Chunked(Chunk::Size(Vec::new())),
            _ if content_length == Some(0) => State::Idle,
            _ => match content_length {
                Some(n) => State::Counted(n),
                None => {
                    if version == 1 && head.starts_with(b"HTTP/1.1") {
                        head[7] = b'0';
                    }
                    State::Through
                }
            },
        };
        Some(())
    }
}

/// How far one call of [`step_chunked`] went.
struct ChunkedStep {
    /// Input bytes used.
    consumed: usize,
    /// The body (with its trailers) ended.
    body_done: bool,
}

/// Longest chunk-size or trailer line followed.
const MAX_LINE_BYTES: usize = 4096;

/// Adds `rest` up to its first LF to `line`: `Some(Some(bytes used))` once the line is whole
/// (without its LF), `Some(None)` when all of `rest` was taken and the line goes on, `None`
/// when the line is longer than [`MAX_LINE_BYTES`].
fn take_line(line: &mut Vec<u8>, rest: &[u8]) -> Option<Option<usize>> {
    let lf = rest.iter().position(|&b| b == b'\n');
    line.extend_from_slice(&rest[..lf.unwrap_or(rest.len())]);
    if line.len() > MAX_LINE_BYTES {
        return None;
    }
    Some(lf.map(|i| i + 1))
}

/// Advances a chunked body's parser over `input`; `None` if the body is malformed.
fn step_chunked(chunk: &mut Chunk, input: &[u8]) -> Option<ChunkedStep> {
    let mut consumed = 0;
    while consumed < input.len() {
        let rest = &input[consumed..];
        match chunk {
            Chunk::Size(line) => {
                let Some(used) = take_line(line, rest)? else {
                    consumed = input.len();
                    break;
                };
                consumed += used;
                let text = std::str::from_utf8(line).ok()?;
                let size_text = text.trim_end_matches('\r').split(';').next()?.trim();
                let size = u64::from_str_radix(size_text, 16).ok()?;
                *chunk = if size == 0 {
                    Chunk::Trailer(Vec::new())
                } else {
                    Chunk::Data(size)
                };
            }
            Chunk::Data(remaining) => {
                let n = (*remaining).min(rest.len() as u64) as usize;
                consumed += n;
                *remaining -= n as u64;
                if *remaining == 0 {
                    *chunk = Chunk::DataEnd(2);
                }
            }
            Chunk::DataEnd(left) => {
                let expected: &[u8] = if *left == 2 { b"\r\n" } else { b"\n" };
                if rest[0] != expected[0] {
                    return None;
                }
                consumed += 1;
                *left -= 1;
                if *left == 0 {
                    *chunk = Chunk::Size(Vec::new());
                }
            }
            Chunk::Trailer(line) => {
                let Some(used) = take_line(line, rest)? else {
                    consumed = input.len();
                    break;
                };
                consumed += used;
                if line.is_empty() || line.as_slice() == b"\r" {
                    return Some(ChunkedStep {
                        consumed,
                        body_done: true,
                    });
                }
                line.clear();
            }
        }
    }
    Some(ChunkedStep {
        consumed,
        body_done: false,
    })
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Feeds one request's response in `splits`-sized reads; returns what the client gets.
    fn through(framing: &mut ResponseFraming, bytes: &[u8], splits: &[usize]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut rest = bytes;
        for &n in splits.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (piece, tail) = rest.split_at(n.clamp(1, rest.len()));
            framing.feed(piece, &mut out);
            rest = tail;
        }
        out
    }

    const CLOSE_DELIMITED: &[u8] =
        b"HTTP/1.1 201 Created\r\nConnection: close\r\nContent-Type: application/json\r\n\r\n{\"id\": 7}";

    #[test]
    fn a_close_delimited_response_is_marked_http_1_0_and_otherwise_unchanged() {
        let mut f = ResponseFraming::new();
        f.request_written();
        let out = through(&mut f, CLOSE_DELIMITED, &[5, 3, 40]);
        let mut expected = CLOSE_DELIMITED.to_vec();
        expected[7] = b'0';
        assert_eq!(out, expected);
    }

    #[test]
    fn counted_and_chunked_responses_are_unchanged_and_the_next_one_is_found() {
        let counted: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        let chunked: &[u8] = b"HTTP/1.1 201 Created\r\ntransfer-encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nTrailer: 1\r\n\r\n";
        let mut f = ResponseFraming::new();
        for response in [counted, chunked, counted] {
            f.request_written();
            assert_eq!(through(&mut f, response, &[1]), response);
        }
        f.request_written();
        let mut expected = CLOSE_DELIMITED.to_vec();
        expected[7] = b'0';
        assert_eq!(through(&mut f, CLOSE_DELIMITED, &[64]), expected);
    }

    #[test]
    fn bodiless_statuses_and_interim_responses_end_where_they_should() {
        let interim_then_final: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
        for split in [7, 30, 60] {
            let mut f = ResponseFraming::new();
            f.request_written();
            assert_eq!(
                through(&mut f, interim_then_final, &[split]),
                b"HTTP/1.1 204 No Content\r\n\r\n"
            );
            assert_eq!(f.state, State::Idle);
        }
    }

    #[test]
    fn bytes_when_no_request_is_outstanding_pass_untouched() {
        let mut f = ResponseFraming::new();
        let mut out = Vec::new();
        f.feed(b"HTTP/1.1 408 Request Timeout\r\n\r\n", &mut out);
        assert_eq!(out, b"HTTP/1.1 408 Request Timeout\r\n\r\n");
    }

    #[test]
    fn garbage_makes_it_step_aside_without_changing_a_byte() {
        let mut f = ResponseFraming::new();
        f.request_written();
        let garbage: &[u8] = b"NOT HTTP AT ALL\r\n\r\nmore";
        assert_eq!(through(&mut f, garbage, &[3]), garbage);
        let mut f = ResponseFraming::new();
        f.request_written();
        let bad_chunk: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nrest";
        assert_eq!(through(&mut f, bad_chunk, &[100]), bad_chunk);
    }

    #[test]
    fn a_head_cut_by_the_close_is_released_as_it_is() {
        let mut f = ResponseFraming::new();
        f.request_written();
        let mut out = Vec::new();
        f.feed(b"HTTP/1.1 200 O", &mut out);
        assert!(out.is_empty(), "held until complete");
        f.finish(&mut out);
        assert_eq!(out, b"HTTP/1.1 200 O");
    }

    proptest! {
        /// Whatever the read splits, a sequence of responses comes out byte for byte (but for
        /// the version of close-delimited ones), and each counted or chunked response is found.
        #[test]
        fn any_split_of_counted_and_chunked_responses_passes_unchanged(
            bodies in proptest::collection::vec(("[a-z0-9]{0,40}", any::<bool>()), 1..6),
            splits in proptest::collection::vec(1usize..30, 1..20),
        ) {
            let mut f = ResponseFraming::new();
            for (body, chunked) in &bodies {
                let response = if *chunked {
                    let mut r = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
                    for piece in body.as_bytes().chunks(7) {
                        r.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
                        r.extend_from_slice(piece);
                        r.extend_from_slice(b"\r\n");
                    }
                    r.extend_from_slice(b"0\r\n\r\n");
                    r
                } else {
                    format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
                };
                f.request_written();
                prop_assert_eq!(through(&mut f, &response, &splits), response);
                prop_assert_eq!(&f.state, &State::Idle);
            }
        }
    }
}
