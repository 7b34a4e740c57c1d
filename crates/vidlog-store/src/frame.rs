//! Message framing shared by recording files and sockets.
//!
//! Every message is a 16-byte frame header followed by its payload:
//!
//! | bytes | field                                            |
//! |-------|--------------------------------------------------|
//! | 0..4  | sync marker `VLGM` (lets a reader resynchronize) |
//! | 4..8  | payload length, u32 LE                           |
//! | 8     | message kind                                     |
//! | 9..12 | reserved, zero                                   |
//! | 12..16| CRC32C of the payload, u32 LE                    |
//!
//! This module owns the header and checksum only; payloads are [`crate::codec`]'s.

use std::io::{self, IoSlice, Write};

pub const FRAME_MAGIC: [u8; 4] = *b"VLGM";
pub const FRAME_HEADER_LEN: usize = 16;
/// Payloads above this are refused when reading (a corrupt length must not make us
/// allocate gigabytes). Writers split chunks well below it.
pub const MAX_PAYLOAD_LEN: u32 = 1 << 30;

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum MessageKind {
    /// Application and recording ids (JSON).
    RecordingInfo = 1,
    /// An Arrow IPC schema message, referenced by chunks.
    Schema = 2,
    /// An Arrow IPC record-batch message: one chunk.
    Chunk = 3,
    /// The footer index (files only).
    Footer = 4,
}

impl MessageKind {
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(MessageKind::RecordingInfo),
            2 => Some(MessageKind::Schema),
            3 => Some(MessageKind::Chunk),
            4 => Some(MessageKind::Footer),
            _ => None,
        }
    }
}

/// A parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub kind: u8,
    pub payload_len: u32,
    pub crc: u32,
}

/// Why 16 bytes are not a frame header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("no frame marker (found {found:02x?}, expected `VLGM`)")]
    BadMagic { found: [u8; 4] },
    #[error("frame payload length {len} exceeds the limit of {MAX_PAYLOAD_LEN} bytes")]
    TooLong { len: u32 },
    #[error("frame reserved bytes are not zero")]
    Reserved,
}

impl FrameHeader {
    pub fn new(kind: MessageKind, payload_len: u32, crc: u32) -> Self {
        FrameHeader {
            kind: kind as u8,
            payload_len,
            crc,
        }
    }

    pub fn to_bytes(self) -> [u8; FRAME_HEADER_LEN] {
        let mut b = [0u8; FRAME_HEADER_LEN];
        b[0..4].copy_from_slice(&FRAME_MAGIC);
        b[4..8].copy_from_slice(&self.payload_len.to_le_bytes());
        b[8] = self.kind;
        b[12..16].copy_from_slice(&self.crc.to_le_bytes());
        b
    }

    pub fn parse(b: &[u8; FRAME_HEADER_LEN]) -> Result<Self, FrameError> {
        let found = [b[0], b[1], b[2], b[3]];
        if found != FRAME_MAGIC {
            return Err(FrameError::BadMagic { found });
        }
        if b[9..12] != [0, 0, 0] {
            return Err(FrameError::Reserved);
        }
        let payload_len = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
        if payload_len > MAX_PAYLOAD_LEN {
            return Err(FrameError::TooLong { len: payload_len });
        }
        let crc = u32::from_le_bytes([b[12], b[13], b[14], b[15]]);
        Ok(FrameHeader {
            kind: b[8],
            payload_len,
            crc,
        })
    }

    /// Whole frame length, header included.
    pub fn frame_len(&self) -> u64 {
        FRAME_HEADER_LEN as u64 + u64::from(self.payload_len)
    }
}

/// CRC32C over payload pieces.
pub fn checksum<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> u32 {
    parts.into_iter().fold(0, crc32c::crc32c_append)
}

/// A frame ready to write: the header plus payload pieces (pieces are written in
/// order with vectored I/O, so sample bytes are never concatenated again).
pub struct OutFrame<'a> {
    pub kind: MessageKind,
    pub parts: Vec<&'a [u8]>,
}

impl OutFrame<'_> {
    pub fn payload_len(&self) -> usize {
        self.parts.iter().map(|p| p.len()).sum()
    }

    /// Writes header and payload; returns the bytes written.
    pub fn write_to(&self, w: &mut impl Write) -> io::Result<u64> {
        let len = self.payload_len();
        let len32 = u32::try_from(len)
            .ok()
            .filter(|l| *l <= MAX_PAYLOAD_LEN)
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("message of {len} bytes is too long"),
                )
            })?;
        let header =
            FrameHeader::new(self.kind, len32, checksum(self.parts.iter().copied())).to_bytes();
        let mut slices: Vec<&[u8]> = Vec::with_capacity(self.parts.len() + 1);
        slices.push(&header);
        slices.extend(self.parts.iter().copied().filter(|p| !p.is_empty()));
        write_all_vectored(w, &slices)?;
        Ok(FRAME_HEADER_LEN as u64 + len as u64)
    }
}

/// `write_all` for several slices with `write_vectored`, handling partial writes.
pub fn write_all_vectored(w: &mut impl Write, slices: &[&[u8]]) -> io::Result<()> {
    let mut index = 0; // first slice not fully written
    let mut offset = 0; // bytes of slices[index] already written
    while index < slices.len() {
        let io: Vec<IoSlice<'_>> = std::iter::once(IoSlice::new(&slices[index][offset..]))
            .chain(slices[index + 1..].iter().map(|s| IoSlice::new(s)))
            .take(1024)
            .collect();
        let mut written = match w.write_vectored(&io) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        while written > 0 && index < slices.len() {
            let left = slices[index].len() - offset;
            if written >= left {
                written -= left;
                index += 1;
                offset = 0;
            } else {
                offset += written;
                written = 0;
            }
        }
        while index < slices.len() && slices[index].len() == offset {
            index += 1;
            offset = 0;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip_and_errors() {
        let h = FrameHeader::new(MessageKind::Chunk, 1234, 0xdead_beef);
        assert_eq!(FrameHeader::parse(&h.to_bytes()).unwrap(), h);
        let mut bad = h.to_bytes();
        bad[0] = b'X';
        assert!(matches!(
            FrameHeader::parse(&bad),
            Err(FrameError::BadMagic { .. })
        ));
        let mut long = h.to_bytes();
        long[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            FrameHeader::parse(&long),
            Err(FrameError::TooLong { .. })
        ));
    }

    /// A writer that accepts at most 3 bytes per call, to exercise partial writes.
    struct Trickle(Vec<u8>);
    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let n = buf.len().min(3);
            self.0.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            let first = bufs
                .iter()
                .find(|b| !b.is_empty())
                .map(|b| &b[..])
                .unwrap_or(&[]);
            self.write(first)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn vectored_write_survives_partial_writes() {
        let mut w = Trickle(Vec::new());
        write_all_vectored(&mut w, &[b"hello", b"", b" wor", b"ld"]).unwrap();
        assert_eq!(w.0, b"hello world");
        let frame = OutFrame {
            kind: MessageKind::Schema,
            parts: vec![b"ab", b"cd"],
        };
        let mut w = Trickle(Vec::new());
        assert_eq!(frame.write_to(&mut w).unwrap(), 20);
        let header = FrameHeader::parse(w.0[..16].try_into().unwrap()).unwrap();
        assert_eq!(header.payload_len, 4);
        assert_eq!(header.crc, crc32c::crc32c(b"abcd"));
    }
}
