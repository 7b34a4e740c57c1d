//! Test fixtures for vidlog: small, real encoded video streams generated on first use with the
//! Debian `ffmpeg` CLI, plus `ffprobe` helpers that serve as independent references in tests.
//!
//! Fixtures land in `<workspace>/target/fixtures/v<RECIPE_VERSION>/` (or `$VIDLOG_FIXTURES_DIR`).
//! Each one is written under a temporary name and renamed into place, so tests running in
//! parallel (even in several processes) never see half a file; once present, a fixture is reused.
//! H.264/H.265 fixtures are encoded to MP4 first and the raw stream is extracted from it, so the
//! MP4's packet timestamps (the encoder's own) serve as an independent presentation-order reference.
//!
//! This crate is a dev-dependency only. It panics with a clear message when ffmpeg is missing,
//! because a test without its fixture cannot say anything useful.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};

/// A named test stream. All are made from ffmpeg's `testsrc2` source (so frames differ) at 30 fps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fixture {
    /// libx264 High profile, 320x240, 90 frames, no B-frames, GOP 30. Raw Annex B.
    X264HighBf0,
    /// Like [`Fixture::X264HighBf0`] with 2 B-frames, so presentation order differs from decode order.
    X264HighBf2,
    /// 3 B-frames with `b-pyramid=normal` (B-frames used as references).
    X264HighBf3Pyramid,
    /// No B-frames, 4 slices per frame, with access unit delimiters (`aud=1`).
    X264Slices4,
    /// 318x238, 30 frames: coded as 320x240 with SPS cropping.
    X264Odd,
    /// libx265 Main, 320x240, 30 frames, raw Annex B. Needs an ffmpeg built with libx265.
    X265,
    /// libx265 Main, 320x240, 90 frames, a keyframe every 30 in x265's default open GOPs:
    /// CRA pictures whose leading (RASL) pictures reference the GOP before.
    X265OpenGop,
    /// AV1 in IVF, 320x240, 30 frames, via libsvtav1 or libaom. Needs one of them in ffmpeg.
    Av1Ivf,
    /// VP9 profile 0 in IVF, 320x240, 30 frames, GOP 15, libvpx-vp9 with alt-ref frames (so
    /// samples are superframes holding a hidden frame and a shown one). Needs libvpx.
    Vp9Ivf,
}

impl Fixture {
    /// Every H.264 fixture (these only need ffmpeg with libx264).
    pub const H264: [Fixture; 5] = [
        Fixture::X264HighBf0,
        Fixture::X264HighBf2,
        Fixture::X264HighBf3Pyramid,
        Fixture::X264Slices4,
        Fixture::X264Odd,
    ];

    /// The file name of the raw elementary stream inside the fixtures directory.
    pub fn file_name(self) -> &'static str {
        match self {
            Fixture::X264HighBf0 => "x264_high_bf0_320x240_90.h264",
            Fixture::X264HighBf2 => "x264_high_bf2_320x240_90.h264",
            Fixture::X264HighBf3Pyramid => "x264_high_bf3_pyramid_320x240_90.h264",
            Fixture::X264Slices4 => "x264_slices4_aud_320x240_90.h264",
            Fixture::X264Odd => "x264_high_318x238_30.h264",
            Fixture::X265 => "x265_main_320x240_30.h265",
            Fixture::X265OpenGop => "x265_open_gop_320x240_90.h265",
            Fixture::Av1Ivf => "av1_320x240_30.ivf",
            Fixture::Vp9Ivf => "vp9_320x240_30.ivf",
        }
    }

    /// The MP4 the raw H.264/H.265 stream is extracted from (`None` for AV1, encoded to IVF
    /// directly). Its packets carry the encoder's own timestamps: an independent reference for
    /// presentation order.
    fn mp4_name(self) -> Option<String> {
        match self {
            Fixture::Av1Ivf | Fixture::Vp9Ivf => None,
            other => other
                .file_name()
                .rsplit_once('.')
                .map(|(stem, _)| format!("{stem}.mp4")),
        }
    }

    /// Number of frames the fixture was made with.
    pub fn frame_count(self) -> u32 {
        match self {
            Fixture::X264HighBf0
            | Fixture::X264HighBf2
            | Fixture::X264HighBf3Pyramid
            | Fixture::X264Slices4
            | Fixture::X265OpenGop => 90,
            Fixture::X264Odd | Fixture::X265 | Fixture::Av1Ivf | Fixture::Vp9Ivf => 30,
        }
    }

    /// The encoder the fixture needs, or `None` when several would do (AV1).
    fn required_encoder(self) -> Option<&'static str> {
        match self {
            Fixture::X265 | Fixture::X265OpenGop => Some("libx265"),
            Fixture::Vp9Ivf => Some("libvpx-vp9"),
            Fixture::Av1Ivf => None,
            _ => Some("libx264"),
        }
    }

    /// Whether a test of this fixture should run: true when this ffmpeg can make it; false
    /// (after saying so on stderr) when it cannot, outside CI. Under CI (`CI=true`), where the
    /// test command installs Debian's ffmpeg with every encoder, a missing encoder panics, so
    /// a test is never skipped there without notice.
    pub fn available_or_skip(self) -> bool {
        if self.is_available() {
            return true;
        }
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("fixture {self:?}: this ffmpeg cannot make it, and under CI every test runs");
        }
        eprintln!("skipped: this ffmpeg cannot make fixture {self:?}");
        false
    }

    /// Whether this ffmpeg can make the fixture (x265, AV1 and VP9 encoders are optional).
    pub fn is_available(self) -> bool {
        match self {
            Fixture::Av1Ivf => ffmpeg_has_encoder("libsvtav1") || ffmpeg_has_encoder("libaom-av1"),
            other => other.required_encoder().is_some_and(ffmpeg_has_encoder),
        }
    }

    /// ffmpeg arguments (input and encoder) up to, not including, the output path. H.264/H.265
    /// fixtures are encoded to MP4 first; the raw stream is extracted from it.
    fn encode_args(self) -> Vec<String> {
        let x264 = |size: &str, frames: u32, extra: &[&str]| {
            let mut args: Vec<String> = testsrc2(size, frames);
            args.extend(
                [
                    "-c:v",
                    "libx264",
                    "-profile:v",
                    "high",
                    "-pix_fmt",
                    "yuv420p",
                    "-g",
                    "30",
                ]
                .iter()
                .map(|s| s.to_string()),
            );
            args.extend(extra.iter().map(|s| s.to_string()));
            args.extend(["-f", "mp4"].iter().map(|s| s.to_string()));
            args
        };
        match self {
            Fixture::X264HighBf0 => x264("320x240", 90, &["-bf", "0"]),
            Fixture::X264HighBf2 => x264("320x240", 90, &["-bf", "2"]),
            Fixture::X264HighBf3Pyramid => x264(
                "320x240",
                90,
                &["-bf", "3", "-x264-params", "b-pyramid=normal"],
            ),
            Fixture::X264Slices4 => x264(
                "320x240",
                90,
                &["-bf", "0", "-slices", "4", "-x264-params", "aud=1"],
            ),
            Fixture::X264Odd => x264("318x238", 30, &["-bf", "0"]),
            Fixture::X265 | Fixture::X265OpenGop => {
                let open = self == Fixture::X265OpenGop;
                let mut args = testsrc2("320x240", if open { 90 } else { 30 });
                args.extend(
                    [
                        "-c:v",
                        "libx265",
                        "-pix_fmt",
                        "yuv420p",
                        "-x265-params",
                        if open {
                            "log-level=error:keyint=30:min-keyint=30"
                        } else {
                            "log-level=error"
                        },
                        "-f",
                        "mp4",
                    ]
                    .iter()
                    .map(|s| s.to_string()),
                );
                args
            }
            Fixture::Av1Ivf => {
                let mut args = testsrc2("320x240", 30);
                let codec: &[&str] = if ffmpeg_has_encoder("libsvtav1") {
                    &["-c:v", "libsvtav1", "-preset", "10", "-g", "30"]
                } else {
                    &["-c:v", "libaom-av1", "-cpu-used", "8", "-g", "30"]
                };
                args.extend(codec.iter().map(|s| s.to_string()));
                args.extend(
                    ["-pix_fmt", "yuv420p", "-f", "ivf"]
                        .iter()
                        .map(|s| s.to_string()),
                );
                args
            }
            Fixture::Vp9Ivf => {
                let mut args = testsrc2("320x240", 30);
                args.extend(
                    [
                        "-c:v",
                        "libvpx-vp9",
                        "-deadline",
                        "good",
                        "-cpu-used",
                        "4",
                        "-b:v",
                        "400k",
                        "-g",
                        "15",
                        "-lag-in-frames",
                        "16",
                        "-auto-alt-ref",
                        "1",
                        "-pix_fmt",
                        "yuv420p",
                        "-f",
                        "ivf",
                    ]
                    .iter()
                    .map(|s| s.to_string()),
                );
                args
            }
        }
    }
}

fn testsrc2(size: &str, frames: u32) -> Vec<String> {
    vec![
        "-f".into(),
        "lavfi".into(),
        "-i".into(),
        format!("testsrc2=size={size}:rate=30"),
        "-frames:v".into(),
        frames.to_string(),
    ]
}

/// Version of the fixture recipes. Bump it when an ffmpeg command line changes, so files made
/// by the old recipe are not reused.
pub const RECIPE_VERSION: u32 = 1;

/// The directory fixtures are generated into: `$VIDLOG_FIXTURES_DIR`, or
/// `<workspace>/target/fixtures/v<RECIPE_VERSION>`.
pub fn fixtures_dir() -> PathBuf {
    match std::env::var_os("VIDLOG_FIXTURES_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../target/fixtures")
            .join(format!("v{RECIPE_VERSION}")),
    }
}

/// The path of a fixture's raw elementary stream (Annex B `.h264`/`.h265`, or `.ivf` for AV1),
/// generating it with ffmpeg on first use.
///
/// # Panics
/// When ffmpeg is missing, lacks the needed encoder, or fails; the message says what to do.
pub fn fixture(name: Fixture) -> PathBuf {
    let path = fixtures_dir().join(name.file_name());
    if path.is_file() {
        return path;
    }
    match name.mp4_name() {
        Some(_) => {
            let mp4 = fixture_mp4(name);
            let hevc = matches!(name, Fixture::X265 | Fixture::X265OpenGop);
            let bsf = if hevc {
                "hevc_mp4toannexb"
            } else {
                "h264_mp4toannexb"
            };
            let format = if hevc { "hevc" } else { "h264" };
            let args: Vec<String> = vec![
                "-i".into(),
                mp4.to_string_lossy().into_owned(),
                "-c:v".into(),
                "copy".into(),
                "-bsf:v".into(),
                bsf.into(),
                "-f".into(),
                format.into(),
            ];
            generate(name, &path, &args);
        }
        None if name == Fixture::Vp9Ivf => {
            // libvpx makes alt-ref frames (hidden frames packed into superframes) only in
            // two-pass encoding.
            let log = fixtures_dir().join(unique_temp_name("vp9-pass"));
            let log_arg = log.to_string_lossy().into_owned();
            let mut args = name.encode_args();
            args.extend(["-passlogfile".to_string(), log_arg.clone()]);
            let mut first = args.clone();
            first.extend(["-pass", "1"].map(String::from));
            let first_out = fixtures_dir().join(unique_temp_name("vp9-pass1.ivf"));
            generate(name, &first_out, &first);
            args.extend(["-pass", "2"].map(String::from));
            generate(name, &path, &args);
            let _ = std::fs::remove_file(first_out);
            let _ = std::fs::remove_file(format!("{log_arg}-0.log"));
        }
        None => generate(name, &path, &name.encode_args()),
    }
    path
}

/// The MP4 an H.264/H.265 fixture is extracted from (same packets, plus the encoder's
/// timestamps), generating it on first use.
///
/// # Panics
/// For [`Fixture::Av1Ivf`], which has no MP4, and when ffmpeg fails (see [`fixture`]).
pub fn fixture_mp4(name: Fixture) -> PathBuf {
    let Some(file_name) = name.mp4_name() else {
        panic!("fixture {name:?} has no MP4; use fixture() for its IVF");
    };
    let path = fixtures_dir().join(file_name);
    if !path.is_file() {
        generate(name, &path, &name.encode_args());
    }
    path
}

/// Runs `ffmpeg <args> <tmp>` and renames the result to `path`.
fn generate(name: Fixture, path: &Path, args: &[String]) {
    require_ffmpeg();
    if !name.is_available() {
        panic!(
            "fixture {name:?} needs an ffmpeg encoder this ffmpeg lacks ({}); check with \
             Fixture::is_available() and skip the test",
            name.required_encoder().unwrap_or("libsvtav1 or libaom-av1")
        );
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    if let Err(e) = std::fs::create_dir_all(dir) {
        panic!(
            "cannot create the fixtures directory {}: {e}",
            dir.display()
        );
    }
    let file_name = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(unique_temp_name(&file_name));
    let output = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(args)
        .arg(&tmp)
        .output()
        .unwrap_or_else(|e| panic!("cannot run ffmpeg: {e}"));
    if !output.status.success() {
        let _ = std::fs::remove_file(&tmp);
        panic!(
            "ffmpeg failed to make fixture {name:?} ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    // rename() is atomic within a directory; if another process won the race, its file is
    // equivalent and ours simply replaces it.
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        panic!("cannot move fixture into place at {}: {e}", path.display());
    }
}

fn unique_temp_name(file_name: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // The extension must stay last so ffmpeg keeps picking the right muxer if -f were omitted.
    format!(".tmp-{}-{n}-{file_name}", std::process::id())
}

/// Whether an `ffmpeg` binary is on `PATH`.
pub fn has_ffmpeg() -> bool {
    Command::new("ffmpeg")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn require_ffmpeg() {
    if !has_ffmpeg() {
        panic!(
            "ffmpeg not found: run the README's test command, which installs it \
             (Debian: apt-get install -y ffmpeg)"
        );
    }
}

/// Whether this ffmpeg has the named encoder (e.g. `libx265`, `libsvtav1`).
pub fn ffmpeg_has_encoder(name: &str) -> bool {
    let Ok(output) = Command::new("ffmpeg")
        .args(["-hide_banner", "-encoders"])
        .output()
    else {
        return false;
    };
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .any(|line| line.split_whitespace().nth(1) == Some(name))
}

/// Runs `ffprobe -v error -of json <args> <path>` and returns the parsed JSON.
///
/// # Panics
/// When ffprobe is missing, fails, or prints something that is not JSON.
pub fn ffprobe_json(path: &Path, args: &[&str]) -> serde_json::Value {
    require_ffmpeg();
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-of", "json"])
        .args(args)
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run ffprobe: {e}"));
    if !output.status.success() {
        panic!(
            "ffprobe {args:?} {} failed ({}): {}",
            path.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("ffprobe printed something that is not JSON: {e}"))
}

/// The first video stream as ffprobe's `-show_streams` sees it (width, height, profile, level ...).
pub fn ffprobe_stream(path: &Path) -> serde_json::Value {
    let json = ffprobe_json(path, &["-select_streams", "v:0", "-show_streams"]);
    json["streams"][0].clone()
}

/// Frames ffprobe decodes, in presentation (output) order, from `-show_frames`.
pub fn ffprobe_frames(path: &Path) -> Vec<serde_json::Value> {
    let json = ffprobe_json(path, &["-select_streams", "v:0", "-show_frames"]);
    json["frames"].as_array().cloned().unwrap_or_default()
}

/// Packets in decode order, from `-show_packets` (one per access unit / temporal unit).
pub fn ffprobe_packets(path: &Path) -> Vec<serde_json::Value> {
    let json = ffprobe_json(path, &["-select_streams", "v:0", "-show_packets"]);
    json["packets"].as_array().cloned().unwrap_or_default()
}

/// The first video stream's codec extradata (e.g. an MP4's avcC body), from
/// `ffprobe -show_streams -show_data`.
pub fn ffprobe_extradata(path: &Path) -> Vec<u8> {
    require_ffmpeg();
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_streams",
            "-show_data",
        ])
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run ffprobe: {e}"));
    let text = String::from_utf8_lossy(&output.stdout);
    let mut bytes = Vec::new();
    let mut in_extradata = false;
    for line in text.lines() {
        if line.starts_with("extradata=") {
            in_extradata = true;
            continue;
        }
        if !in_extradata {
            continue;
        }
        // Hex dump lines look like `00000000: 0164 000d ...  .d..`; anything else ends it.
        let Some((_, rest)) = line.split_once(": ") else {
            break;
        };
        let hex: String = rest
            .split("  ")
            .next()
            .unwrap_or("")
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        for pair in hex.as_bytes().chunks(2) {
            let pair = std::str::from_utf8(pair).unwrap_or("");
            match u8::from_str_radix(pair, 16) {
                Ok(b) => bytes.push(b),
                Err(_) => panic!("unexpected ffprobe extradata dump line: {line}"),
            }
        }
    }
    bytes
}

/// One demuxed packet: its bytes exactly as stored in the container, and its key flag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbedPacket {
    /// Packet payload (for MP4: length-prefixed NAL units; for IVF: one temporal unit).
    pub data: Vec<u8>,
    /// Whether the demuxer flags it as a keyframe (`K` in ffprobe's flags).
    pub is_key: bool,
}

/// Every packet of the first video stream with its data, in decode order
/// (`ffprobe -show_packets -show_data`).
pub fn ffprobe_packet_data(path: &Path) -> Vec<ProbedPacket> {
    require_ffmpeg();
    let output = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_packets",
            "-show_data",
        ])
        .arg(path)
        .output()
        .unwrap_or_else(|e| panic!("cannot run ffprobe: {e}"));
    if !output.status.success() {
        panic!(
            "ffprobe -show_packets on {} failed: {}",
            path.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let mut packets = Vec::new();
    let mut current: Option<ProbedPacket> = None;
    let mut in_data = false;
    for line in text.lines() {
        match line {
            "[PACKET]" => {
                current = Some(ProbedPacket {
                    data: Vec::new(),
                    is_key: false,
                });
                in_data = false;
            }
            "[/PACKET]" => {
                packets.extend(current.take());
                in_data = false;
            }
            _ if line.starts_with("flags=") => {
                if let Some(p) = current.as_mut() {
                    p.is_key = line["flags=".len()..].contains('K');
                }
                in_data = false;
            }
            "data=" => in_data = true,
            _ if in_data => {
                if let (Some(p), Some((_, rest))) = (current.as_mut(), line.split_once(": ")) {
                    let hex: String = rest
                        .split("  ")
                        .next()
                        .unwrap_or("")
                        .chars()
                        .filter(|c| !c.is_whitespace())
                        .collect();
                    for pair in hex.as_bytes().chunks(2) {
                        let pair = std::str::from_utf8(pair).unwrap_or("");
                        p.data
                            .push(u8::from_str_radix(pair, 16).unwrap_or_else(|_| {
                                panic!("unexpected ffprobe data dump line: {line}")
                            }));
                    }
                } else {
                    in_data = false;
                }
            }
            _ => {}
        }
    }
    packets
}

/// Runs `ffmpeg -f framemd5` over a file and returns one MD5 per decoded frame.
/// Returns an error with ffmpeg's stderr when decoding reports any error.
pub fn ffmpeg_frame_md5s(path: &Path, input_format: Option<&str>) -> Result<Vec<String>, String> {
    require_ffmpeg();
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostdin", "-v", "error", "-xerror"]);
    if let Some(format) = input_format {
        cmd.args(["-f", format]);
    }
    cmd.arg("-i").arg(path).args(["-f", "framemd5", "-"]);
    let output = cmd
        .output()
        .map_err(|e| format!("cannot run ffmpeg: {e}"))?;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if !output.status.success() || !stderr.trim().is_empty() {
        return Err(format!(
            "ffmpeg decode of {} failed: {stderr}",
            path.display()
        ));
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit(',').next().map(|s| s.trim().to_string()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_names_are_distinct() {
        let all = [
            Fixture::X264HighBf0,
            Fixture::X264HighBf2,
            Fixture::X264HighBf3Pyramid,
            Fixture::X264Slices4,
            Fixture::X264Odd,
            Fixture::X265,
            Fixture::X265OpenGop,
            Fixture::Av1Ivf,
            Fixture::Vp9Ivf,
        ];
        let mut names: Vec<_> = all.iter().map(|f| f.file_name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len());
    }

    #[test]
    fn generates_and_reuses_a_fixture() {
        let path = fixture(Fixture::X264Odd);
        let first = std::fs::metadata(&path).expect("fixture exists").len();
        assert!(first > 0);
        assert_eq!(fixture(Fixture::X264Odd), path);
        let stream = ffprobe_stream(&path);
        assert_eq!(stream["width"], 318);
        assert_eq!(stream["height"], 238);
    }
}
