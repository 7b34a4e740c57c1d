//! End-to-end tests of the `vidlog` binary: `import`, `info` and `demo`, checked against
//! independent references (ffprobe and ffmpeg on the fixtures and on their MP4s).
//!
//! The fixtures are real libx264 streams made by `vidlog-testdata`. Each MP4 holds the same
//! packets as the raw `.h264` file plus the encoder's own timestamps, so its packet PTS are an
//! independent reference for the presentation times the importer derives from the POC.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use vidlog_store::Recording;
use vidlog_testdata::{
    Fixture, ffmpeg_frame_md5s, ffprobe_frames, ffprobe_packet_data, ffprobe_packets,
    ffprobe_stream, fixture, fixture_mp4,
};
use vidlog_types::EntityPath;

const ENTITY: &str = "camera/front";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn vidlog(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vidlog"))
        .args(args)
        .output()
        .expect("run the vidlog binary")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs vidlog and asserts it succeeded; returns stdout.
fn vidlog_ok(args: &[&str]) -> String {
    let out = vidlog(args);
    assert!(
        out.status.success(),
        "vidlog {args:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Runs vidlog, asserts it failed with a one-line `vidlog: error: ...` as the last line of
/// stderr, and returns that line.
fn vidlog_err(args: &[&str]) -> String {
    let out = vidlog(args);
    let stderr = text(&out.stderr);
    assert!(
        !out.status.success(),
        "vidlog {args:?} should fail:\nstdout: {}\nstderr: {stderr}",
        text(&out.stdout)
    );
    let last = stderr.lines().last().unwrap_or_default().to_string();
    assert!(
        last.starts_with("vidlog: error: "),
        "vidlog {args:?}: last stderr line should be the error: {stderr:?}"
    );
    last
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn import(input: &Path, out: &Path, fps: &str) {
    vidlog_ok(&[
        "import",
        path_str(input),
        "--entity",
        ENTITY,
        "--fps",
        fps,
        "-o",
        path_str(out),
    ]);
}

fn info_json(path: &Path) -> Value {
    let stdout = vidlog_ok(&["info", path_str(path), "--json"]);
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("info --json is not JSON ({e}): {stdout}"))
}

/// The report of the one video entity.
fn video_of(info: &Value) -> &Value {
    let entity = info["entities"]
        .as_array()
        .expect("entities array")
        .iter()
        .find(|e| e["path"] == ENTITY)
        .unwrap_or_else(|| panic!("no {ENTITY} in {info:#}"));
    &entity["video"]
}

/// Sample bytes (decode order) and their PTS on `time` (ns) and `frame`.
struct Samples {
    data: Vec<Vec<u8>>,
    keyframes: Vec<usize>,
    pts: Vec<i64>,
    frame: Vec<i64>,
}

fn read_samples(path: &Path) -> Samples {
    let recording = Recording::open(path).expect("open the recording");
    let entity = EntityPath::parse(ENTITY).expect("entity path");
    let store = &recording.store;
    let video = store.video(&entity).expect("a video entity");
    let data = (0..video.len())
        .map(|i| {
            store
                .video_sample(&entity, i)
                .expect("sample")
                .as_slice()
                .to_vec()
        })
        .collect();
    Samples {
        data,
        keyframes: video.keyframes().to_vec(),
        pts: video.pts("time").expect("every sample on `time`").to_vec(),
        frame: video
            .pts("frame")
            .expect("every sample on `frame`")
            .to_vec(),
    }
}

/// NAL units of an Annex B stream (start codes removed, trailing zero bytes trimmed): a small
/// splitter of our own, independent of vidlog-video's.
fn annex_b_nals(data: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    let mut nals = Vec::new();
    for (k, &s) in starts.iter().enumerate() {
        let end = starts.get(k + 1).map_or(data.len(), |&n| n - 3);
        let mut nal = &data[s..end];
        while let [rest @ .., 0] = nal {
            nal = rest;
        }
        if !nal.is_empty() {
            nals.push(nal);
        }
    }
    nals
}

/// NAL units of an MP4 (AVCC) packet with 4-byte lengths.
fn avcc_nals(mut data: &[u8]) -> Vec<&[u8]> {
    let mut nals = Vec::new();
    while data.len() >= 4 {
        let len = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as usize;
        let end = (4 + len).min(data.len());
        nals.push(&data[4..end]);
        data = &data[end..];
    }
    nals
}

fn is_vcl(nal: &[u8]) -> bool {
    matches!(nal.first().map(|b| b & 0x1f), Some(1..=5))
}

/// Parses ffprobe's `a/b` rationals.
fn rational(s: &str) -> (i128, i128) {
    let (n, d) = s.split_once('/').expect("a/b");
    (n.parse().expect("num"), d.parse().expect("den"))
}

/// `profile_idc` for ffprobe's H.264 profile names.
fn profile_idc(name: &str) -> u8 {
    match name {
        "Baseline" | "Constrained Baseline" => 66,
        "Main" => 77,
        "Extended" => 88,
        "High" => 100,
        "High 10" => 110,
        "High 4:2:2" => 122,
        "High 4:4:4 Predictive" => 244,
        other => panic!("unexpected ffprobe profile {other:?}"),
    }
}

/// GOP lengths (decode order) from key flags, sorted.
fn gops(keys: &[bool]) -> Vec<usize> {
    let at: Vec<usize> = keys
        .iter()
        .enumerate()
        .filter_map(|(i, k)| k.then_some(i))
        .collect();
    let mut out: Vec<usize> = at.windows(2).map(|w| w[1] - w[0]).collect();
    if let Some(last) = at.last() {
        out.push(keys.len() - last);
    }
    out.sort_unstable();
    out
}

/// Asserts `ns` is `n * den / num` seconds rounded to the nearest nanosecond, the rounding
/// the MP4 layer uses, so export maps it back to whole ticks of the `num` timescale.
fn assert_pts(ns: i64, n: i128, (num, den): (i128, i128), what: &str) {
    let expected = (n * den * 1_000_000_000 + num / 2) / num;
    assert_eq!(
        i128::from(ns),
        expected,
        "{what}: pts {ns} ns is not frame {n} at {num}/{den} fps"
    );
}

// ---------------------------------------------------------------------------------------------
// Import, checked against ffprobe
// ---------------------------------------------------------------------------------------------

fn check_import(which: Fixture) {
    let input = fixture(which);
    let mp4 = fixture_mp4(which);
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("run.vlog");
    import(&input, &out, "30");

    // References: ffprobe on the raw stream (frames, keyframes, sizes) and on the MP4 (packets
    // in decode order with the encoder's PTS and key flags, avcC).
    let frames = ffprobe_frames(&input);
    let stream = ffprobe_stream(&input);
    let packets = ffprobe_packets(&mp4);
    let packet_data = ffprobe_packet_data(&mp4);
    let mp4_stream = ffprobe_stream(&mp4);
    let avcc = vidlog_testdata::ffprobe_extradata(&mp4);
    assert_eq!(frames.len(), which.frame_count() as usize);
    assert_eq!(packets.len(), frames.len());

    let info = info_json(&out);
    let v = video_of(&info);
    assert_eq!(info["application_id"], "vidlog_import", "{info:#}");
    assert!(
        info["recording_id"].as_str().is_some_and(|s| !s.is_empty()),
        "{info:#}"
    );
    assert!(info["recovery"].is_null(), "{info:#}");
    assert_eq!(info["diagnostics"], serde_json::json!([]), "{info:#}");
    assert!(v["stream_problem"].is_null(), "{v:#}");
    assert_eq!(v["codec"], "H.264", "{v:#}");

    // Frames, keyframes, B-frames.
    assert_eq!(v["frames"], frames.len(), "{which:?}");
    let key_frames = frames.iter().filter(|f| f["key_frame"] == 1).count();
    assert_eq!(v["keyframes"], key_frames, "{which:?}");
    let has_b = frames.iter().any(|f| f["pict_type"] == "B");
    assert_eq!(v["b_frames"], has_b, "{which:?}");
    assert_eq!(
        has_b,
        matches!(which, Fixture::X264HighBf2 | Fixture::X264HighBf3Pyramid)
    );

    // Sizes: cropped from ffprobe, coded = cropped rounded up to whole macroblocks.
    let (w, h) = (
        stream["width"].as_u64().expect("width"),
        stream["height"].as_u64().expect("height"),
    );
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(w), Some(h))
    );
    let (cw, ch) = (w.div_ceil(16) * 16, h.div_ceil(16) * 16);
    assert_eq!(
        (v["coded_width"].as_u64(), v["coded_height"].as_u64()),
        (Some(cw), Some(ch))
    );
    if which == Fixture::X264Odd {
        assert_eq!((w, h, cw, ch), (318, 238, 320, 240));
    }

    // Codec string: profile and level from ffprobe, the constraint byte from the MP4's avcC.
    let profile = profile_idc(stream["profile"].as_str().expect("profile"));
    let level = stream["level"].as_u64().expect("level") as u8;
    assert_eq!((avcc[1], avcc[3]), (profile, level), "avcC vs ffprobe");
    let expected = format!("avc1.{profile:02X}{:02X}{level:02X}", avcc[2]);
    assert_eq!(v["codec_string"], expected.as_str(), "{which:?}");

    // GOP statistics from the MP4's key flags (decode order); the fixtures use -g 30.
    let keys: Vec<bool> = packet_data.iter().map(|p| p.is_key).collect();
    let gops = gops(&keys);
    assert_eq!(v["gop_min"], gops[0]);
    assert_eq!(v["gop_median"], gops[gops.len() / 2]);
    assert_eq!(v["gop_max"], gops[gops.len() - 1]);
    assert!(gops.iter().all(|g| *g == 30), "{which:?} GOPs {gops:?}");

    // Duration, bytes and bitrate.
    let secs = frames.len() as f64 / 30.0;
    let duration = v["duration_seconds"].as_f64().expect("duration");
    assert!(
        (duration - secs).abs() < 1e-6,
        "duration {duration} != {secs}"
    );

    // Samples: one per MP4 packet, same slices, PTS from the MP4.
    let samples = read_samples(&out);
    assert_eq!(samples.data.len(), packets.len());
    let bytes: usize = samples.data.iter().map(Vec::len).sum();
    assert_eq!(v["bytes"], bytes);
    let bitrate = v["bitrate_bps"].as_f64().expect("bitrate");
    assert!((bitrate - bytes as f64 * 8.0 / secs).abs() < 1e-3 * bitrate);
    let sample_keys: Vec<usize> = keys
        .iter()
        .enumerate()
        .filter_map(|(i, k)| k.then_some(i))
        .collect();
    assert_eq!(samples.keyframes, sample_keys, "keyframes vs MP4 key flags");
    for (i, (sample, packet)) in samples.data.iter().zip(&packet_data).enumerate() {
        let ours: Vec<&[u8]> = annex_b_nals(sample)
            .into_iter()
            .filter(|n| is_vcl(n))
            .collect();
        let theirs: Vec<&[u8]> = avcc_nals(&packet.data)
            .into_iter()
            .filter(|n| is_vcl(n))
            .collect();
        assert!(
            ours == theirs,
            "{which:?} sample {i}: {} slices vs {} in MP4 packet {i}",
            ours.len(),
            theirs.len()
        );
        assert!(sample.starts_with(&[0, 0, 0, 1]), "sample {i} start code");
    }
    if which == Fixture::X264Slices4 {
        for (i, sample) in samples.data.iter().enumerate() {
            let nals = annex_b_nals(sample);
            assert_eq!(nals.iter().filter(|n| is_vcl(n)).count(), 4, "sample {i}");
            // x264 puts its version SEI before the first AUD; after that, AUDs lead.
            if i > 0 {
                assert_eq!(nals[0][0] & 0x1f, 9, "sample {i} starts with its AUD");
            }
            assert_eq!(
                nals.iter().filter(|n| n[0] & 0x1f == 9).count(),
                1,
                "sample {i}: one AUD"
            );
        }
    }

    // PTS in decode order == the MP4 packet PTS, relative to the first presented frame and
    // rescaled to 30 fps. This is the check that B-frame presentation times are right.
    let (tb_num, tb_den) = rational(mp4_stream["time_base"].as_str().expect("time_base"));
    let mp4_pts: Vec<i128> = packets
        .iter()
        .map(|p| i128::from(p["pts"].as_i64().expect("packet pts")))
        .collect();
    let first = *mp4_pts.iter().min().expect("packets");
    for (i, (&ours, &theirs)) in samples.pts.iter().zip(&mp4_pts).enumerate() {
        // Frame index on the encoder's 30 fps clock.
        let scaled = (theirs - first) * tb_num * 30;
        assert_eq!(
            scaled % tb_den,
            0,
            "MP4 pts {theirs} is not on the 30 fps grid"
        );
        let n = scaled / tb_den;
        assert_pts(ours, n, (30, 1), &format!("{which:?} sample {i}"));
        assert_eq!(
            i128::from(samples.frame[i]),
            n,
            "{which:?} sample {i} frame"
        );
    }
    let reordered = samples.pts.windows(2).any(|w| w[1] < w[0]);
    assert_eq!(
        reordered, has_b,
        "PTS go backwards exactly for B-frame streams"
    );

    // Timelines: `time` spans first to last presentation time.
    let time = info["timelines"]
        .as_array()
        .expect("timelines")
        .iter()
        .find(|t| t["name"] == "time")
        .expect("a `time` timeline");
    assert_eq!(time["kind"], "duration");
    assert_eq!(time["min"], 0);
    assert_pts(
        time["max"].as_i64().expect("max"),
        frames.len() as i128 - 1,
        (30, 1),
        "time max",
    );

    // Bytes: the samples concatenated are the input modulo start-code form, and decode to the
    // same frames.
    let concatenated: Vec<u8> = samples.data.concat();
    let input_bytes = std::fs::read(&input).expect("read fixture");
    assert!(
        annex_b_nals(&concatenated) == annex_b_nals(&input_bytes),
        "{which:?}: the samples' NAL units differ from the input's"
    );
    let joined = dir.path().join("joined.h264");
    std::fs::write(&joined, &concatenated).expect("write joined");
    assert_eq!(
        ffmpeg_frame_md5s(&joined, Some("h264")).expect("decode joined samples"),
        ffmpeg_frame_md5s(&input, Some("h264")).expect("decode fixture"),
        "{which:?}: frame MD5s"
    );
}

#[test]
fn import_high_no_b_frames() {
    check_import(Fixture::X264HighBf0);
}

#[test]
fn import_high_two_b_frames() {
    check_import(Fixture::X264HighBf2);
}

#[test]
fn import_b_pyramid() {
    check_import(Fixture::X264HighBf3Pyramid);
}

#[test]
fn import_four_slices_with_aud() {
    check_import(Fixture::X264Slices4);
}

#[test]
fn import_cropped_odd_size() {
    check_import(Fixture::X264Odd);
}

#[test]
fn import_ntsc_rate_gives_exact_pts() {
    let which = Fixture::X264HighBf2;
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("ntsc.vlog");
    import(&fixture(which), &out, "30000/1001");
    let samples = read_samples(&out);
    assert_eq!(samples.pts.len(), which.frame_count() as usize);
    // `frame` is the presentation index (checked against the MP4 above); `time` must be that
    // index times 1001/30000 s.
    for (i, (&pts, &n)) in samples.pts.iter().zip(&samples.frame).enumerate() {
        assert_pts(pts, i128::from(n), (30000, 1001), &format!("sample {i}"));
    }
    let mut order = samples.frame.clone();
    order.sort_unstable();
    assert_eq!(order, (0..which.frame_count() as i64).collect::<Vec<_>>());
    let info = info_json(&out);
    let duration = video_of(&info)["duration_seconds"]
        .as_f64()
        .expect("duration");
    assert!(
        (duration - 90.0 * 1001.0 / 30000.0).abs() < 1e-6,
        "{duration}"
    );
}

#[test]
fn import_defaults_and_decimal_rate() {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("clip.h264");
    std::fs::copy(fixture(Fixture::X264Odd), &input).expect("copy fixture");
    vidlog_ok(&["import", path_str(&input), "--fps", "29.97"]);
    // The output defaults to the input with a .vlog extension, the entity to `video`.
    let out = dir.path().join("clip.vlog");
    let info = info_json(&out);
    let entity = &info["entities"][0];
    assert_eq!(entity["path"], "video", "{info:#}");
    assert_eq!(entity["video"]["frames"], 30);
    let recording = Recording::open(&out).expect("open");
    let video = recording
        .store
        .video(&EntityPath::parse("video").expect("entity"))
        .expect("video");
    for (i, &pts) in video.pts("time").expect("time").iter().enumerate() {
        assert_pts(pts, i as i128, (2997, 100), &format!("sample {i}"));
    }
}

#[test]
fn info_text_has_the_key_fields() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("bf2.vlog");
    import(&fixture(Fixture::X264HighBf2), &out, "30");
    let text = vidlog_ok(&["info", path_str(&out)]);
    let info = info_json(&out);
    let recording_id = info["recording_id"].as_str().expect("recording id");
    for needle in [
        "application vidlog_import",
        recording_id,
        "camera/front",
        "time (duration)",
        "frame (sequence)",
        "avc1.6400",
        "size: 320x240 (coded 320x240)",
        "frames: 90, keyframes: 3",
        "GOP min/median/max: 30/30/30",
        "B-frames: yes",
        "duration: 3.000 s",
        "Mbit/s",
    ] {
        assert!(text.contains(needle), "no {needle:?} in:\n{text}");
    }

    let out = dir.path().join("bf0.vlog");
    import(&fixture(Fixture::X264HighBf0), &out, "30");
    let text = vidlog_ok(&["info", path_str(&out)]);
    assert!(text.contains("B-frames: no"), "{text}");
}

// ---------------------------------------------------------------------------------------------
// Demo
// ---------------------------------------------------------------------------------------------

#[test]
fn demo_records_a_decodable_stream() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("demo.vlog");
    let stdout = vidlog_ok(&["demo", "--fast", "--seconds", "2", "-o", path_str(&out)]);
    assert!(
        stdout.contains("avc1.42"),
        "demo prints its info:\n{stdout}"
    );
    assert!(stdout.contains("frames: 60"), "{stdout}");

    let info = info_json(&out);
    assert_eq!(info["application_id"], "vidlog_demo");
    assert_eq!(info["diagnostics"], serde_json::json!([]), "{info:#}");
    assert!(info["recovery"].is_null());
    let v = video_of(&info);
    assert_eq!(v["frames"], 60, "{v:#}");
    assert_eq!(v["keyframes"], 1, "one keyframe per 2 s: {v:#}");
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(480), Some(320))
    );
    assert_eq!(
        (v["coded_width"].as_u64(), v["coded_height"].as_u64()),
        (Some(480), Some(320))
    );
    let codec = v["codec_string"].as_str().expect("codec string");
    assert!(codec.starts_with("avc1.42"), "{codec}");
    assert_eq!(v["b_frames"], false);
    assert!(v["stream_problem"].is_null(), "{v:#}");

    let samples = read_samples(&out);
    assert_eq!(samples.keyframes, vec![0]);
    for (i, &pts) in samples.pts.iter().enumerate() {
        assert_pts(pts, i as i128, (30, 1), &format!("demo sample {i}"));
    }
    let joined = dir.path().join("demo.h264");
    std::fs::write(&joined, samples.data.concat()).expect("write joined");
    let md5s = ffmpeg_frame_md5s(&joined, Some("h264")).expect("ffmpeg decodes the demo");
    assert_eq!(md5s.len(), 60);
    let probe = ffprobe_stream(&joined);
    assert_eq!(
        (probe["width"].as_u64(), probe["height"].as_u64()),
        (Some(480), Some(320))
    );
}

#[test]
fn demo_sizes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("wide.vlog");
    vidlog_ok(&[
        "demo",
        "--fast",
        "--seconds",
        "4.5",
        "--size",
        "640x360",
        "-o",
        path_str(&out),
    ]);
    let info = info_json(&out);
    let v = video_of(&info);
    assert_eq!(v["frames"], 135);
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(640), Some(360))
    );
    assert_eq!(
        (v["coded_width"].as_u64(), v["coded_height"].as_u64()),
        (Some(640), Some(368))
    );
    let samples = read_samples(&out);
    assert_eq!(samples.keyframes, vec![0, 60, 120], "keyframes every 2 s");
    let joined = dir.path().join("wide.h264");
    std::fs::write(&joined, samples.data.concat()).expect("write joined");
    assert_eq!(
        ffmpeg_frame_md5s(&joined, Some("h264"))
            .expect("ffmpeg decodes the demo")
            .len(),
        135
    );

    let bad = dir.path().join("bad.vlog");
    let out = vidlog(&["demo", "--fast", "--size", "13x7", "-o", path_str(&bad)]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    let reason: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        reason.first().is_some_and(|l| l.contains("13x7")),
        "one line naming the bad size: {stderr:?}"
    );
    assert!(!bad.exists(), "nothing written for a bad size");
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

#[test]
fn import_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("out.vlog");

    let missing = dir.path().join("missing.h264");
    let line = vidlog_err(&["import", path_str(&missing), "-o", path_str(&out)]);
    assert!(line.contains("missing.h264"), "{line}");
    assert!(!out.exists(), "no recording for a missing input");

    // Deterministic noise without a single 00 00 01: not an Annex B stream at all.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let noise: Vec<u8> = (0..200_000)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8 | 1
        })
        .collect();
    let junk = dir.path().join("junk.h264");
    std::fs::write(&junk, &noise).expect("write junk");
    let line = vidlog_err(&["import", path_str(&junk), "-o", path_str(&out)]);
    assert!(line.contains("no H.264 access units"), "{line}");
    assert!(!out.exists(), "no half-made recording left behind: {line}");

    // Noise with start codes that look like an IDR and a P slice: still no SPS, so nothing a
    // decoder could use.
    let mut fake = noise[..5000].to_vec();
    fake.extend_from_slice(&[0, 0, 1, 0x65]);
    fake.extend_from_slice(&noise[5000..10000]);
    fake.extend_from_slice(&[0, 0, 1, 0x41]);
    fake.extend_from_slice(&noise[10000..15000]);
    std::fs::write(&junk, &fake).expect("write junk");
    let line = vidlog_err(&["import", path_str(&junk), "-o", path_str(&out)]);
    assert!(line.contains("SPS"), "{line}");
    assert!(!out.exists(), "no recording of noise: {line}");

    let line = vidlog_err(&["import", path_str(dir.path()), "-o", path_str(&out)]);
    assert!(line.contains("is a directory"), "{line}");
    assert!(!out.exists(), "no recording for a directory");

    let line = vidlog_err(&[
        "import",
        path_str(&fixture(Fixture::X264HighBf0)),
        "--codec",
        "h265",
        "-o",
        path_str(&out),
    ]);
    assert!(line.contains("not supported yet"), "{line}");

    let line = vidlog_err(&[
        "import",
        path_str(&fixture(Fixture::X264HighBf0)),
        "--codec",
        "mpeg2",
        "-o",
        path_str(&out),
    ]);
    assert!(line.contains("mpeg2"), "{line}");
}

#[test]
fn info_errors_are_one_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    for (name, contents) in [
        ("missing.vlog", None),
        (
            "text.vlog",
            Some(b"hello, this is not a recording\n".to_vec()),
        ),
        ("empty.vlog", Some(Vec::new())),
    ] {
        let path = dir.path().join(name);
        if let Some(contents) = contents {
            std::fs::write(&path, contents).expect("write");
        }
        let out = vidlog(&["info", path_str(&path)]);
        let stderr = text(&out.stderr);
        assert!(!out.status.success(), "{name}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{name}: one line: {stderr:?}");
        assert!(stderr.starts_with("vidlog: error: "), "{name}: {stderr:?}");
        assert!(stderr.contains(name), "{name}: names the file: {stderr:?}");
        assert!(out.stdout.is_empty(), "{name}: nothing on stdout");
    }
}

#[test]
fn info_of_a_truncated_recording_reports_recovery() {
    let dir = tempfile::tempdir().expect("temp dir");
    let full = dir.path().join("full.vlog");
    vidlog_ok(&["demo", "--fast", "--seconds", "2", "-o", path_str(&full)]);
    let bytes = std::fs::read(&full).expect("read demo");
    let cut = dir.path().join("cut.vlog");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write half");

    let text = vidlog_ok(&["info", path_str(&cut)]);
    assert!(text.contains("recovered:"), "{text}");
    let info = info_json(&cut);
    let recovery = info["recovery"].as_str().expect("a recovery report");
    assert!(recovery.contains("torn tail"), "{recovery}");
    let frames = video_of(&info)["frames"].as_u64().expect("frames");
    assert!(frames > 0 && frames < 60, "{frames} frames survive");

    // What survived is a decodable prefix of the stream.
    let samples = read_samples(&cut);
    assert_eq!(samples.data.len() as u64, frames);
    let joined = dir.path().join("cut.h264");
    std::fs::write(&joined, samples.data.concat()).expect("write joined");
    assert_eq!(
        ffmpeg_frame_md5s(&joined, Some("h264"))
            .expect("ffmpeg decodes the recovered samples")
            .len() as u64,
        frames
    );
}

/// Without `-o`, the demo starts a live server, streams to it, and (with `--seconds`)
/// stops it, leaving the recording in the server's data directory.
#[test]
fn demo_streams_live_to_its_own_server() {
    let out = vidlog(&["demo", "--fast", "--seconds", "1", "--port", "0"]);
    let stderr = text(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("viewer at http://127.0.0.1:"), "{stderr}");
    assert!(stderr.contains("stopping the server"), "{stderr}");
    let dir = stderr
        .lines()
        .find_map(|l| l.strip_prefix("vidlog demo: the recording is also written to "))
        .expect("the data directory is printed");
    let file = std::fs::read_dir(dir.trim())
        .expect("data dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "vlog"))
        .expect("a recording file");
    let recording = Recording::open(&file).expect("the server finished the file");
    assert!(
        recording.recovery().is_none(),
        "the footer was written on shutdown"
    );
    let entity = EntityPath::parse("camera/front").unwrap();
    assert_eq!(recording.store.video(&entity).expect("video").len(), 30);
    let _ = std::fs::remove_dir_all(dir.trim());
}
