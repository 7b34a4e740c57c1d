//! vidlog-video: everything codec-shaped, and nothing about recordings.
//!
//! - [`bitstream`]: splitting Annex B / length-prefixed streams into NAL units and access units,
//!   parameter-set and slice-header parsing, codec strings and decoder configuration records.
//! - [`probe`]: the cheap per-sample check run at ingest (keyframe? parameter sets?) and stream
//!   information for `vidlog info`.
//! - [`encode`]: the built-in H.264 encoder (openh264).
//! - [`decode`]: decoders (openh264; FFmpeg behind the `ffmpeg` feature) and `frame_at`.

pub mod bitstream;
pub mod decode;
pub mod encode;
pub mod mp4;
pub mod probe;
