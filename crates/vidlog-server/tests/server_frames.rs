//! Server-decoded frames (`GET /api/recordings/{id}/video/frame`) against FFmpeg: a producer
//! streams a fixture into a real server, the test asks for frames by sample and by time, as
//! raw RGBA and as JPEG, and compares each with the frame `ffmpeg -pix_fmt rgba` decodes from
//! the same stream. Also: forward play on one session feeds its decoder once per sample, a
//! step back is served from its cache, bad requests are refused with a reason, H.265
//! without the `ffmpeg` feature answers an error naming the feature, and a recording evicted
//! from memory still decodes.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

mod common;

use common::wait_for_samples;
use tungstenite::Message;
use vidlog_server::{RunningServer, Server, ServerConfig};
use vidlog_store::codec::{MessageEncoder, RecordingInfo, encode_recording_info};
use vidlog_testdata::{Fixture, ffprobe_packet_data, ffprobe_packets, fixture, fixture_mp4};
use vidlog_types::{Chunk, EntityPath, TimeCell, TimePoint, VideoCodec, VideoStream};

const WIDTH: usize = 320;
const HEIGHT: usize = 240;

/// A fixture as the producer sends it: decode order, pts from the MP4 it came from.
struct Stream {
    codec: VideoCodec,
    /// `(bytes, pts)` in decode order.
    samples: Vec<(Vec<u8>, i64)>,
    /// FFmpeg's RGBA frames in presentation order.
    reference: Vec<Vec<u8>>,
}

impl Stream {
    fn of(which: Fixture, codec: VideoCodec) -> Stream {
        let raw = fixture(which);
        let packets = ffprobe_packet_data(&raw);
        let pts: Vec<i64> = ffprobe_packets(&fixture_mp4(which))
            .iter()
            .map(|p| p["pts"].as_i64().expect("MP4 packets have pts"))
            .collect();
        assert_eq!(packets.len(), pts.len(), "{which:?}: packet counts");
        Stream {
            codec,
            samples: packets.into_iter().map(|p| p.data).zip(pts).collect(),
            reference: ffmpeg_rgba(&raw),
        }
    }

    /// Presentation rank of each sample (the index of its frame in `reference`).
    fn ranks(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.samples.len()).collect();
        order.sort_by_key(|&i| self.samples[i].1);
        let mut rank = vec![0; order.len()];
        for (r, i) in order.into_iter().enumerate() {
            rank[i] = r;
        }
        rank
    }
}

fn ffmpeg_rgba(path: &Path) -> Vec<Vec<u8>> {
    let out = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args(["-f", "rawvideo", "-pix_fmt", "rgba", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
        .chunks(WIDTH * HEIGHT * 4)
        .map(<[u8]>::to_vec)
        .collect()
}

fn one_row_chunk(id: u64, entity: &EntityPath, time: TimePoint, what: VideoStream) -> Arc<Chunk> {
    common::one_row_chunk(id, 1_763_000_000_000_000_000 + id, entity, time, what)
}

/// Sends recording `id`: the stream on entity `cam`, one sample per chunk, on the duration
/// timeline `time` (the MP4 pts taken as ns).
fn produce(addr: SocketAddr, id: &str, stream: &Stream) {
    let (mut ws, _) = tungstenite::connect(format!("ws://{addr}/ws/ingest")).expect("connects");
    ws.send(Message::text(
        r#"{"protocol":"vidlog","version":1,"role":"producer"}"#,
    ))
    .expect("hello");
    let _ok = ws.read().expect("hello answer");
    let send = |ws: &mut tungstenite::WebSocket<_>, m: &vidlog_store::codec::EncodedMessage| {
        let mut v = Vec::new();
        m.frame().write_to(&mut v).expect("frame");
        ws.send(Message::binary(v)).expect("sends");
    };
    let info = RecordingInfo {
        application_id: "server_frames_test".into(),
        recording_id: id.into(),
        started_unix_nanos: 1,
        writer: "test".into(),
    };
    send(&mut ws, &encode_recording_info(&info));
    let entity = EntityPath::parse("cam").expect("entity");
    let mut chunks = vec![one_row_chunk(
        1,
        &entity,
        TimePoint::new(),
        VideoStream::new(stream.codec),
    )];
    for (n, (data, pts)) in stream.samples.iter().enumerate() {
        chunks.push(one_row_chunk(
            2 + n as u64,
            &entity,
            TimePoint::new().with("time", TimeCell::from_duration_nanos(*pts)),
            VideoStream::from_sample(data.clone()),
        ));
    }
    let mut encoder = MessageEncoder::new();
    for chunk in &chunks {
        for m in encoder.encode_chunk(chunk).expect("encodes") {
            send(&mut ws, &m);
        }
    }
    ws.close(None).expect("closes");
    while ws.read().is_ok() {}
}

struct Answer {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }
    fn number(&self, name: &str) -> i64 {
        self.header(name)
            .parse()
            .unwrap_or_else(|_| panic!("header {name}: {:?}", self.header(name)))
    }
    fn error(&self) -> String {
        let json: serde_json::Value = serde_json::from_slice(&self.body).expect("JSON error");
        json["error"].as_str().expect("error text").to_owned()
    }
}

fn get(addr: SocketAddr, path: &str) -> Answer {
    let mut s = TcpStream::connect(addr).expect("connects");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("writes");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("reads");
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("head");
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_owned()))
        .collect();
    Answer {
        status: head[9..12].parse().expect("status"),
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

/// Largest and mean absolute difference of the RGB bytes (alpha is 255 on both sides).
fn diff(ours: &[u8], theirs: &[u8]) -> (u8, f64) {
    assert_eq!(ours.len(), theirs.len(), "picture sizes");
    let (mut max, mut sum) = (0u8, 0u64);
    for (a, b) in ours.iter().zip(theirs) {
        let d = a.abs_diff(*b);
        max = max.max(d);
        sum += u64::from(d);
    }
    (max, sum as f64 / ours.len().max(1) as f64)
}

fn jpeg_to_rgba(jpeg: &[u8]) -> Vec<u8> {
    let mut decoder = jpeg_decoder::Decoder::new(jpeg);
    let rgb = decoder.decode().expect("a JPEG");
    let info = decoder.info().expect("JPEG info");
    assert_eq!(
        (usize::from(info.width), usize::from(info.height)),
        (WIDTH, HEIGHT)
    );
    assert_eq!(info.pixel_format, jpeg_decoder::PixelFormat::RGB24);
    rgb.chunks(3)
        .flat_map(|p| [p[0], p[1], p[2], 255])
        .collect()
}

fn start() -> (tempfile::TempDir, RunningServer) {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(ServerConfig {
        port: 0,
        data_dir: dir.path().to_path_buf(),
        ..ServerConfig::default()
    })
    .expect("server starts");
    (dir, server)
}

/// Frames by sample (raw and JPEG) and by time equal FFmpeg's; one session plays forward
/// feeding its decoder once per sample and steps back without decoding.
fn check_frames(stream: &Stream, id: &str) {
    let (_dir, server) = start();
    let addr = server.addr();
    produce(addr, id, stream);
    wait_for_samples(&server, id, stream.samples.len() as u64);
    let ranks = stream.ranks();
    let frame = |query: &str| {
        get(
            addr,
            &format!("/api/recordings/{id}/video/frame?entity=cam&{query}"),
        )
    };

    // Scattered samples, forward and back, across GOPs: raw RGBA equals FFmpeg's within
    // the rounding of YUV->RGB (measured in vidlog-video's decode tests: max 3).
    let n = stream.samples.len();
    for i in [0, 1, n / 2, n / 2 - 1, n - 1, 10, n / 3, 2] {
        let answer = frame(&format!("sample={i}&format=rgba&session=raw"));
        assert_eq!(answer.status, 200, "sample {i}: {}", answer.error());
        assert_eq!(answer.number("x-vidlog-sample"), i as i64);
        assert_eq!(answer.number("x-vidlog-pts"), stream.samples[i].1);
        assert_eq!(answer.number("x-vidlog-width"), WIDTH as i64);
        assert_eq!(answer.header("x-vidlog-concealed"), "0");
        let (max, mean) = diff(&answer.body, &stream.reference[ranks[i]]);
        assert!(
            max <= 4 && mean < 1.0,
            "sample {i}: RGBA max {max} mean {mean:.3}"
        );
    }

    // JPEG: close to FFmpeg's frame, and closer to it than to its neighbours.
    for i in [3, n - 2, 5] {
        let answer = frame(&format!("sample={i}&quality=90&session=jpeg"));
        assert_eq!(answer.status, 200, "{}", answer.error());
        assert_eq!(answer.header("content-type"), "image/jpeg");
        let picture = jpeg_to_rgba(&answer.body);
        let (_, mean) = diff(&picture, &stream.reference[ranks[i]]);
        eprintln!("{id} sample {i}: JPEG q90 mean difference {mean:.3}");
        assert!(mean < 3.0, "sample {i}: JPEG mean difference {mean:.3}");
        let neighbours = [ranks[i].checked_sub(1), Some(ranks[i] + 1)];
        for other in neighbours.into_iter().flatten().filter(|&r| r < n) {
            let (_, off) = diff(&picture, &stream.reference[other]);
            assert!(
                off > mean,
                "sample {i} is told from frame {other} ({off:.3} vs {mean:.3})"
            );
        }
    }

    // By time: between two frames' pts, the earlier frame is shown.
    let mut by_pts: Vec<(i64, usize)> = stream
        .samples
        .iter()
        .enumerate()
        .map(|(i, s)| (s.1, i))
        .collect();
    by_pts.sort();
    let (pts, i) = by_pts[7];
    let answer = frame(&format!("at={}&format=rgba", (pts + by_pts[8].0) / 2));
    assert_eq!(answer.status, 200, "{}", answer.error());
    assert_eq!(answer.number("x-vidlog-sample"), i as i64);
    assert_eq!(answer.number("x-vidlog-pts"), pts);
    let answer = frame(&format!("at={}", by_pts[0].0 - 1));
    assert_eq!(answer.status, 404, "before the first frame");

    // Forward play in presentation order on one session: the decoder is fed each sample
    // once, not restarted per frame; stepping back inside the cache decodes nothing.
    let mut fed = 0;
    for &(_, i) in &by_pts[..40.min(n)] {
        let answer = frame(&format!("sample={i}&format=rgba&session=play"));
        assert_eq!(answer.status, 200, "{}", answer.error());
        fed = answer.number("x-vidlog-samples-decoded");
    }
    let played = 40.min(n) as i64;
    eprintln!("{id}: forward play of {played} frames fed the decoder {fed} samples");
    assert!(
        (played..=played + 16).contains(&fed),
        "forward play of {played} frames fed {fed} samples"
    );
    for &(_, i) in by_pts[30.min(n - 1)..40.min(n)].iter().rev() {
        let answer = frame(&format!("sample={i}&format=rgba&session=play"));
        assert_eq!(
            answer.number("x-vidlog-samples-decoded"),
            fed,
            "step back to {i}"
        );
        let (max, _) = diff(&answer.body, &stream.reference[ranks[i]]);
        assert!(max <= 4, "step back to sample {i}");
    }
}

#[test]
fn h264_frames_match_ffmpeg_and_forward_play_reuses_the_decoder() {
    check_frames(&Stream::of(Fixture::X264HighBf0, VideoCodec::H264), "h264");
}

#[cfg(feature = "ffmpeg")]
#[test]
fn h264_b_frames_and_h265_frames_match_ffmpeg() {
    check_frames(
        &Stream::of(Fixture::X264HighBf2, VideoCodec::H264),
        "bframes",
    );
    if Fixture::X265.is_available() {
        check_frames(&Stream::of(Fixture::X265, VideoCodec::H265), "h265");
    }
}

#[cfg(not(feature = "ffmpeg"))]
#[test]
fn h265_without_the_ffmpeg_feature_says_which_feature() {
    if !Fixture::X265.is_available() {
        eprintln!("skipped: this ffmpeg has no libx265");
        return;
    }
    let (_dir, server) = start();
    let stream = Stream::of(Fixture::X265, VideoCodec::H265);
    produce(server.addr(), "h265", &stream);
    wait_for_samples(&server, "h265", stream.samples.len() as u64);
    let answer = get(
        server.addr(),
        "/api/recordings/h265/video/frame?entity=cam&sample=3",
    );
    assert_eq!(answer.status, 501);
    let error = answer.error();
    assert!(
        error.contains("H.265") && error.contains("--features ffmpeg"),
        "{error}"
    );
}

#[test]
fn bad_frame_requests_are_refused_with_a_reason() {
    let (_dir, server) = start();
    let addr = server.addr();
    let stream = Stream {
        codec: VideoCodec::H264,
        samples: Stream::of(Fixture::X264HighBf0, VideoCodec::H264).samples[..5].to_vec(),
        reference: Vec::new(),
    };
    produce(addr, "bad", &stream);
    wait_for_samples(&server, "bad", 5);
    for (query, status, says) in [
        ("entity=cam", 400, "sample=I"),
        ("entity=cam&sample=5", 400, "past the end"),
        ("entity=cam&sample=x", 400, "not a sample index"),
        ("entity=cam&at=1.5", 400, "integer pts"),
        ("entity=cam&sample=0&quality=0", 400, "quality"),
        ("entity=cam&sample=0&format=png", 400, "format"),
        ("entity=cam&sample=0&timeline=nope", 400, "timeline"),
        ("entity=other&sample=0", 404, "no video samples"),
        ("sample=0", 400, "entity"),
    ] {
        let answer = get(addr, &format!("/api/recordings/bad/video/frame?{query}"));
        assert_eq!(answer.status, status, "{query}: {}", answer.error());
        assert!(answer.error().contains(says), "{query}: {}", answer.error());
    }
    let answer = get(addr, "/api/recordings/nope/video/frame?entity=cam&sample=0");
    assert_eq!(answer.status, 404);
}

/// A finished recording whose chunks were (mostly) dropped from memory (a 1-byte memory
/// limit): the server decodes its frames from the bytes it reads back from the file, and a
/// viewer that joins late is fed from the entity's latest keyframe, bytes intact.
#[test]
fn an_evicted_recording_still_decodes_and_feeds_a_late_viewer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = Server::start(ServerConfig {
        port: 0,
        data_dir: dir.path().to_path_buf(),
        memory_limit: 1,
        ..ServerConfig::default()
    })
    .expect("server starts");
    let addr = server.addr();
    let stream = Stream::of(Fixture::X264HighBf0, VideoCodec::H264);
    produce(addr, "evicted", &stream);
    wait_for_samples(&server, "evicted", stream.samples.len() as u64);
    // Most chunk bytes leave memory once the recording is finished (the server may keep a
    // few, e.g. the latest per entity).
    let total: usize = stream.samples.iter().map(|s| s.0.len()).sum();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while server.server().memory_in_use() > total as u64 / 2 {
        assert!(
            std::time::Instant::now() < deadline,
            "chunks stay in memory: {} of {total} bytes",
            server.server().memory_in_use()
        );
        std::thread::sleep(Duration::from_millis(10));
    }

    let ranks = stream.ranks();
    for i in [45, 2, 89] {
        let answer = get(
            addr,
            &format!("/api/recordings/evicted/video/frame?entity=cam&sample={i}&format=rgba"),
        );
        assert_eq!(answer.status, 200, "sample {i}: {}", answer.error());
        let (max, mean) = diff(&answer.body, &stream.reference[ranks[i]]);
        assert!(
            max <= 4 && mean < 1.0,
            "sample {i}: RGBA max {max} mean {mean:.3}"
        );
    }

    let (mut ws, _) =
        tungstenite::connect(format!("ws://{addr}/ws/view?recording=evicted&entity=cam"))
            .expect("the viewer's feed connects");
    let first = loop {
        match ws.read().expect("a sample record") {
            Message::Binary(bytes) => break bytes,
            _ => continue,
        }
    };
    let keyframes: Vec<usize> = ffprobe_packet_data(&fixture(Fixture::X264HighBf0))
        .iter()
        .enumerate()
        .filter(|(_, p)| p.is_key)
        .map(|(i, _)| i)
        .collect();
    let latest = *keyframes.last().expect("keyframes");
    let index = u64::from_le_bytes(first[16..24].try_into().expect("8 bytes"));
    assert_eq!(
        index, latest as u64,
        "the feed starts at the latest keyframe"
    );
    assert_eq!(first[4], 1, "a keyframe");
    assert_eq!(&first[32..], &stream.samples[latest].0[..], "its bytes");
}
