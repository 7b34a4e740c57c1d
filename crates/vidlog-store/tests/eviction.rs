//! Per-chunk eviction: a store indexing a file that is still being written drops chunk
//! bytes, keeps every index, and loads the chunks back byte-identical on demand.

mod common;

use std::sync::Arc;

use common::*;
use vidlog_store::{ChunkStore, FileWriter, MemoryMeter};
use vidlog_testdata::Fixture;
use vidlog_types::{Chunk, EntityPath, VideoCodec};

/// Chunks of a video entity (codec first, chunks of 7 and 5 samples) and a scalar entity
/// whose second half uses a new component (a schema first written after an eviction).
fn recording_chunks() -> (EntityPath, EntityPath, Vec<Chunk>, Vec<Chunk>) {
    let cam = entity("/cam");
    let scalars = entity("/scalars");
    let aus = access_units(Fixture::X264HighBf0);
    let pts: Vec<i64> = (0..aus.len() as i64).map(|i| i * FRAME_NS).collect();
    let mut first = vec![codec_chunk(1, &cam, 1, VideoCodec::H264)];
    let mut second = Vec::new();
    let video = video_chunks(&cam, &aus, &pts, 100, 1000, &[7, 5]);
    let half = video.len() / 2;
    for (i, c) in video.into_iter().enumerate() {
        let t = i as i64;
        let later = i >= half;
        let component = if later { "late" } else { "early" };
        let scalar = chunk(
            500 + i as u64,
            &scalars,
            &[scalar_row(
                5000 + i as u64,
                "frame",
                Some(t),
                &[(component, t * 3)],
            )],
        );
        let out = if later { &mut second } else { &mut first };
        out.push(c);
        out.push(scalar);
    }
    (cam, scalars, first, second)
}

/// Everything the queries answer, in a comparable form.
fn answers(store: &ChunkStore, cam: &EntityPath, scalars: &EntityPath) -> Vec<String> {
    let mut out = Vec::new();
    let video = store.video(cam).expect("video index");
    for sample in store.video_samples(cam, 0..video.len()) {
        let sample = sample.expect("sample loads");
        out.push(format!("sample {:?}", sample.as_slice()));
    }
    for t in [0, FRAME_NS * 10, FRAME_NS * 45, FRAME_NS * 89] {
        out.push(format!("plan {:?}", video.plan("time", t)));
    }
    for (component, t) in [("early", 3), ("late", 80), ("late", 10), ("early", 1000)] {
        let at = store
            .latest_at(scalars, "frame", t, component)
            .expect("latest_at");
        let cell = at.map(|at| store.cell(scalars, at, component).expect("cell"));
        out.push(format!("latest {component} {t}: {at:?} {cell:?}"));
    }
    let range = store.range(scalars, "frame", 2, 9, "early").expect("range");
    out.push(format!("range {range:?}"));
    let frame = store.dataframe(cam, "frame", 0, 40).expect("dataframe");
    out.push(format!("dataframe {frame:?}"));
    out.push(format!("time range {:?}", store.time_range(None, "time")));
    out.push(format!("rows {}", store.num_rows()));
    out
}

#[test]
fn evicted_chunks_load_back_identical_while_the_file_grows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("growing.vlog");
    let (cam, scalars, first, second) = recording_chunks();
    let mut writer = FileWriter::create(&path, &info()).unwrap();
    let mut store = ChunkStore::new();
    store.set_source(writer.growing_reader().unwrap());
    let mut reference = ChunkStore::new();
    let mut write = |store: &mut ChunkStore, reference: &mut ChunkStore, chunks: &[Chunk]| {
        for c in chunks {
            let summary = writer.write_chunk(c).unwrap();
            store.insert_summary(summary, Some(Arc::new(c.clone())));
            reference.insert(Arc::new(c.clone()));
        }
    };

    write(&mut store, &mut reference, &first);
    let held = store.resident_bytes();
    assert!(held > 0);
    assert_eq!(store.evict_cold(u64::MAX, false), held);
    assert_eq!((store.loaded_chunks(), store.resident_bytes()), (0, 0));
    // Streaming sample reads load the chunks back without keeping them.
    let mut partial = ChunkStore::new();
    for c in &first {
        partial.insert(Arc::new(c.clone()));
    }
    let video_len = store.video(&cam).unwrap().len();
    for (a, b) in store
        .video_samples(&cam, 0..video_len)
        .zip(partial.video_samples(&cam, 0..video_len))
    {
        assert_eq!(a.unwrap().as_slice(), b.unwrap().as_slice());
    }
    assert_eq!(store.loaded_chunks(), 0);

    // The writer appends more (with a schema not seen before) after chunks were read back.
    write(&mut store, &mut reference, &second);
    store.evict_cold(u64::MAX, false);
    assert_eq!(store.loaded_chunks(), 0);
    assert_eq!(
        answers(&store, &cam, &scalars),
        answers(&reference, &cam, &scalars)
    );

    // Chunk by chunk: the same bytes as inserted.
    for e in [&cam, &scalars] {
        let n = store.summaries(e).count() as u32;
        for idx in 0..n {
            store.evict(e, idx);
            let loaded = store.chunk(e, idx).unwrap();
            let original = reference.chunk(e, idx).unwrap();
            assert_eq!(loaded.batch(), original.batch(), "{e} chunk {idx}");
            assert_eq!(loaded.id(), original.id());
        }
    }
}

#[test]
fn a_memory_meter_bounds_chunks_loaded_back_by_reads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("metered.vlog");
    let (cam, scalars, first, second) = recording_chunks();
    let mut writer = FileWriter::create(&path, &info()).unwrap();
    let mut store = ChunkStore::new();
    store.set_source(writer.growing_reader().unwrap());
    let mut reference = ChunkStore::new();
    let mut sizes = Vec::new();
    for c in first.iter().chain(&second) {
        let summary = writer.write_chunk(c).unwrap();
        sizes.push(summary.location.unwrap().frame_len);
        store.insert_summary(summary, Some(Arc::new(c.clone())));
        reference.insert(Arc::new(c.clone()));
    }
    let total: u64 = sizes.iter().sum();
    assert_eq!(store.resident_bytes(), total);
    let limit = total / 4;
    let meter = MemoryMeter::new(limit);
    store.set_memory_meter(meter.clone());
    assert_eq!(
        meter.used(),
        total,
        "chunks already held count when the meter is set"
    );
    assert!(store.evict_cold(meter.excess(), false) >= total - limit);
    assert!(meter.used() <= limit);

    // Reading everything back stays under the limit and answers the same.
    assert_eq!(
        answers(&store, &cam, &scalars),
        answers(&reference, &cam, &scalars)
    );
    assert!(meter.used() <= limit, "{} > {limit}", meter.used());
    assert_eq!(meter.used(), store.resident_bytes());
    assert!(store.loaded_chunks() > 0, "reads under the limit are kept");

    drop(store);
    assert_eq!(meter.used(), 0, "a dropped store gives its bytes back");
}

#[test]
fn least_recently_used_chunks_go_first_and_the_live_edge_stays() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lru.vlog");
    let (cam, scalars, first, second) = recording_chunks();
    let mut writer = FileWriter::create(&path, &info()).unwrap();
    let mut store = ChunkStore::new();
    store.set_source(writer.growing_reader().unwrap());
    for c in first.iter().chain(&second) {
        let summary = writer.write_chunk(c).unwrap();
        store.insert_summary(summary, Some(Arc::new(c.clone())));
    }
    // The codec chunk (cam 0) was inserted first; reading it makes cam 1 the coldest.
    store.chunk(&cam, 0).unwrap();
    assert!(store.evict_cold(1, false) > 0);
    assert!(store.is_resident(&cam, 0));
    assert!(!store.is_resident(&cam, 1));
    assert!(store.is_resident(&cam, 2));

    store.evict_cold(u64::MAX, true);
    let video = store.video(&cam).unwrap();
    let edge = video
        .sample(*video.keyframes().last().unwrap())
        .unwrap()
        .chunk;
    let cam_chunks = store.summaries(&cam).count() as u32;
    for idx in 0..cam_chunks {
        assert_eq!(store.is_resident(&cam, idx), idx >= edge, "cam chunk {idx}");
    }
    let scalar_chunks = store.summaries(&scalars).count() as u32;
    for idx in 0..scalar_chunks {
        assert_eq!(
            store.is_resident(&scalars, idx),
            idx == scalar_chunks - 1,
            "scalar chunk {idx}"
        );
    }
}

#[test]
fn a_store_without_a_source_keeps_its_chunks() {
    let (cam, _, first, _) = recording_chunks();
    let mut store = ChunkStore::new();
    for c in first {
        store.insert(Arc::new(c));
    }
    let held = store.loaded_chunks();
    assert_eq!(store.evict(&cam, 1), 0);
    assert_eq!(store.evict_cold(u64::MAX, false), 0);
    assert_eq!(store.loaded_chunks(), held);
}
