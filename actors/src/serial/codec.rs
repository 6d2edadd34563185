//! Delimiter framing that survives bad frames: a frame longer than `max_frame_bytes` becomes a
//! [`RawFrame::TooLong`] item carrying its bytes, never a decoder error (tokio-util's
//! `FramedRead` ends the stream on the first error, which would drop the link).

use bytes::{Bytes, BytesMut};
use tokio_util::codec::Decoder;

/// Most bytes of one oversized frame held in memory; past it the frame is emitted in pieces.
pub const OVERSIZE_CAP_BYTES: usize = 1024 * 1024;

/// One delimited frame, without its delimiter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawFrame {
    /// Within `max_frame_bytes`.
    Frame(Bytes),
    /// Longer than `max_frame_bytes` (all its bytes, or a 1 MiB piece of a longer run).
    TooLong(Bytes),
}

/// Splits bytes on a delimiter (one or more bytes).
pub struct FrameCodec {
    /// The frame terminator.
    delimiter: Vec<u8>,
    /// Longest frame that is a [`RawFrame::Frame`].
    max_frame_bytes: usize,
    /// Where the delimiter search resumes (bytes before it are known not to start one).
    searched: usize,
    /// Drop a `\n` at the start of a frame (CR LF senders with a `\r` delimiter).
    skip_leading_lf: bool,
}

impl FrameCodec {
    pub fn new(delimiter: &[u8], max_frame_bytes: usize) -> FrameCodec {
        assert!(
            !delimiter.is_empty(),
            "the config validation refuses an empty delimiter"
        );
        FrameCodec {
            delimiter: delimiter.to_vec(),
            max_frame_bytes,
            searched: 0,
            skip_leading_lf: delimiter == b"\r",
        }
    }

    fn classify(&self, frame: Bytes) -> RawFrame {
        if frame.len() > self.max_frame_bytes {
            RawFrame::TooLong(frame)
        } else {
            RawFrame::Frame(frame)
        }
    }
}

impl Decoder for FrameCodec {
    type Item = RawFrame;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<RawFrame>, std::io::Error> {
        loop {
            if self.skip_leading_lf && buf.first() == Some(&b'\n') {
                let _ = buf.split_to(1);
                self.searched = 0;
            }
            let start = self.searched.saturating_sub(self.delimiter.len() - 1);
            let found = buf[start..]
                .windows(self.delimiter.len())
                .position(|w| w == self.delimiter.as_slice())
                .map(|p| p + start);
            match found {
                Some(end) => {
                    let frame = buf.split_to(end).freeze();
                    let _ = buf.split_to(self.delimiter.len());
                    self.searched = 0;
                    if frame.is_empty() {
                        continue; // two delimiters in a row: nothing to report
                    }
                    return Ok(Some(self.classify(frame)));
                }
                None if buf.len() >= OVERSIZE_CAP_BYTES => {
                    // Keep a possible partial delimiter at the end for the next read.
                    let keep = self.delimiter.len() - 1;
                    let piece = buf.split_to(buf.len() - keep).freeze();
                    self.searched = 0;
                    return Ok(Some(RawFrame::TooLong(piece)));
                }
                None => {
                    self.searched = buf.len();
                    return Ok(None);
                }
            }
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<RawFrame>, std::io::Error> {
        match self.decode(buf)? {
            Some(frame) => Ok(Some(frame)),
            None => {
                // A partial frame at the end of a connection is dropped (SPEC section 5).
                buf.clear();
                self.searched = 0;
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(codec: &mut FrameCodec, chunks: &[&[u8]]) -> Vec<RawFrame> {
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            while let Some(f) = codec.decode(&mut buf).unwrap() {
                out.push(f);
            }
        }
        out
    }

    fn frame(s: &[u8]) -> RawFrame {
        RawFrame::Frame(Bytes::copy_from_slice(s))
    }

    #[test]
    fn splits_on_cr_and_skips_empty_frames_and_crlf_line_feeds() {
        let mut c = FrameCodec::new(b"\r", 100);
        assert_eq!(
            frames(&mut c, &[b"a,1\r\r\nb,2\r\nc"]),
            vec![frame(b"a,1"), frame(b"b,2")]
        );
    }

    #[test]
    fn a_frame_split_across_many_reads_is_whole() {
        let mut c = FrameCodec::new(b"\r\n", 100);
        let chunks: Vec<&[u8]> = vec![b"ab", b"c,", b"1\r", b"\nd", b"\r", b"\n"];
        assert_eq!(frames(&mut c, &chunks), vec![frame(b"abc,1"), frame(b"d")]);
    }

    #[test]
    fn a_70_kb_line_is_one_too_long_item_with_all_its_bytes() {
        let mut c = FrameCodec::new(b"\r", 4096);
        let long = vec![b'x'; 70_000];
        let mut chunks: Vec<&[u8]> = vec![b"ok,1\r"];
        chunks.extend(long.chunks(4000));
        chunks.push(b"\rok,2\r");
        let out = frames(&mut c, &chunks);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0], frame(b"ok,1"));
        assert_eq!(out[1], RawFrame::TooLong(Bytes::from(long)));
        assert_eq!(out[2], frame(b"ok,2"));
    }

    #[test]
    fn a_run_beyond_the_cap_comes_out_in_pieces_and_memory_stays_bounded() {
        let mut c = FrameCodec::new(b"\r", 10);
        let big = vec![b'y'; OVERSIZE_CAP_BYTES + 10];
        let out = frames(&mut c, &[&big, b"\rz\r"]);
        let total: usize = out
            .iter()
            .map(|f| match f {
                RawFrame::TooLong(b) => b.len(),
                RawFrame::Frame(_) => 0,
            })
            .sum();
        assert_eq!(total, big.len());
        assert_eq!(out.last(), Some(&frame(b"z")));
    }

    #[test]
    fn partial_frame_at_eof_is_dropped() {
        let mut c = FrameCodec::new(b"\r", 100);
        let mut buf = BytesMut::from(&b"a\rpartial"[..]);
        assert_eq!(c.decode_eof(&mut buf).unwrap(), Some(frame(b"a")));
        assert_eq!(c.decode_eof(&mut buf).unwrap(), None);
        assert!(buf.is_empty());
    }
}
