//! The track's sample entry (`stsd`) per codec, built from a keyframe sample, and the form a
//! logged sample takes inside an MP4.
//!
//! - H.264 (`avc1` + `avcC`): parameter sets from the keyframe's SPS/PPS; samples go from
//!   Annex B to 4-byte NAL lengths.
//! - H.265 (`hev1` + `hvcC`): VPS/SPS/PPS from the keyframe (arrays marked incomplete:
//!   samples keep their in-band parameter sets, as `hev1` allows); samples go from Annex B
//!   to 4-byte NAL lengths.
//! - VP9 (`vp09` + `vpcC` version 1): profile, bit depth, chroma and range from the keyframe's
//!   header, the level derived from the frame size at 30 fps (VP9 signals none); samples (frames
//!   or superframes) as logged.
//! - AV1 (`av01` + `av1C`): the fields and the sequence header OBU itself from the keyframe's
//!   temporal unit; samples as logged minus temporal delimiter OBUs, which MP4 leaves out.

use std::borrow::Cow;

use vidlog_types::VideoCodec;

use super::Mp4Error;
use crate::bitstream::av1;
use crate::bitstream::h264::{self, NalType};
use crate::bitstream::h265;
use crate::bitstream::nal::{annexb_to_length_prefixed, split_annexb};
use crate::bitstream::vp9;

/// How a track's samples are described (`stsd` entry): codec, configuration record, size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SampleEntry {
    /// H.264 with parameter sets in an `avcC` record (samples may repeat them in-band).
    Avc1 {
        /// The `AVCDecoderConfigurationRecord` (avcC body), 4-byte NAL lengths.
        avcc: Vec<u8>,
        /// Displayed width (after SPS cropping).
        width: u16,
        /// Displayed height (after SPS cropping).
        height: u16,
    },
    /// H.265 with parameter sets in an `hvcC` record (samples may repeat them in-band).
    Hev1 {
        /// The `HEVCDecoderConfigurationRecord` (hvcC body), 4-byte NAL lengths.
        hvcc: Vec<u8>,
        /// Displayed size (after the SPS conformance window).
        width: u16,
        height: u16,
    },
    /// VP9 with its `VPCodecConfigurationRecord`.
    Vp09 {
        /// The `vpcC` body after its version and flags.
        vpcc: Vec<u8>,
        width: u16,
        height: u16,
    },
    /// AV1 with its `AV1CodecConfigurationRecord` (which holds the sequence header OBU).
    Av01 {
        /// The `av1C` body.
        av1c: Vec<u8>,
        width: u16,
        height: u16,
    },
}

fn dimension(v: u32) -> Result<u16, Mp4Error> {
    u16::try_from(v).map_err(|_| Mp4Error::TooLarge {
        what: "picture size (over 65535 pixels)",
    })
}

impl SampleEntry {
    /// Builds the entry from a keyframe sample (see the module documentation).
    pub fn from_keyframe(codec: VideoCodec, keyframe_sample: &[u8]) -> Result<Self, Mp4Error> {
        match codec {
            VideoCodec::H264 => Self::avc1_from_keyframe(keyframe_sample),
            VideoCodec::H265 => Self::hev1_from_keyframe(keyframe_sample),
            VideoCodec::Vp9 => Self::vp09_from_keyframe(keyframe_sample),
            VideoCodec::Av1 => Self::av01_from_keyframe(keyframe_sample),
        }
    }

    fn hev1_from_keyframe(sample: &[u8]) -> Result<Self, Mp4Error> {
        let bad = |problem: String| Mp4Error::Keyframe {
            codec: VideoCodec::H265,
            problem,
        };
        let nals = split_annexb(sample).map_err(|source| Mp4Error::Sample { index: 0, source })?;
        let mut vps: Vec<&[u8]> = Vec::new();
        let mut sps: Vec<&[u8]> = Vec::new();
        let mut pps: Vec<&[u8]> = Vec::new();
        for nal in &nals {
            let list = match h265::nal_type(nal.bytes) {
                Some(h265::NAL_VPS) => &mut vps,
                Some(h265::NAL_SPS) => &mut sps,
                Some(h265::NAL_PPS) => &mut pps,
                _ => continue,
            };
            if !list.contains(&nal.bytes) {
                list.push(nal.bytes);
            }
        }
        if vps.is_empty() || sps.is_empty() || pps.is_empty() {
            return Err(bad(
                "the first sample lacks its VPS, SPS or PPS: start the export at a keyframe \
                 that carries them"
                    .into(),
            ));
        }
        let info = h265::parse_sps(sps[0]).map_err(|e| bad(e.to_string()))?;
        let hvcc = h265::hvcc_record(&vps, &sps, &pps).map_err(|e| bad(e.to_string()))?;
        Ok(SampleEntry::Hev1 {
            hvcc,
            width: dimension(info.width)?,
            height: dimension(info.height)?,
        })
    }

    fn avc1_from_keyframe(sample: &[u8]) -> Result<Self, Mp4Error> {
        let nals = split_annexb(sample).map_err(|source| Mp4Error::Sample { index: 0, source })?;
        let mut sps: Vec<&[u8]> = Vec::new();
        let mut pps: Vec<&[u8]> = Vec::new();
        for nal in &nals {
            let list = match h264::nal_header(nal.bytes).map(|(_, t)| t) {
                Ok(NalType::SPS) => &mut sps,
                Ok(NalType::PPS) => &mut pps,
                _ => continue,
            };
            if !list.contains(&nal.bytes) {
                list.push(nal.bytes);
            }
        }
        if sps.is_empty() || pps.is_empty() {
            return Err(Mp4Error::NoParameterSets {
                has_sps: !sps.is_empty(),
                has_pps: !pps.is_empty(),
            });
        }
        let info = h264::parse_sps(sps[0]).map_err(Mp4Error::H264)?;
        let avcc = h264::avcc_record(&sps, &pps).map_err(Mp4Error::H264)?;
        Ok(SampleEntry::Avc1 {
            avcc,
            width: dimension(info.cropped_width)?,
            height: dimension(info.cropped_height)?,
        })
    }

    fn vp09_from_keyframe(sample: &[u8]) -> Result<Self, Mp4Error> {
        let bad = |problem: String| Mp4Error::Keyframe {
            codec: VideoCodec::Vp9,
            problem,
        };
        let header = vp9::parse_sample(sample).map_err(|e| bad(e.to_string()))?;
        let Some(k) = header.keyframe else {
            return Err(bad(
                "the first sample is not a keyframe: start the export at one".into(),
            ));
        };
        let vpcc = vec![
            header.profile,
            k.level(30.0),
            (k.bit_depth << 4) | (k.chroma_subsampling_code() << 1) | u8::from(k.full_range),
            2, // colour primaries: VP9 does not signal them
            2, // transfer characteristics: idem
            k.matrix_coefficients(),
            0, // codecInitializationDataSize (16 bits): none for VP9
            0,
        ];
        Ok(SampleEntry::Vp09 {
            vpcc,
            width: dimension(k.width)?,
            height: dimension(k.height)?,
        })
    }

    fn av01_from_keyframe(sample: &[u8]) -> Result<Self, Mp4Error> {
        let bad = |problem: String| Mp4Error::Keyframe {
            codec: VideoCodec::Av1,
            problem,
        };
        let obu = av1_obus(sample)
            .map_err(bad)?
            .into_iter()
            .find(|o| o.kind == av1::OBU_SEQUENCE_HEADER)
            .ok_or_else(|| bad("the first sample carries no sequence header OBU".into()))?;
        let seq = av1::parse_sequence_header_obu(obu.bytes).map_err(|e| bad(e.to_string()))?;
        let (sx, sy) = seq.subsampling;
        let av1c = [
            0x81, // marker 1, version 1
            (seq.seq_profile << 5) | (seq.seq_level_idx & 0x1F),
            (u8::from(seq.high_tier) << 7)
                | (u8::from(seq.bit_depth > 8) << 6)
                | (u8::from(seq.bit_depth == 12) << 5)
                | (u8::from(seq.monochrome) << 4)
                | (u8::from(sx) << 3)
                | (u8::from(sy) << 2)
                | (seq.chroma_sample_position & 3),
            0, // no initial_presentation_delay
        ]
        .into_iter()
        .chain(obu.bytes.iter().copied())
        .collect();
        Ok(SampleEntry::Av01 {
            av1c,
            width: dimension(seq.max_frame_width)?,
            height: dimension(seq.max_frame_height)?,
        })
    }

    /// Sample `index` as stored in the MP4 (see the module documentation).
    pub fn sample_data<'a>(
        &self,
        index: usize,
        sample: &'a [u8],
    ) -> Result<Cow<'a, [u8]>, Mp4Error> {
        match self {
            SampleEntry::Avc1 { .. } | SampleEntry::Hev1 { .. } => {
                annexb_to_length_prefixed(sample, 4)
                    .map(Cow::Owned)
                    .map_err(|source| Mp4Error::Sample { index, source })
            }
            SampleEntry::Vp09 { .. } => Ok(Cow::Borrowed(sample)),
            SampleEntry::Av01 { .. } => {
                let obus = av1_obus(sample).map_err(|problem| Mp4Error::Keyframe {
                    codec: VideoCodec::Av1,
                    problem: format!("sample {index}: {problem}"),
                })?;
                if obus.iter().all(|o| o.kind != av1::OBU_TEMPORAL_DELIMITER) {
                    return Ok(Cow::Borrowed(sample));
                }
                Ok(Cow::Owned(
                    obus.iter()
                        .filter(|o| o.kind != av1::OBU_TEMPORAL_DELIMITER)
                        .flat_map(|o| o.bytes.iter().copied())
                        .collect(),
                ))
            }
        }
    }

    /// The WebCodecs / RFC 6381 codec string, e.g. `avc1.64001F`.
    pub fn codec_string(&self) -> String {
        match self {
            SampleEntry::Avc1 { avcc, .. } => match avcc.get(1..4) {
                Some(p) => format!("avc1.{:02X}{:02X}{:02X}", p[0], p[1], p[2]),
                None => "avc1".to_string(),
            },
            SampleEntry::Hev1 { hvcc, .. } => h265::ProfileTierLevel::from_hvcc(hvcc)
                .map_or_else(|| "hev1".to_string(), |p| p.codec_string("hev1")),
            SampleEntry::Vp09 { vpcc, .. } => {
                format!("vp09.{:02}.{:02}.{:02}", vpcc[0], vpcc[1], vpcc[2] >> 4)
            }
            SampleEntry::Av01 { av1c, .. } => {
                let depth = match (av1c[2] & 0x40 != 0, av1c[2] & 0x20 != 0) {
                    (true, true) => 12,
                    (true, false) => 10,
                    _ => 8,
                };
                let tier = if av1c[2] & 0x80 != 0 { 'H' } else { 'M' };
                format!(
                    "av01.{}.{:02}{tier}.{depth:02}",
                    av1c[1] >> 5,
                    av1c[1] & 0x1F
                )
            }
        }
    }

    /// The codec.
    pub fn codec(&self) -> VideoCodec {
        match self {
            SampleEntry::Avc1 { .. } => VideoCodec::H264,
            SampleEntry::Hev1 { .. } => VideoCodec::H265,
            SampleEntry::Vp09 { .. } => VideoCodec::Vp9,
            SampleEntry::Av01 { .. } => VideoCodec::Av1,
        }
    }

    /// Displayed `(width, height)`.
    pub fn dimensions(&self) -> (u16, u16) {
        match self {
            SampleEntry::Avc1 { width, height, .. }
            | SampleEntry::Hev1 { width, height, .. }
            | SampleEntry::Vp09 { width, height, .. }
            | SampleEntry::Av01 { width, height, .. } => (*width, *height),
        }
    }
}

/// The OBUs of a temporal unit, or what is wrong with them.
fn av1_obus(sample: &[u8]) -> Result<Vec<av1::Obu<'_>>, String> {
    av1::obus(sample)
        .collect::<Result<_, _>>()
        .map_err(|(offset, problem)| format!("the OBU at byte {offset}: {problem}"))
}
