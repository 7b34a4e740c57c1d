//! Importing MCAP files written by other tools: ROS 1 and ROS 2 `CompressedImage` channels
//! carrying H.264, next to channels vidlog must skip (JPEG images, VP8, other schemas, no schema),
//! and files whose messages break the rules.

use std::collections::BTreeMap;
use std::io::Cursor;

use mcap::records::MessageHeader;
use vidlog_mcap::proto::ProtoWriter;
use vidlog_mcap::video::encode_compressed_video;
use vidlog_mcap::{McapVideoError, McapVideoReader, RosVideoMessage, VideoMessageSchema, schema};
use vidlog_testdata::{Fixture, fixture};
use vidlog_types::VideoCodec;
use vidlog_video::bitstream::h264::split_access_units;

const FRAME_NS: u64 = 33_333_333;

fn samples() -> Vec<Vec<u8>> {
    let bytes = std::fs::read(fixture(Fixture::X264HighBf0)).expect("fixture");
    split_access_units(&bytes)
        .expect("splits")
        .into_iter()
        .take(30)
        .map(|u| u.data)
        .collect()
}

/// `sensor_msgs/msg/CompressedImage` in little-endian CDR, as a ROS 2 middleware writes it.
fn cdr_compressed_image(stamp_ns: u64, frame_id: &str, format: &str, data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 1, 0, 0];
    let align4 = |out: &mut Vec<u8>| {
        while !(out.len() - 4).is_multiple_of(4) {
            out.push(0);
        }
    };
    let u32_field = |out: &mut Vec<u8>, v: u32| {
        align4(out);
        out.extend_from_slice(&v.to_le_bytes());
    };
    u32_field(&mut out, (stamp_ns / 1_000_000_000) as u32);
    u32_field(&mut out, (stamp_ns % 1_000_000_000) as u32);
    for text in [frame_id, format] {
        u32_field(&mut out, text.len() as u32 + 1);
        out.extend_from_slice(text.as_bytes());
        out.push(0);
    }
    u32_field(&mut out, data.len() as u32);
    out.extend_from_slice(data);
    out
}

/// `sensor_msgs/CompressedImage` in ROS 1 serialization.
fn ros1_compressed_image(seq: u32, stamp_ns: u64, format: &str, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for word in [
        seq,
        (stamp_ns / 1_000_000_000) as u32,
        (stamp_ns % 1_000_000_000) as u32,
    ] {
        out.extend_from_slice(&word.to_le_bytes());
    }
    for field in [&b"camera"[..], format.as_bytes(), data] {
        out.extend_from_slice(&(field.len() as u32).to_le_bytes());
        out.extend_from_slice(field);
    }
    out
}

struct Foreign {
    writer: mcap::Writer<Cursor<Vec<u8>>>,
}

impl Foreign {
    fn new() -> Self {
        Self {
            writer: mcap::Writer::new(Cursor::new(Vec::new())).expect("writer"),
        }
    }

    fn channel(&mut self, topic: &str, schema: Option<(&str, &str, &[u8])>, encoding: &str) -> u16 {
        let schema_id = match schema {
            Some((name, schema_encoding, data)) => self
                .writer
                .add_schema(name, schema_encoding, data)
                .expect("schema"),
            None => 0,
        };
        self.writer
            .add_channel(schema_id, topic, encoding, &BTreeMap::new())
            .expect("channel")
    }

    fn message(&mut self, channel_id: u16, log_time: u64, data: &[u8]) {
        self.writer
            .write_to_known_channel(
                &MessageHeader {
                    channel_id,
                    sequence: 0,
                    log_time,
                    publish_time: log_time,
                },
                data,
            )
            .expect("message");
    }

    fn finish(mut self) -> Vec<u8> {
        self.writer.finish().expect("finish");
        self.writer.into_inner().into_inner()
    }
}

#[test]
fn ros_channels_import_and_others_are_skipped() {
    let samples = samples();
    let mut file = Foreign::new();
    let ros2_msg = b"std_msgs/Header header\nstring format\nuint8[] data\n";
    let ros2 = file.channel(
        "/cam/h264",
        Some(("sensor_msgs/msg/CompressedImage", "ros2msg", ros2_msg)),
        "cdr",
    );
    let jpeg = file.channel(
        "/cam/jpeg",
        Some(("sensor_msgs/msg/CompressedImage", "ros2msg", ros2_msg)),
        "cdr",
    );
    let ros1 = file.channel(
        "/cam1/image/compressed",
        Some(("sensor_msgs/CompressedImage", "ros1msg", b"Header header\n")),
        "ros1",
    );
    let vp8 = file.channel(
        "/cam/vp8",
        Some((
            schema::SCHEMA_NAME,
            schema::SCHEMA_ENCODING,
            &schema::compressed_video_schema_data(),
        )),
        "protobuf",
    );
    let chatter = file.channel(
        "/chatter",
        Some(("std_msgs/msg/String", "ros2msg", b"string data")),
        "cdr",
    );
    let raw = file.channel("/raw", None, "application/octet-stream");
    let mut proto = ProtoWriter::new();
    for (i, sample) in samples.iter().enumerate() {
        let t = 1_700_000_000_000_000_000 + i as u64 * FRAME_NS;
        file.message(ros2, t, &cdr_compressed_image(t, "cam", "h264", sample));
        file.message(ros1, t, &ros1_compressed_image(i as u32, t, "h264", sample));
        file.message(
            jpeg,
            t,
            &cdr_compressed_image(t, "cam", "jpeg", &[0xff, 0xd8]),
        );
        encode_compressed_video(&mut proto, t as i64, "", &[1, 2, 3], "vp8");
        file.message(vp8, t, proto.as_bytes());
        file.message(chatter, t, &[0, 1, 0, 0, 3, 0, 0, 0, b'h', b'i', 0]);
        file.message(raw, t, &[42]);
    }
    let bytes = file.finish();

    let reader = McapVideoReader::open(&bytes).expect("open");
    let channels = reader.video_channels();
    assert_eq!(channels.len(), 2, "{:?}", reader.skipped_channels());
    assert_eq!(channels[0].topic, "/cam/h264");
    assert_eq!(
        channels[0].schema,
        VideoMessageSchema::Ros(RosVideoMessage::Ros2CompressedImage)
    );
    assert_eq!(channels[0].frame_id, "cam");
    assert_eq!(channels[1].topic, "/cam1/image/compressed");
    assert_eq!(
        channels[1].schema,
        VideoMessageSchema::Ros(RosVideoMessage::Ros1CompressedImage)
    );
    assert_eq!(
        channels[1].entity_path().expect("entity").as_str(),
        "cam1/image/compressed"
    );
    for channel in channels {
        assert_eq!(channel.codec, VideoCodec::H264);
        assert_eq!(channel.message_count, Some(30));
    }

    let skipped = reader.skipped_channels();
    let reasons: BTreeMap<&str, &str> = skipped
        .iter()
        .map(|s| (s.topic.as_str(), s.reason.as_str()))
        .collect();
    assert_eq!(reasons.len(), 4, "{reasons:?}");
    assert!(reasons["/cam/jpeg"].contains("\"jpeg\""), "{reasons:?}");
    assert!(reasons["/cam/vp8"].contains("\"vp8\""), "{reasons:?}");
    assert!(
        reasons["/chatter"].contains("std_msgs/msg/String"),
        "{reasons:?}"
    );
    assert!(reasons["/raw"].contains("no schema"), "{reasons:?}");

    let mut messages = reader.messages().expect("messages");
    let mut per_channel: BTreeMap<u16, Vec<_>> = BTreeMap::new();
    for message in messages.by_ref() {
        let message = message.expect("message");
        per_channel
            .entry(message.channel.0)
            .or_default()
            .push(message);
    }
    // With chunk indexes, skipped channels are not even read; their counts come from the
    // statistics.
    assert_eq!(messages.skipped_messages(), 0);
    assert!(
        skipped.iter().all(|s| s.message_count == Some(30)),
        "{skipped:?}"
    );
    for id in [ros2, ros1] {
        let read = &per_channel[&id];
        assert_eq!(read.len(), samples.len());
        for (i, message) in read.iter().enumerate() {
            let t = 1_700_000_000_000_000_000 + i as u64 * FRAME_NS;
            assert_eq!(message.pts_ns, t as i64);
            assert_eq!(message.log_time_ns, t);
            assert!(message.data == samples[i], "channel {id} sample {i}");
        }
    }
}

#[test]
fn a_channel_that_changes_format_is_an_error() {
    let mut file = Foreign::new();
    let schema_data = schema::compressed_video_schema_data();
    let channel = file.channel(
        "/cam",
        Some((schema::SCHEMA_NAME, schema::SCHEMA_ENCODING, &schema_data)),
        "protobuf",
    );
    let mut proto = ProtoWriter::new();
    encode_compressed_video(&mut proto, 0, "", &[0, 0, 0, 1, 0x65], "h264");
    file.message(channel, 0, proto.as_bytes());
    encode_compressed_video(&mut proto, 1, "", &[0, 0, 0, 1, 0x26], "h265");
    file.message(channel, 1, proto.as_bytes());
    file.message(channel, 2, &[0x1a, 0x7f, 1]);
    let bytes = file.finish();

    let reader = McapVideoReader::open(&bytes).expect("open");
    let results: Vec<_> = reader.messages().expect("messages").collect();
    assert_eq!(results.len(), 2, "the iterator stops after the first error");
    assert!(results[0].is_ok());
    match &results[1] {
        Err(e @ McapVideoError::FormatChanged { .. }) => {
            let text = e.to_string();
            assert!(text.contains("/cam") && text.contains("h265"), "{text}");
        }
        other => panic!("expected FormatChanged, got {other:?}"),
    }
}

#[test]
fn a_message_that_does_not_decode_is_an_error() {
    let mut file = Foreign::new();
    let schema_data = schema::compressed_video_schema_data();
    let channel = file.channel(
        "/cam",
        Some((schema::SCHEMA_NAME, schema::SCHEMA_ENCODING, &schema_data)),
        "protobuf",
    );
    let mut proto = ProtoWriter::new();
    encode_compressed_video(&mut proto, 0, "", &[0, 0, 0, 1, 0x65], "h264");
    file.message(channel, 0, proto.as_bytes());
    // Field 3 (data) claims 127 bytes but has 1.
    file.message(channel, 5, &[0x1a, 0x7f, 1]);
    let bytes = file.finish();

    let reader = McapVideoReader::open(&bytes).expect("open");
    let error = reader
        .messages()
        .expect("messages")
        .find_map(Result::err)
        .expect("an error");
    assert!(
        matches!(error, McapVideoError::BadMessage { log_time_ns: 5, .. }),
        "{error}"
    );
    assert!(
        error.to_string().contains("foxglove.CompressedVideo"),
        "{error}"
    );
}

/// Most ROS 2 and Foxglove recordings use zstd chunks; with the `compressed-chunks` feature they
/// import like any other.
#[cfg(feature = "compressed-chunks")]
#[test]
fn zstd_chunks_import_with_the_feature() {
    let samples = samples();
    let options = mcap::WriteOptions::new().compression(Some(mcap::Compression::Zstd));
    let mut writer = mcap::Writer::with_options(Cursor::new(Vec::new()), options).expect("writer");
    let schema_data = schema::compressed_video_schema_data();
    let schema_id = writer
        .add_schema(schema::SCHEMA_NAME, schema::SCHEMA_ENCODING, &schema_data)
        .expect("schema");
    let channel = writer
        .add_channel(schema_id, "/cam", "protobuf", &BTreeMap::new())
        .expect("channel");
    let mut proto = ProtoWriter::new();
    for (i, sample) in samples.iter().enumerate() {
        encode_compressed_video(&mut proto, i as i64 * FRAME_NS as i64, "", sample, "h264");
        writer
            .write_to_known_channel(
                &MessageHeader {
                    channel_id: channel,
                    sequence: i as u32,
                    log_time: i as u64 * FRAME_NS,
                    publish_time: i as u64 * FRAME_NS,
                },
                proto.as_bytes(),
            )
            .expect("message");
    }
    writer.finish().expect("finish");
    let bytes = writer.into_inner().into_inner();
    let reader = McapVideoReader::open(&bytes).expect("open");
    let read: Vec<_> = reader
        .messages()
        .expect("messages")
        .collect::<Result<_, _>>()
        .expect("read");
    assert_eq!(read.len(), samples.len());
    assert!(read.iter().zip(&samples).all(|(m, s)| m.data == *s));
}
