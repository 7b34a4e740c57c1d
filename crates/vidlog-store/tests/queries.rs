//! Latest-at, range and dataframe queries against a brute-force reference, in memory and
//! from a recording file.

mod common;

use std::sync::Arc;

use common::*;
use vidlog_store::{ChunkStore, Recording};
use vidlog_testdata::Fixture;
use vidlog_types::arrow_array::{
    Array, BinaryArray, BooleanArray, Int64Array, UInt32Array, UInt64Array,
};
use vidlog_types::{Chunk, EntityPath, VideoCodec, VideoStream};
use vidlog_video::bitstream::h264::presentation_order;

const VALUE: &str = "Scalar:value";
const OTHER: &str = "Other:flag";

/// One logged row, as the reference sees it.
#[derive(Clone, Debug)]
struct Row {
    row_id: u64,
    time: i64,
    components: Vec<&'static str>,
}

fn latest_at_reference(rows: &[Row], t: i64, component: &str) -> Option<(u64, i64)> {
    rows.iter()
        .filter(|r| r.time <= t && r.components.contains(&component))
        .map(|r| (r.time, r.row_id))
        .max()
        .map(|(time, row_id)| (row_id, time))
}

fn range_reference(rows: &[Row], from: i64, to: i64, component: &str) -> Vec<(u64, i64)> {
    let mut out: Vec<(i64, u64)> = rows
        .iter()
        .filter(|r| from <= r.time && r.time <= to && r.components.contains(&component))
        .map(|r| (r.time, r.row_id))
        .collect();
    out.sort();
    out.into_iter().map(|(t, r)| (r, t)).collect()
}

/// Random rows (many ties, times unsorted within chunks) in chunks inserted out of order.
fn random_chunks(rng: &mut XorShift, e: &EntityPath) -> (Vec<Chunk>, Vec<Row>) {
    let mut chunks = Vec::new();
    let mut rows = Vec::new();
    let mut row_id = 1000;
    for k in 0..40 {
        let components: Vec<&'static str> = match rng.below(3) {
            0 => vec![VALUE],
            1 => vec![VALUE, OTHER],
            _ => vec![OTHER],
        };
        // Chunks cover different stretches of time so some are skipped by queries.
        let base = rng.range(0, 400);
        let n = 1 + rng.below(12) as usize;
        let mut pending = Vec::new();
        for _ in 0..n {
            row_id += 1 + rng.below(3);
            let t = base + rng.range(-20, 40);
            let cells: Vec<(&str, i64)> = components.iter().map(|c| (*c, row_id as i64)).collect();
            pending.push(scalar_row(row_id, "frame", Some(t), &cells));
            rows.push(Row {
                row_id,
                time: t,
                components: components.clone(),
            });
        }
        chunks.push(chunk(k, e, &pending));
    }
    rng.shuffle(&mut chunks);
    (chunks, rows)
}

fn check_against_reference(store: &ChunkStore, e: &EntityPath, rows: &[Row], rng: &mut XorShift) {
    for t in -30..460 {
        for component in [VALUE, OTHER] {
            let got = store
                .latest_at(e, "frame", t, component)
                .unwrap()
                .map(|r| (r.row_id, r.time.unwrap()));
            assert_eq!(
                got,
                latest_at_reference(rows, t, component),
                "latest_at({t}, {component})"
            );
        }
    }
    for _ in 0..300 {
        let from = rng.range(-30, 460);
        let to = from + rng.range(-5, 120);
        for component in [VALUE, OTHER] {
            let got: Vec<(u64, i64)> = store
                .range(e, "frame", from, to, component)
                .unwrap()
                .into_iter()
                .map(|r| (r.row_id, r.time.unwrap()))
                .collect();
            assert_eq!(
                got,
                range_reference(rows, from, to, component),
                "range({from}, {to}, {component})"
            );
        }
    }
    // The row a query names holds that row's value.
    let hit = store.latest_at(e, "frame", 200, VALUE).unwrap().unwrap();
    let cell = store.cell(e, hit, VALUE).unwrap().unwrap();
    let cell = cell.as_any().downcast_ref::<Int64Array>().unwrap();
    assert_eq!(cell.value(0), hit.row_id as i64);
}

#[test]
fn latest_at_and_range_match_brute_force() {
    let e = entity("points");
    let mut rng = XorShift::new(0x5eed);
    let (chunks, rows) = random_chunks(&mut rng, &e);
    assert!(
        chunks
            .iter()
            .any(|c| !c.timeline("frame").unwrap().is_sorted),
        "want unsorted chunks"
    );

    let mut store = ChunkStore::new();
    for c in &chunks {
        store.insert(Arc::new(c.clone()));
    }
    check_against_reference(&store, &e, &rows, &mut rng);

    // The same from a recording file (indexes from the footer, chunks loaded on demand).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("q.vlog");
    write_recording(&path, &chunks);
    let rec = Recording::open(&path).unwrap();
    check_against_reference(&rec.store, &e, &rows, &mut rng);
}

#[test]
fn latest_at_ties_and_static_rows() {
    let e = entity("points");
    let mut store = ChunkStore::new();
    let q = |store: &ChunkStore, t| {
        store
            .latest_at(&e, "frame", t, VALUE)
            .unwrap()
            .map(|r| (r.row_id, r.time))
    };
    store.insert(Arc::new(chunk(
        1,
        &e,
        &[
            scalar_row(10, "frame", Some(5), &[(VALUE, 1)]),
            scalar_row(11, "frame", Some(5), &[(VALUE, 2)]),
            scalar_row(12, "frame", Some(3), &[(VALUE, 3)]),
        ],
    )));
    assert_eq!(q(&store, 4), Some((12, Some(3))));
    assert_eq!(
        q(&store, 5),
        Some((11, Some(5))),
        "same time: the later row wins"
    );
    assert_eq!(q(&store, 2), None);
    // A later chunk with the same time wins; an earlier-logged one arriving late does not.
    store.insert(Arc::new(chunk(
        2,
        &e,
        &[scalar_row(20, "frame", Some(5), &[(VALUE, 4)])],
    )));
    store.insert(Arc::new(chunk(
        3,
        &e,
        &[scalar_row(9, "frame", Some(5), &[(VALUE, 5)])],
    )));
    assert_eq!(q(&store, 5), Some((20, Some(5))));
    assert_eq!(q(&store, 1000), Some((20, Some(5))));
    // Out-of-order arrival of an earlier time.
    store.insert(Arc::new(chunk(
        4,
        &e,
        &[scalar_row(30, "frame", Some(1), &[(VALUE, 6)])],
    )));
    assert_eq!(q(&store, 2), Some((30, Some(1))));
    // Static rows win at every time; the last static row wins among them.
    store.insert(Arc::new(chunk(
        5,
        &e,
        &[scalar_row(40, "frame", None, &[(VALUE, 7)])],
    )));
    store.insert(Arc::new(chunk(
        6,
        &e,
        &[scalar_row(41, "frame", None, &[(VALUE, 8)])],
    )));
    store.insert(Arc::new(chunk(
        7,
        &e,
        &[scalar_row(39, "frame", None, &[(VALUE, 9)])],
    )));
    for t in [-100, 0, 5, 1000] {
        assert_eq!(q(&store, t), Some((41, None)), "t = {t}");
    }
    let hit = store.latest_at(&e, "frame", 0, VALUE).unwrap().unwrap();
    let cell = store.cell(&e, hit, VALUE).unwrap().unwrap();
    assert_eq!(
        cell.as_any().downcast_ref::<Int64Array>().unwrap().value(0),
        8
    );
    // Unknown timelines and components answer nothing; unknown entities are errors.
    assert_eq!(store.latest_at(&e, "nope", 5, OTHER).unwrap(), None);
    assert_eq!(store.range(&e, "frame", 0, 10, OTHER).unwrap(), vec![]);
    assert!(
        store
            .latest_at(&entity("nobody"), "frame", 5, VALUE)
            .is_err()
    );
    assert_eq!(store.time_range(Some(&e), "frame"), Some((1, 5)));
}

#[test]
fn dataframe_of_b_frame_video_is_in_time_order() {
    let e = entity("camera/front");
    let aus = access_units(Fixture::X264HighBf2);
    let order = presentation_order(&aus.iter().map(|a| (a.poc, a.poc_reset)).collect::<Vec<_>>());
    let pts: Vec<i64> = order.iter().map(|&p| p as i64 * FRAME_NS).collect();
    let mut chunks = vec![codec_chunk(1, &e, 1, VideoCodec::H264)];
    chunks.extend(video_chunks(&e, &aus, &pts, 2, 100, &[7, 16, 3]));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("df.vlog");
    write_recording(&path, &chunks);
    let rec = Recording::open(&path).unwrap();
    let mut memory = ChunkStore::new();
    for c in &chunks {
        memory.insert(Arc::new(c.clone()));
    }
    for store in [&memory, &rec.store] {
        let (from, to) = (10 * FRAME_NS, 70 * FRAME_NS - 1);
        let df = store.dataframe(&e, "time", from, to).unwrap();
        let mut want: Vec<(i64, usize)> = (0..aus.len())
            .filter(|&i| from <= pts[i] && pts[i] <= to)
            .map(|i| (pts[i], i))
            .collect();
        want.sort();
        assert_eq!(df.num_rows(), want.len());
        assert_eq!(df.num_rows(), 60);
        let col = |name: &str| {
            df.column_by_name(name)
                .unwrap_or_else(|| panic!("no column {name}"))
                .clone()
        };
        let row_ids = col("row_id");
        let row_ids = row_ids.as_any().downcast_ref::<UInt64Array>().unwrap();
        let times = col("time");
        let times = times.as_any().downcast_ref::<Int64Array>().unwrap();
        let frames = col("frame");
        let frames = frames.as_any().downcast_ref::<Int64Array>().unwrap();
        let samples = col(VideoStream::SAMPLE);
        let samples = samples.as_any().downcast_ref::<BinaryArray>().unwrap();
        let sizes = col("sample_size");
        let sizes = sizes.as_any().downcast_ref::<UInt32Array>().unwrap();
        let keyframes = col(VideoStream::IS_KEYFRAME);
        let keyframes = keyframes.as_any().downcast_ref::<BooleanArray>().unwrap();
        for (k, &(t, i)) in want.iter().enumerate() {
            assert_eq!(row_ids.value(k), 100 + i as u64, "row {k}");
            assert_eq!(times.value(k), t);
            assert_eq!(frames.value(k), i as i64);
            assert_eq!(samples.value(k), aus[i].data.as_slice());
            assert_eq!(sizes.value(k) as usize, aus[i].data.len());
            assert!(keyframes.is_valid(k));
            assert_eq!(
                keyframes.value(k),
                aus[i].is_keyframe,
                "keyframe flag of sample {i}"
            );
        }
        // An empty range is an empty frame, not an error.
        assert_eq!(store.dataframe(&e, "time", -10, -1).unwrap().num_rows(), 0);
        assert!(store.dataframe(&e, "nope", 0, 1).is_err());
    }
}
