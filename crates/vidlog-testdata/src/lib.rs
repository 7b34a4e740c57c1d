//! Test fixtures for vidlog: small, real encoded video streams generated on first use with the
//! Debian `ffmpeg` CLI, plus `ffprobe` helpers that serve as independent references in tests.
//!
//! Fixtures land in `<workspace>/target/fixtures/` (or `$VIDLOG_FIXTURES_DIR`). Each one is written
//! under a temporary name and renamed into place, so tests running in parallel (even in several
//! processes) never see half a file; once present, a fixture is reused.
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
    /// AV1 in IVF, 320x240, 30 frames, via libsvtav1 or libaom. Needs one of them in ffmpeg.
    Av1Ivf,
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

    /// The file name inside the fixtures directory.
    pub fn file_name(self) -> &'static str {
        match self {
            Fixture::X264HighBf0 => "x264_high_bf0_320x240_90.h264",
            Fixture::X264HighBf2 => "x264_high_bf2_320x240_90.h264",
            Fixture::X264HighBf3Pyramid => "x264_high_bf3_pyramid_320x240_90.h264",
            Fixture::X264Slices4 => "x264_slices4_aud_320x240_90.h264",
            Fixture::X264Odd => "x264_high_318x238_30.h264",
            Fixture::X265 => "x265_main_320x240_30.h265",
            Fixture::Av1Ivf => "av1_320x240_30.ivf",
        }
    }

    /// Number of frames the fixture was made with.
    pub fn frame_count(self) -> u32 {
        match self {
            Fixture::X264HighBf0
            | Fixture::X264HighBf2
            | Fixture::X264HighBf3Pyramid
            | Fixture::X264Slices4 => 90,
            Fixture::X264Odd | Fixture::X265 | Fixture::Av1Ivf => 30,
        }
    }

    /// The encoder the fixture needs, or `None` when several would do (AV1).
    fn required_encoder(self) -> Option<&'static str> {
        match self {
            Fixture::X265 => Some("libx265"),
            Fixture::Av1Ivf => None,
            _ => Some("libx264"),
        }
    }

    /// Whether this ffmpeg can make the fixture (x265 and AV1 encoders are optional).
    pub fn is_available(self) -> bool {
        match self {
            Fixture::Av1Ivf => ffmpeg_has_encoder("libsvtav1") || ffmpeg_has_encoder("libaom-av1"),
            other => other.required_encoder().is_some_and(ffmpeg_has_encoder),
        }
    }

    /// ffmpeg arguments after the input, up to (not including) the output path.
    fn encode_args(self) -> Vec<String> {
        let x264 = |size: &str, frames: u32, extra: &[&str]| {
            let mut args: Vec<String> = testsrc2(size, frames);
            args.extend(
                ["-c:v", "libx264", "-profile:v", "high", "-pix_fmt", "yuv420p", "-g", "30"]
                    .iter()
                    .map(|s| s.to_string()),
            );
            args.extend(extra.iter().map(|s| s.to_string()));
            args.extend(["-f", "h264"].iter().map(|s| s.to_string()));
            args
        };
        match self {
            Fixture::X264HighBf0 => x264("320x240", 90, &["-bf", "0"]),
            Fixture::X264HighBf2 => x264("320x240", 90, &["-bf", "2"]),
            Fixture::X264HighBf3Pyramid => {
                x264("320x240", 90, &["-bf", "3", "-x264-params", "b-pyramid=normal"])
            }
            Fixture::X264Slices4 => {
                x264("320x240", 90, &["-bf", "0", "-slices", "4", "-x264-params", "aud=1"])
            }
            Fixture::X264Odd => x264("318x238", 30, &["-bf", "0"]),
            Fixture::X265 => {
                let mut args = testsrc2("320x240", 30);
                args.extend(
                    [
                        "-c:v",
                        "libx265",
                        "-pix_fmt",
                        "yuv420p",
                        "-x265-params",
                        "log-level=error",
                        "-f",
                        "hevc",
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
                args.extend(["-pix_fmt", "yuv420p", "-f", "ivf"].iter().map(|s| s.to_string()));
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

/// The directory fixtures are generated into: `$VIDLOG_FIXTURES_DIR`, or `<workspace>/target/fixtures`.
pub fn fixtures_dir() -> PathBuf {
    match std::env::var_os("VIDLOG_FIXTURES_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/fixtures"),
    }
}

/// The path of a fixture, generating it with ffmpeg on first use.
///
/// # Panics
/// When ffmpeg is missing, lacks the needed encoder, or fails; the message says what to do.
pub fn fixture(name: Fixture) -> PathBuf {
    let dir = fixtures_dir();
    let path = dir.join(name.file_name());
    if path.is_file() {
        return path;
    }
    require_ffmpeg();
    if !name.is_available() {
        panic!(
            "fixture {name:?} needs an ffmpeg encoder this ffmpeg lacks ({}); check with \
             Fixture::is_available() and skip the test",
            name.required_encoder().unwrap_or("libsvtav1 or libaom-av1")
        );
    }
    if let Err(e) = std::fs::create_dir_all(&dir) {
        panic!("cannot create the fixtures directory {}: {e}", dir.display());
    }
    let tmp = dir.join(unique_temp_name(name.file_name()));
    let output = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"])
        .args(name.encode_args())
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
    // identical in kind and ours simply replaces it.
    if let Err(e) = std::fs::rename(&tmp, &path) {
        let _ = std::fs::remove_file(&tmp);
        panic!("cannot move fixture into place at {}: {e}", path.display());
    }
    path
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
    let output = cmd.output().map_err(|e| format!("cannot run ffmpeg: {e}"))?;
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    if !output.status.success() || !stderr.trim().is_empty() {
        return Err(format!("ffmpeg decode of {} failed: {stderr}", path.display()));
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
            Fixture::Av1Ivf,
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
