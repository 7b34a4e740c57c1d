//! Encoders: raw frames in, encoded samples (one access unit each) out.
//!
//! Owns the [`Encoder`] trait, the frame types it takes, and the built-in H.264 encoder in
//! [`h264`] (openh264, Constrained Baseline, no B-frames, so decode order is presentation order).
//! Pixel-format conversion needed by encoders lives here too ([`rgb_to_i420`]).

pub mod h264;

use vidlog_types::VideoCodec;

pub use h264::{H264Encoder, H264EncoderConfig};

/// One uncompressed frame, borrowed from the caller.
#[derive(Clone, Copy, Debug)]
pub enum RawFrame<'a> {
    /// Packed 8-bit RGB, `width * height * 3` bytes, rows top to bottom, no padding.
    Rgb8(&'a [u8]),
    /// Packed 8-bit RGBA, `width * height * 4` bytes; alpha is ignored.
    Rgba8(&'a [u8]),
    /// Planar YUV 4:2:0 (I420), 8 bits, BT.601 limited range unless configured otherwise.
    I420 {
        /// Luma plane, `y_stride * height` bytes.
        y: &'a [u8],
        /// Cb plane, `uv_stride * height / 2` bytes.
        u: &'a [u8],
        /// Cr plane, `uv_stride * height / 2` bytes.
        v: &'a [u8],
        /// Bytes per luma row (at least `width`).
        y_stride: usize,
        /// Bytes per chroma row (at least `width / 2`).
        uv_stride: usize,
    },
}

/// One encoded sample: a whole access unit in Annex B form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedSample {
    /// The access unit, Annex B (4-byte start codes); keyframes carry their parameter sets.
    pub data: Vec<u8>,
    /// Whether a decoder can start here (an IDR picture with SPS/PPS in front).
    pub is_keyframe: bool,
}

/// Why encoding failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The configuration cannot work.
    #[error("invalid encoder configuration: {0}")]
    InvalidConfig(String),
    /// A frame buffer of the wrong size.
    #[error(
        "frame {frame_index}: {what} has {actual} bytes, expected at least {expected} for {width}x{height}"
    )]
    FrameSize {
        /// 0-based index of the frame being encoded.
        frame_index: u64,
        /// Which buffer.
        what: &'static str,
        /// Its length.
        actual: usize,
        /// The length needed.
        expected: usize,
        /// Configured width.
        width: u32,
        /// Configured height.
        height: u32,
    },
    /// A stride smaller than the row it must hold.
    #[error("frame {frame_index}: {what} stride {stride} is smaller than the row width {row}")]
    Stride {
        /// 0-based frame index.
        frame_index: u64,
        /// Which plane.
        what: &'static str,
        /// The stride given.
        stride: usize,
        /// The row width.
        row: usize,
    },
    /// The encoder library reported an error.
    #[error("frame {frame_index}: the {backend} encoder failed: {message}")]
    Backend {
        /// 0-based frame index.
        frame_index: u64,
        /// Which library.
        backend: &'static str,
        /// Its message.
        message: String,
    },
    /// The encoder produced no picture for a frame (it should never skip).
    #[error("frame {frame_index}: the encoder produced no output (skipped frame)")]
    NoOutput {
        /// 0-based frame index.
        frame_index: u64,
    },
}

/// Frames in, samples out. One call, one sample: encoders here never buffer or reorder frames.
pub trait Encoder {
    /// The codec of the samples produced.
    fn codec(&self) -> VideoCodec;

    /// Encodes one frame into one sample.
    fn encode(&mut self, frame: RawFrame<'_>) -> Result<EncodedSample, EncodeError>;
}

/// A tightly packed I420 (YUV 4:2:0, 8-bit) image.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct I420Image {
    /// Width in pixels (even).
    pub width: usize,
    /// Height in pixels (even).
    pub height: usize,
    /// Luma, `width * height` bytes.
    pub y: Vec<u8>,
    /// Cb, `width / 2 * height / 2` bytes.
    pub u: Vec<u8>,
    /// Cr, `width / 2 * height / 2` bytes.
    pub v: Vec<u8>,
}

/// Converts packed RGB (`bytes_per_pixel` 3 or 4; a 4th byte is ignored) to I420 with BT.601
/// limited-range ("studio swing") coefficients:
///
/// ```text
/// Y  =  16 + ( 66 R + 129 G +  25 B + 128) >> 8
/// Cb = 128 + (-38 R -  74 G + 112 B + 128) >> 8
/// Cr = 128 + (112 R -  94 G -  18 B + 128) >> 8
/// ```
///
/// Chroma is computed from the average of each 2x2 block. `width` and `height` must be even and
/// `rgb` at least `width * height * bytes_per_pixel` bytes.
pub fn rgb_to_i420(
    rgb: &[u8],
    width: usize,
    height: usize,
    bytes_per_pixel: usize,
) -> Result<I420Image, EncodeError> {
    if !width.is_multiple_of(2) || !height.is_multiple_of(2) || width == 0 || height == 0 {
        return Err(EncodeError::InvalidConfig(format!(
            "I420 needs a non-zero, even width and height, got {width}x{height}"
        )));
    }
    if !(3..=4).contains(&bytes_per_pixel) {
        return Err(EncodeError::InvalidConfig(format!(
            "bytes_per_pixel must be 3 (RGB) or 4 (RGBA), got {bytes_per_pixel}"
        )));
    }
    let needed = width * height * bytes_per_pixel;
    if rgb.len() < needed {
        return Err(EncodeError::FrameSize {
            frame_index: 0,
            what: "the RGB buffer",
            actual: rgb.len(),
            expected: needed,
            width: width as u32,
            height: height as u32,
        });
    }
    let mut y = vec![0u8; width * height];
    let (cw, ch) = (width / 2, height / 2);
    let mut u = vec![0u8; cw * ch];
    let mut v = vec![0u8; cw * ch];
    let pixel = |x: usize, row: usize| {
        let i = (row * width + x) * bytes_per_pixel;
        (
            i32::from(rgb[i]),
            i32::from(rgb[i + 1]),
            i32::from(rgb[i + 2]),
        )
    };
    for row in 0..height {
        for x in 0..width {
            let (r, g, b) = pixel(x, row);
            y[row * width + x] = (16 + ((66 * r + 129 * g + 25 * b + 128) >> 8)) as u8;
        }
    }
    for cy in 0..ch {
        for cx in 0..cw {
            let (mut r, mut g, mut b) = (0, 0, 0);
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                let (pr, pg, pb) = pixel(2 * cx + dx, 2 * cy + dy);
                r += pr;
                g += pg;
                b += pb;
            }
            let (r, g, b) = ((r + 2) / 4, (g + 2) / 4, (b + 2) / 4);
            u[cy * cw + cx] = (128 + ((-38 * r - 74 * g + 112 * b + 128) >> 8)) as u8;
            v[cy * cw + cx] = (128 + ((112 * r - 94 * g - 18 * b + 128) >> 8)) as u8;
        }
    }
    Ok(I420Image {
        width,
        height,
        y,
        u,
        v,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bt601_limited_range_reference_colours() {
        let colours: [([u8; 3], [u8; 3]); 5] = [
            ([0, 0, 0], [16, 128, 128]),
            ([255, 255, 255], [235, 128, 128]),
            ([255, 0, 0], [82, 90, 240]),
            ([0, 255, 0], [144, 54, 34]),
            ([0, 0, 255], [41, 240, 110]),
        ];
        for (rgb, yuv) in colours {
            let frame: Vec<u8> = rgb.iter().copied().cycle().take(2 * 2 * 3).collect();
            let image = rgb_to_i420(&frame, 2, 2, 3).expect("converts");
            assert_eq!([image.y[0], image.u[0], image.v[0]], yuv, "for RGB {rgb:?}");
        }
        assert!(rgb_to_i420(&[0; 12], 3, 2, 2).is_err());
        assert!(rgb_to_i420(&[0; 11], 2, 2, 3).is_err());
    }
}
