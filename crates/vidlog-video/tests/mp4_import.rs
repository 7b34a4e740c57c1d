//! MP4 import: our own MP4s round-trip (same Annex B samples, same pts in ns), FFmpeg-made MP4s
//! read the way ffprobe reads them, and truncated or corrupted files give errors, never panics.

mod mp4_support;

use std::io::Cursor;

use mp4_support::*;
use vidlog_testdata::{
    Fixture, ffprobe_extradata, ffprobe_frames, ffprobe_json, fixture, fixture_mp4, has_ffmpeg,
};
use vidlog_types::VideoCodec;
use vidlog_video::bitstream::nal::split_annexb;
use vidlog_video::mp4::timing::{ns_to_ticks, ticks_to_ns};
use vidlog_video::mp4::{Mp4Demuxer, Mp4Error, Mp4Options, read_frame_timestamps_nanos};

fn nal_list(annexb: &[u8]) -> Vec<Vec<u8>> {
    split_annexb(annexb)
        .expect("Annex B")
        .into_iter()
        .map(|n| n.bytes.to_vec())
        .collect()
}

fn cases() -> Vec<Case> {
    vec![
        fixture_case(Fixture::X264HighBf0),
        fixture_case(Fixture::X264HighBf3Pyramid),
        fixture_case(Fixture::X264Odd),
        encoder_case(),
        jittered(&fixture_case(Fixture::X264HighBf2), 1, 42),
    ]
}

#[test]
fn round_trip_gives_the_same_samples_and_times() {
    if !has_ffmpeg() {
        return eprintln!("skipped: no ffmpeg");
    }
    for case in cases() {
        for fragmented in [false, true] {
            let what = format!("{} fragmented={fragmented}", case.name);
            let (bytes, summary) = mux(
                &case,
                Mp4Options {
                    fragmented,
                    ..Mp4Options::default()
                },
            );
            let mut demuxer = Mp4Demuxer::open(Cursor::new(&bytes)).expect("opens");
            assert_eq!(demuxer.tracks().len(), 1);
            let track = demuxer.tracks()[0].clone();
            let entry = entry(&case);
            assert_eq!(track.codec, Some(VideoCodec::H264));
            assert_eq!(track.codec_string, entry.codec_string(), "{what}");
            assert_eq!((track.width, track.height), entry.dimensions());
            assert_eq!(track.timescale, summary.timescale);
            assert_eq!(track.samples.len(), case.samples.len(), "{what}");
            let t = track.timescale;
            let origin = ns_to_ticks(*case.pts.iter().min().expect("pts"), t);
            for (i, (sample, (data, key))) in track.samples.iter().zip(&case.samples).enumerate() {
                assert_eq!(sample.is_sync, *key, "{what} sample {i}");
                assert_eq!(
                    ticks_to_ns(sample.pts + origin, t),
                    case.pts[i],
                    "{what} sample {i}"
                );
                assert_eq!(
                    sample.pts_ns(t),
                    case.pts[i] - ticks_to_ns(origin, t),
                    "{what} sample {i}"
                );
                let back = demuxer.read_sample(0, i).expect("reads");
                assert_eq!(&back, data, "{what} sample {i} bytes");
            }
            // Decode times increase; durations chain them; the last one is the median interval.
            let s = &track.samples;
            assert!(
                s.windows(2)
                    .all(|w| w[0].dts + i64::from(w[0].duration) == w[1].dts)
            );
            let mut logged = read_frame_timestamps_nanos(&bytes).expect("timestamps");
            logged.iter_mut().for_each(|p| *p += ticks_to_ns(origin, t));
            let mut want = case.pts.clone();
            want.sort_unstable();
            assert_eq!(logged, want, "{what}");
            assert!(matches!(
                demuxer.read_sample(0, s.len()),
                Err(Mp4Error::NoSuchSample { .. })
            ));
            assert!(matches!(
                demuxer.read_sample(1, 0),
                Err(Mp4Error::NoSuchTrack { .. })
            ));
        }
    }
}

/// FFmpeg's own MP4s (B-frames, its edit lists, stco, 1/15360 timescale): our tables equal
/// ffprobe's packets, and the samples equal the Annex B stream extracted from them.
#[test]
fn reads_ffmpeg_made_mp4s_like_ffprobe() {
    if !has_ffmpeg() {
        return eprintln!("skipped: no ffmpeg");
    }
    for f in [
        Fixture::X264HighBf0,
        Fixture::X264HighBf2,
        Fixture::X264HighBf3Pyramid,
        Fixture::X264Slices4,
        Fixture::X264Odd,
    ] {
        let path = fixture_mp4(f);
        let file = std::fs::File::open(&path).expect("opens");
        let mut demuxer = Mp4Demuxer::open(file).expect("demuxes");
        let track = demuxer.tracks()[0].clone();
        let probe = ffprobe_json(
            &path,
            &["-select_streams", "v:0", "-show_packets", "-show_streams"],
        );
        let stream = &probe["streams"][0];
        assert_eq!(
            stream["time_base"],
            format!("1/{}", track.timescale),
            "{f:?}"
        );
        assert_eq!(stream["width"].as_i64(), Some(i64::from(track.width)));
        let avcc = ffprobe_extradata(&path);
        assert_eq!(
            track.codec_string,
            format!("avc1.{:02X}{:02X}{:02X}", avcc[1], avcc[2], avcc[3]),
            "{f:?}"
        );
        let packets = probe["packets"].as_array().expect("packets");
        assert_eq!(packets.len(), track.samples.len(), "{f:?}");
        for (i, (p, s)) in packets.iter().zip(&track.samples).enumerate() {
            assert_eq!(int(p, "pts"), Some(s.pts), "{f:?} sample {i} pts");
            assert_eq!(
                int(p, "size"),
                Some(i64::from(s.size)),
                "{f:?} sample {i} size"
            );
            assert_eq!(
                p["flags"].as_str().unwrap_or("").contains('K'),
                s.is_sync,
                "{f:?} sample {i} sync"
            );
        }
        // ffprobe's dts are shifted by the edit list like the pts; ours stay media times.
        let shift = int(&packets[0], "dts").expect("dts") - track.samples[0].dts;
        for (p, s) in packets.iter().zip(&track.samples) {
            assert_eq!(int(p, "dts"), Some(s.dts + shift));
        }
        // Samples: the same NAL units as the Annex B stream ffmpeg extracted from this file
        // (h264_mp4toannexb puts the avcC SPS/PPS right before the IDR slice, after the SEI;
        // we put them first, so compare the NAL units as sorted lists).
        let annexb = std::fs::read(fixture(f)).expect("fixture");
        let units = vidlog_video::bitstream::h264::split_access_units(&annexb).expect("splits");
        for (i, unit) in units.iter().enumerate() {
            let mut ours = nal_list(&demuxer.read_sample(0, i).expect("reads"));
            let mut theirs = nal_list(&unit.data);
            ours.sort();
            theirs.sort();
            assert!(ours == theirs, "{f:?} sample {i}: NAL units differ");
        }
        // Frame timestamps equal ffprobe's frames.
        let frames = ffprobe_frames(&path);
        let want: Vec<i64> = frames
            .iter()
            .map(|fr| ticks_to_ns(int(fr, "pts").expect("pts"), track.timescale))
            .collect();
        let bytes = std::fs::read(&path).expect("reads");
        assert_eq!(
            read_frame_timestamps_nanos(&bytes).expect("timestamps"),
            want,
            "{f:?}"
        );
    }
}

#[test]
fn reads_ffmpeg_made_hevc_mp4() {
    if !has_ffmpeg() || !Fixture::X265.is_available() {
        return eprintln!("skipped: no ffmpeg with libx265");
    }
    let path = fixture_mp4(Fixture::X265);
    let mut demuxer =
        Mp4Demuxer::open(std::fs::File::open(&path).expect("opens")).expect("demuxes");
    let track = demuxer.tracks()[0].clone();
    assert_eq!(track.codec, Some(VideoCodec::H265));
    // ffmpeg writes `hev1` (parameter sets may also be in-band); Main profile, level from hvcC.
    assert!(
        track.codec_string.starts_with("hev1.1.6.L"),
        "{}",
        track.codec_string
    );
    assert_eq!(track.samples.len(), 30);
    let mut stream = Vec::new();
    for i in 0..track.samples.len() {
        stream.extend(demuxer.read_sample(0, i).expect("reads"));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let ours = write_temp(dir.path(), "back.h265", &stream);
    assert_eq!(
        frame_md5s(&ours, Some("hevc")),
        frame_md5s(&fixture(Fixture::X265), Some("hevc"))
    );
}

/// Truncating an MP4 anywhere (every 997th byte) gives an error naming the box and offset, or,
/// at a fragment boundary, fewer samples that all read.
#[test]
fn truncated_files_give_errors() {
    if !has_ffmpeg() {
        return eprintln!("skipped: no ffmpeg");
    }
    let case = fixture_case(Fixture::X264HighBf2);
    for fragmented in [false, true] {
        let (bytes, _) = mux(
            &case,
            Mp4Options {
                fragmented,
                ..Mp4Options::default()
            },
        );
        let mut partial_ok = 0;
        for cut in (0..bytes.len()).step_by(997) {
            match Mp4Demuxer::open(Cursor::new(&bytes[..cut])) {
                Ok(mut d) => {
                    assert!(fragmented, "plain MP4 cut at {cut} opened");
                    let n = d.tracks()[0].samples.len();
                    assert!(n < case.samples.len());
                    for i in 0..n {
                        d.read_sample(0, i).expect("a listed sample reads");
                    }
                    partial_ok += 1;
                }
                Err(e) => {
                    let msg = e.to_string();
                    assert!(
                        msg.contains("truncated")
                            || msg.contains("no moov")
                            || msg.contains("no video track"),
                        "cut at {cut}: {msg}"
                    );
                    if cut > 0 && !fragmented {
                        assert!(
                            matches!(e, Mp4Error::Truncated { .. } | Mp4Error::MissingBox { .. }),
                            "cut at {cut}: {e:?}"
                        );
                    }
                }
            }
        }
        eprintln!("fragmented={fragmented}: {partial_ok} cuts opened with fewer samples");
    }
    let err = Mp4Demuxer::open(Cursor::new(b"hello, this is not an mp4")).unwrap_err();
    assert!(err.to_string().contains("is it an MP4?"), "{err}");
}

/// Random byte corruption in moov/moof never panics; specific corruptions name the box.
#[test]
fn corrupted_files_give_errors_not_panics() {
    if !has_ffmpeg() {
        return eprintln!("skipped: no ffmpeg");
    }
    let case = fixture_case(Fixture::X264HighBf3Pyramid);
    let mut rng = XorShift(0xC0FF_EE00_1234_5678);
    for fragmented in [false, true] {
        let (bytes, _) = mux(
            &case,
            Mp4Options {
                fragmented,
                ..Mp4Options::default()
            },
        );
        let moov = bytes.windows(4).position(|w| w == b"moov").expect("moov") - 4;
        let (mut errors, mut opened) = (0, 0);
        for _ in 0..3000 {
            let mut bad = bytes.clone();
            // Mostly inside moov (where the tables are), sometimes anywhere.
            let at = if rng.next().is_multiple_of(4) {
                (rng.next() % bad.len() as u64) as usize
            } else {
                moov + (rng.next() % (bad.len() - moov).min(4000) as u64) as usize
            };
            bad[at] ^= 1 << (rng.next() % 8);
            match Mp4Demuxer::open(Cursor::new(&bad)) {
                Ok(mut d) => {
                    opened += 1;
                    for t in 0..d.tracks().len() {
                        for i in 0..d.tracks()[t].samples.len() {
                            let _ = d.read_sample(t, i);
                        }
                    }
                    let _ = read_frame_timestamps_nanos(&bad);
                }
                Err(e) => {
                    errors += 1;
                    assert!(!e.to_string().is_empty());
                }
            }
        }
        eprintln!("fragmented={fragmented}: {errors} errors, {opened} opened");
    }

    // A sample count no file could hold.
    let (mut bytes, _) = mux(&case, Mp4Options::default());
    let stsz = bytes.windows(4).position(|w| w == b"stsz").expect("stsz");
    bytes[stsz + 12..stsz + 16].copy_from_slice(&u32::MAX.to_be_bytes());
    let err = Mp4Demuxer::open(Cursor::new(&bytes)).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("moov/trak/mdia/minf/stbl/stsz box at byte"),
        "{msg}"
    );
    // A chunk offset pointing past the end.
    let (mut bytes, _) = mux(&case, Mp4Options::default());
    let co64 = bytes.windows(4).position(|w| w == b"co64").expect("co64");
    bytes[co64 + 12..co64 + 20].copy_from_slice(&(1u64 << 40).to_be_bytes());
    let err = Mp4Demuxer::open(Cursor::new(&bytes)).unwrap_err();
    assert!(err.to_string().contains("sample 0"), "{err}");
    assert!(
        err.to_string().contains("ends past the end of the file"),
        "{err}"
    );
}
