//! `GET /api/recordings/{id}/export.mp4` against a running server with a producer still
//! connected (a live recording), checked with ffprobe: frame count and presentation
//! times (B-frames), ranges with an edit list, and every refusal (404/400 with a reason);
//! a client that leaves mid-download; and a server whose memory limit is far below the
//! recording, which evicts chunks yet serves every sample (samples API, export, file).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

mod common;

use common::HttpAnswer;
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};
use vidlog_server::{RunningServer, Server, ServerConfig};
use vidlog_store::codec::{MessageEncoder, RecordingInfo, encode_recording_info};
use vidlog_testdata::{Fixture, ffprobe_frames, ffprobe_packets, fixture, fixture_mp4};
use vidlog_types::chunk::{build_chunk, chunk_schema};
use vidlog_types::{
    AsComponents, Chunk, ChunkId, EntityPath, PendingRow, RowId, TimeCell, TimePoint, VideoCodec,
    VideoStream,
};
use vidlog_video::bitstream::h264::split_access_units;

type Ws = WebSocket<MaybeTlsStream<TcpStream>>;

/// A fixture's access units (decode order) with their presentation times in ns, from
/// ffprobe's packets of the MP4 the fixture was cut from (an independent reference).
fn samples_with_pts(which: Fixture) -> Vec<(Vec<u8>, i64)> {
    let bytes = std::fs::read(fixture(which)).unwrap();
    let aus = split_access_units(&bytes).unwrap();
    let packets = ffprobe_packets(&fixture_mp4(which));
    assert_eq!(
        aus.len(),
        packets.len(),
        "{which:?}: access units vs packets"
    );
    let first = packet_pts(&packets[0]);
    let min = packets.iter().map(packet_pts).min().unwrap_or(first);
    aus.into_iter()
        .zip(&packets)
        .map(|(au, p)| (au.data, packet_pts(p) - min))
        .collect()
}

fn packet_pts(packet: &serde_json::Value) -> i64 {
    let t: f64 = packet["pts_time"].as_str().unwrap().parse().unwrap();
    (t * 1e9).round() as i64
}

/// A static codec chunk, then one chunk per sample (chunk and row ids from `first_id`) on a duration timeline `video_time`
/// and a sequence timeline `frame`.
fn chunks(
    entity: &str,
    first_id: u64,
    codec: VideoCodec,
    samples: &[(Vec<u8>, i64)],
) -> Vec<Arc<Chunk>> {
    let entity = EntityPath::parse(entity).unwrap();
    let one = |id: u64, time: TimePoint, what: VideoStream| {
        let row = PendingRow {
            row_id: RowId(id),
            time,
            cells: what.as_components(),
        };
        let schema = Arc::new(chunk_schema(&entity, &row.batch_key()));
        Arc::new(build_chunk(ChunkId(id), &entity, schema, &[row]).unwrap())
    };
    let mut out = vec![one(first_id, TimePoint::new(), VideoStream::new(codec))];
    for (n, (bytes, pts)) in samples.iter().enumerate() {
        let id = first_id + 1 + n as u64;
        out.push(one(
            id,
            TimePoint::new()
                .with("video_time", TimeCell::from_duration_nanos(*pts))
                .with("frame", TimeCell::from_sequence(n as i64)),
            VideoStream::from_sample(bytes.clone()),
        ));
    }
    out
}

/// A producer that sent every chunk and stays connected (the recording is live).
fn produce(addr: SocketAddr, id: &str, chunks: &[Arc<Chunk>]) -> Ws {
    let (mut ws, _) = tungstenite::connect(format!("ws://{addr}/ws/ingest")).unwrap();
    if let MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    }
    ws.send(Message::text(
        r#"{"protocol":"vidlog","version":1,"role":"producer"}"#,
    ))
    .unwrap();
    let frame = |m: &vidlog_store::codec::EncodedMessage| {
        let mut v = Vec::new();
        m.frame().write_to(&mut v).unwrap();
        Message::binary(v)
    };
    let info = RecordingInfo {
        application_id: "export_http_test".into(),
        recording_id: id.into(),
        started_unix_nanos: 1,
        writer: "test".into(),
    };
    ws.send(frame(&encode_recording_info(&info))).unwrap();
    let mut encoder = MessageEncoder::new();
    for chunk in chunks {
        for m in encoder.encode_chunk(chunk).unwrap() {
            ws.send(frame(&m)).unwrap();
        }
    }
    // Every chunk is acked once stored.
    let mut acked = 0;
    while acked < chunks.len() as u64 {
        if let Message::Text(t) = ws.read().unwrap() {
            let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
            assert!(v.get("error").is_none(), "{t}");
            acked = v["stored"].as_u64().unwrap_or(acked);
        }
    }
    ws
}

/// `GET` in HTTP/1.0: the body as sent, never chunked.
fn http_get(addr: SocketAddr, path: &str) -> HttpAnswer {
    common::http_get_version(addr, path, "1.0")
}

fn error_of(answer: &HttpAnswer) -> String {
    answer.json()["error"].as_str().unwrap().to_owned()
}

fn start(dir: &std::path::Path) -> RunningServer {
    start_with_limit(dir, ServerConfig::default().memory_limit)
}

fn start_with_limit(dir: &std::path::Path, memory_limit: u64) -> RunningServer {
    Server::start(ServerConfig {
        port: 0,
        data_dir: dir.to_path_buf(),
        memory_limit,
        ..ServerConfig::default()
    })
    .unwrap()
}

/// The fixture played `times` times in a row (presentation times continue).
fn repeated(samples: &[(Vec<u8>, i64)], times: usize) -> Vec<(Vec<u8>, i64)> {
    const PERIOD_NS: i64 = 3_000_000_000;
    assert!(samples.iter().all(|(_, p)| *p < PERIOD_NS));
    (0..times)
        .flat_map(|k| {
            samples
                .iter()
                .map(move |(b, p)| (b.clone(), p + k as i64 * PERIOD_NS))
        })
        .collect()
}

/// Every sample of `entity` through `GET .../video/samples`, in decode order, parsed from
/// the viewer's layout (`u32 len | u8 key | 3 | i64 pts | u64 index | u64 row_id | bytes`).
fn samples_over_http(addr: SocketAddr, id: &str, entity: &str) -> Vec<(u64, Vec<u8>)> {
    let mut out: Vec<(u64, Vec<u8>)> = Vec::new();
    loop {
        let answer = http_get(
            addr,
            &format!(
                "/api/recordings/{id}/video/samples?entity={entity}&from={}",
                out.len()
            ),
        );
        assert_eq!(
            answer.status,
            200,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
        if answer.body.is_empty() {
            return out;
        }
        let mut at = 0;
        while at < answer.body.len() {
            let body = &answer.body[at..];
            let len = u32::from_le_bytes(body[0..4].try_into().unwrap()) as usize;
            let index = u64::from_le_bytes(body[16..24].try_into().unwrap());
            out.push((index, body[32..32 + len].to_vec()));
            at += 32 + len;
        }
    }
}

/// Presentation times (ns) of the frames ffprobe decodes from `mp4`.
fn probed_frame_pts(mp4: &std::path::Path) -> Vec<i64> {
    ffprobe_frames(mp4)
        .iter()
        .map(|f| {
            let t: f64 = f["best_effort_timestamp_time"]
                .as_str()
                .or(f["pts_time"].as_str())
                .unwrap()
                .parse()
                .unwrap();
            (t * 1e9).round() as i64
        })
        .collect()
}

fn save(dir: &std::path::Path, name: &str, body: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path
}

#[test]
fn export_mp4_streams_a_live_recording() {
    let samples = samples_with_pts(Fixture::X264HighBf2);
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let addr = server.addr();
    let _producer = produce(
        addr,
        "live",
        &chunks("camera/front", 1, VideoCodec::H264, &samples),
    );

    let whole = http_get(addr, "/api/recordings/live/export.mp4?entity=camera/front");
    assert_eq!(
        whole.status,
        200,
        "{}",
        String::from_utf8_lossy(&whole.body)
    );
    assert!(
        whole.headers.contains("content-type: video/mp4"),
        "{}",
        whole.headers
    );
    assert!(
        whole
            .headers
            .contains("content-disposition: attachment; filename=\"camera_front.mp4\""),
        "{}",
        whole.headers
    );
    let mp4 = save(dir.path(), "whole.mp4", &whole.body);
    let mut expected: Vec<i64> = samples.iter().map(|(_, p)| *p).collect();
    expected.sort_unstable();
    let probed = probed_frame_pts(&mp4);
    assert_eq!(probed.len(), samples.len(), "every frame decodes");
    for (got, want) in probed.iter().zip(&expected) {
        assert!((got - want).abs() < 1_000_000, "pts {got} vs {want}");
    }

    // A range inside a GOP: the frames shown from 1 s to 2 s (inclusive).
    let ranged = http_get(
        addr,
        "/api/recordings/live/export.mp4?entity=camera/front&timeline=video_time&from=1000000000&to=2000000000",
    );
    assert_eq!(
        ranged.status,
        200,
        "{}",
        String::from_utf8_lossy(&ranged.body)
    );
    let mp4 = save(dir.path(), "ranged.mp4", &ranged.body);
    let in_range = expected
        .iter()
        .filter(|&&p| (1_000_000_000..=2_000_000_000).contains(&p))
        .count();
    assert_eq!(probed_frame_pts(&mp4).len(), in_range);
}

#[test]
fn export_mp4_refusals_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let addr = server.addr();
    let small = samples_with_pts(Fixture::X264HighBf0);
    let odd = samples_with_pts(Fixture::X264Odd);
    // 90 frames at 320x240, then 30 at 318x238: a new SPS at sample 90.
    let mut changing = small.clone();
    let end = small.iter().map(|(_, p)| *p).max().unwrap();
    changing.extend(odd.iter().map(|(b, p)| (b.clone(), end + 33_333_333 + p)));
    let mut all = chunks("camera/front", 1, VideoCodec::H264, &changing);
    // An H.265 keyframe without its parameter sets: no MP4 sample entry can be built.
    let idr_alone = vec![0, 0, 0, 1, 0x26, 0x01, 0xAF, 0x12, 0x34];
    let h265_chunks = chunks("camera/h265", 10_000, VideoCodec::H265, &[(idr_alone, 0)]);
    all.extend(h265_chunks);
    let _producer = produce(addr, "rec", &all);

    let get = |query: &str| http_get(addr, &format!("/api/recordings/rec/export.mp4{query}"));
    let refused = |query: &str, status: u16| -> String {
        let answer = get(query);
        assert_eq!(
            answer.status,
            status,
            "{query}: {}",
            String::from_utf8_lossy(&answer.body)
        );
        error_of(&answer)
    };

    let e = error_of(&http_get(
        addr,
        "/api/recordings/nope/export.mp4?entity=camera/front",
    ));
    assert!(e.contains("no recording \"nope\""), "{e}");
    assert!(refused("", 400).contains("?entity="));
    let e = refused("?entity=camera/back", 404);
    assert!(
        e.contains("camera/back") && e.contains("camera/front"),
        "{e}"
    );
    let e = refused("?entity=camera/front&from=1s", 400);
    assert!(
        e.contains("from=\"1s\"") && e.contains("nanoseconds"),
        "{e}"
    );
    let e = refused("?entity=camera/front&timeline=frame", 400);
    assert!(e.contains("sequence"), "{e}");
    let e = refused("?entity=camera/front&timeline=nope", 400);
    assert!(e.contains("nope") && e.contains("video_time"), "{e}");
    let e = refused("?entity=camera/front&from=99000000000", 400);
    assert!(e.contains("after the last frame"), "{e}");
    // The parameter change inside the range.
    let e = refused("?entity=camera/front", 400);
    assert!(e.contains("SPS") && e.contains("sample 90"), "{e}");
    let e = refused("?entity=camera/h265", 400);
    assert!(e.contains("H.265") && e.contains("VPS, SPS or PPS"), "{e}");

    // Either side of the change exports.
    let before = get("?entity=camera/front&to=2950000000");
    assert_eq!(
        before.status,
        200,
        "{}",
        String::from_utf8_lossy(&before.body)
    );
    let mp4 = save(dir.path(), "before.mp4", &before.body);
    assert_eq!(probed_frame_pts(&mp4).len(), 89);
    let after = get(&format!("?entity=camera/front&from={}", end + 33_333_333));
    assert_eq!(
        after.status,
        200,
        "{}",
        String::from_utf8_lossy(&after.body)
    );
    let mp4 = save(dir.path(), "after.mp4", &after.body);
    assert_eq!(probed_frame_pts(&mp4).len(), 30);
}

#[test]
fn a_memory_limit_below_the_recording_evicts_chunks_and_serves_every_sample() {
    let samples = repeated(&samples_with_pts(Fixture::X264HighBf2), 4);
    let sample_bytes: u64 = samples.iter().map(|(b, _)| b.len() as u64).sum();
    // A third of the samples' bytes: well above the last GOP (a live viewer's edge, kept),
    // well below the recording.
    let limit = sample_bytes / 3;
    let dir = tempfile::tempdir().unwrap();
    let server = start_with_limit(dir.path(), limit);
    let addr = server.addr();
    let _producer = produce(
        addr,
        "bounded",
        &chunks("camera/front", 1, VideoCodec::H264, &samples),
    );
    let in_use = server.server().memory_in_use();
    assert!(in_use <= limit, "{in_use} bytes in memory, limit {limit}");
    assert!(in_use > 0, "the live edge stays in memory");

    // The samples API reads every sample back, evicted or not, byte-identical.
    let got = samples_over_http(addr, "bounded", "camera/front");
    assert_eq!(got.len(), samples.len());
    for (n, ((index, bytes), (want, _))) in got.iter().zip(&samples).enumerate() {
        assert_eq!(*index, n as u64);
        assert!(bytes == want, "sample {n} differs");
    }
    let in_use = server.server().memory_in_use();
    assert!(
        in_use <= limit,
        "after reading: {in_use} bytes, limit {limit}"
    );

    // The export holds every frame at its time (ffprobe decodes it).
    let whole = http_get(
        addr,
        "/api/recordings/bounded/export.mp4?entity=camera/front",
    );
    assert_eq!(
        whole.status,
        200,
        "{}",
        String::from_utf8_lossy(&whole.body)
    );
    let mp4 = save(dir.path(), "bounded.mp4", &whole.body);
    let mut expected: Vec<i64> = samples.iter().map(|(_, p)| *p).collect();
    expected.sort_unstable();
    let probed = probed_frame_pts(&mp4);
    assert_eq!(probed.len(), samples.len(), "every frame decodes");
    for (got, want) in probed.iter().zip(&expected) {
        assert!((got - want).abs() < 1_000_000, "pts {got} vs {want}");
    }
    assert!(server.server().memory_in_use() <= limit);

    // The file being written holds every sample too.
    let file = vidlog_store::Recording::open(dir.path().join("bounded.vlog")).unwrap();
    let entity = EntityPath::parse("camera/front").unwrap();
    let stored: Vec<Vec<u8>> = file
        .store
        .video_samples(&entity, 0..samples.len())
        .map(|s| s.unwrap().as_slice().to_vec())
        .collect();
    assert!(stored.iter().zip(&samples).all(|(a, (b, _))| a == b));
    assert_eq!(stored.len(), samples.len());
}

#[test]
fn a_client_leaving_mid_download_does_not_stop_the_server() {
    let samples = repeated(&samples_with_pts(Fixture::X264HighBf2), 8);
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path());
    let addr = server.addr();
    let _producer = produce(
        addr,
        "leaving",
        &chunks("camera/front", 1, VideoCodec::H264, &samples),
    );
    let path = "/api/recordings/leaving/export.mp4?entity=camera/front";
    for _ in 0..3 {
        let mut s = TcpStream::connect(addr).unwrap();
        write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
        let mut first = [0u8; 4096];
        s.read_exact(&mut first).unwrap();
        assert!(
            first.starts_with(b"HTTP/1.1 200"),
            "{:?}",
            String::from_utf8_lossy(&first[..64])
        );
        // Leave without reading the rest (a reset, not a clean close, when data is unread).
        drop(s);
    }
    // A download that stalls while another completes.
    let mut stalled = TcpStream::connect(addr).unwrap();
    write!(stalled, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").unwrap();
    let whole = http_get(addr, path);
    assert_eq!(
        whole.status,
        200,
        "{}",
        String::from_utf8_lossy(&whole.body)
    );
    let mp4 = save(dir.path(), "after_leavers.mp4", &whole.body);
    assert_eq!(
        probed_frame_pts(&mp4).len(),
        samples.len(),
        "every frame decodes"
    );
    drop(stalled);
    let listing = http_get(addr, "/api/recordings");
    assert_eq!(listing.status, 200);
    let overview = server
        .recordings()
        .into_iter()
        .find(|r| r.id == "leaving")
        .unwrap();
    assert_eq!(overview.video_samples, samples.len() as u64);
}
