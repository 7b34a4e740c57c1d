//! The per-entity video sample index: samples in decode order, their presentation
//! times on each timeline, keyframe positions, and the diagnostics found on the way.
//!
//! It answers "to show time t, decode samples k..=i" ([`DecodePlan`]) without touching
//! sample bytes; keyframe flags were settled once at ingest (see [`crate::summary`]).

use std::collections::HashMap;

use vidlog_types::{EntityPath, TimeKind, TimelineName, VideoCodec};

use super::ChunkIdx;
use crate::summary::{FLAG_INVALID, FLAG_KEYFRAME, FLAG_UNPROBED};

/// One sample in decode order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleRef {
    pub row_id: u64,
    pub chunk: ChunkIdx,
    pub row: u32,
    pub size: u32,
    pub flags: u8,
    /// Hash of the parameter sets (SPS / sequence header) the sample carries, if any.
    pub parameter_sets: Option<u32>,
}

impl SampleRef {
    pub fn is_keyframe(&self) -> bool {
        self.flags & FLAG_KEYFRAME != 0
    }
}

/// Samples to decode to show one time: `keyframe..=target` in decode order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodePlan {
    /// The sample presented at the queried time (latest presentation time <= t).
    pub target: usize,
    /// The keyframe to start decoding at (the last keyframe at or before `target`).
    pub keyframe: usize,
    /// Presentation time of `target`.
    pub pts: i64,
}

impl DecodePlan {
    pub fn samples(&self) -> std::ops::RangeInclusive<usize> {
        self.keyframe..=self.target
    }
}

/// Something wrong with a stream; the data is stored regardless.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub entity: EntityPath,
    pub sample: Option<usize>,
    pub time: Option<(TimelineName, TimeKind, i64)>,
    pub message: String,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.entity)?;
        if let Some(i) = self.sample {
            write!(f, " sample {i}")?;
        }
        if let Some((name, kind, value)) = &self.time {
            write!(f, " ({name}={})", kind.format_value(*value))?;
        }
        write!(f, ": {}", self.message)
    }
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct VideoIndex {
    samples: Vec<SampleRef>,
    /// Presentation time of each sample (decode order) per timeline, and how many samples
    /// lack the timeline (they hold a placeholder, so columns stay parallel to `samples`).
    pts: HashMap<TimelineName, (TimeKind, Vec<i64>, usize)>,
    /// Per timeline: `(pts, decode index)` sorted, for presentation-order lookups.
    presentation: HashMap<TimelineName, Vec<(i64, usize)>>,
    keyframes: Vec<usize>,
    last_parameter_sets: Option<u32>,
    pub(crate) diagnostics: Vec<Diagnostic>,
    has_b_frames: HashMap<TimelineName, bool>,
}

/// A chunk's worth of samples to add.
pub(crate) struct NewSamples<'a> {
    pub entity: &'a EntityPath,
    pub chunk: ChunkIdx,
    pub row_ids: &'a [u64],
    pub timelines: &'a [(vidlog_types::Timeline, Vec<i64>)],
    pub rows: &'a crate::summary::VideoRows,
    pub codec: Option<VideoCodec>,
}

impl VideoIndex {
    pub fn len(&self) -> usize {
        self.samples.len()
    }
    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }
    pub fn samples(&self) -> &[SampleRef] {
        &self.samples
    }
    pub fn sample(&self, i: usize) -> Option<&SampleRef> {
        self.samples.get(i)
    }
    /// Decode indexes of keyframes, ascending.
    pub fn keyframes(&self) -> &[usize] {
        &self.keyframes
    }
    /// Presentation times on `timeline`, in decode order; `None` when some sample was
    /// logged without this timeline.
    pub fn pts(&self, timeline: &str) -> Option<&[i64]> {
        self.pts
            .iter()
            .find(|(n, (_, _, missing))| n.as_str() == timeline && *missing == 0)
            .map(|(_, (_, v, _))| v.as_slice())
    }
    pub fn timelines(&self) -> impl Iterator<Item = (&TimelineName, TimeKind)> {
        self.pts.iter().map(|(n, (k, _, _))| (n, *k))
    }
    /// True when presentation order differs from decode order on `timeline`.
    pub fn has_b_frames(&self, timeline: &str) -> bool {
        self.has_b_frames
            .iter()
            .any(|(n, b)| n.as_str() == timeline && *b)
    }
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }
    /// `(pts, decode index)` in presentation order on `timeline`.
    pub fn presentation_order(&self, timeline: &str) -> Option<&[(i64, usize)]> {
        self.presentation
            .iter()
            .find(|(n, _)| n.as_str() == timeline)
            .map(|(_, v)| v.as_slice())
    }

    /// Lengths (in samples, decode order) of each GOP: keyframe to next keyframe.
    pub fn gop_lengths(&self) -> Vec<usize> {
        let mut out: Vec<usize> = self.keyframes.windows(2).map(|w| w[1] - w[0]).collect();
        if let Some(last) = self.keyframes.last() {
            out.push(self.samples.len() - last);
        }
        out
    }

    /// What to decode to show time `t` on `timeline`.
    pub fn plan(&self, timeline: &str, t: i64) -> Option<DecodePlan> {
        let order = self.presentation_order(timeline)?;
        let at = order.partition_point(|(pts, _)| *pts <= t);
        let (pts, target) = *order.get(at.checked_sub(1)?)?;
        let k = self.keyframes.partition_point(|k| *k <= target);
        let keyframe = *self.keyframes.get(k.checked_sub(1)?)?;
        Some(DecodePlan {
            target,
            keyframe,
            pts,
        })
    }

    pub(crate) fn add(&mut self, new: NewSamples<'_>) {
        for (row, &row_id) in new.row_ids.iter().enumerate() {
            let sample = SampleRef {
                row_id,
                chunk: new.chunk,
                row: row as u32,
                size: new.rows.sizes.get(row).copied().unwrap_or(0),
                flags: new.rows.flags.get(row).copied().unwrap_or(FLAG_UNPROBED),
                parameter_sets: new
                    .rows
                    .parameter_sets
                    .iter()
                    .find(|(r, _)| *r as usize == row)
                    .map(|(_, hash)| *hash),
            };
            let at = if self.samples.last().is_none_or(|s| s.row_id < row_id) {
                self.samples.len()
            } else {
                self.samples.partition_point(|s| s.row_id < row_id)
            };
            let time_of = |timelines: &[(vidlog_types::Timeline, Vec<i64>)]| {
                timelines
                    .first()
                    .map(|(t, v)| (t.name.clone(), t.kind, v[row]))
            };
            self.check(&new, row, at, &sample, time_of(new.timelines));
            self.insert_at(at, sample, new.timelines, row);
        }
    }

    fn insert_at(
        &mut self,
        at: usize,
        sample: SampleRef,
        timelines: &[(vidlog_types::Timeline, Vec<i64>)],
        row: usize,
    ) {
        let appended = at == self.samples.len();
        self.samples.insert(at, sample);
        if !appended {
            // Out-of-order arrival: shift decode indexes at or after `at`.
            for k in &mut self.keyframes {
                if *k >= at {
                    *k += 1;
                }
            }
            for order in self.presentation.values_mut() {
                for (_, i) in order.iter_mut() {
                    if *i >= at {
                        *i += 1;
                    }
                }
            }
        }
        if sample.is_keyframe() {
            let k = self.keyframes.partition_point(|k| *k < at);
            self.keyframes.insert(k, at);
        }
        let earlier = self.samples.len() - 1;
        for (timeline, _) in timelines {
            // A timeline first seen now: the samples before lack it.
            self.pts
                .entry(timeline.name.clone())
                .or_insert_with(|| (timeline.kind, vec![0; earlier], earlier));
        }
        for (name, (_, column, missing)) in &mut self.pts {
            match timelines.iter().find(|(t, _)| t.name == *name) {
                Some((_, values)) => column.insert(at, values[row]),
                None => {
                    column.insert(at, 0);
                    *missing += 1;
                }
            }
        }
        for (timeline, values) in timelines {
            let key = (values[row], at);
            let order = self.presentation.entry(timeline.name.clone()).or_default();
            let pos = if order.last().is_none_or(|last| *last <= key) {
                order.len()
            } else {
                order.partition_point(|e| *e <= key)
            };
            // Presentation order differs from decode order when a neighbour in presentation
            // order is on the wrong side in decode order (chunks arriving late do not count).
            let before = pos.checked_sub(1).map(|p| order[p].1);
            let after = order.get(pos).map(|e| e.1);
            if before.is_some_and(|b| b > at) || after.is_some_and(|a| a < at) {
                self.has_b_frames.insert(timeline.name.clone(), true);
            }
            order.insert(pos, key);
        }
    }

    fn check(
        &mut self,
        new: &NewSamples<'_>,
        row: usize,
        index: usize,
        sample: &SampleRef,
        time: Option<(TimelineName, TimeKind, i64)>,
    ) {
        let mut messages: Vec<String> = Vec::new();
        let mut say = |message: String| messages.push(message);
        if sample.flags & FLAG_UNPROBED != 0 && new.codec.is_none() {
            if self
                .diagnostics
                .iter()
                .all(|d| !d.message.starts_with("no codec"))
            {
                say(
                    "no codec logged for this video stream before its samples; log \
                     `VideoStream::new(codec)` as static data first"
                        .into(),
                );
            }
        } else if sample.flags & FLAG_INVALID != 0 {
            let problem = new
                .rows
                .problems
                .iter()
                .find(|(r, _)| *r as usize == row)
                .map(|(_, p)| p.clone())
                .unwrap_or_else(|| "invalid sample".into());
            say(problem);
        }
        if index == 0
            && self.samples.is_empty()
            && sample.flags & FLAG_UNPROBED == 0
            && !sample.is_keyframe()
        {
            say(
                "the stream does not start with a keyframe; frames before the first keyframe \
                 cannot be decoded"
                    .into(),
            );
        }
        if let Some((_, hash)) = new
            .rows
            .parameter_sets
            .iter()
            .find(|(r, _)| *r as usize == row)
        {
            if let Some(last) = self.last_parameter_sets
                && last != *hash
            {
                say(
                    "parameter sets (SPS) change mid-stream; decoders and exports start a new \
                         configuration here"
                        .into(),
                );
            }
            self.last_parameter_sets = Some(*hash);
        }
        for message in messages {
            self.diagnostics.push(Diagnostic {
                entity: new.entity.clone(),
                sample: Some(index),
                time: time.clone(),
                message,
            });
        }
    }
}
