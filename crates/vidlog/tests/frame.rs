//! `vidlog frame` and `vidlog info --decoders` end to end: a fixture imported into a recording,
//! frames written as PNG and raw, compared with FFmpeg's decode of the same stream (PNG read
//! back by FFmpeg).

use std::path::Path;
use std::process::{Command, Output};

use vidlog_testdata::Fixture;

fn vidlog(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vidlog"))
        .args(args)
        .output()
        .expect("vidlog runs")
}

fn vidlog_ok(args: &[&str]) -> String {
    let out = vidlog(args);
    assert!(
        out.status.success(),
        "vidlog {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// FFmpeg's frames of `input` (or of one image) as raw `format`.
fn ffmpeg_raw(input: &Path, format: &str) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-i"])
        .arg(input)
        .args(["-f", "rawvideo", "-pix_fmt", format, "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn recording(dir: &Path, fixture: Fixture) -> std::path::PathBuf {
    let out = dir.join("run.vlog");
    let input = vidlog_testdata::fixture(fixture);
    vidlog_ok(&[
        "import",
        p(&input),
        "--entity",
        "cam",
        "--fps",
        "30",
        "-o",
        p(&out),
    ]);
    out
}

#[test]
fn frame_at_a_time_matches_ffmpeg_as_i420_and_png() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = recording(dir.path(), Fixture::X264HighBf0);
    let raw = ffmpeg_raw(&vidlog_testdata::fixture(Fixture::X264HighBf0), "yuv420p");
    let size = 320 * 240 * 3 / 2;

    // 1.51 s shows frame 45 (1.5 s) at 30 fps.
    let yuv = dir.path().join("f.yuv");
    let stdout = vidlog_ok(&[
        "frame",
        p(&run),
        "--entity",
        "cam",
        "--at",
        "1.51s",
        "--format",
        "i420",
        "-o",
        p(&yuv),
    ]);
    assert!(stdout.contains("pts 1.5s "), "{stdout}");
    assert!(stdout.contains("sample 45"), "{stdout}");
    let ours = std::fs::read(&yuv).expect("written");
    assert!(ours == raw[45 * size..46 * size], "frame 45 is bit-exact");

    let png = dir.path().join("f.png");
    let stdout = vidlog_ok(&["frame", p(&run), "--at", "1.51s", "-o", p(&png)]);
    assert!(stdout.contains("pts 1.5s "), "{stdout}");
    let ours = ffmpeg_raw(&png, "rgba");
    let rgba = ffmpeg_raw(&vidlog_testdata::fixture(Fixture::X264HighBf0), "rgba");
    let theirs = &rgba[45 * 320 * 240 * 4..46 * 320 * 240 * 4];
    assert_eq!(ours.len(), theirs.len());
    // Tolerance: our YUV->RGB rounds a few steps differently from swscale's SIMD code.
    let max = ours
        .iter()
        .zip(theirs)
        .map(|(a, b)| a.abs_diff(*b))
        .max()
        .unwrap_or(0);
    assert!(
        max <= 4,
        "PNG within 4 of ffmpeg -pix_fmt rgba (max diff {max})"
    );
}

#[test]
fn every_second_writes_a_numbered_frame_per_step() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = recording(dir.path(), Fixture::X264HighBf0);
    let raw = ffmpeg_raw(&vidlog_testdata::fixture(Fixture::X264HighBf0), "yuv420p");
    let size = 320 * 240 * 3 / 2;
    let out = dir.path().join("frames");
    let stdout = vidlog_ok(&[
        "frame",
        p(&run),
        "--every",
        "1s",
        "--format",
        "i420",
        "-o",
        p(&out),
    ]);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "0 s, 1 s and 2 s of a 3 s clip: {stdout}");
    for (n, line) in lines.iter().enumerate() {
        assert!(line.contains(&format!("pts {n}s ")), "{line}");
        let ours = std::fs::read(out.join(format!("frame_{n:06}.yuv"))).expect("written");
        let i = n * 30;
        assert!(ours == raw[i * size..(i + 1) * size], "frame {i}");
    }
}

#[test]
fn bad_times_and_entities_are_one_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = recording(dir.path(), Fixture::X264HighBf0);
    let out = vidlog(&["frame", p(&run), "--at", "soon", "-o", "x.png"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--at") && stderr.contains("12.5s"),
        "{stderr}"
    );
    let out = vidlog(&[
        "frame",
        p(&run),
        "--entity",
        "nope",
        "--at",
        "1s",
        "-o",
        "x.png",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope"));
}

#[test]
fn info_lists_the_decoders_built_in() {
    let stdout = vidlog_ok(&["info", "--decoders"]);
    assert!(stdout.contains("openh264"), "{stdout}");
    assert!(stdout.contains("H.264: "), "{stdout}");
    let json: serde_json::Value =
        serde_json::from_str(&vidlog_ok(&["info", "--decoders", "--json"])).expect("JSON");
    let backends: Vec<&str> = json
        .as_array()
        .expect("array")
        .iter()
        .filter_map(|b| b["backend"].as_str())
        .collect();
    assert!(backends.contains(&"openh264"));
    assert_eq!(backends.contains(&"ffmpeg"), cfg!(feature = "ffmpeg"));
    if !cfg!(feature = "ffmpeg") {
        assert!(stdout.contains("H.265: none"), "{stdout}");
        assert!(stdout.contains("--features ffmpeg"), "{stdout}");
    }
}

/// VP9 from an MP4 that ffmpeg muxed (`vp09` + `vpcC`): import, info, MP4 export and MCAP
/// round trip, and
/// (with the `ffmpeg` feature) a frame equal to FFmpeg's; without it, one line naming the feature.
#[test]
fn vp9_imports_from_mp4_and_decodes_like_ffmpeg() {
    if !Fixture::Vp9Ivf.available_or_skip() {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let ivf = vidlog_testdata::fixture(Fixture::Vp9Ivf);
    let mp4 = dir.path().join("vp9.mp4");
    let made = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-i"])
        .arg(&ivf)
        .args(["-c", "copy"])
        .arg(&mp4)
        .status()
        .expect("ffmpeg runs");
    assert!(made.success());
    let run = dir.path().join("vp9.vlog");
    let out = vidlog(&["import", p(&mp4), "--entity", "cam", "-o", p(&run)]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains("30 samples (2 keyframes, vp09.00.20.08"),
        "{said}"
    );
    let info: serde_json::Value =
        serde_json::from_str(&vidlog_ok(&["info", p(&run), "--json"])).expect("JSON");
    let video = &info["entities"][0]["video"];
    assert_eq!(video["codec"], "VP9", "{info}");
    assert_eq!(video["codec_string"], "vp09.00.20.08", "{info}");
    assert_eq!(video["keyframes"], 2, "{info}");

    // MP4 export (vp09 + vpcC): the same pictures as the IVF, frame for frame.
    let exported = dir.path().join("out.mp4");
    vidlog_ok(&["export", p(&run), "-o", p(&exported)]);
    let md5s = |path: &Path| vidlog_testdata::ffmpeg_frame_md5s(path, None).expect("decodes");
    assert_eq!(
        md5s(&exported),
        md5s(&ivf),
        "exported VP9 decodes like the source"
    );

    // MCAP (foxglove.CompressedVideo, format "vp9") and back keeps every sample.
    let mcap = dir.path().join("vp9.mcap");
    vidlog_ok(&["export", p(&run), "--format", "mcap", "-o", p(&mcap)]);
    let back = dir.path().join("back.vlog");
    let out = vidlog(&["import", p(&mcap), "-o", p(&back)]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && said.contains("30 samples"),
        "{said}"
    );

    let yuv = dir.path().join("f.yuv");
    let out = vidlog(&[
        "frame",
        p(&run),
        "--at",
        "0.51s",
        "--format",
        "i420",
        "-o",
        p(&yuv),
    ]);
    if cfg!(feature = "ffmpeg") {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("pts 0.5s ") && stdout.contains("sample 15"),
            "{stdout}"
        );
        let size = 320 * 240 * 3 / 2;
        let raw = ffmpeg_raw(&ivf, "yuv420p");
        let ours = std::fs::read(&yuv).expect("written");
        assert!(
            ours == raw[15 * size..16 * size],
            "frame 15 is bit-exact with FFmpeg's"
        );
    } else {
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains("VP9") && stderr.contains("--features ffmpeg"),
            "{stderr}"
        );
    }
}

/// A short-lived command whose stdout reader goes away ends quietly (SIGPIPE, as other
/// command-line tools do), never with a panic message.
#[test]
fn a_closed_stdout_ends_a_command_quietly() {
    use std::os::unix::process::ExitStatusExt;
    let mut child = Command::new(env!("CARGO_BIN_EXE_vidlog"))
        .args(["info", "--decoders"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("vidlog runs");
    drop(child.stdout.take()); // the reader is gone before the first line
    let out = child.wait_with_output().expect("waits");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        out.status.success() || out.status.signal() == Some(13),
        "exit {:?}: {stderr}",
        out.status
    );
}
