//! The synthetic camera of `vidlog demo`: a blue-to-purple gradient with a gold ball
//! bouncing up and down once a second, at any size, and the frame number drawn as a
//! block pattern the browser tests read back from the viewer's canvas.
//!
//! **Frame-number pattern** (the one definition; tests/e2e/frames.mjs reads it and makes
//! the same pattern with ffmpeg for imported streams): a strip across the top of the
//! picture, [`frame_strip_height`] rows tall, split into [`FRAME_BITS`] equal blocks
//! (block `b` spans columns `b * width / 16 .. (b + 1) * width / 16`). Block `b` is white
//! (255) when bit `15 - b` of `frame % 65536` is set, else black (0): most significant
//! bit on the left. Blocks are large and black/white so codec noise cannot flip them; a
//! reader thresholds the mean of each block's central area at mid-grey.

/// Bits of the frame number in the pattern.
pub const FRAME_BITS: usize = 16;

/// Rows of the frame-number strip: a tenth of the height, at least 16.
pub fn frame_strip_height(height: usize) -> usize {
    (height / 10).max(16).min(height)
}

/// Renders frames as packed RGB8.
pub struct SyntheticCamera {
    width: usize,
    height: usize,
    fps: f64,
    background: Vec<u8>,
}

impl SyntheticCamera {
    pub fn new(width: u32, height: u32, fps: f64) -> Self {
        let (w, h) = (width as usize, height as usize);
        let mut background = vec![0u8; w * h * 3];
        for (y, row) in background.chunks_exact_mut(w * 3).enumerate() {
            let g = (100 * y / h) as u8;
            let b = (200 * y / h) as u8;
            for px in row.chunks_exact_mut(3) {
                px.copy_from_slice(&[0, g, b]);
            }
        }
        SyntheticCamera {
            width: w,
            height: h,
            fps,
            background,
        }
    }

    /// Frame `i` into `out` (resized as needed).
    pub fn render(&self, i: u64, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&self.background);
        let scale = self.height as f64 / 320.0;
        let radius = 30.0 * scale;
        let cx = self.width as f64 / 2.0;
        let phase = 2.0 * std::f64::consts::PI * i as f64 / self.fps;
        let cy = self.height as f64 / 2.0 + 80.0 * scale * phase.sin();
        let y0 = (cy - radius).floor().max(0.0) as usize;
        let y1 = ((cy + radius).ceil() as usize).min(self.height);
        let x0 = (cx - radius).floor().max(0.0) as usize;
        let x1 = ((cx + radius).ceil() as usize).min(self.width);
        let r2 = radius * radius;
        for y in y0..y1 {
            let dy = y as f64 - cy;
            for x in x0..x1 {
                let dx = x as f64 - cx;
                if dx * dx + dy * dy < r2 {
                    let at = (y * self.width + x) * 3;
                    out[at..at + 3].copy_from_slice(&[255, 200, 0]);
                }
            }
        }
        self.draw_frame_number(i, out);
    }

    /// The frame-number strip (module documentation) over the top rows.
    fn draw_frame_number(&self, i: u64, out: &mut [u8]) {
        let strip = frame_strip_height(self.height);
        let number = i % (1 << FRAME_BITS);
        for y in 0..strip {
            let row = &mut out[y * self.width * 3..(y + 1) * self.width * 3];
            for (x, px) in row.chunks_exact_mut(3).enumerate() {
                let block = x * FRAME_BITS / self.width;
                let bit = (number >> (FRAME_BITS - 1 - block)) & 1;
                px.fill(if bit == 1 { 255 } else { 0 });
            }
        }
    }
}

/// Reads the frame number back from an RGB8 picture drawn by [`SyntheticCamera`] (the
/// same rule a browser test applies to canvas pixels).
#[cfg(test)]
fn read_frame_number(rgb: &[u8], width: usize, height: usize) -> u64 {
    let strip = frame_strip_height(height);
    let mut number = 0;
    for block in 0..FRAME_BITS {
        let x = (2 * block + 1) * width / (2 * FRAME_BITS);
        let at = ((strip / 2) * width + x) * 3;
        let luma = (u32::from(rgb[at]) + u32::from(rgb[at + 1]) + u32::from(rgb[at + 2])) / 3;
        number = (number << 1) | u64::from(luma > 128);
    }
    number
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ball_moves_and_background_is_a_gradient() {
        let cam = SyntheticCamera::new(480, 320, 30.0);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        cam.render(0, &mut a);
        cam.render(7, &mut b);
        assert_eq!(a.len(), 480 * 320 * 3);
        assert_ne!(a, b, "the ball moves");
        // Centre pixel of frame 0 is gold; the top-left corner is black-ish background.
        let centre = (160 * 480 + 240) * 3;
        assert_eq!(&a[centre..centre + 3], &[255, 200, 0]);
        assert_eq!(&a[0..3], &[0, 0, 0]);
    }

    #[test]
    fn frame_number_reads_back() {
        for (w, h) in [(480, 320), (1920, 1080), (64, 48)] {
            let cam = SyntheticCamera::new(w, h, 30.0);
            let mut rgb = Vec::new();
            for i in [0, 1, 2, 89, 255, 256, 40_000, 65_535, 65_536 + 7] {
                cam.render(i, &mut rgb);
                assert_eq!(read_frame_number(&rgb, w as usize, h as usize), i % 65_536);
            }
        }
        // Frame 0x8001: leftmost and rightmost blocks white, the one next to them black.
        let cam = SyntheticCamera::new(160, 160, 30.0);
        let mut rgb = Vec::new();
        cam.render(0x8001, &mut rgb);
        assert_eq!(&rgb[0..3], &[255, 255, 255]);
        assert_eq!(&rgb[159 * 3..160 * 3], &[255, 255, 255]);
        assert_eq!(&rgb[12 * 3..13 * 3], &[0, 0, 0]);
    }
}
