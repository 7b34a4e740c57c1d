//! Video codec identifiers.
//!
//! A codec is stored as the WebCodecs FourCC packed into a `u32` (big-endian byte
//! order, so `avc1` is `0x61766331`), the same numbers Rerun uses. This module owns the
//! mapping between those numbers, the enum and human-readable names; it knows nothing
//! about bitstreams (that is `vidlog-video`).

use std::fmt;

/// The codec of a `VideoStream`, logged once as static data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VideoCodec {
    /// H.264 / AVC, Annex B access units (`avc1`).
    H264,
    /// H.265 / HEVC, Annex B access units (`hev1`).
    H265,
    /// AV1, one temporal unit of OBUs per sample (`av01`).
    Av1,
    /// VP9, one frame (or superframe: frames plus their index) per sample (`vp09`).
    Vp9,
}

impl VideoCodec {
    /// All codecs vidlog knows.
    pub const ALL: [VideoCodec; 4] = [
        VideoCodec::H264,
        VideoCodec::H265,
        VideoCodec::Av1,
        VideoCodec::Vp9,
    ];

    /// The FourCC as a big-endian packed `u32`.
    pub const fn fourcc(self) -> u32 {
        u32::from_be_bytes(*self.fourcc_bytes())
    }

    /// The FourCC bytes, e.g. `b"avc1"`.
    pub const fn fourcc_bytes(self) -> &'static [u8; 4] {
        match self {
            VideoCodec::H264 => b"avc1",
            VideoCodec::H265 => b"hev1",
            VideoCodec::Av1 => b"av01",
            VideoCodec::Vp9 => b"vp09",
        }
    }

    /// Looks a codec up by its packed FourCC.
    pub fn from_fourcc(fourcc: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.fourcc() == fourcc)
    }

    /// Short lowercase name: `h264`, `h265`, `av1`, `vp9` (the names Foxglove and FFmpeg use).
    pub const fn name(self) -> &'static str {
        match self {
            VideoCodec::H264 => "h264",
            VideoCodec::H265 => "h265",
            VideoCodec::Av1 => "av1",
            VideoCodec::Vp9 => "vp9",
        }
    }

    /// Parses `h264`/`avc`/`avc1`, `h265`/`hevc`/`hev1`/`hvc1`, `av1`/`av01`, `vp9`/`vp09`
    /// (case-insensitive).
    pub fn parse(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "h264" | "avc" | "avc1" => Some(VideoCodec::H264),
            "h265" | "hevc" | "hev1" | "hvc1" => Some(VideoCodec::H265),
            "av1" | "av01" => Some(VideoCodec::Av1),
            "vp9" | "vp09" => Some(VideoCodec::Vp9),
            _ => None,
        }
    }
}

impl fmt::Display for VideoCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            VideoCodec::H264 => "H.264",
            VideoCodec::H265 => "H.265",
            VideoCodec::Av1 => "AV1",
            VideoCodec::Vp9 => "VP9",
        })
    }
}

/// Formats a packed FourCC for error messages, e.g. `'avc1'` or `0x00000007`.
pub fn describe_fourcc(fourcc: u32) -> String {
    let bytes = fourcc.to_be_bytes();
    if bytes.iter().all(|b| b.is_ascii_graphic()) {
        format!("'{}'", String::from_utf8_lossy(&bytes))
    } else {
        format!("{fourcc:#010x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fourcc_round_trip() {
        assert_eq!(VideoCodec::H264.fourcc(), 0x6176_6331);
        for codec in VideoCodec::ALL {
            assert_eq!(VideoCodec::from_fourcc(codec.fourcc()), Some(codec));
            assert_eq!(VideoCodec::parse(codec.name()), Some(codec));
        }
        assert_eq!(VideoCodec::from_fourcc(7), None);
        assert_eq!(describe_fourcc(7), "0x00000007");
        assert_eq!(describe_fourcc(VideoCodec::Av1.fourcc()), "'av01'");
    }
}
