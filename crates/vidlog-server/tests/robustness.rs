//! Server robustness: a chunk naming another schema of its connection is refused with a
//! reason; memory stays under the limit and a late follower of an evicted recording gets
//! its backlog from the index (not a replay of the file); a viewer that never reads does
//! not hold up producers or other viewers, and the server skips for it instead of queueing;
//! a subscription to a recording opened from a file replays that file's chunks even when a
//! producer resumes the recording (a new store) before the backlog is read.

use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

mod common;

use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};
use vidlog_server::{RecvError, Server, ServerConfig};
use vidlog_store::codec::{EncodedMessage, MessageEncoder, RecordingInfo, encode_recording_info};
use vidlog_store::frame::{FrameHeader, MessageKind};
use vidlog_testdata::Fixture;
use vidlog_types::{Chunk, EntityPath, TimeCell, TimePoint, VideoCodec, VideoStream};

type Ws = WebSocket<MaybeTlsStream<TcpStream>>;

fn h264_samples() -> Vec<Vec<u8>> {
    common::access_units(Fixture::X264HighBf0)
        .into_iter()
        .map(|(au, _)| au)
        .collect()
}

/// One chunk of one row.
fn chunk(entity: &str, id: u64, time: TimePoint, what: VideoStream) -> Arc<Chunk> {
    common::one_row_chunk(id, id, &EntityPath::parse(entity).unwrap(), time, what)
}

fn at(n: usize) -> TimePoint {
    TimePoint::new().with(
        "video_time",
        TimeCell::from_duration_nanos(n as i64 * 33_333_333),
    )
}

/// The codec chunk (id `first_id`) then one chunk per sample.
fn stream(entity: &str, samples: &[Vec<u8>], first_id: u64) -> Vec<Arc<Chunk>> {
    let mut out = vec![chunk(
        entity,
        first_id,
        TimePoint::new(),
        VideoStream::new(VideoCodec::H264),
    )];
    for (n, s) in samples.iter().enumerate() {
        out.push(chunk(
            entity,
            first_id + 1 + n as u64,
            at(n),
            VideoStream::from_sample(s.clone()),
        ));
    }
    out
}

fn framed(kind: MessageKind, payload: &[u8]) -> Message {
    let mut v = FrameHeader::new(kind, payload.len() as u32, crc32c::crc32c(payload))
        .to_bytes()
        .to_vec();
    v.extend_from_slice(payload);
    Message::binary(v)
}

fn payload(m: &EncodedMessage) -> Vec<u8> {
    let mut v = m.head.clone();
    for b in &m.body {
        v.extend_from_slice(b);
    }
    v
}

/// A producer past the hello and recording info.
fn producer(addr: SocketAddr, id: &str) -> Ws {
    let (mut ws, _) = tungstenite::connect(format!("ws://{addr}/ws/ingest")).unwrap();
    if let MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    }
    ws.send(Message::text(
        r#"{"protocol":"vidlog","version":1,"role":"producer"}"#,
    ))
    .unwrap();
    let info = RecordingInfo {
        application_id: "robustness_test".into(),
        recording_id: id.into(),
        started_unix_nanos: 1,
        writer: "test".into(),
    };
    let m = encode_recording_info(&info);
    ws.send(framed(m.kind, &payload(&m))).unwrap();
    ws
}

fn send(ws: &mut Ws, encoder: &mut MessageEncoder, chunk: &Chunk) {
    for m in encoder.encode_chunk(chunk).unwrap() {
        ws.send(framed(m.kind, &payload(&m))).unwrap();
    }
}

/// Reads text messages until `stored` acks arrived (errors fail the test).
fn wait_acks(ws: &mut Ws, stored: u64) {
    let mut acked = 0;
    while acked < stored {
        if let Message::Text(t) = ws.read().unwrap() {
            let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
            assert!(v.get("error").is_none(), "{t}");
            acked = v["stored"].as_u64().unwrap_or(acked);
        }
    }
}

/// Reads until the server's error; returns it.
fn refusal(ws: &mut Ws) -> String {
    loop {
        match ws.read() {
            Ok(Message::Text(t)) if t.contains("\"error\"") => return t.to_string(),
            Ok(_) => {}
            Err(e) => panic!("closed without an error message: {e}"),
        }
    }
}

fn start(dir: &std::path::Path, memory_limit: u64) -> vidlog_server::RunningServer {
    Server::start(ServerConfig {
        port: 0,
        data_dir: dir.to_path_buf(),
        memory_limit,
        ..ServerConfig::default()
    })
    .unwrap()
}

#[test]
fn a_chunk_naming_another_schema_is_refused() {
    let aus = h264_samples();
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), 1 << 30);
    let mut ws = producer(server.addr(), "mixed");
    let mut encoder = MessageEncoder::new();
    // Schema 0: camera/a's codec; schema 1: camera/a's samples (one timeline).
    for c in stream("camera/a", &aus[..1], 1) {
        send(&mut ws, &mut encoder, &c);
    }
    wait_acks(&mut ws, 2);
    // camera/b's sample with two timelines, sent naming camera/a's sample schema (1).
    let b = chunk(
        "camera/b",
        100,
        at(0).with("frame", TimeCell::from_sequence(0)),
        VideoStream::from_sample(aus[0].clone()),
    );
    let messages = MessageEncoder::new().encode_chunk(&b).unwrap();
    let mut lying = payload(messages.last().unwrap());
    lying[8..12].copy_from_slice(&1u32.to_le_bytes());
    ws.send(framed(MessageKind::Chunk, &lying)).unwrap();
    let error = refusal(&mut ws);
    assert!(
        error.contains("message 5")
            && error.contains("chunk 0x64 names schema 1")
            && error.contains("camera/a")
            && error.contains("the schema it was encoded with"),
        "{error}"
    );
    // Nothing of camera/b was stored as camera/a.
    let overview = server
        .recordings()
        .into_iter()
        .find(|r| r.id == "mixed")
        .unwrap();
    assert_eq!(overview.video_samples, 1);
    assert_eq!(overview.entities, vec!["camera/a".to_owned()]);
}

#[test]
fn memory_stays_bounded_and_late_followers_start_from_the_index() {
    let aus = h264_samples();
    let dir = tempfile::tempdir().unwrap();
    // Far below one GOP: the recording's chunk bytes are dropped from memory as they come.
    let limit = 64 << 10;
    let server = start(dir.path(), limit);
    let mut ws = producer(server.addr(), "evicted");
    let mut encoder = MessageEncoder::new();
    let chunks = stream("camera/front", &aus, 1);
    for c in &chunks {
        send(&mut ws, &mut encoder, c);
    }
    wait_acks(&mut ws, chunks.len() as u64);
    assert!(
        server.server().memory_in_use() <= limit,
        "{} bytes in memory, limit {limit}",
        server.server().memory_in_use()
    );

    // A follower from the last keyframe (sample 60, GOP 30) gets the codec chunk and the
    // 30 sample chunks from there, read back from the file, and nothing before.
    let entity = EntityPath::parse("camera/front").unwrap();
    let mut follower = server.server().subscribe_video("evicted", &entity, 60);
    let codec = follower.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(codec.is_static());
    for n in 60..90 {
        let c = follower.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(c.id().0, chunks[1 + n].id().0, "sample {n}");
        let bytes = c.blobs(VideoStream::SAMPLE).unwrap();
        assert_eq!(bytes.value(0), aus[n].as_slice(), "sample {n} bytes");
    }
    assert_eq!(
        follower.recv_timeout(Duration::from_millis(100)).err(),
        Some(RecvError::Timeout),
        "nothing more in the backlog"
    );
    assert_eq!(follower.skipped_chunks(), 0);
}

/// Samples of about `size` bytes: the fixture's access units padded with a filler NAL unit
/// (type 12), so keyframes stay keyframes.
fn padded(aus: &[Vec<u8>], size: usize, count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|n| {
            let mut s = aus[n % aus.len()].clone();
            s.extend_from_slice(&[0, 0, 0, 1, 0x0c]);
            s.resize(size.max(s.len() + 1) - 1, 0xff);
            s.push(0x80);
            s
        })
        .collect()
}

fn viewer(addr: SocketAddr, recording: &str) -> Ws {
    let (ws, _) = tungstenite::connect(format!(
        "ws://{addr}/ws/view?recording={recording}&entity=camera/front"
    ))
    .unwrap();
    ws
}

/// `(index, is_keyframe)` of a viewer's sample message.
fn sample_of(message: &[u8]) -> (u64, bool) {
    let index = u64::from_le_bytes(message[16..24].try_into().unwrap());
    (index, message[4] == 1)
}

#[test]
fn a_stalled_viewer_holds_up_nobody_and_is_skipped_to_keyframes() {
    const SAMPLES: usize = 1500;
    const SIZE: usize = 64 << 10;
    let samples = padded(&h264_samples(), SIZE, SAMPLES);
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), 1 << 30);
    let addr = server.addr();
    let mut ws = producer(addr, "busy");
    let mut encoder = MessageEncoder::new();
    let chunks = stream("camera/front", &samples, 1);
    // The codec and the first GOP exist before the viewers join (they start at sample 0).
    for c in &chunks[..31] {
        send(&mut ws, &mut encoder, c);
    }
    wait_acks(&mut ws, 31);

    let stalled = viewer(addr, "busy");
    // A viewer that reads everything, counting what it got.
    let received = Arc::new(AtomicUsize::new(0));
    let reader = {
        let received = received.clone();
        let mut ws = viewer(addr, "busy");
        std::thread::spawn(move || {
            let mut indexes = Vec::new();
            while indexes.len() < SAMPLES {
                match ws.read() {
                    Ok(Message::Binary(b)) => {
                        indexes.push(sample_of(&b).0);
                        received.fetch_add(1, Ordering::Release);
                    }
                    Ok(_) => {}
                    Err(e) => panic!("reading viewer: {e} after {} samples", indexes.len()),
                }
            }
            indexes
        })
    };
    // The rest, one GOP at a time, each once the reading viewer has the previous one (so it
    // never falls behind, whatever the machine's load).
    let mut sent = 31;
    while sent < chunks.len() {
        let end = (sent + 30).min(chunks.len());
        for c in &chunks[sent..end] {
            send(&mut ws, &mut encoder, c);
        }
        sent = end;
        wait_acks(&mut ws, sent as u64);
        while received.load(Ordering::Acquire) < sent - 1 {
            std::thread::yield_now();
        }
    }
    let indexes = reader.join().unwrap();
    assert_eq!(
        indexes,
        (0..SAMPLES as u64).collect::<Vec<_>>(),
        "the reading viewer got every sample in order"
    );
    let overview = server
        .recordings()
        .into_iter()
        .find(|r| r.id == "busy")
        .unwrap();
    assert_eq!(
        overview.video_samples, SAMPLES as u64,
        "the producer lost nothing"
    );

    // Now the stalled viewer reads what the server kept for it, until the shutdown closes it.
    let drain = std::thread::spawn(move || {
        let mut stalled = stalled;
        let mut got: Vec<(u64, bool)> = Vec::new();
        while let Ok(message) = stalled.read() {
            if let Message::Binary(b) = message {
                got.push(sample_of(&b));
            }
        }
        got
    });
    server.shutdown();
    let got = drain.join().unwrap();
    eprintln!(
        "stalled viewer: {} of {SAMPLES} samples delivered",
        got.len()
    );
    // Bounded: at most the subscriber queue (256 chunks) plus what the sockets' buffers held,
    // far less than the 96 MiB streamed.
    assert!(
        got.len() < SAMPLES / 2,
        "the stalled viewer was sent {} of {SAMPLES} samples: queued, not skipped",
        got.len()
    );
    // Whatever it got resumes on keyframes: every gap ends at a keyframe.
    for pair in got.windows(2) {
        let ((a, _), (b, key)) = (pair[0], pair[1]);
        assert!(b > a, "in order: {a} then {b}");
        assert!(
            b == a + 1 || key,
            "after {a} it resumed at {b}, not a keyframe"
        );
    }
    assert_eq!(got.first().map(|s| s.0), Some(0));
}

#[test]
fn a_backlog_survives_a_producer_resuming_a_file_opened_recording() {
    let aus = h264_samples();
    let dir = tempfile::tempdir().unwrap();
    let old_dir = tempfile::tempdir().unwrap();
    let old_path = old_dir.path().join("resumed.vlog");
    let old_chunks = stream("camera/front", &aus[..30], 1);
    {
        let info = RecordingInfo {
            application_id: "robustness_test".into(),
            recording_id: "resumed".into(),
            started_unix_nanos: 1,
            writer: "test".into(),
        };
        let mut writer = vidlog_store::FileWriter::create(&old_path, &info).unwrap();
        for c in &old_chunks {
            writer.write_chunk(c).unwrap();
        }
        writer.finish().unwrap();
    }
    let server = start(dir.path(), 1 << 30);
    assert_eq!(server.open_file(&old_path).unwrap(), "resumed");
    // Subscribed to the file's 31 chunks, not read yet.
    let mut follower = server.subscribe("resumed");

    // A producer resumes the recording: its store restarts for the new segment.
    let mut ws = producer(server.addr(), "resumed");
    let mut encoder = MessageEncoder::new();
    let new_chunks = stream("camera/front", &aus[30..60], 1000);
    for c in &new_chunks {
        send(&mut ws, &mut encoder, c);
    }
    wait_acks(&mut ws, new_chunks.len() as u64);

    // The backlog is the file's chunks, then come the producer's.
    for want in old_chunks.iter().chain(&new_chunks) {
        let got = follower.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(got.id(), want.id());
        assert_eq!(got.batch(), want.batch(), "chunk {:?}", want.id());
    }
    assert_eq!(follower.skipped_chunks(), 0);
}
