//! MCAP export and import with real H.264 streams (made by ffmpeg, see vidlog-testdata): two
//! channels, one with B-frames, written, read back and compared byte for byte; the embedded
//! schema checked field by field; damaged files rejected without panics.

use std::collections::BTreeMap;
use std::io::{Cursor, Read, Seek, SeekFrom};
use std::path::Path;

use vidlog_mcap::proto::{FieldValue, ProtoReader};
use vidlog_mcap::schema::{self, DescriptorSet};
use vidlog_mcap::{ChannelId, McapVideoError, McapVideoReader, McapVideoWriter};
use vidlog_testdata::{Fixture, fixture};
use vidlog_types::VideoCodec;
use vidlog_video::bitstream::h264::{presentation_order, split_access_units};

/// 30 fps in nanoseconds, rounded.
const FRAME_NS: i64 = 33_333_333;

/// A fixture as samples in decode order with their presentation times.
struct Stream {
    samples: Vec<Vec<u8>>,
    pts_ns: Vec<i64>,
}

fn stream(fixture_name: Fixture) -> Stream {
    let bytes = std::fs::read(fixture(fixture_name)).expect("fixture readable");
    let units = split_access_units(&bytes).expect("fixture splits into access units");
    let order = presentation_order(
        &units
            .iter()
            .map(|u| (u.poc, u.poc_reset))
            .collect::<Vec<_>>(),
    );
    Stream {
        pts_ns: order.iter().map(|&i| i as i64 * FRAME_NS).collect(),
        samples: units.into_iter().map(|u| u.data).collect(),
    }
}

/// Writes both streams interleaved sample by sample into `output`, with small chunks so the file
/// has many. The B-frame stream uses PTS-derived log times (held where PTS goes back).
fn write_two_channels<W: std::io::Write + Seek>(
    output: W,
    plain: &Stream,
    bframes: &Stream,
) -> (W, ChannelId, ChannelId) {
    let mut writer = McapVideoWriter::with_chunk_size(output, 16 << 10).expect("writer");
    let front = writer
        .add_video_channel("camera/front", VideoCodec::H264)
        .expect("channel");
    let back = writer
        .add_video_channel("/camera/back", VideoCodec::H264)
        .expect("channel");
    for i in 0..plain.samples.len().max(bframes.samples.len()) {
        if let Some(sample) = plain.samples.get(i) {
            let pts = plain.pts_ns[i];
            writer
                .write_sample(front, pts as u64, pts, sample)
                .expect("write sample");
        }
        if let Some(sample) = bframes.samples.get(i) {
            writer
                .write_sample_at_pts(back, bframes.pts_ns[i], sample)
                .expect("write sample");
        }
    }
    assert_eq!(writer.sample_count(front), Some(plain.samples.len() as u64));
    (writer.finish().expect("finish"), front, back)
}

#[test]
fn two_h264_channels_round_trip_byte_for_byte() {
    let plain = stream(Fixture::X264HighBf0);
    let bframes = stream(Fixture::X264HighBf2);
    assert_eq!(plain.samples.len(), 90);
    assert_eq!(bframes.samples.len(), 90);
    assert!(
        bframes.pts_ns.windows(2).any(|w| w[1] < w[0]),
        "the B-frame fixture should reorder"
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("run.mcap");
    let file = std::fs::File::create(&path).expect("create");
    let (_, front, back) = write_two_channels(file, &plain, &bframes);
    let bytes = std::fs::read(&path).expect("read back");

    let reader = McapVideoReader::open(&bytes).expect("open");
    assert!(reader.is_log_time_ordered());
    assert!(reader.skipped_channels().is_empty());
    let channels = reader.video_channels();
    assert_eq!(channels.len(), 2);
    assert_eq!((channels[0].id, channels[1].id), (front, back));
    assert_eq!(channels[0].topic, "/camera/front");
    assert_eq!(channels[1].topic, "/camera/back");
    for channel in channels {
        assert_eq!(channel.codec, VideoCodec::H264);
        assert_eq!(channel.format, "h264");
        assert_eq!(channel.message_count, Some(90));
    }
    assert_eq!(
        channels[1].entity_path().expect("entity").as_str(),
        "camera/back"
    );

    let mut by_channel: BTreeMap<ChannelId, Vec<(i64, Vec<u8>)>> = BTreeMap::new();
    let mut last_log_time = 0;
    let mut messages = reader.messages().expect("messages");
    for message in messages.by_ref() {
        let message = message.expect("message");
        assert!(message.log_time_ns >= last_log_time, "log-time order");
        last_log_time = message.log_time_ns;
        by_channel
            .entry(message.channel)
            .or_default()
            .push((message.pts_ns, message.data));
    }
    assert_eq!(messages.skipped_messages(), 0);
    for (id, stream) in [(front, &plain), (back, &bframes)] {
        let read = &by_channel[&id];
        assert_eq!(read.len(), stream.samples.len());
        for (i, (pts, data)) in read.iter().enumerate() {
            assert_eq!(*pts, stream.pts_ns[i], "channel {id} sample {i}: pts");
            assert!(
                *data == stream.samples[i],
                "channel {id} sample {i}: data differs"
            );
        }
    }
}

#[test]
fn pts_as_log_time_is_refused_when_it_goes_backwards() {
    let bframes = stream(Fixture::X264HighBf2);
    let mut writer = McapVideoWriter::new(Cursor::new(Vec::new())).expect("writer");
    let back = writer
        .add_video_channel("camera/back", VideoCodec::H264)
        .expect("channel");
    let mut refused = None;
    for (sample, &pts) in bframes.samples.iter().zip(&bframes.pts_ns) {
        if let Err(e) = writer.write_sample(back, pts as u64, pts, sample) {
            refused = Some(e);
            break;
        }
    }
    let error = refused.expect("a backwards log time is refused");
    assert!(matches!(error, McapVideoError::LogTimeBackwards { .. }));
    let text = error.to_string();
    assert!(
        text.contains("/camera/back") && text.contains("write_sample_at_pts"),
        "{text}"
    );
    // The writer stays usable after a refused sample.
    writer
        .write_sample_at_pts(back, 10 * FRAME_NS, &bframes.samples[0])
        .expect("later sample");
    assert!(matches!(
        writer.add_video_channel("camera/back", VideoCodec::Av1),
        Err(McapVideoError::CodecConflict { .. })
    ));
    assert!(matches!(
        writer.add_video_channel("camera//x", VideoCodec::Av1),
        Err(McapVideoError::EntityPath { .. })
    ));
    assert!(matches!(
        writer.write_sample(ChannelId(77), 0, 0, &[]),
        Err(McapVideoError::UnknownChannel(ChannelId(77)))
    ));
}

/// Walks the embedded `FileDescriptorSet` with nothing but the wire reader and the well-known
/// field numbers of descriptor.proto, independently of `schema::DescriptorSet`.
#[test]
fn embedded_schema_is_a_foxglove_descriptor_set() {
    let plain = stream(Fixture::X264HighBf0);
    let mut writer = McapVideoWriter::new(Cursor::new(Vec::new())).expect("writer");
    let channel = writer
        .add_video_channel("camera/front", VideoCodec::H264)
        .expect("channel");
    writer
        .write_sample(channel, 0, 0, &plain.samples[0])
        .expect("sample");
    let bytes = writer.finish().expect("finish").into_inner();

    let summary = mcap::Summary::read(&bytes)
        .expect("summary reads")
        .expect("summary present");
    let mcap_channel = summary.channels.values().next().expect("one channel");
    assert_eq!(mcap_channel.topic, "/camera/front");
    assert_eq!(mcap_channel.message_encoding, "protobuf");
    let mcap_schema = mcap_channel.schema.as_ref().expect("schema");
    assert_eq!(mcap_schema.name, "foxglove.CompressedVideo");
    assert_eq!(mcap_schema.encoding, "protobuf");

    // FileDescriptorSet.file = 1.
    let files: Vec<&[u8]> = fields(&mcap_schema.data)
        .into_iter()
        .filter(|(n, _)| *n == 1)
        .map(|(_, v)| bytes_of(v))
        .collect();
    assert_eq!(files.len(), 2);
    let mut seen_video = false;
    let mut seen_timestamp = false;
    for file in files {
        // FileDescriptorProto: name = 1, package = 2, dependency = 3, message_type = 4, syntax = 12.
        let f = fields(file);
        let name = text(&f, 1);
        assert_eq!(text(&f, 12), "proto3", "{name}");
        let messages: Vec<&[u8]> = f
            .iter()
            .filter(|(n, _)| *n == 4)
            .map(|(_, v)| bytes_of(*v))
            .collect();
        assert_eq!(messages.len(), 1, "{name}");
        let message = fields(messages[0]);
        // DescriptorProto: name = 1, field = 2. FieldDescriptorProto: name = 1, number = 3,
        // label = 4, type = 5, type_name = 6, json_name = 10.
        let declared: Vec<(String, u64, u64, u64, String, String)> = message
            .iter()
            .filter(|(n, _)| *n == 2)
            .map(|(_, v)| {
                let field = fields(bytes_of(*v));
                (
                    text(&field, 1),
                    varint(&field, 3),
                    varint(&field, 4),
                    varint(&field, 5),
                    text(&field, 6),
                    text(&field, 10),
                )
            })
            .collect();
        let owned = |v: &[(&str, u64, u64, u64, &str, &str)]| -> Vec<_> {
            v.iter()
                .map(|&(a, b, c, d, e, f)| (a.to_owned(), b, c, d, e.to_owned(), f.to_owned()))
                .collect()
        };
        match name.as_str() {
            "foxglove/CompressedVideo.proto" => {
                seen_video = true;
                assert_eq!(text(&f, 2), "foxglove");
                assert_eq!(text(&f, 3), "google/protobuf/timestamp.proto");
                assert_eq!(text(&message, 1), "CompressedVideo");
                // LABEL_OPTIONAL = 1; TYPE_MESSAGE = 11, TYPE_STRING = 9, TYPE_BYTES = 12.
                assert_eq!(
                    declared,
                    owned(&[
                        (
                            "timestamp",
                            1,
                            1,
                            11,
                            ".google.protobuf.Timestamp",
                            "timestamp"
                        ),
                        ("frame_id", 2, 1, 9, "", "frameId"),
                        ("data", 3, 1, 12, "", "data"),
                        ("format", 4, 1, 9, "", "format"),
                    ])
                );
            }
            "google/protobuf/timestamp.proto" => {
                seen_timestamp = true;
                assert_eq!(text(&f, 2), "google.protobuf");
                assert_eq!(text(&message, 1), "Timestamp");
                // TYPE_INT64 = 3, TYPE_INT32 = 5.
                assert_eq!(
                    declared,
                    owned(&[
                        ("seconds", 1, 1, 3, "", "seconds"),
                        ("nanos", 2, 1, 5, "", "nanos"),
                    ])
                );
            }
            other => panic!("unexpected file {other}"),
        }
    }
    assert!(seen_video && seen_timestamp);

    // The crate's own model agrees.
    let set = DescriptorSet::decode(&mcap_schema.data).expect("decodes");
    assert_eq!(set, schema::compressed_video_descriptor_set());
    assert_eq!(schema::check_compressed_video(&set), Ok(()));

    // And the optional independent check with Python's mcap + protobuf, when installed.
    python_check(&bytes);
}

fn fields(message: &[u8]) -> Vec<(u32, FieldValue<'_>)> {
    ProtoReader::new(message)
        .map(|f| f.map(|f| (f.number, f.value)).expect("valid protobuf"))
        .collect()
}

fn bytes_of(value: FieldValue<'_>) -> &[u8] {
    match value {
        FieldValue::LengthDelimited(b) => b,
        other => panic!("expected length-delimited, got {other:?}"),
    }
}

fn text(fields: &[(u32, FieldValue<'_>)], number: u32) -> String {
    fields
        .iter()
        .find(|(n, _)| *n == number)
        .map(|(_, v)| String::from_utf8(bytes_of(*v).to_vec()).expect("UTF-8"))
        .unwrap_or_default()
}

fn varint(fields: &[(u32, FieldValue<'_>)], number: u32) -> u64 {
    match fields.iter().find(|(n, _)| *n == number) {
        Some((_, FieldValue::Varint(v))) => *v,
        other => panic!("field {number}: expected a varint, got {other:?}"),
    }
}

/// Runs `tests/check_mcap.py` when Python has the `mcap`, `mcap_protobuf` and `protobuf`
/// packages (no network: it only checks what is installed).
fn python_check(mcap_bytes: &[u8]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/check_mcap.py");
    let probe = std::process::Command::new("python3")
        .args(["-c", "import mcap, mcap_protobuf, google.protobuf"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!(
            "skipping the Python cross-check: `pip install mcap mcap-protobuf-support protobuf` \
             to run it"
        );
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("check.mcap");
    std::fs::write(&path, mcap_bytes).expect("write");
    let output = std::process::Command::new("python3")
        .arg(&script)
        .arg(&path)
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "Python cross-check failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!(
        "Python cross-check: {}",
        String::from_utf8_lossy(&output.stdout).trim()
    );
}

fn two_channel_file() -> Vec<u8> {
    let plain = stream(Fixture::X264HighBf0);
    let bframes = stream(Fixture::X264HighBf2);
    let (cursor, _, _) = write_two_channels(Cursor::new(Vec::new()), &plain, &bframes);
    cursor.into_inner()
}

/// Opens and reads everything; returns whether it all succeeded. Must never panic.
fn read_all(bytes: &[u8]) -> Result<usize, McapVideoError> {
    let reader = McapVideoReader::open(bytes)?;
    let mut count = 0;
    for message in reader.messages()? {
        message?;
        count += 1;
    }
    Ok(count)
}

#[test]
fn truncated_files_are_errors() {
    let bytes = two_channel_file();
    assert_eq!(read_all(&bytes).expect("intact file reads"), 180);
    // Every cut in the first and last 2 KiB (header, summary, footer), and a stride through the
    // data section.
    let len = bytes.len();
    let cuts = (0..len.min(2048))
        .chain((2048..len.saturating_sub(2048)).step_by(997))
        .chain(len.saturating_sub(2048)..len);
    for cut in cuts {
        match read_all(&bytes[..cut]) {
            Ok(n) => panic!("a file cut at {cut} of {len} read {n} messages without error"),
            Err(e) => {
                let text = e.to_string();
                assert!(!text.is_empty());
                if cut >= 8 {
                    assert!(
                        matches!(e, McapVideoError::Truncated { .. }),
                        "cut at {cut}: {text}"
                    );
                }
            }
        }
    }
    let error = read_all(&bytes[..len / 2]).expect_err("truncated");
    assert!(error.to_string().contains("truncated"), "{error}");
}

#[test]
fn corrupted_files_are_errors_not_panics() {
    let bytes = two_channel_file();
    let expected = read_all(&bytes).expect("intact");
    let len = bytes.len();
    let mut errors = 0;
    let mut silent = Vec::new();
    let positions = (0..len.min(4096))
        .chain((4096..len.saturating_sub(4096)).step_by(331))
        .chain(len.saturating_sub(4096)..len);
    for position in positions {
        let mut damaged = bytes.clone();
        damaged[position] ^= 0xa5;
        match read_all(&damaged) {
            Err(_) => errors += 1,
            Ok(n) => silent.push((position, n)),
        }
    }
    // Damage inside chunks is caught by their CRCs, in the summary by its CRC. What may go
    // unnoticed: bytes no reader needs (padding in headers, the library string, index records
    // of a reader that does not use them); none of those change the video.
    for &(position, n) in &silent {
        assert_eq!(
            n, expected,
            "damage at {position} changed the message count"
        );
    }
    assert!(errors > 0);
    eprintln!(
        "{errors} damaged files rejected, {} read unchanged",
        silent.len()
    );
}

#[test]
fn random_damage_never_panics() {
    let bytes = two_channel_file();
    // A small deterministic generator (xorshift) for positions and values.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..300 {
        let mut damaged = bytes.clone();
        for _ in 0..(1 + next() % 8) {
            let i = (next() % damaged.len() as u64) as usize;
            damaged[i] = next() as u8;
        }
        let _ = read_all(&damaged);
    }
}

#[test]
fn not_an_mcap_file() {
    let error = McapVideoReader::open(b"\x00\x00\x00\x01\x67 not mcap").expect_err("rejected");
    assert!(matches!(error, McapVideoError::NotMcap { .. }), "{error}");
    assert!(McapVideoReader::open(&[]).is_err());
}

#[test]
fn files_without_chunks_read_in_file_order() {
    let plain = stream(Fixture::X264HighBf0);
    let options = mcap::WriteOptions::new()
        .compression(None)
        .use_chunks(false);
    let mut mcap_writer =
        mcap::Writer::with_options(Cursor::new(Vec::new()), options).expect("writer");
    let schema_id = mcap_writer
        .add_schema(
            schema::SCHEMA_NAME,
            schema::SCHEMA_ENCODING,
            &schema::compressed_video_schema_data(),
        )
        .expect("schema");
    let channel = mcap_writer
        .add_channel(schema_id, "/cam", "protobuf", &BTreeMap::new())
        .expect("channel");
    let mut message = vidlog_mcap::proto::ProtoWriter::new();
    for (i, sample) in plain.samples.iter().enumerate() {
        vidlog_mcap::video::encode_compressed_video(
            &mut message,
            plain.pts_ns[i],
            "cam_frame",
            sample,
            "h264",
        );
        mcap_writer
            .write_to_known_channel(
                &mcap::records::MessageHeader {
                    channel_id: channel,
                    sequence: i as u32,
                    log_time: plain.pts_ns[i] as u64,
                    publish_time: plain.pts_ns[i] as u64,
                },
                message.as_bytes(),
            )
            .expect("message");
    }
    mcap_writer.finish().expect("finish");
    let bytes = mcap_writer.into_inner().into_inner();

    let reader = McapVideoReader::open(&bytes).expect("open");
    assert!(!reader.is_log_time_ordered());
    let channel = &reader.video_channels()[0];
    assert_eq!(channel.frame_id, "cam_frame");
    assert_eq!(channel.message_count, Some(90));
    let read: Vec<_> = reader
        .messages()
        .expect("messages")
        .collect::<Result<_, _>>()
        .expect("all read");
    assert_eq!(read.len(), 90);
    for (i, message) in read.iter().enumerate() {
        assert_eq!(message.pts_ns, plain.pts_ns[i]);
        assert!(message.data == plain.samples[i]);
    }
}

/// Reads the fixture file through a `Read + Seek` just to check the writer works on files too.
#[test]
fn writer_output_starts_and_ends_with_magic() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("empty.mcap");
    let writer = McapVideoWriter::new(std::fs::File::create(&path).expect("create")).expect("w");
    let mut file = writer.finish().expect("finish");
    file.seek(SeekFrom::Start(0)).expect("seek");
    drop(file);
    let mut bytes = Vec::new();
    std::fs::File::open(&path)
        .expect("open")
        .read_to_end(&mut bytes)
        .expect("read");
    assert!(bytes.starts_with(mcap::MAGIC) && bytes.ends_with(mcap::MAGIC));
    let reader = McapVideoReader::open(&bytes).expect("an empty MCAP opens");
    assert!(reader.video_channels().is_empty());
    assert_eq!(reader.messages().expect("messages").count(), 0);
}
