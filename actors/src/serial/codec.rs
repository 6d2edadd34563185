//! Framing: cuts the byte stream of a serial line into frames at a delimiter.
//!
//! Bytes enter through [`FrameCodec::decode`] and leave as [`RawFrame`]s without their
//! delimiter. The codec never fails: a bad frame must become an item, so that it can be kept.
//! A frame longer than `max_frame_bytes` becomes [`RawFrame::TooLong`] with all its bytes
//! (it is stored as a dead item, lossless); memory stays bounded by [`OVERSIZE_CAP_BYTES`].
//!
//! *Fragments* (`docs/ARCHITECTURE.md`, fragment rules). A codec is made per connection. Until it is told that the line
//! was quiet when the connection began ([`FrameCodec::line_was_quiet`]), the bytes before the
//! first delimiter may be the tail of a record whose start was sent before the port was open:
//! they come out as [`RawFrame::Fragment`] at [`FragmentAt::LinkStart`]. The bytes still held
//! when the connection ends are taken by [`FrameCodec::finish`] as a fragment at
//! [`FragmentAt::LinkStop`]. A fragment is never parsed.

use bytes::{Buf, Bytes, BytesMut};

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
    /// Bytes that may belong to a record the link did not see whole (see the module docs).
    Fragment(Bytes, FragmentAt),
}

/// Which end of a connection cut a [`RawFrame::Fragment`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FragmentAt {
    /// Bytes before the first delimiter of a connection whose line was not seen quiet.
    LinkStart,
    /// Bytes after the last delimiter when the connection ended.
    LinkStop,
}

impl FragmentAt {
    /// The reason a fragment is kept dead with (the wording of `docs/ARCHITECTURE.md`, fragment rules).
    pub fn reason(self) -> &'static str {
        match self {
            FragmentAt::LinkStart => "partial frame at link start",
            FragmentAt::LinkStop => "partial frame at link stop",
        }
    }
}

impl RawFrame {
    /// The frame's bytes, whatever its kind.
    pub fn bytes(&self) -> &Bytes {
        match self {
            RawFrame::Frame(b) | RawFrame::TooLong(b) | RawFrame::Fragment(b, _) => b,
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
    /// True until the first delimiter of the connection (or proof that the line was quiet):
    /// the frame being read may have started before the port was opened.
    start_unseen: bool,
    /// With a `"\r"` delimiter a machine that sends `"\r\n"` leaves a `"\n"` at the start of
    /// every next frame; it is line noise, not data, so it is dropped.
    strip_leading_lf: bool,
    /// NUL bytes at the start of a frame are what a BREAK or a framing error leaves on the
    /// line: noise, dropped and counted (unless the delimiter holds a NUL).
    strip_leading_nul: bool,
    /// NUL bytes dropped since the last [`FrameCodec::take_noise_bytes`].
    noise_bytes: u64,
}

impl FrameCodec {
    /// A codec for a new connection, cutting at `delimiter` (non-empty; an empty one is
    /// treated as `"\r"`). Its first frame is a fragment unless [`FrameCodec::line_was_quiet`].
    pub fn new(delimiter: &[u8], max_frame_bytes: usize) -> FrameCodec {
        let delimiter = if delimiter.is_empty() {
            b"\r".to_vec()
        } else {
            delimiter.to_vec()
        };
        FrameCodec {
            strip_leading_lf: delimiter == b"\r",
            strip_leading_nul: !delimiter.contains(&0),
            noise_bytes: 0,
            delimiter,
            max_frame_bytes,
            searched_bytes: 0,
            in_oversize_frame: false,
            start_unseen: true,
        }
    }

    /// The line was observed silent, with nothing buffered, before its first byte on this
    /// connection: that byte starts a record.
    pub fn line_was_quiet(&mut self) {
        self.start_unseen = false;
    }

    /// Whether the next frame may still have begun before the connection (no delimiter yet
    /// and no proof of a quiet line).
    pub fn start_unseen(&self) -> bool {
        self.start_unseen
    }

    /// NUL bytes dropped as line noise since the last call.
    pub fn take_noise_bytes(&mut self) -> u64 {
        std::mem::take(&mut self.noise_bytes)
    }

    /// Drops what the line leaves in front of a record: NULs (counted) and, with a `"\r"`
    /// delimiter, the LF of a `"\r\n"` line end. Neither is proof of a record boundary:
    /// an LF or NUL inside a record looks the same.
    fn strip_noise(&mut self, buf: &mut BytesMut) {
        let mut lf_seen = false;
        loop {
            match buf.first() {
                Some(0) if self.strip_leading_nul => {
                    buf.advance(1);
                    self.noise_bytes += 1;
                }
                Some(b'\n') if self.strip_leading_lf && !lf_seen => {
                    buf.advance(1);
                    lf_seen = true;
                }
                _ => return,
            }
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

    /// The next complete frame at the front of `buf` (removed from it with its delimiter), or
    /// `None` until more bytes come.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Option<RawFrame> {
        loop {
            let at_frame_start = self.searched_bytes == 0 && !self.in_oversize_frame;
            if at_frame_start {
                self.strip_noise(buf);
            }
            match self.find_delimiter(buf) {
                Some(end) => {
                    let frame = buf.split_to(end).freeze();
                    buf.advance(self.delimiter.len());
                    self.searched_bytes = 0;
                    let continues_oversize = std::mem::take(&mut self.in_oversize_frame);
                    let start_unseen = std::mem::take(&mut self.start_unseen);
                    if frame.is_empty() {
                        // Two delimiters in a row (or an oversized frame whose last piece
                        // ended exactly at the cap): nothing to report.
                        continue;
                    }
                    if start_unseen {
                        return Some(RawFrame::Fragment(frame, FragmentAt::LinkStart));
                    }
                    if continues_oversize || frame.len() > self.max_frame_bytes {
                        return Some(RawFrame::TooLong(frame));
                    }
                    return Some(RawFrame::Frame(frame));
                }
                None if buf.len() >= OVERSIZE_CAP_BYTES => {
                    // Keep the last delimiter-length-minus-one bytes: they may be the start
                    // of a delimiter split across reads.
                    let piece_len = buf.len() - (self.delimiter.len() - 1);
                    let piece = buf.split_to(piece_len).freeze();
                    self.searched_bytes = buf.len();
                    self.in_oversize_frame = true;
                    if self.start_unseen {
                        // Stays unseen: the rest up to the delimiter is more of the fragment.
                        return Some(RawFrame::Fragment(piece, FragmentAt::LinkStart));
                    }
                    return Some(RawFrame::TooLong(piece));
                }
                None => {
                    self.searched_bytes = buf.len();
                    return None;
                }
            }
        }
    }

    /// The connection ended: the bytes still held in `buf` (taken from it) as a fragment,
    /// if there are any. The codec is done with this connection.
    pub fn finish(&mut self, buf: &mut BytesMut) -> Option<RawFrame> {
        let held = buf.split().freeze();
        self.searched_bytes = 0;
        self.in_oversize_frame = false;
        if held.is_empty() || (self.strip_leading_lf && held.as_ref() == b"\n") {
            return None;
        }
        let at = if std::mem::take(&mut self.start_unseen) {
            FragmentAt::LinkStart
        } else {
            FragmentAt::LinkStop
        };
        Some(RawFrame::Fragment(held, at))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A codec for a connection whose line was quiet when it opened.
    fn quiet_codec(delimiter: &[u8], max_frame_bytes: usize) -> FrameCodec {
        let mut codec = FrameCodec::new(delimiter, max_frame_bytes);
        codec.line_was_quiet();
        codec
    }

    /// Feeds `chunks` one read at a time and collects every frame, then ends the connection.
    fn decode_all(codec: &mut FrameCodec, chunks: &[&[u8]]) -> Vec<RawFrame> {
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        for chunk in chunks {
            buf.extend_from_slice(chunk);
            while let Some(frame) = codec.decode(&mut buf) {
                out.push(frame);
            }
        }
        out.extend(codec.finish(&mut buf));
        assert!(
            buf.is_empty(),
            "the end of a connection leaves nothing behind"
        );
        out
    }

    fn frame(b: &[u8]) -> RawFrame {
        RawFrame::Frame(Bytes::copy_from_slice(b))
    }

    #[test]
    fn frames_are_cut_at_the_delimiter_without_it() {
        let mut codec = quiet_codec(b"\r", 4096);
        let frames = decode_all(&mut codec, &[b"a,1\rb,2\rc,3\r"]);
        assert_eq!(frames, vec![frame(b"a,1"), frame(b"b,2"), frame(b"c,3")]);
    }

    #[test]
    fn a_frame_split_across_many_reads_arrives_whole() {
        let mut codec = quiet_codec(b"\r", 4096);
        let line = b"L20261122-0003,17,25.31,1200.2,0\r";
        let chunks: Vec<&[u8]> = line.chunks(1).collect();
        assert_eq!(
            decode_all(&mut codec, &chunks),
            vec![frame(b"L20261122-0003,17,25.31,1200.2,0")]
        );
    }

    #[test]
    fn a_multi_byte_delimiter_split_across_reads_is_found() {
        let mut codec = quiet_codec(b"\r\n", 4096);
        let frames = decode_all(&mut codec, &[b"one\r", b"\ntwo", b"\r", b"\nthree\rx\r\n"]);
        assert_eq!(
            frames,
            vec![frame(b"one"), frame(b"two"), frame(b"three\rx")]
        );
    }

    #[test]
    fn empty_frames_are_skipped() {
        let mut codec = quiet_codec(b"\r", 4096);
        assert_eq!(
            decode_all(&mut codec, &[b"\r\ra\r\r\rb\r"]),
            vec![frame(b"a"), frame(b"b")]
        );
    }

    #[test]
    fn nuls_in_front_of_a_record_are_counted_noise_and_the_record_survives() {
        let mut codec = quiet_codec(b"\r", 4096);
        let frames = decode_all(
            &mut codec,
            &[b"\0LOT-0001,40,25.1,1200,0\r\n\0\0", b"\0b,2\r", b"c\0,3\r"],
        );
        assert_eq!(
            frames,
            vec![
                frame(b"LOT-0001,40,25.1,1200,0"),
                frame(b"b,2"),
                frame(b"c\0,3")
            ]
        );
        assert_eq!(codec.take_noise_bytes(), 4);
        assert_eq!(codec.take_noise_bytes(), 0);
        // A NUL delimiter is data, not noise.
        let mut nul_delimited = quiet_codec(b"\0", 4096);
        assert_eq!(
            decode_all(&mut nul_delimited, &[b"\0a\0"]),
            vec![frame(b"a")]
        );
        assert_eq!(nul_delimited.take_noise_bytes(), 0);
    }

    #[test]
    fn a_leading_lf_is_dropped_when_the_delimiter_is_cr() {
        let mut codec = quiet_codec(b"\r", 4096);
        let frames = decode_all(&mut codec, &[b"a\r\nb\r", b"\n", b"c\r\n"]);
        assert_eq!(frames, vec![frame(b"a"), frame(b"b"), frame(b"c")]);
    }

    #[test]
    fn a_leading_lf_is_kept_with_other_delimiters() {
        let mut codec = quiet_codec(b";", 4096);
        assert_eq!(
            decode_all(&mut codec, &[b"a;\nb;"]),
            vec![frame(b"a"), frame(b"\nb")]
        );
    }

    #[test]
    fn the_bytes_held_when_a_connection_ends_are_a_stop_fragment() {
        let mut codec = quiet_codec(b"\r", 4096);
        assert_eq!(
            decode_all(&mut codec, &[b"a\rpart", b"ial"]),
            vec![
                frame(b"a"),
                RawFrame::Fragment(Bytes::from_static(b"partial"), FragmentAt::LinkStop)
            ]
        );
    }

    #[test]
    fn the_first_frame_of_a_connection_not_seen_quiet_is_a_start_fragment() {
        let mut codec = FrameCodec::new(b"\r", 4096);
        assert_eq!(
            decode_all(&mut codec, &[b"OT-0001,12", b"00,25.1\rLOT-0002,1,2\r"]),
            vec![
                RawFrame::Fragment(
                    Bytes::from_static(b"OT-0001,1200,25.1"),
                    FragmentAt::LinkStart
                ),
                frame(b"LOT-0002,1,2"),
            ]
        );
    }

    #[test]
    fn a_connection_cut_before_its_first_delimiter_is_one_start_fragment() {
        let mut codec = FrameCodec::new(b"\r", 4096);
        assert_eq!(
            decode_all(&mut codec, &[b"000,178"]),
            vec![RawFrame::Fragment(
                Bytes::from_static(b"000,178"),
                FragmentAt::LinkStart
            )]
        );
    }

    #[test]
    fn a_delimiter_first_shows_where_records_start_and_an_lf_does_not() {
        let mut codec = FrameCodec::new(b"\r", 4096);
        assert_eq!(decode_all(&mut codec, &[b"\ra,1\r"]), vec![frame(b"a,1")]);
        // An LF may be the end of a CR LF, or a byte inside a record: not proof.
        let mut codec = FrameCodec::new(b"\r", 4096);
        assert_eq!(
            decode_all(&mut codec, &[b"\nb,2\r"]),
            vec![RawFrame::Fragment(
                Bytes::from_static(b"b,2"),
                FragmentAt::LinkStart
            )]
        );
        let mut codec = FrameCodec::new(b"\r", 16);
        let mut noise = vec![b'x'; OVERSIZE_CAP_BYTES];
        noise.extend_from_slice(b"\nabc,1\r");
        let frames = decode_all(&mut codec, &[&noise]);
        assert!(
            frames.iter().all(|f| matches!(f, RawFrame::Fragment(..))),
            "a record tail after a fragment piece stays a fragment: {:?}",
            frames.iter().map(|f| f.bytes().len()).collect::<Vec<_>>()
        );
        let mut codec = FrameCodec::new(b"\r\n", 4096);
        assert_eq!(
            decode_all(&mut codec, &[b"\nc,3\r\nd\r\n"]),
            vec![
                RawFrame::Fragment(Bytes::from_static(b"\nc,3"), FragmentAt::LinkStart),
                frame(b"d")
            ]
        );
    }

    #[test]
    fn an_oversized_start_fragment_comes_out_in_fragment_pieces() {
        let mut codec = FrameCodec::new(b"\r", 16);
        let head = vec![b'x'; OVERSIZE_CAP_BYTES + 5];
        let frames = decode_all(&mut codec, &[&head, b"xyz\rok\r"]);
        assert_eq!(
            frames,
            vec![
                RawFrame::Fragment(Bytes::from(head), FragmentAt::LinkStart),
                RawFrame::Fragment(Bytes::from_static(b"xyz"), FragmentAt::LinkStart),
                frame(b"ok"),
            ]
        );
    }

    #[test]
    fn a_frame_over_max_frame_bytes_is_too_long_with_all_its_bytes() {
        let mut codec = quiet_codec(b"\r", 8);
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
        let mut codec = quiet_codec(b"\r", 4096);
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
        let mut codec = quiet_codec(b"\r\n", 16);
        let total = OVERSIZE_CAP_BYTES * 2 + 1000;
        let long: Vec<u8> = (0..total).map(|i| b'a' + (i % 26) as u8).collect();
        let mut stream = long.clone();
        stream.extend_from_slice(b"\r\nnext\r\n");
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        for chunk in stream.chunks(64 * 1024) {
            buf.extend_from_slice(chunk);
            while let Some(f) = codec.decode(&mut buf) {
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
        let mut codec = quiet_codec(b"\r", 4096);
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
        let mut codec = quiet_codec(b"\r", 4096);
        assert_eq!(
            decode_all(&mut codec, &[b"\xff\xfe\r"]),
            vec![frame(b"\xff\xfe")]
        );
    }

    proptest::proptest! {
        /// The promise of the codec: whatever the read splits and wherever a connection
        /// begins and ends in a stream of records, every frame it emits as a record is exactly
        /// one whole record, and nothing is lost: frames, fragments and delimiters add up to
        /// the bytes the connection saw.
        #[test]
        fn frames_are_whole_records_and_nothing_is_lost(
            records in proptest::collection::vec("[A-Z0-9,.-]{0,12}", 1..40),
            cut_from in 0usize..400,
            cut_len in 0usize..400,
            splits in proptest::collection::vec(1usize..17, 1..60),
            quiet in proptest::bool::ANY,
        ) {
            let stream: Vec<u8> = records.iter().flat_map(|r| format!("{r}\r").into_bytes()).collect();
            let from = cut_from.min(stream.len());
            let to = (from + cut_len).min(stream.len());
            let seen = &stream[from..to];
            // "Quiet" is only told when the connection really begins at a record start.
            let begins_at_record = from == 0 || stream[from - 1] == b'\r';
            let mut codec = FrameCodec::new(b"\r", 4096);
            if quiet && begins_at_record {
                codec.line_was_quiet();
            }
            let mut chunks = Vec::new();
            let mut rest = seen;
            for &n in splits.iter().cycle() {
                if rest.is_empty() {
                    break;
                }
                let (chunk, tail) = rest.split_at(n.min(rest.len()));
                chunks.push(chunk);
                rest = tail;
            }
            let frames = decode_all(&mut codec, &chunks);
            let mut rebuilt = Vec::new();
            for f in &frames {
                if let RawFrame::Frame(bytes) = f {
                    let text = std::str::from_utf8(bytes).unwrap();
                    proptest::prop_assert!(records.iter().any(|r| r == text), "{text:?} is no record");
                }
                rebuilt.extend_from_slice(f.bytes());
            }
            let without_delimiters: Vec<u8> = seen.iter().copied().filter(|&b| b != b'\r').collect();
            proptest::prop_assert_eq!(rebuilt, without_delimiters);
        }
    }
}
