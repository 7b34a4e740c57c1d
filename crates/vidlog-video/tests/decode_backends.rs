//! Decoder backends against FFmpeg: every frame of each fixture, MD5s from `ffmpeg -f framemd5`
//! (FFmpeg's decode of the same stream on one side, FFmpeg hashing our raw frames on the other),
//! and RGBA against `ffmpeg -pix_fmt rgba`.

mod decode_support;

use decode_support::{
    Sample, codec_of, ffmpeg_raw_frames, fixture_samples, md5s_of, presentation_pts,
};
use vidlog_testdata::{Fixture, ffmpeg_frame_md5s};
use vidlog_video::decode::{Backend, Decoder, Frame, Matrix};
use vidlog_video::encode::{H264Encoder, H264EncoderConfig};

/// Decodes every sample in order, then flushes; frames sorted by PTS.
fn decode_all(decoder: &mut dyn Decoder, samples: &[Sample]) -> Vec<Frame> {
    let mut frames = Vec::new();
    for (i, s) in samples.iter().enumerate() {
        decoder
            .decode(&s.data, s.pts, &mut frames)
            .unwrap_or_else(|e| panic!("sample {i}: {e}"));
    }
    decoder.flush(&mut frames).expect("flush");
    frames.sort_by_key(|f| f.pts);
    frames
}

fn check_bit_exact(backend: Backend, fixture: Fixture) {
    let samples = fixture_samples(fixture);
    let mut decoder = backend
        .open(codec_of(fixture))
        .unwrap_or_else(|e| panic!("{e}"));
    let frames = decode_all(decoder.as_mut(), &samples);
    assert_eq!(
        frames.iter().map(|f| f.pts).collect::<Vec<_>>(),
        presentation_pts(&samples),
        "{fixture:?} on {}: one frame per sample, each with its sample's PTS",
        backend.name()
    );
    let reference = ffmpeg_frame_md5s(&vidlog_testdata::fixture(fixture), None)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reference.len(), fixture.frame_count() as usize);
    assert_eq!(
        md5s_of(&frames),
        reference,
        "{fixture:?} on {}: I420 MD5s equal FFmpeg's, frame by frame",
        backend.name()
    );
}

#[test]
fn openh264_is_bit_exact_on_x264_high_without_b_frames() {
    for fixture in [Fixture::X264HighBf0, Fixture::X264Slices4, Fixture::X264Odd] {
        check_bit_exact(Backend::OpenH264, fixture);
    }
}

#[test]
fn openh264_decodes_b_frames_with_their_pts_and_close_to_ffmpeg() {
    for fixture in [Fixture::X264HighBf2, Fixture::X264HighBf3Pyramid] {
        let samples = fixture_samples(fixture);
        let mut decoder = Backend::OpenH264.open(codec_of(fixture)).expect("opens");
        let frames = decode_all(decoder.as_mut(), &samples);
        assert_eq!(
            frames.iter().map(|f| f.pts).collect::<Vec<_>>(),
            presentation_pts(&samples),
            "{fixture:?}: every frame comes out with its own PTS"
        );
        // Not bit-exact with B-frames (known OpenH264 behaviour): require a PSNR of 40 dB or
        // more against FFmpeg's frame for every frame.
        let size = frames[0].i420().len();
        let reference = ffmpeg_raw_frames(&vidlog_testdata::fixture(fixture), "yuv420p", size);
        assert_eq!(reference.len(), frames.len());
        for (i, (ours, theirs)) in frames.iter().zip(&reference).enumerate() {
            let mse = ours
                .i420()
                .iter()
                .zip(theirs)
                .map(|(a, b)| (f64::from(*a) - f64::from(*b)).powi(2))
                .sum::<f64>()
                / size as f64;
            let psnr = if mse == 0.0 {
                f64::INFINITY
            } else {
                10.0 * (255.0f64 * 255.0 / mse).log10()
            };
            assert!(psnr >= 40.0, "{fixture:?} frame {i}: PSNR {psnr:.1} dB");
        }
    }
}

#[test]
fn openh264_is_bit_exact_on_our_encoders_output() {
    let (width, height) = (160usize, 128usize);
    let mut encoder = H264Encoder::new(H264EncoderConfig {
        width: width as u32,
        height: height as u32,
        fps: 30.0,
        bitrate_bps: 400_000,
        keyframe_interval: 10,
    })
    .expect("encoder");
    let mut samples = Vec::new();
    let mut stream = Vec::new();
    for t in 0..25usize {
        let rgba: Vec<u8> = (0..width * height)
            .flat_map(|i| {
                let (x, y) = (i % width, i / width);
                [
                    (x * 2 + t * 5) as u8,
                    (y * 2 + t * 3) as u8,
                    (x + y) as u8,
                    255,
                ]
            })
            .collect();
        let sample = encoder.encode_rgba(&rgba).expect("encodes");
        stream.extend_from_slice(&sample.data);
        samples.push(Sample {
            data: sample.data.to_vec(),
            pts: t as i64 * 3000,
            is_key: sample.is_keyframe,
        });
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ours.h264");
    std::fs::write(&path, &stream).expect("write");
    let mut decoder = Backend::OpenH264
        .open(vidlog_types::VideoCodec::H264)
        .expect("opens");
    let frames = decode_all(decoder.as_mut(), &samples);
    assert_eq!(frames.len(), 25);
    let reference = ffmpeg_frame_md5s(&path, Some("h264")).expect("ffmpeg decodes it");
    assert_eq!(md5s_of(&frames), reference);
}

/// Largest per-channel difference and mean absolute difference between two RGBA buffers.
fn rgba_diff(ours: &[u8], theirs: &[u8]) -> (u8, f64) {
    let max = ours
        .iter()
        .zip(theirs)
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .unwrap_or(0);
    let sum: u64 = ours
        .iter()
        .zip(theirs)
        .map(|(a, b)| u64::from(a.abs_diff(*b)))
        .sum();
    (max, sum as f64 / ours.len().max(1) as f64)
}

/// Makes a short x264 stream with the given colour options, decodes it with openh264 and
/// compares RGBA with `ffmpeg -pix_fmt rgba`.
fn check_rgba(extra: &[&str], expect_matrix: Matrix, expect_full: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("colour.h264");
    let status = std::process::Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-nostdin",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg("testsrc2=size=320x240:rate=30")
        .args(["-frames:v", "8", "-c:v", "libx264", "-bf", "0"])
        .args(extra)
        .args(["-f", "h264"])
        .arg(&path)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success());
    let data = std::fs::read(&path).expect("read");
    let aus = vidlog_video::bitstream::h264::split_access_units(&data).expect("splits");
    let samples: Vec<Sample> = aus
        .iter()
        .enumerate()
        .map(|(i, au)| Sample {
            data: au.data.clone(),
            pts: i as i64,
            is_key: au.is_keyframe,
        })
        .collect();
    let mut decoder = Backend::OpenH264
        .open(vidlog_types::VideoCodec::H264)
        .expect("opens");
    let frames = decode_all(decoder.as_mut(), &samples);
    assert_eq!(frames.len(), 8);
    assert_eq!(frames[0].colour.matrix, expect_matrix, "{extra:?}");
    assert_eq!(frames[0].colour.full_range, expect_full, "{extra:?}");
    let reference = ffmpeg_raw_frames(&path, "rgba", 320 * 240 * 4);
    // The comparison tells the signalled colour space from the others.
    for wrong in [
        Frame::with_colour(&frames[0], Matrix::Bt709, expect_full),
        Frame::with_colour(&frames[0], Matrix::Bt601, !expect_full),
    ] {
        if wrong.colour != frames[0].colour {
            let (max, _) = rgba_diff(&wrong.to_rgba(), &reference[0]);
            assert!(
                max > 10,
                "{extra:?}: a wrong colour space is caught ({max})"
            );
        }
    }
    for (i, (frame, theirs)) in frames.iter().zip(&reference).enumerate() {
        let (max, mean) = rgba_diff(&frame.to_rgba(), theirs);
        eprintln!("{extra:?} frame {i}: RGBA max diff {max}, mean {mean:.3}");
        // Tolerance: swscale's SIMD YUV->RGB rounds differently from ours by a few steps
        // (measured here: max 3, mean 0.5 over all RGBA bytes); a wrong matrix or range is off
        // by more than 10 (checked above).
        assert!(
            max <= 4 && mean < 1.0,
            "{extra:?} frame {i}: max diff {max}, mean {mean:.3}"
        );
    }
}

#[test]
fn rgba_matches_ffmpeg_for_bt601_bt709_and_full_range() {
    check_rgba(&["-pix_fmt", "yuv420p"], Matrix::Bt601, false);
    check_rgba(
        &[
            "-pix_fmt",
            "yuv420p",
            "-colorspace",
            "bt709",
            "-color_primaries",
            "bt709",
            "-color_trc",
            "bt709",
        ],
        Matrix::Bt709,
        false,
    );
    check_rgba(&["-pix_fmt", "yuvj420p"], Matrix::Bt601, true);
}

#[test]
fn a_truncated_sample_is_an_error_not_a_panic() {
    let samples = fixture_samples(Fixture::X264HighBf0);
    let mut decoder = Backend::OpenH264
        .open(vidlog_types::VideoCodec::H264)
        .expect("opens");
    let mut frames = Vec::new();
    decoder
        .decode(&samples[0].data, 0, &mut frames)
        .expect("keyframe decodes");
    let half = &samples[1].data[..samples[1].data.len() / 3];
    let garbage: Vec<u8> = samples[2].data.iter().map(|b| b ^ 0x5A).collect();
    // Either may be rejected or concealed by the decoder; neither may panic, and the decoder
    // must decode again after a reset.
    let _ = decoder.decode(half, 1, &mut frames);
    let _ = decoder.decode(&garbage, 2, &mut frames);
    decoder.reset().expect("reset");
    let mut after = Vec::new();
    for (i, s) in samples[..30].iter().enumerate() {
        decoder
            .decode(&s.data, s.pts, &mut after)
            .unwrap_or_else(|e| panic!("sample {i} after reset: {e}"));
    }
    decoder.flush(&mut after).expect("flush");
    assert_eq!(after.len(), 30);
}

#[cfg(feature = "ffmpeg")]
mod ffmpeg_backend {
    use super::*;

    #[test]
    fn bit_exact_on_every_h264_fixture_including_b_frames() {
        for fixture in Fixture::H264 {
            check_bit_exact(Backend::Ffmpeg, fixture);
        }
    }

    #[test]
    fn bit_exact_on_h265() {
        if !Fixture::X265.is_available() {
            eprintln!("skipped: this ffmpeg has no libx265 to make the fixture");
            return;
        }
        check_bit_exact(Backend::Ffmpeg, Fixture::X265);
    }

    #[test]
    fn bit_exact_on_av1() {
        if !Fixture::Av1Ivf.is_available() {
            eprintln!("skipped: this ffmpeg has no AV1 encoder to make the fixture");
            return;
        }
        check_bit_exact(Backend::Ffmpeg, Fixture::Av1Ivf);
    }

    #[test]
    fn bit_exact_on_vp9_superframes() {
        if !Fixture::Vp9Ivf.available_or_skip() {
            return;
        }
        check_bit_exact(Backend::Ffmpeg, Fixture::Vp9Ivf);
    }
}
