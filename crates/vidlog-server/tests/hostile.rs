//! Hostile producers over raw WebSocket (tungstenite): every kind of bad input gets a
//! clear `{"error": ...}` and a close, the server stays up, and a well-behaved producer
//! streaming at the same time loses nothing. Also the HTTP JSON API.

use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

mod common;

use common::{stored_samples, wait_for_samples};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};
use vidlog_server::{RunningServer, Server, ServerConfig};
use vidlog_store::codec::{EncodedMessage, MessageEncoder, RecordingInfo, encode_recording_info};
use vidlog_store::frame::{FrameHeader, MessageKind};
use vidlog_testdata::Fixture;
use vidlog_types::arrow_array::Array;
use vidlog_types::{Chunk, EntityPath, TimeCell, TimePoint, VideoCodec, VideoStream};

type Ws = WebSocket<MaybeTlsStream<TcpStream>>;

fn h264_samples() -> Vec<Vec<u8>> {
    common::access_units(Fixture::X264HighBf0)
        .into_iter()
        .map(|(au, _)| au)
        .collect()
}

fn get_json(addr: SocketAddr, path: &str) -> (u16, serde_json::Value) {
    let answer = common::http_get(addr, path);
    (answer.status, answer.json())
}

fn start(dir: &std::path::Path, max_message_size: usize) -> RunningServer {
    Server::start(ServerConfig {
        port: 0,
        data_dir: dir.to_path_buf(),
        max_message_size,
        ..ServerConfig::default()
    })
    .unwrap()
}

fn info(id: &str) -> RecordingInfo {
    RecordingInfo {
        application_id: "hostile_test".into(),
        recording_id: id.into(),
        started_unix_nanos: 1,
        writer: "test".into(),
    }
}

/// `frames` of one sample each, after a static codec chunk; chunk ids from `first_id`.
fn chunks(entity: &str, samples: &[Vec<u8>], first_id: u64) -> Vec<Arc<Chunk>> {
    let entity = EntityPath::parse(entity).unwrap();
    let one = |id: u64, time: TimePoint, what: VideoStream| {
        common::one_row_chunk(id, id, &entity, time, what)
    };
    let mut out = vec![one(
        first_id,
        TimePoint::new(),
        VideoStream::new(VideoCodec::H264),
    )];
    for (n, s) in samples.iter().enumerate() {
        let id = first_id + 1 + n as u64;
        out.push(one(
            id,
            TimePoint::new().with("frame", TimeCell::from_sequence(n as i64)),
            VideoStream::from_sample(s.clone()),
        ));
    }
    out
}

fn frame_bytes(message: &EncodedMessage) -> Vec<u8> {
    let mut v = Vec::new();
    message.frame().write_to(&mut v).unwrap();
    v
}

fn connect(addr: SocketAddr) -> Ws {
    let (ws, _) = tungstenite::connect(format!("ws://{addr}/ws/ingest")).unwrap();
    if let MaybeTlsStream::Plain(s) = ws.get_ref() {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    }
    ws
}

fn hello(ws: &mut Ws, version: u32) -> String {
    ws.send(Message::text(format!(
        r#"{{"protocol":"vidlog","version":{version},"role":"producer"}}"#
    )))
    .unwrap();
    read_text(ws)
}

fn read_text(ws: &mut Ws) -> String {
    loop {
        match ws.read().unwrap() {
            Message::Text(t) => return t.to_string(),
            Message::Close(f) => return format!("closed: {f:?}"),
            _ => {}
        }
    }
}

/// Reads until the server's error and close; returns the error text.
fn expect_refusal(ws: &mut Ws) -> String {
    let mut error = None;
    let mut seen = Vec::new();
    loop {
        match ws.read() {
            Ok(Message::Text(t)) if t.contains("\"error\"") => error = Some(t.to_string()),
            Ok(Message::Text(_)) => {} // acks of earlier chunks
            Ok(other) => seen.push(format!("{other:?}")),
            Err(e) => {
                seen.push(e.to_string());
                break;
            }
        }
    }
    error.unwrap_or_else(|| panic!("no error message before the close: {seen:?}"))
}

/// A producer that has said hello and sent its recording info and `n` good chunks.
fn producer(addr: SocketAddr, id: &str, good: &[Arc<Chunk>]) -> (Ws, MessageEncoder) {
    let mut ws = connect(addr);
    assert!(hello(&mut ws, 1).contains("\"ok\":true"));
    ws.send(Message::binary(frame_bytes(&encode_recording_info(&info(
        id,
    )))))
    .unwrap();
    let mut encoder = MessageEncoder::new();
    for chunk in good {
        for m in encoder.encode_chunk(chunk).unwrap() {
            ws.send(Message::binary(frame_bytes(&m))).unwrap();
        }
    }
    (ws, encoder)
}

#[test]
fn hostile_inputs_are_refused_and_others_keep_streaming() {
    let aus = h264_samples();
    let dir = tempfile::tempdir().unwrap();
    let server = start(dir.path(), 1 << 20);
    let addr = server.addr();

    // The well-behaved producer sends half its samples now and half after the attacks.
    let good = chunks("camera/front", &aus, 1000);
    let half = good.len() / 2;
    let (mut steady, mut steady_encoder) = producer(addr, "steady", &good[..half]);

    let sample_chunks = chunks("cam", &aus[..3], 1);
    let mut encoder = MessageEncoder::new();
    let mut chunk_frames = Vec::new();
    for c in &sample_chunks {
        for m in encoder.encode_chunk(c).unwrap() {
            chunk_frames.push((m.kind, frame_bytes(&m)));
        }
    }
    let last_chunk = chunk_frames.last().unwrap().1.clone();

    let mut cases: Vec<(&str, Vec<u8>, &str)> = Vec::new();
    cases.push((
        "garbage",
        b"this is not a vidlog frame at all".to_vec(),
        "no frame marker",
    ));
    cases.push(("tiny", vec![1, 2, 3], "shorter than a frame header"));
    cases.push((
        "truncated",
        last_chunk[..last_chunk.len() - 100].to_vec(),
        "the message carries",
    ));
    let mut bad_crc = last_chunk.clone();
    let at = bad_crc.len() - 1;
    bad_crc[at] ^= 0x5a;
    cases.push(("bad crc", bad_crc, "checksum"));
    let mut huge = last_chunk.clone();
    huge[4..8].copy_from_slice(&(1u32 << 30).to_le_bytes());
    cases.push(("1 GB length", huge, "the limit is"));
    // A valid frame whose payload is not Arrow IPC.
    let junk = vec![0xabu8; 200];
    let mut junk_frame = FrameHeader::new(MessageKind::Chunk, 200, crc32c::crc32c(&junk))
        .to_bytes()
        .to_vec();
    junk_frame.extend_from_slice(&junk);
    cases.push(("junk ipc", junk_frame, "chunk"));
    // A chunk whose schema id was never sent on this connection.
    let mut unknown = last_chunk.clone();
    unknown[24..28].copy_from_slice(&99u32.to_le_bytes());
    let crc = crc32c::crc32c(&unknown[16..]);
    unknown[12..16].copy_from_slice(&crc.to_le_bytes());
    cases.push(("unknown schema", unknown, "was not sent before it"));
    let footer = {
        let mut v = FrameHeader::new(MessageKind::Footer, 4, crc32c::crc32c(&[0; 4]))
            .to_bytes()
            .to_vec();
        v.extend_from_slice(&[0; 4]);
        v
    };
    cases.push(("footer", footer, "footers are not sent"));

    for (i, (name, bad, expected)) in cases.iter().enumerate() {
        let id = format!("hostile{i}");
        let (mut ws, _) = producer(addr, &id, &sample_chunks);
        ws.send(Message::binary(bad.clone())).unwrap();
        let error = expect_refusal(&mut ws);
        assert!(
            error.contains(expected),
            "{name}: expected {expected:?} in {error}"
        );
        // Everything well-formed before the bad message was stored.
        wait_for_samples(&server, &id, 3);
    }

    // Text spam after the hello.
    let (mut ws, _) = producer(addr, "spam", &[]);
    for _ in 0..100 {
        if ws.send(Message::text("spam spam spam")).is_err() {
            break;
        }
    }
    assert!(expect_refusal(&mut ws).contains("text message after the hello"));

    // Binary before the hello, and a wrong version.
    let mut ws = connect(addr);
    ws.send(Message::binary(last_chunk.clone())).unwrap();
    assert!(expect_refusal(&mut ws).contains("text hello"));
    let mut ws = connect(addr);
    let reply = hello(&mut ws, 2);
    assert!(
        reply.contains("version 1") && reply.contains("version 2"),
        "{reply}"
    );
    // Chunks before the recording info.
    let mut ws = connect(addr);
    assert!(hello(&mut ws, 1).contains("ok"));
    ws.send(Message::binary(chunk_frames[0].1.clone())).unwrap();
    assert!(expect_refusal(&mut ws).contains("before the RecordingInfo"));
    // A recording id that cannot name a file.
    let mut ws = connect(addr);
    assert!(hello(&mut ws, 1).contains("ok"));
    ws.send(Message::binary(frame_bytes(&encode_recording_info(&info(
        "../escape",
    )))))
    .unwrap();
    assert!(expect_refusal(&mut ws).contains("cannot name a file"));
    // A message above the size limit is cut off by the WebSocket layer.
    let mut ws = connect(addr);
    assert!(hello(&mut ws, 1).contains("ok"));
    let _ = ws.send(Message::binary(vec![0u8; 2 << 20]));
    let mut ended = false;
    for _ in 0..100 {
        match ws.read() {
            Ok(Message::Close(_)) | Err(_) => {
                ended = true;
                break;
            }
            Ok(_) => {}
        }
    }
    assert!(ended, "an oversized message ends the connection");

    // The steady producer is unaffected: the rest of its chunks go through.
    for chunk in &good[half..] {
        for m in steady_encoder.encode_chunk(chunk).unwrap() {
            steady.send(Message::binary(frame_bytes(&m))).unwrap();
        }
    }
    wait_for_samples(&server, "steady", aus.len() as u64);
    let mut subscription = server.subscribe("steady");
    let mut received = Vec::new();
    while received.len() < aus.len() {
        let chunk = subscription.recv_timeout(Duration::from_secs(10)).unwrap();
        if let Some(samples) = chunk.blobs(VideoStream::SAMPLE) {
            received.extend((0..samples.len()).map(|i| samples.value(i).to_vec()));
        }
    }
    assert_eq!(received, aus, "steady producer's samples, in order");
    steady.close(None).unwrap();

    // The HTTP API.
    let (status, list) = get_json(addr, "/api/recordings");
    assert_eq!(status, 200);
    let steady_entry = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "steady")
        .expect("steady listed");
    assert_eq!(steady_entry["application_id"], "hostile_test");
    assert_eq!(steady_entry["video_samples"], aus.len() as u64);
    let (status, details) = get_json(addr, "/api/recordings/steady");
    assert_eq!(status, 200);
    let entity = &details["entity_details"][0];
    assert_eq!(entity["path"], "camera/front");
    assert_eq!(entity["video"]["samples"], aus.len() as u64);
    assert_eq!(entity["video"]["codec"], "H.264");
    assert_eq!(entity["video"]["keyframes"][0], 0);
    assert_eq!(details["timelines"][0]["name"], "frame");
    assert_eq!(details["timelines"][0]["max"], aus.len() as i64 - 1);
    let (status, _) = get_json(addr, "/api/recordings/nope");
    assert_eq!(status, 404);

    // Files are finished on shutdown and hold what was stored.
    server.shutdown();
    let recording = vidlog_store::Recording::open(dir.path().join("steady.vlog")).unwrap();
    assert!(recording.recovery().is_none());
    let entity = EntityPath::parse("camera/front").unwrap();
    assert_eq!(recording.store.video(&entity).unwrap().len(), aus.len());
    for (n, au) in aus.iter().enumerate() {
        let sample = recording.store.video_sample(&entity, n).unwrap();
        assert_eq!(sample.as_slice(), au.as_slice(), "sample {n}");
    }
}

#[test]
fn memory_limit_drops_chunks_from_memory_not_from_disk() {
    let aus = h264_samples();
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(ServerConfig {
        port: 0,
        data_dir: dir.path().to_path_buf(),
        memory_limit: 100_000,
        ..ServerConfig::default()
    })
    .unwrap();
    let all = chunks("cam", &aus, 1);
    for id in ["first", "second"] {
        let (mut ws, _) = producer(server.addr(), id, &all);
        wait_for_samples(&server, id, aus.len() as u64);
        ws.close(None).unwrap();
        // The limit holds (a chunk may pass it until its recording is dropped from memory).
        let biggest = aus.iter().map(|a| a.len()).max().unwrap() as u64 + 1024;
        let in_use = server.server().memory_in_use();
        assert!(in_use <= 100_000 + biggest, "{in_use} bytes in memory");
    }
    // Both recordings are still complete, from memory or from their files.
    for id in ["first", "second"] {
        assert_eq!(stored_samples(&server, id), aus.len() as u64);
        let mut subscription = server.subscribe(id);
        let mut received = Vec::new();
        while received.len() < aus.len() {
            let chunk = subscription.recv_timeout(Duration::from_secs(10)).unwrap();
            if let Some(samples) = chunk.blobs(VideoStream::SAMPLE) {
                received.extend((0..samples.len()).map(|i| samples.value(i).to_vec()));
            }
        }
        assert_eq!(received, aus, "{id}");
    }
}
