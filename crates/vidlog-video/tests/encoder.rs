//! The built-in H.264 encoder's output, checked with our own splitter and with FFmpeg as an
//! independent decoder.

use vidlog_types::VideoCodec;
use vidlog_video::bitstream::h264::split_access_units;
use vidlog_video::encode::{Encoder, H264Encoder, H264EncoderConfig, RawFrame};
use vidlog_video::probe::{probe_sample, stream_info};

fn gradient_rgba(width: usize, height: usize, t: usize) -> Vec<u8> {
    let mut rgba = Vec::with_capacity(width * height * 4);
    for y in 0..height {
        for x in 0..width {
            rgba.extend_from_slice(&[
                ((x * 255 / width + 4 * t) % 256) as u8,
                ((y * 255 / height + 2 * t) % 256) as u8,
                ((x + y + 8 * t) % 256) as u8,
                255,
            ]);
        }
    }
    rgba
}

#[test]
fn sixty_frames_decode_in_ffmpeg() {
    let (width, height) = (320usize, 240usize);
    let mut encoder = H264Encoder::new(H264EncoderConfig {
        width: width as u32,
        height: height as u32,
        fps: 30.0,
        bitrate_bps: 800_000,
        keyframe_interval: 25,
    })
    .expect("encoder");
    assert_eq!(encoder.codec(), VideoCodec::H264);

    let mut stream = Vec::new();
    let mut keyframes = Vec::new();
    for t in 0..60 {
        let frame = gradient_rgba(width, height, t);
        let sample = encoder.encode(RawFrame::Rgba8(&frame)).expect("encodes");
        if sample.is_keyframe {
            keyframes.push(t);
        }
        stream.extend_from_slice(&sample.data);
    }
    assert_eq!(keyframes, vec![0, 25, 50]);
    // Rate control without frame skipping is approximate; stay within a factor of 3 of the target.
    let bits_per_second = stream.len() as f64 * 8.0 / 2.0;
    eprintln!(
        "encoded 60 frames at {:.0} kbit/s (target 800)",
        bits_per_second / 1000.0
    );
    assert!(
        (800_000.0 / 3.0..800_000.0 * 3.0).contains(&bits_per_second),
        "{bits_per_second} bit/s"
    );

    // Our splitter: one access unit per frame, SPS on every keyframe, no reordering.
    let aus = split_access_units(&stream).expect("splits");
    assert_eq!(aus.len(), 60);
    for (i, au) in aus.iter().enumerate() {
        assert_eq!(au.is_keyframe, keyframes.contains(&i), "AU {i}");
        assert_eq!(au.sps.is_some(), au.is_keyframe, "AU {i}");
    }
    let info = stream_info(VideoCodec::H264, &aus[25].data).expect("stream info");
    assert_eq!((info.width, info.height), (320, 240));
    assert!(
        info.codec_string.starts_with("avc1.42"),
        "{}",
        info.codec_string
    );
    assert!(
        probe_sample(VideoCodec::H264, &aus[50].data)
            .expect("probe")
            .is_keyframe
    );

    // FFmpeg: counts 60 frames and decodes every one without an error.
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("encoded.h264");
    std::fs::write(&path, &stream).expect("write");
    let counted = vidlog_testdata::ffprobe_json(
        &path,
        &[
            "-count_frames",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=nb_read_frames,width,height,profile",
        ],
    );
    let stream_json = &counted["streams"][0];
    assert_eq!(stream_json["nb_read_frames"], "60");
    assert_eq!(stream_json["width"], 320);
    assert_eq!(stream_json["profile"], "Constrained Baseline");
    let md5s = vidlog_testdata::ffmpeg_frame_md5s(&path, Some("h264")).expect("ffmpeg decodes");
    assert_eq!(md5s.len(), 60);

    // Joining at a later keyframe works too: decode from frame 25 on.
    let from_25: Vec<u8> = aus[25..].iter().flat_map(|au| au.data.clone()).collect();
    let join = dir.path().join("join.h264");
    std::fs::write(&join, &from_25).expect("write");
    let md5s_from_25 = vidlog_testdata::ffmpeg_frame_md5s(&join, Some("h264")).expect("decodes");
    assert_eq!(md5s_from_25, md5s[25..]);
}

#[test]
fn i420_with_padded_strides() {
    let (width, height) = (64usize, 48usize);
    let mut encoder = H264Encoder::new(H264EncoderConfig {
        width: width as u32,
        height: height as u32,
        keyframe_interval: 1,
        ..Default::default()
    })
    .expect("encoder");
    let (y_stride, uv_stride) = (80usize, 48usize);
    let y = vec![100u8; y_stride * height];
    let u = vec![128u8; uv_stride * height / 2];
    let v = vec![128u8; uv_stride * height / 2];
    for _ in 0..3 {
        let sample = encoder
            .encode_i420(&y, &u, &v, y_stride, uv_stride)
            .expect("encodes");
        assert!(
            sample.is_keyframe,
            "keyframe_interval 1 makes every frame a keyframe"
        );
    }
}
