//! Decoded pictures: 8-bit I420 planes with their presentation time and colour signalling, and
//! the conversion to RGBA8 with the stream's own matrix and range. A frame either owns packed
//! planes (copied out of the decoder) or keeps the decoder's own strided buffers
//! ([`SharedPlanes`], no copy); conversions read both alike.
//!
//! The RGBA conversion follows what FFmpeg shows by default (`ffmpeg -pix_fmt rgba`, swscale's
//! unscaled YUV->RGB path): nearest-neighbour chroma (each chroma sample covers 2x2 luma), BT.601
//! unless the stream says BT.709 or BT.2020, limited range unless the stream says full range.
//! It is not bit-exact with swscale's SIMD code; tests compare within a small tolerance.
//!
//! [`Frame::jfif`] maps the same YUV straight to the YCbCr a JPEG holds (JFIF: BT.601, full
//! range) without going through RGB, for encoders that take YCbCr rows.

/// The YUV -> RGB matrix a stream signals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Matrix {
    /// ITU-R BT.601 (also what an unsignalled stream gets, as in swscale).
    #[default]
    Bt601,
    /// ITU-R BT.709.
    Bt709,
    /// ITU-R BT.2020 (non-constant luminance).
    Bt2020,
}

impl Matrix {
    /// The matrix for an ISO/IEC 23091-2 `matrix_coefficients` code (H.264/H.265 VUI, AV1
    /// colour config); unknown and unspecified codes give BT.601, like swscale.
    pub fn from_code(code: u8) -> Matrix {
        match code {
            1 => Matrix::Bt709,
            9 | 10 => Matrix::Bt2020,
            _ => Matrix::Bt601,
        }
    }

    /// `(Kr, Kb)`, the luma weights of red and blue.
    fn luma_weights(self) -> (f64, f64) {
        match self {
            Matrix::Bt601 => (0.299, 0.114),
            Matrix::Bt709 => (0.2126, 0.0722),
            Matrix::Bt2020 => (0.2627, 0.0593),
        }
    }

    /// swscale's 16.16 fixed-point coefficients for limited range: `(crv, cbu, cgu, cgv)`.
    fn coefficients(self) -> (i32, i32, i32, i32) {
        match self {
            Matrix::Bt601 => (104597, 132201, 25675, 53279),
            Matrix::Bt709 => (117489, 138438, 13975, 34925),
            Matrix::Bt2020 => (110013, 140363, 12277, 42626),
        }
    }
}

/// How a frame's YUV values map to RGB.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct ColourSpace {
    pub matrix: Matrix,
    /// Full range (0-255) instead of limited (16-235 luma, 16-240 chroma).
    pub full_range: bool,
}

/// A decoder's own picture buffers, kept instead of copied: strided planes that stay
/// unchanged while this value lives (decoders never write a picture after handing it out).
pub trait SharedPlanes: Send + Sync {
    /// Plane `i` (0 Y, 1 U, 2 V): at least `stride(i) * (rows - 1) + width` bytes.
    fn plane(&self, i: usize) -> &[u8];
    /// Bytes from one row of plane `i` to the next.
    fn stride(&self, i: usize) -> usize;
}

/// Where a frame's pixels are.
#[derive(Clone)]
enum Pixels {
    /// Y, U, V tightly packed, owned.
    Packed(Vec<u8>),
    /// The decoder's buffers, strided; packed on first demand by [`Frame::i420`].
    Shared {
        planes: std::sync::Arc<dyn SharedPlanes>,
        packed: std::sync::OnceLock<Vec<u8>>,
    },
}

/// One decoded picture, 8-bit 4:2:0 (Y, then U, then V): copied into one packed buffer, or
/// kept in the decoder's own buffers ([`Frame::from_shared`]).
#[derive(Clone)]
pub struct Frame {
    /// Presentation time of the sample this picture was decoded from (the source's units).
    pub pts: i64,
    pub width: u32,
    pub height: u32,
    pub colour: ColourSpace,
    pixels: Pixels,
}

impl PartialEq for Frame {
    fn eq(&self, other: &Frame) -> bool {
        (self.pts, self.width, self.height, self.colour)
            == (other.pts, other.width, other.height, other.colour)
            && self.i420() == other.i420()
    }
}

impl Eq for Frame {}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("pts", &self.pts)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("colour", &self.colour)
            .finish_non_exhaustive()
    }
}

impl Frame {
    /// Width and height of the chroma planes (rounded up for odd sizes).
    pub fn chroma_size(width: u32, height: u32) -> (u32, u32) {
        (width.div_ceil(2), height.div_ceil(2))
    }

    /// Copies a picture out of strided planes. `planes[i]` must hold `stride[i]` bytes per row
    /// for each row of that plane (the last row may be just the visible width).
    ///
    /// Returns `None` when a plane is too short for the given size and stride.
    pub fn from_planes(
        pts: i64,
        width: u32,
        height: u32,
        colour: ColourSpace,
        planes: [&[u8]; 3],
        strides: [usize; 3],
    ) -> Option<Frame> {
        Frame::from_planes_in(Vec::new(), pts, width, height, colour, planes, strides)
    }

    /// [`Frame::from_planes`] into `buffer` (its contents replaced): a buffer of an earlier
    /// frame of the same size is reused without allocating or faulting in fresh memory.
    pub fn from_planes_in(
        buffer: Vec<u8>,
        pts: i64,
        width: u32,
        height: u32,
        colour: ColourSpace,
        planes: [&[u8]; 3],
        strides: [usize; 3],
    ) -> Option<Frame> {
        let sizes = Frame::plane_sizes(width, height);
        if !Frame::planes_fit(sizes, planes.map(<[u8]>::len), strides) {
            return None;
        }
        let total: usize = sizes.iter().map(|(w, h)| w * h).sum();
        let mut data = buffer;
        data.clear();
        data.reserve(total);
        for ((plane, stride), (w, h)) in planes.iter().zip(strides).zip(sizes) {
            for row in 0..h {
                data.extend_from_slice(&plane[row * stride..row * stride + w]);
            }
        }
        Some(Frame {
            pts,
            width,
            height,
            colour,
            pixels: Pixels::Packed(data),
        })
    }

    /// A picture that keeps a decoder's buffers instead of copying them (no copy at all);
    /// `None` when a plane is too short for the size and its stride.
    pub fn from_shared(
        pts: i64,
        width: u32,
        height: u32,
        colour: ColourSpace,
        planes: std::sync::Arc<dyn SharedPlanes>,
    ) -> Option<Frame> {
        let lens = [0, 1, 2].map(|i| planes.plane(i).len());
        let strides = [0, 1, 2].map(|i| planes.stride(i));
        if !Frame::planes_fit(Frame::plane_sizes(width, height), lens, strides) {
            return None;
        }
        Some(Frame {
            pts,
            width,
            height,
            colour,
            pixels: Pixels::Shared {
                planes,
                packed: std::sync::OnceLock::new(),
            },
        })
    }

    /// `(width, rows)` of the Y, U and V planes.
    fn plane_sizes(width: u32, height: u32) -> [(usize, usize); 3] {
        let (cw, ch) = Frame::chroma_size(width, height);
        let chroma = (cw as usize, ch as usize);
        [(width as usize, height as usize), chroma, chroma]
    }

    /// Whether planes of these byte lengths and strides hold pictures of these plane sizes
    /// (the last row may be just the visible width).
    fn planes_fit(sizes: [(usize, usize); 3], lens: [usize; 3], strides: [usize; 3]) -> bool {
        sizes
            .iter()
            .zip(lens)
            .zip(strides)
            .all(|((&(w, h), len), stride)| h == 0 || (stride >= w && len >= stride * (h - 1) + w))
    }

    /// Plane `i` (0 Y, 1 U, 2 V) and its stride, wherever the pixels are.
    fn plane(&self, i: usize) -> (&[u8], usize) {
        match &self.pixels {
            Pixels::Packed(data) => {
                let luma = self.width as usize * self.height as usize;
                let (cw, ch) = Frame::chroma_size(self.width, self.height);
                let chroma = cw as usize * ch as usize;
                match i {
                    0 => (&data[..luma], self.width as usize),
                    1 => (&data[luma..luma + chroma], cw as usize),
                    _ => (&data[luma + chroma..], cw as usize),
                }
            }
            Pixels::Shared { planes, .. } => (planes.plane(i), planes.stride(i)),
        }
    }

    /// The same picture read with another colour space (for comparisons).
    pub fn with_colour(&self, matrix: Matrix, full_range: bool) -> Frame {
        Frame {
            colour: ColourSpace { matrix, full_range },
            ..self.clone()
        }
    }

    /// The Y, U and V planes, each tightly packed.
    pub fn planes(&self) -> [&[u8]; 3] {
        let luma = self.width as usize * self.height as usize;
        let (cw, ch) = Frame::chroma_size(self.width, self.height);
        let chroma = cw as usize * ch as usize;
        let (y, rest) = self.i420().split_at(luma);
        let (u, v) = rest.split_at(chroma);
        [y, u, v]
    }

    /// The whole picture as raw I420 (what `ffmpeg -pix_fmt yuv420p -f rawvideo` writes and
    /// `-f framemd5` hashes); a frame in a decoder's buffers is packed once, on first call.
    pub fn i420(&self) -> &[u8] {
        match &self.pixels {
            Pixels::Packed(data) => data,
            Pixels::Shared {
                planes: shared,
                packed,
            } => packed.get_or_init(|| {
                // The planes were checked to fit when the frame was made.
                let planes = [0, 1, 2].map(|i| shared.plane(i));
                let strides = [0, 1, 2].map(|i| shared.stride(i));
                Frame::from_planes(
                    self.pts,
                    self.width,
                    self.height,
                    self.colour,
                    planes,
                    strides,
                )
                .map(Frame::into_buffer)
                .unwrap_or_default()
            }),
        }
    }

    /// The frame's storage, for [`Frame::from_planes_in`] to reuse (empty for a frame in a
    /// decoder's buffers).
    pub fn into_buffer(self) -> Vec<u8> {
        match self.pixels {
            Pixels::Packed(data) => data,
            Pixels::Shared { .. } => Vec::new(),
        }
    }

    /// Bytes held by this frame (for cache budgets).
    pub fn byte_size(&self) -> usize {
        let held = match &self.pixels {
            Pixels::Packed(data) => data.len(),
            Pixels::Shared { planes, packed } => {
                let (_, ch) = Frame::chroma_size(self.width, self.height);
                planes.stride(0) * self.height as usize
                    + (planes.stride(1) + planes.stride(2)) * ch as usize
                    + packed.get().map_or(0, Vec::len)
            }
        };
        held + std::mem::size_of::<Frame>()
    }

    /// Converts to RGBA8 (alpha 255), row-major, `width * height * 4` bytes.
    pub fn to_rgba(&self) -> Vec<u8> {
        self.to_packed::<4>()
    }

    /// Converts to RGB8, row-major, `width * height * 3` bytes (what `ffmpeg -pix_fmt rgb24`
    /// gives, and what its PNG encoder writes).
    pub fn to_rgb(&self) -> Vec<u8> {
        self.to_packed::<3>()
    }

    /// RGB in the first three of every `BYTES` bytes; a fourth byte is alpha 255.
    fn to_packed<const BYTES: usize>(&self) -> Vec<u8> {
        let (w, h) = (self.width as usize, self.height as usize);
        let cw = Frame::chroma_size(self.width, self.height).0 as usize;
        let ((yp, ys), (up, us), (vp, vs)) = (self.plane(0), self.plane(1), self.plane(2));
        let (crv, cbu, cgu, cgv) = self.colour.matrix.coefficients();
        // Luma scale and offset, and chroma coefficients, in 16.16 fixed point.
        let (cy, y_offset, crv, cbu, cgu, cgv) = if self.colour.full_range {
            let scale = |c: i32| (i64::from(c) * 224 / 255) as i32;
            (1 << 16, 0, scale(crv), scale(cbu), scale(cgu), scale(cgv))
        } else {
            (76309, 16, crv, cbu, cgu, cgv)
        };
        let mut out = vec![255u8; w * h * BYTES];
        if w == 0 {
            return out;
        }
        for (row, orow) in out.chunks_exact_mut(w * BYTES).enumerate() {
            let yrow = &yp[row * ys..row * ys + w];
            let crow = row / 2;
            let (urow, vrow) = (
                &up[crow * us..crow * us + cw],
                &vp[crow * vs..crow * vs + cw],
            );
            // Two luma samples share one chroma sample: its terms are computed once.
            let pairs = orow.chunks_mut(2 * BYTES).zip(yrow.chunks(2));
            for ((opair, ypair), (&u, &v)) in pairs.zip(urow.iter().zip(vrow)) {
                let (u, v) = (i32::from(u) - 128, i32::from(v) - 128);
                let (r, g, b) = (crv * v, -cgu * u - cgv * v, cbu * u);
                for (px, &y) in opair.chunks_exact_mut(BYTES).zip(ypair) {
                    let yy = (i32::from(y) - y_offset) * cy + (1 << 15);
                    px[0] = clamp_u8((yy + r) >> 16);
                    px[1] = clamp_u8((yy + g) >> 16);
                    px[2] = clamp_u8((yy + b) >> 16);
                }
            }
        }
        out
    }
}

/// A frame's YUV mapped to JFIF YCbCr (BT.601, full range), row by row: see [`Frame::jfif`].
pub struct JfifRows<'a> {
    frame: &'a Frame,
    /// 16.16 fixed point: `Y' = ky * (Y - y_offset) + yu * u + yv * v`, `u, v` centred on 0.
    ky: i32,
    y_offset: i32,
    yu: i32,
    yv: i32,
    /// `Cb' = 128 + bu * u + bv * v`, `Cr' = 128 + ru * u + rv * v`.
    bu: i32,
    bv: i32,
    ru: i32,
    rv: i32,
}

impl JfifRows<'_> {
    /// Appends row `row`'s Y', Cb' and Cr' (one value per pixel each; chroma repeated over
    /// the pixels a chroma sample covers) to `y`, `cb` and `cr`.
    pub fn fill_row(&self, row: usize, y: &mut Vec<u8>, cb: &mut Vec<u8>, cr: &mut Vec<u8>) {
        let w = self.frame.width as usize;
        if row >= self.frame.height as usize || w == 0 {
            return;
        }
        let cw = Frame::chroma_size(self.frame.width, self.frame.height).0 as usize;
        let f = self.frame;
        let ((yp, ys), (up, us), (vp, vs)) = (f.plane(0), f.plane(1), f.plane(2));
        let yrow = &yp[row * ys..row * ys + w];
        let crow = row / 2;
        let (urow, vrow) = (
            &up[crow * us..crow * us + cw],
            &vp[crow * vs..crow * vs + cw],
        );
        let start = y.len();
        y.extend_from_slice(yrow);
        let yout = &mut y[start..];
        let round = 1 << 15;
        // Chroma terms once per chroma sample; luma through a table plus the chroma term
        // (zero for BT.601 sources, where only the range changes).
        let luma_only = self.yu == 0 && self.yv == 0;
        if !(luma_only && self.ky == 1 << 16 && self.y_offset == 0) {
            let table: [i32; 256] =
                std::array::from_fn(|v| self.ky * (v as i32 - self.y_offset) + round);
            for (ypair, (&u, &v)) in yout.chunks_mut(2).zip(urow.iter().zip(vrow)) {
                let shift = if luma_only {
                    0
                } else {
                    self.yu * (i32::from(u) - 128) + self.yv * (i32::from(v) - 128)
                };
                for luma in ypair {
                    *luma = clamp_u8((table[usize::from(*luma)] + shift) >> 16);
                }
            }
        }
        let chroma = |out: &mut Vec<u8>, ku: i32, kv: i32| {
            let start = out.len();
            out.resize(start + w, 0);
            for (pair, (&u, &v)) in out[start..].chunks_mut(2).zip(urow.iter().zip(vrow)) {
                let (u, v) = (i32::from(u) - 128, i32::from(v) - 128);
                pair.fill(clamp_u8(((128 << 16) + ku * u + kv * v + round) >> 16));
            }
        };
        chroma(cb, self.bu, self.bv);
        chroma(cr, self.ru, self.rv);
    }
}

impl Frame {
    /// This frame as JFIF YCbCr rows (the colour space of a JPEG), converted from its own
    /// matrix and range in one step: `Y'` from luma plus a chroma term (zero for full-range
    /// BT.601), `Cb'`/`Cr'` from chroma alone. Equals the JFIF conversion of
    /// [`Frame::to_rgb`] wherever the YUV values are inside the RGB cube.
    pub fn jfif(&self) -> JfifRows<'_> {
        let (kr, kb) = self.colour.matrix.luma_weights();
        let (y_range, c_range, y_offset) = if self.colour.full_range {
            (255.0, 255.0, 0)
        } else {
            (219.0, 224.0, 16)
        };
        // (Yn, Pb, Pr) of the source (Yn in 0..1, Pb/Pr in -0.5..0.5) -> JFIF (Y', Pb', Pr').
        let to_jfif = |yn: f64, pb: f64, pr: f64| {
            let r = yn + 2.0 * (1.0 - kr) * pr;
            let b = yn + 2.0 * (1.0 - kb) * pb;
            let g = (yn - kr * r - kb * b) / (1.0 - kr - kb);
            let y = 0.299 * r + 0.587 * g + 0.114 * b;
            (y, (b - y) / 1.772, (r - y) / 1.402)
        };
        let fixed = |c: f64| (c * 65536.0).round() as i32;
        let (luma, _, _) = to_jfif(1.0, 0.0, 0.0);
        let (yu, bu, ru) = to_jfif(0.0, 1.0, 0.0);
        let (yv, bv, rv) = to_jfif(0.0, 0.0, 1.0);
        let per_y = 255.0 / y_range;
        let per_c = 255.0 / c_range;
        JfifRows {
            frame: self,
            ky: fixed(luma * per_y),
            y_offset,
            yu: fixed(yu * per_c),
            yv: fixed(yv * per_c),
            bu: fixed(bu * per_c),
            bv: fixed(bv * per_c),
            ru: fixed(ru * per_c),
            rv: fixed(rv * per_c),
        }
    }
}

fn clamp_u8(v: i32) -> u8 {
    v.clamp(0, 255) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(y: u8, u: u8, v: u8, colour: ColourSpace) -> Frame {
        let planes = [&[y; 16][..], &[u; 4][..], &[v; 4][..]];
        Frame::from_planes(0, 4, 4, colour, planes, [4, 2, 2]).expect("planes fit")
    }

    #[test]
    fn limited_range_black_white_and_grey() {
        let c = ColourSpace::default();
        assert_eq!(&flat(16, 128, 128, c).to_rgba()[..4], &[0, 0, 0, 255]);
        assert_eq!(
            &flat(235, 128, 128, c).to_rgba()[..4],
            &[255, 255, 255, 255]
        );
        let full = ColourSpace {
            full_range: true,
            ..c
        };
        assert_eq!(
            &flat(128, 128, 128, full).to_rgba()[..4],
            &[128, 128, 128, 255]
        );
    }

    #[test]
    fn bt601_and_bt709_red_differ_as_specified() {
        // Limited-range pure red: BT.601 (81, 90, 240), BT.709 (63, 102, 240).
        let red601 = flat(81, 90, 240, ColourSpace::default()).to_rgba();
        let red709 = flat(
            63,
            102,
            240,
            ColourSpace {
                matrix: Matrix::Bt709,
                full_range: false,
            },
        )
        .to_rgba();
        for rgba in [red601, red709] {
            assert!(rgba[0] >= 253 && rgba[1] <= 2 && rgba[2] <= 2, "{rgba:?}");
        }
    }

    #[test]
    fn rgb_is_rgba_without_alpha_and_follows_each_pixels_own_chroma() {
        // 5x3: odd width and height, every sample different.
        let y: Vec<u8> = (0..15).map(|i| 16 + i * 14).collect();
        let u: Vec<u8> = (0..6).map(|i| 60 + i * 25).collect();
        let v: Vec<u8> = (0..6).map(|i| 200 - i * 25).collect();
        let frame = Frame::from_planes(0, 5, 3, ColourSpace::default(), [&y, &u, &v], [5, 3, 3])
            .expect("fits");
        let (rgb, rgba) = (frame.to_rgb(), frame.to_rgba());
        assert_eq!(rgb.len(), 5 * 3 * 3);
        assert_eq!(rgba.len(), 5 * 3 * 4);
        for (px3, px4) in rgb.chunks_exact(3).zip(rgba.chunks_exact(4)) {
            assert_eq!(px3, &px4[..3]);
            assert_eq!(px4[3], 255);
        }
        // Pixel (4, 2) uses chroma sample (2, 1); computed here from the BT.601 formula.
        let (yy, uu, vv) = (f64::from(y[14]), f64::from(u[5]), f64::from(v[5]));
        let r = 1.164 * (yy - 16.0) + 1.596 * (vv - 128.0);
        let g = 1.164 * (yy - 16.0) - 0.392 * (uu - 128.0) - 0.813 * (vv - 128.0);
        let b = 1.164 * (yy - 16.0) + 2.017 * (uu - 128.0);
        let px = &rgb[(2 * 5 + 4) * 3..][..3];
        for (got, want) in px.iter().zip([r, g, b]) {
            let want = want.round().clamp(0.0, 255.0);
            assert!(
                (f64::from(*got) - want).abs() <= 1.0,
                "{px:?} vs {r} {g} {b}"
            );
        }
    }

    /// JFIF's RGB -> YCbCr (BT.601, full range).
    fn jfif_of_rgb(px: &[u8]) -> [f64; 3] {
        let (r, g, b) = (f64::from(px[0]), f64::from(px[1]), f64::from(px[2]));
        let y = 0.299 * r + 0.587 * g + 0.114 * b;
        [y, 128.0 + (b - y) / 1.772, 128.0 + (r - y) / 1.402]
    }

    #[test]
    fn jfif_rows_equal_the_jfif_of_the_rgb_conversion() {
        // 6x4, colours well inside the RGB cube for every matrix and range.
        let y: Vec<u8> = (0..24).map(|i| 60 + i * 5).collect();
        let u: Vec<u8> = (0..6).map(|i| 110 + i * 7).collect();
        let v: Vec<u8> = (0..6).map(|i| 145 - i * 7).collect();
        for matrix in [Matrix::Bt601, Matrix::Bt709, Matrix::Bt2020] {
            for full_range in [false, true] {
                let colour = ColourSpace { matrix, full_range };
                let frame =
                    Frame::from_planes(0, 6, 4, colour, [&y, &u, &v], [6, 3, 3]).expect("fits");
                let rgb = frame.to_rgb();
                let rows = frame.jfif();
                let (mut yy, mut cb, mut cr) = (Vec::new(), Vec::new(), Vec::new());
                for row in 0..4 {
                    rows.fill_row(row, &mut yy, &mut cb, &mut cr);
                }
                assert_eq!((yy.len(), cb.len(), cr.len()), (24, 24, 24));
                for (i, px) in rgb.chunks_exact(3).enumerate() {
                    let want = jfif_of_rgb(px);
                    for (got, want) in [yy[i], cb[i], cr[i]].into_iter().zip(want) {
                        assert!(
                            (f64::from(got) - want).abs() <= 1.5,
                            "{colour:?} pixel {i}: {got} vs {want:.2}"
                        );
                    }
                }
                if matrix == Matrix::Bt601 && full_range {
                    assert_eq!(yy, y, "full-range BT.601 luma passes through");
                }
            }
        }
    }

    #[test]
    fn odd_sizes_round_chroma_up() {
        assert_eq!(Frame::chroma_size(319, 239), (160, 120));
        let planes = [&[0u8; 15][..], &[0u8; 6][..], &[0u8; 6][..]];
        let frame =
            Frame::from_planes(0, 3, 5, ColourSpace::default(), planes, [3, 2, 2]).expect("fits");
        assert_eq!(frame.i420().len(), 15 + 6 + 6);
        assert!(
            Frame::from_planes(0, 3, 5, ColourSpace::default(), planes, [2, 2, 2]).is_none(),
            "a stride below the width is refused"
        );
    }
}
