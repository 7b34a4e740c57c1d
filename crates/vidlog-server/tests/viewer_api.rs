//! The viewer's HTTP endpoints against a real server fed by a producer over WebSocket:
//! the dataframe pages (row count, paging, sizes, keyframe flags, row ids) and the sample
//! records' row ids (the producer's clock the viewer measures live latency with).

use std::net::SocketAddr;

mod common;

use common::{one_row_chunk, wait_for_samples};
use tungstenite::Message;
use vidlog_server::view::SAMPLE_HEADER_LEN;
use vidlog_server::{Server, ServerConfig};
use vidlog_store::codec::{MessageEncoder, RecordingInfo, encode_recording_info};
use vidlog_testdata::Fixture;
use vidlog_types::{EntityPath, TimeCell, TimePoint, VideoCodec, VideoStream};

/// Row ids of the samples: `ROW_BASE + n`, a plausible wall clock in ns.
const ROW_BASE: u64 = 1_763_000_000_000_000_000;

/// Sends a recording `id` with the access units on `cam`, one sample per chunk, frame n at
/// `time` = n * 40 ms and row id `ROW_BASE + n`.
fn produce(addr: SocketAddr, id: &str, units: &[(Vec<u8>, bool)]) {
    let (mut ws, _) = tungstenite::connect(format!("ws://{addr}/ws/ingest")).unwrap();
    ws.send(Message::text(
        r#"{"protocol":"vidlog","version":1,"role":"producer"}"#,
    ))
    .unwrap();
    let _ok = ws.read().unwrap();
    let info = RecordingInfo {
        application_id: "viewer_api_test".into(),
        recording_id: id.into(),
        started_unix_nanos: 1,
        writer: "test".into(),
    };
    let send = |ws: &mut tungstenite::WebSocket<_>, m: &vidlog_store::codec::EncodedMessage| {
        let mut v = Vec::new();
        m.frame().write_to(&mut v).unwrap();
        ws.send(Message::binary(v)).unwrap();
    };
    send(&mut ws, &encode_recording_info(&info));
    let entity = EntityPath::parse("cam").unwrap();
    let mut encoder = MessageEncoder::new();
    let mut chunks = vec![one_row_chunk(
        1,
        1,
        &entity,
        TimePoint::new(),
        VideoStream::new(VideoCodec::H264),
    )];
    for (n, (data, _)) in units.iter().enumerate() {
        let n = n as u64;
        chunks.push(one_row_chunk(
            2 + n,
            ROW_BASE + n,
            &entity,
            TimePoint::new().with("time", TimeCell::from_duration_nanos(n as i64 * 40_000_000)),
            VideoStream::from_sample(data.clone()),
        ));
    }
    for chunk in &chunks {
        for m in encoder.encode_chunk(chunk).unwrap() {
            send(&mut ws, &m);
        }
    }
    ws.close(None).unwrap();
    while ws.read().is_ok() {}
}

/// `GET` in HTTP/1.1; the answer must not be chunked (the endpoints send their length).
fn http_get(addr: SocketAddr, path: &str) -> (u16, Vec<u8>) {
    let answer = common::http_get(addr, path);
    assert!(
        !answer.headers.contains("transfer-encoding: chunked"),
        "{}",
        answer.headers
    );
    (answer.status, answer.body)
}

fn get_json(addr: SocketAddr, path: &str) -> (u16, serde_json::Value) {
    let (status, body) = http_get(addr, path);
    (status, serde_json::from_slice(&body).unwrap())
}

#[test]
fn dataframe_pages_and_sample_row_ids() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(ServerConfig {
        port: 0,
        data_dir: dir.path().to_path_buf(),
        ..ServerConfig::default()
    })
    .unwrap();
    let addr = server.addr();
    let units = common::access_units(Fixture::X264HighBf0);
    assert!(
        units.len() > 20,
        "the fixture has {} access units",
        units.len()
    );
    produce(addr, "df", &units);
    wait_for_samples(&server, "df", units.len() as u64);

    // The whole table, page by page: every row once, sizes and keyframe flags as sent.
    let mut seen = 0;
    while seen < units.len() {
        let (status, page) = get_json(
            addr,
            &format!("/api/recordings/df/dataframe?entity=cam&offset={seen}&limit=7"),
        );
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["total"], units.len());
        assert_eq!(page["offset"], seen);
        let names: Vec<&str> = page["columns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            ["index", "time", "size", "keyframe", "codec", "row_id"]
        );
        let rows = page["rows"].as_array().unwrap();
        assert_eq!(rows.len(), 7.min(units.len() - seen));
        for row in rows {
            let i = row[0].as_u64().unwrap() as usize;
            assert_eq!(i, seen, "rows in decode order");
            assert_eq!(row[1], i as i64 * 40_000_000);
            assert_eq!(row[2], units[i].0.len());
            assert_eq!(row[3], units[i].1, "keyframe flag of row {i}");
            assert_eq!(row[4], "H.264");
            assert_eq!(row[5], (ROW_BASE + i as u64).to_string());
            seen += 1;
        }
    }
    // Past the end, a bad limit, an unknown timeline: refused with a reason.
    let (status, body) = get_json(
        addr,
        &format!(
            "/api/recordings/df/dataframe?entity=cam&offset={}",
            units.len() + 1
        ),
    );
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("past the end"),
        "{body}"
    );
    let (status, body) = get_json(addr, "/api/recordings/df/dataframe?entity=cam&limit=0");
    assert_eq!(status, 400);
    assert!(
        body["error"].as_str().unwrap().contains("rows per page"),
        "{body}"
    );
    let (status, _) = get_json(
        addr,
        "/api/recordings/df/dataframe?entity=cam&timeline=nope",
    );
    assert_eq!(status, 400);
    let (status, _) = get_json(addr, "/api/recordings/df/dataframe?entity=nobody");
    assert_eq!(status, 404);

    // Sample records carry the row id after the index.
    let (status, body) = http_get(
        addr,
        "/api/recordings/df/video/samples?entity=cam&from=3&to=5",
    );
    assert_eq!(status, 200);
    let len = u32::from_le_bytes(body[0..4].try_into().unwrap()) as usize;
    assert_eq!(len, units[3].0.len());
    assert_eq!(u64::from_le_bytes(body[16..24].try_into().unwrap()), 3);
    assert_eq!(
        u64::from_le_bytes(body[24..32].try_into().unwrap()),
        ROW_BASE + 3
    );
    let next = SAMPLE_HEADER_LEN + len;
    assert_eq!(
        u64::from_le_bytes(body[next + 24..next + 32].try_into().unwrap()),
        ROW_BASE + 4
    );
    assert_eq!(body.len(), next + SAMPLE_HEADER_LEN + units[4].0.len());
    server.shutdown();
}
