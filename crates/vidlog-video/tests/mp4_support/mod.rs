//! Shared by the `mp4_*` tests: real test streams (ffmpeg fixtures, the built-in encoder, a
//! jittered variable-frame-rate variant) as samples plus logged presentation times, muxing
//! helpers, and ffprobe / ffmpeg references.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use vidlog_testdata::{Fixture, fixture};
use vidlog_types::VideoCodec;
use vidlog_video::bitstream::h264::{presentation_order, split_access_units};
use vidlog_video::encode::{Encoder, H264Encoder, H264EncoderConfig, RawFrame};
use vidlog_video::mp4::{Mp4Muxer, Mp4Options, Mp4Summary, SampleEntry};

/// A stream as vidlog logs it: samples in decode order and their presentation times (ns).
#[derive(Clone, Debug)]
pub struct Case {
    pub name: String,
    /// `(Annex B access unit, is_keyframe)` in decode order.
    pub samples: Vec<(Vec<u8>, bool)>,
    /// Presentation time of each sample (ns), decode order.
    pub pts: Vec<i64>,
    /// The samples' codec (H.264 unless the case says otherwise).
    pub codec: VideoCodec,
    /// For fixtures other than H.264: the raw stream file the samples came from (IVF, or
    /// Annex B `.h265`); FFmpeg's decode of it is the reference picture sequence.
    pub raw_file: Option<std::path::PathBuf>,
}

impl Case {
    pub fn annexb(&self) -> Vec<u8> {
        self.samples.iter().flat_map(|(s, _)| s.clone()).collect()
    }

    /// The samples from decode index `from` on.
    pub fn tail(&self, from: usize) -> Case {
        Case {
            name: format!("{}[{from}..]", self.name),
            samples: self.samples[from..].to_vec(),
            pts: self.pts[from..].to_vec(),
            codec: self.codec,
            raw_file: None,
        }
    }
}

/// `index / fps` in ns, rounded (what a logger computing `Duration::from_secs_f64` logs).
pub fn frame_time(index: u64, fps: u64) -> i64 {
    ((index as i128 * 1_000_000_000 + fps as i128 / 2) / fps as i128) as i64
}

pub fn fixture_case(f: Fixture) -> Case {
    let stream = std::fs::read(fixture(f)).expect("fixture reads");
    let units = split_access_units(&stream).expect("fixture splits");
    let order = presentation_order(
        &units
            .iter()
            .map(|u| (u.poc, u.poc_reset))
            .collect::<Vec<_>>(),
    );
    Case {
        name: format!("{f:?}"),
        samples: units
            .iter()
            .map(|u| (u.data.clone(), u.is_keyframe))
            .collect(),
        pts: order.iter().map(|&i| frame_time(i, 30)).collect(),
        codec: VideoCodec::H264,
        raw_file: None,
    }
}

/// The x265 fixture as logged samples: access units as ffmpeg's parser splits the raw stream,
/// presentation times from the MP4 it was extracted from (1/15360 s ticks at 30 fps).
pub fn h265_case() -> Case {
    let path = fixture(Fixture::X265);
    let packets = vidlog_testdata::ffprobe_packet_data(&path);
    let mp4 = vidlog_testdata::ffprobe_packets(&vidlog_testdata::fixture_mp4(Fixture::X265));
    assert_eq!(packets.len(), mp4.len());
    let first = mp4
        .iter()
        .filter_map(|p| p["pts"].as_i64())
        .min()
        .expect("pts");
    let step = mp4
        .iter()
        .filter_map(|p| p["duration"].as_i64())
        .next()
        .expect("packet duration");
    Case {
        name: "X265".into(),
        samples: packets.into_iter().map(|p| (p.data, p.is_key)).collect(),
        pts: mp4
            .iter()
            .map(|p| {
                let frame = (p["pts"].as_i64().expect("pts") - first) / step;
                frame_time(frame as u64, 30)
            })
            .collect(),
        codec: VideoCodec::H265,
        raw_file: Some(path),
    }
}

/// An IVF fixture (AV1, VP9) as logged samples: ffmpeg's packets and their 1/30 s times.
pub fn ivf_case(f: Fixture, codec: VideoCodec) -> Case {
    let path = fixture(f);
    let packets = vidlog_testdata::ffprobe_packet_data(&path);
    let pts: Vec<i64> = vidlog_testdata::ffprobe_packets(&path)
        .iter()
        .map(|p| p["pts"].as_i64().expect("IVF packets have pts"))
        .collect();
    assert_eq!(packets.len(), pts.len());
    Case {
        name: format!("{f:?}"),
        samples: packets.into_iter().map(|p| (p.data, p.is_key)).collect(),
        pts: pts.iter().map(|&i| frame_time(i as u64, 30)).collect(),
        codec,
        raw_file: Some(path),
    }
}

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

/// 40 frames from the built-in encoder at 25 fps, keyframe every 15 frames.
pub fn encoder_case() -> Case {
    let (width, height) = (320usize, 240usize);
    let mut encoder = H264Encoder::new(H264EncoderConfig {
        width: width as u32,
        height: height as u32,
        fps: 25.0,
        bitrate_bps: 600_000,
        keyframe_interval: 15,
    })
    .expect("encoder");
    let mut samples = Vec::new();
    for t in 0..40 {
        let s = encoder
            .encode(RawFrame::Rgba8(&gradient_rgba(width, height, t)))
            .expect("encodes");
        samples.push((s.data, s.is_keyframe));
    }
    Case {
        name: "built-in encoder".into(),
        pts: (0..40).map(|i| i * 40_000_000).collect(),
        samples,
        codec: VideoCodec::H264,
        raw_file: None,
    }
}

/// Fixed-seed xorshift64.
pub struct XorShift(pub u64);
impl XorShift {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    /// Uniform in `-max..=max`.
    pub fn jitter(&mut self, max: i64) -> i64 {
        (self.next() % (2 * max as u64 + 1)) as i64 - max
    }
}

/// `case` with every pts moved by up to +-5 ms (`step` ns granularity), order kept.
pub fn jittered(case: &Case, step: i64, seed: u64) -> Case {
    let mut rng = XorShift(seed);
    Case {
        name: format!("{} jittered +-5ms step {step}", case.name),
        samples: case.samples.clone(),
        codec: case.codec,
        raw_file: case.raw_file.clone(),
        pts: case
            .pts
            .iter()
            .map(|&p| p + rng.jitter(5_000_000 / step) * step + 1_000_000_000)
            .collect(),
    }
}

pub fn entry(case: &Case) -> SampleEntry {
    SampleEntry::from_keyframe(case.codec, &case.samples[0].0).expect("sample entry")
}

/// Muxes into memory: plain through a `Cursor`, fragmented through a plain `Vec` (no seek).
pub fn mux(case: &Case, options: Mp4Options) -> (Vec<u8>, Mp4Summary) {
    let fragmented = options.fragmented;
    let (bytes, summary) = if fragmented {
        let mut out = Vec::new();
        let mut muxer =
            Mp4Muxer::new_streaming(&mut out, entry(case), &case.pts, options).expect("muxer");
        for (s, k) in &case.samples {
            muxer.push(s, *k).expect("push");
        }
        let summary = muxer.finish().expect("finish");
        (out, summary)
    } else {
        let mut out = std::io::Cursor::new(Vec::new());
        let mut muxer = Mp4Muxer::new(&mut out, entry(case), &case.pts, options).expect("muxer");
        for (s, k) in &case.samples {
            muxer.push(s, *k).expect("push");
        }
        let summary = muxer.finish().expect("finish");
        (out.into_inner(), summary)
    };
    assert_eq!(summary.bytes, bytes.len() as u64, "{}", case.name);
    (bytes, summary)
}

pub fn write_temp(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write temp file");
    path
}

/// Runs ffprobe with JSON output on a file, or on `stdin_bytes` through `-i -`.
pub fn ffprobe(args: &[&str], input: &Path, stdin_bytes: Option<&[u8]>) -> serde_json::Value {
    let mut cmd = Command::new("ffprobe");
    cmd.args(["-v", "error", "-of", "json"]).args(args);
    match stdin_bytes {
        Some(_) => cmd.args(["-i", "-"]).stdin(Stdio::piped()),
        None => cmd.arg(input).stdin(Stdio::null()),
    };
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ffprobe runs");
    if let Some(bytes) = stdin_bytes {
        let mut stdin = child.stdin.take().expect("stdin");
        let bytes = bytes.to_vec();
        std::thread::spawn(move || {
            let _ = stdin.write_all(&bytes);
        });
    }
    let out = child.wait_with_output().expect("ffprobe output");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "ffprobe {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("ffprobe JSON")
}

/// Frame MD5s (md5 column only), every decoded frame passed through (`-fps_mode passthrough`).
pub fn frame_md5s(path: &Path, input_format: Option<&str>) -> Vec<String> {
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-hide_banner", "-nostdin", "-v", "error"]);
    if let Some(f) = input_format {
        cmd.args(["-f", f]);
    }
    let out = cmd
        .arg("-i")
        .arg(path)
        .args(["-fps_mode", "passthrough", "-f", "framemd5", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "ffmpeg framemd5 of {} failed: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit(',').next().map(|s| s.trim().to_string()))
        .collect()
}

/// An integer field of ffprobe JSON (`pts`, `duration`; `size` comes as a string).
pub fn int(v: &serde_json::Value, key: &str) -> Option<i64> {
    let v = v.get(key)?;
    v.as_i64().or_else(|| v.as_str()?.parse().ok())
}
