//! H.265 syntax: the start of the sequence parameter set (profile, tier and level, chroma
//! format, size with its conformance window, bit depths), the RFC 6381 / WebCodecs codec
//! string, and the `hvcC` record (HEVCDecoderConfigurationRecord, ISO/IEC 14496-15 8.3.3).
//!
//! The SPS is read only as far as those fields; VUI colour signalling is not read here (the
//! FFmpeg backend takes it from decoded frames).

use super::bits::{BitReader, OutOfBits};
use super::nal::remove_emulation_prevention;

/// NAL unit types of the parameter sets.
pub const NAL_VPS: u8 = 32;
pub const NAL_SPS: u8 = 33;
pub const NAL_PPS: u8 = 34;

/// The NAL unit type of a NAL unit (header included).
pub fn nal_type(nal: &[u8]) -> Option<u8> {
    nal.first().map(|b| (b >> 1) & 0x3F)
}

/// Why an SPS could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum H265Error {
    #[error("SPS: {0}")]
    Truncated(#[from] OutOfBits),
    #[error("SPS: {0}")]
    Invalid(String),
}

/// `profile_tier_level()`'s general part: what the codec string and `hvcC` carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProfileTierLevel {
    pub profile_space: u8,
    pub high_tier: bool,
    pub profile_idc: u8,
    /// `general_profile_compatibility_flag[0..32]`, flag 0 in the most significant bit.
    pub compatibility_flags: u32,
    /// The 48 bits from `general_progressive_source_flag` on, first bit most significant.
    pub constraint_flags: [u8; 6],
    /// `general_level_idc`: 30 times the level (93 is 3.1).
    pub level_idc: u8,
}

/// The parts of an H.265 SPS vidlog uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct H265Sps {
    pub max_sub_layers: u8,
    pub temporal_id_nesting: bool,
    pub ptl: ProfileTierLevel,
    /// 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4.
    pub chroma_format_idc: u8,
    /// `pic_width_in_luma_samples`, `pic_height_in_luma_samples`.
    pub coded_width: u32,
    pub coded_height: u32,
    /// The size after the conformance window.
    pub width: u32,
    pub height: u32,
    pub bit_depth_luma: u8,
    pub bit_depth_chroma: u8,
}

/// Parses an SPS NAL unit (2-byte header included, emulation prevention intact).
pub fn parse_sps(nal: &[u8]) -> Result<H265Sps, H265Error> {
    if nal_type(nal) != Some(NAL_SPS) || nal.len() < 3 {
        return Err(H265Error::Invalid(format!(
            "not an SPS NAL unit (type {:?})",
            nal_type(nal)
        )));
    }
    let rbsp = remove_emulation_prevention(&nal[2..]);
    let mut r = BitReader::new(&rbsp);
    let _vps_id = r.read_bits(4, "sps_video_parameter_set_id")?;
    let max_sub_layers_minus1 = r.read_bits(3, "sps_max_sub_layers_minus1")? as u8;
    if max_sub_layers_minus1 > 6 {
        return Err(H265Error::Invalid(format!(
            "sps_max_sub_layers_minus1 is {max_sub_layers_minus1} (at most 6)"
        )));
    }
    let temporal_id_nesting = r.read_bit("sps_temporal_id_nesting_flag")?;
    let ptl = read_profile_tier_level(&mut r, max_sub_layers_minus1)?;
    let _sps_id = r.read_ue("sps_seq_parameter_set_id")?;
    let chroma_format_idc = r.read_ue("chroma_format_idc")?;
    if chroma_format_idc > 3 {
        return Err(H265Error::Invalid(format!(
            "chroma_format_idc is {chroma_format_idc} (at most 3)"
        )));
    }
    if chroma_format_idc == 3 {
        r.read_bit("separate_colour_plane_flag")?;
    }
    let coded_width = r.read_ue("pic_width_in_luma_samples")?;
    let coded_height = r.read_ue("pic_height_in_luma_samples")?;
    let (mut width, mut height) = (coded_width, coded_height);
    if r.read_bit("conformance_window_flag")? {
        let (sub_w, sub_h) = match chroma_format_idc {
            1 => (2, 2),
            2 => (2, 1),
            _ => (1, 1),
        };
        let left = r.read_ue("conf_win_left_offset")?;
        let right = r.read_ue("conf_win_right_offset")?;
        let top = r.read_ue("conf_win_top_offset")?;
        let bottom = r.read_ue("conf_win_bottom_offset")?;
        let crop = |size: u32, a: u32, b: u32, sub: u32| {
            a.checked_add(b)
                .and_then(|c| c.checked_mul(sub))
                .and_then(|c| size.checked_sub(c))
                .filter(|&s| s > 0)
        };
        width = crop(coded_width, left, right, sub_w).ok_or_else(|| {
            H265Error::Invalid("the conformance window is wider than the picture".into())
        })?;
        height = crop(coded_height, top, bottom, sub_h).ok_or_else(|| {
            H265Error::Invalid("the conformance window is taller than the picture".into())
        })?;
    }
    let bit_depth_luma = r.read_ue("bit_depth_luma_minus8")?;
    let bit_depth_chroma = r.read_ue("bit_depth_chroma_minus8")?;
    if bit_depth_luma > 8 || bit_depth_chroma > 8 {
        return Err(H265Error::Invalid("a bit depth above 16".into()));
    }
    Ok(H265Sps {
        max_sub_layers: max_sub_layers_minus1 + 1,
        temporal_id_nesting,
        ptl,
        chroma_format_idc: chroma_format_idc as u8,
        coded_width,
        coded_height,
        width,
        height,
        bit_depth_luma: bit_depth_luma as u8 + 8,
        bit_depth_chroma: bit_depth_chroma as u8 + 8,
    })
}

fn read_profile_tier_level(
    r: &mut BitReader<'_>,
    max_sub_layers_minus1: u8,
) -> Result<ProfileTierLevel, H265Error> {
    let profile_space = r.read_bits(2, "general_profile_space")? as u8;
    let high_tier = r.read_bit("general_tier_flag")?;
    let profile_idc = r.read_bits(5, "general_profile_idc")? as u8;
    let compatibility_flags = r.read_bits(32, "general_profile_compatibility_flag")?;
    let mut constraint_flags = [0u8; 6];
    for byte in &mut constraint_flags {
        *byte = r.read_bits(8, "general constraint flags")? as u8;
    }
    let level_idc = r.read_bits(8, "general_level_idc")? as u8;
    let n = usize::from(max_sub_layers_minus1);
    let mut present = [(false, false); 7];
    for flags in present.iter_mut().take(n) {
        *flags = (
            r.read_bit("sub_layer_profile_present_flag")?,
            r.read_bit("sub_layer_level_present_flag")?,
        );
    }
    if n > 0 {
        for _ in n..8 {
            r.read_bits(2, "reserved_zero_2bits")?;
        }
    }
    for &(profile, level) in present.iter().take(n) {
        if profile {
            // space, tier, idc, 32 compatibility flags, 48 constraint bits.
            for _ in 0..11 {
                r.read_bits(8, "sub_layer profile")?;
            }
        }
        if level {
            r.read_bits(8, "sub_layer_level_idc")?;
        }
    }
    Ok(ProfileTierLevel {
        profile_space,
        high_tier,
        profile_idc,
        compatibility_flags,
        constraint_flags,
        level_idc,
    })
}

impl ProfileTierLevel {
    /// The codec string `FOURCC.P.C.TL.B...` (ISO/IEC 14496-15 annex E), e.g.
    /// `hev1.1.6.L93.B0`: profile space and idc, the compatibility flags in reverse bit order,
    /// tier and level, then the constraint bytes without trailing zero bytes.
    pub fn codec_string(&self, fourcc: &str) -> String {
        let space = ["", "A", "B", "C"][usize::from(self.profile_space & 3)];
        let mut out = format!(
            "{fourcc}.{space}{}.{:X}.{}{}",
            self.profile_idc,
            self.compatibility_flags.reverse_bits(),
            if self.high_tier { 'H' } else { 'L' },
            self.level_idc
        );
        let used = self
            .constraint_flags
            .iter()
            .rposition(|&b| b != 0)
            .map_or(0, |i| i + 1);
        for b in &self.constraint_flags[..used] {
            out.push_str(&format!(".{b:X}"));
        }
        out
    }

    /// The fields as an `hvcC` record carries them (bytes 1 to 12), if it is long enough.
    pub fn from_hvcc(hvcc: &[u8]) -> Option<ProfileTierLevel> {
        let head = hvcc.get(..13)?;
        Some(ProfileTierLevel {
            profile_space: head[1] >> 6,
            high_tier: head[1] & 0x20 != 0,
            profile_idc: head[1] & 0x1F,
            compatibility_flags: u32::from_be_bytes([head[2], head[3], head[4], head[5]]),
            constraint_flags: [head[6], head[7], head[8], head[9], head[10], head[11]],
            level_idc: head[12],
        })
    }
}

impl H265Sps {
    /// The codec string (see [`ProfileTierLevel::codec_string`]).
    pub fn codec_string(&self, fourcc: &str) -> String {
        self.ptl.codec_string(fourcc)
    }

    /// `Main`, `Main 10`, `Main Still Picture`, `Range Extensions` or the profile number.
    pub fn profile_name(&self) -> String {
        match self.ptl.profile_idc {
            1 => "Main".into(),
            2 => "Main 10".into(),
            3 => "Main Still Picture".into(),
            4 => "Range Extensions".into(),
            n => format!("profile {n}"),
        }
    }

    /// The level as `X.Y` (`general_level_idc` 93 is 3.1).
    pub fn level_name(&self) -> String {
        let l = self.ptl.level_idc;
        format!("{}.{}", l / 30, (l % 30) / 3)
    }

    /// `monochrome`, `4:2:0`, `4:2:2` or `4:4:4`.
    pub fn chroma_format(&self) -> &'static str {
        match self.chroma_format_idc {
            0 => "monochrome",
            1 => "4:2:0",
            2 => "4:2:2",
            _ => "4:4:4",
        }
    }
}

/// The `hvcC` record for the parameter sets (NAL units with their 2-byte headers); the first
/// SPS gives the profile fields. Arrays are written VPS, SPS, PPS, with `array_completeness`
/// 0: samples may carry parameter sets in-band (the `hev1` sample entry).
pub fn hvcc_record(vps: &[&[u8]], sps: &[&[u8]], pps: &[&[u8]]) -> Result<Vec<u8>, H265Error> {
    let first = sps
        .first()
        .ok_or_else(|| H265Error::Invalid("no SPS for the hvcC record".into()))?;
    let s = parse_sps(first)?;
    if s.bit_depth_luma > 15 || s.bit_depth_chroma > 15 {
        return Err(H265Error::Invalid(
            "a 16-bit stream: hvcC holds bit depths up to 15".into(),
        ));
    }
    let p = &s.ptl;
    let mut out = vec![
        1,
        (p.profile_space << 6) | (u8::from(p.high_tier) << 5) | p.profile_idc,
    ];
    out.extend_from_slice(&p.compatibility_flags.to_be_bytes());
    out.extend_from_slice(&p.constraint_flags);
    out.push(p.level_idc);
    out.extend_from_slice(&[
        0xF0, // reserved, min_spatial_segmentation_idc = 0
        0x00,
        0xFC,                          // reserved, parallelismType = 0 (unknown)
        0xFC | s.chroma_format_idc,    // reserved, chromaFormat
        0xF8 | (s.bit_depth_luma - 8), // reserved, bitDepthLumaMinus8
        0xF8 | (s.bit_depth_chroma - 8),
        0, // avgFrameRate (16 bits): unspecified
        0,
        // constantFrameRate 0, numTemporalLayers, temporalIdNested, lengthSizeMinusOne 3
        (s.max_sub_layers << 3) | (u8::from(s.temporal_id_nesting) << 2) | 3,
    ]);
    let arrays: Vec<(u8, &[&[u8]])> = [(NAL_VPS, vps), (NAL_SPS, sps), (NAL_PPS, pps)]
        .into_iter()
        .filter(|(_, nals)| !nals.is_empty())
        .collect();
    out.push(arrays.len() as u8);
    for (kind, nals) in arrays {
        out.push(kind); // array_completeness 0, reserved 0, NAL_unit_type
        let count = u16::try_from(nals.len())
            .map_err(|_| H265Error::Invalid("more than 65535 parameter sets".into()))?;
        out.extend_from_slice(&count.to_be_bytes());
        for nal in nals {
            let len = u16::try_from(nal.len())
                .map_err(|_| H265Error::Invalid("a parameter set over 65535 bytes".into()))?;
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(nal);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codec_string_follows_annex_e() {
        let sps = H265Sps {
            max_sub_layers: 1,
            temporal_id_nesting: true,
            ptl: ProfileTierLevel {
                profile_space: 0,
                high_tier: false,
                profile_idc: 1,
                compatibility_flags: 0x6000_0000,
                constraint_flags: [0xB0, 0, 0, 0, 0, 0],
                level_idc: 93,
            },
            chroma_format_idc: 1,
            coded_width: 320,
            coded_height: 240,
            width: 320,
            height: 240,
            bit_depth_luma: 8,
            bit_depth_chroma: 8,
        };
        assert_eq!(sps.codec_string("hev1"), "hev1.1.6.L93.B0");
        assert_eq!(sps.level_name(), "3.1");
        assert_eq!(sps.profile_name(), "Main");
    }

    #[test]
    fn bad_sps_is_an_error_not_a_panic() {
        assert!(parse_sps(&[0x42, 0x01]).is_err());
        assert!(
            parse_sps(&[0x40, 0x01, 0x0C]).is_err(),
            "a VPS is not an SPS"
        );
        let e = parse_sps(&[0x42, 0x01, 0x01]).unwrap_err().to_string();
        assert!(e.contains("SPS"), "{e}");
    }
}
