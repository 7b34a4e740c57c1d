//! MCAP interop for vidlog: video samples to and from MCAP files.
//!
//! This crate owns the mapping between already-encoded video samples (one access unit or
//! temporal unit each, with a presentation time) and MCAP messages:
//!
//! - **Export** ([`McapVideoWriter`]): one `foxglove.CompressedVideo` protobuf channel per
//!   entity, topic `/` + entity path, the schema embedded as a `FileDescriptorSet`, chunks
//!   uncompressed (video already is), summary and indexes written by the `mcap` crate.
//! - **Import** ([`McapVideoReader`]): lists the video channels of a file
//!   (`foxglove.CompressedVideo` in protobuf; ROS 1/2 `sensor_msgs/CompressedImage` and
//!   `foxglove_msgs/CompressedVideo`), skips and counts the rest, and yields samples in log-time
//!   order with their presentation times.
//!
//! It knows nothing of recordings, stores or timelines beyond nanoseconds: the `vidlog` binary
//! maps entities and timelines onto this API. The protobuf encoding is our own ([`proto`]), so
//! no code generator or `protoc` is needed.
//!
//! ```
//! use std::io::Cursor;
//! use vidlog_mcap::{McapVideoReader, McapVideoWriter};
//! use vidlog_types::VideoCodec;
//!
//! let mut writer = McapVideoWriter::new(Cursor::new(Vec::new()))?;
//! let front = writer.add_video_channel("camera/front", VideoCodec::H264)?;
//! writer.write_sample(front, 0, 0, &[0, 0, 0, 1, 0x65, 0x88])?;
//! let bytes = writer.finish()?.into_inner();
//!
//! let reader = McapVideoReader::open(&bytes)?;
//! assert_eq!(reader.video_channels()[0].topic, "/camera/front");
//! for message in reader.messages()? {
//!     assert_eq!(message?.data, [0, 0, 0, 1, 0x65, 0x88]);
//! }
//! # Ok::<(), vidlog_mcap::McapVideoError>(())
//! ```

pub mod error;
pub mod proto;
pub mod reader;
pub mod ros;
pub mod schema;
pub mod video;
pub mod writer;

pub use error::McapVideoError;
pub use reader::{
    McapVideoReader, SkippedChannel, VideoChannel, VideoMessage, VideoMessageSchema, VideoMessages,
    codec_for_format,
};
pub use ros::RosVideoMessage;
pub use writer::McapVideoWriter;

/// An MCAP channel id, as handed out by [`McapVideoWriter::add_video_channel`] or listed by
/// [`McapVideoReader::video_channels`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ChannelId(pub u16);

impl std::fmt::Display for ChannelId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}
