//! Export of a video entity to MP4 without re-encoding: which samples a time range needs
//! (from the keyframe before it, B-frame references after it), their timing, where the
//! stream's parameters change (a new SPS: another file), and streaming the sample bytes
//! from a [`ChunkStore`] into [`Mp4Muxer`].
//!
//! Used by `vidlog export` (files, stdout) and the server's `export.mp4` endpoint (a live
//! recording: samples are read under short store locks, see [`ReadStore`]). Memory holds
//! the sample table plus a small batch of samples, whatever the recording's size.

use std::io::Write;
use std::ops::Range;

use vidlog_types::{EntityPath, TimeKind, VideoCodec};
use vidlog_video::mp4::{Mp4Error, Mp4Muxer, Mp4Options, Mp4Summary, SampleEntry};

use crate::store::VideoSample;
use crate::{ChunkStore, StoreError, VideoIndex};

/// Samples fetched per store access while writing (bounded by bytes too).
const BATCH_SAMPLES: usize = 64;
const BATCH_BYTES: usize = 8 << 20;

/// Why an export cannot be made: what, where, and what to pick instead.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("the recording has no video entity")]
    NoVideo,
    #[error("{entity} has no video samples; video entities: {videos}")]
    NotVideo { entity: String, videos: String },
    #[error("entity {text:?}: {reason}")]
    BadEntity { text: String, reason: String },
    #[error("the recording has several video entities; pick one with --entity: {videos}")]
    SeveralEntities { videos: String },
    #[error("{entity} has no timeline {name:?}; it has {has}")]
    NoTimeline {
        entity: String,
        name: String,
        has: String,
    },
    #[error("{entity} has no duration or timestamp timeline to give presentation times")]
    NoPresentationTimeline { entity: String },
    #[error(
        "timeline {name:?} is a sequence, which has no unit of time; export on a duration or timestamp timeline"
    )]
    SequenceTimeline { name: String },
    #[error("{entity}: some samples have no time on timeline {timeline:?}")]
    MissingPts { entity: String, timeline: String },
    #[error("from {from} is after the last frame (the stream covers {first} .. {last})")]
    FromAfterEnd {
        from: String,
        first: String,
        last: String,
    },
    #[error("no samples in the range (the stream covers {first} .. {last})")]
    EmptyRange { first: String, last: String },
    #[error("no keyframe at or before sample {sample}: nothing decodable to start from")]
    NoKeyframe { sample: usize },
    #[error("{entity}: no codec logged, so its samples cannot be exported")]
    NoCodec { entity: String },
    #[error(
        "the stream's parameters (SPS) change at sample {sample}: the range exports as {files} \
         MP4 files; export a range that ends before sample {sample} or starts at it"
    )]
    ParameterChange { sample: usize, files: usize },
    #[error("{entity} sample {sample}: building the MP4 sample entry: {source}")]
    SampleEntry {
        entity: String,
        sample: usize,
        source: Mp4Error,
    },
    #[error("{entity}: {source}")]
    Mp4 { entity: String, source: Mp4Error },
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl ExportError {
    /// The entity asked for, or any video, does not exist (HTTP 404); other refusals are
    /// the request's (400), except [`ExportError::Store`] and write failures.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ExportError::NoVideo | ExportError::NotVideo { .. })
    }

    /// Failures of the server or the output rather than of the request.
    pub fn is_internal(&self) -> bool {
        match self {
            ExportError::Store(_) => true,
            ExportError::Mp4 { source, .. } => matches!(source, Mp4Error::Io { .. }),
            _ => false,
        }
    }
}

/// Read access to a store for the time of one batch: a plain store, or a live one behind a
/// lock that is released between batches.
pub trait ReadStore {
    fn read_store<R>(&self, f: impl FnOnce(&ChunkStore) -> R) -> R;
}

impl ReadStore for ChunkStore {
    fn read_store<R>(&self, f: impl FnOnce(&ChunkStore) -> R) -> R {
        f(self)
    }
}

/// The only video entity, or the one asked for.
pub fn pick_entity(store: &ChunkStore, asked: Option<&str>) -> Result<EntityPath, ExportError> {
    let videos: Vec<&EntityPath> = store.video_entities().collect();
    match asked {
        Some(name) => {
            let entity = EntityPath::parse(name).map_err(|e| ExportError::BadEntity {
                text: name.to_owned(),
                reason: e.to_string(),
            })?;
            if store.video(&entity).is_none_or(|v| v.is_empty()) {
                return Err(ExportError::NotVideo {
                    entity: entity.to_string(),
                    videos: list(&videos),
                });
            }
            Ok(entity)
        }
        None => match videos.as_slice() {
            [only] => Ok((*only).clone()),
            [] => Err(ExportError::NoVideo),
            _ => Err(ExportError::SeveralEntities {
                videos: list(&videos),
            }),
        },
    }
}

fn list(entities: &[&EntityPath]) -> String {
    if entities.is_empty() {
        return "none".into();
    }
    entities
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The timeline asked for, or the stream's duration timeline, or its timestamp timeline.
pub fn pick_timeline(
    video: &VideoIndex,
    asked: Option<&str>,
    entity: &EntityPath,
) -> Result<(String, TimeKind), ExportError> {
    let mut timelines: Vec<(String, TimeKind)> =
        video.timelines().map(|(n, k)| (n.to_string(), k)).collect();
    timelines.sort_by_key(|(name, kind)| (*kind, name.clone()));
    let chosen = match asked {
        Some(name) => timelines
            .iter()
            .find(|(n, _)| n == name)
            .cloned()
            .ok_or_else(|| ExportError::NoTimeline {
                entity: entity.to_string(),
                name: name.to_owned(),
                has: timelines
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            })?,
        None => timelines
            .iter()
            .find(|(_, k)| *k == TimeKind::Duration)
            .or_else(|| timelines.iter().find(|(_, k)| *k == TimeKind::Timestamp))
            .cloned()
            .ok_or_else(|| ExportError::NoPresentationTimeline {
                entity: entity.to_string(),
            })?,
    };
    if chosen.1 == TimeKind::Sequence {
        return Err(ExportError::SequenceTimeline { name: chosen.0 });
    }
    Ok(chosen)
}

/// The samples to write, in decode order: `keyframe..=last`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleRange {
    pub keyframe: usize,
    pub last: usize,
    /// Presentation start when the range starts inside a GOP (`from`).
    pub start: Option<i64>,
    /// Presentation end (exclusive) when frames after the range are written because frames in
    /// it reference them (`to` before a B-frame's reference): the next frame's time.
    pub end: Option<i64>,
}

impl SampleRange {
    /// The frames shown from `from` (the one on screen at `from`) to `to`, inclusive.
    pub fn select(
        video: &VideoIndex,
        timeline: &str,
        pts: &[i64],
        from: Option<i64>,
        to: Option<i64>,
    ) -> Result<Self, ExportError> {
        let (lo, hi) = (
            pts.iter().copied().min().unwrap_or(0),
            pts.iter().copied().max().unwrap_or(0),
        );
        let kind = video
            .timelines()
            .find(|(name, _)| name.as_str() == timeline)
            .map_or(TimeKind::Duration, |(_, kind)| kind);
        let covers = |t: i64| kind.format_value(t);
        if let Some(f) = from.filter(|&f| f > hi) {
            return Err(ExportError::FromAfterEnd {
                from: covers(f),
                first: covers(lo),
                last: covers(hi),
            });
        }
        // The first frame is the one shown at `from`: the latest with pts <= from.
        let first_pts = match from {
            Some(f) => match video.plan(timeline, f) {
                Some(plan) => plan.pts,
                None => lo,
            },
            None => lo,
        };
        let to = to.unwrap_or(hi);
        let selected: Vec<usize> = (0..pts.len())
            .filter(|&i| pts[i] >= first_pts && pts[i] <= to)
            .collect();
        let (Some(&first), Some(&last)) = (selected.iter().min(), selected.iter().max()) else {
            return Err(ExportError::EmptyRange {
                first: covers(lo),
                last: covers(hi),
            });
        };
        let keyframes = video.keyframes();
        let k = keyframes.partition_point(|&k| k <= first);
        let keyframe = *keyframes
            .get(k.wrapping_sub(1))
            .filter(|_| k > 0)
            .ok_or(ExportError::NoKeyframe { sample: first })?;
        // Samples decoded before `last` but presented after the range are written (they are
        // references); the presentation ends where the next frame of the stream starts.
        let shown_last = selected.iter().map(|&i| pts[i]).max().unwrap_or(hi);
        let end = (pts[keyframe..=last].iter().any(|&p| p > shown_last))
            .then(|| pts.iter().copied().filter(|&p| p > shown_last).min())
            .flatten();
        Ok(SampleRange {
            keyframe,
            last,
            start: from.map(|_| first_pts),
            end,
        })
    }

    /// `keyframe..=last` cut where a keyframe brings parameter sets different from the
    /// ones in force (a new SPS: another size or profile).
    pub fn split_at_parameter_changes(&self, video: &VideoIndex) -> Vec<Range<usize>> {
        let samples = video.samples();
        let mut current = samples[..=self.keyframe]
            .iter()
            .rev()
            .find_map(|s| s.parameter_sets);
        let mut segments = Vec::new();
        let mut start = self.keyframe;
        for (i, sample) in samples
            .iter()
            .enumerate()
            .take(self.last + 1)
            .skip(self.keyframe + 1)
        {
            if let (true, Some(hash)) = (sample.is_keyframe(), sample.parameter_sets) {
                if current.is_some_and(|c| c != hash) {
                    segments.push(start..i);
                    start = i;
                }
                current = Some(hash);
            }
        }
        segments.push(start..self.last + 1);
        segments
    }
}

/// A planned MP4 export of one entity: everything decided from the store's index, so the
/// bytes can be streamed later (from a live store, under short locks).
#[derive(Debug, Clone)]
pub struct Mp4Export {
    pub entity: EntityPath,
    pub timeline: String,
    pub kind: TimeKind,
    pub codec: VideoCodec,
    /// Presentation time of every sample of the entity, in decode order.
    pub pts: Vec<i64>,
    pub range: SampleRange,
    /// The range cut at parameter changes: one MP4 file each.
    pub segments: Vec<Range<usize>>,
    /// Duration of each segment's last presented frame (until the stream's next frame).
    last_durations: Vec<Option<i64>>,
}

impl Mp4Export {
    /// Plans the export of `entity` on `timeline` (a duration or timestamp timeline, see
    /// [`pick_timeline`]) for presentation times `from ..= to` (ns).
    pub fn plan(
        store: &ChunkStore,
        entity: &EntityPath,
        timeline: &str,
        from: Option<i64>,
        to: Option<i64>,
    ) -> Result<Self, ExportError> {
        let video = store
            .video(entity)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| ExportError::NotVideo {
                entity: entity.to_string(),
                videos: list(&store.video_entities().collect::<Vec<_>>()),
            })?;
        let (timeline, kind) = pick_timeline(video, Some(timeline), entity)?;
        let pts = video
            .pts(&timeline)
            .ok_or_else(|| ExportError::MissingPts {
                entity: entity.to_string(),
                timeline: timeline.clone(),
            })?
            .to_vec();
        let range = SampleRange::select(video, &timeline, &pts, from, to)?;
        let segments = range.split_at_parameter_changes(video);
        let codec = store.codec(entity).ok_or_else(|| ExportError::NoCodec {
            entity: entity.to_string(),
        })?;
        let last_durations = segments
            .iter()
            .map(|s| last_frame_duration(video, &timeline, &pts[s.clone()]))
            .collect();
        Ok(Mp4Export {
            entity: entity.clone(),
            timeline,
            kind,
            codec,
            pts,
            range,
            segments,
            last_durations,
        })
    }

    /// Fails when the range needs more than one file (a parameter change inside it).
    pub fn single_segment(&self) -> Result<(), ExportError> {
        match self.segments.get(1) {
            Some(second) => Err(ExportError::ParameterChange {
                sample: second.start,
                files: self.segments.len(),
            }),
            None => Ok(()),
        }
    }

    /// Bytes of every sample to write.
    pub fn total_bytes(&self, store: &ChunkStore) -> u64 {
        store.video(&self.entity).map_or(0, |video| {
            video.samples()[self.range.keyframe..=self.range.last]
                .iter()
                .map(|s| u64::from(s.size))
                .sum()
        })
    }

    /// The sample entry of segment `n`, from its first keyframe's parameter sets.
    pub fn sample_entry(
        &self,
        store: &impl ReadStore,
        n: usize,
    ) -> Result<SampleEntry, ExportError> {
        let start = self.segments[n].start;
        let first = store.read_store(|store| {
            store
                .video_samples(&self.entity, start..start + 1)
                .next()
                .transpose()
        })?;
        let first = first.ok_or_else(|| {
            StoreError::Load(format!("{} sample {start} is missing", self.entity))
        })?;
        SampleEntry::from_keyframe(self.codec, first.as_slice()).map_err(|source| {
            ExportError::SampleEntry {
                entity: self.entity.to_string(),
                sample: start,
                source,
            }
        })
    }

    /// Presentation times of segment `n`'s samples (decode order), for the muxer.
    pub fn segment_pts(&self, n: usize) -> &[i64] {
        &self.pts[self.segments[n].clone()]
    }

    /// Muxer options of segment `n`: the range's start trims the first segment, its end
    /// the last one.
    pub fn options(&self, n: usize, fragmented: bool) -> Mp4Options {
        let segment_pts = self.segment_pts(n);
        Mp4Options {
            fragmented,
            timescale: None,
            start: if n == 0 {
                self.range
                    .start
                    .filter(|s| segment_pts.iter().any(|p| p < s))
            } else {
                None
            },
            end: if n + 1 == self.segments.len() {
                self.range.end
            } else {
                None
            },
            last_duration: self.last_durations[n],
        }
    }

    /// Streams segment `n`'s samples into `muxer` and finishes it; `progress` gets each
    /// sample's size as it is written.
    pub fn write_segment<W: Write>(
        &self,
        mut muxer: Mp4Muxer<W>,
        store: &impl ReadStore,
        n: usize,
        mut progress: impl FnMut(u64),
    ) -> Result<Mp4Summary, ExportError> {
        let mut next = self.segments[n].start;
        let end = self.segments[n].end;
        while next < end {
            let batch = store.read_store(|store| read_batch(store, &self.entity, next..end))?;
            for sample in &batch {
                muxer
                    .push(sample.as_slice(), sample.is_keyframe)
                    .map_err(|source| self.mp4_error(Some(sample.index), source))?;
                progress(sample.bytes.len() as u64);
            }
            next += batch.len();
        }
        muxer
            .finish()
            .map_err(|source| self.mp4_error(None, source))
    }

    fn mp4_error(&self, sample: Option<usize>, source: Mp4Error) -> ExportError {
        ExportError::Mp4 {
            entity: match sample {
                Some(i) => format!("{} sample {i}", self.entity),
                None => self.entity.to_string(),
            },
            source,
        }
    }
}

/// Samples from `range.start`: at least one, at most a batch.
fn read_batch(
    store: &ChunkStore,
    entity: &EntityPath,
    range: Range<usize>,
) -> Result<Vec<VideoSample>, StoreError> {
    let mut batch = Vec::new();
    let mut bytes = 0;
    for sample in store.video_samples(
        entity,
        range.start..range.end.min(range.start + BATCH_SAMPLES),
    ) {
        let sample = sample?;
        bytes += sample.bytes.len();
        batch.push(sample);
        if bytes >= BATCH_BYTES {
            break;
        }
    }
    Ok(batch)
}

/// How long the last presented frame of `segment_pts` lasts: until the next frame of the
/// whole stream, when there is one.
fn last_frame_duration(video: &VideoIndex, timeline: &str, segment_pts: &[i64]) -> Option<i64> {
    let last = segment_pts.iter().copied().max()?;
    let order = video.presentation_order(timeline)?;
    let next = order.partition_point(|(p, _)| *p <= last);
    order.get(next).map(|(p, _)| p - last)
}

/// A file name for an entity's export: `camera/front` -> `camera_front.mp4`.
pub fn file_name(entity: &EntityPath) -> String {
    let stem: String = entity
        .to_string()
        .trim_matches('/')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if stem.is_empty() {
        "video.mp4".into()
    } else {
        format!("{stem}.mp4")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_plain() {
        let name = |p: &str| file_name(&EntityPath::parse(p).unwrap());
        assert_eq!(name("camera/front"), "camera_front.mp4");
        assert_eq!(name("cam \"x\""), "cam__x_.mp4");
    }
}
