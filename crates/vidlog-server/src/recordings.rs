//! The live recordings: per recording a [`ChunkStore`], the recording file being written,
//! the chunk ids seen (resends are ignored), its subscribers, and the server-wide memory
//! bound.
//!
//! Files: a recording is written to `<data-dir>/<recording_id>.vlog`. The writer stays
//! open while the server runs, so a producer that reconnects appends to the same file.
//! A recording that already has files from an earlier server run gets a new segment,
//! `<recording_id>.<n>.vlog`; the chunk ids of the earlier segments are read from their
//! footers so resent chunks are not stored twice. Files are finished (footer written) when
//! the server shuts down.
//!
//! Memory: every store shares one [`MemoryMeter`] holding `memory_limit`; a chunk counts
//! its encoded size while its bytes are in memory. Above the limit, single chunks drop
//! their bytes (their summaries stay indexed, so every index and time range stays
//! complete) and load back from the recording file when a query needs them: finished
//! recordings first (least recently active first), then live ones; within a recording the
//! least recently used chunks first, and never a live recording's live edge (per video
//! entity the chunks from its latest keyframe on, per other entity its latest chunk). A
//! live store reads its file while the writer appends to it (a chunk's location is known
//! only once its bytes are written). Chunks loaded back by reads are kept only while the
//! total is under the limit. Recordings opened from a file (`open_file`) load on demand
//! and share the same meter.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use vidlog_store::codec::RecordingInfo;
use vidlog_store::store::ChunkIdx;
use vidlog_store::summary::FLAG_KEYFRAME;
use vidlog_store::{ChunkStore, FileWriter, MemoryMeter, Recording};
use vidlog_types::{Chunk, EntityPath, VideoStream};

use crate::subscription::{Backlog, BacklogEntry, ChunkKind, Subscriber, Subscription};

/// Why a chunk or recording could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum StoreChunkError {
    #[error(
        "recording id {0:?} cannot name a file: use 1 to 128 letters, digits, '-', '_' or '.', not starting with '.'"
    )]
    BadRecordingId(String),
    #[error("recording {recording}: {reason}")]
    Storage { recording: String, reason: String },
}

/// What `/api/recordings` lists.
#[derive(Debug, Clone, Serialize)]
pub struct RecordingOverview {
    pub id: String,
    pub application_id: String,
    pub started_unix_nanos: i64,
    /// A producer is connected.
    pub live: bool,
    pub entities: Vec<String>,
    pub rows: u64,
    pub video_samples: u64,
    pub chunks: u64,
    /// Files of this recording in `data_dir`, oldest first.
    pub files: Vec<String>,
}

pub(crate) struct RecordingState {
    pub info: Option<RecordingInfo>,
    pub store: ChunkStore,
    writer: Option<FileWriter>,
    files: Vec<PathBuf>,
    seen: HashSet<u64>,
    /// Every stored chunk, in arrival order.
    pub arrived: Vec<(EntityPath, ChunkIdx)>,
    producers: usize,
    last_active: Instant,
    /// Counts replacements of `store`: a backlog taken from an earlier store loads its
    /// chunks from that store's source, not by index from the new one.
    generation: u64,
    subscribers: Vec<Subscriber>,
}

impl RecordingState {
    pub(crate) fn store_generation(&self) -> u64 {
        self.generation
    }

    /// The backlog of `chunks` (indexes into the current store) for a new subscription.
    fn backlog(&self, chunks: Vec<(EntityPath, ChunkIdx)>) -> Backlog {
        let entries = chunks
            .into_iter()
            .map(|(entity, idx)| {
                let summary = self.store.summary(&entity, idx);
                BacklogEntry {
                    id: summary.map(|s| s.id),
                    location: summary.and_then(|s| s.location),
                    entity,
                    idx,
                }
            })
            .collect();
        Backlog {
            generation: self.generation,
            source: self.store.source().cloned(),
            entries,
        }
    }

    /// Replaces the store (a new segment starts, or a file is opened).
    fn replace_store(&mut self, store: ChunkStore) {
        self.store = store;
        self.arrived.clear();
        self.generation += 1;
    }
}

/// One recording, live or finished.
pub(crate) struct LiveRecording {
    pub id: String,
    pub state: RwLock<RecordingState>,
}

impl LiveRecording {
    pub(crate) fn new(id: &str) -> Self {
        LiveRecording {
            id: id.to_owned(),
            state: RwLock::new(RecordingState {
                info: None,
                store: ChunkStore::new(),
                writer: None,
                files: Vec::new(),
                seen: HashSet::new(),
                arrived: Vec::new(),
                producers: 0,
                last_active: Instant::now(),
                generation: 0,
                subscribers: Vec::new(),
            }),
        }
    }

    /// Marks a producer as gone (its connection ended).
    pub fn producer_left(&self) {
        let mut state = self.state.write();
        state.producers = state.producers.saturating_sub(1);
        state.last_active = Instant::now();
    }

    pub fn overview(&self) -> Option<RecordingOverview> {
        let state = self.state.read();
        let info = state.info.as_ref()?;
        let store = &state.store;
        Some(RecordingOverview {
            id: self.id.clone(),
            application_id: info.application_id.clone(),
            started_unix_nanos: info.started_unix_nanos,
            live: state.producers > 0,
            entities: store.entity_paths().map(|e| e.to_string()).collect(),
            rows: store.num_rows(),
            video_samples: store
                .video_entities()
                .filter_map(|e| store.video(e))
                .map(|v| v.len() as u64)
                .sum(),
            chunks: state.arrived.len() as u64,
            files: state
                .files
                .iter()
                .filter_map(|f| f.file_name())
                .map(|f| f.to_string_lossy().into_owned())
                .collect(),
        })
    }
}

/// All recordings of a server.
pub(crate) struct Recordings {
    data_dir: PathBuf,
    meter: Arc<MemoryMeter>,
    map: RwLock<BTreeMap<String, Arc<LiveRecording>>>,
    /// Serializes evictions (one at a time is enough).
    evicting: Mutex<()>,
    /// The live edges alone were over the limit once (warned once).
    warned_over_limit: AtomicBool,
}

/// Whether a chunk was new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stored {
    New,
    Duplicate,
}

impl Recordings {
    pub fn new(data_dir: PathBuf, memory_limit: u64) -> Self {
        Recordings {
            data_dir,
            meter: MemoryMeter::new(memory_limit),
            map: RwLock::new(BTreeMap::new()),
            evicting: Mutex::new(()),
            warned_over_limit: AtomicBool::new(false),
        }
    }

    pub fn memory_in_use(&self) -> u64 {
        self.meter.used()
    }

    fn entry(&self, id: &str) -> Arc<LiveRecording> {
        if let Some(r) = self.map.read().get(id) {
            return r.clone();
        }
        self.map
            .write()
            .entry(id.to_owned())
            .or_insert_with(|| Arc::new(LiveRecording::new(id)))
            .clone()
    }

    pub fn get(&self, id: &str) -> Option<Arc<LiveRecording>> {
        self.map.read().get(id).cloned()
    }

    pub fn overviews(&self) -> Vec<RecordingOverview> {
        let all: Vec<Arc<LiveRecording>> = self.map.read().values().cloned().collect();
        all.iter().filter_map(|r| r.overview()).collect()
    }

    /// Adds a finished recording file as a recording that is not live: its store is
    /// indexed from the file (chunks load on demand and do not count against the memory
    /// limit), subscribers replay it in file order. Returns its id: the file's recording
    /// id, else the file name without `.vlog`.
    pub fn open_file(&self, path: &Path) -> Result<String, StoreChunkError> {
        let failed = |reason: String| StoreChunkError::Storage {
            recording: path.display().to_string(),
            reason,
        };
        let opened = Recording::open(path).map_err(|e| failed(e.to_string()))?;
        if let Some(report) = opened.recovery() {
            tracing::warn!("{}: {report}", path.display());
        }
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let info = opened.info.clone().unwrap_or_else(|| RecordingInfo {
            application_id: "unknown".into(),
            recording_id: stem.clone(),
            started_unix_nanos: 0,
            writer: "unknown".into(),
        });
        let id = info.recording_id.clone();
        let mut arrived: Vec<(u64, EntityPath, ChunkIdx)> = Vec::new();
        let entities: Vec<EntityPath> = opened.store.entity_paths().cloned().collect();
        let mut seen = HashSet::new();
        for entity in entities {
            for (idx, summary) in opened.store.summaries(&entity).enumerate() {
                let offset = summary.location.map_or(u64::MAX, |l| l.offset);
                arrived.push((offset, entity.clone(), idx as ChunkIdx));
                seen.insert(summary.id.0);
            }
        }
        arrived.sort_by_key(|(offset, _, _)| *offset);
        let mut map = self.map.write();
        if let Some(existing) = map.get(&id)
            && existing.state.read().info.is_some()
        {
            return Err(failed(format!(
                "recording {id:?} is already open (from {})",
                existing
                    .state
                    .read()
                    .files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let recording = map
            .entry(id.clone())
            .or_insert_with(|| Arc::new(LiveRecording::new(&id)))
            .clone();
        drop(map);
        let mut state = recording.state.write();
        let mut store = opened.store;
        store.set_memory_meter(self.meter.clone());
        state.replace_store(store);
        state.info = Some(info);
        state.files = vec![path.to_path_buf()];
        state.seen = seen;
        state.arrived = arrived
            .into_iter()
            .map(|(_, entity, idx)| (entity, idx))
            .collect();
        Ok(id)
    }

    /// A producer starts sending `info`'s recording: opens (or reuses) its file.
    pub fn attach_producer(
        &self,
        info: &RecordingInfo,
    ) -> Result<Arc<LiveRecording>, StoreChunkError> {
        let id = &info.recording_id;
        if !is_file_safe(id) {
            return Err(StoreChunkError::BadRecordingId(id.clone()));
        }
        let recording = self.entry(id);
        {
            let mut state = recording.state.write();
            if state.writer.is_none() {
                let (path, earlier) = next_segment(&self.data_dir, id);
                for file in &earlier {
                    match Recording::open(file) {
                        Ok(old) => {
                            let entities: Vec<EntityPath> =
                                old.store.entity_paths().cloned().collect();
                            for entity in &entities {
                                state
                                    .seen
                                    .extend(old.store.summaries(entity).map(|s| s.id.0));
                            }
                        }
                        Err(e) => tracing::warn!(
                            "recording {id}: earlier file {} unreadable, resent chunks may be stored twice: {e}",
                            file.display()
                        ),
                    }
                }
                let writer =
                    FileWriter::create(&path, info).map_err(|e| StoreChunkError::Storage {
                        recording: id.clone(),
                        reason: e.to_string(),
                    })?;
                let source = writer
                    .growing_reader()
                    .map_err(|e| StoreChunkError::Storage {
                        recording: id.clone(),
                        reason: e.to_string(),
                    })?;
                // A recording opened from a file (`open_file`) continues in a new segment;
                // its store restarts empty, as for any recording resumed after a restart:
                // evicted chunks load back from the segment being written, so the store
                // holds only its chunks. Backlogs taken before keep their own source.
                let mut store = ChunkStore::with_source(source);
                store.set_memory_meter(self.meter.clone());
                state.replace_store(store);
                tracing::info!("recording {id}: writing {}", path.display());
                state.files = earlier;
                state.files.push(path);
                state.writer = Some(writer);
            }
            if state.info.is_none() {
                state.info = Some(info.clone());
            }
            state.producers += 1;
            state.last_active = Instant::now();
        }
        Ok(recording)
    }

    /// Stores a chunk of `recording` (file first, then memory) and fans it out.
    pub fn store_chunk(
        &self,
        recording: &LiveRecording,
        chunk: Chunk,
    ) -> Result<Stored, StoreChunkError> {
        {
            let mut state = recording.state.write();
            let state = &mut *state;
            state.last_active = Instant::now();
            if state.seen.contains(&chunk.id().0) {
                return Ok(Stored::Duplicate);
            }
            let writer = state
                .writer
                .as_mut()
                .ok_or_else(|| StoreChunkError::Storage {
                    recording: recording.id.clone(),
                    reason: "the recording file is closed (server shutting down)".into(),
                })?;
            let summary = writer
                .write_chunk(&chunk)
                .map_err(|e| StoreChunkError::Storage {
                    recording: recording.id.clone(),
                    reason: e.to_string(),
                })?;
            state.seen.insert(chunk.id().0);
            let chunk = Arc::new(chunk);
            let entity = chunk.entity().clone();
            // The writer probed the samples already: index its summary, not the chunk anew.
            state.store.insert_summary(summary, Some(chunk.clone()));
            let idx = state.store.summaries(&entity).count().saturating_sub(1) as ChunkIdx;
            let kind = classify(&state.store, &chunk);
            state.arrived.push((entity, idx));
            state.subscribers.retain_mut(|s| s.offer(&chunk, kind));
        }
        if self.meter.excess() > 0 {
            self.enforce_memory_limit();
        }
        Ok(Stored::New)
    }

    /// Evicts chunks until the meter is under the limit (see the module documentation),
    /// down to a sixteenth below it.
    fn enforce_memory_limit(&self) {
        let Some(_one) = self.evicting.try_lock() else {
            return;
        };
        let all: Vec<Arc<LiveRecording>> = self.map.read().values().cloned().collect();
        let mut order: Vec<(bool, Instant, Arc<LiveRecording>)> = all
            .into_iter()
            .map(|r| {
                let s = r.state.read();
                (s.producers > 0, s.last_active, r.clone())
            })
            .collect();
        order.sort_by_key(|(live, at, _)| (*live, *at));
        // Down to a sixteenth under the limit, so the scan over a recording's chunks runs
        // once per that much ingest, not per chunk.
        let low_water = self.meter.limit() - self.meter.limit() / 16;
        for (live, _, recording) in order {
            let excess = self.meter.used().saturating_sub(low_water);
            if excess == 0 {
                return;
            }
            let freed = recording.state.write().store.evict_cold(excess, live);
            if freed > 0 {
                tracing::debug!(
                    "recording {}: {freed} bytes of chunks dropped from memory (memory limit {}), kept on disk",
                    recording.id,
                    self.meter.limit()
                );
            }
        }
        if self.meter.excess() > 0 && !self.warned_over_limit.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "{} bytes of chunks in memory, over the memory limit of {}: the rest is the live edge of live recordings (raise --memory-limit)",
                self.meter.used(),
                self.meter.limit()
            );
        }
    }

    pub fn subscribe(&self, id: &str) -> Subscription {
        let recording = self.entry(id);
        // Under the lock: no chunk falls between the backlog and the live queue.
        let mut state = recording.state.write();
        let backlog = state.backlog(state.arrived.clone());
        let (subscriber, subscription) = Subscription::new(recording.clone(), backlog);
        state.subscribers.push(subscriber);
        subscription
    }

    /// Follows one video entity from decode sample `from_sample` (e.g. the latest
    /// keyframe): the backlog is chosen from the store's index, so only that entity's
    /// static chunks and the chunks holding samples from `from_sample` on are replayed
    /// (loaded from the file when evicted), not the whole recording.
    pub fn subscribe_video(
        &self,
        id: &str,
        entity: &EntityPath,
        from_sample: usize,
    ) -> Subscription {
        let recording = self.entry(id);
        let mut state = recording.state.write();
        let first_chunk = state
            .store
            .video(entity)
            .and_then(|v| v.sample(from_sample))
            .map(|s| s.chunk);
        let statics: HashSet<ChunkIdx> = state
            .store
            .summaries(entity)
            .enumerate()
            .filter(|(_, s)| s.is_static())
            .map(|(i, _)| i as ChunkIdx)
            .collect();
        let chunks = state
            .arrived
            .iter()
            .filter(|(e, idx)| {
                e == entity && (statics.contains(idx) || first_chunk.is_none_or(|c| *idx >= c))
            })
            .cloned()
            .collect();
        let backlog = state.backlog(chunks);
        let (subscriber, subscription) = Subscription::new(recording.clone(), backlog);
        state.subscribers.push(subscriber);
        subscription
    }

    /// Writes every file's footer and ends every subscription.
    pub fn finish_all(&self) {
        let all: Vec<Arc<LiveRecording>> = self.map.read().values().cloned().collect();
        for recording in all {
            let mut state = recording.state.write();
            state.subscribers.clear();
            if let Some(mut writer) = state.writer.take()
                && let Err(e) = writer.finish()
            {
                tracing::error!("recording {}: {e}", recording.id);
            }
        }
    }
}

/// How subscribers treat a chunk when they fall behind.
fn classify(store: &ChunkStore, chunk: &Chunk) -> ChunkKind {
    if chunk.is_static() {
        return ChunkKind::Static;
    }
    if chunk.blobs(VideoStream::SAMPLE).is_none() {
        return ChunkKind::Other;
    }
    let starts_with_keyframe = store
        .summaries(chunk.entity())
        .last()
        .and_then(|s| s.video.as_ref())
        .and_then(|v| v.flags.first())
        .is_some_and(|f| f & FLAG_KEYFRAME != 0);
    ChunkKind::Video {
        starts_with_keyframe,
    }
}

fn is_file_safe(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 128
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// The file to write `id` to, and the files of earlier runs (oldest first).
fn next_segment(dir: &Path, id: &str) -> (PathBuf, Vec<PathBuf>) {
    let mut earlier = Vec::new();
    let first = dir.join(format!("{id}.vlog"));
    if !first.exists() {
        return (first, earlier);
    }
    earlier.push(first);
    let mut n = 1u64;
    loop {
        let path = dir.join(format!("{id}.{n}.vlog"));
        if !path.exists() {
            return (path, earlier);
        }
        earlier.push(path);
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recording_ids_must_name_files() {
        assert!(is_file_safe("0123abcd-cam_1.x"));
        for bad in [
            "",
            "..",
            "../etc",
            "a/b",
            ".hidden",
            "a b",
            &"x".repeat(129),
        ] {
            assert!(!is_file_safe(bad), "{bad:?}");
        }
    }

    #[test]
    fn segments_count_up() {
        let dir = tempfile::tempdir().unwrap();
        let (a, earlier) = next_segment(dir.path(), "rec");
        assert!(earlier.is_empty());
        std::fs::write(&a, b"").unwrap();
        let (b, earlier) = next_segment(dir.path(), "rec");
        assert_eq!(earlier, vec![a]);
        assert!(b.ends_with("rec.1.vlog"));
    }
}
