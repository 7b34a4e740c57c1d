//! ROS messages that carry compressed video, decoded just far enough to get the time, frame id,
//! format and payload:
//!
//! - ROS 2 (`ros2msg` schema, `cdr` messages): `sensor_msgs/msg/CompressedImage` and
//!   `foxglove_msgs/msg/CompressedVideo`;
//! - ROS 1 (`ros1msg` schema, `ros1` messages): `sensor_msgs/CompressedImage` and
//!   `foxglove_msgs/CompressedVideo`.
//!
//! Owns the field layouts of those four messages and the two serializations (CDR with its
//! alignment rules, ROS 1's packed little-endian). Knows nothing about MCAP records.

use std::fmt;

use crate::video::{CompressedFrame, join_timestamp};

/// A ROS message type this module decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RosVideoMessage {
    /// `sensor_msgs/msg/CompressedImage` in CDR (`header`, `format`, `data`).
    Ros2CompressedImage,
    /// `foxglove_msgs/msg/CompressedVideo` in CDR (`timestamp`, `frame_id`, `data`, `format`).
    Ros2CompressedVideo,
    /// `sensor_msgs/CompressedImage` in ROS 1 serialization.
    Ros1CompressedImage,
    /// `foxglove_msgs/CompressedVideo` in ROS 1 serialization.
    Ros1CompressedVideo,
}

impl RosVideoMessage {
    /// Recognizes a channel from its schema name, schema encoding and message encoding.
    pub fn from_channel(
        schema_name: &str,
        schema_encoding: &str,
        message_encoding: &str,
    ) -> Option<Self> {
        match (schema_name, schema_encoding, message_encoding) {
            ("sensor_msgs/msg/CompressedImage", "ros2msg", "cdr") => {
                Some(Self::Ros2CompressedImage)
            }
            ("foxglove_msgs/msg/CompressedVideo", "ros2msg", "cdr") => {
                Some(Self::Ros2CompressedVideo)
            }
            ("sensor_msgs/CompressedImage", "ros1msg", "ros1") => Some(Self::Ros1CompressedImage),
            ("foxglove_msgs/CompressedVideo", "ros1msg", "ros1") => Some(Self::Ros1CompressedVideo),
            _ => None,
        }
    }

    /// Decodes one message.
    pub fn decode(self, message: &[u8]) -> Result<CompressedFrame<'_>, RosDecodeError> {
        match self {
            Self::Ros2CompressedImage | Self::Ros2CompressedVideo => {
                let mut cdr = CdrReader::new(message)?;
                let seconds = i64::from(cdr.int32()?);
                let nanos = i64::from(cdr.uint32()?);
                let pts_ns = time_ns(seconds, nanos)?;
                let frame_id = cdr.string()?;
                let (data, format) = if self == Self::Ros2CompressedImage {
                    let format = cdr.string()?;
                    (cdr.bytes()?, format)
                } else {
                    let data = cdr.bytes()?;
                    (data, cdr.string()?)
                };
                Ok(CompressedFrame {
                    pts_ns,
                    frame_id,
                    data,
                    format,
                })
            }
            Self::Ros1CompressedImage | Self::Ros1CompressedVideo => {
                let mut ros1 = Ros1Reader {
                    bytes: message,
                    pos: 0,
                };
                if self == Self::Ros1CompressedImage {
                    let _sequence = ros1.uint32()?;
                }
                let seconds = i64::from(ros1.uint32()?);
                let nanos = i64::from(ros1.uint32()?);
                let pts_ns = time_ns(seconds, nanos)?;
                let frame_id = ros1.string()?;
                let (data, format) = if self == Self::Ros1CompressedImage {
                    let format = ros1.string()?;
                    (ros1.bytes()?, format)
                } else {
                    let data = ros1.bytes()?;
                    (data, ros1.string()?)
                };
                Ok(CompressedFrame {
                    pts_ns,
                    frame_id,
                    data,
                    format,
                })
            }
        }
    }
}

impl fmt::Display for RosVideoMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Ros2CompressedImage => "sensor_msgs/msg/CompressedImage (CDR)",
            Self::Ros2CompressedVideo => "foxglove_msgs/msg/CompressedVideo (CDR)",
            Self::Ros1CompressedImage => "sensor_msgs/CompressedImage (ROS 1)",
            Self::Ros1CompressedVideo => "foxglove_msgs/CompressedVideo (ROS 1)",
        })
    }
}

fn time_ns(seconds: i64, nanos: i64) -> Result<i64, RosDecodeError> {
    join_timestamp(seconds, nanos).ok_or(RosDecodeError {
        offset: 0,
        problem: "the time does not fit in 64-bit nanoseconds",
    })
}

/// Why a ROS message did not decode.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("byte {offset}: {problem}")]
pub struct RosDecodeError {
    /// Byte offset in the message.
    pub offset: usize,
    /// What is wrong.
    pub problem: &'static str,
}

/// CDR (XCDR1 plain) reader: a 4-byte encapsulation header, then fields aligned to their size,
/// relative to the end of that header.
struct CdrReader<'a> {
    body: &'a [u8],
    pos: usize,
    little_endian: bool,
}

impl<'a> CdrReader<'a> {
    fn new(message: &'a [u8]) -> Result<Self, RosDecodeError> {
        let Some((header, body)) = message.split_first_chunk::<4>() else {
            return Err(RosDecodeError {
                offset: 0,
                problem: "shorter than the 4-byte CDR encapsulation header",
            });
        };
        let little_endian = match header[..2] {
            [0, 0] => false,
            [0, 1] => true,
            _ => {
                return Err(RosDecodeError {
                    offset: 0,
                    problem: "unsupported CDR encapsulation (only plain CDR, big or little endian)",
                });
            }
        };
        Ok(Self {
            body,
            pos: 0,
            little_endian,
        })
    }

    fn error(&self, problem: &'static str) -> RosDecodeError {
        RosDecodeError {
            offset: self.pos + 4,
            problem,
        }
    }

    fn take(&mut self, len: usize, what: &'static str) -> Result<&'a [u8], RosDecodeError> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|&end| end <= self.body.len());
        match end {
            Some(end) => {
                let slice = &self.body[self.pos..end];
                self.pos = end;
                Ok(slice)
            }
            None => Err(self.error(what)),
        }
    }

    fn uint32(&mut self) -> Result<u32, RosDecodeError> {
        let padding = (4 - self.pos % 4) % 4;
        self.take(padding, "message ends in alignment padding")?;
        let bytes = self.take(4, "message ends inside a 32-bit field")?;
        let mut word = [0u8; 4];
        word.copy_from_slice(bytes);
        Ok(if self.little_endian {
            u32::from_le_bytes(word)
        } else {
            u32::from_be_bytes(word)
        })
    }

    fn int32(&mut self) -> Result<i32, RosDecodeError> {
        self.uint32().map(|v| v as i32)
    }

    fn bytes(&mut self) -> Result<&'a [u8], RosDecodeError> {
        let len = self.uint32()?;
        let len = usize::try_from(len).map_err(|_| self.error("sequence too long"))?;
        self.take(len, "sequence runs past the end of the message")
    }

    /// A CDR string: length including a trailing NUL, the bytes, the NUL.
    fn string(&mut self) -> Result<&'a str, RosDecodeError> {
        let raw = self.bytes()?;
        let text = raw.strip_suffix(&[0]).unwrap_or(raw);
        std::str::from_utf8(text).map_err(|_| self.error("string is not UTF-8"))
    }
}

/// ROS 1 serialization: little-endian, packed, strings and arrays prefixed with a u32 length.
struct Ros1Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Ros1Reader<'a> {
    fn error(&self, problem: &'static str) -> RosDecodeError {
        RosDecodeError {
            offset: self.pos,
            problem,
        }
    }

    fn take(&mut self, len: usize, what: &'static str) -> Result<&'a [u8], RosDecodeError> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|&end| end <= self.bytes.len());
        match end {
            Some(end) => {
                let slice = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(slice)
            }
            None => Err(self.error(what)),
        }
    }

    fn uint32(&mut self) -> Result<u32, RosDecodeError> {
        let bytes = self.take(4, "message ends inside a 32-bit field")?;
        let mut word = [0u8; 4];
        word.copy_from_slice(bytes);
        Ok(u32::from_le_bytes(word))
    }

    fn bytes(&mut self) -> Result<&'a [u8], RosDecodeError> {
        let len = self.uint32()?;
        let len = usize::try_from(len).map_err(|_| self.error("array too long"))?;
        self.take(len, "array runs past the end of the message")
    }

    fn string(&mut self) -> Result<&'a str, RosDecodeError> {
        let raw = self.bytes()?;
        std::str::from_utf8(raw).map_err(|_| self.error("string is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds CDR little-endian with alignment, the way a ROS 2 middleware would.
    struct CdrWriter(Vec<u8>);

    impl CdrWriter {
        fn new() -> Self {
            Self(vec![0, 1, 0, 0])
        }
        fn align4(&mut self) {
            while !(self.0.len() - 4).is_multiple_of(4) {
                self.0.push(0);
            }
        }
        fn u32(&mut self, v: u32) -> &mut Self {
            self.align4();
            self.0.extend_from_slice(&v.to_le_bytes());
            self
        }
        fn string(&mut self, s: &str) -> &mut Self {
            self.u32(s.len() as u32 + 1);
            self.0.extend_from_slice(s.as_bytes());
            self.0.push(0);
            self
        }
        fn bytes(&mut self, b: &[u8]) -> &mut Self {
            self.u32(b.len() as u32);
            self.0.extend_from_slice(b);
            self
        }
    }

    #[test]
    fn ros2_compressed_image() {
        let mut w = CdrWriter::new();
        // stamp 3 s + 5 ns, frame "cam" (odd length: padding follows), format, data.
        w.u32(3)
            .u32(5)
            .string("cam")
            .string("h264")
            .bytes(&[0, 0, 0, 1, 0x65]);
        let frame = RosVideoMessage::Ros2CompressedImage
            .decode(&w.0)
            .expect("decodes");
        assert_eq!(frame.pts_ns, 3_000_000_005);
        assert_eq!(frame.frame_id, "cam");
        assert_eq!(frame.format, "h264");
        assert_eq!(frame.data, [0, 0, 0, 1, 0x65]);
        for end in 0..w.0.len() {
            assert!(
                RosVideoMessage::Ros2CompressedImage
                    .decode(&w.0[..end])
                    .is_err()
            );
        }
    }

    #[test]
    fn ros2_compressed_video_has_data_before_format() {
        let mut w = CdrWriter::new();
        w.u32(1).u32(0).string("").bytes(&[1, 2, 3]).string("h265");
        let frame = RosVideoMessage::Ros2CompressedVideo
            .decode(&w.0)
            .expect("decodes");
        assert_eq!(
            (frame.pts_ns, frame.format, frame.data),
            (1_000_000_000, "h265", &[1, 2, 3][..])
        );
    }

    #[test]
    fn ros1_compressed_image() {
        let mut m = Vec::new();
        for word in [7u32, 2, 10] {
            m.extend_from_slice(&word.to_le_bytes());
        }
        for field in [&b"cam"[..], b"h264", &[9, 9]] {
            m.extend_from_slice(&(field.len() as u32).to_le_bytes());
            m.extend_from_slice(field);
        }
        let frame = RosVideoMessage::Ros1CompressedImage
            .decode(&m)
            .expect("decodes");
        assert_eq!(frame.pts_ns, 2_000_000_010);
        assert_eq!(
            (frame.frame_id, frame.format, frame.data),
            ("cam", "h264", &[9, 9][..])
        );
        assert!(
            RosVideoMessage::Ros1CompressedImage
                .decode(&m[..m.len() - 1])
                .is_err()
        );
    }
}
