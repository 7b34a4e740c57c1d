//! The protobuf wire format, just enough of it: a writer for varint and length-delimited fields,
//! and a reader that walks the fields of one message.
//!
//! This module owns the bytes-on-the-wire rules (tags, varints, zig-zag-free signed integers,
//! length prefixes). It knows nothing about which message is being encoded: that is
//! `schema.rs` (descriptors) and `video.rs` (`foxglove.CompressedVideo`).

use std::fmt;

/// Protobuf wire types (the low 3 bits of a tag).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireType {
    /// `int32`, `int64`, `uint32`, `uint64`, `bool`, `enum`: a base-128 varint.
    Varint,
    /// `fixed64`, `sfixed64`, `double`: 8 little-endian bytes.
    Fixed64,
    /// `string`, `bytes`, embedded messages, packed repeated fields: a varint length, then bytes.
    LengthDelimited,
    /// `fixed32`, `sfixed32`, `float`: 4 little-endian bytes.
    Fixed32,
}

impl WireType {
    const fn bits(self) -> u64 {
        match self {
            WireType::Varint => 0,
            WireType::Fixed64 => 1,
            WireType::LengthDelimited => 2,
            WireType::Fixed32 => 5,
        }
    }
}

/// Appends protobuf fields to a byte buffer.
#[derive(Debug, Default, Clone)]
pub struct ProtoWriter {
    buf: Vec<u8>,
}

impl ProtoWriter {
    /// An empty message.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts over, keeping the allocation.
    pub fn clear(&mut self) {
        self.buf.clear();
    }

    /// The encoded bytes so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The encoded message.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// Appends raw bytes (the caller is responsible for them being valid wire format).
    pub fn raw(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        self
    }

    fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.buf.push((value as u8 & 0x7f) | 0x80);
            value >>= 7;
        }
        self.buf.push(value as u8);
    }

    fn tag(&mut self, field: u32, wire_type: WireType) {
        self.varint((u64::from(field) << 3) | wire_type.bits());
    }

    /// An unsigned varint field (`uint32`, `uint64`, `bool`, `enum` values that are not negative).
    pub fn uint64(&mut self, field: u32, value: u64) -> &mut Self {
        self.tag(field, WireType::Varint);
        self.varint(value);
        self
    }

    /// An `int64` field (two's complement, so negative values take 10 bytes).
    pub fn int64(&mut self, field: u32, value: i64) -> &mut Self {
        self.uint64(field, value as u64)
    }

    /// An `int32` or `enum` field (sign-extended to 64 bits, as the protobuf spec requires).
    pub fn int32(&mut self, field: u32, value: i32) -> &mut Self {
        self.int64(field, i64::from(value))
    }

    /// A `bytes` field.
    pub fn bytes(&mut self, field: u32, value: &[u8]) -> &mut Self {
        self.length_prefix(field, value.len());
        self.buf.extend_from_slice(value);
        self
    }

    /// A `string` field.
    pub fn string(&mut self, field: u32, value: &str) -> &mut Self {
        self.bytes(field, value.as_bytes())
    }

    /// An embedded message field.
    pub fn message(&mut self, field: u32, message: &ProtoWriter) -> &mut Self {
        self.bytes(field, message.as_bytes())
    }

    /// The tag and length of a length-delimited field whose `len` payload bytes the caller
    /// appends next (lets a large payload be written without building the field first).
    pub fn length_prefix(&mut self, field: u32, len: usize) -> &mut Self {
        self.tag(field, WireType::LengthDelimited);
        self.varint(len as u64);
        self
    }
}

/// One field's value as read from the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldValue<'a> {
    /// A varint (interpret as `u64`, or cast for signed types).
    Varint(u64),
    /// 8 bytes.
    Fixed64(u64),
    /// A string, bytes, or embedded message.
    LengthDelimited(&'a [u8]),
    /// 4 bytes.
    Fixed32(u32),
}

/// One field read from a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field<'a> {
    /// The field number.
    pub number: u32,
    /// Its value.
    pub value: FieldValue<'a>,
}

/// Why bytes are not a valid protobuf message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct WireError {
    /// Byte offset in the message where the problem starts.
    pub offset: usize,
    /// What is wrong.
    pub problem: WireProblem,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "protobuf byte {}: {}", self.offset, self.problem)
    }
}

/// The kinds of malformed protobuf.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WireProblem {
    /// A varint runs past the end of the message or is longer than 10 bytes.
    BadVarint,
    /// A field number of 0 or above 2^29 - 1.
    BadFieldNumber(u64),
    /// Wire types 3 and 4 (groups, deprecated) and 6, 7 (undefined).
    UnsupportedWireType(u8),
    /// A field whose declared length runs past the end of the message.
    Truncated {
        /// Bytes the field needs.
        needed: u64,
        /// Bytes left.
        available: usize,
    },
    /// A field with the wrong wire type for what the schema says it is.
    WrongWireType {
        /// The field number.
        field: u32,
        /// What the schema expects.
        expected: &'static str,
    },
    /// A string field that is not UTF-8.
    NotUtf8 {
        /// The field number.
        field: u32,
    },
    /// A `google.protobuf.Timestamp` beyond what `i64` nanoseconds hold (about year 2262).
    TimestampOutOfRange {
        /// `seconds`.
        seconds: i64,
        /// `nanos`.
        nanos: i64,
    },
}

impl fmt::Display for WireProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WireProblem::BadVarint => f.write_str("varint is truncated or longer than 10 bytes"),
            WireProblem::BadFieldNumber(n) => write!(f, "invalid field number {n}"),
            WireProblem::UnsupportedWireType(t) => write!(f, "unsupported wire type {t}"),
            WireProblem::Truncated { needed, available } => write!(
                f,
                "field needs {needed} bytes but the message has {available} left"
            ),
            WireProblem::WrongWireType { field, expected } => {
                write!(f, "field {field} should be {expected}")
            }
            WireProblem::NotUtf8 { field } => write!(f, "string field {field} is not UTF-8"),
            WireProblem::TimestampOutOfRange { seconds, nanos } => write!(
                f,
                "timestamp {seconds} s + {nanos} ns does not fit in 64-bit nanoseconds"
            ),
        }
    }
}

/// Iterates over the fields of one encoded message, in wire order. Stops after the first error.
#[derive(Clone, Debug)]
pub struct ProtoReader<'a> {
    bytes: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> ProtoReader<'a> {
    /// Reads the fields of `message`.
    pub fn new(message: &'a [u8]) -> Self {
        Self {
            bytes: message,
            pos: 0,
            failed: false,
        }
    }

    fn error(
        &mut self,
        offset: usize,
        problem: WireProblem,
    ) -> Option<Result<Field<'a>, WireError>> {
        self.failed = true;
        Some(Err(WireError { offset, problem }))
    }

    fn read_varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for i in 0..10 {
            let byte = *self.bytes.get(self.pos)?;
            self.pos += 1;
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn take(&mut self, len: u64) -> Result<&'a [u8], WireProblem> {
        let available = self.bytes.len() - self.pos;
        match usize::try_from(len) {
            Ok(n) if n <= available => {
                let slice = &self.bytes[self.pos..self.pos + n];
                self.pos += n;
                Ok(slice)
            }
            _ => Err(WireProblem::Truncated {
                needed: len,
                available,
            }),
        }
    }
}

impl<'a> Iterator for ProtoReader<'a> {
    type Item = Result<Field<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.bytes.len() {
            return None;
        }
        let start = self.pos;
        let Some(tag) = self.read_varint() else {
            return self.error(start, WireProblem::BadVarint);
        };
        let number = tag >> 3;
        let Ok(number) = u32::try_from(number) else {
            return self.error(start, WireProblem::BadFieldNumber(number));
        };
        if number == 0 || number > (1 << 29) - 1 {
            return self.error(start, WireProblem::BadFieldNumber(u64::from(number)));
        }
        let value_start = self.pos;
        let value = match tag & 7 {
            0 => match self.read_varint() {
                Some(v) => FieldValue::Varint(v),
                None => return self.error(value_start, WireProblem::BadVarint),
            },
            1 => match self.take(8) {
                Ok(b) => {
                    let mut le = [0u8; 8];
                    le.copy_from_slice(b);
                    FieldValue::Fixed64(u64::from_le_bytes(le))
                }
                Err(problem) => return self.error(value_start, problem),
            },
            2 => {
                let Some(len) = self.read_varint() else {
                    return self.error(value_start, WireProblem::BadVarint);
                };
                match self.take(len) {
                    Ok(b) => FieldValue::LengthDelimited(b),
                    Err(problem) => return self.error(value_start, problem),
                }
            }
            5 => match self.take(4) {
                Ok(b) => {
                    let mut le = [0u8; 4];
                    le.copy_from_slice(b);
                    FieldValue::Fixed32(u32::from_le_bytes(le))
                }
                Err(problem) => return self.error(value_start, problem),
            },
            other => return self.error(start, WireProblem::UnsupportedWireType(other as u8)),
        };
        Some(Ok(Field { number, value }))
    }
}

impl<'a> Field<'a> {
    /// The value of a varint field (`int32` and `int64` values are returned as their
    /// two's-complement bits; cast with `as`).
    pub fn varint(&self) -> Result<u64, WireProblem> {
        match self.value {
            FieldValue::Varint(v) => Ok(v),
            _ => Err(WireProblem::WrongWireType {
                field: self.number,
                expected: "a varint",
            }),
        }
    }

    /// The payload of a length-delimited field.
    pub fn bytes(&self) -> Result<&'a [u8], WireProblem> {
        match self.value {
            FieldValue::LengthDelimited(b) => Ok(b),
            _ => Err(WireProblem::WrongWireType {
                field: self.number,
                expected: "length-delimited",
            }),
        }
    }

    /// The payload of a string field.
    pub fn string(&self) -> Result<&'a str, WireProblem> {
        std::str::from_utf8(self.bytes()?).map_err(|_| WireProblem::NotUtf8 { field: self.number })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_match_the_protobuf_spec_examples() {
        // From the protobuf encoding guide: field 1 = 150 is 08 96 01.
        let mut w = ProtoWriter::new();
        w.uint64(1, 150);
        assert_eq!(w.as_bytes(), [0x08, 0x96, 0x01]);
        // Field 2 = "testing" is 12 07 74 65 73 74 69 6e 67.
        let mut w = ProtoWriter::new();
        w.string(2, "testing");
        assert_eq!(w.as_bytes(), b"\x12\x07testing");
        // int32 -1 takes ten bytes.
        let mut w = ProtoWriter::new();
        w.int32(1, -1);
        assert_eq!(w.as_bytes().len(), 11);
    }

    #[test]
    fn reader_round_trips_every_wire_type() {
        let mut w = ProtoWriter::new();
        w.uint64(1, u64::MAX).int64(2, -5).string(3, "héllo");
        w.raw(&[(4 << 3) | 1, 1, 2, 3, 4, 5, 6, 7, 8]);
        w.raw(&[(5 << 3) | 5, 9, 0, 0, 0]);
        let fields: Vec<_> = ProtoReader::new(w.as_bytes())
            .collect::<Result<_, _>>()
            .expect("valid message");
        assert_eq!(fields.len(), 5);
        assert_eq!(fields[0].varint(), Ok(u64::MAX));
        assert_eq!(fields[1].varint().map(|v| v as i64), Ok(-5));
        assert_eq!(fields[2].string(), Ok("héllo"));
        assert_eq!(
            fields[3].value,
            FieldValue::Fixed64(u64::from_le_bytes([1, 2, 3, 4, 5, 6, 7, 8]))
        );
        assert_eq!(fields[4].value, FieldValue::Fixed32(9));
        assert!(fields[2].varint().is_err());
    }

    #[test]
    fn reader_reports_damage_instead_of_panicking() {
        let mut w = ProtoWriter::new();
        w.uint64(1, 300).bytes(2, &[7; 40]).string(3, "format");
        let good = w.into_bytes();
        for end in 0..good.len() {
            let result: Result<Vec<_>, _> = ProtoReader::new(&good[..end]).collect();
            // Cuts on a field boundary give a shorter valid message; others must be errors.
            if let Err(e) = result {
                assert!(e.offset <= end, "{e}");
            }
        }
        for bad in [
            &[0x00][..],
            &[0x0b],
            &[0x0f],
            &[0x08, 0x80],
            &[0x12, 0x05, 1],
        ] {
            let result: Result<Vec<_>, _> = ProtoReader::new(bad).collect();
            assert!(result.is_err(), "{bad:?}");
        }
        let eleven_byte_varint = [
            0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ];
        assert!(ProtoReader::new(&eleven_byte_varint).any(|f| f.is_err()));
    }
}
