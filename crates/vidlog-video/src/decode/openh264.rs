//! The default H.264 backend: OpenH264, built from the source bundled in its crate.
//!
//! Runs with no flush after each access unit (flushing every call breaks B-frame streams), and
//! passes a tag through OpenH264's input timestamp so each output picture finds the PTS of the
//! sample it came from, whatever order OpenH264 releases pictures in. Error concealment is off:
//! a sample OpenH264 cannot decode yields no picture and an error, and later pictures that
//! depend on it yield none until the next IDR. Colour signalling comes from the SPS VUI.
//!
//! Bit-exact with FFmpeg on streams without B-frames; with B-frames close but not bit-exact.

use std::collections::BTreeMap;
use std::ptr::{addr_of_mut, null_mut};

use openh264::OpenH264API;
use openh264::decoder::{Decoder as RawDecoder, DecoderConfig, Flush};
use openh264_sys2::{
    DECODER_OPTION_NUM_OF_FRAMES_REMAINING_IN_BUFFER, SBufferInfo, dsErrorFree, dsFramePending,
};

use super::{BufferPool, ColourSpace, DecodeError, Decoder, Frame, Matrix};
use crate::bitstream::h264::{NalType, parse_sps};
use crate::bitstream::nal::AnnexBNalUnits;

const BACKEND: &str = "openh264";

/// Tags older than this many samples behind the newest output are forgotten (their pictures
/// were dropped by the decoder).
const MAX_PENDING_TAGS: u64 = 64;

/// See the module documentation.
pub struct OpenH264Decoder {
    raw: RawDecoder,
    /// Input tag -> PTS, for samples whose picture has not come out yet.
    pending: BTreeMap<u64, i64>,
    next_tag: u64,
    colour: ColourSpace,
    /// Pictures presented before this are not copied out.
    floor: Option<i64>,
    pool: BufferPool,
}

impl OpenH264Decoder {
    pub fn new() -> Result<Self, DecodeError> {
        Ok(OpenH264Decoder {
            raw: open_raw()?,
            pending: BTreeMap::new(),
            next_tag: 1,
            colour: ColourSpace::default(),
            floor: None,
            pool: BufferPool::default(),
        })
    }

    /// Takes the colour signalling from an SPS in `sample`, if it carries one before its slices.
    fn update_colour(&mut self, sample: &[u8]) {
        for nal in AnnexBNalUnits::new(sample) {
            let Ok(nal) = nal else { return };
            let Some(&header) = nal.bytes.first() else {
                continue;
            };
            let nal_type = NalType(header & 0x1F);
            if nal_type == NalType::SPS {
                if let Ok(sps) = parse_sps(nal.bytes) {
                    self.colour = match sps.colour {
                        Some(c) => ColourSpace {
                            matrix: Matrix::from_code(c.matrix_coefficients.unwrap_or(2)),
                            full_range: c.full_range,
                        },
                        None => ColourSpace::default(),
                    };
                }
            } else if nal_type.is_vcl() {
                return;
            }
        }
    }

    /// Copies the picture OpenH264 released (if any) into `out`.
    fn take_picture(&mut self, dst: &[*mut u8; 3], info: &SBufferInfo, out: &mut Vec<Frame>) {
        if info.iBufferStatus != 1 || dst.iter().any(|p| p.is_null()) {
            return;
        }
        let tag = info.uiOutYuvTimeStamp;
        let Some(pts) = self.pending.remove(&tag) else {
            return;
        };
        self.pending
            .retain(|&t, _| t + MAX_PENDING_TAGS > tag || t > tag);
        if self.floor.is_some_and(|floor| pts < floor) {
            return;
        }
        // SAFETY: OpenH264 reported a ready picture with non-null planes; the system buffer
        // describes their size and strides, valid until the next call into the decoder.
        let buffer = unsafe { info.UsrData.sSystemBuffer };
        let (Ok(width), Ok(height), Ok(ys), Ok(cs)) = (
            u32::try_from(buffer.iWidth),
            u32::try_from(buffer.iHeight),
            usize::try_from(buffer.iStride[0]),
            usize::try_from(buffer.iStride[1]),
        ) else {
            return;
        };
        let (_, ch) = Frame::chroma_size(width, height);
        let (y_len, c_len) = (ys * height as usize, cs * ch as usize);
        // SAFETY: as above; each plane holds `stride * rows` bytes.
        let planes = unsafe {
            [
                std::slice::from_raw_parts(dst[0], y_len),
                std::slice::from_raw_parts(dst[1], c_len),
                std::slice::from_raw_parts(dst[2], c_len),
            ]
        };
        let buffer = self.pool.take();
        if let Some(frame) = Frame::from_planes_in(
            buffer,
            pts,
            width,
            height,
            self.colour,
            planes,
            [ys, cs, cs],
        ) {
            out.push(frame);
        }
    }

    fn frames_held(&mut self) -> Result<usize, DecodeError> {
        let mut n: i32 = 0;
        // SAFETY: the option takes a pointer to an int, which outlives the call.
        let status = unsafe {
            self.raw.raw_api().get_option(
                DECODER_OPTION_NUM_OF_FRAMES_REMAINING_IN_BUFFER,
                addr_of_mut!(n).cast(),
            )
        };
        if status != 0 {
            return Err(backend_error(format!(
                "cannot query held frames (status {status})"
            )));
        }
        Ok(usize::try_from(n).unwrap_or(0))
    }
}

fn open_raw() -> Result<RawDecoder, DecodeError> {
    let config = DecoderConfig::new().flush_after_decode(Flush::NoFlush);
    RawDecoder::with_api_config(OpenH264API::from_source(), config)
        .map_err(|e| backend_error(format!("cannot start: {e}")))
}

fn backend_error(message: String) -> DecodeError {
    DecodeError::Backend {
        backend: BACKEND,
        message,
    }
}

impl Decoder for OpenH264Decoder {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn decode(&mut self, sample: &[u8], pts: i64, out: &mut Vec<Frame>) -> Result<(), DecodeError> {
        let len = i32::try_from(sample.len())
            .map_err(|_| DecodeError::Corrupt(format!("sample of {} bytes", sample.len())))?;
        self.update_colour(sample);
        let tag = self.next_tag;
        self.next_tag += 1;
        self.pending.insert(tag, pts);
        let mut dst = [null_mut::<u8>(); 3];
        let mut info = SBufferInfo {
            uiInBsTimeStamp: tag,
            ..SBufferInfo::default()
        };
        // SAFETY: `sample` outlives the call; `dst` and `info` are valid out-parameters.
        let state = unsafe {
            self.raw.raw_api().decode_frame_no_delay(
                sample.as_ptr(),
                len,
                dst.as_mut_ptr(),
                &raw mut info,
            )
        };
        self.take_picture(&dst, &info, out);
        if state == dsErrorFree || state == dsFramePending {
            Ok(())
        } else {
            self.pending.remove(&tag);
            Err(DecodeError::Corrupt(format!(
                "OpenH264 could not decode it (state {state:#x}: {})",
                describe_state(state)
            )))
        }
    }

    fn flush(&mut self, out: &mut Vec<Frame>) -> Result<(), DecodeError> {
        for _ in 0..self.frames_held()? {
            let mut dst = [null_mut::<u8>(); 3];
            let mut info = SBufferInfo::default();
            // SAFETY: valid out-parameters.
            unsafe {
                self.raw
                    .raw_api()
                    .flush_frame(dst.as_mut_ptr(), &raw mut info);
            }
            self.take_picture(&dst, &info, out);
        }
        Ok(())
    }

    fn continues_after_flush(&self) -> bool {
        true
    }

    fn reset(&mut self) -> Result<(), DecodeError> {
        self.raw = open_raw()?;
        self.pending.clear();
        self.colour = ColourSpace::default();
        Ok(())
    }

    fn set_output_floor(&mut self, floor: Option<i64>) {
        self.floor = floor;
    }

    fn recycle(&mut self, buffer: Vec<u8>) {
        self.pool.put(buffer);
    }
}

fn describe_state(state: i32) -> &'static str {
    use openh264_sys2::{
        dsBitstreamError, dsDataErrorConcealed, dsDepLayerLost, dsNoParamSets, dsRefLost,
    };
    if state & dsNoParamSets != 0 {
        "no SPS/PPS before this slice"
    } else if state & dsBitstreamError != 0 {
        "bitstream error"
    } else if state & (dsRefLost | dsDepLayerLost) != 0 {
        "a reference picture is missing"
    } else if state & dsDataErrorConcealed != 0 {
        "damaged data"
    } else {
        "decoder error"
    }
}
