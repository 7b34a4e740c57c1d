//! End-to-end tests of `vidlog export` (MP4 plain, fragmented and to stdout; ranges; streams
//! whose parameters change; MCAP) and of `vidlog import` of MP4 and MCAP, checked against
//! independent references: ffprobe's frame times and ffmpeg's frame MD5s of the exported
//! files, compared with the fixtures' raw streams and with the times logged in the recording.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;
use vidlog_sdk::{RecordingStream, TimeCell, VideoCodec, VideoStream};
use vidlog_store::Recording;
use vidlog_testdata::{Fixture, ffprobe_json, ffprobe_packets, fixture, fixture_mp4};
use vidlog_types::arrow_array::{Array, BinaryArray, Int64Array};
use vidlog_types::{AssetVideo, EntityPath, TimeKind, VideoFrameReference};

const ENTITY: &str = "cam";
/// One frame at 30 fps, rounded to the nearest ns as the importer does.
const FRAME_NS: i64 = 33_333_333;

// ---------------------------------------------------------------------------------------------
// Running vidlog
// ---------------------------------------------------------------------------------------------

fn vidlog(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_vidlog"))
        .args(args)
        .output()
        .expect("run the vidlog binary");
    // stderr is a pipe, not a terminal: the progress bar stays hidden, so no control characters.
    let stderr = text(&out.stderr);
    assert!(
        !stderr.chars().any(|c| c.is_control() && c != '\n'),
        "vidlog {args:?}: control characters on stderr: {stderr:?}"
    );
    out
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs vidlog and asserts it succeeded; returns (stdout, stderr).
fn vidlog_ok(args: &[&str]) -> (String, String) {
    let out = vidlog(args);
    assert!(
        out.status.success(),
        "vidlog {args:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    (text(&out.stdout), text(&out.stderr))
}

/// Runs vidlog, asserts it failed with exactly one stderr line, `vidlog: error: ...`, and
/// returns that line.
fn vidlog_err(args: &[&str]) -> String {
    let out = vidlog(args);
    let stderr = text(&out.stderr);
    assert!(
        !out.status.success(),
        "vidlog {args:?} should fail:\nstdout: {}\nstderr: {stderr}",
        text(&out.stdout)
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        lines.len() == 1 && lines[0].starts_with("vidlog: error: "),
        "vidlog {args:?}: one error line expected: {stderr:?}"
    );
    lines[0].to_string()
}

/// Runs `vidlog export ... --json` and returns the summary.
fn export_json(args: &[&str]) -> Value {
    let mut all = vec!["export"];
    all.extend_from_slice(args);
    all.push("--json");
    let (stdout, _) = vidlog_ok(&all);
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("--json is not JSON ({e}): {stdout}"))
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn import_raw(which: Fixture, out: &Path) {
    vidlog_ok(&[
        "import",
        path_str(&fixture(which)),
        "--entity",
        ENTITY,
        "--fps",
        "30",
        "-o",
        path_str(out),
    ]);
}

// ---------------------------------------------------------------------------------------------
// Recordings
// ---------------------------------------------------------------------------------------------

/// One entity's samples in decode order, with their key flags and PTS on `time` (ns).
#[derive(Clone, Debug, PartialEq)]
struct Stream {
    data: Vec<Vec<u8>>,
    keys: Vec<bool>,
    pts: Vec<i64>,
}

impl Stream {
    /// Presentation times in presentation order.
    fn sorted_pts(&self) -> Vec<i64> {
        let mut sorted = self.pts.clone();
        sorted.sort_unstable();
        sorted
    }
}

fn read_stream(path: &Path, entity: &str) -> Stream {
    let recording = Recording::open(path).expect("open the recording");
    let entity = EntityPath::parse(entity).expect("entity path");
    let store = &recording.store;
    let video = store
        .video(&entity)
        .unwrap_or_else(|| panic!("no video entity {entity} in {}", path.display()));
    let mut data = Vec::new();
    let mut keys = Vec::new();
    for sample in store.video_samples(&entity, 0..video.len()) {
        let sample = sample.expect("sample");
        data.push(sample.as_slice().to_vec());
        keys.push(sample.is_keyframe);
    }
    Stream {
        data,
        keys,
        pts: video.pts("time").expect("every sample on `time`").to_vec(),
    }
}

fn video_entities(path: &Path) -> Vec<String> {
    let recording = Recording::open(path).expect("open the recording");
    let mut names: Vec<String> = recording
        .store
        .video_entities()
        .map(|e| e.to_string())
        .collect();
    names.sort();
    names
}

/// A fixture's samples (decode order, key flags) as `vidlog import` splits them.
fn fixture_stream(which: Fixture, dir: &Path) -> Stream {
    let path = dir.join(format!("{which:?}.vlog"));
    import_raw(which, &path);
    read_stream(&path, ENTITY)
}

/// Logs `streams` through the SDK into a new recording at `path`, each sample on `time`.
fn log_streams(path: &Path, streams: &[(&str, &Stream)]) {
    let rec = RecordingStream::builder("vidlog_export_test")
        .save(path)
        .expect("create the recording");
    for (entity, stream) in streams {
        rec.log_static(*entity, &VideoStream::new(VideoCodec::H264))
            .expect("log codec");
        for ((data, &key), &pts) in stream.data.iter().zip(&stream.keys).zip(&stream.pts) {
            rec.set_time("time", TimeCell::from_duration_nanos(pts));
            rec.log(
                *entity,
                &VideoStream::from_sample(data.clone()).with_keyframe(key),
            )
            .expect("log sample");
        }
    }
    rec.flush().expect("flush");
}

// ---------------------------------------------------------------------------------------------
// References: ffprobe and ffmpeg
// ---------------------------------------------------------------------------------------------

/// What ffprobe says about the first video stream of a file.
#[derive(Debug)]
struct Probe {
    /// Stream time base `num/den`.
    time_base: (i128, i128),
    /// Frame PTS (ticks of the time base) in output (presentation) order.
    frame_pts: Vec<i64>,
    /// Stream duration in ticks, when known.
    duration_ts: Option<i64>,
    width: u64,
    height: u64,
    stream: Value,
}

const PROBE_ARGS: [&str; 4] = ["-select_streams", "v:0", "-show_streams", "-show_frames"];

fn probe_from_json(json: &Value, what: &str) -> Probe {
    let stream = json["streams"][0].clone();
    let (num, den) = stream["time_base"]
        .as_str()
        .and_then(|s| s.split_once('/'))
        .map(|(n, d)| (n.parse().expect("num"), d.parse().expect("den")))
        .unwrap_or_else(|| panic!("{what}: no time base in {stream:#}"));
    let frame_pts = json["frames"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: no frames"))
        .iter()
        .map(|f| {
            f["pts"]
                .as_i64()
                .unwrap_or_else(|| panic!("{what}: frame without pts: {f:#}"))
        })
        .collect();
    Probe {
        time_base: (num, den),
        frame_pts,
        duration_ts: stream["duration_ts"].as_i64(),
        width: stream["width"].as_u64().expect("width"),
        height: stream["height"].as_u64().expect("height"),
        stream,
    }
}

fn probe(path: &Path) -> Probe {
    probe_from_json(
        &ffprobe_json(path, &PROBE_ARGS),
        &path.display().to_string(),
    )
}

/// ffprobe reading `-i -` from `stdin`.
fn probe_stdin(stdin: Stdio) -> Probe {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-of", "json"])
        .args(PROBE_ARGS)
        .args(["-i", "-"])
        .stdin(stdin)
        .output()
        .expect("run ffprobe");
    assert!(
        out.status.success(),
        "ffprobe -i - failed: {}",
        text(&out.stderr)
    );
    let json: Value = serde_json::from_slice(&out.stdout).expect("ffprobe JSON");
    probe_from_json(&json, "stdin")
}

/// `ffmpeg -f framemd5 -fps_mode passthrough`: one MD5 per decoded frame (the md5 column only),
/// reading `input` (`-` reads `stdin_bytes`). Panics when ffmpeg reports any error.
fn framemd5_of(input: &str, format: Option<&str>, stdin_bytes: Option<Vec<u8>>) -> Vec<String> {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostdin", "-v", "error", "-xerror"]);
    if stdin_bytes.is_some() {
        // -nostdin only stops ffmpeg reading keys from stdin; `-i -` still reads the input.
        cmd.stdin(Stdio::piped());
    }
    if let Some(format) = format {
        cmd.args(["-f", format]);
    }
    cmd.args([
        "-i",
        input,
        "-fps_mode",
        "passthrough",
        "-f",
        "framemd5",
        "-",
    ])
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("run ffmpeg");
    let feeder = stdin_bytes.map(|bytes| {
        let mut stdin = child.stdin.take().expect("stdin");
        std::thread::spawn(move || {
            let _ = stdin.write_all(&bytes);
        })
    });
    let out = child.wait_with_output().expect("ffmpeg output");
    if let Some(feeder) = feeder {
        feeder.join().expect("feeder thread");
    }
    let stderr = text(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "ffmpeg decode of {input} failed: {stderr}"
    );
    text(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit(',').next().map(|s| s.trim().to_string()))
        .collect()
}

fn framemd5(path: &Path, format: Option<&str>) -> Vec<String> {
    framemd5_of(path_str(path), format, None)
}

/// Ticks of `num/den` seconds to ns, rounded to the nearest ns.
fn ticks_to_ns(ticks: i64, (num, den): (i128, i128)) -> i64 {
    let x = i128::from(ticks) * num * 1_000_000_000;
    let q = if x >= 0 {
        (x + den / 2) / den
    } else {
        -((-x + den / 2) / den)
    };
    i64::try_from(q).expect("fits i64")
}

/// Asserts an exported MP4 shows one frame per logged sample, in presentation order, each at its
/// logged time (relative to the first presented frame), with the right last-frame duration and
/// the reference's pixels.
fn check_export(probe: &Probe, md5: &[String], logged: &Stream, reference: &[String], what: &str) {
    let sorted = logged.sorted_pts();
    let origin = sorted[0];
    assert_eq!(
        probe.frame_pts.len(),
        sorted.len(),
        "{what}: one frame per sample"
    );
    assert!(
        probe.frame_pts.windows(2).all(|w| w[0] < w[1]),
        "{what}: frames in presentation order: {:?}",
        probe.frame_pts
    );
    for (i, (&ticks, &pts)) in probe.frame_pts.iter().zip(&sorted).enumerate() {
        assert_eq!(
            ticks_to_ns(ticks, probe.time_base),
            pts - origin,
            "{what}: frame {i} is at {ticks} ticks of {:?}",
            probe.time_base
        );
    }
    assert_eq!(md5, reference, "{what}: frame MD5s");
}

/// Asserts the stream lasts until the end of the last frame: last PTS + `interval`.
fn check_duration(probe: &Probe, logged: &Stream, interval: i64, what: &str) {
    let sorted = logged.sorted_pts();
    let duration = probe
        .duration_ts
        .unwrap_or_else(|| panic!("{what}: no duration_ts: {:#}", probe.stream));
    assert_eq!(
        ticks_to_ns(duration, probe.time_base),
        sorted[sorted.len() - 1] - sorted[0] + interval,
        "{what}: stream duration"
    );
}

// ---------------------------------------------------------------------------------------------
// 1. Whole-stream export: plain, fragmented, stdout
// ---------------------------------------------------------------------------------------------

/// Exports `rec`'s `entity` three ways and checks each against ffprobe and `reference` MD5s.
fn check_full_export(rec: &Path, entity: &str, reference: &[String], dir: &Path) {
    let logged = read_stream(rec, entity);
    let n = logged.data.len();
    assert_eq!(
        reference.len(),
        n,
        "reference decode has one frame per sample"
    );

    let mut fragmented_bytes = Vec::new();
    for fragmented in [false, true] {
        let what = if fragmented { "fragmented" } else { "plain" };
        let out = dir.join(format!("{what}.mp4"));
        let mut args = vec![path_str(rec), "--entity", entity, "-o", path_str(&out)];
        if fragmented {
            args.push("--fragmented");
        }
        let summary = export_json(&args);
        let files = summary["files"].as_array().expect("files");
        assert_eq!(files.len(), 1, "{what}: {summary:#}");
        assert_eq!(files[0]["samples"], n, "{what}: {summary:#}");
        let p = probe(&out);
        assert_eq!(
            p.time_base,
            (
                1,
                i128::from(files[0]["timescale"].as_u64().expect("timescale"))
            ),
            "{what}: the stream's time base is the muxer's timescale"
        );
        check_export(&p, &framemd5(&out, None), &logged, reference, what);
        check_duration(&p, &logged, FRAME_NS, what);
        if fragmented {
            fragmented_bytes = std::fs::read(&out).expect("read fragmented");
        }
    }

    // `-o -`: the same fragmented MP4 on stdout, piped straight into ffprobe.
    let mut child = Command::new(env!("CARGO_BIN_EXE_vidlog"))
        .args(["export", path_str(rec), "--entity", entity])
        .args(["--fragmented", "-o", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run vidlog");
    let stdout = child.stdout.take().expect("stdout");
    let p = probe_stdin(Stdio::from(stdout));
    let status = child.wait().expect("vidlog exits");
    assert!(status.success(), "vidlog export -o - failed");
    let out = vidlog(&[
        "export",
        path_str(rec),
        "--entity",
        entity,
        "--fragmented",
        "-o",
        "-",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        out.stdout == fragmented_bytes,
        "stdout holds the same bytes as the --fragmented file"
    );
    let md5 = framemd5_of("-", None, Some(out.stdout));
    check_export(&p, &md5, &logged, reference, "stdout");
}

fn check_fixture_export(which: Fixture) {
    let dir = tempfile::tempdir().expect("temp dir");
    let rec = dir.path().join("rec.vlog");
    import_raw(which, &rec);
    let reference = framemd5(&fixture(which), Some("h264"));
    check_full_export(&rec, ENTITY, &reference, dir.path());
}

#[test]
fn export_high_no_b_frames() {
    check_fixture_export(Fixture::X264HighBf0);
}

#[test]
fn export_two_b_frames() {
    check_fixture_export(Fixture::X264HighBf2);
}

#[test]
fn export_b_pyramid() {
    check_fixture_export(Fixture::X264HighBf3Pyramid);
}

#[test]
fn export_demo_recording() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rec = dir.path().join("demo.vlog");
    vidlog_ok(&["demo", "--fast", "--seconds", "2", "-o", path_str(&rec)]);
    let entities = video_entities(&rec);
    assert_eq!(entities.len(), 1, "{entities:?}");
    let logged = read_stream(&rec, &entities[0]);
    let raw = dir.path().join("demo.h264");
    std::fs::write(&raw, logged.data.concat()).expect("write raw");
    let reference = framemd5(&raw, Some("h264"));
    check_full_export(&rec, &entities[0], &reference, dir.path());

    // The demo also logs wall-clock times: export on that timestamp timeline keeps them to the ns.
    let recording = Recording::open(&rec).expect("open");
    let entity = EntityPath::parse(&entities[0]).expect("entity");
    let video = recording.store.video(&entity).expect("video");
    let wall = Stream {
        pts: video.pts("log_time").expect("log_time").to_vec(),
        ..logged
    };
    let out = dir.path().join("wall.mp4");
    let summary = export_json(&[
        path_str(&rec),
        "--timeline",
        "log_time",
        "-o",
        path_str(&out),
    ]);
    assert_eq!(summary["timeline"], "log_time", "{summary:#}");
    let p = probe(&out);
    check_export(&p, &framemd5(&out, None), &wall, &reference, "log_time");
    // A range on it, written as RFC 3339: from the time of frame 30 (a keyframe) on.
    let sorted = wall.sorted_pts();
    let from = TimeKind::Timestamp.format_value(sorted[30]);
    let summary = export_json(&[
        path_str(&rec),
        "--timeline",
        "log_time",
        "--from",
        &from,
        "-o",
        path_str(&out),
    ]);
    assert_eq!(summary["from"], sorted[30], "{summary:#}");
    let p = probe(&out);
    assert_eq!(p.frame_pts.len(), 30, "{summary:#}");
    assert_eq!(ticks_to_ns(p.frame_pts[0], p.time_base), 0);
    assert_eq!(framemd5(&out, None), reference[30..]);
}

// ---------------------------------------------------------------------------------------------
// 2. Variable frame rate
// ---------------------------------------------------------------------------------------------

#[test]
fn export_variable_frame_rate_keeps_every_time() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut stream = fixture_stream(Fixture::X264HighBf0, dir.path());
    // 30 fps, each time moved by up to ±7 ms (whole ns), kept increasing; fixed seed.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut last = i64::MIN;
    for (i, pts) in stream.pts.iter_mut().enumerate() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let jitter = if i == 0 {
            0
        } else {
            (state % 14_000_001) as i64 - 7_000_000
        };
        *pts = (i as i64 * FRAME_NS + jitter).max(last + 1);
        last = *pts;
    }
    let rec = dir.path().join("vfr.vlog");
    log_streams(&rec, &[(ENTITY, &stream)]);
    assert_eq!(
        read_stream(&rec, ENTITY),
        stream,
        "the SDK logged what we gave it"
    );

    let reference = framemd5(&fixture(Fixture::X264HighBf0), Some("h264"));
    for fragmented in [false, true] {
        let out = dir.path().join(format!("vfr-{fragmented}.mp4"));
        let mut args = vec![path_str(&rec), "-o", path_str(&out)];
        if fragmented {
            args.push("--fragmented");
        }
        let summary = export_json(&args);
        let timescale = summary["files"][0]["timescale"]
            .as_u64()
            .expect("timescale");
        let p = probe(&out);
        assert_eq!(p.time_base, (1, i128::from(timescale)));
        let what = format!("VFR fragmented={fragmented} timescale {timescale}");
        check_export(&p, &framemd5(&out, None), &stream, &reference, &what);
        // Nothing follows the last frame: it lasts the median interval, one frame at 30 fps.
        let d = p.duration_ts.expect("duration_ts");
        let last_duration = ticks_to_ns(d, p.time_base) - (stream.pts[89] - stream.pts[0]);
        assert!(
            (last_duration - FRAME_NS).abs() <= 7_000_000,
            "{what}: last frame lasts {last_duration} ns"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 3. Ranges
// ---------------------------------------------------------------------------------------------

/// Exports `from..=to` (frames `first..=last` at 30 fps) and checks that ffmpeg shows exactly
/// those frames, from pts 0, with no pre-roll (plain MP4) and the fixture's pixels.
fn check_range_export(which: Fixture, (from, to): (&str, &str), (first, last): (usize, usize)) {
    let dir = tempfile::tempdir().expect("temp dir");
    let rec = dir.path().join("rec.vlog");
    import_raw(which, &rec);
    let logged = read_stream(&rec, ENTITY);
    let full = framemd5(&fixture(which), Some("h264"));
    let wanted = &full[first..=last];
    let count = last - first + 1;
    let sorted = logged.sorted_pts();
    // Decode order: from the keyframe before the first wanted frame to the last wanted sample.
    let in_range: Vec<usize> = (0..logged.pts.len())
        .filter(|&i| logged.pts[i] >= sorted[first] && logged.pts[i] <= sorted[last])
        .collect();
    let lo = *in_range.iter().min().expect("samples");
    let hi = *in_range.iter().max().expect("samples");
    let keyframe = (0..=lo).rev().find(|&i| logged.keys[i]).expect("keyframe");

    for fragmented in [false, true] {
        let what = format!("{which:?} {from}..{to} fragmented={fragmented}");
        let out = dir.path().join(format!("range-{fragmented}.mp4"));
        let mut args = vec![
            path_str(&rec),
            "--from",
            from,
            "--to",
            to,
            "-o",
            path_str(&out),
        ];
        if fragmented {
            args.push("--fragmented");
        }
        let summary = export_json(&args);
        let file = &summary["files"][0];
        assert_eq!(file["timescale"], 30, "{what}: {summary:#}");
        assert_eq!(file["first_sample"], keyframe, "{what}: {summary:#}");
        assert_eq!(file["samples"], hi - keyframe + 1, "{what}: {summary:#}");
        assert!(
            (file["duration_seconds"].as_f64().expect("duration") - count as f64 / 30.0).abs()
                < 1e-6,
            "{what}: {summary:#}"
        );

        let p = probe(&out);
        let md5 = framemd5(&out, None);
        assert_eq!(p.time_base, (1, 30), "{what}");
        assert_eq!(md5.len(), p.frame_pts.len(), "{what}");
        let expected: Vec<i64> = (0..count as i64).collect();
        if fragmented {
            // FFmpeg 5.1 does not apply edit lists to fragments: frames before `from` come out
            // with negative times, and frames after `to` that the range's B-frames reference
            // come out after it. The frames the edit list presents, 0 <= pts < count, are
            // exactly the range.
            let (shown_pts, shown): (Vec<i64>, Vec<String>) = p
                .frame_pts
                .iter()
                .zip(&md5)
                .filter(|(pts, _)| (0..count as i64).contains(*pts))
                .map(|(pts, m)| (*pts, m.clone()))
                .unzip();
            assert_eq!(shown_pts, expected, "{what}");
            assert_eq!(shown, wanted, "{what}");
        } else {
            assert_eq!(
                p.frame_pts, expected,
                "{what}: no pre-roll, nothing after `to`"
            );
            assert_eq!(md5, wanted, "{what}");
            assert_eq!(
                p.duration_ts,
                Some(count as i64),
                "{what}: ends after frame {last}"
            );
        }
    }
}

#[test]
fn export_range_without_b_frames() {
    let (from, to) = ("1.1s", "2.2s");
    check_range_export(Fixture::X264HighBf0, (from, to), (33, 66));
}

#[test]
fn export_range_with_b_frames() {
    check_range_export(Fixture::X264HighBf2, ("1.1s", "2.2s"), (33, 66));
}

#[test]
fn export_range_ending_before_a_reference() {
    // Pyramid B-frames: the last frame of each range is decoded after frames shown later,
    // which the file needs but must not show.
    let which = Fixture::X264HighBf3Pyramid;
    check_range_export(which, ("1.2s", "1.2s"), (36, 36));
    check_range_export(which, ("1.01s", "2.7s"), (30, 81));
    check_range_export(which, ("0s", "0.5s"), (0, 15));
}

#[test]
fn export_range_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rec = dir.path().join("rec.vlog");
    import_raw(Fixture::X264HighBf0, &rec);
    let out = dir.path().join("out.mp4");
    let o = path_str(&out);
    let r = path_str(&rec);

    let line = vidlog_err(&["export", r, "--from", "12.5x", "-o", o]);
    assert!(line.contains("--from") && line.contains("12.5x"), "{line}");
    let line = vidlog_err(&["export", r, "--to", "soon", "-o", o]);
    assert!(line.contains("--to") && line.contains("soon"), "{line}");
    // Ranges outside the stream (0 s .. 2.967 s).
    let line = vidlog_err(&["export", r, "--from", "10s", "-o", o]);
    assert!(
        line.contains("--from 10s is after the last frame") && line.contains("2.966666667s"),
        "{line}"
    );
    let line = vidlog_err(&["export", r, "--to=-1s", "-o", o]);
    assert!(line.contains("no samples in the range"), "{line}");
    let line = vidlog_err(&["export", r, "--from", "2s", "--to", "1s", "-o", o]);
    assert!(line.contains("no samples in the range"), "{line}");
    // A sequence timeline has no unit of time.
    let line = vidlog_err(&["export", r, "--timeline", "frame", "-o", o]);
    assert!(line.contains("sequence"), "{line}");
    let line = vidlog_err(&["export", r, "--timeline", "nope", "-o", o]);
    assert!(line.contains("nope") && line.contains("time"), "{line}");
    let line = vidlog_err(&["export", r, "--entity", "other", "-o", o]);
    assert!(line.contains("other") && line.contains(ENTITY), "{line}");
    let line = vidlog_err(&["export", r, "-o", "-"]);
    assert!(line.contains("--fragmented"), "{line}");
    let line = vidlog_err(&["export", r, "--fragmented", "-o", "-", "--json"]);
    assert!(line.contains("--json"), "{line}");
    assert!(!out.exists(), "no file written for a bad range");
}

// ---------------------------------------------------------------------------------------------
// 4. Parameters changing mid-stream
// ---------------------------------------------------------------------------------------------

#[test]
fn export_splits_where_the_sps_changes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first = fixture_stream(Fixture::X264HighBf0, dir.path());
    let second = fixture_stream(Fixture::X264Odd, dir.path());
    let mut joined = first.clone();
    joined.data.extend(second.data.iter().cloned());
    joined.keys.extend(&second.keys);
    joined
        .pts
        .extend(second.pts.iter().map(|p| p + 90 * FRAME_NS + 10));
    let rec = dir.path().join("joined.vlog");
    log_streams(&rec, &[(ENTITY, &joined)]);

    let out = dir.path().join("out.mp4");
    let (stdout, stderr) = vidlog_ok(&["export", path_str(&rec), "-o", path_str(&out)]);
    assert!(stdout.is_empty(), "{stdout}");
    let second_path = dir.path().join("out.2.mp4");
    assert!(
        stderr.contains("split into 2 files") && stderr.contains(path_str(&second_path)),
        "{stderr}"
    );

    let parts = [
        (&out, Fixture::X264HighBf0, (320, 240), &first),
        (&second_path, Fixture::X264Odd, (318, 238), &second),
    ];
    for (path, which, (w, h), logged) in parts {
        let p = probe(path);
        assert_eq!((p.width, p.height), (w, h), "{}", path.display());
        let reference = framemd5(&fixture(which), Some("h264"));
        check_export(
            &p,
            &framemd5(path, None),
            logged,
            &reference,
            &path.display().to_string(),
        );
    }

    std::fs::remove_file(&second_path).expect("remove");
    let summary = export_json(&[path_str(&rec), "-o", path_str(&out)]);
    let files = summary["files"].as_array().expect("files");
    assert_eq!(files.len(), 2, "{summary:#}");
    assert_eq!(files[0]["path"], path_str(&out));
    assert_eq!(files[1]["path"], path_str(&second_path));
    assert_eq!(
        (&files[0]["first_sample"], &files[0]["samples"]),
        (&0.into(), &90.into())
    );
    assert_eq!(
        (&files[1]["first_sample"], &files[1]["samples"]),
        (&90.into(), &30.into())
    );
    assert!(second_path.exists());

    let line = vidlog_err(&["export", path_str(&rec), "--fragmented", "-o", "-"]);
    assert!(line.contains("sample 90"), "{line}");
}

// ---------------------------------------------------------------------------------------------
// 5. Summaries
// ---------------------------------------------------------------------------------------------

#[test]
fn export_summaries() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rec = dir.path().join("rec.vlog");
    import_raw(Fixture::X264HighBf2, &rec);
    let out = dir.path().join("out.mp4");
    let summary = export_json(&[path_str(&rec), "-o", path_str(&out)]);
    let stream = vidlog_testdata::ffprobe_stream(&out);
    let level = stream["level"].as_u64().expect("level");
    assert_eq!(summary["entity"], ENTITY);
    assert_eq!(summary["timeline"], "time");
    assert!(summary["from"].is_null() && summary["to"].is_null());
    let file = &summary["files"][0];
    assert_eq!(file["path"], path_str(&out));
    assert_eq!(file["first_sample"], 0);
    assert_eq!(file["samples"], 90);
    assert_eq!(file["timescale"], 30);
    assert_eq!(file["duration_seconds"], 3.0);
    let bytes = std::fs::metadata(&out).expect("stat").len();
    assert_eq!(file["bytes"], bytes);
    let codec = file["codec_string"].as_str().expect("codec string");
    assert!(
        codec.starts_with("avc1.64") && codec.ends_with(&format!("{level:02X}")),
        "High profile, level {level}: {codec}"
    );

    // Without --json: one line on stderr, nothing on stdout.
    let (stdout, stderr) = vidlog_ok(&["export", path_str(&rec), "-o", path_str(&out)]);
    assert!(stdout.is_empty(), "{stdout}");
    assert_eq!(
        stderr.trim_end(),
        format!(
            "vidlog export: 90 samples of {ENTITY} ({codec}) -> {} (3.000 s, {bytes} bytes, timescale 30)",
            path_str(&out)
        )
    );
}

// ---------------------------------------------------------------------------------------------
// 6. MP4 import
// ---------------------------------------------------------------------------------------------

/// NAL units of an Annex B sample without start codes and trailing zeros, parameter sets and
/// access unit delimiters left out.
fn payload_nals(data: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= data.len() {
        if data[i..i + 3] == [0, 0, 1] {
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
        if !nal.is_empty() && !matches!(nal[0] & 0x1f, 7..=9) {
            nals.push(nal);
        }
    }
    nals
}

#[test]
fn mp4_import_round_trip() {
    let dir = tempfile::tempdir().expect("temp dir");
    let rec = dir.path().join("rec.vlog");
    import_raw(Fixture::X264HighBf3Pyramid, &rec);
    let original = read_stream(&rec, ENTITY);
    let reference = framemd5(&fixture(Fixture::X264HighBf3Pyramid), Some("h264"));

    for fragmented in [false, true] {
        let what = format!("fragmented={fragmented}");
        let mp4 = dir.path().join(format!("out-{fragmented}.mp4"));
        let mut args = vec!["export", path_str(&rec), "-o", path_str(&mp4)];
        if fragmented {
            args.push("--fragmented");
        }
        vidlog_ok(&args);
        let back = dir.path().join(format!("back-{fragmented}.vlog"));
        let (_, stderr) = vidlog_ok(&[
            "import",
            path_str(&mp4),
            "--entity",
            "cam",
            "-o",
            path_str(&back),
        ]);
        assert!(stderr.contains("90 samples"), "{what}: {stderr}");
        let imported = read_stream(&back, "cam");
        assert_eq!(imported.pts, original.pts, "{what}: pts");
        assert_eq!(imported.keys, original.keys, "{what}: key flags");
        for (i, (a, b)) in imported.data.iter().zip(&original.data).enumerate() {
            assert_eq!(payload_nals(a), payload_nals(b), "{what}: sample {i}");
        }
        let again = dir.path().join(format!("again-{fragmented}.mp4"));
        vidlog_ok(&["export", path_str(&back), "-o", path_str(&again)]);
        check_export(
            &probe(&again),
            &framemd5(&again, None),
            &original,
            &reference,
            &what,
        );
    }
}

#[test]
fn mp4_import_of_ffmpeg_output_keeps_b_frames() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mp4 = fixture_mp4(Fixture::X264HighBf2);
    let back = dir.path().join("back.vlog");
    vidlog_ok(&["import", path_str(&mp4), "-o", path_str(&back)]);
    let imported = read_stream(&back, "video");
    let time_base = probe(&mp4).time_base;
    let packets = ffprobe_packets(&mp4);
    assert_eq!(packets.len(), imported.pts.len());
    let expected: Vec<i64> = packets
        .iter()
        .map(|p| ticks_to_ns(p["pts"].as_i64().expect("pts"), time_base))
        .collect();
    assert_eq!(imported.pts, expected, "pts in decode order");
    assert!(
        imported.pts.windows(2).any(|w| w[1] < w[0]),
        "B-frames: pts go back in decode order"
    );
    let keys: Vec<bool> = packets
        .iter()
        .map(|p| p["flags"].as_str().unwrap_or("").contains('K'))
        .collect();
    assert_eq!(imported.keys, keys);
    // And it exports to the fixture's pixels.
    let out = dir.path().join("out.mp4");
    vidlog_ok(&["export", path_str(&back), "-o", path_str(&out)]);
    let reference = framemd5(&fixture(Fixture::X264HighBf2), Some("h264"));
    assert_eq!(framemd5(&out, None), reference);
}

/// Imports `mp4` with `--as asset` and checks the recording: one static `AssetVideo:blob`
/// holding the file, and one `VideoFrameReference` row on `time` per frame ffprobe shows, at
/// its time.
fn check_asset_import(mp4: &Path, dir: &Path) {
    let what = mp4.display().to_string();
    let back = dir.join("asset.vlog");
    vidlog_ok(&[
        "import",
        path_str(mp4),
        "--as",
        "asset",
        "--entity",
        "movie",
        "-o",
        path_str(&back),
    ]);
    let recording = Recording::open(&back).expect("open");
    let store = &recording.store;
    let entity = EntityPath::parse("movie").expect("entity");
    assert!(
        store.video(&entity).is_none(),
        "{what}: an asset is not a stream"
    );
    let statics: usize = store
        .summaries(&entity)
        .filter(|s| s.is_static() && s.has_component(AssetVideo::BLOB))
        .map(|s| s.num_rows())
        .sum();
    assert_eq!(statics, 1, "{what}: one static AssetVideo:blob");
    let blob_row = store
        .latest_at(&entity, "time", i64::MAX, AssetVideo::BLOB)
        .expect("query")
        .expect("a blob");
    assert_eq!(blob_row.time, None, "{what}: static");
    let cell = store
        .cell(&entity, blob_row, AssetVideo::BLOB)
        .expect("cell")
        .expect("blob cell");
    let blob = cell.as_any().downcast_ref::<BinaryArray>().expect("binary");
    assert!(
        blob.value(0) == std::fs::read(mp4).expect("read mp4").as_slice(),
        "{what}: the blob is the file"
    );

    let kind = store
        .timelines()
        .find(|(n, _)| n.as_str() == "time")
        .map(|(_, k)| k);
    assert_eq!(kind, Some(TimeKind::Duration), "{what}");
    let rows = store
        .range(
            &entity,
            "time",
            i64::MIN,
            i64::MAX,
            VideoFrameReference::TIMESTAMP,
        )
        .expect("range");
    let p = probe(mp4);
    let expected: Vec<i64> = p
        .frame_pts
        .iter()
        .map(|&t| ticks_to_ns(t, p.time_base))
        .collect();
    let mut times = Vec::new();
    for row in rows {
        let cell = store
            .cell(&entity, row, VideoFrameReference::TIMESTAMP)
            .expect("cell")
            .expect("timestamp cell");
        let value = cell
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("i64")
            .value(0);
        assert_eq!(
            row.time,
            Some(value),
            "{what}: each row sits at its frame's time"
        );
        times.push(value);
    }
    assert_eq!(
        times, expected,
        "{what}: one reference per frame at ffprobe's times"
    );
}

#[test]
fn mp4_import_as_asset() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mp4 = fixture_mp4(Fixture::X264HighBf2);
    assert_eq!(probe(&mp4).frame_pts.len(), 90);
    check_asset_import(&mp4, dir.path());

    // A clip whose edit list hides pre-roll and frames after the range: only the frames shown
    // get references.
    let rec = dir.path().join("rec.vlog");
    import_raw(Fixture::X264HighBf3Pyramid, &rec);
    let clip = dir.path().join("clip.mp4");
    vidlog_ok(&[
        "export",
        path_str(&rec),
        "--from",
        "1.2s",
        "--to",
        "1.5s",
        "-o",
        path_str(&clip),
    ]);
    assert_eq!(probe(&clip).frame_pts.len(), 10);
    check_asset_import(&clip, dir.path());
}

// ---------------------------------------------------------------------------------------------
// 7. MCAP
// ---------------------------------------------------------------------------------------------

#[test]
fn mcap_round_trip() {
    let dir = tempfile::tempdir().expect("temp dir");
    let a = fixture_stream(Fixture::X264HighBf2, dir.path());
    let b = fixture_stream(Fixture::X264HighBf0, dir.path());
    let rec = dir.path().join("two.vlog");
    log_streams(&rec, &[("camera/left", &a), ("camera/right", &b)]);
    assert_eq!(video_entities(&rec), ["camera/left", "camera/right"]);
    let line = vidlog_err(&[
        "export",
        path_str(&rec),
        "-o",
        path_str(&dir.path().join("x.mp4")),
    ]);
    assert!(
        line.contains("several video entities") && line.contains("camera/left, camera/right"),
        "{line}"
    );

    let mcap = dir.path().join("run.mcap");
    let (_, stderr) = vidlog_ok(&[
        "export",
        path_str(&rec),
        "--format",
        "mcap",
        "-o",
        path_str(&mcap),
    ]);
    assert!(
        stderr.contains("180 samples of 2 video entities"),
        "{stderr}"
    );
    let back = dir.path().join("back.vlog");
    vidlog_ok(&["import", path_str(&mcap), "-o", path_str(&back)]);
    assert_eq!(video_entities(&back), ["camera/left", "camera/right"]);
    for (entity, original) in [("camera/left", &a), ("camera/right", &b)] {
        let imported = read_stream(&back, entity);
        assert_eq!(imported.pts, original.pts, "{entity}: pts");
        assert!(imported.data == original.data, "{entity}: samples");
        assert_eq!(imported.keys, original.keys, "{entity}: key flags");
    }
    let out = dir.path().join("left.mp4");
    vidlog_ok(&[
        "export",
        path_str(&back),
        "--entity",
        "camera/left",
        "-o",
        path_str(&out),
    ]);
    let reference = framemd5(&fixture(Fixture::X264HighBf2), Some("h264"));
    assert_eq!(framemd5(&out, None), reference);

    let line = vidlog_err(&[
        "export",
        path_str(&rec),
        "--format",
        "mcap",
        "--from",
        "1s",
        "-o",
        path_str(&mcap),
    ]);
    assert!(line.contains("MP4"), "{line}");

    cross_check_with_python_mcap(&mcap, &[("camera/left", &a), ("camera/right", &b)]);
}

/// When Python has the `mcap` package, reads the file with it: channels, schema, and each
/// message's timestamp and data (a tiny protobuf reader). Skipped otherwise.
fn cross_check_with_python_mcap(path: &Path, streams: &[(&str, &Stream)]) {
    let has_mcap = Command::new("python3")
        .args(["-c", "import mcap"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_mcap {
        return eprintln!("skipped the python mcap cross-check: no `mcap` package");
    }
    const SCRIPT: &str = r#"
import json, sys
from mcap.reader import make_reader

def varint(b, i):
    v = s = 0
    while True:
        c = b[i]; i += 1; v |= (c & 0x7f) << s; s += 7
        if c < 0x80: return v, i

def fields(b):
    i, out = 0, {}
    while i < len(b):
        key, i = varint(b, i)
        n, t = key >> 3, key & 7
        if t == 0: v, i = varint(b, i)
        elif t == 2:
            l, i = varint(b, i); v = b[i:i + l]; i += l
        elif t == 1: v = b[i:i + 8]; i += 8
        elif t == 5: v = b[i:i + 4]; i += 4
        else: raise ValueError(t)
        out[n] = v
    return out

out = {}
with open(sys.argv[1], "rb") as f:
    for schema, channel, message in make_reader(f).iter_messages(log_time_order=False):
        m = fields(message.data)
        ts = fields(m.get(1, b""))
        out.setdefault(channel.topic, []).append({
            "schema": schema.name, "encoding": channel.message_encoding,
            "ns": ts.get(1, 0) * 1_000_000_000 + ts.get(2, 0),
            "format": m.get(4, b"").decode(), "data": m.get(3, b"").hex(),
        })
print(json.dumps(out))
"#;
    let out = Command::new("python3")
        .args(["-c", SCRIPT, path_str(path)])
        .output()
        .expect("run python3");
    assert!(out.status.success(), "python mcap: {}", text(&out.stderr));
    let json: Value = serde_json::from_slice(&out.stdout).expect("JSON from python");
    let topics = json.as_object().expect("object");
    assert_eq!(topics.len(), streams.len(), "{:?}", topics.keys());
    for (entity, stream) in streams {
        let messages = topics
            .iter()
            .find(|(t, _)| t.trim_start_matches('/') == *entity)
            .map(|(_, m)| m.as_array().expect("array"))
            .unwrap_or_else(|| panic!("no topic for {entity}: {:?}", topics.keys()));
        assert_eq!(messages.len(), stream.data.len(), "{entity}");
        for (i, m) in messages.iter().enumerate() {
            assert_eq!(m["schema"], "foxglove.CompressedVideo", "{entity}");
            assert_eq!(m["encoding"], "protobuf", "{entity}");
            assert_eq!(m["format"], "h264", "{entity}");
            assert_eq!(m["ns"], stream.pts[i], "{entity} message {i}: timestamp");
            let hex: String = stream.data[i].iter().map(|b| format!("{b:02x}")).collect();
            assert!(m["data"] == hex.as_str(), "{entity} message {i}: data");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 8. Bad input
// ---------------------------------------------------------------------------------------------

fn good_mp4(dir: &Path) -> PathBuf {
    let rec = dir.join("rec.vlog");
    import_raw(Fixture::X264HighBf0, &rec);
    let mp4 = dir.join("good.mp4");
    vidlog_ok(&["export", path_str(&rec), "-o", path_str(&mp4)]);
    mp4
}

#[test]
fn mp4_import_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let good = std::fs::read(good_mp4(dir.path())).expect("read");
    let out = dir.path().join("out.vlog");

    let half = dir.path().join("half.mp4");
    std::fs::write(&half, &good[..good.len() / 2]).expect("write");
    for import_as in ["stream", "asset"] {
        let line = vidlog_err(&[
            "import",
            path_str(&half),
            "--as",
            import_as,
            "-o",
            path_str(&out),
        ]);
        assert!(line.contains("half.mp4"), "{import_as}: {line}");
        assert!(
            !out.exists(),
            "{import_as}: no recording left behind: {line}"
        );
    }

    // The sample table claims sizes far beyond the file.
    let mut bad = good.clone();
    let stsz = bad
        .windows(4)
        .position(|w| w == b"stsz")
        .expect("an stsz box");
    for b in &mut bad[stsz + 16..stsz + 16 + 40] {
        *b = 0x7f;
    }
    let corrupt = dir.path().join("corrupt.mp4");
    std::fs::write(&corrupt, &bad).expect("write");
    for import_as in ["stream", "asset"] {
        let line = vidlog_err(&[
            "import",
            path_str(&corrupt),
            "--as",
            import_as,
            "-o",
            path_str(&out),
        ]);
        assert!(line.contains("corrupt.mp4"), "{import_as}: {line}");
        assert!(
            !out.exists(),
            "{import_as}: no recording left behind: {line}"
        );
    }

    // A box size that runs past the end of the file.
    let mut bad = good.clone();
    let moov = bad
        .windows(4)
        .position(|w| w == b"moov")
        .expect("a moov box");
    bad[moov - 4..moov].copy_from_slice(&0x7fff_ffffu32.to_be_bytes());
    std::fs::write(&corrupt, &bad).expect("write");
    let line = vidlog_err(&["import", path_str(&corrupt), "-o", path_str(&out)]);
    assert!(line.contains("corrupt.mp4"), "{line}");
    assert!(!out.exists(), "no recording left behind: {line}");

    // Sample data whose first NAL length runs past the sample (the mdat header is 16 bytes:
    // size 1, `mdat`, 64-bit size).
    let mut bad = good.clone();
    let mdat = bad
        .windows(4)
        .position(|w| w == b"mdat")
        .expect("an mdat box");
    bad[mdat + 12..mdat + 16].copy_from_slice(&[0xff; 4]);
    std::fs::write(&corrupt, &bad).expect("write");
    let line = vidlog_err(&["import", path_str(&corrupt), "-o", path_str(&out)]);
    assert!(
        line.contains("corrupt.mp4") && line.contains("sample 0"),
        "{line}"
    );
    assert!(!out.exists(), "no recording left behind: {line}");
}

#[test]
fn mcap_import_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("out.vlog");

    // An MCAP holding only a JSON channel.
    let path = dir.path().join("imu.mcap");
    {
        let file = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
        let mut writer = mcap::Writer::new(file).expect("mcap writer");
        let schema = writer
            .add_schema("Imu", "jsonschema", br#"{"type":"object"}"#)
            .expect("schema");
        let channel = writer
            .add_channel(schema, "/imu", "json", &Default::default())
            .expect("channel");
        for i in 0..3u64 {
            writer
                .write_to_known_channel(
                    &mcap::records::MessageHeader {
                        channel_id: channel,
                        sequence: i as u32,
                        log_time: i * 1_000_000,
                        publish_time: i * 1_000_000,
                    },
                    br#"{"ax":0}"#,
                )
                .expect("message");
        }
        writer.finish().expect("finish");
    }
    let line = vidlog_err(&["import", path_str(&path), "-o", path_str(&out)]);
    assert!(
        line.contains("imu.mcap") && line.contains("no video channels") && line.contains("1 other"),
        "{line}"
    );
    assert!(!out.exists(), "no recording left behind: {line}");

    // Half an MCAP made by vidlog.
    let rec = dir.path().join("rec.vlog");
    import_raw(Fixture::X264HighBf0, &rec);
    let mcap = dir.path().join("run.mcap");
    vidlog_ok(&[
        "export",
        path_str(&rec),
        "--format",
        "mcap",
        "-o",
        path_str(&mcap),
    ]);
    let bytes = std::fs::read(&mcap).expect("read");
    let half = dir.path().join("half.mcap");
    std::fs::write(&half, &bytes[..bytes.len() / 2]).expect("write");
    let line = vidlog_err(&["import", path_str(&half), "-o", path_str(&out)]);
    assert!(
        line.contains("half.mcap") && line.contains("truncated"),
        "{line}"
    );
    assert!(!out.exists(), "no recording left behind: {line}");
}

#[test]
fn export_failure_leaves_no_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut stream = fixture_stream(Fixture::X264HighBf0, dir.path());
    stream.pts[5] = stream.pts[4];
    let rec = dir.path().join("dup.vlog");
    log_streams(&rec, &[(ENTITY, &stream)]);
    let out = dir.path().join("out.mp4");
    for fragmented in [false, true] {
        let mut args = vec!["export", path_str(&rec), "-o", path_str(&out)];
        if fragmented {
            args.push("--fragmented");
        }
        let line = vidlog_err(&args);
        assert!(line.contains("same presentation time"), "{line}");
        assert!(
            !out.exists(),
            "fragmented={fragmented}: no half file left: {line}"
        );
    }
}

/// H.265 with B-frames (x265's MP4, imported as a stream) exports as `hev1` + `hvcC`: ffprobe
/// sees every frame at its time, and FFmpeg decodes the same pictures as from the raw stream.
#[test]
fn h265_round_trips_through_mp4_import_and_export() {
    if !Fixture::X265.available_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let run = dir.path().join("h265.vlog");
    vidlog_ok(&[
        "import",
        path_str(&fixture_mp4(Fixture::X265)),
        "--entity",
        "cam",
        "-o",
        path_str(&run),
    ]);
    let out = dir.path().join("h265.mp4");
    vidlog_ok(&["export", path_str(&run), "-o", path_str(&out)]);
    let stream = &ffprobe_json(&out, &["-show_streams"])["streams"][0];
    assert_eq!(stream["codec_name"], "hevc");
    assert_eq!(stream["codec_tag_string"], "hev1");
    let theirs: Vec<i64> = ffprobe_packets(&fixture_mp4(Fixture::X265))
        .iter()
        .map(|p| p["pts"].as_i64().expect("pts"))
        .collect();
    let ours: Vec<i64> = ffprobe_packets(&out)
        .iter()
        .map(|p| p["pts"].as_i64().expect("pts"))
        .collect();
    assert_eq!(ours.len(), theirs.len());
    let md5s = |path: &Path| vidlog_testdata::ffmpeg_frame_md5s(path, None).expect("decodes");
    assert_eq!(
        md5s(&out),
        md5s(&fixture(Fixture::X265)),
        "same pictures as the raw stream"
    );
}
