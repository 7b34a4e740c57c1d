//! The H.264 splitter, parsers and probe over real x264 streams, checked against ffprobe and
//! against the encoder's own timestamps (kept in the MP4 each raw fixture is extracted from).

use std::path::Path;

use serde_json::Value;
use vidlog_testdata::{Fixture, ffprobe_extradata, ffprobe_json, ffprobe_packets, ffprobe_stream};
use vidlog_types::VideoCodec;
use vidlog_video::bitstream::h264::{
    AccessUnit, AccessUnitReader, AccessUnitSplitter, AvcDecoderConfig, NalType,
    PresentationOrderer, avcc_record, codec_string, presentation_order, split_access_units,
};
use vidlog_video::bitstream::nal::split_annexb;
use vidlog_video::probe::{SampleParameterSets, probe_sample, stream_info};

/// Splits a file by pushing it in chunks of `chunk` bytes.
fn split_streaming(data: &[u8], chunk: usize) -> Vec<AccessUnit> {
    let mut splitter = AccessUnitSplitter::new();
    let mut out = Vec::new();
    for piece in data.chunks(chunk) {
        splitter.push(piece);
        while let Some(item) = splitter.next_access_unit() {
            out.push(item.unwrap_or_else(|e| panic!("splitter error: {e}")));
        }
    }
    splitter.finish();
    while let Some(item) = splitter.next_access_unit() {
        out.push(item.unwrap_or_else(|e| panic!("splitter error: {e}")));
    }
    out
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn as_u64(v: &Value) -> u64 {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("not a number: {v}"))
}

fn nal_types(au: &AccessUnit) -> Vec<u8> {
    split_annexb(&au.data)
        .expect("access unit is Annex B")
        .iter()
        .map(|n| n.bytes[0] & 0x1F)
        .collect()
}

/// Ranks of the MP4 packets' pts, in decode order: the encoder's presentation order.
fn encoder_presentation_order(fixture: Fixture) -> Vec<u64> {
    let packets = ffprobe_packets(&vidlog_testdata::fixture_mp4(fixture));
    let pts: Vec<i64> = packets
        .iter()
        .map(|p| p["pts"].as_i64().expect("MP4 packets have pts"))
        .collect();
    let mut sorted = pts.clone();
    sorted.sort_unstable();
    pts.iter()
        .map(|p| sorted.binary_search(p).expect("present") as u64)
        .collect()
}

#[test]
fn access_units_match_ffprobe_for_every_fixture() {
    for fixture in Fixture::H264 {
        let path = vidlog_testdata::fixture(fixture);
        let data = read(&path);
        let aus = split_streaming(&data, 4093);
        assert_eq!(
            aus,
            split_access_units(&data).expect("splits in one go"),
            "{fixture:?}: chunked and whole-buffer splitting agree"
        );

        // Frame count: ffprobe decodes and counts.
        let counted = ffprobe_json(
            &path,
            &[
                "-count_frames",
                "-select_streams",
                "v:0",
                "-show_entries",
                "stream=nb_read_frames",
            ],
        );
        let nb_frames = as_u64(&counted["streams"][0]["nb_read_frames"]);
        assert_eq!(aus.len() as u64, nb_frames, "{fixture:?}: frame count");
        assert_eq!(nb_frames, u64::from(fixture.frame_count()), "{fixture:?}");

        // Presentation order from POC equals the encoder's own timestamps.
        let entries: Vec<(i32, bool)> = aus.iter().map(|au| (au.poc, au.poc_reset)).collect();
        let order = presentation_order(&entries);
        assert_eq!(
            order,
            encoder_presentation_order(fixture),
            "{fixture:?}: presentation order"
        );
        let max_reorder = aus[0]
            .sps
            .as_ref()
            .and_then(|s| s.max_num_reorder_frames)
            .unwrap_or(PresentationOrderer::DEFAULT_MAX_REORDER);
        let mut orderer = PresentationOrderer::new(max_reorder);
        let mut streamed = vec![u64::MAX; aus.len()];
        let mut finals: Vec<(u64, u64)> = Vec::new();
        for &(poc, reset) in &entries {
            finals.extend(orderer.push(poc, reset));
        }
        finals.extend(orderer.finish());
        for (decode, presentation) in finals {
            streamed[decode as usize] = presentation;
        }
        assert_eq!(
            streamed, order,
            "{fixture:?}: streaming order with max_reorder {max_reorder}"
        );

        // Keyframes: same frames (in presentation order) as ffprobe's key_frame=1.
        let frames = vidlog_testdata::ffprobe_frames(&path);
        let ffprobe_keys: Vec<u64> = frames
            .iter()
            .enumerate()
            .filter(|(_, f)| f["key_frame"] == 1)
            .map(|(i, _)| i as u64)
            .collect();
        let mut our_keys: Vec<u64> = aus
            .iter()
            .zip(&order)
            .filter(|(au, _)| au.is_keyframe)
            .map(|(_, &i)| i)
            .collect();
        our_keys.sort_unstable();
        assert_eq!(our_keys, ffprobe_keys, "{fixture:?}: keyframes");
        assert!(aus[0].is_keyframe && aus[0].sps.is_some(), "{fixture:?}");

        // Every keyframe carries its SPS; the probe agrees with the splitter on every sample.
        for (i, au) in aus.iter().enumerate() {
            assert_eq!(au.is_keyframe, au.sps.is_some(), "{fixture:?} AU {i}");
            let probe = probe_sample(VideoCodec::H264, &au.data).expect("probes");
            assert_eq!(probe.is_keyframe, au.is_keyframe, "{fixture:?} AU {i}");
        }

        // SPS fields against ffprobe -show_streams.
        let sps = aus[0].sps.clone().expect("SPS");
        let stream = ffprobe_stream(&path);
        assert_eq!(
            u64::from(sps.cropped_width),
            as_u64(&stream["width"]),
            "{fixture:?}"
        );
        assert_eq!(
            u64::from(sps.cropped_height),
            as_u64(&stream["height"]),
            "{fixture:?}"
        );
        assert_eq!(
            u64::from(sps.level_idc),
            as_u64(&stream["level"]),
            "{fixture:?}"
        );
        assert_eq!(stream["profile"], "High", "{fixture:?}");
        assert_eq!(sps.profile_idc, 100, "{fixture:?}");
        assert_eq!(
            (sps.chroma_format_idc, sps.bit_depth_luma),
            (1, 8),
            "{fixture:?}"
        );
        assert_eq!(stream["pix_fmt"], "yuv420p", "{fixture:?}");

        // Codec string derived independently: High = 0x64, x264 sets no constraint flags.
        let expected = format!("avc1.6400{:02X}", as_u64(&stream["level"]));
        assert_eq!(codec_string(&sps), expected, "{fixture:?}");
        let info = stream_info(VideoCodec::H264, &aus[0].data).expect("stream info");
        assert_eq!(info.codec_string, expected);
        assert_eq!(info.profile, "High");
        assert_eq!(
            (info.width, info.height),
            (sps.cropped_width, sps.cropped_height)
        );

        // avcC built from the in-band SPS/PPS equals the one ffmpeg wrote into the MP4.
        let Some(SampleParameterSets::H264 { sps: s, pps: p, .. }) =
            probe_sample(VideoCodec::H264, &aus[0].data)
                .expect("probes")
                .parameter_sets
        else {
            panic!("{fixture:?}: keyframe without parameter sets");
        };
        let s: Vec<&[u8]> = s.iter().map(Vec::as_slice).collect();
        let p: Vec<&[u8]> = p.iter().map(Vec::as_slice).collect();
        let avcc = avcc_record(&s, &p).expect("builds avcC");
        let mp4_avcc = ffprobe_extradata(&vidlog_testdata::fixture_mp4(fixture));
        assert_eq!(avcc, mp4_avcc, "{fixture:?}: avcC");
        let parsed = AvcDecoderConfig::parse(&mp4_avcc).expect("parses ffmpeg's avcC");
        assert_eq!(parsed.to_bytes(), mp4_avcc, "{fixture:?}: avcC roundtrip");
        assert_eq!(parsed.length_size, 4);
        assert_eq!(parsed.high_profile.map(|h| h.chroma_format_idc), Some(1));
    }
}

#[test]
fn no_b_frames_means_presentation_equals_decode_order() {
    for fixture in [Fixture::X264HighBf0, Fixture::X264Slices4, Fixture::X264Odd] {
        let aus = split_access_units(&read(&vidlog_testdata::fixture(fixture))).expect("splits");
        let entries: Vec<(i32, bool)> = aus.iter().map(|au| (au.poc, au.poc_reset)).collect();
        let expected: Vec<u64> = (0..aus.len() as u64).collect();
        assert_eq!(presentation_order(&entries), expected, "{fixture:?}");
    }
}

#[test]
fn b_frames_reorder_within_each_gop() {
    for fixture in [Fixture::X264HighBf2, Fixture::X264HighBf3Pyramid] {
        let aus = split_access_units(&read(&vidlog_testdata::fixture(fixture))).expect("splits");
        let entries: Vec<(i32, bool)> = aus.iter().map(|au| (au.poc, au.poc_reset)).collect();
        let order = presentation_order(&entries);
        let mut sorted = order.clone();
        sorted.sort_unstable();
        assert_eq!(
            sorted,
            (0..aus.len() as u64).collect::<Vec<_>>(),
            "{fixture:?}: permutation"
        );
        assert_ne!(
            order, sorted,
            "{fixture:?}: B-frames must reorder something"
        );
        let sps = aus[0].sps.as_ref().expect("SPS");
        assert_eq!(sps.pic_order_cnt_type, 0, "{fixture:?}");
        assert!(sps.max_num_reorder_frames.unwrap_or(0) >= 1, "{fixture:?}");
    }
}

#[test]
fn multi_slice_frames_with_aud_are_one_access_unit_each() {
    let data = read(&vidlog_testdata::fixture(Fixture::X264Slices4));
    let aus = split_streaming(&data, 1000);
    assert_eq!(aus.len(), 90);
    for (i, au) in aus.iter().enumerate() {
        let types = nal_types(au);
        // ffmpeg puts x264's version SEI in front of the first AUD; every other AU starts with one.
        let first = if i == 0 { 1 } else { 0 };
        assert_eq!(types.get(first), Some(&NalType::AUD.0), "AU {i}: {types:?}");
        assert_eq!(
            types.iter().filter(|&&t| t == NalType::AUD.0).count(),
            1,
            "AU {i}: {types:?}"
        );
        let slices = types.iter().filter(|&&t| t == 1 || t == 5).count();
        assert_eq!(slices, 4, "AU {i}: {types:?}");
    }
    // Byte offsets point at each access unit's AUD start code in the file.
    for au in &aus[1..] {
        let at = usize::try_from(au.byte_offset).expect("fits");
        assert_eq!(&data[at..at + 5], &[0, 0, 0, 1, 0x09], "offset {at}");
    }
}

#[test]
fn odd_size_is_cropped() {
    let aus =
        split_access_units(&read(&vidlog_testdata::fixture(Fixture::X264Odd))).expect("splits");
    let sps = aus[0].sps.as_ref().expect("SPS");
    assert_eq!((sps.coded_width, sps.coded_height), (320, 240));
    assert_eq!((sps.cropped_width, sps.cropped_height), (318, 238));
    let timing = sps.timing.expect("x264 writes VUI timing");
    assert_eq!(timing.frame_rate(), Some(30.0));
}

#[test]
fn byte_at_a_time_streaming_matches() {
    let data = read(&vidlog_testdata::fixture(Fixture::X264Odd));
    let whole = split_access_units(&data).expect("splits");
    for chunk in [1, 2, 3, 5, 64] {
        let streamed = split_streaming(&data, chunk);
        assert_eq!(streamed.len(), whole.len(), "chunk size {chunk}");
        for (i, (a, b)) in streamed.iter().zip(&whole).enumerate() {
            assert_eq!(
                (a.byte_offset, a.data.len(), a.poc, a.is_keyframe),
                (b.byte_offset, b.data.len(), b.poc, b.is_keyframe),
                "chunk size {chunk}, AU {i}"
            );
            assert!(a == b, "chunk size {chunk}, AU {i} differs");
        }
    }
}

#[test]
fn memory_stays_bounded_over_a_long_stream() {
    // 40 copies of a 90-frame stream (each copy starts with an IDR and its SPS/PPS).
    let data = read(&vidlog_testdata::fixture(Fixture::X264HighBf2));
    let mut splitter = AccessUnitSplitter::new();
    let mut count = 0;
    let mut max_buffered = 0;
    for _ in 0..40 {
        for piece in data.chunks(8192) {
            splitter.push(piece);
            max_buffered = max_buffered.max(splitter.buffered_bytes());
            while let Some(item) = splitter.next_access_unit() {
                item.expect("access unit");
                count += 1;
            }
        }
    }
    splitter.finish();
    while let Some(item) = splitter.next_access_unit() {
        item.expect("access unit");
        count += 1;
    }
    assert_eq!(count, 40 * 90);
    // At most about two chunks plus the largest NAL unit (an IDR of a few KB here).
    assert!(
        max_buffered < 64 << 10,
        "buffered up to {max_buffered} bytes"
    );
}

#[test]
fn reader_iterates_a_file() {
    let path = vidlog_testdata::fixture(Fixture::X264HighBf3Pyramid);
    let file = std::fs::File::open(&path).expect("open");
    let aus: Vec<AccessUnit> = AccessUnitReader::new(std::io::BufReader::new(file))
        .collect::<Result<_, _>>()
        .expect("reads");
    assert_eq!(aus, split_access_units(&read(&path)).expect("splits"));
}

/// A tiny deterministic PRNG (xorshift64*), so the fuzz test needs no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn exercise(data: &[u8]) {
    let mut splitter = AccessUnitSplitter::new();
    splitter.push(data);
    splitter.finish();
    while let Some(item) = splitter.next_access_unit() {
        if let Ok(au) = item {
            let _ = probe_sample(VideoCodec::H264, &au.data);
        }
    }
    for codec in VideoCodec::ALL {
        let _ = probe_sample(codec, data);
        let _ = stream_info(codec, data);
    }
    let _ = AvcDecoderConfig::parse(data);
}

#[test]
fn arbitrary_bytes_never_panic() {
    let data = read(&vidlog_testdata::fixture(Fixture::X264HighBf2));
    let aus = split_access_units(&data).expect("splits");
    // A small stream: the first two access units (keyframe with SPS/PPS/SEI, then a P or B).
    let small: Vec<u8> = aus.iter().take(3).flat_map(|au| au.data.clone()).collect();

    // Every prefix, and every suffix, of the small stream.
    for end in 0..=small.len().min(4000) {
        exercise(&small[..end]);
    }
    for start in (0..small.len()).step_by(7) {
        exercise(&small[start..]);
    }
    // Each sample truncated anywhere, through the probe.
    for au in aus.iter().take(6) {
        for end in 0..au.data.len().min(600) {
            let _ = probe_sample(VideoCodec::H264, &au.data[..end]);
        }
    }
    // Random byte flips over the small stream, concentrated in the headers.
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..1500 {
        let mut corrupt = small.clone();
        let flips = 1 + rng.below(6);
        for _ in 0..flips {
            let span = if rng.below(2) == 0 {
                200.min(corrupt.len())
            } else {
                corrupt.len()
            };
            let at = rng.below(span);
            corrupt[at] ^= 1 << rng.below(8);
        }
        exercise(&corrupt);
    }
    // Pure noise, with and without start codes sprinkled in.
    for round in 0..200 {
        let len = rng.below(3000);
        let mut noise: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        if round % 2 == 0 {
            for _ in 0..rng.below(20) {
                if noise.len() > 4 {
                    let at = rng.below(noise.len() - 4);
                    noise[at..at + 4].copy_from_slice(&[0, 0, 1, rng.next() as u8 & 0x7F]);
                }
            }
        }
        exercise(&noise);
    }
}
