//! The synthetic camera of `vidlog demo`: a blue-to-purple gradient with a gold ball
//! bouncing up and down once a second, like Rerun's VideoStream example, at any size.

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
    }
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
}
