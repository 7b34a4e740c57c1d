//! The recording file: header, framed messages, footer index, trailer.
//!
//! ```text
//! header   16 B  magic `VIDLOGRC`, major u16, minor u16, flags u32 (0)
//! frames         RecordingInfo, then Schema / Chunk frames as they are written
//! footer         a Footer frame: schema locations and one ChunkSummary per chunk
//! trailer  16 B  footer frame offset u64, magic `VLGFOOT1`
//! ```
//!
//! docs/FORMAT.md is the specification; this module and its children implement it.

mod growing;
mod reader;
mod writer;

pub use growing::GrowingFile;

pub use reader::{CorruptRegion, OpenError, RecordingFile, RecoveryReport};
pub use writer::{FileWriter, WriteError};

pub const FILE_MAGIC: [u8; 8] = *b"VIDLOGRC";
pub const TRAILER_MAGIC: [u8; 8] = *b"VLGFOOT1";
pub const FORMAT_MAJOR: u16 = 1;
pub const FORMAT_MINOR: u16 = 0;
pub const FILE_HEADER_LEN: u64 = 16;
pub const TRAILER_LEN: u64 = 16;
/// Version of the footer payload layout.
pub const FOOTER_VERSION: u32 = 1;

pub(crate) fn file_header() -> [u8; 16] {
    let mut h = [0u8; 16];
    h[0..8].copy_from_slice(&FILE_MAGIC);
    h[8..10].copy_from_slice(&FORMAT_MAJOR.to_le_bytes());
    h[10..12].copy_from_slice(&FORMAT_MINOR.to_le_bytes());
    h
}
