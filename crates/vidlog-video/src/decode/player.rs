//! `frame_at(t)`: the frame presented at time t of one video stream, decoded natively.
//!
//! The [`VideoPlayer`] reads samples from a [`SampleSource`] (decode order, with PTS and keyframe
//! flags; it may grow while playing), decodes from the keyframe before t, keeps the running
//! decoder when t moves forward, and keeps decoded frames in a cache bounded in bytes; when full
//! it drops the frames farthest from the playhead, so a short step back costs no decoding.
//!
//! Tuned for stills ([`VideoPlayer::for_stills`]: `vidlog frame`, one-shot seeks) it decodes
//! with frame threads, hands out only the frames asked for (those decoded on the way to them
//! are never copied out of the decoder), and drains the decoder as soon as the target sample
//! is in instead of feeding later samples to push its frame out.
//!
//! A sample the decoder rejects is reported ([`SampleStatus`], entity and sample index); the
//! rest of its GOP is not decoded, and times inside it show the last good frame before them,
//! marked concealed. Decoding recovers at the next keyframe.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use vidlog_types::VideoCodec;

use super::{Backend, DecodeError, Decoder, Frame, Tuning, backend_for};

/// The default bound of the decoded-frame cache (about 256 MB).
pub const DEFAULT_CACHE_BYTES: usize = 256 << 20;

/// Samples fed past the target before its frame is given up on (H.264 and H.265 reorder at
/// most 16 pictures).
const MAX_REORDER: usize = 32;

/// Samples of one video stream in decode order. Indexes are decode-order positions; the
/// stream may grow between calls (a live source) but samples never change.
pub trait SampleSource {
    /// Sample bytes, possibly shared with the source's storage.
    type Bytes: AsRef<[u8]>;

    /// Names the stream in reports (an entity path).
    fn name(&self) -> String;
    /// The stream's codec, once known.
    fn codec(&self) -> Option<VideoCodec>;
    /// Samples available now.
    fn len(&self) -> usize;
    /// True when no sample is available.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Presentation time of sample `index`.
    fn pts(&self, index: usize) -> Option<i64>;
    /// Whether sample `index` starts a GOP (decoding may start there).
    fn is_keyframe(&self, index: usize) -> bool;
    /// The sample presented at `t`: the one with the latest PTS <= t, as `(index, pts)`.
    /// The default scans every sample; sources with an index override it.
    fn presented_at(&self, t: i64) -> Option<(usize, i64)> {
        let mut best: Option<(usize, i64)> = None;
        for i in 0..self.len() {
            if let Some(pts) = self.pts(i)
                && pts <= t
                && best.is_none_or(|(_, b)| pts >= b)
            {
                best = Some((i, pts));
            }
        }
        best
    }
    /// The last keyframe at or before sample `index`.
    fn keyframe_before(&self, index: usize) -> Option<usize> {
        (0..=index).rev().find(|&i| self.is_keyframe(i))
    }
    /// The bytes of sample `index`.
    fn bytes(&self, index: usize) -> Result<Self::Bytes, String>;
}

/// A frame answered by [`VideoPlayer::frame_at`].
#[derive(Clone, Debug)]
pub struct PresentedFrame {
    /// The picture; its `pts` is the time it was decoded for.
    pub frame: Arc<Frame>,
    /// The sample presented at the asked time (decode-order index) and its PTS.
    pub sample: usize,
    pub sample_pts: i64,
    /// True when the sample could not be decoded and `frame` is the last good frame before it.
    pub concealed: bool,
}

/// A sample that could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SampleStatus {
    /// The stream ([`SampleSource::name`]).
    pub stream: String,
    /// Decode-order index of the sample.
    pub sample: usize,
    pub message: String,
}

impl std::fmt::Display for SampleStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} sample {}: {}",
            self.stream, self.sample, self.message
        )
    }
}

/// Counters for tests and benchmarks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PlayerStats {
    /// Samples fed to a decoder.
    pub samples_decoded: u64,
    /// Frames the decoders produced.
    pub frames_decoded: u64,
    /// `frame_at` calls answered from the cache without decoding.
    pub cache_hits: u64,
    /// Times decoding (re)started at a keyframe.
    pub seeks: u64,
    /// Samples the decoder rejected.
    pub corrupt_samples: u64,
    /// Frames dropped from the cache to stay within its budget.
    pub evictions: u64,
}

/// Why `frame_at` has no frame to give.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlayerError {
    #[error("{stream}: {source}")]
    Decoder {
        stream: String,
        #[source]
        source: DecodeError,
    },
    #[error("{stream}: no codec known for this stream; log its codec first")]
    NoCodec { stream: String },
    #[error("{stream} sample {sample}: {message}")]
    Source {
        stream: String,
        sample: usize,
        message: String,
    },
    #[error(
        "{stream} sample {sample}: no keyframe at or before it, so it cannot be decoded (the \
         stream does not start with a keyframe)"
    )]
    NoKeyframe { stream: String, sample: usize },
    #[error(
        "{stream} sample {sample}: cannot be decoded and no good frame precedes it (see the \
         reported samples)"
    )]
    Undecodable { stream: String, sample: usize },
}

/// What feeding a sample (or draining) came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fed {
    Decoded,
    /// The sample (or a sample before it) could not be decoded; reported.
    Failed,
    /// Damage was reported by a frame-threaded decoder: decode the GOP again on one thread.
    Again,
}

/// The decoder's place in the stream.
struct Running {
    /// Keyframe the decoder started at.
    start: usize,
    /// Next sample to feed.
    next: usize,
    /// PTS of samples fed whose frame has not come out yet.
    pending: BTreeSet<i64>,
}

/// See the module documentation.
pub struct VideoPlayer<S: SampleSource> {
    source: S,
    backend: Option<Backend>,
    decoder: Option<Box<dyn Decoder>>,
    running: Option<Running>,
    cache: BTreeMap<i64, Arc<Frame>>,
    cache_bytes: usize,
    cache_budget: usize,
    /// GOP start -> first sample of it that failed to decode.
    damaged: BTreeMap<usize, usize>,
    /// Samples the decoder rejected.
    bad_samples: BTreeSet<usize>,
    reports: Vec<SampleStatus>,
    stats: PlayerStats,
    out: Vec<Frame>,
    tuning: Tuning,
    /// Cache the frames decoded on the way to a target (for steps back), or only targets.
    cache_preroll: bool,
    /// Drain the decoder once the target sample is in, even when that ends its run.
    drain_at_target: bool,
    /// Frames presented before this are not handed out by the decoder (no preroll cache).
    floor: Option<i64>,
}

impl<S: SampleSource> VideoPlayer<S> {
    /// A player with the preferred backend for the stream's codec and the default cache.
    pub fn new(source: S) -> Self {
        VideoPlayer {
            source,
            backend: None,
            decoder: None,
            running: None,
            cache: BTreeMap::new(),
            cache_bytes: 0,
            cache_budget: DEFAULT_CACHE_BYTES,
            damaged: BTreeMap::new(),
            bad_samples: BTreeSet::new(),
            reports: Vec::new(),
            stats: PlayerStats::default(),
            out: Vec::new(),
            tuning: Tuning::LowLatency,
            cache_preroll: true,
            drain_at_target: false,
            floor: None,
        }
    }

    /// A player for stills rather than playback: frame-threaded decoding, no cache of the
    /// frames decoded on the way to a target, and a drain as soon as the target sample is in
    /// when `one_shot` (a single frame is wanted; a later `frame_at` may have to restart at a
    /// keyframe). Answers are the same frames a playback player gives.
    pub fn for_stills(source: S, one_shot: bool) -> Self {
        let mut player = VideoPlayer::new(source);
        player.tuning = Tuning::Throughput;
        player.cache_preroll = false;
        player.drain_at_target = one_shot;
        player
    }

    /// Uses `backend` instead of the preferred one.
    pub fn with_backend(mut self, backend: Backend) -> Self {
        self.backend = Some(backend);
        self.decoder = None;
        self.running = None;
        self
    }

    /// Bounds the decoded-frame cache to `bytes` (at least one frame is always kept).
    pub fn with_cache_bytes(mut self, bytes: usize) -> Self {
        self.cache_budget = bytes;
        self
    }

    pub fn source(&self) -> &S {
        &self.source
    }

    pub fn stats(&self) -> PlayerStats {
        self.stats
    }

    /// Bytes held by cached frames.
    pub fn cache_bytes(&self) -> usize {
        self.cache_bytes
    }

    /// Every sample reported undecodable so far.
    pub fn reports(&self) -> &[SampleStatus] {
        &self.reports
    }

    /// The name of the backend decoding (or about to decode) this stream.
    pub fn backend_name(&self) -> Result<&'static str, PlayerError> {
        Ok(self.backend()?.name())
    }

    fn backend(&self) -> Result<Backend, PlayerError> {
        if let Some(b) = self.backend {
            return Ok(b);
        }
        let codec = self.source.codec().ok_or_else(|| PlayerError::NoCodec {
            stream: self.source.name(),
        })?;
        backend_for(codec).map_err(|source| PlayerError::Decoder {
            stream: self.source.name(),
            source,
        })
    }

    /// The frame presented at `t` (latest PTS <= t), or `None` before the first sample.
    pub fn frame_at(&mut self, t: i64) -> Result<Option<PresentedFrame>, PlayerError> {
        let Some((target, pts)) = self.source.presented_at(t) else {
            return Ok(None);
        };
        if let Some(frame) = self.cache.get(&pts) {
            self.stats.cache_hits += 1;
            return Ok(Some(PresentedFrame {
                frame: frame.clone(),
                sample: target,
                sample_pts: pts,
                concealed: false,
            }));
        }
        let keyframe = self
            .decode_start(target)
            .ok_or_else(|| PlayerError::NoKeyframe {
                stream: self.source.name(),
                sample: target,
            })?;
        let damaged_from = self.damaged.get(&keyframe).copied();
        if damaged_from.is_none_or(|bad| target < bad)
            && let Some(frame) = self.decode_until(keyframe, target, pts)?
        {
            return Ok(Some(PresentedFrame {
                frame,
                sample: target,
                sample_pts: pts,
                concealed: false,
            }));
        }
        self.conceal(keyframe, target, pts).map(Some)
    }

    /// The keyframe decoding must start at to show sample `target`: the keyframe before it,
    /// or, for a leading picture (presented before that keyframe, such as an H.265 RASL
    /// picture of an open GOP, which references the GOP before), the keyframe before that.
    fn decode_start(&self, target: usize) -> Option<usize> {
        let keyframe = self.source.keyframe_before(target)?;
        let leading = keyframe > 0
            && self
                .source
                .pts(target)
                .zip(self.source.pts(keyframe))
                .is_some_and(|(t, k)| t < k);
        if leading && let Some(earlier) = self.source.keyframe_before(keyframe - 1) {
            return Some(earlier);
        }
        Some(keyframe)
    }

    /// Decodes until the frame of sample `target` (PTS `pts`) comes out; `None` when the GOP
    /// turned out damaged before it.
    fn decode_until(
        &mut self,
        keyframe: usize,
        target: usize,
        pts: i64,
    ) -> Result<Option<Arc<Frame>>, PlayerError> {
        if let Some(frame) = self.cache.get(&pts) {
            return Ok(Some(frame.clone()));
        }
        // The running decoder still holds the frame back, or has not reached it in its GOP.
        let reusable = self.running.as_ref().is_some_and(|r| {
            r.pending.contains(&pts)
                || (r.start <= keyframe && r.next >= keyframe && r.next <= target)
        });
        if !reusable {
            self.start_at(keyframe)?;
        }
        if !self.cache_preroll {
            self.set_floor(pts);
        }
        let mut restarted = false;
        loop {
            if let Some(frame) = self.cache.get(&pts) {
                return Ok(Some(frame.clone()));
            }
            let Some(running) = self.running.as_ref() else {
                return Ok(None);
            };
            let next = running.next;
            // Never feed a sample known to be undecodable: stop before it.
            let blocked = self.bad_samples.contains(&next)
                || self
                    .damaged
                    .get(&running.start)
                    .is_some_and(|&bad| next >= bad);
            // No codec holds a frame back for more than 16 later samples.
            let overdue = next > target + MAX_REORDER;
            // The target's picture is decoded once its sample is in; a drain releases it
            // without decoding later samples (free where decoding continues after it).
            let drain_now = next > target
                && (self.drain_at_target
                    || self
                        .decoder
                        .as_ref()
                        .is_some_and(|d| d.continues_after_flush()));
            if next < self.source.len() && !overdue && !blocked && !drain_now {
                match self.feed(next, pts)? {
                    Fed::Decoded => {}
                    Fed::Again => self.start_at(keyframe)?,
                    Fed::Failed => {
                        // The sample failed; frames before it are good but may have been
                        // held back: decode the GOP once more up to the bad sample.
                        if restarted || next <= target {
                            return Ok(None);
                        }
                        restarted = true;
                        self.start_at(keyframe)?;
                    }
                }
                continue;
            }
            // The live edge, the end, an overdue frame, or the target sample in: release what
            // the decoder holds.
            if self.flush(pts)? == Fed::Again {
                self.start_at(keyframe)?;
                continue;
            }
            if !self.cache.contains_key(&pts) {
                // The target's sample was fed and the decoder holds nothing back: its frame
                // is not coming.
                if !blocked && next > target {
                    self.report(
                        target,
                        "the decoder produced no frame for this sample".into(),
                    );
                    self.mark_damaged(keyframe, target);
                }
                self.running = None;
                return Ok(None);
            }
        }
    }

    /// Frames before `pts` are not wanted: the decoder keeps them to itself, and the player
    /// stops waiting for them.
    fn set_floor(&mut self, pts: i64) {
        self.floor = Some(pts);
        if let Some(decoder) = self.decoder.as_mut() {
            decoder.set_output_floor(Some(pts));
        }
        if let Some(running) = self.running.as_mut() {
            running.pending.retain(|&p| p >= pts);
        }
    }

    /// GOP `gop` cannot be decoded from sample `sample` on (the earliest such sample wins).
    fn mark_damaged(&mut self, gop: usize, sample: usize) {
        let bad = self.damaged.entry(gop).or_insert(sample);
        *bad = (*bad).min(sample);
    }

    fn report(&mut self, sample: usize, message: String) {
        self.stats.corrupt_samples += 1;
        self.reports.push(SampleStatus {
            stream: self.source.name(),
            sample,
            message,
        });
    }

    fn start_at(&mut self, keyframe: usize) -> Result<(), PlayerError> {
        let stream = self.source.name();
        match &mut self.decoder {
            Some(decoder) => decoder
                .reset()
                .map_err(|source| PlayerError::Decoder { stream, source })?,
            None => {
                let codec = self.source.codec().ok_or_else(|| PlayerError::NoCodec {
                    stream: stream.clone(),
                })?;
                let mut decoder = self
                    .backend()?
                    .open_tuned(codec, self.tuning)
                    .map_err(|source| PlayerError::Decoder { stream, source })?;
                decoder.set_output_floor(self.floor);
                self.decoder = Some(decoder);
            }
        }
        self.stats.seeks += 1;
        self.running = Some(Running {
            start: keyframe,
            next: keyframe,
            pending: BTreeSet::new(),
        });
        Ok(())
    }

    /// A frame-threaded decoder reports a damaged sample some samples late, so the sample
    /// cannot be named, and frames it gave out with it may have been decoded from the damage:
    /// they are forgotten, and from here on this player decodes on one thread, where both are
    /// known.
    fn decode_precisely(&mut self) {
        self.out.clear();
        if let Some(running) = self.running.take() {
            for i in running.start..running.next {
                if let Some(old) = self.source.pts(i).and_then(|pts| self.cache.remove(&pts)) {
                    self.cache_bytes -= old.byte_size();
                }
            }
        }
        self.tuning = Tuning::LowLatency;
        self.decoder = None;
    }

    /// Feeds sample `index`: [`Fed::Failed`] when it failed (reported; the GOP is marked
    /// damaged), [`Fed::Again`] when the GOP must be decoded again to name the bad sample.
    fn feed(&mut self, index: usize, playhead: i64) -> Result<Fed, PlayerError> {
        let stream = self.source.name();
        let bytes = self
            .source
            .bytes(index)
            .map_err(|message| PlayerError::Source {
                stream: stream.clone(),
                sample: index,
                message,
            })?;
        let sample_pts = self.source.pts(index).unwrap_or(i64::MIN);
        let (Some(decoder), Some(running)) = (self.decoder.as_mut(), self.running.as_mut()) else {
            return Ok(Fed::Failed);
        };
        if index > running.start && self.source.is_keyframe(index) {
            // A new GOP on the running decoder.
            running.start = index;
        }
        let gop = running.start;
        running.next = index + 1;
        if self.floor.is_none_or(|floor| sample_pts >= floor) {
            running.pending.insert(sample_pts);
        }
        self.stats.samples_decoded += 1;
        let result = decoder.decode(bytes.as_ref(), sample_pts, &mut self.out);
        self.take_output(playhead);
        match result {
            Ok(()) => Ok(Fed::Decoded),
            Err(DecodeError::Corrupt(_)) if self.tuning == Tuning::Throughput => {
                self.decode_precisely();
                Ok(Fed::Again)
            }
            Err(DecodeError::Corrupt(message)) => {
                self.report(index, message);
                self.bad_samples.insert(index);
                self.mark_damaged(gop, index);
                // Frames decoded before the bad sample are good: release them.
                if let Some(decoder) = self.decoder.as_mut() {
                    let _ = decoder.flush(&mut self.out);
                    let _ = decoder.reset();
                }
                self.take_output(playhead);
                self.running = None;
                Ok(Fed::Failed)
            }
            Err(source) => {
                self.running = None;
                Err(PlayerError::Decoder { stream, source })
            }
        }
    }

    /// Drains the decoder. [`Fed::Again`] when it reported damage it cannot place (frame
    /// threads): the GOP must be decoded again; a damaged sample otherwise shows as the
    /// frame the caller misses.
    fn flush(&mut self, playhead: i64) -> Result<Fed, PlayerError> {
        let stream = self.source.name();
        let Some(decoder) = self.decoder.as_mut() else {
            return Ok(Fed::Decoded);
        };
        let result = decoder.flush(&mut self.out);
        let continues = decoder.continues_after_flush();
        self.take_output(playhead);
        match result {
            Ok(()) => {}
            Err(DecodeError::Corrupt(_)) if self.tuning == Tuning::Throughput => {
                self.decode_precisely();
                return Ok(Fed::Again);
            }
            Err(DecodeError::Corrupt(_)) => {
                self.running = None;
                return Ok(Fed::Failed);
            }
            Err(source) => {
                self.running = None;
                return Err(PlayerError::Decoder { stream, source });
            }
        }
        match &mut self.running {
            Some(r) if continues => r.pending.clear(),
            _ => self.running = None,
        }
        Ok(Fed::Decoded)
    }

    /// Moves decoded frames into the cache, then trims it around `playhead`.
    fn take_output(&mut self, playhead: i64) {
        for frame in self.out.drain(..) {
            self.stats.frames_decoded += 1;
            if let Some(r) = self.running.as_mut() {
                r.pending.remove(&frame.pts);
            }
            self.cache_bytes += frame.byte_size();
            if let Some(old) = self.cache.insert(frame.pts, Arc::new(frame)) {
                self.cache_bytes -= old.byte_size();
            }
        }
        while self.cache_bytes > self.cache_budget && self.cache.len() > 1 {
            let (Some((&first, _)), Some((&last, _))) =
                (self.cache.first_key_value(), self.cache.last_key_value())
            else {
                break;
            };
            let far = if playhead.abs_diff(first) >= playhead.abs_diff(last) {
                first
            } else {
                last
            };
            if let Some(old) = self.cache.remove(&far) {
                self.cache_bytes -= old.byte_size();
                self.stats.evictions += 1;
                // Nobody else holds it: its storage serves the next decoded frame.
                if let (Ok(frame), Some(decoder)) = (Arc::try_unwrap(old), self.decoder.as_mut()) {
                    decoder.recycle(frame.into_buffer());
                }
            }
        }
    }

    /// The last good frame before sample `target` of a damaged GOP.
    fn conceal(
        &mut self,
        keyframe: usize,
        target: usize,
        pts: i64,
    ) -> Result<PresentedFrame, PlayerError> {
        let concealed = |frame: Arc<Frame>| PresentedFrame {
            frame,
            sample: target,
            sample_pts: pts,
            concealed: true,
        };
        // The latest-presented sample of this GOP before the damage: from the cache, or
        // decoded again (evicted, or a stills player that keeps only targets).
        // A candidate that turns out undecodable too moves the damage earlier; a few tries.
        for _ in 0..4 {
            let Some(&bad) = self.damaged.get(&keyframe) else {
                break;
            };
            let latest_good = (keyframe..bad.min(self.source.len()))
                .filter_map(|i| self.source.pts(i).map(|p| (p, i)))
                .filter(|&(p, _)| p < pts)
                .max();
            let Some((good_pts, good)) = latest_good else {
                break;
            };
            if let Some(frame) = self.decode_until(keyframe, good, good_pts)? {
                return Ok(concealed(frame));
            }
            self.mark_damaged(keyframe, good);
        }
        if !self.damaged.contains_key(&keyframe)
            && let Some((_, frame)) = self.cache.range(..pts).next_back()
            && self.gop_of_cached(frame.pts) == keyframe
        {
            // No damage recorded here: the latest cached frame of the GOP before t.
            return Ok(concealed(frame.clone()));
        }
        // Otherwise the frame shown just before this GOP starts (bounded: the walk stops at
        // the first GOP that decodes).
        let gop_first_pts = (keyframe..self.source.len())
            .take_while(|&i| i == keyframe || !self.source.is_keyframe(i))
            .filter_map(|i| self.source.pts(i))
            .min();
        let mut before = gop_first_pts.and_then(|p| p.checked_sub(1));
        for _ in 0..8 {
            let Some(t) = before else { break };
            let Some((sample, sample_pts)) = self.source.presented_at(t) else {
                break;
            };
            let Some(k) = self.decode_start(sample) else {
                break;
            };
            if self.damaged.get(&k).is_none_or(|&bad| sample < bad)
                && let Some(frame) = self.decode_until(k, sample, sample_pts)?
            {
                return Ok(concealed(frame));
            }
            before = sample_pts.checked_sub(1);
        }
        Err(PlayerError::Undecodable {
            stream: self.source.name(),
            sample: target,
        })
    }

    /// The keyframe of the GOP a cached frame's PTS belongs to (by its sample).
    fn gop_of_cached(&self, pts: i64) -> usize {
        self.source
            .presented_at(pts)
            .and_then(|(i, _)| self.source.keyframe_before(i))
            .unwrap_or(0)
    }
}

/// A [`SampleSource`] held in memory: for tests, tools and streams read from a file.
#[derive(Clone, Debug, Default)]
pub struct MemorySource {
    pub name: String,
    pub codec: Option<VideoCodec>,
    /// `(bytes, pts, is_keyframe)` in decode order.
    pub samples: Vec<(Arc<[u8]>, i64, bool)>,
}

impl MemorySource {
    pub fn new(name: impl Into<String>, codec: VideoCodec) -> Self {
        MemorySource {
            name: name.into(),
            codec: Some(codec),
            samples: Vec::new(),
        }
    }

    pub fn push(&mut self, bytes: impl Into<Arc<[u8]>>, pts: i64, is_keyframe: bool) {
        self.samples.push((bytes.into(), pts, is_keyframe));
    }
}

impl SampleSource for MemorySource {
    type Bytes = Arc<[u8]>;

    fn name(&self) -> String {
        self.name.clone()
    }
    fn codec(&self) -> Option<VideoCodec> {
        self.codec
    }
    fn len(&self) -> usize {
        self.samples.len()
    }
    fn pts(&self, index: usize) -> Option<i64> {
        self.samples.get(index).map(|s| s.1)
    }
    fn is_keyframe(&self, index: usize) -> bool {
        self.samples.get(index).is_some_and(|s| s.2)
    }
    fn bytes(&self, index: usize) -> Result<Arc<[u8]>, String> {
        self.samples
            .get(index)
            .map(|s| s.0.clone())
            .ok_or_else(|| format!("sample {index} does not exist"))
    }
}

/// A shared source that may grow while a player reads it (a live stream).
impl<T: SampleSource> SampleSource for Arc<std::sync::RwLock<T>> {
    type Bytes = T::Bytes;

    fn name(&self) -> String {
        self.read().map(|s| s.name()).unwrap_or_default()
    }
    fn codec(&self) -> Option<VideoCodec> {
        self.read().ok().and_then(|s| s.codec())
    }
    fn len(&self) -> usize {
        self.read().map(|s| s.len()).unwrap_or(0)
    }
    fn pts(&self, index: usize) -> Option<i64> {
        self.read().ok().and_then(|s| s.pts(index))
    }
    fn is_keyframe(&self, index: usize) -> bool {
        self.read().is_ok_and(|s| s.is_keyframe(index))
    }
    fn presented_at(&self, t: i64) -> Option<(usize, i64)> {
        self.read().ok().and_then(|s| s.presented_at(t))
    }
    fn keyframe_before(&self, index: usize) -> Option<usize> {
        self.read().ok().and_then(|s| s.keyframe_before(index))
    }
    fn bytes(&self, index: usize) -> Result<T::Bytes, String> {
        self.read()
            .map_err(|_| "the stream's lock is poisoned".to_string())?
            .bytes(index)
    }
}
