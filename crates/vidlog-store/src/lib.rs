//! vidlog's storage: the message encoding shared by files and sockets, the recording
//! file format (see docs/FORMAT.md), and the chunk store with its indexes and queries.

mod chunk_layout;
pub mod codec;
pub mod export;
pub mod file;
pub mod frame;
pub mod summary;
mod wire;

pub use codec::RecordingInfo;
pub use file::{FileWriter, GrowingFile, RecordingFile};
pub use summary::ChunkSummary;
pub mod store;

pub use store::{ChunkStore, DecodePlan, Diagnostic, MemoryMeter, StoreError, VideoIndex};
pub mod recording;

pub use recording::Recording;
