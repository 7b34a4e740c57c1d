//! The per-sample probe over real H.265, AV1 and VP9 streams, against the keyframe flags of
//! FFmpeg's demuxers. Skipped (with a note) when this ffmpeg lacks libx265, an AV1 encoder or
//! libvpx (never under CI for VP9).

use vidlog_testdata::{Fixture, ffprobe_packet_data};
use vidlog_types::VideoCodec;
use vidlog_video::bitstream::nal::length_prefixed_to_annexb;
use vidlog_video::probe::{
    ProbeError, SampleParameterSets, SampleProbe, StreamInfo, probe_sample, stream_info,
};

#[test]
fn h265_keyframes_match_ffmpeg() {
    if !Fixture::X265.is_available() {
        eprintln!("skipping: ffmpeg has no libx265");
        return;
    }
    // Raw Annex B: the first access unit carries VPS/SPS/PPS and an IRAP picture.
    let raw = std::fs::read(vidlog_testdata::fixture(Fixture::X265)).expect("read");
    let first = probe_sample(VideoCodec::H265, &raw).expect("probes");
    assert!(first.is_keyframe);
    let Some(SampleParameterSets::H265 { vps, sps, pps }) = first.parameter_sets else {
        panic!("first access unit without parameter sets");
    };
    assert_eq!((vps.len(), sps.len(), pps.len()), (1, 1, 1));
    // Stream info from the SPS against ffprobe, and its codec string against the one the hvcC
    // ffmpeg wrote into the fixture's MP4 says.
    let info = stream_info(VideoCodec::H265, &raw).expect("stream info");
    let stream = size_like_ffprobe(&info, &vidlog_testdata::fixture(Fixture::X265));
    assert_eq!(stream["profile"], "Main");
    assert_eq!(info.profile, "Main");
    assert_eq!((info.bit_depth, info.chroma_format), (8, "4:2:0"));
    let level = stream["level"].as_u64().expect("level");
    assert_eq!(info.level, format!("{}.{}", level / 30, (level % 30) / 3));
    let mp4 = std::fs::File::open(vidlog_testdata::fixture_mp4(Fixture::X265)).expect("open");
    let demuxer = vidlog_video::mp4::Mp4Demuxer::open(mp4).expect("demux");
    let theirs = &demuxer.tracks()[0].codec_string; // hev1.1.6.L60.90 or similar
    assert_eq!(&info.codec_string, theirs);

    // MP4 samples (length-prefixed, parameter sets out of band) converted to Annex B.
    let packets = ffprobe_packet_data(&vidlog_testdata::fixture_mp4(Fixture::X265));
    assert_eq!(packets.len(), 30);
    let mut keys = 0;
    for (i, packet) in packets.iter().enumerate() {
        let sample = length_prefixed_to_annexb(&packet.data, 4).expect("hvcC uses 4-byte lengths");
        let probe = probe_sample(VideoCodec::H265, &sample).expect("probes");
        assert_eq!(probe.is_keyframe, packet.is_key, "packet {i}");
        keys += usize::from(probe.is_keyframe);
    }
    assert!(keys >= 1);
}

/// Splits an IVF file into its frames (one AV1 temporal unit each).
fn ivf_frames(data: &[u8]) -> Vec<&[u8]> {
    assert_eq!(&data[..4], b"DKIF", "IVF signature");
    let header_len = usize::from(u16::from_le_bytes([data[6], data[7]]));
    let mut frames = Vec::new();
    let mut pos = header_len;
    while pos + 12 <= data.len() {
        let size = u32::from_le_bytes([data[pos], data[pos + 1], data[pos + 2], data[pos + 3]]);
        let start = pos + 12;
        let end = start + size as usize;
        frames.push(&data[start..end]);
        pos = end;
    }
    frames
}

/// Checks that the IVF's frames are the packets ffprobe sees (30 of them) and that each
/// probes as a keyframe exactly where ffprobe flags one; returns the probes.
fn probe_like_ffprobe(
    path: &std::path::Path,
    frames: &[&[u8]],
    codec: VideoCodec,
) -> Vec<SampleProbe> {
    let packets = ffprobe_packet_data(path);
    assert_eq!(frames.len(), 30);
    assert_eq!(frames.len(), packets.len());
    frames
        .iter()
        .zip(&packets)
        .enumerate()
        .map(|(i, (frame, packet))| {
            assert_eq!(
                *frame,
                packet.data.as_slice(),
                "IVF frame {i} is ffprobe's packet"
            );
            let probe = probe_sample(codec, frame).expect("probes");
            assert_eq!(probe.is_keyframe, packet.is_key, "{codec} sample {i}");
            probe
        })
        .collect()
}

/// Checks `info`'s size against `ffprobe -show_streams`; returns ffprobe's stream.
fn size_like_ffprobe(info: &StreamInfo, path: &std::path::Path) -> serde_json::Value {
    let stream = vidlog_testdata::ffprobe_stream(path);
    assert_eq!(
        u64::from(info.width),
        stream["width"].as_u64().expect("width")
    );
    assert_eq!(
        u64::from(info.height),
        stream["height"].as_u64().expect("height")
    );
    stream
}

#[test]
fn av1_keyframes_match_ffmpeg() {
    if !Fixture::Av1Ivf.is_available() {
        eprintln!("skipping: ffmpeg has no AV1 encoder");
        return;
    }
    let path = vidlog_testdata::fixture(Fixture::Av1Ivf);
    let data = std::fs::read(&path).expect("read");
    let frames = ivf_frames(&data);
    for (i, probe) in probe_like_ffprobe(&path, &frames, VideoCodec::Av1)
        .iter()
        .enumerate()
    {
        if probe.is_keyframe {
            assert!(
                matches!(probe.parameter_sets, Some(SampleParameterSets::Av1 { .. })),
                "keyframe {i} carries its sequence header"
            );
        }
    }
    assert!(
        probe_sample(VideoCodec::Av1, frames[0])
            .expect("probes")
            .is_keyframe
    );

    // Stream info from the sequence header against ffprobe -show_streams.
    let info = stream_info(VideoCodec::Av1, frames[0]).expect("stream info");
    let stream = size_like_ffprobe(&info, &path);
    assert_eq!(stream["profile"], "Main");
    assert_eq!(info.profile, "Main");
    assert_eq!(stream["pix_fmt"], "yuv420p");
    assert_eq!((info.bit_depth, info.chroma_format), (8, "4:2:0"));
    let level = stream["level"].as_u64().expect("level");
    assert_eq!(info.codec_string, format!("av01.0.{level:02}M.08"));
}

#[test]
fn av1_probe_never_panics_on_corrupt_temporal_units() {
    if !Fixture::Av1Ivf.is_available() {
        eprintln!("skipping: ffmpeg has no AV1 encoder");
        return;
    }
    let data = std::fs::read(vidlog_testdata::fixture(Fixture::Av1Ivf)).expect("read");
    let frames = ivf_frames(&data);
    let first = frames[0];
    for end in 0..first.len().min(2000) {
        let _ = probe_sample(VideoCodec::Av1, &first[..end]);
        let _ = stream_info(VideoCodec::Av1, &first[..end]);
    }
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..3000 {
        let mut corrupt = first[..first.len().min(256)].to_vec();
        for _ in 0..1 + next() % 4 {
            let at = (next() % corrupt.len() as u64) as usize;
            corrupt[at] ^= 1 << (next() % 8);
        }
        let _ = probe_sample(VideoCodec::Av1, &corrupt);
        let _ = stream_info(VideoCodec::Av1, &corrupt);
    }
}

#[test]
fn vp9_keyframes_superframes_and_stream_info_match_ffmpeg() {
    if !Fixture::Vp9Ivf.available_or_skip() {
        return;
    }
    let path = vidlog_testdata::fixture(Fixture::Vp9Ivf);
    let data = std::fs::read(&path).expect("read");
    let frames = ivf_frames(&data);
    let mut superframes = 0;
    for (i, (frame, probe)) in frames
        .iter()
        .zip(probe_like_ffprobe(&path, &frames, VideoCodec::Vp9))
        .enumerate()
    {
        assert_eq!(
            probe.is_keyframe,
            matches!(probe.parameter_sets, Some(SampleParameterSets::Vp9 { .. })),
            "sample {i}: keyframes carry their colour config and size"
        );
        let parts = vidlog_video::bitstream::vp9::superframe_frames(frame).expect("splits");
        if parts.len() > 1 {
            superframes += 1;
            // A superframe hides every frame but its last.
            let headers: Vec<_> = parts
                .iter()
                .map(|p| vidlog_video::bitstream::vp9::parse_frame_header(p).expect("header"))
                .collect();
            assert!(
                headers
                    .last()
                    .is_some_and(|h| h.show_frame || h.show_existing_frame)
            );
            assert!(headers[..headers.len() - 1].iter().all(|h| !h.show_frame));
        }
    }
    assert!(
        superframes > 0,
        "the alt-ref fixture has superframes (hidden frame + shown frame)"
    );
    assert_eq!(
        frames
            .iter()
            .filter(|f| probe_sample(VideoCodec::Vp9, f)
                .expect("probes")
                .is_keyframe)
            .count(),
        2,
        "GOP 15 over 30 frames"
    );

    let info = stream_info(VideoCodec::Vp9, frames[0]).expect("stream info");
    let stream = size_like_ffprobe(&info, &path);
    assert_eq!(stream["profile"], "Profile 0");
    assert_eq!(format!("Profile {}", info.profile), "Profile 0");
    assert_eq!(stream["pix_fmt"], "yuv420p");
    assert_eq!((info.bit_depth, info.chroma_format), (8, "4:2:0"));
    assert_eq!(info.codec_string, "vp09.00.20.08");

    // Inter frames are not keyframes and give no stream info; damage is an error, not a panic.
    let inter = frames
        .iter()
        .find(|f| {
            !probe_sample(VideoCodec::Vp9, f)
                .expect("probes")
                .is_keyframe
        })
        .expect("an inter frame");
    assert!(matches!(
        stream_info(VideoCodec::Vp9, inter),
        Err(ProbeError::MissingParameterSets { .. })
    ));
    for end in 0..frames[0].len().min(64) {
        let _ = probe_sample(VideoCodec::Vp9, &frames[0][..end]);
    }
    let e = probe_sample(VideoCodec::Vp9, &[0x00, 0x01]).unwrap_err();
    assert!(e.to_string().contains("VP9 sample"), "{e}");
}
