//! Log already-encoded video (and other data) from Rust.
//!
//! ```no_run
//! use vidlog_sdk::{RecordingStream, TimeCell, VideoCodec, VideoStream};
//! # fn packets() -> Vec<(i64, Vec<u8>)> { vec![] }
//! let rec = RecordingStream::builder("my_app").save("run.vlog")?;
//! rec.log_static("camera/front", &VideoStream::new(VideoCodec::H264))?;
//! for (n, (pts, bytes)) in packets().into_iter().enumerate() {
//!     rec.set_time("time", TimeCell::from_duration_nanos(pts));
//!     rec.set_time("frame", TimeCell::from_sequence(n as i64));
//!     rec.log("camera/front", &VideoStream::from_sample(bytes))?;
//! }
//! rec.flush()?;
//! # Ok::<(), vidlog_sdk::SdkError>(())
//! ```

pub mod batcher;
pub mod net;
pub mod recording_stream;
pub mod sink;
pub mod spawn;

pub use batcher::BatcherConfig;
pub use net::{NetworkOptions, NetworkSink};
pub use recording_stream::{RecordingStream, RecordingStreamBuilder, SdkError};
pub use sink::{FileSink, MemorySink, Sink, SinkError};
pub use spawn::{SpawnOptions, Spawned};
pub use vidlog_types::{
    AsComponents, AssetVideo, Blob, EntityPath, TimeCell, TimeKind, TimePoint, VideoCodec,
    VideoFrameReference, VideoStream,
};
/// Presentation times (ns) of an MP4's video frames, for logging `VideoFrameReference`s
/// next to an `AssetVideo`.
pub use vidlog_video::mp4::read_frame_timestamps_nanos;
