//! A recording opened for reading: its info, the chunk store indexed from the file's
//! footer (or from a scan when the footer is missing), and chunks loaded on demand.

use std::path::Path;
use std::sync::Arc;

use vidlog_types::{Chunk, VideoStream};

use crate::codec::RecordingInfo;
use crate::file::{OpenError, RecordingFile, RecoveryReport};
use crate::store::{ChunkSource, ChunkStore, StoreError};
use crate::summary::ChunkLocation;

/// See the module documentation.
pub struct Recording {
    pub info: Option<RecordingInfo>,
    pub store: ChunkStore,
    pub file: Arc<RecordingFile>,
}

impl ChunkSource for RecordingFile {
    fn load(&self, location: ChunkLocation) -> Result<Chunk, StoreError> {
        self.load_chunk(location)
            .map_err(|e| StoreError::Load(e.to_string()))
    }
}

impl Recording {
    /// Opens `path`; reads only the footer and schemas when the file has a footer.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, OpenError> {
        let mut file = RecordingFile::open(path)?;
        let summaries = std::mem::take(&mut file.summaries);
        let file = Arc::new(file);
        let mut store = ChunkStore::with_source(file.clone());
        for summary in summaries {
            // Static codecs are tiny: load them so video entities know their codec.
            if summary.is_static() && summary.has_component(VideoStream::CODEC) {
                // A damaged codec chunk must not stop the file from opening: its samples'
                // keyframes were settled when written; the chunk fails again when queried.
                let chunk = summary.location.and_then(|l| file.load_chunk(l).ok());
                if let Some(chunk) = chunk.filter(|c| c.row_ids() == summary.row_ids.as_slice()) {
                    if let Some(codec) = chunk.codec() {
                        store.set_codec(&summary.entity, codec);
                    }
                    store.insert_summary(summary, Some(Arc::new(chunk)));
                    continue;
                }
            }
            store.insert_summary(summary, None);
        }
        Ok(Recording {
            info: file.info.clone(),
            store,
            file,
        })
    }

    /// Set when the file had no usable footer and was scanned.
    pub fn recovery(&self) -> Option<&RecoveryReport> {
        self.file.recovery.as_ref()
    }
}
