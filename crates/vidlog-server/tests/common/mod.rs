//! Helpers the server's integration tests share: a fixture's access units, one-row chunks,
//! a plain HTTP GET over a TCP socket, and waiting until the server has stored a number of
//! samples of a recording.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vidlog_server::RunningServer;
use vidlog_testdata::{Fixture, fixture};
use vidlog_types::chunk::{build_chunk, chunk_schema};
use vidlog_types::{
    AsComponents, Chunk, ChunkId, EntityPath, PendingRow, RowId, TimePoint, VideoStream,
};
use vidlog_video::bitstream::h264::split_access_units;

/// The access units of an H.264 fixture (decode order) with their keyframe flags.
pub fn access_units(which: Fixture) -> Vec<(Vec<u8>, bool)> {
    let bytes = std::fs::read(fixture(which)).expect("fixture reads");
    split_access_units(&bytes)
        .expect("fixture splits")
        .into_iter()
        .map(|au| (au.data, au.is_keyframe))
        .collect()
}

/// A chunk holding one row of `what` on `entity` at `time`.
pub fn one_row_chunk(
    chunk_id: u64,
    row_id: u64,
    entity: &EntityPath,
    time: TimePoint,
    what: VideoStream,
) -> Arc<Chunk> {
    let row = PendingRow {
        row_id: RowId(row_id),
        time,
        cells: what.as_components(),
    };
    let schema = Arc::new(chunk_schema(entity, &row.batch_key()));
    Arc::new(build_chunk(ChunkId(chunk_id), entity, schema, &[row]).expect("chunk"))
}

/// An HTTP response read whole.
pub struct HttpAnswer {
    pub status: u16,
    /// The status line and headers, lowercased.
    pub headers: String,
    pub body: Vec<u8>,
}

impl HttpAnswer {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
}

/// `GET path` with `Connection: close`, in HTTP `version` (`1.0` asks for a body that is not
/// chunked, whatever the response's length).
pub fn http_get_version(addr: SocketAddr, path: &str, version: &str) -> HttpAnswer {
    let mut s = TcpStream::connect(addr).expect("connects");
    write!(
        s,
        "GET {path} HTTP/{version}\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("sends");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("reads");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a header block");
    let headers = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status = headers[9..12].parse().expect("a status code");
    HttpAnswer {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

/// `GET path` in HTTP/1.1.
pub fn http_get(addr: SocketAddr, path: &str) -> HttpAnswer {
    http_get_version(addr, path, "1.1")
}

/// Video samples the server has stored for recording `id`.
pub fn stored_samples(server: &RunningServer, id: &str) -> u64 {
    server
        .recordings()
        .into_iter()
        .find(|r| r.id == id)
        .map_or(0, |r| r.video_samples)
}

/// Waits (20 s at most) until recording `id` has `n` video samples stored.
pub fn wait_for_samples(server: &RunningServer, id: &str, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let have = stored_samples(server, id);
        if have >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{id}: {have} of {n} samples stored"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}
