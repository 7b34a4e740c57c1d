//! The chunk store: chunks of every entity, indexed per entity and per timeline, with
//! latest-at, range and dataframe queries, and a [`VideoIndex`] per video entity.
//!
//! The store indexes [`ChunkSummary`]s, so it can index a file's chunks from its footer
//! and load chunk bytes only when a query needs them (through a [`ChunkSource`]).
//! Chunks arriving out of time order are indexed where they belong: each chunk keeps its
//! own sort order per timeline, and queries merge across chunks.
//!
//! Memory: a chunk's bytes can be dropped ([`ChunkStore::evict`],
//! [`ChunkStore::evict_cold`]) while its summary stays indexed, when the store has a
//! source and the chunk a location in it; a later query loads it back. Stores sharing a
//! [`MemoryMeter`] count the bytes they hold in it, and a chunk loaded back by a query is
//! kept in memory only while the meter is under its limit (otherwise it serves that one
//! query and is dropped), so reads never push the shared total over the limit.

mod query;
mod video;
pub mod video_source;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
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
    /// The store's clock when the chunk was last inserted or read (least recently used
    /// chunks are evicted first).
    last_used: AtomicU64,
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
            last_used: AtomicU64::new(0),
            sorted,
        }
    }

    /// Bytes the chunk holds when in memory: its encoded size when it has a location
    /// (chunks decoded from one message share that buffer), else its arrays' size.
    fn bytes(&self, chunk: &Chunk) -> u64 {
        match self.summary.location {
            Some(l) => l.frame_len,
            None => chunk.heap_size() as u64,
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

/// Chunk bytes held in memory by the stores that share it, and the limit that chunks
/// loaded back by queries respect (inserted chunks always count; evicting is the owner's
/// job, with [`ChunkStore::evict_cold`]).
#[derive(Debug)]
pub struct MemoryMeter {
    used: AtomicU64,
    limit: u64,
}

impl MemoryMeter {
    pub fn new(limit: u64) -> Arc<Self> {
        Arc::new(MemoryMeter {
            used: AtomicU64::new(0),
            limit,
        })
    }

    /// Bytes of chunks in memory, over all stores sharing this meter.
    pub fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    pub fn limit(&self) -> u64 {
        self.limit
    }

    /// Bytes over the limit (0 when under it).
    pub fn excess(&self) -> u64 {
        self.used().saturating_sub(self.limit)
    }

    fn add(&self, bytes: u64) {
        self.used.fetch_add(bytes, Ordering::Relaxed);
    }

    fn sub(&self, bytes: u64) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// Counts `bytes` if they fit under the limit.
    fn try_add(&self, bytes: u64) -> bool {
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                (used + bytes <= self.limit).then_some(used + bytes)
            })
            .is_ok()
    }
}

/// See the module documentation.
#[derive(Default)]
pub struct ChunkStore {
    pub(crate) entities: BTreeMap<EntityPath, EntityStore>,
    timelines: BTreeMap<TimelineName, TimeKind>,
    source: Option<Arc<dyn ChunkSource>>,
    diagnostics: Vec<Diagnostic>,
    num_rows: u64,
    meter: Option<Arc<MemoryMeter>>,
    /// Bytes of this store's chunks in memory.
    resident: AtomicU64,
    /// Counts inserts and reads, for least-recently-used order.
    clock: AtomicU64,
}

impl Drop for ChunkStore {
    fn drop(&mut self) {
        if let Some(meter) = &self.meter {
            meter.sub(*self.resident.get_mut());
        }
    }
}

impl ChunkStore {
    pub fn new() -> Self {
        ChunkStore::default()
    }

    /// A store whose chunks are loaded from `source` when needed.
    pub fn with_source(source: Arc<dyn ChunkSource>) -> Self {
        let mut store = ChunkStore::default();
        store.source = Some(source);
        store
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
        let tick = self.clock.fetch_add(1, Ordering::Relaxed);
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
        let stored = StoredChunk::new(summary, data);
        stored.last_used.store(tick, Ordering::Relaxed);
        if let Some(chunk) = stored.data.get() {
            let bytes = stored.bytes(chunk);
            *self.resident.get_mut() += bytes;
            if let Some(meter) = &self.meter {
                meter.add(bytes);
            }
        }
        entity.chunks.push(stored);
    }

    /// Sets where evicted chunks load from (a recording file, possibly still being
    /// written: a chunk's location must be published only once its bytes are written).
    pub fn set_source(&mut self, source: Arc<dyn ChunkSource>) {
        self.source = Some(source);
    }

    /// Counts this store's chunk bytes in `meter` (shared by the stores of a process),
    /// from now until the store is dropped.
    pub fn set_memory_meter(&mut self, meter: Arc<MemoryMeter>) {
        let resident = *self.resident.get_mut();
        if let Some(old) = self.meter.take() {
            old.sub(resident);
        }
        meter.add(resident);
        self.meter = Some(meter);
    }

    /// Whether chunk `idx` of `entity` has its bytes in memory.
    pub fn is_resident(&self, entity: &EntityPath, idx: ChunkIdx) -> bool {
        self.entities
            .get(entity)
            .and_then(|e| e.chunks.get(idx as usize))
            .is_some_and(|c| c.data.get().is_some())
    }

    /// Bytes of this store's chunks held in memory.
    pub fn resident_bytes(&self) -> u64 {
        self.resident.load(Ordering::Relaxed)
    }

    /// Drops the bytes of chunk `idx` of `entity`, keeping its summary indexed; a later
    /// read loads it back from the source. Returns the bytes freed: 0 when the chunk is
    /// not in memory or cannot be loaded back (no source, or no location in it).
    pub fn evict(&mut self, entity: &EntityPath, idx: ChunkIdx) -> u64 {
        let has_source = self.source.is_some();
        let Some(stored) = self
            .entities
            .get_mut(entity)
            .and_then(|e| e.chunks.get_mut(idx as usize))
        else {
            return 0;
        };
        if !has_source || stored.summary.location.is_none() {
            return 0;
        }
        let Some(chunk) = stored.data.take() else {
            return 0;
        };
        let bytes = stored.bytes(&chunk);
        *self.resident.get_mut() -= bytes;
        if let Some(meter) = &self.meter {
            meter.sub(bytes);
        }
        bytes
    }

    /// Evicts least recently used chunks until at least `want` bytes are freed or none is
    /// left to evict; returns the bytes freed. With `keep_live_edge`, the chunks a viewer
    /// following the live edge needs stay: per video entity, those from its latest
    /// keyframe on; per other entity, its latest chunk.
    pub fn evict_cold(&mut self, want: u64, keep_live_edge: bool) -> u64 {
        if self.source.is_none() || want == 0 {
            return 0;
        }
        let mut candidates: Vec<(u64, EntityPath, ChunkIdx)> = Vec::new();
        for (path, e) in &self.entities {
            let edge = if !keep_live_edge {
                ChunkIdx::MAX
            } else {
                let latest_keyframe_chunk = e.video.as_ref().and_then(|v| {
                    v.keyframes()
                        .last()
                        .and_then(|&k| v.sample(k))
                        .map(|s| s.chunk)
                });
                latest_keyframe_chunk.unwrap_or(e.chunks.len().saturating_sub(1) as ChunkIdx)
            };
            for (idx, c) in e.chunks.iter().enumerate() {
                let idx = idx as ChunkIdx;
                if idx < edge && c.summary.location.is_some() && c.data.get().is_some() {
                    candidates.push((c.last_used.load(Ordering::Relaxed), path.clone(), idx));
                }
            }
        }
        candidates.sort_unstable_by_key(|(used, _, _)| *used);
        let mut freed = 0;
        for (_, entity, idx) in candidates {
            if freed >= want {
                break;
            }
            freed += self.evict(&entity, idx);
        }
        freed
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
        stored.last_used.store(
            self.clock.fetch_add(1, Ordering::Relaxed),
            Ordering::Relaxed,
        );
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
        let bytes = stored.bytes(&chunk);
        if let Some(meter) = &self.meter
            && !meter.try_add(bytes)
        {
            // Over the memory limit: serve this read without keeping the chunk.
            return Ok(chunk);
        }
        let mut kept = false;
        let cached = stored
            .data
            .get_or_init(|| {
                kept = true;
                chunk
            })
            .clone();
        if kept {
            self.resident.fetch_add(bytes, Ordering::Relaxed);
        } else if let Some(meter) = &self.meter {
            // Another reader cached it first.
            meter.sub(bytes);
        }
        Ok(cached)
    }

    /// The source evicted chunks load from.
    pub fn source(&self) -> Option<&Arc<dyn ChunkSource>> {
        self.source.as_ref()
    }

    /// Chunks whose bytes are in memory (inserted, or loaded from the source by a query).
    pub fn loaded_chunks(&self) -> usize {
        self.entities
            .values()
            .flat_map(|e| &e.chunks)
            .filter(|c| c.data.get().is_some())
            .count()
    }

    /// The summary of chunk `idx` of `entity`.
    pub fn summary(&self, entity: &EntityPath, idx: ChunkIdx) -> Option<&ChunkSummary> {
        self.entities
            .get(entity)
            .and_then(|e| e.chunks.get(idx as usize))
            .map(|c| &c.summary)
    }

    /// Summaries of an entity's chunks.
    pub fn summaries(&self, entity: &EntityPath) -> impl Iterator<Item = &ChunkSummary> {
        self.entities
            .get(entity)
            .into_iter()
            .flat_map(|e| e.chunks.iter().map(|c| &c.summary))
    }
}
