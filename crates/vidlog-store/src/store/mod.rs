//! The chunk store: chunks of every entity, indexed per entity and per timeline, with
//! latest-at, range and dataframe queries, and a [`VideoIndex`] per video entity.
//!
//! The store indexes [`ChunkSummary`]s, so it can index a file's chunks from its footer
//! and load chunk bytes only when a query needs them (through a [`ChunkSource`]).
//! Chunks arriving out of time order are indexed where they belong: each chunk keeps its
//! own sort order per timeline, and queries merge across chunks.

mod query;
mod video;
pub mod video_source;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, OnceLock};

use vidlog_types::{Chunk, ComponentName, EntityPath, TimeKind, TimelineName, VideoCodec};

pub use query::{RowRef, VideoSample};
pub use video::{DecodePlan, Diagnostic, SampleRef, VideoIndex};

use crate::summary::{ChunkLocation, ChunkSummary};

/// Index of a chunk within its entity.
pub type ChunkIdx = u32;

/// Loads chunk bytes on demand (a recording file).
pub trait ChunkSource: Send + Sync {
    fn load(&self, location: ChunkLocation) -> Result<Chunk, StoreError>;
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("no entity {0}")]
    NoEntity(EntityPath),
    #[error("{entity} has no timeline {timeline:?}")]
    NoTimeline {
        entity: EntityPath,
        timeline: String,
    },
    #[error("{entity}: chunk {chunk} is not in memory and the store has no source to load it from")]
    NotLoaded { entity: EntityPath, chunk: ChunkIdx },
    #[error("{0}")]
    Load(String),
    #[error("{entity}: {problem}")]
    Query { entity: EntityPath, problem: String },
}

pub(crate) struct StoredChunk {
    pub summary: ChunkSummary,
    pub data: OnceLock<Arc<Chunk>>,
    /// Row order sorted by time, for timelines whose values are not already sorted.
    pub sorted: HashMap<TimelineName, Vec<u32>>,
}

impl StoredChunk {
    fn new(summary: ChunkSummary, data: Option<Arc<Chunk>>) -> Self {
        let mut sorted = HashMap::new();
        for (timeline, values) in &summary.timelines {
            if !values.windows(2).all(|w| w[0] <= w[1]) {
                let mut order: Vec<u32> = (0..values.len() as u32).collect();
                order.sort_by_key(|&i| (values[i as usize], summary.row_ids[i as usize]));
                sorted.insert(timeline.name.clone(), order);
            }
        }
        let cell = OnceLock::new();
        if let Some(d) = data {
            let _ = cell.set(d);
        }
        StoredChunk {
            summary,
            data: cell,
            sorted,
        }
    }

    /// Row `rank` of this chunk in time order on `timeline`.
    pub fn row_in_order(&self, timeline: &str, rank: usize) -> usize {
        match self.sorted.iter().find(|(n, _)| n.as_str() == timeline) {
            Some((_, order)) => order[rank] as usize,
            None => rank,
        }
    }
}

/// Per-timeline index of one entity: its chunks with their time ranges.
#[derive(Debug, Default)]
pub(crate) struct TimelineIndex {
    pub kind: Option<TimeKind>,
    /// `(min, max, chunk)`, sorted by `min`.
    pub chunks: Vec<(i64, i64, ChunkIdx)>,
}

/// Everything stored for one entity.
#[derive(Default)]
pub(crate) struct EntityStore {
    pub chunks: Vec<StoredChunk>,
    /// Latest static row per component: `(row_id, chunk, row)`.
    pub statics: HashMap<ComponentName, (u64, ChunkIdx, u32)>,
    pub timelines: BTreeMap<TimelineName, TimelineIndex>,
    pub video: Option<VideoIndex>,
    pub codec: Option<VideoCodec>,
}

/// See the module documentation.
#[derive(Default)]
pub struct ChunkStore {
    pub(crate) entities: BTreeMap<EntityPath, EntityStore>,
    timelines: BTreeMap<TimelineName, TimeKind>,
    source: Option<Arc<dyn ChunkSource>>,
    diagnostics: Vec<Diagnostic>,
    num_rows: u64,
}

impl ChunkStore {
    pub fn new() -> Self {
        ChunkStore::default()
    }

    /// A store whose chunks are loaded from `source` when needed.
    pub fn with_source(source: Arc<dyn ChunkSource>) -> Self {
        ChunkStore {
            source: Some(source),
            ..Default::default()
        }
    }

    /// Adds a chunk held in memory; keyframes are probed here unless the chunk says.
    pub fn insert(&mut self, chunk: Arc<Chunk>) {
        let codec = self.codec_for(chunk.entity(), &chunk);
        let summary = ChunkSummary::from_chunk(&chunk, codec);
        self.insert_summary(summary, Some(chunk));
    }

    fn codec_for(&self, entity: &EntityPath, chunk: &Chunk) -> Option<VideoCodec> {
        if chunk.is_static()
            && let Some(codec) = chunk.codec()
        {
            return Some(codec);
        }
        self.entities.get(entity).and_then(|e| e.codec)
    }

    /// Indexes a chunk known by its summary; `data` is the chunk when it is in memory.
    pub fn insert_summary(&mut self, summary: ChunkSummary, data: Option<Arc<Chunk>>) {
        self.num_rows += summary.num_rows() as u64;
        for (timeline, _) in &summary.timelines {
            self.timelines
                .entry(timeline.name.clone())
                .or_insert(timeline.kind);
        }
        let entity_path = summary.entity.clone();
        let entity = self.entities.entry(entity_path.clone()).or_default();
        let idx = entity.chunks.len() as ChunkIdx;
        if summary.is_static() {
            if let Some(codec) = data.as_ref().and_then(|c| c.codec()) {
                entity.codec = Some(codec);
            }
            // A summary read from a footer may claim no rows: it then holds no static value.
            if let Some((last, &row_id)) = summary.row_ids.iter().enumerate().next_back() {
                for component in &summary.components {
                    let newer = entity
                        .statics
                        .get(component)
                        .is_none_or(|(r, _, _)| *r <= row_id);
                    if newer {
                        entity
                            .statics
                            .insert(component.clone(), (row_id, idx, last as u32));
                    }
                }
            }
        }
        for (timeline, values) in &summary.timelines {
            let index = entity.timelines.entry(timeline.name.clone()).or_default();
            index.kind = Some(timeline.kind);
            let min = values.iter().copied().min().unwrap_or(0);
            let max = values.iter().copied().max().unwrap_or(0);
            let at = index.chunks.partition_point(|(m, _, _)| *m <= min);
            index.chunks.insert(at, (min, max, idx));
        }
        if let Some(rows) = &summary.video {
            let video = entity.video.get_or_insert_with(VideoIndex::default);
            let before = video.diagnostics.len();
            video.add(video::NewSamples {
                entity: &entity_path,
                chunk: idx,
                row_ids: &summary.row_ids,
                timelines: &summary.timelines,
                rows,
                codec: entity.codec,
            });
            self.diagnostics
                .extend_from_slice(&video.diagnostics[before..]);
        }
        entity.chunks.push(StoredChunk::new(summary, data));
    }

    /// Records the codec of an entity whose static chunk is not in memory (file footer).
    pub fn set_codec(&mut self, entity: &EntityPath, codec: VideoCodec) {
        self.entities.entry(entity.clone()).or_default().codec = Some(codec);
    }

    pub fn entity_paths(&self) -> impl Iterator<Item = &EntityPath> {
        self.entities.keys()
    }

    /// All timelines with their kinds.
    pub fn timelines(&self) -> impl Iterator<Item = (&TimelineName, TimeKind)> {
        self.timelines.iter().map(|(n, k)| (n, *k))
    }

    /// `(min, max)` of `timeline` over all entities, or over one.
    pub fn time_range(&self, entity: Option<&EntityPath>, timeline: &str) -> Option<(i64, i64)> {
        let mut range: Option<(i64, i64)> = None;
        for (path, e) in &self.entities {
            if entity.is_some_and(|want| want != path) {
                continue;
            }
            if let Some((_, index)) = e.timelines.iter().find(|(n, _)| n.as_str() == timeline) {
                for (min, max, _) in &index.chunks {
                    range = Some(match range {
                        None => (*min, *max),
                        Some((a, b)) => (a.min(*min), b.max(*max)),
                    });
                }
            }
        }
        range
    }

    pub fn num_rows(&self) -> u64 {
        self.num_rows
    }

    /// Components ever logged on `entity`.
    pub fn components(&self, entity: &EntityPath) -> Vec<ComponentName> {
        let mut names: Vec<ComponentName> = self
            .entities
            .get(entity)
            .map(|e| {
                e.chunks
                    .iter()
                    .flat_map(|c| c.summary.components.iter().cloned())
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names.dedup();
        names
    }

    /// The static codec of a video entity.
    pub fn codec(&self, entity: &EntityPath) -> Option<VideoCodec> {
        self.entities.get(entity).and_then(|e| e.codec)
    }

    /// The video index of an entity that has `VideoStream:sample` rows.
    pub fn video(&self, entity: &EntityPath) -> Option<&VideoIndex> {
        self.entities.get(entity).and_then(|e| e.video.as_ref())
    }

    /// Entities with video samples.
    pub fn video_entities(&self) -> impl Iterator<Item = &EntityPath> {
        self.entities
            .iter()
            .filter(|(_, e)| e.video.is_some())
            .map(|(p, _)| p)
    }

    /// Problems found in the streams at ingest, in arrival order.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        &self.diagnostics
    }

    /// The chunk `idx` of `entity`, loading it if needed.
    pub fn chunk(&self, entity: &EntityPath, idx: ChunkIdx) -> Result<Arc<Chunk>, StoreError> {
        self.fetch_chunk(entity, idx, true)
    }

    /// Like [`ChunkStore::chunk`], but a chunk loaded from the source is not kept: for
    /// streaming passes (export) over more data than should stay in memory.
    pub fn chunk_uncached(
        &self,
        entity: &EntityPath,
        idx: ChunkIdx,
    ) -> Result<Arc<Chunk>, StoreError> {
        self.fetch_chunk(entity, idx, false)
    }

    fn fetch_chunk(
        &self,
        entity: &EntityPath,
        idx: ChunkIdx,
        cache: bool,
    ) -> Result<Arc<Chunk>, StoreError> {
        let e = self
            .entities
            .get(entity)
            .ok_or_else(|| StoreError::NoEntity(entity.clone()))?;
        let stored = e.chunks.get(idx as usize).ok_or(StoreError::NotLoaded {
            entity: entity.clone(),
            chunk: idx,
        })?;
        if let Some(c) = stored.data.get() {
            return Ok(c.clone());
        }
        let (Some(source), Some(location)) = (&self.source, stored.summary.location) else {
            return Err(StoreError::NotLoaded {
                entity: entity.clone(),
                chunk: idx,
            });
        };
        let chunk = Arc::new(source.load(location)?);
        // Queries index rows by the summary: a chunk that disagrees with it (a footer that
        // lies) would make them read out of bounds.
        if chunk.row_ids() != stored.summary.row_ids.as_slice() || chunk.entity() != entity {
            return Err(StoreError::Load(format!(
                "{entity}: chunk at byte {} does not match the file's index ({} rows, {} indexed)",
                location.offset,
                chunk.num_rows(),
                stored.summary.num_rows()
            )));
        }
        if !cache {
            return Ok(chunk);
        }
        Ok(stored.data.get_or_init(|| chunk).clone())
    }

    /// Chunks whose bytes are in memory (inserted, or loaded from the source by a query).
    pub fn loaded_chunks(&self) -> usize {
        self.entities
            .values()
            .flat_map(|e| &e.chunks)
            .filter(|c| c.data.get().is_some())
            .count()
    }

    /// Summaries of an entity's chunks.
    pub fn summaries(&self, entity: &EntityPath) -> impl Iterator<Item = &ChunkSummary> {
        self.entities
            .get(entity)
            .into_iter()
            .flat_map(|e| e.chunks.iter().map(|c| &c.summary))
    }
}
