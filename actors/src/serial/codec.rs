//! Framing: cuts the byte stream of a serial line into frames at a delimiter.
//!
//! Bytes enter through [`tokio_util::codec::Decoder::decode`] (fed by `FramedRead`) and leave as
//! [`RawFrame`]s without their delimiter. The codec never returns an error: tokio-util's
//! `FramedRead` ends the stream after any decoder error, so a bad frame must become an item.
//! A frame longer than `max_frame_bytes` becomes [`RawFrame::TooLong`] with all its bytes
//! (it is stored as a dead item, lossless); memory stays bounded by [`OVERSIZE_CAP_BYTES`].

use bytes::{Buf, Bytes, BytesMut};
use tokio_util::codec::Decoder;

/// The most bytes of one oversized frame held in memory: past it, what has accumulated is
/// emitted as a [`RawFrame::TooLong`] piece and the rest of the frame (up to its delimiter)
/// follows as further pieces.
pub const OVERSIZE_CAP_BYTES: usize = 1024 * 1024;

/// One frame, without its delimiter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawFrame {
    /// A frame of at most `max_frame_bytes`.
    Frame(Bytes),
    /// A frame longer than `max_frame_bytes` (or one piece of a frame longer than
    /// [`OVERSIZE_CAP_BYTES`]), with every one of its bytes.
    TooLong(Bytes),
}

impl RawFrame {
    /// The frame's bytes, whatever its kind.
    pub fn bytes(&self) -> &Bytes {
        match self {
            RawFrame::Frame(b) | RawFrame::TooLong(b) => b,
        }
    }
}

/// Delimiter framing that survives bad frames (see the module docs).
#[derive(Debug, Clone)]
pub struct FrameCodec {
    /// Bytes that end a frame (at least one).
    delimiter: Vec<u8>,
    /// Longest frame emitted as [`RawFrame::Frame`].
    max_frame_bytes: usize,
    /// Bytes at the front of the buffer already searched for the delimiter, so a frame that
    /// arrives in many reads is scanned once, not once per read.
    searched_bytes: usize,
    /// True after a piece of an oversized frame was emitted and before its delimiter came:
    /// whatever follows up to the delimiter is more of that frame, hence `TooLong` too.
    in_oversize_frame: bool,
    /// With a `"\r"` delimiter a machine that sends `"\r\n"` leaves a `"\n"` at the start of
    /// every next frame; it is line noise, not data, so it is dropped.
    strip_leading_lf: bool,
}

impl FrameCodec {
    /// A codec cutting at `delimiter` (non-empty; an empty one is treated as `"\r"`).
    pub fn new(delimiter: &[u8], max_frame_bytes: usize) -> FrameCodec {
        let delimiter = if delimiter.is_empty() {
            b"\r".to_vec()
        } else {
            delimiter.to_vec()
        };
        FrameCodec {
            strip_leading_lf: delimiter == b"\r",
            delimiter,
            max_frame_bytes,
            searched_bytes: 0,
            in_oversize_frame: false,
        }
    }

    fn find_delimiter(&self, buf: &[u8]) -> Option<usize> {
        // A delimiter may straddle the end of what was searched last time.
        let from = self.searched_bytes.saturating_sub(self.delimiter.len() - 1);
        let hay = buf.get(from..)?;
        let at = match self.delimiter.as_slice() {
            [byte] => hay.iter().position(|b| b == byte),
            delimiter => hay.windows(delimiter.len()).position(|w| w == delimiter),
        };
        at.map(|i| from + i)
    }
}

impl Decoder for FrameCodec {
    type Item = RawFrame;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<RawFrame>, std::io::Error> {
        loop {
            let at_frame_start = self.searched_bytes == 0 && !self.in_oversize_frame;
            if at_frame_start && self.strip_leading_lf && buf.first() == Some(&b'\n') {
                buf.advance(1);
            }
            match self.find_delimiter(buf) {
                Some(end) => {
                    let frame = buf.split_to(end).freeze();
                    buf.advance(self.delimiter.len());
                    self.searched_bytes = 0;
                    let continues_oversize = std::mem::take(&mut self.in_oversize_frame);
                    if frame.is_empty() {
                        // Two delimiters in a row (or an oversized frame whose last piece
                        // ended exactly at the cap): nothing to report.
                        continue;
                    }
                    if continues_oversize || frame.len() > self.max_frame_bytes {
                        return Ok(Some(RawFrame::TooLong(frame)));
                    }
                    return Ok(Some(RawFrame::Frame(frame)));
                }
                None if buf.len() >= OVERSIZE_CAP_BYTES => {
                    // Keep the last delimiter-length-minus-one bytes: they may be the start
                    // of a delimiter split across reads.
                    let piece_len = buf.len() - (self.delimiter.len() - 1);
                    let piece = buf.split_to(piece_len).freeze();
                    self.searched_bytes = buf.len();
                    self.in_oversize_frame = true;
                    return Ok(Some(RawFrame::TooLong(piece)));
                }
                None => {
                    self.searched_bytes = buf.len();
                    return Ok(None);
                }
            }
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<RawFrame>, std::io::Error> {
        if let Some(frame) = self.decode(buf)? {
            return Ok(Some(frame));
        }
        // A frame without its delimiter at EOF is incomplete: dropped, as at any restart.
        buf.clear();
        self.searched_bytes = 0;
        self.in_oversize_frame = false;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `chunks` one read at a time and collects every frame, then EOF.
    fn decode_all(codec: &mut FrameCodec, chunks: &[&[u8]]) -> Vec<RawFrame> {
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            while let Some(frame) = codec.decode(&mut buf).unwrap() {
                out.push(frame);
            }
        }
        while let Some(frame) = codec.decode_eof(&mut buf).unwrap() {
            out.push(frame);
        }
        assert!(buf.is_empty(), "EOF leaves nothing behind");
        out
    }

    fn frame(b: &[u8]) -> RawFrame {
        RawFrame::Frame(Bytes::copy_from_slice(b))
    }

    #[test]
    fn frames_are_cut_at_the_delimiter_without_it() {
        let mut codec = FrameCodec::new(b"\r", 4096);
        let frames = decode_all(&mut codec, &[b"a,1\rb,2\rc,3\r"]);
        assert_eq!(frames, vec![frame(b"a,1"), frame(b"b,2"), frame(b"c,3")]);
    }

    #[test]
    fn a_frame_split_across_many_reads_arrives_whole() {
        let mut codec = FrameCodec::new(b"\r", 4096);
        let line = b"L20261122-0003,17,25.31,1200.2,0\r";
        let chunks: Vec<&[u8]> = line.chunks(1).collect();
        assert_eq!(
            decode_all(&mut codec, &chunks),
            vec![frame(b"L20261122-0003,17,25.31,1200.2,0")]
        );
    }

    #[test]
    fn a_multi_byte_delimiter_split_across_reads_is_found() {
        let mut codec = FrameCodec::new(b"\r\n", 4096);
        let frames = decode_all(&mut codec, &[b"one\r", b"\ntwo", b"\r", b"\nthree\rx\r\n"]);
        assert_eq!(
            frames,
            vec![frame(b"one"), frame(b"two"), frame(b"three\rx")]
        );
    }

    #[test]
    fn empty_frames_are_skipped() {
        let mut codec = FrameCodec::new(b"\r", 4096);
        assert_eq!(
            decode_all(&mut codec, &[b"\r\ra\r\r\rb\r"]),
            vec![frame(b"a"), frame(b"b")]
        );
    }

    #[test]
    fn a_leading_lf_is_dropped_when_the_delimiter_is_cr() {
        let mut codec = FrameCodec::new(b"\r", 4096);
        let frames = decode_all(&mut codec, &[b"a\r\nb\r", b"\n", b"c\r\n"]);
        assert_eq!(frames, vec![frame(b"a"), frame(b"b"), frame(b"c")]);
    }

    #[test]
    fn a_leading_lf_is_kept_with_other_delimiters() {
        let mut codec = FrameCodec::new(b";", 4096);
        assert_eq!(
            decode_all(&mut codec, &[b"a;\nb;"]),
            vec![frame(b"a"), frame(b"\nb")]
        );
    }

    #[test]
    fn a_partial_frame_at_eof_is_dropped() {
        let mut codec = FrameCodec::new(b"\r", 4096);
        assert_eq!(decode_all(&mut codec, &[b"a\rpartial"]), vec![frame(b"a")]);
        // The codec starts clean afterwards.
        assert_eq!(decode_all(&mut codec, &[b"b\r"]), vec![frame(b"b")]);
    }

    #[test]
    fn a_frame_over_max_frame_bytes_is_too_long_with_all_its_bytes() {
        let mut codec = FrameCodec::new(b"\r", 8);
        let frames = decode_all(&mut codec, &[b"12345678\r123456789\rok\r"]);
        assert_eq!(
            frames,
            vec![
                frame(b"12345678"),
                RawFrame::TooLong(Bytes::from_static(b"123456789")),
                frame(b"ok"),
            ]
        );
    }

    #[test]
    fn a_70_kb_line_in_small_reads_is_one_too_long_frame_between_good_ones() {
        let mut codec = FrameCodec::new(b"\r", 4096);
        let long: Vec<u8> = (0..70_001u32).map(|i| b'a' + (i % 26) as u8).collect();
        let mut stream = b"first\r".to_vec();
        stream.extend_from_slice(&long);
        stream.extend_from_slice(b"\rlast\r");
        let chunks: Vec<&[u8]> = stream.chunks(4095).collect();
        let frames = decode_all(&mut codec, &chunks);
        assert_eq!(
            frames,
            vec![
                frame(b"first"),
                RawFrame::TooLong(Bytes::from(long)),
                frame(b"last")
            ]
        );
    }

    #[test]
    fn a_frame_past_the_cap_comes_out_in_too_long_pieces_that_add_up() {
        let mut codec = FrameCodec::new(b"\r\n", 16);
        let total = OVERSIZE_CAP_BYTES * 2 + 1000;
        let long: Vec<u8> = (0..total).map(|i| b'a' + (i % 26) as u8).collect();
        let mut stream = long.clone();
        stream.extend_from_slice(b"\r\nnext\r\n");
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for chunk in stream.chunks(64 * 1024) {
            buf.extend_from_slice(chunk);
            while let Some(f) = codec.decode(&mut buf).unwrap() {
                frames.push(f);
            }
            assert!(
                buf.len() < OVERSIZE_CAP_BYTES + 64 * 1024,
                "memory stays bounded"
            );
        }
        let (last, pieces) = frames.split_last().unwrap();
        assert_eq!(last, &frame(b"next"));
        assert!(pieces.len() >= 3, "{} pieces", pieces.len());
        let mut joined = Vec::new();
        for piece in pieces {
            match piece {
                RawFrame::TooLong(b) => joined.extend_from_slice(b),
                other => panic!("expected TooLong, got {other:?}"),
            }
        }
        assert_eq!(joined, long);
    }

    #[test]
    fn the_short_tail_of_a_capped_frame_is_still_too_long() {
        let mut codec = FrameCodec::new(b"\r", 4096);
        let head = vec![b'x'; OVERSIZE_CAP_BYTES + 5];
        let frames = decode_all(&mut codec, &[&head, b"xyz\rok\r"]);
        assert_eq!(
            frames,
            vec![
                RawFrame::TooLong(Bytes::from(head)),
                RawFrame::TooLong(Bytes::from_static(b"xyz")),
                frame(b"ok"),
            ]
        );
    }

    #[test]
    fn invalid_utf8_is_just_bytes_to_the_codec() {
        let mut codec = FrameCodec::new(b"\r", 4096);
        assert_eq!(
            decode_all(&mut codec, &[b"\xff\xfe\r"]),
            vec![frame(b"\xff\xfe")]
        );
    }
}
