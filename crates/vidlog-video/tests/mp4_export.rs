//! MP4 export checked against FFmpeg: ffprobe must see one frame per sample at exactly the
//! logged presentation time, and ffmpeg must decode the same pictures from the MP4 as from the
//! same samples as a raw Annex B stream. Plain and fragmented, with and without B-frames, at
//! constant and jittered frame rates, and with a start inside a GOP; H.265 with B-frames, VP9
//! (superframes) and AV1 against FFmpeg's decode of their raw streams.

mod mp4_support;

use mp4_support::*;
use vidlog_testdata::{Fixture, has_ffmpeg};
use vidlog_types::VideoCodec;
use vidlog_video::mp4::timing::{median_interval, ns_to_ticks, ticks_to_ns};
use vidlog_video::mp4::{Mp4Error, Mp4Muxer, Mp4Options, SampleEntry};

/// Every check of one export. Returns the MP4 bytes.
fn check_export(case: &Case, options: Mp4Options, expected_timescale: Option<u32>) -> Vec<u8> {
    let what = format!(
        "{} ({})",
        case.name,
        if options.fragmented {
            "fragmented"
        } else {
            "plain"
        }
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let (bytes, summary) = mux(case, options.clone());
    let t = summary.timescale;
    if let Some(expected) = expected_timescale {
        assert_eq!(t, expected, "{what}: timescale");
    }
    let n = case.samples.len();
    assert_eq!(summary.samples, n);
    let mp4 = write_temp(dir.path(), "out.mp4", &bytes);

    // Expected presentation ticks, decode order: the logged pts in ticks minus the origin's.
    let origin = options
        .start
        .unwrap_or(*case.pts.iter().min().expect("samples"));
    let origin_ticks = ns_to_ticks(origin, t);
    let expected: Vec<i64> = case
        .pts
        .iter()
        .map(|&p| ns_to_ticks(p, t) - origin_ticks)
        .collect();
    for (&p, &e) in case.pts.iter().zip(&expected) {
        assert_eq!(
            ticks_to_ns(e + origin_ticks, t),
            p,
            "{what}: timescale {t} is not exact"
        );
    }
    let mut presented = expected.clone();
    presented.sort_unstable();

    let stream = &ffprobe(&["-select_streams", "v:0", "-show_streams"], &mp4, None)["streams"][0];
    assert_eq!(stream["time_base"], format!("1/{t}"), "{what}");
    let last_duration = ns_to_ticks(
        options
            .last_duration
            .unwrap_or_else(|| median_interval(&case.pts).expect("interval")),
        t,
    );
    assert_eq!(
        int(stream, "duration_ts"),
        Some(presented[n - 1] + last_duration),
        "{what}: stream duration = last pts + last frame's duration"
    );

    // Packets: one per sample, decode order, each at its logged pts.
    let packets = ffprobe(&["-select_streams", "v:0", "-show_packets"], &mp4, None);
    let packets = packets["packets"].as_array().expect("packets");
    assert_eq!(packets.len(), n, "{what}: packets");
    let packet_pts: Vec<i64> = packets
        .iter()
        .map(|p| int(p, "pts").expect("pts"))
        .collect();
    assert_eq!(packet_pts, expected, "{what}: packet pts (decode order)");
    let keys: Vec<bool> = packets
        .iter()
        .map(|p| p["flags"].as_str().unwrap_or("").contains('K'))
        .collect();
    let logged_keys: Vec<bool> = case.samples.iter().map(|s| s.1).collect();
    assert_eq!(keys, logged_keys, "{what}: keyframe flags");
    // Packet durations: FFmpeg 5.1 takes them from stts only for tracks without ctts; with
    // composition offsets it leaves them to the H.264 parser (the SPS frame rate), so the last
    // frame's duration is checked through the stream duration above, and here only without
    // reordering.
    if case.pts.windows(2).all(|w| w[0] < w[1]) {
        let durations: Vec<i64> = packets
            .iter()
            .map(|p| int(p, "duration").expect("duration"))
            .collect();
        let mut want: Vec<i64> = expected.windows(2).map(|w| w[1] - w[0]).collect();
        want.push(last_duration);
        assert_eq!(durations, want, "{what}: sample durations");
    }
    let dts: Vec<i64> = packets
        .iter()
        .map(|p| int(p, "dts").expect("dts"))
        .collect();
    assert!(
        dts.windows(2).all(|w| w[0] < w[1]),
        "{what}: dts strictly increase"
    );

    // Frames: one per sample, presentation order, exact pts.
    let frames = ffprobe(&["-select_streams", "v:0", "-show_frames"], &mp4, None);
    let frame_pts: Vec<i64> = frames["frames"]
        .as_array()
        .expect("frames")
        .iter()
        .map(|f| int(f, "pts").expect("frame pts"))
        .collect();
    assert_eq!(
        frame_pts, presented,
        "{what}: frame pts (presentation order)"
    );

    // Pictures: the MP4 decodes to the same frames as the raw samples.
    let reference = match &case.raw_file {
        Some(raw) => frame_md5s(raw, None),
        None => frame_md5s(
            &write_temp(dir.path(), "in.h264", &case.annexb()),
            Some("h264"),
        ),
    };
    assert_eq!(
        frame_md5s(&mp4, None),
        reference,
        "{what}: decoded pictures differ from the raw samples"
    );

    if options.fragmented {
        let piped = ffprobe(
            &["-select_streams", "v:0", "-show_frames"],
            &mp4,
            Some(&bytes),
        );
        let piped_pts: Vec<i64> = piped["frames"]
            .as_array()
            .expect("frames")
            .iter()
            .map(|f| int(f, "pts").expect("pts"))
            .collect();
        assert_eq!(piped_pts, presented, "{what}: through stdin");
        assert!(summary.fragments >= case.samples.iter().filter(|s| s.1).count());
    }
    bytes
}

fn both(case: &Case, expected_timescale: Option<u32>) {
    for fragmented in [false, true] {
        check_export(
            case,
            Mp4Options {
                fragmented,
                ..Mp4Options::default()
            },
            expected_timescale,
        );
    }
}

#[test]
fn x264_without_b_frames() {
    if !has_ffmpeg() {
        return eprintln!("skipped: no ffmpeg");
    }
    both(&fixture_case(Fixture::X264HighBf0), Some(30));
}

#[test]
fn x264_with_two_b_frames() {
    if !has_ffmpeg() {
        return eprintln!("skipped: no ffmpeg");
    }
    both(&fixture_case(Fixture::X264HighBf2), Some(30));
}

#[test]
fn x264_with_b_pyramid() {
    if !has_ffmpeg() {
        return eprintln!("skipped: no ffmpeg");
    }
    both(&fixture_case(Fixture::X264HighBf3Pyramid), Some(30));
}

#[test]
fn x264_cropped_size() {
    if !has_ffmpeg() {
        return eprintln!("skipped: no ffmpeg");
    }
    let case = fixture_case(Fixture::X264Odd);
    assert_eq!(entry(&case).dimensions(), (318, 238));
    let bytes = check_export(&case, Mp4Options::default(), Some(30));
    let dir = tempfile::tempdir().expect("tempdir");
    let mp4 = write_temp(dir.path(), "odd.mp4", &bytes);
    let stream = &ffprobe(&["-select_streams", "v:0", "-show_streams"], &mp4, None)["streams"][0];
    assert_eq!(
        (stream["width"].as_i64(), stream["height"].as_i64()),
        (Some(318), Some(238))
    );
}

#[test]
fn built_in_encoder_at_25_fps() {
    if !has_ffmpeg() {
        return eprintln!("skipped: no ffmpeg");
    }
    both(&encoder_case(), Some(25));
}

#[test]
fn ntsc_rate_uses_timescale_30000() {
    if !has_ffmpeg() {
        return eprintln!("skipped: no ffmpeg");
    }
    let mut case = fixture_case(Fixture::X264HighBf2);
    let order: Vec<i64> = case.pts.iter().map(|&p| ns_to_ticks(p, 30)).collect();
    case.pts = order
        .iter()
        .map(|&i| ticks_to_ns(i * 1001, 30_000))
        .collect();
    case.name += " at 29.97 fps";
    both(&case, Some(30_000));
}

#[test]
fn jittered_variable_frame_rate_is_exact() {
    if !has_ffmpeg() {
        return eprintln!("skipped: no ffmpeg");
    }
    // Nanosecond jitter: only 1e9 is exact.
    both(
        &jittered(&fixture_case(Fixture::X264HighBf2), 1, 0x9E37_79B9),
        Some(1_000_000_000),
    );
    // Whole-millisecond jitter on a whole-millisecond grid: 90000 is exact.
    let mut ms = fixture_case(Fixture::X264HighBf3Pyramid);
    for p in &mut ms.pts {
        *p = *p / 1_000_000 * 1_000_000;
    }
    both(&jittered(&ms, 1_000_000, 7), Some(90_000));
}

#[test]
fn explicit_last_duration_and_timescale() {
    if !has_ffmpeg() {
        return eprintln!("skipped: no ffmpeg");
    }
    let case = fixture_case(Fixture::X264HighBf2);
    for fragmented in [false, true] {
        check_export(
            &case,
            Mp4Options {
                fragmented,
                timescale: Some(90_000),
                last_duration: Some(100_000_000),
                start: None,
                end: None,
            },
            Some(90_000),
        );
    }
}

/// A range starting inside a GOP: the samples from the keyframe before `start` are written, and
/// the edit list hides the frames presented before `start`.
#[test]
fn start_inside_a_gop_hides_the_pre_roll() {
    if !has_ffmpeg() {
        return eprintln!("skipped: no ffmpeg");
    }
    let full = fixture_case(Fixture::X264HighBf3Pyramid);
    let key = (1..full.samples.len())
        .find(|&i| full.samples[i].1)
        .expect("a second keyframe");
    let case = full.tail(key);
    let mut sorted = case.pts.clone();
    sorted.sort_unstable();
    let pre_roll = 5;
    let start = sorted[pre_roll];
    let n = case.samples.len();
    let dir = tempfile::tempdir().expect("tempdir");
    let annexb = write_temp(dir.path(), "in.h264", &case.annexb());
    let all_md5 = frame_md5s(&annexb, Some("h264"));
    assert_eq!(all_md5.len(), n);

    for fragmented in [false, true] {
        let options = Mp4Options {
            fragmented,
            start: Some(start),
            ..Mp4Options::default()
        };
        let (bytes, summary) = mux(&case, options);
        let t = summary.timescale;
        assert_eq!(t, 30);
        assert_eq!(summary.duration_ns, ticks_to_ns((n - pre_roll) as i64, 30));
        let mp4 = write_temp(dir.path(), "start.mp4", &bytes);
        let expected: Vec<i64> = sorted
            .iter()
            .map(|&p| ns_to_ticks(p, t) - ns_to_ticks(start, t))
            .collect();
        assert_eq!(expected[pre_roll], 0);

        // Packets: all samples are there; pre-roll ones carry negative pts.
        let packets = ffprobe(&["-select_streams", "v:0", "-show_packets"], &mp4, None);
        let packets = packets["packets"].as_array().expect("packets");
        assert_eq!(packets.len(), n);
        let mut packet_pts: Vec<i64> = packets
            .iter()
            .map(|p| int(p, "pts").expect("pts"))
            .collect();
        packet_pts.sort_unstable();
        assert_eq!(packet_pts, expected);

        let frames = ffprobe(&["-select_streams", "v:0", "-show_frames"], &mp4, None);
        let frame_pts: Vec<i64> = frames["frames"]
            .as_array()
            .expect("frames")
            .iter()
            .map(|f| int(f, "pts").expect("pts"))
            .collect();
        let md5 = frame_md5s(&mp4, None);
        assert_eq!(md5.len(), frame_pts.len());
        if fragmented {
            // FFmpeg 5.1 does not apply edit-list pre-roll discarding to movie fragments: it
            // decodes and outputs the pre-roll frames too, with their (negative) presentation
            // times. The timing is still right: the frame at pts 0 is the one at `start`, and
            // the frames at pts >= 0 are exactly the wanted ones.
            // (framemd5 shifts its own timestamps to start at 0, so ffprobe's say which frames
            // are pre-roll.)
            assert_eq!(frame_pts, expected);
            let shown: Vec<String> = md5
                .into_iter()
                .zip(&frame_pts)
                .filter(|(_, pts)| **pts >= 0)
                .map(|(m, _)| m)
                .collect();
            assert_eq!(shown, all_md5[pre_roll..]);
        } else {
            // Plain MP4: FFmpeg marks the packets before the edit as discard (flag `D`); they
            // are decoded (they are references) but no frame comes out for them, so ffprobe
            // -show_frames and framemd5 start at the frame at `start`, with pts 0.
            let discarded = packets
                .iter()
                .filter(|p| p["flags"].as_str().unwrap_or("").contains('D'))
                .count();
            assert_eq!(discarded, pre_roll);
            assert_eq!(frame_pts, expected[pre_roll..]);
            assert_eq!(md5, all_md5[pre_roll..]);
        }
    }
}

#[test]
fn vp9_superframes_in_vp09_with_vpcc() {
    if !Fixture::Vp9Ivf.available_or_skip() {
        return;
    }
    let case = ivf_case(Fixture::Vp9Ivf, VideoCodec::Vp9);
    let entry = entry(&case);
    assert_eq!(entry.codec_string(), "vp09.00.20.08");
    both(&case, Some(30));
    let dir = tempfile::tempdir().expect("tempdir");
    let mp4 = write_temp(dir.path(), "vp9.mp4", &mux(&case, Mp4Options::default()).0);
    let stream = &ffprobe(&["-select_streams", "v:0", "-show_streams"], &mp4, None)["streams"][0];
    assert_eq!(stream["codec_name"], "vp9");
    assert_eq!(stream["profile"], "Profile 0");
    assert_eq!(
        (stream["width"].as_i64(), stream["height"].as_i64()),
        (Some(320), Some(240))
    );
    assert_eq!(stream["pix_fmt"], "yuv420p");
}

#[test]
fn av1_in_av01_with_av1c_and_no_temporal_delimiters() {
    if !Fixture::Av1Ivf.available_or_skip() {
        return;
    }
    let case = ivf_case(Fixture::Av1Ivf, VideoCodec::Av1);
    let entry = entry(&case);
    let SampleEntry::Av01 { av1c, .. } = &entry else {
        panic!("an av01 entry: {entry:?}");
    };
    assert_eq!(av1c[0], 0x81, "av1C marker and version");
    both(&case, Some(30));
    let dir = tempfile::tempdir().expect("tempdir");
    let mp4 = write_temp(dir.path(), "av1.mp4", &mux(&case, Mp4Options::default()).0);
    let stream = &ffprobe(&["-select_streams", "v:0", "-show_streams"], &mp4, None)["streams"][0];
    assert_eq!(stream["codec_name"], "av1");
    assert_eq!(stream["profile"], "Main");
    // ffmpeg's own remux of the IVF carries the same av1C (its codec string equals ours).
    let remux = dir.path().join("ffmpeg.mp4");
    let status = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
        .arg(case.raw_file.as_ref().expect("ivf"))
        .args(["-c", "copy"])
        .arg(&remux)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success());
    let theirs = vidlog_video::mp4::Mp4Demuxer::open(std::fs::File::open(&remux).expect("open"))
        .expect("demux");
    assert_eq!(theirs.tracks()[0].codec_string, entry.codec_string());
    // Samples lose their temporal delimiter OBU (type 2), nothing else.
    let packets = vidlog_testdata::ffprobe_packet_data(&mp4);
    let obu_type = |b: &[u8]| (b[0] >> 3) & 0x0F;
    assert!(
        case.samples.iter().all(|(s, _)| obu_type(s) == 2),
        "the IVF has delimiters"
    );
    for ((logged, _), stored) in case.samples.iter().zip(&packets) {
        assert!(
            logged.ends_with(&stored.data),
            "only OBUs before the frame data go"
        );
        assert_eq!(
            logged.len() - stored.data.len(),
            2,
            "a delimiter is 2 bytes"
        );
        assert_ne!(
            obu_type(&stored.data),
            2,
            "no temporal delimiter in the MP4"
        );
    }
}

#[test]
fn h265_with_b_frames_in_hev1_with_hvcc() {
    if !Fixture::X265.available_or_skip() {
        return;
    }
    let case = h265_case();
    assert!(
        case.pts.windows(2).any(|w| w[1] < w[0]),
        "x265's defaults reorder: B-frames"
    );
    let entry = entry(&case);
    both(&case, None);
    // ffmpeg's hvcC in the fixture's own MP4 names the same profile, tier and level.
    let mp4 = std::fs::File::open(vidlog_testdata::fixture_mp4(Fixture::X265)).expect("open");
    let theirs = vidlog_video::mp4::Mp4Demuxer::open(mp4).expect("demux");
    let after_fourcc = |s: &str| s.split_once('.').map(|(_, rest)| rest.to_string());
    assert_eq!(
        after_fourcc(&entry.codec_string()),
        after_fourcc(&theirs.tracks()[0].codec_string)
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let ours = write_temp(dir.path(), "h265.mp4", &mux(&case, Mp4Options::default()).0);
    let stream = &ffprobe(&["-select_streams", "v:0", "-show_streams"], &ours, None)["streams"][0];
    assert_eq!(stream["codec_name"], "hevc");
    assert_eq!(stream["codec_tag_string"], "hev1");
    assert_eq!(stream["profile"], "Main");
    assert_eq!(
        (stream["width"].as_i64(), stream["height"].as_i64()),
        (Some(320), Some(240))
    );
}

#[test]
fn keyframes_without_what_an_entry_needs_are_named() {
    let err = SampleEntry::from_keyframe(VideoCodec::H265, &[0, 0, 0, 1, 0x40, 1, 0]).unwrap_err();
    assert!(err.to_string().contains("H.265 keyframe"), "{err}");
    assert!(err.to_string().contains("VPS, SPS or PPS"), "{err}");
    let err = SampleEntry::from_keyframe(VideoCodec::Av1, &[0x12, 0]).unwrap_err();
    assert!(err.to_string().contains("AV1 keyframe"), "{err}");
    let err = SampleEntry::from_keyframe(VideoCodec::Vp9, &[0x86, 0]).unwrap_err();
    assert!(err.to_string().contains("not a keyframe"), "{err}");
}

#[test]
fn misuse_gives_clear_errors() {
    let case = encoder_case();
    let e = entry(&case);
    // The built-in encoder writes Constrained Baseline (profile 66, constraint_set0+1).
    assert!(
        e.codec_string().starts_with("avc1.42C0"),
        "{}",
        e.codec_string()
    );

    // Plain MP4 on a writer that cannot seek.
    let err = Mp4Muxer::new_streaming(Vec::new(), e.clone(), &case.pts, Mp4Options::default())
        .err()
        .expect("plain needs seek");
    assert!(matches!(err, Mp4Error::PlainNeedsSeek), "{err}");

    // Starting at a non-keyframe.
    let tail = case.tail(1);
    let mut out = std::io::Cursor::new(Vec::new());
    let mut muxer =
        Mp4Muxer::new(&mut out, e.clone(), &tail.pts, Mp4Options::default()).expect("muxer");
    let err = muxer.push(&tail.samples[0].0, false).unwrap_err();
    assert!(
        err.to_string().contains("sample 0 is not a keyframe"),
        "{err}"
    );

    // Too few and too many samples.
    let mut out = std::io::Cursor::new(Vec::new());
    let mut muxer =
        Mp4Muxer::new(&mut out, e.clone(), &case.pts[..2], Mp4Options::default()).expect("muxer");
    muxer.push(&case.samples[0].0, true).expect("push");
    muxer.push(&case.samples[1].0, false).expect("push");
    let err = muxer.push(&case.samples[2].0, false).unwrap_err();
    assert!(
        matches!(
            err,
            Mp4Error::SampleCount {
                pushed: 3,
                expected: 2
            }
        ),
        "{err}"
    );
    let mut out = std::io::Cursor::new(Vec::new());
    let mut muxer =
        Mp4Muxer::new(&mut out, e.clone(), &case.pts[..2], Mp4Options::default()).expect("muxer");
    muxer.push(&case.samples[0].0, true).expect("push");
    assert!(matches!(
        muxer.finish(),
        Err(Mp4Error::SampleCount {
            pushed: 1,
            expected: 2
        })
    ));

    // Not Annex B.
    let mut out = std::io::Cursor::new(Vec::new());
    let mut muxer =
        Mp4Muxer::new(&mut out, e.clone(), &case.pts[..2], Mp4Options::default()).expect("muxer");
    let err = muxer.push(&[0x65, 1, 2, 3], true).unwrap_err();
    assert!(err.to_string().starts_with("sample 0:"), "{err}");

    // Two frames at the same time.
    let err = Mp4Muxer::new(
        std::io::Cursor::new(Vec::new()),
        e.clone(),
        &[0, 40_000_000, 40_000_000],
        Mp4Options::default(),
    )
    .err()
    .expect("duplicate pts");
    assert!(err.to_string().contains("samples 1 and 2"), "{err}");

    // A keyframe without parameter sets.
    let err =
        SampleEntry::from_keyframe(VideoCodec::H264, &[0, 0, 0, 1, 0x65, 0x88, 0x80]).unwrap_err();
    assert!(err.to_string().contains("no SPS"), "{err}");
}
