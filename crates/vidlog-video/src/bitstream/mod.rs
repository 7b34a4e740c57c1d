//! Bitstream syntax: everything vidlog reads out of encoded video without decoding pictures.
//!
//! - [`nal`]: Annex B and length-prefixed NAL framing shared by H.264 and H.265;
//! - [`h264`]: H.264 parameter sets, slice headers, access units, picture order, avcC;
//! - [`h265`]: H.265 SPS (profile, tier, level, size, bit depth), codec strings, hvcC;
//! - [`av1`]: AV1 OBU headers and the sequence header, AV1 codec strings;
//! - [`vp9`]: VP9 superframes, frame headers, levels and codec strings;
//! - [`bits`]: the small bit reader used where `h264-reader` is not involved.

pub mod av1;
pub mod bits;
pub mod h264;
pub mod h265;
pub mod nal;
pub mod vp9;
