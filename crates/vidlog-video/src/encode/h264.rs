//! The built-in H.264 encoder, on the `openh264` crate (Cisco OpenH264, built from source).
//!
//! Owns: configuring openh264 for vidlog's needs (one slice, no B-frames, no frame skipping,
//! an IDR every `keyframe_interval` frames, forced by us so the interval is exact), and making
//! every keyframe self-contained (SPS + PPS + IDR) so a viewer can join at any keyframe.
//! Output is Constrained Baseline.

use openh264::OpenH264API;
use openh264::encoder::{
    BitRate, Encoder as OpenH264Encoder, EncoderConfig, FrameRate, IntraFramePeriod,
    RateControlMode, SpsPpsStrategy, UsageType,
};
use openh264::formats::YUVSource;
use vidlog_types::VideoCodec;

use super::{EncodeError, EncodedSample, Encoder, RawFrame, rgb_to_i420};
use crate::bitstream::h264::NalType;
use crate::bitstream::nal::{AnnexBNalUnits, START_CODE_4};

/// Settings for [`H264Encoder`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct H264EncoderConfig {
    /// Frame width in pixels (even, at most 3840).
    pub width: u32,
    /// Frame height in pixels (even, at most 2160 for landscape).
    pub height: u32,
    /// Nominal frame rate (rate control uses it; timestamps are the caller's business).
    pub fps: f32,
    /// Target bitrate in bits per second.
    pub bitrate_bps: u32,
    /// An IDR keyframe every this many frames (1: every frame is a keyframe).
    pub keyframe_interval: u32,
}

impl Default for H264EncoderConfig {
    fn default() -> Self {
        Self {
            width: 640,
            height: 480,
            fps: 30.0,
            bitrate_bps: 2_000_000,
            keyframe_interval: 60,
        }
    }
}

/// Borrowed I420 planes handed to openh264 (its own wrapper panics on mismatched sizes; we
/// validate first and return errors instead).
struct I420Planes<'a> {
    width: usize,
    height: usize,
    y: &'a [u8],
    u: &'a [u8],
    v: &'a [u8],
    y_stride: usize,
    uv_stride: usize,
}

impl YUVSource for I420Planes<'_> {
    fn dimensions(&self) -> (usize, usize) {
        (self.width, self.height)
    }

    fn strides(&self) -> (usize, usize, usize) {
        (self.y_stride, self.uv_stride, self.uv_stride)
    }

    fn y(&self) -> &[u8] {
        self.y
    }

    fn u(&self) -> &[u8] {
        self.u
    }

    fn v(&self) -> &[u8] {
        self.v
    }
}

/// H.264 encoder: one frame in, one Annex B access unit out, no reordering.
pub struct H264Encoder {
    config: H264EncoderConfig,
    inner: OpenH264Encoder,
    frame_index: u64,
    /// SPS and PPS NAL units (Annex B, with start codes) from the first keyframe.
    parameter_sets: Vec<u8>,
}

impl std::fmt::Debug for H264Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H264Encoder")
            .field("config", &self.config)
            .field("frame_index", &self.frame_index)
            .finish()
    }
}

impl H264Encoder {
    /// Creates an encoder; fails on sizes or rates openh264 cannot take.
    pub fn new(config: H264EncoderConfig) -> Result<Self, EncodeError> {
        let H264EncoderConfig {
            width,
            height,
            fps,
            bitrate_bps,
            keyframe_interval,
        } = config;
        if width == 0 || height == 0 || !width.is_multiple_of(2) || !height.is_multiple_of(2) {
            return Err(EncodeError::InvalidConfig(format!(
                "width and height must be non-zero and even, got {width}x{height}"
            )));
        }
        if width.max(height) > 3840 || width.min(height) > 2160 {
            return Err(EncodeError::InvalidConfig(format!(
                "{width}x{height} is larger than openh264 supports (3840x2160)"
            )));
        }
        if !(fps.is_finite() && fps > 0.0 && fps <= 240.0) {
            return Err(EncodeError::InvalidConfig(format!(
                "fps must be in (0, 240], got {fps}"
            )));
        }
        if bitrate_bps == 0 || bitrate_bps > i32::MAX as u32 {
            return Err(EncodeError::InvalidConfig(format!(
                "bitrate_bps must be positive and below 2^31, got {bitrate_bps}"
            )));
        }
        if keyframe_interval == 0 {
            return Err(EncodeError::InvalidConfig(
                "keyframe_interval must be at least 1".into(),
            ));
        }
        let openh264_config = EncoderConfig::new()
            .bitrate(BitRate::from_bps(bitrate_bps))
            .max_frame_rate(FrameRate::from_hz(fps))
            .rate_control_mode(RateControlMode::Bitrate)
            .skip_frames(false)
            .usage_type(UsageType::CameraVideoRealTime)
            .sps_pps_strategy(SpsPpsStrategy::ConstantId)
            .intra_frame_period(IntraFramePeriod::from_num_frames(keyframe_interval))
            .scene_change_detect(false)
            .num_threads(1);
        let inner = OpenH264Encoder::with_api_config(OpenH264API::from_source(), openh264_config)
            .map_err(|e| EncodeError::Backend {
            frame_index: 0,
            backend: "openh264",
            message: e.to_string(),
        })?;
        Ok(Self {
            config,
            inner,
            frame_index: 0,
            parameter_sets: Vec::new(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &H264EncoderConfig {
        &self.config
    }

    /// Frames encoded so far.
    pub fn frames_encoded(&self) -> u64 {
        self.frame_index
    }

    /// Encodes packed RGB (`width * height * 3` bytes).
    pub fn encode_rgb(&mut self, rgb: &[u8]) -> Result<EncodedSample, EncodeError> {
        self.encode_packed(rgb, 3)
    }

    /// Encodes packed RGBA (`width * height * 4` bytes; alpha ignored).
    pub fn encode_rgba(&mut self, rgba: &[u8]) -> Result<EncodedSample, EncodeError> {
        self.encode_packed(rgba, 4)
    }

    fn encode_packed(
        &mut self,
        pixels: &[u8],
        bytes_per_pixel: usize,
    ) -> Result<EncodedSample, EncodeError> {
        let (w, h) = (self.config.width as usize, self.config.height as usize);
        let image = rgb_to_i420(pixels, w, h, bytes_per_pixel).map_err(|e| match e {
            EncodeError::FrameSize {
                actual, expected, ..
            } => EncodeError::FrameSize {
                frame_index: self.frame_index,
                what: if bytes_per_pixel == 3 {
                    "the RGB buffer"
                } else {
                    "the RGBA buffer"
                },
                actual,
                expected,
                width: self.config.width,
                height: self.config.height,
            },
            other => other,
        })?;
        self.encode_i420(&image.y, &image.u, &image.v, w, w / 2)
    }

    /// Encodes I420 planes with the given strides (`y_stride >= width`,
    /// `uv_stride >= width / 2`; planes at least `stride * rows` bytes).
    pub fn encode_i420(
        &mut self,
        y: &[u8],
        u: &[u8],
        v: &[u8],
        y_stride: usize,
        uv_stride: usize,
    ) -> Result<EncodedSample, EncodeError> {
        let (w, h) = (self.config.width as usize, self.config.height as usize);
        let frame_index = self.frame_index;
        for (what, stride, row) in [("luma", y_stride, w), ("chroma", uv_stride, w / 2)] {
            if stride < row {
                return Err(EncodeError::Stride {
                    frame_index,
                    what,
                    stride,
                    row,
                });
            }
        }
        for (what, plane, needed) in [
            ("the Y plane", y, y_stride * h),
            ("the U plane", u, uv_stride * (h / 2)),
            ("the V plane", v, uv_stride * (h / 2)),
        ] {
            if plane.len() < needed {
                return Err(EncodeError::FrameSize {
                    frame_index,
                    what,
                    actual: plane.len(),
                    expected: needed,
                    width: self.config.width,
                    height: self.config.height,
                });
            }
        }
        let planes = I420Planes {
            width: w,
            height: h,
            y: &y[..y_stride * h],
            u: &u[..uv_stride * (h / 2)],
            v: &v[..uv_stride * (h / 2)],
            y_stride,
            uv_stride,
        };
        let want_keyframe = frame_index.is_multiple_of(u64::from(self.config.keyframe_interval));
        if want_keyframe && frame_index > 0 {
            // openh264's intra period is not exact after rate-control decisions; force it.
            self.inner.force_intra_frame();
        }
        let bitstream = self
            .inner
            .encode(&planes)
            .map_err(|e| EncodeError::Backend {
                frame_index,
                backend: "openh264",
                message: e.to_string(),
            })?;
        let raw = bitstream.to_vec();
        self.frame_index += 1;
        self.finish_sample(raw, frame_index)
    }

    /// Checks the encoder's output and makes keyframes self-contained.
    fn finish_sample(
        &mut self,
        raw: Vec<u8>,
        frame_index: u64,
    ) -> Result<EncodedSample, EncodeError> {
        let mut has_idr = false;
        let mut has_slice = false;
        let mut has_sps = false;
        let mut sps_pps = Vec::new();
        for nal in AnnexBNalUnits::new(&raw) {
            let nal = nal.map_err(|e| EncodeError::Backend {
                frame_index,
                backend: "openh264",
                message: format!("output is not Annex B: {e}"),
            })?;
            let nal_type = NalType(nal.bytes[0] & 0x1F);
            has_slice |= nal_type.is_vcl();
            has_idr |= nal_type == NalType::IDR;
            if nal_type == NalType::SPS || nal_type == NalType::PPS {
                has_sps |= nal_type == NalType::SPS;
                sps_pps.extend_from_slice(&START_CODE_4);
                sps_pps.extend_from_slice(nal.bytes);
            }
        }
        if !has_slice {
            return Err(EncodeError::NoOutput { frame_index });
        }
        let data = if has_idr && !has_sps {
            if self.parameter_sets.is_empty() {
                return Err(EncodeError::Backend {
                    frame_index,
                    backend: "openh264",
                    message: "an IDR frame came without SPS/PPS and none were seen before".into(),
                });
            }
            let mut data = self.parameter_sets.clone();
            data.extend_from_slice(&raw);
            data
        } else {
            if has_sps {
                self.parameter_sets = sps_pps;
            }
            raw
        };
        Ok(EncodedSample {
            data,
            is_keyframe: has_idr,
        })
    }
}

impl Encoder for H264Encoder {
    fn codec(&self) -> VideoCodec {
        VideoCodec::H264
    }

    fn encode(&mut self, frame: RawFrame<'_>) -> Result<EncodedSample, EncodeError> {
        match frame {
            RawFrame::Rgb8(rgb) => self.encode_rgb(rgb),
            RawFrame::Rgba8(rgba) => self.encode_rgba(rgba),
            RawFrame::I420 {
                y,
                u,
                v,
                y_stride,
                uv_stride,
            } => self.encode_i420(y, u, v, y_stride, uv_stride),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bitstream::h264::split_access_units;

    fn gradient(width: usize, height: usize, t: usize) -> Vec<u8> {
        let mut rgb = Vec::with_capacity(width * height * 3);
        for y in 0..height {
            for x in 0..width {
                rgb.push(((x + 3 * t) % 256) as u8);
                rgb.push(((y + 2 * t) % 256) as u8);
                rgb.push(((x + y + t) % 256) as u8);
            }
        }
        rgb
    }

    #[test]
    fn rejects_bad_configs_and_frames() {
        let bad = H264EncoderConfig {
            width: 321,
            ..Default::default()
        };
        assert!(matches!(
            H264Encoder::new(bad),
            Err(EncodeError::InvalidConfig(_))
        ));
        let mut enc = H264Encoder::new(H264EncoderConfig {
            width: 64,
            height: 64,
            ..Default::default()
        })
        .expect("encoder");
        let err = enc.encode_rgb(&[0; 10]).unwrap_err();
        assert!(err.to_string().contains("expected at least 12288"), "{err}");
        let err = enc
            .encode_i420(&[0; 4096], &[0; 1024], &[0; 1024], 32, 32)
            .unwrap_err();
        assert!(matches!(err, EncodeError::Stride { .. }), "{err}");
    }

    #[test]
    fn keyframes_every_interval_with_parameter_sets() {
        let config = H264EncoderConfig {
            width: 320,
            height: 240,
            fps: 30.0,
            bitrate_bps: 500_000,
            keyframe_interval: 20,
        };
        let mut enc = H264Encoder::new(config).expect("encoder");
        let mut stream = Vec::new();
        for t in 0..60 {
            let sample = enc.encode_rgb(&gradient(320, 240, t)).expect("encodes");
            assert_eq!(sample.is_keyframe, t % 20 == 0, "frame {t}");
            let probe = crate::probe::probe_sample(VideoCodec::H264, &sample.data).expect("probes");
            assert_eq!(probe.is_keyframe, sample.is_keyframe, "frame {t}");
            assert_eq!(
                probe.parameter_sets.is_some(),
                sample.is_keyframe,
                "frame {t}"
            );
            stream.extend_from_slice(&sample.data);
        }
        let aus = split_access_units(&stream).expect("splits");
        assert_eq!(aus.len(), 60);
        let keyframes: Vec<usize> = aus
            .iter()
            .enumerate()
            .filter(|(_, au)| au.is_keyframe)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(keyframes, vec![0, 20, 40]);
        for i in keyframes {
            let sps = aus[i].sps.as_ref().expect("SPS on every keyframe");
            assert_eq!((sps.cropped_width, sps.cropped_height), (320, 240));
        }
    }
}
