//! Chunk summaries: what the indexes need to know about a chunk without its bytes.
//!
//! A summary holds a chunk's row ids, its timeline columns, its component names and,
//! for video, each sample's size and flags (keyframe, invalid) found by probing the
//! sample once at ingest. The store indexes summaries; a recording file's footer is a
//! list of them, so opening a file builds every index without reading any chunk.

use arrow_array::Array;
use vidlog_types::{
    Chunk, ChunkId, ComponentName, EntityPath, TimeKind, Timeline, VideoCodec, VideoStream,
};
use vidlog_video::probe::{SampleParameterSets, probe_sample};

use crate::wire::{WireError, WireReader, WireWriter};

/// The sample is a keyframe.
pub const FLAG_KEYFRAME: u8 = 1;
/// The sample is not valid for its codec (see [`VideoRows::problems`]).
pub const FLAG_INVALID: u8 = 2;
/// The sample was not probed: its codec was unknown when it arrived.
pub const FLAG_UNPROBED: u8 = 4;
/// The sample carries parameter sets (SPS / sequence header).
pub const FLAG_PARAMETER_SETS: u8 = 8;

/// Where a chunk sits in a recording file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkLocation {
    /// Offset of the chunk's frame header.
    pub offset: u64,
    /// Header plus payload.
    pub frame_len: u64,
    pub schema_id: u32,
}

/// Per-sample facts of a chunk with a `VideoStream:sample` column.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VideoRows {
    pub sizes: Vec<u32>,
    pub flags: Vec<u8>,
    /// Why a sample is invalid, by row.
    pub problems: Vec<(u32, String)>,
    /// A hash of the parameter sets a sample carries, by row (to spot mid-stream changes).
    pub parameter_sets: Vec<(u32, u32)>,
}

/// See the module documentation.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkSummary {
    pub id: ChunkId,
    pub entity: EntityPath,
    pub row_ids: Vec<u64>,
    pub timelines: Vec<(Timeline, Vec<i64>)>,
    pub components: Vec<ComponentName>,
    pub video: Option<VideoRows>,
    pub location: Option<ChunkLocation>,
}

impl ChunkSummary {
    pub fn num_rows(&self) -> usize {
        self.row_ids.len()
    }

    pub fn is_static(&self) -> bool {
        self.timelines.is_empty()
    }

    pub fn has_component(&self, name: &str) -> bool {
        self.components.iter().any(|c| c.as_str() == name)
    }

    pub fn timeline(&self, name: &str) -> Option<&[i64]> {
        self.timelines
            .iter()
            .find(|(t, _)| t.name.as_str() == name)
            .map(|(_, v)| v.as_slice())
    }

    /// Summarizes `chunk`. `codec` is the entity's static codec if known; a codec
    /// column in the chunk itself wins. A producer's `is_keyframe` is trusted; otherwise
    /// each sample is probed once here.
    pub fn from_chunk(chunk: &Chunk, codec: Option<VideoCodec>) -> Self {
        let video = chunk.blobs(VideoStream::SAMPLE).map(|samples| {
            let codec = chunk.codec().or(codec);
            let given = chunk.bools(VideoStream::IS_KEYFRAME);
            let mut rows = VideoRows::default();
            for row in 0..samples.len() {
                let bytes = samples.value(row);
                rows.sizes.push(bytes.len() as u32);
                let mut flags = 0;
                match codec {
                    None => flags |= FLAG_UNPROBED,
                    Some(codec) => match probe_sample(codec, bytes) {
                        Ok(probe) => {
                            if probe.is_keyframe {
                                flags |= FLAG_KEYFRAME;
                            }
                            if let Some(sets) = &probe.parameter_sets {
                                flags |= FLAG_PARAMETER_SETS;
                                rows.parameter_sets
                                    .push((row as u32, parameter_set_hash(sets)));
                            }
                        }
                        Err(e) => {
                            flags |= FLAG_INVALID;
                            rows.problems.push((row as u32, e.to_string()));
                        }
                    },
                }
                if let Some(given) = given {
                    flags &= !FLAG_KEYFRAME;
                    if given.value(row) {
                        flags |= FLAG_KEYFRAME;
                    }
                }
                rows.flags.push(flags);
            }
            rows
        });
        ChunkSummary {
            id: chunk.id(),
            entity: chunk.entity().clone(),
            row_ids: chunk.row_ids().to_vec(),
            timelines: chunk
                .timelines()
                .iter()
                .map(|t| (t.timeline.clone(), t.values.to_vec()))
                .collect(),
            components: chunk.component_names().cloned().collect(),
            video,
            location: None,
        }
    }

    pub fn encode(&self, w: &mut WireWriter) {
        w.u64(self.id.0);
        match self.location {
            Some(l) => {
                w.u8(1);
                w.u64(l.offset);
                w.u64(l.frame_len);
                w.u32(l.schema_id);
            }
            None => w.u8(0),
        }
        w.str(self.entity.as_str());
        w.varint(self.row_ids.len() as u64);
        w.deltas(self.row_ids.iter().map(|r| *r as i64));
        w.varint(self.timelines.len() as u64);
        for (timeline, values) in &self.timelines {
            w.str(timeline.name.as_str());
            w.str(timeline.kind.name());
            w.deltas(values.iter().copied());
        }
        w.varint(self.components.len() as u64);
        for c in &self.components {
            w.str(c.as_str());
        }
        match &self.video {
            None => w.u8(0),
            Some(v) => {
                w.u8(1);
                for s in &v.sizes {
                    w.varint(u64::from(*s));
                }
                w.buf.extend_from_slice(&v.flags);
                w.varint(v.problems.len() as u64);
                for (row, problem) in &v.problems {
                    w.varint(u64::from(*row));
                    w.str(problem);
                }
                w.varint(v.parameter_sets.len() as u64);
                for (row, hash) in &v.parameter_sets {
                    w.varint(u64::from(*row));
                    w.u32(*hash);
                }
            }
        }
    }

    pub fn decode(r: &mut WireReader<'_>) -> Result<Self, SummaryError> {
        let id = ChunkId(r.u64("chunk id")?);
        let location = match r.u8("location flag")? {
            0 => None,
            _ => Some(ChunkLocation {
                offset: r.u64("chunk offset")?,
                frame_len: r.u64("chunk length")?,
                schema_id: r.u32("schema id")?,
            }),
        };
        let entity = EntityPath::parse(r.str("entity path")?)
            .map_err(|e| SummaryError::Invalid(e.to_string()))?;
        let n = r.count("row count")?;
        let row_ids = r
            .deltas(n, "row ids")?
            .into_iter()
            .map(|v| v as u64)
            .collect();
        let num_timelines = r.count("timeline count")?;
        let mut timelines = Vec::with_capacity(num_timelines);
        for _ in 0..num_timelines {
            let name = r.str("timeline name")?;
            let kind = r.str("timeline kind")?;
            let kind = TimeKind::parse(kind)
                .ok_or_else(|| SummaryError::Invalid(format!("unknown timeline kind {kind:?}")))?;
            timelines.push((Timeline::new(name, kind), r.deltas(n, "time values")?));
        }
        let num_components = r.count("component count")?;
        let mut components = Vec::with_capacity(num_components);
        for _ in 0..num_components {
            components.push(ComponentName::new(r.str("component name")?));
        }
        let video = match r.u8("video flag")? {
            0 => None,
            _ => {
                let mut v = VideoRows::default();
                for _ in 0..n {
                    v.sizes.push(r.varint("sample size")? as u32);
                }
                for _ in 0..n {
                    v.flags.push(r.u8("sample flags")?);
                }
                for _ in 0..r.count("problem count")? {
                    v.problems.push((
                        r.varint("problem row")? as u32,
                        r.str("problem")?.to_owned(),
                    ));
                }
                for _ in 0..r.count("parameter set count")? {
                    v.parameter_sets
                        .push((r.varint("parameter set row")? as u32, r.u32("hash")?));
                }
                Some(v)
            }
        };
        Ok(ChunkSummary {
            id,
            entity,
            row_ids,
            timelines,
            components,
            video,
            location,
        })
    }
}

fn parameter_set_hash(sets: &SampleParameterSets) -> u32 {
    let parts = sets.identity_bytes();
    crate::frame::checksum(parts.iter().map(|p| p.as_ref()))
}

/// A summary that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SummaryError {
    #[error(transparent)]
    Wire(#[from] WireError),
    #[error("chunk summary: {0}")]
    Invalid(String),
}
