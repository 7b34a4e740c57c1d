//! VP9 syntax: the superframe index that packs several frames into one sample, the start of
//! the uncompressed frame header (frame type, and on keyframes the colour config and frame
//! size), levels and the WebCodecs codec string.
//!
//! A VP9 sample is one "superframe" as WebM, MP4 and IVF store it: one or more frames (often a
//! hidden alt-ref frame followed by a shown one) and, when there are several, an index at the
//! end. VP9 has no parameter sets: a keyframe's header carries profile, bit depth, colour and
//! size. This module reads only what vidlog needs without decoding pictures.

use super::bits::{BitReader, OutOfBits};

/// Why VP9 bytes could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Vp9Error {
    /// The superframe index is inconsistent with the sample.
    #[error("superframe index: {0}")]
    Superframe(String),
    /// The frame header ends early.
    #[error("frame header: {0}")]
    Truncated(#[from] OutOfBits),
    /// A value the spec forbids.
    #[error("frame header: {0}")]
    Invalid(String),
}

/// `color_space` value meaning RGB (no YUV matrix).
pub const CS_RGB: u8 = 7;

/// What a keyframe header says about the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vp9Keyframe {
    /// 8, 10 or 12.
    pub bit_depth: u8,
    /// `color_space`: 0 unknown, 1 BT.601, 2 BT.709, 3 SMPTE 170, 4 SMPTE 240, 5 BT.2020, 7 RGB.
    pub color_space: u8,
    /// `color_range` (true: full range).
    pub full_range: bool,
    /// `subsampling_x`, `subsampling_y` (both true is 4:2:0).
    pub subsampling: (bool, bool),
    /// `frame_width_minus_1 + 1`.
    pub width: u32,
    /// `frame_height_minus_1 + 1`.
    pub height: u32,
}

/// The start of one frame's uncompressed header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vp9FrameHeader {
    /// 0 to 3.
    pub profile: u8,
    /// The frame only re-shows an earlier decoded frame.
    pub show_existing_frame: bool,
    /// `frame_type == KEY_FRAME` (and not `show_existing_frame`).
    pub is_keyframe: bool,
    /// `show_frame`.
    pub show_frame: bool,
    /// Set on keyframes.
    pub keyframe: Option<Vp9Keyframe>,
}

/// The frames of one sample: one slice per frame, in order. A sample without a superframe
/// index is a single frame.
pub fn superframe_frames(sample: &[u8]) -> Result<Vec<&[u8]>, Vp9Error> {
    let Some(&marker) = sample.last() else {
        return Err(Vp9Error::Superframe("the sample is empty".into()));
    };
    if marker & 0xE0 != 0xC0 {
        return Ok(vec![sample]);
    }
    let frames = usize::from(marker & 0x07) + 1;
    let size_bytes = usize::from((marker >> 3) & 0x03) + 1;
    let index_len = 2 + size_bytes * frames;
    if sample.len() < index_len || sample[sample.len() - index_len] != marker {
        // The last byte merely looks like a marker: the sample is one frame.
        return Ok(vec![sample]);
    }
    let data_len = sample.len() - index_len;
    let sizes = &sample[data_len + 1..sample.len() - 1];
    let mut out = Vec::with_capacity(frames);
    let mut pos = 0usize;
    for (n, size) in sizes.chunks_exact(size_bytes).enumerate() {
        let size = size
            .iter()
            .rev()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        let end = pos
            .checked_add(size)
            .filter(|&end| end <= data_len)
            .ok_or_else(|| {
                Vp9Error::Superframe(format!(
                    "frame {n} of {frames} ({size} bytes at byte {pos}) runs past the {data_len} \
                     bytes of frame data"
                ))
            })?;
        if size > 0 {
            out.push(&sample[pos..end]);
        }
        pos = end;
    }
    if out.is_empty() {
        return Err(Vp9Error::Superframe("every frame size is zero".into()));
    }
    Ok(out)
}

/// Parses the start of a frame's uncompressed header.
pub fn parse_frame_header(frame: &[u8]) -> Result<Vp9FrameHeader, Vp9Error> {
    let mut r = BitReader::new(frame);
    let frame_marker = r.read_bits(2, "frame_marker")?;
    if frame_marker != 2 {
        return Err(Vp9Error::Invalid(format!(
            "frame_marker is {frame_marker}, not 2: the data is not a VP9 frame"
        )));
    }
    let low = r.read_bits(1, "profile_low_bit")?;
    let high = r.read_bits(1, "profile_high_bit")?;
    let profile = ((high << 1) | low) as u8;
    if profile == 3 && r.read_bit("reserved_zero")? {
        return Err(Vp9Error::Invalid(
            "reserved bit after profile 3 is set".into(),
        ));
    }
    let show_existing_frame = r.read_bit("show_existing_frame")?;
    if show_existing_frame {
        return Ok(Vp9FrameHeader {
            profile,
            show_existing_frame,
            is_keyframe: false,
            show_frame: true,
            keyframe: None,
        });
    }
    let non_key = r.read_bit("frame_type")?;
    let show_frame = r.read_bit("show_frame")?;
    let _error_resilient_mode = r.read_bit("error_resilient_mode")?;
    let keyframe = if non_key {
        None
    } else {
        let sync = r.read_bits(24, "frame_sync_code")?;
        if sync != 0x49_83_42 {
            return Err(Vp9Error::Invalid(format!(
                "frame_sync_code is {sync:#08x}, not 0x498342"
            )));
        }
        Some(read_keyframe(&mut r, profile)?)
    };
    Ok(Vp9FrameHeader {
        profile,
        show_existing_frame,
        is_keyframe: !non_key,
        show_frame,
        keyframe,
    })
}

/// `color_config()` and `frame_size()` of a keyframe.
fn read_keyframe(r: &mut BitReader<'_>, profile: u8) -> Result<Vp9Keyframe, Vp9Error> {
    let bit_depth = if profile >= 2 {
        if r.read_bit("ten_or_twelve_bit")? {
            12
        } else {
            10
        }
    } else {
        8
    };
    let color_space = r.read_bits(3, "color_space")? as u8;
    let odd_profile = profile == 1 || profile == 3;
    let (full_range, subsampling) = if color_space != CS_RGB {
        let full_range = r.read_bit("color_range")?;
        let subsampling = if odd_profile {
            let x = r.read_bit("subsampling_x")?;
            let y = r.read_bit("subsampling_y")?;
            r.read_bit("reserved_zero")?;
            if x && y {
                return Err(Vp9Error::Invalid(format!(
                    "4:2:0 in profile {profile} (profiles 1 and 3 are 4:2:2, 4:4:0 or 4:4:4)"
                )));
            }
            (x, y)
        } else {
            (true, true)
        };
        (full_range, subsampling)
    } else {
        if !odd_profile {
            return Err(Vp9Error::Invalid(format!(
                "RGB in profile {profile} (RGB needs profile 1 or 3)"
            )));
        }
        r.read_bit("reserved_zero")?;
        (true, (false, false))
    };
    let width = r.read_bits(16, "frame_width_minus_1")? + 1;
    let height = r.read_bits(16, "frame_height_minus_1")? + 1;
    Ok(Vp9Keyframe {
        bit_depth,
        color_space,
        full_range,
        subsampling,
        width,
        height,
    })
}

/// The header of a sample's first frame, which decides whether decoding may start there.
pub fn parse_sample(sample: &[u8]) -> Result<Vp9FrameHeader, Vp9Error> {
    let frames = superframe_frames(sample)?;
    parse_frame_header(frames[0])
}

/// VP9 levels: `(level * 10, max luma picture size, max luma sample rate)`.
const LEVELS: [(u8, u64, u64); 14] = [
    (10, 36_864, 829_440),
    (11, 73_728, 2_764_800),
    (20, 122_880, 4_608_000),
    (21, 245_760, 9_216_000),
    (30, 552_960, 20_736_000),
    (31, 983_040, 36_864_000),
    (40, 2_228_224, 83_558_400),
    (41, 2_228_224, 160_432_128),
    (50, 8_912_896, 311_951_360),
    (51, 8_912_896, 588_251_136),
    (52, 8_912_896, 1_176_502_272),
    (60, 35_651_584, 1_176_502_272),
    (61, 35_651_584, 2_353_004_544),
    (62, 35_651_584, 4_706_009_088),
];

impl Vp9Keyframe {
    /// The lowest level (times ten: 31 is 3.1) whose limits hold this frame size at `fps`.
    /// VP9 does not signal its level in the bitstream, so it is derived.
    pub fn level(&self, fps: f64) -> u8 {
        let samples = u64::from(self.width) * u64::from(self.height);
        let rate = (samples as f64 * fps.max(1.0)) as u64;
        LEVELS
            .iter()
            .find(|&&(_, size, max_rate)| samples <= size && rate <= max_rate)
            .map_or(62, |&(level, _, _)| level)
    }

    /// `4:2:0`, `4:2:2`, `4:4:0` or `4:4:4`.
    pub fn chroma_format(&self) -> &'static str {
        match self.subsampling {
            (true, true) => "4:2:0",
            (true, false) => "4:2:2",
            (false, true) => "4:4:0",
            (false, false) => "4:4:4",
        }
    }

    /// ISO/IEC 23091-2 `matrix_coefficients` for this colour space (2 = unspecified), as
    /// FFmpeg maps them.
    pub fn matrix_coefficients(&self) -> u8 {
        match self.color_space {
            1 => 5,
            3 => 6,
            2 => 1,
            4 => 7,
            5 => 9,
            CS_RGB => 0,
            _ => 2,
        }
    }

    /// The `chromaSubsampling` code of the codec string and `vpcC` (0: 4:2:0 vertical-left,
    /// 1: 4:2:0 colocated, 2: 4:2:2, 3: 4:4:4).
    pub fn chroma_subsampling_code(&self) -> u8 {
        match self.subsampling {
            (true, true) => 1,
            (true, false) => 2,
            _ => 3,
        }
    }
}

/// The WebCodecs codec string `vp09.PP.LL.DD` (e.g. `vp09.00.40.08`) of a stream whose
/// keyframe header is `header`, at `fps` frames per second (for the level).
pub fn codec_string(profile: u8, keyframe: &Vp9Keyframe, fps: f64) -> String {
    format!(
        "vp09.{profile:02}.{:02}.{:02}",
        keyframe.level(fps),
        keyframe.bit_depth
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A profile-0 keyframe header: marker 2, profile 0, show_existing 0, frame_type 0,
    /// show_frame 1, error_resilient 0, sync code, colour BT.709 limited, 320x240.
    fn keyframe_header() -> Vec<u8> {
        let mut bits = String::from("10" /* marker */);
        bits += "00"; // profile
        bits += "0"; // show_existing_frame
        bits += "0"; // frame_type KEY_FRAME
        bits += "1"; // show_frame
        bits += "0"; // error_resilient_mode
        bits += &format!("{:024b}", 0x49_83_42);
        bits += "010"; // color_space BT.709
        bits += "0"; // color_range
        bits += &format!("{:016b}", 319);
        bits += &format!("{:016b}", 239);
        bits += "0"; // render_and_frame_size_different
        while bits.len() % 8 != 0 {
            bits.push('0');
        }
        bits.as_bytes()
            .chunks(8)
            .map(|c| u8::from_str_radix(std::str::from_utf8(c).expect("ascii"), 2).expect("bits"))
            .collect()
    }

    #[test]
    fn reads_a_keyframe_header() {
        let h = parse_sample(&keyframe_header()).expect("parses");
        assert!(h.is_keyframe && h.show_frame && !h.show_existing_frame);
        let k = h.keyframe.expect("keyframe info");
        assert_eq!((k.width, k.height, k.bit_depth), (320, 240, 8));
        assert_eq!((k.color_space, k.full_range), (2, false));
        assert_eq!(k.chroma_format(), "4:2:0");
        assert_eq!(codec_string(h.profile, &k, 30.0), "vp09.00.20.08");
        let hd = Vp9Keyframe {
            width: 1920,
            height: 1080,
            ..k
        };
        assert_eq!(hd.level(30.0), 40);
        assert_eq!(hd.level(60.0), 41);
    }

    #[test]
    fn splits_a_superframe() {
        let hidden = [0x86u8, 1, 2];
        let shown = [0x82u8, 4, 5, 6, 7];
        let mut sample = Vec::new();
        sample.extend_from_slice(&hidden);
        sample.extend_from_slice(&shown);
        let marker = 0xC0 | 1; // two frames, one size byte each
        sample.extend_from_slice(&[marker, 3, 5, marker]);
        let frames = superframe_frames(&sample).expect("splits");
        assert_eq!(frames, vec![&hidden[..], &shown[..]]);
        // A size running past the data is an error naming the frame.
        let mut bad = sample.clone();
        let len = bad.len();
        bad[len - 2] = 9;
        let e = superframe_frames(&bad).unwrap_err().to_string();
        assert!(e.contains("frame 1 of 2"), "{e}");
        // A trailing byte that only looks like a marker leaves the sample whole.
        let single = [0x82u8, 0, 0xC1];
        assert_eq!(superframe_frames(&single).expect("one"), vec![&single[..]]);
    }

    #[test]
    fn rejects_what_is_not_vp9() {
        let e = parse_sample(&[0x00, 0x00]).unwrap_err().to_string();
        assert!(e.contains("frame_marker is 0"), "{e}");
        let mut header = keyframe_header();
        header[1] ^= 0xFF; // break the sync code
        let e = parse_sample(&header).unwrap_err().to_string();
        assert!(e.contains("frame_sync_code"), "{e}");
        let e = parse_sample(&keyframe_header()[..3])
            .unwrap_err()
            .to_string();
        assert!(e.contains("frame header"), "{e}");
        // An inter frame: frame_type 1.
        let h = parse_sample(&[0b1000_0110, 0]).expect("parses");
        assert!(!h.is_keyframe && h.keyframe.is_none());
    }
}
