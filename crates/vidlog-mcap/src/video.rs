//! `foxglove.CompressedVideo` messages on the protobuf wire, and the time conversions between
//! nanoseconds and `google.protobuf.Timestamp`.
//!
//! Owns the field numbers of the message (timestamp = 1, frame_id = 2, data = 3, format = 4)
//! and of `Timestamp` (seconds = 1, nanos = 2). Knows nothing about MCAP records.

use crate::proto::{ProtoReader, ProtoWriter, WireError, WireProblem};

mod field {
    pub const TIMESTAMP: u32 = 1;
    pub const FRAME_ID: u32 = 2;
    pub const DATA: u32 = 3;
    pub const FORMAT: u32 = 4;
}

mod timestamp_field {
    pub const SECONDS: u32 = 1;
    pub const NANOS: u32 = 2;
}

const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// A decoded `foxglove.CompressedVideo` (or ROS `CompressedImage`) borrowing from the message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CompressedFrame<'a> {
    /// Presentation time in nanoseconds.
    pub pts_ns: i64,
    /// Coordinate frame id (often empty for video).
    pub frame_id: &'a str,
    /// The access unit / temporal unit.
    pub data: &'a [u8],
    /// `h264`, `h265`, `av1`, `vp9` ...
    pub format: &'a str,
}

/// Splits nanoseconds into `Timestamp { seconds, nanos }` with `0 <= nanos < 1e9`.
pub fn split_timestamp(ns: i64) -> (i64, i32) {
    // rem_euclid of a positive divisor is in [0, 1e9), which fits an i32.
    (
        ns.div_euclid(NANOS_PER_SECOND),
        ns.rem_euclid(NANOS_PER_SECOND) as i32,
    )
}

/// Joins `Timestamp { seconds, nanos }` into nanoseconds; `None` when it does not fit an `i64`.
pub fn join_timestamp(seconds: i64, nanos: i64) -> Option<i64> {
    // In i128 the product cannot overflow, and an in-range sum may need a negative product
    // below i64::MIN (e.g. i64::MIN itself).
    let ns = i128::from(seconds) * i128::from(NANOS_PER_SECOND) + i128::from(nanos);
    i64::try_from(ns).ok()
}

/// Encodes the message with `data` written last but one, into `out` (cleared first).
pub fn encode_compressed_video(
    out: &mut ProtoWriter,
    pts_ns: i64,
    frame_id: &str,
    data: &[u8],
    format: &str,
) {
    out.clear();
    let (seconds, nanos) = split_timestamp(pts_ns);
    let mut timestamp = ProtoWriter::new();
    // proto3 leaves zero scalars out.
    if seconds != 0 {
        timestamp.int64(timestamp_field::SECONDS, seconds);
    }
    if nanos != 0 {
        timestamp.int32(timestamp_field::NANOS, nanos);
    }
    out.message(field::TIMESTAMP, &timestamp);
    if !frame_id.is_empty() {
        out.string(field::FRAME_ID, frame_id);
    }
    out.bytes(field::DATA, data);
    out.string(field::FORMAT, format);
}

/// Decodes a `foxglove.CompressedVideo` message. Unknown fields are skipped; a missing field has
/// its proto3 default (zero time, empty strings and data).
pub fn decode_compressed_video(message: &[u8]) -> Result<CompressedFrame<'_>, WireError> {
    let mut frame = CompressedFrame {
        pts_ns: 0,
        frame_id: "",
        data: &[],
        format: "",
    };
    for field in ProtoReader::new(message) {
        let field = field?;
        let at = |problem| WireError { offset: 0, problem };
        match field.number {
            field::TIMESTAMP => frame.pts_ns = decode_timestamp(field.bytes().map_err(at)?)?,
            field::FRAME_ID => frame.frame_id = field.string().map_err(at)?,
            field::DATA => frame.data = field.bytes().map_err(at)?,
            field::FORMAT => frame.format = field.string().map_err(at)?,
            _ => {}
        }
    }
    Ok(frame)
}

fn decode_timestamp(message: &[u8]) -> Result<i64, WireError> {
    let (mut seconds, mut nanos) = (0i64, 0i64);
    for field in ProtoReader::new(message) {
        let field = field?;
        let at = |problem| WireError { offset: 0, problem };
        match field.number {
            // int64 is the varint's bits; int32 is its low 32 bits, sign-extended.
            timestamp_field::SECONDS => seconds = field.varint().map_err(at)? as i64,
            timestamp_field::NANOS => nanos = i64::from(field.varint().map_err(at)? as i32),
            _ => {}
        }
    }
    join_timestamp(seconds, nanos).ok_or(WireError {
        offset: 0,
        problem: WireProblem::TimestampOutOfRange { seconds, nanos },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_split_and_join() {
        for ns in [
            0,
            1,
            999_999_999,
            1_000_000_000,
            -1,
            -1_500_000_000,
            i64::MAX,
            i64::MIN,
        ] {
            let (s, n) = split_timestamp(ns);
            assert!((0..1_000_000_000).contains(&n), "{ns}");
            assert_eq!(join_timestamp(s, i64::from(n)), Some(ns));
        }
        assert_eq!(join_timestamp(i64::MAX, 0), None);
    }

    #[test]
    fn message_round_trips() {
        let mut out = ProtoWriter::new();
        for pts in [0, 33_366_667, -2_000_000_001] {
            encode_compressed_video(&mut out, pts, "cam", &[0, 0, 0, 1, 0x65], "h264");
            let frame = decode_compressed_video(out.as_bytes()).expect("decodes");
            assert_eq!(frame.pts_ns, pts);
            assert_eq!(frame.frame_id, "cam");
            assert_eq!(frame.data, [0, 0, 0, 1, 0x65]);
            assert_eq!(frame.format, "h264");
        }
    }

    #[test]
    fn known_encoding() {
        // timestamp{seconds: 1, nanos: 2}, data: [9], format: "av1".
        let mut out = ProtoWriter::new();
        encode_compressed_video(&mut out, 1_000_000_002, "", &[9], "av1");
        assert_eq!(
            out.as_bytes(),
            [
                0x0a, 4, 0x08, 1, 0x10, 2, 0x1a, 1, 9, 0x22, 3, b'a', b'v', b'1'
            ]
        );
    }
}
