//! Subscribers: who follows a recording as it arrives.
//!
//! A [`Subscription`] first yields the chunks its recording had when it subscribed (in
//! arrival order), then every chunk stored after, through a bounded queue. A subscriber
//! that does not keep up is never waited for: when its queue is full, the server drops
//! that entity's video chunks for it until a chunk that starts with a keyframe fits (so a
//! decoder never restarts mid-GOP); static chunks are kept aside (the latest per entity and
//! component set) and delivered first when there is room again; other temporal chunks are
//! dropped. [`Subscription::skipped_chunks`] counts what was dropped.
//!
//! The backlog names chunks by their index in the recording's store and by their
//! location in the store's file: when the store is replaced before the backlog is read
//! (a producer resumes a recording opened from a file), the chunks load from the file
//! they were in, never by index from the new store.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc::{self, error::TrySendError};
use vidlog_store::store::{ChunkIdx, ChunkSource, StoreError};
use vidlog_store::summary::ChunkLocation;
use vidlog_types::{Chunk, ChunkId, EntityPath};

use crate::recordings::LiveRecording;

/// Chunks a subscriber may have queued before it starts skipping.
pub const SUBSCRIBER_QUEUE: usize = 256;

/// What a chunk is, for a subscriber that falls behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChunkKind {
    Static,
    Video { starts_with_keyframe: bool },
    Other,
}

/// The server's side of a subscription.
pub(crate) struct Subscriber {
    tx: mpsc::Sender<Arc<Chunk>>,
    /// Entities whose video is skipped until the next keyframe chunk.
    skipping: HashSet<EntityPath>,
    /// Static chunks that did not fit, delivered before anything else.
    held_statics: Vec<Arc<Chunk>>,
    skipped: Arc<AtomicU64>,
}

impl Subscriber {
    /// Offers a new chunk; false when the subscription is gone.
    pub fn offer(&mut self, chunk: &Arc<Chunk>, kind: ChunkKind) -> bool {
        if self.tx.is_closed() {
            return false;
        }
        let room = self.deliver_held_statics();
        match kind {
            ChunkKind::Static => {
                if !room || self.tx.try_send(chunk.clone()).is_err() {
                    let same = |c: &Arc<Chunk>| {
                        c.entity() == chunk.entity() && c.schema() == chunk.schema()
                    };
                    self.held_statics.retain(|c| !same(c));
                    self.held_statics.push(chunk.clone());
                }
            }
            ChunkKind::Video {
                starts_with_keyframe,
            } => {
                let entity = chunk.entity();
                if self.skipping.contains(entity) && !starts_with_keyframe {
                    self.skip();
                } else if room && self.tx.try_send(chunk.clone()).is_ok() {
                    self.skipping.remove(entity);
                } else {
                    if self.skipping.insert(entity.clone()) {
                        tracing::debug!(
                            "subscriber fell behind on {entity}: skipping to the next keyframe"
                        );
                    }
                    self.skip();
                }
            }
            ChunkKind::Other => {
                if !room || self.tx.try_send(chunk.clone()).is_err() {
                    self.skip();
                }
            }
        }
        true
    }

    fn skip(&self) {
        self.skipped.fetch_add(1, Ordering::Relaxed);
    }

    /// Sends held static chunks; true when none is left waiting.
    fn deliver_held_statics(&mut self) -> bool {
        while let Some(first) = self.held_statics.first() {
            match self.tx.try_send(first.clone()) {
                Ok(()) => {
                    self.held_statics.remove(0);
                }
                Err(TrySendError::Full(_) | TrySendError::Closed(_)) => return false,
            }
        }
        true
    }
}

/// Why [`Subscription::recv_timeout`] returned without a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecvError {
    #[error("no chunk arrived in time")]
    Timeout,
    #[error("the server shut down")]
    Closed,
}

/// One chunk a subscription replays before live chunks.
pub(crate) struct BacklogEntry {
    pub entity: EntityPath,
    pub idx: ChunkIdx,
    pub id: Option<ChunkId>,
    pub location: Option<ChunkLocation>,
}

/// The chunks a recording had when a subscription started (see the module documentation).
#[derive(Default)]
pub(crate) struct Backlog {
    /// The recording's store generation the indexes refer to.
    pub generation: u64,
    /// That store's source, for when the store was replaced since.
    pub source: Option<Arc<dyn ChunkSource>>,
    pub entries: VecDeque<BacklogEntry>,
}

/// See the module documentation.
pub struct Subscription {
    recording: Arc<LiveRecording>,
    backlog: Backlog,
    rx: mpsc::Receiver<Arc<Chunk>>,
    skipped: Arc<AtomicU64>,
}

impl Subscription {
    pub(crate) fn new(
        recording: Arc<LiveRecording>,
        backlog: Backlog,
    ) -> (Subscriber, Subscription) {
        Self::with_capacity(recording, backlog, SUBSCRIBER_QUEUE)
    }

    fn with_capacity(
        recording: Arc<LiveRecording>,
        backlog: Backlog,
        capacity: usize,
    ) -> (Subscriber, Subscription) {
        let (tx, rx) = mpsc::channel(capacity);
        let skipped = Arc::new(AtomicU64::new(0));
        (
            Subscriber {
                tx,
                skipping: HashSet::new(),
                held_statics: Vec::new(),
                skipped: skipped.clone(),
            },
            Subscription {
                recording,
                backlog,
                rx,
                skipped,
            },
        )
    }

    /// The recording followed.
    pub fn recording_id(&self) -> &str {
        &self.recording.id
    }

    /// Chunks the server dropped for this subscriber because it fell behind.
    pub fn skipped_chunks(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    /// The next backlog chunk; chunks no longer loadable are skipped with a warning.
    fn next_backlog(&mut self) -> Option<Arc<Chunk>> {
        while let Some(entry) = self.backlog.entries.pop_front() {
            match self.load(&entry) {
                Ok(chunk) => return Some(chunk),
                Err(e) => {
                    tracing::warn!("recording {}: backlog chunk: {e}", self.recording.id);
                    self.skip_one();
                }
            }
        }
        None
    }

    fn load(&self, entry: &BacklogEntry) -> Result<Arc<Chunk>, StoreError> {
        let state = self.recording.state.read();
        if state.store_generation() == self.backlog.generation {
            return state.store.chunk_uncached(&entry.entity, entry.idx);
        }
        drop(state);
        let (Some(source), Some(location)) = (&self.backlog.source, entry.location) else {
            return Err(StoreError::Load(format!(
                "{}: chunk {} is gone (the recording restarted in a new file) and it is in no file",
                entry.entity, entry.idx
            )));
        };
        let chunk = source.load(location)?;
        if Some(chunk.id()) != entry.id || chunk.entity() != &entry.entity {
            return Err(StoreError::Load(format!(
                "{}: the chunk at byte {} is not the one subscribed to",
                entry.entity, location.offset
            )));
        }
        Ok(Arc::new(chunk))
    }

    fn skip_one(&self) {
        self.skipped.fetch_add(1, Ordering::Relaxed);
    }

    /// The next chunk; `None` once the server shut down.
    pub async fn recv(&mut self) -> Option<Arc<Chunk>> {
        if let Some(chunk) = self.next_backlog() {
            return Some(chunk);
        }
        self.rx.recv().await
    }

    /// Blocking [`Subscription::recv`] with a timeout, for threads outside the runtime.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Arc<Chunk>, RecvError> {
        if let Some(chunk) = self.next_backlog() {
            return Ok(chunk);
        }
        let deadline = Instant::now() + timeout;
        loop {
            match self.rx.try_recv() {
                Ok(chunk) => return Ok(chunk),
                Err(mpsc::error::TryRecvError::Disconnected) => return Err(RecvError::Closed),
                Err(mpsc::error::TryRecvError::Empty) if Instant::now() >= deadline => {
                    return Err(RecvError::Timeout);
                }
                Err(mpsc::error::TryRecvError::Empty) => {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vidlog_types::chunk::{build_chunk, chunk_schema};
    use vidlog_types::{
        AsComponents, ChunkId, PendingRow, RowId, TimeCell, TimePoint, VideoCodec, VideoStream,
    };

    fn chunk(id: u64, what: VideoStream, time: TimePoint) -> Arc<Chunk> {
        let entity = EntityPath::parse("cam").unwrap();
        let row = PendingRow {
            row_id: RowId(id),
            time,
            cells: what.as_components(),
        };
        let schema = Arc::new(chunk_schema(&entity, &row.batch_key()));
        Arc::new(build_chunk(ChunkId(id), &entity, schema, &[row]).unwrap())
    }

    fn video(id: u64) -> Arc<Chunk> {
        let at = TimePoint::new().with("frame", TimeCell::from_sequence(id as i64));
        chunk(id, VideoStream::from_sample(vec![id as u8; 8]), at)
    }

    #[test]
    fn a_slow_subscriber_skips_to_the_next_keyframe() {
        let recording = Arc::new(LiveRecording::new("r"));
        let (mut subscriber, mut subscription) =
            Subscription::with_capacity(recording, Backlog::default(), 2);
        let key = |k| ChunkKind::Video {
            starts_with_keyframe: k,
        };
        assert!(subscriber.offer(&video(0), key(true)));
        assert!(subscriber.offer(&video(1), key(false)));
        // Full: 2 is skipped, the codec is held, 4 (a keyframe) does not fit either.
        subscriber.offer(&video(2), key(false));
        let codec = chunk(3, VideoStream::new(VideoCodec::H264), TimePoint::new());
        subscriber.offer(&codec, ChunkKind::Static);
        subscriber.offer(&video(4), key(true));
        let wait = Duration::from_secs(1);
        let ids = |s: &mut Subscription, n: usize| -> Vec<u64> {
            (0..n)
                .map(|_| s.recv_timeout(wait).unwrap().id().0)
                .collect()
        };
        assert_eq!(ids(&mut subscription, 2), [0, 1]);
        // Room again, but 5 is not a keyframe: still skipping. 6 is.
        subscriber.offer(&video(5), key(false));
        subscriber.offer(&video(6), key(true));
        assert_eq!(ids(&mut subscription, 2), [3, 6]);
        assert_eq!(subscription.skipped_chunks(), 3);
        assert_eq!(
            subscription.recv_timeout(Duration::from_millis(10)).err(),
            Some(RecvError::Timeout)
        );
        drop(subscription);
        assert!(
            !subscriber.offer(&video(7), key(true)),
            "closed subscriptions go"
        );
    }
}
