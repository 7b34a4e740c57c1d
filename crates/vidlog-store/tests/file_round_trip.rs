//! A recording of real H.264 written with `FileWriter` and opened with `Recording::open`
//! comes back sample for sample, and opening it from its footer reads no chunk bytes.

mod common;

use std::sync::Arc;

use common::*;
use vidlog_store::{ChunkStore, Recording};
use vidlog_testdata::Fixture;
use vidlog_types::{TimeKind, VideoCodec, VideoStream};

#[test]
fn file_round_trip_keeps_samples_times_and_keyframes() {
    let e = entity("camera/front");
    let aus = access_units(Fixture::X264HighBf0);
    assert_eq!(aus.len(), 90);
    let pts: Vec<i64> = (0..aus.len() as i64).map(|i| i * FRAME_NS).collect();
    let mut chunks = vec![codec_chunk(1, &e, 1, VideoCodec::H264)];
    chunks.extend(video_chunks(&e, &aus, &pts, 2, 100, &[1, 7, 13, 2, 30, 5]));

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rec.vlog");
    write_recording(&path, &chunks);
    let rec = Recording::open(&path).unwrap();

    assert!(rec.recovery().is_none(), "{:?}", rec.recovery());
    assert_eq!(rec.info, Some(info()));
    assert_eq!(rec.store.num_rows(), 91);
    assert_eq!(rec.store.codec(&e), Some(VideoCodec::H264));
    assert_eq!(
        rec.store.diagnostics(),
        &[],
        "a clean stream has no diagnostics"
    );
    let timelines: Vec<(String, TimeKind)> = rec
        .store
        .timelines()
        .map(|(n, k)| (n.as_str().to_owned(), k))
        .collect();
    assert_eq!(
        timelines,
        vec![
            ("frame".to_owned(), TimeKind::Sequence),
            ("time".to_owned(), TimeKind::Duration)
        ]
    );

    let video = rec.store.video(&e).expect("video index");
    assert_eq!(video.len(), aus.len());
    assert_eq!(video.pts("time").unwrap(), pts.as_slice());
    let frames: Vec<i64> = (0..aus.len() as i64).collect();
    assert_eq!(video.pts("frame").unwrap(), frames.as_slice());
    assert!(!video.has_b_frames("time"));
    let idr: Vec<usize> = (0..aus.len()).filter(|&i| aus[i].is_keyframe).collect();
    assert_eq!(video.keyframes(), idr.as_slice());
    for (i, au) in aus.iter().enumerate() {
        let s = rec.store.video_sample(&e, i).unwrap();
        assert_eq!(s.as_slice(), au.data.as_slice(), "sample {i}");
        assert_eq!(s.is_keyframe, au.is_keyframe, "keyframe flag of sample {i}");
        assert_eq!(s.row_id, 100 + i as u64);
    }

    // Timeline columns of every loaded chunk equal what was written.
    for (k, written) in chunks.iter().enumerate() {
        let loaded = rec.store.chunk(&e, k as u32).unwrap();
        assert_eq!(loaded.batch(), written.batch(), "chunk {k}");
        assert_eq!(loaded.id(), written.id());
    }

    // The footer's summaries equal the ones an in-memory store computes.
    let mut memory = ChunkStore::new();
    for c in &chunks {
        memory.insert(Arc::new(c.clone()));
    }
    let from_file: Vec<_> = rec
        .store
        .summaries(&e)
        .map(|s| {
            let mut s = s.clone();
            s.location = None;
            s
        })
        .collect();
    let in_memory: Vec<_> = memory.summaries(&e).cloned().collect();
    assert_eq!(from_file, in_memory);
}

#[test]
fn footer_open_does_not_read_chunks() {
    let e = entity("camera/front");
    let aus = access_units(Fixture::X264HighBf0);
    let pts: Vec<i64> = (0..aus.len() as i64).map(|i| i * FRAME_NS).collect();
    let mut chunks = vec![codec_chunk(1, &e, 1, VideoCodec::H264)];
    chunks.extend(video_chunks(&e, &aus, &pts, 2, 100, &[10]));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rec.vlog");
    write_recording(&path, &chunks);

    let rec = Recording::open(&path).unwrap();
    assert!(rec.recovery().is_none());
    // Only the tiny static codec chunk is loaded at open.
    assert_eq!(rec.store.loaded_chunks(), 1);
    // Indexes answer without loading anything.
    let video = rec.store.video(&e).unwrap();
    assert_eq!(video.len(), 90);
    let plan = video.plan("time", 45 * FRAME_NS).unwrap();
    assert_eq!((plan.keyframe, plan.target), (30, 45));
    let hit = rec
        .store
        .latest_at(&e, "time", 45 * FRAME_NS, VideoStream::SAMPLE)
        .unwrap()
        .unwrap();
    assert_eq!(hit.row_id, 145);
    assert_eq!(
        rec.store
            .range(&e, "frame", 0, 89, VideoStream::SAMPLE)
            .unwrap()
            .len(),
        90
    );
    assert_eq!(rec.store.loaded_chunks(), 1);
    // A sample query loads exactly its chunk.
    let s = rec.store.video_sample(&e, 45).unwrap();
    assert_eq!(s.as_slice(), aus[45].data.as_slice());
    assert_eq!(rec.store.loaded_chunks(), 2);
    rec.store.video_sample(&e, 49).unwrap();
    assert_eq!(rec.store.loaded_chunks(), 2, "same chunk, loaded once");
}
