//! Native decoding: the [`Decoder`] trait, its backends (one file each), and the
//! [`player::VideoPlayer`] that answers "the frame presented at time t".
//!
//! A decoder takes access units in decode order, each with its presentation time, and hands back
//! frames carrying those times (in presentation order, but callers key frames by PTS and need not
//! rely on it). Backends:
//! - [`openh264`](self::openh264) (always built): H.264.
//! - `ffmpeg` (cargo feature `ffmpeg`, the system's libavcodec): H.264 including B-frames
//!   bit-exact, H.265, AV1, VP9. Preferred when built in.
//!
//! This module knows nothing about recordings; [`player::SampleSource`] is how samples come in.

#[cfg(feature = "ffmpeg")]
pub mod ffmpeg;
pub mod frame;
pub mod openh264;
pub mod player;

use vidlog_types::VideoCodec;

pub use frame::{ColourSpace, Frame, JfifRows, Matrix};
pub use player::{PlayerStats, PresentedFrame, SampleSource, SampleStatus, VideoPlayer};

/// The Debian packages the `ffmpeg` feature builds against.
pub const FFMPEG_DEBIAN_PACKAGES: &str =
    "libavcodec-dev libavformat-dev libavutil-dev libswscale-dev pkg-config clang libclang-dev";

/// Why decoding failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// No backend built into this binary decodes the codec.
    #[error(
        "{codec} decoding needs the `ffmpeg` feature: cargo install vidlog --features ffmpeg \
         (Debian: apt-get install {FFMPEG_DEBIAN_PACKAGES})"
    )]
    NoBackend { codec: VideoCodec },
    /// The named backend is not built in or does not cover the codec.
    #[error("the {backend} decoder backend {problem}")]
    Unsupported {
        backend: &'static str,
        problem: String,
    },
    /// The sample could not be decoded (corrupt, truncated, or missing its references).
    #[error("{0}")]
    Corrupt(String),
    /// The backend failed in a way unrelated to the sample (initialisation, memory).
    #[error("{backend} decoder: {message}")]
    Backend {
        backend: &'static str,
        message: String,
    },
}

/// A video decoder. See the module documentation.
pub trait Decoder: Send {
    /// The backend's name, e.g. `openh264` or `ffmpeg`.
    fn backend(&self) -> &'static str;

    /// Feeds one access unit (decode order) presented at `pts`. Frames that become ready are
    /// pushed to `out`, also when the sample itself fails (an earlier frame may be released).
    fn decode(&mut self, sample: &[u8], pts: i64, out: &mut Vec<Frame>) -> Result<(), DecodeError>;

    /// Releases every frame the decoder holds back for reordering (end of stream, or the live
    /// edge where the next sample has not arrived yet).
    fn flush(&mut self, out: &mut Vec<Frame>) -> Result<(), DecodeError>;

    /// Whether decoding may go on after [`Decoder::flush`] without a [`Decoder::reset`]
    /// (references kept); otherwise the next sample after a flush must be a keyframe.
    fn continues_after_flush(&self) -> bool;

    /// Forgets everything; the next sample must be a keyframe.
    fn reset(&mut self) -> Result<(), DecodeError>;

    /// Frames presented before `floor` are still decoded (later frames may reference them)
    /// but not handed out: no copy out of the decoder's buffers, no conversion. `None` hands
    /// out every frame (the default). Callers that only want one frame set it to that frame's
    /// time; a backend may ignore it.
    fn set_output_floor(&mut self, floor: Option<i64>) {
        let _ = floor;
    }

    /// Gives back the storage of a frame the caller is done with, for the next frame to reuse
    /// (no allocation, no fresh pages). A backend may drop it.
    fn recycle(&mut self, buffer: Vec<u8>) {
        drop(buffer);
    }
}

/// Frame buffers given back by a decoder's caller, reused for the next frames.
#[derive(Default)]
pub(crate) struct BufferPool(Vec<Vec<u8>>);

impl BufferPool {
    /// Buffers kept at most.
    const KEEP: usize = 4;

    pub(crate) fn put(&mut self, buffer: Vec<u8>) {
        if self.0.len() < Self::KEEP {
            self.0.push(buffer);
        }
    }

    /// A buffer for the next frame: a recycled one, or a new empty one.
    pub(crate) fn take(&mut self) -> Vec<u8> {
        self.0.pop().unwrap_or_default()
    }
}

/// What a decoder is tuned for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Tuning {
    /// Each frame out as soon as its sample is in: one decoding thread (the viewer, live
    /// follow, stepping).
    #[default]
    LowLatency,
    /// Runs of frames as fast as the machine allows, frames coming out a few samples late:
    /// frame threads on every core where the backend has them (one-shot seeks, stills).
    Throughput,
}

/// A decoder backend this binary was built with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    OpenH264,
    #[cfg(feature = "ffmpeg")]
    Ffmpeg,
}

impl Backend {
    /// Every backend built in, in order of preference.
    pub fn all() -> Vec<Backend> {
        vec![
            #[cfg(feature = "ffmpeg")]
            Backend::Ffmpeg,
            Backend::OpenH264,
        ]
    }

    pub fn name(self) -> &'static str {
        match self {
            Backend::OpenH264 => "openh264",
            #[cfg(feature = "ffmpeg")]
            Backend::Ffmpeg => "ffmpeg",
        }
    }

    /// The codecs this backend decodes.
    pub fn codecs(self) -> &'static [VideoCodec] {
        match self {
            Backend::OpenH264 => &[VideoCodec::H264],
            #[cfg(feature = "ffmpeg")]
            Backend::Ffmpeg => &[
                VideoCodec::H264,
                VideoCodec::H265,
                VideoCodec::Av1,
                VideoCodec::Vp9,
            ],
        }
    }

    /// A short note for `vidlog info --decoders`.
    pub fn note(self) -> &'static str {
        match self {
            Backend::OpenH264 => {
                "built in (SIMD when nasm was installed at build time); bit-exact with FFmpeg \
                 without B-frames, close (not bit-exact) with them"
            }
            #[cfg(feature = "ffmpeg")]
            Backend::Ffmpeg => "system libavcodec; bit-exact with FFmpeg",
        }
    }

    /// Opens a decoder of this backend for `codec`, tuned for low latency.
    pub fn open(self, codec: VideoCodec) -> Result<Box<dyn Decoder>, DecodeError> {
        self.open_tuned(codec, Tuning::LowLatency)
    }

    /// Opens a decoder of this backend for `codec` with `tuning`.
    pub fn open_tuned(
        self,
        codec: VideoCodec,
        tuning: Tuning,
    ) -> Result<Box<dyn Decoder>, DecodeError> {
        if !self.codecs().contains(&codec) {
            return Err(DecodeError::Unsupported {
                backend: self.name(),
                problem: format!("does not decode {codec}"),
            });
        }
        match self {
            // OpenH264 decodes on the calling thread whatever the tuning.
            Backend::OpenH264 => {
                let _ = tuning;
                Ok(Box::new(self::openh264::OpenH264Decoder::new()?))
            }
            #[cfg(feature = "ffmpeg")]
            Backend::Ffmpeg => Ok(Box::new(self::ffmpeg::FfmpegDecoder::new(codec, tuning)?)),
        }
    }

    /// Looks a backend up by name (`openh264`, `ffmpeg`).
    pub fn by_name(name: &str) -> Result<Backend, DecodeError> {
        Backend::all()
            .into_iter()
            .find(|b| b.name() == name)
            .ok_or_else(|| DecodeError::Unsupported {
                backend: if name == "ffmpeg" {
                    "ffmpeg"
                } else {
                    "requested"
                },
                problem: if name == "ffmpeg" {
                    format!(
                        "is not built in: build with --features ffmpeg (Debian: apt-get \
                         install {FFMPEG_DEBIAN_PACKAGES})"
                    )
                } else {
                    format!("{name:?} does not exist; built in: {}", backend_names())
                },
            })
    }
}

fn backend_names() -> String {
    Backend::all()
        .iter()
        .map(|b| b.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The preferred backend for `codec`, or the error naming the feature to enable.
pub fn backend_for(codec: VideoCodec) -> Result<Backend, DecodeError> {
    Backend::all()
        .into_iter()
        .find(|b| b.codecs().contains(&codec))
        .ok_or(DecodeError::NoBackend { codec })
}

/// Opens the preferred decoder for `codec`.
pub fn open_decoder(codec: VideoCodec) -> Result<Box<dyn Decoder>, DecodeError> {
    backend_for(codec)?.open(codec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_codec_has_a_backend_or_names_the_feature() {
        for codec in VideoCodec::ALL {
            match backend_for(codec) {
                Ok(backend) => assert!(backend.codecs().contains(&codec)),
                Err(e) => {
                    let text = e.to_string();
                    assert!(text.contains(&codec.to_string()), "{text}");
                    assert!(text.contains("--features ffmpeg"), "{text}");
                    assert!(text.contains("libavcodec-dev"), "{text}");
                }
            }
        }
        assert_eq!(
            backend_for(VideoCodec::H264).map(|b| b.codecs().contains(&VideoCodec::H264)),
            Ok(true)
        );
    }

    #[cfg(not(feature = "ffmpeg"))]
    #[test]
    fn h265_without_ffmpeg_says_how_to_enable_it() {
        let err = open_decoder(VideoCodec::H265)
            .err()
            .expect("no H.265 backend");
        assert_eq!(
            err,
            DecodeError::NoBackend {
                codec: VideoCodec::H265
            }
        );
        assert!(Backend::by_name("ffmpeg").is_err());
    }
}
