//! H.264 / AVC bitstream syntax as far as vidlog needs it.
//!
//! Owns:
//! - NAL unit types and headers, IDR and recovery-point SEI detection;
//! - SPS parsing into [`SpsInfo`], PPS ids, and slice headers into [`SliceHeaderInfo`] (through
//!   the `h264-reader` crate, kept behind [`ParameterSetTable`]);
//! - access-unit boundaries (H.264 7.4.1.2.3 / 7.4.1.2.4) and a streaming [`AccessUnitSplitter`]
//!   that turns an Annex B elementary stream of any size into [`AccessUnit`]s with bounded memory;
//! - picture order count (8.2.1, types 0, 1 and 2) in [`PocCounter`], and [`presentation_order`],
//!   which turns decode-order POCs into presentation indices for importers;
//! - codec strings (`avc1.PPCCLL`) and the `AVCDecoderConfigurationRecord` (avcC).
//!
//! It does not decode pictures, and knows nothing about recordings or containers.
//! NAL framing that is the same for H.265 lives in [`super::nal`].

use std::collections::VecDeque;

use h264_reader::nal::pps::PicParameterSet;
use h264_reader::nal::slice::{
    DecRefPicMarking, Field, FieldPic, MemoryManagementControlOperation, PicOrderCountLsb,
    SliceHeader,
};
use h264_reader::nal::sps::{FrameMbsFlags, PicOrderCntType, SeqParameterSet};
use h264_reader::nal::{Nal, NalHeader, RefNal};

use super::bits::BitReader;
use super::nal::{
    NalFramingError, START_CODE, START_CODE_4, find_start_code, remove_emulation_prevention,
    trim_trailing_zeros,
};

// ---------------------------------------------------------------------------------------------
// NAL unit types and headers
// ---------------------------------------------------------------------------------------------

/// An H.264 `nal_unit_type` (Table 7-1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NalType(pub u8);

impl NalType {
    /// Coded slice of a non-IDR picture.
    pub const SLICE: NalType = NalType(1);
    /// Coded slice data partition A.
    pub const SLICE_PARTITION_A: NalType = NalType(2);
    /// Coded slice data partition B.
    pub const SLICE_PARTITION_B: NalType = NalType(3);
    /// Coded slice data partition C.
    pub const SLICE_PARTITION_C: NalType = NalType(4);
    /// Coded slice of an IDR picture.
    pub const IDR: NalType = NalType(5);
    /// Supplemental enhancement information.
    pub const SEI: NalType = NalType(6);
    /// Sequence parameter set.
    pub const SPS: NalType = NalType(7);
    /// Picture parameter set.
    pub const PPS: NalType = NalType(8);
    /// Access unit delimiter.
    pub const AUD: NalType = NalType(9);
    /// End of sequence.
    pub const END_OF_SEQUENCE: NalType = NalType(10);
    /// End of stream.
    pub const END_OF_STREAM: NalType = NalType(11);
    /// Filler data.
    pub const FILLER: NalType = NalType(12);

    /// Whether this type carries slice data of the primary coded picture (types 1 to 5).
    pub fn is_vcl(self) -> bool {
        (1..=5).contains(&self.0)
    }

    /// Whether a NAL unit of this type, arriving after a picture's slices, begins the next
    /// access unit (7.4.1.2.3: AUD, SPS, PPS, SEI and types 14 to 18).
    pub fn starts_access_unit(self) -> bool {
        matches!(self.0, 6..=9 | 14..=18)
    }
}

/// Splits a NAL header byte into `(nal_ref_idc, nal_unit_type)`, rejecting `forbidden_zero_bit`.
pub fn nal_header(nal: &[u8]) -> Result<(u8, NalType), H264Error> {
    let &header = nal.first().ok_or(H264Error::EmptyNal)?;
    if header & 0x80 != 0 {
        return Err(H264Error::ForbiddenBit { header });
    }
    Ok(((header >> 5) & 3, NalType(header & 0x1F)))
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Something wrong with H.264 data: what, and (through [`H264Error::AtNal`]) where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum H264Error {
    /// A NAL unit with no bytes.
    #[error("empty NAL unit")]
    EmptyNal,
    /// The NAL header's forbidden bit is set.
    #[error(
        "forbidden_zero_bit is set in NAL header byte {header:#04x}: the data is corrupt or not H.264"
    )]
    ForbiddenBit {
        /// The header byte.
        header: u8,
    },
    /// A NAL unit of the wrong type was handed to a parser.
    #[error("expected a {expected} NAL unit, got nal_unit_type {found}")]
    WrongNalType {
        /// What the caller wanted.
        expected: &'static str,
        /// The type found.
        found: u8,
    },
    /// An SPS that does not parse.
    #[error("SPS does not parse: {0}")]
    Sps(String),
    /// A PPS that does not parse.
    #[error("PPS does not parse: {0}")]
    Pps(String),
    /// A slice header that does not parse.
    #[error("slice header does not parse: {0}")]
    SliceHeader(String),
    /// Annex B or length-prefixed framing is broken.
    #[error(transparent)]
    Framing(#[from] NalFramingError),
    /// A malformed AVCDecoderConfigurationRecord.
    #[error("avcC record: {0}")]
    AvcConfig(String),
    /// Non-zero bytes before the first start code of a stream.
    #[error(
        "skipped {bytes} bytes before the first start code at byte {offset}: \
         an Annex B stream starts with 00 00 01 or 00 00 00 01"
    )]
    LeadingGarbage {
        /// Bytes skipped.
        bytes: u64,
        /// Stream offset of the first start code (or of the end of what was skipped).
        offset: u64,
    },
    /// A NAL unit larger than the splitter's limit (usually: not an Annex B stream).
    #[error(
        "NAL unit starting at byte {offset} exceeds {limit} bytes without another start code; \
         is this an Annex B H.264 stream? Its data was dropped"
    )]
    NalTooLong {
        /// Stream offset of its start code.
        offset: u64,
        /// The limit.
        limit: usize,
    },
    /// An access unit larger than the splitter's limit; it was cut.
    #[error(
        "the access unit starting at byte {offset} grew past {limit} bytes and was cut there; \
         the stream is probably corrupt"
    )]
    AccessUnitTooLarge {
        /// Stream offset of the access unit.
        offset: u64,
        /// The limit.
        limit: usize,
    },
    /// NAL units after the last picture that belong to no access unit.
    #[error(
        "the stream ends with {bytes} bytes of NAL units without a picture (types {nal_types:?}) \
         at byte {offset}; they were dropped"
    )]
    TrailingNonPicture {
        /// Their size.
        bytes: usize,
        /// Their NAL unit types.
        nal_types: Vec<u8>,
        /// Stream offset of the first of them.
        offset: u64,
    },
    /// Reading the stream failed.
    #[error("reading the H.264 stream failed: {0}")]
    Io(String),
    /// An error located in a stream: NAL index (0-based, in stream order) and byte offset of its
    /// start code.
    #[error("NAL unit {index} at byte {offset}: {source}")]
    AtNal {
        /// 0-based NAL index in the stream.
        index: u64,
        /// Byte offset of its start code.
        offset: u64,
        /// What is wrong.
        source: Box<H264Error>,
    },
}

// ---------------------------------------------------------------------------------------------
// SPS / PPS / slice headers
// ---------------------------------------------------------------------------------------------

/// Timing from the SPS VUI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VuiTiming {
    /// `num_units_in_tick`.
    pub num_units_in_tick: u32,
    /// `time_scale`.
    pub time_scale: u32,
    /// `fixed_frame_rate_flag`.
    pub fixed_frame_rate: bool,
}

impl VuiTiming {
    /// Frames per second for progressive video (`time_scale / (2 * num_units_in_tick)`).
    pub fn frame_rate(&self) -> Option<f64> {
        (self.num_units_in_tick != 0 && self.time_scale != 0)
            .then(|| f64::from(self.time_scale) / (2.0 * f64::from(self.num_units_in_tick)))
    }
}

/// Colour signalling from the SPS VUI.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ColourInfo {
    /// `matrix_coefficients` (1 = BT.709, 6 = BT.601), when a colour description is present.
    pub matrix_coefficients: Option<u8>,
    /// `colour_primaries`, when present.
    pub colour_primaries: Option<u8>,
    /// `transfer_characteristics`, when present.
    pub transfer_characteristics: Option<u8>,
    /// `video_full_range_flag`.
    pub full_range: bool,
}

/// The parts of a sequence parameter set vidlog uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpsInfo {
    /// `seq_parameter_set_id`.
    pub sps_id: u8,
    /// `profile_idc` (66 Baseline, 77 Main, 100 High ...).
    pub profile_idc: u8,
    /// The byte holding `constraint_set0_flag` (MSB) to `constraint_set5_flag` and two reserved bits.
    pub constraint_flags: u8,
    /// `level_idc` (level times ten, e.g. 31 for 3.1).
    pub level_idc: u8,
    /// 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4.
    pub chroma_format_idc: u8,
    /// Luma bit depth (8 to 14).
    pub bit_depth_luma: u8,
    /// Chroma bit depth.
    pub bit_depth_chroma: u8,
    /// Width in luma samples before cropping (a multiple of 16).
    pub coded_width: u32,
    /// Height in luma samples before cropping.
    pub coded_height: u32,
    /// Width after the SPS frame cropping.
    pub cropped_width: u32,
    /// Height after the SPS frame cropping.
    pub cropped_height: u32,
    /// `frame_mbs_only_flag` (false: the stream may contain fields).
    pub frame_mbs_only: bool,
    /// `pic_order_cnt_type` (0, 1 or 2).
    pub pic_order_cnt_type: u8,
    /// `log2_max_frame_num_minus4 + 4`.
    pub log2_max_frame_num: u8,
    /// `log2_max_pic_order_cnt_lsb_minus4 + 4` (POC type 0 only).
    pub log2_max_poc_lsb: Option<u8>,
    /// `max_num_ref_frames`.
    pub max_num_ref_frames: u32,
    /// VUI timing, when present.
    pub timing: Option<VuiTiming>,
    /// VUI colour signalling, when present.
    pub colour: Option<ColourInfo>,
    /// `max_num_reorder_frames` from the VUI bitstream restrictions, when present.
    pub max_num_reorder_frames: Option<u32>,
}

impl SpsInfo {
    fn from_parsed(sps: &SeqParameterSet) -> Result<SpsInfo, H264Error> {
        let coded_width = sps
            .pic_width_in_mbs_minus1
            .checked_add(1)
            .and_then(|w| w.checked_mul(16))
            .ok_or_else(|| H264Error::Sps("pic_width_in_mbs_minus1 is too large".into()))?;
        let field_factor = match sps.frame_mbs_flags {
            FrameMbsFlags::Frames => 1,
            FrameMbsFlags::Fields { .. } => 2,
        };
        let coded_height = sps
            .pic_height_in_map_units_minus1
            .checked_add(1)
            .and_then(|h| h.checked_mul(16 * field_factor))
            .ok_or_else(|| H264Error::Sps("pic_height_in_map_units_minus1 is too large".into()))?;
        let (cropped_width, cropped_height) = sps
            .pixel_dimensions()
            .map_err(|e| H264Error::Sps(format!("bad frame cropping: {e:?}")))?;
        let vui = sps.vui_parameters.as_ref();
        let timing = vui.and_then(|v| v.timing_info.as_ref()).map(|t| VuiTiming {
            num_units_in_tick: t.num_units_in_tick,
            time_scale: t.time_scale,
            fixed_frame_rate: t.fixed_frame_rate_flag,
        });
        let colour = vui
            .and_then(|v| v.video_signal_type.as_ref())
            .map(|s| ColourInfo {
                matrix_coefficients: s.colour_description.as_ref().map(|c| c.matrix_coefficients),
                colour_primaries: s.colour_description.as_ref().map(|c| c.colour_primaries),
                transfer_characteristics: s
                    .colour_description
                    .as_ref()
                    .map(|c| c.transfer_characteristics),
                full_range: s.video_full_range_flag,
            });
        let (pic_order_cnt_type, log2_max_poc_lsb) = match &sps.pic_order_cnt {
            PicOrderCntType::TypeZero {
                log2_max_pic_order_cnt_lsb_minus4,
            } => (0, Some(log2_max_pic_order_cnt_lsb_minus4 + 4)),
            PicOrderCntType::TypeOne { .. } => (1, None),
            PicOrderCntType::TypeTwo => (2, None),
        };
        let chroma_format_idc = u8::try_from(sps.chroma_info.chroma_format.to_u32())
            .map_err(|_| H264Error::Sps("chroma_format_idc is out of range".into()))?;
        Ok(SpsInfo {
            sps_id: sps.seq_parameter_set_id.id(),
            profile_idc: sps.profile_idc.into(),
            constraint_flags: sps.constraint_flags.into(),
            level_idc: sps.level_idc,
            chroma_format_idc,
            bit_depth_luma: sps.chroma_info.bit_depth_luma_minus8 + 8,
            bit_depth_chroma: sps.chroma_info.bit_depth_chroma_minus8 + 8,
            coded_width,
            coded_height,
            cropped_width,
            cropped_height,
            frame_mbs_only: matches!(sps.frame_mbs_flags, FrameMbsFlags::Frames),
            pic_order_cnt_type,
            log2_max_frame_num: sps.log2_max_frame_num(),
            log2_max_poc_lsb,
            max_num_ref_frames: sps.max_num_ref_frames,
            timing,
            colour,
            max_num_reorder_frames: vui
                .and_then(|v| v.bitstream_restrictions.as_ref())
                .map(|r| r.max_num_reorder_frames),
        })
    }

    /// The profile's name, e.g. `High` or `Constrained Baseline`.
    pub fn profile_name(&self) -> &'static str {
        profile_name(self.profile_idc, self.constraint_flags)
    }

    /// The level's name, e.g. `3.1` or `1b`.
    pub fn level_name(&self) -> String {
        level_name(self.profile_idc, self.constraint_flags, self.level_idc)
    }
}

/// Parses an SPS NAL unit (header byte included, emulation prevention still present).
pub fn parse_sps(nal: &[u8]) -> Result<SpsInfo, H264Error> {
    let sps = parse_sps_syntax(nal)?;
    SpsInfo::from_parsed(&sps)
}

fn parse_sps_syntax(nal: &[u8]) -> Result<SeqParameterSet, H264Error> {
    let (_, nal_type) = nal_header(nal)?;
    if nal_type != NalType::SPS {
        return Err(H264Error::WrongNalType {
            expected: "SPS (type 7)",
            found: nal_type.0,
        });
    }
    SeqParameterSet::from_bits(RefNal::new(nal, &[], true).rbsp_bits())
        .map_err(|e| H264Error::Sps(format!("{e:?}")))
}

/// Ids carried by a picture parameter set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PpsInfo {
    /// `pic_parameter_set_id`.
    pub pps_id: u8,
    /// The SPS it refers to.
    pub sps_id: u8,
}

/// Reads the two ids at the start of a PPS without needing its SPS.
pub fn parse_pps_ids(nal: &[u8]) -> Result<PpsInfo, H264Error> {
    let (_, nal_type) = nal_header(nal)?;
    if nal_type != NalType::PPS {
        return Err(H264Error::WrongNalType {
            expected: "PPS (type 8)",
            found: nal_type.0,
        });
    }
    let head = remove_emulation_prevention(&nal[1..nal.len().min(16)]);
    let mut r = BitReader::new(&head);
    let pps_id = r
        .read_ue("pic_parameter_set_id")
        .map_err(|e| H264Error::Pps(e.to_string()))?;
    let sps_id = r
        .read_ue("seq_parameter_set_id")
        .map_err(|e| H264Error::Pps(e.to_string()))?;
    match (u8::try_from(pps_id), u8::try_from(sps_id)) {
        (Ok(pps_id), Ok(sps_id)) if sps_id <= 31 => Ok(PpsInfo { pps_id, sps_id }),
        _ => Err(H264Error::Pps(format!(
            "ids out of range: pic_parameter_set_id {pps_id}, seq_parameter_set_id {sps_id}"
        ))),
    }
}

/// Frame, top field or bottom field (`field_pic_flag`, `bottom_field_flag`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PictureStructure {
    /// A frame (or a complementary field pair coded as a frame).
    Frame,
    /// A top field.
    TopField,
    /// A bottom field.
    BottomField,
}

/// The POC syntax of one slice together with the SPS parameters needed to evaluate it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PocSyntax {
    /// `pic_order_cnt_type` 0: explicit LSBs.
    Type0 {
        /// `log2_max_pic_order_cnt_lsb` from the SPS.
        log2_max_poc_lsb: u8,
        /// `pic_order_cnt_lsb`.
        pic_order_cnt_lsb: u32,
        /// `delta_pic_order_cnt_bottom` (0 when absent).
        delta_pic_order_cnt_bottom: i32,
    },
    /// `pic_order_cnt_type` 1: expected cycle plus deltas.
    Type1 {
        /// `delta_pic_order_cnt[0..2]` (0 when absent).
        delta_pic_order_cnt: [i32; 2],
        /// `offset_for_non_ref_pic` from the SPS.
        offset_for_non_ref_pic: i32,
        /// `offset_for_top_to_bottom_field` from the SPS.
        offset_for_top_to_bottom_field: i32,
        /// `offset_for_ref_frame[]` from the SPS.
        offsets_for_ref_frame: Vec<i32>,
    },
    /// `pic_order_cnt_type` 2: POC follows decode order.
    Type2,
}

/// The slice-header fields that decide access-unit boundaries and picture order count.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SliceHeaderInfo {
    /// `nal_unit_type` of the slice's NAL unit.
    pub nal_type: NalType,
    /// `nal_ref_idc` (0: not used for reference).
    pub nal_ref_idc: u8,
    /// `first_mb_in_slice`.
    pub first_mb_in_slice: u32,
    /// `pic_parameter_set_id`.
    pub pps_id: u8,
    /// The SPS the PPS refers to.
    pub sps_id: u8,
    /// `frame_num`.
    pub frame_num: u16,
    /// `MaxFrameNum` from the SPS.
    pub max_frame_num: u32,
    /// Frame or field.
    pub structure: PictureStructure,
    /// `idr_pic_id` (IDR slices only).
    pub idr_pic_id: Option<u32>,
    /// POC syntax elements.
    pub poc: PocSyntax,
    /// `redundant_pic_cnt` (0 for primary pictures).
    pub redundant_pic_cnt: u32,
    /// Whether `dec_ref_pic_marking` contains `memory_management_control_operation` 5.
    pub has_mmco5: bool,
}

impl SliceHeaderInfo {
    /// Whether this is a slice of an IDR picture.
    pub fn is_idr(&self) -> bool {
        self.nal_type == NalType::IDR
    }

    /// Whether POC restarts at this picture (IDR, or MMCO 5), so every earlier picture is
    /// presented before it.
    pub fn resets_poc(&self) -> bool {
        self.is_idr() || self.has_mmco5
    }

    /// Whether `self`, following `prev` in decode order, is the first VCL NAL unit of a new
    /// primary coded picture (H.264 7.4.1.2.4).
    pub fn starts_new_picture(&self, prev: &SliceHeaderInfo) -> bool {
        let poc_differs = match (&prev.poc, &self.poc) {
            (
                PocSyntax::Type0 {
                    pic_order_cnt_lsb: a,
                    delta_pic_order_cnt_bottom: da,
                    ..
                },
                PocSyntax::Type0 {
                    pic_order_cnt_lsb: b,
                    delta_pic_order_cnt_bottom: db,
                    ..
                },
            ) => a != b || da != db,
            (
                PocSyntax::Type1 {
                    delta_pic_order_cnt: a,
                    ..
                },
                PocSyntax::Type1 {
                    delta_pic_order_cnt: b,
                    ..
                },
            ) => a != b,
            (PocSyntax::Type2, PocSyntax::Type2) => false,
            // The active SPS changed its POC type: certainly a new picture.
            _ => true,
        };
        prev.frame_num != self.frame_num
            || prev.pps_id != self.pps_id
            || prev.structure != self.structure
            || (prev.nal_ref_idc == 0) != (self.nal_ref_idc == 0)
            || poc_differs
            || prev.is_idr() != self.is_idr()
            || (prev.is_idr() && self.is_idr() && prev.idr_pic_id != self.idr_pic_id)
    }
}

/// The SPSs and PPSs seen so far in a stream, needed to parse slice headers.
#[derive(Default)]
pub struct ParameterSetTable {
    ctx: h264_reader::Context,
}

impl std::fmt::Debug for ParameterSetTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParameterSetTable")
            .field(
                "sps_ids",
                &self.ctx.sps().map(|s| s.id().id()).collect::<Vec<_>>(),
            )
            .field(
                "pps_ids",
                &self
                    .ctx
                    .pps()
                    .map(|p| p.pic_parameter_set_id.id())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl ParameterSetTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses an SPS NAL unit and makes it available to later PPSs and slices.
    pub fn insert_sps(&mut self, nal: &[u8]) -> Result<SpsInfo, H264Error> {
        let sps = parse_sps_syntax(nal)?;
        let info = SpsInfo::from_parsed(&sps)?;
        self.ctx.put_seq_param_set(sps);
        Ok(info)
    }

    /// Parses a PPS NAL unit (its SPS must be in the table) and stores it.
    pub fn insert_pps(&mut self, nal: &[u8]) -> Result<PpsInfo, H264Error> {
        let ids = parse_pps_ids(nal)?;
        let pps = PicParameterSet::from_bits(&self.ctx, RefNal::new(nal, &[], true).rbsp_bits())
            .map_err(|e| match e {
                h264_reader::nal::pps::PpsError::UnknownSeqParamSetId(_) => {
                    H264Error::Pps(format!(
                        "it refers to SPS {}, which has not been seen; send the SPS before the PPS",
                        ids.sps_id
                    ))
                }
                other => H264Error::Pps(format!("{other:?}")),
            })?;
        self.ctx.put_pic_param_set(pps);
        Ok(ids)
    }

    /// Parses the header of a slice NAL unit (types 1, 2 or 5) against the stored parameter sets.
    pub fn parse_slice_header(&self, nal: &[u8]) -> Result<SliceHeaderInfo, H264Error> {
        let (nal_ref_idc, nal_type) = nal_header(nal)?;
        if !matches!(nal_type.0, 1 | 2 | 5) {
            return Err(H264Error::WrongNalType {
                expected: "slice (type 1, 2 or 5)",
                found: nal_type.0,
            });
        }
        let header =
            NalHeader::new(nal[0]).map_err(|_| H264Error::ForbiddenBit { header: nal[0] })?;
        let ref_nal = RefNal::new(nal, &[], true);
        let mut bits = ref_nal.rbsp_bits();
        let (sh, sps, pps) =
            SliceHeader::from_bits(&self.ctx, &mut bits, header, None).map_err(|e| {
                use h264_reader::nal::slice::SliceHeaderError as E;
                match e {
                    E::UndefinedPicParamSetId(id) => H264Error::SliceHeader(format!(
                        "it refers to PPS {}, which has not been seen; a stream must start at a \
                         keyframe that carries its SPS and PPS",
                        id.id()
                    )),
                    E::UndefinedSeqParamSetId(id) => H264Error::SliceHeader(format!(
                        "its PPS refers to SPS {}, which has not been seen",
                        id.id()
                    )),
                    other => H264Error::SliceHeader(format!("{other:?}")),
                }
            })?;
        let structure = match sh.field_pic {
            FieldPic::Frame => PictureStructure::Frame,
            FieldPic::Field(Field::Top) => PictureStructure::TopField,
            FieldPic::Field(Field::Bottom) => PictureStructure::BottomField,
        };
        let poc = match (&sps.pic_order_cnt, &sh.pic_order_cnt_lsb) {
            (
                PicOrderCntType::TypeZero {
                    log2_max_pic_order_cnt_lsb_minus4,
                },
                lsb,
            ) => {
                let (pic_order_cnt_lsb, delta_pic_order_cnt_bottom) = match lsb {
                    Some(PicOrderCountLsb::Frame(lsb)) => (*lsb, 0),
                    Some(PicOrderCountLsb::FieldsAbsolute {
                        pic_order_cnt_lsb,
                        delta_pic_order_cnt_bottom,
                    }) => (*pic_order_cnt_lsb, *delta_pic_order_cnt_bottom),
                    _ => (0, 0),
                };
                PocSyntax::Type0 {
                    log2_max_poc_lsb: log2_max_pic_order_cnt_lsb_minus4 + 4,
                    pic_order_cnt_lsb,
                    delta_pic_order_cnt_bottom,
                }
            }
            (
                PicOrderCntType::TypeOne {
                    offset_for_non_ref_pic,
                    offset_for_top_to_bottom_field,
                    offsets_for_ref_frame,
                    ..
                },
                lsb,
            ) => PocSyntax::Type1 {
                delta_pic_order_cnt: match lsb {
                    Some(PicOrderCountLsb::FieldsDelta(d)) => *d,
                    _ => [0, 0],
                },
                offset_for_non_ref_pic: *offset_for_non_ref_pic,
                offset_for_top_to_bottom_field: *offset_for_top_to_bottom_field,
                offsets_for_ref_frame: offsets_for_ref_frame.clone(),
            },
            (PicOrderCntType::TypeTwo, _) => PocSyntax::Type2,
        };
        let has_mmco5 = matches!(
            &sh.dec_ref_pic_marking,
            Some(DecRefPicMarking::Adaptive(ops))
                if ops.iter().any(|op| matches!(op, MemoryManagementControlOperation::AllRefPicturesUnused))
        );
        Ok(SliceHeaderInfo {
            nal_type,
            nal_ref_idc,
            first_mb_in_slice: sh.first_mb_in_slice,
            pps_id: pps.pic_parameter_set_id.id(),
            sps_id: sps.seq_parameter_set_id.id(),
            frame_num: sh.frame_num,
            max_frame_num: 1u32 << sps.log2_max_frame_num(),
            structure,
            idr_pic_id: sh.idr_pic_id,
            poc,
            redundant_pic_cnt: sh.redundant_pic_cnt.unwrap_or(0),
            has_mmco5,
        })
    }
}

/// Reads `first_mb_in_slice` on its own (no parameter sets needed): the fallback for deciding
/// picture boundaries when a slice header cannot be parsed.
pub fn first_mb_in_slice(nal: &[u8]) -> Option<u32> {
    let head = nal.get(1..nal.len().min(12))?;
    let rbsp = remove_emulation_prevention(head);
    BitReader::new(&rbsp).read_ue("first_mb_in_slice").ok()
}

/// Whether an SEI NAL unit contains a recovery point message (payload type 6).
pub fn sei_has_recovery_point(nal: &[u8]) -> bool {
    let Some(payload) = nal.get(1..) else {
        return false;
    };
    let rbsp = remove_emulation_prevention(payload);
    let mut pos = 0usize;
    // Each message: payload type and size as runs of 0xFF plus a final byte, then the payload.
    let read_varint = |pos: &mut usize| -> Option<usize> {
        let mut value = 0usize;
        loop {
            let b = *rbsp.get(*pos)?;
            *pos += 1;
            value = value.checked_add(usize::from(b))?;
            if b != 0xFF {
                return Some(value);
            }
        }
    };
    // Stop at the rbsp_trailing_bits byte (0x80) or the end.
    while rbsp.get(pos).is_some_and(|&b| b != 0x80) || rbsp.len() > pos + 1 {
        let Some(payload_type) = read_varint(&mut pos) else {
            return false;
        };
        let Some(size) = read_varint(&mut pos) else {
            return false;
        };
        if payload_type == 6 {
            return true;
        }
        match pos.checked_add(size) {
            Some(next) if next <= rbsp.len() => pos = next,
            _ => return false,
        }
    }
    false
}

// ---------------------------------------------------------------------------------------------
// Picture order count and presentation order
// ---------------------------------------------------------------------------------------------

/// Computes `PicOrderCnt` (H.264 8.2.1) picture by picture in decode order.
///
/// Feed the first slice header of each primary coded picture to [`PocCounter::next_picture`].
/// The value returned for a picture with MMCO 5 is its POC *after* the MMCO 5 adjustment (0 for a
/// frame), because such a picture starts a new POC period like an IDR.
#[derive(Clone, Debug, Default)]
pub struct PocCounter {
    /// Type 0: `prevPicOrderCntMsb` / `prevPicOrderCntLsb` of the previous reference picture.
    prev_ref_msb: i64,
    prev_ref_lsb: i64,
    /// Types 1 and 2: `FrameNumOffset` and `frame_num` of the previous picture.
    prev_frame_num_offset: i64,
    prev_frame_num: i64,
    prev_had_mmco5: bool,
}

impl PocCounter {
    /// A counter at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Returns the picture's POC (`Min(TopFieldOrderCnt, BottomFieldOrderCnt)` for a frame, the
    /// field's own count for a field) and advances the state.
    pub fn next_picture(&mut self, slice: &SliceHeaderInfo) -> i32 {
        let idr = slice.is_idr();
        let is_ref = slice.nal_ref_idc != 0;
        let frame_num = i64::from(slice.frame_num);
        let max_frame_num = i64::from(slice.max_frame_num);
        let (top, bottom) = match &slice.poc {
            PocSyntax::Type0 {
                log2_max_poc_lsb,
                pic_order_cnt_lsb,
                delta_pic_order_cnt_bottom,
            } => {
                let max_lsb = 1i64 << log2_max_poc_lsb.min(&16);
                let (prev_msb, prev_lsb) = if idr {
                    (0, 0)
                } else {
                    (self.prev_ref_msb, self.prev_ref_lsb)
                };
                let lsb = i64::from(*pic_order_cnt_lsb);
                let msb = if lsb < prev_lsb && prev_lsb - lsb >= max_lsb / 2 {
                    prev_msb.wrapping_add(max_lsb)
                } else if lsb > prev_lsb && lsb - prev_lsb > max_lsb / 2 {
                    prev_msb.wrapping_sub(max_lsb)
                } else {
                    prev_msb
                };
                let top = msb.wrapping_add(lsb);
                let bottom = match slice.structure {
                    PictureStructure::Frame => {
                        top.wrapping_add(i64::from(*delta_pic_order_cnt_bottom))
                    }
                    _ => top,
                };
                if is_ref {
                    if slice.has_mmco5 {
                        // 8.2.1.1: after MMCO 5 the next picture counts from this one's
                        // (adjusted) top field order count, or from zero after a bottom field.
                        self.prev_ref_msb = 0;
                        self.prev_ref_lsb = match slice.structure {
                            PictureStructure::BottomField => 0,
                            PictureStructure::TopField => 0,
                            PictureStructure::Frame => top - top.min(bottom),
                        };
                    } else {
                        self.prev_ref_msb = msb;
                        self.prev_ref_lsb = lsb;
                    }
                }
                (top, bottom)
            }
            PocSyntax::Type1 {
                delta_pic_order_cnt,
                offset_for_non_ref_pic,
                offset_for_top_to_bottom_field,
                offsets_for_ref_frame,
            } => {
                let frame_num_offset = self.frame_num_offset(idr, frame_num, max_frame_num);
                let cycle_len = offsets_for_ref_frame.len() as i64;
                let mut abs_frame_num = if cycle_len != 0 {
                    frame_num_offset.wrapping_add(frame_num)
                } else {
                    0
                };
                if !is_ref && abs_frame_num > 0 {
                    abs_frame_num -= 1;
                }
                let mut expected = 0i64;
                if abs_frame_num > 0 {
                    let cycle_cnt = (abs_frame_num - 1) / cycle_len;
                    let in_cycle = ((abs_frame_num - 1) % cycle_len) as usize;
                    let delta_per_cycle = offsets_for_ref_frame
                        .iter()
                        .fold(0i64, |acc, &o| acc.wrapping_add(i64::from(o)));
                    expected = cycle_cnt.wrapping_mul(delta_per_cycle);
                    for &o in offsets_for_ref_frame.iter().take(in_cycle + 1) {
                        expected = expected.wrapping_add(i64::from(o));
                    }
                }
                if !is_ref {
                    expected = expected.wrapping_add(i64::from(*offset_for_non_ref_pic));
                }
                let d0 = i64::from(delta_pic_order_cnt[0]);
                let d1 = i64::from(delta_pic_order_cnt[1]);
                let t2b = i64::from(*offset_for_top_to_bottom_field);
                let pair = match slice.structure {
                    PictureStructure::Frame => {
                        let top = expected.wrapping_add(d0);
                        (top, top.wrapping_add(t2b).wrapping_add(d1))
                    }
                    PictureStructure::TopField => {
                        let top = expected.wrapping_add(d0);
                        (top, top)
                    }
                    PictureStructure::BottomField => {
                        let bottom = expected.wrapping_add(t2b).wrapping_add(d0);
                        (bottom, bottom)
                    }
                };
                self.finish_frame_num_picture(frame_num_offset, frame_num, slice.has_mmco5);
                pair
            }
            PocSyntax::Type2 => {
                let frame_num_offset = self.frame_num_offset(idr, frame_num, max_frame_num);
                let temp = if idr {
                    0
                } else if is_ref {
                    frame_num_offset.wrapping_add(frame_num).wrapping_mul(2)
                } else {
                    frame_num_offset
                        .wrapping_add(frame_num)
                        .wrapping_mul(2)
                        .wrapping_sub(1)
                };
                self.finish_frame_num_picture(frame_num_offset, frame_num, slice.has_mmco5);
                (temp, temp)
            }
        };
        if slice.has_mmco5 {
            return 0;
        }
        let poc = match slice.structure {
            PictureStructure::Frame => top.min(bottom),
            PictureStructure::TopField => top,
            PictureStructure::BottomField => bottom,
        };
        poc.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
    }

    fn frame_num_offset(&self, idr: bool, frame_num: i64, max_frame_num: i64) -> i64 {
        let prev_offset = if self.prev_had_mmco5 {
            0
        } else {
            self.prev_frame_num_offset
        };
        if idr {
            0
        } else if self.prev_frame_num > frame_num {
            prev_offset.wrapping_add(max_frame_num)
        } else {
            prev_offset
        }
    }

    fn finish_frame_num_picture(&mut self, frame_num_offset: i64, frame_num: i64, mmco5: bool) {
        self.prev_frame_num_offset = frame_num_offset;
        // After MMCO 5 the picture is inferred to have had frame_num 0.
        self.prev_frame_num = if mmco5 { 0 } else { frame_num };
        self.prev_had_mmco5 = mmco5;
    }
}

/// Presentation indices for access units given in decode order as `(poc, resets_poc)` pairs
/// (`resets_poc`: IDR or MMCO 5, see [`AccessUnit::poc_reset`]).
///
/// Within each POC period (from one reset to the next) pictures are presented in increasing POC
/// order (ties keep decode order); every picture of a period is presented before any picture of
/// the next one. The result for access unit `i` is its rank in the whole stream, so an importer
/// can set `pts = presentation_index * frame_duration`. Streams without reordering get
/// `0, 1, 2, ...`.
pub fn presentation_order(access_units: &[(i32, bool)]) -> Vec<u64> {
    let mut order = vec![0u64; access_units.len()];
    let mut period_start = 0usize;
    let mut scratch: Vec<usize> = Vec::new();
    for end in 1..=access_units.len() {
        let period_ends = end == access_units.len() || access_units[end].1;
        if !period_ends {
            continue;
        }
        scratch.clear();
        scratch.extend(period_start..end);
        scratch.sort_by_key(|&i| (access_units[i].0, i));
        for (rank, &i) in scratch.iter().enumerate() {
            order[i] = (period_start + rank) as u64;
        }
        period_start = end;
    }
    order
}

/// Presentation order computed on the fly, the way a decoder's output process does it.
///
/// [`presentation_order`] needs a whole POC period before it can rank anything, and a stream with
/// a single IDR is one period. This instead holds back at most `max_reorder` pictures (from the
/// SPS's `max_num_reorder_frames`, or 16, the largest DPB, when the SPS does not say): once more
/// are pending, the one with the lowest POC is next in presentation order. A POC reset releases
/// everything pending. For a conforming stream the result equals [`presentation_order`].
#[derive(Clone, Debug)]
pub struct PresentationOrderer {
    max_reorder: usize,
    /// Pending pictures as `(poc, decode_index)`, lowest first.
    pending: std::collections::BinaryHeap<std::cmp::Reverse<(i32, u64)>>,
    next_decode_index: u64,
    next_presentation_index: u64,
}

impl PresentationOrderer {
    /// The reorder depth to use when the SPS does not signal `max_num_reorder_frames`.
    pub const DEFAULT_MAX_REORDER: u32 = 16;

    /// An orderer holding back at most `max_reorder` pictures.
    pub fn new(max_reorder: u32) -> Self {
        Self {
            max_reorder: max_reorder.min(Self::DEFAULT_MAX_REORDER) as usize,
            pending: std::collections::BinaryHeap::new(),
            next_decode_index: 0,
            next_presentation_index: 0,
        }
    }

    /// Adds the next access unit in decode order; returns the `(decode_index,
    /// presentation_index)` pairs that became final, in presentation order.
    pub fn push(&mut self, poc: i32, poc_reset: bool) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        if poc_reset {
            self.drain_into(&mut out, 0);
        }
        self.pending
            .push(std::cmp::Reverse((poc, self.next_decode_index)));
        self.next_decode_index += 1;
        self.drain_into(&mut out, self.max_reorder);
        out
    }

    /// Ends the stream: everything pending, in presentation order.
    pub fn finish(&mut self) -> Vec<(u64, u64)> {
        let mut out = Vec::new();
        self.drain_into(&mut out, 0);
        out
    }

    fn drain_into(&mut self, out: &mut Vec<(u64, u64)>, keep: usize) {
        while self.pending.len() > keep {
            let Some(std::cmp::Reverse((_, decode_index))) = self.pending.pop() else {
                break;
            };
            out.push((decode_index, self.next_presentation_index));
            self.next_presentation_index += 1;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Access units
// ---------------------------------------------------------------------------------------------

/// One access unit (one coded picture and the NAL units that go with it), in decode order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessUnit {
    /// All NAL units of the access unit (AUD, SPS, PPS, SEI, slices ...) in Annex B form, each
    /// preceded by a 4-byte start code.
    pub data: Vec<u8>,
    /// Byte offset in the input stream of the access unit's first start code.
    pub byte_offset: u64,
    /// Whether the picture is an IDR picture (decoding can start here).
    pub is_keyframe: bool,
    /// Whether the access unit carries a recovery point SEI (decoding can start here with the
    /// described recovery; open-GOP streams use this instead of IDR).
    pub is_recovery_point: bool,
    /// Picture order count (H.264 8.2.1). Relative to the last POC reset.
    pub poc: i32,
    /// Whether POC restarts here (IDR or MMCO 5): everything before is presented first.
    pub poc_reset: bool,
    /// The SPS carried in this access unit, if any (the first one when there are several).
    pub sps: Option<SpsInfo>,
}

/// Upper bound on a single NAL unit in [`AccessUnitSplitter`] (guards against non-Annex B input).
pub const MAX_NAL_BYTES: usize = 64 << 20;

/// Upper bound on one access unit before the splitter cuts it and reports an error.
pub const MAX_ACCESS_UNIT_BYTES: usize = 256 << 20;

#[derive(Default)]
struct PendingAccessUnit {
    data: Vec<u8>,
    byte_offset: u64,
    first_slice: Option<SliceHeaderInfo>,
    has_picture: bool,
    is_keyframe: bool,
    is_recovery_point: bool,
    poc: i32,
    poc_reset: bool,
    sps: Option<SpsInfo>,
    nal_types: Vec<u8>,
    error_reported: bool,
}

/// Splits an Annex B H.264 elementary stream into access units, with bounded memory.
///
/// Feed bytes in chunks of any size with [`push`](Self::push), take finished items with
/// [`next_access_unit`](Self::next_access_unit) after each push, and call
/// [`finish`](Self::finish) at the end of the stream to flush the last access unit. Memory
/// stays around one NAL unit plus one access unit, whatever the stream size.
///
/// Problems (unparsable SPS/PPS/slice headers, garbage) come out as `Err` items in stream
/// order, located by NAL index and byte offset; splitting continues after them. When a slice
/// header cannot be parsed, `first_mb_in_slice == 0` decides whether it starts a new picture,
/// and that access unit's `poc` is a guess (previous + 1).
#[derive(Default)]
pub struct AccessUnitSplitter {
    buf: Vec<u8>,
    /// Stream offset of `buf[0]`.
    buf_start: u64,
    /// Where the next start-code search begins (index into `buf`).
    scan_from: usize,
    /// Index in `buf` of the current NAL unit's first byte (after its start code).
    nal_start: Option<usize>,
    /// Stream offset of the current NAL unit's start code.
    nal_offset: u64,
    nal_index: u64,
    finished: bool,
    params: ParameterSetTable,
    poc: PocCounter,
    last_poc: i32,
    current: PendingAccessUnit,
    ready: VecDeque<Result<AccessUnit, H264Error>>,
}

impl std::fmt::Debug for AccessUnitSplitter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessUnitSplitter")
            .field("buffered", &self.buf.len())
            .field("stream_offset", &self.buf_start)
            .field("nal_index", &self.nal_index)
            .field("ready", &self.ready.len())
            .finish()
    }
}

impl AccessUnitSplitter {
    /// A splitter at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the next bytes of the stream.
    pub fn push(&mut self, chunk: &[u8]) {
        if self.finished {
            return;
        }
        self.buf.extend_from_slice(chunk);
        self.scan();
    }

    /// Marks the end of the stream: the last NAL unit and access unit are completed.
    pub fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        let buf = std::mem::take(&mut self.buf);
        match self.nal_start {
            Some(start) => {
                let nal = trim_trailing_zeros(buf.get(start..).unwrap_or(&[]));
                self.handle_nal(nal, self.nal_offset);
            }
            None => self.report_leading_garbage(&buf, buf.len()),
        }
        self.flush_access_unit();
        let cur = std::mem::take(&mut self.current);
        if !cur.data.is_empty() {
            self.ready.push_back(Err(H264Error::TrailingNonPicture {
                bytes: cur.data.len(),
                nal_types: cur.nal_types,
                offset: cur.byte_offset,
            }));
        }
    }

    /// The next finished access unit (or problem), in stream order.
    pub fn next_access_unit(&mut self) -> Option<Result<AccessUnit, H264Error>> {
        self.ready.pop_front()
    }

    /// The parameter sets seen so far.
    pub fn parameter_sets(&self) -> &ParameterSetTable {
        &self.params
    }

    /// Bytes held for the NAL unit in progress (the memory bound, apart from the access unit
    /// being assembled and finished items not yet taken).
    pub fn buffered_bytes(&self) -> usize {
        self.buf.len()
    }

    fn scan(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        loop {
            let Some(sc) = find_start_code(&buf, self.scan_from) else {
                // The last two bytes may begin a start code that the next chunk completes.
                self.scan_from = buf.len().saturating_sub(2).max(self.nal_start.unwrap_or(0));
                break;
            };
            let sc_first = if sc > 0 && buf[sc - 1] == 0 && self.nal_start != Some(sc) {
                sc - 1
            } else {
                sc
            };
            let sc_offset = self.buf_start + sc_first as u64;
            match self.nal_start {
                Some(start) => {
                    let nal = trim_trailing_zeros(buf.get(start..sc).unwrap_or(&[]));
                    self.handle_nal(nal, self.nal_offset);
                }
                None => self.report_leading_garbage(&buf, sc_first),
            }
            self.nal_start = Some(sc + START_CODE.len());
            self.nal_offset = sc_offset;
            self.scan_from = sc + START_CODE.len();
        }
        self.buf = buf;
        self.compact();
    }

    fn report_leading_garbage(&mut self, buf: &[u8], end: usize) {
        let leading = buf.get(..end).unwrap_or(&[]);
        if leading.iter().any(|&b| b != 0) {
            self.ready.push_back(Err(H264Error::LeadingGarbage {
                bytes: leading.len() as u64,
                offset: self.buf_start + leading.len() as u64,
            }));
        }
    }

    /// Drops consumed bytes and enforces [`MAX_NAL_BYTES`].
    fn compact(&mut self) {
        let consumed = match self.nal_start {
            Some(start) => start,
            // No start code yet: everything but a possible partial 4-byte start code is garbage.
            None => {
                let keep_from = self.buf.len().saturating_sub(3);
                if keep_from > 0 {
                    let dropped = self.buf.get(..keep_from).unwrap_or(&[]);
                    if dropped.iter().any(|&b| b != 0) {
                        self.ready.push_back(Err(H264Error::LeadingGarbage {
                            bytes: keep_from as u64,
                            offset: self.buf_start + keep_from as u64,
                        }));
                    }
                }
                keep_from
            }
        };
        if consumed > 0 && (consumed >= self.buf.len() / 2 || consumed >= 1 << 20) {
            self.buf.drain(..consumed);
            self.buf_start += consumed as u64;
            self.scan_from = self.scan_from.saturating_sub(consumed);
            self.nal_start = self.nal_start.map(|s| s.saturating_sub(consumed));
        }
        if let Some(start) = self.nal_start
            && self.buf.len() - start > MAX_NAL_BYTES
        {
            self.ready.push_back(Err(H264Error::NalTooLong {
                offset: self.nal_offset,
                limit: MAX_NAL_BYTES,
            }));
            // Forget the over-long NAL; resume at the next start code.
            let keep_from = self.buf.len().saturating_sub(2);
            self.buf.drain(..keep_from);
            self.buf_start += keep_from as u64;
            self.scan_from = 0;
            self.nal_start = None;
            self.nal_index += 1;
        }
    }

    fn handle_nal(&mut self, nal: &[u8], offset: u64) {
        if nal.is_empty() {
            return;
        }
        let index = self.nal_index;
        self.nal_index += 1;
        let nal_type = match nal_header(nal) {
            Ok((_, t)) => t,
            Err(e) => {
                self.report_at(index, offset, e);
                // Keep the bytes with the current access unit; a decoder will skip them.
                self.append(nal, offset, NalType(nal[0] & 0x1F));
                return;
            }
        };
        if nal_type.starts_access_unit() {
            if self.current.has_picture {
                self.flush_access_unit();
            }
            match nal_type {
                NalType::SPS => match self.params.insert_sps(nal) {
                    Ok(info) => {
                        if self.current.sps.is_none() {
                            self.current.sps = Some(info);
                        }
                    }
                    Err(e) => self.report_at(index, offset, e),
                },
                NalType::PPS => {
                    if let Err(e) = self.params.insert_pps(nal) {
                        self.report_at(index, offset, e);
                    }
                }
                NalType::SEI if sei_has_recovery_point(nal) => {
                    self.current.is_recovery_point = true;
                }
                _ => {}
            }
        } else if matches!(nal_type.0, 1 | 2 | 5) {
            self.handle_slice(nal, offset, index, nal_type);
        }
        self.append(nal, offset, nal_type);
    }

    fn report_at(&mut self, index: u64, offset: u64, error: H264Error) {
        self.ready.push_back(Err(H264Error::AtNal {
            index,
            offset,
            source: Box::new(error),
        }));
    }

    fn handle_slice(&mut self, nal: &[u8], offset: u64, index: u64, nal_type: NalType) {
        let parsed = self.params.parse_slice_header(nal);
        let new_picture = match (&self.current.first_slice, &parsed) {
            _ if !self.current.has_picture => false,
            (Some(prev), Ok(cur)) => cur.redundant_pic_cnt == 0 && cur.starts_new_picture(prev),
            _ => first_mb_in_slice(nal) == Some(0),
        };
        if new_picture {
            self.flush_access_unit();
        }
        if let Err(e) = &parsed
            && !self.current.error_reported
        {
            self.current.error_reported = true;
            self.report_at(index, offset, e.clone());
        }
        if self.current.has_picture {
            return;
        }
        self.current.has_picture = true;
        self.current.is_keyframe = nal_type == NalType::IDR;
        match parsed {
            Ok(slice) => {
                self.current.poc = self.poc.next_picture(&slice);
                self.current.poc_reset = slice.resets_poc();
                self.current.first_slice = Some(slice);
            }
            Err(_) => {
                let idr = nal_type == NalType::IDR;
                self.current.poc = if idr {
                    0
                } else {
                    self.last_poc.saturating_add(1)
                };
                self.current.poc_reset = idr;
            }
        }
        self.last_poc = self.current.poc;
    }

    fn append(&mut self, nal: &[u8], offset: u64, nal_type: NalType) {
        if self.current.data.is_empty() {
            self.current.byte_offset = offset;
        }
        if self.current.data.len() + nal.len() > MAX_ACCESS_UNIT_BYTES {
            self.ready.push_back(Err(H264Error::AccessUnitTooLarge {
                offset: self.current.byte_offset,
                limit: MAX_ACCESS_UNIT_BYTES,
            }));
            if self.current.has_picture {
                self.flush_access_unit();
            } else {
                self.current = PendingAccessUnit::default();
            }
            self.current.byte_offset = offset;
        }
        self.current.data.extend_from_slice(&START_CODE_4);
        self.current.data.extend_from_slice(nal);
        self.current.nal_types.push(nal_type.0);
    }

    fn flush_access_unit(&mut self) {
        if !self.current.has_picture {
            return;
        }
        let cur = std::mem::take(&mut self.current);
        self.ready.push_back(Ok(AccessUnit {
            data: cur.data,
            byte_offset: cur.byte_offset,
            is_keyframe: cur.is_keyframe,
            is_recovery_point: cur.is_recovery_point,
            poc: cur.poc,
            poc_reset: cur.poc_reset,
            sps: cur.sps,
        }));
    }
}

/// Iterates the access units of an Annex B stream read from `reader` in 64 KiB chunks, so a file
/// of any size is processed with bounded memory. Read errors end the iteration with
/// [`H264Error::Io`].
pub struct AccessUnitReader<R> {
    reader: R,
    splitter: AccessUnitSplitter,
    chunk: Vec<u8>,
    done: bool,
}

impl<R: std::io::Read> AccessUnitReader<R> {
    /// Wraps a reader positioned at the start of the stream.
    pub fn new(reader: R) -> Self {
        Self {
            reader,
            splitter: AccessUnitSplitter::new(),
            chunk: vec![0; 64 << 10],
            done: false,
        }
    }
}

impl<R: std::io::Read> Iterator for AccessUnitReader<R> {
    type Item = Result<AccessUnit, H264Error>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.splitter.next_access_unit() {
                return Some(item);
            }
            if self.done {
                return None;
            }
            match self.reader.read(&mut self.chunk) {
                Ok(0) => {
                    self.done = true;
                    self.splitter.finish();
                }
                Ok(n) => self.splitter.push(&self.chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.done = true;
                    return Some(Err(H264Error::Io(e.to_string())));
                }
            }
        }
    }
}

/// Splits a whole in-memory Annex B stream into access units; fails on the first problem.
pub fn split_access_units(stream: &[u8]) -> Result<Vec<AccessUnit>, H264Error> {
    let mut splitter = AccessUnitSplitter::new();
    splitter.push(stream);
    splitter.finish();
    let mut out = Vec::new();
    while let Some(item) = splitter.next_access_unit() {
        out.push(item?);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Codec strings and names
// ---------------------------------------------------------------------------------------------

/// The WebCodecs / RFC 6381 codec string, `avc1.PPCCLL` in uppercase hex (e.g. `avc1.64001F`).
pub fn codec_string(sps: &SpsInfo) -> String {
    format!(
        "avc1.{:02X}{:02X}{:02X}",
        sps.profile_idc, sps.constraint_flags, sps.level_idc
    )
}

/// A profile's name from `profile_idc` and the constraint flags byte.
pub fn profile_name(profile_idc: u8, constraint_flags: u8) -> &'static str {
    let set1 = constraint_flags & 0x40 != 0;
    let set3 = constraint_flags & 0x10 != 0;
    let set4 = constraint_flags & 0x08 != 0;
    let set5 = constraint_flags & 0x04 != 0;
    match profile_idc {
        66 if set1 => "Constrained Baseline",
        66 => "Baseline",
        77 => "Main",
        88 => "Extended",
        100 if set4 && set5 => "Constrained High",
        100 if set4 => "Progressive High",
        100 => "High",
        110 if set3 => "High 10 Intra",
        110 => "High 10",
        122 if set3 => "High 4:2:2 Intra",
        122 => "High 4:2:2",
        244 if set3 => "High 4:4:4 Intra",
        244 => "High 4:4:4 Predictive",
        44 => "CAVLC 4:4:4 Intra",
        83 => "Scalable Baseline",
        86 => "Scalable High",
        118 => "Multiview High",
        128 => "Stereo High",
        _ => "unknown profile",
    }
}

/// A level's name: `1b`, `3`, `3.1` ...
pub fn level_name(profile_idc: u8, constraint_flags: u8, level_idc: u8) -> String {
    let set3 = constraint_flags & 0x10 != 0;
    if level_idc == 9 || (level_idc == 11 && set3 && matches!(profile_idc, 66 | 77 | 88)) {
        return "1b".to_string();
    }
    if level_idc.is_multiple_of(10) {
        format!("{}", level_idc / 10)
    } else {
        format!("{}.{}", level_idc / 10, level_idc % 10)
    }
}

// ---------------------------------------------------------------------------------------------
// AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.3.3.1)
// ---------------------------------------------------------------------------------------------

/// The chroma / bit-depth extension of the avcC record for High profiles (100, 110, 122, 144).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AvcHighProfileExtension {
    /// `chroma_format_idc`.
    pub chroma_format_idc: u8,
    /// Luma bit depth.
    pub bit_depth_luma: u8,
    /// Chroma bit depth.
    pub bit_depth_chroma: u8,
    /// SPS extension NAL units.
    pub sps_ext: Vec<Vec<u8>>,
}

/// A parsed `AVCDecoderConfigurationRecord` (the body of an MP4 `avcC` box).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AvcDecoderConfig {
    /// `AVCProfileIndication`.
    pub profile_idc: u8,
    /// `profile_compatibility` (the SPS constraint flags byte).
    pub profile_compatibility: u8,
    /// `AVCLevelIndication`.
    pub level_idc: u8,
    /// Size of NAL length prefixes in samples: 1, 2 or 4.
    pub length_size: u8,
    /// SPS NAL units.
    pub sps: Vec<Vec<u8>>,
    /// PPS NAL units.
    pub pps: Vec<Vec<u8>>,
    /// High-profile extension, when present.
    pub high_profile: Option<AvcHighProfileExtension>,
}

fn is_high_profile_with_extension(profile_idc: u8) -> bool {
    matches!(profile_idc, 100 | 110 | 122 | 144)
}

impl AvcDecoderConfig {
    /// Builds the record from SPS and PPS NAL units (length size 4). The profile fields and
    /// the High-profile extension come from the first SPS.
    pub fn from_parameter_sets(sps: &[&[u8]], pps: &[&[u8]]) -> Result<Self, H264Error> {
        let first = sps
            .first()
            .ok_or_else(|| H264Error::AvcConfig("at least one SPS is needed".into()))?;
        if sps.len() > 31 {
            return Err(H264Error::AvcConfig(format!(
                "{} SPSs given; the record holds at most 31",
                sps.len()
            )));
        }
        if pps.len() > 255 {
            return Err(H264Error::AvcConfig(format!(
                "{} PPSs given; the record holds at most 255",
                pps.len()
            )));
        }
        for (kind, list, expected) in [("SPS", sps, NalType::SPS), ("PPS", pps, NalType::PPS)] {
            for (i, nal) in list.iter().enumerate() {
                let (_, t) = nal_header(nal)?;
                if t != expected {
                    return Err(H264Error::AvcConfig(format!(
                        "{kind} {i} has nal_unit_type {}",
                        t.0
                    )));
                }
                if nal.len() > usize::from(u16::MAX) {
                    return Err(H264Error::AvcConfig(format!(
                        "{kind} {i} is {} bytes; at most 65535 fit",
                        nal.len()
                    )));
                }
            }
        }
        let info = parse_sps(first)?;
        Ok(AvcDecoderConfig {
            profile_idc: info.profile_idc,
            profile_compatibility: info.constraint_flags,
            level_idc: info.level_idc,
            length_size: 4,
            sps: sps.iter().map(|s| s.to_vec()).collect(),
            pps: pps.iter().map(|p| p.to_vec()).collect(),
            high_profile: is_high_profile_with_extension(info.profile_idc).then_some(
                AvcHighProfileExtension {
                    chroma_format_idc: info.chroma_format_idc,
                    bit_depth_luma: info.bit_depth_luma,
                    bit_depth_chroma: info.bit_depth_chroma,
                    sps_ext: Vec::new(),
                },
            ),
        })
    }

    /// Serialises the record.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = vec![
            1,
            self.profile_idc,
            self.profile_compatibility,
            self.level_idc,
            0xFC | (self.length_size.saturating_sub(1) & 3),
            0xE0 | (self.sps.len().min(31) as u8),
        ];
        let put_list = |out: &mut Vec<u8>, list: &[Vec<u8>]| {
            for nal in list {
                let len = nal.len().min(usize::from(u16::MAX));
                out.extend_from_slice(&(len as u16).to_be_bytes());
                out.extend_from_slice(&nal[..len]);
            }
        };
        put_list(&mut out, &self.sps[..self.sps.len().min(31)]);
        out.push(self.pps.len().min(255) as u8);
        put_list(&mut out, &self.pps[..self.pps.len().min(255)]);
        if let Some(ext) = &self.high_profile {
            out.push(0xFC | (ext.chroma_format_idc & 3));
            out.push(0xF8 | (ext.bit_depth_luma.saturating_sub(8) & 7));
            out.push(0xF8 | (ext.bit_depth_chroma.saturating_sub(8) & 7));
            out.push(ext.sps_ext.len().min(255) as u8);
            put_list(&mut out, &ext.sps_ext[..ext.sps_ext.len().min(255)]);
        }
        out
    }

    /// Parses a record. The High-profile extension is optional even for High profiles, because
    /// some muxers omit it.
    pub fn parse(bytes: &[u8]) -> Result<Self, H264Error> {
        let mut pos = 0usize;
        let byte = |pos: &mut usize, what: &str| -> Result<u8, H264Error> {
            let b = *bytes.get(*pos).ok_or_else(|| {
                H264Error::AvcConfig(format!("truncated at byte {} reading {what}", *pos))
            })?;
            *pos += 1;
            Ok(b)
        };
        let version = byte(&mut pos, "configurationVersion")?;
        if version != 1 {
            return Err(H264Error::AvcConfig(format!(
                "configurationVersion is {version}, expected 1"
            )));
        }
        let profile_idc = byte(&mut pos, "AVCProfileIndication")?;
        let profile_compatibility = byte(&mut pos, "profile_compatibility")?;
        let level_idc = byte(&mut pos, "AVCLevelIndication")?;
        let length_size = (byte(&mut pos, "lengthSizeMinusOne")? & 3) + 1;
        if length_size == 3 {
            return Err(H264Error::AvcConfig(
                "lengthSizeMinusOne is 2 (3-byte lengths are not allowed)".into(),
            ));
        }
        let read_list = |pos: &mut usize, count: usize, what: &str| {
            let mut list = Vec::with_capacity(count);
            for i in 0..count {
                let len_bytes = bytes.get(*pos..*pos + 2).ok_or_else(|| {
                    H264Error::AvcConfig(format!("truncated at byte {} in {what} {i} length", *pos))
                })?;
                let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
                *pos += 2;
                let nal = bytes.get(*pos..*pos + len).ok_or_else(|| {
                    H264Error::AvcConfig(format!(
                        "{what} {i} at byte {} claims {len} bytes, only {} remain",
                        *pos,
                        bytes.len().saturating_sub(*pos)
                    ))
                })?;
                *pos += len;
                list.push(nal.to_vec());
            }
            Ok::<_, H264Error>(list)
        };
        let num_sps = usize::from(byte(&mut pos, "numOfSequenceParameterSets")? & 0x1F);
        let sps = read_list(&mut pos, num_sps, "SPS")?;
        let num_pps = usize::from(byte(&mut pos, "numOfPictureParameterSets")?);
        let pps = read_list(&mut pos, num_pps, "PPS")?;
        let high_profile = if is_high_profile_with_extension(profile_idc) && bytes.len() >= pos + 4
        {
            let chroma_format_idc = byte(&mut pos, "chroma_format")? & 3;
            let bit_depth_luma = (byte(&mut pos, "bit_depth_luma_minus8")? & 7) + 8;
            let bit_depth_chroma = (byte(&mut pos, "bit_depth_chroma_minus8")? & 7) + 8;
            let num_ext = usize::from(byte(&mut pos, "numOfSequenceParameterSetExt")?);
            let sps_ext = read_list(&mut pos, num_ext, "SPS extension")?;
            Some(AvcHighProfileExtension {
                chroma_format_idc,
                bit_depth_luma,
                bit_depth_chroma,
                sps_ext,
            })
        } else {
            None
        };
        Ok(AvcDecoderConfig {
            profile_idc,
            profile_compatibility,
            level_idc,
            length_size,
            sps,
            pps,
            high_profile,
        })
    }
}

/// Builds an `AVCDecoderConfigurationRecord` (avcC body, 4-byte lengths) from SPS and PPS NAL
/// units, including the High-profile chroma / bit-depth extension.
pub fn avcc_record(sps: &[&[u8]], pps: &[&[u8]]) -> Result<Vec<u8>, H264Error> {
    Ok(AvcDecoderConfig::from_parameter_sets(sps, pps)?.to_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slice(
        nal_type: NalType,
        nal_ref_idc: u8,
        frame_num: u16,
        poc: PocSyntax,
    ) -> SliceHeaderInfo {
        SliceHeaderInfo {
            nal_type,
            nal_ref_idc,
            first_mb_in_slice: 0,
            pps_id: 0,
            sps_id: 0,
            frame_num,
            max_frame_num: 16,
            structure: PictureStructure::Frame,
            idr_pic_id: (nal_type == NalType::IDR).then_some(0),
            poc,
            redundant_pic_cnt: 0,
            has_mmco5: false,
        }
    }

    fn type0(lsb: u32) -> PocSyntax {
        PocSyntax::Type0 {
            log2_max_poc_lsb: 4,
            pic_order_cnt_lsb: lsb,
            delta_pic_order_cnt_bottom: 0,
        }
    }

    #[test]
    fn poc_type0_wraps_lsb_and_ignores_non_reference_pictures() {
        let mut counter = PocCounter::new();
        let mut pocs = vec![counter.next_picture(&slice(NalType::IDR, 3, 0, type0(0)))];
        for (i, lsb) in [4, 8, 12, 0, 4, 2].into_iter().enumerate() {
            let is_ref = if lsb == 2 { 0 } else { 2 };
            pocs.push(counter.next_picture(&slice(
                NalType::SLICE,
                is_ref,
                i as u16 + 1,
                type0(lsb),
            )));
        }
        assert_eq!(pocs, vec![0, 4, 8, 12, 16, 20, 18]);
    }

    #[test]
    fn poc_type1_follows_the_expected_cycle() {
        let type1 = |d0| PocSyntax::Type1 {
            delta_pic_order_cnt: [d0, 0],
            offset_for_non_ref_pic: -1,
            offset_for_top_to_bottom_field: 0,
            offsets_for_ref_frame: vec![2],
        };
        let mut counter = PocCounter::new();
        let pocs = [
            counter.next_picture(&slice(NalType::IDR, 3, 0, type1(0))),
            counter.next_picture(&slice(NalType::SLICE, 2, 1, type1(0))),
            counter.next_picture(&slice(NalType::SLICE, 0, 2, type1(0))),
            counter.next_picture(&slice(NalType::SLICE, 2, 2, type1(0))),
        ];
        // I P b P: the non-reference picture sits between its neighbours.
        assert_eq!(pocs, [0, 2, 1, 4]);
        assert_eq!(
            presentation_order(&[(0, true), (2, false), (1, false), (4, false)]),
            vec![0, 2, 1, 3]
        );
    }

    #[test]
    fn poc_type2_is_twice_the_frame_count() {
        let mut counter = PocCounter::new();
        let mut pocs = vec![counter.next_picture(&slice(NalType::IDR, 3, 0, PocSyntax::Type2))];
        for (frame_num, is_ref) in [(1, 2), (2, 0), (2, 2), (15, 2), (0, 2)] {
            pocs.push(counter.next_picture(&slice(
                NalType::SLICE,
                is_ref,
                frame_num,
                PocSyntax::Type2,
            )));
        }
        // frame_num wraps from 15 to 0: FrameNumOffset grows by MaxFrameNum (16).
        assert_eq!(pocs, vec![0, 2, 3, 4, 30, 32]);
    }

    #[test]
    fn mmco5_starts_a_new_poc_period() {
        let mut counter = PocCounter::new();
        let idr = slice(NalType::IDR, 3, 0, type0(0));
        let p = slice(NalType::SLICE, 2, 1, type0(4));
        let mut reset = slice(NalType::SLICE, 2, 2, type0(8));
        reset.has_mmco5 = true;
        let after = slice(NalType::SLICE, 2, 1, type0(2));
        let pocs: Vec<(i32, bool)> = [idr, p, reset, after]
            .iter()
            .map(|s| (counter.next_picture(s), s.resets_poc()))
            .collect();
        assert_eq!(pocs, vec![(0, true), (4, false), (0, true), (2, false)]);
        assert_eq!(presentation_order(&pocs), vec![0, 1, 2, 3]);
    }

    #[test]
    fn presentation_order_ranks_within_periods() {
        let aus = [
            (0, true),
            (4, false),
            (2, false),
            (0, true),
            (4, false),
            (2, false),
            (6, false),
        ];
        assert_eq!(presentation_order(&aus), vec![0, 2, 1, 3, 5, 4, 6]);
        assert_eq!(presentation_order(&[]), Vec::<u64>::new());
        // A stream that starts without an IDR still gets ranks from 0.
        assert_eq!(presentation_order(&[(10, false), (8, false)]), vec![1, 0]);
    }

    #[test]
    fn streaming_orderer_matches_batch_order() {
        let aus = [
            (0, true),
            (6, false),
            (2, false),
            (4, false),
            (0, true),
            (4, false),
            (2, false),
        ];
        let batch = presentation_order(&aus);
        for max_reorder in [2, 5, 16] {
            let mut orderer = PresentationOrderer::new(max_reorder);
            let mut got = vec![u64::MAX; aus.len()];
            let mut emitted = Vec::new();
            for &(poc, reset) in &aus {
                emitted.extend(orderer.push(poc, reset));
            }
            emitted.extend(orderer.finish());
            for (decode, presentation) in emitted {
                got[decode as usize] = presentation;
            }
            assert_eq!(got, batch, "max_reorder {max_reorder}");
        }
    }

    #[test]
    fn picture_boundaries_follow_7_4_1_2_4() {
        let a = slice(NalType::SLICE, 2, 3, type0(6));
        let mut b = a.clone();
        b.first_mb_in_slice = 40;
        assert!(
            !b.starts_new_picture(&a),
            "second slice of the same picture"
        );
        let mut c = a.clone();
        c.frame_num = 4;
        assert!(c.starts_new_picture(&a));
        let mut d = a.clone();
        d.nal_ref_idc = 0;
        assert!(d.starts_new_picture(&a));
        let mut e = a.clone();
        e.nal_ref_idc = 1;
        assert!(
            !e.starts_new_picture(&a),
            "only zero-ness of nal_ref_idc matters"
        );
        let idr1 = slice(NalType::IDR, 3, 0, type0(0));
        let mut idr2 = idr1.clone();
        idr2.idr_pic_id = Some(1);
        assert!(
            idr2.starts_new_picture(&idr1),
            "back-to-back IDRs differ in idr_pic_id"
        );
        let mut f = a.clone();
        f.poc = type0(8);
        assert!(f.starts_new_picture(&a));
        let mut g = a.clone();
        g.structure = PictureStructure::BottomField;
        assert!(g.starts_new_picture(&a));
    }

    #[test]
    fn recovery_point_sei() {
        // user data unregistered (type 5, 2 bytes) then recovery point (type 6).
        assert!(sei_has_recovery_point(&[
            0x06, 0x05, 0x02, 0xAA, 0xBB, 0x06, 0x01, 0x84, 0x80
        ]));
        assert!(!sei_has_recovery_point(&[
            0x06, 0x05, 0x02, 0xAA, 0xBB, 0x80
        ]));
        assert!(!sei_has_recovery_point(&[0x06, 0x05, 0xFF]));
        assert!(!sei_has_recovery_point(&[]));
    }

    #[test]
    fn names_and_codec_strings() {
        assert_eq!(profile_name(66, 0xC0), "Constrained Baseline");
        assert_eq!(profile_name(100, 0), "High");
        assert_eq!(level_name(66, 0x10, 11), "1b");
        assert_eq!(level_name(100, 0, 11), "1.1");
        assert_eq!(level_name(100, 0, 30), "3");
        assert_eq!(level_name(100, 0, 31), "3.1");
    }

    #[test]
    fn nal_header_rejects_forbidden_bit() {
        assert_eq!(nal_header(&[0x65]), Ok((3, NalType::IDR)));
        assert_eq!(
            nal_header(&[0xE5]),
            Err(H264Error::ForbiddenBit { header: 0xE5 })
        );
        assert_eq!(nal_header(&[]), Err(H264Error::EmptyNal));
    }

    #[test]
    fn avcc_parse_errors_say_where() {
        let e = AvcDecoderConfig::parse(&[1, 0x64, 0, 0x1E, 0xFF, 0xE1, 0, 10, 0x67]).unwrap_err();
        assert!(e.to_string().contains("claims 10 bytes"), "{e}");
        let e = AvcDecoderConfig::parse(&[2]).unwrap_err();
        assert!(e.to_string().contains("configurationVersion is 2"), "{e}");
        assert!(avcc_record(&[], &[]).is_err());
    }

    #[test]
    fn splitter_reports_garbage_and_missing_parameter_sets() {
        let mut splitter = AccessUnitSplitter::new();
        // Garbage, then a non-IDR slice whose PPS was never sent.
        splitter.push(&[0x12, 0x34, 0, 0, 0, 1, 0x41, 0x9A, 0x02]);
        splitter.finish();
        let items: Vec<_> = std::iter::from_fn(|| splitter.next_access_unit()).collect();
        assert!(
            matches!(
                items[0],
                Err(H264Error::LeadingGarbage {
                    bytes: 2,
                    offset: 2
                })
            ),
            "{items:?}"
        );
        let Err(e) = &items[1] else {
            panic!("expected an error, got {items:?}");
        };
        assert!(e.to_string().contains("NAL unit 0 at byte 2"), "{e}");
        assert!(
            e.to_string().contains("PPS 0, which has not been seen"),
            "{e}"
        );
        let Ok(au) = &items[2] else {
            panic!("the slice still forms an access unit: {items:?}");
        };
        assert_eq!(au.byte_offset, 2);
        assert!(!au.is_keyframe);
    }
}
