//! Where chunks go once batched: the [`Sink`] trait and the file and memory sinks.
//! The network sink of the live server plugs into the same trait.

use std::path::Path;
use std::sync::Arc;

use parking_lot::Mutex;
use vidlog_store::{ChunkStore, FileWriter, RecordingInfo};
use vidlog_types::Chunk;

/// Why a sink could not take a chunk.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct SinkError(pub String);

/// Receives chunks in the order they were batched. Called from one thread at a time.
pub trait Sink: Send + Sync {
    fn send(&self, chunk: Arc<Chunk>) -> Result<(), SinkError>;
    /// Makes everything sent so far visible to readers (written to the kernel / peer).
    fn flush(&self) -> Result<(), SinkError> {
        Ok(())
    }
    /// Called once when the recording stream closes.
    fn close(&self) -> Result<(), SinkError> {
        self.flush()
    }
}

/// Writes a recording file; the footer is written on close.
pub struct FileSink {
    writer: Mutex<FileWriter>,
}

impl FileSink {
    pub fn create(path: impl AsRef<Path>, info: &RecordingInfo) -> Result<Self, SinkError> {
        let writer = FileWriter::create(path, info).map_err(|e| SinkError(e.to_string()))?;
        Ok(FileSink {
            writer: Mutex::new(writer),
        })
    }
}

impl Sink for FileSink {
    fn send(&self, chunk: Arc<Chunk>) -> Result<(), SinkError> {
        self.writer
            .lock()
            .write_chunk(&chunk)
            .map(|_| ())
            .map_err(|e| SinkError(e.to_string()))
    }
    fn close(&self) -> Result<(), SinkError> {
        self.writer
            .lock()
            .finish()
            .map_err(|e| SinkError(e.to_string()))
    }
}

/// Keeps chunks in memory, for tests and in-process queries.
#[derive(Default, Clone)]
pub struct MemorySink {
    chunks: Arc<Mutex<Vec<Arc<Chunk>>>>,
}

impl MemorySink {
    pub fn new() -> Self {
        MemorySink::default()
    }
    /// Chunks received so far.
    pub fn chunks(&self) -> Vec<Arc<Chunk>> {
        self.chunks.lock().clone()
    }
    /// A store of everything received so far.
    pub fn store(&self) -> ChunkStore {
        let mut store = ChunkStore::new();
        for chunk in self.chunks.lock().iter() {
            store.insert(chunk.clone());
        }
        store
    }
}

impl Sink for MemorySink {
    fn send(&self, chunk: Arc<Chunk>) -> Result<(), SinkError> {
        self.chunks.lock().push(chunk);
        Ok(())
    }
}
