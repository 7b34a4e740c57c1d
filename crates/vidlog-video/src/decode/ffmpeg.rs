//! The `ffmpeg` backend: the system's libavcodec through `ffmpeg-next` (cargo feature `ffmpeg`).
//!
//! H.264 (B-frames included), H.265, AV1 (libavcodec's first AV1 decoder, libdav1d on
//! Debian) and VP9. Tuned for low latency it runs one thread, so no frame of latency is added;
//! tuned for throughput it runs frame threads on every core (frames come out that many samples
//! late), for one-shot seeks. Packets carry the sample's PTS and the
//! frames come back with it. A frame libavcodec flags as decoded with errors is not returned;
//! the sample is reported corrupt instead. Draining (end of stream, live edge) ends the decoder's
//! run: it must restart at a keyframe afterwards.

use ffmpeg_next as ff;
use vidlog_types::VideoCodec;

use super::frame::SharedPlanes;
use super::{ColourSpace, DecodeError, Decoder, Frame, Matrix, Tuning};

const BACKEND: &str = "ffmpeg";

/// See the module documentation.
pub struct FfmpegDecoder {
    decoder: ff::decoder::Video,
    frame: ff::frame::Video,
    /// Set by a drain; cleared by `reset`.
    drained: bool,
    /// Frames presented before this are not handed out.
    floor: Option<i64>,
}

/// A decoded picture kept by reference (libavcodec's refcounted buffers): frames leave the
/// decoder without a copy.
struct AvPicture(ff::frame::Video);

// SAFETY: the frame holds its own references to buffers libavcodec never writes again once the
// picture is output; the value is only read.
unsafe impl Send for AvPicture {}
unsafe impl Sync for AvPicture {}

impl SharedPlanes for AvPicture {
    fn plane(&self, i: usize) -> &[u8] {
        self.0.data(i)
    }
    fn stride(&self, i: usize) -> usize {
        self.0.stride(i)
    }
}

// SAFETY: the codec context and frame are owned exclusively by this value and only used
// through `&mut self`; libavcodec contexts may move between threads.
unsafe impl Send for FfmpegDecoder {}

fn backend_error(message: String) -> DecodeError {
    DecodeError::Backend {
        backend: BACKEND,
        message,
    }
}

impl FfmpegDecoder {
    pub fn new(codec: VideoCodec, tuning: Tuning) -> Result<Self, DecodeError> {
        ff::init().map_err(|e| backend_error(format!("cannot initialise libavcodec: {e}")))?;
        ff::util::log::set_level(ff::util::log::Level::Error);
        let id = match codec {
            VideoCodec::H264 => ff::codec::Id::H264,
            VideoCodec::H265 => ff::codec::Id::HEVC,
            VideoCodec::Av1 => ff::codec::Id::AV1,
            VideoCodec::Vp9 => ff::codec::Id::VP9,
        };
        let found = ff::decoder::find(id).ok_or_else(|| DecodeError::Unsupported {
            backend: BACKEND,
            problem: format!("has no {codec} decoder in this libavcodec"),
        })?;
        let mut context = ff::codec::context::Context::new_with_codec(found);
        context.set_threading(match tuning {
            Tuning::LowLatency => ff::threading::Config {
                kind: ff::threading::Type::Slice,
                count: 1,
                ..Default::default()
            },
            Tuning::Throughput => ff::threading::Config {
                kind: ff::threading::Type::Frame,
                // Frames come out this many samples late: stay well inside the 16 a
                // player waits for.
                count: std::thread::available_parallelism().map_or(1, |n| n.get().min(8)),
                ..Default::default()
            },
        });
        let decoder = context
            .decoder()
            .video()
            .map_err(|e| backend_error(format!("cannot open the {codec} decoder: {e}")))?;
        Ok(FfmpegDecoder {
            decoder,
            frame: ff::frame::Video::empty(),
            drained: false,
            floor: None,
        })
    }

    /// Receives every ready frame into `out`; an error when one was decoded with errors.
    fn receive(&mut self, out: &mut Vec<Frame>) -> Result<(), DecodeError> {
        let mut damaged = None;
        loop {
            match self.decoder.receive_frame(&mut self.frame) {
                Ok(()) if self.below_floor() => {}
                Ok(()) => match self.convert() {
                    Ok(frame) => out.push(frame),
                    Err(e) => damaged = Some(e),
                },
                Err(ff::Error::Eof) => break,
                Err(ff::Error::Other { errno }) if errno == ff::util::error::EAGAIN => break,
                Err(e) => return Err(DecodeError::Corrupt(format!("libavcodec: {e}"))),
            }
        }
        damaged.map_or(Ok(()), Err)
    }

    /// Whether the frame just received is presented before the output floor (and is not
    /// damaged: a damaged frame is still reported).
    fn below_floor(&self) -> bool {
        let Some(floor) = self.floor else {
            return false;
        };
        // SAFETY: reading two plain fields of the frame libavcodec just filled.
        let (error_flags, flags) = unsafe {
            let raw = self.frame.as_ptr();
            ((*raw).decode_error_flags, (*raw).flags)
        };
        let damaged = error_flags != 0 || flags & ff::ffi::AV_FRAME_FLAG_CORRUPT != 0;
        let pts = self.frame.pts().or(self.frame.timestamp());
        !damaged && pts.is_some_and(|pts| pts < floor)
    }

    fn convert(&self) -> Result<Frame, DecodeError> {
        let f = &self.frame;
        // SAFETY: reading two plain fields of the frame libavcodec just filled.
        let (error_flags, flags) = unsafe {
            let raw = f.as_ptr();
            ((*raw).decode_error_flags, (*raw).flags)
        };
        if error_flags != 0 || flags & ff::ffi::AV_FRAME_FLAG_CORRUPT != 0 {
            return Err(DecodeError::Corrupt(
                "libavcodec decoded a frame with errors".into(),
            ));
        }
        let format = f.format();
        let full_range_format = match format {
            ff::format::Pixel::YUV420P => false,
            ff::format::Pixel::YUVJ420P => true,
            other => {
                return Err(DecodeError::Unsupported {
                    backend: BACKEND,
                    problem: format!(
                        "gave pixel format {other:?}; only 8-bit 4:2:0 frames are supported"
                    ),
                });
            }
        };
        let matrix = match f.color_space() {
            ff::color::Space::BT709 => Matrix::Bt709,
            ff::color::Space::BT2020NCL | ff::color::Space::BT2020CL => Matrix::Bt2020,
            _ => Matrix::Bt601,
        };
        let colour = ColourSpace {
            matrix,
            full_range: full_range_format || f.color_range() == ff::color::Range::JPEG,
        };
        let pts = f.pts().or(f.timestamp()).unwrap_or(i64::MIN);
        // A new reference to the same buffers: no pixel is copied.
        let mut kept = ff::frame::Video::empty();
        // SAFETY: both frames are valid; av_frame_ref only adds references.
        let status = unsafe { ff::ffi::av_frame_ref(kept.as_mut_ptr(), f.as_ptr()) };
        if status < 0 {
            return Err(backend_error(format!(
                "cannot keep a decoded frame (error {status})"
            )));
        }
        Frame::from_shared(
            pts,
            f.width(),
            f.height(),
            colour,
            std::sync::Arc::new(AvPicture(kept)),
        )
        .ok_or_else(|| backend_error("a frame's planes are smaller than its size".into()))
    }
}

impl Decoder for FfmpegDecoder {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn decode(&mut self, sample: &[u8], pts: i64, out: &mut Vec<Frame>) -> Result<(), DecodeError> {
        if self.drained {
            return Err(backend_error(
                "fed after a drain without a reset (a player bug)".into(),
            ));
        }
        let mut packet = ff::Packet::copy(sample);
        packet.set_pts(Some(pts));
        let sent = self.decoder.send_packet(&packet);
        let received = self.receive(out);
        sent.map_err(|e| DecodeError::Corrupt(format!("libavcodec rejected it: {e}")))?;
        received
    }

    fn flush(&mut self, out: &mut Vec<Frame>) -> Result<(), DecodeError> {
        if !self.drained {
            self.drained = true;
            // With frame threads a damaged packet's error may surface only here.
            self.decoder.send_eof().map_err(|e| match e {
                ff::Error::InvalidData => DecodeError::Corrupt(format!("libavcodec: {e}")),
                other => backend_error(format!("cannot drain: {other}")),
            })?;
        }
        self.receive(out)
    }

    fn continues_after_flush(&self) -> bool {
        false
    }

    fn reset(&mut self) -> Result<(), DecodeError> {
        self.decoder.flush();
        self.drained = false;
        Ok(())
    }

    fn set_output_floor(&mut self, floor: Option<i64>) {
        self.floor = floor;
    }
}
