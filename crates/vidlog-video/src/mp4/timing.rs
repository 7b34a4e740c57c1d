//! MP4 timing: from logged presentation times (ns, decode order) to an MP4 timescale, decode
//! times, composition offsets, sample durations and the edit list.
//!
//! Owns the rules every MP4 vidlog writes follows (the muxer and the fragmenter only copy the
//! numbers decided here):
//!
//! - **Timescale** ([`choose_timescale`]): the first candidate among the frame rate implied by
//!   the median frame interval (when it is a whole number), `N * 1000` for 1001-based rates
//!   (29.97 fps -> 30000), 90000, 1000, 1e6 and 1e9 in which every presentation time
//!   survives `ns -> ticks -> ns` unchanged, and whose durations and composition offsets fit the
//!   32-bit MP4 fields. 1e9 is always exact. Times are converted to ticks as they are and the
//!   origin's tick is subtracted, so `pts_ticks + origin_ticks` maps back to the logged ns.
//! - **Decode times**: `dts[i] = sorted_pts[i] - shift`, `shift = max(0, max(sorted_pts[i] -
//!   pts[i]))`, so composition offsets (`pts - dts`) are never negative (ctts version 0) and decode
//!   times strictly increase.
//! - **Durations**: `dts[i + 1] - dts[i]`; the last sample lasts `last_duration` or the median
//!   frame interval.
//! - **Edit list**: presentation starts at the origin (the first presented frame, or the
//!   requested start): `media_time = shift + (origin - first_pts)`. Streams without reordering and
//!   without a start skip it.
//!
//! It knows nothing about boxes or bytes.

use super::Mp4Error;

const NANOS_PER_SECOND: i128 = 1_000_000_000;

/// `round(num / den)`, halves away from zero; `den > 0`.
fn round_div(num: i128, den: i128) -> i128 {
    if num >= 0 {
        (num + den / 2) / den
    } else {
        -((-num + den / 2) / den)
    }
}

/// Nanoseconds to ticks of `timescale`, rounded to the nearest tick.
pub fn ns_to_ticks(ns: i64, timescale: u32) -> i64 {
    let ticks = round_div(i128::from(ns) * i128::from(timescale), NANOS_PER_SECOND);
    ticks.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// Ticks of `timescale` to nanoseconds, rounded to the nearest nanosecond. A zero timescale
/// gives 0.
pub fn ticks_to_ns(ticks: i64, timescale: u32) -> i64 {
    if timescale == 0 {
        return 0;
    }
    let ns = round_div(i128::from(ticks) * NANOS_PER_SECOND, i128::from(timescale));
    ns.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// The median of the positive intervals between consecutive presentation times (ns), if there
/// are any.
pub fn median_interval(pts_ns: &[i64]) -> Option<i64> {
    let mut sorted = pts_ns.to_vec();
    sorted.sort_unstable();
    let mut gaps: Vec<i64> = sorted
        .windows(2)
        .map(|w| w[1].saturating_sub(w[0]))
        .filter(|&g| g > 0)
        .collect();
    if gaps.is_empty() {
        return None;
    }
    let mid = (gaps.len() - 1) / 2;
    let (_, median, _) = gaps.select_nth_unstable(mid);
    Some(*median)
}

/// Candidate timescales for a stream, best first.
fn candidates(pts_ns: &[i64]) -> Vec<u32> {
    let mut out = Vec::new();
    if let Some(median) = median_interval(pts_ns) {
        let fps = 1e9 / median as f64;
        let whole = fps.round();
        if (fps - whole).abs() < 1e-3 && (1.0..=100_000.0).contains(&whole) {
            out.push(whole as u32);
        }
        let ntsc = (fps * 1.001).round();
        if (fps * 1.001 - ntsc).abs() < 1e-3 && (1.0..=1_000_000.0).contains(&ntsc) {
            out.push(ntsc as u32 * 1000);
        }
    }
    for t in [90_000, 1_000, 1_000_000, 1_000_000_000] {
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

/// Whether every time survives `ns -> ticks -> ns` in `timescale`.
fn is_exact(pts_ns: &[i64], timescale: u32) -> bool {
    pts_ns
        .iter()
        .all(|&ns| ticks_to_ns(ns_to_ticks(ns, timescale), timescale) == ns)
}

/// Decode-time shift, largest duration and largest composition offset in ticks, for times in
/// decode order.
fn reorder_extent(ticks: &[i64]) -> (i64, i64, i64) {
    let mut sorted = ticks.to_vec();
    sorted.sort_unstable();
    let shift = sorted
        .iter()
        .zip(ticks)
        .map(|(s, p)| s.saturating_sub(*p))
        .max()
        .unwrap_or(0)
        .max(0);
    let max_gap = sorted
        .windows(2)
        .map(|w| w[1].saturating_sub(w[0]))
        .max()
        .unwrap_or(0);
    let max_offset = sorted
        .iter()
        .zip(ticks)
        .map(|(s, p)| p.saturating_sub(*s).saturating_add(shift))
        .max()
        .unwrap_or(0);
    (shift, max_gap, max_offset)
}

fn fits_u32_fields(pts_ns: &[i64], timescale: u32) -> bool {
    let ticks: Vec<i64> = pts_ns
        .iter()
        .map(|&ns| ns_to_ticks(ns, timescale))
        .collect();
    let (_, max_gap, max_offset) = reorder_extent(&ticks);
    max_gap <= i64::from(u32::MAX) && max_offset <= i64::from(u32::MAX)
}

/// Picks the MP4 timescale for presentation times `pts_ns` (any order): the first of the frame
/// rate (if the median interval gives a whole number), `N * 1000` for 1001-based rates, 90000,
/// 1000, 1e6, 1e9 in which every time survives `ns -> ticks -> ns` unchanged and whose frame
/// intervals and composition offsets fit the 32-bit MP4 fields. When none is both (gaps of
/// over 4.29 s at 1e9), the first that fits is used and times are rounded to it.
///
/// ```
/// use vidlog_video::mp4::choose_timescale;
/// let pts: Vec<i64> = (0..90).map(|i| (i as i64 * 1_000_000_000 + 15) / 30).collect();
/// assert_eq!(choose_timescale(&pts), 30);
/// let ntsc: Vec<i64> = (0..90).map(|i| (i as i64 * 1_001_000_000_000 + 15_000) / 30_000).collect();
/// assert_eq!(choose_timescale(&ntsc), 30_000);
/// ```
pub fn choose_timescale(pts_ns: &[i64]) -> u32 {
    let candidates = candidates(pts_ns);
    candidates
        .iter()
        .copied()
        .find(|&t| is_exact(pts_ns, t) && fits_u32_fields(pts_ns, t))
        .or_else(|| {
            candidates
                .iter()
                .copied()
                .find(|&t| fits_u32_fields(pts_ns, t))
        })
        .unwrap_or(1_000)
}

/// The edit list's one segment: presentation starts at media time `media_time` and lasts
/// `segment_duration` (both in the track timescale, which is also the movie timescale).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EditSegment {
    /// Media (composition) time shown at presentation time 0.
    pub media_time: i64,
    /// How long the presentation lasts.
    pub segment_duration: u64,
}

/// Every timing number of a track, decided before any byte is written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimingPlan {
    /// Track (and movie) timescale.
    pub timescale: u32,
    /// Decode time of each sample (decode order), starting at 0.
    pub dts: Vec<u64>,
    /// Duration of each sample (decode order).
    pub durations: Vec<u32>,
    /// Composition offset (`pts - dts`) of each sample, never negative.
    pub composition_offsets: Vec<u32>,
    /// The edit list, when presentation does not start at media time 0.
    pub edit: Option<EditSegment>,
    /// Sum of the sample durations.
    pub media_duration: u64,
    /// Presentation duration: from the origin to the end of the last presented frame.
    pub presentation_duration: u64,
    /// The presentation origin in ns (the first presented frame, or the requested start).
    pub origin_ns: i64,
}

impl TimingPlan {
    /// Plans the timing of samples whose presentation times (ns) are `pts_ns`, in decode order.
    pub fn new(
        pts_ns: &[i64],
        timescale: Option<u32>,
        start_ns: Option<i64>,
        last_duration_ns: Option<i64>,
    ) -> Result<Self, Mp4Error> {
        let Some(&first_pts) = pts_ns.iter().min() else {
            return Err(Mp4Error::NoSamples);
        };
        let last_pts = pts_ns.iter().copied().max().unwrap_or(first_pts);
        let origin_ns = start_ns.unwrap_or(first_pts);
        if origin_ns > last_pts {
            return Err(Mp4Error::StartAfterLastFrame {
                start: origin_ns,
                last_pts,
            });
        }
        let timescale = match timescale {
            Some(0) => {
                return Err(Mp4Error::InvalidOption(
                    "timescale 0: an MP4 timescale counts ticks per second and must be > 0".into(),
                ));
            }
            Some(t) => t,
            None => choose_timescale(pts_ns),
        };
        // Presentation times in ticks, relative to the origin, in decode order. Absolute times
        // are converted (the timescale is exact for them), then the origin's tick subtracted.
        let origin_ticks = ns_to_ticks(origin_ns, timescale);
        let ticks: Vec<i64> = pts_ns
            .iter()
            .map(|&p| ns_to_ticks(p, timescale).saturating_sub(origin_ticks))
            .collect();
        let mut sorted = ticks.clone();
        sorted.sort_unstable();
        if let Some(w) = sorted.windows(2).position(|w| w[0] == w[1]) {
            let dup = sorted[w];
            let mut same = ticks.iter().enumerate().filter(|(_, t)| **t == dup);
            let first = same.next().map_or(0, |(i, _)| i);
            let second = same.next().map_or(0, |(i, _)| i);
            return Err(Mp4Error::DuplicatePts {
                first,
                second,
                pts: pts_ns.get(second).copied().unwrap_or_default(),
                timescale,
            });
        }
        let (shift, _, _) = reorder_extent(&ticks);
        let base = sorted[0];
        // Decode times relative to the first sample's decode time (sorted[0] - shift).
        let dts: Vec<u64> = sorted.iter().map(|s| (s - base) as u64).collect();
        let last_duration_ns = match last_duration_ns {
            Some(d) if d <= 0 => {
                return Err(Mp4Error::InvalidOption(format!(
                    "last_duration {d} ns: the last frame must last longer than 0 ns"
                )));
            }
            Some(d) => d,
            None => median_interval(pts_ns).unwrap_or(1_000_000_000 / 30),
        };
        let last_duration = ns_to_ticks(last_duration_ns, timescale).max(1);
        let mut durations = Vec::with_capacity(ticks.len());
        for (i, w) in sorted.windows(2).enumerate() {
            durations.push(
                u32::try_from(w[1] - w[0]).map_err(|_| Mp4Error::TimestampRange {
                    index: i,
                    what: "the interval to the next frame",
                    timescale,
                })?,
            );
        }
        durations.push(
            u32::try_from(last_duration).map_err(|_| Mp4Error::TimestampRange {
                index: ticks.len() - 1,
                what: "the last frame's duration",
                timescale,
            })?,
        );
        let mut composition_offsets = Vec::with_capacity(ticks.len());
        for (i, (p, s)) in ticks.iter().zip(&sorted).enumerate() {
            composition_offsets.push(u32::try_from(p - s + shift).map_err(|_| {
                Mp4Error::TimestampRange {
                    index: i,
                    what: "the composition offset (pts - dts)",
                    timescale,
                }
            })?);
        }
        let media_duration: u64 = durations.iter().map(|&d| u64::from(d)).sum();
        // Media (composition) time of the origin: ticks are relative to it, so it is at
        // composition time `0 - (base - shift)`.
        let media_time = shift - base;
        let end = sorted[sorted.len() - 1] + last_duration;
        let presentation_duration = end.max(1) as u64;
        let edit = (media_time != 0).then_some(EditSegment {
            media_time,
            segment_duration: presentation_duration,
        });
        Ok(TimingPlan {
            timescale,
            dts,
            durations,
            composition_offsets,
            edit,
            media_duration,
            presentation_duration,
            origin_ns,
        })
    }

    /// Ends the presentation at `end_ns` (exclusive) when that is before the end of the last
    /// frame: the later frames stay in the media (earlier frames may need them as references)
    /// and the edit list hides them.
    pub fn ending_at(mut self, end_ns: Option<i64>) -> Result<Self, Mp4Error> {
        let Some(end_ns) = end_ns else {
            return Ok(self);
        };
        let end = ns_to_ticks(end_ns, self.timescale) - ns_to_ticks(self.origin_ns, self.timescale);
        if end <= 0 {
            return Err(Mp4Error::InvalidOption(format!(
                "end {end_ns} ns is not after the start ({} ns): nothing to present",
                self.origin_ns
            )));
        }
        let end = end as u64;
        if end < self.presentation_duration {
            self.presentation_duration = end;
            self.edit = Some(EditSegment {
                media_time: self.edit.map_or(0, |e| e.media_time),
                segment_duration: end,
            });
        }
        Ok(self)
    }

    /// Number of samples planned.
    pub fn len(&self) -> usize {
        self.dts.len()
    }

    /// Whether no sample is planned (never true for a built plan).
    pub fn is_empty(&self) -> bool {
        self.dts.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thirtieths(indices: &[i64]) -> Vec<i64> {
        indices
            .iter()
            .map(|&i| ticks_to_ns(i, 30))
            .collect::<Vec<_>>()
    }

    #[test]
    fn picks_frame_rate_ntsc_and_fallbacks() {
        let pts = thirtieths(&(0..90).collect::<Vec<_>>());
        assert_eq!(pts[1], 33_333_333);
        assert_eq!(choose_timescale(&pts), 30);
        let pts25: Vec<i64> = (0..50).map(|i| i * 40_000_000).collect();
        assert_eq!(choose_timescale(&pts25), 25);
        let ntsc: Vec<i64> = (0..300).map(|i| ticks_to_ns(i * 1001, 30_000)).collect();
        assert_eq!(choose_timescale(&ntsc), 30_000);
        let film: Vec<i64> = (0..300).map(|i| ticks_to_ns(i * 1001, 24_000)).collect();
        assert_eq!(choose_timescale(&film), 24_000);
        // Whole milliseconds, irregular: 90000 comes first and is exact for them too.
        assert_eq!(
            choose_timescale(&[0, 31_000_000, 70_000_000, 99_000_000]),
            90_000
        );
        // Whole microseconds: 1e6.
        assert_eq!(
            choose_timescale(&[0, 31_123_000, 70_000_000, 99_456_000]),
            1_000_000
        );
        // Truncated (not rounded) multiples of 1/30 s are exact only in ns.
        let truncated: Vec<i64> = (0..10).map(|i| i * 33_333_333).collect();
        assert_eq!(choose_timescale(&truncated), 1_000_000_000);
        // Times off the 1/30 s grid (an epoch clock) are exact only in ns.
        let epoch = 1_700_000_000_123_456_789i64;
        let shifted: Vec<i64> = pts.iter().map(|p| p + epoch).collect();
        assert_eq!(choose_timescale(&shifted), 1_000_000_000);
    }

    #[test]
    fn b_frames_get_shift_offsets_and_edit() {
        // Decode order I P B B P B B with presentation indices 0 3 1 2 6 4 5.
        let pts = thirtieths(&[0, 3, 1, 2, 6, 4, 5]);
        let plan = TimingPlan::new(&pts, None, None, None).expect("plans");
        assert_eq!(plan.timescale, 30);
        assert_eq!(plan.dts, vec![0, 1, 2, 3, 4, 5, 6]);
        // shift = max(sorted - pts) = max(0, 1-3, 2-1, 3-2, ...) = 1.
        assert_eq!(plan.composition_offsets, vec![1, 3, 0, 0, 3, 0, 0]);
        assert_eq!(plan.durations, vec![1; 7]);
        assert_eq!(
            plan.edit,
            Some(EditSegment {
                media_time: 1,
                segment_duration: 7
            })
        );
        for (i, &p) in pts.iter().enumerate() {
            let ct = plan.dts[i] as i64 + i64::from(plan.composition_offsets[i]);
            assert_eq!(ticks_to_ns(ct - 1, 30), p);
        }
    }

    #[test]
    fn start_inside_a_gop_moves_the_edit() {
        let pts = thirtieths(&[10, 11, 12, 13, 14]);
        let plan = TimingPlan::new(&pts, None, Some(pts[2]), Some(pts[1] - pts[0])).expect("plans");
        assert_eq!(plan.edit.map(|e| e.media_time), Some(2));
        assert_eq!(plan.presentation_duration, 3);
        assert!(TimingPlan::new(&pts, None, Some(pts[4] + 1), None).is_err());
    }

    #[test]
    fn rejects_duplicates_and_bad_options() {
        let err = TimingPlan::new(&[0, 10, 10], None, None, None).unwrap_err();
        assert!(
            matches!(
                err,
                Mp4Error::DuplicatePts {
                    first: 1,
                    second: 2,
                    ..
                }
            ),
            "{err}"
        );
        assert!(TimingPlan::new(&[], None, None, None).is_err());
        assert!(TimingPlan::new(&[0, 1], Some(0), None, None).is_err());
        assert!(TimingPlan::new(&[0, 1], None, None, Some(0)).is_err());
    }

    #[test]
    fn long_gaps_fall_back_to_a_coarser_exact_timescale() {
        // A 10 s gap does not fit u32 ticks at 1e9, but whole microseconds are exact at 1e6.
        let pts = [0, 1_000, 10_000_000_000];
        assert_eq!(choose_timescale(&pts), 1_000_000);
    }

    #[test]
    fn ending_early_hides_the_later_frames() {
        // Decode order I0 P3 B1 B2 with presentation cut after frame 1.
        let pts = thirtieths(&[0, 3, 1, 2]);
        let plan = TimingPlan::new(&pts, None, None, None)
            .and_then(|p| p.ending_at(Some(pts[3])))
            .expect("plans");
        assert_eq!(plan.presentation_duration, 2);
        assert_eq!(plan.edit.map(|e| e.segment_duration), Some(2));
        let whole = TimingPlan::new(&pts, None, None, None).expect("plans");
        assert_eq!(
            plan.edit.map(|e| e.media_time),
            whole.edit.map(|e| e.media_time)
        );
        assert_eq!(plan.media_duration, whole.media_duration);
        // An end after the last frame changes nothing; one at the start is refused.
        let later = whole
            .clone()
            .ending_at(Some(ticks_to_ns(9, 30)))
            .expect("plans");
        assert_eq!(later, whole);
        assert!(whole.ending_at(Some(0)).is_err());
    }
}
