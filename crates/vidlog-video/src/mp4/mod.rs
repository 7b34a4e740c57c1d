//! MP4 (ISO BMFF) export and import of logged video, without re-encoding.
//!
//! - [`Mp4Muxer`] ([`mux`], [`fragment`], [`boxes`]): samples in decode order (Annex B access
//!   units) plus every sample's presentation time known up front, out comes a plain MP4 (`ftyp`,
//!   streamed `mdat`, `moov` at the end) or a fragmented one (init segment, one `moof`+`mdat` per
//!   GOP). B-frames are handled with decode times, composition offsets and an edit list
//!   ([`timing`] owns those rules and the timescale choice, [`choose_timescale`]).
//! - [`Mp4Demuxer`] ([`demux`]): sample tables of plain and fragmented MP4 (edit list applied),
//!   samples back as Annex B; [`read_frame_timestamps_nanos`] for presentation times.
//! - [`SampleEntry`] ([`entry`]): the `avc1`, `hev1`, `vp09` or `av01` sample entry built from a
//!   keyframe, and each codec's sample payload in MP4.
//!
//! The boxes are written and read here (no MP4 crate): the set is small, and owning it gives
//! streaming `mdat` with a patched 64-bit size, `ctts` version 0 plus `elst`, `co64`, and GOP
//! fragments with timing decided before the first byte.
//!
//! It knows nothing about recordings: the caller brings samples and times.
//!
//! ```no_run
//! use std::io::BufWriter;
//! use vidlog_types::VideoCodec;
//! use vidlog_video::mp4::{Mp4Muxer, Mp4Options, SampleEntry};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // (Annex B access unit, is_keyframe) in decode order, and their presentation times in ns.
//! let samples: Vec<(Vec<u8>, bool)> = Vec::new();
//! let pts: Vec<i64> = Vec::new();
//! let entry = SampleEntry::from_keyframe(VideoCodec::H264, &samples[0].0)?;
//! let file = BufWriter::new(std::fs::File::create("out.mp4")?);
//! let mut muxer = Mp4Muxer::new(file, entry, &pts, Mp4Options::default())?;
//! for (bytes, is_keyframe) in &samples {
//!     muxer.push(bytes, *is_keyframe)?;
//! }
//! let summary = muxer.finish()?;
//! println!("{} samples, timescale {}", summary.samples, summary.timescale);
//! # Ok(()) }
//! ```

pub mod boxes;
pub mod demux;
pub mod entry;
pub mod fragment;
pub mod mux;
pub mod timing;

use vidlog_types::VideoCodec;

use crate::bitstream::h264::H264Error;
use crate::bitstream::nal::NalFramingError;

pub use demux::{DemuxSample, DemuxTrack, Mp4Demuxer, read_frame_timestamps_nanos};
pub use entry::SampleEntry;
pub use mux::Mp4Muxer;
pub use timing::choose_timescale;

/// How to write the MP4.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mp4Options {
    /// Fragmented MP4 (init segment + one `moof`/`mdat` per GOP) instead of a plain one.
    pub fragmented: bool,
    /// Track timescale; `None`: [`choose_timescale`] (exact for the logged times).
    pub timescale: Option<u32>,
    /// Presentation start (ns): samples presented before it are pre-roll (decoded, hidden by the
    /// edit list); presentation time 0 is this instant. `None`: the first presented frame.
    pub start: Option<i64>,
    /// Presentation end (ns, exclusive): samples presented at or after it stay in the media
    /// (earlier frames may reference them) but the edit list hides them. `None`: the end of the
    /// last frame.
    pub end: Option<i64>,
    /// Duration of the last frame (ns); `None`: the median frame interval.
    pub last_duration: Option<i64>,
}

/// What [`Mp4Muxer::finish`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mp4Summary {
    /// Samples written.
    pub samples: usize,
    /// Track timescale.
    pub timescale: u32,
    /// Presentation duration (ns), from the start to the end of the last frame.
    pub duration_ns: i64,
    /// Bytes written.
    pub bytes: u64,
    /// Movie fragments written (0 for plain MP4).
    pub fragments: usize,
}

/// Something went wrong writing or reading an MP4: what, where, and what to do.
#[derive(Debug, thiserror::Error)]
pub enum Mp4Error {
    /// The keyframe lacks the parameter sets a sample entry is built from.
    #[error(
        "the keyframe sample has no {}: an MP4 sample entry needs the SPS and PPS; \
         start the export at a keyframe that carries them",
        match (has_sps, has_pps) { (false, false) => "SPS and no PPS", (false, true) => "SPS", _ => "PPS" }
    )]
    NoParameterSets {
        /// Whether an SPS was found.
        has_sps: bool,
        /// Whether a PPS was found.
        has_pps: bool,
    },
    /// A parameter set does not parse.
    #[error("H.264 parameter sets: {0}")]
    H264(#[source] H264Error),
    /// The keyframe's AV1 sequence header or VP9 frame header does not give a sample entry.
    #[error("{codec} keyframe: {problem}")]
    Keyframe {
        /// The codec.
        codec: VideoCodec,
        /// What is wrong.
        problem: String,
    },
    /// A sample whose NAL framing is broken.
    #[error("sample {index}: {source}")]
    Sample {
        /// 0-based decode index.
        index: usize,
        /// What is wrong.
        source: NalFramingError,
    },
    /// A sample over 4 GiB.
    #[error("sample {index} is {size} bytes; an MP4 sample size is 32 bits")]
    SampleTooLarge {
        /// 0-based decode index.
        index: usize,
        /// Its size.
        size: usize,
    },
    /// Something does not fit its MP4 field.
    #[error("the {what} is too large for MP4")]
    TooLarge {
        /// What.
        what: &'static str,
    },
    /// No presentation times were given.
    #[error("no samples: an MP4 needs at least one (the pts list is empty)")]
    NoSamples,
    /// Two samples with the same presentation time.
    #[error(
        "samples {first} and {second} have the same presentation time ({pts} ns at timescale \
         {timescale}); every frame needs its own time"
    )]
    DuplicatePts {
        /// The earlier sample (decode index).
        first: usize,
        /// The later one.
        second: usize,
        /// The time (ns) of the later one.
        pts: i64,
        /// The timescale the clash happened in.
        timescale: u32,
    },
    /// A time difference too large for a 32-bit field.
    #[error(
        "sample {index}: {what} does not fit 32 bits at timescale {timescale}; \
         choose a smaller timescale"
    )]
    TimestampRange {
        /// 0-based decode index.
        index: usize,
        /// Which quantity.
        what: &'static str,
        /// The timescale.
        timescale: u32,
    },
    /// The requested start is after every frame.
    #[error("start {start} ns is after the last frame ({last_pts} ns): nothing to present")]
    StartAfterLastFrame {
        /// Requested start.
        start: i64,
        /// Last presentation time.
        last_pts: i64,
    },
    /// An option value that cannot work.
    #[error("invalid MP4 option: {0}")]
    InvalidOption(String),
    /// More or fewer samples than presentation times.
    #[error(
        "{pushed} samples pushed but {expected} presentation times were given to new(); \
         push exactly one sample per time"
    )]
    SampleCount {
        /// Samples pushed (including the rejected one).
        pushed: usize,
        /// Samples announced.
        expected: usize,
    },
    /// The first sample cannot start decoding.
    #[error(
        "sample 0 is not a keyframe: an MP4 must start at a keyframe; \
         start at the keyframe before the wanted range (use `start` to hide the pre-roll)"
    )]
    FirstSampleNotKeyframe,
    /// A plain MP4 was requested on a writer that cannot seek.
    #[error(
        "a plain MP4 needs a seekable writer (its mdat size is patched at the end): use \
         Mp4Muxer::new with a file, or set `fragmented: true` to stream"
    )]
    PlainNeedsSeek,
    /// Reading or writing failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A box whose content is wrong.
    #[error("{path} box at byte {offset}: {problem}; the MP4 is corrupt")]
    Malformed {
        /// Box path, e.g. `moov/trak/mdia/minf/stbl/stsz`.
        path: String,
        /// File offset of the box.
        offset: u64,
        /// What is wrong.
        problem: String,
    },
    /// A box extends past the end of the file (or its parent).
    #[error(
        "{path} box at byte {offset} claims {size} bytes but only {available} remain; \
         the MP4 is truncated or corrupt"
    )]
    Truncated {
        /// Box path.
        path: String,
        /// File offset of the box.
        offset: u64,
        /// Size the box claims.
        size: u64,
        /// Bytes actually available.
        available: u64,
    },
    /// A required box is missing.
    #[error("no {path} box{hint}")]
    MissingBox {
        /// What was looked for.
        path: String,
        /// A hint, starting with `: `, or empty.
        hint: &'static str,
    },
    /// The file has no video track.
    #[error("the MP4 has no video track")]
    NoVideoTrack,
    /// A track or sample index out of range.
    #[error("track {track} has no sample {index} (it has {count})")]
    NoSuchSample {
        /// Track index in [`Mp4Demuxer::tracks`].
        track: usize,
        /// Requested sample.
        index: usize,
        /// Samples in the track.
        count: usize,
    },
    /// A track index out of range.
    #[error("no track {track}: the MP4 has {count} video tracks")]
    NoSuchTrack {
        /// Requested track index.
        track: usize,
        /// Number of tracks.
        count: usize,
    },
    /// A sample's data is not what its sample entry says.
    #[error("track {track} sample {index} at byte {offset}: {problem}")]
    BadSampleData {
        /// Track index.
        track: usize,
        /// Sample index.
        index: usize,
        /// File offset of the sample.
        offset: u64,
        /// What is wrong.
        problem: String,
    },
}
