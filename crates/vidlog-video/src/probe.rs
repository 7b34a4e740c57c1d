//! The per-sample probe run at ingest, and stream information for `vidlog info`.
//!
//! [`probe_sample`] answers "is this sample a keyframe, and does it carry parameter sets?" for
//! one sample (one H.264/H.265 access unit in Annex B form, or one AV1 temporal unit of OBUs in
//! the low-overhead format, or one VP9 frame or superframe). It is cheap: it reads NAL/OBU headers and stops at the first picture
//! data, so the cost does not grow with the size of the picture.
//!
//! Keyframe rules:
//! - H.264: the picture is an IDR picture (slice NAL type 5).
//! - H.265: the picture is an IRAP picture (NAL types 16 to 23: BLA, IDR, CRA).
//! - AV1: the temporal unit carries a sequence header OBU, and its first frame (header) OBU has
//!   `show_existing_frame = 0` and `frame_type = KEY_FRAME` (or the sequence header says
//!   `reduced_still_picture_header`).
//! - VP9: the sample's first frame (of its superframe) has `frame_type = KEY_FRAME`; its header
//!   (profile, bit depth, colour, size) stands in for parameter sets.
//!
//! [`stream_info`] describes a stream from a keyframe sample: H.264 and H.265 (from the SPS), AV1
//! (from the sequence header; the size is the maximum frame size it declares) and VP9 (from the
//! keyframe header; its level derived).

use vidlog_types::VideoCodec;

use crate::bitstream::av1;
use crate::bitstream::bits::BitReader;
use crate::bitstream::h264::{self, H264Error, NalType, SpsInfo};
use crate::bitstream::h265;
use crate::bitstream::nal::{START_CODE, find_start_code, trim_trailing_zeros};
use crate::bitstream::vp9::{self, Vp9Error, Vp9Keyframe};

/// What the probe found in one sample.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SampleProbe {
    /// Whether a decoder can start at this sample (given its parameter sets).
    pub is_keyframe: bool,
    /// Parameter sets carried in the sample, if any.
    pub parameter_sets: Option<SampleParameterSets>,
}

/// Parameter sets found in a sample, as raw NAL units / OBUs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SampleParameterSets {
    /// H.264 SPS and PPS NAL units, and the first SPS parsed.
    H264 {
        /// SPS NAL units (header included, emulation prevention intact).
        sps: Vec<Vec<u8>>,
        /// PPS NAL units.
        pps: Vec<Vec<u8>>,
        /// The first SPS, parsed (`None` if the sample carries only PPSs).
        sps_info: Option<SpsInfo>,
    },
    /// H.265 VPS, SPS and PPS NAL units.
    H265 {
        /// VPS NAL units.
        vps: Vec<Vec<u8>>,
        /// SPS NAL units.
        sps: Vec<Vec<u8>>,
        /// PPS NAL units.
        pps: Vec<Vec<u8>>,
    },
    /// The AV1 sequence header OBU (header and payload).
    Av1 {
        /// The whole OBU.
        sequence_header_obu: Vec<u8>,
    },
    /// VP9 has no parameter sets; a keyframe's header carries what they would.
    Vp9 {
        /// `profile` of the keyframe.
        profile: u8,
        /// Its colour config and frame size.
        keyframe: Vp9Keyframe,
    },
}

impl SampleParameterSets {
    /// The bytes that define the stream's decoding setup, in a fixed form: two samples with
    /// equal bytes need no decoder reconfiguration between them (VP9: profile, bit depth,
    /// colour and size from the keyframe header).
    pub fn identity_bytes(&self) -> Vec<std::borrow::Cow<'_, [u8]>> {
        use std::borrow::Cow;
        match self {
            SampleParameterSets::H264 { sps, .. } => {
                sps.iter().map(|s| Cow::Borrowed(s.as_slice())).collect()
            }
            SampleParameterSets::H265 { vps, sps, .. } => vps
                .iter()
                .chain(sps.iter())
                .map(|s| Cow::Borrowed(s.as_slice()))
                .collect(),
            SampleParameterSets::Av1 {
                sequence_header_obu,
            } => vec![Cow::Borrowed(sequence_header_obu.as_slice())],
            SampleParameterSets::Vp9 {
                profile,
                keyframe: k,
            } => {
                let mut fixed = vec![
                    *profile,
                    k.bit_depth,
                    k.color_space,
                    u8::from(k.full_range),
                    u8::from(k.subsampling.0),
                    u8::from(k.subsampling.1),
                ];
                fixed.extend_from_slice(&k.width.to_le_bytes());
                fixed.extend_from_slice(&k.height.to_le_bytes());
                vec![Cow::Owned(fixed)]
            }
        }
    }
}

/// Why a sample could not be probed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// The sample is empty.
    #[error("the {codec} sample is empty")]
    Empty {
        /// Codec name.
        codec: &'static str,
    },
    /// An H.264/H.265 sample that does not begin with a start code.
    #[error(
        "no Annex B start code in the first 4 bytes of the {codec} sample (found {first_bytes:02x?}); \
         samples must be Annex B access units (00 00 00 01 ...), not length-prefixed AVCC/HVCC"
    )]
    NoStartCode {
        /// Codec name.
        codec: &'static str,
        /// The first bytes.
        first_bytes: Vec<u8>,
    },
    /// A NAL unit header that is invalid.
    #[error("{codec} NAL unit at byte {offset}: {problem}")]
    BadNalHeader {
        /// Codec name.
        codec: &'static str,
        /// Offset of the header byte.
        offset: usize,
        /// What is wrong.
        problem: String,
    },
    /// No picture data in the sample.
    #[error(
        "the {codec} sample has no picture data (NAL types {nal_types:?}); \
         each sample must be one whole access unit"
    )]
    NoPicture {
        /// Codec name.
        codec: &'static str,
        /// The NAL unit types that were present.
        nal_types: Vec<u8>,
    },
    /// An H.264 parameter set in the sample does not parse.
    #[error("H.264 NAL unit at byte {offset}: {source}")]
    H264 {
        /// Offset of the NAL unit.
        offset: usize,
        /// The problem.
        source: H264Error,
    },
    /// Malformed AV1 OBU framing or headers.
    #[error("AV1 OBU at byte {offset}: {problem}")]
    Av1 {
        /// Offset of the OBU header.
        offset: usize,
        /// What is wrong.
        problem: String,
    },
    /// The AV1 temporal unit has no frame.
    #[error(
        "the AV1 sample has no frame or frame header OBU (OBU types {obu_types:?}); each sample \
         must be one temporal unit in the low-overhead format (OBUs with size fields)"
    )]
    Av1NoFrame {
        /// The OBU types present.
        obu_types: Vec<u8>,
    },
    /// A keyframe sample without the parameter sets `stream_info` needs.
    #[error("the {codec} sample carries no {what}; pass a keyframe sample that carries it")]
    MissingParameterSets {
        /// Codec name.
        codec: &'static str,
        /// What is missing.
        what: &'static str,
    },
    /// An H.265 SPS that does not parse.
    #[error("H.265 {problem}")]
    H265 {
        /// What is wrong.
        problem: String,
    },
    /// A VP9 sample whose superframe index or frame header is malformed.
    #[error("VP9 sample: {0}")]
    Vp9(#[from] Vp9Error),
}

/// Probes one sample. See the module documentation for the keyframe rules.
pub fn probe_sample(codec: VideoCodec, sample: &[u8]) -> Result<SampleProbe, ProbeError> {
    match codec {
        VideoCodec::H264 => probe_h264(sample),
        VideoCodec::H265 => probe_h265(sample),
        VideoCodec::Av1 => probe_av1(sample),
        VideoCodec::Vp9 => probe_vp9(sample),
    }
}

/// VP9: the sample's first frame decides (a keyframe that is not `show_existing_frame`).
fn probe_vp9(sample: &[u8]) -> Result<SampleProbe, ProbeError> {
    if sample.is_empty() {
        return Err(ProbeError::Empty { codec: "VP9" });
    }
    let header = vp9::parse_sample(sample)?;
    Ok(SampleProbe {
        is_keyframe: header.is_keyframe,
        parameter_sets: header.keyframe.map(|keyframe| SampleParameterSets::Vp9 {
            profile: header.profile,
            keyframe,
        }),
    })
}

/// Walks the NAL units of an Annex B sample, calling `visit(offset, header_offset, nal_or_none)`.
///
/// `visit` gets the header offset and, when `needs_body(first_header_byte)` says so, the whole
/// NAL unit (which costs a scan to its end). It returns `true` to stop.
fn walk_annexb(
    codec: &'static str,
    sample: &[u8],
    mut needs_body: impl FnMut(&[u8]) -> bool,
    mut visit: impl FnMut(usize, &[u8], Option<&[u8]>) -> Result<bool, ProbeError>,
) -> Result<(), ProbeError> {
    if sample.is_empty() {
        return Err(ProbeError::Empty { codec });
    }
    let first = match find_start_code(&sample[..sample.len().min(4)], 0) {
        Some(sc) if sample[..sc].iter().all(|&b| b == 0) => sc,
        _ => {
            return Err(ProbeError::NoStartCode {
                codec,
                first_bytes: sample.iter().take(4).copied().collect(),
            });
        }
    };
    let mut payload = first + START_CODE.len();
    while payload < sample.len() {
        let head = &sample[payload..sample.len().min(payload + 2)];
        if needs_body(head) {
            let next = find_start_code(sample, payload);
            let end = next.unwrap_or(sample.len());
            let nal = trim_trailing_zeros(&sample[payload..end]);
            if !nal.is_empty() && visit(payload, head, Some(nal))? {
                return Ok(());
            }
            match next {
                Some(sc) => payload = sc + START_CODE.len(),
                None => return Ok(()),
            }
        } else {
            // `00 00` here is the next start code: an empty NAL unit, skipped.
            let empty = head.len() == 2 && head == [0, 0];
            if !empty && visit(payload, head, None)? {
                return Ok(());
            }
            // A NAL we don't need the body of, and that did not stop the walk: skip it.
            match find_start_code(sample, payload) {
                Some(sc) => payload = sc + START_CODE.len(),
                None => return Ok(()),
            }
        }
    }
    Ok(())
}

fn probe_h264(sample: &[u8]) -> Result<SampleProbe, ProbeError> {
    const CODEC: &str = "H.264";
    let mut sps: Vec<Vec<u8>> = Vec::new();
    let mut pps: Vec<Vec<u8>> = Vec::new();
    let mut sps_info = None;
    let mut nal_types = Vec::new();
    let mut keyframe = None;
    walk_annexb(
        CODEC,
        sample,
        |head| matches!(head.first().map(|b| b & 0x1F), Some(7 | 8)),
        |offset, head, body| {
            let header = head.first().copied().unwrap_or(0);
            if header & 0x80 != 0 {
                return Err(ProbeError::BadNalHeader {
                    codec: CODEC,
                    offset,
                    problem: format!(
                        "forbidden_zero_bit is set (header byte {header:#04x}); the data is corrupt"
                    ),
                });
            }
            let nal_type = NalType(header & 0x1F);
            if nal_type.0 == 0 {
                return Err(ProbeError::BadNalHeader {
                    codec: CODEC,
                    offset,
                    problem: "NAL unit type 0 is forbidden".into(),
                });
            }
            nal_types.push(nal_type.0);
            if nal_type.is_vcl() {
                keyframe = Some(nal_type == NalType::IDR);
                return Ok(true);
            }
            if let Some(nal) = body {
                if nal_type == NalType::SPS {
                    if sps_info.is_none() {
                        sps_info = Some(
                            h264::parse_sps(nal)
                                .map_err(|source| ProbeError::H264 { offset, source })?,
                        );
                    }
                    sps.push(nal.to_vec());
                } else if nal_type == NalType::PPS {
                    pps.push(nal.to_vec());
                }
            }
            Ok(false)
        },
    )?;
    let Some(is_keyframe) = keyframe else {
        return Err(ProbeError::NoPicture {
            codec: CODEC,
            nal_types,
        });
    };
    let parameter_sets = (!sps.is_empty() || !pps.is_empty())
        .then_some(SampleParameterSets::H264 { sps, pps, sps_info });
    Ok(SampleProbe {
        is_keyframe,
        parameter_sets,
    })
}

fn probe_h265(sample: &[u8]) -> Result<SampleProbe, ProbeError> {
    const CODEC: &str = "H.265";
    let mut vps = Vec::new();
    let mut sps = Vec::new();
    let mut pps = Vec::new();
    let mut nal_types = Vec::new();
    let mut keyframe = None;
    walk_annexb(
        CODEC,
        sample,
        |head| matches!(head.first().map(|b| (b >> 1) & 0x3F), Some(32..=34)),
        |offset, head, body| {
            let (Some(&b0), Some(&b1)) = (head.first(), head.get(1)) else {
                return Err(ProbeError::BadNalHeader {
                    codec: CODEC,
                    offset,
                    problem: "the NAL unit header is cut short (H.265 headers are 2 bytes)".into(),
                });
            };
            if b0 & 0x80 != 0 {
                return Err(ProbeError::BadNalHeader {
                    codec: CODEC,
                    offset,
                    problem: format!(
                        "forbidden_zero_bit is set (header {b0:#04x} {b1:#04x}); the data is corrupt"
                    ),
                });
            }
            if b1 & 0x07 == 0 {
                return Err(ProbeError::BadNalHeader {
                    codec: CODEC,
                    offset,
                    problem: "nuh_temporal_id_plus1 is 0, which is forbidden".into(),
                });
            }
            let nal_type = (b0 >> 1) & 0x3F;
            nal_types.push(nal_type);
            if nal_type <= 31 {
                keyframe = Some((16..=23).contains(&nal_type));
                return Ok(true);
            }
            if let Some(nal) = body {
                match nal_type {
                    32 => vps.push(nal.to_vec()),
                    33 => sps.push(nal.to_vec()),
                    34 => pps.push(nal.to_vec()),
                    _ => {}
                }
            }
            Ok(false)
        },
    )?;
    let Some(is_keyframe) = keyframe else {
        return Err(ProbeError::NoPicture {
            codec: CODEC,
            nal_types,
        });
    };
    let parameter_sets = (!vps.is_empty() || !sps.is_empty() || !pps.is_empty())
        .then_some(SampleParameterSets::H265 { vps, sps, pps });
    Ok(SampleProbe {
        is_keyframe,
        parameter_sets,
    })
}

fn probe_av1(sample: &[u8]) -> Result<SampleProbe, ProbeError> {
    if sample.is_empty() {
        return Err(ProbeError::Empty { codec: "AV1" });
    }
    let err = |offset: usize, problem: String| ProbeError::Av1 { offset, problem };
    let mut obu_types = Vec::new();
    let mut sequence_header: Option<(Vec<u8>, bool)> = None;
    for obu in av1::obus(sample) {
        let obu = obu.map_err(|(offset, problem)| err(offset, problem))?;
        let (kind, header_offset, payload) = (obu.kind, obu.offset, obu.payload);
        obu_types.push(kind);
        match kind {
            av1::OBU_SEQUENCE_HEADER => {
                let mut r = BitReader::new(payload);
                let read = |r: &mut BitReader<'_>, n, f| {
                    r.read_bits(n, f)
                        .map_err(|e| err(header_offset, format!("sequence header: {e}")))
                };
                let _seq_profile = read(&mut r, 3, "seq_profile")?;
                let _still_picture = read(&mut r, 1, "still_picture")?;
                let reduced_still_picture_header =
                    read(&mut r, 1, "reduced_still_picture_header")? == 1;
                if sequence_header.is_none() {
                    sequence_header = Some((obu.bytes.to_vec(), reduced_still_picture_header));
                }
            }
            av1::OBU_FRAME_HEADER | av1::OBU_FRAME => {
                let is_keyframe = match &sequence_header {
                    None => false,
                    Some((_, true)) => true,
                    Some((_, false)) => {
                        let mut r = BitReader::new(payload);
                        let show_existing_frame = r
                            .read_bit("show_existing_frame")
                            .map_err(|e| err(header_offset, format!("frame header: {e}")))?;
                        let frame_type =
                            if show_existing_frame {
                                None
                            } else {
                                Some(r.read_bits(2, "frame_type").map_err(|e| {
                                    err(header_offset, format!("frame header: {e}"))
                                })?)
                            };
                        frame_type == Some(0)
                    }
                };
                return Ok(SampleProbe {
                    is_keyframe,
                    parameter_sets: sequence_header.map(|(obu, _)| SampleParameterSets::Av1 {
                        sequence_header_obu: obu,
                    }),
                });
            }
            _ => {}
        }
    }
    Err(ProbeError::Av1NoFrame { obu_types })
}

/// A stream's description, for `vidlog info` and viewers.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamInfo {
    /// WebCodecs codec string, e.g. `avc1.64001E`.
    pub codec_string: String,
    /// Coded width (before cropping).
    pub coded_width: u32,
    /// Coded height (before cropping).
    pub coded_height: u32,
    /// Display width (after cropping).
    pub width: u32,
    /// Display height (after cropping).
    pub height: u32,
    /// Profile name, e.g. `High`.
    pub profile: String,
    /// Level name, e.g. `3.1`.
    pub level: String,
    /// Luma bit depth.
    pub bit_depth: u8,
    /// Chroma subsampling: `4:2:0`, `4:2:2`, `4:4:4` or `monochrome`.
    pub chroma_format: &'static str,
    /// Frame rate signalled in the bitstream, if any.
    pub frame_rate: Option<f64>,
}

/// Describes a stream from a keyframe sample that carries its parameter sets.
/// H.264, H.265 (from the SPS), AV1 and VP9.
pub fn stream_info(codec: VideoCodec, keyframe_sample: &[u8]) -> Result<StreamInfo, ProbeError> {
    match codec {
        VideoCodec::H264 => {
            let probe = probe_h264(keyframe_sample)?;
            let Some(SampleParameterSets::H264 {
                sps_info: Some(sps),
                ..
            }) = probe.parameter_sets
            else {
                return Err(ProbeError::MissingParameterSets {
                    codec: "H.264",
                    what: "SPS",
                });
            };
            Ok(stream_info_from_sps(&sps))
        }
        VideoCodec::H265 => {
            let probe = probe_h265(keyframe_sample)?;
            let Some(SampleParameterSets::H265 { sps, .. }) = probe.parameter_sets else {
                return Err(ProbeError::MissingParameterSets {
                    codec: "H.265",
                    what: "SPS",
                });
            };
            let first = sps.first().ok_or(ProbeError::MissingParameterSets {
                codec: "H.265",
                what: "SPS",
            })?;
            let sps = h265::parse_sps(first).map_err(|e| ProbeError::H265 {
                problem: e.to_string(),
            })?;
            Ok(StreamInfo {
                codec_string: sps.codec_string("hev1"),
                coded_width: sps.coded_width,
                coded_height: sps.coded_height,
                width: sps.width,
                height: sps.height,
                profile: sps.profile_name(),
                level: sps.level_name(),
                bit_depth: sps.bit_depth_luma,
                chroma_format: sps.chroma_format(),
                frame_rate: None,
            })
        }
        VideoCodec::Av1 => {
            let probe = probe_av1(keyframe_sample)?;
            let Some(SampleParameterSets::Av1 {
                sequence_header_obu,
            }) = probe.parameter_sets
            else {
                return Err(ProbeError::MissingParameterSets {
                    codec: "AV1",
                    what: "sequence header OBU",
                });
            };
            let seq = av1::parse_sequence_header_obu(&sequence_header_obu).map_err(|e| {
                ProbeError::Av1 {
                    offset: 0,
                    problem: e.to_string(),
                }
            })?;
            Ok(StreamInfo {
                codec_string: seq.codec_string(),
                coded_width: seq.max_frame_width,
                coded_height: seq.max_frame_height,
                width: seq.max_frame_width,
                height: seq.max_frame_height,
                profile: seq.profile_name().to_string(),
                level: seq.level_name(),
                bit_depth: seq.bit_depth,
                chroma_format: seq.chroma_format(),
                frame_rate: seq
                    .timing
                    .filter(|&(units, scale)| units != 0 && scale != 0)
                    .map(|(units, scale)| f64::from(scale) / f64::from(units)),
            })
        }
        VideoCodec::Vp9 => {
            let header = vp9::parse_sample(keyframe_sample)?;
            let Some(keyframe) = header.keyframe else {
                return Err(ProbeError::MissingParameterSets {
                    codec: "VP9",
                    what: "keyframe header",
                });
            };
            // VP9 signals no level or frame rate: the level is derived for 30 fps.
            let level = keyframe.level(30.0);
            Ok(StreamInfo {
                codec_string: vp9::codec_string(header.profile, &keyframe, 30.0),
                coded_width: keyframe.width,
                coded_height: keyframe.height,
                width: keyframe.width,
                height: keyframe.height,
                profile: header.profile.to_string(),
                level: format!("{}.{}", level / 10, level % 10),
                bit_depth: keyframe.bit_depth,
                chroma_format: keyframe.chroma_format(),
                frame_rate: None,
            })
        }
    }
}

/// Stream information from a parsed H.264 SPS.
pub fn stream_info_from_sps(sps: &SpsInfo) -> StreamInfo {
    StreamInfo {
        codec_string: h264::codec_string(sps),
        coded_width: sps.coded_width,
        coded_height: sps.coded_height,
        width: sps.cropped_width,
        height: sps.cropped_height,
        profile: sps.profile_name().to_string(),
        level: sps.level_name(),
        bit_depth: sps.bit_depth_luma,
        chroma_format: match sps.chroma_format_idc {
            0 => "monochrome",
            1 => "4:2:0",
            2 => "4:2:2",
            _ => "4:4:4",
        },
        frame_rate: sps.timing.and_then(|t| t.frame_rate()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn h264_errors_say_what_is_wrong() {
        let e = probe_sample(VideoCodec::H264, &[0, 0, 0, 5, 0x65, 1]).unwrap_err();
        assert!(
            e.to_string()
                .contains("no Annex B start code in the first 4 bytes"),
            "{e}"
        );
        let e = probe_sample(VideoCodec::H264, &[0, 0, 1, 0x00, 1]).unwrap_err();
        assert!(
            e.to_string().contains("NAL unit type 0 is forbidden"),
            "{e}"
        );
        let e = probe_sample(VideoCodec::H264, &[0, 0, 1, 0x09, 0xF0]).unwrap_err();
        assert!(matches!(e, ProbeError::NoPicture { .. }), "{e}");
        assert!(matches!(
            probe_sample(VideoCodec::H264, &[]),
            Err(ProbeError::Empty { .. })
        ));
    }

    #[test]
    fn h264_keyframe_is_idr() {
        let idr = [0, 0, 0, 1, 0x09, 0xF0, 0, 0, 1, 0x65, 0x88, 0x84];
        let p = probe_sample(VideoCodec::H264, &idr).expect("probes");
        assert!(p.is_keyframe);
        assert_eq!(p.parameter_sets, None);
        let non_idr = [0, 0, 0, 1, 0x41, 0x9A];
        assert!(
            !probe_sample(VideoCodec::H264, &non_idr)
                .expect("probes")
                .is_keyframe
        );
    }

    #[test]
    fn h265_keyframe_is_irap() {
        // VPS, SPS, PPS headers then an IDR_W_RADL (type 19) slice.
        let mut sample = Vec::new();
        for header in [[0x40, 0x01], [0x42, 0x01], [0x44, 0x01], [0x26, 0x01]] {
            sample.extend_from_slice(&[0, 0, 0, 1]);
            sample.extend_from_slice(&header);
            sample.push(0xAF);
        }
        let p = probe_sample(VideoCodec::H265, &sample).expect("probes");
        assert!(p.is_keyframe);
        let Some(SampleParameterSets::H265 { vps, sps, pps }) = p.parameter_sets else {
            panic!("parameter sets expected");
        };
        assert_eq!((vps.len(), sps.len(), pps.len()), (1, 1, 1));
        // TRAIL_R (type 1).
        let p = probe_sample(VideoCodec::H265, &[0, 0, 1, 0x02, 0x01, 0xAF]).expect("probes");
        assert!(!p.is_keyframe);
        let e = probe_sample(VideoCodec::H265, &[0, 0, 1, 0x02, 0x00, 0xAF]).unwrap_err();
        assert!(e.to_string().contains("temporal_id"), "{e}");
    }

    #[test]
    fn av1_keyframe_needs_sequence_header_and_key_frame_type() {
        // Temporal delimiter, sequence header (profile 0, not still), frame OBU with
        // show_existing_frame = 0, frame_type = KEY_FRAME (0).
        let td = [0x12, 0x00];
        let seq = [0x0A, 0x01, 0b0000_0000];
        let key_frame = [0x32, 0x01, 0b0001_0000];
        let inter_frame = [0x32, 0x01, 0b0010_0000];
        let sample: Vec<u8> = [&td[..], &seq, &key_frame].concat();
        let p = probe_sample(VideoCodec::Av1, &sample).expect("probes");
        assert!(p.is_keyframe);
        assert!(matches!(
            p.parameter_sets,
            Some(SampleParameterSets::Av1 { .. })
        ));
        let sample: Vec<u8> = [&td[..], &key_frame].concat();
        assert!(
            !probe_sample(VideoCodec::Av1, &sample)
                .expect("probes")
                .is_keyframe
        );
        let sample: Vec<u8> = [&td[..], &seq, &inter_frame].concat();
        assert!(
            !probe_sample(VideoCodec::Av1, &sample)
                .expect("probes")
                .is_keyframe
        );
        let e = probe_sample(VideoCodec::Av1, &[0x12, 0x05, 0]).unwrap_err();
        assert!(e.to_string().contains("runs past the end"), "{e}");
        let e = probe_sample(VideoCodec::Av1, &td).unwrap_err();
        assert!(matches!(e, ProbeError::Av1NoFrame { .. }), "{e}");
    }

    #[test]
    fn h265_stream_info_needs_an_sps() {
        let e = stream_info(VideoCodec::H265, &[0, 0, 1]).unwrap_err();
        assert!(e.to_string().contains("no picture data"), "{e}");
        // An IDR slice alone: no SPS to describe the stream from.
        let e = stream_info(VideoCodec::H265, &[0, 0, 0, 1, 0x26, 0x01, 0xAF]).unwrap_err();
        assert!(e.to_string().contains("carries no SPS"), "{e}");
    }
}
