//! AV1 bitstream syntax as far as vidlog needs it: OBU headers and the sequence header OBU
//! (AV1 spec 5.3 and 5.5), and the WebCodecs codec string derived from it.
//!
//! Owns [`Av1SequenceHeader`] and [`parse_sequence_header_obu`]. Keyframe detection for samples
//! lives in [`crate::probe`]; frame headers beyond their first bits are not parsed.

use super::bits::{BitReader, OutOfBits};

/// Something wrong with an AV1 OBU.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Av1Error {
    /// Not a sequence header OBU.
    #[error("expected a sequence header OBU (type 1), got OBU type {0}")]
    NotASequenceHeader(u8),
    /// The OBU is cut short or its size field is broken.
    #[error("OBU framing: {0}")]
    Framing(String),
    /// The sequence header ends early.
    #[error("sequence header: {0}")]
    Truncated(#[from] OutOfBits),
    /// A value the spec forbids.
    #[error("sequence header: {0}")]
    Invalid(String),
}

/// OBU types (AV1 spec 6.2.2) vidlog reads.
pub const OBU_SEQUENCE_HEADER: u8 = 1;
/// Starts every temporal unit of a raw stream; MP4 samples leave it out.
pub const OBU_TEMPORAL_DELIMITER: u8 = 2;
pub const OBU_FRAME_HEADER: u8 = 3;
pub const OBU_FRAME: u8 = 6;

/// The parts of an AV1 sequence header vidlog uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Av1SequenceHeader {
    /// `seq_profile`: 0 Main, 1 High, 2 Professional.
    pub seq_profile: u8,
    /// `still_picture`.
    pub still_picture: bool,
    /// `reduced_still_picture_header`.
    pub reduced_still_picture_header: bool,
    /// `seq_level_idx[0]` (level of operating point 0; 31 means "max").
    pub seq_level_idx: u8,
    /// `seq_tier[0]` (false: Main tier, true: High tier).
    pub high_tier: bool,
    /// `max_frame_width_minus_1 + 1`.
    pub max_frame_width: u32,
    /// `max_frame_height_minus_1 + 1`.
    pub max_frame_height: u32,
    /// Bit depth: 8, 10 or 12.
    pub bit_depth: u8,
    /// `mono_chrome`.
    pub monochrome: bool,
    /// `subsampling_x`, `subsampling_y` (1, 1 is 4:2:0).
    pub subsampling: (bool, bool),
    /// `color_primaries`, `transfer_characteristics`, `matrix_coefficients` (2 = unspecified).
    pub colour: (u8, u8, u8),
    /// `color_range` (true: full range).
    pub full_range: bool,
    /// `chroma_sample_position` (4:2:0 only; 0 unknown, 1 vertical, 2 colocated).
    pub chroma_sample_position: u8,
    /// Timing info `(num_units_in_display_tick, time_scale)`, when present.
    pub timing: Option<(u32, u32)>,
}

impl Av1SequenceHeader {
    /// The WebCodecs codec string `av01.P.LLT.DD` (e.g. `av01.0.05M.08`).
    pub fn codec_string(&self) -> String {
        format!(
            "av01.{}.{:02}{}.{:02}",
            self.seq_profile,
            self.seq_level_idx,
            if self.high_tier { 'H' } else { 'M' },
            self.bit_depth
        )
    }

    /// `Main`, `High` or `Professional`.
    pub fn profile_name(&self) -> &'static str {
        match self.seq_profile {
            0 => "Main",
            1 => "High",
            2 => "Professional",
            _ => "unknown profile",
        }
    }

    /// The level as `X.Y` (`seq_level_idx` 8 is 4.0), or `max` for 31.
    pub fn level_name(&self) -> String {
        if self.seq_level_idx == 31 {
            "max".to_string()
        } else {
            format!(
                "{}.{}",
                2 + (self.seq_level_idx >> 2),
                self.seq_level_idx & 3
            )
        }
    }

    /// `4:2:0`, `4:2:2`, `4:4:4` or `monochrome`.
    pub fn chroma_format(&self) -> &'static str {
        match (self.monochrome, self.subsampling) {
            (true, _) => "monochrome",
            (false, (true, true)) => "4:2:0",
            (false, (true, false)) => "4:2:2",
            (false, _) => "4:4:4",
        }
    }
}

/// One OBU of a temporal unit in the low-overhead format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Obu<'a> {
    /// `obu_type`.
    pub kind: u8,
    /// Offset of its header in the temporal unit.
    pub offset: usize,
    /// The whole OBU: header, size field, payload.
    pub bytes: &'a [u8],
    /// Its payload.
    pub payload: &'a [u8],
}

/// Walks the OBUs of a temporal unit; an error (OBU offset, what is wrong) ends the walk.
/// An OBU without a size field runs to the end of the temporal unit.
pub fn obus(sample: &[u8]) -> impl Iterator<Item = Result<Obu<'_>, (usize, String)>> {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        if pos >= sample.len() {
            return None;
        }
        let offset = pos;
        let header = sample[pos];
        let obu = (|| {
            if header & 0x80 != 0 {
                return Err("obu_forbidden_bit is set; the data is corrupt or not AV1".into());
            }
            let mut at = pos + 1 + usize::from(header & 0x04 != 0);
            if at > sample.len() {
                return Err("the OBU extension header is cut short".into());
            }
            let end = if header & 0x02 != 0 {
                let (size, used) = read_leb128(&sample[at..])
                    .ok_or("obu_size is cut short or longer than 8 bytes")?;
                at += used;
                usize::try_from(size)
                    .ok()
                    .and_then(|size| at.checked_add(size))
                    .filter(|&end| end <= sample.len())
                    .ok_or_else(|| {
                        format!(
                            "obu_size {size} runs past the end of the sample ({} bytes left)",
                            sample.len() - at
                        )
                    })?
            } else {
                sample.len()
            };
            Ok(Obu {
                kind: (header >> 3) & 0x0F,
                offset,
                bytes: &sample[offset..end],
                payload: &sample[at..end],
            })
        })();
        // An error ends the walk; an OBU moves past itself.
        pos = obu
            .as_ref()
            .map_or(sample.len(), |o| o.offset + o.bytes.len());
        Some(obu.map_err(|problem: String| (offset, problem)))
    })
}

/// Reads `leb128()`; returns `(value, bytes used)`.
pub fn read_leb128(data: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, &b) in data.iter().take(8).enumerate() {
        value |= u64::from(b & 0x7F) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// Parses a whole sequence header OBU (OBU header, optional size field, payload).
pub fn parse_sequence_header_obu(obu: &[u8]) -> Result<Av1SequenceHeader, Av1Error> {
    let &header = obu
        .first()
        .ok_or_else(|| Av1Error::Framing("empty OBU".into()))?;
    let obu_type = (header >> 3) & 0x0F;
    if obu_type != 1 {
        return Err(Av1Error::NotASequenceHeader(obu_type));
    }
    let mut pos = 1 + usize::from(header & 0x04 != 0);
    let payload = if header & 0x02 != 0 {
        let (size, used) = obu
            .get(pos..)
            .and_then(read_leb128)
            .ok_or_else(|| Av1Error::Framing("obu_size is cut short".into()))?;
        pos += used;
        let end = usize::try_from(size)
            .ok()
            .and_then(|s| pos.checked_add(s))
            .filter(|&end| end <= obu.len())
            .ok_or_else(|| {
                Av1Error::Framing(format!(
                    "obu_size {size} runs past the end ({} bytes left)",
                    obu.len().saturating_sub(pos)
                ))
            })?;
        &obu[pos..end]
    } else {
        obu.get(pos..)
            .ok_or_else(|| Av1Error::Framing("OBU header cut short".into()))?
    };
    parse_sequence_header_payload(payload)
}

fn read_uvlc(r: &mut BitReader<'_>, field: &'static str) -> Result<u32, OutOfBits> {
    let mut leading_zeros = 0u32;
    while !r.read_bit(field)? {
        leading_zeros += 1;
    }
    if leading_zeros >= 32 {
        return Ok(u32::MAX);
    }
    let value = r.read_bits(leading_zeros, field)?;
    Ok(value.saturating_add((1u32 << leading_zeros) - 1))
}

/// Parses `sequence_header_obu()` (AV1 spec 5.5.1) from the OBU payload.
pub fn parse_sequence_header_payload(payload: &[u8]) -> Result<Av1SequenceHeader, Av1Error> {
    let mut r = BitReader::new(payload);
    let seq_profile = r.read_bits(3, "seq_profile")? as u8;
    if seq_profile > 2 {
        return Err(Av1Error::Invalid(format!(
            "seq_profile {seq_profile} is reserved"
        )));
    }
    let still_picture = r.read_bit("still_picture")?;
    let reduced = r.read_bit("reduced_still_picture_header")?;
    let mut timing = None;
    let seq_level_idx;
    let mut high_tier = false;
    if reduced {
        seq_level_idx = r.read_bits(5, "seq_level_idx")? as u8;
    } else {
        let mut decoder_model_info_present = false;
        let mut buffer_delay_length = 0;
        if r.read_bit("timing_info_present_flag")? {
            let num_units = r.read_bits(32, "num_units_in_display_tick")?;
            let time_scale = r.read_bits(32, "time_scale")?;
            timing = Some((num_units, time_scale));
            if r.read_bit("equal_picture_interval")? {
                read_uvlc(&mut r, "num_ticks_per_picture_minus_1")?;
            }
            decoder_model_info_present = r.read_bit("decoder_model_info_present_flag")?;
            if decoder_model_info_present {
                buffer_delay_length = r.read_bits(5, "buffer_delay_length_minus_1")? + 1;
                r.read_bits(32, "num_units_in_decoding_tick")?;
                r.read_bits(5, "buffer_removal_time_length_minus_1")?;
                r.read_bits(5, "frame_presentation_time_length_minus_1")?;
            }
        }
        let initial_display_delay_present = r.read_bit("initial_display_delay_present_flag")?;
        let operating_points = r.read_bits(5, "operating_points_cnt_minus_1")? + 1;
        let mut first_level = None;
        for _ in 0..operating_points {
            r.read_bits(12, "operating_point_idc")?;
            let level = r.read_bits(5, "seq_level_idx")? as u8;
            let tier = level > 7 && r.read_bit("seq_tier")?;
            if first_level.is_none() {
                first_level = Some(level);
                high_tier = tier;
            }
            if decoder_model_info_present && r.read_bit("decoder_model_present_for_this_op")? {
                r.read_bits(buffer_delay_length, "decoder_buffer_delay")?;
                r.read_bits(buffer_delay_length, "encoder_buffer_delay")?;
                r.read_bit("low_delay_mode_flag")?;
            }
            if initial_display_delay_present
                && r.read_bit("initial_display_delay_present_for_this_op")?
            {
                r.read_bits(4, "initial_display_delay_minus_1")?;
            }
        }
        seq_level_idx = first_level.unwrap_or(0);
    }
    let width_bits = r.read_bits(4, "frame_width_bits_minus_1")? + 1;
    let height_bits = r.read_bits(4, "frame_height_bits_minus_1")? + 1;
    let max_frame_width = r.read_bits(width_bits, "max_frame_width_minus_1")? + 1;
    let max_frame_height = r.read_bits(height_bits, "max_frame_height_minus_1")? + 1;
    if !reduced && r.read_bit("frame_id_numbers_present_flag")? {
        r.read_bits(4, "delta_frame_id_length_minus_2")?;
        r.read_bits(3, "additional_frame_id_length_minus_1")?;
    }
    r.read_bit("use_128x128_superblock")?;
    r.read_bit("enable_filter_intra")?;
    r.read_bit("enable_intra_edge_filter")?;
    if !reduced {
        r.read_bit("enable_interintra_compound")?;
        r.read_bit("enable_masked_compound")?;
        r.read_bit("enable_warped_motion")?;
        r.read_bit("enable_dual_filter")?;
        let enable_order_hint = r.read_bit("enable_order_hint")?;
        if enable_order_hint {
            r.read_bit("enable_jnt_comp")?;
            r.read_bit("enable_ref_frame_mvs")?;
        }
        let force_screen_content_tools = if r.read_bit("seq_choose_screen_content_tools")? {
            true
        } else {
            r.read_bit("seq_force_screen_content_tools")?
        };
        if force_screen_content_tools && !r.read_bit("seq_choose_integer_mv")? {
            r.read_bit("seq_force_integer_mv")?;
        }
        if enable_order_hint {
            r.read_bits(3, "order_hint_bits_minus_1")?;
        }
    }
    r.read_bit("enable_superres")?;
    r.read_bit("enable_cdef")?;
    r.read_bit("enable_restoration")?;

    // color_config()
    let high_bitdepth = r.read_bit("high_bitdepth")?;
    let bit_depth = if seq_profile == 2 && high_bitdepth {
        if r.read_bit("twelve_bit")? { 12 } else { 10 }
    } else if high_bitdepth {
        10
    } else {
        8
    };
    let monochrome = seq_profile != 1 && r.read_bit("mono_chrome")?;
    let colour = if r.read_bit("color_description_present_flag")? {
        (
            r.read_bits(8, "color_primaries")? as u8,
            r.read_bits(8, "transfer_characteristics")? as u8,
            r.read_bits(8, "matrix_coefficients")? as u8,
        )
    } else {
        (2, 2, 2)
    };
    let (full_range, subsampling, chroma_sample_position) = if monochrome {
        (r.read_bit("color_range")?, (true, true), 0)
    } else if colour == (1, 13, 0) {
        // sRGB: full range 4:4:4.
        (true, (false, false), 0)
    } else {
        let full_range = r.read_bit("color_range")?;
        let subsampling = match seq_profile {
            0 => (true, true),
            1 => (false, false),
            _ if bit_depth == 12 => {
                let x = r.read_bit("subsampling_x")?;
                let y = x && r.read_bit("subsampling_y")?;
                (x, y)
            }
            _ => (true, false),
        };
        let position = if subsampling == (true, true) {
            r.read_bits(2, "chroma_sample_position")? as u8
        } else {
            0
        };
        (full_range, subsampling, position)
    };
    Ok(Av1SequenceHeader {
        seq_profile,
        still_picture,
        reduced_still_picture_header: reduced,
        seq_level_idx,
        high_tier,
        max_frame_width,
        max_frame_height,
        bit_depth,
        monochrome,
        subsampling,
        colour,
        full_range,
        chroma_sample_position,
        timing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_minimal_reduced_still_picture_header() {
        // profile 0, still, reduced; level 5 (3.1); 4-bit sizes: 16x16; then flags and colour.
        let mut bits = String::new();
        bits += "000"; // seq_profile
        bits += "1"; // still_picture
        bits += "1"; // reduced_still_picture_header
        bits += "00101"; // seq_level_idx = 5
        bits += "0011"; // frame_width_bits_minus_1 = 3
        bits += "0011"; // frame_height_bits_minus_1 = 3
        bits += "1111"; // max_frame_width_minus_1 = 15
        bits += "1111"; // max_frame_height_minus_1 = 15
        bits += "000"; // use_128x128_superblock, enable_filter_intra, enable_intra_edge_filter
        bits += "000"; // enable_superres, enable_cdef, enable_restoration
        bits += "0"; // high_bitdepth
        bits += "0"; // mono_chrome
        bits += "0"; // color_description_present_flag
        bits += "1"; // color_range
        bits += "00"; // chroma_sample_position
        bits += "0"; // separate_uv_delta_q
        while !bits.len().is_multiple_of(8) {
            bits.push('0');
        }
        let payload: Vec<u8> = bits
            .as_bytes()
            .chunks(8)
            .map(|c| u8::from_str_radix(std::str::from_utf8(c).expect("ascii"), 2).expect("bits"))
            .collect();
        let mut obu = vec![0x0A, payload.len() as u8];
        obu.extend_from_slice(&payload);
        let seq = parse_sequence_header_obu(&obu).expect("parses");
        assert_eq!((seq.max_frame_width, seq.max_frame_height), (16, 16));
        assert_eq!(seq.seq_level_idx, 5);
        assert_eq!(seq.level_name(), "3.1");
        assert_eq!(seq.codec_string(), "av01.0.05M.08");
        assert!(seq.full_range);
        assert_eq!(seq.chroma_format(), "4:2:0");
        for end in 0..obu.len() {
            assert!(parse_sequence_header_obu(&obu[..end]).is_err());
        }
        assert_eq!(
            parse_sequence_header_obu(&[0x12, 0x00]),
            Err(Av1Error::NotASequenceHeader(2))
        );
    }
}
