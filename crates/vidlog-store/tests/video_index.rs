//! The per-entity video index on real H.264 with B-frames: decode plans, GOPs, chunks
//! arriving out of order, and the diagnostics of broken streams.

mod common;

use std::sync::Arc;

use common::*;
use vidlog_store::{ChunkStore, Recording, VideoIndex};
use vidlog_testdata::Fixture;
use vidlog_types::{Chunk, EntityPath, VideoCodec};
use vidlog_video::bitstream::h264::{AccessUnit, presentation_order};

/// Presentation times (ns) in decode order, from the stream's own POCs.
fn b_frame_pts(aus: &[AccessUnit]) -> Vec<i64> {
    let order = presentation_order(&aus.iter().map(|a| (a.poc, a.poc_reset)).collect::<Vec<_>>());
    order.iter().map(|&p| p as i64 * FRAME_NS).collect()
}

fn check_index(video: &VideoIndex, aus: &[AccessUnit], pts: &[i64], b_frames: bool) {
    assert_eq!(video.len(), aus.len());
    assert_eq!(video.pts("time").unwrap(), pts);
    assert_eq!(video.has_b_frames("time"), b_frames);
    assert!(
        !video.has_b_frames("frame"),
        "frame numbers follow decode order"
    );
    let idr: Vec<usize> = (0..aus.len()).filter(|&i| aus[i].is_keyframe).collect();
    assert_eq!(video.keyframes(), idr.as_slice());
    let mut gops: Vec<usize> = idr.windows(2).map(|w| w[1] - w[0]).collect();
    gops.push(aus.len() - idr.last().unwrap());
    assert_eq!(video.gop_lengths(), gops);
    assert_eq!(
        video.gop_lengths(),
        vec![30, 30, 30],
        "the fixture is made with -g 30"
    );
    for (i, &pts_i) in pts.iter().enumerate() {
        let keyframe = *idr.iter().rev().find(|&&k| k <= i).unwrap();
        for t in [pts_i, pts_i + FRAME_NS / 2] {
            let plan = video
                .plan("time", t)
                .unwrap_or_else(|| panic!("no plan at {t}"));
            assert_eq!(plan.target, i, "target at t = {t}");
            assert_eq!(plan.keyframe, keyframe, "keyframe for sample {i}");
            assert_eq!(plan.pts, pts_i);
        }
        let plan = video.plan("frame", i as i64).unwrap();
        assert_eq!((plan.target, plan.keyframe), (i, keyframe));
    }
    assert_eq!(video.plan("time", -1), None);
    let presented: Vec<usize> = video
        .presentation_order("time")
        .unwrap()
        .iter()
        .map(|(_, i)| *i)
        .collect();
    let mut want: Vec<usize> = (0..aus.len()).collect();
    want.sort_by_key(|&i| pts[i]);
    assert_eq!(presented, want);
}

fn chunks_of(e: &EntityPath, aus: &[AccessUnit], pts: &[i64], sizes: &[usize]) -> Vec<Chunk> {
    let mut chunks = vec![codec_chunk(1, e, 1, VideoCodec::H264)];
    chunks.extend(video_chunks(e, aus, pts, 2, 100, sizes));
    chunks
}

#[test]
fn b_frame_stream_plans_every_frame() {
    let e = entity("camera/front");
    let aus = access_units(Fixture::X264HighBf2);
    let pts = b_frame_pts(&aus);
    assert!(
        pts.windows(2).any(|w| w[0] > w[1]),
        "the fixture has B-frames"
    );
    let chunks = chunks_of(&e, &aus, &pts, &[5, 11, 2, 20]);

    let mut memory = ChunkStore::new();
    for c in &chunks {
        memory.insert(Arc::new(c.clone()));
    }
    check_index(memory.video(&e).unwrap(), &aus, &pts, true);
    assert_eq!(memory.diagnostics(), &[]);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bf2.vlog");
    write_recording(&path, &chunks);
    let rec = Recording::open(&path).unwrap();
    check_index(rec.store.video(&e).unwrap(), &aus, &pts, true);
    assert_eq!(rec.store.diagnostics(), &[]);
}

#[test]
fn chunks_arriving_out_of_order_index_the_same() {
    let e = entity("camera/front");
    for (fixture, b_frames) in [(Fixture::X264HighBf0, false), (Fixture::X264HighBf2, true)] {
        let aus = access_units(fixture);
        let pts = if b_frames {
            b_frame_pts(&aus)
        } else {
            (0..aus.len() as i64).map(|i| i * FRAME_NS).collect()
        };
        let mut chunks = chunks_of(&e, &aus, &pts, &[4, 9, 1, 17]);
        // The codec first, then video chunks in a scrambled order.
        let mut rng = XorShift::new(11);
        rng.shuffle(&mut chunks[1..]);
        assert!(chunks[1].row_ids()[0] != 100, "really scrambled");
        let mut store = ChunkStore::new();
        for c in &chunks {
            store.insert(Arc::new(c.clone()));
        }
        check_index(store.video(&e).unwrap(), &aus, &pts, b_frames);
        for (i, au) in aus.iter().enumerate() {
            let s = store.video_sample(&e, i).unwrap();
            assert_eq!(s.as_slice(), au.data.as_slice(), "{fixture:?} sample {i}");
            assert_eq!(s.is_keyframe, au.is_keyframe);
        }
    }
}

#[test]
fn diagnostics_name_entity_and_sample_and_keep_the_data() {
    let aus = access_units(Fixture::X264HighBf0);
    let pts: Vec<i64> = (0..aus.len() as i64).map(|i| i * FRAME_NS).collect();

    // Starts with a non-keyframe.
    let e = entity("cam/late_start");
    let mut store = ChunkStore::new();
    store.insert(Arc::new(codec_chunk(1, &e, 1, VideoCodec::H264)));
    for c in video_chunks(&e, &aus[5..], &pts[5..], 2, 100, &[10]) {
        store.insert(Arc::new(c));
    }
    let d = store.diagnostics();
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!((&d[0].entity, d[0].sample), (&e, Some(0)));
    assert!(
        d[0].message.contains("does not start with a keyframe"),
        "{}",
        d[0]
    );
    let text = d[0].to_string();
    assert!(
        text.contains("cam/late_start") && text.contains("sample 0"),
        "{text}"
    );
    assert_eq!(store.video(&e).unwrap().len(), 85);
    assert_eq!(store.video(&e).unwrap().diagnostics(), d);

    // An invalid sample in the middle.
    let e = entity("cam/garbage");
    let mut samples: Vec<Vec<u8>> = aus[..12].iter().map(|a| a.data.clone()).collect();
    samples[7] = XorShift::new(5).bytes(300);
    samples[7][0] = 0x42; // not a start code
    let rows: Vec<_> = samples
        .iter()
        .enumerate()
        .map(|(i, s)| video_row(100 + i as u64, pts[i], i as i64, s))
        .collect();
    let mut store = ChunkStore::new();
    store.insert(Arc::new(codec_chunk(1, &e, 1, VideoCodec::H264)));
    store.insert(Arc::new(chunk(2, &e, &rows[..5])));
    store.insert(Arc::new(chunk(3, &e, &rows[5..])));
    let d = store.diagnostics();
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!((&d[0].entity, d[0].sample), (&e, Some(7)));
    assert!(
        d[0].to_string().contains("cam/garbage sample 7"),
        "{}",
        d[0]
    );
    assert_eq!(
        store.video_sample(&e, 7).unwrap().as_slice(),
        samples[7].as_slice()
    );
    assert!(!store.video_sample(&e, 7).unwrap().is_keyframe);
    assert_eq!(store.video(&e).unwrap().len(), 12);

    // No codec logged.
    let e = entity("cam/no_codec");
    let mut store = ChunkStore::new();
    for c in video_chunks(&e, &aus[..20], &pts[..20], 2, 100, &[6]) {
        store.insert(Arc::new(c));
    }
    let d = store.diagnostics();
    assert_eq!(d.len(), 1, "reported once: {d:?}");
    assert_eq!((&d[0].entity, d[0].sample), (&e, Some(0)));
    assert!(d[0].message.contains("no codec"), "{}", d[0]);
    assert_eq!(store.video(&e).unwrap().len(), 20);
    assert_eq!(
        store.video_sample(&e, 19).unwrap().as_slice(),
        aus[19].data.as_slice()
    );

    // The same diagnostics come back from a recording file.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("diag.vlog");
    let chunks: Vec<Chunk> = video_chunks(&e, &aus[..20], &pts[..20], 2, 100, &[6]);
    write_recording(&path, &chunks);
    let rec = Recording::open(&path).unwrap();
    assert_eq!(rec.store.diagnostics(), d);
}

#[test]
fn timelines_that_start_later_do_not_break_the_index() {
    // `frame` is set only from the 10th sample on: chunks of one entity with different
    // timelines.
    let e = entity("camera/front");
    let aus = access_units(Fixture::X264HighBf0);
    let aus = &aus[..40];
    let mut store = ChunkStore::new();
    store.insert(Arc::new(codec_chunk(1, &e, 1, VideoCodec::H264)));
    let only_time: Vec<_> = (0..10)
        .map(|i| {
            let mut row = video_row(100 + i as u64, i as i64 * FRAME_NS, 0, &aus[i].data);
            row.time.remove("frame");
            row
        })
        .collect();
    store.insert(Arc::new(chunk(2, &e, &only_time)));
    let both: Vec<_> = (10..40)
        .map(|i| video_row(100 + i as u64, i as i64 * FRAME_NS, i as i64, &aus[i].data))
        .collect();
    store.insert(Arc::new(chunk(3, &e, &both)));
    let video = store.video(&e).unwrap();
    assert_eq!(video.len(), 40);
    let plan = video.plan("frame", 15).unwrap();
    assert_eq!((plan.target, plan.keyframe, plan.pts), (15, 0, 15));
    let plan = video.plan("time", 35 * FRAME_NS).unwrap();
    assert_eq!((plan.target, plan.keyframe), (35, 30));
    assert_eq!(video.plan("frame", 5), None, "no sample is at frame <= 5");
    assert!(!video.has_b_frames("frame"));
}

#[test]
fn a_parameter_set_change_mid_stream_is_reported_once() {
    // 320x240 then 318x238: the SPS changes at the first IDR of the second stream.
    let mut aus = access_units(Fixture::X264HighBf0);
    let first_len = aus.len();
    aus.extend(access_units(Fixture::X264Odd));
    let pts: Vec<i64> = (0..aus.len() as i64).map(|i| i * FRAME_NS).collect();
    let e = entity("cam/resized");
    let mut store = ChunkStore::new();
    store.insert(Arc::new(codec_chunk(1, &e, 1, VideoCodec::H264)));
    for c in video_chunks(&e, &aus, &pts, 2, 100, &[25]) {
        store.insert(Arc::new(c));
    }
    let d = store.diagnostics();
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].sample, Some(first_len));
    assert!(d[0].message.contains("change mid-stream"), "{}", d[0]);
    assert_eq!(
        store.video(&e).unwrap().len(),
        aus.len(),
        "the data is still stored"
    );
}
