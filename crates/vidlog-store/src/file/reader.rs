//! Opens a recording file: from its footer when it has one (reading only the footer
//! and schemas), otherwise by scanning every frame, keeping each intact message and
//! reporting what was lost and where.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_buffer::Buffer;
use arrow_schema::SchemaRef;
use vidlog_types::{Chunk, EntityPath, VideoCodec};

use super::{
    FILE_HEADER_LEN, FILE_MAGIC, FOOTER_VERSION, FORMAT_MAJOR, FORMAT_MINOR, TRAILER_LEN,
    TRAILER_MAGIC,
};
use crate::codec::{Decoded, MessageDecoder, RecordingInfo, decode_chunk, decode_schema};
use crate::frame::{FRAME_HEADER_LEN, FRAME_MAGIC, FrameHeader, MessageKind, checksum};
use crate::summary::{ChunkLocation, ChunkSummary};
use crate::wire::WireReader;

#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a vidlog recording (it starts with {found:02x?})")]
    NotARecording { path: PathBuf, found: Vec<u8> },
    #[error(
        "{path} is format version {file_major}.{file_minor}, newer than this vidlog reads \
         ({FORMAT_MAJOR}.{FORMAT_MINOR}); upgrade vidlog to open it"
    )]
    NewerVersion {
        path: PathBuf,
        file_major: u16,
        file_minor: u16,
    },
    #[error("{path}: chunk at byte {offset}: {reason}")]
    BadChunk {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
}

/// Bytes that could not be read as messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorruptRegion {
    pub offset: u64,
    pub len: u64,
    pub reason: String,
}

/// What opening a file without a valid footer found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Why the footer was not used.
    pub footer_problem: String,
    /// Bytes at the end that do not form a whole message (a writer killed mid-write).
    pub torn_tail_bytes: u64,
    /// Damaged stretches in the middle, each followed by intact messages.
    pub corrupt: Vec<CorruptRegion>,
    /// Messages read intact.
    pub messages: u64,
}

impl std::fmt::Display for RecoveryReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "recovered {} messages by scanning ({})",
            self.messages, self.footer_problem
        )?;
        if self.torn_tail_bytes > 0 {
            write!(f, "; dropped a torn tail of {} bytes", self.torn_tail_bytes)?;
        }
        for c in &self.corrupt {
            write!(
                f,
                "; skipped {} corrupt bytes at offset {} ({})",
                c.len, c.offset, c.reason
            )?;
        }
        Ok(())
    }
}

/// An open recording file. Chunks are loaded on demand with [`RecordingFile::load_chunk`].
pub struct RecordingFile {
    path: PathBuf,
    file: File,
    len: u64,
    pub info: Option<RecordingInfo>,
    pub version: (u16, u16),
    schemas: HashMap<u32, SchemaRef>,
    pub summaries: Vec<ChunkSummary>,
    /// Set when the file had to be scanned.
    pub recovery: Option<RecoveryReport>,
}

impl RecordingFile {
    pub fn open(path: impl AsRef<Path>) -> Result<Self, OpenError> {
        let path = path.as_ref().to_path_buf();
        let io = |source| OpenError::Io {
            path: path.clone(),
            source,
        };
        let file = File::open(&path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let mut header = [0u8; 16];
        let got = read_up_to(&file, 0, &mut header).map_err(io)?;
        if got < 16 || header[0..8] != FILE_MAGIC {
            return Err(OpenError::NotARecording {
                path,
                found: header[..got.min(8)].to_vec(),
            });
        }
        let major = u16::from_le_bytes([header[8], header[9]]);
        let minor = u16::from_le_bytes([header[10], header[11]]);
        if major > FORMAT_MAJOR {
            return Err(OpenError::NewerVersion {
                path,
                file_major: major,
                file_minor: minor,
            });
        }
        let mut rec = RecordingFile {
            path,
            file,
            len,
            info: None,
            version: (major, minor),
            schemas: HashMap::new(),
            summaries: Vec::new(),
            recovery: None,
        };
        match rec.open_from_footer() {
            Ok(()) => {}
            Err(problem) => {
                rec.schemas.clear();
                rec.summaries.clear();
                let report = rec.scan(problem).map_err(|source| OpenError::Io {
                    path: rec.path.clone(),
                    source,
                })?;
                rec.recovery = Some(report);
            }
        }
        Ok(rec)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// File size in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len <= FILE_HEADER_LEN
    }

    /// Reads a whole frame at `offset`, checking its header and checksum.
    fn read_frame(&self, offset: u64) -> Result<(FrameHeader, Buffer), String> {
        read_frame(&self.file, offset, self.len)
    }

    fn open_from_footer(&mut self) -> Result<(), String> {
        if self.len < FILE_HEADER_LEN + TRAILER_LEN {
            return Err("file too short for a footer".into());
        }
        let mut trailer = [0u8; 16];
        self.file
            .read_exact_at(&mut trailer, self.len - TRAILER_LEN)
            .map_err(|e| e.to_string())?;
        if trailer[8..16] != TRAILER_MAGIC {
            return Err("no footer (the writer did not finish)".into());
        }
        let mut at = [0u8; 8];
        at.copy_from_slice(&trailer[0..8]);
        let footer_at = u64::from_le_bytes(at);
        let (header, payload) = self
            .read_frame(footer_at)
            .map_err(|e| format!("footer: {e}"))?;
        if header.kind != MessageKind::Footer as u8
            || footer_at + header.frame_len() + TRAILER_LEN != self.len
        {
            return Err("trailer does not point at a footer".into());
        }
        let mut r = WireReader::new(&payload);
        let version = r.u32("footer version").map_err(|e| e.to_string())?;
        if version != FOOTER_VERSION {
            return Err(format!("footer version {version} unknown"));
        }
        let num_schemas = r.count("schema count").map_err(|e| e.to_string())?;
        for _ in 0..num_schemas {
            let id = r.u32("schema id").map_err(|e| e.to_string())?;
            let offset = r.u64("schema offset").map_err(|e| e.to_string())?;
            let _len = r.u64("schema length").map_err(|e| e.to_string())?;
            let (_, payload) = self
                .read_frame(offset)
                .map_err(|e| format!("schema {id}: {e}"))?;
            let (_, schema) = decode_schema(&payload).map_err(|e| e.to_string())?;
            self.schemas.insert(id, Arc::new(schema));
        }
        let num_chunks = r.count("chunk count").map_err(|e| e.to_string())?;
        self.summaries.reserve(num_chunks);
        for _ in 0..num_chunks {
            self.summaries
                .push(ChunkSummary::decode(&mut r).map_err(|e| e.to_string())?);
        }
        self.info = self.read_info();
        Ok(())
    }

    fn read_info(&self) -> Option<RecordingInfo> {
        let (header, payload) = self.read_frame(FILE_HEADER_LEN).ok()?;
        if header.kind != MessageKind::RecordingInfo as u8 {
            return None;
        }
        serde_json::from_slice(&payload).ok()
    }

    /// Reads every frame in order, resynchronizing after damage.
    fn scan(&mut self, footer_problem: String) -> std::io::Result<RecoveryReport> {
        let mut report = RecoveryReport {
            footer_problem,
            ..Default::default()
        };
        let mut decoder = MessageDecoder::new();
        let mut codecs: HashMap<EntityPath, VideoCodec> = HashMap::new();
        let mut pos = FILE_HEADER_LEN;
        while pos < self.len {
            match self.read_frame(pos) {
                Ok((header, payload)) => {
                    report.messages += 1;
                    self.take_message(&mut decoder, &mut codecs, pos, header, payload, &mut report);
                    pos += header.frame_len();
                }
                Err(reason) => match self.find_next_frame(pos + 1)? {
                    Some(next) => {
                        report.corrupt.push(CorruptRegion {
                            offset: pos,
                            len: next - pos,
                            reason,
                        });
                        pos = next;
                    }
                    None => {
                        // A trailer after a valid footer is not a torn tail.
                        let rest = self.len - pos;
                        if !(rest == TRAILER_LEN && self.is_trailer_at(pos)) {
                            report.torn_tail_bytes = rest;
                        }
                        break;
                    }
                },
            }
        }
        Ok(report)
    }

    fn is_trailer_at(&self, pos: u64) -> bool {
        let mut t = [0u8; 16];
        read_up_to(&self.file, pos, &mut t)
            .map(|n| n == 16 && t[8..] == TRAILER_MAGIC)
            .unwrap_or(false)
    }

    fn take_message(
        &mut self,
        decoder: &mut MessageDecoder,
        codecs: &mut HashMap<EntityPath, VideoCodec>,
        pos: u64,
        header: FrameHeader,
        payload: Buffer,
        report: &mut RecoveryReport,
    ) {
        match decoder.decode(header.kind, payload) {
            Ok(Decoded::RecordingInfo(info)) => {
                self.info.get_or_insert(info);
            }
            Ok(Decoded::Schema { schema_id }) => {
                if let Some(s) = decoder.schema(schema_id) {
                    self.schemas.insert(schema_id, s.clone());
                }
            }
            Ok(Decoded::Chunk(chunk)) => {
                if chunk.is_static()
                    && let Some(codec) = chunk.codec()
                {
                    codecs.insert(chunk.entity().clone(), codec);
                }
                let mut summary =
                    ChunkSummary::from_chunk(&chunk, codecs.get(chunk.entity()).copied());
                summary.location = Some(ChunkLocation {
                    offset: pos,
                    frame_len: header.frame_len(),
                    schema_id: self.schema_id_at(pos).unwrap_or(0),
                });
                self.summaries.push(summary);
            }
            Ok(Decoded::Footer(_)) => {}
            Err(e) => report.corrupt.push(CorruptRegion {
                offset: pos,
                len: header.frame_len(),
                reason: format!("message does not decode: {e}"),
            }),
        }
    }

    fn schema_id_at(&self, pos: u64) -> Option<u32> {
        let mut head = [0u8; 12];
        self.file
            .read_exact_at(&mut head, pos + FRAME_HEADER_LEN as u64)
            .ok()?;
        Some(u32::from_le_bytes([head[8], head[9], head[10], head[11]]))
    }

    /// The offset of the next intact frame at or after `from`.
    fn find_next_frame(&self, from: u64) -> std::io::Result<Option<u64>> {
        const WINDOW: usize = 1 << 16;
        let mut base = from;
        let mut buf = vec![0u8; WINDOW + 3];
        while base < self.len {
            let n = read_up_to(&self.file, base, &mut buf)?;
            if n < 4 {
                return Ok(None);
            }
            for i in 0..n - 3 {
                if buf[i..i + 4] == FRAME_MAGIC && self.read_frame(base + i as u64).is_ok() {
                    return Ok(Some(base + i as u64));
                }
            }
            base += (n - 3) as u64;
        }
        Ok(None)
    }

    /// Loads and decodes the chunk at `location`.
    pub fn load_chunk(&self, location: ChunkLocation) -> Result<Chunk, OpenError> {
        let bad = |reason: String| OpenError::BadChunk {
            path: self.path.clone(),
            offset: location.offset,
            reason,
        };
        let (header, payload) = self.read_frame(location.offset).map_err(bad)?;
        if header.kind != MessageKind::Chunk as u8 {
            return Err(bad(format!(
                "expected a chunk message, found kind {}",
                header.kind
            )));
        }
        let schema = self
            .schemas
            .get(&location.schema_id)
            .cloned()
            .ok_or_else(|| bad(format!("schema {} is missing", location.schema_id)))?;
        decode_chunk(&payload, schema).map_err(|e| bad(e.to_string()))
    }
}

/// `read_exact_at` that stops at the end of the file; returns bytes read.
fn read_up_to(file: &File, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Reads a whole frame at `offset` of a file of `file_len` bytes, checking its header and
/// checksum.
pub(crate) fn read_frame(
    file: &File,
    offset: u64,
    file_len: u64,
) -> Result<(FrameHeader, Buffer), String> {
    let mut h = [0u8; FRAME_HEADER_LEN];
    let got = read_up_to(file, offset, &mut h).map_err(|e| e.to_string())?;
    if got < FRAME_HEADER_LEN {
        return Err(format!("frame header cut off after {got} bytes"));
    }
    let header = FrameHeader::parse(&h).map_err(|e| e.to_string())?;
    let end = offset + header.frame_len();
    if end > file_len {
        return Err(format!(
            "frame of {} bytes runs past the end of the file by {} bytes",
            header.frame_len(),
            end - file_len
        ));
    }
    let mut payload = vec![0u8; header.payload_len as usize];
    file.read_exact_at(&mut payload, offset + FRAME_HEADER_LEN as u64)
        .map_err(|e| e.to_string())?;
    let crc = checksum([payload.as_slice()]);
    if crc != header.crc {
        return Err(format!(
            "checksum mismatch (stored {:#010x}, computed {crc:#010x})",
            header.crc
        ));
    }
    Ok((header, Buffer::from_vec(payload)))
}
