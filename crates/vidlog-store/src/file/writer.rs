//! Appends chunks to a recording file and writes the footer on finish.
//!
//! Every message goes to the kernel with one vectored `write` as soon as it is handed
//! over (no user-space buffering), so a writer killed at any point leaves a file that
//! opens with everything written before the kill.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use vidlog_types::{Chunk, EntityPath, VideoCodec};

use super::growing::{GrowingFile, SchemaOffsets};
use super::{FOOTER_VERSION, TRAILER_MAGIC, file_header};
use crate::codec::{MessageEncoder, RecordingInfo, encode_recording_info};
use crate::frame::{MessageKind, OutFrame};
use crate::summary::{ChunkLocation, ChunkSummary};
use crate::wire::WireWriter;

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("chunk of {entity} could not be encoded: {reason}")]
    Encode { entity: EntityPath, reason: String },
    #[error("{path}: the writer was already finished")]
    Finished { path: PathBuf },
}

/// Writes one recording file.
pub struct FileWriter {
    path: PathBuf,
    file: File,
    offset: u64,
    encoder: MessageEncoder,
    schemas: Vec<(u32, u64, u64)>,
    /// The same schema offsets, shared with [`GrowingFile`] readers.
    schema_offsets: SchemaOffsets,
    summaries: Vec<ChunkSummary>,
    codecs: HashMap<EntityPath, VideoCodec>,
    sample_bytes: u64,
    finished: bool,
}

impl FileWriter {
    /// Creates (or truncates) `path` and writes the header and `info`.
    pub fn create(path: impl AsRef<Path>, info: &RecordingInfo) -> Result<Self, WriteError> {
        let path = path.as_ref().to_path_buf();
        let io = |source| WriteError::Io {
            path: path.clone(),
            source,
        };
        let mut file = File::create(&path).map_err(io)?;
        file.write_all(&file_header()).map_err(io)?;
        let mut writer = FileWriter {
            path: path.clone(),
            file,
            offset: super::FILE_HEADER_LEN,
            encoder: MessageEncoder::new(),
            schemas: Vec::new(),
            schema_offsets: SchemaOffsets::default(),
            summaries: Vec::new(),
            codecs: HashMap::new(),
            sample_bytes: 0,
            finished: false,
        };
        let info = encode_recording_info(info);
        writer.write_frame(&info.frame())?;
        Ok(writer)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A reader of this file that loads chunks written so far (and later) by location,
    /// while this writer keeps appending: the source of a store that evicts chunks.
    pub fn growing_reader(&self) -> Result<Arc<GrowingFile>, WriteError> {
        GrowingFile::open(&self.path, self.schema_offsets.clone())
            .map(Arc::new)
            .map_err(|source| WriteError::Io {
                path: self.path.clone(),
                source,
            })
    }

    /// Bytes written so far.
    pub fn bytes_written(&self) -> u64 {
        self.offset
    }

    /// Video sample bytes written so far.
    pub fn sample_bytes(&self) -> u64 {
        self.sample_bytes
    }

    fn write_frame(&mut self, frame: &OutFrame<'_>) -> Result<(u64, u64), WriteError> {
        if self.finished {
            return Err(WriteError::Finished {
                path: self.path.clone(),
            });
        }
        let at = self.offset;
        let len = frame
            .write_to(&mut self.file)
            .map_err(|source| WriteError::Io {
                path: self.path.clone(),
                source,
            })?;
        self.offset += len;
        Ok((at, len))
    }

    /// Appends one chunk (and its schema the first time it is seen). Returns the chunk's
    /// summary (samples probed once, location in the file), which a store in the same
    /// process indexes with `ChunkStore::insert_summary` instead of probing again.
    pub fn write_chunk(&mut self, chunk: &Chunk) -> Result<ChunkSummary, WriteError> {
        if chunk.is_static()
            && let Some(codec) = chunk.codec()
        {
            self.codecs.insert(chunk.entity().clone(), codec);
        }
        let messages = self
            .encoder
            .encode_chunk(chunk)
            .map_err(|reason| WriteError::Encode {
                entity: chunk.entity().clone(),
                reason,
            })?;
        let mut summary = ChunkSummary::from_chunk(chunk, self.codecs.get(chunk.entity()).copied());
        for message in &messages {
            let (at, len) = self.write_frame(&message.frame())?;
            match message.kind {
                MessageKind::Schema => {
                    let id = u32::from_le_bytes([
                        message.head[0],
                        message.head[1],
                        message.head[2],
                        message.head[3],
                    ]);
                    self.schemas.push((id, at, len));
                    self.schema_offsets.write().insert(id, at);
                }
                MessageKind::Chunk => {
                    let schema_id = u32::from_le_bytes([
                        message.head[8],
                        message.head[9],
                        message.head[10],
                        message.head[11],
                    ]);
                    summary.location = Some(ChunkLocation {
                        offset: at,
                        frame_len: len,
                        schema_id,
                    });
                }
                _ => {}
            }
        }
        if let Some(video) = &summary.video {
            self.sample_bytes += video.sizes.iter().map(|s| u64::from(*s)).sum::<u64>();
        }
        self.summaries.push(summary.clone());
        Ok(summary)
    }

    /// Makes written data durable (fsync). Not needed for crash safety against a
    /// killed process, only against power loss.
    pub fn sync(&mut self) -> Result<(), WriteError> {
        self.file.sync_data().map_err(|source| WriteError::Io {
            path: self.path.clone(),
            source,
        })
    }

    /// Writes the footer and trailer. Called by `drop` if not called before.
    pub fn finish(&mut self) -> Result<(), WriteError> {
        if self.finished {
            return Ok(());
        }
        let result = self.write_footer();
        // Once tried, not again (a drop after a failed finish would fail the same way).
        self.finished = true;
        result
    }

    fn write_footer(&mut self) -> Result<(), WriteError> {
        let mut w = WireWriter::default();
        w.u32(FOOTER_VERSION);
        w.varint(self.schemas.len() as u64);
        for (id, at, len) in &self.schemas {
            w.u32(*id);
            w.u64(*at);
            w.u64(*len);
        }
        w.varint(self.summaries.len() as u64);
        for s in &self.summaries {
            s.encode(&mut w);
        }
        let (footer_at, _) = self.write_frame(&OutFrame {
            kind: MessageKind::Footer,
            parts: vec![&w.buf],
        })?;
        let mut trailer = [0u8; 16];
        trailer[0..8].copy_from_slice(&footer_at.to_le_bytes());
        trailer[8..16].copy_from_slice(&TRAILER_MAGIC);
        self.file
            .write_all(&trailer)
            .map_err(|source| WriteError::Io {
                path: self.path.clone(),
                source,
            })?;
        self.offset += 16;
        Ok(())
    }
}

impl Drop for FileWriter {
    fn drop(&mut self) {
        if let Err(e) = self.finish() {
            // Not eprintln!: a closed stderr must not turn this into a panic inside a drop.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "vidlog: could not finish {}: {e}",
                self.path.display()
            );
        }
    }
}
