//! `VideoPlayer::frame_at` against FFmpeg's decode of the same stream: random times (fixed
//! seed), forward play, backward steps inside the cache, jumps across GOPs, a stream growing
//! while it is read, and corrupt samples in the middle; the stills player (frame threads, only
//! the frames asked for) gives the same frames.

mod decode_support;

use std::sync::{Arc, RwLock};

use decode_support::{
    Rng, Sample, codec_of, ffmpeg_raw_frames, fixture_samples, memory_source, presentation_pts,
};
use vidlog_testdata::Fixture;
use vidlog_video::decode::Backend;
use vidlog_video::decode::player::{MemorySource, VideoPlayer};

/// FFmpeg's frames (presentation order) and the PTS each belongs to.
struct Reference {
    pts: Vec<i64>,
    frames: Vec<Vec<u8>>,
}

impl Reference {
    fn of(fixture: Fixture, samples: &[Sample]) -> Reference {
        let size = 320 * 240 * 3 / 2;
        let frames = ffmpeg_raw_frames(&vidlog_testdata::fixture(fixture), "yuv420p", size);
        let pts = presentation_pts(samples);
        assert_eq!(frames.len(), pts.len());
        Reference { pts, frames }
    }

    /// The frame presented at `t` (latest PTS <= t) and its PTS.
    fn at(&self, t: i64) -> Option<(i64, &[u8])> {
        let i = self.pts.partition_point(|p| *p <= t).checked_sub(1)?;
        Some((self.pts[i], &self.frames[i]))
    }
}

fn player(fixture: Fixture, backend: Backend, samples: &[Sample]) -> VideoPlayer<MemorySource> {
    VideoPlayer::new(memory_source("cam", codec_of(fixture), samples)).with_backend(backend)
}

fn check_random_times(fixture: Fixture, backend: Backend) {
    let samples = fixture_samples(fixture);
    check_random_times_on(fixture, player(fixture, backend, &samples));
}

/// `frame_at` at 40 random times (fixed seed) equals FFmpeg's frame; returns the player.
fn check_random_times_on(
    fixture: Fixture,
    mut player: VideoPlayer<MemorySource>,
) -> VideoPlayer<MemorySource> {
    let samples = fixture_samples(fixture);
    let reference = Reference::of(fixture, &samples);
    let last = *reference.pts.last().expect("frames");
    let mut rng = Rng::new(0x5EED);
    for _ in 0..40 {
        let t = rng.below(last as u64 + 2000) as i64 - 1000;
        let got = player.frame_at(t).expect("decodes");
        match reference.at(t) {
            None => assert!(got.is_none(), "t={t} is before the first frame"),
            Some((pts, frame)) => {
                let got = got.unwrap_or_else(|| panic!("t={t}: a frame"));
                assert_eq!(got.sample_pts, pts, "t={t}");
                assert_eq!(got.frame.pts, pts, "t={t}");
                assert!(!got.concealed);
                assert!(got.frame.i420() == frame, "t={t}: same pixels as FFmpeg");
            }
        }
    }
    assert!(player.reports().is_empty(), "{:?}", player.reports());
    player
}

fn stills_player(
    fixture: Fixture,
    backend: Backend,
    samples: &[Sample],
    one_shot: bool,
) -> VideoPlayer<MemorySource> {
    VideoPlayer::for_stills(memory_source("cam", codec_of(fixture), samples), one_shot)
        .with_backend(backend)
}

#[test]
fn random_times_match_ffmpeg_with_openh264() {
    check_random_times(Fixture::X264HighBf0, Backend::OpenH264);
}

/// The stills player gives the same frames, and only the frames asked for (plus the few a
/// reordering or frame-threaded decoder releases after them) leave the decoder.
fn check_stills(fixture: Fixture, backend: Backend) {
    let samples = fixture_samples(fixture);
    let playback = check_random_times_on(fixture, player(fixture, backend, &samples));
    let stills = check_random_times_on(fixture, stills_player(fixture, backend, &samples, false));
    let (p, s) = (playback.stats(), stills.stats());
    assert!(
        s.frames_decoded < p.frames_decoded,
        "{fixture:?} on {}: stills hand out fewer frames ({} vs {} for playback)",
        backend.name(),
        s.frames_decoded,
        p.frames_decoded
    );
    let answered = 40 - s.cache_hits;
    assert!(
        s.frames_decoded <= 4 * answered,
        "{fixture:?} on {}: {} frames out for {answered} decoded answers",
        backend.name(),
        s.frames_decoded
    );
    let one_shot = check_random_times_on(fixture, stills_player(fixture, backend, &samples, true));
    assert!(one_shot.reports().is_empty());
}

#[test]
fn stills_match_ffmpeg_and_hand_out_only_the_frames_asked_for() {
    check_stills(Fixture::X264HighBf0, Backend::OpenH264);
}

/// One frame late in a GOP: a one-shot stills player feeds exactly the samples from the
/// keyframe to the target, and one frame comes out of the decoder.
fn check_one_shot(backend: Backend) {
    let fixture = Fixture::X264HighBf0;
    let samples = fixture_samples(fixture);
    let reference = Reference::of(fixture, &samples);
    let target = 58; // GOP 30: keyframe 30, 28 frames after it
    let mut player = stills_player(fixture, backend, &samples, true);
    let got = player
        .frame_at(reference.pts[target])
        .expect("decodes")
        .expect("a frame");
    assert!(
        got.frame.i420() == &reference.frames[target][..],
        "same pixels as FFmpeg"
    );
    let stats = player.stats();
    assert_eq!(
        stats.samples_decoded,
        29,
        "{}: keyframe 30 to 58",
        backend.name()
    );
    assert_eq!(
        stats.frames_decoded,
        1,
        "{}: only the target",
        backend.name()
    );
}

#[test]
fn a_one_shot_still_decodes_only_up_to_its_sample() {
    check_one_shot(Backend::OpenH264);
}

#[test]
fn forward_steps_cost_one_decode_and_back_steps_none() {
    let fixture = Fixture::X264HighBf0;
    let samples = fixture_samples(fixture);
    let reference = Reference::of(fixture, &samples);
    let mut player = player(fixture, Backend::OpenH264, &samples);
    // Land inside the second GOP, then play forward frame by frame.
    let start = 35;
    let first = player
        .frame_at(reference.pts[start])
        .expect("ok")
        .expect("frame");
    assert_eq!(first.frame.i420(), &reference.frames[start][..]);
    let after_seek = player.stats();
    assert_eq!(after_seek.seeks, 1);
    for i in start + 1..start + 20 {
        let before = player.stats().samples_decoded;
        let got = player
            .frame_at(reference.pts[i])
            .expect("ok")
            .expect("frame");
        assert_eq!(got.frame.i420(), &reference.frames[i][..], "frame {i}");
        assert_eq!(
            player.stats().samples_decoded - before,
            1,
            "one frame forward costs one decode (frame {i})"
        );
    }
    assert_eq!(
        player.stats().seeks,
        1,
        "forward play keeps the running decoder"
    );
    // Step back inside the cache: no decoding at all.
    let decoded = player.stats().samples_decoded;
    for i in (start..start + 20).rev() {
        let got = player
            .frame_at(reference.pts[i])
            .expect("ok")
            .expect("frame");
        assert_eq!(got.frame.i420(), &reference.frames[i][..], "frame {i}");
    }
    assert_eq!(player.stats().samples_decoded, decoded);
    // A time between two frames shows the earlier one.
    let mid = (reference.pts[40] + reference.pts[41]) / 2;
    let got = player.frame_at(mid).expect("ok").expect("frame");
    assert_eq!(got.sample_pts, reference.pts[40]);
}

#[test]
fn jumps_across_gops_decode_from_the_keyframe_before() {
    let fixture = Fixture::X264HighBf0;
    let samples = fixture_samples(fixture);
    let reference = Reference::of(fixture, &samples);
    let mut player = player(fixture, Backend::OpenH264, &samples);
    // GOP of 30: frame 75 needs the keyframe at 60 (16 samples incl. one of look-ahead).
    for (i, max_decodes) in [(75usize, 17u64), (10, 12), (89, 30), (61, 3)] {
        let before = player.stats().samples_decoded;
        let got = player
            .frame_at(reference.pts[i])
            .expect("ok")
            .expect("frame");
        assert_eq!(got.frame.i420(), &reference.frames[i][..], "frame {i}");
        let cost = player.stats().samples_decoded - before;
        assert!(cost <= max_decodes, "frame {i} cost {cost} decodes");
    }
}

#[test]
fn a_small_cache_stays_within_its_budget() {
    let fixture = Fixture::X264HighBf0;
    let samples = fixture_samples(fixture);
    let reference = Reference::of(fixture, &samples);
    let frame_bytes = 320 * 240 * 3 / 2;
    let budget = frame_bytes * 10;
    let mut player = player(fixture, Backend::OpenH264, &samples).with_cache_bytes(budget);
    for (i, pts) in reference.pts.iter().enumerate() {
        let got = player.frame_at(*pts).expect("ok").expect("frame");
        assert_eq!(got.frame.i420(), &reference.frames[i][..]);
        assert!(
            player.cache_bytes() <= budget,
            "cache {}",
            player.cache_bytes()
        );
    }
    assert!(player.stats().evictions > 0);
    // Far behind the playhead: evicted, decoded again, still right.
    let got = player
        .frame_at(reference.pts[3])
        .expect("ok")
        .expect("frame");
    assert_eq!(got.frame.i420(), &reference.frames[3][..]);
}

#[test]
fn a_growing_stream_is_played_at_its_live_edge() {
    let fixture = Fixture::X264HighBf0;
    let samples = fixture_samples(fixture);
    let reference = Reference::of(fixture, &samples);
    let live = Arc::new(RwLock::new(MemorySource::new("cam", codec_of(fixture))));
    let mut player = VideoPlayer::new(live.clone()).with_backend(Backend::OpenH264);
    assert!(
        player.frame_at(0).expect("ok").is_none(),
        "nothing logged yet"
    );
    for (i, s) in samples.iter().enumerate() {
        live.write()
            .expect("lock")
            .push(s.data.clone(), s.pts, s.is_key);
        // The newest frame, as soon as its sample arrives.
        let got = player.frame_at(i64::MAX).expect("ok").expect("frame");
        assert_eq!(got.sample_pts, reference.pts[i]);
        assert_eq!(got.frame.i420(), &reference.frames[i][..], "frame {i}");
    }
    assert_eq!(
        player.stats().samples_decoded,
        samples.len() as u64,
        "following the live edge decodes each sample once"
    );
}

/// Corrupts sample `bad` (keeps its start so it still parses as the same kind of NAL unit).
fn corrupt(samples: &mut [Sample], bad: usize) {
    let data = &mut samples[bad].data;
    let keep = data.len().min(12);
    for b in &mut data[keep..] {
        *b ^= 0xA5;
    }
}

#[test]
fn corrupt_samples_are_reported_concealed_and_recovered_at_the_next_keyframe() {
    check_corrupt_sample(|samples| player(Fixture::X264HighBf0, Backend::OpenH264, samples));
    check_corrupt_sample(|samples| {
        stills_player(Fixture::X264HighBf0, Backend::OpenH264, samples, false)
    });
}

/// Sample 40 of the x264 fixture corrupted: frames before it are exact, the rest of its GOP
/// holds frame 39 (marked concealed), the next GOP is exact again, and the report names
/// sample 40.
fn check_corrupt_sample(make: impl Fn(&[Sample]) -> VideoPlayer<MemorySource>) {
    let fixture = Fixture::X264HighBf0;
    let mut samples = fixture_samples(fixture);
    let reference = Reference::of(fixture, &samples);
    let bad = 40; // inside the GOP 30..60
    corrupt(&mut samples, bad);
    let mut player = make(&samples);
    for i in 0..reference.pts.len() {
        let got = player
            .frame_at(reference.pts[i])
            .unwrap_or_else(|e| panic!("frame {i}: {e}"))
            .expect("frame");
        assert_eq!(got.sample_pts, reference.pts[i]);
        if i < bad || i >= 60 {
            assert!(!got.concealed, "frame {i}");
            assert_eq!(got.frame.i420(), &reference.frames[i][..], "frame {i}");
        } else {
            assert!(got.concealed, "frame {i} of the damaged GOP is concealed");
            assert_eq!(
                got.frame.pts,
                reference.pts[bad - 1],
                "frame {i} holds the last good frame"
            );
        }
    }
    let reports = player.reports();
    assert!(!reports.is_empty());
    assert_eq!(reports[0].sample, bad, "{reports:?}");
    assert_eq!(reports[0].stream, "cam");
    assert!(reports[0].to_string().starts_with("cam sample 40: "));
}

/// Straight to the frame after a damaged one, with nothing decoded before: the damage is
/// named, the frame before it stands in; then a later frame of the same GOP after an earlier
/// target (what `vidlog frame --every` asks) also shows the latest good frame, not the target.
fn check_damage_just_before_the_target(make: impl Fn(&[Sample]) -> VideoPlayer<MemorySource>) {
    let fixture = Fixture::X264HighBf0;
    let mut samples = fixture_samples(fixture);
    let reference = Reference::of(fixture, &samples);
    corrupt(&mut samples, 40);
    let mut player = make(&samples);
    let got = player
        .frame_at(reference.pts[41])
        .expect("ok")
        .expect("frame");
    assert!(got.concealed, "frame 41 follows the damage");
    assert_eq!(got.frame.pts, reference.pts[39]);
    assert_eq!(got.frame.i420(), &reference.frames[39][..]);
    assert_eq!(
        player.reports().first().map(|r| r.sample),
        Some(40),
        "{:?}",
        player.reports()
    );

    let mut player = make(&samples);
    let early = player
        .frame_at(reference.pts[33])
        .expect("ok")
        .expect("frame");
    assert!(!early.concealed);
    let late = player
        .frame_at(reference.pts[45])
        .expect("ok")
        .expect("frame");
    assert!(late.concealed);
    assert_eq!(
        late.frame.pts, reference.pts[39],
        "the latest good frame, not frame 33"
    );
}

#[test]
fn damage_just_before_the_target_is_named_and_concealed() {
    check_damage_just_before_the_target(|samples| {
        player(Fixture::X264HighBf0, Backend::OpenH264, samples)
    });
    check_damage_just_before_the_target(|samples| {
        stills_player(Fixture::X264HighBf0, Backend::OpenH264, samples, true)
    });
}

#[test]
fn a_corrupt_keyframe_holds_the_previous_gops_last_frame() {
    let fixture = Fixture::X264HighBf0;
    let mut samples = fixture_samples(fixture);
    let reference = Reference::of(fixture, &samples);
    corrupt(&mut samples, 30);
    let mut player = player(fixture, Backend::OpenH264, &samples);
    // Straight into the damaged GOP, with nothing cached.
    let got = player
        .frame_at(reference.pts[45])
        .expect("ok")
        .expect("frame");
    assert!(got.concealed);
    assert_eq!(got.frame.pts, reference.pts[29]);
    assert_eq!(got.frame.i420(), &reference.frames[29][..]);
    let got = player
        .frame_at(reference.pts[60])
        .expect("ok")
        .expect("frame");
    assert!(!got.concealed, "recovers at the next keyframe");
    assert_eq!(got.frame.i420(), &reference.frames[60][..]);
    assert_eq!(player.reports()[0].sample, 30);
}

#[test]
fn truncated_and_empty_samples_never_wedge_the_player() {
    check_truncated_samples(|samples| player(Fixture::X264HighBf0, Backend::OpenH264, samples));
    check_truncated_samples(|samples| {
        stills_player(Fixture::X264HighBf0, Backend::OpenH264, samples, true)
    });
}

/// Sample 12 cut in half and sample 50 emptied: 60 random times all answer, exact frames
/// where not concealed.
fn check_truncated_samples(make: impl Fn(&[Sample]) -> VideoPlayer<MemorySource>) {
    let fixture = Fixture::X264HighBf0;
    let mut samples = fixture_samples(fixture);
    let reference = Reference::of(fixture, &samples);
    let half = samples[12].data.len() / 2;
    samples[12].data.truncate(half);
    samples[50].data.clear();
    let mut player = make(&samples);
    let mut rng = Rng::new(7);
    for _ in 0..60 {
        let i = rng.below(reference.pts.len() as u64) as usize;
        let got = player
            .frame_at(reference.pts[i])
            .unwrap_or_else(|e| panic!("frame {i}: {e}"))
            .expect("frame");
        if !got.concealed {
            assert_eq!(got.frame.i420(), &reference.frames[i][..], "frame {i}");
        }
        if !(12..30).contains(&i) && !(50..60).contains(&i) {
            assert!(!got.concealed, "frame {i} is outside the damaged GOPs");
        }
    }
    let bad: Vec<usize> = player.reports().iter().map(|r| r.sample).collect();
    assert!(
        bad.iter()
            .all(|s| (12..30).contains(s) || (50..60).contains(s)),
        "{bad:?}"
    );
}

#[cfg(feature = "ffmpeg")]
mod ffmpeg_backend {
    use super::*;

    #[test]
    fn random_times_match_ffmpeg_on_b_frames_h265_av1_and_vp9() {
        check_random_times(Fixture::X264HighBf0, Backend::Ffmpeg);
        check_random_times(Fixture::X264HighBf2, Backend::Ffmpeg);
        check_random_times(Fixture::X264HighBf3Pyramid, Backend::Ffmpeg);
        if Fixture::X265.is_available() {
            check_random_times(Fixture::X265, Backend::Ffmpeg);
        }
        if Fixture::Av1Ivf.is_available() {
            check_random_times(Fixture::Av1Ivf, Backend::Ffmpeg);
        }
        if Fixture::Vp9Ivf.available_or_skip() {
            check_random_times(Fixture::Vp9Ivf, Backend::Ffmpeg);
        }
    }

    /// x265's open GOPs: the leading (RASL) pictures of each CRA reference the GOP before;
    /// every frame, asked for alone by a fresh one-shot player, equals FFmpeg's.
    #[test]
    fn open_gop_leading_pictures_decode_from_the_gop_before() {
        if !Fixture::X265OpenGop.available_or_skip() {
            return;
        }
        let fixture = Fixture::X265OpenGop;
        let samples = fixture_samples(fixture);
        let reference = Reference::of(fixture, &samples);
        let keyframes: Vec<usize> = (0..samples.len()).filter(|&i| samples[i].is_key).collect();
        let leading = (0..samples.len())
            .filter(|&i| {
                let k = *keyframes
                    .iter()
                    .rev()
                    .find(|&&k| k <= i)
                    .expect("a keyframe");
                k > 0 && samples[i].pts < samples[k].pts
            })
            .count();
        assert!(leading > 0, "the fixture has leading pictures");
        for (n, &pts) in reference.pts.iter().enumerate() {
            let mut player = stills_player(fixture, Backend::Ffmpeg, &samples, true);
            let got = player.frame_at(pts).expect("decodes").expect("a frame");
            assert!(!got.concealed, "frame {n}: {:?}", player.reports());
            assert!(
                got.frame.i420() == &reference.frames[n][..],
                "frame {n} equals FFmpeg's"
            );
        }
        check_random_times(fixture, Backend::Ffmpeg);
    }

    #[test]
    fn stills_on_b_frames_h265_and_vp9_match_ffmpeg() {
        check_stills(Fixture::X264HighBf3Pyramid, Backend::Ffmpeg);
        check_stills(Fixture::X264HighBf0, Backend::Ffmpeg);
        if Fixture::X265.is_available() {
            check_stills(Fixture::X265, Backend::Ffmpeg);
        }
        if Fixture::Vp9Ivf.available_or_skip() {
            check_stills(Fixture::Vp9Ivf, Backend::Ffmpeg);
        }
    }

    #[test]
    fn corrupt_samples_are_reported_concealed_and_recovered_with_ffmpeg() {
        check_corrupt_sample(|samples| player(Fixture::X264HighBf0, Backend::Ffmpeg, samples));
    }

    #[test]
    fn corrupt_samples_are_reported_concealed_and_recovered_with_frame_threads() {
        check_corrupt_sample(|samples| {
            stills_player(Fixture::X264HighBf0, Backend::Ffmpeg, samples, false)
        });
    }

    #[test]
    fn truncated_and_empty_samples_never_wedge_ffmpeg_or_its_frame_threads() {
        check_truncated_samples(|samples| player(Fixture::X264HighBf0, Backend::Ffmpeg, samples));
        check_truncated_samples(|samples| {
            stills_player(Fixture::X264HighBf0, Backend::Ffmpeg, samples, true)
        });
        check_corrupt_sample(|samples| {
            stills_player(Fixture::X264HighBf0, Backend::Ffmpeg, samples, true)
        });
    }

    #[test]
    fn damage_just_before_the_target_is_named_and_concealed_with_frame_threads() {
        check_damage_just_before_the_target(|samples| {
            player(Fixture::X264HighBf0, Backend::Ffmpeg, samples)
        });
        check_damage_just_before_the_target(|samples| {
            stills_player(Fixture::X264HighBf0, Backend::Ffmpeg, samples, true)
        });
        check_damage_just_before_the_target(|samples| {
            stills_player(Fixture::X264HighBf0, Backend::Ffmpeg, samples, false)
        });
    }

    #[test]
    fn a_one_shot_still_decodes_only_up_to_its_sample_with_frame_threads() {
        check_one_shot(Backend::Ffmpeg);
    }

    #[test]
    fn b_frames_play_forward_and_back() {
        let fixture = Fixture::X264HighBf2;
        let samples = fixture_samples(fixture);
        let reference = Reference::of(fixture, &samples);
        let mut player = player(fixture, Backend::Ffmpeg, &samples);
        for (i, pts) in reference.pts.iter().enumerate() {
            let got = player.frame_at(*pts).expect("ok").expect("frame");
            assert_eq!(got.frame.i420(), &reference.frames[i][..], "frame {i}");
        }
        assert_eq!(
            player.stats().samples_decoded,
            samples.len() as u64,
            "forward play decodes each sample once"
        );
        let decoded = player.stats().samples_decoded;
        for i in (60..90).rev() {
            let got = player
                .frame_at(reference.pts[i])
                .expect("ok")
                .expect("frame");
            assert_eq!(got.frame.i420(), &reference.frames[i][..], "frame {i}");
        }
        assert_eq!(
            player.stats().samples_decoded,
            decoded,
            "back steps are cached"
        );
    }

    #[test]
    fn a_growing_b_frame_stream_is_played_at_its_live_edge() {
        let fixture = Fixture::X264HighBf2;
        let samples = fixture_samples(fixture);
        let reference = Reference::of(fixture, &samples);
        let live = Arc::new(RwLock::new(MemorySource::new("cam", codec_of(fixture))));
        let mut player = VideoPlayer::new(live.clone()).with_backend(Backend::Ffmpeg);
        let mut newest = i64::MIN;
        for s in &samples {
            live.write()
                .expect("lock")
                .push(s.data.clone(), s.pts, s.is_key);
            newest = newest.max(s.pts);
            let got = player.frame_at(newest).expect("ok").expect("frame");
            let (pts, frame) = reference.at(newest).expect("reference");
            assert_eq!(got.sample_pts, pts);
            assert!(got.frame.i420() == frame, "pts {pts}");
        }
    }
}
