//! Loads chunks back from a recording file while its [`FileWriter`](super::FileWriter)
//! still appends to it, for a store that evicts chunks of a live recording.
//!
//! The writer hands every message to the kernel before it returns a chunk's location, so
//! any location a store knows lies in bytes already written. Schemas are found through
//! the writer's table of schema offsets and decoded once.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_schema::SchemaRef;
use parking_lot::RwLock;
use vidlog_types::Chunk;

use super::reader::read_frame;
use crate::codec::{decode_chunk, decode_schema};
use crate::frame::MessageKind;
use crate::store::{ChunkSource, StoreError};
use crate::summary::ChunkLocation;

/// Schema id to the offset of its frame, filled by the writer as it writes schemas.
pub(crate) type SchemaOffsets = Arc<RwLock<HashMap<u32, u64>>>;

/// See the module documentation.
pub struct GrowingFile {
    path: PathBuf,
    file: File,
    offsets: SchemaOffsets,
    schemas: RwLock<HashMap<u32, SchemaRef>>,
}

impl GrowingFile {
    pub(crate) fn open(path: &Path, offsets: SchemaOffsets) -> std::io::Result<Self> {
        Ok(GrowingFile {
            path: path.to_path_buf(),
            file: File::open(path)?,
            offsets,
            schemas: RwLock::new(HashMap::new()),
        })
    }

    fn schema(&self, id: u32, file_len: u64) -> Result<SchemaRef, String> {
        if let Some(schema) = self.schemas.read().get(&id) {
            return Ok(schema.clone());
        }
        let offset = *self
            .offsets
            .read()
            .get(&id)
            .ok_or_else(|| format!("schema {id} was never written"))?;
        let (_, payload) =
            read_frame(&self.file, offset, file_len).map_err(|e| format!("schema {id}: {e}"))?;
        let (_, schema) = decode_schema(&payload).map_err(|e| format!("schema {id}: {e}"))?;
        let schema = Arc::new(schema);
        self.schemas.write().insert(id, schema.clone());
        Ok(schema)
    }

    fn load_chunk(&self, location: ChunkLocation) -> Result<Chunk, String> {
        let file_len = self.file.metadata().map_err(|e| e.to_string())?.len();
        let (header, payload) = read_frame(&self.file, location.offset, file_len)?;
        if header.kind != MessageKind::Chunk as u8 {
            return Err(format!(
                "expected a chunk message, found kind {}",
                header.kind
            ));
        }
        let schema = self.schema(location.schema_id, file_len)?;
        decode_chunk(&payload, schema).map_err(|e| e.to_string())
    }
}

impl ChunkSource for GrowingFile {
    fn load(&self, location: ChunkLocation) -> Result<Chunk, StoreError> {
        self.load_chunk(location).map_err(|reason| {
            StoreError::Load(format!(
                "{}: chunk at byte {}: {reason}",
                self.path.display(),
                location.offset
            ))
        })
    }
}
