//! Damaged recordings: a killed writer, a torn tail, truncation at every byte, corrupt
//! bytes in the middle, newer format versions and files that are not recordings.

mod common;

use std::path::Path;

use common::*;
use vidlog_store::file::{CorruptRegion, OpenError, RecordingFile};
use vidlog_store::frame::{FRAME_HEADER_LEN, FrameHeader, MessageKind, checksum};
use vidlog_store::{FileWriter, Recording};
use vidlog_testdata::Fixture;
use vidlog_types::{Chunk, VideoCodec, VideoStream};

/// Real video in a few chunks, plus the byte range each chunk frame occupies.
fn video_recording(
    path: &Path,
    sizes: &[usize],
    frames: usize,
) -> (Vec<Chunk>, Vec<(u64, u64)>, FileWriter) {
    let e = entity("camera/front");
    let aus = access_units(Fixture::X264HighBf0);
    let aus = &aus[..frames];
    let pts: Vec<i64> = (0..aus.len() as i64).map(|i| i * FRAME_NS).collect();
    let mut chunks = vec![codec_chunk(1, &e, 1, VideoCodec::H264)];
    chunks.extend(video_chunks(&e, aus, &pts, 2, 100, sizes));
    let mut w = FileWriter::create(path, &info()).unwrap();
    let mut spans = Vec::new();
    for c in &chunks {
        let before = w.bytes_written();
        w.write_chunk(c).unwrap();
        spans.push((before, w.bytes_written()));
    }
    (chunks, spans, w)
}

/// Checks that `rec` holds exactly `chunks` (all of one entity) and nothing else.
fn assert_holds(rec: &Recording, chunks: &[&Chunk]) {
    let e = entity("camera/front");
    let rows: usize = chunks.iter().map(|c| c.num_rows()).sum();
    assert_eq!(rec.store.num_rows() as usize, rows);
    let loaded: Vec<Chunk> = (0..chunks.len() as u32)
        .map(|k| (*rec.store.chunk(&e, k).unwrap()).clone())
        .collect();
    for (got, want) in loaded.iter().zip(chunks) {
        assert_eq!(got.id(), want.id());
        assert_eq!(got.batch(), want.batch());
    }
}

#[test]
fn killed_writer_opens_by_scanning_and_torn_tail_is_measured() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("killed.vlog");
    let (chunks, spans, w) = video_recording(&path, &[4, 9, 1, 6], 40);
    std::mem::forget(w); // killed: no footer, no trailer
    let len = std::fs::metadata(&path).unwrap().len();
    assert_eq!(len, spans.last().unwrap().1);

    let rec = Recording::open(&path).unwrap();
    let report = rec
        .recovery()
        .expect("a file without footer is scanned")
        .clone();
    assert!(
        report.footer_problem.contains("did not finish"),
        "{}",
        report.footer_problem
    );
    assert_eq!(report.torn_tail_bytes, 0);
    assert_eq!(report.corrupt, vec![]);
    // info + schemas (static, temporal) + chunks
    assert_eq!(report.messages, 1 + 2 + chunks.len() as u64);
    assert_eq!(rec.info, Some(info()));
    assert_holds(&rec, &chunks.iter().collect::<Vec<_>>());
    let e = entity("camera/front");
    assert_eq!(rec.store.codec(&e), Some(VideoCodec::H264));
    assert_eq!(rec.store.video(&e).unwrap().keyframes(), &[0, 30]);

    // Cut the last chunk frame short: every complete chunk is kept.
    for cut in [1u64, 5, 17, 1000] {
        let torn = dir.path().join(format!("torn{cut}.vlog"));
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&torn, &bytes[..(len - cut) as usize]).unwrap();
        let rec = Recording::open(&torn).unwrap();
        let report = rec.recovery().expect("scanned");
        let (last_start, last_end) = *spans.last().unwrap();
        assert_eq!(
            report.torn_tail_bytes,
            last_end - cut - last_start,
            "cut {cut}"
        );
        assert_eq!(report.corrupt, vec![]);
        assert_holds(&rec, &chunks[..chunks.len() - 1].iter().collect::<Vec<_>>());
        assert!(report.to_string().contains("torn tail"), "{report}");
    }
}

#[test]
fn truncation_at_every_byte_offset() {
    let dir = tempfile::tempdir().unwrap();
    let full_path = dir.path().join("small.vlog");
    // Small synthetic samples (the stream has no codec: nothing to probe) and a
    // second entity with a loose component, in a few chunks.
    let cam = entity("cam");
    let other = entity("other");
    let mut rng = XorShift::new(7);
    let mut chunks = Vec::new();
    let mut row_id = 1;
    for (k, n) in [3usize, 1, 5, 2].into_iter().enumerate() {
        let rows: Vec<_> = (0..n)
            .map(|_| {
                row_id += 1;
                let size = rng.below(40) as usize;
                video_row(
                    row_id,
                    row_id as i64 * 1000,
                    row_id as i64,
                    &rng.bytes(size),
                )
            })
            .collect();
        chunks.push(chunk(10 + k as u64, &cam, &rows));
        row_id += 1;
        chunks.push(chunk(
            20 + k as u64,
            &other,
            &[scalar_row(
                row_id,
                "frame",
                Some(k as i64),
                &[("Scalar:value", 5)],
            )],
        ));
    }
    write_recording(&full_path, &chunks);
    let bytes = std::fs::read(&full_path).unwrap();
    assert!(
        bytes.len() < 8192,
        "keep this test small: {} bytes",
        bytes.len()
    );
    let full = RecordingFile::open(&full_path).unwrap();
    assert!(full.recovery.is_none());
    // Bytes at which each chunk's frame ends.
    let ends: Vec<(u64, usize)> = full
        .summaries
        .iter()
        .map(|s| {
            let l = s.location.unwrap();
            (l.offset + l.frame_len, s.num_rows())
        })
        .collect();
    let total_rows: usize = chunks.iter().map(|c| c.num_rows()).sum();

    let path = dir.path().join("cut.vlog");
    let mut last_rows = 0;
    for len in 0..=bytes.len() {
        std::fs::write(&path, &bytes[..len]).unwrap();
        match Recording::open(&path) {
            Err(OpenError::NotARecording { found, .. }) => {
                assert!(len < 16, "length {len}: header is intact, yet refused");
                assert_eq!(found, bytes[..len.min(8)]);
            }
            Err(e) => panic!("length {len}: unexpected error {e}"),
            Ok(rec) => {
                assert!(len >= 16, "length {len}: opened without a whole header");
                let rows = rec.store.num_rows() as usize;
                let expected: usize = ends
                    .iter()
                    .filter(|(end, _)| *end <= len as u64)
                    .map(|(_, n)| n)
                    .sum();
                assert_eq!(rows, expected, "length {len}");
                assert!(
                    rows >= last_rows,
                    "length {len}: rows went from {last_rows} to {rows}"
                );
                last_rows = rows;
                assert_eq!(rec.recovery().is_none(), len == bytes.len(), "length {len}");
                // Everything indexed can be read.
                for e in [&cam, &other] {
                    let n = rec.store.summaries(e).count();
                    for k in 0..n {
                        rec.store.chunk(e, k as u32).unwrap();
                    }
                }
                if let Some(video) = rec.store.video(&cam) {
                    for i in 0..video.len() {
                        rec.store.video_sample(&cam, i).unwrap();
                    }
                }
            }
        }
    }
    assert_eq!(last_rows, total_rows);
}

/// A finished 4-chunk recording (chunk 1 is the static codec) and its chunk frame spans.
fn four_chunks(path: &Path) -> (Vec<Chunk>, Vec<(u64, u64)>) {
    let (chunks, spans, mut w) = video_recording(path, &[10, 10, 10], 30);
    assert_eq!(chunks.len(), 4);
    w.finish().unwrap();
    // The chunk frame is the last frame each write_chunk made (a schema may precede it).
    let file = RecordingFile::open(path).unwrap();
    let frames: Vec<(u64, u64)> = file
        .summaries
        .iter()
        .map(|s| {
            let l = s.location.unwrap();
            (l.offset, l.offset + l.frame_len)
        })
        .collect();
    for (f, s) in frames.iter().zip(&spans) {
        assert_eq!(f.1, s.1);
    }
    (chunks, frames)
}

/// Drops the footer and trailer, as if the writer had been killed.
fn without_footer(bytes: &[u8], frames: &[(u64, u64)]) -> Vec<u8> {
    bytes[..frames.last().unwrap().1 as usize].to_vec()
}

fn open_bytes(dir: &Path, name: &str, bytes: &[u8]) -> Recording {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    Recording::open(&path).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn flipped_bytes_in_one_chunk_lose_only_that_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("four.vlog");
    let (chunks, frames) = four_chunks(&path);
    let mut bytes = std::fs::read(&path).unwrap();
    let (start, end) = frames[1];
    let mid = ((start + end) / 2) as usize;
    for b in &mut bytes[mid..mid + 8] {
        *b ^= 0x5a;
    }
    let e = entity("camera/front");

    // With the footer: the file opens; the damaged chunk fails to load, with its offset.
    let rec = open_bytes(dir.path(), "footer.vlog", &bytes);
    assert!(rec.recovery().is_none());
    let err = rec.store.chunk(&e, 1).unwrap_err().to_string();
    assert!(
        err.contains(&format!("byte {start}")) && err.contains("checksum"),
        "{err}"
    );
    for k in [0u32, 2, 3] {
        assert_eq!(
            rec.store.chunk(&e, k).unwrap().batch(),
            chunks[k as usize].batch()
        );
    }
    assert!(rec.store.video_sample(&e, 0).is_err());
    assert!(rec.store.video_sample(&e, 10).is_ok());

    // Without the footer: the scan reports the damaged frame and keeps the others.
    let rec = open_bytes(dir.path(), "scan.vlog", &without_footer(&bytes, &frames));
    let report = rec.recovery().unwrap();
    assert_eq!(report.corrupt.len(), 1, "{report}");
    let CorruptRegion {
        offset,
        len,
        reason,
    } = &report.corrupt[0];
    assert_eq!((*offset, *len), (start, end - start));
    assert!(reason.contains("checksum"), "{reason}");
    assert_eq!(report.torn_tail_bytes, 0);
    assert_holds(&rec, &[&chunks[0], &chunks[2], &chunks[3]]);
}

#[test]
fn corrupt_static_codec_chunk_does_not_prevent_opening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("four.vlog");
    let (chunks, frames) = four_chunks(&path);
    let mut bytes = std::fs::read(&path).unwrap();
    let (start, end) = frames[0];
    bytes[(end - 3) as usize] ^= 1;
    let rec = open_bytes(dir.path(), "footer.vlog", &bytes);
    let e = entity("camera/front");
    assert!(
        rec.store
            .chunk(&e, 0)
            .unwrap_err()
            .to_string()
            .contains(&format!("byte {start}"))
    );
    for k in 1..4u32 {
        assert_eq!(
            rec.store.chunk(&e, k).unwrap().batch(),
            chunks[k as usize].batch()
        );
    }
    // The samples were probed when written, so keyframes are known without the codec chunk.
    assert_eq!(rec.store.video(&e).unwrap().keyframes(), &[0]);
}

#[test]
fn huge_frame_length_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("four.vlog");
    let (chunks, frames) = four_chunks(&path);
    let clean = std::fs::read(&path).unwrap();
    let (start, _) = frames[1];
    let (next, _) = frames[2];
    // Above the limit, and within the limit but past the end of the file.
    for huge in [u32::MAX, (1 << 30) - 1, clean.len() as u32] {
        let mut bytes = without_footer(&clean, &frames);
        bytes[start as usize + 4..start as usize + 8].copy_from_slice(&huge.to_le_bytes());
        let rec = open_bytes(dir.path(), "huge.vlog", &bytes);
        let report = rec.recovery().unwrap();
        assert_eq!(report.corrupt.len(), 1, "{report}");
        assert_eq!(
            (report.corrupt[0].offset, report.corrupt[0].len),
            (start, next - start),
            "{report}"
        );
        assert_eq!(report.torn_tail_bytes, 0);
        assert_holds(&rec, &[&chunks[0], &chunks[2], &chunks[3]]);
    }
}

#[test]
fn garbage_between_frames_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("four.vlog");
    let (chunks, frames) = four_chunks(&path);
    let clean = std::fs::read(&path).unwrap();
    let at = frames[2].0 as usize; // between chunk 2 and chunk 3
    let mut rng = XorShift::new(99);
    let mut garbage = rng.bytes(1000);
    // Fake frame markers inside the garbage must not fool the resync.
    garbage[100..104].copy_from_slice(b"VLGM");
    garbage[500..504].copy_from_slice(b"VLGM");
    garbage[504..508].copy_from_slice(&10u32.to_le_bytes());
    for with_footer in [true, false] {
        let base = if with_footer {
            clean.clone()
        } else {
            without_footer(&clean, &frames)
        };
        let mut bytes = base[..at].to_vec();
        bytes.extend_from_slice(&garbage);
        bytes.extend_from_slice(&base[at..]);
        let rec = open_bytes(dir.path(), "garbage.vlog", &bytes);
        // The trailer's footer offset is stale now, so the file is scanned either way.
        let report = rec.recovery().expect("scanned");
        assert_eq!(
            report.corrupt,
            vec![CorruptRegion {
                offset: at as u64,
                len: 1000,
                reason: report.corrupt[0].reason.clone()
            }]
        );
        assert_eq!(report.torn_tail_bytes, 0, "{report}");
        assert_holds(&rec, &chunks.iter().collect::<Vec<_>>());
    }
}

#[test]
fn newer_version_and_foreign_files_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("four.vlog");
    four_chunks(&path);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[8..10].copy_from_slice(&2u16.to_le_bytes());
    bytes[10..12].copy_from_slice(&3u16.to_le_bytes());
    let newer = dir.path().join("newer.vlog");
    std::fs::write(&newer, &bytes).unwrap();
    let err = Recording::open(&newer).err().expect("refused");
    assert!(matches!(
        err,
        OpenError::NewerVersion {
            file_major: 2,
            file_minor: 3,
            ..
        }
    ));
    let msg = err.to_string();
    assert!(
        msg.contains("2.3") && msg.contains("1.0") && msg.contains("upgrade"),
        "{msg}"
    );

    for (name, content) in [
        (
            "text.txt",
            b"hello, this is not a recording at all\n".as_slice(),
        ),
        ("empty.vlog", b"".as_slice()),
        ("short.vlog", b"VIDLOGRC".as_slice()),
    ] {
        let p = dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        let err = Recording::open(&p).err().expect("refused");
        assert!(
            matches!(err, OpenError::NotARecording { .. }),
            "{name}: {err}"
        );
        assert!(
            err.to_string().contains("is not a vidlog recording"),
            "{err}"
        );
        assert!(err.to_string().contains(name), "{err}");
    }
    let missing = Recording::open(dir.path().join("missing.vlog"))
        .err()
        .expect("refused");
    assert!(matches!(missing, OpenError::Io { .. }), "{missing}");
}

/// Builds a finished file by hand whose footer is `footer` (valid checksum).
fn file_with_footer(dir: &Path, footer: &[u8]) -> std::path::PathBuf {
    let path = dir.join("hand.vlog");
    let mut bytes = Vec::new();
    bytes.extend_from_slice(b"VIDLOGRC");
    bytes.extend_from_slice(&1u16.to_le_bytes());
    bytes.extend_from_slice(&0u16.to_le_bytes());
    bytes.extend_from_slice(&0u32.to_le_bytes());
    let footer_at = bytes.len() as u64;
    let header = FrameHeader::new(MessageKind::Footer, footer.len() as u32, checksum([footer]));
    bytes.extend_from_slice(&header.to_bytes());
    bytes.extend_from_slice(footer);
    bytes.extend_from_slice(&footer_at.to_le_bytes());
    bytes.extend_from_slice(b"VLGFOOT1");
    std::fs::write(&path, &bytes).unwrap();
    assert_eq!(FRAME_HEADER_LEN, 16);
    path
}

#[test]
fn hostile_footers_do_not_panic() {
    let dir = tempfile::tempdir().unwrap();
    // version 1, no schemas, one chunk summary: id, no location, entity "a", 0 rows,
    // 0 timelines (so: static), 0 components, no video.
    let zero_rows = [
        1, 0, 0, 0, 0, 1, 7, 0, 0, 0, 0, 0, 0, 0, 0, 1, b'a', 0, 0, 0, 0,
    ];
    let rec = Recording::open(file_with_footer(dir.path(), &zero_rows)).unwrap();
    assert_eq!(rec.store.num_rows(), 0);
    assert!(
        rec.store
            .latest_at(&entity("a"), "t", 0, "x")
            .unwrap()
            .is_none()
    );

    // Same, with a codec component and a location pointing nowhere useful.
    let codec = VideoStream::CODEC.as_bytes();
    let mut bad_location = vec![1, 0, 0, 0, 0, 1, 7, 0, 0, 0, 0, 0, 0, 0, 1];
    bad_location.extend_from_slice(&0u64.to_le_bytes());
    bad_location.extend_from_slice(&16u64.to_le_bytes());
    bad_location.extend_from_slice(&0u32.to_le_bytes());
    bad_location.extend_from_slice(&[1, b'a', 1, 5, 0, 1, codec.len() as u8]);
    bad_location.extend_from_slice(codec);
    bad_location.push(0);
    let rec = Recording::open(file_with_footer(dir.path(), &bad_location)).unwrap();
    assert!(rec.store.chunk(&entity("a"), 0).is_err());

    // Random footers: never a panic.
    let mut rng = XorShift::new(3);
    for _ in 0..500 {
        let mut footer = zero_rows.to_vec();
        footer.truncate(4 + rng.below(footer.len() as u64 - 3) as usize);
        let n = rng.below(60) as usize;
        footer.extend(rng.bytes(n));
        if let Ok(rec) = Recording::open(file_with_footer(dir.path(), &footer)) {
            let _ = rec.store.num_rows();
        }
    }
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn text(out: &mut Vec<u8>, s: &str) {
    varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

#[test]
fn footer_that_disagrees_with_its_chunk_is_an_error_not_a_panic() {
    // A real file, then a footer (valid checksum) whose summary claims 100 rows for a
    // chunk of 10, all at times 0..100 on `frame`.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("four.vlog");
    let (_, frames) = four_chunks(&path);
    let file = RecordingFile::open(&path).unwrap();
    let real = &file.summaries[1];
    let location = real.location.unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let data_end = frames.last().unwrap().1 as usize;

    let mut footer = Vec::new();
    footer.extend_from_slice(&1u32.to_le_bytes());
    // Schemas: copy what the real footer says by re-reading the schema frames: the schema
    // of chunk 1 is the frame just before it.
    let schema_at = 16 + {
        // info frame length
        let len = u32::from_le_bytes(bytes[20..24].try_into().unwrap()) as u64;
        16 + len
    };
    let mut pos = schema_at as usize;
    let mut schemas = Vec::new();
    while pos < location.offset as usize {
        let len = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap()) as usize;
        if bytes[pos + 8] == 2 {
            let id = u32::from_le_bytes(bytes[pos + 16..pos + 20].try_into().unwrap());
            schemas.push((id, pos as u64, (16 + len) as u64));
        }
        pos += 16 + len;
    }
    varint(&mut footer, schemas.len() as u64);
    for (id, at, len) in &schemas {
        footer.extend_from_slice(&id.to_le_bytes());
        footer.extend_from_slice(&at.to_le_bytes());
        footer.extend_from_slice(&len.to_le_bytes());
    }
    varint(&mut footer, 1);
    footer.extend_from_slice(&real.id.0.to_le_bytes());
    footer.push(1);
    footer.extend_from_slice(&location.offset.to_le_bytes());
    footer.extend_from_slice(&location.frame_len.to_le_bytes());
    footer.extend_from_slice(&location.schema_id.to_le_bytes());
    text(&mut footer, "camera/front");
    varint(&mut footer, 100);
    varint(&mut footer, 2 * 500); // first row id 500 (zigzag)
    for _ in 1..100 {
        varint(&mut footer, 2);
    }
    varint(&mut footer, 1);
    text(&mut footer, "frame");
    text(&mut footer, "sequence");
    varint(&mut footer, 0);
    for _ in 1..100 {
        varint(&mut footer, 2);
    }
    varint(&mut footer, 1);
    text(&mut footer, VideoStream::SAMPLE);
    footer.push(0);

    let mut hand = bytes[..data_end].to_vec();
    let footer_at = hand.len() as u64;
    let header = FrameHeader::new(
        MessageKind::Footer,
        footer.len() as u32,
        checksum([footer.as_slice()]),
    );
    hand.extend_from_slice(&header.to_bytes());
    hand.extend_from_slice(&footer);
    hand.extend_from_slice(&footer_at.to_le_bytes());
    hand.extend_from_slice(b"VLGFOOT1");
    let rec = open_bytes(dir.path(), "lying.vlog", &hand);
    assert!(rec.recovery().is_none());
    let e = entity("camera/front");
    let hit = rec
        .store
        .latest_at(&e, "frame", 50, VideoStream::SAMPLE)
        .unwrap()
        .unwrap();
    assert_eq!(hit.row, 50);
    let err = rec.store.cell(&e, hit, VideoStream::SAMPLE).unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");
    assert!(rec.store.dataframe(&e, "frame", 0, 99).is_err());
}
