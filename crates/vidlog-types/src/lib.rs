//! vidlog's data model: entity paths, timelines and time cells, components and
//! archetypes, and chunks (rows of one entity stored as an Arrow `RecordBatch`).
//!
//! No I/O lives here: encoding to files and sockets is `vidlog-store`, bitstreams are
//! `vidlog-video`.

pub mod archetypes;
pub mod chunk;
pub mod codec;
pub mod component;
pub mod entity;
pub mod time;

pub use archetypes::{AssetVideo, VideoFrameReference, VideoStream};
pub use chunk::{BatchKey, Chunk, ChunkError, ChunkId, PendingRow, TimeColumn};
pub use codec::VideoCodec;
pub use component::{AsComponents, Blob, ComponentCell, ComponentName, ComponentValue};
pub use entity::{EntityPath, EntityPathError};
pub use time::{RowId, RowIdGenerator, TimeCell, TimeKind, TimePoint, Timeline, TimelineName};

pub use arrow_array;
pub use arrow_buffer;
pub use arrow_schema;
