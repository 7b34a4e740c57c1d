//! Helpers shared by the store's integration tests: real access units from the fixtures,
//! chunk builders, a tiny deterministic PRNG.

#![allow(dead_code)]

use std::path::Path;
use std::sync::Arc;

use vidlog_store::{FileWriter, RecordingInfo};
use vidlog_testdata::{Fixture, fixture};
use vidlog_types::chunk::{build_chunk, chunk_schema};
use vidlog_types::{
    AsComponents, Chunk, ChunkId, ComponentCell, ComponentName, ComponentValue, EntityPath,
    PendingRow, RowId, TimeCell, TimePoint, VideoCodec, VideoStream,
};
use vidlog_video::bitstream::h264::{AccessUnit, split_access_units};

/// 30 fps in nanoseconds.
pub const FRAME_NS: i64 = 33_333_333;

pub fn entity(path: &str) -> EntityPath {
    EntityPath::parse(path).expect("valid entity path")
}

/// All access units of an H.264 fixture, in decode order.
pub fn access_units(f: Fixture) -> Vec<AccessUnit> {
    let bytes = std::fs::read(fixture(f)).expect("fixture is readable");
    split_access_units(&bytes).expect("fixture splits into access units")
}

pub fn info() -> RecordingInfo {
    RecordingInfo {
        application_id: "vidlog-store-tests".into(),
        recording_id: "rec-0001".into(),
        started_unix_nanos: 1_700_000_000_123_456_789,
        writer: "vidlog-store tests".into(),
    }
}

/// A chunk of rows that share timelines and components.
pub fn chunk(id: u64, entity: &EntityPath, rows: &[PendingRow]) -> Chunk {
    let schema = Arc::new(chunk_schema(entity, &rows[0].batch_key()));
    build_chunk(ChunkId(id), entity, schema, rows).expect("rows build a chunk")
}

/// The static `VideoStream::new(codec)` chunk.
pub fn codec_chunk(id: u64, entity: &EntityPath, row_id: u64, codec: VideoCodec) -> Chunk {
    let row = PendingRow {
        row_id: RowId(row_id),
        time: TimePoint::new(),
        cells: VideoStream::new(codec).as_components(),
    };
    chunk(id, entity, &[row])
}

/// A video row on `time` (duration ns) and `frame` (sequence).
pub fn video_row(row_id: u64, time_ns: i64, frame: i64, bytes: &[u8]) -> PendingRow {
    PendingRow {
        row_id: RowId(row_id),
        time: TimePoint::new()
            .with("time", TimeCell::from_duration_nanos(time_ns))
            .with("frame", TimeCell::from_sequence(frame)),
        cells: VideoStream::from_sample(bytes.to_vec()).as_components(),
    }
}

/// A row with loose `I64` components on one sequence timeline (`None` = static).
pub fn scalar_row(
    row_id: u64,
    timeline: &str,
    t: Option<i64>,
    cells: &[(&str, i64)],
) -> PendingRow {
    let mut time = TimePoint::new();
    if let Some(t) = t {
        time.insert(timeline, TimeCell::from_sequence(t));
    }
    PendingRow {
        row_id: RowId(row_id),
        time,
        cells: cells
            .iter()
            .map(|(name, v)| ComponentCell {
                name: ComponentName::new(name),
                value: ComponentValue::I64(*v),
            })
            .collect(),
    }
}

/// Splits `n` items into consecutive runs whose sizes cycle through `sizes`.
pub fn runs(n: usize, sizes: &[usize]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut k = 0;
    while start < n {
        let end = (start + sizes[k % sizes.len()]).min(n);
        out.push(start..end);
        start = end;
        k += 1;
    }
    out
}

/// Video chunks of `aus` with row ids `first_row_id + i` and presentation times `pts[i]`.
pub fn video_chunks(
    entity: &EntityPath,
    aus: &[AccessUnit],
    pts: &[i64],
    first_chunk_id: u64,
    first_row_id: u64,
    sizes: &[usize],
) -> Vec<Chunk> {
    runs(aus.len(), sizes)
        .into_iter()
        .enumerate()
        .map(|(k, r)| {
            let rows: Vec<PendingRow> = r
                .map(|i| video_row(first_row_id + i as u64, pts[i], i as i64, &aus[i].data))
                .collect();
            chunk(first_chunk_id + k as u64, entity, &rows)
        })
        .collect()
}

/// Writes `chunks` to `path` and finishes the file.
pub fn write_recording(path: &Path, chunks: &[Chunk]) {
    let mut w = FileWriter::create(path, &info()).expect("create");
    for c in chunks {
        w.write_chunk(c).expect("write chunk");
    }
    w.finish().expect("finish");
}

/// xorshift64*: deterministic and good enough for test data.
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        XorShift(seed.max(1))
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// Uniform-ish in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo) as u64) as i64
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next_u64() as u8).collect()
    }
    pub fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = self.below(i as u64 + 1) as usize;
            v.swap(i, j);
        }
    }
}
