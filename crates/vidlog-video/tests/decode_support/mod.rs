//! Shared helpers for the decoder tests: fixture streams as samples (bytes from ffmpeg's own
//! demuxer, PTS from the MP4 the fixture was extracted from), FFmpeg's reference frames, and
//! frame MD5s computed by FFmpeg's `framemd5` muxer over our raw output.

#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use vidlog_testdata::{Fixture, ffprobe_packet_data, ffprobe_packets};
use vidlog_types::VideoCodec;
use vidlog_video::decode::Frame;
use vidlog_video::decode::player::MemorySource;

/// One sample in decode order.
pub struct Sample {
    pub data: Vec<u8>,
    pub pts: i64,
    pub is_key: bool,
}

pub fn codec_of(fixture: Fixture) -> VideoCodec {
    match fixture {
        Fixture::X265 | Fixture::X265OpenGop => VideoCodec::H265,
        Fixture::Av1Ivf => VideoCodec::Av1,
        Fixture::Vp9Ivf => VideoCodec::Vp9,
        _ => VideoCodec::H264,
    }
}

/// The fixture's samples in decode order: bytes as ffmpeg's demuxer splits the raw stream
/// (Annex B access units, AV1 temporal units), PTS in the stream's time base units.
pub fn fixture_samples(fixture: Fixture) -> Vec<Sample> {
    let raw = vidlog_testdata::fixture(fixture);
    let packets = ffprobe_packet_data(&raw);
    let pts: Vec<i64> = match fixture {
        Fixture::Av1Ivf | Fixture::Vp9Ivf => ffprobe_packets(&raw)
            .iter()
            .map(|p| p["pts"].as_i64().expect("IVF packets have pts"))
            .collect(),
        other => ffprobe_packets(&vidlog_testdata::fixture_mp4(other))
            .iter()
            .map(|p| p["pts"].as_i64().expect("MP4 packets have pts"))
            .collect(),
    };
    assert_eq!(
        packets.len(),
        pts.len(),
        "{fixture:?}: raw and MP4 packet counts differ"
    );
    packets
        .into_iter()
        .zip(pts)
        .map(|(p, pts)| Sample {
            data: p.data,
            pts,
            is_key: p.is_key,
        })
        .collect()
}

pub fn memory_source(name: &str, codec: VideoCodec, samples: &[Sample]) -> MemorySource {
    let mut source = MemorySource::new(name, codec);
    for s in samples {
        source.push(s.data.clone(), s.pts, s.is_key);
    }
    source
}

/// MD5 of each frame's I420 bytes, hashed by `ffmpeg -f framemd5` (so both sides of a
/// comparison use FFmpeg's hashing).
pub fn md5s_of(frames: &[Frame]) -> Vec<String> {
    let Some(first) = frames.first() else {
        return Vec::new();
    };
    let mut child = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-f", "rawvideo"])
        .args(["-pix_fmt", "yuv420p", "-s"])
        .arg(format!("{}x{}", first.width, first.height))
        .args(["-i", "-", "-f", "framemd5", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("ffmpeg runs");
    let mut stdin = child.stdin.take().expect("stdin");
    let data: Vec<u8> = frames.iter().flat_map(|f| f.i420().to_vec()).collect();
    let writer = std::thread::spawn(move || {
        stdin.write_all(&data).expect("ffmpeg reads");
    });
    let output = child.wait_with_output().expect("ffmpeg finishes");
    writer.join().expect("writer");
    assert!(output.status.success(), "ffmpeg framemd5 over our frames");
    parse_framemd5(&String::from_utf8_lossy(&output.stdout))
}

fn parse_framemd5(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit(',').next().map(|s| s.trim().to_string()))
        .collect()
}

/// FFmpeg's decode of `path` in presentation order, as raw frames of `format` (`yuv420p` or
/// `rgba`).
pub fn ffmpeg_raw_frames(path: &Path, format: &str, frame_bytes: usize) -> Vec<Vec<u8>> {
    let output = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-f", "rawvideo", "-pix_fmt", format, "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(
        output.status.success(),
        "ffmpeg decode: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(output.stdout.len() % frame_bytes, 0, "whole frames");
    output
        .stdout
        .chunks(frame_bytes)
        .map(<[u8]>::to_vec)
        .collect()
}

/// Sample PTS sorted: the presentation order FFmpeg's output follows.
pub fn presentation_pts(samples: &[Sample]) -> Vec<i64> {
    let mut pts: Vec<i64> = samples.iter().map(|s| s.pts).collect();
    pts.sort_unstable();
    pts
}

/// A small deterministic generator (xorshift64*) for random times with a fixed seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n.max(1)
    }
}
